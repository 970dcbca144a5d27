//! Fault and latency knobs, and the request log: injected statuses (with and without
//! applying), 429 with Retry-After, dropped replies before and after the change,
//! latency, extra delay, the rate limit, faults armed at start.

use std::time::{Duration, Instant};

use promptsync_emulator::{EmulatorConfig, FaultKind, FaultRule};
use serde_json::json;

use super::{prompt_with_versions, version_body};
use crate::support::emulator::TestEmulator;

#[test]
fn injected_statuses_hit_matching_requests_only_and_apply_nothing() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 1);
    let versions = format!("/api/prompts/{id}/versions/");
    emu.inject(json!({"method": "POST", "path": "/api/prompts/*/versions/", "kind": "status", "status": 503, "times": 2}));
    emu.inject(
        json!({"method": "GET", "path": "/api/prompts/*/", "kind": "status", "status": 500}),
    );
    emu.inject(json!({"method": "*", "path": "/api/prompts/summary/", "kind": "status", "status": 502, "retry_after": 3}));

    // Other methods and paths are not affected.
    assert_eq!(emu.call("GET", &versions).send().status, 200);
    for _ in 0..2 {
        let reply = emu.call("POST", &versions).json(version_body("x")).send();
        assert_eq!(reply.status, 503);
        assert_eq!(reply.json()["error_code"], json!("injected"));
    }
    assert_eq!(
        emu.call("POST", &versions)
            .json(version_body("x"))
            .send()
            .status,
        201,
        "times ran out"
    );
    assert_eq!(
        emu.versions(&id).len(),
        2,
        "the failed creates applied nothing"
    );

    assert_eq!(
        emu.call("GET", &format!("/api/prompts/{id}/"))
            .send()
            .status,
        500
    );
    let gateway = emu.call("GET", "/api/prompts/summary/").send();
    assert_eq!(gateway.status, 502);
    assert_eq!(gateway.header("retry-after"), Some("3"));
    let armed = emu.faults();
    assert_eq!(armed, json!([]), "every fault was used up");
}

#[test]
fn injected_429_carries_retry_after() {
    let emu = TestEmulator::start();
    emu.inject(json!({"path": "/api/prompts/", "kind": "status", "status": 429, "retry_after": 7}));
    let reply = emu
        .call("POST", "/api/prompts/")
        .json(json!({"name": "p"}))
        .send();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("7"));
    assert_eq!(
        reply.json(),
        json!({"detail": "Request was throttled.", "retry_after": 7})
    );
    emu.inject(json!({"kind": "status", "status": 429}));
    let reply = emu.call("GET", "/api/prompts/summary/").send();
    assert_eq!(reply.header("retry-after"), Some("1"), "default");
    assert!(emu.prompts().is_empty());
}

#[test]
fn a_status_after_apply_applies_the_change() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    emu.inject(json!({"method": "POST", "path": "/api/prompts/*/versions/", "kind": "status", "status": 502, "after_apply": true}));
    let reply = emu
        .call("POST", &format!("/api/prompts/{id}/versions/"))
        .json(version_body("x"))
        .send();
    assert_eq!(reply.status, 502);
    assert_eq!(emu.versions(&id).len(), 1, "applied despite the 502");
    let log = emu.requests();
    assert_eq!(
        log.last().unwrap().fault.as_deref(),
        Some("injected_after_apply")
    );
}

#[test]
fn drop_after_applies_the_change_and_closes_the_connection_unanswered() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    emu.clear_requests();
    emu.inject(json!({"method": "POST", "path": "/api/prompts/*/versions/", "kind": "drop_after"}));
    let path = format!("/api/prompts/{id}/versions/");
    let result = emu.call("POST", &path).json(version_body("x")).try_send();
    let err = result.expect_err("no reply");
    assert!(
        !err.is_status(),
        "a connection error, not an HTTP status: {err:?}"
    );
    assert_eq!(emu.versions(&id).len(), 1, "the change was applied");
    // The same client works on a fresh connection right after.
    assert_eq!(emu.call("GET", &path).send().status, 200);

    let log = emu.requests();
    let dropped = log.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(dropped.status, 0);
    assert_eq!(dropped.fault.as_deref(), Some("drop_after"));
    assert_eq!(dropped.path, path);
    assert_eq!(
        log.iter().filter(|r| r.method == "POST").count(),
        1,
        "not retried behind our back"
    );
}

#[test]
fn drop_before_closes_the_connection_without_applying() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    emu.inject(json!({"method": "POST", "kind": "drop_before", "times": 2}));
    let path = format!("/api/prompts/{id}/versions/");
    assert!(
        emu.call("POST", &path)
            .json(version_body("x"))
            .try_send()
            .is_err()
    );
    assert!(
        emu.call("POST", "/api/prompts/")
            .json(json!({}))
            .try_send()
            .is_err()
    );
    assert!(emu.versions(&id).is_empty(), "nothing applied");
    assert_eq!(emu.prompts().len(), 1);
    let faults: Vec<_> = emu.requests().into_iter().filter_map(|r| r.fault).collect();
    assert_eq!(faults, ["drop_before", "drop_before"]);
}

