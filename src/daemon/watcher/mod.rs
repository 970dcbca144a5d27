//! Noticing changes, in four parts: [`plan`] works out what to watch (the
//! directories that matter, and the [`Filter`] that tells a relevant path from noise);
//! [`events`] turns file system events into [`Reason`](super::trigger::Reason)s for
//! that set, or falls back to [`poll`]ing it when events cannot be had ([`fallback`]
//! says why); [`debounce`] turns a burst of reasons into one trigger. Directories
//! are watched, never files, because editors save by rename.

pub mod debounce;
pub mod events;
pub mod fallback;
pub mod plan;
pub mod poll;

pub use debounce::{MAX_DEBOUNCE, debounce};
pub use events::Source;
pub use plan::{Depth, Filter, Inputs, WatchSet, plan};
