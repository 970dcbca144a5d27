//! Deploy on tagged commits, end to end: which tag wins, what goes live, rollbacks,
//! both readings of commit, and runs killed half-way.

use serde_json::{Value, json};

use crate::support::emulator::TestEmulator;
use crate::support::git::BASE_TIME;
use crate::support::scenario::{Scenario, json_of, prompt, texts};

/// The system message of a remote version.
fn text(version: &Value) -> String {
    let content = &version["messages"][0]["content"];
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts[0]["text"].as_str().unwrap().to_owned(),
        other => panic!("unexpected content {other}"),
    }
}

/// The live version object of the prompt with this name.
fn live(s: &Scenario, name: &str) -> Value {
    let id = s.prompt_named(name)["id"].as_str().unwrap().to_owned();
    s.emu.get(&format!("/api/prompts/{id}/"))["live_version"].clone()
}

fn current(s: &Scenario, name: &str) -> Value {
    s.versions_of(name)[0].clone()
}

fn with_knobs(knobs: Value) -> Scenario {
    let s = Scenario::new();
    s.emu.set_knobs(knobs);
    s
}

fn greeter_and_support(s: &Scenario, greeting: &str) -> String {
    s.repo
        .write("greeter.prompt.yaml", &prompt("Greeter", greeting))
        .write("support.prompt.yaml", &prompt("Support", "Help customers."));
    s.repo.commit(&format!("Greeter says {greeting}"))
}

fn tag_on_head_is_committed_and_live_then_a_second_run_changes_nothing(knobs: Value) {
    let s = with_knobs(knobs);
    greeter_and_support(&s, "Hello.");
    s.repo.tag("v1.0.0");
    let report = s.sync_json(&[], 0);
    assert_eq!(report["release"]["tag"], "v1.0.0");
    assert_eq!(report["summary"]["deployed"], 2);
    for name in ["Greeter", "Support"] {
        let live = live(&s, name);
        assert_eq!(live["version"], 1, "{name}");
        assert_eq!(live["readonly"], true);
        assert_eq!(live["is_deployed"], true);
    }
    s.emu.clear_requests();
    let out = s.sync();
    assert!(out.contains("0 deployed (v1.0.0)"), "{out}");
    assert_eq!(s.emu.change_requests(), vec![]);
}

#[test]
fn tag_on_head_is_committed_and_live_then_a_second_run_changes_nothing_freeze() {
    tag_on_head_is_committed_and_live_then_a_second_run_changes_nothing(json!({}));
}

#[test]
fn tag_on_head_is_committed_and_live_then_a_second_run_changes_nothing_bump() {
    tag_on_head_is_committed_and_live_then_a_second_run_changes_nothing(
        json!({"commit_mode": "bump"}),
    );
}

fn head_ahead_of_the_tag_keeps_the_tag_live_and_head_the_newest_draft(knobs: Value) {
    let s = with_knobs(knobs);
    greeter_and_support(&s, "Hello.");
    s.repo
        .tag_annotated("v1.0.0", "First release", BASE_TIME + 3600);
    greeter_and_support(&s, "Hi there.");
    s.sync();
    assert_eq!(text(&live(&s, "Greeter")), "Hello.");
    let newest = current(&s, "Greeter");
    assert_eq!(text(&newest), "Hi there.");
    assert_eq!(newest["readonly"], false, "HEAD's content is the draft");
    assert_eq!(text(&live(&s, "Support")), "Help customers.");

    s.emu.clear_requests();
    s.sync();
    assert_eq!(s.emu.change_requests(), vec![], "converged");
}

#[test]
fn head_ahead_of_the_tag_keeps_the_tag_live_and_head_the_newest_draft_freeze() {
    head_ahead_of_the_tag_keeps_the_tag_live_and_head_the_newest_draft(json!({}));
}

#[test]
fn head_ahead_of_the_tag_keeps_the_tag_live_and_head_the_newest_draft_bump() {
    head_ahead_of_the_tag_keeps_the_tag_live_and_head_the_newest_draft(
        json!({"commit_mode": "bump"}),
    );
}

#[test]
fn head_synced_before_the_tag_existed_is_deployed_by_reusing_its_version() {
    let s = Scenario::new();
    greeter_and_support(&s, "Hello.");
    s.sync();
    s.repo.tag("v1.0.0");
    s.emu.clear_requests();
    s.sync();
    assert_eq!(s.versions_of("Greeter").len(), 1, "no new version");
    assert_eq!(live(&s, "Greeter")["version"], 1);
    let bulk: Vec<_> = s
        .emu
        .change_requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        bulk,
        vec!["POST /api/prompts/bulk/"],
        "commits and deploys in one request"
    );
}

#[test]
fn the_newer_of_two_tags_wins() {
    let s = Scenario::new();
    let first = greeter_and_support(&s, "Hello.");
    greeter_and_support(&s, "Hi there.");
    s.repo.tag_at("v1.0.0", &first);
    s.repo.tag("v1.1.0");
    s.sync();
    assert_eq!(text(&live(&s, "Greeter")), "Hi there.");
}

