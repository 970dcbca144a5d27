//! The real `promptsync emulator` binary: its printed address, flags, clean stop on
//! SIGTERM, persistence across restarts, and SIGKILL during state writes never
//! leaving an unreadable state file.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use promptsync_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::support::emulator::{EmulatorProcess, Http, TestEmulator};
use crate::support::wait_until;

fn state_arg(path: &Path) -> String {
    path.to_str().expect("utf-8 temp path").to_owned()
}

fn versions_of(http: &Http, id: &str) -> Vec<Value> {
    let reply = http
        .call("GET", &format!("/api/prompts/{id}/versions/?page_size=500"))
        .send();
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["results"].as_array().unwrap().clone()
}

fn create(http: &Http, path: &str, body: Value) -> Value {
    let reply = http.call("POST", path).json(body).send();
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()
}

#[test]
fn prints_its_address_and_stops_cleanly_on_sigterm() {
    let mut emu = EmulatorProcess::spawn(&[]);
    assert!(
        emu.base_url().starts_with("http://127.0.0.1:"),
        "{}",
        emu.base_url()
    );
    assert_eq!(emu.call("GET", "/api/prompts/summary/").send().status, 200);
    let status = emu.terminate();
    let stderr = emu.stderr();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("any Bearer key is accepted"),
        "says so at start: {stderr}"
    );

    let mut keyed = EmulatorProcess::spawn(&["--api-key", "sk_test_emulator"]);
    assert!(keyed.terminate().success());
    let stderr = keyed.stderr();
    assert!(!stderr.contains("any Bearer key"), "{stderr}");
    assert!(
        !stderr.contains("sk_test_emulator"),
        "the key is never logged: {stderr}"
    );
}

