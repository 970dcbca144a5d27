//! Merging and validation without files: defaults < environment < flags. The file
//! layer, with real files, is tested in tests/it/config.rs.

use super::*;
use crate::cli::{Cli, GlobalArgs};
use crate::logging::LogFormat;

/// A repository root that has no `promptsync.toml`.
const NO_REPO: &str = "/nonexistent/promptsync-test-repo";

fn global(args: &[&str]) -> GlobalArgs {
    let mut argv = vec!["promptsync", "--repo", NO_REPO];
    argv.extend_from_slice(args);
    argv.push("validate");
    Cli::try_parse_checked(argv).unwrap().global
}

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load_from_env(&global(args), &Overrides::default(), env.iter().copied())
}

fn problems(args: &[&str], env: &[(&str, &str)]) -> Vec<Problem> {
    match load(args, env) {
        Ok(settings) => panic!("expected problems, got {settings:#?}"),
        Err(err) => err.problems().to_vec(),
    }
}

#[test]
fn the_defaults_are_those_documented() {
    let settings = load(&[], &[]).unwrap();
    assert_eq!(settings.repo, PathBuf::from(NO_REPO));
    assert_eq!(settings.config_file, None);
    assert_eq!(settings.api.base_url.as_str(), "https://api.respan.ai/");
    assert!(settings.api.api_key.is_none());
    assert_eq!(settings.api.timeout, Duration::from_secs(30));
    assert_eq!(settings.api.connect_timeout, Duration::from_secs(10));
    assert_eq!(settings.api.max_in_flight, 8);
    assert_eq!(settings.api.retry_max_elapsed, Duration::from_secs(60));
    assert_eq!(settings.prompts.include, PromptSettings::default().include);
    assert_eq!(settings.prompts.exclude, PromptSettings::default().exclude);
    assert!(settings.deploy.enabled);
    assert_eq!(settings.deploy.tags, ["v*"]);
    assert_eq!(settings.sync.drift, DriftPolicy::Correct);
    assert!(!settings.sync.suspend);
    assert_eq!(settings.log.format, LogFormat::Pretty);
    assert_eq!(settings.log.filter, "info");
    // Loopback: the probe server opens no door to the network unless asked to.
    assert_eq!(
        settings.watch.listen,
        SocketAddr::from(([127, 0, 0, 1], 8080))
    );
    assert_eq!(settings.watch.reconcile_token_file, None);
    assert_eq!(
        settings.watch.reconcile_min_interval,
        Duration::from_secs(10)
    );
    assert_eq!(settings.watch.resync_interval, Duration::from_secs(300));
    assert_eq!(settings.watch.debounce, Duration::from_millis(500));
}

#[test]
fn the_example_file_lists_every_key() {
    let example = layers::DEFAULTS_TOML;
    for key in raw::known_keys() {
        let (section, field) = key.split_once('.').unwrap();
        let section_at = example
            .find(&format!("\n[{section}]\n"))
            .unwrap_or_else(|| panic!("no [{section}] in the example"));
        let rest = &example[section_at..];
        let section_text = &rest[..rest[1..].find("\n[").map_or(rest.len(), |end| end + 1)];
        let listed = section_text.lines().any(|line| {
            line.trim_start_matches("# ")
                .starts_with(&format!("{field} = "))
        });
        assert!(listed, "{key} is not in config/promptsync.example.toml");
    }
}

#[test]
fn environment_overrides_defaults_and_flags_override_environment() {
    let env = [
        ("PROMPTSYNC_LOG__LEVEL", "warn"),
        ("PROMPTSYNC_LOG__FORMAT", "json"),
        ("PROMPTSYNC_API__TIMEOUT", "2m"),
        ("PROMPTSYNC_API__MAX_IN_FLIGHT", "3"),
        ("PROMPTSYNC_DEPLOY__TAGS", "[release-*, v*]"),
        ("PROMPTSYNC_SYNC__SUSPEND", "true"),
        ("PROMPTSYNC_WATCH__LISTEN", "127.0.0.1:9000"),
    ];
    let settings = load(&[], &env).unwrap();
    assert_eq!(settings.log.filter, "warn");
    assert_eq!(settings.log.format, LogFormat::Json);
    assert_eq!(settings.api.timeout, Duration::from_secs(120));
    assert_eq!(settings.api.max_in_flight, 3);
    assert_eq!(settings.deploy.tags, ["release-*", "v*"]);
    assert!(settings.sync.suspend);
    assert_eq!(
        settings.watch.listen,
        SocketAddr::from(([127, 0, 0, 1], 9000))
    );

    let overrides = Overrides {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 9100))),
        ..Overrides::default()
    };
    let flagged = Settings::load_from_env(
        &global(&["-vv", "--log-format", "pretty"]),
        &overrides,
        env.iter().copied(),
    )
    .unwrap();
    assert_eq!(flagged.log.filter, "trace");
    assert_eq!(flagged.log.format, LogFormat::Pretty);
    assert_eq!(
        flagged.watch.listen,
        SocketAddr::from(([127, 0, 0, 1], 9100))
    );
    assert_eq!(flagged.api.timeout, Duration::from_secs(120));
}

