//! The daemon's status, kept in memory like Flux's conditions and read by the probe
//! server: `Ready`, `Reconciling` and `Stalled` with a reason and a message, the last
//! applied and last attempted revision, the time of the last success, and the last
//! five passes. Also the loop's heartbeat, for liveness. Holds no configuration and no
//! key: everything here may be shown to anyone who can reach the probe port.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Passes kept in `/status`.
const HISTORY: usize = 5;

/// Shared between the loop (writer) and the probe server (reader).
#[derive(Debug)]
pub struct Status {
    data: Mutex<StatusData>,
    /// Unix milliseconds of the loop's last heartbeat.
    heartbeat: AtomicU64,
}

/// What `GET /status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusData {
    pub conditions: Vec<Condition>,
    /// The revision of the last pass that ran to its end.
    pub last_applied_revision: Option<String>,
    /// The revision of the last pass started.
    pub last_attempted_revision: Option<String>,
    /// When a pass last ran to its end without a failed prompt or an invalid file.
    pub last_success: Option<String>,
    /// A pass ran to its end at least once (readiness needs it).
    pub synced_once: bool,
    /// How changes are noticed: `events` (file system notifications), `polling`, or
    /// `starting` before the watcher has begun.
    pub watcher: &'static str,
    /// Why the watcher polls (`watch.poll`, a kernel limit, out of file descriptors);
    /// `null` while it uses events.
    pub watcher_reason: Option<String>,
    /// Remote prompts no file names, as of the last pass that listed the account
    /// (full passes only; `null` before one, or with `sync.report_unmanaged = false`).
    pub unmanaged: Option<usize>,
    /// The newest pass first.
    pub passes: VecDeque<PassRecord>,
    /// When the API takes requests again, while a server's `Retry-After` holds them
    /// (RFC 3339); `null` otherwise.
    pub rate_limited_until: Option<String>,
}

/// One Flux-style condition.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Condition {
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
pub struct PassRecord {
    pub trigger: &'static str,
    pub revision: Option<String>,
    pub started_at: String,
    pub duration_ms: u64,
    /// `success`, `partial` (some prompts failed or files are invalid), `transient`,
    /// `stalled` or `fatal`.
    pub outcome: &'static str,
    pub counts: Counts,
    pub error: Option<String>,
}

/// What a pass did, by prompt.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
    pub deployed: usize,
    pub invalid_files: usize,
    pub drifted: usize,
}

const READY: &str = "Ready";
const RECONCILING: &str = "Reconciling";
const STALLED: &str = "Stalled";

