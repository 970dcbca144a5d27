//! Filters and sorting of the prompt list and summary (respan-api.md 2.6, E1): every
//! operator of the contract (the union of C and W, `iexact`, `isnull` and `empty`
//! included) on the prompt fields and on `current_version__*` / `live_version__*`.
//! Strings compare as strings, numbers as numbers, `*_at` fields as datetimes. A
//! prompt without a live version fails every `live_version__*` condition except
//! `isnull` and `empty`. Unknown fields and operators are 400s. Pure; knows nothing
//! about HTTP or the store.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::model::{PromptRecord, VersionRecord, parse_time};
use super::reply::Failure;
use super::validate::as_bool;

/// Which endpoint the filter is for: the summary does not know `creator_email`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    List,
    Summary,
}

/// A parsed `filters` body, ready to test prompts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    conditions: Vec<Condition>,
    /// Top-level `"operator": "OR"`.
    any: bool,
    /// `is_deleted` is filtered on: deleted prompts are no longer hidden by default.
    mentions_deleted: bool,
}

#[derive(Debug, Clone)]
struct Condition {
    field: Field,
    op: Op,
    values: Vec<Scalar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Bool,
    Time,
    Tags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PromptField {
    Id,
    Slug,
    Name,
    Description,
    Starred,
    CommitCount,
    CreatorEmail,
    Tags,
    IsDeleted,
    CreatedAt,
    UpdatedAt,
}

#[derive(Debug, Clone)]
enum Field {
    Prompt(PromptField),
    /// `current_version__<name>` (live = false) or `live_version__<name>`.
    Version {
        live: bool,
        name: &'static str,
        kind: Kind,
    },
}

const VERSION_SUBFIELDS: [(&str, Kind); 19] = [
    ("id", Kind::Text),
    ("prompt_version_id", Kind::Text),
    ("version", Kind::Number),
    ("description", Kind::Text),
    ("model", Kind::Text),
    ("readonly", Kind::Bool),
    ("is_deployed", Kind::Bool),
    ("created_at", Kind::Time),
    ("updated_at", Kind::Time),
    ("stream", Kind::Bool),
    ("is_enforcing_response_format", Kind::Bool),
    ("temperature", Kind::Number),
    ("top_p", Kind::Number),
    ("frequency_penalty", Kind::Number),
    ("presence_penalty", Kind::Number),
    ("max_tokens", Kind::Number),
    ("seed", Kind::Number),
    ("reasoning_effort", Kind::Text),
    ("verbosity", Kind::Text),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Not,
    In,
    NotIn,
    Lt,
    Lte,
    Gt,
    Gte,
    Contains,
    NotContains,
    IContains,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Empty,
    NotEmpty,
    IExact,
    IsNull,
}

/// A typed filter value, or a field's value.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Text(String),
    Number(f64),
    Bool(bool),
    Time(OffsetDateTime),
}

/// What a prompt has in a field.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    /// A `live_version__*` field of a prompt with nothing live (or no version at all).
    NoVersion,
    Null,
    Value(Scalar),
    Tags(Vec<String>),
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "" | "eq" | "exact" => Op::Eq,
            "not" => Op::Not,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "contains" => Op::Contains,
            "not_contains" => Op::NotContains,
            "icontains" => Op::IContains,
            "startswith" => Op::StartsWith,
            "not_startswith" => Op::NotStartsWith,
            "endswith" => Op::EndsWith,
            "not_endswith" => Op::NotEndsWith,
            "empty" => Op::Empty,
            "not_empty" => Op::NotEmpty,
            "iexact" => Op::IExact,
            "isnull" => Op::IsNull,
            _ => return None,
        })
    }

    fn allowed_for(self, kind: Kind) -> bool {
        match self {
            Op::Eq | Op::Not | Op::In | Op::NotIn | Op::Empty | Op::NotEmpty | Op::IsNull => true,
            Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
                matches!(kind, Kind::Text | Kind::Number | Kind::Time)
            }
            _ => kind == Kind::Text,
        }
    }

    /// Operators that compare with exactly one value (the first given).
    fn single(self) -> bool {
        !matches!(
            self,
            Op::Eq | Op::Not | Op::In | Op::NotIn | Op::IExact | Op::Empty | Op::NotEmpty
        )
    }

    /// Negative operators, which a null field satisfies (Django `exclude` semantics).
    fn negative(self) -> bool {
        matches!(
            self,
            Op::Not | Op::NotIn | Op::NotContains | Op::NotStartsWith | Op::NotEndsWith
        )
    }
}

