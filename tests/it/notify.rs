//! Telling people, end to end with the real binary: commit statuses on GitHub and
//! GitLab, the plan comment edited in place, signed webhooks, Slack, the exec hook,
//! endpoints that fail or hang, and the deploy gate. The hosts are the suite's own
//! recorder server on loopback (support/recorder.rs), which checks tokens and
//! signatures as the hosts do.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::recorder::{Behaviour, Recorder, TOKEN};
use crate::support::scenario::{Scenario, json_of, prompt, texts};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A repository with the emulator, the recorder, and a directory outside the
/// repository for the operator's configuration and secrets.
struct Setup {
    s: Scenario,
    rec: Recorder,
    ops: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let setup = Setup {
            s: Scenario::new(),
            rec: Recorder::start(),
            ops: tempfile::tempdir().unwrap(),
        };
        setup.write("token", &format!("{TOKEN}\n"));
        setup.write("secret", SECRET);
        setup
            .s
            .repo
            .write("prompts/a.prompt.yaml", &prompt("A", "first"));
        setup.s.repo.commit("Add A");
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.ops.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.path(name), text).unwrap();
        self.path(name).display().to_string()
    }

    /// The operator's configuration file, with `{rec}`, `{token}`, `{secret}` and
    /// `{ops}` filled in.
    fn config(&self, toml: &str) -> String {
        let text = toml
            .replace("{rec}", &self.rec.url())
            .replace("{token}", &self.path("token").display().to_string())
            .replace("{secret}", &self.path("secret").display().to_string())
            .replace("{ops}", &self.ops.path().display().to_string());
        self.write("promptsync.toml", &text)
    }

    /// `promptsync <args> --config <the operator's file> --log-format json`.
    fn run(&self, args: &[&str], env: &[(&str, &str)], code: i32) -> (Value, String) {
        let config = self.path("promptsync.toml").display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "--config",
            &config,
            "--log-format",
            "json",
            "--output",
            "json",
        ]);
        let mut cmd = self.s.cmd(&all);
        cmd.envs(env.iter().copied());
        let output = cmd.output().unwrap();
        let (stdout, stderr) = texts(&output);
        assert!(
            !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
            "the token leaked:\n{stderr}"
        );
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}\n{stdout}\n{stderr}"
        );
        (json_of(&output), stderr)
    }
}

/// The `pass finished` log line's duration.
fn pass_ms(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "pass finished")
        .and_then(|l| l["duration_ms"].as_u64())
        .unwrap_or_else(|| panic!("no `pass finished` line:\n{stderr}"))
}

