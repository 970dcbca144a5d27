//! `promptsync sync`, `--sync`, `plan` and `--dry-run` end to end: the real binary, a
//! real git repository, the emulator over HTTP.

use serde_json::{Value, json};

use crate::support::emulator::TestEmulator;
use crate::support::scenario::{KEY, Scenario, json_of, prompt, row, texts};

const FULL: &str = r#"name: Full
description: Every field
model: gpt-4o
temperature: 0.3
max_tokens: 512
top_p: 0.9
frequency_penalty: 0.5
presence_penalty: -0.5
stream: true
thinking: {type: enabled, budget_tokens: 1024}
reasoning_effort: high
verbosity: low
seed: 42
variables: {topic: billing}
fallback_models: [gpt-4o-mini]
load_balance_models:
  - {model: gpt-4o, weight: 0.8}
  - {model: gpt-4o-mini, weight: 0.2}
tools:
  - type: function
    function: {name: lookup, parameters: {type: object, properties: {q: {type: string}}}}
tool_choice: auto
response_format: {type: json_object}
json_schema: {type: object}
is_enforcing_response_format: true
messages:
  - role: system
    content_file: full.md
  - role: user
    content: "Tell me about {{topic}}"
"#;

pub(crate) fn two_prompts() -> Scenario {
    let s = Scenario::new();
    s.repo
        .write(
            "prompts/greeter.prompt.yaml",
            &prompt("Greeter", "Greet warmly."),
        )
        .write(
            "prompts/support.prompt.yaml",
            &prompt("Support", "Help customers."),
        );
    s.repo.commit("Add prompts");
    s
}

