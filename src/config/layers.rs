//! Stage one: the configuration layers as figment providers, merged in order (built-in
//! defaults < file < `RESPAN_BASE_URL` < `PROMPTSYNC_*` < flags), every value tagged so
//! that [`origin`] can say where it came from. Knows the environment variable names and
//! what the flags set ([`Invocation`], [`Overrides`]); does no validation.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::ValueEnum;
use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::error::Problem;
use super::file::ConfigFile;
use super::{Invocation, Overrides};
use crate::logging::verbosity_level;
use crate::secret::ApiKey;

/// Prefix of the environment variables that set configuration keys.
pub(super) const ENV_PREFIX: &str = "PROMPTSYNC_";
/// Separator of the key path in those variables: `PROMPTSYNC_API__TIMEOUT`.
pub(super) const ENV_SEPARATOR: &str = "__";
pub(super) const BASE_URL_VAR: &str = "RESPAN_BASE_URL";
pub(super) const API_KEY_VAR: &str = "RESPAN_API_KEY";

/// `--repo`'s variable ([`Invocation::repo`]).
pub const REPO_VAR: &str = "PROMPTSYNC_REPO";
/// `--config`'s variable ([`Invocation::config`]).
pub const CONFIG_VAR: &str = "PROMPTSYNC_CONFIG";
/// `--trust-repo-config`'s variable ([`Invocation::trust_repo_config`]).
pub const TRUST_REPO_CONFIG_VAR: &str = "PROMPTSYNC_TRUST_REPO_CONFIG";
/// The `PROMPTSYNC_*` variables that the command line reads for its flags: they fill
/// an [`Invocation`] and are no configuration keys. A unit test of the command line
/// keeps this list equal to the variables its flags read.
pub const COMMAND_LINE_VARS: [&str; 3] = [REPO_VAR, CONFIG_VAR, TRUST_REPO_CONFIG_VAR];

/// The built-in defaults: the annotated example, so that it always lists every key.
pub(super) const DEFAULTS_TOML: &str = include_str!("../../config/promptsync.example.toml");

const DEFAULT_LAYER: &str = "built-in default";
const FILE_LAYER: &str = "configuration file";
const ENV_LAYER: &str = "environment";
const FLAG_LAYER: &str = "command line";

/// The environment variables that configuration reads, picked out of the process
/// environment. `PROMPTSYNC_*` variables that the command line reads
/// ([`COMMAND_LINE_VARS`]) are its own and are left out. An empty variable counts as
/// unset.
#[derive(Debug, Default)]
pub(super) struct EnvVars {
    /// `PROMPTSYNC_*` variables, sorted by name.
    settings: Vec<(String, String)>,
    base_url: Option<String>,
    pub(super) api_key: Option<ApiKey>,
    /// Variables that could not be read (not UTF-8).
    pub(super) problems: Vec<Problem>,
}

impl EnvVars {
    pub(super) fn read<I, K, V>(vars: I) -> EnvVars
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut env = EnvVars::default();
        for (name, value) in vars {
            // A name that is not UTF-8 cannot be one of ours.
            let Some(name) = name.as_ref().to_str() else {
                continue;
            };
            let ours = name == BASE_URL_VAR
                || name == API_KEY_VAR
                || (name.starts_with(ENV_PREFIX) && !COMMAND_LINE_VARS.contains(&name));
            if !ours {
                continue;
            }
            let Some(value) = value.as_ref().to_str() else {
                env.problems.push(Problem::new(
                    None,
                    format!("environment variable {name}"),
                    "is not valid UTF-8; set it to UTF-8 text or unset it",
                ));
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name {
                API_KEY_VAR => env.api_key = Some(ApiKey::new(value)),
                BASE_URL_VAR => env.base_url = Some(value.to_owned()),
                _ => env.settings.push((name.to_owned(), value.to_owned())),
            }
        }
        env.settings.sort();
        env
    }

    /// `RESPAN_BASE_URL`, a plain string for `api.base_url`.
    fn base_url_layer(&self) -> Labelled {
        let mut layer = Labelled::new(ENV_LAYER);
        if let Some(url) = &self.base_url {
            layer.push(
                "api.base_url",
                format!("environment variable {BASE_URL_VAR}"),
                Value::from(url.clone()),
            );
        }
        layer
    }

    /// `PROMPTSYNC_*` variables, each value parsed the way figment's `Env` provider
    /// parses one: `true`, `8`, `[v*, release-*]`, or else a string.
    fn settings_layer(&self) -> Labelled {
        let mut layer = Labelled::new(ENV_LAYER);
        for (name, value) in &self.settings {
            let Ok(parsed) = value.parse::<Value>();
            layer.push(
                &key_from_env(name),
                format!("environment variable {name}"),
                parsed,
            );
        }
        layer
    }
}

