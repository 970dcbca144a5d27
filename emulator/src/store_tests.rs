//! Unit tests of the lifecycle rules (store.rs), knob by knob.

use serde_json::{Value, json};

use super::*;
use crate::filters::Scope;
use crate::knobs::FillDefaults;
use crate::validate::{self, Mode};

pub(super) fn knobs() -> Knobs {
    Knobs::default()
}

pub(super) fn body(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

pub(super) fn new_prompt(store: &mut Store) -> String {
    let created = store.create_prompt(PromptInput {
        name: Some("Support assistant".into()),
        ..PromptInput::default()
    });
    created["id"].as_str().unwrap().to_owned()
}

fn version_body(text: &str) -> VersionInput {
    validate::version_input(
        &body(json!({"model": "gpt-4o", "messages": [{"role": "system", "content": text}]})),
        Mode::Create {
            require_model: false,
        },
    )
    .unwrap()
}

pub(super) fn add_version(store: &mut Store, id: &str, text: &str) -> u32 {
    let created = store
        .create_version(id, version_body(text), knobs())
        .unwrap();
    u32::try_from(created["version"].as_u64().unwrap()).unwrap()
}

fn patch(value: Value) -> VersionInput {
    validate::version_input(&body(value), Mode::Patch).unwrap()
}

fn states(store: &Store, id: &str) -> Vec<(u32, bool)> {
    let (versions, _) = store.versions(id).unwrap();
    versions.iter().map(|v| (v.version, v.readonly)).collect()
}

fn live(store: &Store, id: &str) -> Option<u32> {
    store.versions(id).unwrap().1
}

#[test]
fn a_new_prompt_has_no_version_and_a_slug() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    let prompt = store.retrieve_prompt(&id).unwrap();
    assert_eq!(prompt["prompt_id"], json!(id));
    assert_eq!(prompt["prompt_slug"], json!("support-assistant"));
    assert_eq!(prompt["current_version"], Value::Null);
    assert_eq!(prompt["live_version"], Value::Null);
    let untitled = store.create_prompt(PromptInput::default());
    assert_eq!(untitled["name"], json!("Untitled"));
}

#[test]
fn a_new_version_is_the_draft_and_freezes_every_earlier_one() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    assert_eq!(add_version(&mut store, &id, "one"), 1);
    assert_eq!(states(&store, &id), [(1, false)]);
    assert_eq!(add_version(&mut store, &id, "two"), 2);
    assert_eq!(states(&store, &id), [(1, true), (2, false)]);
    let prompt = store.retrieve_prompt(&id).unwrap();
    assert_eq!(prompt["current_version"]["version"], json!(2));
    assert_eq!(
        prompt["current_version"]["messages"][0]["content"],
        json!("two")
    );
}

#[test]
fn omitted_fields_get_the_defaults_and_the_alternate_knob_differs() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    let input = validate::version_input(
        &body(json!({"messages": [{"role": "user", "content": "hi"}]})),
        Mode::Create {
            require_model: false,
        },
    )
    .unwrap();
    let created = store.create_version(&id, input.clone(), knobs()).unwrap();
    assert_eq!(created["model"], json!("gpt-4o-mini"));
    assert_eq!(created["temperature"], json!(0.7));
    assert_eq!(created["max_tokens"], json!(4096));
    assert_eq!(created["top_p"], json!(1.0));
    assert_eq!(created["frequency_penalty"], json!(0));
    assert_eq!(created["stream"], json!(false));
    assert_eq!(created["variables"], json!({}));
    assert_eq!(created["seed"], Value::Null);
    assert_eq!(created["readonly"], json!(false));
    assert_eq!(created["is_deployed"], json!(false));

    let alternate = Knobs {
        fill_defaults: FillDefaults::Alternate,
        ..knobs()
    };
    let created = store.create_version(&id, input, alternate).unwrap();
    assert_eq!(created["temperature"], json!(1.0));
    assert_eq!(created["max_tokens"], json!(1024));
    assert_eq!(
        created["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    );
}

#[test]
fn the_draft_is_edited_in_place_and_read_only_versions_refuse_edits() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    add_version(&mut store, &id, "one");
    let edited = store
        .update_version(
            &id,
            1,
            patch(json!({"temperature": 0.3, "seed": null})),
            knobs(),
        )
        .unwrap();
    assert_eq!(edited["version"], json!(1));
    assert_eq!(edited["temperature"], json!(0.3));
    add_version(&mut store, &id, "two");
    let refused = store
        .update_version(&id, 1, patch(json!({"temperature": 0.1})), knobs())
        .unwrap_err();
    assert_eq!(refused, Failure::bad_request("Version 1 is read-only."));
    let missing = store
        .update_version(&id, 9, patch(json!({"temperature": 0.1})), knobs())
        .unwrap_err();
    assert_eq!(missing.status, 404);
}