#[test]
fn first_sync_creates_one_version_per_prompt_with_every_field_sent() {
    let s = Scenario::new();
    s.repo
        .write("prompts/full.prompt.yaml", FULL)
        .write(
            "prompts/full.md",
            "You are precise.\nAnswer in two lines.\n",
        )
        .write(
            "prompts/greeter.prompt.yaml",
            &prompt("Greeter", "Greet warmly."),
        );
    let commit = s.repo.commit("Add the full prompt");
    let out = s.sync();
    assert!(out.contains("2 created, 0 updated, 0 unchanged"), "{out}");

    let versions = s.versions_of("Full");
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    let expected = json!({
        "model": "gpt-4o", "temperature": 0.3, "max_tokens": 512, "top_p": 0.9,
        "frequency_penalty": 0.5, "presence_penalty": -0.5, "stream": true,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "reasoning_effort": "high", "verbosity": "low", "seed": 42,
        "variables": {"topic": "billing"}, "fallback_models": ["gpt-4o-mini"],
        "load_balance_models": [{"model": "gpt-4o", "weight": 0.8}, {"model": "gpt-4o-mini", "weight": 0.2}],
        "tools": [{"type": "function", "function": {"name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
        "tool_choice": "auto", "response_format": {"type": "json_object"},
        "json_schema": {"type": "object"}, "is_enforcing_response_format": true,
        "messages": [
            {"role": "system", "content": "You are precise.\nAnswer in two lines.\n"},
            {"role": "user", "content": "Tell me about {{topic}}"}
        ]
    });
    for (field, value) in expected.as_object().unwrap() {
        assert_eq!(&v[field], value, "field {field}");
    }
    let description = v["description"].as_str().unwrap();
    assert_eq!(
        description,
        format!(
            "Add the full prompt [promptsync {commit}; content {}]",
            description
                .rsplit("content ")
                .next()
                .unwrap()
                .trim_end_matches(']')
        )
    );
    assert_eq!(s.prompt_named("Full")["description"], "Every field");
    assert_eq!(s.versions_of("Greeter").len(), 1);
}

#[test]
fn a_second_sync_sends_no_change_request() {
    let s = two_prompts();
    s.sync();
    s.emu.clear_requests();
    let out = s.sync();
    assert!(out.contains("0 created, 0 updated, 2 unchanged"), "{out}");
    assert_eq!(s.emu.change_requests(), vec![]);
    assert_eq!(
        s.emu.prompts().len(),
        2,
        "a prompt given by name is created once"
    );
}

#[test]
fn changing_one_file_creates_one_version_for_that_prompt_only() {
    let s = two_prompts();
    s.sync();
    s.repo.write(
        "prompts/greeter.prompt.yaml",
        &prompt("Greeter", "Greet briefly."),
    );
    s.repo.commit("Shorter greeting");
    s.emu.clear_requests();
    let report = s.sync_json(&[], 0);
    let changes: Vec<String> = s
        .emu
        .change_requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let greeter = s.prompt_named("Greeter")["id"].as_str().unwrap().to_owned();
    assert_eq!(
        changes,
        vec![format!("POST /api/prompts/{greeter}/versions/")]
    );
    assert_eq!(s.versions_of("Greeter").len(), 2);
    assert_eq!(s.versions_of("Support").len(), 1);
    let row = report["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["file"] == "prompts/greeter.prompt.yaml")
        .unwrap();
    assert_eq!(row["action"], "update");
    assert_eq!(row["version_before"], 1);
    assert_eq!(row["version_after"], 2);
    assert_eq!(row["changes"], json!(["messages"]));
}

#[test]
fn uncommitted_edits_are_ignored_unless_worktree() {
    let s = two_prompts();
    s.sync();
    s.repo.write(
        "prompts/greeter.prompt.yaml",
        &prompt("Greeter", "Not committed yet."),
    );
    s.emu.clear_requests();
    s.sync();
    assert_eq!(s.emu.change_requests(), vec![]);
    s.run(&["sync", "--worktree"], 0);
    let versions = s.versions_of("Greeter");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["messages"][0]["content"], "Not committed yet.");
    assert!(
        versions[0]["description"]
            .as_str()
            .unwrap()
            .contains("[promptsync worktree@"),
        "{}",
        versions[0]["description"]
    );
}

#[test]
fn the_sync_flag_is_the_sync_subcommand() {
    let s = two_prompts();
    let out = texts(&s.run(&["--sync"], 0)).0;
    assert!(out.contains("2 created"), "{out}");
}

#[test]
fn a_prompt_given_by_id_is_updated_in_place() {
    let s = Scenario::new();
    let id = s.emu.create_prompt("Existing");
    s.repo.write(
        "p.prompt.yaml",
        &format!("prompt_id: {id}\ndescription: Now described\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: hi\n"),
    );
    s.repo.commit("Adopt an existing prompt");
    s.sync();
    assert_eq!(s.emu.prompts().len(), 1);
    let prompt = s.emu.get(&format!("/api/prompts/{id}/"));
    assert_eq!(prompt["description"], "Now described");
    assert_eq!(prompt["current_version"]["version"], 1);
}

#[test]
fn an_unknown_prompt_id_fails_that_prompt_only() {
    let s = two_prompts();
    s.repo.write(
        "gone.prompt.yaml",
        "prompt_id: prm_does_not_exist\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: hi\n",
    );
    s.repo.commit("Point at a deleted prompt");
    let report = s.sync_json(&[], 1);
    assert_eq!(report["summary"]["created"], 2);
    assert_eq!(report["summary"]["failed"], 1);
    let row = &report["prompts"][0];
    assert_eq!(row["file"], "gone.prompt.yaml");
    assert!(
        row["error"].as_str().unwrap().contains("does not exist"),
        "{row}"
    );
}

#[test]
fn two_files_for_one_prompt_fail_and_neither_is_synced() {
    let s = Scenario::new();
    let id = s.emu.create_prompt("Shared");
    s.repo
        .write(
            "a.prompt.yaml",
            &format!("prompt_id: {id}\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: a\n"),
        )
        .write("b.prompt.yaml", &prompt("Shared", "b"))
        .write("c.prompt.yaml", &prompt("Other", "c"));
    s.repo.commit("Two files, one prompt");
    let output = s.run(&["sync"], 1);
    let (out, _) = texts(&output);
    assert!(out.contains("a.prompt.yaml and b.prompt.yaml"), "{out}");
    assert_eq!(s.emu.versions(&id), Vec::<Value>::new());
    assert_eq!(s.versions_of("Other").len(), 1, "the others still sync");
}

#[test]
fn two_files_with_one_name_are_invalid_and_neither_is_synced() {
    let s = Scenario::new();
    s.repo
        .write("a.prompt.yaml", &prompt("Twin", "a"))
        .write("b.prompt.yaml", &prompt("Twin", "b"))
        .write("c.prompt.yaml", &prompt("Other", "c"));
    s.repo.commit("Twins");
    let (out, _) = texts(&s.run(&["sync"], 1));
    assert!(
        out.contains("a.prompt.yaml") && out.contains("b.prompt.yaml"),
        "{out}"
    );
    assert!(s.emu.prompts().iter().all(|p| p["name"] != "Twin"));
    assert_eq!(s.versions_of("Other").len(), 1);
}

#[test]
fn an_invalid_file_fails_the_run_while_valid_ones_still_sync() {
    let s = two_prompts();
    s.repo.write(
        "prompts/broken.prompt.yaml",
        "name: Broken\nmodel: gpt-4o\ntemprature: 0.5\nmessages:\n  - role: user\n    content: hi\n",
    );
    s.repo.commit("Add a broken prompt");
    let output = s.run(&["sync"], 1);
    let (out, _) = texts(&output);
    assert!(out.contains("prompts/broken.prompt.yaml:3:1"), "{out}");
    assert!(out.contains("did you mean `temperature`"), "{out}");
    assert!(out.contains("2 created"), "{out}");
    assert!(s.emu.prompts().iter().all(|p| p["name"] != "Broken"));
    let report = s.sync_json(&[], 1);
    assert_eq!(
        report["invalid_files"][0]["file"],
        "prompts/broken.prompt.yaml"
    );
    assert_eq!(report["summary"]["invalid_files"], 1);
}

#[test]
fn plan_and_dry_run_send_no_change_and_plan_shows_a_diff() {
    let s = two_prompts();
    s.sync();
    s.repo
        .write(
            "prompts/greeter.prompt.yaml",
            &prompt("Greeter", "Greet briefly."),
        )
        .write("prompts/new.prompt.yaml", &prompt("Newcomer", "Hello."));
    s.repo.commit("Change one, add one");
    s.emu.clear_requests();

    let (plan, _) = texts(&s.run(&["plan"], 0));
    assert!(
        plan.contains("-    content: \"Greet warmly.\"\n+    content: \"Greet briefly.\"\n"),
        "{plan}"
    );
    assert!(plan.contains("+++ prompts/new.prompt.yaml"), "{plan}");
    assert!(plan.contains("Plan for commit"), "{plan}");
    s.run(&["plan", "--detailed-exitcode"], 2);
    let dry = s.sync_json(&["--dry-run"], 0);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["summary"]["created"], 1);
    assert_eq!(dry["summary"]["updated"], 1);
    assert_eq!(s.emu.change_requests(), vec![]);

    s.sync();
    s.run(&["plan", "--detailed-exitcode"], 0);
    let (plan, _) = texts(&s.run(&["plan"], 0));
    assert!(plan.contains("no changes"), "{plan}");
}

#[test]
fn injected_server_errors_are_retried() {
    let s = two_prompts();
    s.emu.inject(json!([
        {"method": "POST", "path": "/api/prompts/list/", "kind": "status", "status": 502, "times": 1},
        {"method": "POST", "path": "/api/prompts/*/versions/", "kind": "status", "status": 503, "times": 2},
        {"method": "POST", "path": "/api/prompts/", "kind": "status", "status": 500, "times": 1}
    ]));
    s.sync();
    assert_eq!(s.emu.prompts().len(), 2);
    assert_eq!(s.versions_of("Greeter").len(), 1);
    assert_eq!(s.versions_of("Support").len(), 1);
    let statuses: Vec<u16> = s.emu.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&c| c >= 500).count(),
        4,
        "{statuses:?}"
    );
}

