//! `promptsync pull`, end to end: adopting a generated account of 240 varied prompts
//! (every field the API has, odd names and texts, several versions, live and newest
//! apart) round-trips exactly: after `pull --all` and a commit, `plan` shows no change
//! and `sync` sends no change request, under both `fill_defaults` readings. Then the
//! rules: named pulls, ambiguous names, never overwriting without `--force`, the live
//! version, and versions the format cannot hold. And where files may go: inside the
//! repository only, never under `.git`, through no symbolic link, never into a FIFO.

use serde_json::{Value, json};

use crate::support::emulator::TestEmulator;
use crate::support::scenario::{Scenario, json_of, texts};

const TEXTS: &[&str] = &[
    "You are a helpful assistant.",
    "Multi-line\ntext with {{topic}}\n",
    "no newline at the end\nsecond line",
    "two trailing newlines\n\n",
    "  leading spaces, then\n  more",
    "\ttab first, then\ttabs",
    "trailing spaces   \nand more  ",
    "carriage\r\nreturns\r\n",
    "# not a comment\n- not a list\nkey: not a key\n--- not a document\n",
    "quotes \" and ' and \\ backslashes",
    "ünïcode, emoji 🎉, 日本語",
    "",
    "0123",
    "true",
    "null",
];

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

/// A version body with a random mix of every field.
fn version_body(rng: &mut fastrand::Rng, i: usize) -> Value {
    let roles = ["system", "user", "assistant", "developer"];
    let mut messages = Vec::new();
    for m in 0..rng.usize(1..4) {
        let role = *pick(rng, &roles);
        let text = format!(
            "{}{}",
            pick(rng, TEXTS),
            if m == 0 {
                format!(" #{i}")
            } else {
                String::new()
            }
        );
        let content = match rng.u8(..6) {
            0 => json!([{"type": "text", "text": text}]),
            1 => {
                json!([{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}])
            }
            2 if role == "assistant" => Value::Null,
            _ => json!(text),
        };
        let mut message = json!({"role": role, "content": content});
        if rng.u8(..8) == 0 {
            message["name"] = json!("speaker_1");
        }
        messages.push(message);
    }
    if rng.u8(..10) == 0 {
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": 1}"}}]}));
        messages
            .push(json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"ok\": true}"}));
    }
    let mut body = json!({
        "model": pick(rng, &["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "o1", "llama3.1:70b"]),
        "messages": messages,
    });
    let maybe = |rng: &mut fastrand::Rng| rng.u8(..3) == 0;
    if maybe(rng) {
        body["temperature"] = json!([0.0, 0.2, 0.7, 1.0, 1.5, 2.0][rng.usize(..6)]);
    }
    if maybe(rng) {
        body["max_tokens"] = json!([1, 256, 4096, 128000][rng.usize(..4)]);
    }
    if maybe(rng) {
        body["top_p"] = json!([0.0, 0.5, 1.0][rng.usize(..3)]);
    }
    if maybe(rng) {
        body["frequency_penalty"] = json!([-2.0, -0.5, 0.0, 1.25][rng.usize(..4)]);
        body["presence_penalty"] = json!([2.0, 0.0, -1.0][rng.usize(..3)]);
    }
    if maybe(rng) {
        body["stream"] = json!(rng.bool());
    }
    if maybe(rng) {
        body["reasoning_effort"] = json!(*pick(rng, &["low", "medium", "high"]));
        body["verbosity"] = json!(*pick(rng, &["low", "high"]));
    }
    if maybe(rng) {
        body["seed"] = json!(rng.i64(-1000..1_000_000));
    }
    if maybe(rng) {
        body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    }
    if maybe(rng) {
        body["variables"] = json!({"topic": "billing", "n": 3, "flag": true, "nested": {"_type": "json", "value": [1, "two", null]}, "with space": "", "0123": "x"});
    }
    if maybe(rng) {
        body["fallback_models"] = json!(["gpt-4o-mini", "claude-3-haiku"]);
    }
    if maybe(rng) {
        body["load_balance_models"] = json!([{"model": "gpt-4o", "weight": 0.8}, {"model": "gpt-4o-mini", "weight": 0.2, "credentials": {"api_key_env": "OTHER"}}]);
    }
    if maybe(rng) {
        body["tools"] = json!([{"type": "function", "function": {"name": "lookup", "description": "Find: things", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}]);
        body["tool_choice"] = match rng.u8(..4) {
            0 => json!({"type": "function", "function": {"name": "lookup"}}),
            n => json!(["auto", "none", "required"][usize::from(n) - 1]),
        };
    }
    if maybe(rng) {
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}});
        body["is_enforcing_response_format"] = json!(rng.bool());
    }
    if maybe(rng) {
        body["json_schema"] = json!({"type": "object", "additionalProperties": false});
    }
    body
}

