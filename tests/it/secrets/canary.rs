//! One canary key, planted wherever an attacker could put it, and every output channel
//! grepped for it: a committed `promptsync.toml` linked to `/proc/self/environ` or to
//! the key file; prompt and content files linked to them, or climbing out by `..`; a
//! server that echoes the key in prompt names, descriptions and messages (the emulator)
//! or in its error bodies and redirects (a hostile server of the suite's own). Every
//! command runs with `GITHUB_ACTIONS=true` and a job summary file, and the daemon
//! serves its probes; stdout, stderr, the job summary, the files `pull` writes, the
//! daemon's log and every probe body must never hold the canary. A second secret of
//! the runner's environment that promptsync does not know (so no redactor could mask
//! it) must not show either: only the reader that never leaves the repository keeps
//! it in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::echo::{Echo, EchoServer};
use crate::support::daemon::Daemon;
use crate::support::emulator::TestEmulator;
use crate::support::git::TestRepo;
use crate::support::promptsync_command;
use crate::support::scenario::prompt;

const CANARY: &str = "sk_live_CANARY_5e1f0a9c3b7d";
/// A secret of the runner's environment that promptsync knows nothing about.
const NEIGHBOUR: &str = "ghp_NeighbourToken_2b8d6f";
const REDACTED: &str = "[redacted]";

/// Every command a CI job or a person runs against a repository.
const COMMANDS: &[&[&str]] = &[
    &["validate"],
    &["validate", "--output", "json"],
    &["plan"],
    &["plan", "--output", "json"],
    &["sync"],
    &["sync", "--output", "json"],
    &["status"],
    &["status", "--output", "json"],
    &["pull", "--all"],
];

/// The canary in a key file outside every repository, as a secret mount holds it.
struct KeyFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl KeyFile {
    fn new() -> KeyFile {
        let dir = tempfile::tempdir().unwrap();
        let path = std::fs::canonicalize(dir.path()).unwrap().join("api-key");
        std::fs::write(&path, format!("{CANARY}\n")).unwrap();
        KeyFile { _dir: dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

/// What one run wrote, channel by channel.
struct Run {
    what: String,
    code: Option<i32>,
    channels: Vec<(String, String)>,
}

impl Run {
    /// Every channel, as one text.
    fn all(&self) -> String {
        self.channels
            .iter()
            .map(|(name, text)| format!("--- {name}\n{text}\n"))
            .collect()
    }

    fn channel(&self, name: &str) -> &str {
        self.channels
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, text)| text.as_str())
    }

    /// No channel holds either secret.
    fn assert_clean(&self) -> &Self {
        for (name, text) in &self.channels {
            for secret in [CANARY, NEIGHBOUR] {
                assert!(
                    !text.contains(secret),
                    "{}: {secret} shows on {name}:\n{text}",
                    self.what
                );
            }
        }
        self
    }
}

/// `promptsync ARGS` in `repo` with the canary as the key, against `base_url`, as a
/// GitHub Actions job runs it.
fn run(repo: &TestRepo, base_url: &str, args: &[&str]) -> Run {
    let summary_dir = tempfile::tempdir().unwrap();
    let summary = summary_dir.path().join("step-summary.md");
    let output = promptsync_command()
        .current_dir(repo.path())
        .env("RESPAN_API_KEY", CANARY)
        .env("NEIGHBOUR_TOKEN", NEIGHBOUR)
        .env("RESPAN_BASE_URL", base_url)
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "1s")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_WORKSPACE", repo.path())
        .args(args)
        .output()
        .unwrap();
    let mut channels = vec![
        (
            "stdout".to_owned(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ),
        (
            "stderr".to_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        (
            "job summary".to_owned(),
            std::fs::read_to_string(&summary).unwrap_or_default(),
        ),
    ];
    channels.extend(regular_files(repo.path()));
    Run {
        what: format!("promptsync {}", args.join(" ")),
        code: output.status.code(),
        channels,
    }
}

/// Every regular file of the work tree (outside `.git`, links not followed), as
/// `file PATH` channels: what `pull` may have written.
fn regular_files(root: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if entry.file_name() == ".git" {
                continue;
            }
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                let text =
                    String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned();
                found.push((format!("file {}", entry.path().display()), text));
            }
        }
    }
    found
}

