//! Checks of one parsed prompt file against the generated JSON Schema (types, ranges,
//! required and unknown keys, with did-you-mean) and the rules a schema cannot say
//! well (identity, `content` or `content_file`). Every finding of the file is
//! reported, each at the JSON pointer of the node it is about. Pure, no I/O. This file
//! explains the schema's errors; the rules a schema cannot say are the `rules`
//! module's.

mod rules;

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, ValidationError, Validator};
use serde_json::Value;

pub(crate) use super::pointer::display_path;
use super::pointer::push_escaped;
use super::schema::{SCHEMA, SCHEMA_PATH, schema_at};
use crate::diagnostic::did_you_mean;
use crate::excerpt;
pub(crate) use rules::rule_findings;

/// One finding, placed by JSON pointer; turned into a positioned diagnostic by the
/// caller, which knows the file's positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub pointer: String,
    /// Point at the node's key rather than its value.
    pub at_key: bool,
    pub message: String,
    pub help: Option<String>,
}

impl Finding {
    fn at_value(pointer: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            pointer: pointer.into(),
            at_key: false,
            message: message.into(),
            help: None,
        }
    }

    fn at_key(pointer: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            at_key: true,
            ..Finding::at_value(pointer, message)
        }
    }

    fn help(mut self, help: impl Into<String>) -> Finding {
        self.help = Some(help.into());
        self
    }
}

static VALIDATOR: LazyLock<Result<Validator, String>> =
    LazyLock::new(|| jsonschema::validator_for(&SCHEMA).map_err(|err| err.to_string()));

/// Every way `value` breaks the schema of the format.
pub(crate) fn schema_findings(value: &Value) -> Vec<Finding> {
    let validator = match &*VALIDATOR {
        Ok(validator) => validator,
        Err(err) => {
            return vec![Finding::at_value(
                "",
                format!("internal error: the prompt file schema does not compile: {err}"),
            )];
        }
    };
    let mut findings = Vec::new();
    for error in validator.iter_errors(value) {
        explain(&error, &mut findings);
    }
    findings.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    findings
}

fn explain(error: &ValidationError<'_>, out: &mut Vec<Finding>) {
    let pointer = error.instance_path().as_str().to_owned();
    let schema = schema_at(&pointer);
    let name = display_path(&pointer);
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = schema.map(property_names).unwrap_or_default();
            for key in unexpected {
                let mut key_pointer = pointer.clone();
                key_pointer.push('/');
                push_escaped(&mut key_pointer, key);
                let finding =
                    Finding::at_key(key_pointer, format!("unknown key {}", excerpt::quoted(key)));
                out.push(match did_you_mean(key, known.iter().map(String::as_str)) {
                    Some(candidate) => finding.help(format!("did you mean `{candidate}`?")),
                    None if known.len() <= 8 => {
                        finding.help(format!("the keys allowed here are {}", quoted(&known)))
                    }
                    None => finding
                        .help("remove it, or check its spelling against the prompt file format"),
                });
            }
        }
        ValidationErrorKind::Required { property } => {
            let property = property.as_str().unwrap_or_default();
            let message = if pointer.is_empty() {
                format!("missing required key `{property}`")
            } else {
                format!("`{name}` is missing required key `{property}`")
            };
            let mut finding = Finding::at_value(pointer.clone(), message);
            let property_schema = schema.and_then(|s| s.get("properties")?.get(property));
            if let Some(description) = property_schema.and_then(description) {
                finding = finding.help(format!("add `{property}`: {description}"));
            }
            out.push(finding);
        }
        ValidationErrorKind::Type { kind } => {
            out.push(type_finding(&pointer, &name, error.instance(), kind));
        }
        ValidationErrorKind::Minimum { .. }
        | ValidationErrorKind::Maximum { .. }
        | ValidationErrorKind::ExclusiveMinimum { .. }
        | ValidationErrorKind::ExclusiveMaximum { .. } => {
            let bounds =
                schema.map_or_else(|| "it is outside the allowed range".to_owned(), range_text);
            out.push(Finding::at_value(
                pointer,
                format!("`{name}` is {}, out of range: {bounds}", error.instance()),
            ));
        }
        ValidationErrorKind::MinItems { limit } => {
            let message = if *limit == 1 {
                format!("`{name}` is empty; it needs at least one entry")
            } else {
                format!("`{name}` needs at least {limit} entries")
            };
            out.push(Finding::at_value(pointer, message));
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options
                .as_array()
                .map(|options| {
                    options
                        .iter()
                        .filter_map(|o| o.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let got = error.instance();
            let got_text = got.as_str().map_or_else(|| got.to_string(), str::to_owned);
            let finding = Finding::at_value(
                pointer,
                format!(
                    "`{name}` is {}, expected one of {}",
                    excerpt::quoted(&got_text),
                    quoted(&options)
                ),
            );
            out.push(
                match got
                    .as_str()
                    .and_then(|got| did_you_mean(got, options.iter().map(String::as_str)))
                {
                    Some(candidate) => finding.help(format!("did you mean `{candidate}`?")),
                    None => finding,
                },
            );
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // A branch whose type fits but whose content does not says the most; when no
            // branch's type fits, say which types would.
            let fitting: Vec<&Vec<ValidationError<'static>>> = context
                .iter()
                .filter(|branch| !branch.iter().all(|e| is_type_error_at(e, &pointer)))
                .collect();
            if let [branch] = fitting.as_slice() {
                for error in branch.iter() {
                    explain(error, out);
                }
            } else {
                let mut wanted: Vec<&'static str> = Vec::new();
                for branch in context {
                    for error in branch {
                        if let ValidationErrorKind::Type { kind } = error.kind() {
                            for ty in types_of(kind) {
                                if !wanted.contains(&ty) {
                                    wanted.push(ty);
                                }
                            }
                        }
                    }
                }
                out.push(wrong_type(&pointer, &name, error.instance(), &wanted));
            }
        }
        // Not expected of the format's schema: our words, never the library's (which
        // quote the whole value).
        _ => {
            tracing::debug!(pointer = %pointer, kind = ?error.kind(), "unexpected schema finding");
            out.push(
                Finding::at_value(
                    pointer,
                    format!("`{name}` does not fit the prompt file format"),
                )
                .help(format!("see the format's JSON Schema ({SCHEMA_PATH})")),
            );
        }
    }
}

fn is_type_error_at(error: &ValidationError<'_>, pointer: &str) -> bool {
    matches!(error.kind(), ValidationErrorKind::Type { .. })
        && error.instance_path().as_str() == pointer
}

fn type_finding(pointer: &str, name: &str, got: &Value, kind: &TypeKind) -> Finding {
    wrong_type(pointer, name, got, &types_of(kind))
}

fn types_of(kind: &TypeKind) -> Vec<&'static str> {
    let types: Vec<JsonType> = match kind {
        TypeKind::Single(ty) => vec![*ty],
        TypeKind::Multiple(set) => set.iter().collect(),
    };
    let named: Vec<&'static str> = types
        .iter()
        .filter(|ty| **ty != JsonType::Null)
        .map(|ty| type_name(*ty))
        .collect();
    if named.is_empty() {
        vec!["null"]
    } else {
        named
    }
}

