//! A remote source (`[source]`, `--source URL`) fetched by promptsync itself, against
//! real git servers on loopback: smart HTTP (`git http-backend` behind the suite's own
//! server, `http`) and OpenSSH (`ssh`). Every scenario ends with the emulator's state
//! checked (versions, live versions), not just an exit code.

mod daemon;
mod hooks;
mod http;
mod ssh;

use std::path::{Path, PathBuf};
use tempfile::TempDir;

use crate::support::daemon::Daemon;
use crate::support::githttp::GitHttp;
use crate::support::scenario::{KEY, Scenario, run_checked, texts};
use crate::support::{promptsync, promptsync_command};

/// A served origin repository, the emulator, and a directory to run promptsync in
/// (not a clone: promptsync fetches what it reads) with its cache.
pub(crate) struct Remote {
    pub scenario: Scenario,
    pub server: GitHttp,
    pub work: TempDir,
}

impl Remote {
    pub(crate) fn new() -> Remote {
        let scenario = Scenario::new();
        let root = scenario.repo.path().parent().unwrap().to_owned();
        Remote {
            server: GitHttp::start(&root),
            scenario,
            work: tempfile::Builder::new()
                .prefix("promptsync-it-remote-")
                .tempdir()
                .unwrap(),
        }
    }

    /// The origin's URL on the HTTP server.
    pub(crate) fn url(&self) -> String {
        self.server.url("repo")
    }

    pub(crate) fn cache(&self) -> PathBuf {
        self.work.path().join("cache")
    }

    /// `promptsync ARGS` in an empty directory, with the source, cache and emulator set.
    pub(crate) fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = promptsync();
        cmd.current_dir(self.work.path())
            .env("RESPAN_BASE_URL", self.scenario.emu.base_url())
            .env("RESPAN_API_KEY", KEY)
            .env("PROMPTSYNC_SOURCE__URL", self.url())
            .env("PROMPTSYNC_SOURCE__CACHE_DIR", self.cache())
            .args(args);
        cmd
    }

    /// `promptsync watch` in an empty directory with the source, cache and emulator
    /// set, looking at the remote every second, with more settings in `env`; started.
    pub(crate) fn watch(&self, env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(self.watch_command(env))
    }

    /// [`Remote::watch`], not started.
    pub(crate) fn watch_command(&self, env: &[(&str, &str)]) -> std::process::Command {
        let mut cmd = promptsync_command();
        cmd.current_dir(self.work.path())
            .env("RESPAN_BASE_URL", self.scenario.emu.base_url())
            .env("RESPAN_API_KEY", KEY)
            .env("PROMPTSYNC_SOURCE__URL", self.url())
            .env("PROMPTSYNC_SOURCE__CACHE_DIR", self.cache())
            .env("PROMPTSYNC_SOURCE__INTERVAL", "1s")
            .envs(env.iter().copied())
            .arg("watch");
        cmd
    }

    /// Run `cmd` and check its exit code; stdout and stderr.
    pub(crate) fn run(&self, cmd: assert_cmd::Command, code: i32) -> (String, String) {
        texts(&run_checked(cmd, "promptsync", code))
    }

    /// `promptsync sync` with the exit code expected.
    pub(crate) fn sync(&self, code: i32) -> (String, String) {
        self.run(self.cmd(&["sync"]), code)
    }

    /// The one mirror in the cache.
    pub(crate) fn mirror(&self) -> PathBuf {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.cache())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs.remove(0)
    }

    /// Versions of the prompt named `name`, oldest first, as their system message text.
    pub(crate) fn texts_of(&self, name: &str) -> Vec<String> {
        let mut versions = self.scenario.versions_of(name);
        versions.reverse();
        versions
            .iter()
            .map(|v| {
                v["messages"][0]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// The system message of the live version of `name`.
    pub(crate) fn live_text(&self, name: &str) -> Option<String> {
        let live = self.scenario.live_of(name)?;
        self.scenario
            .versions_of(name)
            .into_iter()
            .find(|v| v["version"].as_u64() == Some(live))
            .map(|v| {
                v["messages"][0]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
    }
}

/// `git` in `dir` (a mirror), its trimmed stdout.
pub(crate) fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