#[test]
fn flags_set_keys_knobs_faults_and_admin() {
    let emu = EmulatorProcess::spawn(&[
        "--api-key",
        "sk_test_emulator",
        "--knob",
        "commit_mode=bump",
        "--fault",
        r#"{"path": "/api/prompts/summary/", "kind": "status", "status": 503}"#,
        "--no-admin",
    ]);
    assert_eq!(emu.call("GET", "/api/prompts/summary/").send().status, 503);
    assert_eq!(emu.call("GET", "/api/prompts/summary/").send().status, 200);
    assert_eq!(
        emu.call("GET", "/api/prompts/summary/")
            .key(Some("other"))
            .send()
            .status,
        401
    );
    let id = create(emu.http(), "/api/prompts/", json!({"name": "p"}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create(
        emu.http(),
        &format!("/api/prompts/{id}/versions/"),
        json!({"messages": [{"role": "user", "content": "x"}]}),
    );
    create(
        emu.http(),
        &format!("/api/prompts/{id}/commits/"),
        json!({}),
    );
    assert_eq!(versions_of(emu.http(), &id).len(), 2, "commit_mode=bump");
    assert_eq!(
        emu.http().call("GET", "/_emulator/knobs").send().status,
        404
    );
}

#[test]
fn bad_flags_and_bad_state_files_fail_at_start_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let err = EmulatorProcess::try_spawn(&["--knob", "comit_mode=bump"])
        .err()
        .unwrap();
    assert!(err.contains("unknown knob `comit_mode`"), "{err}");

    let torn = dir.path().join("torn.json");
    std::fs::write(&torn, "{\"format\": \"promptsync-emul").unwrap();
    let err = EmulatorProcess::try_spawn(&["--state", &state_arg(&torn)])
        .err()
        .unwrap();
    assert!(
        err.contains("torn.json") && err.contains("move it away"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&torn).unwrap(),
        "{\"format\": \"promptsync-emul",
        "a bad file is never overwritten"
    );

    let nowhere = dir.path().join("missing-dir").join("state.json");
    let err = EmulatorProcess::try_spawn(&["--state", &state_arg(&nowhere)])
        .err()
        .unwrap();
    assert!(err.contains("directory exists"), "{err}");
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut first = EmulatorProcess::spawn(&["--state", &state_arg(&state)]);
    let http = first.http();
    let id = create(http, "/api/prompts/", json!({"name": "kept"}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for text in ["one", "two"] {
        create(
            http,
            &format!("/api/prompts/{id}/versions/"),
            json!({"messages": [{"role": "user", "content": text}]}),
        );
    }
    create(http, &format!("/api/prompts/{id}/commits/"), json!({}));
    let deployed = http
        .call("POST", &format!("/api/prompts/{id}/deployments/"))
        .json(json!({"version": 2}))
        .send();
    assert_eq!(deployed.status, 200);
    let before = http
        .call("GET", &format!("/api/prompts/{id}/"))
        .send()
        .json();
    assert!(first.terminate().success());

    let second = EmulatorProcess::spawn(&["--state", &state_arg(&state)]);
    let after = second
        .call("GET", &format!("/api/prompts/{id}/"))
        .send()
        .json();
    assert_eq!(after, before, "the same prompt, versions and live version");
    let next = create(
        second.http(),
        &format!("/api/prompts/{id}/versions/"),
        json!({"messages": [{"role": "user", "content": "three"}]}),
    );
    assert_eq!(next["version"], json!(3), "numbering resumes");
}

#[test]
fn in_process_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig {
        state_file: Some(dir.path().join("state.json")),
        ..EmulatorConfig::default()
    };
    let id = {
        let emu = TestEmulator::start_with(config.clone());
        let id = super::prompt_with_versions(&emu, "p", 2);
        super::commit(&emu, &id);
        id
    };
    let emu = TestEmulator::start_with(config);
    assert_eq!(
        super::states(&emu, &id),
        [(2, true, false), (1, true, false)]
    );
}

#[test]
fn deferred_writes_reach_the_file_soon_and_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let config = EmulatorConfig {
        state_file: Some(path.clone()),
        durable_writes: false,
        ..EmulatorConfig::default()
    };
    let (first, last) = {
        let emu = TestEmulator::start_with(config.clone());
        let first = emu.create_prompt("first");
        wait_until(Duration::from_secs(10), "the background save", || {
            std::fs::read_to_string(&path)
                .ok()?
                .contains(&first)
                .then_some(())
        });
        let last = super::prompt_with_versions(&emu, "last", 3);
        (first, last)
    };
    let emu = TestEmulator::start_with(config);
    assert_eq!(emu.prompts().len(), 2);
    assert_eq!(
        emu.get(&format!("/api/prompts/{first}/"))["name"],
        json!("first")
    );
    assert_eq!(
        emu.versions(&last).len(),
        3,
        "shutdown saved the newest changes"
    );
}

/// A state file of about 1 MB, so that every save takes a while.
fn big_state(path: &Path) -> String {
    let emu = TestEmulator::start();
    let filler = "x".repeat(50_000);
    let mut last = String::new();
    for n in 0..20 {
        last = emu.create_prompt(&format!("p{n}"));
        emu.create_version(
            &last,
            json!({"messages": [{"role": "system", "content": filler}]}),
        );
    }
    let state = emu.http().admin("GET", "/_emulator/state", None);
    assert_eq!(state.status, 200);
    std::fs::write(path, state.text).unwrap();
    last
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count()
}

#[test]
fn sigkill_while_writing_state_never_leaves_an_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let id = big_state(&state);
    let filler = "y".repeat(20_000);
    let mut acknowledged_total = 1;
    let mut torn_writes = 0;
    for round in 0..20 {
        let mut emu = EmulatorProcess::spawn(&["--state", &state_arg(&state)]);
        assert_eq!(
            temp_files(dir.path()),
            0,
            "round {round}: stale temp files are removed at start"
        );
        let versions = versions_of(emu.http(), &id).len();
        assert!(
            versions >= acknowledged_total,
            "round {round}: {versions} versions on disk, {acknowledged_total} acknowledged"
        );
        acknowledged_total = versions;

        // Write continuously from another thread, and kill the emulator: in even
        // rounds as soon as a save's temp file appears (mid-write), in odd rounds
        // after a few acknowledged writes (anywhere in the save cycle).
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = std::thread::spawn({
            let base = emu.base_url();
            let acknowledged = Arc::clone(&acknowledged);
            let stop = Arc::clone(&stop);
            let path = format!("/api/prompts/{id}/versions/");
            let body = json!({"messages": [{"role": "user", "content": filler}]});
            move || {
                let http = Http::new(&base);
                while !stop.load(Ordering::Relaxed) {
                    match http.call("POST", &path).json(body.clone()).try_send() {
                        Ok(reply) if reply.status == 201 => {
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => break,
                    }
                }
            }
        });
        if round % 2 == 0 {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while temp_files(dir.path()) == 0 {
                assert!(std::time::Instant::now() < deadline, "no save started");
            }
        } else {
            let target = 1 + round % 5;
            wait_until(Duration::from_secs(30), "acknowledged writes", || {
                (acknowledged.load(Ordering::SeqCst) >= target).then_some(())
            });
        }
        emu.kill();
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        acknowledged_total += acknowledged.load(Ordering::SeqCst);
        torn_writes += temp_files(dir.path()).min(1);

        let text = std::fs::read(&state).unwrap();
        let parsed: Value = serde_json::from_slice(&text)
            .unwrap_or_else(|e| panic!("round {round}: the state file is torn: {e}"));
        assert_eq!(parsed["format"], json!("promptsync-emulator-state"));
    }
    assert!(
        torn_writes > 0,
        "no kill landed during a save: the test proved nothing"
    );
    let emu = EmulatorProcess::spawn(&["--state", &state_arg(&state)]);
    assert!(versions_of(emu.http(), &id).len() >= acknowledged_total);
}

#[test]
fn a_device_or_a_fifo_as_state_fails_at_once_saying_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("state.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for (path, what) in [
        ("/dev/zero", "is a character device, not a regular file"),
        (
            fifo.to_str().unwrap(),
            "is a named pipe (FIFO), not a regular file",
        ),
        (
            dir.path().to_str().unwrap(),
            "is a directory, not a regular file",
        ),
    ] {
        let started = std::time::Instant::now();
        let err = EmulatorProcess::try_spawn(&["--state", path])
            .err()
            .unwrap();
        assert!(err.contains(what) && err.contains(path), "{path}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path}: no hang"
        );
    }
    assert!(
        !std::path::Path::new("/dev/zero.lock").exists(),
        "no lock file beside a device"
    );
}

#[test]
fn a_second_emulator_on_one_state_file_says_which_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut first = EmulatorProcess::spawn(&["--state", &state_arg(&state)]);
    let err = EmulatorProcess::try_spawn(&["--state", &state_arg(&state)])
        .err()
        .unwrap();
    assert!(err.contains("in use by another emulator"), "{err}");
    assert!(err.contains(&format!("pid {}", first.pid())), "{err}");
    assert!(err.contains(&first.base_url()), "{err}");
    // The first one is undisturbed, and once it stops the file is free.
    create(first.http(), "/api/prompts/", json!({"name": "still here"}));
    assert!(first.terminate().success());
    let second = EmulatorProcess::spawn(&["--state", &state_arg(&state)]);
    let listed = second
        .call("POST", "/api/prompts/list/")
        .json(json!({}))
        .send();
    assert_eq!(listed.json()["count"], 1, "{}", listed.text);
}
