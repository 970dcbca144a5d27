//! examples/systemd/: each unit's ExecStart= is run with the real binary, with the
//! unit's Environment= and its credentials (LoadCredential= becomes a file in a temp
//! credentials directory, `%d`; CacheDirectory= a temp directory, `%C`): the service
//! fetches its repository from a smart-HTTP server on loopback (its URL in place of the
//! example's, the test key as the git token); the timer's oneshot reads /srv/prompts
//! mapped to a test repository.
//! `.ci/run` has `systemd-analyze verify` read the same files.

use std::path::Path;

use super::{assert_settings_known, defaults, repo_with_a_prompt, seconds, shipped, text};
use std::time::Duration;

use crate::support::daemon::Daemon;
use crate::support::emulator::TestEmulator;
use crate::support::git::TestRepo;
use crate::support::githttp::GitHttp;
use crate::support::scenario::{KEY, texts};
use crate::support::{promptsync, promptsync_command, wait_until};

/// The repository the units name.
const REPO: &str = "/srv/prompts";

/// A unit file: each `[Section]` with its `Key=value` lines, in order (a key may
/// repeat, like Environment=).
struct Unit(Vec<(String, String, String)>);

impl Unit {
    fn read(name: &str) -> Unit {
        let mut section = String::new();
        let mut entries = Vec::new();
        for line in shipped(&format!("examples/systemd/{name}")).lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{name}: not Key=value: {line}"));
            entries.push((section.clone(), key.to_owned(), value.to_owned()));
        }
        Unit(entries)
    }

    fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    fn one(&self, section: &str, key: &str) -> &str {
        match self.all(section, key).as_slice() {
            [value] => value,
            other => panic!("[{section}] {key}= is set {} times", other.len()),
        }
    }

    /// ExecStart= as words, the program first.
    fn exec_start(&self) -> Vec<String> {
        let words: Vec<String> = self
            .one("Service", "ExecStart")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            words[0], "/usr/local/bin/promptsync",
            "the README installs it there"
        );
        words
    }

    /// Environment= as pairs, `%d` (the credentials directory) replaced by `creds`,
    /// `%C` (the root of cache directories) by `creds/cache`.
    fn environment(&self, creds: &Path) -> Vec<(String, String)> {
        let cache = text(&creds.join("cache"));
        self.all("Service", "Environment")
            .into_iter()
            .map(|assignment| {
                assert!(
                    !assignment.contains('"'),
                    "quoted assignments are not read here"
                );
                let (name, value) = assignment.split_once('=').unwrap();
                let value = value.replace("%d", &text(creds)).replace("%C", &cache);
                (name.to_owned(), value)
            })
            .collect()
    }

    /// A credentials directory as systemd makes it from LoadCredential=, each
    /// credential file holding the test key.
    fn credentials(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for credential in self.all("Service", "LoadCredential") {
            let (name, source) = credential.split_once(':').unwrap();
            assert!(source.starts_with("/etc/promptsync/"), "{source}");
            std::fs::write(dir.path().join(name), format!("{KEY}\n")).unwrap();
        }
        dir
    }
}

/// The unit's command line, with the repository path mapped to `repo`.
fn command_line(unit: &Unit, repo: &TestRepo) -> Vec<String> {
    assert_eq!(unit.one("Service", "WorkingDirectory"), REPO);
    unit.exec_start()[1..]
        .iter()
        .map(|word| word.replace(REPO, &text(repo.path())))
        .collect()
}

/// Run `args` as the unit runs them; returns stdout and stderr.
fn run(unit: &Unit, args: &[String], repo: &TestRepo, emu: &TestEmulator) -> (String, String) {
    let creds = unit.credentials();
    let output = promptsync()
        .current_dir(repo.path())
        .args(args)
        .envs(unit.environment(creds.path()))
        .env("RESPAN_BASE_URL", emu.base_url())
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{args:?}:\n{stdout}{stderr}");
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the key leaked"
    );
    (stdout, stderr)
}

fn check_hardening(unit: &Unit) {
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("User", "promptsync"),
    ] {
        assert_eq!(unit.one("Service", key), value, "{key}=");
    }
    assert!(
        unit.all("Service", "ReadWritePaths").is_empty(),
        "promptsync writes nothing"
    );
    let creds = unit.credentials();
    let env = unit.environment(creds.path());
    assert!(
        env.iter()
            .any(|(name, value)| name == "PROMPTSYNC_API__API_KEY_FILE"
                && Path::new(value).is_file()),
        "the key comes from LoadCredential=: {env:?}"
    );
    assert_settings_known(&env, "the unit");
}

