//! The daemon's figures against the emulator (in this process, over loopback HTTP),
//! with the real release binary running `promptsync watch` on a repository of many
//! prompt files: how long a commit takes to become a remote version (p50/p95 over
//! many commits, from the end of `git commit` to the pass's log line), CPU time used
//! while idle, and resident memory. Printed next to the targets.
//!
//! `cargo bench --bench daemon` (PROMPTS=1000 and COMMITS=20 by default).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use promptsync_emulator::{self as emulator, EmulatorConfig};

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
    let running = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        emulator::start(EmulatorConfig::default(), listener)
            .await
            .unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "--quiet", "--initial-branch=main"]);
    for i in 0..prompts {
        write_prompt(repo, i, 0);
    }
    git(repo, &["add", "--all"]);
    git(repo, &["commit", "--quiet", "-m", "Many prompts"]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_promptsync"))
        .current_dir(repo)
        .args(["watch", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RESPAN_BASE_URL", running.base_url())
        .env("RESPAN_API_KEY", "bench")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Each line of the log with the instant it arrived.
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
            let (at, line) = log.recv_timeout(Duration::from_secs(300)).expect("a pass");
            if !line.contains("\"pass finished\"") && !line.contains("\"pass failed\"") {
                continue;
            }
            assert!(
                line.contains("\"outcome\":\"success\""),
                "a pass failed: {line}"
            );
            if revision.is_none_or(|r| line.contains(r)) {
                return at;
            }
        }
    };
    let started = Instant::now();
    wait_pass(None);
    let first = started.elapsed();
    let after_first = rss_kib(pid);

    let mut latencies = Vec::new();
    for n in 0..commits {
        write_prompt(repo, (n * 37) % prompts, n + 1);
        git(
            repo,
            &["commit", "--quiet", "--all", "-m", &format!("Change {n}")],
        );
        let committed = Instant::now();
        let head = git_output(repo, &["rev-parse", "HEAD"]);
        let seen = wait_pass(Some(&head));
        latencies.push(seen.saturating_duration_since(committed));
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];

    // Idle: no event for 10 s; the CPU time the process used meanwhile.
    std::thread::sleep(Duration::from_secs(1));
    let cpu_before = cpu_ticks(pid);
    let idle = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let idle_cpu = ticks_to_secs(cpu_ticks(pid) - cpu_before);
    let idle_pct = idle_cpu / idle.elapsed().as_secs_f64() * 100.0;
    let (rss, hwm) = rss_kib(pid);
    let (anon, file) = rss_parts_kib(pid);

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
        after_first.0 as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        verdict(rss < 20 * 1024)
    );
    println!(
        "  of which its own memory (RssAnon) {:>6.1} MiB, pages of the binary and libraries (RssFile) {:>6.1} MiB",
        anon as f64 / 1024.0,
        file as f64 / 1024.0
    );

    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "promptsync watch exited with {status}");
    runtime.block_on(running.shutdown()).unwrap();
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
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

/// RssAnon and RssFile of `pid` (memory of its own, and pages of the binary and
/// libraries it touched), in KiB.
fn rss_parts_kib(pid: u32) -> (i64, i64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// VmRSS and VmHWM of `pid`, in KiB.
fn rss_kib(pid: u32) -> (i64, i64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn ticks_to_secs(ticks: u64) -> f64 {
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}
