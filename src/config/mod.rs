//! Layered settings: built-in defaults < `promptsync.toml` (or `--config`) <
//! `PROMPTSYNC_*` environment (nested keys with `__`) < command-line flags.
//!
//! Two stages: `layers` merges the layers with figment into a raw, untyped tree that
//! remembers where each value came from (`raw` checks its shape and names the unknown
//! keys); `validate` then turns it into typed [`Settings`] in one step that reports
//! every problem, each with its key and origin. The API key is read here (from
//! `RESPAN_API_KEY` or `api_key_file`) and never leaves an `ApiKey`; commands that
//! never call the API load with [`ApiUse::Unused`] and neither read nor check API
//! settings. Every file is read bounded, regular files only: the repository's own
//! configuration file through `repofile`, inside the repository only
//! ([`file`]). Settings that decide where a secret goes come from the operator unless
//! the operator trusts the repository's file (`trust`). Knows nothing about git,
//! prompt files or the API client.

mod api_key;
mod base_url;
mod error;
mod file;
mod layers;
mod listen;
mod notify;
mod raw;
mod trust;
mod validate;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::ApiKey;

/// `[log]`: logging owns its settings; they are part of [`Settings`].
use crate::logging::LogSettings;
/// `[source]`: the remote source owns its settings; they are part of [`Settings`].
use crate::source::SourceSettings;
pub use error::{ConfigError, Problem, UnknownTarget};
pub use layers::{COMMAND_LINE_VARS, CONFIG_VAR, REPO_VAR, TRUST_REPO_CONFIG_VAR};
pub use listen::parse_listen;
pub use notify::{
    EVENTS, ExecSettings, ForgeSettings, GateMode, GateSettings, NotifySettings, WebhookFormat,
    WebhookSettings, WebhookUrl, check_secret_url, check_url,
};

/// The configuration file read from the repository root when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "promptsync.toml";

/// The largest configuration file read: 1 MiB (a few settings fit in far less).
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// Whether a command calls the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiUse {
    /// It does: API settings are read (the key file too) and checked.
    Needed,
    /// It never does (`validate`): API settings are neither read nor checked, so a
    /// missing key file or a bad base URL cannot stop it; [`Settings::api`] holds the
    /// built-in defaults and no key.
    Unused,
}

/// Validated settings for one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The repository root as given (`--repo`, default `.`).
    pub repo: PathBuf,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
    pub api: ApiSettings,
    pub prompts: PromptSettings,
    pub deploy: DeploySettings,
    pub sync: SyncSettings,
    pub log: LogSettings,
    pub watch: WatchSettings,
    /// `[notify]`: commit statuses, webhooks, the exec hook; all off by default.
    pub notify: NotifySettings,
    /// `[source]`: the remote promptsync fetches itself; `None` when `source.url` is
    /// unset (the repository is the local clone at [`Settings::repo`]).
    pub source: Option<SourceSettings>,
    /// `[webhook]`: the secrets of the webhooks `watch` receives.
    pub webhook: HookSettings,
    /// `[targets.NAME]`, by name; empty without `[targets]` (one target, `default`,
    /// from `[api]` and `[deploy]`, exactly as before targets existed).
    pub targets: Vec<TargetSettings>,
    /// The target these settings act on ([`Settings::select`] sets it):
    /// [`DEFAULT_TARGET`] without `[targets]`.
    pub target: String,
}

/// The target of a configuration without `[targets]`.
pub const DEFAULT_TARGET: &str = "default";

/// `[targets.NAME]`: one Respan project (staging, production), with its own key and
/// what is live there.
#[derive(Debug, Clone)]
pub struct TargetSettings {
    pub name: String,
    /// `[api]` with this target's `base_url`, key, `max_in_flight` and
    /// `requests_per_minute` in place: its own client, its own pacing.
    pub api: ApiSettings,
    pub live: Live,
    /// `deploy.tags` of this target (default: `[deploy] tags`), for `live = "tags"`.
    pub tags: Vec<String>,
}

