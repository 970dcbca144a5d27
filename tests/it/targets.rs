//! Targets (issue 20), end to end with the real binary and two emulators, one per
//! Respan project, each taking only its own key: staging follows the branch
//! (`live = "branch"`), production follows `v*` tags. Both synced from one commit, a
//! tag promotes what staging runs, a rollback tag moves production only, a refused key
//! fails its own target only, `--target` limits every command, and the trust rules
//! keep a target's URL and key out of the repository's hands.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::emulator::{TEST_KEY, TestEmulator};
use crate::support::git::{BASE_TIME, TestRepo};
use crate::support::promptsync;
use crate::support::scenario::{json_of, prompt, texts};

const STAGING_KEY: &str = "sk_staging_never_printed";
const PRODUCTION_KEY: &str = "sk_production_never_printed";

/// One repository, two projects, the operator's configuration outside the repository.
struct Two {
    repo: TestRepo,
    staging: TestEmulator,
    production: TestEmulator,
    ops: tempfile::TempDir,
}

fn emulator_with_key(key: &str) -> TestEmulator {
    TestEmulator::start_with(promptsync_emulator::EmulatorConfig {
        api_keys: vec![key.into(), TEST_KEY.into()],
        ..Default::default()
    })
}

impl Two {
    fn new() -> Two {
        let two = Two {
            repo: TestRepo::new(),
            staging: emulator_with_key(STAGING_KEY),
            production: emulator_with_key(PRODUCTION_KEY),
            ops: tempfile::tempdir().unwrap(),
        };
        std::fs::write(two.path("production-key"), format!("{PRODUCTION_KEY}\n")).unwrap();
        two.config("");
        two.repo
            .write("prompts/a.prompt.yaml", &prompt("A", "first"));
        two.repo.commit("Add A");
        two
    }

    fn path(&self, name: &str) -> PathBuf {
        self.ops.path().join(name)
    }

    /// The operator's file: the two targets, then `extra`.
    fn config(&self, extra: &str) {
        let text = format!(
            r#"
[targets.staging]
base_url = "{}"
api_key_env = "STAGING_API_KEY"
live = "branch"

[targets.production]
base_url = "{}"
api_key_file = "{}"
live = "tags"

[targets.production.deploy]
tags = ["v*"]
{extra}"#,
            self.staging.base_url(),
            self.production.base_url(),
            self.path("production-key").display()
        );
        std::fs::write(self.path("promptsync.toml"), text).unwrap();
    }

    fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = promptsync();
        cmd.current_dir(self.repo.path())
            .env_remove("RESPAN_API_KEY")
            .env("STAGING_API_KEY", STAGING_KEY)
            .args(args)
            .arg("--config")
            .arg(self.path("promptsync.toml"));
        cmd
    }

    /// Run, check the exit code and that neither key shows.
    fn run(&self, args: &[&str], code: i32) -> std::process::Output {
        let output = self.cmd(args).output().unwrap();
        let (stdout, stderr) = texts(&output);
        for key in [STAGING_KEY, PRODUCTION_KEY] {
            assert!(
                !stdout.contains(key) && !stderr.contains(key),
                "a key leaked:\n{stdout}\n{stderr}"
            );
        }
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
        output
    }

    fn sync_json(&self, extra: &[&str], code: i32) -> Value {
        let mut args = vec!["sync", "--output", "json"];
        args.extend_from_slice(extra);
        json_of(&self.run(&args, code))
    }
}

fn prompt_named(emu: &TestEmulator, name: &str) -> Option<Value> {
    emu.prompts().into_iter().find(|p| p["name"] == name)
}

fn versions(emu: &TestEmulator, name: &str) -> usize {
    prompt_named(emu, name).map_or(0, |p| emu.versions(p["id"].as_str().unwrap()).len())
}

fn live(emu: &TestEmulator, name: &str) -> Option<u64> {
    let id = prompt_named(emu, name)?["id"].as_str()?.to_owned();
    emu.get(&format!("/api/prompts/{id}/"))["live_version"]["version"].as_u64()
}

/// The report of `target` in a grouped JSON document.
fn of<'a>(doc: &'a Value, target: &str) -> &'a Value {
    doc["targets"]
        .as_array()
        .unwrap_or_else(|| panic!("not grouped: {doc:#}"))
        .iter()
        .find(|r| r["target"] == target)
        .unwrap_or_else(|| panic!("no report of {target}: {doc:#}"))
}

