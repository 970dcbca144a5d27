//! The lifecycle rules of respan-api.md section 4 and every behaviour knob of 4.13,
//! both readings each.

use serde_json::{Value, json};

use super::{commit, deploy, prompt_with_versions, states, version_body};
use crate::support::emulator::TestEmulator;

fn post(emu: &TestEmulator, path: &str, body: Value) -> (u16, Value) {
    let reply = emu.call("POST", path).json(body).send();
    (reply.status, reply.json())
}

fn patch(emu: &TestEmulator, path: &str, body: Value) -> (u16, Value) {
    let reply = emu.call("PATCH", path).json(body).send();
    (reply.status, reply.json())
}

#[test]
fn a_new_version_is_the_draft_and_freezes_every_earlier_one() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 1);
    assert_eq!(states(&emu, &id), [(1, false, false)]);
    // v1 was never committed: creating v2 freezes it anyway (4.3).
    emu.create_version(&id, version_body("two"));
    emu.create_version(&id, version_body("three"));
    assert_eq!(
        states(&emu, &id),
        [(3, false, false), (2, true, false), (1, true, false)]
    );
    let prompt = emu.get(&format!("/api/prompts/{id}/"));
    assert_eq!(prompt["current_version"]["version"], json!(3));
    assert_eq!(prompt["live_version"], Value::Null);
}

#[test]
fn content_edits_to_a_read_only_version_are_refused() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 2);
    let before = emu.versions(&id);
    for edit in [
        json!({"temperature": 0.1}),
        json!({"messages": [{"role": "user", "content": "changed"}]}),
        json!({"description": "x"}),
        json!({"temperature": 0.1, "deploy": true}),
    ] {
        let (status, body) = patch(
            &emu,
            &format!("/api/prompts/{id}/versions/1/"),
            edit.clone(),
        );
        assert_eq!(status, 400, "{edit}");
        assert_eq!(body, json!({"detail": "Version 1 is read-only."}), "{edit}");
    }
    assert_eq!(emu.versions(&id), before, "nothing changed");
}

#[test]
fn edit_readonly_fork_forks_a_new_draft() {
    let emu = TestEmulator::start();
    emu.set_knobs(json!({"edit_readonly": "fork"}));
    let id = prompt_with_versions(&emu, "p", 2);
    let (status, forked) = patch(
        &emu,
        &format!("/api/prompts/{id}/versions/1/"),
        json!({"temperature": 0.1}),
    );
    assert_eq!(status, 200, "{forked}");
    assert_eq!(forked["version"], json!(3));
    assert_eq!(forked["readonly"], json!(false));
    assert_eq!(forked["temperature"], json!(0.1));
    assert_eq!(
        forked["messages"][0]["content"],
        json!("p v1"),
        "copied from v1"
    );
    assert_eq!(
        states(&emu, &id),
        [(3, false, false), (2, true, false), (1, true, false)]
    );
    let v1 = emu.get(&format!("/api/prompts/{id}/versions/1/"));
    assert_eq!(
        v1["temperature"],
        json!(0.7),
        "the target itself is untouched"
    );
}

#[test]
fn commit_freezes_the_draft_and_needs_one() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 1);
    assert_eq!(commit(&emu, &id), 1);
    assert_eq!(
        states(&emu, &id),
        [(1, true, false)],
        "no new draft (freeze)"
    );
    let (status, body) = post(&emu, &format!("/api/prompts/{id}/commits/"), json!({}));
    assert_eq!(
        (status, body),
        (400, json!({"detail": "No draft version to commit."}))
    );

    let empty = emu.create_prompt("empty");
    let (status, _) = post(&emu, &format!("/api/prompts/{empty}/commits/"), json!({}));
    assert_eq!(status, 400);
    let (status, _) = post(&emu, "/api/prompts/prm_nope/commits/", json!({}));
    assert_eq!(status, 404);

    // The commit message replaces the version's description; none keeps it.
    emu.create_version(
        &id,
        json!({"description": "from sync", "messages": [{"role": "user"}]}),
    );
    let reply = emu
        .call("POST", &format!("/api/prompts/{id}/commits/"))
        .send();
    assert_eq!(reply.status, 201, "an empty body is fine");
    assert_eq!(reply.json()["description"], json!("from sync"));
    emu.create_version(
        &id,
        json!({"description": "from sync", "messages": [{"role": "user"}]}),
    );
    let (_, body) = post(
        &emu,
        &format!("/api/prompts/{id}/commits/"),
        json!({"description": "release"}),
    );
    assert_eq!(body["description"], json!("release"));
}

