//! promptsync keeps LLM prompts that live as YAML files in a git repository in
//! sync with the Respan prompt-management API.
//!
//! Data flows one way through a reconcile pass:
//!
//! 1. [`gitrepo`] reads the source commit (or the working tree) and its tags;
//!    `discover` finds the prompt files in it.
//! 2. [`prompt`] parses and validates each file into a typed prompt, with
//!    `diagnostic`s that carry file, line and column; [`desired`] turns the valid
//!    ones into the desired state (identities, content, provenance, conflicts).
//! 3. [`api`] reads a snapshot of the remote prompts in as few requests as it can.
//! 4. [`plan`] compares desired and remote (`normalize` gives the canonical form
//!    used for semantic equality, [`deploy`] picks the release tag); pure, no I/O.
//! 5. `apply` runs the plan through the API client with bounded concurrency.
//! 6. [`report`] renders the outcome as text or JSON; it is the only writer to stdout.
//!
//! `reconcile` ties one pass together and knows nothing about what triggered it.
//! [`commands`] holds one entry point per subcommand; the binary is glue around it.
//! The local Respan emulator that tests and first runs use is its own crate,
//! `promptsync-emulator`; this library is the sync engine alone.

pub mod api;
mod apply;
mod baseline;
pub mod cli;
pub mod commands;
pub mod config;
mod confined;
mod daemon;
pub mod deploy;
pub mod desired;
mod diagnostic;
mod diff;
mod discover;
mod error;
mod excerpt;
mod failure;
mod fdlimit;
pub mod gitrepo;
mod localfile;
pub mod logging;
mod memory;
mod normalize;
mod notify;
mod pass;
pub mod plan;
pub mod prompt;
mod provenance;
mod pull;
mod reconcile;
mod remote_source;
mod repofile;
pub mod report;
mod secret;
mod secretfile;
mod source;
mod term;
#[cfg(test)]
mod testrepo;

pub use error::{Error, FailureClass};
pub use fdlimit::{Raised, raise as raise_fd_limit};
pub use notify::webhook::sign as sign_webhook;
pub use secret::redact_panics;
