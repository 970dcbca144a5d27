//! The one integration-test binary: real git repositories in temp dirs, the emulator
//! over loopback HTTP, the real `promptsync` binary as a subprocess.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod support;

mod badinput;
mod cli;
mod config;
mod deploy;
mod deployonly;
mod emulator;
mod examples;
mod failures;
mod github;
mod gitsource;
mod hostile;
mod layers;
mod loadcache;
mod notify;
mod partial;
mod pull;
mod race;
mod remote;
mod replies;
mod report;
mod scale;
mod secrets;
mod status;
mod sync;
mod targets;
mod transcripts;
mod validate;
mod waits;
mod watch;
