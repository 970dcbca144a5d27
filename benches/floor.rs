//! promptsync against the floor, and its memory against the size of the account
//! (issue 22), with the real release binary and the emulator in this process (over
//! loopback HTTP). Each figure is taken `RUNS` times (3 by default) and printed as
//! the median with its spread (min-max), next to its goal and verdict:
//!
//! - **incremental sync over the floor** at 300 prompts (30 changed) and 1,000 (100
//!   changed), 20 ms a request. The floor: two listing round trips (page 1, then the
//!   other pages at once, since page 1 gives the count; one when there is one page)
//!   plus the creates eight at a time (`api.max_in_flight`); goal 1.3x or less. The
//!   requests sent over the request floor (the list pages, the changed prompts listed
//!   again just before writing, one create per change): goal 1.00. The same at
//!   1,000/100 with files that name their prompt by `prompt_id`, whose versions go
//!   out as their prompt's page arrives (same goals).
//! - **first sync, 10,000 prompts over 1,000**: wall and CPU time (user + system of
//!   the child alone, from `wait4`), goal 10.5x or less; the 10,000-file sync's peak
//!   RSS, goal under 100 MiB.
//! - **validation at 10,000 files**: `validate --rev HEAD` and `validate` (the
//!   working tree), best of the runs.
//! - **the daemon's idle RSS** (`promptsync watch`, after its first pass and its heap
//!   trims, the last once the pass's connections are closed): 1,000 files synced to
//!   their own 1,000 prompts (goal under 20 MiB, this bench's own), the same 1,000
//!   files beside a 10,000-prompt account (9,000 prompts no file names, listed for the
//!   unmanaged report; goal under 30 MiB, the issue's), and 10,000 files synced to
//!   their 10,000 prompts (README's sizing row, no goal).
//!
//! The emulator's pages give their total in `count` (`count_mode = total`, as the
//! floor assumes); `COUNT=page` runs it with a per-page count instead.
//!
//! - **`--emulator`**: the daemon on 1,000 files beside a 10,000-prompt emulator
//!   state, with the emulator inside it (`watch --emulator`) and in a process of its
//!   own: what `--emulator` adds, against the emulator's own memory (goal: no more).
//!
//! `cargo bench --bench floor` (RUNS=1 for a quick look; PARTS=sync,first,validate,daemon,emulator
//! for some of it).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use promptsync_emulator::{CountMode, EmulatorConfig, Knobs, Latency};

#[path = "common/mod.rs"]
mod common;
use common::{Watch, clear_requests, git, requests, set_latency, status_kib, write_prompt};

const LATENCY_MS: u64 = 20;
/// How long the daemon is idle after a pass before it is measured: it trims its heap
/// 11 s after the pass, once the pass's connections are closed (`api::POOL_IDLE`).
const AFTER_TRIM: Duration = Duration::from_secs(12);
const IN_FLIGHT: u64 = 8;
const PAGE: u64 = 100;

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let parts =
        std::env::var("PARTS").unwrap_or_else(|_| "sync,first,validate,daemon,emulator".into());
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "promptsync against the floor: release binary, emulator in-process, {runs} runs a figure (median, min-max)"
    );
    let mut verdicts = Vec::new();
    if part("sync") {
        for (n, changed) in [(300, 30), (1000, 100)] {
            incremental(&runtime, (n, changed), Keys::Name, runs, &mut verdicts);
        }
        incremental(&runtime, (1000, 100), Keys::Id, runs, &mut verdicts);
    }
    if part("first") || part("validate") {
        first_and_validate(
            &runtime,
            runs,
            part("first"),
            part("validate"),
            &mut verdicts,
        );
    }
    if part("daemon") {
        // The issue sets its goal beside a 10,000-prompt account; 20 MiB beside 1,000 is
        // this bench's own; 10,000 files is the sizing table's row.
        let sizes = [
            ((1000, 1000), Some(20.0)),
            ((1000, 10_000), Some(30.0)),
            ((10_000, 10_000), None),
        ];
        for (size, goal) in sizes {
            daemon_idle(&runtime, size, goal, runs, &mut verdicts);
        }
    }
    if part("emulator") {
        with_emulator(runs, &mut verdicts);
    }
    println!();
    for line in verdicts {
        println!("{line}");
    }
}

/// The emulator in this process: answers at once, saves nothing; a page's `count` is
/// the total (as the floor assumes: page 1 gives it), unless `COUNT=page`.
fn start(runtime: &tokio::runtime::Runtime) -> promptsync_emulator::RunningEmulator {
    let count_mode = if std::env::var("COUNT").as_deref() == Ok("page") {
        CountMode::Page
    } else {
        CountMode::Total
    };
    common::emulator(
        runtime,
        EmulatorConfig {
            durable_writes: false,
            latency: Latency::default(),
            knobs: Knobs {
                count_mode,
                ..Knobs::default()
            },
            request_log_capacity: 100_000,
            ..EmulatorConfig::default()
        },
    )
}