impl Field {
    fn parse(name: &str, scope: Scope) -> Option<Field> {
        if let Some((prefix, rest)) = name.split_once("__") {
            let live = match prefix {
                "current_version" => false,
                "live_version" => true,
                _ => return None,
            };
            let (name, kind) = VERSION_SUBFIELDS.iter().find(|(n, _)| *n == rest)?;
            return Some(Field::Version {
                live,
                name,
                kind: *kind,
            });
        }
        let field = match name {
            "prompt_id" => PromptField::Id,
            "prompt_slug" => PromptField::Slug,
            "name" => PromptField::Name,
            "description" => PromptField::Description,
            "starred" => PromptField::Starred,
            "commit_count" => PromptField::CommitCount,
            "creator_email" if scope == Scope::List => PromptField::CreatorEmail,
            "tags" => PromptField::Tags,
            "is_deleted" => PromptField::IsDeleted,
            _ => return None,
        };
        Some(Field::Prompt(field))
    }

    fn kind(&self) -> Kind {
        match self {
            Field::Version { kind, .. } => *kind,
            Field::Prompt(field) => match field {
                PromptField::Starred | PromptField::IsDeleted => Kind::Bool,
                PromptField::CommitCount => Kind::Number,
                PromptField::Tags => Kind::Tags,
                PromptField::CreatedAt | PromptField::UpdatedAt => Kind::Time,
                _ => Kind::Text,
            },
        }
    }

    fn get(&self, prompt: &PromptRecord) -> Got {
        match self {
            Field::Version { live, name, kind } => {
                let version = if *live {
                    prompt.live_version()
                } else {
                    prompt.current()
                };
                version.map_or(Got::NoVersion, |v| {
                    version_value(v, prompt.live, name, *kind)
                })
            }
            Field::Prompt(field) => match field {
                PromptField::Id => text(&prompt.id),
                PromptField::Slug => text(&prompt.prompt_slug),
                PromptField::Name => text(&prompt.name),
                PromptField::Description => prompt.description.as_deref().map_or(Got::Null, text),
                PromptField::CreatorEmail => text(&prompt.creator_email),
                PromptField::Starred => Got::Value(Scalar::Bool(prompt.starred)),
                PromptField::IsDeleted => Got::Value(Scalar::Bool(prompt.is_deleted())),
                PromptField::CommitCount => {
                    Got::Value(Scalar::Number(prompt.commit_count() as f64))
                }
                PromptField::CreatedAt => time_value(&prompt.created_at),
                PromptField::UpdatedAt => time_value(&prompt.updated_at),
                PromptField::Tags => Got::Tags(
                    prompt
                        .tags
                        .iter()
                        .filter_map(|tag| tag.get("id").map(scalar_text))
                        .collect(),
                ),
            },
        }
    }
}

fn text(value: &str) -> Got {
    Got::Value(Scalar::Text(value.to_owned()))
}