#[test]
fn both_targets_sync_from_one_commit_and_reports_group_by_target() {
    let t = Two::new();
    let doc = t.sync_json(&[], 0);
    let names: Vec<&str> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["production", "staging"], "in name order");
    for target in ["staging", "production"] {
        let report = of(&doc, target);
        assert_eq!(report["summary"]["created"], 1, "{report:#}");
        assert_eq!(
            report["prompts"][0]["target"], target,
            "rows carry their target"
        );
    }
    assert_eq!(versions(&t.staging, "A"), 1);
    assert_eq!(versions(&t.production, "A"), 1);
    assert_eq!(live(&t.staging, "A"), Some(1), "staging follows the branch");
    assert_eq!(
        live(&t.production, "A"),
        None,
        "no tag: nothing live in production"
    );
    assert_eq!(of(&doc, "staging")["summary"]["deployed"], 1);

    let text = texts(&t.run(&["plan"], 0)).0;
    let staging = text.find("== target staging ==").expect(&text);
    let production = text.find("== target production ==").expect(&text);
    assert!(production < staging, "{text}");
}

#[test]
fn staging_follows_main_a_tag_promotes_and_a_rollback_tag_moves_production_only() {
    let t = Two::new();
    let first = t.repo.head();
    t.repo
        .tag_annotated("v1.0.0", "First release", BASE_TIME + 100);
    t.sync_json(&[], 0);
    assert_eq!(live(&t.staging, "A"), Some(1));
    assert_eq!(live(&t.production, "A"), Some(1));

    // main moves on: staging runs it at once, production stays at its tag.
    t.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    t.repo.commit_at("Edit A", BASE_TIME + 200);
    t.sync_json(&[], 0);
    assert_eq!(live(&t.staging, "A"), Some(2), "HEAD is live in staging");
    assert_eq!(
        live(&t.production, "A"),
        Some(1),
        "production stays at v1.0.0"
    );
    assert_eq!(versions(&t.production, "A"), 2, "the draft is there");

    // A tag on main promotes what staging runs: no new version, the draft goes live.
    t.repo
        .tag_annotated("v1.1.0", "Second release", BASE_TIME + 300);
    let doc = t.sync_json(&[], 0);
    assert_eq!(live(&t.production, "A"), Some(2), "{doc:#}");
    assert_eq!(versions(&t.production, "A"), 2, "promoted, not rewritten");
    assert_eq!(of(&doc, "production")["release"]["tag"], "v1.1.0");

    // A rollback tag on the older commit moves production back; staging stays on
    // main.
    t.repo
        .tag_annotated_at("v1.1.1", &first, "Roll back", BASE_TIME + 400);
    let doc = t.sync_json(&[], 0);
    assert_eq!(live(&t.production, "A"), Some(1), "{doc:#}");
    assert_eq!(live(&t.staging, "A"), Some(2), "staging untouched");
    assert_eq!(of(&doc, "staging")["summary"]["deployed"], 0);
}

#[test]
fn a_refused_key_fails_its_own_target_while_the_other_syncs() {
    let t = Two::new();
    std::fs::write(t.path("production-key"), "sk_revoked\n").unwrap();
    let output = t.run(&["sync", "--output", "json"], 1);
    let doc = json_of(&output);
    assert_eq!(of(&doc, "staging")["summary"]["created"], 1);
    assert_eq!(of(&doc, "staging")["error"], Value::Null);
    assert_eq!(
        of(&doc, "production")["error"]["class"],
        "stalled",
        "{doc:#}"
    );
    assert_eq!(versions(&t.staging, "A"), 1, "staging synced");
    assert_eq!(live(&t.staging, "A"), Some(1));
    assert!(t.production.prompts().is_empty());
    let stderr = texts(&output).1;
    assert!(stderr.contains("target production"), "{stderr}");
}