impl Status {
    pub fn new(watcher: &'static str) -> Status {
        let now = timestamp(SystemTime::now());
        let condition = |kind, status, reason: &str, message: &str| Condition {
            kind,
            status,
            reason: reason.to_owned(),
            message: message.to_owned(),
            last_transition_time: now.clone(),
        };
        let status = Status {
            data: Mutex::new(StatusData {
                conditions: vec![
                    condition(READY, "False", "Progressing", "no pass has finished yet"),
                    condition(RECONCILING, "False", "Idle", "waiting for the first pass"),
                    condition(STALLED, "False", RUNNING.0, RUNNING.1),
                ],
                last_applied_revision: None,
                last_attempted_revision: None,
                last_success: None,
                synced_once: false,
                watcher,
                watcher_reason: None,
                unmanaged: None,
                passes: VecDeque::with_capacity(HISTORY),
                rate_limited_until: None,
            }),
            heartbeat: AtomicU64::new(0),
        };
        status.beat();
        status
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatusData> {
        self.data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The loop is alive.
    pub fn beat(&self) {
        self.heartbeat
            .store(unix_ms(SystemTime::now()), Ordering::Relaxed);
    }

    /// Time since the loop's last heartbeat.
    pub fn heartbeat_age(&self) -> Duration {
        let last = self.heartbeat.load(Ordering::Relaxed);
        Duration::from_millis(unix_ms(SystemTime::now()).saturating_sub(last))
    }

    /// `Ok` when ready to be counted on (a pass ran to its end and nothing needs a
    /// person), else why not.
    pub fn readiness(&self) -> Result<(), String> {
        let data = self.lock();
        if let Some(stalled) = data
            .conditions
            .iter()
            .find(|c| c.kind == STALLED && c.status == "True")
        {
            return Err(format!("stalled ({}): {}", stalled.reason, stalled.message));
        }
        if !data.synced_once {
            return Err("no pass has run to its end yet".to_owned());
        }
        Ok(())
    }

    pub fn snapshot(&self) -> StatusData {
        self.lock().clone()
    }

    pub fn set_watcher(&self, watcher: &'static str, reason: Option<String>) {
        let mut data = self.lock();
        data.watcher = watcher;
        data.watcher_reason = reason;
    }

    pub fn set_unmanaged(&self, count: usize) {
        self.lock().unmanaged = Some(count);
    }

    /// A pass starts.
    pub fn started(&self, trigger: &'static str) {
        let mut data = self.lock();
        set(
            &mut data,
            RECONCILING,
            "True",
            "Progressing",
            &format!("pass triggered by {trigger}"),
        );
    }

    /// A pass ran to its end (`failed`/`invalid` say whether prompts failed or files
    /// were invalid).
    pub fn completed(&self, record: PassRecord) {
        let mut data = self.lock();
        let clean = record.outcome == "success";
        data.synced_once = true;
        data.last_applied_revision.clone_from(&record.revision);
        data.last_attempted_revision.clone_from(&record.revision);
        if clean {
            data.last_success = Some(record.started_at.clone());
        }
        let (reason, message) = if clean {
            ("Succeeded", summary(&record.counts))
        } else {
            ("PromptsFailed", summary(&record.counts))
        };
        set(&mut data, READY, bool_text(clean), reason, &message);
        set(
            &mut data,
            RECONCILING,
            "False",
            "Idle",
            "waiting for a change",
        );
        not_stalled(&mut data);
        push(&mut data, record);
    }

    /// A pass ended early. `stalled` says that it needs a person.
    pub fn failed(&self, record: PassRecord, stalled: bool, retry_in: Option<Duration>) {
        let mut data = self.lock();
        data.last_attempted_revision.clone_from(&record.revision);
        let message = record.error.clone().unwrap_or_default();
        set(&mut data, READY, "False", "ReconciliationFailed", &message);
        if stalled {
            set(
                &mut data,
                RECONCILING,
                "False",
                "Stalled",
                "waiting for a change: a new commit, the key or configuration file, SIGHUP or POST /reconcile",
            );
            set(
                &mut data,
                STALLED,
                "True",
                record.outcome_reason(),
                &message,
            );
        } else {
            let next = retry_in.map_or_else(
                || "retrying on the next change".to_owned(),
                |delay| format!("retrying in {:.1}s", delay.as_secs_f64()),
            );
            set(&mut data, RECONCILING, "True", "Backoff", &next);
            not_stalled(&mut data);
        }
        push(&mut data, record);
    }

    /// After a pass: whether a server asked to wait, and until when. While it lasts,
    /// `Reconciling` says so (the next pass waits for it).
    pub fn rate_limited(&self, until: Option<SystemTime>) {
        let mut data = self.lock();
        data.rate_limited_until = until.map(timestamp);
        if let Some(until) = &data.rate_limited_until {
            let message = format!(
                "rate limited until {until}: the API asked to wait; the next pass waits for it"
            );
            set(&mut data, RECONCILING, "True", "RateLimited", &message);
        }
    }

    /// The configuration could not be loaded: no pass ran.
    pub fn config_invalid(&self, message: &str) {
        let mut data = self.lock();
        set(&mut data, READY, "False", "InvalidConfiguration", message);
        set(
            &mut data,
            RECONCILING,
            "False",
            "Stalled",
            "waiting for the configuration to be fixed",
        );
        set(&mut data, STALLED, "True", "InvalidConfiguration", message);
    }
}

impl PassRecord {
    fn outcome_reason(&self) -> &'static str {
        match self.outcome {
            "stalled" => "NeedsAPerson",
            "fatal" => "InternalError",
            _ => "ReconciliationFailed",
        }
    }
}

fn summary(counts: &Counts) -> String {
    format!(
        "{} created, {} updated, {} unchanged, {} failed, {} deployed, {} invalid file(s)",
        counts.created,
        counts.updated,
        counts.unchanged,
        counts.failed,
        counts.deployed,
        counts.invalid_files
    )
}

fn bool_text(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

/// `Stalled` when nothing needs a person: its reason and message.
const RUNNING: (&str, &str) = ("Running", "nothing needs a person");

fn not_stalled(data: &mut StatusData) {
    set(data, STALLED, "False", RUNNING.0, RUNNING.1);
}

/// Set a condition; its transition time moves only when its status does.
fn set(
    data: &mut StatusData,
    kind: &'static str,
    status: &'static str,
    reason: &str,
    message: &str,
) {
    let now = timestamp(SystemTime::now());
    if let Some(condition) = data.conditions.iter_mut().find(|c| c.kind == kind) {
        if condition.status != status {
            condition.last_transition_time = now;
        }
        condition.status = status;
        condition.reason = reason.to_owned();
        condition.message = message.to_owned();
    }
}

fn push(data: &mut StatusData, record: PassRecord) {
    if data.passes.len() == HISTORY {
        data.passes.pop_back();
    }
    data.passes.push_front(record);
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// RFC 3339, UTC, to the second.
pub fn timestamp(time: SystemTime) -> String {
    let time = time::OffsetDateTime::from(time).replace_nanosecond(0);
    time.ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: &'static str) -> PassRecord {
        PassRecord {
            trigger: "files",
            revision: Some("abc".into()),
            started_at: timestamp(SystemTime::now()),
            duration_ms: 5,
            outcome,
            counts: Counts::default(),
            error: (outcome != "success").then(|| "boom".to_owned()),
        }
    }

    fn condition<'a>(data: &'a StatusData, kind: &str) -> &'a Condition {
        data.conditions.iter().find(|c| c.kind == kind).unwrap()
    }

