//! Delivery in the background: one worker per receiver (a forge's statuses, a webhook,
//! the exec hook), each with a small queue, so a hung endpoint holds up only its own
//! messages and never a pass. A failed delivery is retried with backoff (1 s doubling
//! to 30 s, jittered, or the server's `Retry-After`) within `notify.retry_max_elapsed`,
//! then dropped and counted; a newer status for the same commit and context replaces
//! one still waiting; events of one family (failures and recoveries, deploys, drift)
//! that come within `notify.min_interval` of the last one sent are held and sent as
//! one when the time is up. What each worker did is kept for `/status` and metrics.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::event::{Payload, family};
use super::exec::ExecHook;
use super::forge::Forge;
use super::http::Failure;
use super::status::CommitStatus;
use super::webhook::{Webhook, message_id};

/// Messages waiting for one receiver; more are dropped (and counted).
pub(crate) const QUEUE: usize = 64;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where messages go.
#[derive(Debug, Clone)]
pub(crate) enum Receiver {
    Forge(Forge),
    Webhook(Webhook),
    Exec(ExecHook),
}

impl Receiver {
    pub(crate) fn label(&self) -> String {
        match self {
            Receiver::Forge(forge) => forge.label(),
            Receiver::Webhook(hook) => hook.label.clone(),
            Receiver::Exec(_) => "exec".to_owned(),
        }
    }

    /// The events it asked for (`None`: it takes statuses, not events).
    fn events(&self) -> Option<&[String]> {
        match self {
            Receiver::Forge(_) => None,
            Receiver::Webhook(hook) => Some(&hook.events),
            Receiver::Exec(hook) => Some(hook.events()),
        }
    }
}

/// One message for one receiver.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    Status(CommitStatus),
    /// An event payload, with its message id (the same on every retry).
    Event(String, Box<Payload>),
}

/// What a receiver's worker has done, for `/status` and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ReceiverState {
    pub receiver: String,
    pub delivered: u64,
    /// Given up after retries, or refused.
    pub failed: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Held back by `notify.min_interval` and coalesced.
    pub held: u64,
    /// Retries so far.
    pub retries: u64,
    /// Messages waiting or being retried now.
    pub pending: usize,
    pub last_error: Option<String>,
    pub last_delivered_at: Option<String>,
    pub last_failed_at: Option<String>,
}

/// A running worker's handle.
#[derive(Debug)]
pub(crate) struct Handle {
    pub receiver: Receiver,
    pub sender: mpsc::Sender<Job>,
    pub state: Arc<Mutex<ReceiverState>>,
}

impl Handle {
    /// Hand `job` over without waiting: a full queue drops it.
    pub(crate) fn offer(&self, job: Job) {
        let job = match (&self.receiver, job) {
            (Receiver::Forge(_), job @ Job::Status(_)) => job,
            (Receiver::Forge(_), Job::Event(..)) | (_, Job::Status(_)) => return,
            (receiver, Job::Event(id, payload)) => {
                let wanted = receiver.events().unwrap_or(&[]);
                let mut payload = *payload;
                payload
                    .data
                    .events
                    .retain(|e| wanted.iter().any(|w| w == e));
                let Some(first) = payload.data.events.first().copied() else {
                    return;
                };
                payload.kind = first;
                Job::Event(id, Box::new(payload))
            }
        };
        match self.sender.try_send(job) {
            Ok(()) => update(&self.state, |s| s.pending += 1),
            Err(_) => {
                tracing::warn!(receiver = %self.receiver.label(), "the notification queue is full; a message is dropped");
                update(&self.state, |s| s.dropped += 1);
            }
        }
    }
}

/// Start the worker of `receiver` on the current runtime.
pub(crate) fn spawn(receiver: Receiver, timing: Timing) -> (Handle, tokio::task::JoinHandle<()>) {
    let (sender, jobs) = mpsc::channel(QUEUE);
    let state = Arc::new(Mutex::new(ReceiverState {
        receiver: receiver.label(),
        ..ReceiverState::default()
    }));
    let worker = Worker {
        receiver: receiver.clone(),
        jobs,
        state: Arc::clone(&state),
        timing,
        queue: VecDeque::new(),
        sent: HashMap::new(),
        held: HashMap::new(),
    };
    let task = tokio::spawn(worker.run());
    (
        Handle {
            receiver,
            sender,
            state,
        },
        task,
    )
}