fn time_value(value: &str) -> Got {
    parse_time(value).map_or(Got::Null, |at| Got::Value(Scalar::Time(at)))
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn version_value(version: &VersionRecord, live: Option<u32>, name: &str, kind: Kind) -> Got {
    let value = match name {
        "id" | "prompt_version_id" => return text(&version.id),
        "version" => return Got::Value(Scalar::Number(f64::from(version.version))),
        "readonly" => return Got::Value(Scalar::Bool(version.readonly)),
        "is_deployed" => return Got::Value(Scalar::Bool(live == Some(version.version))),
        "created_at" => return time_value(&version.created_at),
        "updated_at" => return time_value(&version.updated_at),
        other => version.fields.get(other).unwrap_or(&Value::Null),
    };
    match (kind, value) {
        (_, Value::Null) => Got::Null,
        (Kind::Number, Value::Number(n)) => n
            .as_f64()
            .map_or(Got::Null, |n| Got::Value(Scalar::Number(n))),
        (Kind::Bool, Value::Bool(b)) => Got::Value(Scalar::Bool(*b)),
        (_, other) => Got::Value(Scalar::Text(scalar_text(other))),
    }
}

/// Parse one filter value for a field of `kind`.
fn parse_value(kind: Kind, value: &Value) -> Option<Scalar> {
    match kind {
        Kind::Text | Kind::Tags => match value {
            Value::String(_) | Value::Number(_) => Some(Scalar::Text(scalar_text(value))),
            _ => None,
        },
        Kind::Number => match value {
            Value::Number(n) => n.as_f64().map(Scalar::Number),
            Value::String(s) => s.trim().parse().ok().map(Scalar::Number),
            _ => None,
        },
        Kind::Bool => as_bool(value).map(Scalar::Bool),
        Kind::Time => value.as_str().and_then(parse_time).map(Scalar::Time),
    }
}

fn bad_filter(field: &str, message: impl Into<String>) -> Failure {
    let mut detail = Map::new();
    detail.insert(
        field.to_owned(),
        Value::Array(vec![Value::String(message.into())]),
    );
    let mut body = Map::new();
    body.insert("filters".to_owned(), Value::Object(detail));
    Failure {
        status: 400,
        body: Value::Object(body),
    }
}

impl Filter {
    /// Parse the `filters` and top-level `operator` keys of a list or summary body.
    pub(crate) fn parse(body: &Map<String, Value>, scope: Scope) -> Result<Filter, Failure> {
        let any = match body.get("operator") {
            None | Some(Value::Null) => false,
            Some(Value::String(op)) if op.eq_ignore_ascii_case("and") => false,
            Some(Value::String(op)) if op.eq_ignore_ascii_case("or") => true,
            Some(other) => {
                return Err(Failure::field(
                    "operator",
                    format!(
                        "\"{}\" is not a valid choice; use AND or OR.",
                        scalar_text(other)
                    ),
                ));
            }
        };
        let mut filter = Filter {
            any,
            ..Filter::default()
        };
        let filters = match body.get("filters") {
            None | Some(Value::Null) => return Ok(filter),
            Some(Value::Object(filters)) => filters,
            Some(_) => {
                return Err(Failure::field(
                    "filters",
                    "Expected an object of field names to conditions.",
                ));
            }
        };
        for (name, spec) in filters {
            let field = Field::parse(name, scope)
                .ok_or_else(|| bad_filter(name, format!("Unsupported filter field \"{name}\".")))?;
            filter.mentions_deleted |= matches!(field, Field::Prompt(PromptField::IsDeleted));
            let specs = match spec {
                Value::Array(list) => list.iter().collect(),
                single => vec![single],
            };
            for spec in specs {
                filter
                    .conditions
                    .push(Condition::parse(name, field.clone(), spec)?);
            }
        }
        Ok(filter)
    }

    /// Whether `prompt` is selected. Deleted prompts are selected only when the
    /// filter asks about `is_deleted`.
    pub(crate) fn matches(&self, prompt: &PromptRecord) -> bool {
        if !self.mentions_deleted && prompt.is_deleted() {
            return false;
        }
        if self.conditions.is_empty() {
            return true;
        }
        let mut results = self.conditions.iter().map(|c| c.holds(prompt));
        if self.any {
            results.any(|held| held)
        } else {
            results.all(|held| held)
        }
    }
}

impl Condition {
    fn parse(name: &str, field: Field, spec: &Value) -> Result<Condition, Failure> {
        let Value::Object(spec) = spec else {
            return Err(bad_filter(
                name,
                "A condition is an object {\"operator\": ..., \"value\": [...]}.",
            ));
        };
        let op_text = match spec.get("operator") {
            None | Some(Value::Null) => "",
            Some(Value::String(op)) => op.as_str(),
            Some(_) => return Err(bad_filter(name, "\"operator\" must be a string.")),
        };
        let op = Op::parse(op_text)
            .ok_or_else(|| bad_filter(name, format!("Unsupported operator \"{op_text}\".")))?;
        let kind = field.kind();
        if !op.allowed_for(kind) {
            return Err(bad_filter(
                name,
                format!("Operator \"{op_text}\" does not apply to this field."),
            ));
        }
        let raw = match spec.get("value") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(values)) => values.clone(),
            Some(_) => return Err(bad_filter(name, "\"value\" must be a list.")),
        };
        let values = match op {
            // The value of `empty` / `not_empty` is `[""]` and carries nothing.
            Op::Empty | Op::NotEmpty => Vec::new(),
            Op::IsNull => {
                let flag = raw
                    .first()
                    .map_or(Some(true), as_bool)
                    .ok_or_else(|| bad_filter(name, "\"isnull\" takes [true] or [false]."))?;
                vec![Scalar::Bool(flag)]
            }
            _ => {
                let mut values = Vec::with_capacity(raw.len());
                for value in &raw {
                    let parsed = parse_value(kind, value).ok_or_else(|| {
                        bad_filter(name, format!("Invalid value {value} for this field."))
                    })?;
                    values.push(parsed);
                }
                values
            }
        };
        if op.single() && values.is_empty() {
            return Err(bad_filter(
                name,
                format!("Operator \"{op_text}\" needs one value."),
            ));
        }
        Ok(Condition { field, op, values })
    }

    fn holds(&self, prompt: &PromptRecord) -> bool {
        let got = self.field.get(prompt);
        let null_flag = || matches!(self.values.first(), Some(Scalar::Bool(true)));
        match got {
            Got::NoVersion => match self.op {
                Op::IsNull => null_flag(),
                Op::Empty => true,
                _ => false,
            },
            Got::Null => match self.op {
                Op::IsNull => null_flag(),
                Op::Empty => true,
                op => op.negative(),
            },
            Got::Tags(tags) => {
                let any_listed = || {
                    self.values
                        .iter()
                        .any(|v| matches!(v, Scalar::Text(t) if tags.contains(t)))
                };
                match self.op {
                    Op::Eq | Op::In => any_listed(),
                    Op::Not | Op::NotIn => !any_listed(),
                    Op::Empty => tags.is_empty(),
                    Op::NotEmpty => !tags.is_empty(),
                    Op::IsNull => !null_flag(),
                    _ => false,
                }
            }
            Got::Value(value) => self.holds_value(&value),
        }
    }

    fn holds_value(&self, value: &Scalar) -> bool {
        let first = self.values.first();
        let text_op = |check: fn(&str, &str) -> bool| match (value, first) {
            (Scalar::Text(have), Some(Scalar::Text(want))) => check(have, want),
            _ => false,
        };
        let order = || first.and_then(|want| compare(value, want));
        match self.op {
            Op::Eq | Op::In => self.values.contains(value),
            Op::Not | Op::NotIn => !self.values.contains(value),
            Op::IExact => self.values.iter().any(|want| match (value, want) {
                (Scalar::Text(have), Scalar::Text(want)) => {
                    have.to_lowercase() == want.to_lowercase()
                }
                _ => value == want,
            }),
            Op::Lt => order() == Some(Ordering::Less),
            Op::Lte => matches!(order(), Some(Ordering::Less | Ordering::Equal)),
            Op::Gt => order() == Some(Ordering::Greater),
            Op::Gte => matches!(order(), Some(Ordering::Greater | Ordering::Equal)),
            Op::Contains => text_op(|have, want| have.contains(want)),
            Op::NotContains => !text_op(|have, want| have.contains(want)),
            Op::IContains => {
                text_op(|have, want| have.to_lowercase().contains(&want.to_lowercase()))
            }
            Op::StartsWith => text_op(|have, want| have.starts_with(want)),
            Op::NotStartsWith => !text_op(|have, want| have.starts_with(want)),
            Op::EndsWith => text_op(|have, want| have.ends_with(want)),
            Op::NotEndsWith => !text_op(|have, want| have.ends_with(want)),
            Op::Empty => matches!(value, Scalar::Text(t) if t.is_empty()),
            Op::NotEmpty => !matches!(value, Scalar::Text(t) if t.is_empty()),
            Op::IsNull => !matches!(first, Some(Scalar::Bool(true))),
        }
    }
}

