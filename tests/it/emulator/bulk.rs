//! E3 bulk operations: 1 to 100 items in order, each its own transaction, indexed
//! errors, 200 when all succeed and 422 otherwise.

use serde_json::{Value, json};

use super::{prompt_with_versions, states};
use crate::support::emulator::TestEmulator;

fn bulk(emu: &TestEmulator, body: Value) -> (u16, Value) {
    let reply = emu.call("POST", "/api/prompts/bulk/").json(body).send();
    (reply.status, reply.json())
}

#[test]
fn update_commit_deploy_chain_succeeds_with_200() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 1);
    let (status, body) = bulk(
        &emu,
        json!({"requests": [
            {"action": "update", "prompt_id": id, "body": {"model": "gpt-4o-mini", "temperature": 0.2}},
            {"action": "commit", "prompt_id": id, "body": {"description": "promptsync: lower temperature"}},
            {"action": "deploy", "prompt_id": id},
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"success_count": 3, "error_count": 0, "errors": []})
    );
    let version = emu.get(&format!("/api/prompts/{id}/versions/1/"));
    assert_eq!(version["model"], json!("gpt-4o-mini"));
    assert_eq!(version["temperature"], json!(0.2));
    assert_eq!(
        version["description"],
        json!("promptsync: lower temperature")
    );
    assert_eq!(states(&emu, &id), [(1, true, true)]);
}

#[test]
fn a_partial_failure_is_422_with_indexed_errors_and_earlier_items_stay() {
    let emu = TestEmulator::start();
    let a = prompt_with_versions(&emu, "a", 1);
    let b = prompt_with_versions(&emu, "b", 1);
    let (status, body) = bulk(
        &emu,
        json!({"requests": [
            {"action": "update", "prompt_id": a, "body": {"messages": [], "model": "x"}},
            {"action": "update", "prompt_id": a, "body": {"top_p": 0.5}},
            {"action": "commit", "prompt_id": a},
            {"action": "commit", "prompt_id": a},
            {"action": "deploy", "prompt_id": "prm_unknown"},
            {"action": "update", "prompt_id": b, "body": {"temperature": 9}},
            {"action": "update", "prompt_id": b, "body": {}},
            {"action": "deploy", "prompt_id": b},
            {"action": "deploy", "prompt_id": a, "body": {"version": 1}},
            {"action": "deploy", "prompt_id": a},
            {"action": "deploy", "prompt_id": a},
        ]}),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["success_count"], json!(3));
    assert_eq!(body["error_count"], json!(8));
    let errors = body["errors"].as_array().unwrap();
    let indexes: Vec<u64> = errors
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 3, 4, 5, 6, 7, 8, 10]);
    let text = |i: usize| errors[i]["error"].as_str().unwrap().to_owned();
    assert!(text(0).contains("content fields: messages"), "{}", text(0));
    assert!(text(1).contains("already committed"), "{}", text(1));
    assert!(
        text(2).contains("prm_unknown") && text(2).contains("not found"),
        "{}",
        text(2)
    );
    assert!(text(3).contains("temperature"), "{}", text(3));
    assert!(text(4).contains("at least one"), "{}", text(4));
    assert!(text(5).contains("no committed version"), "{}", text(5));
    assert!(text(6).contains("no fields"), "{}", text(6));
    assert!(text(7).contains("already deployed"), "{}", text(7));

    let a_v1 = emu.get(&format!("/api/prompts/{a}/versions/1/"));
    assert_eq!(a_v1["top_p"], json!(0.5), "item 1 applied");
    assert_eq!(states(&emu, &a), [(1, true, true)]);
    let b_v1 = emu.get(&format!("/api/prompts/{b}/versions/1/"));
    assert_eq!(
        b_v1["temperature"],
        json!(0.7),
        "failed item rolled back on its own"
    );
}

#[test]
fn update_without_a_draft_is_an_item_error() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 1);
    super::commit(&emu, &id);
    let (status, body) = bulk(
        &emu,
        json!({"requests": [{"action": "update", "prompt_id": id, "body": {"model": "m"}}]}),
    );
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["index"], json!(0));
    assert!(
        body["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no draft")
    );
}

#[test]
fn malformed_envelopes_are_400() {
    let emu = TestEmulator::start();
    let item = json!({"action": "deploy", "prompt_id": "p"});
    let cases = [
        json!({}),
        json!({"requests": []}),
        json!({"requests": vec![item.clone(); 101]}),
        json!({"requests": {"action": "deploy"}}),
    ];
    for body in cases {
        let (status, reply) = bulk(&emu, body.clone());
        assert_eq!(status, 400, "{body}");
        assert!(reply["requests"].is_array(), "{reply}");
    }
    let (status, reply) = bulk(
        &emu,
        json!({"requests": [item, {"action": "explode", "prompt_id": "p"}, {"prompt_id": "p"}, "x"]}),
    );
    assert_eq!(status, 400);
    let per_item = reply["requests"].as_array().unwrap();
    assert_eq!(per_item[0], json!({}));
    assert_eq!(
        per_item[1],
        json!({"action": ["\"explode\" is not a valid choice."]})
    );
    assert_eq!(per_item[2], json!({"action": ["This field is required."]}));
    assert!(per_item[3]["non_field_errors"].is_array());

    let (status, body) = bulk(
        &emu,
        json!({"requests": vec![json!({"action": "deploy", "prompt_id": "p"}); 100]}),
    );
    assert_eq!(status, 422, "100 items is the maximum, not over it: {body}");
    assert_eq!(body["error_count"], json!(100));
}
