//! The API key never shows: not in `--help`, not in debug or trace logs, not in the
//! Debug of the settings, not in error messages; a canary key planted wherever an
//! attacker could put it shows on no output channel (`canary`); and a pull request
//! cannot redirect it (`trust`).

mod canary;
mod echo;
mod trust;

use predicates::prelude::*;
use promptsync::cli::Cli;
use promptsync::config::{Overrides, Settings};
use promptsync::logging::LogFormat;
use promptsync::logging::LogSettings;

use crate::support::promptsync;

const SECRET: &str = "sk_live_DoNotLeakMe_7f3a9c";

fn global(repo: &std::path::Path, args: &[&str]) -> promptsync::cli::GlobalArgs {
    let mut argv = vec!["promptsync", "--repo", repo.to_str().unwrap()];
    argv.extend_from_slice(args);
    argv.push("validate");
    Cli::try_parse_checked(argv).unwrap().global
}

/// Everything the error says, both ways it can be printed.
fn all_text(err: &dyn std::error::Error) -> String {
    let mut text = format!("{err} {err:?}");
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    text
}

#[test]
fn help_never_shows_the_key() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["sync", "--help"],
        &["plan", "--help"],
        &["watch", "--help"],
        &["validate", "--help"],
        &["emulator", "--help"],
    ] {
        promptsync()
            .args(args)
            .env("RESPAN_API_KEY", SECRET)
            .env("PROMPTSYNC_API__API_KEY_FILE", "/run/secrets/key")
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage: promptsync"))
            .stdout(predicate::str::contains(SECRET).not())
            .stderr(predicate::str::contains(SECRET).not());
    }
}

#[test]
fn commands_with_trace_logs_never_show_the_key() {
    // Today these commands may stop early; the check holds whatever they log.
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("promptsync.toml"),
        "[log]\nlevle = \"debug\"\n",
    )
    .unwrap();
    for args in [
        &["-vv", "validate"][..],
        &["--log-format", "json", "-vv", "sync", "--dry-run"],
    ] {
        promptsync()
            .current_dir(repo.path())
            .args(args)
            .env("RUST_LOG", "trace")
            .env("RESPAN_API_KEY", SECRET)
            .env("RESPAN_BASE_URL", "http://127.0.0.1:9")
            .assert()
            .stdout(predicate::str::contains(SECRET).not())
            .stderr(predicate::str::contains(SECRET).not());
    }
}

#[test]
fn settings_debug_shows_redacted() {
    let repo = tempfile::tempdir().unwrap();
    let settings = Settings::load_from_env(
        &global(repo.path(), &[]),
        &Overrides::default(),
        [("RESPAN_API_KEY", SECRET)],
    )
    .unwrap();
    assert_eq!(settings.api.api_key.as_ref().unwrap().expose(), SECRET);
    for text in [format!("{settings:?}"), format!("{settings:#?}")] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}

#[test]
fn trace_logs_of_the_settings_show_redacted() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("key"), format!("{SECRET}\n")).unwrap();
    std::fs::write(
        repo.path().join("promptsync.toml"),
        "[api]\napi_key_file = \"key\"\n",
    )
    .unwrap();
    for format in [LogFormat::Pretty, LogFormat::Json] {
        let out = tempfile::NamedTempFile::new().unwrap();
        let log = LogSettings {
            format,
            format_is_default: false,
            filter: "info".to_owned(),
        };
        let subscriber =
            promptsync::logging::subscriber(&log, Some("trace"), out.reopen().unwrap(), false)
                .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let settings = Settings::load_from_env(
                &global(repo.path(), &["-vv", "--trust-repo-config"]),
                &Overrides::default(),
                std::iter::empty::<(&str, &str)>(),
            )
            .unwrap();
            assert_eq!(settings.api.api_key.as_ref().unwrap().expose(), SECRET);
            let span = tracing::debug_span!("pass", api = ?settings.api);
            let _entered = span.enter();
            tracing::debug!(?settings, "settings loaded");
            tracing::trace!(key = %settings.api.api_key.as_ref().unwrap(), "key in use");
        });
        let text = std::fs::read_to_string(out.path()).unwrap();
        assert!(text.contains("settings loaded"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[test]
fn error_messages_never_show_the_key() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join("secret-dir")).unwrap();
    std::fs::write(
        repo.path().join("two-keys"),
        format!("{SECRET}\n{SECRET}\n"),
    )
    .unwrap();
    let cases: [(&str, &[(&str, &str)]); 4] = [
        // A key file that is a directory.
        ("[api]\napi_key_file = \"secret-dir\"\n", &[]),
        // A key file with two lines.
        ("[api]\napi_key_file = \"two-keys\"\n", &[]),
        // A bad configuration while the key is set.
        (
            "[api]\ntimeout = \"soon\"\nbase_url = \"http://remote.example\"\n",
            &[("RESPAN_API_KEY", SECRET)],
        ),
        // Both sources at once.
        (
            "[api]\napi_key_file = \"two-keys\"\n",
            &[("RESPAN_API_KEY", SECRET)],
        ),
    ];
    for (config, env) in cases {
        std::fs::write(repo.path().join("promptsync.toml"), config).unwrap();
        // Trusted, so that the key file is read and its errors are what is checked.
        let err = Settings::load_from_env(
            &global(repo.path(), &["--trust-repo-config"]),
            &Overrides::default(),
            env.iter().copied(),
        )
        .unwrap_err();
        let text = all_text(&err);
        assert!(!err.problems().is_empty(), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}
