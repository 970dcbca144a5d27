//! `promptsync watch`, the daemon: one loop runs reconcile passes, one at a time, and
//! workers beside it (started in `workers`, kept by [`supervise`]: named, restarted
//! when one ends or panics, stopped by one cancellation token) produce triggers and
//! serve the probes; what a finished pass came to is worked out in `outcome`:
//!
//! - [`watcher`]: file system events on the directories that matter (or polling where
//!   events cannot be had), debounced into one trigger per burst;
//! - SIGHUP; `POST /reconcile` on the probe [`server`]; the periodic resync (the
//!   loop's own timer, ±5% jitter, counted from the last full pass), the safety net
//!   for missed events and edits made in the Respan UI;
//! - a retry when a failed pass's backoff runs out.
//!
//! Triggers meet in a slot of capacity one ([`trigger`]): events during a pass make
//! one follow-up pass, which looks at as much as the most demanding of them asked
//! (a commit: what changed; a person's request or the resync: everything). Before each
//! pass the settings are loaded again (a new key file or configuration takes effect
//! without a restart; a bad one stalls the loop), and the repository is opened again
//! through its configured path (a git-sync link that was swapped is followed). The
//! pass does not know what triggered it.
//!
//! Outcomes, like Flux's: a pass that ran to its end is `success` or `partial`
//! (prompts failed or files are invalid; a prompt whose write or read failed for a
//! reason that may pass is retried with backoff); one that ended early is `transient`
//! (backoff: 750 ms doubling to 5 min, with jitter), `stalled` (a refused key, bad
//! configuration: no retries until something changes) or `fatal`. Nothing ends the
//! daemon but a shutdown: [`run`] takes two tokens, `shutdown` (stop taking triggers,
//! let the running pass finish) and `force` (drop the running pass; it is kill-safe).
//! Every wait of the loop (a reload, a rewatch, work on a blocking thread) gives way
//! to them, so a hung mount never keeps the daemon from exiting.

pub mod door;
pub mod hooks;
pub mod http;
pub mod metrics;
pub mod notices;
mod outcome;
pub mod server;
pub mod source;
pub mod status;
pub mod supervise;
pub mod trigger;
pub mod watcher;
mod workers;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::api::{ApiError, Client};
use crate::apply::ProgressLog;
use crate::baseline::Baseline;
use crate::config::Settings;
use crate::desired::LoadCache;
use crate::desired::SourceRev;
use crate::error::FailureClass;
use crate::reconcile::{self, PassOptions};
use metrics::Metrics;
use outcome::{digest, revision};
use status::{Counts, PassRecord, Status};
use supervise::Supervisor;
use trigger::{Kind, Pending, Reason, Trigger, Triggers};
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

/// Reloads the settings before each pass: one per target the daemon syncs, in the
/// order the daemon was started with.
pub type LoadSettings = Box<dyn Fn() -> Result<Vec<Settings>, Error> + Send + Sync>;