#[test]
fn sync_posts_commit_statuses_on_github_and_gitlab() {
    let t = Setup::new();
    t.config(
        r#"
[notify.github]
repository = "acme/prompts"
api_url = "{rec}"
token_file = "{token}"
target_url = "https://prompts.example.com/status"

[notify.gitlab]
repository = "group/prompts"
api_url = "{rec}/api/v4"
token_file = "{token}"
"#,
    );
    let head = t.s.repo.head();
    let (report, _) = t.run(&["sync"], &[], 0);
    assert_eq!(report["summary"]["created"], 1);

    let github = t.rec.requests_to("/repos/acme/prompts/statuses/");
    let states: Vec<(String, String)> = github
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                r.json()["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let on_head = format!("/repos/acme/prompts/statuses/{head}");
    assert_eq!(
        states,
        [
            (on_head.clone(), "pending".into()),
            (on_head, "success".into())
        ],
        "pending while the pass runs, then its outcome"
    );
    let last = github[1].json();
    assert_eq!(last["context"], "promptsync/default");
    assert_eq!(last["target_url"], "https://prompts.example.com/status");
    let description = last["description"].as_str().unwrap();
    assert!(
        description.contains("1 created") && description.chars().count() <= 140,
        "{description}"
    );
    assert_eq!(
        github[1].headers["authorization"],
        format!("Bearer {TOKEN}")
    );
    assert_eq!(github[1].headers["accept"], "application/vnd.github+json");
    assert_eq!(github[1].headers["x-github-api-version"], "2022-11-28");

    let gitlab = t
        .rec
        .requests_to("/api/v4/projects/group%2Fprompts/statuses/");
    assert_eq!(gitlab.len(), 2, "{gitlab:?}");
    assert_eq!(
        gitlab[1].path,
        format!("/api/v4/projects/group%2Fprompts/statuses/{head}")
    );
    assert_eq!(gitlab[1].json()["state"], "success");
    assert_eq!(gitlab[1].json()["name"], "promptsync/default");
    assert_eq!(gitlab[1].headers["private-token"], TOKEN);

    // A release: the deploy status goes on the tag's commit.
    t.s.repo
        .tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    let (report, _) = t.run(&["sync"], &[], 0);
    assert_eq!(report["summary"]["deployed"], 1);
    let deploy: Vec<Value> = t
        .rec
        .requests_to("/repos/acme/prompts/statuses/")
        .iter()
        .map(|r| r.json())
        .filter(|j| j["context"] == "promptsync/default/deploy")
        .collect();
    assert_eq!(deploy.len(), 1, "{deploy:?}");
    assert_eq!(deploy[0]["state"], "success");
    assert_eq!(
        deploy[0]["description"],
        "v1.0.0: 1 deployed, 0 already live"
    );
}

#[test]
fn a_refused_token_is_a_warning_and_the_pass_is_unchanged() {
    let t = Setup::new();
    t.write("token", "not-the-token");
    t.config("[notify.github]\nrepository = \"acme/prompts\"\napi_url = \"{rec}\"\ntoken_file = \"{token}\"\n");
    let (report, stderr) = t.run(&["sync"], &[], 0);
    assert_eq!(report["summary"]["created"], 1);
    assert!(
        stderr.contains("notification dropped") && stderr.contains("answered 401"),
        "{stderr}"
    );
    // Refused is refused: not retried.
    assert_eq!(
        t.rec.requests_to("/repos/").len(),
        2,
        "pending and the outcome, once each"
    );
}

#[test]
fn the_plan_comment_is_edited_in_place_on_github() {
    let t = Setup::new();
    t.config("[notify]\nretry_max_elapsed = \"5s\"\n");
    let event = t.write(
        "event.json",
        r#"{"action": "synchronize", "number": 7, "pull_request": {"number": 7}}"#,
    );
    let rec = t.rec.url();
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_PATH", event.as_str()),
        ("GITHUB_REPOSITORY", "acme/prompts"),
        ("GITHUB_API_URL", rec.as_str()),
        ("GITHUB_TOKEN", TOKEN),
        ("GITHUB_SERVER_URL", "https://github.example.com"),
        ("GITHUB_RUN_ID", "99"),
    ];
    t.rec
        .add_comment("github/acme/prompts/7", "LGTM, a person's comment");
    t.run(&["plan", "--comment"], &env, 0);
    let comments = t.rec.comments("github/acme/prompts/7");
    assert_eq!(comments.len(), 2, "{comments:?}");
    let first = &comments[1].1;
    assert!(
        first.starts_with("<!-- promptsync:plan target=default -->"),
        "{first}"
    );
    assert!(
        first.contains("<details><summary><code>prompts/a.prompt.yaml</code>"),
        "{first}"
    );
    assert!(
        first.contains("[this run](https://github.example.com/acme/prompts/actions/runs/99)"),
        "{first}"
    );

    t.s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    t.s.repo.commit("Change A");
    t.run(&["plan", "--comment"], &env, 0);
    let comments = t.rec.comments("github/acme/prompts/7");
    assert_eq!(comments.len(), 2, "edited, not added: {comments:?}");
    assert!(
        comments[1].1.contains("+second") || comments[1].1.contains("second"),
        "{}",
        comments[1].1
    );
    assert_eq!(comments[0].1, "LGTM, a person's comment");
    let methods: Vec<String> = t
        .rec
        .requests_to("/repos/acme/prompts/issues/")
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        methods,
        [
            "GET /repos/acme/prompts/issues/7/comments?per_page=100&page=1".to_owned(),
            "POST /repos/acme/prompts/issues/7/comments".to_owned(),
            "GET /repos/acme/prompts/issues/7/comments?per_page=100&page=1".to_owned(),
            format!(
                "PATCH /repos/acme/prompts/issues/comments/{}",
                comments[1].0
            ),
        ]
    );
}

