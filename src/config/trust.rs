//! Which settings only the operator may make: those that decide where a secret goes
//! or which file is a secret. The repository's own configuration file can be edited
//! by anyone who opens a pull request, and CI runs `plan` on pull requests with the
//! key at hand; so a value of [`OPERATOR_ONLY`] that comes from that file is refused
//! (with the way to set it instead, or to trust the file) unless the operator passed
//! `--trust-repo-config` / `PROMPTSYNC_TRUST_REPO_CONFIG=true`. The environment, the
//! flags and a `--config` file outside the repository are the operator's.
//!
//! One table, checked in one place against each value's origin: a later setting of
//! this kind is one line here. The `[source]` section is more than operator-only: the
//! repository's file may set none of it, trusted or not ([`set_by_repository`]). Knows
//! the setting names and the layers; nothing else.

use std::collections::BTreeSet;

use figment::Figment;
use figment::Provider;
use figment::providers::Format;
use figment::value::Value;

use super::error::Problem;
use super::file::ConfigFile;
use super::layers::{self, Layer};

/// A setting (or, with `*` in a part, settings) that only the operator may make.
#[derive(Debug)]
pub(super) struct OperatorOnly {
    /// The dotted key; `*` in a part matches any run of characters within that part
    /// (`webhook.*_secret_file`, `notify.*.url`).
    key: &'static str,
    /// What it decides, for the message: `where the API key is sent`.
    decides: &'static str,
}

/// Every setting that only the operator may make. Add one line per new setting that
/// says where a secret goes or which file (or command) holds one: source credentials
/// (`source.token_file`, `source.ssh_key_file`, `source.known_hosts_file`), webhook
/// secrets, notification URLs and tokens, `watch.reconcile_token_file`,
/// `deploy.gate_command`, `notify.exec`.
pub(super) const OPERATOR_ONLY: &[OperatorOnly] = &[
    OperatorOnly {
        key: "api.base_url",
        decides: "where the API key is sent",
    },
    OperatorOnly {
        key: "api.api_key_file",
        decides: "which file is read and sent as the API key",
    },
    OperatorOnly {
        key: "targets.*.base_url",
        decides: "where a target's API key is sent",
    },
    OperatorOnly {
        key: "targets.*.api_key_file",
        decides: "which file is read and sent as a target's API key",
    },
    OperatorOnly {
        key: "targets.*.api_key_env",
        decides: "which environment variable is read and sent as a target's API key",
    },
    OperatorOnly {
        key: "watch.reconcile_token_file",
        decides: "which file holds the token that lets other hosts force a pass",
    },
    OperatorOnly {
        key: "notify.github",
        decides: "where commit statuses and comments are posted, with which token",
    },
    OperatorOnly {
        key: "notify.gitlab",
        decides: "where commit statuses and notes are posted, with which token",
    },
    OperatorOnly {
        key: "notify.webhook",
        decides: "where notifications are sent, signed with which secret",
    },
    OperatorOnly {
        key: "notify.exec",
        decides: "which program runs after a pass",
    },
    OperatorOnly {
        key: "webhook.*_secret_file",
        decides: "which file holds the secret that lets a webhook ask for a fetch",
    },
    OperatorOnly {
        key: "deploy.gate*",
        decides: "which program may hold a release, and whether it does",
    },
];

