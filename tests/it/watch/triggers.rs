//! What starts a pass: a commit, a tag, an edit saved by rename (`--worktree`), SIGHUP,
//! `POST /reconcile`, the resync timer; and what the probes show meanwhile.

use serde_json::json;

use super::{DEADLINE, one_prompt, text_of, wait_for_text, wait_reconciling};
use crate::support::daemon::Daemon;
use crate::support::scenario::{KEY, prompt};
use crate::support::wait_until;

#[test]
fn a_commit_makes_a_version_and_a_new_tag_deploys_it() {
    let s = one_prompt();
    let mut daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    wait_for_text(&s, "A", "first");

    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    let head = s.repo.commit("Second A");
    wait_for_text(&s, "A", "second");
    let pass = wait_until(DEADLINE, "the pass of the commit", || {
        daemon
            .passes()
            .into_iter()
            .find(|p| p["revision"] == head.as_str())
    });
    assert_eq!(pass["trigger"], "refs", "{pass}");
    assert_eq!(pass["outcome"], "success", "{pass}");

    s.repo.tag("v1.0.0");
    wait_until(DEADLINE, "the tag's version to go live", || {
        (s.live_of("A") == Some(2)).then_some(())
    });
    wait_until(DEADLINE, "the deploy to be counted", || {
        daemon
            .get("/metrics")
            .1
            .contains("promptsync_deploys_total 1")
            .then_some(())
    });
    let status = daemon.status();
    assert_eq!(status["last_applied_revision"], head.as_str(), "{status:#}");
    assert_eq!(status["synced_once"], true);
    assert_eq!(status["watcher"], "events");
    let (code, metrics) = daemon.get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("promptsync_reconcile_total{trigger=\"refs\",result=\"success\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("promptsync_deploys_total 1"), "{metrics}");
    assert!(
        metrics.contains("promptsync_api_requests_total{method=\"POST\",code=\"201\"}"),
        "{metrics}"
    );
    for text in [daemon.log_text(), status.to_string(), metrics] {
        assert!(!text.contains(KEY), "the key leaked");
    }

    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(DEADLINE).code(), Some(0));
}

#[test]
fn an_edit_saved_by_rename_syncs_in_worktree_mode() {
    let s = one_prompt();
    let daemon = s.watch(&["--worktree"]);
    daemon.wait_ready(DEADLINE);
    wait_for_text(&s, "A", "first");
    // An editor writes a scratch file and renames it over the original.
    s.repo
        .write("prompts/.a.prompt.yaml.swp", &prompt("A", "edited"));
    std::fs::rename(
        s.repo.path().join("prompts/.a.prompt.yaml.swp"),
        s.repo.path().join("prompts/a.prompt.yaml"),
    )
    .unwrap();
    wait_for_text(&s, "A", "edited");
    let last = daemon.wait_pass(DEADLINE, "the pass of the edit", |p| {
        p["trigger"] == "files" && p["updated"] == 1
    });
    assert!(
        last["revision"].as_str().unwrap().starts_with("worktree@"),
        "{last}"
    );
}

#[test]
fn a_file_in_a_new_directory_in_worktree_mode_is_watched_at_once() {
    let s = one_prompt();
    let daemon = s.watch(&["--worktree"]);
    daemon.wait_ready(DEADLINE);
    s.repo.write("team/b/b.prompt.yaml", &prompt("B", "bee"));
    wait_for_text(&s, "B", "bee");
    let passes = daemon.passes().len();
    s.repo
        .write("team/b/b.prompt.yaml", &prompt("B", "bee two"));
    wait_for_text(&s, "B", "bee two");
    daemon.wait_passes(passes + 1, DEADLINE);
}

#[test]
fn a_commit_during_the_first_pass_makes_the_next_pass() {
    let s = one_prompt();
    // Each request takes 1 s, so the commit below lands while the first pass runs.
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 1000}}));
    let daemon = s.watch(&[]);
    wait_reconciling(&daemon);
    s.repo.write(
        "prompts/a.prompt.yaml",
        &prompt("A", "during the first pass"),
    );
    s.repo.commit("Change A");
    let head = s.repo.head();
    // Well inside the 5-minute resync: the commit's own event makes the pass.
    wait_until(DEADLINE, "a pass of the new commit", || {
        daemon
            .passes()
            .into_iter()
            .find(|p| p["revision"] == head.as_str())
    });
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 0}}));
    wait_for_text(&s, "A", "during the first pass");
}

#[test]
fn sighup_and_post_reconcile_run_a_pass_now() {
    let s = one_prompt();
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    let before = daemon.passes().len();
    let (code, body) = daemon.post("/reconcile");
    assert_eq!(code, 202, "{body}");
    let pass = daemon.wait_passes(before + 1, DEADLINE);
    assert_eq!(pass["trigger"], "http", "{pass}");
    daemon.signal("HUP");
    let pass = daemon.wait_passes(before + 2, DEADLINE);
    assert_eq!(pass["trigger"], "sighup", "{pass}");
    assert_eq!(daemon.get("/nothing-here").0, 404);
}

#[test]
fn the_resync_timer_runs_passes_when_nothing_happens() {
    let s = one_prompt();
    let daemon = s.watch_with(&[], &[("PROMPTSYNC_WATCH__RESYNC_INTERVAL", "1s")]);
    daemon.wait_ready(DEADLINE);
    let pass = daemon.wait_passes(3, DEADLINE);
    assert_eq!(pass["trigger"], "resync", "{pass}");
    assert_eq!(s.versions_of("A").len(), 1, "no change, no version");
}