/// How to run the daemon.
pub struct Config {
    /// The settings the command started with, one per target the daemon syncs (at
    /// least one). The first one's daemon-wide parts (`[watch]`, `[notify]`, the
    /// repository) are the daemon's.
    pub targets: Vec<Settings>,
    /// Loads them again (configuration file, environment, key file).
    pub load: Arc<LoadSettings>,
    pub source: SourceRev,
    /// Deploy release tags (off with `--no-deploy`).
    pub deploy: bool,
    /// One pass, then exit with its status (`--once`); no watcher, no probes.
    pub once: bool,
    /// The probe server's socket, bound by the caller.
    pub listener: Option<TcpListener>,
    /// The remote source, when the daemon fetches one (`[source]`): `load` reads its
    /// settings from it, each pass syncs its last good revision, and a worker looks
    /// at the remote.
    pub remote: Option<Arc<source::Remote>>,
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
    /// The deadline or a second signal dropped the running pass (or a wait that would
    /// have started one).
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
    let Some(first) = config.targets.first().cloned() else {
        return Err(Error::Internal(
            "the daemon was started without a target".into(),
        ));
    };
    let watch_settings = first.watch.clone();
    // The watcher says how it watches once it runs (`events`, or `polling` when asked
    // or when events cannot be had); until then, and never in `--once`, it is not.
    let status = Arc::new(Status::new("starting"));
    // Several targets: each its own status, metrics and client; the daemon's status
    // and metrics show them side by side. One target: the daemon's are its own.
    let several = config.targets.len() > 1;
    let metrics = Arc::new(if several {
        Metrics::new()
    } else {
        Metrics::for_target(first.has_targets().then_some(first.target.as_str()))
    });
    let mut lanes = Vec::with_capacity(config.targets.len());
    for settings in config.targets {
        let (status, metrics) = if several {
            (
                Arc::new(Status::new("starting")),
                Arc::new(Metrics::for_target(Some(&settings.target))),
            )
        } else {
            (Arc::clone(&status), Arc::clone(&metrics))
        };
        lanes.push(Lane::new(settings, status, metrics)?);
    }
    if several {
        status.set_targets(
            watch_settings.ready,
            lanes
                .iter()
                .map(|lane| (lane.settings.target.clone(), Arc::clone(&lane.status)))
                .collect(),
        );
        metrics.set_targets(lanes.iter().map(|lane| Arc::clone(&lane.metrics)).collect());
    } else if first.has_targets() {
        status.set_target(&first.target);
    }
    // One notifier for the daemon's life (`[notify]`), read by `/status` and `/metrics`.
    let shared_notices = notices::Shared::default();
    status.set_notices(shared_notices.clone());
    metrics.set_notices(shared_notices.clone());
    let mut notices = notices::Notices::new(shared_notices);
    notices.configure(&first).await;
    let (triggers, pending) = trigger::slot();
    let (watch_set, watch_set_rx) = watch::channel(Arc::new(WatchSet::default()));
    let (applied_tx, applied) = watch::channel(0);
    let applied_tx = Arc::new(applied_tx);
    let stop = CancellationToken::new();
    let mut supervisor = Supervisor::new(Arc::clone(&status));
    if let Some(remote) = &config.remote {
        remote.attach(Arc::clone(&status));
    }
    if !config.once {
        workers::start(
            &mut supervisor,
            workers::Shared {
                listener: config.listener,
                status: Arc::clone(&status),
                metrics: Arc::clone(&metrics),
                triggers: triggers.clone(),
                stop: stop.clone(),
                watch: watch_settings,
                watch_set: watch_set_rx,
                applied: applied_tx,
                remote: config.remote.clone(),
                hooks: first.webhook.clone(),
            },
        )?;
    }
    let supervision = tokio::spawn(supervisor.run(stop.clone()));
    let mut lp = Loop {
        settings: first,
        load: config.load,
        lanes,
        source: config.source,
        deploy: config.deploy,
        status,
        pending,
        watch_set,
        applied,
        cache: Arc::default(),
        notices,
        remote: config.remote,
        _triggers: triggers,
    };
    let exit = lp.run(config.once, &shutdown, &force).await;
    stop.cancel();
    if let Err(err) = supervision.await {
        tracing::error!(error = %err, "the workers' supervisor failed");
    }
    Ok(exit)
}

/// Where the loop stands between passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Idle,
    /// Retry at this instant (a change ends the wait early).
    Backoff(Instant),
    /// Needs a person: only a change, a signal, a request or the resync runs a pass.
    Stalled,
}

