//! `promptsync validate` end to end: the real binary on the project's examples and
//! fixtures, and on repositories made for the test (working tree, `--rev`, PATHS).
//!
//! Every class of bad input and its exact message. Fixtures under `tests/fixtures/` are
//! pinned by [`the_fixtures_report_every_error_class`] (snapshot
//! `it__validate__validate_fixtures.snap`); what cannot be committed (FIFOs, sockets,
//! links to devices, names that are not UTF-8 or hold escapes, a 300 KB line) is
//! generated in a temp repository by `badinput.rs` (snapshot
//! `it__badinput__badinput_generated.snap`); paths on the command line are tested
//! below and in `badinput.rs`. Settings files (`--config`, `api_key_file`) have their
//! own classes in `config.rs`.
//!
//! | # | class | fixture | message |
//! |---|---|---|---|
//! | 1 | file over 1 MiB | `invalid/too-large.prompt.yaml` | the file is 1048644 bytes, over the limit of 1 MiB (1048576 bytes) |
//! | 2 | bytes that are not UTF-8 | `invalid/not-utf8.prompt.yaml` | the file is not valid UTF-8 (bad byte at offset 71) |
//! | 3 | empty file | `invalid/empty-file.prompt.yaml` | the file is empty |
//! | 4 | not a mapping | `invalid/not-a-mapping.prompt.yaml` | a prompt file must be a mapping of keys, found a list |
//! | 5 | YAML syntax | `invalid/yaml-syntax.prompt.yaml` | invalid YAML: unclosed quote |
//! | 6 | raw control character | `invalid/control-character.prompt.yaml` | invalid YAML: the control character `\u{1b}` cannot appear in YAML text |
//! | 7 | indentation: list entry | `invalid/bad-indentation-list.prompt.yaml` | invalid YAML: expected a list entry (`- ...`) here, in the column of the entries above it |
//! | 8 | indentation: key too far in | `invalid/bad-indentation-key.prompt.yaml` | invalid YAML: a `key: value` is not allowed here (is it indented too far?) |
//! | 9 | tab indentation | `invalid/tab-indentation.prompt.yaml` | invalid YAML: a tab where YAML allows only spaces (at the tab, 4:1) |
//! | 10 | duplicate key | `invalid/duplicate-key.prompt.yaml` | duplicate key `model` |
//! | 11 | several documents | `invalid/multiple-documents.prompt.yaml` | the file holds more than one YAML document; a second one starts here |
//! | 12 | nesting too deep | `invalid/too-deep.prompt.yaml` | the file nests lists and mappings more than 32 levels deep |
//! | 13 | alias bomb | `invalid/alias-bomb.prompt.yaml` | the file holds more than 250000 values (an alias counts all the values of its anchor each time it is used) |
//! | 14 | unknown anchor | `invalid/unknown-anchor.prompt.yaml` | invalid YAML: this alias (`*name`) refers to no anchor (`&name`) defined before it |
//! | 15 | YAML tags (value, `!!binary`, key) | `invalid/yaml-tags.prompt.yaml` | YAML tags are not supported: `!secret`; the same for `!!binary` and `!note` (on a key) |
//! | 16 | list as a key | `invalid/list-as-key.prompt.yaml` | a list or mapping cannot be a key |
//! | 17 | non-finite number | `invalid/non-finite-number.prompt.yaml` | `.nan` is not a finite number |
//! | 18 | missing `messages` | `invalid/missing-messages.prompt.yaml` | missing required key `messages` |
//! | 19 | missing `model` | `invalid/missing-model.prompt.yaml` | missing required key `model` |
//! | 20 | no identity | `invalid/no-identity.prompt.yaml` | the prompt has no identity: neither `prompt_id` nor `name` is given |
//! | 21 | empty `name` | `invalid/empty-name.prompt.yaml` | `name` is empty |
//! | 22 | id with `/` | `invalid/id-with-slash.prompt.yaml` | `prompt_id` contains `/`; it cannot be a Respan prompt id |
//! | 23 | id with `..` | `invalid/id-with-dots.prompt.yaml` | `prompt_id` contains `..`; it cannot be a Respan prompt id |
//! | 24 | id with whitespace | `invalid/id-with-whitespace.prompt.yaml` | `prompt_id` contains whitespace; it cannot be a Respan prompt id |
//! | 25 | id with a control character | `invalid/id-with-control-character.prompt.yaml` | `prompt_id` contains the control character `\u{1b}`; it cannot be a Respan prompt id |
//! | 26 | id too long | `invalid/id-too-long.prompt.yaml` | `prompt_id` is 300 characters long, over the limit of 256; it cannot be a Respan prompt id |
//! | 27 | name with a control character | `invalid/name-with-control-character.prompt.yaml` | `name` contains the control character `\n` |
//! | 28 | name too long | `invalid/name-too-long.prompt.yaml` | `name` is 299 characters long, over the limit of 256 |
//! | 29 | duplicate prompt id | `invalid/duplicate-id-a.prompt.yaml`, `-b` | prompt id `prm_duplicate` is also used by `tests/fixtures/invalid/duplicate-id-b.prompt.yaml` |
//! | 30 | duplicate name | `invalid/duplicate-name-a.prompt.yaml`, `-b` | name `Duplicate name` is also used by `tests/fixtures/invalid/duplicate-name-b.prompt.yaml` |
//! | 31 | empty `messages` | `invalid/empty-messages.prompt.yaml` | `messages` is empty; it needs at least one entry |
//! | 32 | message without role | `invalid/message-without-role.prompt.yaml` | `messages[1]` is missing required key `role` |
//! | 33 | unknown role (did you mean) | `invalid/bad-role.prompt.yaml` | `messages[0].role` is `usr`, expected one of `system`, `user`, `assistant`, `tool`, `developer`, `none` |
//! | 34 | unknown top-level key (did you mean) | `invalid/unknown-key.prompt.yaml` | unknown key `temprature` |
//! | 35 | unknown nested key (did you mean) | `invalid/unknown-key.prompt.yaml` | unknown key `contnet` |
//! | 36 | unknown key, no near miss (keys listed) | `invalid/unknown-message-key.prompt.yaml` | unknown key `colour` |
//! | 37 | wrong type | `invalid/wrong-type.prompt.yaml` | wrong type for `stream`: expected a boolean, found the string "yes" |
//! | 38 | float for an integer | `invalid/wrong-type.prompt.yaml` | wrong type for `max_tokens`: expected an integer, found the number 1.5 |
//! | 39 | leading-zero number | `invalid/leading-zero-number.prompt.yaml` | wrong type for `max_tokens`: expected an integer, found the string "0100" |
//! | 40 | content neither text nor parts | `invalid/content-wrong-type.prompt.yaml` | wrong type for `messages[0].content`: expected a string or a list, found a mapping |
//! | 41 | content part without type | `invalid/content-part-without-type.prompt.yaml` | `messages[0].content[0]` is missing required key `type` |
//! | 42 | unknown `tool_choice` (did you mean) | `invalid/bad-tool-choice.prompt.yaml` | `tool_choice` is `autoo`, expected one of `auto`, `none`, `required` |
//! | 43 | `temperature` out of range | `invalid/temperature-out-of-range.prompt.yaml` | `temperature` is 2.5, out of range: it must be between 0 and 2 |
//! | 44 | `top_p` out of range | `invalid/top-p-out-of-range.prompt.yaml` | `top_p` is 1.5, out of range: it must be between 0 and 1 |
//! | 45 | penalties out of range | `invalid/penalty-out-of-range.prompt.yaml` | `frequency_penalty` is -2.5, out of range: it must be between -2 and 2 |
//! | 46 | `max_tokens` not positive | `invalid/max-tokens-not-positive.prompt.yaml` | `max_tokens` is 0, out of range: it must be at least 1 |
//! | 47 | negative weight | `invalid/negative-weight.prompt.yaml` | `load_balance_models[0].weight` is -1, out of range: it must be at least 0 |
//! | 48 | `content` and `content_file` | `invalid/content-and-content-file.prompt.yaml` | `messages[0]` has both `content` and `content_file` |
//! | 49 | empty `content_file` | `invalid/content-file-empty.prompt.yaml` | `messages[0].content_file` is empty |
//! | 50 | content file missing | `invalid/content-file-missing.prompt.yaml` | content file `text/does-not-exist.md` does not exist |
//! | 51 | content file outside the repository | `invalid/content-file-outside.prompt.yaml` | content file `../../../../etc/hostname` is outside the repository |
//! | 52 | content file in the git directory | `invalid/content-file-in-git-dir.prompt.yaml` | content file `../../../.git/config` is inside the git directory, which promptsync never reads |
//! | 53 | content file is a directory | `invalid/content-file-directory.prompt.yaml` | content file `../valid/text` is a directory, not a regular file |
//! | 54 | content file not UTF-8 | `invalid/content-file-not-utf8.prompt.yaml` | content file `text/latin1.md` is not valid UTF-8 (bad byte at offset 3) |
//! | 55 | undeclared placeholder (warning) | `valid/variable-warnings.prompt.yaml` | `{{audience}}` in `messages[0]` is not declared under `variables` |
//! | 56 | unused variable (warning) | `valid/variable-warnings.prompt.yaml` | variable `tone` is declared but no message uses it |
//! | 57 | prompt file is a FIFO | generated: `p/fifo.prompt.yaml` | the prompt file is a named pipe (FIFO), not a regular file |
//! | 58 | prompt file is a socket | generated: `p/socket.prompt.yaml` | the prompt file is a socket, not a regular file |
//! | 59 | prompt file links to a device | generated: `p/device.prompt.yaml` → `/dev/zero` | the prompt file is a symbolic link that leads outside the repository |
//! | 60 | prompt file links nowhere | generated: `p/dangling.prompt.yaml` | the prompt file is a symbolic link that leads nowhere |
//! | 61 | prompt file links into `.git` | generated: `p/git-config.prompt.yaml` | the prompt file is inside the git directory, which promptsync never reads |
//! | 62 | file name not UTF-8 | generated: `p/caf\xe9.prompt.yaml` | the file name is not valid UTF-8, so the file cannot be named in the API or a report |
//! | 63 | escape sequence in a file name | generated: `p/\e[2Jclear.prompt.yaml` | missing required key `model` (at `p/\u{1b}[2Jclear.prompt.yaml:1:1`: the name escaped) |
//! | 64 | 300 KB line | generated: `p/long-line.prompt.yaml` | wrong type for `fallback_models[20000]`: expected a string, found a mapping (the line shown as a 120-character window, `…` at both ends) |
//! | 65 | content file is a FIFO | generated: `p/content-fifo.prompt.yaml` | content file `text/fifo.md` is a named pipe (FIFO), not a regular file |
//! | 66 | content file links to a device | generated: `p/content-device.prompt.yaml` | content file `text/zero.md` leads outside the repository through the symbolic link `p/text/zero.md` |
//! | 67 | content file in `.git` | generated: `p/content-git.prompt.yaml` | content file `../.git/config` is inside the git directory, which promptsync never reads |
//! | 68 | content file links into `.git` | generated: `p/content-git-link.prompt.yaml` | content file `text/git.md` is inside the git directory, which promptsync never reads |
//! | 69 | content file over 1 MiB | generated: `p/content-big.prompt.yaml` | content file `text/big.md` is 1048577 bytes, over the limit of 1 MiB |
//! | 70 | path that does not exist | `validate nope.prompt.yaml` | cannot read `nope.prompt.yaml`: No such file or directory |
//! | 71 | path outside the repository | `validate /elsewhere/x.prompt.yaml` | `<dir>/x.prompt.yaml` is outside the repository at `<root>` |
//! | 72 | git directory named | `validate .git .git/config` | `.git` is inside the git directory, which promptsync never reads |
//! | 73 | tab that starts a line | `invalid/tab-line-start.prompt.yaml` | invalid YAML: a tab where YAML allows only spaces (at 2:1, not at the scalar before it) |
//! | 74 | unclosed `[` (more lines follow) | `invalid/unclosed-bracket.prompt.yaml` | invalid YAML: this `[` is never closed: the list it starts has no `]` (at the bracket) |
//! | 75 | unclosed `{` | `invalid/unclosed-brace.prompt.yaml` | invalid YAML: this `{` is never closed: the mapping it starts has no `}` |
//! | 76 | unclosed quote at the end of the file | `invalid/unclosed-quote-at-end.prompt.yaml` | invalid YAML: unclosed quote |
//! | 77 | YAML merge key | `invalid/merge-key.prompt.yaml` | YAML merge keys (`<<`) are not supported |
//! | 78 | prompt file is a Git LFS pointer | `invalid/lfs-pointer.prompt.yaml` | the prompt file is a Git LFS pointer (to 2,048 bytes stored in LFS), not the prompt itself |
//! | 79 | content file is a Git LFS pointer | `invalid/content-file-lfs.prompt.yaml` | content file `text/lfs-pointer.md` is a Git LFS pointer (to 18,211 bytes stored in LFS), not the text itself |
//! | 80 | warnings of a file with errors | `invalid/warnings-with-errors.prompt.yaml` | `{{language}}` in `messages[0]` is not declared under `variables` (beside the file's error) |
//! | 81 | long key, value and `content_file` quoted | `invalid/long-values.prompt.yaml` | unknown key `very_very_…_long_key` (308 characters) (an excerpt of each) |
//! | 82 | integral float for an integer (valid) | `valid/integral-floats.prompt.yaml` | none: `max_tokens: 2048.0` is 2048, as `1` and `1.0` are one number; a tab after a key is fine |
//! | 83 | 80,000 undeclared placeholders | generated: `p/many-variables.prompt.yaml` | 50 warnings, the 50th with `= note: and 79,950 more like it in this file`; the summary counts 80000 |
//! | 84 | 100,000-character `content_file` | generated: `p/long-content-file.prompt.yaml` | cannot read content file `text/xxx…xxx.md` (100,008 characters): File name too long |
//! | 85 | prompt files in a submodule (warning) | generated: `shared/` | the submodule `shared` holds 2 prompt files that promptsync does not read: ... |
//! | 86 | content file in a submodule | generated: `p/content-submodule.prompt.yaml` | content file `../shared/notes.md` is inside the submodule `shared`, whose files promptsync does not read |
//! | 87 | file name not UTF-8 in a commit | generated, committed: `p/caf\xe9.prompt.yaml`, `d\xe9r/b.prompt.yaml` | the same finding as #62, from `validate --rev`, `sync` and `sync --worktree` |
//! | 88 | 100,000-character `--rev` | `validate --rev xxx…` | unknown revision `xxx…xxx` (100,000 characters) in <root>: ... |
//! | 89 | revision that does not exist | `validate --rev nope`, `--rev HEAD~5`, `--rev a..b` | our reason for each, never libgit2's `class=Reference (4); code=NotFound (-3)` |
//! | 90 | `--repo` that does not exist | `validate --repo /nonexistent` | <path> does not exist: pass --repo the directory of a git repository's working tree |
//! | 91 | a path named inside a submodule | `validate shared/a.prompt.yaml` | `shared/a.prompt.yaml` is inside the submodule `shared`, whose files promptsync does not read |

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
        serde_json::json!({"files": 66, "valid": 3, "invalid": 63, "errors": 70, "warnings": 4})
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
    assert_eq!(files.len(), 66);
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
            "checked 3 prompt files: 3 valid, 0 invalid; 0 errors, 2 warnings\n",
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

