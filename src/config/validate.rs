//! Stage two: the raw, merged configuration turned into typed [`Settings`] in one
//! step. Every key is checked even after a bad one, so that all problems are reported
//! together, each with its key and the origin of its value.

mod notify;
mod source;
pub(super) mod targets;

use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::value::Value;

use super::api_key::{self, KeyFile};
use super::error::{Problem, quoted};
use super::layers::{self, Layer, Origin};
use super::raw::{
    self, Field, RawApi, RawConfig, RawDeploy, RawLog, RawPrompts, RawSync, RawWatch, RawWebhook,
};
use super::{
    ApiSettings, ApiUse, DeploySettings, DriftPolicy, HookSettings, LogSettings, PromptSettings,
    ReadyPolicy, Settings, SyncSettings, WatchSettings, base_url,
};
use crate::logging::LogFormat;
use crate::secret::ApiKey;

/// What validation needs besides the raw values.
#[derive(Debug)]
pub(super) struct Context<'a> {
    pub(super) figment: &'a Figment,
    pub(super) repo: PathBuf,
    pub(super) config_file: Option<PathBuf>,
    /// `RESPAN_API_KEY`, when set.
    pub(super) env_api_key: Option<ApiKey>,
    pub(super) api: ApiUse,
    /// Keys whose value is refused already ([`trust`](super::trust)): never read, never
    /// used (a refused key file is not opened).
    pub(super) refused: Vec<String>,
}

/// Build [`Settings`], or return every problem found.
pub(super) fn settings(raw: RawConfig, context: Context<'_>) -> Result<Settings, Vec<Problem>> {
    let mut check = Checker {
        figment: context.figment,
        problems: Vec::new(),
        refused: &context.refused,
    };
    let api = match context.api {
        ApiUse::Needed => api(&mut check, raw.api, context.env_api_key),
        ApiUse::Unused => offline_api(&mut check),
    };
    let prompts = prompts(&mut check, raw.prompts);
    let deploy = deploy(&mut check, raw.deploy);
    let sync = sync(&mut check, raw.sync);
    let log = log(&mut check, raw.log);
    let watch = watch(&mut check, raw.watch);
    let notify = notify::settings(&mut check, raw.notify);
    let source = source::source(&mut check, raw.source);
    let webhook = webhook(&mut check, raw.webhook);
    let targets = match (&api, &deploy) {
        (Some(api), Some(deploy)) => targets::settings(
            &mut check,
            raw.targets,
            api,
            &deploy.tags,
            context.api == ApiUse::Needed,
        ),
        _ => None,
    };
    match (
        api, prompts, deploy, sync, log, watch, notify, source, webhook,
    ) {
        (
            Some(api),
            Some(prompts),
            Some(deploy),
            Some(sync),
            Some(log),
            Some(watch),
            Some(notify),
            Some(source),
            Some(webhook),
        ) if check.problems.is_empty() => Ok(Settings {
            repo: context.repo,
            config_file: context.config_file,
            api,
            prompts,
            deploy,
            sync,
            log,
            watch,
            notify,
            source,
            webhook,
            targets: targets.unwrap_or_default(),
            target: super::DEFAULT_TARGET.to_owned(),
        }),
        _ => Err(check.problems),
    }
}