    #[test]
    fn ready_only_after_a_pass_ran_to_its_end_and_not_while_stalled() {
        let status = Status::new("events");
        assert!(status.readiness().is_err());
        status.failed(record("transient"), false, Some(Duration::from_secs(1)));
        assert!(
            status.readiness().is_err(),
            "a failed first pass is not ready"
        );
        status.completed(record("partial"));
        assert!(
            status.readiness().is_ok(),
            "invalid files do not make it unready"
        );
        status.failed(record("transient"), false, None);
        assert!(
            status.readiness().is_ok(),
            "an outage after a sync stays ready"
        );
        status.failed(record("stalled"), true, None);
        let err = status.readiness().unwrap_err();
        assert!(err.contains("stalled"), "{err}");
        status.completed(record("success"));
        assert!(status.readiness().is_ok());
        let data = status.snapshot();
        assert_eq!(condition(&data, "Stalled").status, "False");
        assert_eq!(condition(&data, "Ready").status, "True");
        assert_eq!(data.last_applied_revision.as_deref(), Some("abc"));
        assert!(data.last_success.is_some());
    }

    #[test]
    fn history_keeps_the_last_five_newest_first() {
        let status = Status::new("events");
        for n in 0..7 {
            let mut r = record("success");
            r.duration_ms = n;
            status.completed(r);
        }
        let passes = status.snapshot().passes;
        assert_eq!(passes.len(), 5);
        assert_eq!(passes[0].duration_ms, 6);
        assert_eq!(passes[4].duration_ms, 2);
    }

    #[test]
    fn an_invalid_configuration_stalls() {
        let status = Status::new("polling");
        status.config_invalid("api.timeout: bad");
        assert!(
            status
                .readiness()
                .unwrap_err()
                .contains("InvalidConfiguration")
        );
    }

    #[test]
    fn the_heartbeat_is_fresh_after_a_beat() {
        let status = Status::new("events");
        status.beat();
        assert!(status.heartbeat_age() < Duration::from_secs(1));
    }

    #[test]
    fn a_rate_limit_is_shown_until_a_pass_ends_without_one() {
        let status = Status::new("events");
        status.failed(record("transient"), false, Some(Duration::from_secs(1)));
        let until = SystemTime::now() + Duration::from_secs(300);
        status.rate_limited(Some(until));
        let data = status.snapshot();
        let reconciling = condition(&data, "Reconciling");
        assert_eq!(reconciling.reason, "RateLimited");
        let shown = data.rate_limited_until.clone().unwrap();
        assert!(
            reconciling
                .message
                .starts_with(&format!("rate limited until {shown}"))
        );
        status.completed(record("success"));
        status.rate_limited(None);
        let data = status.snapshot();
        assert_eq!(data.rate_limited_until, None);
        assert_eq!(condition(&data, "Reconciling").reason, "Idle");
    }
}
