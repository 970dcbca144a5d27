//! The test-only admin endpoint beyond knobs and faults: overview, request-log
//! paging, state dump and reset.

use serde_json::json;

use crate::support::emulator::TestEmulator;

#[test]
fn overview_state_and_reset() {
    let emu = TestEmulator::start();
    let id = super::prompt_with_versions(&emu, "p", 1);
    emu.inject(json!({"kind": "delay", "delay_ms": 1, "path": "/api/nothing/"}));

    let overview = emu.http().admin("GET", "/_emulator/", None);
    assert_eq!(overview.status, 200);
    let overview = overview.json();
    assert_eq!(overview["knobs"]["commit_mode"], json!("freeze"));
    assert_eq!(overview["knobs"]["rate_limit"], json!(null));
    assert_eq!(overview["faults"].as_array().unwrap().len(), 1);
    assert_eq!(overview["request_count"], json!(2), "the two creates");

    let state = emu.http().admin("GET", "/_emulator/state", None).json();
    assert_eq!(state["format"], json!("promptsync-emulator-state"));
    assert_eq!(state["store"]["prompts"][0]["id"], json!(id));

    let reset = emu.http().admin("POST", "/_emulator/reset", None);
    assert_eq!(reset.status, 204);
    assert!(emu.prompts().is_empty());
    assert_eq!(
        emu.call("GET", &format!("/api/prompts/{id}/"))
            .send()
            .status,
        404
    );
}

#[test]
fn the_request_log_reads_from_a_sequence_number() {
    let emu = TestEmulator::start();
    for _ in 0..3 {
        emu.call("GET", "/api/prompts/summary/").send();
    }
    let all = emu.requests();
    let since = all[0].seq;
    let reply = emu
        .http()
        .admin("GET", &format!("/_emulator/requests?since={since}"), None)
        .json();
    let seqs: Vec<u64> = reply["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [all[1].seq, all[2].seq]);
    assert_eq!(reply["dropped"], json!(0));
    let bad = emu
        .http()
        .admin("GET", "/_emulator/requests?since=yesterday", None);
    assert_eq!(bad.status, 400);
    assert!(bad.json()["detail"].as_str().unwrap().contains("since"));
}