const NAMES: &[&str] = &[
    "Prompt",
    "2024",
    "yes",
    "Ünïcode",
    "with: colon",
    "#hash",
    "  spaced",
    "a/b",
    "quote \"q\"",
];

/// An account of `n` varied prompts, some with several versions, some deployed.
fn generate(emu: &TestEmulator, n: usize) {
    let mut rng = fastrand::Rng::with_seed(20261202);
    for i in 0..n {
        let name = format!("{} {i}", pick(&mut rng, NAMES));
        let mut body = json!({"name": name});
        if rng.bool() {
            body["description"] = json!(format!("Description: {}", pick(&mut rng, TEXTS)));
        }
        let (status, created) = emu.post("/api/prompts/", body);
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        for _ in 0..rng.usize(1..4) {
            emu.create_version(&id, version_body(&mut rng, i));
        }
        if rng.bool() {
            let (status, committed) = emu.post(&format!("/api/prompts/{id}/commits/"), json!({}));
            assert_eq!(status, 201, "{committed}");
            let version = committed["version"].as_u64().unwrap();
            let (status, deployed) = emu.post(
                &format!("/api/prompts/{id}/deployments/"),
                json!({"version": version}),
            );
            assert_eq!(status, 200, "{deployed}");
            if rng.bool() {
                emu.create_version(&id, version_body(&mut rng, i));
            }
        }
    }
}

