//! promptsync at scale, against the emulator (in this process, over loopback HTTP, 20 ms
//! of latency on every request), with the real release binary. For each size N of a
//! repository (100, 1,000 and 10,000 prompt files): the time to load a commit and the
//! working tree (`validate`, best of three), then a sync after a commit that changed a
//! tenth of the prompts (scattered), next to the request floor (the list pages, the
//! changed prompts listed again just before writing, one create per change) and the
//! floor's time at the in-flight limit; peak RSS. Then the
//! daemon's incremental passes after five commits that each change one prompt
//! (requests, latency, CPU of the first and the median, the heap trim once idle), and
//! a 500-prompt first sync paced to an emulator rate limit of 300 requests a minute
//! (429s, time against the limit's floor). It ends with each target and its verdict.
//!
//! `cargo bench --bench scale` (SIZES=100,1000 for fewer; PACED=0 to skip the paced run,
//! which takes about four minutes).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use promptsync_emulator::{self as emulator, EmulatorConfig, Latency, RateLimit};

#[path = "common/mod.rs"]
mod common;
use common::{Watch, clear_requests, git, git_output, requests, set_latency, write_prompt};

const LATENCY_MS: u64 = 20;
const IN_FLIGHT: u64 = 8;

fn main() {
    let sizes: Vec<usize> = std::env::var("SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1000, 10_000]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    println!(
        "promptsync at scale: release binary, emulator in-process, {LATENCY_MS} ms a request, {IN_FLIGHT} in flight"
    );
    println!(
        "{:>7} {:>11} {:>13} {:>9} {:>9} {:>7} {:>10} {:>7} {:>9}",
        "N",
        "load commit",
        "load worktree",
        "sync",
        "requests",
        "floor",
        "floor time",
        "ratio",
        "peak RSS"
    );
    let mut daemon_rows = Vec::new();
    let mut verdicts = Vec::new();
    for &n in &sizes {
        let emu = start(&runtime, None);
        let base = emu.base_url();
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        common::repository(repo, n);
        // Loading: `validate` of the commit and of the working tree, best of three.
        let best = |args: &[&str]| (0..3).map(|_| run(repo, &base, args).0).min().unwrap();
        let load = best(&["validate", "--rev", "HEAD"]);
        let load_worktree = best(&["validate"]);
        // The first sync, without latency, to get there quickly.
        run(repo, &base, &["sync"]);
        let changed: Vec<usize> = (0..n).step_by(10).collect();
        for &i in &changed {
            write_prompt(repo, i, 1);
        }
        git(
            repo,
            &["commit", "--quiet", "--all", "-m", "A tenth changed"],
        );
        set_latency(&runtime, &base, LATENCY_MS);
        clear_requests(&runtime, &base);
        let (wall, peak) = run(repo, &base, &["sync"]);
        let requests = requests(&runtime, &base).len() as u64;
        // The account's pages, the changed prompts read again just before writing (the
        // listing ran while the files were read; README, "One writer at a time"), and
        // one create per change.
        let pages = (n as u64).div_ceil(100);
        let creates = changed.len() as u64;
        let reread = creates.div_ceil(100);
        let floor = pages + reread + creates;
        let floor_time =
            Duration::from_millis(LATENCY_MS * (pages + reread + creates.div_ceil(IN_FLIGHT)));
        let ratio = wall.as_secs_f64() / floor_time.as_secs_f64();
        println!(
            "{n:>7} {:>10.2}s {:>12.2}s {:>8.2}s {requests:>9} {floor:>7} {:>9.2}s {ratio:>7.2} {:>6.1} MiB",
            load.as_secs_f64(),
            load_worktree.as_secs_f64(),
            wall.as_secs_f64(),
            floor_time.as_secs_f64(),
            peak as f64 / 1024.0,
        );
        if n == 1000 {
            verdicts.push(verdict(
                "sync at 1,000: time / floor's time <= 1.5",
                ratio <= 1.5,
                format!("{ratio:.2}"),
            ));
        }
        if n == 10_000 {
            let (commit, worktree) = (load.as_secs_f64(), load_worktree.as_secs_f64());
            verdicts.push(verdict(
                "10,000 files: load a commit < 1 s",
                commit < 1.0,
                format!("{commit:.2} s"),
            ));
            verdicts.push(verdict(
                "10,000 files: load the working tree < 0.5 s",
                worktree < 0.5,
                format!("{worktree:.2} s"),
            ));
        }
        daemon_rows.push((n, daemon_pass(&runtime, repo, &base, n)));
        runtime.block_on(emu.shutdown()).unwrap();
    }
    println!();
    println!(
        "the daemon's incremental pass after a commit that changes one prompt ({LATENCY_MS} ms a request; {COMMITS} commits, medians):"
    );
    println!(
        "{:>7} {:>10} {:>9} {:>10} {:>11} {:>22}",
        "N", "latency", "requests", "CPU first", "CPU median", "then, idle: heap trim"
    );
    for (n, pass) in daemon_rows {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{n:>7} {:>8.0}ms {:>9} {:>8.0}ms {:>9.0}ms {:>20.0}ms",
            ms(pass.latency),
            pass.requests,
            ms(pass.cpu_first),
            ms(pass.cpu_median),
            ms(pass.idle_trim),
        );
        verdicts.push(verdict(
            &format!("daemon pass at {n}: <= 3 requests"),
            pass.requests <= 3,
            pass.requests.to_string(),
        ));
        if n == 10_000 {
            let (first, median) = (ms(pass.cpu_first), ms(pass.cpu_median));
            verdicts.push(verdict(
                "daemon pass at 10,000: < 50 ms of CPU",
                first < 50.0 && median < 50.0,
                format!("first {first:.0} ms, median of {COMMITS} {median:.0} ms"),
            ));
        }
    }
    println!();
    for line in verdicts {
        println!("{line}");
    }
    if std::env::var("PACED").as_deref() != Ok("0") {
        paced(&runtime);
    }
}