fn api(check: &mut Checker<'_>, raw: RawApi, env_key: Option<ApiKey>) -> Option<ApiSettings> {
    let base_url = check.get("api.base_url", raw.base_url, |v, _| {
        base_url::parse(&text(v)?)
    });
    let timeout = check.get(
        "api.timeout",
        raw.timeout,
        duration_within(Duration::from_millis(1), MAX_API_TIMEOUT),
    );
    let connect_timeout = check.get(
        "api.connect_timeout",
        raw.connect_timeout,
        duration(Duration::from_millis(1)),
    );
    let max_in_flight = check.get("api.max_in_flight", raw.max_in_flight, count(1, 256));
    let requests_per_minute = check.optional(
        "api.requests_per_minute",
        raw.requests_per_minute,
        count(1, 1_000_000),
    );
    let retry_max_elapsed = check.get(
        "api.retry_max_elapsed",
        raw.retry_max_elapsed,
        duration(Duration::ZERO),
    );
    let key_file = check.optional("api.api_key_file", raw.api_key_file, path);
    let api_key_file = key_file
        .as_ref()
        .map(|file| file.as_ref().map(|(path, _)| path.clone()));
    let api_key = key_file.and_then(|file| {
        let file = file.as_ref().map(|(path, origin)| KeyFile {
            path,
            origin: &origin.label,
        });
        api_key::resolve(env_key, file)
            .map_err(|problem| check.problems.push(problem))
            .ok()
    });
    Some(ApiSettings {
        base_url: base_url?,
        api_key: api_key?,
        api_key_file: api_key_file?,
        timeout: timeout?,
        connect_timeout: connect_timeout?,
        max_in_flight: max_in_flight?,
        requests_per_minute: requests_per_minute?,
        retry_max_elapsed: retry_max_elapsed?,
    })
}

/// The API settings of a command that never calls the API: the built-in defaults, no
/// key; nothing the user set is read (a key file least of all).
fn offline_api(check: &mut Checker<'_>) -> Option<ApiSettings> {
    let defaults = layers::defaults();
    let raw = raw::extract(&defaults).ok().map(|(raw, _)| raw.api);
    let mut own = Checker {
        figment: &defaults,
        problems: Vec::new(),
        refused: &[],
    };
    let settings = raw.and_then(|raw| api(&mut own, raw, None));
    if settings.is_none() {
        check.problems.push(Problem::new(
            Some("api"),
            "built-in default",
            "the built-in API defaults do not validate (a bug)",
        ));
    }
    settings
}

fn prompts(check: &mut Checker<'_>, raw: RawPrompts) -> Option<PromptSettings> {
    let include = check.get("prompts.include", raw.include, globs(true));
    let exclude = check.get("prompts.exclude", raw.exclude, globs(false));
    Some(PromptSettings {
        include: include?,
        exclude: exclude?,
    })
}

fn deploy(check: &mut Checker<'_>, raw: RawDeploy) -> Option<DeploySettings> {
    let enabled = check.get("deploy.enabled", raw.enabled, boolean);
    let tags = check.get("deploy.tags", raw.tags, globs(true));
    let gate = notify::gate(check, raw.gate_command, raw.gate, raw.gate_timeout);
    Some(DeploySettings {
        enabled: enabled?,
        tags: tags?,
        gate: gate?,
        live: super::Live::Tags,
    })
}

fn sync(check: &mut Checker<'_>, raw: RawSync) -> Option<SyncSettings> {
    let drift = check.get("sync.drift", raw.drift, |v, _| {
        choice(
            v,
            &[
                ("correct", DriftPolicy::Correct),
                ("report", DriftPolicy::Report),
            ],
        )
    });
    let suspend = check.get("sync.suspend", raw.suspend, boolean);
    let report_unmanaged = check.get("sync.report_unmanaged", raw.report_unmanaged, boolean);
    Some(SyncSettings {
        drift: drift?,
        suspend: suspend?,
        report_unmanaged: report_unmanaged?,
    })
}

fn log(check: &mut Checker<'_>, raw: RawLog) -> Option<LogSettings> {
    let format = check.get("log.format", raw.format, |v, origin| {
        let format = choice(
            v,
            &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)],
        )?;
        Ok((format, origin.layer == Layer::Default))
    });
    let filter = check.get("log.level", raw.level, |v, _| {
        let filter = text(v)?;
        crate::logging::check_filter(&filter).map(|()| filter)
    });
    let (format, format_is_default) = format?;
    Some(LogSettings {
        format,
        format_is_default,
        filter: filter?,
    })
}