/// The operator-only settings whose value in effect comes from the repository's own
/// file `file`: each key with its problem. Call it only for a file that is the
/// repository's and not trusted.
pub(super) fn refused(figment: &Figment, file: &ConfigFile) -> Vec<(String, Problem)> {
    let Ok(table) = toml::from_str::<toml::Table>(&file.text) else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    leaf_keys(&table, "", &mut keys);
    let mut seen = BTreeSet::new();
    let mut refused = Vec::new();
    for key in keys {
        for rule in OPERATOR_ONLY {
            let Some(named) = named_by(rule.key, &key) else {
                continue;
            };
            if !seen.insert(named.clone()) {
                continue;
            }
            let origin = layers::origin_of_key(figment, &named);
            if origin.layer != Layer::File(file.path.clone()) {
                // Another layer (the operator's) sets the value in effect.
                continue;
            }
            let message = format!(
                "decides {}, so the repository's own configuration file may not set it: a \
                 pull request could change it. Set it in the environment ({}) or in a \
                 --config file outside the repository, or let the repository decide with \
                 --trust-repo-config (PROMPTSYNC_TRUST_REPO_CONFIG=true)",
                rule.decides,
                layers::env_from_key(&named)
            );
            refused.push((
                named.clone(),
                Problem::new(Some(&named), origin.label, message),
            ));
        }
    }
    refused
}

/// The `[source]` keys the repository's own file sets (whatever later layers say):
/// each one a problem, since the repository decides nothing about where it is fetched
/// from or with which credentials.
pub(super) fn set_by_repository(file: &ConfigFile) -> Vec<Problem> {
    let Ok(data) = figment::providers::Toml::string(&file.text).data() else {
        return Vec::new();
    };
    let keys = data
        .values()
        .filter_map(|dict| dict.get("source"))
        .filter_map(Value::as_dict)
        .flat_map(|table| table.keys().cloned().collect::<Vec<_>>());
    keys.map(|key| {
        Problem::new(
            Some(&format!("source.{key}")),
            file.path.display().to_string(),
            "is operator-trusted and cannot be set by the repository's own promptsync.toml; set it in the environment (PROMPTSYNC_SOURCE__*), with --source, or in a --config file outside the repository",
        )
    })
    .collect()
}

/// Every leaf key of `table`, dotted, under `prefix`.
fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) if !inner.is_empty() => leaf_keys(inner, &key, out),
            _ => out.push(key),
        }
    }
}

/// The part of `key` that `pattern` names (`api.base_url` for `api.base_url` and for
/// `api.base_url.x`), or `None`.
fn named_by(pattern: &str, key: &str) -> Option<String> {
    let wanted: Vec<&str> = pattern.split('.').collect();
    let parts: Vec<&str> = key.split('.').collect();
    if parts.len() < wanted.len() {
        return None;
    }
    let named = &parts[..wanted.len()];
    wanted
        .iter()
        .zip(named)
        .all(|(want, part)| glob(want, part))
        .then(|| named.join("."))
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(text) = text.strip_prefix(head) else {
                return false;
            };
            (0..=text.len())
                .filter(|&at| text.is_char_boundary(at))
                .any(|at| glob(rest, &text[at..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_by_exact_keys_and_wildcards() {
        assert_eq!(
            named_by("api.base_url", "api.base_url").as_deref(),
            Some("api.base_url")
        );
        assert_eq!(
            named_by("api.base_url", "api.base_url.x").as_deref(),
            Some("api.base_url")
        );
        assert_eq!(named_by("api.base_url", "api.timeout"), None);
        assert_eq!(named_by("api.base_url", "api"), None);
        assert_eq!(
            named_by("webhook.*_secret_file", "webhook.github_secret_file").as_deref(),
            Some("webhook.github_secret_file")
        );
        assert_eq!(named_by("webhook.*_secret_file", "webhook.path"), None);
        assert_eq!(
            named_by("notify.*.url", "notify.slack.url").as_deref(),
            Some("notify.slack.url")
        );
    }

    #[test]
    fn every_rule_names_a_known_key() {
        let mut known = super::super::raw::known_keys();
        // `[targets.NAME]`: the names are the user's, the keys are the target table's.
        known.extend(
            super::super::validate::targets::TARGET_KEYS
                .iter()
                .map(|key| format!("targets.staging.{key}")),
        );
        for rule in OPERATOR_ONLY {
            assert!(
                known.iter().any(|key| named_by(rule.key, key).is_some()),
                "{} names no known key",
                rule.key
            );
        }
    }
}