fn wrong_type(pointer: &str, name: &str, got: &Value, wanted: &[&str]) -> Finding {
    if pointer.is_empty() {
        let message = if got.is_null() {
            "the file is empty".to_owned()
        } else {
            format!(
                "a prompt file must be a mapping of keys, found {}",
                value_kind(got)
            )
        };
        return Finding::at_value(pointer, message)
            .help("start from `model:` and `messages:`; see the prompt file format");
    }
    let wants_number = wanted
        .iter()
        .any(|ty| matches!(*ty, "an integer" | "a number"));
    let wanted = match wanted {
        [] => "another type".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    };
    let finding = Finding::at_value(
        pointer,
        format!(
            "wrong type for `{name}`: expected {wanted}, found {}",
            value_kind(got)
        ),
    );
    match got.as_str().filter(|_| wants_number).and_then(number_hint) {
        Some(help) => finding.help(help),
        None => finding,
    }
}

/// Help for text that looks like a number where a number is wanted: `0100` (YAML reads
/// a leading zero as text, and YAML 1.1 tools as octal) or `"5"` (quoted).
fn number_hint(text: &str) -> Option<String> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()) {
        let sign = &text[..text.len() - digits.len()];
        let trimmed = digits.trim_start_matches('0');
        let number = if trimmed.is_empty() { "0" } else { trimmed };
        return Some(format!(
            "a number with a leading zero is read as text: write `{sign}{number}`"
        ));
    }
    text.trim()
        .parse::<f64>()
        .is_ok_and(f64::is_finite)
        .then(|| "write the number without quotes".to_owned())
}

fn type_name(ty: JsonType) -> &'static str {
    match ty {
        JsonType::Null => "null",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::String => "a string",
        JsonType::Array => "a list",
        JsonType::Object => "a mapping",
    }
}

