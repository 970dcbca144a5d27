//! `promptsync watch`, the daemon, end to end: the real binary as a child process, real
//! git repositories, the emulator over loopback HTTP, real signals. Waits poll the log,
//! the probes or the emulator with a deadline; nothing sleeps blindly.

mod failures;
mod hangs;
mod identity;
mod layouts;
mod logs;
mod model;
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