fn watch(check: &mut Checker<'_>, raw: RawWatch) -> Option<WatchSettings> {
    let listen = check.get("watch.listen", raw.listen, |v, _| {
        let addr = text(v)?;
        super::parse_listen(&addr)
    });
    let resync_interval = check.get(
        "watch.resync_interval",
        raw.resync_interval,
        duration(Duration::from_secs(1)),
    );
    let debounce = check.get("watch.debounce", raw.debounce, duration(Duration::ZERO));
    let poll = check.get("watch.poll", raw.poll, boolean);
    let poll_interval = check.get(
        "watch.poll_interval",
        raw.poll_interval,
        duration(Duration::from_millis(100)),
    );
    let shutdown_timeout = check.get(
        "watch.shutdown_timeout",
        raw.shutdown_timeout,
        duration(Duration::ZERO),
    );
    let reconcile_token_file = check
        .optional("watch.reconcile_token_file", raw.reconcile_token_file, path)
        .map(|file| file.map(|(path, _)| path));
    let reconcile_min_interval = check.get(
        "watch.reconcile_min_interval",
        raw.reconcile_min_interval,
        duration(Duration::ZERO),
    );
    let ready = check.get("watch.ready", raw.ready, |v, _| {
        choice(v, &[("all", ReadyPolicy::All), ("any", ReadyPolicy::Any)])
    });
    Some(WatchSettings {
        listen: listen?,
        resync_interval: resync_interval?,
        debounce: debounce?,
        poll: poll?,
        poll_interval: poll_interval?,
        shutdown_timeout: shutdown_timeout?,
        reconcile_token_file: reconcile_token_file?,
        reconcile_min_interval: reconcile_min_interval?,
        ready: ready?,
    })
}

/// `[webhook]`: which file holds each provider's secret (read at each request).
fn webhook(check: &mut Checker<'_>, raw: RawWebhook) -> Option<HookSettings> {
    let mut file = |key: &str, field| {
        check
            .optional(key, field, path)
            .map(|file| file.map(|(path, _)| path))
    };
    let github = file("webhook.github_secret_file", raw.github_secret_file);
    let gitlab = file("webhook.gitlab_secret_file", raw.gitlab_secret_file);
    let generic = file("webhook.generic_secret_file", raw.generic_secret_file);
    Some(HookSettings {
        github_secret_file: github?,
        gitlab_secret_file: gitlab?,
        generic_secret_file: generic?,
    })
}

/// Converts values and collects the problems.
pub(super) struct Checker<'a> {
    figment: &'a Figment,
    pub(super) problems: Vec<Problem>,
    /// Keys refused before validation (their problem is reported already).
    refused: &'a [String],
}

impl Checker<'_> {
    /// A key that always has a value (the built-in defaults set it).
    pub(super) fn get<T>(
        &mut self,
        key: &str,
        field: Field,
        convert: impl FnOnce(&Value, &Origin) -> Result<T, String>,
    ) -> Option<T> {
        match self.optional(key, field, convert) {
            Some(Some(value)) => Some(value),
            Some(None) => {
                self.problems.push(Problem::new(
                    Some(key),
                    "built-in default",
                    "has no value (a bug: the built-in defaults should set it)",
                ));
                None
            }
            None => None,
        }
    }

    /// A key that may be unset: `Some(None)` when unset, `None` when invalid.
    pub(super) fn optional<T>(
        &mut self,
        key: &str,
        field: Field,
        convert: impl FnOnce(&Value, &Origin) -> Result<T, String>,
    ) -> Option<Option<T>> {
        let Some(tagged) = field else {
            return Some(None);
        };
        if self.refused.iter().any(|refused| refused == key) {
            return None;
        }
        let origin = layers::origin(self.figment, tagged.tag(), key);
        match convert(&tagged, &origin) {
            Ok(value) => Some(Some(value)),
            Err(message) => {
                self.problems
                    .push(Problem::new(Some(key), origin.label, message));
                None
            }
        }
    }
}

/// A string; a number or boolean is taken as its text, since an environment variable
/// cannot say which it meant (`PROMPTSYNC_LOG__LEVEL=5`).
pub(super) fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(_, text) => Ok(text.clone()),
        Value::Char(_, c) => Ok(c.to_string()),
        Value::Bool(_, b) => Ok(b.to_string()),
        Value::Num(_, num) => num
            .to_u128()
            .map(|n| n.to_string())
            .or_else(|| num.to_i128().map(|n| n.to_string()))
            .or_else(|| num.to_f64().map(|n| n.to_string()))
            .ok_or_else(|| "expected text, found a number".to_owned()),
        other => Err(format!("expected text, found {}", other.to_actual())),
    }
}

