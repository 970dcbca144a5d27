//! The command line itself: version, help, refusals.

use predicates::str::contains;

use crate::support::promptsync;

#[test]
fn version_prints_the_crate_version() {
    promptsync()
        .arg("-V")
        .assert()
        .success()
        .stdout(contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn no_subcommand_is_a_usage_error() {
    promptsync()
        .assert()
        .code(2)
        .stderr(contains("a subcommand or --sync is required"));
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["sync", "plan", "watch", "validate", "emulator"] {
        promptsync()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(contains("Usage: promptsync"));
    }
}

#[test]
fn watch_outside_a_repository_says_where_to_run_it() {
    let dir = tempfile::tempdir().unwrap();
    promptsync()
        .current_dir(dir.path())
        .env("RESPAN_API_KEY", "sk_test")
        .args(["watch", "--once"])
        .assert()
        .code(1)
        .stderr(contains("is not inside a git repository"));
}
