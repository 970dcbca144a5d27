//! Configuration with real files: the layering order (default < file < environment <
//! flag), `--config`, unknown keys, problems with their origins, the base URL rules.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use promptsync::cli::Cli;
use promptsync::config::{ConfigError, Overrides, Problem, Settings};
use promptsync::logging::LogFormat;

/// A repository directory with an optional `promptsync.toml`.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        Repo {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn with_config(text: &str) -> Self {
        let repo = Repo::new();
        repo.write("promptsync.toml", text);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        self.load_with(args, &Overrides::default(), env)
    }

    fn load_with(
        &self,
        args: &[&str],
        overrides: &Overrides,
        env: &[(&str, &str)],
    ) -> Result<Settings, ConfigError> {
        let repo = self.path().to_str().unwrap();
        let mut argv = vec!["promptsync", "--repo", repo];
        argv.extend_from_slice(args);
        argv.push("validate");
        let global = Cli::try_parse_checked(argv).unwrap().global;
        Settings::load_from_env(&global, overrides, env.iter().copied())
    }

    fn problems(&self, args: &[&str], env: &[(&str, &str)]) -> Vec<Problem> {
        match self.load(args, env) {
            Ok(settings) => panic!("expected problems, got {settings:#?}"),
            Err(err) => err.problems().to_vec(),
        }
    }

    fn config_label(&self) -> String {
        self.path().join("promptsync.toml").display().to_string()
    }
}

const FILE: &str = r#"
[api]
timeout = "45s"
max_in_flight = 4

[log]
format = "json"
level = "warn"

[watch]
listen = "127.0.0.1:7000"
debounce = "1s"
"#;

