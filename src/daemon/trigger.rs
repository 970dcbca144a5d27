//! Why a pass runs, and the slot that carries it to the loop: capacity one, the newest
//! reason wins (git-sync's trigger channel). While a pass runs, every trigger that
//! arrives lands in the slot; the loop takes the slot once, so any number of events
//! during a pass make one follow-up pass, never a backlog.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;

/// What started a pass. Only logged and counted; the pass itself does not know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The first pass after start.
    Startup,
    /// A prompt file, content file or directory of the working tree changed.
    Files,
    /// A git ref moved: a commit, a checkout, a new tag, a fetch.
    Refs,
    /// The repository path was swapped to another worktree (kubernetes git-sync).
    Repository,
    /// The configuration file changed.
    Config,
    /// The API key file changed (a rotated secret).
    KeyFile,
    /// Events were lost (the OS queue overflowed): everything is read again.
    Rescan,
    /// The periodic resync, the safety net for missed events.
    Resync,
    /// A retry after a failed pass, when its backoff ran out.
    Retry,
    /// SIGHUP.
    Signal,
    /// `POST /reconcile` on the probe server.
    Http,
}

impl Reason {
    /// The label of this reason in logs, metrics and `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Startup => "startup",
            Reason::Files => "files",
            Reason::Refs => "refs",
            Reason::Repository => "repository",
            Reason::Config => "config",
            Reason::KeyFile => "key_file",
            Reason::Rescan => "rescan",
            Reason::Resync => "resync",
            Reason::Retry => "retry",
            Reason::Signal => "sighup",
            Reason::Http => "http",
        }
    }

    /// Whether a pass for this reason looks at everything, the whole account included
    /// (the first pass, the resync, a rescan, a person's request), as opposed to one
    /// that follows a change in the repository.
    pub fn is_full(self) -> bool {
        matches!(
            self,
            Reason::Startup | Reason::Resync | Reason::Rescan | Reason::Signal | Reason::Http
        )
    }

    /// Whether a pass for this reason may look only at what changed since the last
    /// one: a commit, a swapped worktree, a saved file.
    pub fn is_incremental(self) -> bool {
        matches!(self, Reason::Refs | Reason::Repository | Reason::Files)
    }

    /// Whether this reason says something changed (or a person asked), as opposed to
    /// the timer: such triggers end a backoff early.
    pub fn is_change(self) -> bool {
        !matches!(self, Reason::Resync | Reason::Retry)
    }
}

/// One request for a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    pub reason: Reason,
    pub at: Instant,
}

impl Trigger {
    pub fn now(reason: Reason) -> Trigger {
        Trigger {
            reason,
            at: Instant::now(),
        }
    }
}

/// The sending side: cheap to clone, one per trigger source.
#[derive(Debug, Clone)]
pub struct Triggers {
    slot: watch::Sender<Option<Trigger>>,
    waiting: Waiting,
}

/// The loop's side: waits for the slot to be filled, and empties it.
#[derive(Debug)]
pub struct Pending {
    slot: watch::Receiver<Option<Trigger>>,
    waiting: Waiting,
}

/// The reason of the trigger in the slot that the loop has not taken yet. A watch
/// channel keeps its last value after it is seen; this says whether it was.
#[derive(Debug, Clone, Default)]
struct Waiting(Arc<Mutex<Option<Reason>>>);

impl Waiting {
    fn lock(&self) -> MutexGuard<'_, Option<Reason>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new, empty slot.
pub fn slot() -> (Triggers, Pending) {
    let (slot, receiver) = watch::channel(None);
    let waiting = Waiting::default();
    (
        Triggers {
            slot,
            waiting: waiting.clone(),
        },
        Pending {
            slot: receiver,
            waiting,
        },
    )
}

impl Triggers {
    /// Ask for a pass; replaces a request that is still waiting.
    pub fn fire(&self, reason: Reason) {
        tracing::debug!(reason = reason.as_str(), "trigger");
        let mut waiting = self.waiting.lock();
        self.slot.send_replace(Some(Trigger::now(reason)));
        *waiting = Some(reason);
    }

    /// The reason of the request waiting in the slot (not taken by the loop yet).
    pub fn waiting(&self) -> Option<Reason> {
        *self.waiting.lock()
    }
}

impl Pending {
    /// The next trigger; `None` when every sender is gone.
    pub async fn next(&mut self) -> Option<Trigger> {
        loop {
            self.slot.changed().await.ok()?;
            let mut waiting = self.waiting.lock();
            if let Some(trigger) = *self.slot.borrow_and_update() {
                *waiting = None;
                return Some(trigger);
            }
        }
    }

    /// Drop a trigger that is waiting (the pass about to run covers it).
    pub fn clear(&mut self) {
        let mut waiting = self.waiting.lock();
        self.slot.borrow_and_update();
        *waiting = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn many_triggers_while_busy_make_one_pending_and_the_newest_wins() {
        let (triggers, mut pending) = slot();
        for reason in [Reason::Files, Reason::Refs, Reason::Http] {
            triggers.fire(reason);
        }
        assert_eq!(triggers.waiting(), Some(Reason::Http));
        let first = pending.next().await.unwrap();
        assert_eq!(first.reason, Reason::Http);
        assert_eq!(triggers.waiting(), None, "taken");
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(20), pending.next());
        assert!(nothing.await.is_err(), "no second pass is queued");
        triggers.fire(Reason::Resync);
        assert_eq!(pending.next().await.unwrap().reason, Reason::Resync);
    }

    #[tokio::test]
    async fn clear_drops_the_waiting_trigger() {
        let (triggers, mut pending) = slot();
        triggers.fire(Reason::Files);
        pending.clear();
        assert_eq!(triggers.waiting(), None);
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(20), pending.next());
        assert!(nothing.await.is_err());
    }

    #[tokio::test]
    async fn the_slot_closes_with_its_senders() {
        let (triggers, mut pending) = slot();
        drop(triggers);
        assert_eq!(pending.next().await, None);
    }
}
