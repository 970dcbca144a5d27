//! Version endpoints: E7 list, E8 create, E9 retrieve, E10 update, E11 delete.

use serde_json::{Value, json};

use super::keys;
use super::{commit, deploy, prompt_with_versions, states, version_body};
use crate::support::emulator::TestEmulator;

/// The keys of a full version object, in the API's order (E8).
const VERSION_KEYS: [&str; 29] = [
    "id",
    "prompt_version_id",
    "version",
    "description",
    "messages",
    "thinking",
    "model",
    "stream",
    "temperature",
    "max_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "reasoning_effort",
    "verbosity",
    "seed",
    "variables",
    "fallback_models",
    "load_balance_models",
    "tools",
    "tool_choice",
    "response_format",
    "json_schema",
    "is_enforcing_response_format",
    "readonly",
    "is_deployed",
    "edited_by",
    "created_at",
    "updated_at",
];

#[test]
fn create_version_answers_201_with_the_full_object_and_defaults() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    let body = json!({
        "description": "promptsync 1a2b3c4: first",
        "model": "gpt-4o",
        "temperature": 1,
        "max_tokens": 2048,
        "messages": [
            {"role": "system", "content": "You help with {{product}}."},
            {"role": "user", "content": [{"type": "text", "text": "{{question}}"}], "name": "asker"},
            {"role": "assistant", "content": null},
        ],
        "variables": {"product": "Acme", "question": ["a", "b"]},
        "fallback_models": ["gpt-4.1-mini"],
        "load_balance_models": [{"model": "gpt-4o", "weight": 0.6}, {"model": "gpt-4.1-mini", "weight": 0.4}],
        "tools": [{"type": "function", "function": {"name": "search"}}],
        "tool_choice": "auto",
        "prompt_id": id,
        "unknown": "ignored",
    });
    let reply = emu
        .call("POST", &format!("/api/prompts/{id}/versions/"))
        .json(body.clone())
        .send();
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(
        reply.text.contains("\"temperature\":1.0"),
        "floats echo as floats: {}",
        reply.text
    );
    let version = reply.json();
    assert_eq!(keys(&version), VERSION_KEYS);
    assert!(version["id"].as_str().unwrap().starts_with("pv_"));
    assert_eq!(version["prompt_version_id"], version["id"]);
    assert_eq!(version["version"], json!(1));
    assert_eq!(
        version["messages"], body["messages"],
        "messages stored verbatim"
    );
    assert_eq!(version["variables"], body["variables"]);
    assert_eq!(version["load_balance_models"], body["load_balance_models"]);
    assert_eq!(version["tool_choice"], json!("auto"));
    assert_eq!(version["max_tokens"], json!(2048));
    // Left out: filled with the section 4.13 defaults.
    assert_eq!(version["stream"], json!(false));
    assert_eq!(version["top_p"], json!(1.0));
    assert_eq!(version["frequency_penalty"], json!(0));
    assert_eq!(version["presence_penalty"], json!(0));
    assert_eq!(version["is_enforcing_response_format"], json!(false));
    for null in [
        "thinking",
        "reasoning_effort",
        "verbosity",
        "seed",
        "response_format",
        "json_schema",
    ] {
        assert_eq!(version[null], Value::Null, "{null}");
    }
    assert_eq!(version["readonly"], json!(false));
    assert_eq!(version["is_deployed"], json!(false));
    assert!(version["edited_by"]["email"].is_string());
    assert!(version.get("unknown").is_none());

    let minimal = emu.create_version(
        &id,
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(minimal["model"], json!("gpt-4o-mini"), "default model");
    assert_eq!(minimal["temperature"], json!(0.7));
    assert_eq!(minimal["max_tokens"], json!(4096));
    assert_eq!(minimal["variables"], json!({}));

    let missing = emu
        .call("POST", "/api/prompts/prm_nope/versions/")
        .json(version_body("x"))
        .send();
    assert_eq!(missing.status, 404);
}