/// A repository that links to the key file and to the process environment from every
/// place a repository can name a file: prompt files, content files (by a link, and by
/// `..`s), beside a valid prompt whose remote copy the server filled with the canary.
fn planted_repo(key: &KeyFile) -> TestRepo {
    let repo = TestRepo::new();
    let root = std::fs::canonicalize(repo.path()).unwrap();
    let climb = format!(
        "{}{}",
        "../".repeat(root.components().count()),
        key.path().trim_start_matches('/')
    );
    let with_content = |name: &str, content_file: &str| {
        format!(
            "name: {name}\nmodel: gpt-4o\nmessages:\n  - role: system\n    content_file: {content_file}\n"
        )
    };
    repo.write("linked.prompt.yaml", &with_content("Linked", "text/key.md"))
        .write("climbs.prompt.yaml", &with_content("Climbs", &climb))
        .write(
            "environ.prompt.yaml",
            &with_content("Environ", "text/environ.md"),
        )
        .write("echoed.prompt.yaml", &prompt("Echoed", "from git"))
        .symlink("text/key.md", key.path())
        .symlink("text/environ.md", "/proc/self/environ")
        .symlink("key.prompt.yaml", key.path())
        .symlink("proc.prompt.yaml", "/proc/self/environ")
        .symlink("probe.prompt.yaml", "/nonexistent/promptsync-probe");
    repo.commit("Links out of the repository");
    repo
}

/// An emulator whose prompts carry the canary: a prompt the repository names, with
/// the canary in its description and message, and one it does not name, with the
/// canary in its name (as a server that echoes the key would make them).
fn planted_emulator() -> TestEmulator {
    let emu = TestEmulator::start();
    let version = |text: String| json!({"model": "gpt-4o", "messages": [{"role": "system", "content": text}]});
    for name in ["Echoed".to_owned(), format!("Leaky {CANARY}")] {
        let (status, body) = emu.post(
            "/api/prompts/",
            json!({"name": name, "description": format!("echo of {CANARY}")}),
        );
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        emu.create_version(&id, version(format!("echo of {CANARY}")));
    }
    emu
}

