//! The canonical form of a version's content, used for semantic equality and for the
//! content digest recorded in provenance. Pure, no I/O.
//!
//! Canonical means: only content fields (not `description`, ids, flags or times);
//! a field left out or null counts as its API default (respan-api.md 4.13); numbers
//! compare by value (`1` equals `1.0`); object keys are sorted; a message whose content
//! is a list of text parts equals the same text as a plain string. Message text is
//! compared byte for byte.

use serde_json::{Map, Number, Value, json};
use sha2::{Digest as _, Sha256};

use crate::api::types::VersionSpec;

/// Every content field of a version, in the order people read them.
pub(crate) const CONTENT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "temperature",
    "max_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "stream",
    "thinking",
    "reasoning_effort",
    "verbosity",
    "seed",
    "variables",
    "fallback_models",
    "load_balance_models",
    "tools",
    "tool_choice",
    "response_format",
    "json_schema",
    "is_enforcing_response_format",
];

/// The value the API applies when a create leaves `field` out (respan-api.md 4.13).
/// `model` and `messages` have none we can rely on.
pub(crate) fn default_of(field: &str) -> Value {
    match field {
        "stream" | "is_enforcing_response_format" => json!(false),
        "temperature" => json!(0.7),
        "max_tokens" => json!(4096),
        "top_p" => json!(1.0),
        "frequency_penalty" | "presence_penalty" => json!(0),
        "variables" => json!({}),
        _ => Value::Null,
    }
}

/// Whether a canonical value is the API default of `field`.
pub(crate) fn is_default(field: &str, value: &Value) -> bool {
    canonical_field(field, &default_of(field)) == *value
}

/// Canonical content of a version given as its wire fields (a remote version, or a
/// serialised [`VersionSpec`]). Absent fields become their defaults.
pub(crate) fn canonical(fields: &Map<String, Value>) -> Map<String, Value> {
    CONTENT_FIELDS
        .iter()
        .map(|&field| {
            let value = match fields.get(field) {
                None | Some(Value::Null) => default_of(field),
                Some(value) => value.clone(),
            };
            (field.to_owned(), canonical_field(field, &value))
        })
        .collect()
}

/// The content fields a spec sets explicitly, canonicalised, without defaults.
pub(crate) fn explicit(spec: &VersionSpec) -> Map<String, Value> {
    let fields = spec_fields(spec);
    CONTENT_FIELDS
        .iter()
        .filter_map(|&field| match fields.get(field) {
            None | Some(Value::Null) => None,
            Some(value) => Some((field.to_owned(), canonical_field(field, value))),
        })
        .collect()
}

/// A spec's content as wire fields (everything but `description`).
pub(crate) fn spec_fields(spec: &VersionSpec) -> Map<String, Value> {
    match serde_json::to_value(spec) {
        Ok(Value::Object(mut map)) => {
            map.remove("description");
            map
        }
        // A struct of plain data always serialises to an object.
        _ => Map::new(),
    }
}

/// The fields a PATCH must send so the draft ends up with exactly `spec`'s content:
/// every content field, defaults (or null) for those `spec` leaves out.
pub(crate) fn full_body(spec: &VersionSpec) -> Map<String, Value> {
    let fields = spec_fields(spec);
    CONTENT_FIELDS
        .iter()
        .map(|&field| {
            let value = fields
                .get(field)
                .cloned()
                .unwrap_or_else(|| default_of(field));
            (field.to_owned(), value)
        })
        .collect()
}