#[test]
fn edit_readonly_fork_makes_a_new_draft_from_the_target() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    add_version(&mut store, &id, "one");
    add_version(&mut store, &id, "two");
    let fork = Knobs {
        edit_readonly: EditReadonly::Fork,
        ..knobs()
    };
    let forked = store
        .update_version(&id, 1, patch(json!({"temperature": 0.1})), fork)
        .unwrap();
    assert_eq!(forked["version"], json!(3));
    assert_eq!(forked["readonly"], json!(false));
    assert_eq!(forked["messages"][0]["content"], json!("one"));
    assert_eq!(forked["temperature"], json!(0.1));
    assert_eq!(states(&store, &id), [(1, true), (2, true), (3, false)]);
}

#[test]
fn commit_freezes_the_draft_and_bump_opens_the_next() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    add_version(&mut store, &id, "one");
    let committed = store
        .commit(&id, Some("release one".into()), knobs())
        .unwrap();
    assert_eq!(committed["version"], json!(1));
    assert_eq!(committed["readonly"], json!(true));
    assert_eq!(committed["description"], json!("release one"));
    assert!(committed.get("temperature").is_none(), "short form");
    assert_eq!(states(&store, &id), [(1, true)]);
    let again = store.commit(&id, None, knobs()).unwrap_err();
    assert_eq!(again, Failure::bad_request("No draft version to commit."));

    add_version(&mut store, &id, "two");
    let bump = Knobs {
        commit_mode: CommitMode::Bump,
        ..knobs()
    };
    let committed = store.commit(&id, None, bump).unwrap();
    assert_eq!(committed["version"], json!(2));
    assert_eq!(states(&store, &id), [(1, true), (2, true), (3, false)]);
    let draft = store.retrieve_version(&id, 3).unwrap();
    assert_eq!(draft["messages"][0]["content"], json!("two"));
}

#[test]
fn only_committed_versions_deploy_and_one_is_live() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    add_version(&mut store, &id, "one");
    assert_eq!(
        store.deploy(&id, 1, knobs()).unwrap_err(),
        Failure::bad_request("Version 1 is a draft; commit it before deploying.")
    );
    store.commit(&id, None, knobs()).unwrap();
    let deployed = store.deploy(&id, 1, knobs()).unwrap();
    assert_eq!(deployed["is_deployed"], json!(true));
    assert_eq!(live(&store, &id), Some(1));

    add_version(&mut store, &id, "two");
    store.commit(&id, None, knobs()).unwrap();
    store.deploy(&id, 2, knobs()).unwrap();
    assert_eq!(live(&store, &id), Some(2));
    assert_eq!(
        store.retrieve_version(&id, 1).unwrap()["is_deployed"],
        json!(false)
    );

    let generation = store.generation();
    store.deploy(&id, 2, knobs()).unwrap();
    assert_eq!(
        store.generation(),
        generation,
        "deploying the live version changes nothing"
    );
    // A rollback is a deploy of an older committed version.
    store.deploy(&id, 1, knobs()).unwrap();
    assert_eq!(live(&store, &id), Some(1));
    assert_eq!(store.deploy(&id, 7, knobs()).unwrap_err().status, 404);
    assert_eq!(store.deploy(&id, -1, knobs()).unwrap_err().status, 404);
}

#[test]
fn deploy_draft_auto_commit_commits_first() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    add_version(&mut store, &id, "one");
    let auto = Knobs {
        deploy_draft: DeployDraft::AutoCommit,
        ..knobs()
    };
    let deployed = store.deploy(&id, 1, auto).unwrap();
    assert_eq!(deployed["readonly"], json!(true));
    assert_eq!(deployed["is_deployed"], json!(true));
}