/// What is made live on a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Live {
    /// The newest tag that matches `deploy.tags` (the behaviour without targets).
    #[default]
    Tags,
    /// The synced commit's versions, at once (staging follows main).
    Branch,
    /// Nothing: drafts only.
    None,
}

impl Settings {
    /// The settings of each target named in `names` (every target when empty), in
    /// name order: `[api]` and `deploy.tags` replaced by the target's own.
    /// Without `[targets]` the one target is `default`, these settings as they are.
    pub fn select(&self, names: &[String]) -> Result<Vec<Settings>, UnknownTarget> {
        let known: Vec<&str> = if self.targets.is_empty() {
            vec![DEFAULT_TARGET]
        } else {
            self.targets.iter().map(|t| t.name.as_str()).collect()
        };
        if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(UnknownTarget {
                name: unknown.clone(),
                known: known.join(", "),
            });
        }
        if self.targets.is_empty() {
            return Ok(vec![self.clone()]);
        }
        Ok(self
            .targets
            .iter()
            .filter(|t| names.is_empty() || names.contains(&t.name))
            .map(|t| {
                let mut settings = self.clone();
                settings.api = t.api.clone();
                settings.deploy.tags.clone_from(&t.tags);
                settings.deploy.live = t.live;
                settings.target.clone_from(&t.name);
                settings
            })
            .collect())
    }

    /// Whether `[targets]` is configured (reports then group by target).
    pub fn has_targets(&self) -> bool {
        !self.targets.is_empty()
    }
}

/// `[webhook]`: the files holding the secrets of `POST /hooks/github`,
/// `/hooks/gitlab` and `/hooks/generic` (a provider without one is not answered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookSettings {
    pub github_secret_file: Option<PathBuf>,
    pub gitlab_secret_file: Option<PathBuf>,
    pub generic_secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Host root of the API (`https://api.respan.ai/`); a trailing `/api` is stripped.
    /// Its path is always `/`, so `base_url.join("api/prompts/")` gives the prompts route.
    pub base_url: url::Url,
    /// `RESPAN_API_KEY`, or the contents of `api_key_file`. Absent is only an error for
    /// commands that talk to the API.
    pub api_key: Option<ApiKey>,
    /// The file the key was read from (`api.api_key_file`, resolved), which the daemon
    /// watches so that a rotated key takes effect without a restart.
    pub api_key_file: Option<PathBuf>,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Requests in flight at once (default 8).
    pub max_in_flight: usize,
    /// Pace requests to at most this many a minute (a token bucket); `None`: no pacing.
    pub requests_per_minute: Option<usize>,
    /// Total time a request may spend retrying transient failures (zero: no retries).
    pub retry_max_elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct PromptSettings {
    /// Globs of prompt files, relative to the repository root. Never empty; each one
    /// compiles with `globset::Glob::new`.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DeploySettings {
    /// Deploy on release tags at all.
    pub enabled: bool,
    /// Tag-name globs that mark a release (default `v*`). Never empty.
    pub tags: Vec<String>,
    /// `deploy.gate_command`: a program that must pass before a release goes live.
    pub gate: Option<GateSettings>,
    /// What is made live (a target's `live`; `tags` without targets).
    pub live: Live,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftPolicy {
    /// Create a version from git again when the remote changed behind our back.
    #[default]
    Correct,
    /// Only report drift.
    Report,
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub drift: DriftPolicy,
    /// Stop all changes while still reporting the plan.
    pub suspend: bool,
    /// List the whole account to count the prompts no file names (pages of 100).
    pub report_unmanaged: bool,
}

#[derive(Debug, Clone)]
pub struct WatchSettings {
    pub listen: SocketAddr,
    pub resync_interval: Duration,
    pub debounce: Duration,
    /// Poll refs and file times instead of waiting for file system events (for file
    /// systems where events do not arrive); also the fallback when the OS limits on
    /// watches are reached.
    pub poll: bool,
    pub poll_interval: Duration,
    /// How long a running pass may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// The file holding the bearer token that a peer other than loopback must send
    /// with `POST /reconcile`; without it, only loopback may force a pass. An
    /// operator's setting: it names a secret file.
    pub reconcile_token_file: Option<PathBuf>,
    /// Forced passes (`POST /reconcile`) are accepted at most this often.
    pub reconcile_min_interval: Duration,
    /// With several targets: whether `/readyz` needs every target ready or one.
    pub ready: ReadyPolicy,
}

/// `watch.ready`: what readiness asks of a daemon's targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadyPolicy {
    /// Ready while every target is (none stalled, each synced once).
    #[default]
    All,
    /// Ready while at least one target is.
    Any,
}