#[test]
fn list_versions_newest_first_with_paging() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 5);
    let reply = emu
        .call("GET", &format!("/api/prompts/{id}/versions/?page_size=2"))
        .send();
    assert_eq!(reply.status, 200);
    let page = reply.json();
    let numbers: Vec<u64> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [5, 4]);
    assert_eq!(page["count"], json!(2));
    assert!(
        page["next"]
            .as_str()
            .unwrap()
            .contains(&format!("/api/prompts/{id}/versions/?"))
    );
    assert_eq!(
        keys(&page["results"][0]),
        VERSION_KEYS,
        "items are full versions"
    );

    let last = emu
        .call(
            "GET",
            &format!("/api/prompts/{id}/versions/?page=3&page_size=2"),
        )
        .send();
    assert_eq!(last.json()["results"][0]["version"], json!(1));
    assert_eq!(last.json()["next"], Value::Null);
    let past = emu
        .call(
            "GET",
            &format!("/api/prompts/{id}/versions/?page=4&page_size=2"),
        )
        .send();
    assert_eq!(
        (past.status, past.json()),
        (404, json!({"detail": "Invalid page."}))
    );
    assert_eq!(emu.versions(&id).len(), 5);

    let empty = emu.create_prompt("empty");
    let page = emu.get(&format!("/api/prompts/{empty}/versions/"));
    assert_eq!(page["results"], json!([]));
}

#[test]
fn list_versions_clamps_page_size_to_500() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("many");
    for n in 0..501 {
        emu.create_version(
            &id,
            json!({"messages": [{"role": "user", "content": format!("{n}")}]}),
        );
    }
    let page = emu.get(&format!("/api/prompts/{id}/versions/?page_size=1000"));
    assert_eq!(page["results"].as_array().unwrap().len(), 500);
    assert!(page["next"].is_string());
    assert_eq!(page["results"][0]["version"], json!(501));
}

#[test]
fn retrieve_version_and_its_404s() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 2);
    let reply = emu
        .call("GET", &format!("/api/prompts/{id}/versions/1/"))
        .send();
    assert_eq!(reply.status, 200);
    let version = reply.json();
    assert_eq!(keys(&version), VERSION_KEYS);
    assert_eq!(version["readonly"], json!(true));
    assert_eq!(version["messages"][0]["content"], json!("p v1"));
    for path in [
        "versions/3/",
        "versions/0/",
        "versions/one/",
        "versions/-1/",
    ] {
        let reply = emu.call("GET", &format!("/api/prompts/{id}/{path}")).send();
        assert_eq!(reply.status, 404, "{path}");
    }
    assert_eq!(
        emu.call("GET", "/api/prompts/prm_nope/versions/1/")
            .send()
            .status,
        404
    );
}

#[test]
fn update_version_edits_the_draft_and_clears_with_null() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 1);
    emu.patch(
        &format!("/api/prompts/{id}/versions/1/"),
        json!({"seed": 42}),
    );
    let before = emu.get(&format!("/api/prompts/{id}/versions/1/"));
    let reply = emu
        .call("PATCH", &format!("/api/prompts/{id}/versions/1/"))
        .json(json!({"temperature": 0.3, "seed": null}))
        .send();
    assert_eq!(reply.status, 200, "{}", reply.text);
    let after = reply.json();
    assert_eq!(after["temperature"], json!(0.3));
    assert_eq!(after["seed"], Value::Null);
    assert_eq!(after["version"], json!(1));
    assert_eq!(
        after["messages"], before["messages"],
        "other fields unchanged"
    );
    assert!(after["updated_at"].as_str().unwrap() > before["updated_at"].as_str().unwrap());
    assert_eq!(after["created_at"], before["created_at"]);
    assert_eq!(keys(&after), VERSION_KEYS);

    let missing = emu
        .call("PATCH", &format!("/api/prompts/{id}/versions/9/"))
        .json(json!({"temperature": 0.3}))
        .send();
    assert_eq!(missing.status, 404);
}