/// How the bench's files name their prompts.
#[derive(Clone, Copy, PartialEq)]
enum Keys {
    /// By `name`, as `common::repository` writes them.
    Name,
    /// By `prompt_id` (after a first sync by name): a version can go out as soon as
    /// its prompt's page is in.
    Id,
}

/// Syncs of `n` prompts after commits that each change a scattered tenth, at 20 ms a
/// request: wall over the floor's time, requests over the request floor.
fn incremental(
    runtime: &tokio::runtime::Runtime,
    (n, changed): (usize, usize),
    keys: Keys,
    runs: usize,
    verdicts: &mut Vec<String>,
) {
    let emu = start(runtime);
    let base = emu.base_url();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    common::repository(repo, n);
    run(repo, &base, &["sync"]);
    let ids = match keys {
        Keys::Name => Vec::new(),
        Keys::Id => {
            let ids = prompt_ids(repo, &base, n);
            for (i, id) in ids.iter().enumerate() {
                name_by_id(repo, i, id);
            }
            git(repo, &["commit", "--quiet", "--all", "-m", "By id"]);
            run(repo, &base, &["sync"]);
            ids
        }
    };
    let (label, keys_said) = match keys {
        Keys::Name => ("", ""),
        Keys::Id => (" by id", " (files by prompt_id)"),
    };
    set_latency(runtime, &base, LATENCY_MS);
    let pages = (n as u64).div_ceil(PAGE);
    let listing_trips = pages.min(2);
    let creates = (changed as u64).div_ceil(IN_FLIGHT);
    let floor = Duration::from_millis(LATENCY_MS * (listing_trips + creates));
    // The same with the round trip of the second read before the creates, which a
    // sync cannot skip (README, "One writer at a time").
    let floor_reread = floor + Duration::from_millis(LATENCY_MS);
    // The list pages, the changed prompts listed again just before writing (README,
    // "One writer at a time"), one create per change.
    let request_floor = pages + (changed as u64).div_ceil(PAGE) + changed as u64;
    let (mut ratios, mut ratios_reread, mut walls, mut sent) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for k in 0..runs {
        let step = n / changed;
        for i in (0..n).step_by(step).take(changed) {
            write_prompt(repo, i, format!("run {k}"));
            if let Some(id) = ids.get(i) {
                name_by_id(repo, i, id);
            }
        }
        git(
            repo,
            &["commit", "--quiet", "--all", "-m", "A tenth changed"],
        );
        clear_requests(runtime, &base);
        let measured = run(repo, &base, &["sync"]);
        let log = requests(runtime, &base);
        walls.push(measured.wall.as_secs_f64());
        ratios.push(measured.wall.as_secs_f64() / floor.as_secs_f64());
        ratios_reread.push(measured.wall.as_secs_f64() / floor_reread.as_secs_f64());
        sent.push(log.len() as f64 / request_floor as f64);
    }
    println!(
        "incremental sync {n}/{changed}{keys_said} at {LATENCY_MS} ms: wall {} s, floor {:.2} s ({listing_trips} listing round trips + {creates} of creates {IN_FLIGHT} at a time), over the floor {}, over the floor with the second read ({:.2} s) {}, requests over {request_floor} {}",
        spread(&walls, 2),
        floor.as_secs_f64(),
        spread(&ratios, 2),
        floor_reread.as_secs_f64(),
        spread(&ratios_reread, 2),
        spread(&sent, 2),
    );
    let ratio = median(&ratios);
    verdicts.push(verdict(
        &format!("incremental {n}/{changed}{label}, wall / floor <= 1.30"),
        ratio <= 1.3,
        format!("{ratio:.2}, spread {}", spread(&ratios, 2)),
    ));
    let most = sent.iter().copied().fold(0.0, f64::max);
    verdicts.push(verdict(
        &format!("incremental {n}/{changed}{label}, requests / request floor = 1.00"),
        most <= 1.0,
        format!("{most:.2}"),
    ));
    runtime.block_on(emu.shutdown()).unwrap();
}

