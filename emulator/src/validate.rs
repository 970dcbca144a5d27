//! Request-body validation as the contract gives it (respan-api.md 2.2, 2.3, 4.13):
//! types, ranges and required fields, reported as DRF-style 400 field maps that name
//! every bad field at once. Numbers are normalised the way Django REST framework does
//! (a float field echoes `1` as `1.0`, an integer field accepts `2048.0`). Pure; knows
//! nothing about HTTP or the store.

use serde_json::{Map, Number, Value, json};

use super::reply::{Failure, FieldErrors};

/// Every field of a version's content, in the order the API prints them.
pub(crate) const VERSION_FIELDS: [&str; 21] = [
    "description",
    "messages",
    "thinking",
    "model",
    "stream",
    "temperature",
    "max_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
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

/// Fields a bulk `update` item refuses (2.8).
const CONTENT_FIELDS: [&str; 3] = ["messages", "variables", "description"];

/// Message roles (SDK).
const ROLES: [&str; 6] = ["system", "user", "assistant", "tool", "developer", "none"];

/// The longest prompt name accepted.
const MAX_NAME_CHARS: usize = 255;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Text { allow_blank: bool },
    Bool,
    Float { min: i64, max: i64 },
    Int { min: Option<i64> },
    Messages,
    Object,
    StringList,
    ObjectList,
    LoadBalance,
    TextOrObject,
    Any,
}

fn spec(field: &str, bulk: bool) -> Option<(Kind, bool)> {
    let any_in_bulk = |kind| if bulk { Kind::Any } else { kind };
    let spec = match field {
        "description" => (Kind::Text { allow_blank: true }, true),
        "messages" => (Kind::Messages, false),
        "thinking" => (any_in_bulk(Kind::Object), true),
        "model" => (Kind::Text { allow_blank: false }, false),
        "stream" | "is_enforcing_response_format" => (Kind::Bool, false),
        "temperature" => (Kind::Float { min: 0, max: 2 }, true),
        "top_p" => (Kind::Float { min: 0, max: 1 }, true),
        "frequency_penalty" | "presence_penalty" => (Kind::Float { min: -2, max: 2 }, true),
        "max_tokens" => (Kind::Int { min: Some(1) }, true),
        "seed" => (Kind::Int { min: None }, true),
        "reasoning_effort" | "verbosity" => (Kind::Text { allow_blank: true }, true),
        "variables" => (Kind::Object, false),
        "fallback_models" => (Kind::StringList, true),
        "load_balance_models" => (Kind::LoadBalance, true),
        "tools" => (Kind::ObjectList, true),
        "tool_choice" => (any_in_bulk(Kind::TextOrObject), true),
        "response_format" | "json_schema" => (any_in_bulk(Kind::Object), true),
        _ => return None,
    };
    Some(spec)
}

/// Which request a version body belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// E8: `messages` required; `model` required when the knob says so.
    Create { require_model: bool },
    /// E10: every field optional, plus `deploy`.
    Patch,
    /// A bulk `update` item: model configuration only, non-empty.
    Bulk,
}

/// A validated version body: the fields it sets (normalised), and `deploy`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct VersionInput {
    pub fields: Map<String, Value>,
    pub deploy: bool,
}

/// Validate a version body for `mode`. Unknown keys are ignored (1.2).
pub(crate) fn version_input(
    body: &Map<String, Value>,
    mode: Mode,
) -> Result<VersionInput, Failure> {
    let bulk = mode == Mode::Bulk;
    if bulk {
        let refused: Vec<&str> = CONTENT_FIELDS
            .into_iter()
            .filter(|field| body.contains_key(*field))
            .collect();
        if !refused.is_empty() {
            return Err(Failure::bad_request(format!(
                "update does not accept content fields: {}; create a version to change them",
                refused.join(", ")
            )));
        }
    }
    let mut errors = FieldErrors::default();
    let mut input = VersionInput::default();
    for field in VERSION_FIELDS {
        let Some((kind, nullable)) = spec(field, bulk) else {
            continue;
        };
        match body.get(field) {
            None => {
                let required = match mode {
                    Mode::Create { require_model } => {
                        field == "messages" || (field == "model" && require_model)
                    }
                    Mode::Patch | Mode::Bulk => false,
                };
                if required {
                    errors.add(field, "This field is required.");
                }
            }
            Some(Value::Null) if nullable => {
                input.fields.insert(field.to_owned(), Value::Null);
            }
            Some(Value::Null) => errors.add(field, "This field may not be null."),
            Some(value) => match check(kind, value) {
                Ok(value) => {
                    input.fields.insert(field.to_owned(), value);
                }
                Err(Problem::Text(message)) => errors.add(field, message),
                Err(Problem::Nested(detail)) => errors.set(field, detail),
            },
        }
    }
    if !bulk {
        match body.get("deploy") {
            None | Some(Value::Null) => {}
            Some(value) => match as_bool(value) {
                Some(deploy) => input.deploy = deploy,
                None => errors.add("deploy", "Must be a valid boolean."),
            },
        }
    }
    errors.into_result()?;
    if bulk && input.fields.is_empty() {
        return Err(Failure::bad_request(
            "update body must set at least one model setting (model, temperature, ...)",
        ));
    }
    Ok(input)
}

