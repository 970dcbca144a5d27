//! A pull request cannot redirect the key: `api.base_url` and `api.api_key_file` set by
//! the repository's own configuration file (its `promptsync.toml`, or a `--config`
//! file inside its work tree) are refused with a message that names the setting and
//! how to allow it, and nothing is sent; the operator's environment and a `--config`
//! file outside the repository decide; `--trust-repo-config` or
//! `PROMPTSYNC_TRUST_REPO_CONFIG=true` lets the repository decide.

use std::path::Path;

use promptsync::config::{Overrides, Settings};

use super::echo::{Echo, EchoServer};
use crate::support::promptsync;
use crate::support::scenario::{KEY, Scenario, prompt, texts};

/// What a refused `key` says, in full.
fn refusal(key: &str, decides: &str, env: &str) -> String {
    format!(
        "{key} (from {{file}}): decides {decides}, so the repository's own configuration \
         file may not set it: a pull request could change it. Set it in the environment \
         ({env}) or in a --config file outside the repository, or let the repository \
         decide with --trust-repo-config (PROMPTSYNC_TRUST_REPO_CONFIG=true)"
    )
}

/// `promptsync ARGS` in `repo` with the key in the environment and nothing else.
fn run(repo: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let output = promptsync()
        .current_dir(repo)
        .env("RESPAN_API_KEY", KEY)
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "1s")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    (output.status.code(), stdout, stderr)
}

/// A commit whose `promptsync.toml` is `config`, with one valid prompt.
fn pull_request(s: &Scenario, config: &str) {
    s.repo
        .write("promptsync.toml", config)
        .write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.commit("A pull request");
}

