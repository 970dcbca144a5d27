//! The daemon's status, kept in memory like Flux's conditions and read by the probe
//! server: `Ready`, `Reconciling` and `Stalled` with a reason and a message, the last
//! applied and last attempted revision, the time of the last success, and the last
//! five passes, the workers that are down. Also the loop's heartbeat, for liveness, on
//! the monotonic clock (a step of the wall clock never fails `/healthz`). Holds no
//! configuration and no key: everything here may be shown to anyone who can reach the
//! probe port. This file keeps the state and its transitions; the document `GET
//! /status` shows is `document`'s types, and a daemon of several targets is summed up
//! in `targets`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::config::ReadyPolicy;
use std::sync::Arc;

mod document;
mod targets;

pub(crate) use document::{
    Condition, Counts, NotifyStatus, PassRecord, SourceStatus, StatusData, TargetSection,
    WorkerDown, timestamp,
};
use document::{READY, RECONCILING, RUNNING, STALLED};
use targets::summed_up;

/// Passes kept in `/status`.
const HISTORY: usize = 5;

/// Shared between the loop (writer) and the probe server (reader).
#[derive(Debug)]
pub(crate) struct Status {
    data: Mutex<StatusData>,
    /// When this status was made, on the monotonic clock: the heartbeat counts from it.
    origin: Instant,
    /// Milliseconds from `origin` to the loop's last heartbeat.
    heartbeat: AtomicU64,
    /// The notifier whose receivers `notify` shows.
    notices: std::sync::OnceLock<super::notices::Shared>,
    /// A daemon of several targets: each target's own status (its conditions and
    /// passes), and what readiness asks of them. This status then keeps what the
    /// targets share (heartbeat, watcher, workers, notifications, source).
    targets: std::sync::OnceLock<(ReadyPolicy, Vec<Target>)>,
}

/// A target's name and its status, in a daemon of several.
pub(crate) type Target = (String, Arc<Status>);

/// The name of the file watcher's worker: `watcher` in `/status` says `down` while it
/// does not run.
pub(crate) const WATCHER: &str = "watcher";