#[test]
fn a_newer_annotated_tag_on_an_old_commit_rolls_back_without_a_new_version() {
    let s = Scenario::new();
    let old = greeter_and_support(&s, "Hello.");
    s.repo.tag_annotated("v1.0.0", "One", BASE_TIME + 3600);
    s.sync();
    greeter_and_support(&s, "Hi there.");
    s.repo.tag_annotated("v1.1.0", "Two", BASE_TIME + 7200);
    s.sync();
    assert_eq!(text(&live(&s, "Greeter")), "Hi there.");
    let versions_before = s.versions_of("Greeter").len();

    s.repo
        .tag_annotated_at("v1.2.0", &old, "Roll back to Hello", BASE_TIME + 10_800);
    let plan = texts(&s.run(&["plan"], 0)).0;
    assert!(
        plan.contains("greeter.prompt.yaml  \"Greeter\"") && plan.contains("v1.2.0, rollback"),
        "{plan}"
    );
    let output = s.run(&["sync", "--output", "json"], 0);
    let (_, log) = texts(&output);
    assert!(
        log.contains("rollback: deploying a version older than the live one"),
        "{log}"
    );
    let report = json_of(&output);
    assert_eq!(text(&live(&s, "Greeter")), "Hello.");
    assert_eq!(
        s.versions_of("Greeter").len(),
        versions_before,
        "no new version"
    );
    let greeter = report["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["file"] == "greeter.prompt.yaml")
        .unwrap();
    assert_eq!(greeter["deploy"]["rollback"], true);
    assert_eq!(greeter["deploy"]["live_after"], 1);
    assert_eq!(
        text(&current(&s, "Greeter")),
        "Hi there.",
        "HEAD stays newest"
    );
}

#[test]
fn a_tag_pattern_that_matches_nothing_deploys_nothing() {
    let s = Scenario::new();
    greeter_and_support(&s, "Hello.");
    s.repo.tag("release-1");
    let report = s.sync_json(&[], 0);
    assert_eq!(report["release"], Value::Null);
    assert!(live(&s, "Greeter").is_null());

    let output = s
        .cmd(&["sync", "--output", "json"])
        .env("PROMPTSYNC_DEPLOY__TAGS", "[\"release-*\"]")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", texts(&output).1);
    assert_eq!(live(&s, "Greeter")["version"], 1);
}

#[test]
fn no_deploy_skips_deploying_for_one_run() {
    let s = Scenario::new();
    greeter_and_support(&s, "Hello.");
    s.repo.tag("v1.0.0");
    let report = s.sync_json(&["--no-deploy"], 0);
    assert_eq!(report["release"], Value::Null);
    assert!(live(&s, "Greeter").is_null());
    assert_eq!(s.versions_of("Greeter").len(), 1, "drafts still sync");
}

#[test]
fn plan_shows_the_deploys_it_would_make_and_sends_nothing() {
    let s = Scenario::new();
    greeter_and_support(&s, "Hello.");
    s.sync();
    s.repo.tag("v2.0.0");
    s.emu.clear_requests();
    let plan = texts(&s.run(&["plan", "--detailed-exitcode"], 2)).0;
    assert!(plan.contains("deploy greeter.prompt.yaml"), "{plan}");
    assert!(plan.contains("live none → v1 (v2.0.0)"), "{plan}");
    assert!(plan.contains("2 deployed (v2.0.0)"), "{plan}");
    assert_eq!(s.emu.change_requests(), vec![]);
}

#[test]
fn a_file_invalid_at_the_release_is_not_deployed_and_fails_the_run() {
    let s = Scenario::new();
    s.repo
        .write(
            "greeter.prompt.yaml",
            "name: Greeter\nmodel: gpt-4o\nmessages: []\n",
        )
        .write("support.prompt.yaml", &prompt("Support", "Help customers."));
    s.repo.commit("Broken greeter");
    s.repo.tag("v1.0.0");
    greeter_and_support(&s, "Fixed.");
    let output = s.run(&["sync"], 1);
    let out = texts(&output).0;
    assert!(out.contains("invalid at release v1.0.0"), "{out}");
    assert!(live(&s, "Greeter").is_null(), "not deployed");
    assert_eq!(text(&live(&s, "Support")), "Help customers.");
    assert_eq!(text(&current(&s, "Greeter")), "Fixed.", "HEAD still syncs");
}

#[test]
fn a_shallow_ci_checkout_with_the_tag_deploys() {
    let s = Scenario::new();
    greeter_and_support(&s, "Hello.");
    s.repo.tag_annotated("v1.0.0", "Release", BASE_TIME + 3600);
    let clone = s.repo.shallow_clone();
    clone.detach("v1.0.0");
    let output = s.cmd(&["sync"]).current_dir(clone.path()).output().unwrap();
    assert!(output.status.success(), "{}", texts(&output).1);
    assert_eq!(live(&s, "Greeter")["version"], 1);
}

/// What a test compares after each round: per prompt, the version count, the live
/// and the newest content.
fn state(s: &Scenario, names: &[String]) -> Vec<(String, usize, Option<String>, String)> {
    names
        .iter()
        .map(|name| {
            let live = live(s, name);
            (
                name.clone(),
                s.versions_of(name).len(),
                (!live.is_null()).then(|| text(&live)),
                text(&current(s, name)),
            )
        })
        .collect()
}

/// Each round changes some prompts, commits, and maybe tags HEAD or an older commit
/// (a rollback). One scenario syncs cleanly; the other is killed at a random point
/// first, then synced. After every round both must look the same remotely.
fn killed_deploying_runs_converge(knobs: Value) {
    let reference = with_knobs(knobs.clone());
    let killed = Scenario::with(TestEmulator::start_with(
        promptsync_emulator::EmulatorConfig {
            latency: promptsync_emulator::Latency {
                fixed_ms: 5,
                jitter_ms: 10,
            },
            ..Default::default()
        },
    ));
    killed.emu.set_knobs(knobs);
    let names: Vec<String> = (0..4).map(|i| format!("P{i}")).collect();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut commits: Vec<(String, String)> = Vec::new();
    for round in 0..16 {
        for (i, name) in names.iter().enumerate() {
            if round == 0 || rng.u8(0..3) == 0 || i == round % names.len() {
                let body = prompt(name, &format!("{name} r{round}"));
                for s in [&reference, &killed] {
                    s.repo.write(&format!("{name}.prompt.yaml"), &body);
                }
            }
        }
        let ids = (
            reference.repo.commit(&format!("Round {round}")),
            killed.repo.commit(&format!("Round {round}")),
        );
        commits.push(ids.clone());
        let when = BASE_TIME + 100_000 + 1000 * i64::try_from(round).unwrap();
        let tag = format!("v1.{round}.0");
        match rng.u8(0..3) {
            0 => {}
            1 => {
                reference.repo.tag_annotated(&tag, "release", when);
                killed.repo.tag_annotated(&tag, "release", when);
            }
            _ => {
                let (a, b) = &commits[rng.usize(0..commits.len())];
                reference.repo.tag_annotated_at(&tag, a, "rollback", when);
                killed.repo.tag_annotated_at(&tag, b, "rollback", when);
            }
        }
        reference.sync();
        killed.sync_killed_after(rng.usize(0..4));
        killed.sync();
        assert_eq!(
            state(&killed, &names),
            state(&reference, &names),
            "round {round}: the killed and the clean history differ"
        );
    }
    assert_eq!(
        killed.emu.prompts().len(),
        names.len(),
        "no duplicate prompts"
    );
}

#[test]
fn killed_deploying_runs_converge_freeze() {
    killed_deploying_runs_converge(json!({}));
}

#[test]
fn killed_deploying_runs_converge_bump() {
    killed_deploying_runs_converge(json!({"commit_mode": "bump"}));
}

/// Under `commit_mode = bump` the server copies each committed version into a new
/// draft. A pass that committed the release version and then stopped before its
/// deploy (here its deploy requests are refused; a kill at that moment leaves the
/// same state) must be resumed by deploying the committed version, not by committing
/// the server's copy of it (one more version each time).
#[test]
fn resuming_a_deploy_stopped_after_its_commit_writes_no_version_under_bump() {
    let s = with_knobs(json!({"commit_mode": "bump"}));
    greeter_and_support(&s, "Hello.");
    s.sync_json(&["--no-deploy"], 0);
    s.repo.tag("v1.0.0");
    // The bulk request fails, so each deploy is finished with single requests: a
    // commit, then a deploy, which is refused.
    s.emu.inject(json!([
        {"method": "POST", "path": "/api/prompts/bulk/", "kind": "status", "status": 400},
        {"method": "POST", "path": "/api/prompts/*/deployments/", "kind": "status",
         "status": 400, "times": 2}
    ]));
    let report = s.sync_json(&[], 1);
    assert_eq!(report["summary"]["deployed"], 0, "{report:#}");
    for name in ["Greeter", "Support"] {
        let versions = s.versions_of(name);
        assert_eq!(versions.len(), 2, "{name}: v1 committed, v2 its copy");
        assert_eq!(versions[1]["readonly"], true, "{name}");
        assert!(live(&s, name).is_null(), "{name}");
    }

    let report = s.sync_json(&[], 0);
    assert_eq!(report["summary"]["deployed"], 2, "{report:#}");
    for name in ["Greeter", "Support"] {
        assert_eq!(
            live(&s, name)["version"],
            1,
            "{name}: the committed version"
        );
        assert_eq!(s.versions_of(name).len(), 2, "{name}: no version added");
    }
    s.emu.clear_requests();
    s.sync();
    assert_eq!(s.emu.change_requests(), vec![], "converged");
}