/// What is wrong with one value: a message, or a nested DRF structure (messages).
enum Problem {
    Text(String),
    Nested(Value),
}

impl From<&str> for Problem {
    fn from(message: &str) -> Problem {
        Problem::Text(message.to_owned())
    }
}

fn check(kind: Kind, value: &Value) -> Result<Value, Problem> {
    match kind {
        Kind::Any => Ok(value.clone()),
        Kind::Text { allow_blank } => {
            let text = as_text(value).ok_or(Problem::from("Not a valid string."))?;
            if !allow_blank && text.trim().is_empty() {
                return Err("This field may not be blank.".into());
            }
            Ok(Value::String(text))
        }
        Kind::Bool => as_bool(value)
            .map(Value::Bool)
            .ok_or_else(|| "Must be a valid boolean.".into()),
        Kind::Float { min, max } => {
            let number = as_float(value).ok_or(Problem::from("A valid number is required."))?;
            in_range(number, Some(min), Some(max))?;
            Number::from_f64(number)
                .map(Value::Number)
                .ok_or_else(|| "A valid number is required.".into())
        }
        Kind::Int { min } => {
            let number = as_int(value).ok_or(Problem::from("A valid integer is required."))?;
            in_range(number as f64, min, None)?;
            Ok(json!(number))
        }
        Kind::Object => match value {
            Value::Object(_) => Ok(value.clone()),
            other => Err(Problem::Text(format!(
                "Expected a dictionary of items but got type \"{}\".",
                py_type(other)
            ))),
        },
        Kind::TextOrObject => match value {
            Value::String(_) | Value::Object(_) => Ok(value.clone()),
            _ => Err("Must be a string or an object.".into()),
        },
        Kind::StringList => {
            let items = as_list(value)?;
            if items.iter().all(Value::is_string) {
                Ok(value.clone())
            } else {
                Err("Each item must be a string.".into())
            }
        }
        Kind::ObjectList => {
            let items = as_list(value)?;
            if items.iter().all(Value::is_object) {
                Ok(value.clone())
            } else {
                Err("Each item must be an object.".into())
            }
        }
        Kind::LoadBalance => {
            let items = as_list(value)?;
            for item in items {
                let model_ok = item.get("model").is_some_and(Value::is_string);
                let weight_ok = match item.get("weight") {
                    None => true,
                    Some(weight) => as_float(weight).is_some_and(|w| w > 0.0),
                };
                if !item.is_object() || !model_ok || !weight_ok {
                    return Err(
                        "Each item must be an object with a string \"model\" and a positive \
                         \"weight\"."
                            .into(),
                    );
                }
            }
            Ok(value.clone())
        }
        Kind::Messages => check_messages(value),
    }
}

fn check_messages(value: &Value) -> Result<Value, Problem> {
    let items = as_list(value)?;
    if items.is_empty() {
        return Err("This list may not be empty.".into());
    }
    let mut any_error = false;
    let per_item: Vec<Value> = items
        .iter()
        .map(|item| {
            let errors = message_errors(item);
            any_error |= !errors.is_empty();
            Value::Object(errors.into_map())
        })
        .collect();
    if any_error {
        Err(Problem::Nested(Value::Array(per_item)))
    } else {
        Ok(value.clone())
    }
}

fn message_errors(item: &Value) -> FieldErrors {
    let mut errors = FieldErrors::default();
    let Value::Object(message) = item else {
        errors.add(
            "non_field_errors",
            format!(
                "Invalid data. Expected a dictionary, but got {}.",
                py_type(item)
            ),
        );
        return errors;
    };
    match message.get("role") {
        None => errors.add("role", "This field is required."),
        Some(Value::Null) => errors.add("role", "This field may not be null."),
        Some(Value::String(role)) if role.is_empty() => {
            errors.add("role", "This field may not be blank.");
        }
        Some(Value::String(role)) if !ROLES.contains(&role.as_str()) => {
            errors.add("role", format!("\"{role}\" is not a valid choice."));
        }
        Some(Value::String(_)) => {}
        Some(_) => errors.add("role", "Not a valid string."),
    }
    match message.get("content") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(Value::Array(parts)) => {
            let valid = parts
                .iter()
                .all(|part| part.get("type").is_some_and(Value::is_string));
            if !valid {
                errors.add(
                    "content",
                    "Each content part must be an object with a string \"type\".",
                );
            }
        }
        Some(_) => errors.add(
            "content",
            "Content must be a string, null, or a list of content parts.",
        ),
    }
    errors
}

