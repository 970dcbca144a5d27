//! `sync --deploy-only` and `plan --deploy-only`, for tag pipelines: the release tag's
//! versions go live and no draft is written, so a tag on an older commit (a rollback,
//! or main moved on) never writes the release content over main's newest version.

use crate::support::git::BASE_TIME;
use crate::support::scenario::{Scenario, json_of, prompt, row, texts};

/// The system message of each version of `name`, oldest first.
fn history(s: &Scenario, name: &str) -> Vec<String> {
    let mut texts: Vec<String> = s
        .versions_of(name)
        .iter()
        .map(|v| v["messages"][0]["content"].as_str().unwrap().to_owned())
        .collect();
    texts.reverse();
    texts
}

/// Main syncs drafts with `--no-deploy`; a release tag lands on an older commit (main
/// moved on before the tag pipeline ran, or a rollback); the tag pipeline runs on the
/// tag's checkout. `--sync` there wrote the release content as the newest version and
/// the next main sync wrote main's again (A, B, A, B); `--deploy-only` makes the tag's
/// version live and leaves the history A, B.
#[test]
fn a_tag_pipeline_on_an_older_commit_deploys_and_writes_no_draft() {
    let s = Scenario::new();
    s.repo.write("a.prompt.yaml", &prompt("A", "first"));
    let first = s.repo.commit("First");
    s.run(&["--sync", "--no-deploy"], 0);
    s.repo.write("a.prompt.yaml", &prompt("A", "second"));
    s.repo.commit("Second");
    s.run(&["--sync", "--no-deploy"], 0);
    assert_eq!(history(&s, "A"), ["first", "second"]);

    s.repo
        .tag_annotated_at("v1.0.0", &first, "Release", BASE_TIME + 3600);
    s.repo.detach("v1.0.0");
    let output = s.run(&["--sync", "--deploy-only", "--output", "json"], 0);
    let report = json_of(&output);
    assert_eq!(report["mode"], "deploy-only");
    assert_eq!(report["release"]["tag"], "v1.0.0");
    assert_eq!(report["summary"]["deployed"], 1, "{report:#}");
    assert_eq!(report["summary"]["created"], 0);
    assert_eq!(report["summary"]["updated"], 0);
    let a = row(&report, "a.prompt.yaml");
    assert_eq!(a["action"], "deploy_only");
    assert_eq!(a["deploy"]["live_after"], 1);
    assert_eq!(a["deploy"]["created_version"], false);
    assert_eq!(s.live_of("A"), Some(1));
    assert_eq!(history(&s, "A"), ["first", "second"], "no draft written");

    s.repo.git(["checkout", "--quiet", "main"]);
    s.emu.clear_requests();
    s.run(&["--sync", "--no-deploy"], 0);
    assert_eq!(
        s.emu.change_requests(),
        vec![],
        "main's content is newest still"
    );
    assert_eq!(history(&s, "A"), ["first", "second"]);
    assert_eq!(s.live_of("A"), Some(1));
}

