//! The loop's promises under timings that used to break them (issue 18, points 2, 3
//! and 8): a full pass asked for during a pass is never downgraded by a later commit;
//! the resync comes however often commits land, and does not hammer a backoff; a
//! prompt whose read failed is retried.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{DEADLINE, one_prompt, text_of, wait_for_text, wait_reconciling};
use crate::support::scenario::{Scenario, prompt};
use crate::support::wait_until;

fn reasons_of(pass: &Value) -> &str {
    pass["reasons"].as_str().unwrap_or_default()
}

#[test]
fn a_full_pass_asked_for_during_a_pass_is_not_downgraded_by_a_later_commit() {
    let s = one_prompt();
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    // Each request takes 700 ms: the commit's pass outlasts what follows.
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 700}}));
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    s.emu.clear_requests();
    let second = s.repo.commit("Second A");
    wait_reconciling(&daemon);
    // The commit's pass has read the repository once it talks to the API.
    wait_until(DEADLINE, "the pass to reach the API", || {
        (!s.emu.requests().is_empty()).then_some(())
    });
    let (code, body) = daemon.post("/reconcile");
    assert_eq!(code, 202, "{body}");
    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "third"));
    let third = s.repo.commit("Third A");
    let follow_up = daemon.wait_pass(DEADLINE, "the pass after the request", |p| {
        p["revision"] == third.as_str()
    });
    let first = daemon.wait_pass(DEADLINE, "the commit's pass", |p| {
        p["revision"] == second.as_str()
    });
    assert_eq!(first["kind"], "incremental", "{first}");
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 0}}));
    assert_eq!(
        follow_up["kind"], "full",
        "the request was for a full pass: {follow_up}"
    );
    assert!(reasons_of(&follow_up).contains("http"), "{follow_up}");
    assert_eq!(follow_up["trigger"], "http", "{follow_up}");
    wait_for_text(&s, "A", "third");
}

#[test]
fn commits_more_often_than_the_resync_interval_do_not_starve_it() {
    let s = Scenario::new();
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "commit 0"));
    s.repo
        .write("prompts/b.prompt.yaml", &prompt("B", "from git"));
    s.repo.commit("A and B");
    let daemon = s.watch_with(&[], &[("PROMPTSYNC_WATCH__RESYNC_INTERVAL", "2s")]);
    daemon.wait_ready(DEADLINE);
    wait_for_text(&s, "B", "from git");
    // Someone edits B in the Respan UI: only a full pass sees it.
    let b = s.prompt_named("B")["id"].as_str().unwrap().to_owned();
    s.emu.create_version(
        &b,
        json!({"model": "gpt-4o", "messages": [{"role": "system", "content": "edited in the UI"}]}),
    );
    // Commits keep coming, each well inside the resync interval of the one before.
    let started = Instant::now();
    for n in 1.. {
        if text_of(&s.newest_of("B")) == "from git" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the UI edit of B was never corrected while commits kept coming: {:#?}",
            daemon.passes()
        );
        s.repo.write(
            "prompts/a.prompt.yaml",
            &prompt("A", &format!("commit {n}")),
        );
        let head = s.repo.commit(&format!("Commit {n}"));
        daemon.wait_pass(DEADLINE, "the commit's pass", |p| {
            p["revision"] == head.as_str()
        });
    }
    let resync = daemon
        .passes()
        .into_iter()
        .find(|p| reasons_of(p).contains("resync"))
        .unwrap_or_else(|| panic!("a resync pass: {:#?}", daemon.passes()));
    assert_eq!(resync["kind"], "full", "{resync}");
}

