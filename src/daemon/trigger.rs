//! Why a pass runs, and the slot that carries it to the loop: capacity one. While a
//! pass runs, every trigger that arrives lands in the slot and is merged with what
//! waits there; the loop takes the slot once, so any number of events during a pass
//! make one follow-up pass, never a backlog. A merge keeps every reason (for the log)
//! and the most demanding [`Kind`] asked since the last pass: a person's request for
//! a full pass followed by a commit still gets its full pass (git-sync's slot keeps
//! the newest reason only; ours must not downgrade a request).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;

/// What started a pass. Only logged and counted; the pass itself does not know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
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
    /// The pass before renamed a prompt while a release applies: a release file may
    /// have named it, so one more pass plans everything (kube-runtime's requeue).
    Requeue,
    /// SIGHUP.
    Signal,
    /// `POST /reconcile` on the probe server.
    Http,
}

/// Every reason, in the order a merged trigger names them: a person's request first,
/// then what asks for more, the retry last.
const ORDER: [Reason; 12] = [
    Reason::Startup,
    Reason::Signal,
    Reason::Http,
    Reason::Rescan,
    Reason::Resync,
    Reason::Config,
    Reason::KeyFile,
    Reason::Repository,
    Reason::Refs,
    Reason::Files,
    Reason::Requeue,
    Reason::Retry,
];

/// How much a pass looks at. Ordered: a merged trigger takes the greatest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// Only the prompt files that changed since the last pass, when the baseline that
    /// pass left still applies (otherwise every file).
    Incremental,
    /// Every prompt file planned; the account is not listed.
    Plan,
    /// Every prompt file planned, and the whole account listed (unmanaged prompts).
    Full,
}

impl Kind {
    /// The label of this kind in logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Incremental => "incremental",
            Kind::Plan => "plan",
            Kind::Full => "full",
        }
    }
}

impl Reason {
    /// The label of this reason in logs, metrics and `/status`.
    pub(crate) fn as_str(self) -> &'static str {
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
            Reason::Requeue => "requeue",
            Reason::Signal => "sighup",
            Reason::Http => "http",
        }
    }

    /// What a pass for this reason looks at: everything, the whole account included
    /// (the first pass, the resync, a rescan, a person's request); every file (a new
    /// configuration or key); or what changed (a commit, a swapped worktree, a saved
    /// file, and a retry, which looks again at what is not in sync).
    pub(crate) fn kind(self) -> Kind {
        match self {
            Reason::Startup | Reason::Resync | Reason::Rescan | Reason::Signal | Reason::Http => {
                Kind::Full
            }
            Reason::Config | Reason::KeyFile => Kind::Plan,
            Reason::Refs | Reason::Repository | Reason::Files | Reason::Retry | Reason::Requeue => {
                Kind::Incremental
            }
        }
    }

    fn bit(self) -> u16 {
        let index = ORDER.iter().position(|r| *r == self).unwrap_or(0);
        1 << index
    }
}

/// A set of reasons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct Reasons(u16);

impl Reasons {
    pub(crate) fn of(reason: Reason) -> Reasons {
        Reasons(reason.bit())
    }

    pub(crate) fn contains(self, reason: Reason) -> bool {
        self.0 & reason.bit() != 0
    }

    pub(crate) fn insert(&mut self, reason: Reason) {
        self.0 |= reason.bit();
    }

    pub(crate) fn union(self, other: Reasons) -> Reasons {
        Reasons(self.0 | other.0)
    }

    /// The reasons, in [`ORDER`].
    pub(crate) fn iter(self) -> impl Iterator<Item = Reason> {
        ORDER.into_iter().filter(move |r| self.contains(*r))
    }

    /// The most demanding kind among them (`Incremental` for none).
    pub(crate) fn kind(self) -> Kind {
        self.iter()
            .map(Reason::kind)
            .max()
            .unwrap_or(Kind::Incremental)
    }