fn compare(have: &Scalar, want: &Scalar) -> Option<Ordering> {
    match (have, want) {
        (Scalar::Text(a), Scalar::Text(b)) => Some(a.cmp(b)),
        (Scalar::Number(a), Scalar::Number(b)) => a.partial_cmp(b),
        (Scalar::Time(a), Scalar::Time(b)) => Some(a.cmp(b)),
        (Scalar::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// A `sort_by` order for the prompt list: `id` (creation order), a prompt field, or a
/// `current_version__*` / `live_version__*` field; a leading `-` means descending.
/// Prompts without a value sort last; ties keep creation order.
#[derive(Debug, Clone)]
pub(crate) struct Sort {
    key: SortKey,
    descending: bool,
}

#[derive(Debug, Clone)]
enum SortKey {
    Seq,
    Field(Field),
}

impl Sort {
    /// Parse `sort_by` (default `-id`).
    pub(crate) fn parse(sort_by: Option<&str>) -> Result<Sort, Failure> {
        let text = sort_by.unwrap_or("-id");
        let (descending, name) = match text.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, text),
        };
        let key = match name {
            "id" => SortKey::Seq,
            "created_at" => SortKey::Field(Field::Prompt(PromptField::CreatedAt)),
            "updated_at" => SortKey::Field(Field::Prompt(PromptField::UpdatedAt)),
            _ => match Field::parse(name, Scope::List) {
                Some(field) if field.kind() != Kind::Tags => SortKey::Field(field),
                _ => {
                    return Err(Failure::field(
                        "sort_by",
                        format!("Unsupported sort field \"{text}\"."),
                    ));
                }
            },
        };
        Ok(Sort { key, descending })
    }

    pub(crate) fn compare(&self, a: &PromptRecord, b: &PromptRecord) -> Ordering {
        let by_seq = a.seq.cmp(&b.seq);
        let ordering = match &self.key {
            SortKey::Seq => by_seq,
            SortKey::Field(field) => {
                let (x, y) = (sort_value(field.get(a)), sort_value(field.get(b)));
                match (x, y) {
                    (Some(x), Some(y)) => compare(&x, &y).unwrap_or(Ordering::Equal).then(by_seq),
                    // Values first, missing last, whichever the direction.
                    (Some(_), None) => return Ordering::Less,
                    (None, Some(_)) => return Ordering::Greater,
                    (None, None) => by_seq,
                }
            }
        };
        if self.descending {
            ordering.reverse()
        } else {
            ordering
        }
    }
}

fn sort_value(got: Got) -> Option<Scalar> {
    match got {
        Got::Value(value) => Some(value),
        _ => None,
    }
}

#[cfg(test)]
#[path = "filters_tests.rs"]
mod tests;
