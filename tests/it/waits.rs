//! Every wait is bounded (issue 17, point 4) and one classification decides what comes
//! next (issue 18, point 12): the real binary against a hostile server of the suite's
//! own (`support::proxy`) and the emulator's faults. A server's `Retry-After` counts
//! against the retry budget (past it the request fails at once, naming the wait, and
//! the daemon says until when it is rate limited); a silent server costs one timeout
//! per attempt and never pushes a request past its deadline; a reply no retry can mend
//! stalls the daemon instead of a retry storm.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::hostile::measure;
use crate::support::promptsync_command;
use crate::support::proxy::{Act, Proxy, Seen};
use crate::support::scenario::{KEY, Scenario, prompt};
use crate::support::wait_until;

/// Long enough for a pass on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// A and B synced, then both changed: a pass creates a version of each.
fn two_changed() -> Scenario {
    let s = Scenario::new();
    s.repo.write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.write("b.prompt.yaml", &prompt("B", "b"));
    s.repo.commit("A and B");
    s.sync();
    s.repo.write("a.prompt.yaml", &prompt("A", "a, revised"));
    s.repo.write("b.prompt.yaml", &prompt("B", "b, revised"));
    s.repo.commit("Revise A and B");
    s
}

/// A create-version request.
fn creates_version(seen: &Seen) -> bool {
    seen.method == "POST" && seen.path.ends_with("/versions/")
}

/// A proxy that answers the first create-version request with 429 and `retry_after`,
/// and passes everything else through.
fn throttle_first_version(s: &Scenario, retry_after: &str) -> Proxy {
    let answered = Arc::new(AtomicUsize::new(0));
    let retry_after = retry_after.to_owned();
    Proxy::start(&s.emu.base_url(), move |seen: &Seen| {
        if creates_version(seen) && answered.fetch_add(1, Ordering::SeqCst) == 0 {
            Act::Reply {
                status: 429,
                headers: vec![
                    ("content-type", "application/json".to_owned()),
                    ("retry-after", retry_after.clone()),
                ],
                body: br#"{"detail": "Request was throttled."}"#.to_vec(),
            }
        } else {
            Act::Forward
        }
    })
}

/// `promptsync <args>` through `proxy`, one request at a time.
fn command(s: &Scenario, proxy: &Proxy, args: &[&str]) -> std::process::Command {
    let mut cmd = promptsync_command();
    cmd.current_dir(s.repo.path())
        .env("RESPAN_BASE_URL", proxy.base_url())
        .env("RESPAN_API_KEY", KEY)
        .env("PROMPTSYNC_API__MAX_IN_FLIGHT", "1")
        .env("PROMPTSYNC_SYNC__REPORT_UNMANAGED", "false")
        .args(args);
    cmd
}

#[test]
fn a_retry_after_past_the_budget_fails_at_once_and_holds_no_other_request() {
    let cases = [
        ("3600", "asked to wait 1h"),
        ("99999999999999", "asked to wait until 21"),
        (
            "Thu, 01 Jan 2099 00:00:00 GMT",
            "asked to wait until 2099-01-01T00:00:00Z",
        ),
    ];
    for (retry_after, said) in cases {
        let s = two_changed();
        let proxy = throttle_first_version(&s, retry_after);
        let mut cmd = command(&s, &proxy, &["sync", "--output", "json"]);
        cmd.env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "5s");
        let run = measure(cmd);
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        // Not an hour, not a day: the server's wait is past the budget.
        assert!(
            run.elapsed < Duration::from_secs(15),
            "{retry_after}: {run:?}"
        );
        let creates = proxy.seen().iter().filter(|r| creates_version(r)).count();
        assert_eq!(
            creates, 1,
            "{retry_after}: the other create waits for no one and is not sent"
        );
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        let errors: Vec<&str> = report["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|row| row["error"].as_str())
            .collect();
        assert_eq!(errors.len(), 2, "{report:#}");
        let budget = "past the retry budget (5s, api.retry_max_elapsed); rate limited until ";
        assert!(
            errors.iter().any(|e| e.contains(&format!(
                "/versions/: answered 429 (rate limited) and {said}"
            )) && e.contains(budget)),
            "{retry_after}: {errors:#?}"
        );
        assert!(
            errors.iter().any(
                |e| e.contains(&format!("/versions/: not sent: the API {said}"))
                    && e.contains(budget)
            ),
            "{retry_after}: {errors:#?}"
        );
    }
}

/// The `/status` conditions by type.
fn condition(status: &Value, kind: &str) -> Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .cloned()
        .unwrap()
}