    /// The one reason that names them in metrics and `/status`: the first in [`ORDER`]
    /// of those with the greatest kind.
    pub(crate) fn primary(self) -> Option<Reason> {
        let kind = self.kind();
        self.iter().find(|r| r.kind() == kind)
    }

    /// Every reason, `+`-joined (`http+refs`), for the log.
    pub(crate) fn label(self) -> String {
        self.iter()
            .map(Reason::as_str)
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// One request for a pass, or several merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trigger {
    /// The reason that names it (see [`Reasons::primary`]).
    pub reason: Reason,
    /// Every reason merged into it.
    pub reasons: Reasons,
    /// When the first of them arrived.
    pub at: Instant,
}

impl Trigger {
    pub(crate) fn now(reason: Reason) -> Trigger {
        Trigger {
            reason,
            reasons: Reasons::of(reason),
            at: Instant::now(),
        }
    }

    /// What a pass for this trigger looks at: the most demanding of its reasons.
    pub(crate) fn kind(&self) -> Kind {
        self.reasons.kind()
    }

    /// This trigger and `other` as one: every reason, the most demanding kind, the
    /// earlier arrival.
    #[must_use]
    pub(crate) fn merge(self, other: Trigger) -> Trigger {
        let reasons = self.reasons.union(other.reasons);
        Trigger {
            reason: reasons.primary().unwrap_or(self.reason),
            reasons,
            at: self.at.min(other.at),
        }
    }

    /// This trigger with `other` merged in, when there is one.
    #[must_use]
    pub(crate) fn merge_opt(self, other: Option<Trigger>) -> Trigger {
        match other {
            Some(other) => self.merge(other),
            None => self,
        }
    }
}

/// The slot both sides share: what waits, and a bell.
#[derive(Debug)]
struct Slot {
    waiting: Mutex<Option<Trigger>>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<Trigger>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The sending side: cheap to clone, one per trigger source.
#[derive(Debug, Clone)]
pub(crate) struct Triggers {
    slot: Arc<Slot>,
    bell: Arc<watch::Sender<()>>,
}

/// The loop's side: waits for the slot to be filled, and empties it.
#[derive(Debug)]
pub(crate) struct Pending {
    slot: Arc<Slot>,
    bell: watch::Receiver<()>,
}

/// A new, empty slot.
pub(crate) fn slot() -> (Triggers, Pending) {
    let slot = Arc::new(Slot {
        waiting: Mutex::new(None),
    });
    let (bell, rung) = watch::channel(());
    (
        Triggers {
            slot: Arc::clone(&slot),
            bell: Arc::new(bell),
        },
        Pending { slot, bell: rung },
    )
}

impl Triggers {
    /// Ask for a pass; merged with a request that is still waiting.
    pub(crate) fn fire(&self, reason: Reason) {
        self.fire_trigger(Trigger::now(reason));
    }

    /// Ask for a pass for every reason of `reasons` at once (a debounced burst).
    pub(crate) fn fire_all(&self, reasons: Reasons) {
        let Some(reason) = reasons.primary() else {
            return;
        };
        self.fire_trigger(Trigger {
            reason,
            reasons,
            at: Instant::now(),
        });
    }

    fn fire_trigger(&self, trigger: Trigger) {
        {
            let mut waiting = self.slot.lock();
            let merged = match waiting.take() {
                Some(before) => before.merge(trigger),
                None => trigger,
            };
            tracing::debug!(
                reasons = %merged.reasons.label(),
                kind = merged.kind().as_str(),
                "trigger"
            );
            *waiting = Some(merged);
        }
        self.bell.send_replace(());
    }

