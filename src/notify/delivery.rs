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
pub const QUEUE: usize = 64;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Receiver {
    Forge(Forge),
    Webhook(Webhook),
    Exec(ExecHook),
}

impl Receiver {
    pub fn label(&self) -> String {
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
pub enum Job {
    Status(CommitStatus),
    /// An event payload, with its message id (the same on every retry).
    Event(String, Box<Payload>),
}

/// What a receiver's worker has done, for `/status` and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReceiverState {
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
pub struct Handle {
    pub receiver: Receiver,
    pub sender: mpsc::Sender<Job>,
    pub state: Arc<Mutex<ReceiverState>>,
}

impl Handle {
    /// Hand `job` over without waiting: a full queue drops it.
    pub fn offer(&self, job: Job) {
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
pub fn spawn(receiver: Receiver, timing: Timing) -> (Handle, tokio::task::JoinHandle<()>) {
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
pub struct Timing {
    pub min_interval: Duration,
    pub retry_max_elapsed: Duration,
}

struct Worker {
    receiver: Receiver,
    jobs: mpsc::Receiver<Job>,
    state: Arc<Mutex<ReceiverState>>,
    timing: Timing,
    queue: VecDeque<Job>,
    /// Per family: when the last message was sent, and its kind.
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
                    _ => self.queue.push_back(Job::Event(id, payload)),
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
        let now = crate::daemon::status::timestamp(std::time::SystemTime::now());
        if let Job::Event(_, payload) = &job {
            self.sent
                .insert(family(payload.kind), (Instant::now(), payload.kind));
        }
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
pub fn new_id() -> String {
    message_id()
}