/// A human duration (`"30s"`, `"5m"`, `"1h 30m"`) of at least `min`.
pub(super) fn duration(min: Duration) -> impl FnOnce(&Value, &Origin) -> Result<Duration, String> {
    move |value, _| {
        let text = text(value)?;
        let duration = humantime::parse_duration(&text).map_err(|err| {
            format!(
                "{} is not a duration ({err}); write it like \"500ms\", \"30s\" or \"5m\"",
                quoted(&text)
            )
        })?;
        if duration < min {
            return Err(format!(
                "{} is too short; the least is {}",
                quoted(&text),
                humantime::format_duration(min)
            ));
        }
        Ok(duration)
    }
}

/// The longest `api.timeout`: one attempt of one request never waits longer.
const MAX_API_TIMEOUT: Duration = Duration::from_secs(300);

/// A duration in `min..=max`.
fn duration_within(
    min: Duration,
    max: Duration,
) -> impl FnOnce(&Value, &Origin) -> Result<Duration, String> {
    move |value, origin| {
        let duration = duration(min)(value, origin)?;
        if duration > max {
            return Err(format!(
                "{:?} is too long; the most is {}",
                text(value)?,
                humantime::format_duration(max)
            ));
        }
        Ok(duration)
    }
}

/// A whole number in `min..=max`.
fn count(min: usize, max: usize) -> impl FnOnce(&Value, &Origin) -> Result<usize, String> {
    move |value, _| {
        // `8` and `8.0` are the same number (as in prompt files); `8.5` is not whole.
        let number = match value {
            Value::Num(_, num) => num.to_u128_lossy().or_else(|| {
                num.to_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                    .map(|f| f as u128)
            }),
            _ => None,
        };
        let number = number
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (min..=max).contains(n));
        number.ok_or_else(|| {
            format!(
                "expected a whole number from {min} to {max}, found {}",
                shown(value)
            )
        })
    }
}

fn boolean(value: &Value, _: &Origin) -> Result<bool, String> {
    value
        .to_bool()
        .ok_or_else(|| format!("expected true or false, found {}", shown(value)))
}

/// One of a few words.
fn choice<T: Copy>(value: &Value, choices: &[(&str, T)]) -> Result<T, String> {
    let text = text(value)?;
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            let names: Vec<String> = choices
                .iter()
                .map(|(name, _)| format!("{name:?}"))
                .collect();
            format!("{} is not one of {}", quoted(&text), names.join(", "))
        })
}

/// A list of globs (a single string counts as a list of one), each one valid, and not
/// empty when `required`.
fn globs(required: bool) -> impl FnOnce(&Value, &Origin) -> Result<Vec<String>, String> {
    move |value, _| {
        let items = match value {
            Value::Array(_, items) => items.iter().map(text).collect::<Result<Vec<_>, _>>()?,
            single => vec![text(single)?],
        };
        if required && items.is_empty() {
            return Err("is empty; list at least one glob".to_owned());
        }
        for glob in &items {
            globset::Glob::new(glob)
                .map_err(|err| format!("{} is not a valid glob: {}", quoted(glob), err.kind()))?;
        }
        Ok(items)
    }
}

/// A file path; a relative one is taken from the directory of the configuration file
/// that sets it, or from the current directory.
pub(super) fn path(value: &Value, origin: &Origin) -> Result<(PathBuf, Origin), String> {
    let text = text(value)?;
    let path = PathBuf::from(&text);
    let path = match &origin.layer {
        Layer::File(file) if path.is_relative() => file
            .parent()
            .map_or_else(|| path.clone(), |dir| dir.join(&path)),
        _ => path,
    };
    Ok((path, origin.clone()))
}

/// A value as the user wrote it, for messages.
fn shown(value: &Value) -> String {
    match value {
        Value::String(_, text) => quoted(text),
        Value::Dict(..) | Value::Array(..) | Value::Empty(..) => value.to_actual().to_string(),
        other => text(other).unwrap_or_else(|_| other.to_actual().to_string()),
    }
}
