//! Response-format presets (respan-api.md E16–E20): project-level saved JSON schemas.
//! `response_format_content` is JSON text kept byte for byte; it must decode to an
//! object whose `name` is a non-empty string and whose `schema` is an object. Records,
//! validation and their JSON shapes; pure, no HTTP.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::model::EDITOR_EMAIL;
use super::reply::{Failure, FieldErrors};
use super::validate::as_bool;

/// The project every preset belongs to.
const PROJECT: &str = "6c1d0f4e-8a53-4b7e-9d2a-1f0b2c3d4e5f";

/// One saved response format.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PresetRecord {
    pub id: String,
    pub seq: u64,
    pub name: String,
    pub response_format_content: String,
    pub is_enforcing_response_format: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// Every preset, in creation order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Presets {
    next_seq: u64,
    items: Vec<PresetRecord>,
}

/// A validated preset body (E17 create, E19 update).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PresetInput {
    pub name: Option<String>,
    pub content: Option<String>,
    pub enforcing: Option<bool>,
}

fn created_by() -> Value {
    json!({
        "id": 1,
        "email": EDITOR_EMAIL,
        "name": "Prompt Sync",
        "username": "promptsync",
        "first_name": "Prompt",
        "last_name": "Sync",
    })
}

impl PresetRecord {
    /// A list item (E16): no schema text.
    fn list_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "created_by": created_by(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }

    /// The create reply (E17).
    fn created_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "project": PROJECT,
            "created_by": 1,
            "response_format_content": self.response_format_content,
            "is_enforcing_response_format": self.is_enforcing_response_format,
        })
    }

    /// The retrieve reply (E18).
    fn detail_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "created_by": created_by(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "response_format_content": self.response_format_content,
            "is_enforcing_response_format": self.is_enforcing_response_format,
        })
    }

    /// The update reply (E19).
    fn updated_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "response_format_content": self.response_format_content,
            "is_enforcing_response_format": self.is_enforcing_response_format,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// A preset list order: `id` (creation), `name`, `created_at` or `updated_at`, with
/// an optional leading `-`; default `-id`.
pub(crate) fn preset_order(sort_by: Option<&str>) -> Result<(String, bool), Failure> {
    let text = sort_by.unwrap_or("-id");
    let (descending, key) = match text.strip_prefix('-') {
        Some(key) => (true, key),
        None => (false, text),
    };
    if !["id", "name", "created_at", "updated_at"].contains(&key) {
        return Err(Failure::field(
            "sort_by",
            format!("Unsupported sort field \"{text}\"."),
        ));
    }
    Ok((key.to_owned(), descending))
}

impl Presets {
    fn position(&self, id: &str) -> Result<usize, Failure> {
        self.items
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(Failure::not_found)
    }

