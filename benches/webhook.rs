//! Push to new version: how long after a commit lands on the remote its prompt is a
//! new version in the emulator, over 20 pushes, for `promptsync watch` with a remote
//! source (`git daemon` on loopback, release binary): with a webhook
//! (`POST /hooks/generic`, signed as Standard Webhooks, sent right after the push; the
//! poll an hour away) and with polling alone (`source.interval = 1s`, the shortest it
//! takes). Prints p50 and p95 of each next to the goal (webhook: under 1 s).
//!
//! `cargo bench --bench webhook` (PUSHES=50 for more).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use promptsync_emulator::EmulatorConfig;

#[path = "common/mod.rs"]
mod common;
use common::{git, git_output, write_prompt};

const PROMPTS: usize = 20;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn main() {
    let pushes: usize = std::env::var("PUSHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
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
    common::repository(&repo, PROMPTS);
    let (mut daemon, url) = git_daemon(&root);
    let secret = dir.path().join("hook-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    println!(
        "promptsync push-to-new-version benchmark: {pushes} pushes, {PROMPTS} prompts, git daemon on loopback, release binary"
    );
    println!("{:<40} {:>8} {:>8}   goal", "mode", "p50", "p95");
    let mut round = 0;
    for (mode, webhook) in [
        ("webhook (poll an hour away)", true),
        ("polling alone (interval 1s)", false),
    ] {
        let cache = dir.path().join(format!("cache-{webhook}"));
        let secret_file = secret.to_str().unwrap().to_owned();
        let cache = cache.to_str().unwrap().to_owned();
        let mut env = vec![
            ("PROMPTSYNC_SOURCE__URL", url.as_str()),
            ("PROMPTSYNC_SOURCE__CACHE_DIR", cache.as_str()),
            (
                "PROMPTSYNC_WEBHOOK__GENERIC_SECRET_FILE",
                secret_file.as_str(),
            ),
            ("PROMPTSYNC_LOG__LEVEL", "info"),
        ];
        env.push((
            "PROMPTSYNC_SOURCE__INTERVAL",
            if webhook { "1h" } else { "1s" },
        ));
        let watch = common::Watch::start(&work, &base, &env);
        let addr = watch.listening();
        watch.wait_pass(None);
        let mut latencies = Vec::with_capacity(pushes);
        for _ in 0..pushes {
            round += 1;
            write_prompt(&repo, round % PROMPTS, format!("push {round}"));
            git(
                &repo,
                &["commit", "--quiet", "--all", "-m", &format!("push {round}")],
            );
            let commit = git_output(&repo, &["rev-parse", "HEAD"]);
            let pushed = Instant::now();
            if webhook {
                hook(&runtime, &addr, round);
            }
            let synced = watch.wait_pass(Some(commit.trim()));
            latencies.push(synced.saturating_duration_since(pushed));
        }
        watch.stop();
        latencies.sort();
        let p50 = percentile(&latencies, 50);
        let p95 = percentile(&latencies, 95);
        let verdict = if webhook {
            let goal = Duration::from_secs(1);
            format!("p95 < 1s: {}", if p95 < goal { "ok" } else { "MISSED" })
        } else {
            "(no goal: bounded by source.interval plus the pass)".to_owned()
        };
        println!(
            "{mode:<40} {:>7.3}s {:>7.3}s   {verdict}",
            p50.as_secs_f64(),
            p95.as_secs_f64()
        );
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    drop(running);
}

/// The `p`th percentile of sorted `values` (nearest rank).
fn percentile(values: &[Duration], p: usize) -> Duration {
    let rank = (p * values.len()).div_ceil(100).max(1);
    values[rank - 1]
}

/// `POST /hooks/generic` on the daemon at `addr`, signed; panics unless answered 202.
fn hook(runtime: &tokio::runtime::Runtime, addr: &str, round: usize) {
    let body = format!(r#"{{"ref": "refs/heads/main", "round": {round}}}"#);
    let id = format!("msg_bench_{round}");
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signature = promptsync::sign_webhook(SECRET, &id, at, body.as_bytes()).unwrap();
    let status = runtime.block_on(async {
        promptsync::api::install_tls_provider();
        reqwest::Client::new()
            .post(format!("http://{addr}/hooks/generic"))
            .header("webhook-id", id)
            .header("webhook-timestamp", at.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status.as_u16(), 202, "the webhook was not accepted");
}

/// `git-daemon` serving `root` on a loopback port, and the URL of `root/prompts`.
fn git_daemon(root: &Path) -> (Child, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .output()
        .unwrap()
        .stdout;
    let exec_path = String::from_utf8(exec_path).unwrap();
    let daemon = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", root.display()))
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "git daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (daemon, format!("git://127.0.0.1:{port}/prompts"))
}