struct Loop {
    /// The first target's settings: their daemon-wide parts (`[watch]`, the
    /// repository, the configuration file) are the daemon's.
    settings: Settings,
    load: Arc<LoadSettings>,
    /// The targets, each with its own client, baseline and backoff.
    lanes: Vec<Lane>,
    source: SourceRev,
    deploy: bool,
    /// The daemon's status (with one target, also the target's).
    status: Arc<Status>,
    pending: Pending,
    watch_set: watch::Sender<Arc<WatchSet>>,
    /// The generation of the watch set in place (see [`Loop::rewatch`]).
    applied: watch::Receiver<u64>,
    /// The valid prompt files of earlier passes, by blob: a commit costs the files it
    /// changed, and a revision's files are read once for every target.
    cache: Arc<std::sync::Mutex<LoadCache>>,
    /// Commit statuses and events (`[notify]`), delivered in the background.
    notices: notices::Notices,
    /// The remote source: each pass syncs the revision its settings were read at.
    remote: Option<Arc<source::Remote>>,
    /// Keeps the slot open while no worker runs (`--once`).
    _triggers: Triggers,
}

/// One target of the daemon: what it syncs to, and where it stands. A target's
/// failure, backoff or stall is its own.
struct Lane {
    settings: Settings,
    client: Client,
    status: Arc<Status>,
    metrics: Arc<Metrics>,
    health: Health,
    /// What the last pass left in sync, for incremental passes.
    baseline: Option<Arc<Baseline>>,
    /// Failed passes in a row (for the backoff).
    failures: u32,
}

/// What the targets' passes share: what one pass reads, and how.
struct PassContext<'a> {
    source: &'a SourceRev,
    deploy: bool,
    cache: &'a Arc<std::sync::Mutex<LoadCache>>,
    notices: &'a notices::Notices,
    trigger: Trigger,
    force: &'a CancellationToken,
}

/// What one pass came to, for the loop's next step.
struct Ended {
    ok: bool,
    /// The daemon must end now: a shutdown or force came while the pass was being
    /// set up, or force dropped it.
    exit: Option<Exit>,
    /// An incremental pass that looked at few of the prompts: it freed little.
    small: bool,
    /// One more pass is due at once (see [`Reason::Requeue`]).
    requeue: bool,
}

impl Ended {
    fn exit(exit: Exit) -> Ended {
        Ended {
            ok: false,
            exit: Some(exit),
            small: true,
            requeue: false,
        }
    }