    /// Every preset in the order of [`preset_order`], as list items.
    pub(crate) fn list(&self, key: &str, descending: bool) -> Vec<Value> {
        let mut items: Vec<&PresetRecord> = self.items.iter().collect();
        items.sort_by(|a, b| {
            let ordering = match key {
                "name" => a.name.cmp(&b.name),
                "created_at" => a.created_at.cmp(&b.created_at),
                "updated_at" => a.updated_at.cmp(&b.updated_at),
                _ => Ordering::Equal,
            }
            .then(a.seq.cmp(&b.seq));
            if descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
        items.into_iter().map(PresetRecord::list_json).collect()
    }

    pub(crate) fn create(&mut self, id: String, input: PresetInput, now: &str) -> Value {
        let record = PresetRecord {
            id,
            seq: self.next_seq,
            name: input.name.unwrap_or_default(),
            response_format_content: input.content.unwrap_or_default(),
            is_enforcing_response_format: input.enforcing.unwrap_or(false),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        };
        self.next_seq += 1;
        let body = record.created_json();
        self.items.push(record);
        body
    }

    pub(crate) fn retrieve(&self, id: &str) -> Result<Value, Failure> {
        self.position(id).map(|i| self.items[i].detail_json())
    }

    pub(crate) fn update(
        &mut self,
        id: &str,
        input: PresetInput,
        now: &str,
    ) -> Result<Value, Failure> {
        let position = self.position(id)?;
        let record = &mut self.items[position];
        if let Some(name) = input.name {
            record.name = name;
        }
        if let Some(content) = input.content {
            record.response_format_content = content;
        }
        if let Some(enforcing) = input.enforcing {
            record.is_enforcing_response_format = enforcing;
        }
        record.updated_at = now.to_owned();
        Ok(record.updated_json())
    }

    pub(crate) fn delete(&mut self, id: &str) -> Result<(), Failure> {
        let position = self.position(id)?;
        self.items.remove(position);
        Ok(())
    }
}

/// Validate a preset body; on create, `name` and `response_format_content` are required.
pub(crate) fn preset_input(
    body: &Map<String, Value>,
    create: bool,
) -> Result<PresetInput, Failure> {
    let mut errors = FieldErrors::default();
    let mut input = PresetInput::default();
    let required = |errors: &mut FieldErrors, field: &str| {
        if create {
            errors.add(field, "This field is required.");
        }
    };
    match body.get("name") {
        None => required(&mut errors, "name"),
        Some(Value::String(name)) if name.trim().is_empty() => {
            errors.add("name", "This field may not be blank.");
        }
        Some(Value::String(name)) => input.name = Some(name.clone()),
        Some(Value::Null) => errors.add("name", "This field may not be null."),
        Some(_) => errors.add("name", "Not a valid string."),
    }
    match body.get("response_format_content") {
        None => required(&mut errors, "response_format_content"),
        Some(Value::String(content)) => match content_problem(content) {
            None => input.content = Some(content.clone()),
            Some(problem) => errors.add("response_format_content", problem),
        },
        Some(Value::Null) => errors.add("response_format_content", "This field may not be null."),
        Some(_) => errors.add("response_format_content", "Not a valid string."),
    }
    match body.get("is_enforcing_response_format") {
        None => {}
        Some(value) => match as_bool(value) {
            Some(flag) => input.enforcing = Some(flag),
            None => errors.add("is_enforcing_response_format", "Must be a valid boolean."),
        },
    }
    errors.into_result()?;
    Ok(input)
}

/// What is wrong with a preset's content, if anything.
fn content_problem(content: &str) -> Option<String> {
    let value: Value = match serde_json::from_str(content) {
        Ok(value) => value,
        Err(e) => return Some(format!("Must be valid JSON text: {e}.")),
    };
    let name_ok = value
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|name| !name.trim().is_empty());
    if !value.is_object() || !name_ok || !value.get("schema").is_some_and(Value::is_object) {
        return Some(
            "Must be a JSON object with a non-empty string \"name\" and an object \"schema\"."
                .to_owned(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTENT: &str = r#"{"name": "ticket_triage", "schema": {"type": "object"}}"#;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn content_is_checked_and_kept_byte_for_byte() {
        let input = preset_input(
            &body(json!({"name": "t", "response_format_content": CONTENT})),
            true,
        )
        .unwrap();
        assert_eq!(input.content.as_deref(), Some(CONTENT));
        for bad in [
            "{\"name\": ",
            "[1]",
            r#"{"schema": {}}"#,
            r#"{"name": "", "schema": {}}"#,
            r#"{"name": "x", "schema": "text"}"#,
        ] {
            let failure = preset_input(
                &body(json!({"name": "t", "response_format_content": bad})),
                true,
            )
            .unwrap_err();
            assert!(
                failure.body["response_format_content"].is_array(),
                "{bad}: {failure:?}"
            );
        }
    }

    #[test]
    fn create_requires_name_and_content_update_does_not() {
        let failure = preset_input(&Map::new(), true).unwrap_err();
        assert_eq!(
            failure.body,
            json!({
                "name": ["This field is required."],
                "response_format_content": ["This field is required."],
            })
        );
        let input =
            preset_input(&body(json!({"is_enforcing_response_format": false})), false).unwrap();
        assert_eq!(input.enforcing, Some(false));
    }

    #[test]
    fn lifecycle_of_a_preset() {
        let mut presets = Presets::default();
        let input = PresetInput {
            name: Some("b".into()),
            content: Some(CONTENT.into()),
            enforcing: Some(true),
        };
        let created = presets.create("rfp_1".into(), input.clone(), "2026-01-01T00:00:00Z");
        assert_eq!(created["project"], json!(PROJECT));
        presets.create(
            "rfp_2".into(),
            PresetInput {
                name: Some("a".into()),
                ..input
            },
            "2026-01-02T00:00:00Z",
        );
        let ids =
            |items: Vec<Value>| -> Vec<Value> { items.iter().map(|i| i["id"].clone()).collect() };
        assert_eq!(
            ids(presets.list("id", true)),
            [json!("rfp_2"), json!("rfp_1")]
        );
        assert_eq!(
            ids(presets.list("name", false)),
            [json!("rfp_2"), json!("rfp_1")]
        );
        let updated = presets
            .update(
                "rfp_1",
                PresetInput {
                    enforcing: Some(false),
                    ..PresetInput::default()
                },
                "2026-01-03T00:00:00Z",
            )
            .unwrap();
        assert_eq!(updated["is_enforcing_response_format"], json!(false));
        assert_eq!(updated["response_format_content"], json!(CONTENT));
        presets.delete("rfp_1").unwrap();
        assert_eq!(presets.retrieve("rfp_1").unwrap_err().status, 404);
        assert!(preset_order(Some("-colour")).is_err());
    }
}
