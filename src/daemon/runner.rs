//! The loop: one pass at a time. It waits for a trigger (the slot, the resync timer,
//! the soonest target's backoff), reloads the settings, runs every target's pass on
//! its [`Lane`] (concurrently), hands what the pass freed back to the system, and
//! puts the watches for the settings as they now are in place. Every wait gives way
//! to the shutdown and force tokens.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::config::Settings;
use crate::desired::{LoadCache, SourceRev};
use crate::failure::FailureClass;

use super::lane::{Health, Lane, PassContext};
use super::notices;
use super::outcome::{Ended, Exit};
use super::source;
use super::status::Status;
use super::trigger::{Kind, Pending, Reason, Trigger, Triggers};
use super::waits::{blocking, millis, sleep_until};
use super::watcher::{self, WatchSet};

/// Reloads the settings before each pass: one per target the daemon syncs, in the
/// order the daemon was started with.
pub(crate) type LoadSettings = Box<dyn Fn() -> Result<Vec<Settings>, Error> + Send + Sync>;

/// How often the loop proves it is alive (liveness reads it).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long the loop is idle after a pass before it trims the heap (after a small
/// pass, at all; after a large one, again): the pass's connections are closed by
/// then, and the read buffer each held is freed (`api::POOL_IDLE`).
const IDLE_TRIM: Duration = Duration::from_secs(2 * crate::api::POOL_IDLE.as_secs() + 1);
/// How long the loop waits for the watcher to put a new watch set in place.
const WATCH_APPLY: Duration = Duration::from_secs(2);

pub(super) struct Loop {
    /// The first target's settings: their daemon-wide parts (`[watch]`, the
    /// repository, the configuration file) are the daemon's.
    pub(super) settings: Settings,
    pub(super) load: Arc<LoadSettings>,
    /// The targets, each with its own client, baseline and backoff.
    pub(super) lanes: Vec<Lane>,
    pub(super) source: SourceRev,
    pub(super) deploy: bool,
    /// The daemon's status (with one target, also the target's).
    pub(super) status: Arc<Status>,
    pub(super) pending: Pending,
    pub(super) watch_set: watch::Sender<Arc<WatchSet>>,
    /// The generation of the watch set in place (see [`Loop::rewatch`]).
    pub(super) applied: watch::Receiver<u64>,
    /// The valid prompt files of earlier passes, by blob: a commit costs the files it
    /// changed, and a revision's files are read once for every target.
    pub(super) cache: Arc<std::sync::Mutex<LoadCache>>,
    /// Commit statuses and events (`[notify]`), delivered in the background.
    pub(super) notices: notices::Notices,
    /// The remote source: each pass syncs the revision its settings were read at.
    pub(super) remote: Option<Arc<source::Remote>>,
    /// Keeps the slot open while no worker runs (`--once`).
    pub(super) _triggers: Triggers,
}

impl Loop {
    pub(super) async fn run(
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
            // (a burst of commits is trimmed once, after its last pass), as the trim
            // of what the pass's connections held does after any pass. Both walk
            // memory: they run on a blocking thread.
            let cache = Arc::clone(&self.cache);
            let packed = blocking(force, move || {
                cache.lock().is_ok_and(|mut cache| cache.compact())
            })
            .await;
            let Some(packed) = packed.or((!force.is_cancelled()).then_some(false)) else {
                return Exit::Forced;
            };
            if (packed || !ended.small)
                && blocking(force, crate::memory::release).await.is_none()
                && force.is_cancelled()
            {
                return Exit::Forced;
            }
            trim_at = Some(Instant::now() + IDLE_TRIM);
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
                let message = crate::failure::chain(&err);
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

/// Log that the configuration (or a target's part of it) cannot be loaded.
fn invalid_logged(trigger: Trigger, err: &Error) {
    let message = crate::failure::chain(err);
    tracing::error!(trigger = trigger.reason.as_str(), reasons = trigger.reasons.label(), error = %message, "the configuration cannot be loaded; no pass until it is fixed");
}

/// `interval` ±5%.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(0.95 + fastrand::f64() * 0.1)
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