#[test]
fn the_resync_timer_does_not_hammer_a_backoff() {
    let s = one_prompt();
    let daemon = s.watch_with(
        &[],
        &[
            ("PROMPTSYNC_WATCH__RESYNC_INTERVAL", "1s"),
            ("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "100ms"),
        ],
    );
    daemon.wait_ready(DEADLINE);
    s.emu
        .inject(json!({"kind": "status", "status": 503, "times": 100000}));
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "during the outage"));
    s.repo.commit("A during an outage");
    let failed = wait_until(DEADLINE, "four failed passes", || {
        let failed: Vec<Value> = daemon
            .passes()
            .into_iter()
            .filter(|p| p["outcome"] == "transient")
            .collect();
        (failed.len() >= 4).then_some(failed)
    });
    // From the log's own clock: when each pass ended, and when the next one began.
    let ended = |pass: &Value| {
        let at = pass["timestamp"].as_str().unwrap();
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap()
    };
    for pair in failed.windows(2) {
        let (first, next) = (&pair[0], &pair[1]);
        let retry_in = time::Duration::milliseconds(first["retry_in_ms"].as_i64().unwrap());
        let began =
            ended(next) - time::Duration::milliseconds(next["duration_ms"].as_i64().unwrap());
        let waited = began - ended(first);
        // The log's timestamps and durations are rounded apart: a few ms of slack.
        assert!(
            waited + time::Duration::milliseconds(5) >= retry_in,
            "a pass began {waited} after one that said to retry in {retry_in}: {failed:#?}"
        );
    }
    let last = &failed[3];
    assert!(
        last["retry_in_ms"].as_u64().unwrap() >= 1500,
        "the backoff grew past the resync interval: {last}"
    );
    s.emu.http().admin("DELETE", "/_emulator/faults", None);
    wait_for_text(&s, "A", "during the outage");
}

#[test]
fn a_prompt_whose_read_failed_is_retried_with_backoff() {
    let s = one_prompt();
    let daemon = s.watch_with(&[], &[("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "200ms")]);
    daemon.wait_ready(DEADLINE);
    wait_for_text(&s, "A", "first");
    // The next list sends A's newest version as a summary, and reading it in full
    // fails past the retry budget.
    s.emu.inject(json!([
        {"method": "POST", "path": "/api/prompts/list/", "kind": "rewrite",
            "pointer": "/results/0/current_version/messages"},
        {"method": "GET", "path": "/api/prompts/*/versions/*/", "kind": "status",
            "status": 503, "times": 1000}
    ]));
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    let head = s.repo.commit("Second A");
    let partial = daemon.wait_pass(DEADLINE, "the commit's pass", |p| {
        p["revision"] == head.as_str()
    });
    assert_eq!(partial["outcome"], "partial", "{partial}");
    assert_eq!(partial["failed"], 1, "{partial}");
    assert!(
        partial["retry_in_ms"].as_u64().is_some(),
        "a read that may pass is retried: {partial}"
    );
    let retried = daemon.wait_pass(DEADLINE, "the retry", |p| p["trigger"] == "retry");
    assert_eq!(retried["outcome"], "success", "{retried}");
    wait_for_text(&s, "A", "second");
    let status = daemon.status();
    assert_eq!(status["conditions"][0]["status"], "True", "{status:#}");
    assert_eq!(status["conditions"][1]["reason"], "Idle", "{status:#}");
}

#[test]
fn a_prompt_that_failed_for_good_is_not_retried() {
    let s = one_prompt();
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    // A file that names a prompt id that does not exist: no retry can mend that.
    s.repo.write(
        "prompts/b.prompt.yaml",
        "prompt_id: prm_nothing_here\nmodel: gpt-4o\nmessages:\n  - role: system\n    content: b\n",
    );
    let head = s.repo.commit("B names a prompt that does not exist");
    let pass = daemon.wait_pass(DEADLINE, "the commit's pass", |p| {
        p["revision"] == head.as_str()
    });
    assert_eq!(pass["outcome"], "partial", "{pass}");
    assert!(pass["retry_in_ms"].is_null(), "{pass}");
    let status = daemon.status();
    assert_eq!(status["conditions"][1]["reason"], "Idle", "{status:#}");
}
