//! Test support: run the real binary, wait for conditions with a deadline.

#![allow(dead_code)]

pub(crate) mod daemon;
pub(crate) mod emulator;
pub(crate) mod git;
pub(crate) mod githttp;
pub(crate) mod proxy;
pub(crate) mod recorder;
pub(crate) mod scenario;
pub(crate) mod sshd;

use std::time::{Duration, Instant};

/// The `promptsync` binary under test, with a clean environment: no inherited
/// `PROMPTSYNC_*`, `RESPAN_*`, `GITHUB_*`, `GITLAB_*`, `CI_*` or `RUST_LOG` variables, so tests see only
/// what they set (and a suite run in GitHub Actions prints no annotations).
pub(crate) fn promptsync() -> assert_cmd::Command {
    assert_cmd::Command::from_std(promptsync_command())
}

/// [`promptsync`] as a plain `std::process::Command`, for processes a test spawns and
/// talks to while they run.
pub(crate) fn promptsync_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_promptsync"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("PROMPTSYNC_")
            || key.starts_with("RESPAN_")
            || key.starts_with("GITHUB_")
            || key.starts_with("GITLAB_")
            || key.starts_with("CI_")
            || key == "RUST_LOG"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Poll `condition` until it returns `Some`, or panic with `what` after `timeout`.
pub(crate) fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
