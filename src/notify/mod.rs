//! Telling people where they look: commit statuses on GitHub and GitLab, the plan as a
//! pull (merge) request comment, webhooks (Standard Webhooks JSON, Slack), an exec
//! hook, and the deploy gate. Each is off unless configured (`[notify]`,
//! `deploy.gate_command`), and none ever fails or slows a pass: a [`Notifier`] takes a
//! pass's start and outcome without waiting and delivers in the background
//! ([`delivery`]), retried with backoff, bounded, counted.
//!
//! The daemon keeps one [`Notifier`] for its life (it remembers what it said, so a
//! failure is said once and its end once); a command makes one for its pass and
//! waits, bounded, for it to finish ([`Notifier::finish`]). The target of a pass is a
//! parameter ([`DEFAULT_TARGET`] until targets exist). Knows the report's public
//! shape, never how a pass works inside.
//!
//! One concern per file: [`forge`] (which host, API, repository, token), [`github`] and
//! [`gitlab`] (their REST calls), [`status`] (what a commit status says), [`comment`]
//! (the plan comment), [`event`] (events and payloads), [`webhook`] (signing),
//! [`slack`], [`exec`], [`process`] (running a program, bounded), [`gate`],
//! [`http`]; secrets are read by [`crate::secretfile`].

pub(crate) mod comment;
pub(crate) mod delivery;
pub(crate) mod event;
pub(crate) mod exec;
pub(crate) mod forge;
pub(crate) mod gate;
pub(crate) mod github;
pub(crate) mod gitlab;
pub(crate) mod http;
pub(crate) mod process;
pub(crate) mod send;
pub(crate) mod slack;
pub(crate) mod status;
pub(crate) mod webhook;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::NotifySettings;
use crate::report::pass::PassReport;
use delivery::{Handle, Job, Receiver, ReceiverState, Timing};
use event::{Payload, Tracker};
use forge::{CiEnv, Forge, Kind};

/// The target of a configuration without targets.
pub(crate) const DEFAULT_TARGET: &str = "default";

/// Takes passes' starts and outcomes and delivers what they mean in the background.
/// Cheap to clone; clones share the workers.
#[derive(Debug, Clone)]
pub(crate) struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handles: Vec<Handle>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    tracker: Mutex<Tracker>,
    /// Receivers that could not be set up (no token, no repository), with why.
    broken: Vec<ReceiverState>,
}

impl Notifier {
    /// The receivers of `settings`, each with a worker on the current tokio runtime.
    /// A receiver that cannot be set up (a forge without a token) is logged and shown
    /// in [`Notifier::state`], never an error: notifications never stop a pass.
    pub(crate) fn start(
        settings: &NotifySettings,
        env: &CiEnv,
        origin_url: Option<&str>,
    ) -> Notifier {
        let timing = Timing {
            min_interval: settings.min_interval,
            retry_max_elapsed: settings.retry_max_elapsed,
        };
        let mut receivers = Vec::new();
        let mut broken = Vec::new();
        match http::Http::new(settings.timeout) {
            Err(err) => broken.push(broken_state("notify", err)),
            Ok(http) => {
                for (kind, forge) in [
                    (Kind::GitHub, &settings.github),
                    (Kind::GitLab, &settings.gitlab),
                ] {
                    let Some(forge) = forge else { continue };
                    match Forge::resolve(kind, forge, env, origin_url, http.clone()) {
                        Ok(forge) => receivers.push(Receiver::Forge(forge)),
                        Err(err) => broken.push(broken_state(kind.name(), err)),
                    }
                }
                for (index, hook) in settings.webhooks.iter().enumerate() {
                    receivers.push(Receiver::Webhook(webhook::Webhook::new(
                        index,
                        hook,
                        http.clone(),
                    )));
                }
                if let Some(exec) = &settings.exec {
                    receivers.push(Receiver::Exec(exec::ExecHook::new(exec)));
                }
            }
        }
        for state in &broken {
            tracing::warn!(receiver = %state.receiver, error = state.last_error.as_deref(), "a notification receiver is off");
        }
        let mut handles = Vec::new();
        let mut tasks = Vec::new();
        for receiver in receivers {
            let (handle, task) = delivery::spawn(receiver, timing);
            handles.push(handle);
            tasks.push(task);
        }
        Notifier {
            inner: Arc::new(Inner {
                handles,
                tasks: Mutex::new(tasks),
                tracker: Mutex::new(Tracker::default()),
                broken,
            }),
        }
    }

    /// A pass on `target` started on commit `sha`: pending statuses. Never waits.
    pub(crate) fn started(&self, target: &str, sha: &str) {
        self.offer(&Job::Status(status::pending(target, sha)));
    }

