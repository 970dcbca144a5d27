//! Failures the daemon lives through: a bad commit (not a stalled daemon), an API
//! outage (backoff, liveness unaffected, convergence when it ends), a refused key
//! (stalled until the key changes) and its rotation through an atomically swapped
//! secret directory, as Kubernetes mounts secrets.

use std::path::Path;

use serde_json::json;

use super::{DEADLINE, one_prompt, wait_for_text};
use crate::support::emulator::{TEST_KEY, TestEmulator};
use crate::support::scenario::{Scenario, prompt};
use crate::support::wait_until;

#[test]
fn a_bad_commit_keeps_the_daemon_ready_and_the_fix_syncs() {
    let s = one_prompt();
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    s.repo.write(
        "prompts/a.prompt.yaml",
        "name: A\nmodel: gpt-4o\nmessages: []\n",
    );
    let bad = s.repo.commit("Break A");
    let pass = wait_until(DEADLINE, "the bad commit's pass", || {
        daemon
            .passes()
            .into_iter()
            .find(|p| p["revision"] == bad.as_str())
    });
    assert_eq!(pass["outcome"], "partial", "{pass}");
    assert_eq!(pass["invalid_files"], 1, "{pass}");
    assert!(
        daemon
            .log_text()
            .contains("`messages` is empty; it needs at least one entry"),
        "the finding is logged:\n{}",
        daemon.log_text()
    );
    assert_eq!(
        daemon.get("/readyz").0,
        200,
        "a bad file is not a stalled daemon"
    );
    let status = daemon.status();
    let ready = &status["conditions"][0];
    assert_eq!(
        (ready["type"].as_str(), ready["status"].as_str()),
        (Some("Ready"), Some("False"))
    );

    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "fixed"));
    s.repo.commit("Fix A");
    wait_for_text(&s, "A", "fixed");
    wait_until(DEADLINE, "Ready to be true again", || {
        (daemon.status()["conditions"][0]["status"] == "True").then_some(())
    });
}

#[test]
fn an_outage_backs_off_keeps_liveness_and_converges_when_it_ends() {
    let s = one_prompt();
    let daemon = s.watch_with(&[], &[("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "200ms")]);
    daemon.wait_ready(DEADLINE);
    s.emu
        .inject(json!({"kind": "status", "status": 503, "times": 100000}));
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "during the outage"));
    s.repo.commit("A during an outage");
    wait_until(DEADLINE, "two failed passes (a retry)", || {
        let failed = daemon
            .passes()
            .into_iter()
            .filter(|p| p["outcome"] == "transient")
            .count();
        (failed >= 2).then_some(())
    });
    let retries: Vec<_> = daemon
        .passes()
        .into_iter()
        .filter(|p| p["outcome"] == "transient")
        .map(|p| p["retry_in_ms"].as_u64().unwrap())
        .collect();
    assert!(retries[0] >= 375 && retries[0] <= 750, "{retries:?}");
    assert!(
        retries[1] >= 750 && retries[1] <= 1500,
        "the backoff grows: {retries:?}"
    );
    assert_eq!(
        daemon.get("/healthz").0,
        200,
        "an outage never fails liveness"
    );
    assert_eq!(
        daemon.get("/readyz").0,
        200,
        "nor readiness, after a first sync"
    );
    let status = daemon.status();
    assert_eq!(status["conditions"][1]["reason"], "Backoff", "{status:#}");
    assert_eq!(status["passes"][0]["outcome"], "transient");

    let reply = s.emu.http().admin("DELETE", "/_emulator/faults", None);
    assert_eq!(reply.status, 204);
    wait_for_text(&s, "A", "during the outage");
    daemon.wait_pass(DEADLINE, "a successful retry", |p| {
        p["trigger"] == "retry" && p["outcome"] == "success"
    });
}

/// A secret volume as the kubelet writes it: `api-key -> ..data/api-key`,
/// `..data -> ..<stamp>`; an update writes a new stamped dir, points `..data_tmp` at it
/// and renames that over `..data`, then removes the old dir.
fn write_secret(dir: &Path, stamp: &str, key: &str) {
    let data = dir.join(format!("..{stamp}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("api-key"), format!("{key}\n")).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{stamp}"), &tmp).unwrap();
    let old = std::fs::read_link(dir.join("..data")).ok();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    if !dir.join("api-key").exists() {
        std::os::unix::fs::symlink("..data/api-key", dir.join("api-key")).unwrap();
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

#[test]
fn a_refused_key_stalls_until_the_secret_is_rotated_without_a_restart() {
    let s = Scenario::with(TestEmulator::start_with(
        promptsync_emulator::EmulatorConfig {
            api_keys: vec!["sk_rotated_key".into(), TEST_KEY.into()],
            ..Default::default()
        },
    ));
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "rotated"));
    s.repo.commit("Add A");
    let secrets = tempfile::tempdir().unwrap();
    write_secret(secrets.path(), "2026_12_01_00_00_00.1", "sk_revoked_key");
    let mut command = s.watch_command(&[]);
    command.env_remove("RESPAN_API_KEY").env(
        "PROMPTSYNC_API__API_KEY_FILE",
        secrets.path().join("api-key"),
    );
    let mut daemon = crate::support::daemon::Daemon::spawn(command);
    let pass = daemon.wait_passes(1, DEADLINE);
    assert_eq!(pass["outcome"], "stalled", "{pass}");
    let (code, body) = daemon.get("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("stalled"), "{body}");
    assert_eq!(daemon.status()["conditions"][2]["status"], "True");

    write_secret(secrets.path(), "2026_12_01_01_00_00.2", "sk_rotated_key");
    wait_for_text(&s, "A", "rotated");
    daemon.wait_ready(DEADLINE);
    daemon.wait_pass(DEADLINE, "the pass of the new key", |p| {
        p["trigger"] == "key_file" && p["outcome"] == "success"
    });
    assert!(daemon.running(), "no restart");
    for key in ["sk_revoked_key", "sk_rotated_key"] {
        assert!(
            !daemon.log_text().contains(key),
            "a key leaked into the log"
        );
        assert!(!daemon.status().to_string().contains(key));
        assert!(!daemon.get("/metrics").1.contains(key));
    }
}

#[test]
fn a_bad_configuration_at_reload_stalls_and_its_fix_resumes() {
    let s = one_prompt();
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    s.repo
        .write("promptsync.toml", "[api]\ntimeout = \"soon\"\n");
    wait_until(DEADLINE, "the stall on the bad configuration", || {
        (daemon.get("/readyz").0 == 503).then_some(())
    });
    let status = daemon.status();
    assert_eq!(
        status["conditions"][2]["reason"], "InvalidConfiguration",
        "{status:#}"
    );
    assert!(
        status["conditions"][2]["message"]
            .as_str()
            .unwrap()
            .contains("api.timeout"),
        "{status:#}"
    );
    s.repo
        .write("promptsync.toml", "[api]\ntimeout = \"20s\"\n");
    daemon.wait_ready(DEADLINE);
}