fn round_trip(fill_defaults: &str) {
    let s = Scenario::new();
    s.emu.set_knobs(json!({"fill_defaults": fill_defaults}));
    generate(&s.emu, 240);
    s.repo.write("README.md", "prompts\n");
    s.repo.commit("Empty repository");
    let report = json_of(&s.run(&["pull", "--all", "--output", "json"], 0));
    assert_eq!(report["summary"]["written"], 240, "{:#}", report["summary"]);
    assert_eq!(report["summary"]["failed"], 0);
    s.repo.commit("Adopt every prompt");
    s.emu.clear_requests();
    let plan = json_of(&s.run(&["plan", "--output", "json"], 0));
    let changed: Vec<&Value> = plan["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["action"] != "unchanged")
        .collect();
    assert!(
        changed.is_empty(),
        "plan shows changes after a pull: {changed:#?}"
    );
    assert_eq!(plan["summary"]["unchanged"], 240);
    s.sync();
    assert_eq!(
        s.emu.change_requests(),
        vec![],
        "sync sent changes after a pull"
    );
    let again = json_of(&s.run(&["pull", "--all", "--output", "json"], 0));
    assert_eq!(again["prompts"], json!([]), "everything is managed now");
}

#[test]
fn an_account_of_240_prompts_round_trips_exactly() {
    round_trip("standard");
}

#[test]
fn it_round_trips_on_a_server_that_fills_other_defaults_too() {
    round_trip("alternate");
}

fn account() -> (Scenario, String, String) {
    let s = Scenario::new();
    let support = s.emu.create_prompt("Support assistant");
    s.emu.create_version(
        &support,
        json!({"model": "gpt-4o", "messages": [{"role": "system", "content": "v1"}]}),
    );
    s.emu
        .post(&format!("/api/prompts/{support}/commits/"), json!({}));
    s.emu.post(
        &format!("/api/prompts/{support}/deployments/"),
        json!({"version": 1}),
    );
    s.emu.create_version(
        &support,
        json!({"model": "gpt-4o", "messages": [{"role": "system", "content": "v2"}]}),
    );
    let twin_a = s.emu.create_prompt("Twin");
    let twin_b = s.emu.create_prompt("Twin");
    for id in [&twin_a, &twin_b] {
        s.emu.create_version(
            id,
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        );
    }
    s.repo.write("README.md", "prompts\n");
    s.repo.commit("Empty");
    (s, support, twin_a)
}

#[test]
fn named_pulls_the_live_version_and_never_overwriting() {
    let (s, support, twin_a) = account();
    let (out, _) = texts(&s.run(&["pull", "Support assistant"], 0));
    assert!(
        out.contains("wrote prompts/support-assistant.prompt.yaml"),
        "{out}"
    );
    let file = s.repo.read("prompts/support-assistant.prompt.yaml");
    assert!(
        file.starts_with("# yaml-language-server: $schema="),
        "{file}"
    );
    assert!(
        file.contains(&format!("prompt_id: \"{support}\"")),
        "{file}"
    );
    assert!(
        file.contains("content: \"v2\""),
        "the newest version: {file}"
    );

    // The same version again: nothing to do.
    let (out, _) = texts(&s.run(&["pull", "Support assistant"], 0));
    assert!(
        out.contains("unchanged prompts/support-assistant.prompt.yaml"),
        "{out}"
    );
    // Another version without --force: not written, so not a success.
    let (out, _) = texts(&s.run(&["pull", &support, "--live"], 1));
    assert!(
        out.contains("exists prompts/support-assistant.prompt.yaml"),
        "{out}"
    );
    assert!(out.contains("add --force"), "{out}");
    assert!(
        s.repo
            .read("prompts/support-assistant.prompt.yaml")
            .contains("\"v2\""),
        "not overwritten"
    );
    let (out, _) = texts(&s.run(&["pull", &support, "--live", "--force"], 0));
    assert!(
        out.contains("replaced prompts/support-assistant.prompt.yaml"),
        "{out}"
    );
    assert!(
        s.repo
            .read("prompts/support-assistant.prompt.yaml")
            .contains("content: \"v1\"")
    );

    let output = s.run(&["pull", "Twin", "Nobody", &twin_a, "--dir", "team"], 1);
    let (out, _) = texts(&output);
    assert!(out.contains("2 remote prompts are named \"Twin\""), "{out}");
    assert!(
        out.contains("no remote prompt has the id or the name \"Nobody\""),
        "{out}"
    );
    assert!(out.contains("wrote team/twin.prompt.yaml"), "{out}");
}

#[test]
fn two_prompts_with_one_slug_get_two_files() {
    let (s, _, _) = account();
    let (out, _) = texts(&s.run(&["pull", "--all"], 0));
    assert!(out.contains("wrote prompts/twin.prompt.yaml"), "{out}");
    assert!(out.contains("wrote prompts/twin-2.prompt.yaml"), "{out}");
    assert!(
        out.contains("Pulled: 3 written, 0 up to date, 0 not overwritten, 0 failed."),
        "{out}"
    );
}

#[test]
fn a_version_the_format_cannot_hold_fails_that_prompt_only() {
    let (s, _, _) = account();
    let odd = s.emu.create_prompt("Odd");
    s.emu.create_version(&odd, json!({"model": "m", "messages": [{"role": "user", "content": "x", "reasoning_content": "hidden"}]}));
    let output = s.run(&["pull", "--all", "--output", "json"], 1);
    let report = json_of(&output);
    assert_eq!(report["summary"]["written"], 3, "{report:#}");
    let failed: Vec<&Value> = report["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["action"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("the message key `reasoning_content`"),
        "{report:#}"
    );
}

#[test]
fn a_file_outside_the_prompt_globs_is_written_with_a_warning() {
    let (s, _, _) = account();
    s.repo.write(
        "promptsync.toml",
        "[prompts]\ninclude = [\"prompts/**/*.prompt.yaml\"]\n",
    );
    let (out, _) = texts(&s.run(&["pull", "Support assistant", "--dir", "elsewhere"], 0));
    assert!(out.contains("not matched by prompts.include"), "{out}");
}

/// The files of `dir`, recursively, as paths relative to it.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_committed_symlink_cannot_lead_pull_out_of_the_repository() {
    let (s, _, _) = account();
    let outside = tempfile::tempdir().unwrap();
    s.repo.symlink("prompts", outside.path().to_str().unwrap());
    s.repo.commit("prompts is a link");
    let (out, err) = texts(&s.run(&["pull", "Support assistant"], 1));
    assert!(err.contains("`prompts` is a symbolic link"), "{out}\n{err}");
    assert!(!out.contains("wrote"), "{out}");
    assert_eq!(files_under(outside.path()), Vec::<String>::new());

    // A link deeper down, and one at the file's own name.
    std::fs::remove_file(s.repo.path().join("prompts")).unwrap();
    std::fs::create_dir(s.repo.path().join("team")).unwrap();
    std::os::unix::fs::symlink(outside.path(), s.repo.path().join("team/sub")).unwrap();
    let (_, err) = texts(&s.run(&["pull", "Support assistant", "--dir", "team/sub/x"], 1));
    assert!(err.contains("`team/sub` is a symbolic link"), "{err}");
    let victim = outside.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    std::fs::create_dir(s.repo.path().join("prompts")).unwrap();
    std::os::unix::fs::symlink(
        &victim,
        s.repo.path().join("prompts/support-assistant.prompt.yaml"),
    )
    .unwrap();
    for force in [&[][..], &["--force"][..]] {
        let mut args = vec!["pull", "Support assistant", "--output", "json"];
        args.extend_from_slice(force);
        let report = json_of(&s.run(&args, 1));
        let row = &report["prompts"][0];
        assert_eq!(row["action"], "failed", "{report:#}");
        assert!(
            row["error"].as_str().unwrap().contains("symbolic link"),
            "{report:#}"
        );
        assert_eq!(row["file"], "prompts/support-assistant.prompt.yaml");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert_eq!(files_under(outside.path()), ["victim.txt"]);
}

#[test]
fn a_dir_outside_the_repository_or_under_git_is_refused_before_any_request() {
    let (s, _, _) = account();
    let outside = tempfile::tempdir().unwrap();
    let absolute = outside.path().join("abs");
    let absolute = absolute.to_str().unwrap();
    for (dir, wanted) in [
        ("../escaped", "leads out of the repository"),
        ("prompts/../../escaped", "leads out of the repository"),
        (absolute, "is an absolute path"),
        (".git/hooks", "inside a `.git` directory"),
        (".GIT/hooks", "inside a `.git` directory"),
    ] {
        s.emu.clear_requests();
        let (out, err) = texts(&s.run(&["pull", "Support assistant", "--dir", dir], 1));
        assert!(err.contains(wanted), "--dir {dir}:\n{out}\n{err}");
        assert!(!out.contains("wrote"), "{out}");
        assert!(s.emu.requests().is_empty(), "--dir {dir}");
    }
    assert!(!s.repo.path().join("../escaped").exists());
    assert!(!outside.path().join("abs").exists());
    let hooks = files_under(&s.repo.path().join(".git/hooks"));
    assert!(
        hooks.iter().all(|f| !f.ends_with(".prompt.yaml")),
        "{hooks:?}"
    );
}

#[test]
fn a_dir_that_is_a_file_or_a_nested_repository_fails() {
    let (s, _, _) = account();
    s.repo.write("prompts", "a file, not a directory\n");
    let (out, err) = texts(&s.run(&["pull", "Support assistant"], 1));
    assert!(
        err.contains("`prompts` is a regular file, not a directory"),
        "{out}\n{err}"
    );
    assert!(!out.contains("add --force"), "{out}");
    std::fs::create_dir_all(s.repo.path().join("vendor/other/.git")).unwrap();
    let (_, err) = texts(&s.run(&["pull", "Support assistant", "--dir", "vendor/other"], 1));
    assert!(err.contains("another git repository"), "{err}");
}

#[test]
fn a_fifo_at_the_target_name_is_an_error_not_a_hang() {
    let (s, _, _) = account();
    std::fs::create_dir(s.repo.path().join("prompts")).unwrap();
    let fifo = s.repo.path().join("prompts/support-assistant.prompt.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for force in [&[][..], &["--force"][..]] {
        let output = s
            .cmd(
                &[
                    &["pull", "Support assistant", "--output", "json"][..],
                    force,
                ]
                .concat(),
            )
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{:?}", texts(&output));
        let report = json_of(&output);
        let error = report["prompts"][0]["error"].as_str().unwrap();
        assert!(error.contains("is a named pipe (FIFO)"), "{error}");
    }
    let still = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&still.file_type()));
}
