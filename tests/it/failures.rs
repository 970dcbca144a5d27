//! A pass that ends early (unreachable API, no key, a refused key, no repository) still
//! reports: with `--output json`, stdout holds one document with the error and its
//! class, and what the pass had found before it stopped; stderr says it once more.

use serde_json::Value;

use crate::support::emulator::TestEmulator;
use crate::support::scenario::{Scenario, json_of, prompt, texts};

fn scenario_with_a_broken_file(emu: TestEmulator) -> Scenario {
    let s = Scenario::with(emu);
    s.repo.write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.write(
        "broken.prompt.yaml",
        "name: Broken\nmodel: m\nmessages: []\n",
    );
    s.repo.commit("One prompt, one broken file");
    s
}

fn error_of(report: &Value) -> (&str, &str) {
    let error = &report["error"];
    (
        error["class"]
            .as_str()
            .unwrap_or_else(|| panic!("{report:#}")),
        error["message"].as_str().unwrap(),
    )
}

#[test]
fn an_unreachable_api_still_gives_a_json_report_with_the_files_it_read() {
    let s = scenario_with_a_broken_file(TestEmulator::start());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = s
        .cmd(&["sync", "--output", "json"])
        .env("RESPAN_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "0s")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    let (class, message) = error_of(&report);
    assert_eq!(class, "transient");
    assert!(message.contains("cannot connect"), "{message}");
    assert_eq!(report["invalid_files"][0]["file"], "broken.prompt.yaml");
    assert!(report["source"]["commit"].is_string(), "{report:#}");
    let (_, err) = texts(&output);
    assert!(
        err.contains("error: ") && err.contains("cannot connect"),
        "{err}"
    );
}

#[test]
fn no_key_is_a_stalled_pass_in_the_json_report() {
    let s = scenario_with_a_broken_file(TestEmulator::start());
    let output = s
        .cmd(&["plan", "--output", "json"])
        .env_remove("RESPAN_API_KEY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    let (class, message) = error_of(&report);
    assert_eq!(class, "stalled");
    assert!(message.contains("no API key"), "{message}");
    assert_eq!(report["mode"], "plan");
    assert_eq!(report["prompts"], Value::Array(vec![]));
    assert_eq!(s.emu.requests().len(), 0, "nothing was sent");
}

#[test]
fn a_refused_key_is_stalled_and_the_text_report_says_it_stopped() {
    let s = scenario_with_a_broken_file(TestEmulator::refusing_the_test_key());
    let report = json_of(&s.run(&["sync", "--output", "json"], 1));
    let (class, message) = error_of(&report);
    assert_eq!(class, "stalled");
    assert!(message.contains("refused the key"), "{message}");

    let (out, err) = texts(&s.run(&["sync"], 1));
    assert!(
        out.contains("invalid"),
        "the broken file is still reported: {out}"
    );
    assert!(out.contains("Stopped early on commit"), "{out}");
    assert_eq!(
        err.matches("refused the key").count(),
        1,
        "said once: {err}"
    );
}

#[test]
fn outside_a_repository_the_json_report_carries_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = crate::support::promptsync()
        .current_dir(dir.path())
        .env("RESPAN_API_KEY", "sk_test")
        .args(["sync", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    let (_, message) = error_of(&report);
    assert!(message.contains("not inside a git repository"), "{message}");
    assert_eq!(report["summary"]["failed"], 0);
}