fn in_range(number: f64, min: Option<i64>, max: Option<i64>) -> Result<(), Problem> {
    if let Some(max) = max
        && number > max as f64
    {
        return Err(Problem::Text(format!(
            "Ensure this value is less than or equal to {max}."
        )));
    }
    if let Some(min) = min
        && number < min as f64
    {
        return Err(Problem::Text(format!(
            "Ensure this value is greater than or equal to {min}."
        )));
    }
    Ok(())
}

fn as_list(value: &Value) -> Result<&Vec<Value>, Problem> {
    value.as_array().ok_or_else(|| {
        Problem::Text(format!(
            "Expected a list of items but got type \"{}\".",
            py_type(value)
        ))
    })
}

/// A string, or a number turned into its text (DRF `CharField`).
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A JSON boolean, or one of the strings DRF `BooleanField` accepts.
pub(crate) fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.as_str() {
            "true" | "True" | "1" => Some(true),
            "false" | "False" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A finite number, or a string holding one (DRF `FloatField`). Booleans are refused.
fn as_float(value: &Value) -> Option<f64> {
    let number = match value {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    number.is_finite().then_some(number)
}

/// An integer, an integral float (`2048.0`), or a string holding one (DRF `IntegerField`).
pub(crate) fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            let float = number.as_f64()?;
            (float.fract() == 0.0 && float.abs() < 9.0e15).then_some(float as i64)
        }),
        Value::String(text) => {
            let text = text.trim();
            text.parse::<i64>()
                .ok()
                .or_else(|| text.strip_suffix(".0")?.parse().ok())
        }
        _ => None,
    }
}

/// The Python type name DRF puts in its messages.
fn py_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The body as a JSON object; anything else is a 400 (`{}` for an empty body).
pub(crate) fn object_body(value: Value) -> Result<Map<String, Value>, Failure> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(Failure::field(
            "non_field_errors",
            format!(
                "Invalid data. Expected a dictionary, but got {}.",
                py_type(&other)
            ),
        )),
    }
}

/// A validated prompt body (E2 create, E5 update).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PromptInput {
    pub name: Option<String>,
    /// Absent, null (clear) or a value.
    pub description: Option<Option<String>>,
    /// The legacy prompt-level deploy trigger (KW), acted on only behind its knob.
    pub deploy: bool,
}

pub(crate) fn prompt_input(body: &Map<String, Value>) -> Result<PromptInput, Failure> {
    let mut errors = FieldErrors::default();
    let mut input = PromptInput::default();
    match body.get("name") {
        None => {}
        Some(Value::Null) => errors.add("name", "This field may not be null."),
        Some(value) => match check(Kind::Text { allow_blank: false }, value) {
            Ok(Value::String(name)) if name.chars().count() > MAX_NAME_CHARS => errors.add(
                "name",
                format!("Ensure this field has no more than {MAX_NAME_CHARS} characters."),
            ),
            Ok(Value::String(name)) => input.name = Some(name),
            Ok(_) | Err(Problem::Nested(_)) => errors.add("name", "Not a valid string."),
            Err(Problem::Text(message)) => errors.add("name", message),
        },
    }
    match body.get("description") {
        None => {}
        Some(Value::Null) => input.description = Some(None),
        Some(value) => match as_text(value) {
            Some(text) => input.description = Some(Some(text)),
            None => errors.add("description", "Not a valid string."),
        },
    }
    if let Some(value) = body.get("deploy").filter(|v| !v.is_null()) {
        match as_bool(value) {
            Some(deploy) => input.deploy = deploy,
            None => errors.add("deploy", "Must be a valid boolean."),
        }
    }
    errors.into_result()?;
    Ok(input)
}

/// The optional `description` of a commit body (E12, bulk `commit`).
pub(crate) fn commit_description(body: &Map<String, Value>) -> Result<Option<String>, Failure> {
    match body.get("description") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => as_text(value)
            .map(Some)
            .ok_or_else(|| Failure::field("description", "Not a valid string.")),
    }
}

