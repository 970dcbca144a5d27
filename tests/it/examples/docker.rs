//! The Dockerfile, read as Docker reads it: its runtime stage's ENTRYPOINT + CMD, ENV
//! and WORKDIR are run as the container would run them (a repository at the working
//! directory), against the in-process emulator; the build stage's toolchain is CI's.
//! No container engine is needed: the binary under test stands in for the image's.

use serde_json::Value;

use super::{DEADLINE, LISTEN_PORT, defaults, repo_with_a_prompt, shipped};
use crate::support::daemon::Daemon;

/// One stage of a Dockerfile: its `FROM` and its instructions, in order.
#[derive(Debug)]
pub(super) struct Stage {
    pub(super) from: String,
    pub(super) instructions: Vec<(String, String)>,
}

impl Stage {
    /// The arguments of every `keyword` instruction.
    pub(super) fn all(&self, keyword: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, rest)| rest.as_str())
            .collect()
    }

    /// The arguments of the last `keyword` instruction (the one that counts).
    pub(super) fn last(&self, keyword: &str) -> &str {
        self.all(keyword)
            .pop()
            .unwrap_or_else(|| panic!("the stage FROM {} has no {keyword}", self.from))
    }

    /// An exec-form instruction (`["promptsync"]`) as its words. The shell form would
    /// run `/bin/sh -c` as PID 1, and SIGTERM would never reach promptsync.
    pub(super) fn exec_form(&self, keyword: &str) -> Vec<String> {
        let rest = self.last(keyword);
        serde_json::from_str(rest)
            .unwrap_or_else(|_| panic!("{keyword} {rest} is not in exec form (a JSON array)"))
    }

    /// `ENV` as name/value pairs (`ENV A=1 B=2` and the old `ENV A 1`).
    pub(super) fn env(&self) -> Vec<(String, String)> {
        let mut vars = Vec::new();
        for rest in self.all("ENV") {
            assert!(
                !rest.contains('"'),
                "quoted ENV values are not read here: {rest}"
            );
            if rest.contains('=') {
                for pair in rest.split_whitespace() {
                    let (name, value) = pair.split_once('=').unwrap();
                    vars.push((name.to_owned(), value.to_owned()));
                }
            } else {
                let (name, value) = rest.split_once(' ').unwrap();
                vars.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        vars
    }
}

/// The stages of the shipped Dockerfile: continuation lines joined, comments dropped.
pub(super) fn stages() -> Vec<Stage> {
    let text = shipped("Dockerfile");
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical.into_iter().filter(|l| !l.is_empty()) {
        let (keyword, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stages.push(Stage {
                from: rest.trim().to_owned(),
                instructions: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .expect("FROM comes first")
                .instructions
                .push((keyword, rest.trim().to_owned()));
        }
    }
    stages
}

/// The last stage: the image that runs.
pub(super) fn runtime() -> Stage {
    stages().pop().expect("a stage")
}

#[test]
fn the_image_runs_watch_as_the_git_sync_user_with_no_healthcheck() {
    let stage = runtime();
    assert_eq!(stage.exec_form("ENTRYPOINT"), ["promptsync"]);
    assert_eq!(stage.exec_form("CMD"), ["watch"]);
    assert_eq!(
        stage.last("USER"),
        "65533:65533",
        "kubernetes git-sync's uid and gid"
    );
    assert!(
        stage.all("HEALTHCHECK").is_empty(),
        "Kubernetes probes /healthz and /readyz itself"
    );
    assert_eq!(stage.last("EXPOSE"), LISTEN_PORT.to_string());
    // The default is loopback; the image opens the probe port on every interface,
    // explicitly, on the port it exposes.
    let listen = defaults().watch.listen;
    assert!(
        listen.ip().is_loopback(),
        "watch.listen's default: {listen}"
    );
    assert_eq!(listen.port(), LISTEN_PORT, "watch.listen's default port");
    assert!(
        stage.env().contains(&(
            "PROMPTSYNC_WATCH__LISTEN".to_owned(),
            format!("0.0.0.0:{LISTEN_PORT}")
        )),
        "{:?}",
        stage.env()
    );
    let copied = stage.last("COPY");
    assert!(
        copied.starts_with("--from=builder ") && copied.ends_with(" /usr/local/bin/promptsync"),
        "the binary is on PATH: {copied}"
    );
    let installed = stage.all("RUN").join("\n");
    for tool in ["build-essential", "gcc", "cargo", "pkg-config"] {
        assert!(
            !installed.contains(tool),
            "no build tools at run time: {tool}"
        );
    }
    assert!(
        installed.contains("ca-certificates"),
        "https needs the trust roots"
    );
    assert!(
        installed.contains("openssh-client"),
        "a remote source over ssh:// runs the system's ssh"
    );
}

#[test]
fn the_image_is_built_locked_with_ci_s_toolchain() {
    let stages = stages();
    let builder = stages
        .iter()
        .find(|s| s.from.ends_with(" AS builder"))
        .expect("a builder stage");
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&rustc.stdout);
    let minor: Vec<&str> = version
        .split_whitespace()
        .nth(1)
        .unwrap()
        .split('.')
        .take(2)
        .collect();
    let wanted = format!("rust:{}-", minor.join("."));
    assert!(
        builder.from.starts_with(&wanted),
        "the builder ({}) uses the toolchain CI tests with ({wanted}...)",
        builder.from
    );
    let build = builder.all("RUN").join("\n");
    assert!(build.contains("cargo build --release --locked"), "{build}");
}

/// `docker run IMAGE watch --emulator` in a repository mounted at the working
/// directory: ENTRYPOINT + CMD + `--emulator`, with the image's ENV. The probe address
/// is the one thing changed (port 0 instead of 8080, so parallel tests do not collide).
#[test]
fn the_image_s_command_line_serves_probes_and_stops_cleanly_on_sigterm() {
    let stage = runtime();
    let entrypoint = stage.exec_form("ENTRYPOINT");
    let mut command = crate::support::promptsync_command();
    command
        .args(&entrypoint[1..])
        .args(stage.exec_form("CMD"))
        .arg("--emulator")
        .envs(stage.env())
        .env("PROMPTSYNC_WATCH__LISTEN", "127.0.0.1:0");
    let repo = repo_with_a_prompt();
    command.current_dir(repo.path());
    let mut daemon = Daemon::attach(command);
    daemon.wait_ready(DEADLINE);
    assert_eq!(daemon.get("/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(daemon.get("/readyz"), (200, "ready\n".to_owned()));
    let (code, metrics) = daemon.get("/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("promptsync_reconcile_total"), "{metrics}");
    let status: Value = daemon.status();
    assert_eq!(status["last_applied_revision"], repo.head().as_str());

    daemon.signal("TERM");
    let exit = daemon.wait_exit(DEADLINE);
    assert_eq!(exit.code(), Some(0), "{}", daemon.log_text());
    assert!(
        daemon.logs().iter().any(|l| l["message"] == "stopped"),
        "{}",
        daemon.log_text()
    );
}

/// The files `cargo build --release --package promptsync` reads: the manifests, the
/// lock file, and everything under the source and configuration directories.
fn build_inputs() -> Vec<String> {
    fn walk(root: &std::path::Path, rel: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(root.join(rel)).unwrap() {
            let entry = entry.unwrap();
            let path = format!("{rel}/{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = ["Cargo.toml", "Cargo.lock", "emulator/Cargo.toml"]
        .map(str::to_owned)
        .to_vec();
    for dir in ["src", "emulator/src", "config"] {
        walk(root, dir, &mut files);
    }
    files
}

#[test]
fn the_build_context_keeps_everything_the_build_reads() {
    let builder = stages().into_iter().next().expect("the builder stage");
    assert_eq!(builder.all("COPY"), [". ."], "the whole (filtered) context");
    let mut set = globset::GlobSetBuilder::new();
    for pattern in shipped(".dockerignore").lines().map(str::trim) {
        if pattern.is_empty() || pattern.starts_with('#') {
            continue;
        }
        assert!(
            !pattern.starts_with('!'),
            "exceptions are not read here: {pattern}"
        );
        set.add(
            globset::GlobBuilder::new(pattern.trim_end_matches('/'))
                .literal_separator(true)
                .build()
                .unwrap(),
        );
    }
    let ignored = set.build().unwrap();
    for file in build_inputs() {
        // A pattern that matches a directory leaves out all of it.
        let mut prefix = String::new();
        for part in file.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            assert!(
                !ignored.is_match(&prefix),
                ".dockerignore leaves out {file}, which the build reads"
            );
        }
    }
}