#[test]
fn the_daemon_says_until_when_it_is_rate_limited_and_is_not_stuck() {
    let s = two_changed();
    let proxy = throttle_first_version(&s, "3600");
    let proxy_url = proxy.base_url();
    let mut daemon = s.watch_with(
        &[],
        &[
            ("RESPAN_BASE_URL", proxy_url.as_str()),
            ("PROMPTSYNC_API__MAX_IN_FLIGHT", "1"),
            ("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "5s"),
        ],
    );
    let first = daemon.wait_passes(1, DEADLINE);
    assert_eq!(first["outcome"], "partial", "{first}");
    // The status follows the pass's log line.
    let status = wait_until(DEADLINE, "the status to say rate limited", || {
        let status = daemon.status();
        status["rate_limited_until"].is_string().then_some(status)
    });
    let until = status["rate_limited_until"].as_str().unwrap().to_owned();
    let reconciling = condition(&status, "Reconciling");
    assert_eq!(reconciling["reason"], "RateLimited", "{status:#}");
    assert!(
        reconciling["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("rate limited until {until}")),
        "{status:#}"
    );
    // The server asked for an hour; promptsync holds its requests five minutes.
    let until = humantime::parse_rfc3339(&until).unwrap();
    let left = until.duration_since(SystemTime::now()).unwrap();
    assert!(left <= Duration::from_secs(300), "{left:?}");
    assert!(left > Duration::from_secs(240), "{left:?}");
    // Not stuck: alive, it takes a person's request, and the pass it runs ends at
    // once without sending what the server asked to hold.
    assert_eq!(daemon.get("/healthz").0, 200);
    assert_eq!(daemon.post("/reconcile").0, 202);
    let second = daemon.wait_passes(2, DEADLINE);
    assert_eq!(second["outcome"], "transient", "{second}");
    assert!(second["duration_ms"].as_u64().unwrap() < 5000, "{second}");
    assert!(
        second["error"]
            .as_str()
            .unwrap()
            .contains("not sent: the API asked to wait 1h, past the retry budget"),
        "{second}"
    );
    let creates = proxy.seen().iter().filter(|r| creates_version(r)).count();
    assert_eq!(
        creates, 1,
        "nothing more was sent to the server that asked to wait"
    );
    // And it stops at once.
    let asked = Instant::now();
    daemon.signal("TERM");
    let exit = daemon.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
    assert!(asked.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_daemon_retries_when_the_servers_wait_ends() {
    let s = two_changed();
    let proxy = throttle_first_version(&s, "3");
    let proxy_url = proxy.base_url();
    let daemon = s.watch_with(
        &[],
        &[
            ("RESPAN_BASE_URL", proxy_url.as_str()),
            ("PROMPTSYNC_API__MAX_IN_FLIGHT", "1"),
            ("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "1s"),
        ],
    );
    let first = daemon.wait_passes(1, DEADLINE);
    assert_eq!(first["outcome"], "partial", "{first}");
    assert!(
        first["timestamp"].is_string(),
        "the pass ended while the server's wait held: {first}"
    );
    let retry = daemon.wait_pass(DEADLINE, "a pass that syncs both", |p| {
        p["outcome"] == "success"
    });
    assert_eq!(retry["updated"], 2, "{retry}");
    // The retry waited for the server: its requests came three seconds after the 429.
    let ended = |p: &Value| humantime::parse_rfc3339(p["timestamp"].as_str().unwrap()).unwrap();
    let waited = ended(&retry).duration_since(ended(&first)).unwrap();
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert_eq!(daemon.status()["rate_limited_until"], Value::Null);
}

#[test]
fn a_silent_server_costs_one_timeout_per_attempt_within_the_budget() {
    let s = Scenario::new();
    s.repo.write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.commit("A");
    let proxy = Proxy::start(&s.emu.base_url(), |seen: &Seen| {
        if seen.is_list() {
            Act::Silent
        } else {
            Act::Forward
        }
    });
    let mut cmd = command(&s, &proxy, &["plan"]);
    cmd.env("PROMPTSYNC_API__TIMEOUT", "3s")
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "4s");
    let run = measure(cmd);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    // One whole timeout (3 s), then the 0.9 s left of the 4 s budget: 4 s, where a
    // second whole timeout would make it 6.
    assert!(run.elapsed >= Duration::from_millis(3900), "{run:?}");
    assert!(run.elapsed < Duration::from_millis(5500), "{run:?}");
    assert_eq!(proxy.seen().iter().filter(|r| r.is_list()).count(), 2);
    let error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap();
    assert!(
        error.contains("gave up after 2 attempt(s)")
            && error.contains("(what was left of the retry budget, api.retry_max_elapsed)"),
        "{error}"
    );
    assert!(
        run.stderr
            .contains("timed out after 3s (api.timeout, for the request and its whole reply)"),
        "{}",
        run.stderr
    );
}

#[test]
fn checking_an_unknown_outcome_stays_within_the_requests_deadline() {
    // A new prompt: its create gets no answer, and neither does the listing that
    // checks whether it was made.
    let s = Scenario::new();
    s.repo.write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.commit("A");
    let lists = Arc::new(AtomicUsize::new(0));
    let proxy = Proxy::start(&s.emu.base_url(), move |seen: &Seen| {
        let create = seen.method == "POST" && seen.path == "/api/prompts/";
        let later_list = seen.is_list() && lists.fetch_add(1, Ordering::SeqCst) > 0;
        if create || later_list {
            Act::Silent
        } else {
            Act::Forward
        }
    });
    let mut cmd = command(&s, &proxy, &["sync"]);
    cmd.env("PROMPTSYNC_API__TIMEOUT", "3s")
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "4s");
    let run = measure(cmd);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    // The create's 3 s, then the check in the 1 s left: 4 s, not the check's own
    // budget again on top.
    assert!(run.elapsed < Duration::from_millis(6000), "{run:?}");
    assert!(
        run.stdout
            .contains("the server may or may not have applied it")
            && run
                .stdout
                .contains("checking whether it was applied failed"),
        "{}",
        run.stdout
    );
    assert!(s.emu.prompts().is_empty(), "nothing reached the emulator");
}

/// No pass beyond the `passes` ended so far, for 3 s: a failure the daemon took for
/// transient would have been retried three times in that window (after 0.75, 1.5 and
/// 3 s at most). Proving that nothing happens takes watching for a while.
fn no_retry_within(daemon: &crate::support::daemon::Daemon, passes: usize) {
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            daemon.passes().len(),
            passes,
            "no retry:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_400_on_the_listing_stalls_the_daemon_instead_of_a_retry_storm() {
    let s = Scenario::new();
    s.repo.write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.commit("A");
    s.emu
        .inject(json!({"method": "POST", "path": "/api/prompts/list/",
        "kind": "status", "status": 400, "times": 100000}));
    // The CLI says no retry mends it.
    let report = s.sync_json(&[], 1);
    assert_eq!(report["error"]["class"], "stalled", "{report:#}");
    let daemon = s.watch(&[]);
    let first = daemon.wait_passes(1, DEADLINE);
    assert_eq!(first["outcome"], "stalled", "{first}");
    let status = daemon.status();
    assert_eq!(
        condition(&status, "Stalled")["status"],
        "True",
        "{status:#}"
    );
    let lists = || {
        s.emu
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/api/prompts/list/"))
            .count()
    };
    let seen = lists();
    no_retry_within(&daemon, 1);
    assert_eq!(lists(), seen, "no request was sent again");
    // Something changes: a pass runs, and with the fault gone, it syncs.
    let reply = s.emu.http().admin("DELETE", "/_emulator/faults", None);
    assert!(reply.status < 300, "{}", reply.text);
    s.repo.write("a.prompt.yaml", &prompt("A", "a, revised"));
    s.repo.commit("Revise A");
    let fixed = daemon.wait_pass(DEADLINE, "a pass after the change", |p| {
        p["outcome"] == "success"
    });
    assert_eq!(fixed["created"], 1, "{fixed}");
    daemon.wait_ready(DEADLINE);
}

#[test]
fn a_prompt_that_fails_for_good_is_not_retried_one_that_may_pass_is() {
    let s = Scenario::new();
    s.repo.write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.commit("A");
    s.sync();
    // An undecodable reply to A's new version: no retry mends it.
    s.emu
        .inject(json!({"method": "POST", "path": "/api/prompts/*/versions/",
        "kind": "garbage_json", "times": 100000}));
    let daemon = s.watch_with(&[], &[("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "200ms")]);
    daemon.wait_passes(1, DEADLINE);
    s.repo.write("a.prompt.yaml", &prompt("A", "a, revised"));
    s.repo.commit("Revise A");
    let failed = daemon.wait_passes(2, DEADLINE);
    assert_eq!(
        (failed["outcome"].as_str(), failed["failed"].as_u64()),
        (Some("partial"), Some(1)),
        "{failed}"
    );
    no_retry_within(&daemon, 2);
    // A 503 past the budget may pass: that one is retried, and converges.
    let reply = s.emu.http().admin("DELETE", "/_emulator/faults", None);
    assert!(reply.status < 300, "{}", reply.text);
    s.emu
        .inject(json!({"method": "POST", "path": "/api/prompts/*/versions/",
        "kind": "status", "status": 503, "times": 3}));
    s.repo.write("a.prompt.yaml", &prompt("A", "a, again"));
    s.repo.commit("Revise A again");
    let synced = daemon.wait_pass(DEADLINE, "the retry that syncs A", |p| {
        p["outcome"] == "success" && p["updated"] == 1
    });
    assert_eq!(synced["trigger"], "retry", "{synced}");
}
