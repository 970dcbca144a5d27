//! GitHub Actions output through the real binary: with `GITHUB_ACTIONS=true`, findings,
//! failed prompts and an early stop become workflow-command annotations on stdout;
//! with `GITHUB_STEP_SUMMARY`, `sync` and `plan` append a Markdown summary to that file.

use serde_json::Value;

use crate::support::scenario::{Scenario, json_of, prompt, texts};

/// `promptsync ARGS` in the scenario's repository, as a GitHub Actions step runs it:
/// the workspace is the repository, the summary file is in a temp dir.
struct Step {
    summary: tempfile::TempDir,
}

impl Step {
    fn new() -> Step {
        Step {
            summary: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self) -> std::path::PathBuf {
        self.summary.path().join("step_summary.md")
    }

    fn run(&self, s: &Scenario, args: &[&str]) -> (Option<i32>, String, String) {
        let output = s
            .cmd(args)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", s.repo.path())
            .env("GITHUB_STEP_SUMMARY", self.file())
            .output()
            .unwrap();
        let (stdout, stderr) = texts(&output);
        (output.status.code(), stdout, stderr)
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap_or_default()
    }
}

fn annotations(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("::")).collect()
}

#[test]
fn validate_annotates_each_finding_with_file_line_and_column_escaped() {
    let s = Scenario::new();
    s.repo.write(
        "prompts/typo.prompt.yaml",
        "name: Typo\nmodel: gpt-4o\ntempera%ture: 1\nmessages:\n  - role: user\n    content: hi\n",
    );
    s.repo.write(
        "prompts/vars.prompt.yaml",
        "name: Vars\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: \"{{who}}\"\n",
    );
    let step = Step::new();
    let (code, stdout, _) = step.run(&s, &["validate"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        annotations(&stdout),
        [
            "::error file=prompts/typo.prompt.yaml,line=3,col=1,title=promptsync validate::\
             unknown key `tempera%25ture`%0Ahelp: did you mean `temperature`?",
            "::warning file=prompts/vars.prompt.yaml,line=5,col=14,title=promptsync validate::\
             `{{who}}` in `messages[0]` is not declared under `variables`%0Ahelp: declare it \
             with an example value: `variables: {who: ...}`",
        ]
    );
    assert!(
        stdout.contains("checked 2 prompt files"),
        "the text report is still there"
    );
    assert_eq!(step.summary(), "", "validate writes no job summary");

    let (_, stdout, _) = step.run(&s, &["validate", "--output", "json"]);
    let report: Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert_eq!(report["summary"]["errors"], 1);
}

#[test]
fn sync_annotates_invalid_files_and_failed_prompts_and_appends_a_summary() {
    let s = Scenario::new();
    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "first"));
    s.repo.write(
        "prompts/broken.prompt.yaml",
        "name: Broken\nmodel: gpt-4o\nmessages: []\n",
    );
    s.repo.write(
        "prompts/gone.prompt.yaml",
        "prompt_id: prm_does_not_exist\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: hi\n",
    );
    s.repo.commit("A, a broken file, a deleted prompt");
    let step = Step::new();
    std::fs::write(step.file(), "Written by an earlier step.\n").unwrap();
    let (code, stdout, _) = step.run(&s, &["sync"]);
    assert_eq!(code, Some(1));
    let lines = annotations(&stdout);
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(
            "::error file=prompts/broken.prompt.yaml,line=3,col=11,\
             title=promptsync%3A invalid prompt file::`messages` is empty"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(
            "::error file=prompts/gone.prompt.yaml,title=promptsync%3A sync failed::\
             prompt_id \"prm_does_not_exist\" does not exist"
        ),
        "{}",
        lines[1]
    );

    let summary = step.summary();
    assert!(
        summary.starts_with("Written by an earlier step.\n### promptsync sync\n\nSynced commit "),
        "{summary}"
    );
    assert!(
        summary.contains(": 1 created, 0 updated, 0 unchanged, 1 failed, 1 invalid file(s)."),
        "{summary}"
    );
    assert!(summary.contains("| File | Prompt | Action | Version | Changes | Deploy |"));
    assert!(
        summary.contains("| <code>prompts/a.prompt.yaml</code> | A <code>prm&#95;"),
        "{summary}"
    );
    assert!(summary.contains("| failed |"), "{summary}");
    assert!(
        summary.contains("#### Invalid files\n\n- <code>prompts/broken.prompt.yaml:3:11</code>")
    );
    assert!(!summary.contains('\u{1b}'), "no colours in the summary");
}

