//! The daemon's remote source (`[source]`, `watch --source URL`): a worker looks at the
//! remote every `source.interval` (with jitter), or at once when a webhook asks
//! ([`Remote::request_look`]). A look lists the remote's refs and fetches only what
//! changed (see [`crate::source`]), on a blocking thread; when the branch tip or the
//! release tags moved, it asks for a pass through the one trigger slot
//! ([`Reason::Refs`]). The pass reads its settings and trees from the mirror at the
//! last good revision ([`Remote::settings`]), never from the network: a failed look
//! leaves what is synced as it was, and `/readyz` as the last pass left it.
//!
//! Failures: an unreachable or slow remote is tried again with a backoff like the
//! API's (750 ms doubling to 5 min, with jitter); a refused credential or a host key
//! mismatch is stalled: no connection is made again until a credential file changes
//! (its digest is checked at each interval, without the network). Every look is
//! bounded by `source.fetch_timeout` and `source.max_fetch_size`. `/status` shows the
//! source: the URL (which never carries credentials), the branch, the last look, the
//! last fetched revision and the error.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub(crate) use super::status::SourceStatus;
use super::status::{self, Status};
use super::trigger::{Reason, Triggers};
use crate::Error;

use crate::config::{Invocation, Overrides, PromptSettings, Settings};
use crate::failure::FailureClass;
use crate::remote_source::{look_and_load, settings_at};
use crate::source::SourceSettings;
use crate::source::{Source, SourceError};

/// Backoff after a failed look: this, doubling, up to [`BACKOFF_MAX`], with jitter.
const BACKOFF_MIN: Duration = Duration::from_millis(750);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The remote source as the daemon keeps it: the last good revision, and how the
/// last look went. Shared by the source worker, the loop (through its settings
/// loader) and the webhooks.
#[derive(Debug)]
pub(crate) struct Remote {
    invocation: Invocation,
    overrides: Overrides,
    state: Mutex<State>,
    /// One look at a time, in this process.
    looking: Mutex<()>,
    wake: Notify,
    status: OnceLock<Arc<Status>>,
}

/// The branch tip the mirror holds, as the last good look left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Good {
    pub mirror: std::path::PathBuf,
    pub branch: String,
    pub commit: String,
}

#[derive(Debug)]
struct State {
    settings: SourceSettings,
    good: Option<Good>,
    /// The revision the last settings load read (what the next pass syncs).
    loaded: Option<String>,
    /// Which files are prompt files, as of the last settings load (for webhooks).
    prompts: Option<PromptSettings>,
    last_look: Option<SystemTime>,
    last_fetch: Option<SystemTime>,
    last_fetched_revision: Option<String>,
    error: Option<(String, FailureClass)>,
    /// A refused credential or host key: the credential files' digest then.
    stalled_on: Option<u64>,
    /// Failed looks in a row.
    failures: u32,
}

impl Remote {
    pub(crate) fn new(
        invocation: Invocation,
        overrides: Overrides,
        settings: SourceSettings,
    ) -> Remote {
        Remote {
            invocation,
            overrides,
            state: Mutex::new(State {
                settings,
                good: None,
                loaded: None,
                prompts: None,
                last_look: None,
                last_fetch: None,
                last_fetched_revision: None,
                error: None,
                stalled_on: None,
                failures: 0,
            }),
            looking: Mutex::new(()),
            wake: Notify::new(),
            status: OnceLock::new(),
        }
    }

    /// Show the source in `status` from now on.
    pub(crate) fn attach(&self, status: Arc<Status>) {
        let _ = self.status.set(status);
        self.publish();
    }

    /// Ask the worker for a look now (a webhook). Looks asked for while one runs make
    /// one more look after it.
    pub(crate) fn request_look(&self) {
        self.wake.notify_one();
    }

    /// The branch that syncs, when known (configured, or seen as the remote's HEAD).
    pub(crate) fn branch(&self) -> Option<String> {
        let state = self.lock();
        state
            .settings
            .branch
            .clone()
            .or_else(|| state.good.as_ref().map(|good| good.branch.clone()))
    }

    /// The last good look's tip.
    pub(crate) fn good(&self) -> Option<Good> {
        self.lock().good.clone()
    }

    /// Which files are prompt files, as the last settings load said.
    pub(crate) fn prompt_settings(&self) -> Option<PromptSettings> {
        self.lock().prompts.clone()
    }

    /// The revision the last [`Remote::settings`] read: the one the pass syncs.
    pub(crate) fn loaded_revision(&self) -> Option<String> {
        self.lock().loaded.clone()
    }

    /// The settings for a pass: the operator's layers with the repository's own
    /// `promptsync.toml` as the last good revision holds it, the repository being the
    /// mirror. Before any good look (at start), looks first. Blocking.
    pub(crate) fn settings(&self) -> Result<Settings, Error> {
        let good = match self.good() {
            Some(good) => good,
            None => {
                // The first pass looks; after a failed look the worker tries again
                // on its own (with its backoff) and asks for a pass when one works.
                let earlier = self.lock().error.clone();
                if let Some((message, class)) = earlier {
                    return Err(SourceError::Remembered { message, class }.into());
                }
                self.look()?;
                self.good().ok_or_else(|| {
                    Error::Internal("a look succeeded but left no revision".into())
                })?
            }
        };
        let source = Source::new(self.lock().settings.clone());
        let mut settings = settings_at(&self.invocation, &self.overrides, &source, &good.commit)?;
        settings.repo = good.mirror;
        let mut state = self.lock();
        state.loaded = Some(good.commit);
        state.prompts = Some(settings.prompts.clone());
        drop(state);
        Ok(settings)
    }

