//! The files people copy, exercised: the Dockerfile's runtime command line, the
//! Kubernetes manifests, the systemd units, the CI examples, the pre-commit hooks,
//! and the shell completions and man pages. Each test reads the shipped file, takes
//! the promptsync command line and settings out of it, and runs the real binary with
//! them (against the emulator where they talk to an API), so that no example can drift
//! from the command line. Offline schema checks of the same files (hadolint,
//! kubernetes-validate, systemd-analyze, check-jsonschema, actionlint) are in
//! `.ci/run`.

mod ci;
mod docker;
mod docs;
mod kubernetes;
mod precommit;
mod systemd;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use clap::CommandFactory;
use serde_json::Value;

use crate::support::git::TestRepo;
use crate::support::promptsync;
use crate::support::scenario::texts;

/// The default `watch.listen` port, which the Dockerfile exposes and the manifests
/// probe.
const LISTEN_PORT: u16 = 8080;

/// A pass on a loaded 2-core CI machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// A file of this repository, as shipped.
fn shipped(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// A shipped YAML file (one document) as JSON.
fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&shipped(rel)).unwrap_or_else(|err| panic!("{rel} is not YAML: {err}"))
}

/// The built-in defaults, as promptsync loads them in a directory with no settings.
fn defaults() -> promptsync::config::Settings {
    let dir = tempfile::tempdir().unwrap();
    let global = promptsync::cli::GlobalArgs {
        repo: Some(dir.path().to_owned()),
        config: None,
        log_format: None,
        verbose: 0,
        quiet: 0,
        trust_repo_config: false,
    };
    promptsync::config::Settings::load_from_env(
        &global,
        &promptsync::config::Overrides::default(),
        Vec::<(String, String)>::new(),
    )
    .unwrap()
}

/// Every environment variable that a promptsync flag reads (`PROMPTSYNC_REPO`, ...):
/// the global flags', which are all defined on the top command.
fn flag_env_names() -> BTreeSet<String> {
    promptsync::cli::Cli::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

/// Check that each variable is one promptsync reads: a flag's, `RESPAN_*`, or a
/// setting that the real binary accepts with that value (`promptsync validate` in an
/// empty repository, with that variable alone: an unknown key or a bad value fails
/// it, with a did-you-mean).
fn assert_settings_known(vars: &[(String, String)], whose: &str) {
    let flags = flag_env_names();
    let repo = TestRepo::new();
    for (name, value) in vars {
        if flags.contains(name) || name == "RESPAN_BASE_URL" || name == "RESPAN_API_KEY" {
            continue;
        }
        assert!(
            name.starts_with("PROMPTSYNC_"),
            "{whose} sets {name}, which promptsync does not read"
        );
        // A `[source]` key other than the URL is checked with the URL it goes with.
        let url = vars
            .iter()
            .filter(|_| name.starts_with("PROMPTSYNC_SOURCE__"))
            .find(|(name, _)| name == "PROMPTSYNC_SOURCE__URL");
        let output = promptsync()
            .current_dir(repo.path())
            .envs(url.map(|(name, value)| (name, value)))
            .env(name, value)
            .arg("validate")
            .output()
            .unwrap();
        let (stdout, stderr) = texts(&output);
        assert!(
            output.status.success(),
            "{whose} sets {name}={value:?}, which promptsync refuses:\n{stdout}{stderr}"
        );
    }
}

/// A directory holding `promptsync` (a link to the binary under test), to put first
/// on PATH for scripts that call promptsync by name.
struct BinDir(tempfile::TempDir);

impl BinDir {
    fn new() -> BinDir {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_promptsync"),
            dir.path().join("promptsync"),
        )
        .unwrap();
        BinDir(dir)
    }

    /// PATH with this directory first.
    fn path_var(&self) -> std::ffi::OsString {
        let mut paths = vec![self.0.path().to_owned()];
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        std::env::join_paths(paths).unwrap()
    }
}

/// Run `script` as GitHub's and GitLab's runners run a step with `shell: bash`
/// (`bash --noprofile --norc -eo pipefail`), in `dir`, with promptsync's environment
/// cleared (as [`promptsync`] does), then `env`.
fn run_script(script: &str, dir: &Path, bin: &BinDir, env: &[(String, String)]) -> Output {
    let mut command = std::process::Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("PROMPTSYNC_")
            || key.starts_with("RESPAN_")
            || key.starts_with("GITHUB_")
            || key.starts_with("CI_")
            || key == "RUST_LOG"
        {
            command.env_remove(key.as_ref());
        }
    }
    command
        .env("PATH", bin.path_var())
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (k, v)));
    command.output().expect("bash runs")
}

/// The text of a `run_script` result, for failure messages.
fn shown(output: &Output) -> String {
    let (stdout, stderr) = texts(output);
    format!(
        "status {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status.code()
    )
}

/// Kubernetes-style memory quantities (`64Mi`, `1Gi`) in MiB.
fn mebibytes(quantity: &str) -> u64 {
    with_unit(quantity, &[("Mi", 1), ("Gi", 1024)])
}

/// systemd-style durations (`30s`, `15min`) in seconds.
fn seconds(duration: &str) -> u64 {
    with_unit(duration, &[("s", 1), ("min", 60)])
}

/// A number followed by one of `units`, in the smallest unit.
fn with_unit(text: &str, units: &[(&str, u64)]) -> u64 {
    let (number, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let number: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {text}"));
    let (_, factor) = units
        .iter()
        .find(|(name, _)| *name == unit)
        .unwrap_or_else(|| panic!("unexpected unit in {text}"));
    number * factor
}

/// `path`, as a string (temp paths are UTF-8 here).
fn text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// A repository with prompt `A` committed.
fn repo_with_a_prompt() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "prompts/a.prompt.yaml",
        &crate::support::scenario::prompt("A", "first"),
    );
    repo.commit("Add A");
    repo
}