#[test]
fn target_limits_every_command() {
    let t = Two::new();
    let doc = t.sync_json(&["--target", "staging"], 0);
    assert_eq!(doc["targets"].as_array().unwrap().len(), 1);
    assert_eq!(versions(&t.staging, "A"), 1);
    assert!(t.production.prompts().is_empty(), "production untouched");

    let plan = json_of(&t.run(
        &[
            "plan",
            "--target",
            "production",
            "--output",
            "json",
            "--detailed-exitcode",
        ],
        2,
    ));
    assert_eq!(plan["targets"].as_array().unwrap().len(), 1);
    assert_eq!(of(&plan, "production")["summary"]["created"], 1);

    let status = json_of(&t.run(&["status", "--target", "staging", "--output", "json"], 0));
    assert_eq!(status["targets"].as_array().unwrap().len(), 1);
    assert_eq!(status["targets"][0]["target"], "staging");

    // Both named: both acted on.
    let doc = t.sync_json(&["--target", "production", "--target", "staging"], 0);
    assert_eq!(doc["targets"].as_array().unwrap().len(), 2);
    assert_eq!(versions(&t.production, "A"), 1);

    // pull reads one project.
    let pulled = t.run(
        &[
            "pull", "A", "--target", "staging", "--dir", "pulled", "--output", "json",
        ],
        0,
    );
    assert!(
        t.repo.path().join("pulled").exists(),
        "{:?}",
        texts(&pulled)
    );
    let both = texts(&t.run(&["pull", "A", "--dir", "pulled2"], 1)).1;
    assert!(
        both.contains("name one target with --target NAME"),
        "{both}"
    );

    let unknown = texts(&t.run(&["sync", "--target", "prod"], 1)).1;
    assert!(
        unknown.contains("--target prod: no such target; the targets are production, staging"),
        "{unknown}"
    );
}

#[test]
fn live_none_syncs_drafts_only() {
    let t = Two::new();
    t.config("");
    let text = std::fs::read_to_string(t.path("promptsync.toml"))
        .unwrap()
        .replace("live = \"branch\"", "live = \"none\"");
    std::fs::write(t.path("promptsync.toml"), text).unwrap();
    t.repo.tag("v1.0.0");
    t.sync_json(&[], 0);
    assert_eq!(versions(&t.staging, "A"), 1);
    assert_eq!(live(&t.staging, "A"), None, "drafts only");
    assert_eq!(live(&t.production, "A"), Some(1));
}

#[test]
fn without_targets_the_default_target_is_the_only_one() {
    let t = Two::new();
    std::fs::write(t.path("promptsync.toml"), "").unwrap();
    let mut cmd = t.cmd(&["sync", "--output", "json", "--target", "default"]);
    cmd.env("RESPAN_BASE_URL", t.staging.base_url())
        .env("RESPAN_API_KEY", STAGING_KEY);
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{:?}", texts(&output));
    let doc = json_of(&output);
    assert!(
        doc.get("targets").is_none(),
        "one report, as before: {doc:#}"
    );
    assert!(doc.get("target").is_none());
    assert!(doc["prompts"][0].get("target").is_none());
}

#[test]
fn target_settings_are_checked_and_the_repository_cannot_point_a_key_elsewhere() {
    let t = Two::new();
    // The repository's own file may not say where a target's key goes.
    t.repo.write(
        "promptsync.toml",
        "[targets.staging]\nbase_url = \"https://attacker.example\"\napi_key_env = \"STAGING_API_KEY\"\n",
    );
    let mut cmd = promptsync();
    cmd.current_dir(t.repo.path())
        .env("STAGING_API_KEY", STAGING_KEY)
        .args(["plan"]);
    let output = cmd.output().unwrap();
    let stderr = texts(&output).1;
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("targets.staging.base_url")
            && stderr.contains("where a target's API key is sent"),
        "{stderr}"
    );
    std::fs::remove_file(t.repo.path().join("promptsync.toml")).unwrap();

    t.config(
        "\n[targets.qa]\nbase_url = \"http://127.0.0.1:1\"\napi_key_fil = \"x\"\nlive = \"sometimes\"\n",
    );
    let stderr = texts(&t.run(&["plan"], 1)).1;
    for expected in [
        "targets.qa.api_key_fil",
        "did you mean `targets.qa.api_key_file`?",
        "targets.qa.live",
        "\"sometimes\" is not one of \"tags\", \"branch\", \"none\"",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in\n{stderr}");
    }
    t.config("\n[targets.qa]\nbase_url = \"http://127.0.0.1:1\"\n");
    let stderr = texts(&t.run(&["plan"], 1)).1;
    assert!(
        stderr.contains("targets.qa") && stderr.contains("needs its API key: api_key_file"),
        "{stderr}"
    );
    t.config("");
    let mut cmd = t.cmd(&["plan"]);
    cmd.env_remove("STAGING_API_KEY");
    let output = cmd.output().unwrap();
    let stderr = texts(&output).1;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("targets.staging.api_key_env")
            && stderr.contains("STAGING_API_KEY, which is unset or empty"),
        "{stderr}"
    );
}