/// Whether only the API needs what `problem` is about: a key under `api.`, or the
/// `RESPAN_*` variables.
pub(super) fn is_about_the_api(problem: &Problem) -> bool {
    let under_api = |key: &str| key == "api" || key.starts_with("api.");
    problem.key.as_deref().is_some_and(under_api)
        || problem.origin.contains(API_KEY_VAR)
        || problem.origin.contains(BASE_URL_VAR)
}

/// `PROMPTSYNC_API__TIMEOUT` -> `api.timeout`.
pub(super) fn key_from_env(name: &str) -> String {
    let rest = name.strip_prefix(ENV_PREFIX).unwrap_or(name);
    rest.split(ENV_SEPARATOR)
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

/// `api.timeout` -> `PROMPTSYNC_API__TIMEOUT`.
pub(super) fn env_from_key(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', ENV_SEPARATOR).to_ascii_uppercase()
    )
}

/// The flags that override configuration keys.
pub(super) fn flags(global: impl Into<Invocation>, overrides: &Overrides) -> Labelled {
    let global = global.into();
    let mut layer = Labelled::new(FLAG_LAYER);
    if let Some(value) = global.log_format.and_then(|f| f.to_possible_value()) {
        layer.push(
            "log.format",
            "--log-format".to_owned(),
            Value::from(value.get_name().to_owned()),
        );
    }
    if let Some(level) = verbosity_level(global.verbose, global.quiet) {
        let flag = if global.verbose > 0 {
            format!("-{}", "v".repeat(usize::from(global.verbose)))
        } else {
            format!("-{}", "q".repeat(usize::from(global.quiet)))
        };
        layer.push("log.level", flag, Value::from(level.to_owned()));
    }
    if let Some(listen) = overrides.listen {
        layer.push(
            "watch.listen",
            "--listen".to_owned(),
            Value::from(listen.to_string()),
        );
    }
    if let Some(url) = &overrides.source_url {
        layer.push(
            "source.url",
            "--source".to_owned(),
            Value::from(url.clone()),
        );
    }
    layer
}

/// The built-in defaults alone.
pub(super) fn defaults() -> Figment {
    merge(None, &EnvVars::default(), &Labelled::new(FLAG_LAYER))
}

/// Merge the layers, later wins.
pub(super) fn merge(file: Option<&ConfigFile>, env: &EnvVars, flags: &Labelled) -> Figment {
    let defaults = Renamed {
        inner: Toml::string(DEFAULTS_TOML),
        metadata: Metadata::named(DEFAULT_LAYER)
            .interpolater(|_: &Profile, _: &[&str]| DEFAULT_LAYER.to_owned()),
    };
    let mut figment = Figment::from(defaults);
    if let Some(file) = file {
        figment = figment.merge(Renamed {
            inner: Toml::string(&file.text),
            metadata: Metadata::from(FILE_LAYER, file.path.as_path()),
        });
    }
    figment
        .merge(env.base_url_layer())
        .merge(env.settings_layer())
        .merge(flags.clone())
}

/// Which layer a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Layer {
    Default,
    File(PathBuf),
    Env,
    Flag,
    Unknown,
}

/// Where a value came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    pub(super) layer: Layer,
    /// `promptsync.toml`, `environment variable PROMPTSYNC_API__TIMEOUT`, `--listen`...
    pub(super) label: String,
}

/// The origin of the value tagged `tag`, found at `key`.
pub(super) fn origin(figment: &Figment, tag: Tag, key: &str) -> Origin {
    describe(figment.get_metadata(tag), key)
}

/// The origin of the value at `key`.
pub(super) fn origin_of_key(figment: &Figment, key: &str) -> Origin {
    describe(figment.find_metadata(key), key)
}

fn describe(metadata: Option<&Metadata>, key: &str) -> Origin {
    let Some(metadata) = metadata else {
        return Origin {
            layer: Layer::Unknown,
            label: "an unknown source".to_owned(),
        };
    };
    if let Some(Source::File(path)) = &metadata.source {
        return Origin {
            layer: Layer::File(path.clone()),
            label: path.display().to_string(),
        };
    }
    let layer = match metadata.name.as_ref() {
        DEFAULT_LAYER => Layer::Default,
        ENV_LAYER => Layer::Env,
        FLAG_LAYER => Layer::Flag,
        _ => Layer::Unknown,
    };
    let keys: Vec<&str> = key.split('.').collect();
    Origin {
        layer,
        label: metadata.interpolate(&Profile::Default, &keys),
    }
}

/// A provider whose values each carry their own origin label (an environment
/// variable's name, a flag).
#[derive(Debug, Clone)]
pub(super) struct Labelled {
    name: &'static str,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    label: String,
    value: Value,
}

impl Labelled {
    fn new(name: &'static str) -> Self {
        Labelled {
            name,
            entries: Vec::new(),
        }
    }

