//! `promptsync validate` end to end: the real binary on the project's examples and
//! fixtures, and on repositories made for the test (working tree, `--rev`, PATHS).

use std::path::Path;

use predicates::str::contains;
use serde_json::Value;

use crate::support::git::TestRepo;
use crate::support::promptsync;

fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).unwrap()
}

fn valid_prompt(name: &str) -> String {
    format!("name: {name}\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: Hello\n")
}

#[test]
fn the_examples_are_valid() {
    promptsync()
        .current_dir(project_root())
        .args(["validate", "examples/prompts"])
        .assert()
        .success()
        .stdout("checked 4 prompt files: 4 valid, 0 invalid; 0 errors, 0 warnings\n");
}

/// Every error class of the format, one fixture file each, all reported in one run
/// with file, line and column; pinned as a transcript.
#[test]
fn the_fixtures_report_every_error_class() {
    let assert = promptsync()
        .current_dir(project_root())
        .args(["validate", "tests/fixtures"])
        .assert()
        .code(1);
    insta::assert_snapshot!("validate_fixtures", stdout_of(&assert));
}

#[test]
fn json_output_has_the_same_findings() {
    let text = stdout_of(
        &promptsync()
            .current_dir(project_root())
            .args(["validate", "tests/fixtures"])
            .assert()
            .code(1),
    );
    let assert = promptsync()
        .current_dir(project_root())
        .args(["validate", "tests/fixtures", "--output", "json"])
        .assert()
        .code(1);
    let report: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let diagnostics = report["diagnostics"].as_array().unwrap();
    assert_eq!(
        report["summary"],
        serde_json::json!({"files": 22, "valid": 2, "invalid": 20, "errors": 23, "warnings": 2})
    );
    for d in diagnostics {
        let location = format!(
            "{}:{}:{}",
            d["path"].as_str().unwrap(),
            d["line"],
            d["column"]
        );
        let heading = format!(
            "{}: {}",
            d["severity"].as_str().unwrap(),
            d["message"].as_str().unwrap()
        );
        assert!(
            text.contains(&format!("{heading}\n")),
            "{heading} missing from the text output"
        );
        assert!(
            text.contains(&format!("--> {location}\n")),
            "{location} missing from the text output"
        );
    }
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 22);
    assert!(files.contains(&serde_json::json!({
        "path": "tests/fixtures/valid/variable-warnings.prompt.yaml", "valid": true
    })));
}

#[test]
fn warnings_alone_exit_zero() {
    promptsync()
        .current_dir(project_root())
        .args(["validate", "tests/fixtures/valid"])
        .assert()
        .success()
        .stdout(contains(
            "checked 2 prompt files: 2 valid, 0 invalid; 0 errors, 2 warnings\n",
        ));
}

#[test]
fn without_paths_the_working_tree_is_checked() {
    let repo = TestRepo::new();
    repo.write("prompts/a.prompt.yaml", &valid_prompt("A"));
    repo.commit("add A");
    repo.write(
        "prompts/b.prompt.yaml",
        "name: B\nmodel: gpt-4o\nmessages: []\n",
    );

    promptsync()
        .current_dir(repo.path())
        .arg("validate")
        .assert()
        .code(1)
        .stdout(contains("--> prompts/b.prompt.yaml:3:11\n"))
        .stdout(contains(
            "checked 2 prompt files: 1 valid, 1 invalid; 1 error, 0 warnings\n",
        ));

    // The commit does not have the invalid file yet.
    promptsync()
        .current_dir(repo.path())
        .args(["validate", "--rev", "HEAD"])
        .assert()
        .success()
        .stdout("checked 1 prompt file: 1 valid, 0 invalid; 0 errors, 0 warnings\n");

    // --repo from elsewhere.
    promptsync()
        .args(["validate", "--repo"])
        .arg(repo.path())
        .assert()
        .code(1)
        .stdout(contains("checked 2 prompt files"));
}

#[test]
fn paths_are_files_or_directories_and_duplicates_span_them() {
    let repo = TestRepo::new();
    repo.write("one/a.prompt.yaml", &valid_prompt("Same"));
    repo.write("two/b.prompt.yaml", &valid_prompt("Same"));
    repo.write("two/plain.yaml", &valid_prompt("Other"));
    repo.write("two/notes.txt", "not a prompt");

    let assert = promptsync()
        .current_dir(repo.path())
        .args(["validate", "one", "two/b.prompt.yaml", "two/plain.yaml"])
        .assert()
        .code(1);
    let out = stdout_of(&assert);
    assert!(
        out.contains(
            "error: name `Same` is also used by `two/b.prompt.yaml`\n  --> one/a.prompt.yaml:1:7"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "error: name `Same` is also used by `one/a.prompt.yaml`\n  --> two/b.prompt.yaml:1:7"
        ),
        "{out}"
    );
    assert!(
        out.ends_with("checked 3 prompt files: 1 valid, 2 invalid; 2 errors, 0 warnings\n"),
        "{out}"
    );
}

#[test]
fn missing_paths_and_paths_outside_the_repository_are_findings() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &valid_prompt("A"));
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("x.prompt.yaml"), valid_prompt("X")).unwrap();

    let assert = promptsync()
        .current_dir(repo.path())
        .args(["validate", "a.prompt.yaml", "nope.prompt.yaml"])
        .arg(elsewhere.path().join("x.prompt.yaml"))
        .assert()
        .code(1);
    let out = stdout_of(&assert);
    assert!(
        out.contains("error: cannot read `nope.prompt.yaml`: "),
        "{out}"
    );
    assert!(
        out.contains("x.prompt.yaml` is outside the repository at "),
        "{out}"
    );
    assert!(
        out.ends_with("checked 1 prompt file: 1 valid, 0 invalid; 2 errors, 0 warnings\n"),
        "{out}"
    );
}

#[test]
fn paths_work_outside_any_repository_but_the_default_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.prompt.yaml"), valid_prompt("A")).unwrap();
    std::fs::write(
        dir.path().join("b.prompt.yaml"),
        "name: B\nmodel: [5]\nmessages: [{role: user}]\n",
    )
    .unwrap();

    promptsync()
        .current_dir(dir.path())
        .args(["validate", "."])
        .assert()
        .code(1)
        .stdout(contains("error: wrong type for `model`: expected a string, found a list\n  --> b.prompt.yaml:2:8\n"));

    promptsync()
        .current_dir(dir.path())
        .arg("validate")
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains("is not inside a git repository"));
}

#[test]
fn a_repository_without_commits_says_so_for_rev() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &valid_prompt("A"));
    promptsync()
        .current_dir(repo.path())
        .args(["validate", "--rev", "HEAD"])
        .assert()
        .code(1)
        .stderr(contains("has no commits yet"));
    promptsync()
        .current_dir(repo.path())
        .arg("validate")
        .assert()
        .success();
}

#[test]
fn no_api_key_or_network_is_needed() {
    // The support builder clears RESPAN_*; point the base URL nowhere to be sure.
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &valid_prompt("A"));
    promptsync()
        .current_dir(repo.path())
        .env("RESPAN_BASE_URL", "http://127.0.0.1:9")
        .arg("validate")
        .assert()
        .success();
}