#[test]
fn commit_mode_bump_opens_the_next_draft() {
    let emu = TestEmulator::start();
    emu.set_knobs(json!({"commit_mode": "bump"}));
    let id = prompt_with_versions(&emu, "p", 1);
    assert_eq!(commit(&emu, &id), 1);
    assert_eq!(states(&emu, &id), [(2, false, false), (1, true, false)]);
    let v1 = emu.get(&format!("/api/prompts/{id}/versions/1/"));
    let v2 = emu.get(&format!("/api/prompts/{id}/versions/2/"));
    assert_eq!(v2["messages"], v1["messages"], "same content");
    // Under bump the old rule "a newer version exists" holds after a commit too.
    deploy(&emu, &id, 1);
}

#[test]
fn only_committed_versions_deploy_and_one_is_live() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 1);
    let (status, body) = post(
        &emu,
        &format!("/api/prompts/{id}/deployments/"),
        json!({"version": 1}),
    );
    assert_eq!(
        (status, body),
        (
            400,
            json!({"detail": "Version 1 is a draft; commit it before deploying."})
        )
    );
    commit(&emu, &id);
    deploy(&emu, &id, 1);
    emu.create_version(&id, version_body("two"));
    commit(&emu, &id);
    deploy(&emu, &id, 2);
    assert_eq!(states(&emu, &id), [(2, true, true), (1, true, false)]);
    // A rollback is a deploy of an older committed version.
    deploy(&emu, &id, 1);
    assert_eq!(states(&emu, &id), [(2, true, false), (1, true, true)]);
    let prompt = emu.get(&format!("/api/prompts/{id}/"));
    assert_eq!(prompt["live_version"]["version"], json!(1));
}

#[test]
fn deploy_draft_auto_commit_commits_then_deploys() {
    let emu = TestEmulator::start();
    emu.set_knobs(json!({"deploy_draft": "auto_commit"}));
    let id = prompt_with_versions(&emu, "p", 1);
    let body = deploy(&emu, &id, 1);
    assert_eq!(body["readonly"], json!(true));
    assert_eq!(body["is_deployed"], json!(true));
    emu.create_version(&id, version_body("two"));
    let (status, body) = patch(
        &emu,
        &format!("/api/prompts/{id}/versions/2/"),
        json!({"deploy": true}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(states(&emu, &id), [(2, true, true), (1, true, false)]);
}

#[test]
fn the_live_version_cannot_be_deleted_unless_delete_live_allows() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 1);
    commit(&emu, &id);
    deploy(&emu, &id, 1);
    let reply = emu
        .call("DELETE", &format!("/api/prompts/{id}/versions/1/"))
        .send();
    assert_eq!(
        (reply.status, reply.json()),
        (
            400,
            json!({"detail": "The live version cannot be deleted."})
        )
    );
    emu.set_knobs(json!({"delete_live": "allow"}));
    let reply = emu
        .call("DELETE", &format!("/api/prompts/{id}/versions/1/"))
        .send();
    assert_eq!(reply.status, 204);
    let prompt = emu.get(&format!("/api/prompts/{id}/"));
    assert_eq!(prompt["live_version"], Value::Null);
    assert_eq!(prompt["current_version"], Value::Null);
}

#[test]
fn deploy_on_create_is_refused_unless_create_deploy_allows() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    let mut body = version_body("one");
    body["deploy"] = json!(false);
    let (status, _) = post(&emu, &format!("/api/prompts/{id}/versions/"), body.clone());
    assert_eq!(status, 201, "deploy: false is fine");
    body["deploy"] = json!(true);
    let (status, refused) = post(&emu, &format!("/api/prompts/{id}/versions/"), body.clone());
    assert_eq!(status, 400, "{refused}");
    assert!(refused["deploy"].is_array(), "{refused}");
    assert_eq!(emu.versions(&id).len(), 1, "nothing created");

    emu.set_knobs(json!({"create_deploy": "commit_and_deploy"}));
    let (status, created) = post(&emu, &format!("/api/prompts/{id}/versions/"), body);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["readonly"], json!(true));
    assert_eq!(created["is_deployed"], json!(true));
    assert_eq!(states(&emu, &id), [(2, true, true), (1, true, false)]);
}

