//! A read that never returns (a hung NFS mount, here a FIFO in the git dir that git
//! opens and reads) never keeps the daemon from stopping (issue 18, points 10 and 11):
//! the signal handlers are in place before anything that can block, and every wait of
//! the loop gives way to the shutdown. The test holds the FIFO's write end open and
//! writes nothing, so whoever reads it waits until the test ends.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{DEADLINE, one_prompt, wait_for_text};
use crate::support::scenario::{Scenario, prompt};
use crate::support::wait_until;

/// `O_NONBLOCK` (Linux): opening a FIFO's write end this way fails until a reader has
/// it open, so it tells when the daemon reached the read.
const O_NONBLOCK: i32 = 0o4000;

/// The repository's `.git/config` replaced by a FIFO (git reads it to open the
/// repository); put back on drop.
struct HungConfig {
    path: PathBuf,
    saved: Vec<u8>,
}

impl HungConfig {
    fn new(repo: &Path) -> HungConfig {
        let path = repo.join(".git/config");
        let saved = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let made = Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(made.success(), "mkfifo");
        HungConfig { path, saved }
    }

    /// Wait until someone opened the FIFO to read it; the returned write end keeps
    /// the read waiting for as long as it is held.
    fn wait_for_reader(&self) -> File {
        wait_until(DEADLINE, "the daemon to read the FIFO", || {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(O_NONBLOCK)
                .open(&self.path)
                .ok()
        })
    }
}

impl Drop for HungConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::write(&self.path, &self.saved);
    }
}

#[test]
fn a_signal_while_starting_on_a_hung_repository_stops_the_daemon_cleanly() {
    let s = one_prompt();
    let hung = HungConfig::new(s.repo.path());
    let mut child = s
        .watch_command(&["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let writer = hung.wait_for_reader();
    let sent = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_until(Duration::from_secs(5), "the daemon to exit", || {
        child.try_wait().unwrap()
    });
    drop(writer);
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(
        status.code(),
        Some(0),
        "a clean stop, not death by the signal: {status:?}"
    );
}

#[test]
fn a_signal_while_the_watches_wait_on_a_hung_repository_stops_the_daemon_cleanly() {
    let s = one_prompt();
    let mut daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    // The commit's pass reads the repository, then waits on the API; meanwhile the
    // git dir's config becomes a FIFO, which the rewatch after the pass opens.
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 700}}));
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    s.emu.clear_requests();
    s.repo.commit("Second A");
    wait_until(DEADLINE, "the pass to reach the API", || {
        (!s.emu.requests().is_empty()).then_some(())
    });
    let hung = HungConfig::new(s.repo.path());
    let writer = hung.wait_for_reader();
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 0}}));
    wait_for_text(&s, "A", "second");
    let sent = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    drop(writer);
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
}

#[test]
fn a_second_signal_exits_at_once_while_a_pass_waits_on_a_hung_repository() {
    let s = Scenario::new();
    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "first"));
    s.repo.commit("Add A");
    let mut daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    let hung = HungConfig::new(s.repo.path());
    let (code, _) = daemon.post("/reconcile");
    assert_eq!(code, 202);
    let writer = hung.wait_for_reader();
    daemon.signal("TERM");
    wait_until(DEADLINE, "the first signal to be taken", || {
        daemon.log_text().contains("shutting down").then_some(())
    });
    assert!(daemon.running(), "the pass may still finish");
    let sent = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    drop(writer);
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(1), "{}", daemon.log_text());
}