#[test]
fn polling_when_asked_still_notices_a_commit() {
    let s = one_prompt();
    let daemon = s.watch_with(
        &[],
        &[
            ("PROMPTSYNC_WATCH__POLL", "true"),
            ("PROMPTSYNC_WATCH__POLL_INTERVAL", "200ms"),
        ],
    );
    daemon.wait_ready(DEADLINE);
    assert_eq!(daemon.status()["watcher"], "polling");
    assert_eq!(daemon.status()["watcher_reason"], "watch.poll is set");
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "polled"));
    s.repo.commit("Polled A");
    wait_for_text(&s, "A", "polled");
    daemon.wait_pass(DEADLINE, "the pass of the polled commit", |p| {
        p["trigger"] == "refs" && p["updated"] == 1
    });
}

#[test]
fn a_tiny_inotify_watch_limit_falls_back_to_polling() {
    let s = one_prompt();
    let mut inner = s.watch_command(&["--listen", "127.0.0.1:0"]);
    inner.env("PROMPTSYNC_WATCH__POLL_INTERVAL", "200ms");
    let Some(command) = super::with_inotify_limit(&inner, "max_inotify_watches", 1) else {
        return;
    };
    let daemon = Daemon::attach(command);
    daemon.wait_ready(DEADLINE);
    wait_until(DEADLINE, "the fallback to polling", || {
        (daemon.status()["watcher"] == "polling").then_some(())
    });
    let reason = daemon.status()["watcher_reason"].clone();
    assert!(
        reason.as_str().unwrap().contains("inotify watches"),
        "/status says why: {reason}"
    );
    assert!(
        daemon.log_text().contains("max_user_watches"),
        "the log says how to raise the limit:\n{}",
        daemon.log_text()
    );
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "limited"));
    s.repo.commit("A under a tiny limit");
    wait_for_text(&s, "A", "limited");
}

#[test]
fn once_is_one_pass_with_its_exit_status() {
    let s = one_prompt();
    let output = s
        .watch_command(&["--once"])
        .output()
        .expect("promptsync watch --once runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(text_of(&s.newest_of("A")), "first");
    s.repo.write(
        "prompts/broken.prompt.yaml",
        "name: B\nmodel: m\nmessages: []\n",
    );
    s.repo.commit("Broken");
    let output = s.watch_command(&["--once"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("invalid prompt file"), "{err}");
    assert!(err.contains("broken.prompt.yaml"), "{err}");
}

/// A repository with prompt `A` and `watch --emulator` running in it, ready.
fn emulator_daemon() -> (crate::support::git::TestRepo, Daemon) {
    let repo = crate::support::git::TestRepo::new();
    repo.write("prompts/a.prompt.yaml", &prompt("A", "demo"));
    repo.commit("Demo");
    let mut command = crate::support::promptsync_command();
    command
        .current_dir(repo.path())
        .args(["watch", "--emulator"]);
    let daemon = Daemon::spawn(command);
    daemon.wait_ready(DEADLINE);
    (repo, daemon)
}

#[test]
fn the_emulator_flag_is_the_zero_setup_demo() {
    let (repo, mut daemon) = emulator_daemon();
    let status = daemon.status();
    assert_eq!(status["passes"][0]["counts"]["created"], 1, "{status:#}");
    daemon.signal("INT");
    assert_eq!(daemon.wait_exit(DEADLINE).code(), Some(0));
    assert!(repo.path().join(".git/promptsync/emulator.json").exists());
}

#[test]
fn a_second_emulator_command_in_one_repository_waits_for_the_first() {
    let (repo, mut daemon) = emulator_daemon();
    // `sync --emulator` needs the same state file: it waits for the lock.
    let mut sync = crate::support::promptsync_command()
        .current_dir(repo.path())
        .args(["sync", "--emulator", "--output", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = sync.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = std::thread::spawn({
        let log = std::sync::Arc::clone(&log);
        move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stderr, &mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    wait_until(DEADLINE, "sync to wait for the state file", || {
        let text = log.lock().unwrap().clone();
        text.contains("in use by another emulator").then_some(())
    });
    assert!(
        log.lock()
            .unwrap()
            .contains(&format!("pid {}", daemon.pid())),
        "it says who holds the state: {}",
        log.lock().unwrap()
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(DEADLINE).code(), Some(0));
    let status = wait_until(DEADLINE, "sync to finish", || sync.try_wait().unwrap());
    reader.join().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut sync.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(status.code(), Some(0), "{out}\n{}", log.lock().unwrap());
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["summary"]["unchanged"], 1,
        "the daemon's state: {report:#}"
    );
}

#[test]
fn a_commit_that_changes_one_prompt_of_many_costs_one_list_and_one_create() {
    let s = crate::support::scenario::Scenario::new();
    for i in 0..150 {
        s.repo.write(
            &format!("p/{i:03}.prompt.yaml"),
            &prompt(&format!("P{i}"), "one"),
        );
    }
    s.repo.commit("150 prompts");
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    let before = daemon.passes().len();
    s.emu.clear_requests();
    s.repo.write("p/077.prompt.yaml", &prompt("P77", "two"));
    let head = s.repo.commit("Change one prompt");
    let pass = daemon.wait_pass(DEADLINE, "the commit's pass", |p| {
        p["revision"] == head.as_str()
    });
    assert_eq!(pass["updated"], 1, "{pass}");
    assert_eq!(pass["unchanged"], 149, "{pass}");
    let requests = s.emu.requests();
    assert!(
        requests.len() <= 3,
        "an incremental pass: one list, one create: {requests:#?}"
    );
    assert_eq!(daemon.passes().len(), before + 1);
    // The resync still looks at everything.
    let (code, _) = daemon.post("/reconcile");
    assert_eq!(code, 202);
    let full = daemon.wait_passes(before + 2, DEADLINE);
    assert_eq!(full["unchanged"], 150, "{full}");
}