#[test]
fn the_plan_note_is_edited_in_place_on_gitlab_and_cut_to_its_limit_on_github() {
    let t = Setup::new();
    t.config("");
    let rec = format!("{}/api/v4", t.rec.url());
    let env = [
        ("GITLAB_CI", "true"),
        ("CI_MERGE_REQUEST_IID", "3"),
        ("CI_PROJECT_ID", "42"),
        ("CI_API_V4_URL", rec.as_str()),
        ("GITLAB_TOKEN", TOKEN),
    ];
    t.run(&["plan", "--comment"], &env, 0);
    t.run(&["plan", "--comment"], &env, 0);
    let notes = t.rec.comments("gitlab/42/3");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].1.contains("promptsync:plan target=default"));

    // A plan far over GitHub's 65,536 characters: cut, with what was left out said.
    for i in 0..30 {
        t.s.repo.write(
            &format!("prompts/big{i:02}.prompt.yaml"),
            &prompt(
                &format!("Big {i}"),
                &format!("{i} {}", "lorem ipsum ".repeat(400)),
            ),
        );
    }
    t.s.repo.commit("Big prompts");
    let event = t.write("event.json", r#"{"pull_request": {"number": 8}}"#);
    let api = t.rec.url();
    let github = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_PATH", event.as_str()),
        ("GITHUB_REPOSITORY", "acme/prompts"),
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_TOKEN", TOKEN),
    ];
    t.run(&["plan", "--comment"], &github, 0);
    let comments = t.rec.comments("github/acme/prompts/8");
    assert_eq!(comments.len(), 1);
    let body = &comments[0].1;
    assert!(body.chars().count() <= 65_536, "{}", body.len());
    assert!(
        body.contains("more diffs left out: a GitHub comment holds at most 65,536 characters"),
        "{}",
        &body[body.len() - 600..]
    );
}

#[test]
fn plan_comment_without_a_pull_request_or_token_skips_with_a_warning() {
    let t = Setup::new();
    t.config("");
    let (report, stderr) = t.run(&["plan", "--comment"], &[], 0);
    assert_eq!(report["summary"]["created"], 1);
    assert!(
        stderr.contains("not commenting") && stderr.contains("no pull request"),
        "{stderr}"
    );
    let event = t.write("event.json", r#"{"pull_request": {"number": 7}}"#);
    let (_, stderr) = t.run(
        &["plan", "--comment", "--detailed-exitcode"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_PATH", &event),
            ("GITHUB_REPOSITORY", "acme/p"),
        ],
        2,
    );
    assert!(stderr.contains("no token"), "{stderr}");
    assert!(t.rec.requests().is_empty());
}

#[test]
fn webhooks_are_signed_slack_is_escaped_and_the_exec_hook_gets_the_facts() {
    let t = Setup::new();
    t.rec.verify_with(SECRET);
    t.write(
        "slack-url",
        &format!("{}/slack/T000/B000/XXXX\n", t.rec.url()),
    );
    t.config(
        r#"
[[notify.webhook]]
url = "{rec}/hooks/json"
secret_file = "{secret}"

[[notify.webhook]]
url_file = "{ops}/slack-url"
format = "slack"
events = ["deploy.succeeded"]

[[notify.webhook]]
url = "{rec}/hooks/only-failures"
events = ["pass.failed"]

[notify.exec]
command = "sh -c 'env | grep ^PROMPTSYNC_ | sort > {ops}/exec.env; cat > {ops}/exec.json'"
"#,
    );
    t.s.repo
        .write("prompts/b.prompt.yaml", &prompt("<!channel> B & co", "b"));
    t.s.repo.commit("Add B");
    t.s.repo
        .tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    let head = t.s.repo.head();
    t.run(&["sync"], &[], 0);

    let hooks = t.rec.requests_to("/hooks/");
    assert_eq!(
        hooks.len(),
        1,
        "one message for the pass; none for the receiver of failures: {hooks:?}"
    );
    let hook = &hooks[0];
    assert_eq!(
        hook.verified,
        Some(true),
        "the Standard Webhooks signature verifies"
    );
    assert!(hook.headers["webhook-id"].starts_with("msg_"));
    assert!(hook.headers["webhook-signature"].starts_with("v1,"));
    let payload = hook.json();
    assert_eq!(payload["type"], "deploy.succeeded");
    assert_eq!(
        payload["data"]["events"],
        serde_json::json!(["deploy.succeeded"])
    );
    assert_eq!(payload["data"]["target"], "default");
    assert_eq!(payload["data"]["revision"]["after"], head.as_str());
    assert_eq!(payload["data"]["release"]["tag"], "v1.0.0");
    let a = payload["data"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["file"] == "prompts/a.prompt.yaml")
        .unwrap()
        .clone();
    assert_eq!(
        (
            a["version_after"].as_u64(),
            a["live_before"].as_u64(),
            a["live_after"].as_u64()
        ),
        (Some(1), None, Some(1))
    );

    let slack = t.rec.requests_to("/slack/T000/B000/XXXX");
    assert_eq!(slack.len(), 1);
    let message = slack[0].json();
    let text = serde_json::to_string(&message["blocks"]).unwrap();
    assert!(text.contains("&lt;!channel&gt; B &amp; co"), "{text}");
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .contains("deploy.succeeded")
    );

    let env = std::fs::read_to_string(t.path("exec.env")).unwrap();
    assert!(env.contains("PROMPTSYNC_EVENT=deploy.succeeded\n"), "{env}");
    assert!(env.contains("PROMPTSYNC_RELEASE_TAG=v1.0.0\n"), "{env}");
    assert!(
        env.contains(&format!("PROMPTSYNC_REVISION_AFTER={head}\n")),
        "{env}"
    );
    assert!(env.contains("PROMPTSYNC_TARGET=default\n"), "{env}");
    let stdin: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("exec.json")).unwrap()).unwrap();
    assert_eq!(stdin["type"], "deploy.succeeded");

    // A bad signature is refused by the receiver: a failed delivery, the pass unchanged.
    t.write("secret", "whsec_c29tZXRoaW5nIGVsc2U=");
    t.s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "third"));
    t.s.repo.commit("Change A");
    t.s.repo
        .tag_annotated("v1.1.0", "Release", crate::support::git::BASE_TIME + 7200);
    let (report, stderr) = t.run(&["sync"], &[], 0);
    assert_eq!(report["summary"]["deployed"], 1);
    assert_eq!(
        t.rec.requests_to("/hooks/json").last().unwrap().verified,
        Some(false)
    );
    assert!(stderr.contains("answered 401"), "{stderr}");
}

