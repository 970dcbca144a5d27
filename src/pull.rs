//! Remote prompts written as prompt files (format v1), for `promptsync pull`: the text
//! of one file from a prompt and one of its versions, and file names from prompt names.
//! Pure, no I/O.
//!
//! The text is made so that reading it back gives exactly the remote content: fields in
//! the schema's order, ids and names quoted, message text byte for byte (a literal
//! block scalar when it is long or has several lines, with the chomping indicator its
//! trailing newlines need; a double-quoted scalar when a block cannot carry it), API
//! defaults and nulls left out (they mean the same). Every text is parsed back with the
//! format's own parser and compared with the remote version before it is returned; a
//! version the format cannot hold (an unknown message key, a `response_format` that is
//! a string, ...) is an error that says what does not fit, never a file that differs.
//! Writing the values as YAML text (quoting, blocks, indents) is [`yaml`]'s.

mod yaml;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};
use thiserror::Error;

use crate::api::types::{Prompt, Version};
use crate::desired;
use crate::normalize;
use crate::prompt;
use yaml::{entry, entry_at, quoted, text_entry};

/// The first line of every pulled file: editors complete and check it with the schema.
pub(crate) const SCHEMA_COMMENT: &str = "# yaml-language-server: $schema=https://raw.githubusercontent.com/promptsync/promptsync/main/config/prompt.schema.json";

/// Why a remote prompt cannot be written as a file.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub(crate) enum PullError {
    #[error("the remote prompt has no string id")]
    NoId,

    #[error("version {version} has no `model`; prompt files need one")]
    NoModel { version: u64 },

    #[error("version {version} has no messages; prompt files need at least one")]
    NoMessages { version: u64 },

    #[error("version {version}: {what} has no place in prompt format v1")]
    Unrepresentable { version: u64, what: String },

    /// The self-check failed: the text does not read back as the remote content (a
    /// value the server holds that a prompt file cannot carry faithfully).
    #[error(
        "version {version} does not read back as it is remotely ({why}): the server holds \
         a value the prompt file format cannot carry, so no file was written for it"
    )]
    RoundTrip { version: u64, why: String },
}

/// Message keys a prompt file can hold, in the schema's order.
const MESSAGE_KEYS: &[&str] = &["role", "content", "name", "tool_call_id", "tool_calls"];

/// The text of a prompt file for `prompt` at `version` (full fields), checked to read
/// back as exactly that content.
pub(crate) fn file_text(prompt: &Prompt, version: &Version) -> Result<String, PullError> {
    let id = prompt.id().ok_or(PullError::NoId)?;
    let number = version.number;
    let fields = &version.fields;
    let unrepresentable = |what: String| PullError::Unrepresentable {
        version: number,
        what,
    };
    if !fields.get("model").is_some_and(Value::is_string) {
        return Err(PullError::NoModel { version: number });
    }
    let messages = match fields.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        _ => return Err(PullError::NoMessages { version: number }),
    };
    check_shapes(fields, messages).map_err(unrepresentable)?;

    let mut out = String::new();
    out.push_str(SCHEMA_COMMENT);
    out.push('\n');
    // Ids and names are always quoted: `0123` or `2024` must stay text.
    let _ = writeln!(out, "prompt_id: {}", quoted(id));
    if let Some(name) = &prompt.name {
        let _ = writeln!(out, "name: {}", quoted(name));
    }
    if let Some(description) = &prompt.description {
        let _ = writeln!(out, "description: {}", quoted(description));
    }
    // The version fields in the schema's order (the prompt-level ones are written above).
    for field in prompt::schema::property_names()
        .into_iter()
        .filter(|f| normalize::CONTENT_FIELDS.contains(f))
    {
        let Some(value) = fields.get(field) else {
            continue;
        };
        if value.is_null()
            || (field != "model" && normalize::is_default(field, &canonical(field, value)))
        {
            continue;
        }
        if field == "messages" {
            out.push_str("messages:\n");
            for message in messages {
                write_message(&mut out, message);
            }
        } else {
            entry(&mut out, 0, field, value);
        }
    }
    verify(&out, prompt, version)?;
    Ok(out)
}

/// The canonical value of one field, for the default check.
fn canonical(field: &str, value: &Value) -> Value {
    let mut map = Map::new();
    map.insert(field.to_owned(), value.clone());
    normalize::canonical(&map)
        .remove(field)
        .unwrap_or(Value::Null)
}

