//! E1 filters over HTTP: the required fields (`prompt_id`, `name`, `prompt_slug`)
//! with every operator, version fields, the top-level operator, and 400s. The
//! operator semantics are unit-tested in src/emulator/filters.rs; this proves the
//! wiring and the reply shapes.

use serde_json::{Value, json};

use super::{commit, deploy, prompt_with_versions};
use crate::support::emulator::TestEmulator;

struct Fixture {
    emu: TestEmulator,
    support: String,
    billing: String,
}

/// Three prompts: "Support Bot" (v1 live, v2 draft), "Billing helper" (v1 draft),
/// "support-faq" (no version).
fn fixture() -> Fixture {
    let emu = TestEmulator::start();
    let support = prompt_with_versions(&emu, "Support Bot", 1);
    commit(&emu, &support);
    deploy(&emu, &support, 1);
    emu.create_version(
        &support,
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}),
    );
    let billing = prompt_with_versions(&emu, "Billing helper", 1);
    emu.create_prompt("support-faq");
    Fixture {
        emu,
        support,
        billing,
    }
}

fn select(emu: &TestEmulator, body: Value) -> Vec<String> {
    let reply = emu
        .call("POST", "/api/prompts/list/?page_size=100")
        .json(body.clone())
        .send();
    assert_eq!(reply.status, 200, "{body}: {}", reply.text);
    let mut names: Vec<String> = reply.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn condition(field: &str, op: &str, value: Value) -> Value {
    json!({"filters": { field: {"operator": op, "value": value} }})
}

#[test]
fn operators_on_name_slug_and_id() {
    let f = fixture();
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            condition("name", "", json!(["Support Bot"])),
            vec!["Support Bot"],
        ),
        (condition("name", "", json!(["support bot"])), vec![]),
        (
            condition("name", "iexact", json!(["support bot"])),
            vec!["Support Bot"],
        ),
        (
            condition("name", "in", json!(["Support Bot", "Billing helper"])),
            vec!["Billing helper", "Support Bot"],
        ),
        (
            condition("name", "not", json!(["Support Bot"])),
            vec!["Billing helper", "support-faq"],
        ),
        (
            condition("name", "not_in", json!(["Support Bot", "support-faq"])),
            vec!["Billing helper"],
        ),
        (
            condition("name", "icontains", json!(["SUPPORT"])),
            vec!["Support Bot", "support-faq"],
        ),
        (
            condition("name", "contains", json!(["upport"])),
            vec!["Support Bot", "support-faq"],
        ),
        (
            condition("name", "startswith", json!(["Supp"])),
            vec!["Support Bot"],
        ),
        (
            condition("name", "not_startswith", json!(["Supp"])),
            vec!["Billing helper", "support-faq"],
        ),
        (
            condition("name", "endswith", json!(["faq"])),
            vec!["support-faq"],
        ),
        (
            condition("prompt_slug", "", json!(["support-bot"])),
            vec!["Support Bot"],
        ),
        (
            condition("prompt_slug", "startswith", json!(["support"])),
            vec!["Support Bot", "support-faq"],
        ),
        (
            condition("prompt_id", "", json!([f.billing])),
            vec!["Billing helper"],
        ),
        (
            condition("prompt_id", "in", json!([f.billing, f.support])),
            vec!["Billing helper", "Support Bot"],
        ),
        (
            condition("prompt_id", "not_in", json!([f.billing, f.support])),
            vec!["support-faq"],
        ),
        (
            condition("description", "isnull", json!([true])),
            vec!["Billing helper", "Support Bot", "support-faq"],
        ),
        (
            condition("description", "empty", json!([""])),
            vec!["Billing helper", "Support Bot", "support-faq"],
        ),
        (
            json!({"filters": {"name": {"value": ["Support Bot"]}}}),
            vec!["Support Bot"],
        ),
        (
            json!({}),
            vec!["Billing helper", "Support Bot", "support-faq"],
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(select(&f.emu, body.clone()), expected, "{body}");
    }
}

#[test]
fn version_fields_counts_and_combinations() {
    let f = fixture();
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            condition("current_version__model", "in", json!(["gpt-4o-mini"])),
            vec!["Support Bot"],
        ),
        (
            condition("current_version__version", "gte", json!([2])),
            vec!["Support Bot"],
        ),
        (
            condition("current_version__readonly", "", json!([false])),
            vec!["Billing helper", "Support Bot"],
        ),
        (
            condition("live_version__version", "", json!([1])),
            vec!["Support Bot"],
        ),
        (
            condition("live_version__model", "not", json!(["nothing"])),
            vec!["Support Bot"],
        ),
        (
            condition("live_version__version", "isnull", json!([true])),
            vec!["Billing helper", "support-faq"],
        ),
        (
            condition("current_version__version", "empty", json!([""])),
            vec!["support-faq"],
        ),
        (
            condition("commit_count", "gt", json!([0])),
            vec!["Support Bot"],
        ),
        (
            condition("starred", "", json!([false])),
            vec!["Billing helper", "Support Bot", "support-faq"],
        ),
        (
            condition(
                "current_version__updated_at",
                "gte",
                json!(["2000-01-01T00:00:00Z"]),
            ),
            vec!["Billing helper", "Support Bot"],
        ),
        (
            json!({"filters": {"current_version__version": [
                {"operator": "gte", "value": [1]},
                {"operator": "lt", "value": [2]},
            ]}}),
            vec!["Billing helper"],
        ),
        (
            json!({"operator": "AND", "filters": {
                "name": {"operator": "icontains", "value": ["support"]},
                "current_version__model": {"operator": "", "value": ["gpt-4o-mini"]},
            }}),
            vec!["Support Bot"],
        ),
        (
            json!({"operator": "OR", "filters": {
                "name": {"operator": "", "value": ["support-faq"]},
                "prompt_id": {"operator": "", "value": [f.billing]},
            }}),
            vec!["Billing helper", "support-faq"],
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(select(&f.emu, body.clone()), expected, "{body}");
    }
}

#[test]
fn sort_by_last_edit() {
    let f = fixture();
    // Edit Billing's draft last: it becomes the most recently updated.
    f.emu.patch(
        &format!("/api/prompts/{}/versions/1/", f.billing),
        json!({"temperature": 0.1}),
    );
    let reply = f
        .emu
        .call(
            "POST",
            "/api/prompts/list/?sort_by=-current_version__updated_at",
        )
        .json(json!({}))
        .send();
    let order: Vec<Value> = reply.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(
        order,
        [
            json!("Billing helper"),
            json!("Support Bot"),
            json!("support-faq")
        ]
    );
}

#[test]
fn unsupported_fields_operators_and_values_are_400() {
    let f = fixture();
    let cases = [
        (condition("colour", "", json!(["red"])), "colour"),
        (condition("name", "like", json!(["x"])), "name"),
        (condition("name", "icontains", json!([])), "name"),
        (
            condition("commit_count", "", json!(["many"])),
            "commit_count",
        ),
        (
            condition("current_version__messages", "", json!(["x"])),
            "current_version__messages",
        ),
        (
            json!({"filters": {"name": {"operator": "", "value": "Support Bot"}}}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let reply = f
            .emu
            .call("POST", "/api/prompts/list/")
            .json(body.clone())
            .send();
        assert_eq!(reply.status, 400, "{body}");
        let error = reply.json();
        assert!(error["filters"][field].is_array(), "{body}: {error}");
    }
    let reply = f
        .emu
        .call("POST", "/api/prompts/list/")
        .json(json!({"operator": "XOR"}))
        .send();
    assert_eq!(reply.status, 400);
}