/// `promptsync watch --target NAME` in the repository, with the operator's file.
fn daemon(t: &Two, target: &str, extra_env: &[(&str, &str)]) -> crate::support::daemon::Daemon {
    daemon_of(t, &["--target", target], extra_env)
}

/// `promptsync watch ARGS` in the repository, with the operator's file.
fn daemon_of(t: &Two, args: &[&str], extra_env: &[(&str, &str)]) -> crate::support::daemon::Daemon {
    let mut command = crate::support::promptsync_command();
    command
        .current_dir(t.repo.path())
        .env_remove("RESPAN_API_KEY")
        .env("STAGING_API_KEY", STAGING_KEY)
        .env("PROMPTSYNC_WATCH__DEBOUNCE", "100ms")
        .envs(extra_env.iter().copied())
        .arg("watch")
        .args(args)
        .arg("--config")
        .arg(t.path("promptsync.toml"));
    crate::support::daemon::Daemon::spawn(command)
}

/// The section of `target` in a daemon's `/status`.
fn section(status: &Value, target: &str) -> Value {
    status["targets"]
        .as_array()
        .unwrap_or_else(|| panic!("no targets section: {status:#}"))
        .iter()
        .find(|s| s["name"] == target)
        .unwrap_or_else(|| panic!("no section of {target}: {status:#}"))
        .clone()
}

