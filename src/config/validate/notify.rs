//! `[notify]` and the deploy gate's keys: tables and lists of tables, checked key by
//! key (an unknown key inside `[notify.github]` gets a did-you-mean like any other),
//! each problem with the origin of its own value.

use std::time::Duration;

use figment::value::{Dict, Value};

use super::super::layers::{self, Origin};
use super::super::notify::{
    EVENTS, ExecSettings, ForgeSettings, GateMode, GateSettings, NotifySettings, WebhookFormat,
    WebhookSettings, WebhookUrl,
};
use super::super::raw::{Field, RawNotify, did_you_mean};
use super::{Checker, Problem, choice, duration, path, text};

const FORGE_KEYS: [&str; 4] = ["repository", "api_url", "token_file", "target_url"];
const WEBHOOK_KEYS: [&str; 5] = ["url", "url_file", "events", "format", "secret_file"];
const EXEC_KEYS: [&str; 3] = ["command", "events", "timeout"];

pub(super) fn settings(check: &mut Checker<'_>, raw: RawNotify) -> Option<NotifySettings> {
    let min_interval = check.get(
        "notify.min_interval",
        raw.min_interval,
        duration(Duration::ZERO),
    );
    let timeout = check.get(
        "notify.timeout",
        raw.timeout,
        duration(Duration::from_millis(1)),
    );
    let retry_max_elapsed = check.get(
        "notify.retry_max_elapsed",
        raw.retry_max_elapsed,
        duration(Duration::ZERO),
    );
    let github = raw
        .github
        .map_or(Some(None), |v| forge(check, "notify.github", &v).map(Some));
    let gitlab = raw
        .gitlab
        .map_or(Some(None), |v| forge(check, "notify.gitlab", &v).map(Some));
    let webhooks = raw
        .webhook
        .map_or(Some(Vec::new()), |v| webhooks(check, &v));
    let exec = raw.exec.map_or(Some(None), |v| exec(check, &v).map(Some));
    Some(NotifySettings {
        github: github?.flatten(),
        gitlab: gitlab?.flatten(),
        webhooks: webhooks?,
        exec: exec?.flatten(),
        min_interval: min_interval?,
        timeout: timeout?,
        retry_max_elapsed: retry_max_elapsed?,
    })
}

/// `deploy.gate_command`, `deploy.gate` and `deploy.gate_timeout`: `Some(None)` when no
/// gate is set, `None` when a value is invalid.
pub(super) fn gate(
    check: &mut Checker<'_>,
    command: Field,
    mode: Field,
    timeout: Field,
) -> Option<Option<GateSettings>> {
    let command = check.optional("deploy.gate_command", command, |v, _| command_line(v));
    let mode = check.get("deploy.gate", mode, |v, _| {
        choice(
            v,
            &[
                ("enforce", GateMode::Enforce),
                ("advisory", GateMode::Advisory),
            ],
        )
    });
    let timeout = check.get(
        "deploy.gate_timeout",
        timeout,
        duration(Duration::from_millis(1)),
    );
    let (command, mode, timeout) = (command?, mode?, timeout?);
    Some(command.map(|command| GateSettings {
        command,
        mode,
        timeout,
    }))
}

/// `[notify.github]` / `[notify.gitlab]`: a table, or `true` for all defaults (handy in
/// the environment); `false` is off.
fn forge(check: &mut Checker<'_>, key: &str, value: &Value) -> Option<Option<ForgeSettings>> {
    if let Some(on) = value.to_bool() {
        return Some(on.then(ForgeSettings::default));
    }
    let table = table(check, key, value, &FORGE_KEYS)?;
    let repository = nested(check, key, table, "repository", |v, _| {
        let repo = text(v)?;
        if repo.trim().is_empty() || repo.chars().any(char::is_whitespace) {
            return Err(format!(
                "{repo:?} is not a repository; write it like \"owner/name\""
            ));
        }
        Ok(repo)
    });
    let api_url = nested(check, key, table, "api_url", |v, _| {
        crate::config::check_url(&text(v)?)
    });
    let token_file = nested(check, key, table, "token_file", |v, origin| {
        path(v, origin).map(|(path, _)| path)
    });
    let target_url = nested(check, key, table, "target_url", |v, _| {
        let link = text(v)?;
        url::Url::parse(&link)
            .map_err(|err| format!("{link:?} is not a URL ({err})"))
            .map(|_| link)
    });
    Some(Some(ForgeSettings {
        repository: repository?,
        api_url: api_url?,
        token_file: token_file?,
        target_url: target_url?,
    }))
}

/// `[[notify.webhook]]`: a list of tables (one table counts as a list of one).
fn webhooks(check: &mut Checker<'_>, value: &Value) -> Option<Vec<WebhookSettings>> {
    let items: Vec<&Value> = match value {
        Value::Array(_, items) => items.iter().collect(),
        single => vec![single],
    };
    let mut hooks = Vec::new();
    let mut ok = true;
    for (index, item) in items.into_iter().enumerate() {
        let key = format!("notify.webhook[{index}]");
        match webhook(check, &key, item) {
            Some(hook) => hooks.push(hook),
            None => ok = false,
        }
    }
    ok.then_some(hooks)
}