#[test]
fn latency_and_delay_slow_replies_down() {
    let emu = TestEmulator::start();
    emu.set_knobs(json!({"latency": {"fixed_ms": 120, "jitter_ms": 30}}));
    let started = Instant::now();
    assert_eq!(emu.call("GET", "/api/prompts/summary/").send().status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "{:?}",
        started.elapsed()
    );
    let record = emu.requests().pop().unwrap();
    assert!(record.duration_ms >= 120, "{record:?}");
    emu.set_knobs(json!({"latency": {"fixed_ms": 0}}));

    emu.inject(json!({"path": "/api/prompts/summary/", "kind": "delay", "delay_ms": 150}));
    let started = Instant::now();
    assert_eq!(emu.call("GET", "/api/prompts/summary/").send().status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        emu.requests().pop().unwrap().fault.as_deref(),
        Some("delay")
    );
}

#[test]
fn the_rate_limit_answers_429_with_retry_after() {
    let emu = TestEmulator::start();
    emu.set_knobs(json!({"rate_limit": {"requests": 3, "window_ms": 60000}}));
    for _ in 0..3 {
        assert_eq!(emu.call("GET", "/api/prompts/summary/").send().status, 200);
    }
    let throttled = emu.call("POST", "/api/prompts/").json(json!({})).send();
    assert_eq!(throttled.status, 429);
    let retry: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(throttled.json()["retry_after"], json!(retry));
    assert_eq!(
        emu.requests().last().unwrap().fault.as_deref(),
        Some("rate_limited")
    );
    emu.set_knobs(json!({"rate_limit": null}));
    assert_eq!(
        emu.call("POST", "/api/prompts/")
            .json(json!({}))
            .send()
            .status,
        201
    );
    assert_eq!(emu.prompts().len(), 1, "the throttled create did nothing");
}

#[test]
fn faults_latency_and_rate_limit_can_be_set_at_start() {
    let emu = TestEmulator::start_with(EmulatorConfig {
        faults: vec![FaultRule {
            method: "*".to_owned(),
            path: "/api/**".to_owned(),
            times: 1,
            kind: FaultKind::Status,
            status: Some(503),
            retry_after: None,
            after_apply: false,
            delay_ms: None,
            pointer: None,
            value: None,
        }],
        ..EmulatorConfig::default()
    });
    assert_eq!(emu.call("GET", "/api/prompts/summary/").send().status, 503);
    assert_eq!(emu.call("GET", "/api/prompts/summary/").send().status, 200);
}

#[test]
fn bad_fault_rules_are_refused() {
    let emu = TestEmulator::start();
    for bad in [
        json!({"kind": "status", "status": 200}),
        json!({"kind": "meltdown"}),
        json!({"kind": "delay"}),
        json!({"kind": "drop_after", "pth": "/api/**"}),
        json!([{"kind": "drop_after"}, {"kind": "status"}]),
    ] {
        let reply = emu
            .http()
            .admin("POST", "/_emulator/faults", Some(bad.clone()));
        assert_eq!(reply.status, 400, "{bad}");
    }
    let armed = emu.faults();
    assert_eq!(armed, json!([]), "a refused list arms none of its rules");
    emu.inject(json!([{"kind": "drop_after"}, {"kind": "status", "status": 500}]));
    let armed = emu.faults();
    assert_eq!(armed.as_array().unwrap().len(), 2);
    let cleared = emu.http().admin("DELETE", "/_emulator/faults", None);
    assert_eq!(cleared.status, 204);
    assert_eq!(emu.call("GET", "/api/prompts/summary/").send().status, 200);
}

#[test]
fn the_request_log_records_every_api_request() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    emu.clear_requests();
    emu.call("POST", "/api/prompts/list/?page=1&page_size=10")
        .json(json!({}))
        .send();
    emu.call("GET", &format!("/api/prompts/{id}/"))
        .key(None)
        .send();
    emu.call("GET", "/api/prompts/nope").send();
    emu.call("POST", &format!("/api/prompts/{id}/versions/"))
        .json(version_body("x"))
        .send();
    emu.http().admin("GET", "/_emulator/knobs", None);

    let log = emu.requests();
    let seen: Vec<(&str, &str, u16)> = log
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.status))
        .collect();
    let prompt_path = format!("/api/prompts/{id}/");
    let version_path = format!("/api/prompts/{id}/versions/");
    assert_eq!(
        seen,
        [
            ("POST", "/api/prompts/list/?page=1&page_size=10", 200),
            ("GET", prompt_path.as_str(), 401),
            ("GET", "/api/prompts/nope", 404),
            ("POST", version_path.as_str(), 201),
        ],
        "admin requests are not logged"
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(log.iter().all(|r| r.at.ends_with('Z') && r.fault.is_none()));
    assert_eq!(
        emu.change_requests().len(),
        1,
        "only the create changes state"
    );

    // The helper's own requests are in the full log only.
    emu.get("/api/prompts/summary/");
    assert_eq!(emu.requests().len(), 4);
    assert_eq!(emu.all_requests().len(), 5);
    emu.clear_requests();
    assert!(emu.all_requests().is_empty());
}