/// What the operator gave at start, outside any file: where the repository and the
/// configuration file are, the log format and verbosity, whether the repository's own
/// file is trusted. The command line fills it from its global flags (and their
/// environment variables, [`COMMAND_LINE_VARS`]); the loaders take anything that turns
/// into one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// The repository root (default `.`).
    pub repo: Option<PathBuf>,
    /// The configuration file to read instead of `promptsync.toml` at the root.
    pub config: Option<PathBuf>,
    /// Sets `log.format`.
    pub log_format: Option<crate::logging::LogFormat>,
    /// `-v` count: sets `log.level` to debug or trace.
    pub verbose: u8,
    /// `-q` count: sets `log.level` to warn or error (when not `verbose`).
    pub quiet: u8,
    /// Let the repository's own file set operator-only keys (`trust`).
    pub trust_repo_config: bool,
}

impl From<&Invocation> for Invocation {
    fn from(invocation: &Invocation) -> Invocation {
        invocation.clone()
    }
}

/// Values from command-line flags that override configuration keys.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `watch --listen`: overrides `watch.listen`.
    pub listen: Option<SocketAddr>,
    /// `--source URL`: overrides `source.url`.
    pub source_url: Option<String>,
}

impl Settings {
    /// Merge the layers (reading the process environment) and validate them.
    pub fn load(
        global: impl Into<Invocation>,
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        Self::load_from_env(global, overrides, std::env::vars_os())
    }

    /// [`Settings::load`] for a command that never calls the API ([`ApiUse::Unused`]).
    pub fn load_offline(
        global: impl Into<Invocation>,
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        Self::load_for(global, overrides, std::env::vars_os(), ApiUse::Unused)
    }

