//! The merged configuration as a raw struct: every key present, every value still
//! untyped and tagged with its origin. Checks the shape (sections are tables) and names
//! unknown keys with a did-you-mean; turning values into types is
//! [`validate`](super::validate)'s job.

use figment::Figment;
use figment::value::magic::Tagged;
use figment::value::{Dict, Value};
use serde::{Deserialize, Serialize};

use super::error::Problem;
use super::layers::{self, Layer, Origin};

/// One configuration value as merged, or `None` when no layer sets it.
pub(super) type Field = Option<Tagged<Value>>;

/// The configuration keys, section by section. Adding a key here (and to
/// `config/promptsync.example.toml`) is all it takes for it to be known.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawConfig {
    pub(super) api: RawApi,
    pub(super) prompts: RawPrompts,
    pub(super) deploy: RawDeploy,
    pub(super) sync: RawSync,
    pub(super) log: RawLog,
    pub(super) watch: RawWatch,
    pub(super) notify: RawNotify,
    pub(super) source: RawSource,
    pub(super) webhook: RawWebhook,
    /// `[targets.NAME]`: checked key by key in [`validate`](super::validate) (the
    /// names are the user's).
    pub(super) targets: Field,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawApi {
    pub(super) base_url: Field,
    pub(super) api_key_file: Field,
    pub(super) timeout: Field,
    pub(super) connect_timeout: Field,
    pub(super) max_in_flight: Field,
    pub(super) requests_per_minute: Field,
    pub(super) retry_max_elapsed: Field,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawPrompts {
    pub(super) include: Field,
    pub(super) exclude: Field,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawDeploy {
    pub(super) enabled: Field,
    pub(super) tags: Field,
    pub(super) gate_command: Field,
    pub(super) gate: Field,
    pub(super) gate_timeout: Field,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawSync {
    pub(super) drift: Field,
    pub(super) suspend: Field,
    pub(super) report_unmanaged: Field,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawLog {
    pub(super) format: Field,
    pub(super) level: Field,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawWatch {
    pub(super) listen: Field,
    pub(super) resync_interval: Field,
    pub(super) debounce: Field,
    pub(super) poll: Field,
    pub(super) poll_interval: Field,
    pub(super) shutdown_timeout: Field,
    pub(super) reconcile_token_file: Field,
    pub(super) reconcile_min_interval: Field,
    pub(super) ready: Field,
}

/// `[notify]`: its tables (`github`, `gitlab`, `webhook`, `exec`) are checked key by
/// key in [`validate`](super::validate).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawNotify {
    pub(super) github: Field,
    pub(super) gitlab: Field,
    pub(super) webhook: Field,
    pub(super) exec: Field,
    pub(super) min_interval: Field,
    pub(super) timeout: Field,
    pub(super) retry_max_elapsed: Field,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawSource {
    pub(super) url: Field,
    pub(super) branch: Field,
    pub(super) interval: Field,
    pub(super) username: Field,
    pub(super) token_file: Field,
    pub(super) ssh_key_file: Field,
    pub(super) known_hosts_file: Field,
    pub(super) cache_dir: Field,
    pub(super) fetch_timeout: Field,
    pub(super) max_fetch_size: Field,
}

/// `[webhook]`: the secrets of the webhooks the daemon receives (`/hooks/*`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawWebhook {
    pub(super) github_secret_file: Field,
    pub(super) gitlab_secret_file: Field,
    pub(super) generic_secret_file: Field,
}

/// Every known key as a dotted path (`api.timeout`), taken from [`RawConfig`] itself.
pub(super) fn known_keys() -> Vec<String> {
    let mut keys = Vec::new();
    if let Ok(value) = Value::serialize(RawConfig::default())
        && let Some(dict) = value.as_dict()
    {
        for (section, fields) in dict {
            for field in fields.as_dict().into_iter().flat_map(|d| d.keys()) {
                keys.push(format!("{section}.{field}"));
            }
        }
    }
    keys
}

/// Stage one's result: the raw struct and the unknown keys, or the problems that stop
/// extraction (a file that is not TOML, a section that is not a table).
pub(super) fn extract(figment: &Figment) -> Result<(RawConfig, Vec<Problem>), Vec<Problem>> {
    let dict: Dict = figment
        .extract()
        .map_err(|err| figment_problems(figment, err))?;
    let known = known_keys();
    let mut unknown = Vec::new();
    let mut blocking = Vec::new();
    for (name, value) in &dict {
        if name == "targets" {
            continue;
        }
        let is_section = known.iter().any(|key| key.split('.').next() == Some(name));
        match value.as_dict() {
            Some(fields) if is_section => {
                for field in fields.keys() {
                    let key = format!("{name}.{field}");
                    if !known.contains(&key) {
                        unknown.push(unknown_key(figment, &key, &known));
                    }
                }
            }
            Some(_) => unknown_section(figment, name, value, &known, &mut unknown),
            None if is_section => {
                let origin = layers::origin_of_key(figment, name);
                let hint = match origin.layer {
                    Layer::Env => format!(
                        "set one key of it, like {}",
                        layers::env_from_key(&format!("{name}.{}", first_key_of(&known, name)))
                    ),
                    _ => format!("write its keys under a [{name}] table"),
                };
                blocking.push(Problem::new(
                    Some(name),
                    origin.label,
                    format!("is a section of keys, not a value; {hint}"),
                ));
            }
            None => unknown.push(unknown_key(figment, name, &known)),
        }
    }
    if !blocking.is_empty() {
        blocking.extend(unknown);
        return Err(blocking);
    }
    let raw = figment
        .extract::<RawConfig>()
        .map_err(|err| figment_problems(figment, err))?;
    Ok((raw, unknown))
}

/// Report each key of an unknown section, so that `[aip] timeout` suggests
/// `api.timeout`.
fn unknown_section(
    figment: &Figment,
    name: &str,
    value: &Value,
    known: &[String],
    out: &mut Vec<Problem>,
) {
    match value.as_dict() {
        Some(fields) if !fields.is_empty() => {
            for (field, value) in fields {
                unknown_section(figment, &format!("{name}.{field}"), value, known, out);
            }
        }
        _ => out.push(unknown_key(figment, name, known)),
    }
}

fn first_key_of<'a>(known: &'a [String], section: &str) -> &'a str {
    known
        .iter()
        .filter_map(|key| key.split_once('.'))
        .find(|(s, _)| *s == section)
        .map_or("", |(_, field)| field)
}

fn unknown_key(figment: &Figment, key: &str, known: &[String]) -> Problem {
    let origin = layers::origin_of_key(figment, key);
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let message = if matches!(leaf, "api_key" | "respan_api_key" | "key" | "token") {
        format!(
            "the API key is never read from the configuration; set the environment \
             variable {} or api.api_key_file (a file that holds the key)",
            layers::API_KEY_VAR
        )
    } else {
        let suggestion = did_you_mean(key, known)
            .map(|key| format!("did you mean {}? ", spell(key, &origin)))
            .unwrap_or_default();
        format!("unknown key; {suggestion}every key is listed in config/promptsync.example.toml")
    };
    Problem::new(Some(key), origin.label, message)
}

/// A key as the user would write it where the unknown one came from.
fn spell(key: &str, origin: &Origin) -> String {
    match origin.layer {
        Layer::Env => layers::env_from_key(key),
        _ => format!("`{key}`"),
    }
}

/// The known key that `unknown` most likely meant: the same field name in another
/// section (`timeout` for `api.timeout`), else the closest spelling.
pub(super) fn did_you_mean<'a>(unknown: &str, known: &'a [String]) -> Option<&'a str> {
    // No key is this long; comparing one that is costs time and memory for nothing.
    if unknown.len() > 100 {
        return None;
    }
    let leaf = unknown.rsplit('.').next().unwrap_or(unknown);
    if let Some(key) = known
        .iter()
        .find(|key| key.rsplit('.').next() == Some(leaf))
    {
        return Some(key);
    }
    known
        .iter()
        .map(|key| (strsim::normalized_damerau_levenshtein(unknown, key), key))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, key)| key.as_str())
}