    /// A pass on `target` finished with `report`: its statuses and events. Never
    /// waits.
    pub(crate) fn finished(&self, target: &str, report: &PassReport) {
        for status in status::finished(target, report) {
            self.offer(&Job::Status(status));
        }
        let (events, before) = self
            .inner
            .tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .observe(report);
        if !events.is_empty() {
            let payload = Payload::new(target, report, events, before);
            self.offer(&Job::Event(delivery::new_id(), Box::new(payload)));
        }
    }

    fn offer(&self, job: &Job) {
        for handle in &self.inner.handles {
            handle.offer(job.clone());
        }
    }

    /// What every receiver has done so far (for `/status`).
    pub(crate) fn state(&self) -> Vec<ReceiverState> {
        let mut states: Vec<ReceiverState> = self
            .inner
            .handles
            .iter()
            .map(|h| {
                h.state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
            })
            .collect();
        states.extend(self.inner.broken.iter().cloned());
        states
    }

    /// Stop taking messages and wait, at most `deadline`, for what is queued to be
    /// delivered (or given up); what is still under way then is abandoned and logged.
    pub(crate) async fn finish(self, deadline: Duration) {
        let mut tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        // The queues close when the last clone of the notifier goes.
        drop(self);
        let all = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(deadline, all).await.is_err() {
            for task in &tasks {
                task.abort();
            }
            tracing::warn!(
                waited_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                "notifications still under way are abandoned"
            );
        }
    }
}

fn broken_state(receiver: &str, error: String) -> ReceiverState {
    ReceiverState {
        receiver: receiver.to_owned(),
        last_error: Some(error),
        ..ReceiverState::default()
    }
}

/// How `plan --comment` came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Commented {
    /// The comment was added (`edited: false`) or edited in place.
    Posted {
        kind: Kind,
        number: u64,
        edited: bool,
    },
    /// Nothing to comment on here (no pull request, no token): why.
    Skipped(String),
    /// The host refused or could not be reached: why.
    Failed(String),
}

/// Post the plan of `target` (`render` gives its body for the host) as the pull
/// (merge) request's comment, editing the one posted before. Retried within
/// `notify.retry_max_elapsed`.
pub(crate) async fn comment_plan(
    settings: &NotifySettings,
    env: &CiEnv,
    origin_url: Option<&str>,
    target: &str,
    render: &dyn Fn(Kind) -> String,
) -> Commented {
    let (kind, number) = match where_to_comment(settings, env) {
        Ok(found) => found,
        Err(why) => return Commented::Skipped(why),
    };
    let http = match http::Http::new(settings.timeout) {
        Ok(http) => http,
        Err(err) => return Commented::Failed(err),
    };
    let forge_settings = match kind {
        Kind::GitHub => settings.github.clone(),
        Kind::GitLab => settings.gitlab.clone(),
    }
    .unwrap_or_default();
    let forge = match Forge::resolve(kind, &forge_settings, env, origin_url, http) {
        Ok(forge) => forge,
        Err(err) => return Commented::Skipped(err),
    };
    let body = render(kind);
    let marker = comment::marker(target);
    let started = tokio::time::Instant::now();
    let mut wait = Duration::from_secs(1);
    loop {
        match forge.upsert_comment(number, &marker, &body).await {
            Ok(edited) => {
                return Commented::Posted {
                    kind,
                    number,
                    edited,
                };
            }
            Err(http::Failure::Retry { message, after }) => {
                let delay = after.unwrap_or(wait);
                if started.elapsed() + delay > settings.retry_max_elapsed {
                    return Commented::Failed(message);
                }
                tracing::info!(error = %message, "the plan comment was not posted; retrying");
                tokio::time::sleep(delay).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err(http::Failure::Fail { message, .. }) => return Commented::Failed(message),
        }
    }
}

/// The host and the pull (merge) request of this CI run.
fn where_to_comment(settings: &NotifySettings, env: &CiEnv) -> Result<(Kind, u64), String> {
    if let Some(iid) = env.get("CI_MERGE_REQUEST_IID") {
        let iid = iid
            .parse()
            .map_err(|_| format!("CI_MERGE_REQUEST_IID {iid:?} is not a number"))?;
        return Ok((Kind::GitLab, iid));
    }
    if env.in_github_actions() || settings.github.is_some() {
        let path = env
            .get("GITHUB_EVENT_PATH")
            .ok_or("no pull request: GITHUB_EVENT_PATH is not set")?;
        return match github::pull_request_number(std::path::Path::new(path))? {
            Some(number) => Ok((Kind::GitHub, number)),
            None => {
                Err("no pull request: this workflow run's event is not a pull request".to_owned())
            }
        };
    }
    Err("no pull request to comment on: neither GitHub Actions (GITHUB_EVENT_PATH) nor a GitLab merge request pipeline (CI_MERGE_REQUEST_IID)".to_owned())
}
