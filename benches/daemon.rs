//! The daemon's figures against the emulator (in this process, over loopback HTTP),
//! with the real release binary running `promptsync watch` on a repository of many
//! prompt files: how long a commit takes to become a remote version (p50/p95 over
//! many commits, from the end of `git commit` to the pass's log line), CPU time used
//! while idle, and resident memory. Printed next to the targets.
//!
//! `cargo bench --bench daemon` (PROMPTS=1000 and COMMITS=20 by default).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use promptsync_emulator::EmulatorConfig;

#[path = "common/mod.rs"]
mod common;
use common::{Watch, git, git_output, status_kib, write_prompt};

fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let prompts = env("PROMPTS", 1000);
    let commits = env("COMMITS", 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = common::emulator(&runtime, EmulatorConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    common::repository(repo, prompts);

    let watch = Watch::start(repo, &running.base_url(), &[]);
    let pid = watch.pid();
    let rss = || {
        let field = |name| status_kib(pid, name).unwrap_or(0) as f64 / 1024.0;
        (
            field("VmRSS:"),
            field("VmHWM:"),
            field("RssAnon:"),
            field("RssFile:"),
        )
    };
    let started = Instant::now();
    watch.wait_pass(None);
    let first = started.elapsed();
    let after_first = rss().0;

    let mut latencies = Vec::new();
    for n in 0..commits {
        write_prompt(repo, (n * 37) % prompts, n + 1);
        git(
            repo,
            &["commit", "--quiet", "--all", "-m", &format!("Change {n}")],
        );
        let committed = Instant::now();
        let head = git_output(repo, &["rev-parse", "HEAD"]);
        let seen = watch.wait_pass(Some(&head));
        latencies.push(seen.saturating_duration_since(committed));
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];

    // Idle: no event for 10 s; the CPU time the process used meanwhile.
    std::thread::sleep(Duration::from_secs(1));
    let cpu_before = common::cpu(pid);
    let idle = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let idle_cpu = common::cpu(pid).saturating_sub(cpu_before).as_secs_f64();
    let idle_pct = idle_cpu / idle.elapsed().as_secs_f64() * 100.0;
    let (idle_rss, hwm, anon, file) = rss();

    println!(
        "promptsync watch benchmark: {prompts} prompt files, {commits} commits, release binary, emulator in-process"
    );
    println!(
        "first pass (all new)          {:>9.2} s",
        first.as_secs_f64()
    );
    println!(
        "commit → version  p50 {:>6.0} ms   p95 {:>6.0} ms   max {:>6.0} ms   target p50 < debounce (500 ms) + 200 ms: {}",
        ms(pct(0.5)),
        ms(pct(0.95)),
        ms(*latencies.last().unwrap()),
        verdict(ms(pct(0.5)) < 700.0)
    );
    println!(
        "idle CPU over 10 s {:>9.3} s ({idle_pct:.2}%)   target ~0%: {}",
        idle_cpu,
        verdict(idle_pct < 0.5)
    );
    println!(
        "RSS after the first pass {:>6.1} MiB; idle {:>6.1} MiB (peak {:>6.1} MiB)   target < 20 MiB: {}",
        after_first,
        idle_rss,
        hwm,
        verdict(idle_rss < 20.0)
    );
    println!(
        "  of which its own memory (RssAnon) {:>6.1} MiB, pages of the binary and libraries (RssFile) {:>6.1} MiB",
        anon, file
    );

    watch.stop();
    runtime.block_on(running.shutdown()).unwrap();
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