#[test]
fn each_layer_overrides_the_one_before() {
    // Defaults alone.
    let bare = Repo::new().load(&[], &[]).unwrap();
    assert_eq!(bare.api.timeout, Duration::from_secs(30));
    assert_eq!(bare.log.format, LogFormat::Pretty);
    assert_eq!(bare.config_file, None);

    // The file over the defaults.
    let repo = Repo::with_config(FILE);
    let file = repo.load(&[], &[]).unwrap();
    assert_eq!(file.config_file, Some(repo.path().join("promptsync.toml")));
    assert_eq!(file.api.timeout, Duration::from_secs(45));
    assert_eq!(file.api.max_in_flight, 4);
    assert_eq!(file.log.format, LogFormat::Json);
    assert_eq!(file.log.filter, "warn");
    assert_eq!(
        file.watch.listen,
        "127.0.0.1:7000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(file.watch.debounce, Duration::from_secs(1));
    assert_eq!(
        file.api.connect_timeout,
        Duration::from_secs(10),
        "default kept"
    );

    // The environment over the file.
    let env = [
        ("PROMPTSYNC_API__TIMEOUT", "90s"),
        ("PROMPTSYNC_LOG__FORMAT", "pretty"),
        ("PROMPTSYNC_LOG__LEVEL", "error"),
        ("PROMPTSYNC_WATCH__LISTEN", "127.0.0.1:7001"),
    ];
    let from_env = repo.load(&[], &env).unwrap();
    assert_eq!(from_env.api.timeout, Duration::from_secs(90));
    assert_eq!(from_env.api.max_in_flight, 4, "file kept");
    assert_eq!(from_env.log.format, LogFormat::Pretty);
    assert_eq!(from_env.log.filter, "error");
    assert_eq!(
        from_env.watch.listen,
        "127.0.0.1:7001".parse::<SocketAddr>().unwrap()
    );

    // Flags over the environment.
    let overrides = Overrides {
        listen: Some("127.0.0.1:7002".parse().unwrap()),
        ..Overrides::default()
    };
    let flags = repo
        .load_with(&["--log-format", "json", "-v"], &overrides, &env)
        .unwrap();
    assert_eq!(flags.log.format, LogFormat::Json);
    assert_eq!(flags.log.filter, "debug");
    assert_eq!(
        flags.watch.listen,
        "127.0.0.1:7002".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        flags.api.timeout,
        Duration::from_secs(90),
        "environment kept"
    );
}

#[test]
fn an_explicit_config_file_replaces_the_one_at_the_root() {
    let repo = Repo::with_config("[api]\ntimeout = \"45s\"\n");
    let other = repo.write("ci/promptsync.ci.toml", "[sync]\nsuspend = true\n");
    let settings = repo
        .load(&["--config", other.to_str().unwrap()], &[])
        .unwrap();
    assert!(settings.sync.suspend);
    assert_eq!(
        settings.api.timeout,
        Duration::from_secs(30),
        "root file not read"
    );
    assert_eq!(settings.config_file, Some(other));
}

#[test]
fn a_missing_explicit_config_file_is_an_error_and_a_missing_root_file_is_not() {
    let repo = Repo::new();
    let missing = repo.path().join("nope.toml");
    let err = repo
        .load(&["--config", missing.to_str().unwrap()], &[])
        .unwrap_err();
    assert!(matches!(err, ConfigError::FileMissing { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("nope.toml does not exist"), "{text}");
    assert!(text.contains("--config"), "{text}");
    assert!(repo.load(&[], &[]).is_ok());
}

#[test]
fn a_config_path_that_is_a_directory_cannot_be_read() {
    let repo = Repo::new();
    std::fs::create_dir(repo.path().join("promptsync.toml")).unwrap();
    let err = repo.load(&[], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::FileNotRegular { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "configuration file {} is a directory, not a regular file; promptsync reads its \
             settings from a TOML file",
            repo.config_label()
        )
    );
}

#[test]
fn config_files_are_bounded_regular_utf8_files() {
    let repo = Repo::new();
    let big = repo.write("big.toml", &format!("# {}\n", "x".repeat(1024 * 1024)));
    let latin1 = repo.path().join("latin1.toml");
    std::fs::write(&latin1, b"# caf\xe9\n").unwrap();
    let fifo = repo.path().join("fifo.toml");
    crate::badinput::mkfifo(&fifo);
    let cases = [
        (
            big.clone(),
            format!(
                "configuration file {} is 1048579 bytes, over the limit of 1 MiB; a \
                 configuration file holds a few settings",
                big.display()
            ),
        ),
        (
            latin1.clone(),
            format!(
                "configuration file {} is not UTF-8 text (bad byte at offset 5); save it as UTF-8",
                latin1.display()
            ),
        ),
        (
            fifo.clone(),
            format!(
                "configuration file {} is a named pipe (FIFO), not a regular file; promptsync \
                 reads its settings from a TOML file",
                fifo.display()
            ),
        ),
        (
            PathBuf::from("/dev/zero"),
            "configuration file /dev/zero is a character device, not a regular file; \
             promptsync reads its settings from a TOML file"
                .to_owned(),
        ),
    ];
    for (path, expected) in cases {
        let err = repo
            .load(&["--config", path.to_str().unwrap()], &[])
            .unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
}

/// `--config /dev/zero` used to grow past 4 GB; a FIFO would block. Through the binary
/// both end at once, and an OS error is said once, not twice.
#[test]
fn the_binary_refuses_devices_fifos_and_says_an_os_error_once() {
    let repo = Repo::new();
    let fifo = repo.path().join("fifo.toml");
    crate::badinput::mkfifo(&fifo);
    for (config, expected) in [
        (
            "/dev/zero".to_owned(),
            "error: configuration file /dev/zero is a character device, not a regular file"
                .to_owned(),
        ),
        (
            fifo.display().to_string(),
            format!(
                "error: configuration file {} is a named pipe (FIFO), not a regular file",
                fifo.display()
            ),
        ),
        (
            "/etc/hostname/x.toml".to_owned(),
            "error: cannot read configuration file /etc/hostname/x.toml: Not a directory\n"
                .to_owned(),
        ),
    ] {
        let output = binary(&repo)
            .args(["--config", &config, "validate", "a.prompt.yaml"])
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(err.starts_with(&expected), "{err}");
        assert!(!err.contains("os error"), "{err}");
    }
}

#[test]
fn a_typo_in_the_file_gets_a_suggestion_and_the_file_name() {
    let repo = Repo::with_config("[api]\ntimout = \"5s\"\n\n[log]\nlevle = \"debug\"\n");
    let found = repo.problems(&[], &[]);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0].key.as_deref(), Some("api.timout"));
    assert_eq!(found[0].origin, repo.config_label());
    assert!(
        found[0].message.contains("did you mean `api.timeout`?"),
        "{}",
        found[0]
    );
    assert!(
        found[1].message.contains("did you mean `log.level`?"),
        "{}",
        found[1]
    );
}

#[test]
fn an_unknown_section_suggests_the_right_one() {
    let repo = Repo::with_config("[aip]\ntimeout = \"5s\"\n\n[colour]\n");
    let found = repo.problems(&[], &[]);
    let rendered: Vec<String> = found.iter().map(Problem::to_string).collect();
    assert_eq!(found.len(), 2, "{rendered:#?}");
    assert!(
        rendered[0].starts_with("aip.timeout (from "),
        "{}",
        rendered[0]
    );
    assert!(
        rendered[0].contains("did you mean `api.timeout`?"),
        "{}",
        rendered[0]
    );
    assert!(rendered[1].starts_with("colour (from "), "{}", rendered[1]);
    assert!(!rendered[1].contains("did you mean"), "{}", rendered[1]);
}

#[test]
fn problems_from_every_layer_are_reported_together() {
    let repo = Repo::with_config(
        "[api]\nbase_url = \"http://api.respan.ai\"\nmax_in_flight = \"many\"\n\n\
         [sync]\ndrift = \"ignore\"\n",
    );
    let err = repo
        .load(&["-v"], &[("PROMPTSYNC_WATCH__DEBOUNCE", "soon")])
        .unwrap_err();
    let found = err.problems();
    let summary: Vec<(&str, &str)> = found
        .iter()
        .map(|p| (p.key.as_deref().unwrap(), p.origin.as_str()))
        .collect();
    let file = repo.config_label();
    assert_eq!(
        summary,
        [
            ("api.base_url", file.as_str()),
            ("api.max_in_flight", file.as_str()),
            ("sync.drift", file.as_str()),
            (
                "watch.debounce",
                "environment variable PROMPTSYNC_WATCH__DEBOUNCE"
            ),
        ]
    );
    let text = err.to_string();
    assert!(
        text.starts_with("invalid configuration (4 problems):\n  - api.base_url (from "),
        "{text}"
    );
    assert!(
        text.contains("\"ignore\" is not one of \"correct\", \"report\""),
        "{text}"
    );
    assert!(
        text.contains("expected a whole number from 1 to 256, found \"many\""),
        "{text}"
    );
}

#[test]
fn a_file_that_is_not_toml_names_the_file_and_line() {
    let repo = Repo::with_config("[api]\ntimeout = 30s\n");
    let found = repo.problems(&[], &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let text = found[0].to_string();
    assert!(text.contains("promptsync.toml"), "{text}");
    assert!(text.contains("line 2"), "{text}");
}

#[test]
fn plain_http_is_refused_for_remote_hosts_and_allowed_for_loopback() {
    // The repository's own file may set the base URL only when the operator trusts it.
    let trusted = ["--trust-repo-config"];
    let remote = Repo::with_config("[api]\nbase_url = \"http://respan.example.com/api\"\n");
    let found = remote.problems(&trusted, &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("plain http:// is refused for respan.example.com")
    );
    assert!(found[0].message.contains("use https://"));

    for (url, normalised) in [
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787/"),
        ("http://localhost:8787/", "http://localhost:8787/"),
        ("http://[::1]:8787/api", "http://[::1]:8787/"),
        ("https://api.respan.ai/api/", "https://api.respan.ai/"),
    ] {
        let repo = Repo::with_config(&format!("[api]\nbase_url = \"{url}\"\n"));
        let settings = repo.load(&trusted, &[]).unwrap();
        assert_eq!(settings.api.base_url.as_str(), normalised, "{url}");
        let from_env = Repo::new().load(&[], &[("RESPAN_BASE_URL", url)]).unwrap();
        assert_eq!(from_env.api.base_url.as_str(), normalised, "{url}");
    }
}

#[test]
fn a_relative_key_file_is_found_beside_the_config_file() {
    // The operator's configuration, outside the repository.
    let ops = Repo::new();
    ops.write("secrets/api-key", "sk_from_file_123\n");
    let config = ops.write(
        "conf/promptsync.toml",
        "[api]\napi_key_file = \"../secrets/api-key\"\n",
    );
    let settings = Repo::new()
        .load(&["--config", config.to_str().unwrap()], &[])
        .unwrap();
    let key = settings.api.api_key.expect("key read");
    assert_eq!(key.expose(), "sk_from_file_123");
}

#[test]
fn the_projects_own_promptsync_toml_limits_discovery_to_the_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let global =
        Cli::try_parse_checked(["promptsync", "--repo", root.to_str().unwrap(), "validate"])
            .unwrap()
            .global;
    let settings = Settings::load_from_env(
        &global,
        &Overrides::default(),
        std::iter::empty::<(&str, &str)>(),
    )
    .unwrap();
    assert_eq!(settings.config_file, Some(root.join("promptsync.toml")));
    assert!(
        settings
            .prompts
            .include
            .iter()
            .all(|glob| glob.starts_with("examples/prompts/")),
        "{:?}",
        settings.prompts.include
    );
}

/// The real binary in `repo`, with `PROMPTSYNC_*`/`RESPAN_*` cleared and a valid
/// prompt so that `validate` has something to log about.
fn binary(repo: &Repo) -> assert_cmd::Command {
    repo.write(
        "a.prompt.yaml",
        "name: A\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: hi\n",
    );
    let mut cmd = crate::support::promptsync();
    cmd.current_dir(repo.path());
    cmd
}

fn stderr_of(cmd: &mut assert_cmd::Command) -> (Option<i32>, String) {
    let output = cmd.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn is_json_logs(stderr: &str) -> bool {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    !lines.is_empty() && lines.iter().all(|l| l.starts_with('{'))
}

#[test]
fn the_binary_layers_file_env_and_flag_in_order() {
    let repo = Repo::with_config("[log]\nformat = \"json\"\n");
    let (code, err) = stderr_of(binary(&repo).args(["-v", "validate", "a.prompt.yaml"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(is_json_logs(&err), "the file asks for JSON logs:\n{err}");

    let (_, err) = stderr_of(
        binary(&repo)
            .args(["-v", "validate", "a.prompt.yaml"])
            .env("PROMPTSYNC_LOG__FORMAT", "pretty"),
    );
    assert!(
        !is_json_logs(&err) && !err.is_empty(),
        "the environment wins:\n{err}"
    );

    let (_, err) = stderr_of(
        binary(&repo)
            .args(["-v", "--log-format", "json", "validate", "a.prompt.yaml"])
            .env("PROMPTSYNC_LOG__FORMAT", "pretty"),
    );
    assert!(is_json_logs(&err), "the flag wins:\n{err}");
}

#[test]
fn the_binary_reports_every_config_problem_with_its_origin_and_exits_1() {
    let repo = Repo::with_config("[api]\ntimeout = \"soon\"\nmax_in_flight = 0\n");
    let (code, err) = stderr_of(
        binary(&repo)
            .arg("plan")
            .env("RESPAN_API_KEY", "sk_test")
            .env("PROMPTSYNC_SYNC__DRIFT", "ignore"),
    );
    assert_eq!(code, Some(1), "{err}");
    assert_contains_all(
        &err,
        &[
            "api.timeout",
            "api.max_in_flight",
            "promptsync.toml",
            "sync.drift",
            "environment variable PROMPTSYNC_SYNC__DRIFT",
        ],
    );
}

fn assert_contains_all(text: &str, expected: &[&str]) {
    for expected in expected {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn the_binary_refuses_a_missing_config_file_plain_http_and_a_bad_rust_log() {
    let repo = Repo::new();
    let (code, err) =
        stderr_of(binary(&repo).args(["--config", "missing.toml", "validate", "a.prompt.yaml"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("missing.toml does not exist"), "{err}");

    let (code, err) = stderr_of(
        binary(&repo)
            .arg("plan")
            .env("RESPAN_BASE_URL", "http://api.example.com")
            .env("RESPAN_API_KEY", "sk_test"),
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("use https://"), "{err}");

    let (code, err) = stderr_of(
        binary(&repo)
            .args(["validate", "a.prompt.yaml"])
            .env("RUST_LOG", "debgu"),
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("RUST_LOG"), "{err}");
}

/// `validate` never calls the API, so API settings cannot stop it: not a missing key
/// file, a bad base URL or a typo under `[api]`. Its other settings are still checked,
/// and commands that call the API still refuse the same settings.
#[test]
fn validate_needs_no_api_settings() {
    let repo = Repo::with_config(
        "[api]\napi_key_file = \"/run/secrets/missing\"\ntimeout = \"soon\"\ntimout = 1\n",
    );
    binary(&repo)
        .args(["validate", "a.prompt.yaml"])
        .env("RESPAN_BASE_URL", "http://api.example.com")
        .env("RESPAN_API_KEY", "two words")
        .assert()
        .success()
        .stdout("checked 1 prompt file: 1 valid, 0 invalid; 0 errors, 0 warnings\n");

    let (code, err) = stderr_of(binary(&repo).args(["--trust-repo-config", "plan"]));
    assert_eq!(code, Some(1), "{err}");
    assert_contains_all(
        &err,
        &[
            "api.api_key_file",
            "the key file /run/secrets/missing does not exist",
            "api.timeout",
            "api.timout",
        ],
    );

    let repo = Repo::with_config("[api]\napi_key_file = \"/run/secrets/missing\"\n");
    let (code, err) = stderr_of(
        binary(&repo)
            .args(["validate", "a.prompt.yaml"])
            .env("PROMPTSYNC_SYNC__DRIFT", "ignore"),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("sync.drift"), "{err}");
    assert!(!err.contains("api_key_file"), "{err}");
}

#[test]
fn the_root_config_applies_from_a_subdirectory_of_the_repository() {
    let repo = crate::support::git::TestRepo::new();
    repo.write(
        "promptsync.toml",
        "[prompts]\ninclude = [\"good/**/*.prompt.yaml\"]\n",
    )
    .write(
        "good/a.prompt.yaml",
        "name: A\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: hi\n",
    )
    .write("bad/b.prompt.yaml", "name: B\nmessages: []\n");
    repo.commit("Config at the root");
    let output = crate::support::promptsync()
        .current_dir(repo.path().join("good"))
        .arg("validate")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("checked 1 prompt file"), "{stdout}");
}

/// A message quotes a short excerpt of a configuration file, never a whole line: a
/// 900 KB line comes back as a window around the error, cut with `…`.
#[test]
fn a_huge_line_is_quoted_as_a_short_excerpt() {
    let line = format!("key = \"{}\" junk", "a".repeat(900_000));
    let repo = Repo::with_config(&line);
    let (code, err) = stderr_of(binary(&repo).args(["validate", "a.prompt.yaml"]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.len() < 1000, "{} bytes of error", err.len());
    assert!(
        err.contains("TOML syntax error at line 1, column 900010: "),
        "{err}"
    );
    assert!(err.contains("1 | …aaaa"), "{err}");

    // A value or an unknown key as long is cut the same way.
    let repo = Repo::with_config(&format!(
        "[sync]\ndrift = \"{}\"\n[api]\n{} = 1\n",
        "b".repeat(400_000),
        "k".repeat(400_000)
    ));
    let (code, err) = stderr_of(binary(&repo).arg("plan").env("RESPAN_API_KEY", "sk_test"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.len() < 2000, "{} bytes of error", err.len());
    assert!(err.contains("sync.drift"), "{err}");
    assert!(err.contains("bbbb…\" is not one of"), "{err}");
    assert!(err.contains("api.kkkk"), "{err}");
}
