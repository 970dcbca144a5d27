//! `[targets.NAME]`: one table per Respan project, checked key by key (an unknown key
//! gets a did-you-mean like any other), each problem with its own value's origin. A
//! target's key comes from `api_key_file` or from the environment variable that
//! `api_key_env` names, never both; the other `[api]` settings are shared unless the
//! target sets its own `base_url`, `max_in_flight` or `requests_per_minute`.

use figment::value::Value;

use super::super::api_key;
use super::super::layers;
use super::super::raw::Field;
use super::super::{ApiSettings, Live, TargetSettings};
use super::notify::{nested, table};
use super::{Checker, Problem, choice, count, globs, path, text};
use crate::secret::ApiKey;

pub(in crate::config) const TARGET_KEYS: [&str; 7] = [
    "api_key_file",
    "api_key_env",
    "base_url",
    "live",
    "deploy",
    "max_in_flight",
    "requests_per_minute",
];
const DEPLOY_KEYS: [&str; 1] = ["tags"];

/// The targets, by name; `Some(empty)` without `[targets]`. `api` and
/// `tags` are `[api]` and `deploy.tags`, which a target inherits; with `needs_key`
/// false (a command that never calls the API) no key is read.
pub(super) fn settings(
    check: &mut Checker<'_>,
    raw: Field,
    api: &ApiSettings,
    tags: &[String],
    needs_key: bool,
) -> Option<Vec<TargetSettings>> {
    let Some(raw) = raw else {
        return Some(Vec::new());
    };
    let origin = layers::origin(check.figment, raw.tag(), "targets");
    let Value::Dict(_, dict) = &*raw else {
        check.problems.push(Problem::new(
            Some("targets"),
            origin.label,
            format!(
                "expected tables like [targets.staging], found {}",
                raw.to_actual()
            ),
        ));
        return None;
    };
    if dict.is_empty() {
        check.problems.push(Problem::new(
            Some("targets"),
            origin.label,
            "is empty; add a [targets.NAME] table per Respan project, or remove [targets]",
        ));
        return None;
    }
    let mut targets = Vec::new();
    let mut ok = true;
    for (name, value) in dict {
        match target(check, name, value, api, tags, needs_key) {
            Some(target) => targets.push(target),
            None => ok = false,
        }
    }
    ok.then_some(targets)
}

fn target(
    check: &mut Checker<'_>,
    name: &str,
    value: &Value,
    api: &ApiSettings,
    tags: &[String],
    needs_key: bool,
) -> Option<TargetSettings> {
    let key = format!("targets.{name}");
    let origin = layers::origin(check.figment, value.tag(), &key);
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_name {
        check.problems.push(Problem::new(
            Some(&key),
            origin.label.clone(),
            format!(
                "{name:?} is not a target name; use letters, digits, - and _ (at most 64): \
                 it names commit status contexts and metrics labels"
            ),
        ));
    }
    let fields = table(check, &key, value, &TARGET_KEYS)?;
    let refused = |check: &Checker<'_>, field: &str| {
        let full = format!("{key}.{field}");
        check.refused.contains(&full)
    };
    let base_url = if refused(check, "base_url") {
        None
    } else {
        nested(check, &key, fields, "base_url", |v, _| {
            super::super::base_url::parse(&text(v)?)
        })
    };
    let live = nested(check, &key, fields, "live", |v, _| {
        choice(
            v,
            &[
                ("tags", Live::Tags),
                ("branch", Live::Branch),
                ("none", Live::None),
            ],
        )
    });
    let max_in_flight = nested(check, &key, fields, "max_in_flight", |v, o| {
        count(1, 256)(v, o)
    });
    let requests_per_minute = nested(check, &key, fields, "requests_per_minute", |v, o| {
        count(1, 1_000_000)(v, o)
    });
    let own_tags = match fields.get("deploy") {
        None => Some(None),
        Some(deploy) => {
            let deploy_key = format!("{key}.deploy");
            table(check, &deploy_key, deploy, &DEPLOY_KEYS).and_then(|deploy| {
                nested(check, &deploy_key, deploy, "tags", |v, o| globs(true)(v, o))
            })
        }
    };
    let key_file = if refused(check, "api_key_file") {
        None
    } else {
        nested(check, &key, fields, "api_key_file", path)
    };
    let key_env = if refused(check, "api_key_env") {
        None
    } else {
        nested(check, &key, fields, "api_key_env", |v, _| {
            let name = text(v)?;
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(format!(
                    "{name:?} is not the name of an environment variable"
                ));
            }
            Ok(name)
        })
    };
    let (base_url, live, max_in_flight, requests_per_minute, own_tags, key_file, key_env) = (
        base_url?,
        live?,
        max_in_flight?,
        requests_per_minute?,
        own_tags?,
        key_file?,
        key_env?,
    );
    let file_path = key_file.as_ref().map(|(file, _)| file.clone());
    let api_key = match (key_file, key_env) {
        (Some(_), Some(_)) => {
            check.problems.push(Problem::new(
                Some(&key),
                origin.label,
                "sets both api_key_file and api_key_env; keep one so that it is clear which key is used",
            ));
            return None;
        }
        _ if !needs_key => None,
        (Some((file, file_origin)), None) => match api_key::read(&file).and_then(api_key::check) {
            Ok(key) => Some(key),
            Err(message) => {
                check.problems.push(Problem::new(
                    Some(&format!("{key}.api_key_file")),
                    file_origin.label,
                    message,
                ));
                return None;
            }
        },
        (None, Some(var)) => {
            let value = std::env::var(&var).unwrap_or_default();
            let value = value.trim();
            if value.is_empty() {
                check.problems.push(Problem::new(
                    Some(&format!("{key}.api_key_env")),
                    origin.label,
                    format!(
                        "names the environment variable {var}, which is unset or empty; \
                         export the target's API key in it"
                    ),
                ));
                return None;
            }
            match api_key::check(ApiKey::new(value)) {
                Ok(key) => Some(key),
                Err(message) => {
                    check.problems.push(Problem::new(
                        Some(&format!("{key}.api_key_env")),
                        format!("environment variable {var}"),
                        message,
                    ));
                    return None;
                }
            }
        }
        (None, None) => {
            check.problems.push(Problem::new(
                Some(&key),
                origin.label,
                "needs its API key: api_key_file (a file that holds it) or api_key_env \
                 (the name of an environment variable that holds it)",
            ));
            return None;
        }
    };
    if !valid_name {
        return None;
    }
    let mut target_api = api.clone();
    target_api.api_key = api_key;
    // The daemon watches the file: a rotated key takes effect without a restart.
    target_api.api_key_file = file_path;
    if let Some(url) = base_url {
        target_api.base_url = url;
    }
    if let Some(n) = max_in_flight {
        target_api.max_in_flight = n;
    }
    if let Some(n) = requests_per_minute {
        target_api.requests_per_minute = Some(n);
    }
    Some(TargetSettings {
        name: name.to_owned(),
        api: target_api,
        live: live.unwrap_or_default(),
        tags: own_tags.unwrap_or_else(|| tags.to_vec()),
    })
}
