//! `promptsync watch`, the daemon, end to end: the real binary as a child process, real
//! git repositories, the emulator over loopback HTTP, real signals. Waits poll the log,
//! the probes or the emulator with a deadline; nothing sleeps blindly.

mod doors;
mod failures;
mod hangs;
mod identity;
mod layouts;
mod limits;
mod logs;
mod model;
mod notify;
mod shutdown;
mod timing;
mod triggers;

use std::time::Duration;

use serde_json::Value;

use crate::support::scenario::{Scenario, prompt};
use crate::support::wait_until;

/// Long enough for a pass on a loaded 2-core CI machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// A repository with prompt `A` committed.
fn one_prompt() -> Scenario {
    let s = Scenario::new();
    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "first"));
    s.repo.commit("Add A");
    s
}

/// The system message of a version.
fn text_of(version: &Value) -> String {
    version["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Wait until the newest remote version of `name` has system message `text`.
fn wait_for_text(s: &Scenario, name: &str, text: &str) {
    wait_until(
        DEADLINE,
        &format!("{name}'s newest version to say {text:?}"),
        || {
            // The prompt and its first version are two requests: between
            // them the prompt exists with no version yet.
            let found = s.emu.prompts().into_iter().any(|p| p["name"] == name);
            let newest = found
                .then(|| s.versions_of(name))
                .and_then(|v| v.into_iter().next());
            newest.filter(|v| text_of(v) == text).map(drop)
        },
    );
}

/// Wait until the daemon's status says a pass is running.
fn wait_reconciling(daemon: &crate::support::daemon::Daemon) {
    wait_until(DEADLINE, "a pass to be running", || {
        (daemon.status()["conditions"][1]["status"] == "True").then_some(())
    });
}

/// `inner` (program, arguments, directory, environment) run through a shell line in
/// which `$0 "$@"` is the command: `shell prefix... -c line inner...`.
fn wrapped(
    inner: &std::process::Command,
    shell: &str,
    prefix: &[&str],
    line: &str,
) -> std::process::Command {
    let mut command = std::process::Command::new(shell);
    command
        .args(prefix)
        .arg("-c")
        .arg(line)
        .arg(inner.get_program())
        .args(inner.get_args());
    if let Some(dir) = inner.get_current_dir() {
        command.current_dir(dir);
    }
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

/// `inner` in a user namespace of its own whose inotify limit `knob`
/// (`/proc/sys/user/KNOB`) is `value`: lowered for that namespace alone. `None`
/// (and a note) where this machine refuses such a namespace.
fn with_inotify_limit(
    inner: &std::process::Command,
    knob: &str,
    value: u32,
) -> Option<std::process::Command> {
    let setup = format!("echo {value} > /proc/sys/user/{knob}");
    let probe = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &setup])
        .status();
    if !probe.is_ok_and(|status| status.success()) {
        eprintln!("skipped: cannot lower {knob} here (unshare --user refused)");
        return None;
    }
    let line = format!("{setup} && exec \"$0\" \"$@\"");
    Some(wrapped(
        inner,
        "unshare",
        &["--user", "--map-root-user", "sh"],
        &line,
    ))
}