#[test]
fn plan_summarizes_the_diffs_in_collapsed_details_and_json_output_has_no_annotations() {
    let s = Scenario::new();
    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "first"));
    s.repo.commit("Add A");
    s.sync();
    s.repo.write(
        "prompts/a.prompt.yaml",
        &prompt("A", "second | <b>bold</b>"),
    );
    s.repo.commit("A says more");
    let step = Step::new();
    let (code, stdout, _) = step.run(&s, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(2));
    assert!(
        annotations(&stdout).is_empty(),
        "nothing to annotate: {stdout}"
    );
    let summary = step.summary();
    assert!(
        summary.starts_with("### promptsync plan\n\nPlan for commit "),
        "{summary}"
    );
    assert!(
        summary.contains(": 0 created, 1 updated, 0 unchanged, 0 failed."),
        "{summary}"
    );
    assert!(
        summary.contains("| update | v1 → new | messages |"),
        "{summary}"
    );
    let details = summary
        .split("<details><summary><code>prompts/a.prompt.yaml</code></summary>\n\n```diff\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no details block: {summary}"));
    assert!(
        details.contains("-    content: \"first\"\n+    content: \"second | <b>bold</b>\"\n"),
        "{details}"
    );
    assert!(details.contains("```\n\n</details>"), "{details}");

    let step = Step::new();
    let output = s
        .cmd(&["plan", "--output", "json"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", step.file())
        .output()
        .unwrap();
    assert_eq!(
        json_of(&output)["summary"]["updated"],
        1,
        "stdout is one JSON document"
    );
    assert!(
        step.summary().contains("### promptsync plan"),
        "the summary is written all the same"
    );
}

#[test]
fn a_pass_that_stops_early_is_annotated_and_summarized() {
    let s = Scenario::new();
    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "first"));
    s.repo.commit("Add A");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let step = Step::new();
    let output = s
        .cmd(&["sync"])
        .env("RESPAN_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "0s")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", step.file())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let (stdout, _) = texts(&output);
    let lines = annotations(&stdout);
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].starts_with("::error title=promptsync stopped early (transient)::"),
        "{}",
        lines[0]
    );
    let summary = step.summary();
    assert!(
        summary.contains("> Stopped early (transient): "),
        "{summary}"
    );
}

#[test]
fn a_repository_below_the_workspace_is_named_from_the_workspace() {
    let s = Scenario::new();
    s.repo.write(
        "prompts/typo.prompt.yaml",
        "name: T\nmodel: m\nmesages: []\n",
    );
    let workspace = s.repo.path().parent().unwrap();
    let output = crate::support::promptsync()
        .current_dir(workspace)
        .args(["--repo", "repo", "validate"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", workspace)
        .output()
        .unwrap();
    let (stdout, _) = texts(&output);
    assert!(
        annotations(&stdout)
            .iter()
            .all(|l| l.starts_with("::error file=repo/prompts/typo.prompt.yaml,")),
        "{stdout}"
    );
    assert!(!annotations(&stdout).is_empty(), "{stdout}");

    // Outside GitHub Actions: no annotations, whatever else is set.
    let output = crate::support::promptsync()
        .current_dir(s.repo.path())
        .arg("validate")
        .env("GITHUB_WORKSPACE", workspace)
        .output()
        .unwrap();
    assert!(annotations(&texts(&output).0).is_empty());
}
