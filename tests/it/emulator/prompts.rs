//! Prompt endpoints: E1 list (paging, ordering, count), E2 create, E4 retrieve,
//! E5 update, E6 delete, E14/E15 summary.

use serde_json::{Value, json};

use super::{commit, deploy, prompt_with_versions, version_body};
use crate::support::emulator::TestEmulator;

fn list(emu: &TestEmulator, query: &str, body: Value) -> (u16, Value) {
    let reply = emu
        .call("POST", &format!("/api/prompts/list/{query}"))
        .json(body)
        .send();
    (reply.status, reply.json())
}

fn names(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn create_prompt_answers_201_with_the_documented_shape() {
    let emu = TestEmulator::start();
    let reply = emu
        .call("POST", "/api/prompts/")
        .json(json!({"name": "Customer Support Assistant", "description": "Answers questions"}))
        .send();
    assert_eq!(reply.status, 201, "{}", reply.text);
    let prompt = reply.json();
    let id = prompt["id"].as_str().unwrap();
    assert!(id.starts_with("prm_"), "{id}");
    assert_eq!(prompt["prompt_id"], json!(id));
    assert_eq!(prompt["name"], json!("Customer Support Assistant"));
    assert_eq!(prompt["description"], json!("Answers questions"));
    assert_eq!(prompt["prompt_slug"], json!("customer-support-assistant"));
    assert_eq!(prompt["tags"], json!([]));
    assert_eq!(prompt["starred"], json!(false));
    assert_eq!(prompt["commit_count"], json!(0));
    assert_eq!(prompt["current_version"], Value::Null);
    assert_eq!(prompt["live_version"], Value::Null);
    for stamp in ["created_at", "updated_at"] {
        assert!(prompt[stamp].as_str().unwrap().ends_with('Z'), "{prompt}");
    }
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );

    let untitled = emu.call("POST", "/api/prompts/").json(json!({})).send();
    assert_eq!(untitled.status, 201);
    assert_eq!(untitled.json()["name"], json!("Untitled"));
    let twin = emu
        .call("POST", "/api/prompts/")
        .json(json!({"name": "Customer Support Assistant"}))
        .send();
    assert_eq!(twin.status, 201, "names are not unique");
    assert_ne!(twin.json()["id"], prompt["id"]);
}

#[test]
fn retrieve_prompt_returns_full_current_and_live_versions() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "Support", 1);
    commit(&emu, &id);
    deploy(&emu, &id, 1);
    emu.create_version(&id, version_body("newer"));

    let reply = emu.call("GET", &format!("/api/prompts/{id}/")).send();
    assert_eq!(reply.status, 200);
    let prompt = reply.json();
    let current = &prompt["current_version"];
    assert_eq!(current["version"], json!(2));
    assert_eq!(current["readonly"], json!(false));
    assert_eq!(current["is_deployed"], json!(false));
    assert_eq!(current["messages"][0]["content"], json!("newer"));
    assert_eq!(current["temperature"], json!(0.7));
    let live = &prompt["live_version"];
    assert_eq!(live["version"], json!(1));
    assert_eq!(live["readonly"], json!(true));
    assert_eq!(live["is_deployed"], json!(true));
    assert_eq!(live["messages"][0]["content"], json!("Support v1"));
    assert_eq!(prompt["commit_count"], json!(1));

    let missing = emu.call("GET", "/api/prompts/prm_nope/").send();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json(), json!({"detail": "Not found."}));
}

#[test]
fn update_prompt_changes_metadata_only() {
    let emu = TestEmulator::start();
    let id = prompt_with_versions(&emu, "Before", 1);
    let before = emu.get(&format!("/api/prompts/{id}/"));
    let reply = emu
        .call("PATCH", &format!("/api/prompts/{id}/"))
        .json(json!({"name": "After", "description": "new text", "messages": []}))
        .send();
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["id"], json!(id));
    assert_eq!(body["name"], json!("After"));
    assert_eq!(body["description"], json!("new text"));
    assert!(body["updated_at"].as_str().unwrap() > before["updated_at"].as_str().unwrap());

    let after = emu.get(&format!("/api/prompts/{id}/"));
    assert_eq!(after["name"], json!("After"));
    assert_eq!(
        after["current_version"], before["current_version"],
        "content untouched"
    );

    let cleared = emu
        .call("PATCH", &format!("/api/prompts/{id}/"))
        .json(json!({"description": null}))
        .send();
    assert_eq!(cleared.json()["description"], Value::Null);
    let missing = emu
        .call("PATCH", "/api/prompts/prm_nope/")
        .json(json!({"name": "x"}))
        .send();
    assert_eq!(missing.status, 404);
}

