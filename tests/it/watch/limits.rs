//! Kernel limits the watcher meets, told apart: the limit on inotify instances (poll,
//! and say how to raise it) is not the process running out of file descriptors (poll
//! meanwhile, try events again once descriptors are free). Both with the real binary:
//! a user namespace of our own lowers the inotify limit for itself alone; a shell with
//! a low `ulimit -n` and inherited descriptors starts the daemon nearly out of them.

use super::{DEADLINE, one_prompt, wait_for_text};
use crate::support::daemon::Daemon;
use crate::support::scenario::{Scenario, prompt};
use crate::support::wait_until;

/// Wait until the watcher has begun (it reports something other than `starting`).
fn watcher_status(daemon: &Daemon) -> serde_json::Value {
    wait_until(DEADLINE, "the watcher to begin", || {
        let status = daemon.status();
        (status["watcher"] != "starting").then_some(status)
    })
}

#[test]
fn the_inotify_instance_limit_is_named_and_polled_for() {
    let s = one_prompt();
    let mut inner = s.watch_command(&["--listen", "127.0.0.1:0"]);
    inner.env("PROMPTSYNC_WATCH__POLL_INTERVAL", "200ms");
    let Some(command) = super::with_inotify_limit(&inner, "max_inotify_instances", 0) else {
        return;
    };
    let daemon = Daemon::attach(command);
    daemon.wait_ready(DEADLINE);
    let status = watcher_status(&daemon);
    assert_eq!(status["watcher"], "polling", "{status:#}");
    let reason = status["watcher_reason"].as_str().unwrap();
    assert!(reason.contains("inotify instances"), "{reason}");
    let log = daemon.log_text();
    assert!(log.contains("max_user_instances"), "{log}");
    assert!(!log.contains("out of file descriptors"), "{log}");
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "polled"));
    s.repo.commit("A without inotify");
    wait_for_text(&s, "A", "polled");
}

/// The daemon under `ulimit -n 64` with `fill` descriptors inherited from the shell.
fn nearly_out_of_descriptors(s: &Scenario, fill: usize) -> Result<Daemon, String> {
    let mut inner = s.watch_command(&["--listen", "127.0.0.1:0"]);
    inner
        .env("PROMPTSYNC_WATCH__POLL_INTERVAL", "200ms")
        // The watcher says at debug level when its watches are in place.
        .env(
            "PROMPTSYNC_LOG__LEVEL",
            "info,promptsync::daemon::watcher=debug",
        );
    let line = format!(
        "ulimit -n 64 || exit 90; i=0; while [ $i -lt {fill} ]; do exec {{fd}}</dev/null || exit 91; i=$((i+1)); done; exec \"$0\" \"$@\""
    );
    Daemon::try_attach(super::wrapped(&inner, "bash", &[], &line))
}

#[test]
fn running_out_of_descriptors_is_not_taken_for_the_inotify_limit() {
    let s = one_prompt();
    // More inherited descriptors each round, until the daemon still listens but has
    // too few left for the watcher (it needs three at once).
    let mut found = None;
    for fill in 20..62 {
        let daemon = match nearly_out_of_descriptors(&s, fill) {
            Ok(daemon) => daemon,
            Err(log) => panic!(
                "with {fill} descriptors filled the daemon no longer starts, and no fewer \
                 made the watcher fall back:\n{log}"
            ),
        };
        let fell_back = wait_until(DEADLINE, "the watcher to begin or fall back", || {
            daemon.logs().iter().find_map(|l| {
                let message = l["message"].as_str()?;
                if message.starts_with("cannot watch") {
                    Some(true)
                } else {
                    (message == "watching").then_some(false)
                }
            })
        });
        if fell_back {
            found = Some(daemon);
            break;
        }
    }
    let mut daemon = found.expect("some fill leaves the daemon short of descriptors");
    let log = daemon.log_text();
    assert!(log.contains("out of file descriptors"), "{log}");
    assert!(
        !log.contains("max_user_instances") && !log.contains("max_user_watches"),
        "not advice about inotify limits: {log}"
    );

    // Descriptors come back (a higher limit, here): events are tried again and used.
    let raised = std::process::Command::new("prlimit")
        .args(["--pid", &daemon.pid().to_string(), "--nofile=4096:4096"])
        .status();
    if !raised.is_ok_and(|status| status.success()) {
        eprintln!(
            "skipped the recovery: cannot raise another process's hard limit here (prlimit needs CAP_SYS_RESOURCE)"
        );
        return;
    }
    wait_until(DEADLINE, "events again", || {
        daemon
            .log_text()
            .contains("watching for file system events again")
            .then_some(())
    });
    daemon.wait_ready(DEADLINE);
    let status = daemon.status();
    assert_eq!(status["watcher"], "events", "{status:#}");
    assert_eq!(status["watcher_reason"], serde_json::Value::Null);
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "descriptors back"));
    s.repo.commit("A after the squeeze");
    wait_for_text(&s, "A", "descriptors back");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(DEADLINE).code(), Some(0));
}
