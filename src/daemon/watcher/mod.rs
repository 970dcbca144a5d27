//! Noticing changes, in four parts: [`plan`] works out what to watch (the
//! directories that matter, and the [`Filter`] that tells a relevant path from noise);
//! [`events`] turns file system events into [`Reason`](super::trigger::Reason)s for
//! that set, or falls back to [`poll`]ing it when events cannot be had ([`fallback`]
//! says why); [`debounce`] turns a burst of reasons into one trigger. Directories
//! are watched, never files, because editors save by rename.

pub(crate) mod debounce;
pub(crate) mod events;
pub(crate) mod fallback;
pub(crate) mod plan;
pub(crate) mod poll;

pub(crate) use debounce::debounce;
pub(crate) use events::Source;
pub(crate) use plan::{Inputs, WatchSet, plan};
