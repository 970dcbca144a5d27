//! The daemon's notifications (`[notify]`): one [`Notifier`] for the daemon's life, so
//! that a failure is said once, its end once, and drift when it changes; a pending
//! commit status when a pass starts on a commit (once it has read it), its outcome
//! after. The notifier delivers in the background: nothing here waits for an endpoint,
//! so a failing or hung one leaves a pass's outcome and timing as they were. A
//! reloaded configuration with other `[notify]` settings gets a new notifier (the old
//! one finishes what it holds in the background, bounded).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::Error;
use crate::apply::{Observer, ProgressLog};
use crate::config::{NotifySettings, Settings};
use crate::gitrepo::GitRepo;
use crate::notify::Notifier;
use crate::notify::delivery::ReceiverState;
use crate::notify::forge::CiEnv;
use crate::reconcile::{Pass, PassError};
use crate::report::pass::{Mode, PassReport};

/// The notifier in use, shared with `/status` and `/metrics` (which read what its
/// receivers did). `None` while nothing is configured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shared(Arc<Mutex<Option<Notifier>>>);

impl Shared {
    fn get(&self) -> Option<Notifier> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, notifier: Option<Notifier>) -> Option<Notifier> {
        std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(PoisonError::into_inner),
            notifier,
        )
    }

    /// What each receiver has done (`None`: notifications are off).
    pub(crate) fn receivers(&self) -> Option<Vec<ReceiverState>> {
        self.get().map(|n| n.state())
    }
}

/// The loop's side: starts the notifier, tells it about passes.
#[derive(Debug, Default)]
pub(crate) struct Notices {
    shared: Shared,
    /// The settings the notifier was started with.
    settings: Option<NotifySettings>,
}

impl Notices {
    pub(crate) fn new(shared: Shared) -> Notices {
        Notices {
            shared,
            settings: None,
        }
    }

    /// Start (or restart, when `[notify]` changed) the notifier for `settings`.
    /// Reads the `origin` URL (the forge's default repository) on a blocking thread.
    pub(crate) async fn configure(&mut self, settings: &Settings) {
        if self.settings.as_ref() == Some(&settings.notify) {
            return;
        }
        let notifier = if settings.notify.any() {
            let repo = settings.repo.clone();
            let origin = tokio::task::spawn_blocking(move || {
                GitRepo::open(&repo).ok()?.remote_url("origin")
            });
            let origin = tokio::time::timeout(Duration::from_secs(5), origin)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            Some(Notifier::start(
                &settings.notify,
                &CiEnv::from_process(),
                origin.as_deref(),
            ))
        } else {
            None
        };
        if self.settings.is_some() {
            tracing::info!(
                on = notifier.is_some(),
                "notify settings changed: using them from now on"
            );
        }
        if let Some(old) = self.shared.replace(notifier) {
            let deadline = old_deadline(self.settings.as_ref());
            tokio::spawn(old.finish(deadline));
        }
        self.settings = Some(settings.notify.clone());
    }

    /// The notifier, when one is configured.
    pub(crate) fn notifier(&self) -> Option<Notifier> {
        self.shared.get()
    }

    /// A pass of `target` ended early: its statuses and events.
    pub(crate) fn failed(&self, target: &str, err: &PassError) {
        let Some(notifier) = self.notifier() else {
            return;
        };
        let report = match err.partial.as_deref() {
            Some(pass) => PassReport::new(pass, Mode::Sync, false).with_failure(err),
            None => PassReport::failed_early(Mode::Sync, &err.error),
        };
        notifier.finished(target, &report);
    }

    /// No pass could start (the configuration cannot be loaded): `stalled`.
    pub(crate) fn not_started(&self, target: &str, err: &Error) {
        if let Some(notifier) = self.notifier() {
            notifier.finished(target, &PassReport::failed_early(Mode::Sync, err));
        }
    }
}

/// How long a replaced notifier may take to deliver what it holds.
fn old_deadline(settings: Option<&NotifySettings>) -> Duration {
    settings.map_or(Duration::from_secs(10), |s| {
        s.retry_max_elapsed + s.timeout * 2
    })
}

/// A pass of `target` ran to its end: its statuses and events (called where the
/// report is cheap to build: off the async threads).
pub(crate) fn finished(notifier: Option<&Notifier>, target: &str, pass: &Pass) {
    if let Some(notifier) = notifier {
        notifier.finished(target, &PassReport::new(pass, Mode::Sync, false));
    }
}

/// The daemon's observer of a pass: progress in the log, and the pending status once
/// the pass has read the commit it syncs.
#[derive(Debug)]
pub(crate) struct PassObserver<'a> {
    pub progress: &'a ProgressLog,
    pub notifier: Option<&'a Notifier>,
    pub target: &'a str,
}

impl Observer for PassObserver<'_> {
    fn planned(&self, changes: usize) {
        self.progress.planned(changes);
    }

    fn applied(&self) {
        self.progress.applied();
    }

    fn read(&self, commit: Option<&str>) {
        if let (Some(notifier), Some(commit)) = (self.notifier, commit) {
            notifier.started(self.target, commit);
        }
    }
}