#[test]
fn files_linked_out_of_the_repository_are_findings_and_never_read() {
    let key = KeyFile::new();
    let repo = planted_repo(&key);
    let emu = planted_emulator();
    let checked = run(&repo, &emu.base_url(), &["validate"]);
    checked.assert_clean();
    assert_eq!(checked.code, Some(1), "{}", checked.all());
    let stdout = checked.channel("stdout");
    for expected in [
        "the prompt file is a symbolic link that leads outside the repository\n  --> key.prompt.yaml",
        // Whether a file exists outside is not told either.
        "the prompt file is a symbolic link that leads outside the repository\n  --> probe.prompt.yaml",
        "the prompt file is a symbolic link that leads outside the repository\n  --> proc.prompt.yaml",
        "content file `text/key.md` leads outside the repository through the symbolic link `text/key.md`",
        "content file `text/environ.md` leads outside the repository through the symbolic link `text/environ.md`",
        "is outside the repository",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The findings are annotations too; neither holds a byte of the targets.
    assert!(stdout.contains("::error file=key.prompt.yaml"), "{stdout}");

    // A commit's symbolic links are resolved inside its tree just the same.
    let planned = run(&repo, &emu.base_url(), &["plan", "--output", "json"]);
    planned.assert_clean();
    let report: serde_json::Value = serde_json::from_str(planned.channel("stdout")).unwrap();
    let messages: Vec<String> = report["invalid_files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|file| file["diagnostics"].as_array().unwrap().clone())
        .map(|d| {
            format!(
                "{}: {}",
                d["path"].as_str().unwrap(),
                d["message"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "key.prompt.yaml: the prompt file is a symbolic link that leads outside the repository",
        "proc.prompt.yaml: the prompt file is a symbolic link that leads outside the repository",
        "probe.prompt.yaml: the prompt file is a symbolic link that leads outside the repository",
        "linked.prompt.yaml: content file `text/key.md` leads outside the repository through the symbolic link `text/key.md`",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "missing {expected:?} in {messages:#?}"
        );
    }
}

#[test]
fn a_config_file_linked_to_the_environment_or_the_key_is_refused_unread() {
    let key = KeyFile::new();
    let emu = TestEmulator::start();
    for target in ["/proc/self/environ", key.path()] {
        let repo = TestRepo::new();
        repo.symlink("promptsync.toml", target)
            .write("a.prompt.yaml", &prompt("A", "a"));
        repo.commit("A configuration that is a link out");
        for args in COMMANDS {
            let run = run(&repo, &emu.base_url(), args);
            run.assert_clean();
            assert_eq!(run.code, Some(1), "{}\n{}", run.what, run.all());
            assert!(
                run.channel("stderr").contains(
                    "promptsync.toml leads outside the repository through the symbolic link \
                     `promptsync.toml`; promptsync reads a repository's files only inside it"
                ),
                "{target}: {}\n{}",
                run.what,
                run.all()
            );
        }
    }
}

#[test]
fn a_server_that_shows_the_key_in_names_and_contents_is_redacted_everywhere() {
    let key = KeyFile::new();
    let repo = planted_repo(&key);
    let emu = planted_emulator();
    for args in COMMANDS {
        let run = run(&repo, &emu.base_url(), args);
        run.assert_clean();
        let shown = !matches!(args[0], "validate");
        assert_eq!(
            shown,
            run.all().contains(REDACTED),
            "{}: the canary should show redacted where the server's text shows:\n{}",
            run.what,
            run.all()
        );
    }
    // `pull` writes no file that holds a secret, and says why.
    let run = run(
        &repo,
        &emu.base_url(),
        &["pull", "--all", "--output", "json"],
    );
    run.assert_clean();
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.channel("stdout")
            .contains("the remote prompt holds a secret promptsync holds (the API key); its file is not written"),
        "{}",
        run.all()
    );
    assert!(!repo.path().join("prompts").exists(), "{}", run.all());
}

/// The debug log of a sync whose account listing is read early: two pages (a
/// hundred more prompts), each reply 200 ms away so the files are read first; the
/// named prompt that holds the canary is read in full as its page arrives, and page 1
/// is read again with page 2. No channel holds the key.
#[test]
fn the_debug_log_of_a_listing_read_as_its_pages_arrive_shows_no_key() {
    let key = KeyFile::new();
    let repo = planted_repo(&key);
    let emu = planted_emulator();
    for i in 0..100 {
        emu.create_prompt(&format!("Filler {i:03}"));
    }
    emu.set_knobs(json!({"count_mode": "total", "latency": {"fixed_ms": 200}}));
    let run = run(&repo, &emu.base_url(), &["-v", "sync"]);
    run.assert_clean();
    let log = run.channel("stderr");
    for reached in [
        "listed prompts read in full as their page arrived",
        "page 1 again with the pages after it",
    ] {
        assert!(
            log.contains(reached),
            "{reached:?} not logged:\n{}",
            run.all()
        );
    }
}

#[test]
fn a_server_that_echoes_the_key_in_errors_and_redirects_is_redacted_everywhere() {
    let key = KeyFile::new();
    let repo = planted_repo(&key);
    for mode in [Echo::Rejects, Echo::Unauthorized, Echo::Redirects] {
        let server = EchoServer::start(mode);
        for args in COMMANDS.iter().filter(|args| args[0] != "validate") {
            let run = run(&repo, &server.base_url(), args);
            run.assert_clean();
            assert_eq!(run.code, Some(1), "{mode:?} {}\n{}", run.what, run.all());
            assert!(
                run.all().contains(REDACTED),
                "{mode:?} {}: the echo should show, redacted:\n{}",
                run.what,
                run.all()
            );
        }
        assert!(
            server
                .seen()
                .iter()
                .all(|seen| *seen == format!("Bearer {CANARY}")),
            "{:?}",
            server.seen()
        );
    }
}

/// `promptsync watch` in `repo` with the canary as the key, against `base_url`.
fn daemon(repo: &TestRepo, base_url: &str) -> Daemon {
    let mut command = promptsync_command();
    command
        .current_dir(repo.path())
        .env("RESPAN_API_KEY", CANARY)
        .env("NEIGHBOUR_TOKEN", NEIGHBOUR)
        .env("RESPAN_BASE_URL", base_url)
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "1s")
        .arg("watch");
    Daemon::spawn(command)
}

/// The daemon's log and every probe body, as channels.
fn probes(daemon: &Daemon) -> Run {
    let mut channels = vec![("log".to_owned(), daemon.log_text())];
    for path in ["/status", "/metrics", "/readyz", "/healthz"] {
        let (code, body) = daemon.get(path);
        channels.push((format!("GET {path} ({code})"), body));
    }
    Run {
        what: "promptsync watch".to_owned(),
        code: None,
        channels,
    }
}

#[test]
fn the_daemon_shows_the_key_on_no_channel() {
    let key = KeyFile::new();
    let repo = planted_repo(&key);
    let server = EchoServer::start(Echo::Rejects);
    let echoing = daemon(&repo, &server.base_url());
    echoing.wait_passes(1, Duration::from_secs(30));
    let run = probes(&echoing);
    run.assert_clean();
    assert!(
        run.channel("GET /status (200)").contains(REDACTED),
        "the status keeps the server's error, redacted:\n{}",
        run.all()
    );
    assert!(run.channel("log").contains(REDACTED), "{}", run.all());

    let emu = planted_emulator();
    let syncing = daemon(&repo, &emu.base_url());
    syncing.wait_passes(1, Duration::from_secs(30));
    let run = probes(&syncing);
    run.assert_clean();
    assert!(
        run.channel("GET /metrics (200)")
            .contains("promptsync_reconcile_total"),
        "{}",
        run.all()
    );
}

/// Notifications are an output channel too: a server that echoes the key in its errors
/// makes a failed pass whose webhook payload and commit status carry those errors; what
/// reaches the receivers is redacted (the webhook's signature still verifies).
#[test]
fn notifications_carry_the_key_to_no_receiver() {
    let key = KeyFile::new();
    let repo = planted_repo(&key);
    let server = EchoServer::start(Echo::Rejects);
    let rec = crate::support::recorder::Recorder::start();
    rec.verify_with("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("webhook-secret");
    std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
    let token = dir.path().join("github-token");
    std::fs::write(&token, format!("{}\n", crate::support::recorder::TOKEN)).unwrap();
    let config = dir.path().join("operator.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[notify.webhook]]
url = "{url}/hooks/canary"
events = ["pass.failed", "deploy.failed"]
format = "json"
secret_file = "{secret}"

[notify.github]
repository = "acme/prompts"
api_url = "{url}"
token_file = "{token}"
"#,
            url = rec.url(),
            secret = secret.display(),
            token = token.display(),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let run = run(&repo, &server.base_url(), &["sync", "--config", &config]);
    run.assert_clean();
    let requests = rec.requests();
    let hooks: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/hooks/"))
        .collect();
    let statuses: Vec<_> = requests
        .iter()
        .filter(|r| r.path.contains("/statuses/"))
        .collect();
    assert!(!hooks.is_empty(), "a webhook was sent: {requests:?}");
    assert!(!statuses.is_empty(), "a status was posted: {requests:?}");
    for r in hooks.iter().chain(&statuses) {
        let body = String::from_utf8_lossy(&r.body);
        assert!(!body.contains(CANARY), "{} carries the key: {body}", r.path);
    }
    assert!(
        hooks
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(REDACTED)),
        "the payload keeps the server's error, redacted: {hooks:?}"
    );
    assert!(
        hooks.iter().all(|r| r.verified == Some(true)),
        "the signature covers the redacted body"
    );
}