/// Where no version holds the release content (the tagged commit was never synced),
/// the release version is created, and the report says so; HEAD's content is not
/// written.
#[test]
fn the_release_version_is_created_only_where_none_holds_its_content_and_the_report_says_so() {
    let s = Scenario::new();
    s.repo
        .write("a.prompt.yaml", &prompt("A", "first"))
        .write("b.prompt.yaml", &prompt("B", "bee"));
    s.repo.commit("First");
    s.run(&["sync", "--no-deploy"], 0);
    s.repo.write("a.prompt.yaml", &prompt("A", "released"));
    s.repo.commit("Release content");
    s.repo.tag("v2.0.0");
    s.repo.write("a.prompt.yaml", &prompt("A", "head"));
    s.repo.write("c.prompt.yaml", &prompt("C", "only at HEAD"));
    s.repo.commit("After the release");

    let (text, _) = texts(&s.run(&["plan", "--deploy-only"], 0));
    assert!(
        text.contains("deploy a.prompt.yaml  \"A\"")
            && text.contains("live none → new version (v2.0.0, version created)"),
        "{text}"
    );
    assert!(
        text.contains("Deploy-only plan for release v2.0.0 (commit ")
            && text.contains(": 2 deployed, 0 already live, 0 failed, 1 version(s) created for the release; no draft would be written."),
        "{text}"
    );
    assert!(!text.contains("c.prompt.yaml"), "HEAD is not read: {text}");
    let (text, _) = texts(&s.run(&["sync", "--deploy-only"], 0));
    assert!(
        text.contains("deployed a.prompt.yaml")
            && text.contains("live none → v2 (v2.0.0, version created)"),
        "{text}"
    );
    assert!(
        text.contains("Deployed release v2.0.0 (commit ")
            && text.contains(", deploy only: 2 deployed, 0 already live, 0 failed, 1 version(s) created for the release; no draft written."),
        "{text}"
    );
    assert_eq!(history(&s, "A"), ["first", "released"]);
    assert_eq!(s.live_of("A"), Some(2));
    assert_eq!(s.live_of("B"), Some(1));
    assert!(
        s.emu.prompts().iter().all(|p| p["name"] != "C"),
        "nothing of HEAD is synced"
    );

    let report = json_of(&s.run(&["plan", "--deploy-only", "--output", "json"], 0));
    assert_eq!(report["mode"], "deploy-only-plan");
    assert_eq!(report["summary"]["deployed"], 0, "{report:#}");
    s.run(&["plan", "--deploy-only", "--detailed-exitcode"], 0);
    let report = json_of(&s.run(
        &["sync", "--deploy-only", "--dry-run", "--output", "json"],
        0,
    ));
    assert_eq!(report["mode"], "deploy-only-dry-run");
    assert_eq!(report["dry_run"], true);
}

#[test]
fn plan_deploy_only_sends_nothing_and_says_when_a_deploy_is_pending() {
    let s = Scenario::new();
    s.repo.write("a.prompt.yaml", &prompt("A", "first"));
    s.repo.commit("First");
    s.run(&["sync", "--no-deploy"], 0);
    s.repo.tag("v1.0.0");
    s.emu.clear_requests();
    let (text, _) = texts(&s.run(&["plan", "--deploy-only", "--detailed-exitcode"], 2));
    assert!(text.contains("live none → v1 (v1.0.0)"), "{text}");
    assert_eq!(s.emu.change_requests(), vec![]);
    s.run(&["sync", "--deploy-only"], 0);
    s.run(&["plan", "--deploy-only", "--detailed-exitcode"], 0);
}

/// A deploy-only pass that cannot deploy anything is an error, said before anything
/// is sent: no tag matches (the tags were not fetched, or `deploy.tags` does not
/// match the pipeline's tags), or deploying is off.
#[test]
fn deploy_only_without_a_release_fails_and_says_why() {
    let s = Scenario::new();
    s.repo.write("a.prompt.yaml", &prompt("A", "first"));
    s.repo.commit("First");
    let output = s.run(&["sync", "--deploy-only", "--output", "json"], 1);
    let report = json_of(&output);
    assert_eq!(report["mode"], "deploy-only");
    assert_eq!(report["error"]["class"], "stalled", "{report:#}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("--deploy-only: no tag matches deploy.tags (v*)"),
        "{message}"
    );
    let (_, stderr) = texts(&output);
    assert!(
        stderr.contains("no tag matches deploy.tags (v*)"),
        "{stderr}"
    );

    s.repo.tag("v1.0.0");
    let output = s
        .cmd(&["sync", "--deploy-only"])
        .env("PROMPTSYNC_DEPLOY__ENABLED", "false")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        texts(&output).1.contains("deploy.enabled is false"),
        "{}",
        texts(&output).1
    );
    assert_eq!(s.emu.change_requests(), vec![], "nothing sent");
    assert!(s.emu.prompts().is_empty());
}

#[test]
fn deploy_only_and_no_deploy_or_a_working_tree_are_usage_errors() {
    let s = Scenario::new();
    for args in [
        &["sync", "--deploy-only", "--no-deploy"][..],
        &["--sync", "--no-deploy", "--deploy-only"],
        &["plan", "--deploy-only", "--no-deploy"],
        &["sync", "--deploy-only", "--worktree"],
        &["sync", "--deploy-only", "--rev", "HEAD~1"],
    ] {
        let (_, stderr) = texts(&s.run(args, 1));
        assert!(stderr.contains("cannot be used with"), "{args:?}: {stderr}");
    }
    let (_, stderr) = texts(&s.run(&["--deploy-only"], 1));
    assert!(stderr.contains("--deploy-only needs --sync"), "{stderr}");
}