/// The delivery settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub min_interval: Duration,
    pub retry_max_elapsed: Duration,
}

struct Worker {
    receiver: Receiver,
    jobs: mpsc::Receiver<Job>,
    state: Arc<Mutex<ReceiverState>>,
    timing: Timing,
    queue: VecDeque<Job>,
    /// Per family: when the last message was queued to be sent, and its kind.
    sent: HashMap<&'static str, (Instant, &'static str)>,
    /// Per family: the message held back, and when it may go.
    held: HashMap<&'static str, (Instant, String, Box<Payload>)>,
}

impl Worker {
    async fn run(mut self) {
        let mut open = true;
        loop {
            while let Ok(job) = self.jobs.try_recv() {
                self.enqueue(job);
            }
            if let Some(job) = self.queue.pop_front() {
                self.deliver(job).await;
                continue;
            }
            let next_held = self.held.values().map(|(at, ..)| *at).min();
            if !open {
                match next_held {
                    // Closed: what is held goes now, then the worker ends.
                    Some(_) => {
                        self.release(None);
                        continue;
                    }
                    None => return,
                }
            }
            tokio::select! {
                job = self.jobs.recv() => match job {
                    Some(job) => self.enqueue(job),
                    None => open = false,
                },
                () = sleep_until(next_held) => self.release(Some(Instant::now())),
            }
        }
    }

    fn enqueue(&mut self, job: Job) {
        match job {
            Job::Status(status) => {
                // A newer status of the same commit and context replaces a waiting one.
                let before = self.queue.len();
                self.queue.retain(|queued| {
                    !matches!(queued, Job::Status(s) if s.sha == status.sha && s.context == status.context)
                });
                let replaced = before - self.queue.len();
                update(&self.state, |s| {
                    s.pending = s.pending.saturating_sub(replaced)
                });
                self.queue.push_back(Job::Status(status));
            }
            Job::Event(id, payload) => {
                let fam = family(payload.kind);
                let now = Instant::now();
                match self.sent.get(fam) {
                    Some((at, _)) if now < *at + self.timing.min_interval => {
                        let old = self.held.remove(fam);
                        let suppressed = old.as_ref().map_or(0, |(_, _, o)| o.data.suppressed + 1);
                        let mut payload = payload;
                        payload.data.suppressed += suppressed;
                        update(&self.state, |s| {
                            s.held += 1;
                            if old.is_some() {
                                s.pending = s.pending.saturating_sub(1);
                            }
                        });
                        tracing::debug!(receiver = %self.receiver.label(), kind = payload.kind, "held back by notify.min_interval");
                        self.held
                            .insert(fam, (*at + self.timing.min_interval, id, payload));
                    }
                    // Counted as sent from the moment it is queued: a burst that
                    // arrives while one is being delivered is held too.
                    _ => {
                        self.sent.insert(fam, (now, payload.kind));
                        self.queue.push_back(Job::Event(id, payload));
                    }
                }
            }
        }
    }

    /// Queue the held messages whose time has come (all of them with `None`); a
    /// failure or recovery that says what was said last is dropped.
    fn release(&mut self, now: Option<Instant>) {
        let due: Vec<&'static str> = self
            .held
            .iter()
            .filter(|(_, (at, ..))| now.is_none_or(|now| *at <= now))
            .map(|(fam, _)| *fam)
            .collect();
        for fam in due {
            let Some((_, id, payload)) = self.held.remove(fam) else {
                continue;
            };
            let repeats = self
                .sent
                .get(fam)
                .is_some_and(|(_, kind)| *kind == payload.kind);
            if fam == "health" && repeats {
                update(&self.state, |s| s.pending = s.pending.saturating_sub(1));
                continue;
            }
            self.sent.insert(fam, (Instant::now(), payload.kind));
            self.queue.push_back(Job::Event(id, payload));
        }
    }

