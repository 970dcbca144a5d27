//! Speed and memory of a sync against the emulator (in this process, over loopback
//! HTTP), with the real release binary: a first sync of many prompts, a no-op sync,
//! a plan, and two syncs where a tenth changed, under 20 ms of emulator latency per
//! request: once a contiguous tenth, once a tenth scattered among unchanged prompts
//! (every tenth file), which must take about as long (within 1.3x): only changes may
//! take in-flight slots. Prints wall time, peak RSS of the promptsync process (its
//! VmHWM, sampled every 2 ms) and requests sent, next to the targets.
//!
//! Then targets: the wall time of a first sync of 300 prompts to two targets (two
//! projects, two emulators, at once) against the same sync to one, each request
//! under the same emulator latency; the goal is under 1.2x.
//!
//! `cargo bench --bench sync` (PROMPTS=2000 for another size).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use promptsync_emulator::{self as emulator, EmulatorConfig};

#[path = "common/mod.rs"]
mod common;
use common::{git, write_prompt};

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
    common::repository(repo, prompts);

    println!("promptsync sync benchmark: {prompts} prompts, emulator in-process, release binary");
    println!(
        "{:<34} {:>9} {:>13} {:>9}   target",
        "run", "wall", "peak RSS", "requests"
    );
    let report = |name: &str, figures: Figures, target: (Duration, i64)| {
        let requests = common::requests(&runtime, &base).len();
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
        run(&runtime, repo, &base, &["sync"]),
        (per_prompt(10), 64),
    );
    report(
        "no-op sync",
        run(&runtime, repo, &base, &["sync"]),
        (per_prompt(1), 48),
    );
    report(
        "plan, nothing to do",
        run(&runtime, repo, &base, &["plan"]),
        (per_prompt(1), 48),
    );
    common::set_latency(&runtime, &base, LATENCY_MS);
    for i in 0..changed {
        write_prompt(repo, i, "second");
    }
    git(
        repo,
        &["commit", "--quiet", "-am", "A contiguous tenth changed"],
    );
    let contiguous = run(&runtime, repo, &base, &["sync"]);
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
    let scattered = run(&runtime, repo, &base, &["sync"]);
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
    targets(&runtime);
}

/// Prompts in the two-target comparison.
const TARGET_PROMPTS: usize = 300;

/// A first sync of [`TARGET_PROMPTS`] prompts to one target, then to two at once
/// (fresh emulators each, the same latency): the ratio of their wall times.
fn targets(runtime: &tokio::runtime::Runtime) {
    let emulators: Vec<_> = (0..3)
        .map(|_| common::emulator(runtime, EmulatorConfig::default()))
        .collect();
    let bases: Vec<String> = emulators.iter().map(|e| e.base_url()).collect();
    for base in &bases {
        common::set_latency(runtime, base, LATENCY_MS);
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    common::repository(&repo, TARGET_PROMPTS);
    let target = |name: &str, base: &str| {
        format!(
            "[targets.{name}]\nbase_url = \"{base}\"\napi_key_env = \"BENCH_TARGET_KEY\"\nlive = \"branch\"\n"
        )
    };
    let one = dir.path().join("one.toml");
    std::fs::write(&one, target("staging", &bases[0])).unwrap();
    let two = dir.path().join("two.toml");
    std::fs::write(
        &two,
        target("staging", &bases[1]) + &target("production", &bases[2]),
    )
    .unwrap();
    let measure = |config: &Path| {
        let config = config.display().to_string();
        let mut command = common::promptsync(&repo, &bases[0], &["sync", "--config", &config]);
        command
            .env_remove("RESPAN_API_KEY")
            .env("BENCH_TARGET_KEY", "bench");
        common::run_measured(command).0
    };
    let single = measure(&one);
    let pair = measure(&two);
    let ratio = pair.as_secs_f64() / single.as_secs_f64();
    println!(
        "first sync of {TARGET_PROMPTS} prompts ({LATENCY_MS} ms latency): one target {:.2}s, two targets {:.2}s: {ratio:.2}x   < 1.20x: {}",
        single.as_secs_f64(),
        pair.as_secs_f64(),
        if ratio < 1.2 { "ok" } else { "MISSED" }
    );
    for emulator in emulators {
        runtime.block_on(emulator.shutdown()).unwrap();
    }
}

/// Emulator latency for the runs that compare how changes are spread.
const LATENCY_MS: u64 = 20;

/// Run the binary, clearing the request log first; its wall time and peak RSS.
fn run(runtime: &tokio::runtime::Runtime, repo: &Path, base: &str, args: &[&str]) -> Figures {
    common::clear_requests(runtime, base);
    let (wall, peak_rss_kib) = common::run_measured(common::promptsync(repo, base, args));
    Figures { wall, peak_rss_kib }
}