#[test]
fn a_429_is_retried_after_its_retry_after() {
    let s = two_prompts();
    s.emu.inject(
        json!({"method": "POST", "path": "/api/prompts/list/", "kind": "status",
        "status": 429, "retry_after": 1, "times": 1}),
    );
    s.sync();
    let lists: Vec<_> = s.emu.list_requests();
    assert_eq!(lists[0].status, 429);
    assert_eq!(lists[1].status, 200);
    let gap = at(&lists[1].at) - at(&lists[0].at);
    assert!(
        gap >= time::Duration::milliseconds(950),
        "retried after {gap}"
    );
}

fn at(stamp: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).unwrap()
}

#[test]
fn a_reply_lost_after_the_server_acted_causes_no_duplicate() {
    let s = two_prompts();
    s.emu.inject(json!([
        {"method": "POST", "path": "/api/prompts/", "kind": "drop_after", "times": 1},
        {"method": "POST", "path": "/api/prompts/*/versions/", "kind": "drop_after", "times": 2}
    ]));
    s.sync();
    assert_eq!(s.emu.prompts().len(), 2, "no duplicate prompt");
    assert_eq!(s.versions_of("Greeter").len(), 1, "no duplicate version");
    assert_eq!(s.versions_of("Support").len(), 1, "no duplicate version");
    let dropped = s
        .emu
        .requests()
        .iter()
        .filter(|r| r.fault.as_deref() == Some("drop_after"))
        .count();
    assert_eq!(dropped, 3);
}

