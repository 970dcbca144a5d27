//! A remote source's costs, with the real release binary: a 10,000-file repository
//! (10,000 text files, 50 of them prompts) served by `git daemon` on loopback, fetched
//! into a fresh mirror and synced (`sync --source git://...`); the same again with the
//! remote unchanged (one ref listing, no fetch); and after a commit that changes one
//! prompt (a listing and a one-commit fetch). `git clone --bare --depth 1` of the same
//! repository is the reference. Prints wall time and peak RSS next to the targets.
//!
//! `cargo bench --bench source` (FILES=20000 for another size).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use promptsync_emulator::EmulatorConfig;

#[path = "common/mod.rs"]
mod common;
use common::{git, write_prompt};

const PROMPTS: usize = 50;

fn main() {
    let files: usize = std::env::var("FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = common::emulator(&runtime, EmulatorConfig::default());
    let base = running.base_url();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("served");
    let repo = root.join("prompts");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    for i in 0..files - PROMPTS {
        let path = repo.join(format!("docs/d{:03}/f{i:05}.md", i / 100));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            format!(
                "# Note {i}\n\n{}\n",
                "Lorem ipsum dolor sit amet. ".repeat(1 + i % 40)
            ),
        )
        .unwrap();
    }
    for i in 0..PROMPTS {
        write_prompt(&repo, i, "first");
    }
    git(&repo, &["add", "--all"]);
    git(&repo, &["commit", "--quiet", "-m", "A large repository"]);

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // git-daemon itself, not `git daemon`, which would leave it running when killed.
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .output()
        .unwrap()
        .stdout;
    let exec_path = String::from_utf8(exec_path).unwrap();
    let mut daemon = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", root.display()))
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "git daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("git://127.0.0.1:{port}/prompts");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let sync = || {
        let mut command = common::promptsync(&work, &base, &["sync", "--source", &url]);
        command.env("PROMPTSYNC_SOURCE__CACHE_DIR", dir.path().join("cache"));
        common::run_measured(command)
    };

    println!(
        "promptsync remote source benchmark: {files} files ({PROMPTS} prompts), git daemon on loopback, release binary"
    );
    println!("{:<44} {:>9} {:>13}   target", "run", "wall", "peak RSS");
    let report = |name: &str, (wall, peak): (Duration, i64), target: Duration| {
        println!(
            "{name:<44} {:>8.2}s {:>9.1} MiB   ≤ {:.1}s: {}",
            wall.as_secs_f64(),
            peak as f64 / 1024.0,
            target.as_secs_f64(),
            if wall <= target { "ok" } else { "MISSED" }
        );
    };
    report(
        "first look: fetch and sync",
        sync(),
        Duration::from_secs(10),
    );
    report(
        "unchanged remote: one listing, no fetch",
        sync(),
        Duration::from_secs(2),
    );
    write_prompt(&repo, 0, "second");
    git(
        &repo,
        &["commit", "--quiet", "--all", "-m", "One prompt changed"],
    );
    report(
        "one commit: listing, fetch, one new version",
        sync(),
        Duration::from_secs(3),
    );

    let clone = dir.path().join("clone.git");
    let started = Instant::now();
    let status = Command::new("git")
        .args(["clone", "--quiet", "--bare", "--depth", "1", &url])
        .arg(&clone)
        .status()
        .unwrap();
    assert!(status.success());
    println!(
        "{:<44} {:>8.2}s   (git CLI, for reference)",
        "git clone --bare --depth 1",
        started.elapsed().as_secs_f64()
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    drop(running);
}
