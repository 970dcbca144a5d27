//! Request validation (respan-api.md 4.13): every documented rule gives 400 with a
//! DRF-style JSON body, and a refused request changes nothing.

use serde_json::{Value, json};

use crate::support::emulator::TestEmulator;

fn with(field: &str, value: Value) -> Value {
    let mut body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    body[field] = value;
    body
}

#[test]
fn every_version_field_rule_on_create() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    let path = format!("/api/prompts/{id}/versions/");
    let cases: Vec<(Value, Value)> = vec![
        (
            json!({"model": "gpt-4o"}),
            json!({"messages": ["This field is required."]}),
        ),
        (
            with("messages", json!([])),
            json!({"messages": ["This list may not be empty."]}),
        ),
        (
            with("messages", json!("hi")),
            json!({"messages": ["Expected a list of items but got type \"str\"."]}),
        ),
        (
            with("messages", json!([{"content": "no role"}])),
            json!({"messages": [{"role": ["This field is required."]}]}),
        ),
        (
            with("messages", json!([{"role": "sytem", "content": "x"}])),
            json!({"messages": [{"role": ["\"sytem\" is not a valid choice."]}]}),
        ),
        (
            with("messages", json!([{"role": "user", "content": 5}])),
            json!({"messages": [{"content": ["Content must be a string, null, or a list of content parts."]}]}),
        ),
        (
            with(
                "messages",
                json!([{"role": "user", "content": [{"text": "no type"}]}]),
            ),
            json!({"messages": [{"content": ["Each content part must be an object with a string \"type\"."]}]}),
        ),
        (
            with("temperature", json!(2.01)),
            json!({"temperature": ["Ensure this value is less than or equal to 2."]}),
        ),
        (
            with("temperature", json!(-0.1)),
            json!({"temperature": ["Ensure this value is greater than or equal to 0."]}),
        ),
        (
            with("temperature", json!("hot")),
            json!({"temperature": ["A valid number is required."]}),
        ),
        (
            with("top_p", json!(1.5)),
            json!({"top_p": ["Ensure this value is less than or equal to 1."]}),
        ),
        (
            with("frequency_penalty", json!(-2.5)),
            json!({"frequency_penalty": ["Ensure this value is greater than or equal to -2."]}),
        ),
        (
            with("presence_penalty", json!(3)),
            json!({"presence_penalty": ["Ensure this value is less than or equal to 2."]}),
        ),
        (
            with("max_tokens", json!(0)),
            json!({"max_tokens": ["Ensure this value is greater than or equal to 1."]}),
        ),
        (
            with("max_tokens", json!(1.5)),
            json!({"max_tokens": ["A valid integer is required."]}),
        ),
        (
            with("seed", json!("x")),
            json!({"seed": ["A valid integer is required."]}),
        ),
        (
            with("stream", json!("yes please")),
            json!({"stream": ["Must be a valid boolean."]}),
        ),
        (
            with("model", json!(null)),
            json!({"model": ["This field may not be null."]}),
        ),
        (
            with("model", json!("")),
            json!({"model": ["This field may not be blank."]}),
        ),
        (
            with("variables", json!(["a"])),
            json!({"variables": ["Expected a dictionary of items but got type \"list\"."]}),
        ),
        (
            with("tools", json!(["search"])),
            json!({"tools": ["Each item must be an object."]}),
        ),
        (
            with("fallback_models", json!([1])),
            json!({"fallback_models": ["Each item must be a string."]}),
        ),
        (
            with("load_balance_models", json!([{"model": "a", "weight": -1}])),
            json!({"load_balance_models": ["Each item must be an object with a string \"model\" and a positive \"weight\"."]}),
        ),
        (
            with("response_format", json!("json")),
            json!({"response_format": ["Expected a dictionary of items but got type \"str\"."]}),
        ),
        (
            with("deploy", json!("soon")),
            json!({"deploy": ["Must be a valid boolean."]}),
        ),
    ];
    for (body, expected) in cases {
        let reply = emu.call("POST", &path).json(body.clone()).send();
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json(), expected, "{body}");
    }
    assert!(
        emu.versions(&id).is_empty(),
        "no refused request created anything"
    );

    // Several bad fields are reported together.
    let reply = emu
        .call("POST", &path)
        .json(json!({"messages": [], "temperature": 3, "top_p": -1}))
        .send();
    let error = reply.json();
    assert_eq!(reply.status, 400);
    assert_eq!(error.as_object().unwrap().len(), 3, "{error}");
}

#[test]
fn patch_checks_the_same_rules() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    emu.create_version(
        &id,
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    );
    let path = format!("/api/prompts/{id}/versions/1/");
    for (body, field) in [
        (json!({"temperature": 5}), "temperature"),
        (json!({"messages": []}), "messages"),
        (json!({"variables": null}), "variables"),
        (json!({"stream": null}), "stream"),
    ] {
        let reply = emu.call("PATCH", &path).json(body.clone()).send();
        assert_eq!(reply.status, 400, "{body}");
        assert!(reply.json()[field].is_array(), "{body}: {}", reply.text);
    }
    assert_eq!(emu.get(&path)["temperature"], json!(0.7));
}

#[test]
fn prompt_commit_and_deploy_bodies() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    let cases = [
        (
            "POST",
            "/api/prompts/".to_owned(),
            json!({"name": ""}),
            json!({"name": ["This field may not be blank."]}),
        ),
        (
            "POST",
            "/api/prompts/".to_owned(),
            json!({"name": ["x"]}),
            json!({"name": ["Not a valid string."]}),
        ),
        (
            "POST",
            "/api/prompts/".to_owned(),
            json!({"name": "x".repeat(256)}),
            json!({"name": ["Ensure this field has no more than 255 characters."]}),
        ),
        (
            "PATCH",
            format!("/api/prompts/{id}/"),
            json!({"name": null}),
            json!({"name": ["This field may not be null."]}),
        ),
        (
            "POST",
            format!("/api/prompts/{id}/commits/"),
            json!({"description": {"a": 1}}),
            json!({"description": ["Not a valid string."]}),
        ),
        (
            "POST",
            format!("/api/prompts/{id}/deployments/"),
            json!({}),
            json!({"version": ["This field is required."]}),
        ),
        (
            "POST",
            format!("/api/prompts/{id}/deployments/"),
            json!({"version": "latest"}),
            json!({"version": ["A valid integer is required."]}),
        ),
    ];
    for (method, path, body, expected) in cases {
        let reply = emu.call(method, &path).json(body.clone()).send();
        assert_eq!(
            (reply.status, reply.json()),
            (400, expected),
            "{method} {path} {body}"
        );
    }
    assert_eq!(emu.prompts().len(), 1);
}

#[test]
fn malformed_bodies() {
    let emu = TestEmulator::start();
    let broken = emu
        .call("POST", "/api/prompts/")
        .header("content-type", "application/json")
        .raw("{\"name\": ")
        .send();
    assert_eq!(broken.status, 400);
    assert!(
        broken.json()["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error")
    );

    let list = emu
        .call("POST", "/api/prompts/")
        .json(json!(["name"]))
        .send();
    assert_eq!(
        (list.status, list.json()),
        (
            400,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        )
    );

    let text = emu
        .call("POST", "/api/prompts/")
        .header("content-type", "text/plain")
        .raw("name=x")
        .send();
    assert_eq!(text.status, 415);
    assert!(
        text.json()["detail"]
            .as_str()
            .unwrap()
            .contains("text/plain")
    );
    assert!(emu.prompts().is_empty());
}