#[test]
fn update_version_deploy_true_deploys_a_committed_version() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 2);
    let reply = emu
        .call("PATCH", &format!("/api/prompts/{id}/versions/1/"))
        .json(json!({"deploy": true}))
        .send();
    assert_eq!(reply.status, 200, "{}", reply.text);
    let version = reply.json();
    assert_eq!(version["readonly"], json!(true));
    assert_eq!(version["is_deployed"], json!(true));
    assert_eq!(states(&emu, &id), [(2, false, false), (1, true, true)]);

    let draft = emu
        .call("PATCH", &format!("/api/prompts/{id}/versions/2/"))
        .json(json!({"deploy": true}))
        .send();
    assert_eq!(draft.status, 400);
    assert_eq!(
        draft.json(),
        json!({"detail": "Version 2 is a draft; commit it before deploying."})
    );
}

#[test]
fn delete_version_answers_204_and_keeps_numbers() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 2);
    let reply = emu
        .call("DELETE", &format!("/api/prompts/{id}/versions/2/"))
        .send();
    assert_eq!(reply.status, 204);
    assert!(reply.text.is_empty());
    let prompt = emu.get(&format!("/api/prompts/{id}/"));
    assert_eq!(
        prompt["current_version"]["version"],
        json!(1),
        "newest remaining"
    );
    let next = emu.create_version(&id, version_body("again"));
    assert_eq!(next["version"], json!(3), "a deleted number is not reused");
    assert_eq!(
        emu.call("DELETE", &format!("/api/prompts/{id}/versions/2/"))
            .send()
            .status,
        404
    );

    emu.delete(&format!("/api/prompts/{id}/versions/3/"));
    emu.delete(&format!("/api/prompts/{id}/versions/1/"));
    let prompt = emu.get(&format!("/api/prompts/{id}/"));
    assert_eq!(prompt["current_version"], Value::Null);
}

#[test]
fn commit_and_deploy_reply_with_the_short_object() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 1);
    let reply = emu
        .call("POST", &format!("/api/prompts/{id}/commits/"))
        .json(json!({"description": "release 1"}))
        .send();
    assert_eq!(reply.status, 201, "{}", reply.text);
    let short = reply.json();
    let short_keys = [
        "id",
        "prompt_version_id",
        "version",
        "description",
        "messages",
        "model",
        "readonly",
        "is_deployed",
        "edited_by",
        "created_at",
        "updated_at",
    ];
    assert_eq!(keys(&short), short_keys);
    assert_eq!(short["readonly"], json!(true));
    assert_eq!(short["description"], json!("release 1"));

    let reply = emu
        .call("POST", &format!("/api/prompts/{id}/deployments/"))
        .json(json!({"version": 1}))
        .send();
    assert_eq!(reply.status, 200, "{}", reply.text);
    let deployed = reply.json();
    assert_eq!(keys(&deployed), short_keys);
    assert_eq!(deployed["is_deployed"], json!(true));
    let missing = deploy_status(&emu, &id, 7);
    assert_eq!(missing, 404);
}

fn deploy_status(emu: &TestEmulator, id: &str, version: u64) -> u16 {
    emu.call("POST", &format!("/api/prompts/{id}/deployments/"))
        .json(json!({ "version": version }))
        .send()
        .status
}

#[test]
fn deploying_the_live_version_again_is_a_no_op() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 1);
    commit(&emu, &id);
    deploy(&emu, &id, 1);
    let before = emu.get(&format!("/api/prompts/{id}/"));
    assert_eq!(deploy_status(&emu, &id, 1), 200);
    let after = emu.get(&format!("/api/prompts/{id}/"));
    assert_eq!(before, after, "nothing changed, not even updated_at");
}
