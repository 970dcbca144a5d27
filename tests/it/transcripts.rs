//! What a user sees, pinned as transcripts: the real binary against the emulator (or
//! two, for `[targets]`), each command's stdout (and, for an error, stderr) with its
//! exit code, compared with a reviewed snapshot under `tests/it/snapshots/`. A change
//! in the output shows as a diff of the snapshot. What varies between runs and
//! machines (commit ids, prompt ids, temp paths, ports, durations, timestamps) is
//! replaced by a placeholder before the comparison.

use std::path::Path;
use std::process::Output;

use serde_json::json;

use crate::support::emulator::{TEST_KEY, TestEmulator};
use crate::support::promptsync;
use crate::support::scenario::{Scenario, prompt, run_checked, texts};
use crate::sync::two_prompts;

/// The lines a user reads: `$ promptsync ARGS`, stdout, then the exit code; with
/// `stderr`, what the command said there too (an error's message).
fn transcript(args: &[&str], output: &Output, stderr: bool) -> String {
    let (out, err) = texts(output);
    let mut text = format!("$ promptsync {}\n{out}", args.join(" "));
    if stderr {
        text.push_str(&format!("--- stderr\n{err}"));
    }
    text.push_str(&format!(
        "[exit {}]\n",
        output
            .status
            .code()
            .map_or("signal".into(), |c| c.to_string())
    ));
    text
}

/// Placeholders for what varies between runs and machines.
fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // Commit ids, whole and short (`commit 0123456789`).
    settings.add_filter(r"\b[0-9a-f]{40}\b", "[commit]");
    settings.add_filter(r"\b[0-9a-f]{10}\b", "[short-commit]");
    settings.add_filter(r"\bprm_[0-9A-Za-z]+\b", "[prompt-id]");
    settings.add_filter(r"\bver_[0-9A-Za-z]+\b", "[version-id]");
    // A temp dir (the repository's, the operator's files): the system's temp dir and
    // the dir's own name.
    let temp = std::env::temp_dir();
    let temp = escaped(temp.to_str().unwrap_or("/tmp").trim_end_matches('/'));
    settings.add_filter(&format!(r"{temp}/[^/\s\x22']+"), "[tmp]");
    settings.add_filter(r"(127\.0\.0\.1|localhost):[0-9]+", "[host]:[port]");
    settings.add_filter(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
        "[timestamp]",
    );
    settings.add_filter(r"\b\d+(\.\d+)?\s?(ms|s)\b", "[duration]");
    settings.add_filter(r"\bduration_ms=\d+", "duration_ms=[duration]");
    settings
}

