//! A pass under partial failure, end to end: a failed deploy leaves no stale snapshot
//! behind, a person's edit is never overwritten, drift is seen on prompts with nothing
//! live, one prompt's failed read stays that prompt's, what goes live is what the
//! report says even with a concurrent writer, and changes scattered among unchanged
//! prompts still run concurrently.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::emulator::RequestRecord;
use crate::support::scenario::{KEY, Scenario, json_of, prompt, row, texts};
use crate::support::{promptsync_command, wait_until};

fn id_of(s: &Scenario, name: &str) -> String {
    s.prompt_named(name)["id"].as_str().unwrap().to_owned()
}

fn greeter(s: &Scenario, text: &str) -> String {
    s.repo
        .write("greeter.prompt.yaml", &prompt("Greeter", text));
    s.repo.commit(&format!("Greeter says {text}"))
}

fn two(s: &Scenario, greeting: &str, help: &str) -> String {
    s.repo
        .write("greeter.prompt.yaml", &prompt("Greeter", greeting))
        .write("support.prompt.yaml", &prompt("Support", help));
    s.repo.commit("Two prompts")
}

fn live(s: &Scenario, name: &str) -> Value {
    let id = id_of(s, name);
    s.emu.get(&format!("/api/prompts/{id}/"))["live_version"].clone()
}

// --- 1. a failed deploy leaves no stale snapshot --------------------------------------

#[test]
fn a_prompt_made_by_a_deploy_whose_version_failed_is_not_made_twice() {
    let s = Scenario::new();
    greeter(&s, "Hello.");
    s.repo.tag("v1.0.0");
    s.emu
        .inject(json!({"method": "POST", "path": "/api/prompts/*/versions/",
        "kind": "status", "status": 400}));
    let report = s.sync_json(&[], 1);
    let greeter = row(&report, "greeter.prompt.yaml");
    assert_eq!(greeter["deploy"]["action"], "failed", "{greeter:#}");
    assert_eq!(greeter["deploy"]["created_prompt"], true, "{greeter:#}");
    let id = id_of(&s, "Greeter");
    assert_eq!(greeter["prompt_id"], id.as_str(), "the report names it");
    assert_eq!(
        s.versions_of("Greeter").len(),
        1,
        "the sync half wrote it once"
    );

    let report = s.sync_json(&[], 0);
    assert_eq!(report["summary"]["deployed"], 1);
    assert_eq!(s.emu.prompts().len(), 1, "still one prompt");
    assert_eq!(s.versions_of("Greeter").len(), 1, "and one version");
    assert_eq!(live(&s, "Greeter")["version"], 1);
}

#[test]
fn a_release_version_whose_commit_failed_is_not_made_twice() {
    let s = Scenario::new();
    greeter(&s, "Hello.");
    s.sync();
    greeter(&s, "Hi there.");
    s.repo.tag("v1.0.0");
    s.emu.inject(json!([
        {"method": "POST", "path": "/api/prompts/bulk/", "kind": "status", "status": 400},
        {"method": "POST", "path": "/api/prompts/*/commits/", "kind": "status", "status": 400}
    ]));
    let report = s.sync_json(&[], 1);
    assert_eq!(
        s.versions_of("Greeter").len(),
        2,
        "the release version is HEAD's: the sync half found it"
    );
    let deploy = &row(&report, "greeter.prompt.yaml")["deploy"];
    assert_eq!(deploy["action"], "failed", "{deploy:#}");
    assert_eq!(deploy["created_version"], true, "{deploy:#}");
    assert_eq!(deploy["version"], 2, "{deploy:#}");
    let (text, _) = texts(&s.run(&["sync", "--dry-run"], 0));
    assert!(text.contains("deploy greeter.prompt.yaml"), "{text}");

    s.sync();
    assert_eq!(s.versions_of("Greeter").len(), 2, "no duplicate afterwards");
    assert_eq!(live(&s, "Greeter")["version"], 2);
}

// --- 2. a person's edit of the server's draft copy is never overwritten ---------------