    /// Whether the request waiting in the slot (not taken by the loop yet) was asked
    /// for `reason`, among others.
    pub(crate) fn waits_for(&self, reason: Reason) -> bool {
        self.slot.lock().is_some_and(|t| t.reasons.contains(reason))
    }
}

impl Pending {
    /// The next trigger, taken out of the slot; `None` when every sender is gone and
    /// nothing waits.
    pub(crate) async fn next(&mut self) -> Option<Trigger> {
        loop {
            if let Some(trigger) = self.take() {
                return Some(trigger);
            }
            if self.bell.changed().await.is_err() {
                return self.take();
            }
        }
    }

    /// Take what waits in the slot, if anything (a pass about to run merges it in:
    /// it happened before that pass reads anything).
    pub(crate) fn take(&mut self) -> Option<Trigger> {
        self.bell.borrow_and_update();
        self.slot.lock().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Triggers {
        /// The main reason of the request waiting in the slot (not taken by the loop yet).
        fn waiting(&self) -> Option<Reason> {
            self.slot.lock().map(|t| t.reason)
        }
    }

    #[tokio::test]
    async fn many_triggers_while_busy_make_one_pending_that_keeps_every_reason() {
        let (triggers, mut pending) = slot();
        for reason in [Reason::Files, Reason::Refs, Reason::Http] {
            triggers.fire(reason);
        }
        assert_eq!(triggers.waiting(), Some(Reason::Http));
        let first = pending.next().await.unwrap();
        assert_eq!(first.reason, Reason::Http);
        assert_eq!(first.reasons.label(), "http+refs+files");
        assert_eq!(triggers.waiting(), None, "taken");
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(20), pending.next());
        assert!(nothing.await.is_err(), "no second pass is queued");
        triggers.fire(Reason::Resync);
        assert_eq!(pending.next().await.unwrap().reason, Reason::Resync);
    }

    #[tokio::test]
    async fn a_full_pass_asked_for_is_never_downgraded_by_a_later_commit() {
        let (triggers, mut pending) = slot();
        // POST /reconcile during a pass, then a commit: the follow-up is full.
        triggers.fire(Reason::Http);
        triggers.fire(Reason::Refs);
        let next = pending.next().await.unwrap();
        assert_eq!(next.kind(), Kind::Full);
        assert_eq!(next.reason, Reason::Http);
        // A rescan (lost events) then a saved file: full too.
        triggers.fire(Reason::Rescan);
        triggers.fire(Reason::Files);
        assert_eq!(pending.next().await.unwrap().kind(), Kind::Full);
        // A new key file then a commit: every file planned.
        triggers.fire(Reason::KeyFile);
        triggers.fire(Reason::Refs);
        let next = pending.next().await.unwrap();
        assert_eq!((next.kind(), next.reason), (Kind::Plan, Reason::KeyFile));
        // A commit alone stays incremental.
        triggers.fire(Reason::Refs);
        assert_eq!(pending.next().await.unwrap().kind(), Kind::Incremental);
    }

    #[test]
    fn a_merge_keeps_the_earlier_arrival_and_every_reason() {
        let first = Trigger::now(Reason::Files);
        let later = Trigger::now(Reason::Retry);
        let merged = later.merge(first);
        assert_eq!(merged.at, first.at);
        assert_eq!(merged.reasons.label(), "files+retry");
        assert_eq!(merged.kind(), Kind::Incremental);
        let resync = merged.merge(Trigger::now(Reason::Resync));
        assert_eq!((resync.kind(), resync.reason), (Kind::Full, Reason::Resync));
    }

    #[tokio::test]
    async fn take_empties_the_slot() {
        let (triggers, mut pending) = slot();
        triggers.fire(Reason::Files);
        assert_eq!(pending.take().map(|t| t.reason), Some(Reason::Files));
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

    #[tokio::test]
    async fn what_waits_when_the_senders_go_is_still_taken() {
        let (triggers, mut pending) = slot();
        triggers.fire(Reason::Signal);
        drop(triggers);
        assert_eq!(pending.next().await.map(|t| t.reason), Some(Reason::Signal));
        assert_eq!(pending.next().await, None);
    }
}
