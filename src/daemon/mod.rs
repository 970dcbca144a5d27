//! `promptsync watch`, the daemon: one loop runs reconcile passes, one at a time, and
//! workers beside it (in one `JoinSet`, stopped by one cancellation token) produce
//! triggers and serve the probes:
//!
//! - [`watcher`]: file system events on the directories that matter (or polling where
//!   events cannot be had), debounced into one trigger per burst;
//! - SIGHUP; `POST /reconcile` on the probe [`server`]; the periodic resync (the
//!   loop's own timer, ±5% jitter), the safety net for missed events;
//! - a retry when a failed pass's backoff runs out.
//!
//! Triggers meet in a slot of capacity one ([`trigger`]): events during a pass make
//! one follow-up pass. Before each pass the settings are loaded again (a new key file
//! or configuration takes effect without a restart; a bad one stalls the loop), and
//! the repository is opened again through its configured path (a git-sync link that
//! was swapped is followed). The pass does not know what triggered it.
//!
//! Outcomes, like Flux's: a pass that ran to its end is `success` or `partial`
//! (prompts failed or files are invalid; transient prompt failures are retried with
//! backoff); one that ended early is `transient` (backoff: 750 ms doubling to 5 min,
//! with jitter), `stalled` (a refused key, bad configuration: no retries until
//! something changes) or `fatal`. Nothing ends the daemon but a shutdown:
//! [`run`] takes two tokens, `shutdown` (stop taking triggers, let the running pass
//! finish) and `force` (drop the running pass; it is kill-safe).

pub mod door;
pub mod fallback;
pub mod http;
pub mod metrics;
pub mod poll;
pub mod server;
pub mod status;
pub mod trigger;
pub mod watcher;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Error;
use crate::api::{ApiError, Client};
use crate::apply::ProgressLog;
use crate::baseline::Baseline;
use crate::config::Settings;
use crate::desired::LoadCache;
use crate::desired::SourceRev;
use crate::error::FailureClass;
use crate::reconcile::{self, Pass, PassOptions};
use crate::report::pass::{Mode, PassReport};
use metrics::Metrics;
use status::{Counts, PassRecord, Status};
use trigger::{Pending, Reason, Trigger, Triggers};
use watcher::WatchSet;

/// How often the loop proves it is alive (liveness reads it).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long the loop is idle after a small pass before it trims the heap.
const IDLE_TRIM: Duration = Duration::from_secs(2);
/// How long the loop waits for the watcher to put a new watch set in place.
const WATCH_APPLY: Duration = Duration::from_secs(2);
/// Backoff after a failed pass: this, doubling, up to [`BACKOFF_MAX`], with jitter.
const BACKOFF_MIN: Duration = Duration::from_millis(750);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Reloads the settings before each pass.
pub type LoadSettings = Box<dyn Fn() -> Result<Settings, Error> + Send + Sync>;

/// How to run the daemon.
pub struct Config {
    /// The settings the command started with.
    pub settings: Settings,
    /// Loads them again (configuration file, environment, key file).
    pub load: Arc<LoadSettings>,
    pub source: SourceRev,
    /// Deploy release tags (off with `--no-deploy`).
    pub deploy: bool,
    /// One pass, then exit with its status (`--once`); no watcher, no probes.
    pub once: bool,
    /// The probe server's socket, bound by the caller.
    pub listener: Option<TcpListener>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("source", &self.source)
            .field("deploy", &self.deploy)
            .field("once", &self.once)
            .finish_non_exhaustive()
    }
}

/// How the daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Shut down cleanly: no pass was running, or the running one finished.
    Stopped,
    /// The deadline or a second signal dropped the running pass.
    Forced,
    /// `--once`: whether the pass ran to its end without a failure.
    Once { ok: bool },
}

