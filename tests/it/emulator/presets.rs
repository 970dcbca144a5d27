//! Response-format presets, E16–E20.

use serde_json::json;

use super::keys;
use crate::support::emulator::TestEmulator;

const CONTENT: &str = r#"{"name": "ticket_triage", "schema": {"type": "object", "properties": {"priority": {"type": "string"}}}}"#;

#[test]
fn create_list_retrieve_update_delete() {
    let emu = TestEmulator::start();
    let reply = emu
        .call("POST", "/api/response-format-presets/")
        .json(json!({"name": "ticket_triage", "response_format_content": CONTENT, "is_enforcing_response_format": true}))
        .send();
    assert_eq!(reply.status, 201, "{}", reply.text);
    let created = reply.json();
    assert_eq!(
        keys(&created),
        [
            "id",
            "name",
            "project",
            "created_by",
            "response_format_content",
            "is_enforcing_response_format"
        ]
    );
    assert_eq!(
        created["response_format_content"],
        json!(CONTENT),
        "kept byte for byte"
    );
    let id = created["id"].as_str().unwrap().to_owned();

    let list = emu
        .call("GET", "/api/response-format-presets/?page=1&page_size=20")
        .send();
    assert_eq!(list.status, 200);
    let page = list.json();
    assert_eq!(page["current_filters"], json!({}));
    assert_eq!(page["count"], json!(1));
    assert_eq!(
        keys(&page["results"][0]),
        ["id", "name", "created_by", "created_at", "updated_at"]
    );

    let detail = emu
        .call("GET", &format!("/api/response-format-presets/{id}/"))
        .send();
    assert_eq!(detail.status, 200);
    assert_eq!(
        detail.json()["created_by"]["email"],
        page["results"][0]["created_by"]["email"]
    );
    assert_eq!(detail.json()["is_enforcing_response_format"], json!(true));

    let updated = emu
        .call("PATCH", &format!("/api/response-format-presets/{id}/"))
        .json(json!({"is_enforcing_response_format": false}))
        .send();
    assert_eq!(updated.status, 200);
    assert_eq!(
        keys(&updated.json()),
        [
            "id",
            "name",
            "response_format_content",
            "is_enforcing_response_format",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(updated.json()["is_enforcing_response_format"], json!(false));

    let deleted = emu
        .call("DELETE", &format!("/api/response-format-presets/{id}/"))
        .send();
    assert_eq!(deleted.status, 204);
    assert!(deleted.text.is_empty());
    assert_eq!(
        emu.call("GET", &format!("/api/response-format-presets/{id}/"))
            .send()
            .status,
        404
    );
    assert_eq!(
        emu.call("DELETE", &format!("/api/response-format-presets/{id}/"))
            .send()
            .status,
        404
    );
}

#[test]
fn preset_content_is_validated() {
    let emu = TestEmulator::start();
    for (body, field) in [
        (json!({"response_format_content": CONTENT}), "name"),
        (json!({"name": "x"}), "response_format_content"),
        (
            json!({"name": "x", "response_format_content": "{not json"}),
            "response_format_content",
        ),
        (
            json!({"name": "x", "response_format_content": r#"{"name": "x"}"#}),
            "response_format_content",
        ),
        (
            json!({"name": "x", "response_format_content": {"name": "x", "schema": {}}}),
            "response_format_content",
        ),
        (
            json!({"name": "x", "response_format_content": CONTENT, "is_enforcing_response_format": "y"}),
            "is_enforcing_response_format",
        ),
    ] {
        let reply = emu
            .call("POST", "/api/response-format-presets/")
            .json(body.clone())
            .send();
        assert_eq!(reply.status, 400, "{body}");
        assert!(reply.json()[field].is_array(), "{body}: {}", reply.text);
    }
    let page = emu.get("/api/response-format-presets/");
    assert_eq!(page["results"], json!([]));
    assert_eq!(
        emu.call("GET", "/api/response-format-presets/?sort_by=colour")
            .send()
            .status,
        400
    );
    assert_eq!(
        emu.call("GET", "/api/response-format-presets")
            .send()
            .status,
        404
    );
}
