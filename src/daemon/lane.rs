//! One target of the daemon, its lane: the target's settings and API client (a new
//! one when its API settings or key change), its status and metrics, the baseline its
//! last pass left, and its health and backoff. [`Lane::pass`] runs the target's pass
//! and records what it came to; a target's failure, backoff or stall is its own.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::api::{ApiError, Client};
use crate::apply::ProgressLog;
use crate::baseline::Baseline;
use crate::config::Settings;
use crate::desired::{LoadCache, SourceRev};
use crate::failure::FailureClass;
use crate::reconcile::{self, PassOptions};

use super::metrics::Metrics;
use super::notices;
use super::outcome::{Ended, Exit, digest, revision};
use super::status::{self, Counts, PassRecord, Status};
use super::trigger::{Kind, Trigger};
use super::waits::{blocking, millis};

/// Backoff after a failed pass: this, doubling, up to [`BACKOFF_MAX`], with jitter.
const BACKOFF_MIN: Duration = Duration::from_millis(750);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Where the loop stands between passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    Idle,
    /// Retry at this instant (a change ends the wait early).
    Backoff(Instant),
    /// Needs a person: only a change, a signal, a request or the resync runs a pass.
    Stalled,
}

/// One target of the daemon: what it syncs to, and where it stands. A target's
/// failure, backoff or stall is its own.
pub(super) struct Lane {
    pub(super) settings: Settings,
    pub(super) client: Client,
    pub(super) status: Arc<Status>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Health,
    /// What the last pass left in sync, for incremental passes.
    pub(super) baseline: Option<Arc<Baseline>>,
    /// Failed passes in a row (for the backoff).
    pub(super) failures: u32,
}

/// What the targets' passes share: what one pass reads, and how.
pub(super) struct PassContext<'a> {
    pub(super) source: &'a SourceRev,
    pub(super) deploy: bool,
    pub(super) cache: &'a Arc<std::sync::Mutex<LoadCache>>,
    pub(super) notices: &'a notices::Notices,
    pub(super) trigger: Trigger,
    pub(super) force: &'a CancellationToken,
}

impl Lane {
    pub(super) fn new(
        settings: Settings,
        status: Arc<Status>,
        metrics: Arc<Metrics>,
    ) -> Result<Lane, Error> {
        let client = client(&settings, &metrics)?;
        Ok(Lane {
            settings,
            client,
            status,
            metrics,
            health: Health::Idle,
            baseline: None,
            failures: 0,
        })
    }