#[test]
fn a_pull_requests_base_url_is_refused_and_nothing_is_sent() {
    let s = Scenario::new();
    let evil = EchoServer::start(Echo::Unauthorized);
    pull_request(&s, &format!("[api]\nbase_url = \"{}\"\n", evil.base_url()));
    let file = std::fs::canonicalize(s.repo.path())
        .unwrap()
        .join("promptsync.toml");
    let expected = refusal(
        "api.base_url",
        "where the API key is sent",
        "PROMPTSYNC_API__BASE_URL",
    )
    .replace("{file}", &file.display().to_string());
    for args in [
        &["plan"][..],
        &["sync"],
        &["sync", "--output", "json"],
        &["status"],
        &["pull", "--all"],
        &["watch", "--once"],
    ] {
        let (code, stdout, stderr) = run(s.repo.path(), args, &[]);
        assert_eq!(code, Some(1), "{args:?}\n{stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!("error: invalid configuration:\n  - {expected}\n")),
            "{args:?}\n{stderr}"
        );
    }
    assert_eq!(
        evil.seen(),
        Vec::<String>::new(),
        "a request reached the pull request's host"
    );

    // `validate` never calls the API, so the setting does not stop it.
    let (code, stdout, stderr) = run(s.repo.path(), &["validate"], &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");

    // The operator's environment decides: the repository's value is not used.
    let emulator = s.emu.base_url();
    let (code, stdout, stderr) = run(
        s.repo.path(),
        &["plan"],
        &[("PROMPTSYNC_API__BASE_URL", emulator.as_str())],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(evil.seen(), Vec::<String>::new());

    // Trusted by the operator, the repository decides (here: to send the key away).
    let bearer = format!("Bearer {KEY}");
    let (code, _, stderr) = run(s.repo.path(), &["--trust-repo-config", "plan"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("the API refused the key"), "{stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");
    assert!(evil.seen().iter().all(|seen| *seen == bearer) && !evil.seen().is_empty());
    let before = evil.seen().len();
    let (code, _, stderr) = run(
        s.repo.path(),
        &["plan"],
        &[("PROMPTSYNC_TRUST_REPO_CONFIG", "true")],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(evil.seen().len() > before);
}

#[test]
fn a_pull_requests_key_file_is_refused_and_never_read() {
    let s = Scenario::new();
    let evil = EchoServer::start(Echo::Unauthorized);
    // Any file of the CI runner, outside the repository.
    let runner = tempfile::tempdir().unwrap();
    let file = runner.path().join("deploy-token");
    std::fs::write(&file, "sk_runner_file_not_a_key_7\n").unwrap();
    pull_request(
        &s,
        &format!("[api]\napi_key_file = \"{}\"\n", file.display()),
    );
    let operator = [("RESPAN_BASE_URL", evil.base_url())];
    let env: Vec<(&str, &str)> = operator.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = promptsync()
        .current_dir(s.repo.path())
        .envs(env.iter().copied())
        .arg("plan")
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("api.api_key_file (from ",)
            && stderr.contains(
                "decides which file is read and sent as the API key, so the repository's own \
             configuration file may not set it"
            )
            && stderr.contains("(PROMPTSYNC_API__API_KEY_FILE)"),
        "{stderr}"
    );
    assert_eq!(evil.seen(), Vec::<String>::new());

    // Trusted, the file is read and sent: what the rule prevents.
    let output = promptsync()
        .current_dir(s.repo.path())
        .envs(env.iter().copied())
        .args(["--trust-repo-config", "plan"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        evil.seen()
            .contains(&"Bearer sk_runner_file_not_a_key_7".to_owned()),
        "{:?}",
        evil.seen()
    );
}

/// A `--config` file inside the work tree is the repository's too; a file outside it
/// is the operator's.
#[test]
fn a_config_file_inside_the_work_tree_is_the_repositorys() {
    let s = Scenario::new();
    let evil = EchoServer::start(Echo::Rejects);
    s.repo
        .write(
            "ci/promptsync.toml",
            &format!("[api]\nbase_url = \"{}\"\n", evil.base_url()),
        )
        .write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.commit("A config file in the tree");
    let (code, _, stderr) = run(
        s.repo.path(),
        &["--config", "ci/promptsync.toml", "plan"],
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("api.base_url (from "), "{stderr}");
    assert!(stderr.contains("--trust-repo-config"), "{stderr}");
    assert_eq!(evil.seen(), Vec::<String>::new());

    let ops = tempfile::tempdir().unwrap();
    let outside = ops.path().join("promptsync.toml");
    std::fs::write(
        &outside,
        format!("[api]\nbase_url = \"{}\"\n", s.emu.base_url()),
    )
    .unwrap();
    let (code, stdout, stderr) = run(
        s.repo.path(),
        &["--config", outside.to_str().unwrap(), "plan"],
        &[],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 created"), "{stdout}");
}

/// The rule in the library: the value in effect decides, validate ignores it.
#[test]
fn only_a_value_in_effect_from_the_repositorys_file_is_refused() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("promptsync.toml"),
        "[api]\nbase_url = \"https://pr.example\"\ntimeout = \"45s\"\n",
    )
    .unwrap();
    let global = |args: &[&str]| super::global(repo.path(), args);
    let load = |args: &[&str], env: &[(&str, &str)]| {
        Settings::load_from_env(&global(args), &Overrides::default(), env.iter().copied())
    };
    let err = load(&[], &[]).unwrap_err();
    let keys: Vec<_> = err.problems().iter().map(|p| p.key.clone()).collect();
    assert_eq!(keys, [Some("api.base_url".to_owned())], "{err}");

    let from_env = load(&[], &[("PROMPTSYNC_API__BASE_URL", "https://ops.example")]).unwrap();
    assert_eq!(from_env.api.base_url.as_str(), "https://ops.example/");
    assert_eq!(
        from_env.api.timeout.as_secs(),
        45,
        "the file's other settings stay"
    );
    let trusted = load(&["--trust-repo-config"], &[]).unwrap();
    assert_eq!(trusted.api.base_url.as_str(), "https://pr.example/");
    let offline = Settings::load_offline(&global(&[]), &Overrides::default()).unwrap();
    assert_eq!(offline.api.base_url.as_str(), "https://api.respan.ai/");
}

#[test]
fn a_pull_request_cannot_set_where_people_are_told_or_what_gates_a_release() {
    let s = Scenario::new();
    let marker = s.repo.path().join("gate-ran");
    for (config, key, decides) in [
        (
            format!("[deploy]\ngate_command = \"touch {}\"\n", marker.display()),
            "deploy.gate_command",
            "which program may hold a release, and whether it does",
        ),
        (
            "[deploy]\ngate = \"advisory\"\n".to_owned(),
            "deploy.gate",
            "which program may hold a release, and whether it does",
        ),
        (
            "[notify.github]\napi_url = \"http://127.0.0.1:9\"\n".to_owned(),
            "notify.github",
            "where commit statuses and comments are posted, with which token",
        ),
        (
            "[[notify.webhook]]\nurl = \"http://127.0.0.1:9/hook\"\n".to_owned(),
            "notify.webhook",
            "where notifications are sent, signed with which secret",
        ),
        (
            "[notify.exec]\ncommand = \"touch x\"\n".to_owned(),
            "notify.exec",
            "which program runs after a pass",
        ),
    ] {
        pull_request(&s, &config);
        let (code, stdout, stderr) = run(s.repo.path(), &["plan"], &[]);
        let expected = refusal(
            key,
            decides,
            &format!("PROMPTSYNC_{}", key.replace('.', "__").to_ascii_uppercase()),
        );
        let expected = expected
            .split(" (from {file})")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        assert_eq!(code, Some(1), "{config}\n{stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!("  - {key} (from ")) && stderr.contains(&expected),
            "{config}\n{stderr}"
        );
    }
    assert!(!marker.exists(), "the pull request's gate command ran");
}