/// Tag v1.0.0 deployed under `commit_mode = bump` (so v2 is the server's copy of v1),
/// the copy edited by a person, then a new commit of the file.
fn edited_copy() -> (Scenario, String) {
    let s = Scenario::new();
    s.emu.set_knobs(json!({"commit_mode": "bump"}));
    greeter(&s, "Hello.");
    s.repo.tag("v1.0.0");
    s.sync();
    let id = id_of(&s, "Greeter");
    assert_eq!(s.versions_of("Greeter").len(), 2, "v2 is the server's copy");
    let (status, _) = s.emu.patch(
        &format!("/api/prompts/{id}/versions/2/"),
        json!({"temperature": 0.1}),
    );
    assert_eq!(status, 200);
    greeter(&s, "Hi there.");
    (s, id)
}

fn temperature_of_v2(s: &Scenario, id: &str) -> Value {
    s.emu.get(&format!("/api/prompts/{id}/versions/2/"))["temperature"].clone()
}

/// `sync` with `drift = "report"`: Greeter's drift is reported and nothing is sent.
fn sync_reporting_greeter_s_drift(s: &Scenario) {
    s.emu.clear_requests();
    let output = s
        .cmd(&["sync", "--output", "json"])
        .env("PROMPTSYNC_SYNC__DRIFT", "report")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", texts(&output).1);
    let report = json_of(&output);
    let greeter = row(&report, "greeter.prompt.yaml");
    assert_eq!(greeter["action"], "skipped", "{greeter:#}");
    assert_eq!(greeter["drift"], true, "{greeter:#}");
    assert_eq!(s.emu.change_requests(), vec![], "nothing was sent");
}

#[test]
fn an_edited_server_copy_is_kept_and_reported_as_drift() {
    let (s, id) = edited_copy();
    sync_reporting_greeter_s_drift(&s);
    assert_eq!(
        temperature_of_v2(&s, &id),
        json!(0.1),
        "the edit is still there"
    );
}

#[test]
fn an_edited_server_copy_gets_a_new_version_above_it_when_drift_is_corrected() {
    let (s, id) = edited_copy();
    let report = s.sync_json(&[], 0);
    let greeter = row(&report, "greeter.prompt.yaml");
    assert_eq!(greeter["action"], "update", "{greeter:#}");
    assert_eq!(greeter["drift"], true, "{greeter:#}");
    assert_eq!(greeter["version_after"], 3, "{greeter:#}");
    assert_eq!(temperature_of_v2(&s, &id), json!(0.1), "v2 is history now");
    let newest = &s.versions_of("Greeter")[0];
    assert_eq!(newest["messages"][0]["content"], "Hi there.");
}

// --- 3. drift on prompts with no live version -------------------------------------

#[test]
fn a_version_made_in_the_ui_of_an_undeployed_prompt_is_drift() {
    let s = Scenario::new();
    two(&s, "Hello.", "Help customers.");
    s.sync();
    let id = id_of(&s, "Greeter");
    s.emu.create_version(
        &id,
        json!({"model": "gpt-4o", "description": "tweaked in the UI",
            "messages": [{"role": "system", "content": "Hello!!"}]}),
    );
    sync_reporting_greeter_s_drift(&s);
    let reads: Vec<String> = s
        .emu
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        reads,
        vec![format!("/api/prompts/{id}/versions/?page=1&page_size=100")],
        "the history of that prompt only"
    );

    let output = s.run(&["sync", "--output", "json"], 0);
    let report = json_of(&output);
    assert_eq!(row(&report, "greeter.prompt.yaml")["drift"], true);
    assert!(
        texts(&output).1.contains("corrected drift"),
        "{}",
        texts(&output).1
    );
    assert_eq!(s.versions_of("Greeter").len(), 3);
}

// --- 4. one prompt's failure stays that prompt's ----------------------------------

#[test]
fn a_version_list_that_fails_fails_that_prompt_s_deploy_only() {
    let s = Scenario::new();
    two(&s, "Hello.", "Help customers.");
    s.sync();
    two(&s, "Hi there.", "Help everyone.");
    s.repo.tag("v1.0.0");
    let id = id_of(&s, "Greeter");
    s.emu.inject(
        json!({"method": "GET", "path": format!("/api/prompts/{id}/versions/"),
        "kind": "status", "status": 400}),
    );
    let report = s.sync_json(&[], 1);
    assert!(report["error"].is_null(), "{report:#}");
    let deploy = &row(&report, "greeter.prompt.yaml")["deploy"];
    assert_eq!(deploy["action"], "failed", "{deploy:#}");
    assert!(
        deploy["error"]
            .as_str()
            .unwrap()
            .contains("cannot search the versions"),
        "{deploy:#}"
    );
    assert_eq!(
        row(&report, "support.prompt.yaml")["deploy"]["action"],
        "deploy"
    );
    assert_eq!(
        live(&s, "Support")["messages"][0]["content"],
        "Help everyone."
    );
}