/// The emulator in this process, with an optional rate limit.
fn start(
    runtime: &tokio::runtime::Runtime,
    rate_limit: Option<RateLimit>,
) -> emulator::RunningEmulator {
    common::emulator(
        runtime,
        EmulatorConfig {
            durable_writes: false,
            rate_limit,
            latency: Latency::default(),
            ..EmulatorConfig::default()
        },
    )
}

/// One-prompt commits measured per size.
const COMMITS: usize = 5;

/// The daemon's passes after one-prompt commits: the first (its heap trimmed after the
/// first pass, so it pages memory back in) and the median of [`COMMITS`].
struct DaemonPass {
    latency: Duration,
    requests: usize,
    cpu_first: Duration,
    cpu_median: Duration,
    idle_trim: Duration,
}

/// Start `promptsync watch`, wait for its first pass, then [`COMMITS`] times commit a
/// change to one prompt and measure its pass: commit to log line, requests, CPU time;
/// then the CPU of the 3 s idle after it (the heap trim, 2 s after a small pass).
fn daemon_pass(runtime: &tokio::runtime::Runtime, repo: &Path, base: &str, n: usize) -> DaemonPass {
    let watch = Watch::start(repo, base, &[("PROMPTSYNC_WATCH__DEBOUNCE", "50ms")]);
    let pid = watch.pid();
    watch.wait_pass(None);
    // The first pass's aftermath runs after its log line: let it end, so the CPU
    // below is the commit's alone.
    common::wait_until_idle(pid, Duration::from_millis(200));
    let (mut latencies, mut cpus, mut trims, mut most) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for k in 0..COMMITS {
        clear_requests(runtime, base);
        let cpu_before = common::cpu_precise(pid);
        write_prompt(repo, n / 2 + 1 + k, 7);
        git(repo, &["commit", "--quiet", "--all", "-m", "One prompt"]);
        let committed = Instant::now();
        let head = git_output(repo, &["rev-parse", "HEAD"]);
        let seen = watch.wait_pass(Some(&head));
        let cpu_used = common::cpu_precise(pid).saturating_sub(cpu_before);
        most = most.max(requests(runtime, base).len());
        std::thread::sleep(Duration::from_secs(3));
        let idle = common::cpu_precise(pid)
            .saturating_sub(cpu_before)
            .saturating_sub(cpu_used);
        latencies.push(seen.saturating_duration_since(committed));
        cpus.push(cpu_used);
        trims.push(idle);
    }
    watch.stop();
    let cpu_first = cpus[0];
    let median = |mut all: Vec<Duration>| {
        all.sort();
        all[all.len() / 2]
    };
    DaemonPass {
        latency: median(latencies),
        requests: most,
        cpu_first,
        cpu_median: median(cpus),
        idle_trim: median(trims),
    }
}

/// 500 new prompts against a rate limit of 300 requests a minute, paced to it.
fn paced(runtime: &tokio::runtime::Runtime) {
    let n = 500;
    let emu = start(
        runtime,
        Some(RateLimit {
            requests: 300,
            window_ms: 60_000,
        }),
    );
    let base = emu.base_url();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    common::repository(repo, n);
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_promptsync"))
        .current_dir(repo)
        .args(["sync", "-q"])
        .env("RESPAN_BASE_URL", &base)
        .env("RESPAN_API_KEY", "bench")
        .env("PROMPTSYNC_API__REQUESTS_PER_MINUTE", "300")
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "10m")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let wall = started.elapsed();
    assert!(status.success());
    let log = requests(runtime, &base);
    let throttled = log.iter().filter(|r| r["status"] == 429).count();
    let floor = Duration::from_secs_f64(log.len() as f64 / 5.0);
    println!();
    println!(
        "500-prompt first sync paced to a 300/min limit: {} requests, {throttled} answered 429 (target 0: {}), {:.1}s against the limit's floor of {:.1}s ({:.2}x)",
        log.len(),
        if throttled == 0 { "ok" } else { "MISSED" },
        wall.as_secs_f64(),
        floor.as_secs_f64(),
        wall.as_secs_f64() / floor.as_secs_f64()
    );
    runtime.block_on(emu.shutdown()).unwrap();
}

/// Run the binary; its wall time and peak RSS (KiB).
fn run(repo: &Path, base: &str, args: &[&str]) -> (Duration, i64) {
    common::run_measured(common::promptsync(repo, base, args))
}

/// `target: ok (figure)` or `target: MISSED (figure)`.
fn verdict(target: &str, met: bool, figure: String) -> String {
    format!("{target}: {} ({figure})", if met { "ok" } else { "MISSED" })
}
