//! A git repository and an emulator side by side, and the real binary run against
//! them: the setting of every sync and deploy test.

use std::process::Output;

use serde_json::Value;

use super::emulator::TestEmulator;
use super::git::TestRepo;
use super::promptsync;

/// The key the binary under test sends. Tests check it never shows up in output.
pub(crate) const KEY: &str = "sk_test_d0_not_print_me";

pub(crate) struct Scenario {
    pub repo: TestRepo,
    pub emu: TestEmulator,
}

impl Scenario {
    pub(crate) fn new() -> Scenario {
        Scenario::with(TestEmulator::start())
    }

    pub(crate) fn with(emu: TestEmulator) -> Scenario {
        Scenario {
            repo: TestRepo::new(),
            emu,
        }
    }

    /// `promptsync <args>` in the repository, pointed at the emulator.
    pub(crate) fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = promptsync();
        cmd.current_dir(self.repo.path())
            .env("RESPAN_BASE_URL", self.emu.base_url())
            .env("RESPAN_API_KEY", KEY)
            .args(args);
        cmd
    }

    /// Run and return the output, checking the exit code and that the key never
    /// appears.
    pub(crate) fn run(&self, args: &[&str], code: i32) -> Output {
        run_checked(self.cmd(args), &format!("promptsync {args:?}"), code)
    }

    /// `promptsync sync`, expected to succeed; returns stdout.
    pub(crate) fn sync(&self) -> String {
        texts(&self.run(&["sync"], 0)).0
    }

    /// `promptsync sync --output json`, with the exit code expected.
    pub(crate) fn sync_json(&self, extra: &[&str], code: i32) -> Value {
        let mut args = vec!["sync", "--output", "json"];
        args.extend_from_slice(extra);
        json_of(&self.run(&args, code))
    }

    /// The remote prompt with this name (panics unless exactly one).
    pub(crate) fn prompt_named(&self, name: &str) -> Value {
        let found: Vec<Value> = self
            .emu
            .prompts()
            .into_iter()
            .filter(|p| p["name"] == name)
            .collect();
        assert_eq!(found.len(), 1, "prompts named {name:?}: {found:#?}");
        found.into_iter().next().unwrap()
    }

    /// Versions of the prompt with this name, newest first.
    pub(crate) fn versions_of(&self, name: &str) -> Vec<Value> {
        let id = self.prompt_named(name)["id"].as_str().unwrap().to_owned();
        self.emu.versions(&id)
    }

    /// The live version number of the prompt with this name.
    pub(crate) fn live_of(&self, name: &str) -> Option<u64> {
        let id = self.prompt_named(name)["id"].as_str().unwrap().to_owned();
        self.emu.get(&format!("/api/prompts/{id}/"))["live_version"]["version"].as_u64()
    }
}

/// Run `cmd` (`what`, for messages), checking the exit code and that the key never
/// appears.
pub(crate) fn run_checked(mut cmd: assert_cmd::Command, what: &str, code: i32) -> Output {
    let output = cmd.output().expect("promptsync runs");
    let (stdout, stderr) = texts(&output);
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the API key leaked:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    output
}

pub(crate) fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The row of `file` in a JSON pass report.
pub(crate) fn row<'a>(report: &'a Value, file: &str) -> &'a Value {
    report["prompts"]
        .as_array()
        .and_then(|rows| rows.iter().find(|p| p["file"] == file))
        .unwrap_or_else(|| panic!("no row for {file}: {report:#}"))
}

/// A small prompt file for `name` whose system message is `text`.
pub(crate) fn prompt(name: &str, text: &str) -> String {
    format!(
        "name: {name}\nmodel: gpt-4o\nmessages:\n  - role: system\n    content: {text:?}\n  - role: user\n    content: \"{{{{question}}}}\"\nvariables:\n  question: What is new?\n"
    )
}

impl Scenario {
    /// Start `promptsync sync`, let it send `changes` change requests (or finish),
    /// then SIGKILL it. Returns how many change requests it had sent when killed.
    pub(crate) fn sync_killed_after(&self, changes: usize) -> usize {
        self.emu.clear_requests();
        let mut child = super::promptsync_command()
            .current_dir(self.repo.path())
            .env("RESPAN_BASE_URL", self.emu.base_url())
            .env("RESPAN_API_KEY", KEY)
            .arg("sync")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("promptsync starts");
        super::wait_until(
            std::time::Duration::from_secs(30),
            "the run to reach its kill point",
            || {
                let done = matches!(child.try_wait(), Ok(Some(_)));
                (done || self.emu.change_requests().len() >= changes).then_some(())
            },
        );
        let _ = child.kill();
        let _ = child.wait();
        self.emu.change_requests().len()
    }
}

impl Scenario {
    /// `promptsync watch ARGS` in the repository, pointed at the emulator, with a short
    /// debounce; not started.
    pub(crate) fn watch_command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = super::promptsync_command();
        cmd.current_dir(self.repo.path())
            .env("RESPAN_BASE_URL", self.emu.base_url())
            .env("RESPAN_API_KEY", KEY)
            .env("PROMPTSYNC_WATCH__DEBOUNCE", "100ms")
            .arg("watch")
            .args(args);
        cmd
    }

    /// The daemon started with [`Scenario::watch_command`].
    pub(crate) fn watch(&self, args: &[&str]) -> super::daemon::Daemon {
        self.watch_with(args, &[])
    }

    /// [`Scenario::watch`] with more environment variables (settings).
    pub(crate) fn watch_with(&self, args: &[&str], env: &[(&str, &str)]) -> super::daemon::Daemon {
        let mut command = self.watch_command(args);
        command.envs(env.iter().copied());
        super::daemon::Daemon::spawn(command)
    }

    /// The newest version of the prompt named `name` (its JSON).
    pub(crate) fn newest_of(&self, name: &str) -> Value {
        self.versions_of(name)
            .into_iter()
            .next()
            .expect("a version")
    }
}
