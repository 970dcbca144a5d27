//! The daemon's workers beside the loop (the probe server, the file watcher with its
//! debouncer, the SIGHUP listener), supervised the way watchexec and kube-runtime keep
//! theirs: named tasks in one `JoinSet`, stopped by one token. A worker that ends or
//! panics before the daemon stops is noticed at once, logged with its name and why,
//! shown in `/status` (`workers_down`) and restarted after a backoff (1 s doubling to
//! 1 min; a worker that ran a minute starts from 1 s again). One that fails
//! [`MAX_FAILURES`] times in a row is given up: the daemon turns not ready with the
//! reason, and the loop goes on (the resync covers a dead watcher). Knows nothing of
//! what the workers do.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::status::Status;

/// Failures in a row after which a worker is given up.
pub(crate) const MAX_FAILURES: u32 = 6;
/// The first restart's delay; it doubles up to [`RESTART_MAX`].
const RESTART_MIN: Duration = Duration::from_secs(1);
const RESTART_MAX: Duration = Duration::from_secs(60);
/// A worker that ran this long before it failed starts its backoff again.
const HEALTHY: Duration = Duration::from_secs(60);
/// How long the workers get to stop after the token is cancelled.
const DRAIN: Duration = Duration::from_secs(5);

/// What a worker runs: `Ok` when it ended on its own, `Err` with why it stopped.
pub(crate) type Work = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Makes a worker's task, once at start and again at each restart.
pub(crate) type Start = Box<dyn FnMut() -> Work + Send>;

struct Worker {
    name: &'static str,
    start: Start,
    /// Failures in a row.
    failures: u32,
    started: Instant,
}

/// The workers and their restarts.
pub(crate) struct Supervisor {
    set: JoinSet<Result<(), String>>,
    workers: HashMap<Id, Worker>,
    status: Arc<Status>,
    /// The restart delays, from [`RESTART_MIN`] (shorter in tests).
    first_delay: Duration,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.workers.values().map(|w| w.name).collect();
        f.debug_struct("Supervisor")
            .field("workers", &names)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    pub(crate) fn new(status: Arc<Status>) -> Supervisor {
        Supervisor {
            set: JoinSet::new(),
            workers: HashMap::new(),
            status,
            first_delay: RESTART_MIN,
        }
    }

    /// Start worker `name` now.
    pub(crate) fn add(&mut self, name: &'static str, start: Start) {
        let worker = Worker {
            name,
            start,
            failures: 0,
            started: Instant::now(),
        };
        self.spawn(worker, Duration::ZERO);
    }

    fn spawn(&mut self, mut worker: Worker, delay: Duration) {
        let work = (worker.start)();
        let status = Arc::clone(&self.status);
        let name = worker.name;
        worker.started = Instant::now() + delay;
        let handle = self.set.spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
                status.worker_up(name);
                tracing::info!(worker = name, "worker restarted");
            }
            work.await
        });
        self.workers.insert(handle.id(), worker);
    }

    /// Watch the workers until `stop` is cancelled, then give them [`DRAIN`] to end.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                joined = self.set.join_next_with_id() => match joined {
                    Some(joined) => self.ended(joined, &stop),
                    None => {
                        stop.cancelled().await;
                        break;
                    }
                },
            }
        }
        let drained = tokio::time::timeout(DRAIN, async {
            while self.set.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::warn!(
                timeout_ms = u64::try_from(DRAIN.as_millis()).unwrap_or(u64::MAX),
                "workers did not stop in time; leaving them"
            );
            self.set.abort_all();
        }
    }

    /// A worker's task ended: restart it, or give it up.
    fn ended(
        &mut self,
        joined: Result<(Id, Result<(), String>), JoinError>,
        stop: &CancellationToken,
    ) {
        let (id, why) = match joined {
            Ok((id, Ok(()))) => (id, "it ended".to_owned()),
            Ok((id, Err(why))) => (id, why),
            Err(err) => (err.id(), why_failed(err)),
        };
        let Some(mut worker) = self.workers.remove(&id) else {
            return;
        };
        if stop.is_cancelled() {
            return;
        }
        let name = worker.name;
        if worker.started.elapsed() >= HEALTHY {
            worker.failures = 0;
        }
        worker.failures += 1;
        if worker.failures >= MAX_FAILURES {
            tracing::error!(
                worker = name,
                error = %why,
                failures = worker.failures,
                "a worker stopped again and is given up: the daemon is not ready until a restart"
            );
            self.status.worker_down(name, &why, true);
            return;
        }
        let delay = self
            .first_delay
            .saturating_mul(1 << (worker.failures - 1).min(16))
            .min(RESTART_MAX);
        tracing::error!(
            worker = name,
            error = %why,
            restart_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "a worker stopped; restarting it"
        );
        self.status.worker_down(name, &why, false);
        self.spawn(worker, delay);
    }
}