    async fn deliver(&mut self, job: Job) {
        let started = Instant::now();
        let mut backoff = BACKOFF_MIN;
        let label = self.receiver.label();
        let result = loop {
            let attempt = match (&self.receiver, &job) {
                (Receiver::Forge(forge), Job::Status(status)) => forge.post_status(status).await,
                (Receiver::Webhook(hook), Job::Event(id, payload)) => {
                    hook.deliver(id, payload).await
                }
                (Receiver::Exec(hook), Job::Event(_, payload)) => hook.deliver(payload).await,
                _ => Ok(()),
            };
            match attempt {
                Ok(()) => break Ok(()),
                Err(Failure::Retry { message, after }) => {
                    let wait =
                        after.unwrap_or_else(|| backoff.mul_f64(0.5 + fastrand::f64() * 0.5));
                    if started.elapsed() + wait > self.timing.retry_max_elapsed {
                        break Err(format!(
                            "{message} (gave up after {})",
                            humantime::format_duration(round(started.elapsed()))
                        ));
                    }
                    tracing::info!(receiver = %label, error = %message, retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "notification not delivered; retrying");
                    update(&self.state, |s| {
                        s.retries += 1;
                        s.last_error = Some(message.clone());
                    });
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(Failure::Fail { message, .. }) => break Err(message),
            }
        };
        let now = super::event::timestamp(std::time::SystemTime::now());
        match result {
            Ok(()) => {
                tracing::info!(receiver = %label, what = %describe(&job), "notification delivered");
                update(&self.state, |s| {
                    s.pending = s.pending.saturating_sub(1);
                    s.delivered += 1;
                    s.last_delivered_at = Some(now);
                });
            }
            Err(message) => {
                tracing::warn!(receiver = %label, what = %describe(&job), error = %message, "notification dropped");
                update(&self.state, |s| {
                    s.pending = s.pending.saturating_sub(1);
                    s.failed += 1;
                    s.last_error = Some(message);
                    s.last_failed_at = Some(now);
                });
            }
        }
    }
}

fn describe(job: &Job) -> String {
    match job {
        Job::Status(s) => format!("status {} on {}", s.context, s.sha),
        Job::Event(_, p) => format!("event {}", p.kind),
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn update(state: &Mutex<ReceiverState>, change: impl FnOnce(&mut ReceiverState)) {
    let mut state = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    change(&mut state);
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A new message id for an event.
pub(crate) fn new_id() -> String {
    message_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExecSettings;
    use crate::notify::event::pass_events;
    use crate::report::pass::{Mode, PassReport};

    /// An exec receiver that appends each payload's `type` and `suppressed` to `file`.
    fn recorder(
        file: &std::path::Path,
        min_interval: Duration,
    ) -> (Handle, tokio::task::JoinHandle<()>) {
        let script = format!(
            "python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"type\"], d[\"data\"][\"suppressed\"])' >> {}",
            file.display()
        );
        let hook = ExecHook::new(&ExecSettings {
            command: vec!["sh".into(), "-c".into(), script],
            events: crate::config::EVENTS
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
            timeout: Duration::from_secs(10),
        });
        spawn(
            Receiver::Exec(hook),
            Timing {
                min_interval,
                retry_max_elapsed: Duration::ZERO,
            },
        )
    }

    fn payload(kind: &'static str) -> Job {
        let report = PassReport::failed_early(Mode::Sync, &crate::Error::Internal("x".into()));
        let mut payload = Payload::new("default", &report, pass_events(&report), None);
        payload.kind = kind;
        payload.data.events = vec![kind];
        Job::Event(new_id(), Box::new(payload))
    }

    #[tokio::test]
    async fn a_flapping_pass_is_said_once_and_deploys_coalesce() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("got");
        let (handle, task) = recorder(&file, Duration::from_millis(800));
        // Failed, recovered, failed again within the interval: the second failure says
        // what was said already, so only the first is sent.
        for kind in ["pass.failed", "recovered", "pass.failed"] {
            handle.offer(payload(kind));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Three deploys in a row: the first at once, the last two as one, later.
        for _ in 0..3 {
            handle.offer(payload("deploy.succeeded"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let state = Arc::clone(&handle.state);
        drop(handle);
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .unwrap()
            .unwrap();
        let got = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            got,
            "pass.failed 0\ndeploy.succeeded 0\ndeploy.succeeded 1\n"
        );
        let state = state.lock().unwrap().clone();
        assert_eq!(
            (state.delivered, state.held, state.pending),
            (3, 4, 0),
            "{state:?}"
        );
    }
}