/// The ids of the prompts of the bench's `n` files, in file order, as `status` says.
fn prompt_ids(repo: &Path, base: &str, n: usize) -> Vec<String> {
    let mut status = common::promptsync(repo, base, &["status", "--output", "json"]);
    let output = status
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    (0..n)
        .map(|i| {
            let file = format!("prompts/p{i:05}.prompt.yaml");
            let row = report["prompts"]
                .as_array()
                .and_then(|rows| rows.iter().find(|row| row["file"] == file.as_str()))
                .unwrap();
            row["prompt_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Have the bench's file `i` name its prompt by `id` too.
fn name_by_id(repo: &Path, i: usize, id: &str) {
    let path = repo.join(format!("prompts/p{i:05}.prompt.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(path, format!("prompt_id: {id}\n{text}")).unwrap();
}

/// First syncs of 1,000 and 10,000 prompts (no latency) and `validate` at 10,000.
fn first_and_validate(
    runtime: &tokio::runtime::Runtime,
    runs: usize,
    first: bool,
    validate: bool,
    verdicts: &mut Vec<String>,
) {
    let big = tempfile::tempdir().unwrap();
    common::repository(big.path(), 10_000);
    if validate {
        let best = |args: &[&str]| {
            (0..runs)
                .map(|_| {
                    run(big.path(), "http://127.0.0.1:9", args)
                        .wall
                        .as_secs_f64()
                })
                .fold(f64::MAX, f64::min)
        };
        let commit = best(&["validate", "--rev", "HEAD"]);
        let worktree = best(&["validate"]);
        println!(
            "validation at 10,000 files (best of {runs}): a commit {commit:.2} s, the working tree {worktree:.2} s"
        );
        verdicts.push(verdict(
            "validate at 10,000 files: a commit < 1 s, the working tree < 0.5 s",
            commit < 1.0 && worktree < 0.5,
            format!("{commit:.2} s, {worktree:.2} s"),
        ));
    }
    if !first {
        return;
    }
    let small = tempfile::tempdir().unwrap();
    common::repository(small.path(), 1000);
    let (mut wall_ratio, mut cpu_ratio, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    let (mut walls_1k, mut walls_10k, mut cpus_1k, mut cpus_10k) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let sync = |repo: &Path| {
            let emu = start(runtime);
            let measured = run(repo, &emu.base_url(), &["sync"]);
            runtime.block_on(emu.shutdown()).unwrap();
            measured
        };
        let one = sync(small.path());
        let ten = sync(big.path());
        walls_1k.push(one.wall.as_secs_f64());
        walls_10k.push(ten.wall.as_secs_f64());
        cpus_1k.push(one.cpu.as_secs_f64());
        cpus_10k.push(ten.cpu.as_secs_f64());
        wall_ratio.push(ten.wall.as_secs_f64() / one.wall.as_secs_f64());
        cpu_ratio.push(ten.cpu.as_secs_f64() / one.cpu.as_secs_f64());
        peaks.push(ten.peak_rss_kib as f64 / 1024.0);
    }
    println!(
        "first sync: 1,000 prompts {} s (CPU {} s), 10,000 {} s (CPU {} s); 10k/1k wall {}, CPU {}; 10,000's peak RSS {} MiB",
        spread(&walls_1k, 2),
        spread(&cpus_1k, 2),
        spread(&walls_10k, 2),
        spread(&cpus_10k, 2),
        spread(&wall_ratio, 2),
        spread(&cpu_ratio, 2),
        spread(&peaks, 1),
    );
    let (wall, cpu) = (median(&wall_ratio), median(&cpu_ratio));
    verdicts.push(verdict(
        "first sync 10k / 1k <= 10.5 (wall)",
        wall <= 10.5,
        format!("wall {wall:.2}, CPU {cpu:.2}"),
    ));
    let peak = median(&peaks);
    verdicts.push(verdict(
        "first sync of 10,000 files: peak RSS < 100 MiB",
        peak < 100.0,
        format!("{peak:.1} MiB, spread {}", spread(&peaks, 1)),
    ));
}

/// `promptsync watch` on `files` prompt files beside an account of `account` prompts
/// (the files' own and others no file names, listed in every full pass for the
/// unmanaged report): its RSS once idle (after the first pass and the heap trim that
/// follows it).
fn daemon_idle(
    runtime: &tokio::runtime::Runtime,
    (files, account): (usize, usize),
    goal: Option<f64>,
    runs: usize,
    verdicts: &mut Vec<String>,
) {
    let emu = start(runtime);
    let base = emu.base_url();
    let whole = tempfile::tempdir().unwrap();
    common::repository(whole.path(), account);
    run(whole.path(), &base, &["sync"]);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    common::repository(repo, files);
    let (mut idle, mut anon, mut peak) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let watch = Watch::start(repo, &base, &[]);
        let pid = watch.pid();
        watch.wait_pass(None);
        // Idle: the pass's aftermath and the heap trims are done.
        common::wait_until_idle(pid, Duration::from_millis(500));
        std::thread::sleep(AFTER_TRIM);
        let kib = |name| status_kib(pid, name).unwrap_or(0) as f64 / 1024.0;
        idle.push(kib("VmRSS:"));
        anon.push(kib("RssAnon:"));
        peak.push(kib("VmHWM:"));
        watch.stop();
    }
    println!(
        "daemon idle, {files} files beside a {account}-prompt account: RSS {} MiB, of which its own (RssAnon) {} MiB; peak (its first, full pass) {} MiB",
        spread(&idle, 1),
        spread(&anon, 1),
        spread(&peak, 1),
    );
    let rss = median(&idle);
    if let Some(goal) = goal {
        verdicts.push(verdict(
            &format!("daemon idle RSS, {files} files, {account}-prompt account < {goal:.0} MiB"),
            rss < goal,
            format!("{rss:.1} MiB, spread {}", spread(&idle, 1)),
        ));
    }
    runtime.block_on(emu.shutdown()).unwrap();
}

/// `promptsync watch --emulator` on 1,000 files beside a 10,000-prompt emulator state,
/// against the same daemon beside the same state served by `promptsync emulator` in
/// a process of its own: what `--emulator` adds to the daemon, next to what the
/// emulator alone holds of its own (RssAnon: its heap, the state) with that state.
fn with_emulator(runs: usize, verdicts: &mut Vec<String>) {
    // The 10,000-prompt state: a first sync of 10,000 files with `--emulator`.
    let whole = tempfile::tempdir().unwrap();
    common::repository(whole.path(), 10_000);
    run(whole.path(), "http://127.0.0.1:9", &["sync", "--emulator"]);
    let state = whole.path().join(".git/promptsync/emulator.json");
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    common::repository(repo, 1000);
    let own_state = repo.join(".git/promptsync/emulator.json");
    std::fs::create_dir_all(own_state.parent().unwrap()).unwrap();
    let idle_of = |watch: &Watch| {
        let pid = watch.pid();
        watch.wait_pass(None);
        common::wait_until_idle(pid, Duration::from_millis(500));
        std::thread::sleep(AFTER_TRIM);
        status_kib(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0
    };
    let (mut alone, mut alone_anon, mut beside, mut inside) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // The emulator alone, serving a copy of the state.
        let served = tempfile::tempdir().unwrap();
        let copy = served.path().join("state.json");
        std::fs::copy(&state, &copy).unwrap();
        let mut emulator = common::EmulatorProcess::start(&copy);
        let watch = Watch::start(repo, &emulator.base_url(), &[]);
        beside.push(idle_of(&watch));
        watch.stop();
        common::wait_until_idle(emulator.pid(), Duration::from_millis(500));
        let kib = |name| status_kib(emulator.pid(), name).unwrap_or(0) as f64 / 1024.0;
        alone.push(kib("VmRSS:"));
        alone_anon.push(kib("RssAnon:"));
        emulator.stop();
        // The same state inside the daemon.
        std::fs::copy(&state, &own_state).unwrap();
        let watch = Watch::start_with(repo, "http://127.0.0.1:9", &[], &["--emulator"]);
        inside.push(idle_of(&watch));
        watch.stop();
    }
    let adds: Vec<f64> = inside.iter().zip(&beside).map(|(i, b)| i - b).collect();
    println!(
        "daemon idle, 1,000 files beside a 10,000-prompt account: with --emulator {} MiB, against an emulator process {} MiB; --emulator adds {} MiB; the emulator process alone {} MiB, of which its own (RssAnon) {} MiB",
        spread(&inside, 1),
        spread(&beside, 1),
        spread(&adds, 1),
        spread(&alone, 1),
        spread(&alone_anon, 1),
    );
    let (added, own) = (median(&adds), median(&alone_anon));
    verdicts.push(verdict(
        "--emulator adds no more than the emulator's own memory (RssAnon of the emulator alone)",
        added <= own,
        format!("adds {added:.1} MiB, the emulator alone holds {own:.1} MiB"),
    ));
}

/// Wall time, CPU time (user + system, the child alone) and peak RSS of a run.
struct Measured {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: i64,
}

/// Run the binary to its end; what it took.
fn run(repo: &Path, base: &str, args: &[&str]) -> Measured {
    let command: Command = common::promptsync(repo, base, args);
    let before = children_cpu();
    let (wall, peak_rss_kib) = common::run_measured(command);
    Measured {
        wall,
        cpu: children_cpu().saturating_sub(before),
        peak_rss_kib,
    }
}

/// User plus system CPU time of the children waited for so far.
#[allow(unsafe_code)]
fn children_cpu() -> Duration {
    // SAFETY: `getrusage` writes into the struct it is given, which lives on the stack.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// `median (min-max)`.
fn spread(values: &[f64], decimals: usize) -> String {
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    format!(
        "{:.decimals$} ({min:.decimals$}-{max:.decimals$})",
        median(values)
    )
}

/// `goal: ok (figure)` or `goal: MISSED (figure)`.
fn verdict(goal: &str, met: bool, figure: String) -> String {
    format!("{goal}: {} ({figure})", if met { "ok" } else { "MISSED" })
}
