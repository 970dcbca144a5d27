//! A read that never returns (a hung NFS mount; here a FIFO in place of the git dir's
//! `config`, whose open waits for a writer that never comes) never keeps the daemon
//! from stopping (issue 18, points 10 and 11): the signal handlers are in place before
//! anything that can block, and every wait of the loop gives way to the shutdown. A
//! test sees the daemon wait in the kernel (`wait_for_partner` in a thread's
//! `/proc/<pid>/task/<tid>/wchan`), and skips where the kernel hides that.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{DEADLINE, one_prompt, wait_for_text};
use crate::support::scenario::{Scenario, prompt};
use crate::support::wait_until;

/// `O_NONBLOCK` (Linux): opening a FIFO's write end this way wakes a reader that waits
/// in `open`, and fails at once when there is none.
const O_NONBLOCK: i32 = 0o4000;

/// Whether the kernel shows where a process of ours waits (some hardened kernels do
/// not): a `sleep` child must show up as waiting somewhere.
fn wchan_readable() -> bool {
    let Ok(mut sleeper) = Command::new("sleep").arg("30").spawn() else {
        return false;
    };
    let wchan = format!("/proc/{}/wchan", sleeper.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut shown = false;
    while !shown && Instant::now() < deadline {
        shown =
            std::fs::read_to_string(&wchan).is_ok_and(|w| !w.trim().is_empty() && w.trim() != "0");
        if !shown {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    shown
}

/// Whether a thread of `pid` waits to open a FIFO.
fn waits_on_a_fifo(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("wchan"))
            .is_ok_and(|w| w.contains("wait_for_partner") || w.contains("fifo_open"))
    })
}

/// The repository's `.git/config` replaced by a FIFO (git opens it to open the
/// repository); put back on drop, after waking whoever waits on it.
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

    /// Wait until process `pid` waits to open the FIFO.
    fn wait_for_reader(&self, pid: u32) {
        wait_until(DEADLINE, "the daemon to wait on the FIFO", || {
            waits_on_a_fifo(pid).then_some(())
        });
    }
}

impl Drop for HungConfig {
    fn drop(&mut self) {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(&self.path);
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::write(&self.path, &self.saved);
    }
}

#[test]
fn a_signal_while_starting_on_a_hung_repository_stops_the_daemon_cleanly() {
    if !wchan_readable() {
        eprintln!("skipped: this kernel hides where threads wait (/proc/*/wchan)");
        return;
    }
    let s = one_prompt();
    let hung = HungConfig::new(s.repo.path());
    let mut child = s
        .watch_command(&["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    hung.wait_for_reader(child.id());
    let sent = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_until(Duration::from_secs(5), "the daemon to exit", || {
        child.try_wait().unwrap()
    });
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
    if !wchan_readable() {
        eprintln!("skipped: this kernel hides where threads wait (/proc/*/wchan)");
        return;
    }
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
    hung.wait_for_reader(daemon.pid());
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 0}}));
    wait_for_text(&s, "A", "second");
    let sent = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
}

#[test]
fn a_second_signal_exits_at_once_while_a_pass_waits_on_a_hung_repository() {
    if !wchan_readable() {
        eprintln!("skipped: this kernel hides where threads wait (/proc/*/wchan)");
        return;
    }
    let s = Scenario::new();
    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "first"));
    s.repo.commit("Add A");
    let mut daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    let hung = HungConfig::new(s.repo.path());
    let (code, _) = daemon.post("/reconcile");
    assert_eq!(code, 202);
    hung.wait_for_reader(daemon.pid());
    daemon.signal("TERM");
    wait_until(DEADLINE, "the first signal to be taken", || {
        daemon.log_text().contains("shutting down").then_some(())
    });
    assert!(daemon.running(), "the pass may still finish");
    let sent = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(1), "{}", daemon.log_text());
}
