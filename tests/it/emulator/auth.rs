//! Authentication (respan-api.md section 5) and routing: trailing slashes, unknown
//! paths, wrong methods.

use promptsync_emulator::EmulatorConfig;
use serde_json::json;

use crate::support::emulator::TestEmulator;

#[test]
fn a_missing_or_malformed_bearer_is_401() {
    let emu = TestEmulator::start();
    let missing = emu.call("GET", "/api/prompts/summary/").key(None).send();
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json(), json!({"detail": "Missing bearer token."}));
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let basic = emu
        .call("GET", "/api/prompts/summary/")
        .key(None)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send();
    assert_eq!(basic.status, 401);
    // Without configured keys, any Bearer key is accepted.
    let any = emu
        .call("GET", "/api/prompts/summary/")
        .key(Some("whatever"))
        .send();
    assert_eq!(any.status, 200);
}

#[test]
fn configured_keys_forbidden_keys_and_unknown_keys() {
    let emu = TestEmulator::start_with(EmulatorConfig {
        api_keys: vec!["sk_test_emulator".to_owned(), "sk_revoked_scope".to_owned()],
        forbidden_keys: vec!["sk_revoked_scope".to_owned()],
        ..EmulatorConfig::default()
    });
    let good = emu.call("GET", "/api/prompts/summary/").send();
    assert_eq!(good.status, 200, "the helpers' key is configured");
    let unknown = emu
        .call("POST", "/api/prompts/")
        .key(Some("sk_other"))
        .json(json!({}))
        .send();
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.json(),
        json!({"detail": "Unknown or revoked API key."})
    );
    let forbidden = emu
        .call("GET", "/api/prompts/summary/")
        .key(Some("sk_revoked_scope"))
        .send();
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.json()["detail"].is_string());
    assert!(emu.prompts().is_empty(), "refused requests did nothing");
}

#[test]
fn slashless_and_unknown_paths_are_404_and_wrong_methods_405() {
    let emu = TestEmulator::start();
    let id = emu.create_prompt("p");
    for (method, path) in [
        ("POST", "/api/prompts/list".to_owned()),
        ("POST", "/api/prompts".to_owned()),
        ("GET", format!("/api/prompts/{id}")),
        ("GET", format!("/api/prompts/{id}/versions")),
        ("POST", format!("/api/prompts/{id}/commits")),
        ("GET", "/api/nothing/".to_owned()),
        ("GET", "/".to_owned()),
    ] {
        let reply = emu.call(method, &path).json(json!({})).send();
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(
            reply.json(),
            json!({"detail": "Not found."}),
            "{method} {path}"
        );
    }
    let no_key = emu.call("GET", "/api/prompts/list").key(None).send();
    assert_eq!(no_key.status, 404, "routing comes before auth");

    let wrong = emu.call("GET", "/api/prompts/list/").send();
    assert_eq!(wrong.status, 405);
    assert_eq!(
        wrong.json(),
        json!({"detail": "Method \"GET\" not allowed."})
    );
    assert_eq!(
        emu.call("PUT", &format!("/api/prompts/{id}/"))
            .json(json!({}))
            .send()
            .status,
        405
    );
}

#[test]
fn the_admin_endpoint_can_be_turned_off() {
    let emu = TestEmulator::start_with(EmulatorConfig {
        admin: false,
        ..EmulatorConfig::default()
    });
    let reply = emu.http().admin("GET", "/_emulator/knobs", None);
    assert_eq!(reply.status, 404);
}
