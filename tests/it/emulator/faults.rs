//! Fault and latency knobs, and the request log: injected statuses (with and without
//! applying), 429 with Retry-After, dropped replies before and after the change,
//! latency, extra delay, the rate limit, faults armed at start; the hostile kinds
//! (endless pages, huge, garbage, HTML and trickling bodies, redirects).

use std::time::{Duration, Instant};

use promptsync_emulator::{EmulatorConfig, FaultKind, FaultRule};
use serde_json::{Value, json};

use super::{prompt_with_versions, version_body};
use crate::support::emulator::{EmulatorProcess, TestEmulator, memory_kib};

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
            status: Some(503),
            ..FaultRule::new(FaultKind::Status)
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

/// `results[].id` of a list page.
fn ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn endless_pages_always_link_a_next_page_with_the_same_or_fresh_items() {
    let emu = TestEmulator::start();
    emu.create_prompt("real");
    emu.inject(json!({"method": "POST", "path": "/api/prompts/list/", "kind": "endless_pages", "times": 3}));
    let list = |page: u32| {
        emu.call(
            "POST",
            &format!("/api/prompts/list/?page={page}&page_size=7&sort_by=-id"),
        )
        .json(json!({}))
        .send()
    };
    let first = list(1).json();
    let later = list(40).json();
    assert_eq!(ids(&first).len(), 7, "page_size items: {first}");
    assert_eq!(ids(&first), ids(&later), "every page repeats the first");
    assert_eq!(first["count"], json!(7), "count per page");
    let next = later["next"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{}/api/prompts/list/?", emu.base_url())),
        "{next}"
    );
    assert!(
        next.contains("page=41") && next.contains("page_size=7") && next.contains("sort_by=-id"),
        "{next}"
    );
    assert!(later["previous"].as_str().unwrap().contains("page=39"));
    assert!(
        first["results"][0]["version"].is_u64(),
        "items pass as versions too"
    );
    let third = list(2).json();
    assert_eq!(
        emu.requests().last().unwrap().fault.as_deref(),
        Some("endless_pages")
    );
    assert_eq!(ids(&third), ids(&first));
    let real = list(1).json();
    assert!(
        real["next"].is_null(),
        "times ran out: the real listing again: {real}"
    );
    assert_eq!(ids(&real).len(), 1);

    emu.inject(json!({"path": "/api/prompts/*/versions/", "kind": "endless_pages", "fresh": true, "count": 1234, "times": 2}));
    let versions = |page: u32| {
        emu.call("GET", &format!("/api/prompts/p/versions/?page={page}"))
            .send()
            .json()
    };
    let (one, two) = (versions(1), versions(2));
    assert_eq!(ids(&one).len(), 100, "default page size");
    assert_eq!(one["count"], json!(1234), "the claimed total");
    assert!(
        ids(&one).iter().all(|id| !ids(&two).contains(id)),
        "fresh ids on every page"
    );
    assert_eq!(two["results"][0]["version"], json!(101));
    assert!(one["previous"].is_null());
}

#[test]
fn a_huge_body_streams_valid_json_without_a_length() {
    let emu = TestEmulator::start();
    emu.inject(json!({"path": "/api/prompts/list/", "kind": "huge_body", "bytes": 3_000_000}));
    let reply = emu
        .call("POST", "/api/prompts/list/")
        .json(json!({}))
        .stream(u64::MAX, 4_000_000, |_| false);
    assert_eq!(reply.status, 200);
    assert!(reply.complete);
    assert_eq!(reply.read, 3_000_000);
    assert_eq!(reply.headers.get("content-length"), None, "chunked");
    assert_eq!(reply.headers["content-type"], "application/json");
    let page: Value = serde_json::from_slice(&reply.head).expect("valid JSON once complete");
    assert!(page["next"].is_null());
    assert_eq!(page["results"][0]["id"], json!("huge"));

    emu.inject(json!({"path": "/api/prompts/list/", "kind": "huge_body", "bytes": 1000, "declare_length": true}));
    let reply = emu
        .call("POST", "/api/prompts/list/")
        .json(json!({}))
        .stream(u64::MAX, 2000, |_| false);
    assert_eq!(reply.headers["content-length"], "1000");
    assert_eq!(reply.read, 1000);
    serde_json::from_slice::<Value>(&reply.head).expect("valid JSON");
    assert_eq!(
        emu.requests().last().unwrap().fault.as_deref(),
        Some("huge_body")
    );
}