/// How a value reads to a person: `a string "hot"`, `the number 1.5`, `a list`.
pub(crate) fn value_kind(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn description(schema: &Value) -> Option<String> {
    let text = schema.get("description")?.as_str()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn property_names(schema: &Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

fn range_text(schema: &Value) -> String {
    let min = schema.get("minimum");
    let max = schema.get("maximum");
    match (min, max) {
        (Some(min), Some(max)) => format!("it must be between {min} and {max}"),
        (Some(min), None) => format!("it must be at least {min}"),
        (None, Some(max)) => format!("it must be at most {max}"),
        (None, None) => "it is outside the allowed range".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn messages(findings: &[Finding]) -> Vec<(String, String)> {
        findings
            .iter()
            .map(|f| (f.pointer.clone(), f.message.clone()))
            .collect()
    }

    fn valid() -> Value {
        json!({"name": "x", "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    }

    #[test]
    fn a_valid_file_has_no_findings() {
        assert_eq!(schema_findings(&valid()), vec![]);
        assert_eq!(rule_findings(&valid()), vec![]);
    }

    #[test]
    fn unknown_keys_suggest_the_near_miss() {
        let mut value = valid();
        value["temprature"] = json!(0.7);
        value["messages"][0]["contnet"] = json!("x");
        let findings = schema_findings(&value);
        let unknown: Vec<_> = findings
            .iter()
            .map(|f| (f.pointer.as_str(), f.at_key, f.help.as_deref()))
            .collect();
        assert!(unknown.contains(&("/temprature", true, Some("did you mean `temperature`?"))));
        assert!(unknown.contains(&("/messages/0/contnet", true, Some("did you mean `content`?"))));
    }

    #[test]
    fn ranges_say_the_bounds() {
        let mut value = valid();
        value["temperature"] = json!(2.5);
        value["max_tokens"] = json!(0);
        value["frequency_penalty"] = json!(-3);
        assert_eq!(
            messages(&schema_findings(&value)),
            vec![
                (
                    "/frequency_penalty".into(),
                    "`frequency_penalty` is -3, out of range: it must be between -2 and 2".into()
                ),
                (
                    "/max_tokens".into(),
                    "`max_tokens` is 0, out of range: it must be at least 1".into()
                ),
                (
                    "/temperature".into(),
                    "`temperature` is 2.5, out of range: it must be between 0 and 2".into()
                ),
            ]
        );
    }

    #[test]
    fn numbers_integers_and_types() {
        let mut value = valid();
        value["temperature"] = json!(1);
        assert_eq!(schema_findings(&value), vec![]);
        value["max_tokens"] = json!(1.5);
        value["stream"] = json!("yes");
        value["temperature"] = Value::Null;
        assert_eq!(
            messages(&schema_findings(&value)),
            vec![
                (
                    "/max_tokens".into(),
                    "wrong type for `max_tokens`: expected an integer, found the number 1.5".into()
                ),
                (
                    "/stream".into(),
                    "wrong type for `stream`: expected a boolean, found the string \"yes\"".into()
                ),
            ]
        );
    }

    #[test]
    fn missing_and_empty_messages() {
        let value = json!({"name": "x", "messages": []});
        assert_eq!(
            messages(&schema_findings(&value)),
            vec![
                ("".into(), "missing required key `model`".into()),
                (
                    "/messages".into(),
                    "`messages` is empty; it needs at least one entry".into()
                ),
            ]
        );
        let value = json!({"name": "x", "model": "m", "messages": [{"content": "hi"}]});
        let findings = schema_findings(&value);
        assert_eq!(
            messages(&findings),
            vec![(
                "/messages/0".into(),
                "`messages[0]` is missing required key `role`".into()
            )]
        );
        assert_eq!(findings[0].help.as_deref(), Some("add `role`: Who speaks."));
    }

    #[test]
    fn any_of_reports_the_branch_that_fits() {
        let mut value = valid();
        value["messages"][0]["content"] = json!([{"text": "hi"}]);
        value["tool_choice"] = json!("autoo");
        value["messages"][0]["role"] = json!("usr");
        let findings = schema_findings(&value);
        assert_eq!(
            messages(&findings),
            vec![
                ("/messages/0/content/0".into(), "`messages[0].content[0]` is missing required key `type`".into()),
                ("/messages/0/role".into(), "`messages[0].role` is `usr`, expected one of `system`, `user`, `assistant`, `tool`, `developer`, `none`".into()),
                ("/tool_choice".into(), "`tool_choice` is `autoo`, expected one of `auto`, `none`, `required`".into()),
            ]
        );
        assert_eq!(findings[1].help.as_deref(), Some("did you mean `user`?"));
        value = valid();
        value["messages"][0]["content"] = json!(42);
        assert_eq!(
            messages(&schema_findings(&value)),
            vec![(
                "/messages/0/content".into(),
                "wrong type for `messages[0].content`: expected a string or a list, found the number 42".into()
            )]
        );
    }

    #[test]
    fn the_root_must_be_a_mapping() {
        assert_eq!(
            messages(&schema_findings(&Value::Null)),
            vec![("".into(), "the file is empty".into())]
        );
        assert_eq!(
            messages(&schema_findings(&json!(["a"]))),
            vec![(
                "".into(),
                "a prompt file must be a mapping of keys, found a list".into()
            )]
        );
    }

    #[test]
    fn numbers_written_as_text_get_a_hint() {
        let mut value = valid();
        value["max_tokens"] = json!("0100");
        value["temperature"] = json!("0.5");
        value["seed"] = json!("-007");
        let findings = schema_findings(&value);
        let helps: Vec<(&str, Option<&str>)> = findings
            .iter()
            .map(|f| (f.pointer.as_str(), f.help.as_deref()))
            .collect();
        assert_eq!(
            helps,
            [
                (
                    "/max_tokens",
                    Some("a number with a leading zero is read as text: write `100`")
                ),
                (
                    "/seed",
                    Some("a number with a leading zero is read as text: write `-7`")
                ),
                ("/temperature", Some("write the number without quotes")),
            ]
        );
    }
}