/// The status (`"True"`/`"False"`) of condition `kind` in a `/status` section.
fn condition(section: &Value, kind: &str) -> String {
    section["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == kind))
        .and_then(|c| c["status"].as_str())
        .unwrap_or_else(|| panic!("no {kind} condition: {section:#}"))
        .to_owned()
}

#[test]
fn one_daemon_syncs_every_target_staging_follows_head_and_production_moves_on_a_tag() {
    let t = Two::new();
    let deadline = std::time::Duration::from_secs(30);
    t.repo
        .write("prompts/b.prompt.yaml", &prompt("B", "first"))
        .write("prompts/c.prompt.yaml", &prompt("C", "first"));
    let first = t.repo.commit("Add B and C");
    let d = daemon_of(
        &t,
        &[],
        &[("PROMPTSYNC_LOG__LEVEL", "info,promptsync=debug")],
    );
    d.wait_ready(deadline);

    // One commit, both targets: live at once in staging, a draft in production. The
    // revision's files are read once: the second target takes all three from the
    // first one's read.
    let reused: Vec<u64> = d
        .logs()
        .iter()
        .filter(|l| l["message"] == "prompt files taken from the cache")
        .filter_map(|l| l["reused"].as_u64())
        .take(2)
        .collect();
    assert_eq!(reused, [0, 3], "{}", d.log_text());
    assert_eq!(live(&t.staging, "A"), Some(1));
    assert_eq!(versions(&t.production, "A"), 1);
    assert_eq!(live(&t.production, "A"), None, "no tag yet");
    let status = d.status();
    assert!(status.get("target").is_none(), "{status:#}");
    for name in ["staging", "production"] {
        let s = section(&status, name);
        assert_eq!(condition(&s, "Ready"), "True", "{s:#}");
        assert_eq!(s["last_applied_revision"], first, "{s:#}");
    }
    assert_eq!(condition(&status, "Ready"), "True", "{status:#}");
    // main moves on: staging runs HEAD, production keeps its draft.
    t.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    let head = t.repo.commit("Edit A");
    crate::support::wait_until(deadline, "staging to run HEAD", || {
        (live(&t.staging, "A") == Some(2)).then_some(())
    });
    crate::support::wait_until(deadline, "production to hold the draft", || {
        (versions(&t.production, "A") == 2).then_some(())
    });
    crate::support::wait_until(deadline, "both to have applied HEAD", || {
        let status = d.status();
        ["staging", "production"]
            .iter()
            .all(|name| section(&status, name)["last_applied_revision"] == head)
            .then_some(())
    });
    assert_eq!(
        live(&t.production, "A"),
        None,
        "production moves on a tag only"
    );

    // A tag on main promotes what staging runs, in production only.
    t.repo
        .tag_annotated("v1.0.0", "First release", BASE_TIME + 300);
    crate::support::wait_until(deadline, "the tag to go live in production", || {
        (live(&t.production, "A") == Some(2)).then_some(())
    });
    assert_eq!(versions(&t.production, "A"), 2, "promoted, not rewritten");
    assert_eq!(live(&t.staging, "A"), Some(2));

    let metrics = d.get("/metrics").1;
    for target in ["staging", "production"] {
        assert!(
            metrics.contains(&format!("promptsync_reconcile_total{{target=\"{target}\",")),
            "{metrics}"
        );
    }
    assert_eq!(
        metrics.matches("# HELP promptsync_reconcile ").count(),
        1,
        "{metrics}"
    );
    let log = d.log_text();
    assert!(!log.contains(STAGING_KEY) && !log.contains(PRODUCTION_KEY));
}

#[test]
fn one_daemon_a_refused_key_stalls_its_target_only_until_the_key_file_is_rotated() {
    let t = Two::new();
    std::fs::write(t.path("production-key"), "sk_revoked\n").unwrap();
    let deadline = std::time::Duration::from_secs(30);
    let d = daemon_of(&t, &[], &[]);

    crate::support::wait_until(deadline, "production to stall", || {
        let status = d.status();
        let production = section(&status, "production");
        (condition(&production, "Stalled") == "True"
            && condition(&section(&status, "staging"), "Ready") == "True")
            .then_some(status)
    });
    // The daemon is up, its probes answer; readiness asks for every target.
    assert_eq!(d.get("/healthz").0, 200);
    let (code, body) = d.get("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("target production: stalled"), "{body}");
    assert!(!body.contains("target staging"), "{body}");
    let status = d.status();
    assert_eq!(condition(&status, "Stalled"), "True", "{status:#}");
    assert_eq!(live(&t.staging, "A"), Some(1));
    assert!(
        t.production.prompts().is_empty(),
        "the refused key sent nothing"
    );

    // Staging keeps syncing.
    t.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    t.repo.commit("Edit A");
    crate::support::wait_until(deadline, "staging to run HEAD", || {
        (live(&t.staging, "A") == Some(2)).then_some(())
    });
    assert_eq!(
        condition(&section(&d.status(), "production"), "Stalled"),
        "True"
    );

    // The key file is rotated (written aside, renamed over): production recovers
    // without a restart.
    std::fs::write(t.path("production-key.new"), format!("{PRODUCTION_KEY}\n")).unwrap();
    std::fs::rename(t.path("production-key.new"), t.path("production-key")).unwrap();
    crate::support::wait_until(deadline, "production to recover", || {
        (versions(&t.production, "A") == 1).then_some(())
    });
    d.wait_ready(deadline);
    let production = section(&d.status(), "production");
    assert_eq!(condition(&production, "Stalled"), "False", "{production:#}");
    let log = d.log_text();
    assert!(!log.contains(STAGING_KEY) && !log.contains(PRODUCTION_KEY));
}

#[test]
fn watch_ready_any_is_ready_while_one_target_is_and_target_names_the_ones_to_run() {
    let t = Two::new();
    std::fs::write(t.path("production-key"), "sk_revoked\n").unwrap();
    let deadline = std::time::Duration::from_secs(30);
    let d = daemon_of(&t, &[], &[("PROMPTSYNC_WATCH__READY", "any")]);
    d.wait_ready(deadline);
    let status = d.status();
    assert_eq!(
        condition(&section(&status, "production"), "Stalled"),
        "True"
    );
    assert_eq!(condition(&status, "Ready"), "True", "{status:#}");

    // `--target` names the targets of the daemon: one, or several in one daemon
    // (whose `--once` fails when one of them does).
    t.run(&["watch", "--once", "--target", "staging"], 0);
    let (_, stderr) = texts(&t.run(
        &[
            "watch",
            "--once",
            "--target",
            "staging",
            "--target",
            "production",
        ],
        1,
    ));
    assert!(
        stderr.contains("pass finished") && stderr.contains("pass failed"),
        "staging's pass ran to its end, production's failed:\n{stderr}"
    );
    assert!(!stderr.contains("sk_revoked"), "{stderr}");
    // The local emulator is one account: it runs with one target.
    let output = t.cmd(&["watch", "--once", "--emulator"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("--emulator is one local account: pick one target with --target NAME"),
        "{stderr}"
    );
}

#[test]
fn a_daemon_per_target_keeps_syncing_while_the_other_targets_key_is_refused() {
    let t = Two::new();
    let rec = crate::support::recorder::Recorder::start();
    std::fs::write(
        t.path("token"),
        format!("{}\n", crate::support::recorder::TOKEN),
    )
    .unwrap();
    t.config(&format!(
        "\n[notify.github]\nrepository = \"acme/prompts\"\napi_url = \"{}\"\ntoken_file = \"{}\"\n",
        rec.url(),
        t.path("token").display()
    ));
    std::fs::write(t.path("production-key"), "sk_revoked\n").unwrap();
    let deadline = std::time::Duration::from_secs(30);

    let staging = daemon(&t, "staging", &[]);
    let production = daemon(&t, "production", &[]);
    staging.wait_ready(deadline);
    let pass = production.wait_passes(1, deadline);
    assert_eq!(pass["outcome"], "stalled", "{pass}");
    assert_eq!(production.get("/readyz").0, 503);
    assert_eq!(live(&t.staging, "A"), Some(1));

    // main moves on: staging follows, its status context names it.
    t.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    let head = t.repo.commit("Edit A");
    crate::support::wait_until(deadline, "staging to run HEAD", || {
        (live(&t.staging, "A") == Some(2)).then_some(())
    });
    crate::support::wait_until(deadline, "the staging status on HEAD", || {
        rec.requests_to(&format!("/repos/acme/prompts/statuses/{head}"))
            .iter()
            .any(|r| r.json()["context"] == "promptsync/staging" && r.json()["state"] == "success")
            .then_some(())
    });
    let status = staging.status();
    assert_eq!(status["target"], "staging", "{status:#}");
    let metrics = staging.get("/metrics").1;
    assert!(
        metrics.contains("promptsync_reconcile_total{target=\"staging\","),
        "{metrics}"
    );
    assert!(
        t.production.prompts().is_empty(),
        "the refused key sent nothing"
    );
    assert_eq!(production.status()["target"], "production");
    for daemon in [&staging, &production] {
        let log = daemon.log_text();
        assert!(!log.contains(STAGING_KEY) && !log.contains(PRODUCTION_KEY));
    }
}

#[test]
fn plan_comments_once_per_target_and_sync_posts_each_targets_status() {
    let t = Two::new();
    let rec = crate::support::recorder::Recorder::start();
    let token = crate::support::recorder::TOKEN;
    std::fs::write(t.path("token"), format!("{token}\n")).unwrap();
    t.config(&format!(
        "\n[notify]\nretry_max_elapsed = \"5s\"\n\n[notify.github]\nrepository = \"acme/prompts\"\napi_url = \"{}\"\ntoken_file = \"{}\"\n",
        rec.url(),
        t.path("token").display()
    ));
    std::fs::write(
        t.path("event.json"),
        r#"{"action": "synchronize", "number": 7, "pull_request": {"number": 7}}"#,
    )
    .unwrap();
    let event = t.path("event.json").display().to_string();
    let plan = |code| {
        let mut cmd = t.cmd(&["plan", "--comment"]);
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_REPOSITORY", "acme/prompts");
        let output = cmd.output().unwrap();
        assert_eq!(output.status.code(), Some(code), "{:?}", texts(&output));
    };
    plan(0);
    let comments = rec.comments("github/acme/prompts/7");
    let markers: Vec<&str> = comments
        .iter()
        .map(|(_, body)| body.lines().next().unwrap_or_default())
        .collect();
    assert_eq!(
        markers,
        [
            "<!-- promptsync:plan target=production -->",
            "<!-- promptsync:plan target=staging -->"
        ],
        "one comment per target"
    );
    plan(0);
    assert_eq!(
        rec.comments("github/acme/prompts/7").len(),
        2,
        "edited in place, not added"
    );

    let head = t.repo.head();
    t.run(&["sync"], 0);
    let mut contexts: Vec<(String, String)> = rec
        .requests_to(&format!("/repos/acme/prompts/statuses/{head}"))
        .iter()
        .map(|r| {
            let json = r.json();
            (
                json["context"].as_str().unwrap().to_owned(),
                json["state"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(_, state)| state != "pending")
        .collect();
    contexts.sort();
    assert_eq!(
        contexts,
        [
            ("promptsync/production".to_owned(), "success".to_owned()),
            ("promptsync/staging".to_owned(), "success".to_owned()),
            ("promptsync/staging/deploy".to_owned(), "success".to_owned()),
        ],
        "staging made HEAD live: its deploy status too"
    );
}

#[test]
fn the_github_job_summary_has_a_part_per_target() {
    let t = Two::new();
    let summary = t.path("summary.md");
    let mut cmd = t.cmd(&["sync"]);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary);
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{:?}", texts(&output));
    let text = std::fs::read_to_string(&summary).unwrap();
    for target in ["production", "staging"] {
        assert!(
            text.contains(&format!(
                "### promptsync sync: target <code>{target}</code>"
            )),
            "{text}"
        );
    }
}
