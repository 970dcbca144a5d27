//! An incremental pass (after a commit) reaches the decision a full pass on the same
//! commit reaches, when a changed file touches the identity of a file it would carry:
//! it names that file's prompt by id, or its name finds that prompt (issue 18, point
//! 1). Each case: the commit's own pass reports the conflict and writes nothing, and a
//! full pass afterwards agrees.

use serde_json::Value;

use super::{DEADLINE, one_prompt, wait_for_text};
use crate::support::daemon::Daemon;
use crate::support::scenario::{Scenario, prompt};

/// A prompt file that names its prompt by id (what `pull` writes, without the name).
fn by_id(id: &str, name: Option<&str>, text: &str) -> String {
    let name = name.map(|n| format!("name: {n}\n")).unwrap_or_default();
    format!(
        "prompt_id: {id}\n{name}model: gpt-4o\nmessages:\n  - role: system\n    content: {text:?}\n"
    )
}

/// The files that failed, and why, as logged from log line `after` on.
fn failed_files(daemon: &Daemon, after: usize) -> Vec<(String, String)> {
    daemon.logs()[after..]
        .iter()
        .filter(|l| l["message"] == "prompt failed")
        .map(|l| {
            (
                l["file"].as_str().unwrap_or_default().to_owned(),
                l["error"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Commit `message` and wait for its pass; returns the pass and where its log began.
fn commit_and_wait(s: &Scenario, daemon: &Daemon, message: &str) -> (Value, usize) {
    let from = daemon.logs().len();
    let head = s.repo.commit(message);
    let pass = daemon.wait_pass(DEADLINE, "the commit's pass", |p| {
        p["revision"] == head.as_str()
    });
    (pass, from)
}

/// Both files conflict in the pass that logged from `from`, and a full pass (POST
/// /reconcile) says the same.
fn both_conflict(daemon: &Daemon, pass: &Value, from: usize) {
    assert_eq!(pass["failed"], 2, "both files fail: {pass}");
    let failed = failed_files(daemon, from);
    assert_eq!(failed.len(), 2, "{failed:#?}");
    for (file, error) in &failed {
        assert!(error.contains("conflict"), "{file}: {error}");
    }
    let before = daemon.passes().len();
    let (code, _) = daemon.post("/reconcile");
    assert_eq!(code, 202);
    let full = daemon.wait_passes(before + 1, DEADLINE);
    assert_eq!(full["kind"], "full", "{full}");
    assert_eq!(full["failed"], 2, "a full pass agrees: {full}");
}

#[test]
fn a_new_file_that_names_a_synced_files_prompt_by_id_conflicts_with_it() {
    let s = one_prompt();
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    wait_for_text(&s, "A", "first");
    let id = s.prompt_named("A")["id"].as_str().unwrap().to_owned();
    s.repo
        .write("prompts/b.prompt.yaml", &by_id(&id, None, "from b"));
    let (pass, from) = commit_and_wait(&s, &daemon, "B takes A's prompt by id");
    both_conflict(&daemon, &pass, from);
    let versions = s.versions_of("A");
    assert_eq!(versions.len(), 1, "nothing written onto A: {versions:#?}");
}

#[test]
fn a_new_file_that_renames_a_synced_files_prompt_neither_renames_nor_duplicates_it() {
    let s = one_prompt();
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    wait_for_text(&s, "A", "first");
    let id = s.prompt_named("A")["id"].as_str().unwrap().to_owned();
    s.repo
        .write("prompts/b.prompt.yaml", &by_id(&id, Some("Bar"), "from b"));
    let (pass, from) = commit_and_wait(&s, &daemon, "B takes A's prompt by id, as Bar");
    both_conflict(&daemon, &pass, from);
    let prompts = s.emu.prompts();
    assert_eq!(prompts.len(), 1, "no second prompt for A: {prompts:#?}");
    assert_eq!(prompts[0]["name"], "A", "not renamed: {prompts:#?}");
    assert_eq!(s.versions_of("A").len(), 1);
}

#[test]
fn a_new_file_whose_name_finds_the_prompt_a_synced_file_names_by_id_conflicts_with_it() {
    let s = Scenario::new();
    let id = s.emu.create_prompt("Foo");
    s.repo
        .write("prompts/a.prompt.yaml", &by_id(&id, None, "from a"));
    s.repo.commit("A names Foo by id");
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    wait_for_text(&s, "Foo", "from a");
    s.repo
        .write("prompts/b.prompt.yaml", &prompt("Foo", "from b"));
    let (pass, from) = commit_and_wait(&s, &daemon, "B names Foo by name");
    both_conflict(&daemon, &pass, from);
    let versions = s.versions_of("Foo");
    assert_eq!(versions.len(), 1, "nothing written onto Foo: {versions:#?}");
    assert_eq!(s.emu.prompts().len(), 1);
}

#[test]
fn a_changed_file_that_shares_nothing_is_still_planned_alone() {
    let s = Scenario::new();
    let id = s.emu.create_prompt("Foo");
    s.repo
        .write("prompts/a.prompt.yaml", &by_id(&id, None, "from a"));
    s.repo.write("prompts/b.prompt.yaml", &prompt("B", "one"));
    s.repo.commit("A by id, B by name");
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    wait_for_text(&s, "B", "one");
    s.repo.write("prompts/b.prompt.yaml", &prompt("B", "two"));
    let (pass, _) = commit_and_wait(&s, &daemon, "B changes");
    assert_eq!(pass["kind"], "incremental", "{pass}");
    assert_eq!(pass["carried"], 1, "A is carried: {pass}");
    assert_eq!(pass["updated"], 1, "{pass}");
    wait_for_text(&s, "B", "two");
}

#[test]
fn a_rename_while_a_release_applies_is_followed_by_the_pass_a_full_sync_makes() {
    let s = Scenario::new();
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("Foo", "released"));
    s.repo.commit("Foo");
    s.repo.tag("v1.0.0");
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    wait_for_text(&s, "Foo", "released");
    let id = s.prompt_named("Foo")["id"].as_str().unwrap().to_owned();
    // HEAD renames the released prompt: the file now names it by id, as Bar. The
    // release's file still says `name: Foo`, which now finds no prompt.
    s.repo
        .write("prompts/a.prompt.yaml", &by_id(&id, Some("Bar"), "renamed"));
    s.repo.commit("Rename Foo to Bar");
    let requeued = daemon.wait_pass(DEADLINE, "the pass after the rename", |p| {
        p["trigger"] == "requeue"
    });
    assert_eq!(requeued["outcome"], "success", "{requeued}");
    // Where one full sync gets: nothing left to do.
    s.run(&["plan", "--detailed-exitcode"], 0);
    wait_for_text(&s, "Bar", "renamed");
    assert_eq!(
        s.live_of("Foo"),
        Some(1),
        "the release by name is live again"
    );
}