/// Content digest of a spec: SHA-256 of the canonical JSON (defaults filled), first
/// 32 hex digits. Adding `temperature: 0.7` to a file does not change it.
pub(crate) fn digest(spec: &VersionSpec) -> String {
    let canonical = canonical(&spec_fields(spec));
    let text = serde_json::to_string(&Value::Object(canonical)).unwrap_or_default();
    let hash = Sha256::digest(text.as_bytes());
    hash.iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether the remote content equals the spec, every field compared, defaults for
/// what either side leaves out.
pub(crate) fn equal_full(spec: &VersionSpec, remote: &Map<String, Value>) -> bool {
    equal(&spec_fields(spec), remote)
}

/// Whether two versions' wire fields have the same canonical content
/// (`canonical(a) == canonical(b)`, without building either).
pub(crate) fn equal(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    CONTENT_FIELDS
        .iter()
        .all(|field| field_eq(field, a.get(*field), b.get(*field)))
}

/// Whether the remote content agrees with every field the spec sets explicitly.
/// Fields the spec leaves out are not compared: used when the version is known to
/// have been created from this very spec, so the server's own defaults are trusted.
pub(crate) fn equal_explicit(spec: &VersionSpec, remote: &Map<String, Value>) -> bool {
    let fields = spec_fields(spec);
    CONTENT_FIELDS.iter().all(|field| match fields.get(*field) {
        None | Some(Value::Null) => true,
        ours => field_eq(field, ours, remote.get(*field)),
    })
}

/// Names of the content fields whose canonical values differ.
pub(crate) fn changed_fields(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<&'static str> {
    CONTENT_FIELDS
        .iter()
        .copied()
        .filter(|field| !field_eq(field, before.get(*field), after.get(*field)))
        .collect()
}

/// Whether two wire values of `field` (absent or null: its default) are equal in
/// canonical form: what comparing [`canonical`]'s values says, without building them
/// (a plan compares every managed prompt's content).
fn field_eq(field: &str, a: Option<&Value>, b: Option<&Value>) -> bool {
    let (a, b) = (or_default(field, a), or_default(field, b));
    match (field, a.as_ref(), b.as_ref()) {
        ("messages", Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| message_eq(a, b))
        }
        (_, a, b) => value_eq(a, b),
    }
}

/// A value of `field` as given, or its default when absent or null.
fn or_default<'v>(field: &str, value: Option<&'v Value>) -> std::borrow::Cow<'v, Value> {
    match value {
        None | Some(Value::Null) => std::borrow::Cow::Owned(default_of(field)),
        Some(value) => std::borrow::Cow::Borrowed(value),
    }
}

/// [`canonical_message`]'s equality: the content as text when it is only text parts,
/// a missing content as null.
fn message_eq(a: &Value, b: &Value) -> bool {
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return value_eq(a, b);
    };
    let others = |m: &Map<String, Value>| m.len() - usize::from(m.contains_key("content"));
    if others(a) != others(b) {
        return false;
    }
    let same_others = a
        .iter()
        .filter(|(key, _)| *key != "content")
        .all(|(key, value)| b.get(key).is_some_and(|other| value_eq(value, other)));
    same_others && value_eq(&content_of(a), &content_of(b))
}

/// A message's content as [`canonical_message`] reads it.
fn content_of(message: &Map<String, Value>) -> std::borrow::Cow<'_, Value> {
    use std::borrow::Cow;
    match message.get("content") {
        None => Cow::Owned(Value::Null),
        Some(content @ Value::Array(parts)) => match text_of_parts(parts) {
            Some(text) => Cow::Owned(Value::String(text)),
            None => Cow::Borrowed(content),
        },
        Some(content) => Cow::Borrowed(content),
    }
}

/// [`canonical_value`]'s equality: keys in any order, numbers by value.
fn value_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, value)| b.get(key).is_some_and(|other| value_eq(value, other)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| value_eq(a, b))
        }
        (Value::Number(a), Value::Number(b)) => canonical_number(a) == canonical_number(b),
        (a, b) => a == b,
    }
}

fn canonical_field(field: &str, value: &Value) -> Value {
    let value = canonical_value(value);
    match (field, value) {
        ("messages", Value::Array(messages)) => {
            Value::Array(messages.into_iter().map(canonical_message).collect())
        }
        (_, value) => value,
    }
}

/// A message's content as text when it is only text parts; `null` content and a
/// missing content are the same.
fn canonical_message(message: Value) -> Value {
    let Value::Object(mut message) = message else {
        return message;
    };
    match message.get("content") {
        Some(Value::Array(parts)) => {
            if let Some(text) = text_of_parts(parts) {
                message.insert("content".to_owned(), Value::String(text));
            }
        }
        None => {
            message.insert("content".to_owned(), Value::Null);
        }
        Some(_) => {}
    }
    Value::Object(message)
}