#[test]
fn a_reply_lost_before_the_server_acted_is_sent_again() {
    let s = two_prompts();
    s.emu.inject(json!({"method": "POST", "path": "/api/prompts/*/versions/", "kind": "drop_before", "times": 1}));
    s.sync();
    assert_eq!(s.versions_of("Greeter").len(), 1);
    assert_eq!(s.versions_of("Support").len(), 1);
}

#[test]
fn a_server_that_fills_other_defaults_causes_no_new_versions() {
    let s = two_prompts();
    s.emu.set_knobs(json!({"fill_defaults": "alternate"}));
    s.sync();
    let stored = &s.versions_of("Greeter")[0];
    assert_eq!(stored["temperature"], json!(1.0), "the knob took effect");
    assert!(stored["messages"][0]["content"].is_array(), "{stored}");
    s.emu.clear_requests();
    let out = s.sync();
    assert!(out.contains("2 unchanged"), "{out}");
    assert_eq!(s.emu.change_requests(), vec![]);
}

#[test]
fn a_wrong_key_fails_fast_with_a_clear_message() {
    let s = Scenario::with(TestEmulator::refusing_the_test_key());
    s.repo.write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.commit("One prompt");
    let output = s.run(&["sync"], 1);
    let (_, err) = texts(&output);
    assert!(err.contains("refused the key"), "{err}");
    assert!(err.contains("RESPAN_API_KEY"), "{err}");
    assert_eq!(s.emu.requests().len(), 1, "no retries after a 401");
}

#[test]
fn json_report_shape() {
    let s = two_prompts();
    s.repo.write(
        "prompts/broken.prompt.yaml",
        "name: Broken\nmodel: gpt-4o\nmessages: []\n",
    );
    s.repo.commit("Broken");
    let report = json_of(&s.run(&["sync", "--output", "json"], 1));
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b[0-9a-f]{40}\b", "[commit]");
    settings.add_filter(r"\bprm_[0-9a-zA-Z]+\b", "[prompt-id]");
    settings.bind(|| {
        insta::assert_snapshot!(serde_json::to_string_pretty(&report).unwrap());
    });
}

#[test]
fn the_key_never_appears_even_at_trace_level() {
    let s = two_prompts();
    let output = s
        .cmd(&["sync", "-vv"])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let (out, err) = texts(&output);
    assert!(output.status.success(), "{err}");
    assert!(!out.contains(KEY) && !err.contains(KEY));
    assert!(err.contains("request"), "trace logs were written: {err}");
}