    fn push(&mut self, key: &str, label: String, value: Value) {
        self.entries.push(Entry {
            key: key.to_owned(),
            label,
            value,
        });
    }
}

impl Provider for Labelled {
    fn metadata(&self) -> Metadata {
        let labels: Arc<BTreeMap<String, String>> = Arc::new(
            self.entries
                .iter()
                .map(|entry| (entry.key.clone(), entry.label.clone()))
                .collect(),
        );
        Metadata::named(self.name).interpolater(move |_: &Profile, keys: &[&str]| {
            let key = keys.join(".");
            labels.get(&key).cloned().unwrap_or(key)
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for entry in &self.entries {
            insert(&mut dict, &entry.key, entry.value.clone());
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Put `value` at the dotted `key`, creating the tables on the way.
fn insert(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let child = dict
                .entry(head.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(child, Value::Dict(..)) {
                *child = Value::from(Dict::new());
            }
            if let Value::Dict(_, child) = child {
                insert(child, rest, value);
            }
        }
    }
}

/// A provider with its metadata replaced, so that origins read well.
struct Renamed<P> {
    inner: P,
    metadata: Metadata,
}

impl<P: Provider> Provider for Renamed<P> {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;

    fn env(vars: &[(&str, &str)]) -> EnvVars {
        EnvVars::read(vars.iter().copied())
    }

    #[test]
    fn env_names_map_to_keys_and_back() {
        assert_eq!(key_from_env("PROMPTSYNC_API__TIMEOUT"), "api.timeout");
        assert_eq!(
            key_from_env("PROMPTSYNC_API__API_KEY_FILE"),
            "api.api_key_file"
        );
        assert_eq!(
            env_from_key("watch.resync_interval"),
            "PROMPTSYNC_WATCH__RESYNC_INTERVAL"
        );
    }

    #[test]
    fn only_our_variables_are_read_and_clap_keeps_its_own() {
        let env = env(&[
            ("PATH", "/usr/bin"),
            ("PROMPTSYNC_REPO", "/repo"),
            ("PROMPTSYNC_CONFIG", "/x.toml"),
            ("PROMPTSYNC_LOG__LEVEL", "debug"),
            ("PROMPTSYNC_EMPTY", "  "),
            ("RESPAN_BASE_URL", "http://127.0.0.1:1"),
        ]);
        assert_eq!(
            env.settings,
            vec![("PROMPTSYNC_LOG__LEVEL".to_owned(), "debug".to_owned())]
        );
        assert_eq!(env.base_url.as_deref(), Some("http://127.0.0.1:1"));
        assert!(env.api_key.is_none());
    }

    #[test]
    fn env_values_parse_like_figment_env() {
        let env = env(&[
            ("PROMPTSYNC_DEPLOY__TAGS", "[v*, release-*]"),
            ("PROMPTSYNC_SYNC__SUSPEND", "true"),
            ("PROMPTSYNC_API__MAX_IN_FLIGHT", "4"),
            ("PROMPTSYNC_WATCH__LISTEN", "127.0.0.1:9000"),
        ]);
        let figment = Figment::from(env.settings_layer());
        let tags: Vec<String> = figment.extract_inner("deploy.tags").unwrap();
        assert_eq!(tags, ["v*", "release-*"]);
        assert!(figment.extract_inner::<bool>("sync.suspend").unwrap());
        assert_eq!(
            figment.extract_inner::<u32>("api.max_in_flight").unwrap(),
            4
        );
        let listen: String = figment.extract_inner("watch.listen").unwrap();
        assert_eq!(listen, "127.0.0.1:9000");
    }

    #[test]
    fn origins_name_the_variable_the_flag_or_the_file() {
        let env = env(&[("PROMPTSYNC_API__TIMEOUT", "1m")]);
        let file = ConfigFile {
            path: PathBuf::from("repo/promptsync.toml"),
            text: "[sync]\nsuspend = true\n".to_owned(),
            repository: true,
        };
        let global =
            Cli::try_parse_checked(["promptsync", "--log-format", "json", "-q", "validate"])
                .unwrap()
                .global;
        let figment = merge(Some(&file), &env, &flags(&global, &Overrides::default()));
        let label = |key| origin_of_key(&figment, key).label;
        assert_eq!(
            label("api.timeout"),
            "environment variable PROMPTSYNC_API__TIMEOUT"
        );
        assert_eq!(label("sync.suspend"), "repo/promptsync.toml");
        assert_eq!(label("log.format"), "--log-format");
        assert_eq!(label("log.level"), "-q");
        assert_eq!(label("deploy.tags"), "built-in default");
        assert_eq!(
            origin_of_key(&figment, "sync.suspend").layer,
            Layer::File(PathBuf::from("repo/promptsync.toml"))
        );
    }
}
