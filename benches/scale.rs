//! promptsync at scale, against the emulator (in this process, over loopback HTTP, 20 ms
//! of latency on every request), with the real release binary. For each size N of a
//! repository (100, 1,000 and 10,000 prompt files): the time to load a commit, then a
//! sync after a commit that changed a tenth of the prompts (scattered), next to the
//! request floor (the list pages plus one create per change) and the floor's time at
//! the in-flight limit; peak RSS. Then the daemon's incremental pass after a commit
//! that changes one prompt (requests, latency, CPU), and a 500-prompt first sync paced
//! to an emulator rate limit of 300 requests a minute (429s, time against the limit's
//! floor).
//!
//! `cargo bench --bench scale` (SIZES=100,1000 for fewer; PACED=0 to skip the paced run,
//! which takes about four minutes).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use promptsync_emulator::{self as emulator, EmulatorConfig, Latency, RateLimit};
use serde_json::Value;

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
        "{:>7} {:>9} {:>9} {:>9} {:>7} {:>10} {:>7} {:>9}",
        "N", "load", "sync", "requests", "floor", "floor time", "ratio", "peak RSS"
    );
    let mut daemon_rows = Vec::new();
    for &n in &sizes {
        let emu = start(&runtime, None);
        let base = emu.base_url();
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        git(repo, &["init", "--quiet", "--initial-branch=main"]);
        for i in 0..n {
            write_prompt(repo, i, 0);
        }
        git(repo, &["add", "--all"]);
        git(repo, &["commit", "--quiet", "-m", "Many prompts"]);
        let load = run(repo, &base, &["validate", "--rev", "HEAD"]).0;
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
        let pages = (n as u64).div_ceil(100);
        let creates = changed.len() as u64;
        let floor = pages + creates;
        let floor_time = Duration::from_millis(LATENCY_MS * (pages + creates.div_ceil(IN_FLIGHT)));
        println!(
            "{n:>7} {:>8.2}s {:>8.2}s {requests:>9} {floor:>7} {:>9.2}s {:>7.2} {:>6.1} MiB",
            load.as_secs_f64(),
            wall.as_secs_f64(),
            floor_time.as_secs_f64(),
            wall.as_secs_f64() / floor_time.as_secs_f64(),
            peak as f64 / 1024.0,
        );
        daemon_rows.push((n, daemon_pass(&runtime, repo, &base, n)));
        runtime.block_on(emu.shutdown()).unwrap();
    }
    println!();
    println!(
        "the daemon's incremental pass after a commit that changes one prompt ({LATENCY_MS} ms a request):"
    );
    println!(
        "{:>7} {:>10} {:>9} {:>9}",
        "N", "latency", "requests", "CPU"
    );
    for (n, (latency, requests, cpu)) in daemon_rows {
        println!(
            "{n:>7} {:>8.0}ms {requests:>9} {:>7.0}ms",
            latency.as_secs_f64() * 1000.0,
            cpu.as_secs_f64() * 1000.0
        );
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
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = EmulatorConfig {
            durable_writes: false,
            rate_limit,
            latency: Latency::default(),
            ..EmulatorConfig::default()
        };
        emulator::start(config, listener).await.unwrap()
    })
}

/// Start `promptsync watch`, wait for its first pass, commit a change to one prompt,
/// and measure that pass: commit to log line, requests, CPU time.
fn daemon_pass(
    runtime: &tokio::runtime::Runtime,
    repo: &Path,
    base: &str,
    n: usize,
) -> (Duration, usize, Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_promptsync"))
        .current_dir(repo)
        .args(["watch", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RESPAN_BASE_URL", base)
        .env("RESPAN_API_KEY", "bench")
        .env("PROMPTSYNC_WATCH__DEBOUNCE", "50ms")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (lines, log) = mpsc::channel::<(Instant, String)>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let wait_pass = |revision: Option<&str>| -> Instant {
        loop {
            let (at, line) = log.recv_timeout(Duration::from_secs(600)).expect("a pass");
            if line.contains("\"pass finished\"") && revision.is_none_or(|r| line.contains(r)) {
                return at;
            }
        }
    };
    wait_pass(None);
    clear_requests(runtime, base);
    let cpu_before = cpu(pid);
    write_prompt(repo, n / 2 + 1, 7);
    git(repo, &["commit", "--quiet", "--all", "-m", "One prompt"]);
    let committed = Instant::now();
    let head = git_output(repo, &["rev-parse", "HEAD"]);
    let seen = wait_pass(Some(&head));
    let cpu_used = cpu(pid).saturating_sub(cpu_before);
    let requests = requests(runtime, base).len();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    (
        seen.saturating_duration_since(committed),
        requests,
        cpu_used,
    )
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
    git(repo, &["init", "--quiet", "--initial-branch=main"]);
    for i in 0..n {
        write_prompt(repo, i, 0);
    }
    git(repo, &["add", "--all"]);
    git(repo, &["commit", "--quiet", "-m", "Many prompts"]);
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
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_promptsync"))
        .current_dir(repo)
        .args(args)
        .args(["-q"])
        .env("RESPAN_BASE_URL", base)
        .env("RESPAN_API_KEY", "bench")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Some(hwm) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| field(&s, "VmHWM:"))
        {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(status.success(), "promptsync {args:?} failed");
    (started.elapsed(), peak)
}

fn field(status: &str, name: &str) -> Option<i64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of `pid`.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn admin(
    runtime: &tokio::runtime::Runtime,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    runtime.block_on(async {
        let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().await.unwrap();
        reply.json().await.unwrap_or(Value::Null)
    })
}

fn set_latency(runtime: &tokio::runtime::Runtime, base: &str, ms: u64) {
    admin(
        runtime,
        base,
        reqwest::Method::PATCH,
        "/_emulator/knobs",
        Some(serde_json::json!({"latency": {"fixed_ms": ms}})),
    );
}

fn clear_requests(runtime: &tokio::runtime::Runtime, base: &str) {
    admin(
        runtime,
        base,
        reqwest::Method::DELETE,
        "/_emulator/requests",
        None,
    );
}

fn requests(runtime: &tokio::runtime::Runtime, base: &str) -> Vec<Value> {
    admin(
        runtime,
        base,
        reqwest::Method::GET,
        "/_emulator/requests",
        None,
    )["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn write_prompt(repo: &Path, i: usize, revision: usize) {
    let text = format!(
        "name: Prompt {i:05}\nmodel: gpt-4o\ntemperature: 0.3\nmessages:\n  - role: system\n    content: |\n      You are assistant number {i} (revision {revision}).\n      Answer briefly about {{{{topic}}}}.\n  - role: user\n    content: \"{{{{question}}}}\"\nvariables:\n  topic: billing\n  question: How do I pay?\n"
    );
    let path = repo.join(format!("prompts/p{i:05}.prompt.yaml"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn git_command(repo: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    command
}

fn git(repo: &Path, args: &[&str]) {
    let status = git_command(repo, args).status().unwrap();
    assert!(status.success(), "git {args:?}");
}

fn git_output(repo: &Path, args: &[&str]) -> String {
    let output = git_command(repo, args).output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