/// The default 1.5 GB body from the real emulator binary: it starts at once and the
/// emulator's memory stays flat while hundreds of megabytes go out.
#[test]
fn a_huge_body_is_generated_while_sent_never_held() {
    let emu = EmulatorProcess::spawn(&[
        "--fault",
        r#"{"path": "/api/prompts/list/", "kind": "huge_body"}"#,
    ]);
    let before = memory_kib(emu.pid(), "VmRSS").unwrap();
    let reply = emu
        .call("POST", "/api/prompts/list/")
        .json(json!({}))
        .stream(300_000_000, 100, |_| false);
    let peak = memory_kib(emu.pid(), "VmHWM").unwrap();
    assert_eq!(reply.status, 200);
    assert!(
        !reply.complete && reply.read >= 300_000_000,
        "{} bytes",
        reply.read
    );
    assert!(reply.head.starts_with(br#"{"count": 1, "#));
    assert!(
        peak < before + 30 * 1024,
        "the emulator grew from {before} KiB to a peak of {peak} KiB"
    );
}

#[test]
fn garbage_json_and_an_html_page_come_with_status_200() {
    let emu = TestEmulator::start();
    emu.inject(json!([
        {"path": "/api/prompts/list/", "kind": "garbage_json"},
        {"path": "/api/prompts/list/", "kind": "html"}
    ]));
    let garbage = emu
        .call("POST", "/api/prompts/list/")
        .json(json!({}))
        .send();
    assert_eq!(garbage.status, 200);
    assert_eq!(garbage.header("content-type"), Some("application/json"));
    assert!(
        serde_json::from_str::<Value>(&garbage.text).is_err(),
        "{}",
        garbage.text
    );
    assert!(garbage.text.starts_with(r#"{"count""#));
    let html = emu
        .call("POST", "/api/prompts/list/")
        .json(json!({}))
        .send();
    assert_eq!(html.status, 200);
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(html.text.starts_with("<!DOCTYPE html>"), "{}", html.text);
    let marks: Vec<_> = emu.requests().into_iter().filter_map(|r| r.fault).collect();
    assert_eq!(marks, ["garbage_json", "html"]);
}

#[test]
fn a_trickle_sends_headers_at_once_then_one_byte_per_interval() {
    let emu = TestEmulator::start();
    emu.inject(json!({"kind": "trickle", "interval_ms": 60}));
    let reply = emu
        .call("GET", "/api/prompts/summary/")
        .stream(u64::MAX, 16, |s| s.read >= 5);
    assert_eq!(reply.status, 200);
    assert!(
        reply.headers_after < Duration::from_millis(1000),
        "{:?}",
        reply.headers_after
    );
    assert_eq!(reply.read, 5, "one byte per chunk");
    let span = reply.arrivals[4] - reply.arrivals[0];
    assert!(
        span >= Duration::from_millis(4 * 50),
        "5 bytes came within {span:?}"
    );
    assert_eq!(reply.head, b"     ", "leading padding");

    emu.inject(json!({"kind": "trickle", "interval_ms": 1, "bytes": 70}));
    let reply = emu
        .call("GET", "/api/prompts/summary/")
        .stream(u64::MAX, 100, |_| false);
    assert!(reply.complete);
    assert_eq!(reply.read, 70);
    let page: Value = serde_json::from_slice(&reply.head).expect("valid JSON once complete");
    assert_eq!(page["results"], json!([]));
}

#[test]
fn a_redirect_names_its_location_and_runs_nothing() {
    let emu = TestEmulator::start();
    emu.inject(json!([
        {"method": "POST", "path": "/api/prompts/", "kind": "redirect"},
        {"method": "POST", "path": "/api/prompts/", "kind": "redirect", "status": 308,
         "location": "https://elsewhere.invalid/api/prompts/"}
    ]));
    let moved = emu
        .call("POST", "/api/prompts/")
        .json(json!({"name": "p"}))
        .send();
    assert_eq!(moved.status, 302);
    assert_eq!(moved.header("location"), Some("/api/moved/"));
    let away = emu
        .call("POST", "/api/prompts/")
        .json(json!({"name": "p"}))
        .send();
    assert_eq!(away.status, 308);
    assert_eq!(
        away.header("location"),
        Some("https://elsewhere.invalid/api/prompts/")
    );
    assert!(emu.prompts().is_empty(), "nothing was created");
    assert_eq!(
        emu.requests().last().unwrap().fault.as_deref(),
        Some("redirect")
    );
}