/// What the format's types would refuse, named.
fn check_shapes(fields: &Map<String, Value>, messages: &[Value]) -> Result<(), String> {
    let object = |key: &str| match fields.get(key) {
        None | Some(Value::Null | Value::Object(_)) => Ok(()),
        Some(other) => Err(format!("`{key}` as {}", kind(other))),
    };
    for key in ["thinking", "variables", "response_format", "json_schema"] {
        object(key)?;
    }
    let list_of = |key: &str, ok: fn(&Value) -> bool, what: &str| match fields.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(ok) => Ok(()),
        Some(_) => Err(format!("`{key}` that is not a list of {what}")),
    };
    list_of("fallback_models", Value::is_string, "strings")?;
    list_of("tools", Value::is_object, "mappings")?;
    list_of(
        "load_balance_models",
        |item| {
            item.as_object().is_some_and(|m| {
                m.get("model").is_some_and(Value::is_string)
                    && m.get("weight").is_some_and(Value::is_number)
                    && m.get("credentials")
                        .is_none_or(|c| c.is_object() || c.is_null())
                    && m.keys()
                        .all(|k| ["model", "weight", "credentials"].contains(&k.as_str()))
            })
        },
        "`{model, weight, credentials}`",
    )?;
    match fields.get("tool_choice") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(Value::String(mode)) if ["auto", "none", "required"].contains(&mode.as_str()) => {}
        Some(other) => return Err(format!("`tool_choice` {other}")),
    }
    for (i, message) in messages.iter().enumerate() {
        let Some(message) = message.as_object() else {
            return Err(format!("`messages[{i}]` that is not a mapping"));
        };
        if let Some(key) = message.keys().find(|k| !MESSAGE_KEYS.contains(&k.as_str())) {
            return Err(format!("the message key `{key}` (in `messages[{i}]`)"));
        }
        match message.get("content") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(Value::Array(parts))
                if parts
                    .iter()
                    .all(|p| p.get("type").is_some_and(Value::is_string)) => {}
            Some(other) => return Err(format!("`messages[{i}].content` as {}", kind(other))),
        }
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn write_message(out: &mut String, message: &Value) {
    let Some(message) = message.as_object() else {
        return;
    };
    let mut first = true;
    for &key in MESSAGE_KEYS {
        let Some(value) = message.get(key) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let indent = if first {
            out.push_str("  - ");
            first = false;
            0
        } else {
            out.push_str("    ");
            4
        };
        match (key, value) {
            ("content", Value::String(text)) => text_entry(out, indent.max(4), key, text),
            _ => entry_at(out, indent.max(4), key, value, true),
        }
    }
}

/// Parse `text` back with the format's parser and compare it with the remote.
fn verify(text: &str, prompt: &Prompt, version: &Version) -> Result<(), PullError> {
    let round_trip = |why: String| PullError::RoundTrip {
        version: version.number,
        why,
    };
    let parsed = prompt::parse_file("pulled.prompt.yaml", text.as_bytes());
    if let Some(d) = parsed.diagnostics.iter().find(|d| d.is_error()) {
        return Err(round_trip(format!("{}: {}", d.location(), d.message)));
    }
    let file = parsed
        .prompt
        .ok_or_else(|| round_trip("the file did not parse".to_owned()))?;
    let spec = desired::version_spec(&file, &Default::default());
    if !normalize::equal_full(&spec, &version.fields) {
        let differs = normalize::changed_fields(&version.fields, &normalize::spec_fields(&spec));
        return Err(round_trip(format!("`{}` differs", differs.join("`, `"))));
    }
    let same = |file: &Option<String>, remote: &Option<String>| file == remote;
    if file.prompt_id.as_deref() != prompt.id()
        || !same(&file.name, &prompt.name)
        || !same(&file.description, &prompt.description)
    {
        return Err(round_trip("the id, name or description differs".to_owned()));
    }
    Ok(())
}

/// A file name from a prompt name: lower case letters, digits and dashes (`Support
/// assistant` → `support-assistant`), `prompt` when nothing is left.
pub(crate) fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(80).collect();
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "prompt".to_owned()
    } else {
        slug.to_owned()
    }
}

