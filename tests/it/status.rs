//! `promptsync status`, end to end: what is where for every prompt file (newest and
//! live versions and the commits they came from, drift, the release tag, `sync:
//! false`), the unmanaged prompts, the exit codes, one prompt's history; and the
//! unmanaged prompts in the plan and sync reports.

use serde_json::{Value, json};

use crate::support::scenario::{Scenario, json_of, prompt, row, texts};

/// A: in sync and live as the release wants. B: its file changed since. C: edited in
/// the UI. D: not created yet. E: `sync: false`. U: a remote prompt no file names.
fn landscape() -> (Scenario, String, String) {
    let s = Scenario::new();
    s.repo
        .write("a.prompt.yaml", &prompt("A", "a"))
        .write("b.prompt.yaml", &prompt("B", "b"))
        .write("c.prompt.yaml", &prompt("C", "c"));
    let first = s.repo.commit("First prompts");
    s.repo.tag("v1.0.0");
    s.sync();
    s.repo
        .write("b.prompt.yaml", &prompt("B", "b, revised"))
        .write("d.prompt.yaml", &prompt("D", "d"))
        .write(
            "e.prompt.yaml",
            &format!("sync: false\n{}", prompt("E", "e")),
        );
    s.repo.commit("Revise B, add D and E");
    let c = s.prompt_named("C")["id"].as_str().unwrap().to_owned();
    s.emu.create_version(
        &c,
        json!({"model": "gpt-4o", "messages": [{"role": "system", "content": "edited in the UI"}]}),
    );
    let u = s.emu.create_prompt("Unmanaged one");
    s.emu.create_version(
        &u,
        json!({"model": "m", "messages": [{"role": "user", "content": "u"}]}),
    );
    s.emu.post(&format!("/api/prompts/{u}/commits/"), json!({}));
    s.emu.post(
        &format!("/api/prompts/{u}/deployments/"),
        json!({"version": 1}),
    );
    (s, first, u)
}

#[test]
fn status_shows_what_is_where_and_sends_nothing() {
    let (s, first, u) = landscape();
    s.emu.clear_requests();
    let report = json_of(&s.run(&["status", "--output", "json"], 0));
    assert_eq!(s.emu.change_requests(), vec![], "status sends no change");

    let a = row(&report, "a.prompt.yaml");
    assert_eq!(a["in_sync"], true, "{a:#}");
    assert_eq!(a["newest"]["origin"]["commit"], first.as_str());
    assert_eq!(a["newest"]["origin"]["subject"], "First prompts");
    assert_eq!(a["live"]["version"], 1);
    assert_eq!(a["release_tag"], "v1.0.0");
    assert_eq!(a["live_in_sync"], true);

    let b = row(&report, "b.prompt.yaml");
    assert_eq!(b["in_sync"], false, "{b:#}");
    assert_eq!(b["changes"], json!(["messages"]));
    assert_eq!(b["live_in_sync"], true, "live is still what v1.0.0 wants");

    let c = row(&report, "c.prompt.yaml");
    assert_eq!(c["drift"], true, "{c:#}");
    assert_eq!(c["newest"]["version"], 2);
    assert_eq!(
        c["newest"]["origin"]["commit"],
        Value::Null,
        "edited in the UI"
    );

    let d = row(&report, "d.prompt.yaml");
    assert_eq!(d["prompt_id"], Value::Null);
    assert_eq!(d["in_sync"], false);
    assert_eq!(d["release_tag"], Value::Null, "not in the release");

    let e = row(&report, "e.prompt.yaml");
    assert_eq!(e["sync_disabled"], true, "{e:#}");

    assert_eq!(
        report["unmanaged"],
        json!([{"prompt_id": u, "name": "Unmanaged one", "live_version": 1, "newest_version": 1}])
    );
    assert_eq!(report["summary"]["unmanaged"], 1);
    assert_eq!(report["summary"]["in_sync"], 1, "{:#}", report["summary"]);

    let (out, _) = texts(&s.run(&["status", "--detailed-exitcode"], 2));
    assert!(out.contains("in sync     a.prompt.yaml  \"A\""), "{out}");
    assert!(out.contains("out of sync b.prompt.yaml"), "{out}");
    assert!(out.contains("differs from HEAD: messages"), "{out}");
    assert!(out.contains("edited in the UI"), "{out}");
    assert!(out.contains("[drift: changed outside promptsync]"), "{out}");
    assert!(out.contains("as release v1.0.0 wants"), "{out}");
    assert!(out.contains("sync: false"), "{out}");
    assert!(out.contains("\"Unmanaged one\""), "{out}");
    assert!(
        out.contains(&format!("from {} \"First prompts\"", &first[..10])),
        "{out}"
    );
}

