//! Shutdown and kills: SIGTERM lets the running pass finish, a second signal or the
//! deadline exits at once, a SIGKILL mid-pass and a restart converge with no
//! duplicate; and a burst of commits during a slow pass collapses into one or two
//! follow-up passes.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{DEADLINE, one_prompt, text_of, wait_for_text, wait_reconciling};
use crate::support::scenario::{Scenario, prompt};
use crate::support::wait_until;

#[test]
fn sigterm_during_a_pass_lets_it_finish_then_exits_zero() {
    let s = one_prompt();
    let mut daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 400}}));
    s.repo.write(
        "prompts/a.prompt.yaml",
        &prompt("A", "finished on the way out"),
    );
    s.repo.commit("A, then SIGTERM");
    wait_reconciling(&daemon);
    let sent = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "within watch.shutdown_timeout"
    );
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 0}}));
    assert_eq!(text_of(&s.newest_of("A")), "finished on the way out");
}

#[test]
fn a_second_signal_exits_at_once() {
    let s = one_prompt();
    let mut daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 5000}}));
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "never mind"));
    s.repo.commit("A, then two signals");
    wait_reconciling(&daemon);
    daemon.signal("TERM");
    wait_until(DEADLINE, "the first signal to be taken", || {
        daemon.log_text().contains("shutting down").then_some(())
    });
    let sent = Instant::now();
    daemon.signal("INT");
    let status = daemon.wait_exit(DEADLINE);
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(1));
    // The log says what the second signal did, and with which code the process ends.
    let said = daemon
        .logs()
        .into_iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("second signal"))
        })
        .unwrap_or_else(|| panic!("the second signal is logged:\n{}", daemon.log_text()));
    assert_eq!(said["signal"], "SIGINT", "{said}");
    assert_eq!(said["exit_code"], 1, "{said}");
    assert!(
        daemon.log_text().contains("the running pass is dropped"),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn the_shutdown_deadline_drops_a_pass_that_takes_too_long() {
    let s = one_prompt();
    let mut daemon = s.watch_with(&[], &[("PROMPTSYNC_WATCH__SHUTDOWN_TIMEOUT", "1s")]);
    daemon.wait_ready(DEADLINE);
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 10000}}));
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "too slow"));
    s.repo.commit("A, slowly");
    wait_reconciling(&daemon);
    let sent = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(DEADLINE);
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(status.code(), Some(1));
    let said = daemon
        .logs()
        .into_iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("watch.shutdown_timeout passed"))
        })
        .unwrap_or_else(|| panic!("the deadline is logged:\n{}", daemon.log_text()));
    assert_eq!(said["exit_code"], 1, "{said}");
}

#[test]
fn sigkill_mid_pass_and_a_restart_converge_with_no_duplicate() {
    let s = Scenario::new();
    for i in 0..6 {
        s.repo.write(
            &format!("prompts/p{i}.prompt.yaml"),
            &prompt(&format!("P{i}"), "one"),
        );
    }
    s.repo.commit("Six prompts");
    let mut daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 150}}));
    s.emu.clear_requests();
    for i in 0..6 {
        s.repo.write(
            &format!("prompts/p{i}.prompt.yaml"),
            &prompt(&format!("P{i}"), "two"),
        );
    }
    s.repo.commit("All six change");
    wait_until(DEADLINE, "some creates to be sent", || {
        (s.emu.change_requests().len() >= 2).then_some(())
    });
    daemon.signal("KILL");
    daemon.wait_exit(DEADLINE);
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 0}}));
    let restarted = s.watch(&[]);
    restarted.wait_ready(DEADLINE);
    for i in 0..6 {
        let name = format!("P{i}");
        wait_for_text(&s, &name, "two");
        assert_eq!(
            s.versions_of(&name).len(),
            2,
            "{name}: one version per content"
        );
    }
}

#[test]
fn fifty_commits_during_a_slow_pass_make_at_most_two_more_passes() {
    let s = one_prompt();
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    let before = daemon.passes().len();
    // Each request takes 1.5 s, so the pass outlasts the burst below.
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 1500}}));
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "commit 0"));
    s.repo.commit("Commit 0");
    wait_reconciling(&daemon);
    for n in 1..50 {
        s.repo.write(
            "prompts/a.prompt.yaml",
            &prompt("A", &format!("commit {n}")),
        );
        s.repo
            .git(["commit", "--quiet", "--all", "-m", &format!("Commit {n}")]);
    }
    let last = s.repo.head();
    wait_until(
        Duration::from_secs(60),
        "the last commit to be synced",
        || {
            daemon
                .passes()
                .into_iter()
                .any(|p| p["revision"] == last.as_str())
                .then_some(())
        },
    );
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 0}}));
    assert_eq!(text_of(&s.newest_of("A")), "commit 49");
    let after = daemon.passes().len() - before;
    assert!(
        after <= 3,
        "the slow pass and at most two more, not {after}: {:#?}",
        &daemon.passes()[before..]
    );
}