#[test]
fn legacy_prompt_deploy_deploys_the_newest_read_only_version() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "p", 3);
    let (status, _) = patch(
        &emu,
        &format!("/api/prompts/{id}/"),
        json!({"deploy": true}),
    );
    assert_eq!(status, 200);
    assert_eq!(
        emu.get(&format!("/api/prompts/{id}/"))["live_version"],
        Value::Null,
        "off by default"
    );
    emu.set_knobs(json!({"legacy_prompt_deploy": true}));
    let (status, _) = patch(
        &emu,
        &format!("/api/prompts/{id}/"),
        json!({"deploy": true}),
    );
    assert_eq!(status, 200);
    assert_eq!(
        states(&emu, &id),
        [(3, false, false), (2, true, true), (1, true, false)]
    );
    let fresh = prompt_with_versions(&emu, "fresh", 1);
    let (status, body) = patch(
        &emu,
        &format!("/api/prompts/{fresh}/"),
        json!({"deploy": true}),
    );
    assert_eq!(status, 400, "no read-only version: {body}");
}

#[test]
fn require_model_makes_model_mandatory_on_create() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    emu.set_knobs(json!({"require_model": true}));
    let (status, error) = post(&emu, &format!("/api/prompts/{id}/versions/"), body.clone());
    assert_eq!(
        (status, error),
        (400, json!({"model": ["This field is required."]}))
    );
    emu.set_knobs(json!({"require_model": false}));
    let (status, created) = post(&emu, &format!("/api/prompts/{id}/versions/"), body);
    assert_eq!(status, 201);
    assert_eq!(created["model"], json!("gpt-4o-mini"));
}

#[test]
fn fill_defaults_alternate_fills_other_values_and_converts_text() {
    let emu = TestEmulator::start();
    emu.set_knobs(json!({"fill_defaults": "alternate"}));
    let id = emu.create_prompt("p");
    let created = emu.create_version(
        &id,
        json!({
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": "plain"},
                {"role": "user", "content": [{"type": "text", "text": "parts"}]},
            ],
        }),
    );
    assert_eq!(created["temperature"], json!(0.2), "given values are kept");
    assert_eq!(created["max_tokens"], json!(1024));
    assert_eq!(
        created["messages"],
        json!([
            {"role": "system", "content": [{"type": "text", "text": "plain"}]},
            {"role": "user", "content": [{"type": "text", "text": "parts"}]},
        ])
    );
    let defaulted =
        emu.create_version(&id, json!({"messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(defaulted["temperature"], json!(1.0));
}

#[test]
fn knobs_are_read_and_checked_through_the_admin_endpoint() {
    let emu = TestEmulator::start();
    let knobs = emu.http().admin("GET", "/_emulator/knobs", None).json();
    assert_eq!(knobs["commit_mode"], json!("freeze"));
    assert_eq!(knobs["deploy_draft"], json!("reject"));
    assert_eq!(knobs["edit_readonly"], json!("reject"));
    assert_eq!(knobs["delete_live"], json!("reject"));
    assert_eq!(knobs["create_deploy"], json!("reject"));
    assert_eq!(knobs["count_mode"], json!("page"));
    assert_eq!(knobs["legacy_prompt_deploy"], json!(false));
    assert_eq!(knobs["require_model"], json!(false));
    assert_eq!(knobs["fill_defaults"], json!("standard"));
    for bad in [
        json!({"comit_mode": "bump"}),
        json!({"commit_mode": "sideways"}),
        json!({"commit_mode": "bump", "latency": {"fixed": 1}}),
    ] {
        let reply = emu
            .http()
            .admin("PATCH", "/_emulator/knobs", Some(bad.clone()));
        assert_eq!(reply.status, 400, "{bad}");
        assert!(reply.json()["detail"].is_string());
    }
    let after = emu.http().admin("GET", "/_emulator/knobs", None).json();
    assert_eq!(
        after["commit_mode"],
        json!("freeze"),
        "a refused patch sets nothing"
    );
}