/// The required integer `version` of a deploy body (E13).
pub(crate) fn deploy_version(body: &Map<String, Value>) -> Result<i64, Failure> {
    match body.get("version") {
        None => Err(Failure::field("version", "This field is required.")),
        Some(Value::Null) => Err(Failure::field("version", "This field may not be null.")),
        Some(value) => {
            as_int(value).ok_or_else(|| Failure::field("version", "A valid integer is required."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const CREATE: Mode = Mode::Create {
        require_model: false,
    };

    #[test]
    fn a_good_create_body_is_normalised_like_drf() {
        let input = version_input(
            &body(json!({
                "messages": [{"role": "system", "content": "hi"}],
                "temperature": 1,
                "max_tokens": 2048.0,
                "seed": null,
                "unknown_key": "ignored",
                "deploy": false,
            })),
            CREATE,
        )
        .unwrap();
        assert_eq!(input.fields["temperature"], json!(1.0));
        assert!(input.fields["temperature"].is_f64());
        assert_eq!(input.fields["max_tokens"], json!(2048));
        assert_eq!(input.fields["seed"], Value::Null);
        assert!(!input.fields.contains_key("unknown_key"));
        assert!(!input.deploy);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let failure = version_input(
            &body(json!({
                "messages": [],
                "temperature": 2.5,
                "top_p": -0.1,
                "max_tokens": 0,
                "frequency_penalty": "loud",
                "stream": "maybe",
                "variables": null,
                "tools": ["search"],
                "model": "",
            })),
            CREATE,
        )
        .unwrap_err();
        assert_eq!(failure.status, 400);
        assert_eq!(
            failure.body,
            json!({
                "messages": ["This list may not be empty."],
                "model": ["This field may not be blank."],
                "stream": ["Must be a valid boolean."],
                "temperature": ["Ensure this value is less than or equal to 2."],
                "max_tokens": ["Ensure this value is greater than or equal to 1."],
                "top_p": ["Ensure this value is greater than or equal to 0."],
                "frequency_penalty": ["A valid number is required."],
                "variables": ["This field may not be null."],
                "tools": ["Each item must be an object."],
            })
        );
    }

    #[test]
    fn messages_are_checked_item_by_item() {
        let failure = version_input(
            &body(json!({"messages": [
                {"role": "user", "content": "ok"},
                {"content": "no role"},
                {"role": "sytem", "content": 5},
                "just text",
            ]})),
            CREATE,
        )
        .unwrap_err();
        assert_eq!(
            failure.body,
            json!({"messages": [
                {},
                {"role": ["This field is required."]},
                {
                    "role": ["\"sytem\" is not a valid choice."],
                    "content": ["Content must be a string, null, or a list of content parts."],
                },
                {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]},
            ]})
        );
    }

    #[test]
    fn create_requires_messages_and_model_only_behind_the_knob() {
        let failure = version_input(&body(json!({})), CREATE).unwrap_err();
        assert_eq!(
            failure.body,
            json!({"messages": ["This field is required."]})
        );
        let failure = version_input(
            &body(json!({"messages": [{"role": "user"}]})),
            Mode::Create {
                require_model: true,
            },
        )
        .unwrap_err();
        assert_eq!(failure.body, json!({"model": ["This field is required."]}));
        assert!(version_input(&body(json!({})), Mode::Patch).is_ok());
    }

    #[test]
    fn bulk_update_refuses_content_and_empty_bodies() {
        let failure =
            version_input(&body(json!({"messages": [], "model": "x"})), Mode::Bulk).unwrap_err();
        assert!(
            failure.message().contains("content fields: messages"),
            "{failure:?}"
        );
        let failure = version_input(&body(json!({"foo": 1})), Mode::Bulk).unwrap_err();
        assert!(failure.message().contains("at least one"), "{failure:?}");
        let input =
            version_input(&body(json!({"thinking": 3, "deploy": true})), Mode::Bulk).unwrap();
        assert_eq!(input.fields["thinking"], json!(3));
        assert!(!input.deploy);
    }

    #[test]
    fn deploy_flag_and_deploy_version_are_typed() {
        let failure = version_input(&body(json!({"deploy": "soon"})), Mode::Patch).unwrap_err();
        assert_eq!(
            failure.body,
            json!({"deploy": ["Must be a valid boolean."]})
        );
        assert_eq!(deploy_version(&body(json!({"version": 3}))), Ok(3));
        assert_eq!(deploy_version(&body(json!({"version": "3"}))), Ok(3));
        assert_eq!(
            deploy_version(&body(json!({"version": "three"})))
                .unwrap_err()
                .body,
            json!({"version": ["A valid integer is required."]})
        );
        assert_eq!(
            deploy_version(&body(json!({}))).unwrap_err().body,
            json!({"version": ["This field is required."]})
        );
    }

    #[test]
    fn prompt_bodies() {
        let input = prompt_input(&body(json!({"name": "A", "description": null}))).unwrap();
        assert_eq!(input.name.as_deref(), Some("A"));
        assert_eq!(input.description, Some(None));
        let failure = prompt_input(&body(json!({"name": "", "description": []}))).unwrap_err();
        assert_eq!(
            failure.body,
            json!({
                "name": ["This field may not be blank."],
                "description": ["Not a valid string."],
            })
        );
        let long = "x".repeat(256);
        assert!(prompt_input(&body(json!({ "name": long }))).is_err());
        assert!(object_body(json!([1])).is_err());
        assert_eq!(object_body(Value::Null), Ok(Map::new()));
    }
}