#[test]
fn a_hung_or_failing_endpoint_leaves_the_pass_outcome_and_timing_unchanged() {
    let t = Setup::new();
    // A release, so the pass has an event (deploy.succeeded) for the webhook.
    t.s.repo
        .tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    t.config("");
    let (baseline, stderr) = t.run(&["sync", "--dry-run"], &[], 0);
    let baseline_ms = pass_ms(&stderr);

    let hung = Recorder::start();
    hung.behave(Behaviour::Hang);
    let failing = Recorder::start();
    failing.behave(Behaviour::Fail(503));
    t.config(&format!(
        r#"
[notify]
timeout = "3s"
retry_max_elapsed = "4s"

[notify.github]
repository = "acme/prompts"
api_url = "{}"
token_file = "{{token}}"

[[notify.webhook]]
url = "{}/hooks/x"
"#,
        hung.url(),
        failing.url()
    ));
    let started = Instant::now();
    let (report, stderr) = t.run(&["sync"], &[], 0);
    let total = started.elapsed();
    let pass = pass_ms(&stderr);
    assert_eq!(report["summary"]["created"], 1);
    assert_eq!(report["prompts"][0]["file"], baseline["prompts"][0]["file"]);
    assert_eq!(
        report["prompts"][0]["action"],
        baseline["prompts"][0]["action"]
    );
    // Posted in the background: the pass does not wait for a 3 s timeout.
    assert!(
        pass < 2500,
        "the pass took {pass} ms with a hung endpoint (baseline {baseline_ms} ms)"
    );
    // The command waits for its notifications, within their bound, then ends.
    assert!(total < Duration::from_secs(20), "{total:?}");
    assert!(
        !hung.requests().is_empty(),
        "the pending status was attempted"
    );
    assert!(
        failing.requests().len() >= 2,
        "a 503 is retried: {}",
        failing.requests().len()
    );
    assert!(
        stderr.contains("notification dropped") || stderr.contains("abandoned"),
        "{stderr}"
    );
}