/// `slug.prompt.yaml`, or `slug-2.prompt.yaml` (and so on) when `taken` has it;
/// the name chosen is added to `taken`.
pub(crate) fn unique_file_name(slug: &str, taken: &mut BTreeSet<String>) -> String {
    let mut n = 1;
    loop {
        let name = if n == 1 {
            format!("{slug}.prompt.yaml")
        } else {
            format!("{slug}-{n}.prompt.yaml")
        };
        if taken.insert(name.clone()) {
            return name;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prompt(id: &str, name: &str, description: Option<&str>) -> Prompt {
        let mut value = json!({"id": id, "name": name});
        if let Some(description) = description {
            value["description"] = json!(description);
        }
        serde_json::from_value(value).unwrap()
    }

    fn version(fields: Value) -> Version {
        let mut fields = fields.as_object().unwrap().clone();
        fields.insert("version".into(), json!(3));
        Version::from_fields(fields).unwrap()
    }

    #[test]
    fn a_simple_prompt_reads_like_a_hand_written_file() {
        let text = file_text(
            &prompt("0123", "2024", Some("Answers questions")),
            &version(json!({
                "model": "gpt-4o", "temperature": 0.7, "max_tokens": 2048, "seed": null,
                "messages": [
                    {"role": "system", "content": "You help.\nBe brief.\n"},
                    {"role": "user", "content": "{{q}}"}
                ],
                "variables": {"q": "How?"}, "readonly": true, "description": "v3"
            })),
        )
        .unwrap();
        assert_eq!(
            text,
            format!(
                "{SCHEMA_COMMENT}\nprompt_id: \"0123\"\nname: \"2024\"\ndescription: \"Answers questions\"\nmessages:\n  - role: system\n    content: |\n      You help.\n      Be brief.\n  - role: user\n    content: \"{{{{q}}}}\"\nmodel: gpt-4o\nmax_tokens: 2048\nvariables:\n  q: \"How?\"\n"
            )
        );
    }

    #[test]
    fn message_text_survives_byte_for_byte() {
        for text in [
            "no newline at the end",
            "one\n",
            "two trailing\n\n",
            "three\n\n\n",
            "  leading spaces\nsecond",
            "tab\tinside\nand trailing spaces   \nend",
            "\ttab first",
            "carriage\r\nreturn",
            "",
            "\n",
            "   ",
            "# not a comment\n- not a list\nkey: not a key\n---\n",
            "emoji 🎉 and ünïcode",
            "escape \u{1b}[2J and bell \u{7}",
            &"long line ".repeat(30),
        ] {
            let v = version(json!({"model": "m", "messages": [{"role": "user", "content": text}]}));
            let out = file_text(&prompt("p", "P", None), &v);
            assert!(out.is_ok(), "{text:?}: {out:?}");
        }
    }

    #[test]
    fn every_field_kind_round_trips() {
        let v = version(json!({
            "model": "gpt-4o", "stream": true, "temperature": 1.0, "top_p": 0.5,
            "frequency_penalty": -1.5, "presence_penalty": 0.0, "reasoning_effort": "high",
            "verbosity": "low", "seed": 42, "thinking": {"budget": 1024},
            "messages": [
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "done", "name": "f"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
            ],
            "variables": {"a": "1", "b": {"_type": "json", "value": [1, 2]}, "weird key: x": ""},
            "fallback_models": ["a", "b"],
            "load_balance_models": [{"model": "a", "weight": 0.8}, {"model": "b", "weight": 1, "credentials": {"k": "v"}}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
            "json_schema": {"type": "object", "required": []},
            "is_enforcing_response_format": true
        }));
        let text = file_text(&prompt("p", "P", None), &v).unwrap();
        assert!(
            text.contains("  - role: assistant\n    tool_calls:\n"),
            "{text}"
        );
    }

    #[test]
    fn what_the_format_cannot_hold_is_named() {
        let cases = [
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x", "reasoning_content": "y"}]}),
                "the message key `reasoning_content`",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user"}], "response_format": "{\"type\":\"json\"}"}),
                "`response_format` as a string",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user"}], "tool_choice": "sometimes"}),
                "`tool_choice` \"sometimes\"",
            ),
            (
                json!({"model": "m", "messages": [{"role": "robot"}]}),
                "does not read back",
            ),
        ];
        for (fields, wanted) in cases {
            let err = file_text(&prompt("p", "P", None), &version(fields)).unwrap_err();
            assert!(err.to_string().contains(wanted), "{err}");
        }
        assert_eq!(
            file_text(&prompt("p", "P", None), &version(json!({"messages": []}))).unwrap_err(),
            PullError::NoModel { version: 3 }
        );
    }

    #[test]
    fn slugs_and_collisions() {
        assert_eq!(slug("Support assistant"), "support-assistant");
        assert_eq!(slug("  Ticket -- Triage!! "), "ticket-triage");
        assert_eq!(slug("日本語 prompt"), "日本語-prompt");
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("???"), "prompt");
        let mut taken = BTreeSet::new();
        assert_eq!(unique_file_name("a", &mut taken), "a.prompt.yaml");
        assert_eq!(unique_file_name("a", &mut taken), "a-2.prompt.yaml");
        assert_eq!(unique_file_name("a", &mut taken), "a-3.prompt.yaml");
    }
}