/// The text of a list of parts that are all `{"type": "text", "text": ...}` and
/// nothing else; `None` when any part is something else.
fn text_of_parts(parts: &[Value]) -> Option<String> {
    if parts.is_empty() {
        return None;
    }
    parts
        .iter()
        .map(|part| {
            let part = part.as_object()?;
            let only_text = part.len() == 2 && part.get("type")?.as_str()? == "text";
            only_text.then(|| part.get("text")?.as_str()).flatten()
        })
        .collect::<Option<String>>()
}

/// Sorted keys, numbers by value (whole floats as integers).
fn canonical_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|key| (key.clone(), canonical_value(&map[key])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_value).collect()),
        Value::Number(number) => Value::Number(canonical_number(number)),
        other => other.clone(),
    }
}

fn canonical_number(number: &Number) -> Number {
    // Whole floats within the exact integer range of f64 become integers.
    if number.is_f64()
        && let Some(float) = number.as_f64()
        && float.fract() == 0.0
        && float.abs() < 9_007_199_254_740_992.0
    {
        return Number::from(float as i64);
    }
    number.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::{Message, MessageContent};

    fn spec(json: Value) -> VersionSpec {
        serde_json::from_value(json).unwrap()
    }

    fn fields(json: Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_and_number_spelling_do_not_matter() {
        let desired =
            spec(json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}));
        let remote = fields(json!({
            "version": 3, "description": "anything", "readonly": true,
            "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.7, "max_tokens": 4096.0, "top_p": 1, "frequency_penalty": 0.0,
            "presence_penalty": 0, "stream": false, "variables": {}, "seed": null,
            "is_enforcing_response_format": false, "tools": null
        }));
        assert!(equal_full(&desired, &remote));
        assert!(changed_fields(&spec_fields(&desired), &remote).is_empty());
    }

    #[test]
    fn text_parts_equal_a_string_but_message_text_is_byte_exact() {
        let desired = spec(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        let parts = fields(json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]}]}));
        assert!(equal_full(&desired, &parts));
        let spaced =
            fields(json!({"model": "m", "messages": [{"role": "user", "content": "hi "}]}));
        assert!(!equal_full(&desired, &spaced));
        let image = fields(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "x"}}]}]}),
        );
        assert!(!equal_full(&desired, &image));
    }

    #[test]
    fn a_server_default_that_differs_breaks_full_but_not_explicit_equality() {
        let desired = spec(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        let remote = fields(json!({"model": "m", "temperature": 1.0,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}));
        assert!(!equal_full(&desired, &remote));
        assert!(equal_explicit(&desired, &remote));
        let edited =
            fields(json!({"model": "other", "messages": [{"role": "user", "content": "hi"}]}));
        assert!(!equal_explicit(&desired, &edited));
    }

    #[test]
    fn key_order_does_not_matter_anywhere() {
        let a = spec(
            json!({"model": "m", "messages": [], "response_format": {"type": "json", "schema": {"b": 1, "a": 2}}}),
        );
        let b = fields(
            json!({"messages": [], "response_format": {"schema": {"a": 2, "b": 1}, "type": "json"}, "model": "m"}),
        );
        assert!(equal_full(&a, &b));
    }

    #[test]
    fn digest_is_stable_and_semantic() {
        let plain = spec(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        let with_default = spec(
            json!({"model": "m", "temperature": 0.7, "messages": [{"role": "user", "content": "hi"}]}),
        );
        let changed = spec(
            json!({"model": "m", "temperature": 0.2, "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(digest(&plain), digest(&with_default));
        assert_ne!(digest(&plain), digest(&changed));
        assert_eq!(digest(&plain).len(), 32);
        let mut described = plain.clone();
        described.description = Some("not content".into());
        assert_eq!(digest(&plain), digest(&described));
    }

    #[test]
    fn full_body_sets_every_field() {
        let mut s = VersionSpec {
            model: Some("m".into()),
            ..VersionSpec::default()
        };
        s.messages.push(Message {
            role: "user".into(),
            content: MessageContent::Text("x".into()),
            extra: Map::new(),
        });
        let body = full_body(&s);
        assert_eq!(body.len(), CONTENT_FIELDS.len());
        assert_eq!(body["temperature"], json!(0.7));
        assert_eq!(body["seed"], Value::Null);
        assert_eq!(body["model"], json!("m"));
    }

    /// A random wire value of the shapes content takes: small enough that two draws,
    /// and a draw and its variant, are often equal in canonical form.
    fn draw(rng: &mut fastrand::Rng, depth: u32) -> Value {
        // Depth 7 draws a message (a message's content is drawn at depth 2).
        match if depth == 7 {
            9
        } else {
            rng.u32(0..if depth == 0 { 5 } else { 9 })
        } {
            0 => Value::Null,
            1 => json!(rng.bool()),
            2 => Value::String(["hi", "x"][rng.usize(0..2)].to_owned()),
            3 => json!(rng.u32(0..2)),
            4 => Value::from([0.0, 1.0, -1.0, 0.7, 1.5][rng.usize(0..5)]),
            5 => Value::Array((0..rng.usize(0..3)).map(|_| draw(rng, depth - 1)).collect()),
            6 => {
                let text = ["hi", "x"][rng.usize(0..2)];
                json!([{"type": "text", "text": text}])
            }
            7 | 9 => {
                let mut message = Map::new();
                message.insert("role".into(), json!("user"));
                if rng.bool() {
                    message.insert("content".into(), draw(rng, depth.min(3) - 1));
                }
                Value::Object(message)
            }
            _ => {
                let keys = ["a", "b", "content", "type", "text"];
                Value::Object(
                    (0..rng.usize(0..3))
                        .map(|_| (keys[rng.usize(0..5)].to_owned(), draw(rng, depth - 1)))
                        .collect(),
                )
            }
        }
    }

    /// A variant of `value` that canonical form often cannot tell from it: keys in
    /// another order, whole floats as integers, a string as one text part, a null
    /// content left out.
    fn variant(rng: &mut fastrand::Rng, value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                rng.shuffle(&mut entries);
                let mut out = Map::new();
                for (key, value) in entries {
                    if !(key == "content" && value.is_null() && rng.bool()) {
                        out.insert(key.clone(), variant(rng, value));
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| variant(rng, v)).collect()),
            Value::Number(n) if rng.bool() => n
                .as_f64()
                .filter(|f| f.fract() == 0.0)
                .map_or_else(|| value.clone(), |f| json!(f as i64)),
            Value::String(text) if rng.bool() => json!([{"type": "text", "text": text}]),
            _ if rng.u32(0..8) == 0 => draw(rng, 1),
            _ => value.clone(),
        }
    }

    /// Comparing without building the canonical forms says what comparing them says,
    /// for every content field, over values equal and not.
    #[test]
    fn comparing_in_place_agrees_with_comparing_canonical_forms() {
        let mut rng = fastrand::Rng::with_seed(22);
        let mut equal_pairs = 0;
        for round in 0..20_000 {
            let field = CONTENT_FIELDS[round % CONTENT_FIELDS.len()];
            let field = if round % 3 == 0 { "messages" } else { field };
            let a = if field == "messages" && rng.bool() {
                Value::Array((0..rng.usize(0..3)).map(|_| draw(&mut rng, 7)).collect())
            } else {
                draw(&mut rng, 3)
            };
            let b = if rng.bool() {
                variant(&mut rng, &a)
            } else {
                draw(&mut rng, 3)
            };
            let (a, b) = (Some(&a).filter(|_| rng.u32(0..10) > 0), Some(&b));
            let canonical = |value: Option<&Value>| {
                let value = match value {
                    None | Some(Value::Null) => default_of(field),
                    Some(value) => value.clone(),
                };
                canonical_field(field, &value)
            };
            let expected = canonical(a) == canonical(b);
            equal_pairs += usize::from(expected);
            assert_eq!(field_eq(field, a, b), expected, "{field}: {a:?} vs {b:?}");
            assert_eq!(field_eq(field, b, a), expected, "{field}: {b:?} vs {a:?}");
        }
        assert!(
            equal_pairs > 2_000,
            "too few equal pairs to test: {equal_pairs}"
        );
    }
}