#[test]
fn a_failing_gate_holds_the_deploy_and_drafts_still_sync() {
    let t = Setup::new();
    t.s.repo
        .tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    t.config(
        r#"
[deploy]
gate_command = "sh -c 'cat prompts/a.prompt.yaml > {ops}/seen; env | grep ^PROMPTSYNC_ | sort > {ops}/gate.env; echo 2 of 3 evals failed; exit 1'"

[notify.github]
repository = "acme/prompts"
api_url = "{rec}"
token_file = "{token}"
"#,
    );
    let (report, _) = t.run(&["sync"], &[], 1);
    assert_eq!(report["gate"]["passed"], false);
    assert_eq!(report["gate"]["held"], true);
    assert_eq!(report["gate"]["exit_code"], 1);
    assert!(
        report["gate"]["output"]
            .as_str()
            .unwrap()
            .contains("2 of 3 evals failed")
    );
    assert_eq!(report["prompts"][0]["deploy"]["action"], "held");
    assert_eq!(report["summary"]["deployed"], 0);
    assert_eq!(t.s.versions_of("A").len(), 1, "the draft still synced");
    assert_eq!(t.s.live_of("A"), None, "nothing went live");
    assert_eq!(
        std::fs::read_to_string(t.path("seen")).unwrap(),
        prompt("A", "first")
    );
    let env = std::fs::read_to_string(t.path("gate.env")).unwrap();
    assert!(env.contains("PROMPTSYNC_RELEASE_TAG=v1.0.0\n"), "{env}");
    assert!(
        env.contains("PROMPTSYNC_PROMPT_FILES=prompts/a.prompt.yaml\n"),
        "{env}"
    );
    assert!(env.contains("PROMPTSYNC_GATE_DIR=/"), "{env}");
    let deploy: Vec<Value> = t
        .rec
        .requests_to("/repos/acme/prompts/statuses/")
        .iter()
        .map(|r| r.json())
        .filter(|j| j["context"] == "promptsync/default/deploy")
        .collect();
    assert_eq!(deploy[0]["state"], "failure");
    assert_eq!(deploy[0]["description"], "v1.0.0: held, gate exit 1");

    let text = t.s.run(
        &[
            "sync",
            "--config",
            &t.path("promptsync.toml").display().to_string(),
        ],
        1,
    );
    let out = texts(&text).0;
    assert!(
        out.contains("deploy gate `sh -c") && out.contains("gate exit 1: the deploy is held"),
        "{out}"
    );
    assert!(out.contains("  | 2 of 3 evals failed"), "{out}");
}

#[test]
fn an_advisory_gate_only_reports() {
    let t = Setup::new();
    t.s.repo
        .tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    t.config("[deploy]\ngate_command = [\"false\"]\ngate = \"advisory\"\n");
    let (report, _) = t.run(&["sync"], &[], 0);
    assert_eq!(report["gate"]["passed"], false);
    assert_eq!(report["gate"]["held"], false);
    assert_eq!(report["summary"]["deployed"], 1);
    assert_eq!(t.s.live_of("A"), Some(1));
    // With nothing left to deploy, the gate does not run again.
    let (report, _) = t.run(&["sync"], &[], 0);
    assert_eq!(report["gate"], Value::Null);
}

#[test]
fn a_hung_gate_is_killed_at_its_timeout() {
    let t = Setup::new();
    t.s.repo
        .tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    t.config(
        "[deploy]\ngate_command = \"sh -c 'sleep 120 & echo $! > {ops}/child; sleep 120'\"\ngate_timeout = \"1s\"\n",
    );
    let started = Instant::now();
    let (report, _) = t.run(&["sync"], &[], 1);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report["gate"]["timed_out"], true);
    assert_eq!(
        report["gate"]["reason"],
        "gate timed out after 1s (stopped)"
    );
    assert_eq!(t.s.live_of("A"), None);
    let child = std::fs::read_to_string(t.path("child")).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.trim()));
    let alive = stat.is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|state| state != "Z"));
    assert!(
        !alive,
        "the gate's background child {} survived",
        child.trim()
    );
}

#[test]
fn notify_settings_are_checked_key_by_key() {
    let t = Setup::new();
    t.config(
        r#"
[notify.github]
repo = "acme/prompts"
api_url = "http://example.com"

[[notify.webhook]]
events = ["deploy.done"]

[deploy]
gate = "maybe"
"#,
    );
    let config = t.path("promptsync.toml").display().to_string();
    let output = t.s.cmd(&["sync", "--config", &config]).output().unwrap();
    let stderr = texts(&output).1;
    assert_eq!(output.status.code(), Some(1));
    for expected in [
        "notify.github.repo (from ",
        "did you mean `notify.github.repository`?",
        "notify.github.api_url (from ",
        "use https://",
        "notify.webhook[0].events",
        "\"deploy.done\" is not an event",
        "deploy.gate (from ",
    ] {
        assert!(stderr.contains(expected), "{expected}:\n{stderr}");
    }
}