    /// [`Settings::load`] with the environment given as name/value pairs, so that tests
    /// control exactly what is set. Only `PROMPTSYNC_*`, `RESPAN_BASE_URL` and
    /// `RESPAN_API_KEY` are read from it.
    pub fn load_from_env<I, K, V>(
        global: impl Into<Invocation>,
        overrides: &Overrides,
        env: I,
    ) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        Self::load_for(global, overrides, env, ApiUse::Needed)
    }

    /// [`Settings::load_from_env`] for a command that calls the API or not.
    pub fn load_for<I, K, V>(
        global: impl Into<Invocation>,
        overrides: &Overrides,
        env: I,
        api: ApiUse,
    ) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let global = global.into();
        let repo = global.repo.clone().unwrap_or_else(|| PathBuf::from("."));
        let file = file::read(&repo, global.config.as_deref())?;
        Self::load_with_file(&global, overrides, env, api, file)
    }

    /// Settings for a remote source (`[source] url`), once its branch tip is known: the
    /// configuration file is `--config` when given (the operator's, wherever it is),
    /// else the repository's own `promptsync.toml` as the tip holds it (`tree_file`: a
    /// label for messages and its text), which may not set operator-only keys.
    pub fn load_remote(
        global: impl Into<Invocation>,
        overrides: &Overrides,
        tree_file: Option<(PathBuf, String)>,
    ) -> Result<Settings, ConfigError> {
        Self::load_remote_from_env(global, overrides, std::env::vars_os(), tree_file)
    }

    /// [`Settings::load_remote`] with the environment given, for tests.
    pub fn load_remote_from_env<I, K, V>(
        global: impl Into<Invocation>,
        overrides: &Overrides,
        env: I,
        tree_file: Option<(PathBuf, String)>,
    ) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let global = global.into();
        let file = match &global.config {
            Some(path) => Some(file::read_operators(path)?),
            None => tree_file.map(|(path, text)| file::ConfigFile {
                path,
                text,
                repository: true,
            }),
        };
        Self::load_with_file(&global, overrides, env, ApiUse::Needed, file)
    }

    /// Whether the layers outside the repository (`--config`, the environment, flags)
    /// name a remote source: then the repository is fetched, and its own
    /// `promptsync.toml` is read from the fetched tree, not from `--repo`.
    pub fn wants_remote_source(global: impl Into<Invocation>, overrides: &Overrides) -> bool {
        let global = global.into();
        let env = layers::EnvVars::read(std::env::vars_os());
        let file = match &global.config {
            Some(path) => file::read_operators(path).ok(),
            None => None,
        };
        let figment = layers::merge(file.as_ref(), &env, &layers::flags(&global, overrides));
        figment.find_value("source.url").is_ok()
    }

    /// Merge `file` (and whether it is the repository's own) with the environment and
    /// the flags, and validate.
    fn load_with_file<I, K, V>(
        global: &Invocation,
        overrides: &Overrides,
        env: I,
        api: ApiUse,
        file: Option<file::ConfigFile>,
    ) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let repo = global.repo.clone().unwrap_or_else(|| PathBuf::from("."));
        let mut env = layers::EnvVars::read(env);
        let mut problems = std::mem::take(&mut env.problems);
        let file = file.filter(|file| {
            let syntax = file::syntax_problem(file);
            problems.extend(syntax.clone());
            syntax.is_none()
        });
        let figment = layers::merge(file.as_ref(), &env, &layers::flags(global, overrides));
        // Settings only the operator may make, found in the repository's own file. The
        // source is never the repository's to set, trusted or not: the file comes from
        // the tree the source fetched.
        let refused = match &file {
            Some(file) if file.repository && !global.trust_repo_config => {
                trust::refused(&figment, file)
            }
            _ => Vec::new(),
        };
        problems.extend(refused.iter().map(|(_, problem)| problem.clone()));
        if let Some(file) = file.as_ref().filter(|file| file.repository) {
            problems.extend(trust::set_by_repository(file));
        }
        let context = validate::Context {
            figment: &figment,
            repo,
            config_file: file.map(|file| file.path),
            env_api_key: env.api_key,
            api,
            refused: refused.into_iter().map(|(key, _)| key).collect(),
        };
        let validated = raw::extract(&figment).and_then(|(raw, unknown)| {
            problems.extend(unknown);
            validate::settings(raw, context)
        });
        if api == ApiUse::Unused {
            problems.retain(|problem| !layers::is_about_the_api(problem));
        }
        match validated {
            Ok(settings) if problems.is_empty() => Ok(settings),
            Ok(_) => Err(ConfigError::Invalid { problems }),
            Err(more) => {
                problems.extend(more);
                Err(ConfigError::Invalid { problems })
            }
        }
    }
}

impl Default for PromptSettings {
    /// The built-in `[prompts]` defaults (the same as `config/promptsync.example.toml`).
    fn default() -> Self {
        PromptSettings {
            include: vec!["**/*.prompt.yaml".to_owned(), "**/*.prompt.yml".to_owned()],
            exclude: Vec::new(),
        }
    }
}

impl LogSettings {
    /// Log settings from the command line alone, for commands that read no
    /// configuration (`emulator`).
    pub fn from_global(global: impl Into<Invocation>) -> LogSettings {
        let global = global.into();
        LogSettings::from_flags(global.log_format, global.verbose, global.quiet)
    }
}

#[cfg(test)]
mod tests;