    fn failed(small: bool) -> Ended {
        Ended {
            ok: false,
            exit: None,
            small,
            requeue: false,
        }
    }
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
        // The resync is due this long after the last full pass, whatever ran since: a
        // repository that commits more often than the interval still gets it.
        let mut resync_at = Instant::now() + jittered(self.settings.watch.resync_interval);
        // When to hand free heap pages back after small passes: once the loop is idle.
        let mut trim_at: Option<Instant> = None;
        if !once {
            // Watch before the first pass reads: a commit made during it must
            // trigger the next one, not wait for the resync timer.
            if let Some(exit) = self.rewatch(shutdown, force).await {
                return exit;
            }
        }
        loop {
            let trigger = match next.take() {
                // A pass of the loop's own (the first, a requeue) starts no more once
                // the shutdown came.
                Some(_) if shutdown.is_cancelled() => return Exit::Stopped,
                Some(trigger) => trigger,
                None => {
                    let retry_at = self.retry_at();
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => return Exit::Stopped,
                        trigger = self.pending.next() => match trigger {
                            None => return Exit::Stopped,
                            Some(t) => t,
                        },
                        () = sleep_until(retry_at), if retry_at.is_some() => Trigger::now(Reason::Retry),
                        () = sleep_until(trim_at), if trim_at.is_some() => {
                            trim_at = None;
                            if blocking(force, crate::memory::release).await.is_none() && force.is_cancelled() {
                                return Exit::Forced;
                            }
                            continue;
                        }
                        // While backing off, the retry is the next pass: a resync that
                        // falls due meanwhile makes it a full one (below), never a pass
                        // of its own.
                        () = tokio::time::sleep_until(resync_at), if retry_at.is_none() => Trigger::now(Reason::Resync),
                        _ = heartbeat.tick() => {
                            self.status.beat();
                            continue;
                        }
                    }
                }
            };
            // What waits in the slot now happened before this pass reads anything.
            let mut trigger = trigger.merge_opt(self.pending.take());
            if Instant::now() >= resync_at {
                trigger = trigger.merge(Trigger::now(Reason::Resync));
            }
            let ended = self.pass(trigger, &mut heartbeat, shutdown, force).await;
            if let Some(exit) = ended.exit {
                return exit;
            }
            if trigger.kind() == Kind::Full {
                resync_at = Instant::now() + jittered(self.settings.watch.resync_interval);
            }
            // What the pass freed goes back to the system before the loop idles, with
            // the cache's new entries first packed together (see `LoadCache::compact`).
            // After a pass that looked at a few prompts, the walk of the heap would
            // cost more than the pass: it waits until the loop has been idle a while
            // (a burst of commits is trimmed once, after its last pass). Both walk
            // memory: they run on a blocking thread.
            let cache = Arc::clone(&self.cache);
            let packed = blocking(force, move || {
                cache.lock().is_ok_and(|mut cache| cache.compact())
            })
            .await;
            let Some(packed) = packed.or((!force.is_cancelled()).then_some(false)) else {
                return Exit::Forced;
            };
            if packed || !ended.small {
                if blocking(force, crate::memory::release).await.is_none() && force.is_cancelled() {
                    return Exit::Forced;
                }
                trim_at = None;
            } else {
                trim_at = Some(Instant::now() + IDLE_TRIM);
            }
            if once {
                return Exit::Once { ok: ended.ok };
            }
            if ended.requeue {
                next = Some(Trigger::now(Reason::Requeue));
            }
            if let Some(exit) = self.rewatch(shutdown, force).await {
                return exit;
            }
        }
    }

    /// Reload the settings, run one pass of every target it is for (concurrently),
    /// record what each came to.
    async fn pass(
        &mut self,
        trigger: Trigger,
        heartbeat: &mut tokio::time::Interval,
        shutdown: &CancellationToken,
        force: &CancellationToken,
    ) -> Ended {
        let reason = trigger.reason.as_str();
        let reasons = trigger.reasons.label();
        let kind = trigger.kind();
        // No pass has begun: a shutdown or force ends the wait for the settings (a
        // configuration or key file on a hung mount).
        let reloaded = tokio::select! {
            reloaded = self.reload() => reloaded,
            () = shutdown.cancelled() => return Ended::exit(Exit::Stopped),
            () = force.cancelled() => return Ended::exit(Exit::Forced),
        };
        let problems = match reloaded {
            Ok(problems) => problems,
            Err(err) if err.class() == FailureClass::Transient => {
                // A remote source that could not be looked at before any revision was
                // good (the start): backed off like an unreachable API.
                let message = crate::error::chain(&err);
                for lane in &mut self.lanes {
                    lane.transient(trigger, &message);
                }
                return Ended::failed(true);
            }
            Err(err) => {
                invalid_logged(trigger, &err);
                for lane in &mut self.lanes {
                    lane.invalid(trigger, &err, &self.notices);
                }
                return Ended::failed(true);
            }
        };
        if let Some(revision) = self.remote.as_ref().and_then(|r| r.loaded_revision()) {
            self.source = SourceRev::Commit(revision);
        }
        // A retry is for the targets whose backoff ran out; anything else is for all.
        let retry_only = trigger.reasons.iter().all(|r| r == Reason::Retry);
        let now = Instant::now();
        let several = self.lanes.len() > 1;
        let ctx = PassContext {
            source: &self.source,
            deploy: self.deploy,
            cache: &self.cache,
            notices: &self.notices,
            trigger,
            force,
        };
        let ctx = &ctx;
        let runs = self
            .lanes
            .iter_mut()
            .zip(problems)
            .filter(|(lane, _)| !retry_only || lane.due(now))
            .map(|(lane, problem)| {
                let span = if several {
                    tracing::info_span!("target", target_name = %lane.settings.target)
                } else {
                    tracing::Span::none()
                };
                tracing::Instrument::instrument(
                    async move {
                        match problem {
                            Some(err) => {
                                invalid_logged(ctx.trigger, &err);
                                lane.invalid(ctx.trigger, &err, ctx.notices);
                                Ended::failed(true)
                            }
                            None => lane.pass(ctx).await,
                        }
                    },
                    span,
                )
            });
        let joined = futures_util::future::join_all(runs);
        tokio::pin!(joined);
        let ended = loop {
            tokio::select! {
                ended = &mut joined => break ended,
                _ = heartbeat.tick() => self.status.beat(),
                () = force.cancelled() => {
                    tracing::warn!(trigger = reason, reasons, kind = kind.as_str(), "the running pass is dropped (it is safe to kill: the next start converges)");
                    return Ended::exit(Exit::Forced);
                }
            }
        };
        self.status.beat();
        ended.into_iter().fold(
            Ended {
                ok: true,
                exit: None,
                small: true,
                requeue: false,
            },
            |all, one| Ended {
                ok: all.ok && one.ok,
                exit: all.exit.or(one.exit),
                small: all.small && one.small,
                requeue: all.requeue || one.requeue,
            },
        )
    }

    /// When the soonest target backoff runs out, if one backs off.
    fn retry_at(&self) -> Option<Instant> {
        self.lanes
            .iter()
            .filter_map(|lane| match lane.health {
                Health::Backoff(at) => Some(at),
                Health::Idle | Health::Stalled => None,
            })
            .min()
    }

    /// Load the settings again (a changed API setting or key gets a new client): a
    /// problem of the whole configuration is the error; one of a single target (its
    /// key, or it is gone from the configuration) is that target's, by position.
    async fn reload(&mut self) -> Result<Vec<Option<Error>>, Error> {
        let load = Arc::clone(&self.load);
        let loaded = tokio::task::spawn_blocking(move || load())
            .await
            .map_err(|err| Error::Internal(format!("loading the settings: {err}")))??;
        let Some(first) = loaded.first() else {
            return Err(Error::Internal("the settings name no target".into()));
        };
        self.notices.configure(first).await;
        if first.watch.listen != self.settings.watch.listen {
            tracing::warn!(listen = %first.watch.listen, "watch.listen changed; the probe server keeps its address until a restart");
        }
        let (new, old) = (&first.watch, &self.settings.watch);
        if new.reconcile_token_file != old.reconcile_token_file
            || new.reconcile_min_interval != old.reconcile_min_interval
        {
            tracing::warn!(
                "watch.reconcile_token_file or watch.reconcile_min_interval changed; the probe server keeps the ones it started with until a restart (the token file's contents are read again as they change)"
            );
        }
        self.settings = first.clone();
        for added in loaded
            .iter()
            .filter(|s| !self.lanes.iter().any(|l| l.settings.target == s.target))
            .filter(|_| loaded.len() > 1)
        {
            tracing::warn!(target_name = %added.target, "a target was added to the configuration; the daemon syncs the targets it started with until a restart");
        }
        let problems = self
            .lanes
            .iter_mut()
            .map(|lane| {
                // A target by its name; the only one there is when the daemon runs
                // one (as before targets: renaming it keeps it).
                let settings = loaded
                    .iter()
                    .find(|s| s.target == lane.settings.target)
                    .or_else(|| loaded.first().filter(|_| loaded.len() == 1))
                    .cloned();
                match settings {
                    Some(settings) => lane.reload(settings).err(),
                    None => Some(Error::Usage(format!(
                        "target {} is no longer in the configuration; the daemon syncs the targets it started with until a restart",
                        lane.settings.target
                    ))),
                }
            })
            .collect();
        Ok(problems)
    }

    /// Watch what matters for the settings and repository as they are now, and wait
    /// (at most [`WATCH_APPLY`]) until the watches are in place: a change made before
    /// then is read by the next pass, one made after makes an event. Working out the
    /// set opens the repository: a shutdown or force ends the wait (`Some` says how
    /// the daemon ends).
    async fn rewatch(
        &mut self,
        shutdown: &CancellationToken,
        force: &CancellationToken,
    ) -> Option<Exit> {
        let inputs = watcher::Inputs {
            repo: self.settings.repo.clone(),
            config_file: self.settings.config_file.clone(),
            key_files: self
                .lanes
                .iter()
                .filter_map(|lane| lane.settings.api.api_key_file.clone())
                .collect(),
            worktree: self.source == SourceRev::Worktree,
            remote: self.remote.is_some(),
        };
        let planned = tokio::task::spawn_blocking(move || watcher::plan(&inputs));
        let planned = tokio::select! {
            planned = planned => planned,
            () = shutdown.cancelled() => return Some(Exit::Stopped),
            () = force.cancelled() => return Some(Exit::Forced),
        };
        match planned {
            Ok(mut set) => {
                set.generation = self.watch_set.borrow().generation + 1;
                let generation = set.generation;
                self.watch_set.send_replace(Arc::new(set));
                let applied = self.applied.wait_for(|applied| *applied >= generation);
                let waited = tokio::select! {
                    waited = tokio::time::timeout(WATCH_APPLY, applied) => waited,
                    () = shutdown.cancelled() => return Some(Exit::Stopped),
                    () = force.cancelled() => return Some(Exit::Forced),
                };
                if waited.is_err() {
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
        None
    }
}

impl Lane {
    fn new(settings: Settings, status: Arc<Status>, metrics: Arc<Metrics>) -> Result<Lane, Error> {
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
    fn due(&self, now: Instant) -> bool {
        matches!(self.health, Health::Backoff(at) if at <= now)
    }

    /// Take reloaded settings; a changed API setting or key gets a new client.
    fn reload(&mut self, settings: Settings) -> Result<(), Error> {
        if !same_api(&settings, &self.settings) {
            self.client = client(&settings, &self.metrics)?;
            tracing::info!("API settings or key changed: using them from now on");
        }
        self.settings = settings;
        Ok(())
    }

    /// No pass: the settings could not be had for a reason that may pass.
    fn transient(&mut self, trigger: Trigger, message: &str) {
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
    fn invalid(&mut self, trigger: Trigger, err: &Error, notices: &notices::Notices) {
        let reason = trigger.reason.as_str();
        let message = crate::error::chain(err);
        self.status.config_invalid(&message);
        self.metrics.pass(reason, "stalled", 0.0, None);
        notices.not_started(&self.settings.target, err);
        self.health = Health::Stalled;
    }

    /// Run this target's pass, record what it came to.
    async fn pass(&mut self, ctx: &PassContext<'_>) -> Ended {
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

/// Log that the configuration (or a target's part of it) cannot be loaded.
fn invalid_logged(trigger: Trigger, err: &Error) {
    let message = crate::error::chain(err);
    tracing::error!(trigger = trigger.reason.as_str(), reasons = trigger.reasons.label(), error = %message, "the configuration cannot be loaded; no pass until it is fixed");
}

/// Run `work` on a blocking thread; `None` when `force` comes first (the thread is
/// left to finish on its own) or when it panicked.
async fn blocking<T: Send + 'static>(
    force: &CancellationToken,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let job = tokio::task::spawn_blocking(work);
    tokio::select! {
        done = job => match done {
            Ok(value) => Some(value),
            Err(err) => {
                tracing::error!(error = %err, "work on a blocking thread failed");
                None
            }
        },
        () = force.cancelled() => None,
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