#[test]
fn the_service_runs_watch_on_a_remote_source_and_stops_within_its_timeout() {
    let unit = Unit::read("promptsync.service");
    check_hardening(&unit);
    let args = unit.exec_start()[1..].to_vec();
    assert_eq!(args, ["watch"], "everything else is a setting");
    let help = promptsync().args(&args).arg("--help").output().unwrap();
    assert!(help.status.success(), "{}", texts(&help).1);
    assert!(
        unit.all("Service", "WorkingDirectory").is_empty(),
        "no clone to run in"
    );
    assert_eq!(unit.one("Service", "CacheDirectory"), "promptsync");

    let stop = seconds(unit.one("Service", "TimeoutStopSec"));
    let shutdown = defaults().watch.shutdown_timeout.as_secs();
    assert!(
        stop > shutdown,
        "TimeoutStopSec ({stop}s) above watch.shutdown_timeout ({shutdown}s)"
    );
    assert_eq!(unit.one("Service", "Restart"), "on-failure");
    assert_eq!(unit.one("Service", "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert!(
        unit.environment(Path::new("/run/credentials")).contains(&(
            "PROMPTSYNC_WATCH__LISTEN".to_owned(),
            "127.0.0.1:8080".to_owned()
        )),
        "probes on loopback, written out: no door to the network"
    );

    // The daemon as the unit starts it, its repository served on loopback with the
    // token from the credential; a commit and a tag pushed after the start sync with
    // nothing else running (no pull timer).
    let origin = repo_with_a_prompt();
    let name = origin
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let server = GitHttp::start(origin.path().parent().unwrap());
    server.require_token(Some(("git", KEY)));
    let creds = unit.credentials();
    let env: Vec<(String, String)> = unit
        .environment(creds.path())
        .into_iter()
        .map(|(key, value)| match key.as_str() {
            "PROMPTSYNC_SOURCE__URL" => (key, server.url(&name)),
            // The example's listen address, on a free port.
            "PROMPTSYNC_WATCH__LISTEN" => (key, "127.0.0.1:0".to_owned()),
            _ => (key, value),
        })
        .collect();
    assert!(
        env.iter().any(
            |(key, value)| key == "PROMPTSYNC_SOURCE__TOKEN_FILE" && Path::new(value).is_file()
        ),
        "the token comes from LoadCredential=: {env:?}"
    );
    let emu = TestEmulator::start();
    let work = tempfile::tempdir().unwrap();
    let mut command = promptsync_command();
    command
        .current_dir(work.path())
        .args(&args)
        .envs(env)
        // Not the example's minute: this test waits for the look.
        .env("PROMPTSYNC_SOURCE__INTERVAL", "1s")
        .env("RESPAN_BASE_URL", emu.base_url());
    let daemon = Daemon::attach(command);
    daemon.wait_ready(Duration::from_secs(30));
    assert_eq!(emu.prompts().len(), 1);
    origin.write(
        "prompts/a.prompt.yaml",
        &crate::support::scenario::prompt("A", "second"),
    );
    origin.commit("second");
    origin.tag("v2");
    wait_until(Duration::from_secs(30), "the commit and its tag", || {
        let id = emu.prompts()[0]["id"].as_str()?.to_owned();
        let prompt = emu.get(&format!("/api/prompts/{id}/"));
        (prompt["live_version"]["version"] == 2).then_some(())
    });
    assert!(!daemon.log_text().contains(KEY), "the key leaked");
}

#[test]
fn the_timer_s_oneshot_service_syncs_and_deploys_the_release_tag() {
    let unit = Unit::read("promptsync-sync.service");
    check_hardening(&unit);
    assert_eq!(unit.one("Service", "Type"), "oneshot");
    let timer = Unit::read("promptsync-sync.timer");
    assert!(!timer.one("Timer", "OnCalendar").is_empty());
    assert_eq!(timer.one("Install", "WantedBy"), "timers.target");
    assert!(
        timer.all("Timer", "Unit").is_empty(),
        "the timer starts promptsync-sync.service"
    );

    let repo = repo_with_a_prompt();
    repo.tag("v1.0.0");
    let emu = TestEmulator::start();
    let args = command_line(&unit, &repo);
    assert_eq!(args[0], "--sync");
    let (stdout, _) = run(&unit, &args, &repo, &emu);
    assert!(stdout.contains("Synced commit"), "{stdout}");
    let prompts = emu.prompts();
    assert_eq!(prompts.len(), 1);
    let id = prompts[0]["id"].as_str().unwrap();
    assert_eq!(
        emu.get(&format!("/api/prompts/{id}/"))["live_version"]["version"],
        1,
        "v1.0.0 deployed"
    );
    // Again, as the next timer run: nothing to do.
    let (stdout, _) = run(&unit, &args, &repo, &emu);
    assert!(
        stdout.contains("0 created, 0 updated, 1 unchanged"),
        "{stdout}"
    );
}
