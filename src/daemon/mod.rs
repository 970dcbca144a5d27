//! `promptsync watch`, the daemon: one loop (`runner`) runs reconcile passes, one at a
//! time, each target's on its own lane (`lane`: its client, baseline and backoff), and
//! workers beside it (started in `workers`, kept by [`supervise`]: named, restarted
//! when one ends or panics, stopped by one cancellation token) produce triggers and
//! serve the probes; what a finished pass came to is worked out in `outcome`. This
//! file assembles them ([`run`]: the statuses and metrics, the lanes, the workers,
//! the loop, the shutdown):
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

pub(crate) mod door;
pub(crate) mod hooks;
pub(crate) mod http;
mod lane;
pub(crate) mod metrics;
pub(crate) mod notices;
mod outcome;
mod runner;
pub(crate) mod server;
pub(crate) mod source;
pub(crate) mod status;
pub(crate) mod supervise;
pub(crate) mod trigger;
mod waits;
pub(crate) mod watcher;
mod workers;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::config::Settings;
use crate::desired::SourceRev;
use lane::Lane;
use metrics::Metrics;
pub(crate) use outcome::Exit;
pub(crate) use runner::LoadSettings;
use runner::Loop;
use status::Status;
use supervise::Supervisor;
use watcher::WatchSet;

/// How to run the daemon.
pub(crate) struct Config {
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

/// Run until `shutdown` (or, with `once`, for one pass).
pub(crate) async fn run(
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