/// `text` as a regular expression that matches it literally.
fn escaped(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Run `args` in `s`'s repository, expecting `code`, and pin the transcript as `name`.
fn pin(s: &Scenario, name: &str, args: &[&str], code: i32, stderr: bool) {
    let output = s.run(args, code);
    pin_output(name, args, &output, stderr);
}

fn pin_output(name: &str, args: &[&str], output: &Output, stderr: bool) {
    let text = transcript(args, output, stderr);
    redacted().bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn sync_creates_finds_nothing_to_do_then_plans_and_syncs_a_change() {
    let s = two_prompts();
    pin(&s, "sync_create", &["sync"], 0, false);
    pin(&s, "sync_unchanged", &["sync"], 0, false);
    pin(&s, "plan_no_changes", &["plan"], 0, false);

    s.repo.write(
        "prompts/greeter.prompt.yaml",
        &prompt("Greeter", "Greet warmly, briefly."),
    );
    s.repo.commit("Shorter greeting");
    pin(&s, "plan_change_with_diff", &["plan"], 0, false);
    pin(
        &s,
        "plan_detailed_exitcode",
        &["plan", "--detailed-exitcode"],
        2,
        false,
    );
    pin(&s, "sync_dry_run", &["sync", "--dry-run"], 0, false);
    pin(&s, "sync_change", &["sync"], 0, false);
}

#[test]
fn sync_json_of_a_create_and_a_change() {
    let s = two_prompts();
    pin(
        &s,
        "sync_json_create",
        &["sync", "--output", "json"],
        0,
        false,
    );
    s.repo.write(
        "prompts/support.prompt.yaml",
        &prompt("Support", "Help customers, kindly."),
    );
    s.repo.commit("Kinder support");
    pin(
        &s,
        "sync_json_change",
        &["sync", "--output", "json"],
        0,
        false,
    );
}

/// A: in sync. B: its file changed since. U: a remote prompt no file names.
fn status_scenario() -> Scenario {
    let s = Scenario::new();
    s.repo
        .write("a.prompt.yaml", &prompt("A", "a"))
        .write("b.prompt.yaml", &prompt("B", "b"));
    s.repo.commit("First prompts");
    s.repo.tag("v1.0.0");
    s.sync();
    s.repo.write("b.prompt.yaml", &prompt("B", "b, revised"));
    s.repo.commit("Revise B");
    let u = s.emu.create_prompt("Unmanaged one");
    s.emu.create_version(
        &u,
        json!({"model": "m", "messages": [{"role": "user", "content": "u"}]}),
    );
    s
}

#[test]
fn status_shows_what_is_where() {
    let s = status_scenario();
    pin(&s, "status", &["status"], 0, false);
    pin(
        &s,
        "status_detailed_exitcode",
        &["status", "--detailed-exitcode"],
        2,
        false,
    );
    pin(&s, "status_history", &["status", "--prompt", "B"], 0, false);
    pin(&s, "status_json", &["status", "--output", "json"], 0, false);
}

#[test]
fn validate_names_file_line_and_what_is_wrong() {
    let s = Scenario::new();
    s.repo
        .write("prompts/ok.prompt.yaml", &prompt("Fine", "All good."))
        .write(
            "prompts/broken.prompt.yaml",
            "name: Broken\nmodel: gpt-4o\ntemperature: hot\nmessages:\n  - role: wizard\n    content: Hi\n",
        );
    s.repo.commit("A good prompt and a broken one");
    pin(&s, "validate_bad_input", &["validate"], 1, false);
    pin(&s, "sync_with_an_invalid_file", &["sync"], 1, false);
}

#[test]
fn pull_writes_a_file_then_finds_it_up_to_date() {
    let s = Scenario::new();
    s.repo.write("README.md", "prompts\n");
    s.repo.commit("Empty");
    let id = s.emu.create_prompt("Support assistant");
    s.emu.create_version(
        &id,
        json!({"model": "gpt-4o", "messages": [{"role": "system", "content": "Be kind."}]}),
    );
    s.emu
        .post(&format!("/api/prompts/{id}/commits/"), json!({}));
    s.emu.post(
        &format!("/api/prompts/{id}/deployments/"),
        json!({"version": 1}),
    );
    pin(&s, "pull_writes", &["pull", "Support assistant"], 0, false);
    pin(
        &s,
        "pull_up_to_date",
        &["pull", "Support assistant"],
        0,
        false,
    );
    pin(&s, "pull_unknown", &["pull", "Nobody"], 1, false);
}

#[test]
fn an_error_exit_says_why_on_stderr() {
    let s = Scenario::with(TestEmulator::refusing_the_test_key());
    s.repo.write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.commit("One prompt");
    pin(&s, "error_refused_key", &["sync"], 1, true);
    pin(
        &s,
        "error_refused_key_json",
        &["sync", "--output", "json"],
        1,
        false,
    );
    let missing = s.repo.path().join("nowhere").join("promptsync.toml");
    let missing = missing.to_str().unwrap();
    pin(
        &s,
        "error_missing_config",
        &["plan", "--config", missing],
        1,
        true,
    );
}

/// `promptsync ARGS --config CONFIG` in `s`'s repository, `staging`'s key in
/// `STAGING_API_KEY` and a wrong one in `QA_API_KEY`, expecting `code`.
fn run_targets(s: &Scenario, config: &Path, args: &[&str], code: i32) -> Output {
    let mut cmd = promptsync();
    cmd.current_dir(s.repo.path())
        .env("STAGING_API_KEY", TEST_KEY)
        .env("QA_API_KEY", "sk_qa_wrong")
        .args(args)
        .arg("--config")
        .arg(config);
    run_checked(cmd, &format!("promptsync {args:?}"), code)
}

/// Two projects, one emulator each, named in an operator's file outside the
/// repository; `staging` takes the key from its variable, `production` from a file.
/// Then a third, `qa`, that refuses its key: its error has its place in the group,
/// the others' reports stand.
#[test]
fn targets_report_grouped_by_target() {
    let s = two_prompts();
    let production = TestEmulator::start();
    let qa = TestEmulator::start_with(promptsync_emulator::EmulatorConfig {
        api_keys: vec!["sk_qa_right".into()],
        ..Default::default()
    });
    let ops = tempfile::tempdir().unwrap();
    let key_file = ops.path().join("production-key");
    std::fs::write(&key_file, format!("{TEST_KEY}\n")).unwrap();
    let two = format!(
        "[targets.production]\nbase_url = \"{}\"\napi_key_file = \"{}\"\n\n\
         [targets.staging]\nbase_url = \"{}\"\napi_key_env = \"STAGING_API_KEY\"\n",
        production.base_url(),
        key_file.display(),
        s.emu.base_url()
    );
    let config = ops.path().join("promptsync.toml");
    std::fs::write(&config, &two).unwrap();
    for (name, args, code) in [
        ("targets_sync_one", &["sync", "--target", "staging"][..], 0),
        ("targets_plan_grouped", &["plan"], 0),
        ("targets_sync_json", &["sync", "--output", "json"], 0),
        ("targets_status_grouped", &["status"], 0),
    ] {
        let output = run_targets(&s, &config, args, code);
        pin_output(name, args, &output, false);
    }

    let three = format!(
        "{two}\n[targets.qa]\nbase_url = \"{}\"\napi_key_env = \"QA_API_KEY\"\n",
        qa.base_url()
    );
    std::fs::write(&config, three).unwrap();
    for (name, args) in [
        ("targets_sync_one_refused", &["sync"][..]),
        ("targets_status_one_refused", &["status"]),
        (
            "targets_status_json_one_refused",
            &["status", "--output", "json"],
        ),
    ] {
        let output = run_targets(&s, &config, args, 1);
        pin_output(name, args, &output, true);
    }
}

/// `--emulator`: a local emulator inside the command, its state under `.git`; a later
/// command in the same repository finds what an earlier one synced.
#[test]
fn the_local_emulator_keeps_its_state_between_commands() {
    let s = two_prompts();
    pin(&s, "local_sync", &["sync", "--emulator"], 0, true);
    pin(&s, "local_status", &["status", "--emulator"], 0, false);
}