/// figment's own errors (a file that is not TOML, a value of the wrong shape), one
/// problem each, with the origin figment knows.
fn figment_problems(figment: &Figment, err: figment::Error) -> Vec<Problem> {
    err.into_iter()
        .map(|err| {
            let key = (!err.path.is_empty()).then(|| err.path.join("."));
            let origin = match (&key, &err.metadata) {
                (Some(key), _) => layers::origin_of_key(figment, key).label,
                (None, Some(metadata)) => match &metadata.source {
                    Some(source) => source.to_string(),
                    None => metadata.name.to_string(),
                },
                (None, None) => "configuration".to_owned(),
            };
            Problem::new(key.as_deref(), origin, err.kind.to_string().trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_come_from_the_raw_struct() {
        let keys = known_keys();
        assert!(keys.contains(&"api.api_key_file".to_owned()));
        assert!(keys.contains(&"watch.debounce".to_owned()));
        assert_eq!(keys.len(), 48, "{keys:?}");
    }

    #[test]
    fn did_you_mean_finds_near_misses() {
        let known = known_keys();
        assert_eq!(did_you_mean("api.timout", &known), Some("api.timeout"));
        assert_eq!(did_you_mean("aip.timeout", &known), Some("api.timeout"));
        assert_eq!(did_you_mean("log.levle", &known), Some("log.level"));
        assert_eq!(
            did_you_mean("prompt.include", &known),
            Some("prompts.include")
        );
        assert_eq!(did_you_mean("listen", &known), Some("watch.listen"));
        assert_eq!(did_you_mean("api.base_uri", &known), Some("api.base_url"));
        assert_eq!(did_you_mean("colour", &known), None);
        assert_eq!(did_you_mean("api.x", &known), None);
    }
}