/// The prompt the list endpoint returns first (newest first, as our client asks).
fn listed_first(s: &Scenario) -> String {
    s.emu.prompts()[0]["name"].as_str().unwrap().to_owned()
}

fn other_than(name: &str) -> &'static str {
    if name == "Greeter" {
        "Support"
    } else {
        "Greeter"
    }
}

fn file_of(name: &str) -> String {
    format!("{}.prompt.yaml", name.to_lowercase())
}

/// Greeter and Support synced, then both changed, `faults` armed and a sync run: the
/// prompt the list returns first fails with `why` and nothing is sent for it, the
/// other is updated, the pass goes on. Returns the failed prompt's name.
fn only_the_first_listed_fails(s: &Scenario, faults: Value, why: &str) -> String {
    two(s, "Hello.", "Help customers.");
    s.sync();
    two(s, "Hi there.", "Help everyone.");
    let first = listed_first(s);
    s.emu.inject(faults);
    let report = s.sync_json(&[], 1);
    assert!(report["error"].is_null(), "{report:#}");
    let failed = row(&report, &file_of(&first));
    assert_eq!(failed["action"], "failed", "{failed:#}");
    assert!(
        failed["error"].as_str().unwrap().contains(why),
        "{failed:#}"
    );
    assert_eq!(
        row(&report, &file_of(other_than(&first)))["action"],
        "update"
    );
    assert_eq!(s.versions_of(&first).len(), 1, "nothing sent for it");
    first
}

#[test]
fn a_version_that_cannot_be_read_in_full_fails_its_prompt_only() {
    // The list sends the first prompt's current version as a summary, and fetching
    // it in full fails.
    let faults = json!([
        {"method": "POST", "path": "/api/prompts/list/", "kind": "rewrite",
            "pointer": "/results/0/current_version/messages"},
        {"method": "GET", "path": "/api/prompts/*/versions/*/", "kind": "status", "status": 400}
    ]);
    only_the_first_listed_fails(&Scenario::new(), faults, "reading v1 in full");
}

#[test]
fn a_malformed_prompt_in_a_list_page_fails_that_prompt_only() {
    let s = Scenario::new();
    let faults = json!({"method": "POST", "path": "/api/prompts/list/", "kind": "rewrite",
        "pointer": "/results/0/current_version/version", "value": "three"});
    let first = only_the_first_listed_fails(&s, faults, "could not be read");
    assert_eq!(s.emu.prompts().len(), 2, "no second prompt of that name");
    assert_eq!(s.versions_of(other_than(&first)).len(), 2);
}