#[test]
fn delete_prompt_is_a_soft_delete() {
    let emu = TestEmulator::start();
    let gone = prompt_with_versions(&emu, "Gone", 1);
    let kept = prompt_with_versions(&emu, "Kept", 1);

    let reply = emu.call("DELETE", &format!("/api/prompts/{gone}/")).send();
    assert_eq!(reply.status, 204);
    assert!(reply.text.is_empty(), "no body: {}", reply.text);

    assert_eq!(
        emu.call("GET", &format!("/api/prompts/{gone}/"))
            .send()
            .status,
        404
    );
    assert_eq!(
        emu.call("GET", &format!("/api/prompts/{gone}/versions/"))
            .send()
            .status,
        404
    );
    assert_eq!(
        emu.call("DELETE", &format!("/api/prompts/{gone}/"))
            .send()
            .status,
        404
    );
    let (_, page) = list(&emu, "", json!({}));
    assert_eq!(names(&page), ["Kept"]);
    assert_eq!(emu.get("/api/prompts/summary/"), json!({"total_count": 1}));

    let (status, deleted) = list(
        &emu,
        "",
        json!({"filters": {"is_deleted": {"operator": "", "value": [true]}}}),
    );
    assert_eq!(status, 200);
    assert_eq!(names(&deleted), ["Gone"]);
    assert!(emu.prompts().iter().all(|p| p["id"] == json!(kept)));
}

#[test]
fn list_pages_with_links_and_invalid_pages() {
    let emu = TestEmulator::start();
    for n in 1..=7 {
        emu.create_prompt(&format!("p{n}"));
    }
    let (status, first) = list(&emu, "?page=1&page_size=3", json!({}));
    assert_eq!(status, 200);
    assert_eq!(names(&first), ["p7", "p6", "p5"], "newest first (-id)");
    assert_eq!(first["count"], json!(3), "per-page count by default");
    assert_eq!(first["previous"], Value::Null);
    let next = first["next"].as_str().unwrap();
    assert!(next.starts_with(&emu.base_url()), "{next}");
    assert!(
        next.contains("/api/prompts/list/?") && next.contains("page=2"),
        "{next}"
    );

    let (_, last) = list(&emu, "?page=3&page_size=3", json!({}));
    assert_eq!(names(&last), ["p1"]);
    assert_eq!(last["next"], Value::Null);
    assert!(last["previous"].as_str().unwrap().contains("page=2"));

    for query in ["?page=4&page_size=3", "?page=0", "?page=abc"] {
        let (status, body) = list(&emu, query, json!({}));
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Invalid page."})),
            "{query}"
        );
    }

    let (_, ascending) = list(&emu, "?page_size=100&sort_by=id", json!({}));
    assert_eq!(names(&ascending)[0], "p1");
    let (status, body) = list(&emu, "?sort_by=colour", json!({}));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn list_clamps_page_size_to_100_and_count_mode_total_counts_all() {
    let emu = TestEmulator::start();
    for n in 0..105 {
        emu.create_prompt(&format!("p{n}"));
    }
    let (_, page) = list(&emu, "?page_size=500", json!({}));
    assert_eq!(page["results"].as_array().unwrap().len(), 100);
    assert_eq!(page["count"], json!(100));
    let (_, default) = list(&emu, "", json!({}));
    assert_eq!(
        default["results"].as_array().unwrap().len(),
        25,
        "default page size"
    );

    emu.set_knobs(json!({"count_mode": "total"}));
    let (_, page) = list(&emu, "?page_size=10", json!({}));
    assert_eq!(page["count"], json!(105));
    assert_eq!(page["results"].as_array().unwrap().len(), 10);
}

#[test]
fn an_empty_list_is_one_empty_page() {
    let emu = TestEmulator::start();
    let (status, page) = list(&emu, "", json!({}));
    assert_eq!(status, 200);
    assert_eq!(
        page,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
    assert_eq!(list(&emu, "?page=2", json!({})).0, 404);
    // An empty body is accepted as no filters.
    let reply = emu.call("POST", "/api/prompts/list/").send();
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn summary_counts_active_prompts_with_and_without_filters() {
    let emu = TestEmulator::start();
    let a = prompt_with_versions(&emu, "alpha", 1);
    prompt_with_versions(&emu, "beta", 1);
    emu.create_prompt("gamma");
    emu.patch(
        &format!("/api/prompts/{a}/versions/1/"),
        json!({"model": "gpt-4o-mini"}),
    );

    let reply = emu.call("GET", "/api/prompts/summary/").send();
    assert_eq!(
        (reply.status, reply.json()),
        (200, json!({"total_count": 3}))
    );
    let filtered = emu
        .call("POST", "/api/prompts/summary/")
        .json(json!({"filters": {"current_version__model": {"operator": "in", "value": ["gpt-4o-mini"]}}}))
        .send();
    assert_eq!(
        (filtered.status, filtered.json()),
        (200, json!({"total_count": 1}))
    );
    let all = emu
        .call("POST", "/api/prompts/summary/")
        .json(json!({}))
        .send();
    assert_eq!(all.json(), json!({"total_count": 3}));
    let bad = emu
        .call("POST", "/api/prompts/summary/")
        .json(json!({"filters": {"creator_email": {"value": ["x"]}}}))
        .send();
    assert_eq!(bad.status, 400, "creator_email is a list-only field");
}