#[test]
fn patch_deploy_true_follows_the_same_rules_and_is_all_or_nothing() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    add_version(&mut store, &id, "one");
    let refused = store
        .update_version(
            &id,
            1,
            patch(json!({"temperature": 1.5, "deploy": true})),
            knobs(),
        )
        .unwrap_err();
    assert_eq!(refused.status, 400);
    let unchanged = store.retrieve_version(&id, 1).unwrap();
    assert_eq!(unchanged["temperature"], json!(0.7), "edit not applied");

    store.commit(&id, None, knobs()).unwrap();
    let deployed = store
        .update_version(&id, 1, patch(json!({"deploy": true})), knobs())
        .unwrap();
    assert_eq!(deployed["is_deployed"], json!(true));
    assert_eq!(deployed["readonly"], json!(true));
}

#[test]
fn the_live_version_cannot_be_deleted_unless_the_knob_allows() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    add_version(&mut store, &id, "one");
    store.commit(&id, None, knobs()).unwrap();
    store.deploy(&id, 1, knobs()).unwrap();
    add_version(&mut store, &id, "two");
    assert_eq!(
        store.delete_version(&id, 1, knobs()).unwrap_err(),
        Failure::bad_request("The live version cannot be deleted.")
    );
    store.delete_version(&id, 2, knobs()).unwrap();
    let prompt = store.retrieve_prompt(&id).unwrap();
    assert_eq!(prompt["current_version"]["version"], json!(1));
    assert_eq!(
        add_version(&mut store, &id, "three"),
        3,
        "numbers are never reused"
    );

    let allow = Knobs {
        delete_live: DeleteLive::Allow,
        ..knobs()
    };
    store.delete_version(&id, 1, allow).unwrap();
    assert_eq!(live(&store, &id), None);
    assert_eq!(
        store.retrieve_prompt(&id).unwrap()["live_version"],
        Value::Null
    );
}

#[test]
fn deploy_on_create_is_refused_unless_the_knob_commits_and_deploys() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    let mut input = version_body("one");
    input.deploy = true;
    let refused = store
        .create_version(&id, input.clone(), knobs())
        .unwrap_err();
    assert_eq!(refused.status, 400);
    assert!(states(&store, &id).is_empty());
    let deploy = Knobs {
        create_deploy: CreateDeploy::CommitAndDeploy,
        ..knobs()
    };
    let created = store.create_version(&id, input, deploy).unwrap();
    assert_eq!(created["readonly"], json!(true));
    assert_eq!(created["is_deployed"], json!(true));
    assert_eq!(live(&store, &id), Some(1));
}

#[test]
fn legacy_prompt_deploy_deploys_the_newest_read_only_version() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    add_version(&mut store, &id, "one");
    add_version(&mut store, &id, "two");
    let deploy = PromptInput {
        deploy: true,
        ..PromptInput::default()
    };
    store.update_prompt(&id, deploy.clone(), knobs()).unwrap();
    assert_eq!(live(&store, &id), None, "ignored while the knob is off");
    let legacy = Knobs {
        legacy_prompt_deploy: true,
        ..knobs()
    };
    store.update_prompt(&id, deploy.clone(), legacy).unwrap();
    assert_eq!(live(&store, &id), Some(1));

    let other = new_prompt(&mut store);
    add_version(&mut store, &other, "draft only");
    assert_eq!(
        store
            .update_prompt(&other, deploy, legacy)
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn deleted_prompts_vanish_but_stay_listable_by_is_deleted() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    let kept = new_prompt(&mut store);
    store.delete_prompt(&id).unwrap();
    assert_eq!(store.retrieve_prompt(&id).unwrap_err().status, 404);
    assert_eq!(store.delete_prompt(&id).unwrap_err().status, 404);
    let all = Filter::parse(&Map::new(), Scope::List).unwrap();
    let sort = Sort::parse(None).unwrap();
    let listed: Vec<&str> = store
        .select(&all, &sort)
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(listed, [kept.as_str()]);
    let deleted = Filter::parse(
        &body(json!({"filters": {"is_deleted": {"value": [true]}}})),
        Scope::List,
    )
    .unwrap();
    assert_eq!(store.count(&deleted), 1);
}

#[test]
fn restored_state_is_checked() {
    let mut store = Store::default();
    let id = new_prompt(&mut store);
    add_version(&mut store, &id, "one");
    let text = serde_json::to_string(&store).unwrap();
    let back: Store = serde_json::from_str(&text).unwrap();
    let back = back.restored().unwrap();
    assert_eq!(back.retrieve_version(&id, 1).unwrap()["version"], json!(1));

    let mut broken: Value = serde_json::from_str(&text).unwrap();
    broken["prompts"][0]["live"] = json!(9);
    let broken: Store = serde_json::from_value(broken).unwrap();
    assert!(broken.restored().unwrap_err().contains("missing version"));
}