/// Run until `shutdown` (or, with `once`, for one pass).
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    force: CancellationToken,
) -> Result<Exit, Error> {
    let watch_settings = config.settings.watch.clone();
    let status = Arc::new(Status::new("starting"));
    let metrics = Arc::new(Metrics::new());
    let client = client(&config.settings, &metrics)?;
    let (triggers, pending) = trigger::slot();
    let (watch_set, watch_set_rx) = watch::channel(Arc::new(WatchSet::default()));
    let (applied_tx, applied) = watch::channel(0);
    let stop = CancellationToken::new();
    let mut workers = JoinSet::new();
    if !config.once {
        if let Some(listener) = config.listener {
            let shared = Arc::new(server::Shared {
                status: Arc::clone(&status),
                metrics: Arc::clone(&metrics),
                triggers: triggers.clone(),
                door: door::Door::new(
                    watch_settings.reconcile_token_file.clone(),
                    watch_settings.reconcile_min_interval,
                ),
            });
            let stop = stop.clone();
            let max_connections = crate::fdlimit::connection_cap(crate::fdlimit::soft_limit());
            workers.spawn(async move {
                if let Err(err) = server::serve(listener, shared, max_connections, stop).await {
                    tracing::error!(error = %err, "the probe server stopped");
                }
            });
        }
        let (reasons, reasons_rx) = mpsc::channel(256);
        let source = watcher::Source {
            set: watch_set_rx,
            applied: applied_tx,
            poll: watch_settings.poll,
            poll_interval: watch_settings.poll_interval,
            status: Arc::clone(&status),
            metrics: Arc::clone(&metrics),
        };
        workers.spawn(source.run(reasons, stop.clone()));
        workers.spawn(watcher::debounce(
            reasons_rx,
            triggers.clone(),
            watch_settings.debounce,
            stop.clone(),
        ));
        workers.spawn(sighup(triggers.clone(), stop.clone()));
    }
    let mut lp = Loop {
        settings: config.settings,
        load: config.load,
        client,
        source: config.source,
        deploy: config.deploy,
        status,
        metrics,
        pending,
        watch_set,
        applied,
        health: Health::Idle,
        baseline: None,
        cache: Arc::default(),
        failures: 0,
        _triggers: triggers,
    };
    let exit = lp.run(config.once, &shutdown, &force).await;
    stop.cancel();
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while workers.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::warn!("workers did not stop within 5s; leaving them");
        workers.abort_all();
    }
    Ok(exit)
}

/// Where the loop stands between passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Idle,
    /// Retry at this instant (a change ends the wait early).
    Backoff(Instant),
    /// Needs a person: only a change, a signal or a request runs a pass.
    Stalled,
}

struct Loop {
    settings: Settings,
    load: Arc<LoadSettings>,
    client: Client,
    source: SourceRev,
    deploy: bool,
    status: Arc<Status>,
    metrics: Arc<Metrics>,
    pending: Pending,
    watch_set: watch::Sender<Arc<WatchSet>>,
    /// The generation of the watch set in place (see [`Loop::rewatch`]).
    applied: watch::Receiver<u64>,
    health: Health,
    /// What the last pass left in sync, for incremental passes.
    baseline: Option<Arc<Baseline>>,
    /// The valid prompt files of earlier passes, by blob: a commit costs the files it
    /// changed.
    cache: Arc<std::sync::Mutex<LoadCache>>,
    /// Failed passes in a row (for the backoff).
    failures: u32,
    /// Keeps the slot open while no worker runs (`--once`).
    _triggers: Triggers,
}

/// What one pass came to, for the loop's next step.
struct Ended {
    ok: bool,
    forced: bool,
    /// An incremental pass that looked at few of the prompts: it freed little.
    small: bool,
}