fn webhook(check: &mut Checker<'_>, key: &str, value: &Value) -> Option<WebhookSettings> {
    let table = table(check, key, value, &WEBHOOK_KEYS)?;
    let url = nested(check, key, table, "url", |v, _| {
        crate::config::check_url(&text(v)?)
    });
    let url_file = nested(check, key, table, "url_file", |v, origin| {
        path(v, origin).map(|(path, _)| path)
    });
    let events = nested(check, key, table, "events", |v, _| events(v));
    let format = nested(check, key, table, "format", |v, _| {
        choice(
            v,
            &[
                ("json", WebhookFormat::Json),
                ("slack", WebhookFormat::Slack),
            ],
        )
    });
    let secret_file = nested(check, key, table, "secret_file", |v, origin| {
        path(v, origin).map(|(path, _)| path)
    });
    let (url, url_file, events, format, secret_file) =
        (url?, url_file?, events?, format?, secret_file?);
    let origin = layers::origin(check.figment, value.tag(), key);
    let url = match (url, url_file) {
        (Some(url), None) => WebhookUrl::Url(url),
        (None, Some(file)) => WebhookUrl::File(file),
        (Some(_), Some(_)) => {
            check.problems.push(Problem::new(
                Some(key),
                origin.label,
                "sets both url and url_file; keep one (url_file when the URL carries credentials)",
            ));
            return None;
        }
        (None, None) => {
            check.problems.push(Problem::new(
                Some(key),
                origin.label,
                "needs url (or url_file, a file that holds the URL)",
            ));
            return None;
        }
    };
    let format = format.unwrap_or(WebhookFormat::Json);
    if format == WebhookFormat::Slack && secret_file.is_some() {
        check.problems.push(Problem::new(
            Some(&format!("{key}.secret_file")),
            origin.label,
            "Slack does not verify signatures; a Slack webhook URL is the secret (give it \
             with url_file)",
        ));
        return None;
    }
    Some(WebhookSettings {
        url,
        events: events.unwrap_or_else(all_events),
        format,
        secret_file,
    })
}

fn exec(check: &mut Checker<'_>, value: &Value) -> Option<Option<ExecSettings>> {
    let key = "notify.exec";
    let table = table(check, key, value, &EXEC_KEYS)?;
    let command = nested(check, key, table, "command", |v, _| command_line(v));
    let events = nested(check, key, table, "events", |v, _| events(v));
    let timeout = nested(check, key, table, "timeout", |v, origin| {
        duration(Duration::from_millis(1))(v, origin)
    });
    let (command, events, timeout) = (command?, events?, timeout?);
    let Some(command) = command else {
        let origin = layers::origin(check.figment, value.tag(), key);
        check.problems.push(Problem::new(
            Some(key),
            origin.label,
            "needs command, the program to run and its arguments",
        ));
        return None;
    };
    Some(Some(ExecSettings {
        command,
        events: events.unwrap_or_else(all_events),
        timeout: timeout.unwrap_or(Duration::from_secs(30)),
    }))
}

fn all_events() -> Vec<String> {
    EVENTS.iter().map(|e| (*e).to_owned()).collect()
}

/// A table's entries, its unknown keys reported (with a did-you-mean); `None` when it
/// is not a table.
pub(super) fn table<'v>(
    check: &mut Checker<'_>,
    key: &str,
    value: &'v Value,
    known: &[&str],
) -> Option<&'v Dict> {
    let origin = layers::origin(check.figment, value.tag(), key);
    let Value::Dict(_, dict) = value else {
        check.problems.push(Problem::new(
            Some(key),
            origin.label,
            format!(
                "expected a table of {}, found {}",
                known.join(", "),
                value.to_actual()
            ),
        ));
        return None;
    };
    let known_keys: Vec<String> = known.iter().map(|k| format!("{key}.{k}")).collect();
    for (field, item) in dict {
        if known.contains(&field.as_str()) {
            continue;
        }
        let full = format!("{key}.{field}");
        let origin = layers::origin(check.figment, item.tag(), &full);
        let hint = did_you_mean(&full, &known_keys)
            .map(|k| format!("did you mean `{k}`? "))
            .unwrap_or_default();
        check.problems.push(Problem::new(
            Some(&full),
            origin.label,
            format!("unknown key; {hint}the keys here are {}", known.join(", ")),
        ));
    }
    // The known keys are still checked, so that every problem is reported at once.
    Some(dict)
}

/// One value of a table: `Some(None)` when unset, `None` when invalid.
pub(super) fn nested<T>(
    check: &mut Checker<'_>,
    key: &str,
    table: &Dict,
    field: &str,
    convert: impl FnOnce(&Value, &Origin) -> Result<T, String>,
) -> Option<Option<T>> {
    let Some(value) = table.get(field) else {
        return Some(None);
    };
    let full = format!("{key}.{field}");
    let origin = layers::origin(check.figment, value.tag(), &full);
    match convert(value, &origin) {
        Ok(value) => Some(Some(value)),
        Err(message) => {
            check
                .problems
                .push(Problem::new(Some(&full), origin.label, message));
            None
        }
    }
}

/// Event names, each one known.
fn events(value: &Value) -> Result<Vec<String>, String> {
    let items = match value {
        Value::Array(_, items) => items.iter().map(text).collect::<Result<Vec<_>, _>>()?,
        single => vec![text(single)?],
    };
    for item in &items {
        if !EVENTS.contains(&item.as_str()) {
            return Err(format!(
                "{item:?} is not an event; the events are {}",
                EVENTS.join(", ")
            ));
        }
    }
    Ok(items)
}

/// A command line: a string split like a shell splits words (quotes and backslashes,
/// no expansion), or a list of words.
fn command_line(value: &Value) -> Result<Vec<String>, String> {
    let words = match value {
        Value::Array(_, items) => items.iter().map(text).collect::<Result<Vec<_>, _>>()?,
        single => {
            let line = text(single)?;
            shell_words::split(&line)
                .map_err(|err| format!("{line:?} cannot be split into words: {err}"))?
        }
    };
    if words.first().is_none_or(|w| w.is_empty()) {
        return Err("is empty; give the program to run and its arguments".to_owned());
    }
    Ok(words)
}