    /// Look at the remote now: whether the branch tip or the release tags the mirror
    /// holds changed. Blocking; one at a time.
    pub(crate) fn look(&self) -> Result<bool, Error> {
        let _one = self.looking.lock().unwrap_or_else(|e| e.into_inner());
        let operator = Settings::load_remote(&self.invocation, &self.overrides, None)?;
        let Some(settings) = operator.source.clone() else {
            return Err(Error::Usage(
                "source.url is no longer set; the daemon keeps the remote it started with until a restart".into(),
            ));
        };
        {
            let mut state = self.lock();
            if let (Some(digest), Some((message, _))) = (state.stalled_on, &state.error) {
                if crate::source::credential_fingerprint(&settings) == digest {
                    return Err(SourceError::StillStalled {
                        message: message.clone(),
                    }
                    .into());
                }
                tracing::info!("a credential file changed: looking at the remote again");
            }
            state.settings = settings.clone();
        }
        let digest = crate::source::credential_fingerprint(&settings);
        let source = Source::new(settings);
        let span = tracing::info_span!("look", url = %source.settings().url);
        let _entered = span.enter();
        let looked = look_and_load(&self.invocation, &self.overrides, &operator, &source);
        let now = SystemTime::now();
        let changed = {
            let mut state = self.lock();
            state.last_look = Some(now);
            match looked {
                Ok((_, look)) => {
                    let good = Good {
                        mirror: look.mirror.clone(),
                        branch: look.branch.clone(),
                        commit: look.commit.clone(),
                    };
                    let moved = state.good.as_ref() != Some(&good);
                    let changed = moved || !look.fetched.is_empty() || !look.pruned.is_empty();
                    if !look.fetched.is_empty() {
                        state.last_fetch = Some(now);
                        state.last_fetched_revision = Some(look.commit.clone());
                    }
                    if state.error.is_some() {
                        tracing::info!(commit = look.commit, "the remote can be read again");
                    }
                    state.good = Some(good);
                    state.error = None;
                    state.stalled_on = None;
                    state.failures = 0;
                    Ok(changed)
                }
                Err(err) => {
                    let class = err.class();
                    let message = crate::failure::chain(&err);
                    let credential = matches!(
                        err,
                        Error::Source(SourceError::Refused { .. } | SourceError::HostKey { .. })
                    );
                    state.stalled_on = credential.then_some(digest);
                    state.failures = state.failures.saturating_add(1);
                    state.error = Some((message.clone(), class));
                    let kept = state.good.as_ref().map(|good| good.commit.clone());
                    tracing::error!(
                        class = class.as_str(),
                        error = %message,
                        kept_revision = kept.as_deref(),
                        "cannot look at the remote; what was synced stays as it is"
                    );
                    Err(err)
                }
            }
        };
        self.publish();
        changed
    }

    /// How long the worker waits before its next look: the interval with ±10%
    /// jitter; after a transient failure the backoff; while stalled on a credential,
    /// the interval (each look then costs a digest of the files, no connection).
    fn next_wait(&self) -> Duration {
        let state = self.lock();
        let interval = state.settings.interval;
        match &state.error {
            Some((_, FailureClass::Transient)) => {
                let shift = state.failures.saturating_sub(1).min(16);
                let full = BACKOFF_MIN.saturating_mul(1u32 << shift).min(BACKOFF_MAX);
                full.mul_f64(0.5 + fastrand::f64() * 0.5)
            }
            _ => interval.mul_f64(0.9 + fastrand::f64() * 0.2),
        }
    }

    /// What `/status` shows of the source.
    pub(crate) fn snapshot(&self) -> SourceStatus {
        let state = self.lock();
        SourceStatus {
            url: state.settings.url.to_string(),
            branch: state
                .settings
                .branch
                .clone()
                .or_else(|| state.good.as_ref().map(|good| good.branch.clone())),
            last_look: state.last_look.map(status::timestamp),
            last_fetch: state.last_fetch.map(status::timestamp),
            last_fetched_revision: state.last_fetched_revision.clone(),
            revision: state.good.as_ref().map(|good| good.commit.clone()),
            error: state.error.as_ref().map(|(message, _)| message.clone()),
            error_class: state.error.as_ref().map(|(_, class)| class.as_str()),
        }
    }

    fn publish(&self) {
        if let Some(status) = self.status.get() {
            status.set_source(self.snapshot());
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The source worker: look every interval (or when asked), and ask for a pass when
/// the remote moved. A look runs on a blocking thread; a stop abandons it (it is
/// bounded by `source.fetch_timeout` and leaves the mirror consistent).
pub(crate) async fn run(
    remote: Arc<Remote>,
    triggers: Triggers,
    stop: CancellationToken,
) -> Result<(), String> {
    loop {
        let wait = remote.next_wait();
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
            () = remote.wake.notified() => {}
        }
        let looking = Arc::clone(&remote);
        let job = tokio::task::spawn_blocking(move || looking.look());
        let looked = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            looked = job => looked.map_err(|err| format!("a look at the remote failed: {err}"))?,
        };
        match looked {
            Ok(true) => triggers.fire(Reason::Refs),
            Ok(false) => tracing::debug!("the remote is as the mirror has it"),
            // Logged (once per failure) by the look; a stalled one is not tried again
            // until a credential file changes.
            Err(_) => {}
        }
    }
}