impl Loop {
    async fn run(
        &mut self,
        once: bool,
        shutdown: &CancellationToken,
        force: &CancellationToken,
    ) -> Exit {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next = Some(Trigger::now(Reason::Startup));
        let mut resync_at = Instant::now() + jittered(self.settings.watch.resync_interval);
        // When to hand free heap pages back after small passes: once the loop is idle.
        let mut trim_at: Option<Instant> = None;
        if !once {
            // Watch before the first pass reads: a commit made during it must
            // trigger the next one, not wait for the resync timer.
            self.rewatch().await;
        }
        loop {
            let trigger = match next.take() {
                Some(trigger) => trigger,
                None => {
                    let retry_at = match self.health {
                        Health::Backoff(at) => Some(at),
                        Health::Idle | Health::Stalled => None,
                    };
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => return Exit::Stopped,
                        trigger = self.pending.next() => match trigger {
                            None => return Exit::Stopped,
                            // The retry covers the timer's pass.
                            Some(t) if retry_at.is_some() && !t.reason.is_change() => continue,
                            Some(t) => t,
                        },
                        () = sleep_until(retry_at), if retry_at.is_some() => Trigger::now(Reason::Retry),
                        () = sleep_until(trim_at), if trim_at.is_some() => {
                            trim_at = None;
                            crate::memory::release();
                            continue;
                        }
                        () = tokio::time::sleep_until(resync_at) => Trigger::now(Reason::Resync),
                        _ = heartbeat.tick() => {
                            self.status.beat();
                            continue;
                        }
                    }
                }
            };
            // What waits in the slot now happened before this pass reads anything.
            self.pending.clear();
            let ended = self.pass(trigger, &mut heartbeat, force).await;
            // What the pass freed goes back to the system before the loop idles, with
            // the cache's new entries first packed together (see `LoadCache::compact`).
            // After a pass that looked at a few prompts, the walk of the heap would
            // cost more than the pass: it waits until the loop has been idle a while
            // (a burst of commits is trimmed once, after its last pass).
            let packed = self.cache.lock().is_ok_and(|mut cache| cache.compact());
            if packed || !ended.small {
                crate::memory::release();
                trim_at = None;
            } else {
                trim_at = Some(Instant::now() + IDLE_TRIM);
            }
            resync_at = Instant::now() + jittered(self.settings.watch.resync_interval);
            if ended.forced {
                return Exit::Forced;
            }
            if once {
                return Exit::Once { ok: ended.ok };
            }
            self.rewatch().await;
        }
    }

    /// Reload the settings, run one pass, record what it came to.
    async fn pass(
        &mut self,
        trigger: Trigger,
        heartbeat: &mut tokio::time::Interval,
        force: &CancellationToken,
    ) -> Ended {
        let reason = trigger.reason.as_str();
        if let Err(err) = self.reload().await {
            let message = crate::error::chain(&err);
            tracing::error!(trigger = reason, error = %message, "the configuration cannot be loaded; no pass until it is fixed");
            self.status.config_invalid(&message);
            self.metrics.pass(reason, "stalled", 0.0, None);
            self.health = Health::Stalled;
            return Ended {
                ok: false,
                forced: false,
                small: true,
            };
        }
        self.status.started(reason);
        let options = PassOptions {
            source: self.source.clone(),
            dry_run: false,
            deploy: self.deploy,
            trigger: reason,
            // The whole account is listed on full passes only, not on every commit.
            unmanaged: self.settings.sync.report_unmanaged && trigger.reason.is_full(),
            // After a commit or a saved file, only what changed since the last pass.
            since: self
                .baseline
                .clone()
                .filter(|_| trigger.reason.is_incremental()),
            cache: Some(Arc::clone(&self.cache)),
        };
        let since = options.since.clone();
        let span = tracing::info_span!("pass", trigger = reason, revision = tracing::field::Empty);
        let started = Instant::now();
        let started_at = SystemTime::now();
        let result = {
            let progress = ProgressLog::default();
            let run = reconcile::run(&self.settings, &self.client, &options, &progress)
                .instrument(span.clone());
            tokio::pin!(run);
            loop {
                tokio::select! {
                    result = &mut run => break result,
                    _ = heartbeat.tick() => self.status.beat(),
                    () = force.cancelled() => {
                        tracing::warn!(trigger = reason, "shutdown deadline: the running pass is dropped (it is safe to kill)");
                        return Ended { ok: false, forced: true, small: false };
                    }
                }
            }
        };
        self.status.beat();
        let elapsed = started.elapsed();
        let mut record = PassRecord {
            trigger: reason,
            revision: None,
            started_at: status::timestamp(started_at),
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            outcome: "success",
            counts: Counts::default(),
            error: None,
        };
        let _entered = span.enter();
        match result {
            Ok(pass) => {
                self.baseline = Some(Arc::new(Baseline::after(
                    &pass,
                    since.as_deref(),
                    &self.settings,
                )));
                record.revision = revision(&pass);
                span.record("revision", record.revision.as_deref());
                let (counts, retry) = self.observe(&pass);
                record.counts = counts;
                let clean = counts.failed == 0 && counts.invalid_files == 0;
                record.outcome = if clean { "success" } else { "partial" };
                self.metrics
                    .pass(reason, record.outcome, elapsed.as_secs_f64(), Some(&counts));
                self.health = if retry {
                    let delay = self.backoff();
                    tracing::info!(
                        retry_in_ms = millis(delay),
                        "prompts failed for reasons that may pass: retrying"
                    );
                    Health::Backoff(Instant::now() + delay)
                } else {
                    self.failures = 0;
                    Health::Idle
                };
                tracing::info!(
                    trigger = reason,
                    revision = record.revision.as_deref(),
                    duration_ms = record.duration_ms,
                    outcome = record.outcome,
                    created = counts.created,
                    updated = counts.updated,
                    unchanged = counts.unchanged,
                    failed = counts.failed,
                    deployed = counts.deployed,
                    invalid_files = counts.invalid_files,
                    "pass finished"
                );
                self.status.completed(record);
                self.status.rate_limited(self.client.paused_until());
                let looked_at = pass.source.prompts.len().saturating_sub(pass.carried);
                Ended {
                    ok: clean,
                    forced: false,
                    small: since.is_some() && looked_at * 4 < pass.source.prompts.len(),
                }
            }
            Err(err) => {
                // What a pass that stopped early left behind is not known: the next
                // pass looks at everything.
                self.baseline = None;
                record.revision = err.partial.as_deref().and_then(revision);
                span.record("revision", record.revision.as_deref());
                record.error = Some(crate::error::chain(&err.error));
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
                    revision = record.revision.as_deref(),
                    duration_ms = record.duration_ms,
                    outcome = record.outcome,
                    retry_in_ms = retry_in.map(millis),
                    error = record.error.as_deref(),
                    "pass failed"
                );
                self.status.failed(record, stalled, retry_in);
                self.status.rate_limited(self.client.paused_until());
                Ended {
                    ok: false,
                    forced: false,
                    small: false,
                }
            }
        }
    }

    /// Load the settings again; a changed API setting or key gets a new client.
    async fn reload(&mut self) -> Result<(), Error> {
        let load = Arc::clone(&self.load);
        let settings = tokio::task::spawn_blocking(move || load())
            .await
            .map_err(|err| Error::Internal(format!("loading the settings: {err}")))??;
        if !same_api(&settings, &self.settings) {
            self.client = client(&settings, &self.metrics)?;
            tracing::info!("API settings or key changed: using them from now on");
        }
        if settings.watch.listen != self.settings.watch.listen {
            tracing::warn!(listen = %settings.watch.listen, "watch.listen changed; the probe server keeps its address until a restart");
        }
        let (new, old) = (&settings.watch, &self.settings.watch);
        if new.reconcile_token_file != old.reconcile_token_file
            || new.reconcile_min_interval != old.reconcile_min_interval
        {
            tracing::warn!(
                "watch.reconcile_token_file or watch.reconcile_min_interval changed; the probe server keeps the ones it started with until a restart (the token file's contents are read again as they change)"
            );
        }
        self.settings = settings;
        Ok(())
    }

    /// Counts for status and metrics, the per-prompt problems logged, and whether a
    /// failed prompt is worth retrying.
    fn observe(&self, pass: &Pass) -> (Counts, bool) {
        let report = PassReport::new(pass, Mode::Sync, false);
        let s = &report.summary;
        if let Some(unmanaged) = &report.unmanaged {
            self.status.set_unmanaged(unmanaged.len());
            self.metrics.unmanaged(unmanaged.len());
        }
        let drifted = report.prompts.iter().filter(|p| p.drift).count();
        let suspended = if pass.suspended {
            report.prompts.len()
        } else {
            report
                .prompts
                .iter()
                .filter(|p| p.skip_reason == Some("sync: false"))
                .count()
        };
        self.metrics.prompts(
            (report.prompts.len() + pass.carried).saturating_sub(s.failed),
            s.invalid_files,
            drifted,
            suspended,
        );
        for file in &report.invalid_files {
            for d in file.diagnostics.iter() {
                tracing::warn!(file = %d.path, line = d.line, column = d.column, release_tag = file.release_tag.as_deref(), "invalid prompt file: {}", d.message);
            }
        }
        for row in &report.prompts {
            if let Some(error) = &row.error {
                tracing::warn!(file = %row.file, prompt_id = row.prompt_id.as_deref(), error = %error, "prompt failed");
            }
            if let Some(error) = row.deploy.as_ref().and_then(|d| d.error.as_ref()) {
                tracing::warn!(file = %row.file, prompt_id = row.prompt_id.as_deref(), error = %error, "deploy failed");
            }
        }
        let retry = pass
            .sync
            .iter()
            .map(|(_, o)| o)
            .chain(pass.deploy.iter().map(|(_, o)| o))
            .flatten()
            .any(|outcome| {
                outcome
                    .as_ref()
                    .is_err_and(|failed| failed.error.class().is_transient())
            });
        let counts = Counts {
            created: s.created,
            updated: s.updated,
            unchanged: s.unchanged,
            skipped: s.skipped,
            failed: s.failed,
            deployed: s.deployed,
            invalid_files: s.invalid_files,
            drifted,
        };
        (counts, retry)
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

    /// Watch what matters for the settings and repository as they are now, and wait
    /// (at most [`WATCH_APPLY`]) until the watches are in place: a change made before
    /// then is read by the next pass, one made after makes an event.
    async fn rewatch(&mut self) {
        let inputs = watcher::Inputs {
            repo: self.settings.repo.clone(),
            config_file: self.settings.config_file.clone(),
            key_file: self.settings.api.api_key_file.clone(),
            worktree: self.source == SourceRev::Worktree,
        };
        match tokio::task::spawn_blocking(move || watcher::plan(&inputs)).await {
            Ok(mut set) => {
                set.generation = self.watch_set.borrow().generation + 1;
                let generation = set.generation;
                self.watch_set.send_replace(Arc::new(set));
                let applied = self.applied.wait_for(|applied| *applied >= generation);
                if tokio::time::timeout(WATCH_APPLY, applied).await.is_err() {
                    tracing::warn!(
                        timeout_ms = millis(WATCH_APPLY),
                        "the watches were not in place in time; the resync timer covers what they miss"
                    );
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot work out what to watch; the resync timer still runs")
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

/// The commit a pass read (`worktree@<HEAD>` for the working tree).
fn revision(pass: &Pass) -> Option<String> {
    let source = &pass.source.source;
    match (&source.commit, source.worktree) {
        (Some(commit), false) => Some(commit.clone()),
        (Some(commit), true) => Some(format!("worktree@{commit}")),
        (None, true) => Some("worktree".to_owned()),
        (None, false) => None,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `interval` ±5%.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(0.95 + fastrand::f64() * 0.1)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// SIGHUP asks for a pass now.
async fn sighup(triggers: Triggers, stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGHUP");
                return;
            }
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                got = hangups.recv() => {
                    if got.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP: reconciling now");
                    triggers.fire(Reason::Signal);
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = triggers;
        stop.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_five_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100));
            assert!(
                d >= Duration::from_secs(95) && d <= Duration::from_secs(105),
                "{d:?}"
            );
        }
    }
}