impl Status {
    pub(crate) fn new(watcher: &'static str) -> Status {
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
                target: None,
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
                workers_down: BTreeMap::new(),
                unmanaged: None,
                passes: VecDeque::with_capacity(HISTORY),
                rate_limited_until: None,
                notify: None,
                source: None,
                targets: None,
            }),
            origin: Instant::now(),
            heartbeat: AtomicU64::new(0),
            notices: std::sync::OnceLock::new(),
            targets: std::sync::OnceLock::new(),
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
    pub(crate) fn beat(&self) {
        self.beat_at(Instant::now());
    }

    fn beat_at(&self, now: Instant) {
        let since = now.saturating_duration_since(self.origin);
        self.heartbeat.store(
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Time since the loop's last heartbeat, on the monotonic clock.
    pub(crate) fn heartbeat_age(&self) -> Duration {
        self.heartbeat_age_at(Instant::now())
    }

    fn heartbeat_age_at(&self, now: Instant) -> Duration {
        let last = Duration::from_millis(self.heartbeat.load(Ordering::Relaxed));
        now.saturating_duration_since(self.origin)
            .saturating_sub(last)
    }

    /// `Ok` when ready to be counted on (a pass ran to its end and nothing needs a
    /// person), else why not.
    pub(crate) fn readiness(&self) -> Result<(), String> {
        if let Some((policy, targets)) = self.targets.get() {
            return self.readiness_of(*policy, targets);
        }
        let data = self.lock();
        if let Some(stalled) = data
            .conditions
            .iter()
            .find(|c| c.kind == STALLED && c.status == "True")
        {
            return Err(format!("stalled ({}): {}", stalled.reason, stalled.message));
        }
        if let Some((name, down)) = data.workers_down.iter().find(|(_, down)| down.given_up) {
            return Err(format!(
                "the {name} stopped and was given up after restarts: {}",
                down.error
            ));
        }
        if !data.synced_once {
            return Err("no pass has run to its end yet".to_owned());
        }
        Ok(())
    }

    /// Readiness of a daemon of several targets: its workers, then every target
    /// (`all`) or one of them (`any`).
    fn readiness_of(&self, policy: ReadyPolicy, targets: &[Target]) -> Result<(), String> {
        if let Some((name, down)) = self
            .lock()
            .workers_down
            .iter()
            .find(|(_, down)| down.given_up)
        {
            return Err(format!(
                "the {name} stopped and was given up after restarts: {}",
                down.error
            ));
        }
        let not_ready: Vec<String> = targets
            .iter()
            .filter_map(|(name, status)| {
                status
                    .readiness()
                    .err()
                    .map(|why| format!("target {name}: {why}"))
            })
            .collect();
        let ready = match policy {
            ReadyPolicy::All => not_ready.is_empty(),
            ReadyPolicy::Any => not_ready.len() < targets.len(),
        };
        if ready {
            Ok(())
        } else {
            let asked = match policy {
                ReadyPolicy::All => "every target ready (watch.ready = \"all\")",
                ReadyPolicy::Any => "one target ready (watch.ready = \"any\")",
            };
            Err(format!(
                "{}; readiness asks for {asked}",
                not_ready.join("; ")
            ))
        }
    }

    /// Make this the status of a daemon of several targets, each with its own status
    /// (set once, at start).
    pub(crate) fn set_targets(&self, policy: ReadyPolicy, targets: Vec<Target>) {
        let _ = self.targets.set((policy, targets));
    }

    pub(crate) fn snapshot(&self) -> StatusData {
        let mut data = self.lock().clone();
        if let Some((policy, targets)) = self.targets.get() {
            let sections: Vec<TargetSection> = targets
                .iter()
                .map(|(name, status)| {
                    let d = status.lock().clone();
                    TargetSection {
                        name: name.clone(),
                        conditions: d.conditions,
                        last_applied_revision: d.last_applied_revision,
                        last_attempted_revision: d.last_attempted_revision,
                        last_success: d.last_success,
                        synced_once: d.synced_once,
                        unmanaged: d.unmanaged,
                        passes: d.passes,
                        rate_limited_until: d.rate_limited_until,
                    }
                })
                .collect();
            data.synced_once = sections.iter().all(|s| s.synced_once);
            data.conditions = summed_up(&sections, self.readiness_of(*policy, targets));
            data.targets = Some(sections);
        }
        data.notify = self
            .notices
            .get()
            .and_then(super::notices::Shared::receivers)
            .map(NotifyStatus::of);
        data
    }

    /// Show what the receivers of `notices` did in `notify` (set once, at start).
    pub(crate) fn set_notices(&self, notices: super::notices::Shared) {
        let _ = self.notices.set(notices);
    }

    pub(crate) fn set_source(&self, source: SourceStatus) {
        self.lock().source = Some(source);
    }

    /// Name the target in `/status` (with `[targets]`).
    pub(crate) fn set_target(&self, target: &str) {
        self.lock().target = Some(target.to_owned());
    }

    pub(crate) fn set_watcher(&self, watcher: &'static str, reason: Option<String>) {
        let mut data = self.lock();
        data.watcher = watcher;
        data.watcher_reason = reason;
    }

    /// After a pass: whether a server asked to wait, and until when. While it lasts,
    /// `Reconciling` says so (the next pass waits for it).
    pub(crate) fn rate_limited(&self, until: Option<SystemTime>) {
        let mut data = self.lock();
        data.rate_limited_until = until.map(timestamp);
        if let Some(until) = &data.rate_limited_until {
            let message = format!(
                "rate limited until {until}: the API asked to wait; the next pass waits for it"
            );
            set(&mut data, RECONCILING, "True", "RateLimited", &message);
        }
    }

    /// Worker `name` stopped (`error` says why): it waits to be restarted, or, with
    /// `given_up`, it is not (the daemon is then not ready).
    pub(crate) fn worker_down(&self, name: &'static str, error: &str, given_up: bool) {
        let mut data = self.lock();
        if name == WATCHER {
            data.watcher = "down";
        }
        data.workers_down.insert(
            name,
            WorkerDown {
                error: error.to_owned(),
                given_up,
            },
        );
    }

    /// Worker `name` runs (again).
    pub(crate) fn worker_up(&self, name: &'static str) {
        self.lock().workers_down.remove(name);
    }

    pub(crate) fn set_unmanaged(&self, count: usize) {
        self.lock().unmanaged = Some(count);
    }

    /// A pass starts (`trigger` names its reasons).
    pub(crate) fn started(&self, trigger: &str) {
        let mut data = self.lock();
        set(
            &mut data,
            RECONCILING,
            "True",
            "Progressing",
            &format!("pass triggered by {trigger}"),
        );
    }

    /// A pass ran to its end (its outcome says whether prompts failed or files were
    /// invalid); `retry_in`: failed prompts are retried then.
    pub(crate) fn completed(&self, record: PassRecord, retry_in: Option<Duration>) {
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
        match retry_in {
            Some(delay) => set(
                &mut data,
                RECONCILING,
                "True",
                "Backoff",
                &format!(
                    "prompts failed for reasons that may pass: retrying in {:.1}s",
                    delay.as_secs_f64()
                ),
            ),
            None => set(
                &mut data,
                RECONCILING,
                "False",
                "Idle",
                "waiting for a change",
            ),
        }
        not_stalled(&mut data);
        push(&mut data, record);
    }

    /// A pass ended early. `stalled` says that it needs a person.
    pub(crate) fn failed(&self, record: PassRecord, stalled: bool, retry_in: Option<Duration>) {
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

    /// The configuration could not be loaded: no pass ran.
    pub(crate) fn config_invalid(&self, message: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: &'static str) -> PassRecord {
        PassRecord {
            trigger: "files",
            kind: "incremental",
            revision: Some("abc".into()),
            started_at: timestamp(SystemTime::now()),
            duration_ms: 5,
            outcome,
            counts: Counts::default(),
            error: (outcome != "success").then(|| "boom".to_owned()),
            deploy_held: None,
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
        status.completed(record("partial"), None);
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
        status.completed(record("success"), None);
        assert!(status.readiness().is_ok());
        let data = status.snapshot();
        assert_eq!(condition(&data, "Stalled").status, "False");
        assert_eq!(condition(&data, "Ready").status, "True");
        assert_eq!(data.last_applied_revision.as_deref(), Some("abc"));
        assert!(data.last_success.is_some());
    }

    fn several(policy: ReadyPolicy) -> (Status, Arc<Status>, Arc<Status>) {
        let daemon = Status::new("events");
        let (staging, production) = (
            Arc::new(Status::new("events")),
            Arc::new(Status::new("events")),
        );
        daemon.set_targets(
            policy,
            vec![
                ("staging".to_owned(), Arc::clone(&staging)),
                ("production".to_owned(), Arc::clone(&production)),
            ],
        );
        (daemon, staging, production)
    }

    #[test]
    fn several_targets_are_ready_as_watch_ready_says_and_stalled_names_the_target() {
        for policy in [ReadyPolicy::All, ReadyPolicy::Any] {
            let (daemon, staging, production) = several(policy);
            assert!(daemon.readiness().is_err(), "nothing synced yet");
            staging.completed(record("success"), None);
            production.failed(record("stalled"), true, None);
            let readiness = daemon.readiness();
            let data = daemon.snapshot();
            let stalled = condition(&data, "Stalled");
            assert_eq!(stalled.status, "True");
            assert!(
                stalled.message.starts_with("production: boom"),
                "{stalled:?}"
            );
            let sections = data.targets.as_ref().unwrap();
            assert_eq!(sections.len(), 2);
            assert_eq!(sections[0].name, "staging");
            assert_eq!(sections[0].last_applied_revision.as_deref(), Some("abc"));
            assert!(data.last_applied_revision.is_none(), "the targets' own");
            match policy {
                ReadyPolicy::All => {
                    let why = readiness.unwrap_err();
                    assert!(why.contains("target production: stalled"), "{why}");
                    assert!(!why.contains("target staging"), "{why}");
                    assert_eq!(condition(&data, "Ready").status, "False");
                }
                ReadyPolicy::Any => {
                    assert!(readiness.is_ok(), "{readiness:?}");
                    assert_eq!(condition(&data, "Ready").status, "True");
                }
            }
            production.completed(record("success"), None);
            assert!(daemon.readiness().is_ok());
            daemon.worker_down(WATCHER, "gone", true);
            assert!(daemon.readiness().unwrap_err().contains("given up"));
        }
    }

    #[test]
    fn one_target_has_no_targets_section() {
        let status = Status::new("events");
        status.set_target("staging");
        let json = serde_json::to_value(status.snapshot()).unwrap();
        assert_eq!(json["target"], "staging");
        assert!(json.get("targets").is_none(), "{json}");
    }

    #[test]
    fn history_keeps_the_last_five_newest_first() {
        let status = Status::new("events");
        for n in 0..7 {
            let mut r = record("success");
            r.duration_ms = n;
            status.completed(r, None);
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
    fn the_heartbeat_counts_on_the_monotonic_clock() {
        let status = Status::new("events");
        let start = status.origin;
        status.beat_at(start + Duration::from_secs(10));
        assert_eq!(
            status.heartbeat_age_at(start + Duration::from_secs(12)),
            Duration::from_secs(2)
        );
        // An earlier instant (cannot happen with `Instant`) is no negative age.
        assert_eq!(
            status.heartbeat_age_at(start + Duration::from_secs(5)),
            Duration::ZERO
        );
        // The wall clock plays no part: `heartbeat_age` reads only `Instant`s, so a
        // step of the system time (NTP, a VM resumed) leaves it as it is.
        status.beat();
        assert!(status.heartbeat_age() < Duration::from_secs(1));
    }

    #[test]
    fn a_partial_pass_with_a_retry_says_it_is_backing_off() {
        let status = Status::new("events");
        status.completed(record("partial"), Some(Duration::from_millis(1500)));
        let data = status.snapshot();
        let reconciling = condition(&data, "Reconciling");
        assert_eq!(
            (reconciling.status, reconciling.reason.as_str()),
            ("True", "Backoff")
        );
        assert!(
            reconciling.message.contains("retrying in 1.5s"),
            "{reconciling:?}"
        );
        assert_eq!(condition(&data, "Ready").status, "False");
        status.completed(record("success"), None);
        let data = status.snapshot();
        assert_eq!(condition(&data, "Reconciling").reason, "Idle");
    }

    #[test]
    fn a_worker_given_up_makes_the_daemon_not_ready_and_says_why() {
        let status = Status::new("events");
        status.completed(record("success"), None);
        status.worker_down(WATCHER, "panicked: boom", false);
        assert!(status.readiness().is_ok(), "restarting is not given up");
        let data = status.snapshot();
        assert_eq!(data.watcher, "down");
        assert_eq!(data.workers_down[WATCHER].error, "panicked: boom");
        status.worker_up(WATCHER);
        status.set_watcher("events", None);
        assert!(status.snapshot().workers_down.is_empty());
        status.worker_down(WATCHER, "panicked: boom", true);
        let why = status.readiness().unwrap_err();
        assert!(why.contains("watcher") && why.contains("boom"), "{why}");
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
        status.completed(record("success"), None);
        status.rate_limited(None);
        let data = status.snapshot();
        assert_eq!(data.rate_limited_until, None);
        assert_eq!(condition(&data, "Reconciling").reason, "Idle");
    }
}
