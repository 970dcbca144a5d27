//! Layered settings: built-in defaults < `promptsync.toml` (or `--config`) <
//! `PROMPTSYNC_*` environment (nested keys with `__`) < command-line flags, merged with
//! figment into a raw struct, then validated in one step into typed [`Settings`] that
//! report every problem with where the value came from. Knows nothing about git or the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::cli::{GlobalArgs, LogFormat};
use crate::secret::ApiKey;

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
}

#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Host root of the API (`https://api.respan.ai`); a trailing `/api` is stripped.
    pub base_url: url::Url,
    /// `RESPAN_API_KEY`, or the contents of `api_key_file`. Absent is only an error for
    /// commands that talk to the API.
    pub api_key: Option<ApiKey>,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Requests in flight at once (default 8).
    pub max_in_flight: usize,
    /// Total time a request may spend retrying transient failures.
    pub retry_max_elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct PromptSettings {
    /// Globs of prompt files, relative to the repository root.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DeploySettings {
    /// Deploy on release tags at all.
    pub enabled: bool,
    /// Tag-name globs that mark a release (default `v*`).
    pub tags: Vec<String>,
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
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An EnvFilter directive (`info`, `promptsync=debug`); RUST_LOG wins when set.
    pub filter: String,
}

#[derive(Debug, Clone)]
pub struct WatchSettings {
    pub listen: SocketAddr,
    pub resync_interval: Duration,
    pub debounce: Duration,
}

/// Values from command-line flags that override configuration keys.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
}

/// Every problem found in the merged configuration.
#[derive(Debug, Error)]
#[error("invalid configuration")]
pub struct ConfigError {}

impl Settings {
    /// Merge the layers and validate them.
    ///
    /// Skeleton: built-in defaults only, until the configuration layers land.
    pub fn load(global: &GlobalArgs, _overrides: &Overrides) -> Result<Settings, ConfigError> {
        #[allow(clippy::unwrap_used)]
        Ok(Settings {
            repo: global.repo.clone().unwrap_or_else(|| PathBuf::from(".")),
            config_file: None,
            api: ApiSettings {
                base_url: url::Url::parse("https://api.respan.ai").unwrap(),
                api_key: std::env::var("RESPAN_API_KEY").ok().map(ApiKey::new),
                timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(10),
                max_in_flight: 8,
                retry_max_elapsed: Duration::from_secs(60),
            },
            prompts: PromptSettings::default(),
            deploy: DeploySettings {
                enabled: true,
                tags: vec!["v*".to_owned()],
            },
            sync: SyncSettings {
                drift: DriftPolicy::Correct,
                suspend: false,
            },
            log: LogSettings::from_global(global),
            watch: WatchSettings {
                listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
                resync_interval: Duration::from_secs(300),
                debounce: Duration::from_millis(500),
            },
        })
    }
}

impl Default for PromptSettings {
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
    pub fn from_global(global: &GlobalArgs) -> LogSettings {
        let level = match (global.verbose, global.quiet) {
            (0, 0) => "info",
            (1, _) => "debug",
            (v, _) if v >= 2 => "trace",
            (_, 1) => "warn",
            _ => "error",
        };
        LogSettings {
            format: global.log_format.unwrap_or_default(),
            filter: level.to_owned(),
        }
    }
}