/// Kill `promptsync sync` at random points, run it again in full, and check that
/// every content change made exactly one version and nothing was lost.
#[test]
fn killed_runs_converge_with_exactly_one_version_per_content_change() {
    let s = Scenario::with(TestEmulator::start_with(
        promptsync_emulator::EmulatorConfig {
            latency: promptsync_emulator::Latency {
                fixed_ms: 5,
                jitter_ms: 10,
            },
            ..Default::default()
        },
    ));
    let names: Vec<String> = (0..6).map(|i| format!("P{i}")).collect();
    let mut expected = vec![1usize; names.len()];
    for name in &names {
        s.repo.write(
            &format!("{name}.prompt.yaml"),
            &prompt(name, &format!("{name} v0")),
        );
    }
    s.repo.commit("Start");
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 1..=20 {
        for (i, name) in names.iter().enumerate() {
            if round == 1 || rng.bool() {
                if round > 1 {
                    expected[i] += 1;
                }
                s.repo.write(
                    &format!("{name}.prompt.yaml"),
                    &prompt(name, &format!("{name} v{round}")),
                );
            }
        }
        s.repo.commit(&format!("Round {round}"));
        s.sync_killed_after(rng.usize(0..8));
        s.sync();
        for (i, name) in names.iter().enumerate() {
            let versions = s.versions_of(name);
            assert_eq!(
                versions.len(),
                expected[i],
                "round {round}, {name}: {versions:#?}"
            );
            let text = s.repo.read(&format!("{name}.prompt.yaml"));
            let current = versions[0]["messages"][0]["content"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                text.contains(&format!("{current:?}")),
                "round {round}: {name} is {current}"
            );
        }
    }
    assert_eq!(s.emu.prompts().len(), names.len(), "no duplicate prompts");
}

#[test]
fn three_hundred_prompts_thirty_changed_cost_the_list_pages_a_second_read_and_thirty_creates() {
    let s = Scenario::new();
    for i in 0..300 {
        s.repo.write(
            &format!("prompts/p{i:03}.prompt.yaml"),
            &prompt(&format!("Prompt {i:03}"), &format!("Text {i}")),
        );
    }
    s.repo.commit("Three hundred prompts");
    s.sync();
    assert_eq!(s.emu.prompts().len(), 300);
    for i in (0..300).step_by(10) {
        s.repo.write(
            &format!("prompts/p{i:03}.prompt.yaml"),
            &prompt(&format!("Prompt {i:03}"), &format!("Text {i}, revised")),
        );
    }
    s.repo.commit("Revise thirty");
    s.emu.clear_requests();
    let out = s.sync();
    assert!(
        out.contains("0 created, 30 updated, 270 unchanged"),
        "{out}"
    );
    let requests = s.emu.requests();
    let lists = requests
        .iter()
        .filter(|r| r.path.starts_with("/api/prompts/list/"))
        .count();
    let creates = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/versions/"))
        .count();
    assert_eq!(
        lists, 4,
        "300 prompts are 3 pages of 100, and the 30 read again just before writing"
    );
    assert_eq!(creates, 30);
    assert_eq!(requests.len(), lists + creates, "{requests:#?}");
}

#[test]
fn an_unreachable_api_fails_the_run_with_advice() {
    let s = two_prompts();
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = s
        .cmd(&["sync"])
        .env("RESPAN_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "1s")
        .output()
        .unwrap();
    let (_, err) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("gave up after"), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    assert!(err.contains("check RESPAN_BASE_URL"), "{err}");
    assert!(!err.contains("may or may not have applied"), "{err}");
}

/// The account listing runs while the files are read. When its pages come after the
/// files were read (here page 1 is held back half a second), the prompts the files
/// name are read in full as their page arrives, and the pass decides exactly as it
/// does when they are read after the listing: one prompt unchanged, one updated.
#[test]
fn prompts_read_in_full_as_their_page_arrives_are_planned_as_any_other() {
    let s = Scenario::new();
    s.repo.write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.write("b.prompt.yaml", &prompt("B", "b"));
    s.repo.commit("A and B");
    s.sync();
    s.repo.write("b.prompt.yaml", &prompt("B", "b, revised"));
    s.repo.commit("B revised");
    s.emu
        .inject(json!({"method": "POST", "path": "/api/prompts/list/",
        "kind": "delay", "delay_ms": 500, "times": 1}));
    let output = s.run(&["sync", "--output", "json", "-v"], 0);
    let (_, log) = texts(&output);
    assert!(
        log.contains("listed prompts read in full as their page arrived"),
        "{log}"
    );
    let report = json_of(&output);
    assert_eq!(
        row(&report, "a.prompt.yaml")["action"],
        "unchanged",
        "{report:#}"
    );
    assert_eq!(
        row(&report, "b.prompt.yaml")["action"],
        "update",
        "{report:#}"
    );
    assert_eq!(s.versions_of("A").len(), 1);
    assert_eq!(s.versions_of("B").len(), 2);
}
