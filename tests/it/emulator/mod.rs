//! The emulator's conformance suite: every endpoint, lifecycle rule, validation error
//! and fault knob of respan-api.md, exercised through raw HTTP (reqwest), never
//! through promptsync's API client, so a bug shared by the client and the emulator
//! cannot hide.

mod admin;
mod auth;
mod bulk;
mod faults;
mod filters;
mod lifecycle;
mod presets;
mod process;
mod prompts;
mod validation;
mod versions;

use serde_json::{Value, json};

use crate::support::emulator::TestEmulator;

/// A create-version body with one system message.
pub(crate) fn version_body(text: &str) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "system", "content": text}]})
}

/// A prompt with `count` versions (the last one the draft); returns its id.
pub(crate) fn prompt_with_versions(emu: &TestEmulator, name: &str, count: usize) -> String {
    let id = emu.create_prompt(name);
    for n in 1..=count {
        emu.create_version(&id, version_body(&format!("{name} v{n}")));
    }
    id
}

/// Commit the draft of `id`; returns the committed version number.
pub(crate) fn commit(emu: &TestEmulator, id: &str) -> u64 {
    let (status, body) = emu.post(&format!("/api/prompts/{id}/commits/"), json!({}));
    assert_eq!(status, 201, "commit: {body}");
    body["version"].as_u64().expect("version number")
}

/// Deploy version `version` of `id`.
pub(crate) fn deploy(emu: &TestEmulator, id: &str, version: u64) -> Value {
    let (status, body) = emu.post(
        &format!("/api/prompts/{id}/deployments/"),
        json!({ "version": version }),
    );
    assert_eq!(status, 200, "deploy: {body}");
    body
}

/// `(version, readonly, is_deployed)` of every version, newest first.
pub(crate) fn states(emu: &TestEmulator, id: &str) -> Vec<(u64, bool, bool)> {
    emu.versions(id)
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["readonly"].as_bool().unwrap(),
                v["is_deployed"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The keys of a JSON object, in order.
pub(crate) fn keys(object: &Value) -> Vec<&str> {
    object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}