/// A revision is quoted as an excerpt, and git's failure is said in our words.
#[test]
fn revisions_are_excerpted_and_explained() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &valid_prompt("A"));
    repo.commit("add A");
    let long = format!("{}{}", "x".repeat(99_990), "0123456789");
    let assert = promptsync()
        .current_dir(repo.path())
        .args(["validate", "--rev", &long])
        .assert()
        .code(1)
        .stdout("");
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.len() < 600, "{} bytes: {stderr}", stderr.len());
    assert!(
        stderr.contains(&format!(
            "error: unknown revision `{}…{}0123456789` (100,000 characters) in ",
            "x".repeat(60),
            "x".repeat(20)
        )),
        "{stderr}"
    );
    let cases = [
        (
            "nope",
            "unknown revision `nope` in ",
            "no branch, tag or commit of that name exists here: give one that does (in a shallow clone, fetch it first)",
        ),
        (
            "HEAD~5",
            "unknown revision `HEAD~5` in ",
            "it leads to a commit this repository does not have (the history is shorter, or a shallow clone lacks it): give one that exists here",
        ),
        (
            "a..b",
            "unknown revision `a..b` in ",
            "git cannot read it as a revision: give a branch, tag or commit id (`main`, `v1.2.0`, `HEAD~2` and the like)",
        ),
    ];
    for (rev, start, reason) in cases {
        let assert = promptsync()
            .current_dir(repo.path())
            .args(["validate", "--rev", rev])
            .assert()
            .code(1);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(
            stderr.contains(start) && stderr.contains(reason),
            "{rev}: {stderr}"
        );
        for library in ["class=", "code=", "revspec", "Invalid pattern"] {
            assert!(!stderr.contains(library), "{rev}: {stderr}");
        }
    }
}

#[test]
fn a_repo_that_does_not_exist_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent");
    promptsync()
        .args(["validate", "--repo"])
        .arg(&missing)
        .assert()
        .code(1)
        .stdout("")
        .stderr(format!(
            "error: {} does not exist: pass --repo the directory of a git repository's working tree\n",
            missing.display()
        ));
    // A file where the repository should be: said so, not "cannot read
    // <path>/promptsync.toml: Not a directory".
    let file = dir.path().join("hostname");
    std::fs::write(&file, "host\n").unwrap();
    for command in ["validate", "plan"] {
        promptsync()
            .args([command, "--repo"])
            .arg(&file)
            .env("RESPAN_API_KEY", "a-key-for-the-test")
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicates::str::contains(format!(
                "error: {} is a file, not a directory: pass --repo the directory of a git repository's working tree\n",
                file.display()
            )));
    }
}
