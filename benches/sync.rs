//! Speed and memory of a sync against the emulator (in this process, over loopback
//! HTTP), with the real release binary: a first sync of many prompts, a no-op sync,
//! a plan, and two syncs where a tenth changed, under 20 ms of emulator latency per
//! request: once a contiguous tenth, once a tenth scattered among unchanged prompts
//! (every tenth file), which must take about as long (within 1.3x): only changes may
//! take in-flight slots. Prints wall time, peak RSS of the promptsync process (its
//! VmHWM, sampled every 2 ms) and requests sent, next to the targets.
//!
//! `cargo bench --bench sync` (PROMPTS=2000 for another size).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use promptsync_emulator::{self as emulator, EmulatorConfig};

struct Figures {
    wall: Duration,
    peak_rss_kib: i64,
}

fn main() {
    let prompts: usize = std::env::var("PROMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        emulator::start(EmulatorConfig::default(), listener)
            .await
            .unwrap()
    });
    let base = running.base_url();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "--quiet", "--initial-branch=main"]);
    for i in 0..prompts {
        write_prompt(repo, i, "first");
    }
    git(repo, &["add", "--all"]);
    git(repo, &["commit", "--quiet", "-m", "Many prompts"]);

    println!("promptsync sync benchmark: {prompts} prompts, emulator in-process, release binary");
    println!(
        "{:<34} {:>9} {:>13} {:>9}   target",
        "run", "wall", "peak RSS", "requests"
    );
    let admin = format!("{base}/_emulator/requests");
    let report = |name: &str, figures: Figures, target: (Duration, i64)| {
        let requests = count_requests(&runtime, &admin);
        let ok = figures.wall <= target.0 && figures.peak_rss_kib <= target.1 * 1024;
        println!(
            "{name:<34} {:>8.2}s {:>9.1} MiB {requests:>9}   ≤ {:.1}s, ≤ {} MiB: {}",
            figures.wall.as_secs_f64(),
            figures.peak_rss_kib as f64 / 1024.0,
            target.0.as_secs_f64(),
            target.1,
            if ok { "ok" } else { "MISSED" }
        );
    };
    let per_prompt = |ms: u64| Duration::from_millis(500 + ms * prompts as u64);
    let changed = prompts.div_ceil(10);

    report(
        &format!("first sync ({prompts} new prompts)"),
        run(repo, &base, &["sync"]),
        (per_prompt(10), 64),
    );
    report(
        "no-op sync",
        run(repo, &base, &["sync"]),
        (per_prompt(1), 48),
    );
    report(
        "plan, nothing to do",
        run(repo, &base, &["plan"]),
        (per_prompt(1), 48),
    );
    set_latency(&runtime, &base, LATENCY_MS);
    for i in 0..changed {
        write_prompt(repo, i, "second");
    }
    git(
        repo,
        &["commit", "--quiet", "-am", "A contiguous tenth changed"],
    );
    let contiguous = run(repo, &base, &["sync"]);
    let contiguous_wall = contiguous.wall;
    report(
        &format!("sync, {changed} changed, contiguous"),
        contiguous,
        (per_prompt(2), 48),
    );
    for i in (0..prompts).step_by(10) {
        write_prompt(repo, i, "third");
    }
    git(
        repo,
        &["commit", "--quiet", "-am", "A scattered tenth changed"],
    );
    let scattered = run(repo, &base, &["sync"]);
    let ratio = scattered.wall.as_secs_f64() / contiguous_wall.as_secs_f64();
    report(
        &format!("sync, {changed} changed, scattered"),
        scattered,
        (per_prompt(2), 48),
    );
    println!(
        "(the last two with {LATENCY_MS} ms emulator latency) scattered / contiguous: {ratio:.2}   ≤ 1.30: {}",
        if ratio <= 1.3 { "ok" } else { "MISSED" }
    );
    runtime.block_on(running.shutdown()).unwrap();
}

/// Emulator latency for the runs that compare how changes are spread.
const LATENCY_MS: u64 = 20;

/// Set the emulator's fixed latency per API request.
fn set_latency(runtime: &tokio::runtime::Runtime, base: &str, ms: u64) {
    runtime.block_on(async {
        let reply = reqwest::Client::new()
            .patch(format!("{base}/_emulator/knobs"))
            .json(&serde_json::json!({"latency": {"fixed_ms": ms, "jitter_ms": 0}}))
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success(), "setting the latency");
    });
}

fn write_prompt(repo: &Path, i: usize, revision: &str) {
    let text = format!(
        "name: Prompt {i:05}\nmodel: gpt-4o\ntemperature: 0.3\nmessages:\n  - role: system\n    content: |\n      You are assistant number {i} ({revision} revision).\n      Answer briefly about {{{{topic}}}}.\n  - role: user\n    content: \"{{{{question}}}}\"\nvariables:\n  topic: billing\n  question: How do I pay?\n"
    );
    let path = repo.join(format!("prompts/p{i:05}.prompt.yaml"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// Run the binary, clearing the request log first; its wall time and peak RSS.
fn run(repo: &Path, base: &str, args: &[&str]) -> Figures {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .delete(format!("{base}/_emulator/requests"))
            .send()
            .await
            .unwrap();
    });
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_promptsync"))
        .current_dir(repo)
        .args(args)
        .args(["-q"])
        .env("RESPAN_BASE_URL", base)
        .env("RESPAN_API_KEY", "bench")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The kernel's high-water mark of the child's resident set, read until it exits.
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_rss_kib = 0;
    let status = loop {
        if let Some(hwm) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| vm_hwm_kib(&s))
        {
            peak_rss_kib = peak_rss_kib.max(hwm);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    assert!(status.success(), "promptsync {args:?} failed");
    Figures { wall, peak_rss_kib }
}

fn vm_hwm_kib(status: &str) -> Option<i64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn count_requests(runtime: &tokio::runtime::Runtime, url: &str) -> usize {
    runtime.block_on(async {
        let body: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        body["requests"].as_array().map_or(0, Vec::len)
    })
}