    /// The next backoff delay: 750 ms doubling to 5 min, then between half and all of
    /// it (jitter keeps many daemons from retrying in step); never before the API
    /// takes requests again when a server asked to wait (at most 5 min, `api::MAX_PAUSE`).
    fn backoff(&mut self) -> Duration {
        let exp = BACKOFF_MIN.saturating_mul(1u32 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        let full = exp.min(BACKOFF_MAX);
        let delay = full.mul_f64(0.5 + fastrand::f64() * 0.5);
        let paused = self
            .client
            .paused_until()
            .and_then(|until| until.duration_since(SystemTime::now()).ok());
        delay.max(paused.unwrap_or_default())
    }

    /// Its backoff ran out.
    pub(super) fn due(&self, now: Instant) -> bool {
        matches!(self.health, Health::Backoff(at) if at <= now)
    }

    /// Take reloaded settings; a changed API setting or key gets a new client.
    pub(super) fn reload(&mut self, settings: Settings) -> Result<(), Error> {
        if !same_api(&settings, &self.settings) {
            self.client = client(&settings, &self.metrics)?;
            tracing::info!("API settings or key changed: using them from now on");
        }
        self.settings = settings;
        Ok(())
    }

    /// No pass: the settings could not be had for a reason that may pass.
    pub(super) fn transient(&mut self, trigger: Trigger, message: &str) {
        let reason = trigger.reason.as_str();
        let reasons = trigger.reasons.label();
        let kind = trigger.kind();
        let delay = self.backoff();
        self.health = Health::Backoff(Instant::now() + delay);
        self.metrics.pass(reason, "transient", 0.0, None);
        tracing::error!(trigger = reason, reasons, kind = kind.as_str(), outcome = "transient", retry_in_ms = millis(delay), error = %message, "pass failed");
        let record = PassRecord {
            trigger: reason,
            kind: kind.as_str(),
            revision: None,
            started_at: status::timestamp(SystemTime::now()),
            duration_ms: 0,
            outcome: "transient",
            counts: Counts::default(),
            error: Some(message.to_owned()),
            deploy_held: None,
        };
        self.status.failed(record, false, Some(delay));
    }

    /// No pass: the configuration (or this target's part of it) is invalid; stalled
    /// until it changes (the caller logs it, once).
    pub(super) fn invalid(&mut self, trigger: Trigger, err: &Error, notices: &notices::Notices) {
        let reason = trigger.reason.as_str();
        let message = crate::failure::chain(err);
        self.status.config_invalid(&message);
        self.metrics.pass(reason, "stalled", 0.0, None);
        notices.not_started(&self.settings.target, err);
        self.health = Health::Stalled;
    }

    /// Run this target's pass, record what it came to.
    pub(super) async fn pass(&mut self, ctx: &PassContext<'_>) -> Ended {
        let trigger = ctx.trigger;
        let force = ctx.force;
        let reason = trigger.reason.as_str();
        let reasons = trigger.reasons.label();
        let kind = trigger.kind();
        self.status.started(&reasons);
        let options = PassOptions {
            source: ctx.source.clone(),
            dry_run: false,
            deploy: ctx.deploy,
            trigger: reason,
            // The whole account is listed on full passes only, not on every commit.
            unmanaged: self.settings.sync.report_unmanaged && kind == Kind::Full,
            // After a commit or a saved file, only what changed since the last pass.
            since: self.baseline.clone().filter(|_| kind == Kind::Incremental),
            cache: Some(Arc::clone(ctx.cache)),
        };
        let since = options.since.clone();
        let started = Instant::now();
        let started_at = SystemTime::now();
        let notifier = ctx.notices.notifier();
        let result = {
            let progress = ProgressLog::default();
            let observer = notices::PassObserver {
                progress: &progress,
                notifier: notifier.as_ref(),
                target: &self.settings.target,
            };
            reconcile::run(&self.settings, &self.client, &options, &observer).await
        };
        let elapsed = started.elapsed();
        let mut record = PassRecord {
            trigger: reason,
            kind: kind.as_str(),
            revision: None,
            started_at: status::timestamp(started_at),
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            outcome: "success",
            counts: Counts::default(),
            error: None,
            deploy_held: None,
        };
        match result {
            Ok(pass) => {
                let settings = self.settings.clone();
                let target = settings.target.clone();
                let (status, metrics) = (Arc::clone(&self.status), Arc::clone(&self.metrics));
                let digest = blocking(force, move || {
                    let span = tracing::info_span!("pass", revision = revision(&pass));
                    let _entered = span.enter();
                    let digest = digest(&pass, since.as_deref(), &settings, &status, &metrics);
                    notices::finished(notifier.as_ref(), &target, &pass);
                    digest
                });
                let Some(digest) = digest.await else {
                    if force.is_cancelled() {
                        return Ended::exit(Exit::Forced);
                    }
                    tracing::error!(
                        trigger = reason,
                        "working out what the pass came to failed; the next pass looks at everything"
                    );
                    self.baseline = None;
                    self.health = Health::Idle;
                    return Ended::failed(false);
                };
                self.baseline = Some(Arc::new(digest.baseline));
                record.revision = digest.revision;
                let counts = digest.counts;
                record.counts = counts;
                record.deploy_held = digest.deploy_held;
                let clean = counts.failed == 0 && counts.invalid_files == 0;
                record.outcome = if clean { "success" } else { "partial" };
                self.metrics
                    .pass(reason, record.outcome, elapsed.as_secs_f64(), Some(&counts));
                let retry_in = if digest.retry {
                    let delay = self.backoff();
                    self.health = Health::Backoff(Instant::now() + delay);
                    Some(delay)
                } else {
                    self.failures = 0;
                    self.health = Health::Idle;
                    None
                };
                tracing::info!(
                    trigger = reason,
                    reasons,
                    kind = kind.as_str(),
                    revision = record.revision.as_deref(),
                    release = digest.release.as_deref(),
                    duration_ms = record.duration_ms,
                    outcome = record.outcome,
                    created = counts.created,
                    updated = counts.updated,
                    unchanged = counts.unchanged,
                    carried = digest.carried,
                    failed = counts.failed,
                    deployed = counts.deployed,
                    invalid_files = counts.invalid_files,
                    deploy_held = record.deploy_held.as_deref(),
                    retry_in_ms = retry_in.map(millis),
                    "pass finished"
                );
                self.status.completed(record, retry_in);
                self.status.rate_limited(self.client.paused_until());
                if digest.requeue {
                    tracing::info!(
                        "the pass renamed a prompt while a release applies: one more pass plans everything"
                    );
                }
                Ended {
                    ok: clean,
                    exit: None,
                    small: digest.small,
                    requeue: digest.requeue,
                }
            }
            Err(err) => {
                // What a pass that stopped early left behind is not known: the next
                // pass looks at everything.
                self.baseline = None;
                record.revision = err.partial.as_deref().and_then(revision);
                ctx.notices.failed(&self.settings.target, &err);
                record.error = Some(crate::failure::chain(&err.error));
                let stalled = err.class == FailureClass::Stalled;
                record.outcome = err.class.as_str();
                self.metrics
                    .pass(reason, record.outcome, elapsed.as_secs_f64(), None);
                let retry_in = if stalled {
                    self.health = Health::Stalled;
                    None
                } else {
                    let delay = self.backoff();
                    self.health = Health::Backoff(Instant::now() + delay);
                    Some(delay)
                };
                tracing::error!(
                    trigger = reason,
                    reasons,
                    kind = kind.as_str(),
                    revision = record.revision.as_deref(),
                    duration_ms = record.duration_ms,
                    outcome = record.outcome,
                    retry_in_ms = retry_in.map(millis),
                    error = record.error.as_deref(),
                    "pass failed"
                );
                self.status.failed(record, stalled, retry_in);
                self.status.rate_limited(self.client.paused_until());
                Ended::failed(false)
            }
        }
    }
}

/// An API client whose every exchange is counted in `metrics`.
fn client(settings: &Settings, metrics: &Arc<Metrics>) -> Result<Client, ApiError> {
    let metrics = Arc::clone(metrics);
    Client::observed(
        &settings.api,
        Arc::new(move |method, code| metrics.api_request(method, code)),
    )
}

/// Whether two settings talk to the API the same way (the same key included).
fn same_api(a: &Settings, b: &Settings) -> bool {
    let (a, b) = (&a.api, &b.api);
    a.base_url == b.base_url
        && a.timeout == b.timeout
        && a.connect_timeout == b.connect_timeout
        && a.max_in_flight == b.max_in_flight
        && a.retry_max_elapsed == b.retry_max_elapsed
        && a.api_key.as_ref().map(|k| k.expose()) == b.api_key.as_ref().map(|k| k.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::config::Overrides;

    fn settings(env: &[(&str, &str)]) -> Settings {
        let global = Cli::try_parse_checked(["promptsync", "--repo", "/nonexistent/x", "watch"])
            .unwrap()
            .global;
        Settings::load_from_env(&global, &Overrides::default(), env.iter().copied()).unwrap()
    }

    const KEY: (&str, &str) = ("RESPAN_API_KEY", "test-key-a");

    #[test]
    fn the_backoff_doubles_to_five_minutes_with_jitter() {
        let metrics = Arc::new(Metrics::new());
        let status = Arc::new(Status::new("events"));
        let mut lane = Lane::new(settings(&[KEY]), status, metrics).unwrap();
        for n in 0..20u32 {
            let full = BACKOFF_MIN.saturating_mul(1 << n.min(16)).min(BACKOFF_MAX);
            let delay = lane.backoff();
            assert!(
                delay >= full / 2 && delay <= full,
                "failure {n}: {delay:?} not within half of {full:?} and it"
            );
            assert_eq!(lane.failures, n + 1);
        }
    }

    #[test]
    fn a_changed_key_or_api_setting_talks_to_the_api_another_way() {
        let base = settings(&[KEY]);
        assert!(same_api(&base, &settings(&[KEY])));
        assert!(!same_api(
            &base,
            &settings(&[("RESPAN_API_KEY", "test-key-b")])
        ));
        assert!(!same_api(
            &base,
            &settings(&[KEY, ("PROMPTSYNC_API__TIMEOUT", "7s")])
        ));
    }
}