#[test]
fn status_of_one_prompt_is_its_history_read_like_git_log() {
    let (s, first, _) = landscape();
    s.sync();
    let report = json_of(&s.run(&["status", "--prompt", "B", "--output", "json"], 0));
    let versions = report["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{report:#}");
    assert_eq!(versions[0]["version"], 2, "newest first");
    assert_eq!(versions[0]["origin"]["subject"], "Revise B, add D and E");
    assert_eq!(versions[0]["committed"], false, "the draft");
    assert_eq!(versions[1]["origin"]["commit"], first.as_str());
    assert_eq!(versions[1]["tags"], json!(["v1.0.0"]));
    assert_eq!(versions[1]["live"], true);
    let (out, _) = texts(&s.run(&["status", "--prompt", "B"], 0));
    assert!(out.contains("(live) from"), "{out}");
    assert!(out.contains("[v1.0.0]"), "{out}");
    assert!(out.contains("(draft) from"), "{out}");
    let (_, err) = texts(&s.run(&["status", "--prompt", "Nobody"], 1));
    assert!(
        err.contains("no remote prompt has the id or the name \"Nobody\""),
        "{err}"
    );
}

#[test]
fn plan_and_sync_reports_count_the_unmanaged_prompts_unless_told_not_to() {
    let (s, _, u) = landscape();
    let plan = json_of(&s.run(&["plan", "--output", "json"], 0));
    assert_eq!(plan["summary"]["unmanaged"], 1);
    assert_eq!(plan["unmanaged"][0]["prompt_id"], u.as_str());
    let (out, _) = texts(&s.run(&["plan"], 0));
    assert!(
        out.contains("1 remote prompt(s) that no file names (unmanaged)"),
        "{out}"
    );
    assert!(
        out.contains("`promptsync pull --all` writes files for them"),
        "{out}"
    );

    // In sync first: a sync that writes reads what it writes on again (one more
    // list), which is not the account listing this counts.
    s.sync();
    s.emu.clear_requests();
    let output = s
        .cmd(&["sync", "--output", "json"])
        .env("PROMPTSYNC_SYNC__REPORT_UNMANAGED", "false")
        .output()
        .unwrap();
    let report = json_of(&output);
    assert_eq!(report["unmanaged"], Value::Null);
    let unfiltered = s
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/prompts/list/"))
        .count();
    assert_eq!(
        unfiltered, 1,
        "only the filtered list (by name), no account listing"
    );
}

#[test]
fn the_daemon_s_status_and_metrics_count_the_unmanaged_prompts() {
    let (s, _, _) = landscape();
    let deadline = std::time::Duration::from_secs(60);
    let mut daemon = s.watch(&[]);
    daemon.wait_ready(deadline);
    let status = daemon.status();
    assert_eq!(status["unmanaged"], 1, "{status:#}");
    let (_, metrics) = daemon.get("/metrics");
    assert!(
        metrics.contains("promptsync_prompts{state=\"unmanaged\"} 1"),
        "{metrics}"
    );

    // A pass after a commit does not list the account: the count of the last full
    // pass stays.
    s.repo.write("f.prompt.yaml", &prompt("F", "f"));
    let head = s.repo.commit("Add F");
    crate::support::wait_until(deadline, "the pass of the commit", || {
        daemon
            .passes()
            .into_iter()
            .find(|p| p["revision"] == head.as_str())
    });
    assert_eq!(daemon.status()["unmanaged"], 1);

    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(deadline).code(), Some(0));
}