/// Why a task failed: its panic's message, or that it was cancelled.
fn why_failed(err: JoinError) -> String {
    if !err.is_panic() {
        return "it was cancelled".to_owned();
    }
    let panic = err.into_panic();
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("panicked: {message}")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A worker that fails (`panic` or `Err`) its first `failures` runs, then runs
    /// until stopped; counts its starts.
    fn flaky(
        starts: &Arc<AtomicU32>,
        failures: u32,
        panic: bool,
        stop: &CancellationToken,
    ) -> Start {
        let starts = Arc::clone(starts);
        let stop = stop.clone();
        Box::new(move || {
            let n = starts.fetch_add(1, Ordering::SeqCst) + 1;
            let stop = stop.clone();
            Box::pin(async move {
                if n <= failures {
                    if panic {
                        panic!("boom {n}");
                    }
                    return Err(format!("broke {n}"));
                }
                stop.cancelled().await;
                Ok(())
            })
        })
    }

    fn supervisor(status: &Arc<Status>) -> Supervisor {
        let mut supervisor = Supervisor::new(Arc::clone(status));
        supervisor.first_delay = Duration::from_millis(10);
        supervisor
    }

    async fn until(what: &str, condition: impl Fn() -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while !condition() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        assert!(waited.await.is_ok(), "timed out waiting for {what}");
    }

    #[tokio::test]
    async fn a_worker_that_panics_is_restarted_and_shows_up_again() {
        let status = Arc::new(Status::new("events"));
        let stop = CancellationToken::new();
        let starts = Arc::new(AtomicU32::new(0));
        let mut supervisor = supervisor(&status);
        supervisor.add(
            super::super::status::WATCHER,
            flaky(&starts, 2, true, &stop),
        );
        let task = tokio::spawn(supervisor.run(stop.clone()));
        until("the third start", || starts.load(Ordering::SeqCst) == 3).await;
        until("the worker to be up", || {
            status.snapshot().workers_down.is_empty()
        })
        .await;
        assert!(
            status.readiness().is_err(),
            "not ready: no pass ran, that is all"
        );
        assert!(
            status.readiness().unwrap_err().contains("no pass"),
            "a restarted worker is no reason to be unready"
        );
        stop.cancel();
        task.await.unwrap();
        assert_eq!(
            starts.load(Ordering::SeqCst),
            3,
            "no restart after the stop"
        );
    }

    #[tokio::test]
    async fn a_worker_that_keeps_failing_is_given_up_and_the_daemon_is_not_ready() {
        let status = Arc::new(Status::new("events"));
        let stop = CancellationToken::new();
        let starts = Arc::new(AtomicU32::new(0));
        let mut supervisor = supervisor(&status);
        supervisor.add("probe server", flaky(&starts, u32::MAX, false, &stop));
        let task = tokio::spawn(supervisor.run(stop.clone()));
        until("the worker to be given up", || {
            status
                .snapshot()
                .workers_down
                .get("probe server")
                .is_some_and(|down| down.given_up)
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), MAX_FAILURES);
        let why = status.readiness().unwrap_err();
        assert!(
            why.contains("probe server") && why.contains("broke 6"),
            "{why}"
        );
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn workers_that_end_at_the_stop_are_not_restarted() {
        let status = Arc::new(Status::new("events"));
        let stop = CancellationToken::new();
        let starts = Arc::new(AtomicU32::new(0));
        let mut supervisor = supervisor(&status);
        supervisor.add("sighup", flaky(&starts, 0, false, &stop));
        let task = tokio::spawn(supervisor.run(stop.clone()));
        until("the start", || starts.load(Ordering::SeqCst) == 1).await;
        stop.cancel();
        task.await.unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert!(status.snapshot().workers_down.is_empty());
    }
}
