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

/// The top level's version line, `promptsync X.Y.Z`.
fn version_line() -> String {
    format!("promptsync {}\n", env!("CARGO_PKG_VERSION"))
}

#[test]
fn help_and_version_exit_0_on_stdout_from_every_subcommand() {
    let cases: &[&[&str]] = &[
        &["--version"],
        &["-V"],
        &["sync", "--version"],
        &["--sync", "--version"],
        &["plan", "-V"],
        &["pull", "--version"],
        &["watch", "--version"],
        &["status", "--version"],
    ];
    for args in cases {
        let output = promptsync().args(*args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            version_line(),
            "{args:?} says what the top level says"
        );
        assert!(output.stderr.is_empty(), "{args:?}: {output:?}");
    }
    for args in [
        &["--help"][..],
        &["-h"],
        &["sync", "--help"],
        &["plan", "-h"],
        &["help", "pull"],
    ] {
        promptsync()
            .args(args)
            .assert()
            .code(0)
            .stdout(contains("Usage: promptsync"));
    }
}

/// Usage errors exit 1, never 2: `plan --detailed-exitcode` (and `status`) use 2 for
/// "changes pending", and a CI script that allows 2 must not pass a typo.
#[test]
fn a_usage_error_exits_1_not_2() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "a subcommand or --sync is required"),
        (&["sync", "--bogus"], "unexpected argument '--bogus'"),
        (
            &["plan", "--detailed-exitcode", "--bogus"],
            "unexpected argument '--bogus'",
        ),
        (
            &["plan", "--detailed-exitcode", "--output", "yaml"],
            "invalid value 'yaml'",
        ),
        (
            &["status", "--detailed-exitcode", "extra"],
            "unexpected argument 'extra'",
        ),
        (&["--dry-run"], "--dry-run needs --sync"),
        (&["--sync", "sync"], "--sync is the `sync` subcommand"),
        (
            &["pull"],
            "the following required arguments were not provided",
        ),
        (&["man", "bogus"], "invalid value 'bogus'"),
        (
            &["sync", "--worktree", "--rev", "HEAD"],
            "cannot be used with",
        ),
        (&["bogus"], "unrecognized subcommand 'bogus'"),
        (&["-v", "-q", "validate"], "cannot be used with"),
    ];
    for (args, message) in cases {
        let output = promptsync().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}:\n{stderr}");
        assert!(stderr.contains(message), "{args:?}:\n{stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}:\n{stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: {output:?}");
    }
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