#[test]
fn a_prompt_that_cannot_be_read_again_after_the_deploy_fails_its_sync_only() {
    let s = Scenario::new();
    two(&s, "Hello.", "Help customers.");
    s.repo.tag("v1.0.0");
    // The first prompt read after the deploy fails.
    s.emu.inject(
        json!({"method": "GET", "path": "/api/prompts/*/", "kind": "status",
        "status": 400}),
    );
    let report = s.sync_json(&[], 1);
    assert!(report["error"].is_null(), "{report:#}");
    assert_eq!(report["summary"]["deployed"], 2, "{report:#}");
    let rows = report["prompts"].as_array().unwrap();
    let failed: Vec<&Value> = rows.iter().filter(|r| r["action"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("reading it again after the deploy"),
        "{report:#}"
    );
    assert_eq!(s.emu.prompts().len(), 2);
    assert_eq!(s.versions_of("Greeter").len(), 1);
    assert_eq!(s.versions_of("Support").len(), 1);
}

// --- 5. deploy what the report says -------------------------------------------------

/// Greeter synced and committed by hand, HEAD tagged: the deploy is one bulk deploy of
/// v1, held back by a delay while a person commits a newer version. Returns the
/// finished run's output.
fn deploy_racing_a_writer(extra_faults: Value) -> (Scenario, std::process::Output) {
    let s = Scenario::new();
    greeter(&s, "Hello.");
    s.sync();
    let id = id_of(&s, "Greeter");
    let (status, _) = s
        .emu
        .post(&format!("/api/prompts/{id}/commits/"), json!({}));
    assert_eq!(status, 201);
    s.repo.tag("v1.0.0");
    s.emu.inject(
        json!({"method": "POST", "path": "/api/prompts/bulk/", "kind": "delay",
        "delay_ms": 3000}),
    );
    if !extra_faults.is_null() {
        s.emu.inject(extra_faults);
    }
    let child = promptsync_command()
        .current_dir(s.repo.path())
        .env("RESPAN_BASE_URL", s.emu.base_url())
        .env("RESPAN_API_KEY", KEY)
        .args(["sync", "--output", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The delay rule is used up once the bulk request has arrived and waits.
    wait_until(
        Duration::from_secs(30),
        "the bulk request to arrive",
        || {
            let pending = s.emu.faults();
            let delayed = pending
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["rule"]["kind"] == "delay");
            (!delayed).then_some(())
        },
    );
    s.emu.create_version(
        &id,
        json!({"model": "gpt-4o", "description": "by hand",
            "messages": [{"role": "system", "content": "Someone else's."}]}),
    );
    let (status, _) = s
        .emu
        .post(&format!("/api/prompts/{id}/commits/"), json!({}));
    assert_eq!(status, 201);
    let output = child.wait_with_output().unwrap();
    (s, output)
}

#[test]
fn a_bulk_deploy_that_made_another_version_live_is_put_right() {
    let (s, output) = deploy_racing_a_writer(Value::Null);
    let (_, log) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert_eq!(
        live(&s, "Greeter")["version"],
        1,
        "the tag's version is live"
    );
    assert!(log.contains("another version is live"), "{log}");
    let report = json_of(&output);
    let deploy = &row(&report, "greeter.prompt.yaml")["deploy"];
    assert_eq!(deploy["action"], "deploy", "{deploy:#}");
    assert_eq!(deploy["live_after"], 1, "{deploy:#}");
}

#[test]
fn a_bulk_deploy_that_made_another_version_live_is_reported_when_it_cannot_be_put_right() {
    let (s, output) = deploy_racing_a_writer(json!({"method": "POST",
        "path": "/api/prompts/*/deployments/", "kind": "status", "status": 400}));
    assert_eq!(output.status.code(), Some(1), "{}", texts(&output).1);
    assert_eq!(live(&s, "Greeter")["version"], 2);
    let report = json_of(&output);
    let deploy = &row(&report, "greeter.prompt.yaml")["deploy"];
    assert_eq!(deploy["action"], "failed", "{deploy:#}");
    assert_eq!(
        deploy["live_after"], 2,
        "the report says what is live: {deploy:#}"
    );
    assert_eq!(deploy["version"], 1, "{deploy:#}");
}

// --- 7. concurrency that holds when changes are spread out -------------------------

/// The most requests of `records` that were in the server at one time.
fn most_at_once(records: &[RequestRecord]) -> usize {
    let parse = |at: &str| {
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp_nanos()
    };
    let mut events: Vec<(i128, i32)> = Vec::new();
    for r in records {
        let start = parse(&r.at);
        let end = start + i128::from(r.duration_ms) * 1_000_000;
        events.push((start, 1));
        events.push((end, -1));
    }
    events.sort();
    let (mut now, mut most) = (0, 0);
    for (_, step) in events {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap()
}

#[test]
fn changes_scattered_among_unchanged_prompts_still_run_concurrently() {
    let s = Scenario::new();
    let write = |revision: &str, i: usize| {
        s.repo.write(
            &format!("prompts/p{i:03}.prompt.yaml"),
            &prompt(&format!("Prompt {i:03}"), &format!("Text {i} {revision}")),
        );
    };
    for i in 0..120 {
        write("first", i);
    }
    s.repo.commit("Many prompts");
    s.sync();
    for i in (0..120).step_by(10) {
        write("second", i);
    }
    s.repo.commit("A tenth changed");
    s.emu
        .set_knobs(json!({"latency": {"fixed_ms": 60, "jitter_ms": 0}}));
    s.emu.clear_requests();
    s.sync();
    let creates: Vec<RequestRecord> = s
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/versions/"))
        .collect();
    assert_eq!(creates.len(), 12);
    let most = most_at_once(&creates);
    assert!(
        most >= 4,
        "at most {most} of 12 scattered changes ran at once"
    );
}