#[test]
fn quiet_flags_lower_the_level() {
    assert_eq!(load(&["-q"], &[]).unwrap().log.filter, "warn");
    assert_eq!(load(&["-qq"], &[]).unwrap().log.filter, "error");
    assert_eq!(load(&["-v"], &[]).unwrap().log.filter, "debug");
}

#[test]
fn respan_base_url_sets_the_url_and_promptsync_variable_wins() {
    let settings = load(&[], &[("RESPAN_BASE_URL", "http://127.0.0.1:8787/api")]).unwrap();
    assert_eq!(settings.api.base_url.as_str(), "http://127.0.0.1:8787/");
    let settings = load(
        &[],
        &[
            ("RESPAN_BASE_URL", "http://127.0.0.1:8787"),
            ("PROMPTSYNC_API__BASE_URL", "https://eu.api.respan.ai/"),
        ],
    )
    .unwrap();
    assert_eq!(settings.api.base_url.as_str(), "https://eu.api.respan.ai/");
}

#[test]
fn plain_http_to_a_remote_host_is_refused_with_its_origin() {
    let found = problems(&[], &[("RESPAN_BASE_URL", "http://api.respan.ai")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key.as_deref(), Some("api.base_url"));
    assert_eq!(found[0].origin, "environment variable RESPAN_BASE_URL");
    assert!(found[0].message.contains("use https://"), "{}", found[0]);
}

#[test]
fn the_api_key_comes_from_the_environment_and_stays_hidden() {
    let secret = "sk_env_5ecret_value";
    let settings = load(&[], &[("RESPAN_API_KEY", &format!(" {secret}\n"))]).unwrap();
    assert_eq!(
        settings.api.api_key.as_ref().map(ApiKey::expose),
        Some(secret)
    );
    let debug = format!("{settings:?} {settings:#?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
    assert!(
        load(&[], &[("RESPAN_API_KEY", "  ")])
            .unwrap()
            .api
            .api_key
            .is_none()
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_origin() {
    let found = problems(
        &[],
        &[
            ("PROMPTSYNC_API__TIMEOUT", "5 parsecs"),
            ("PROMPTSYNC_API__MAX_IN_FLIGHT", "0"),
            ("PROMPTSYNC_SYNC__DRIFT", "fix"),
            ("PROMPTSYNC_LOG__LEVEL", "debgu"),
            ("PROMPTSYNC_DEPLOY__TAGS", "[\"v[\"]"),
            ("PROMPTSYNC_API__TIMOUT", "1s"),
            ("PROMPTSYNC_WATCH__LISTEN", "localhost"),
            ("RESPAN_API_KEY", "sk_should_not_show"),
        ],
    );
    let keys: Vec<&str> = found.iter().filter_map(|p| p.key.as_deref()).collect();
    assert_eq!(
        keys,
        [
            "api.timout",
            "api.timeout",
            "api.max_in_flight",
            "deploy.tags",
            "sync.drift",
            "log.level",
            "watch.listen",
        ],
        "{found:#?}"
    );
    for problem in &found {
        let key = problem.key.as_deref().unwrap();
        assert_eq!(
            problem.origin,
            format!("environment variable {}", layers::env_from_key(key)),
            "{problem}"
        );
    }
    assert!(
        found[0]
            .message
            .contains("did you mean PROMPTSYNC_API__TIMEOUT?"),
        "{}",
        found[0]
    );
    let text = ConfigError::Invalid { problems: found }.to_string();
    assert!(!text.contains("sk_should_not_show"), "{text}");
}

#[test]
fn a_section_set_as_a_value_is_a_problem() {
    let found = problems(&[], &[("PROMPTSYNC_LOG", "debug")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key.as_deref(), Some("log"));
    assert!(
        found[0].message.contains("like PROMPTSYNC_LOG__FORMAT"),
        "{}",
        found[0]
    );
}

#[test]
fn an_api_key_setting_is_refused_with_advice() {
    let found = problems(&[], &[("PROMPTSYNC_API__API_KEY", "sk_in_the_wrong_place")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("RESPAN_API_KEY"), "{}", found[0]);
    assert!(!found[0].to_string().contains("sk_in_the_wrong_place"));
}

#[test]
fn durations_have_floors() {
    let found = problems(
        &[],
        &[
            ("PROMPTSYNC_API__TIMEOUT", "0s"),
            ("PROMPTSYNC_WATCH__RESYNC_INTERVAL", "30"),
        ],
    );
    assert!(found[0].message.contains("too short"), "{}", found[0]);
    assert!(found[1].message.contains("not a duration"), "{}", found[1]);
    let settings = load(&[], &[("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "0s")]).unwrap();
    assert_eq!(settings.api.retry_max_elapsed, Duration::ZERO);
}

#[test]
fn the_api_timeout_has_a_ceiling() {
    let found = problems(&[], &[("PROMPTSYNC_API__TIMEOUT", "24h")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key.as_deref(), Some("api.timeout"));
    assert!(
        found[0]
            .message
            .contains("\"24h\" is too long; the most is 5m"),
        "{}",
        found[0]
    );
    let settings = load(&[], &[("PROMPTSYNC_API__TIMEOUT", "5m")]).unwrap();
    assert_eq!(settings.api.timeout, Duration::from_secs(300));
}

#[test]
fn log_settings_from_flags_alone() {
    let settings = LogSettings::from_global(&global(&["--log-format", "json", "-v"]));
    assert_eq!(settings.format, LogFormat::Json);
    assert_eq!(settings.filter, "debug");
    let settings = LogSettings::from_global(&global(&[]));
    assert_eq!(settings.format, LogFormat::Pretty);
    assert_eq!(settings.filter, "info");
}

#[test]
fn a_whole_number_written_as_a_float_is_that_number() {
    let settings = load(&[], &[("PROMPTSYNC_API__MAX_IN_FLIGHT", "8.0")]).unwrap();
    assert_eq!(settings.api.max_in_flight, 8);
    let err = load(&[], &[("PROMPTSYNC_API__MAX_IN_FLIGHT", "8.5")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected a whole number from 1 to 256, found 8.5"),
        "{err}"
    );
}

#[test]
fn a_remote_source_is_read_from_the_environment_and_the_flag() {
    let settings = load(
        &[],
        &[
            (
                "PROMPTSYNC_SOURCE__URL",
                "https://github.com/org/prompts.git",
            ),
            ("PROMPTSYNC_SOURCE__BRANCH", "release"),
            ("PROMPTSYNC_SOURCE__TOKEN_FILE", "/run/secrets/git/token"),
        ],
    )
    .unwrap();
    let source = settings.source.unwrap();
    assert_eq!(source.url.as_str(), "https://github.com/org/prompts.git");
    assert_eq!(source.branch.as_deref(), Some("release"));
    assert_eq!(source.interval, Duration::from_secs(60));
    assert_eq!(source.fetch_timeout, Duration::from_secs(120));
    assert_eq!(source.max_fetch_size, 1 << 30);
    assert!(load(&[], &[]).unwrap().source.is_none());

    let overrides = Overrides {
        source_url: Some("git@github.com:org/other.git".into()),
        ..Overrides::default()
    };
    let settings = Settings::load_from_env(
        &global(&[]),
        &overrides,
        [(
            "PROMPTSYNC_SOURCE__URL",
            "https://github.com/org/prompts.git",
        )],
    )
    .unwrap();
    assert_eq!(
        settings.source.unwrap().url.as_str(),
        "git@github.com:org/other.git"
    );
}

#[test]
fn source_settings_that_do_not_fit_are_named() {
    let found = problems(
        &[],
        &[
            ("PROMPTSYNC_SOURCE__URL", "git@github.com:org/prompts.git"),
            ("PROMPTSYNC_SOURCE__SSH_KEY_FILE", "/keys/id"),
            ("PROMPTSYNC_SOURCE__TOKEN_FILE", "/keys/token"),
        ],
    );
    let keys: Vec<_> = found.iter().filter_map(|p| p.key.clone()).collect();
    assert!(keys.contains(&"source.token_file".to_owned()), "{found:?}");
    assert!(
        keys.contains(&"source.known_hosts_file".to_owned()),
        "{found:?}"
    );
    let found = problems(&[], &[("PROMPTSYNC_SOURCE__TOKEN_FILE", "/keys/token")]);
    assert!(found[0].message.contains("source.url is not"), "{found:?}");
    let found = problems(
        &[],
        &[("PROMPTSYNC_SOURCE__URL", "http://git.example.com/r.git")],
    );
    assert!(found[0].message.contains("use https://"), "{found:?}");
}

#[test]
fn the_repository_file_cannot_set_the_source() {
    let global = global(&[]);
    let tree_file = Some((
        PathBuf::from("promptsync.toml@0123456789ab"),
        "[source]\nurl = \"https://evil.example/r.git\"\n\n[deploy]\ntags = [\"release-*\"]\n"
            .to_owned(),
    ));
    let err = Settings::load_remote_from_env(
        &global,
        &Overrides::default(),
        [(
            "PROMPTSYNC_SOURCE__URL",
            "https://github.com/org/prompts.git",
        )],
        tree_file,
    )
    .unwrap_err();
    let problem = &err.problems()[0];
    assert_eq!(problem.key.as_deref(), Some("source.url"));
    assert!(problem.message.contains("operator-trusted"), "{problem}");

    let tree_file = Some((
        PathBuf::from("promptsync.toml@0123456789ab"),
        "[deploy]\ntags = [\"release-*\"]\n".to_owned(),
    ));
    let settings = Settings::load_remote_from_env(
        &global,
        &Overrides::default(),
        [(
            "PROMPTSYNC_SOURCE__URL",
            "https://github.com/org/prompts.git",
        )],
        tree_file,
    )
    .unwrap();
    assert_eq!(settings.deploy.tags, ["release-*"]);
    assert!(settings.source.is_some());
}
