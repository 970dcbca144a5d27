//! The daemon tells people (issue 21, wired into `watch`): commit statuses pending
//! then final on each commit a pass syncs, the deploy status on a release's commit,
//! events of a long-lived notifier (a failure paged once, a flapping repository not
//! paged twice within `notify.min_interval`), the deploy gate before a release goes
//! live, and endpoints that fail or hang leaving passes as they were while `/status`
//! and `/metrics` show the deliveries. The hosts are the suite's recorder on loopback.

use serde_json::Value;
use std::path::PathBuf;

use super::{DEADLINE, one_prompt};
use crate::support::daemon::Daemon;
use crate::support::recorder::{Behaviour, Recorder, TOKEN};
use crate::support::scenario::{Scenario, prompt};
use crate::support::wait_until;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The operator's configuration (`{token}`, `{secret}` and `{ops}` filled in) and
/// secrets, outside the repository.
struct Ops {
    dir: tempfile::TempDir,
}

impl Ops {
    fn new() -> Ops {
        let ops = Ops {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(ops.path("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(ops.path("secret"), SECRET).unwrap();
        ops
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, toml: &str) -> String {
        let text = toml
            .replace("{token}", &self.path("token").display().to_string())
            .replace("{secret}", &self.path("secret").display().to_string())
            .replace("{ops}", &self.dir.path().display().to_string());
        std::fs::write(self.path("promptsync.toml"), text).unwrap();
        self.path("promptsync.toml").display().to_string()
    }
}

fn watch(s: &Scenario, config: &str) -> Daemon {
    Daemon::spawn(s.watch_command(&["--config", config]))
}

/// The statuses posted so far on GitHub for `sha`, as (context, state).
fn statuses_on(rec: &Recorder, sha: &str) -> Vec<(String, String)> {
    rec.requests_to(&format!("/repos/acme/prompts/statuses/{sha}"))
        .iter()
        .map(|r| {
            let json = r.json();
            (
                json["context"].as_str().unwrap_or_default().to_owned(),
                json["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn wait_status(rec: &Recorder, sha: &str, context: &str, state: &str) {
    wait_until(
        DEADLINE,
        &format!("status {context} {state} on {sha}"),
        || {
            statuses_on(rec, sha)
                .iter()
                .any(|(c, s)| c == context && s == state)
                .then_some(())
        },
    );
}

/// The webhook messages received so far, by their `type`.
fn hook_types(rec: &Recorder) -> Vec<String> {
    rec.requests_to("/hooks/ops")
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_daemon_posts_statuses_per_commit_and_pages_a_failure_once() {
    let s = one_prompt();
    let rec = Recorder::start();
    rec.verify_with(SECRET);
    let ops = Ops::new();
    let config = ops.config(&format!(
        r#"
[notify]
min_interval = "1h"

[notify.github]
repository = "acme/prompts"
api_url = "{rec}"
token_file = "{{token}}"

[[notify.webhook]]
url = "{rec}/hooks/ops"
secret_file = "{{secret}}"
events = ["pass.failed", "recovered", "deploy.succeeded"]
"#,
        rec = rec.url()
    ));
    let daemon = watch(&s, &config);
    daemon.wait_ready(DEADLINE);
    let first = s.repo.head();
    wait_status(&rec, &first, "promptsync/default", "success");
    assert_eq!(
        statuses_on(&rec, &first),
        [
            ("promptsync/default".to_owned(), "pending".to_owned()),
            ("promptsync/default".to_owned(), "success".to_owned())
        ],
        "pending while the pass runs, then its outcome"
    );

    // A bad commit: a failure on its commit, paged once.
    s.repo.write("prompts/b.prompt.yaml", "name: [unclosed\n");
    let bad = s.repo.commit("Break B");
    wait_status(&rec, &bad, "promptsync/default", "failure");
    wait_until(DEADLINE, "the page of the failure", || {
        (hook_types(&rec) == ["pass.failed"]).then_some(())
    });
    let page = &rec.requests_to("/hooks/ops")[0];
    assert_eq!(page.verified, Some(true), "signed");
    assert_eq!(page.json()["data"]["revision"]["before"], first.as_str());
    assert_eq!(page.json()["data"]["revision"]["after"], bad.as_str());

    // It flaps: fixed, broken again, fixed. Within `min_interval` nothing more of
    // the failure's family is sent: held, to be coalesced.
    for (n, text) in [
        (1, prompt("B", "fixed")),
        (2, "name: [unclosed again\n".to_owned()),
        (3, prompt("B", "fixed again")),
    ] {
        s.repo.write("prompts/b.prompt.yaml", &text);
        let sha = s.repo.commit(&format!("Flap {n}"));
        let want = if n == 2 { "failure" } else { "success" };
        wait_status(&rec, &sha, "promptsync/default", want);
    }
    let held = wait_until(DEADLINE, "the held messages in /status", || {
        let status = daemon.status();
        let hook = status["notify"]["receivers"]
            .as_array()?
            .iter()
            .find(|r| {
                r["receiver"]
                    .as_str()
                    .is_some_and(|l| l.contains("webhook"))
            })?
            .clone();
        (hook["held"].as_u64()? >= 1).then_some(hook)
    });
    assert_eq!(
        hook_types(&rec),
        ["pass.failed"],
        "a flapping repository is not paged twice: {held}"
    );

    // A release: the deploy status goes on the tag's commit, and its event (another
    // family) is sent.
    s.repo
        .tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    let tagged = s.repo.head();
    wait_status(&rec, &tagged, "promptsync/default/deploy", "success");
    wait_until(DEADLINE, "the deploy event", || {
        hook_types(&rec)
            .iter()
            .any(|t| t == "deploy.succeeded")
            .then_some(())
    });
    assert!(!daemon.log_text().contains(TOKEN), "the token leaked");
    assert!(!daemon.status().to_string().contains(TOKEN));
}

#[test]
fn a_failing_or_hung_endpoint_leaves_the_daemon_passes_unchanged() {
    let s = one_prompt();
    let hung = Recorder::start();
    hung.behave(Behaviour::Hang);
    let failing = Recorder::start();
    failing.behave(Behaviour::Fail(500));
    let ops = Ops::new();
    let config = ops.config(&format!(
        r#"
[notify]
timeout = "10s"
retry_max_elapsed = "3s"

[notify.github]
repository = "acme/prompts"
api_url = "{}"
token_file = "{{token}}"

[[notify.webhook]]
url = "{}/hooks/ops"
events = ["pass.failed", "recovered", "deploy.succeeded"]
"#,
        hung.url(),
        failing.url()
    ));
    let daemon = watch(&s, &config);
    daemon.wait_ready(DEADLINE);
    s.repo
        .tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    s.repo.commit("Edit A");
    let pass = daemon.wait_pass(DEADLINE, "the pass of the edit", |p| p["updated"] == 1);
    assert_eq!(pass["outcome"], "success", "{pass}");
    for pass in daemon.passes() {
        let ms = pass["duration_ms"].as_u64().unwrap();
        // A pass that waited for the hung host would take its 10 s timeout.
        assert!(ms < 5000, "a pass waited for a notification: {pass}");
    }
    assert!(!hung.requests().is_empty(), "statuses were attempted");

    // The 500s are retried in the background, then given up: /status and /metrics
    // say so.
    let status = wait_until(DEADLINE, "a delivery given up in /status", || {
        let status = daemon.status();
        (status["notify"]["failed"].as_u64()? >= 1).then_some(status)
    });
    let notify = &status["notify"];
    assert!(
        notify["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{notify:#}"
    );
    assert!(
        notify["pending"].as_u64().unwrap() >= 1,
        "the hung status waits: {notify:#}"
    );
    assert!(failing.requests().len() >= 2, "a 500 is retried");
    let metrics = daemon.get("/metrics").1;
    let counted = |name: &str, result: Option<&str>| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && result.is_none_or(|r| l.contains(r)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    };
    assert!(
        counted(
            "promptsync_notify_deliveries_total",
            Some("result=\"failed\"")
        ) >= 1,
        "{metrics}"
    );
    assert!(
        counted("promptsync_notify_retries_total", None) >= 1,
        "{metrics}"
    );
    assert!(counted("promptsync_notify_pending", None) >= 1, "{metrics}");
    assert_eq!(
        daemon.get("/readyz").0,
        200,
        "notifications never make a daemon unready"
    );
}

#[test]
fn the_daemon_runs_the_deploy_gate_before_a_release_goes_live() {
    let s = one_prompt();
    let rec = Recorder::start();
    let ops = Ops::new();
    let config = ops.config(&format!(
        r#"
[deploy]
gate_command = "sh -c 'echo {{ops}} > /dev/null; echo eval failed; exit 3'"

[notify.github]
repository = "acme/prompts"
api_url = "{}"
token_file = "{{token}}"
"#,
        rec.url()
    ));
    let daemon = watch(&s, &config);
    daemon.wait_ready(DEADLINE);
    s.repo
        .tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    let tagged = s.repo.head();
    wait_status(&rec, &tagged, "promptsync/default/deploy", "failure");
    let deploy: Vec<Value> = rec
        .requests_to(&format!("/repos/acme/prompts/statuses/{tagged}"))
        .iter()
        .map(|r| r.json())
        .filter(|j| j["context"] == "promptsync/default/deploy")
        .collect();
    assert_eq!(deploy[0]["description"], "v1.0.0: held, gate exit 3");
    assert_eq!(s.versions_of("A").len(), 1, "the draft synced");
    assert_eq!(s.live_of("A"), None, "nothing went live");
    assert!(
        daemon.log_text().contains("gate exit 3"),
        "the log says why the deploy is held"
    );
    // The pass synced its drafts (a success, the daemon stays ready), and its record in
    // /status and its log line say the deploy is held, and why.
    let record = wait_until(DEADLINE, "a pass record with the held deploy", || {
        let status = daemon.status();
        status["passes"]
            .as_array()?
            .iter()
            .find(|p| p["deploy_held"].is_string())
            .cloned()
    });
    assert_eq!(record["deploy_held"], "gate exit 3", "{record:#}");
    assert_eq!(record["outcome"], "success", "{record:#}");
    assert!(
        daemon
            .logs()
            .iter()
            .any(|l| l["message"] == "pass finished" && l["deploy_held"] == "gate exit 3"),
        "the pass's line says the deploy is held"
    );
}
