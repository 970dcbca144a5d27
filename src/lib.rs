//! promptsync keeps LLM prompts that live as YAML files in a git repository in
//! sync with the Respan prompt-management API.
//!
//! Data flows one way through a reconcile pass:
//!
//! 1. [`gitrepo`] reads the source commit (or the working tree) and its tags;
//!    [`discover`] finds the prompt files in it.
//! 2. [`prompt`] parses and validates each file into a typed prompt, with
//!    [`diagnostic`]s that carry file, line and column; [`desired`] turns the valid
//!    ones into the desired state (identities, content, provenance, conflicts).
//! 3. [`api`] reads a snapshot of the remote prompts in as few requests as it can.
//! 4. [`plan`] compares desired and remote ([`normalize`] gives the canonical form
//!    used for semantic equality, [`deploy`] picks the release tag); pure, no I/O.
//! 5. [`apply`] runs the plan through the API client with bounded concurrency.
//! 6. [`report`] renders the outcome as text or JSON; it is the only writer to stdout.
//!
//! [`reconcile`] ties one pass together and knows nothing about what triggered it.
//! [`commands`] holds one entry point per subcommand; the binary is glue around it.
//! The local Respan emulator that tests and first runs use is its own crate,
//! `promptsync-emulator`; this library is the sync engine alone.

pub mod api;
pub mod apply;
pub mod baseline;
pub mod cli;
pub mod commands;
pub mod config;
pub mod confined;
pub mod daemon;
pub mod deploy;
pub mod desired;
pub mod diagnostic;
pub mod diff;
pub mod discover;
pub mod error;
pub mod excerpt;
pub mod failure;
pub mod fdlimit;
pub mod gitrepo;
pub mod localfile;
pub mod logging;
pub mod memory;
pub mod normalize;
pub mod notify;
pub mod pass;
pub mod plan;
pub mod prompt;
pub mod provenance;
pub mod pull;
pub mod reconcile;
pub mod remote_source;
pub mod repofile;
pub mod report;
pub mod secret;
pub mod secretfile;
pub mod source;
pub mod term;
#[cfg(test)]
mod testrepo;

pub use error::{Error, FailureClass};
