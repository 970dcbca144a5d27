//! The `/status` document: the types `GET /status` shows (their JSON is the contract
//! operators and tools read), the condition types and reasons they use, and how a
//! time shows in them ([`timestamp`]). The status's state and its transitions are
//! [`super::Status`]'s.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::report::pass::Summary;

pub(super) const READY: &str = "Ready";
pub(super) const RECONCILING: &str = "Reconciling";
pub(super) const STALLED: &str = "Stalled";

/// `Stalled` when nothing needs a person: its reason and message.
pub(super) const RUNNING: (&str, &str) = ("Running", "nothing needs a person");

/// What `GET /status` shows.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusData {
    /// The target (`[targets.NAME]`) this daemon syncs; absent without `[targets]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub conditions: Vec<Condition>,
    /// The revision of the last pass that ran to its end.
    pub last_applied_revision: Option<String>,
    /// The revision of the last pass started.
    pub last_attempted_revision: Option<String>,
    /// When a pass last ran to its end without a failed prompt or an invalid file.
    pub last_success: Option<String>,
    /// A pass ran to its end at least once (readiness needs it).
    pub synced_once: bool,
    /// How changes are noticed: `events` (file system notifications), `polling`,
    /// `starting` before the watcher runs, or `down` while it does not run (the resync
    /// still does).
    pub watcher: &'static str,
    /// Why the watcher polls (`watch.poll`, a kernel limit, out of file descriptors);
    /// `null` while it uses events.
    pub watcher_reason: Option<String>,
    /// Workers that are not running, with why: restarting after a backoff, or given
    /// up (then the daemon is not ready).
    pub workers_down: BTreeMap<&'static str, WorkerDown>,
    /// Remote prompts no file names, as of the last pass that listed the account
    /// (full passes only; `null` before one, or with `sync.report_unmanaged = false`).
    pub unmanaged: Option<usize>,
    /// The newest pass first.
    pub passes: VecDeque<PassRecord>,
    /// When the API takes requests again, while a server's `Retry-After` holds them
    /// (RFC 3339); `null` otherwise.
    pub rate_limited_until: Option<String>,
    /// Notifications (`[notify]`): messages waiting or being retried, given up, the
    /// last error, and each receiver's counts; `null` when none is configured.
    pub notify: Option<NotifyStatus>,
    /// The remote source (`[source]`), when the daemon fetches one; `null` otherwise.
    pub source: Option<SourceStatus>,
    /// A daemon of several targets: a section per target, in the configuration's
    /// order (the top-level conditions then sum them up; the revisions, passes and
    /// counts are the targets' own). Absent when the daemon runs one target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<TargetSection>>,
}

/// What `/status` shows of the remote source (`super::super::source` fills it in).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct SourceStatus {
    pub url: String,
    /// The branch that syncs (the configured one, else the remote's HEAD once known).
    pub branch: Option<String>,
    /// When the remote was last looked at, and when something was last fetched.
    pub last_look: Option<String>,
    pub last_fetch: Option<String>,
    /// The branch tip of the last fetch.
    pub last_fetched_revision: Option<String>,
    /// The branch tip the daemon syncs (the last good look's).
    pub revision: Option<String>,
    /// The last look's error; `null` once a look succeeds.
    pub error: Option<String>,
    /// `transient` (tried again with a backoff) or `stalled` (waits for a change).
    pub error_class: Option<&'static str>,
}

/// One target of a daemon of several, in `/status`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TargetSection {
    pub name: String,
    pub conditions: Vec<Condition>,
    pub last_applied_revision: Option<String>,
    pub last_attempted_revision: Option<String>,
    pub last_success: Option<String>,
    pub synced_once: bool,
    pub unmanaged: Option<usize>,
    /// The newest pass first.
    pub passes: VecDeque<PassRecord>,
    pub rate_limited_until: Option<String>,
}

/// The `notify` section of `/status`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NotifyStatus {
    /// Messages waiting or being retried, over every receiver.
    pub pending: usize,
    /// Deliveries given up (after retries, or refused), over every receiver.
    pub failed: u64,
    /// The newest error of any receiver (a receiver that could not be set up
    /// included).
    pub last_error: Option<String>,
    pub receivers: Vec<crate::notify::delivery::ReceiverState>,
}

impl NotifyStatus {
    pub(super) fn of(receivers: Vec<crate::notify::delivery::ReceiverState>) -> NotifyStatus {
        let newest = receivers
            .iter()
            .filter(|r| r.last_error.is_some())
            .max_by(|a, b| a.last_failed_at.cmp(&b.last_failed_at));
        NotifyStatus {
            pending: receivers.iter().map(|r| r.pending).sum(),
            failed: receivers.iter().map(|r| r.failed).sum(),
            last_error: newest.and_then(|r| r.last_error.clone()),
            receivers,
        }
    }
}

/// A worker that is not running.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct WorkerDown {
    /// Why it stopped (its error, or its panic's message).
    pub error: String,
    /// `false` while it waits to be restarted; `true` once it was given up.
    pub given_up: bool,
}

/// One Flux-style condition.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Condition {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `"True"` or `"False"`, as Kubernetes writes them.
    pub status: &'static str,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

/// One pass, for `/status`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PassRecord {
    pub trigger: &'static str,
    /// What the pass looked at: `incremental`, `plan` (every file) or `full` (every
    /// file and the whole account).
    pub kind: &'static str,
    pub revision: Option<String>,
    pub started_at: String,
    pub duration_ms: u64,
    /// `success`, `partial` (some prompts failed or files are invalid), `transient`,
    /// `stalled` or `fatal`.
    pub outcome: &'static str,
    pub counts: Counts,
    pub error: Option<String>,
    /// The deploy gate held the release (`deploy.gate_command` failed): why. The
    /// drafts synced, so the outcome is still `success`; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy_held: Option<String>,
}

/// What a pass did, by prompt.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub(crate) struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
    pub deployed: usize,
    pub invalid_files: usize,
    pub drifted: usize,
}

impl Counts {
    /// A finished pass's counts: its report's summary (the one place the daemon's
    /// counts are taken from it), and how many of its prompts drifted.
    pub(crate) fn of(summary: &Summary, drifted: usize) -> Counts {
        let Summary {
            created,
            updated,
            unchanged,
            skipped,
            failed,
            deployed,
            invalid_files,
            // Not in `/status`: the warnings are logged, the unmanaged prompts shown
            // on their own (`unmanaged`), as of the last full pass.
            warnings: _,
            unmanaged: _,
        } = *summary;
        Counts {
            created,
            updated,
            unchanged,
            skipped,
            failed,
            deployed,
            invalid_files,
            drifted,
        }
    }
}

/// RFC 3339, UTC, to the second: the notifications' format, which `/status` shares
/// (the lower module owns it).
pub(crate) use crate::notify::event::timestamp;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_the_summarys_with_the_drifted_prompts() {
        let summary = Summary {
            created: 1,
            updated: 2,
            unchanged: 3,
            skipped: 4,
            failed: 5,
            deployed: 6,
            invalid_files: 7,
            warnings: 8,
            unmanaged: 9,
        };
        let counts = Counts::of(&summary, 10);
        assert_eq!(
            counts,
            Counts {
                created: 1,
                updated: 2,
                unchanged: 3,
                skipped: 4,
                failed: 5,
                deployed: 6,
                invalid_files: 7,
                drifted: 10,
            }
        );
        let json = serde_json::to_value(counts).unwrap();
        assert!(json.get("warnings").is_none() && json.get("unmanaged").is_none());
    }
}
