//! The bulk endpoint (E3, respan-api.md 4.12): the envelope checked first (1 to
//! [`BULK_MAX_ITEMS`] objects, each a known `action` and a string `prompt_id`; a 400
//! with DRF's per-item errors otherwise), then the items run in order, each its own
//! transaction on the store's lifecycle rules, a failure an indexed item error. A
//! prompt is committed, and deployed, at most once per request.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::{Store, commit_draft};
use crate::knobs::Knobs;
use crate::model::PromptRecord;
use crate::reply::Failure;
use crate::validate::{self, Mode};

/// The most items a bulk request takes (E3).
pub(crate) const BULK_MAX_ITEMS: usize = 100;

/// What a bulk request did (`BulkOperationResponse`, 2.8).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BulkOutcome {
    pub success_count: usize,
    pub errors: Vec<(usize, String)>,
}

impl BulkOutcome {
    pub(crate) fn to_json(&self) -> Value {
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|(index, error)| json!({"index": index, "error": error}))
            .collect();
        json!({
            "success_count": self.success_count,
            "error_count": self.errors.len(),
            "errors": errors,
        })
    }
}

impl Store {
    /// E3: check the envelope (400 for a malformed one), then run the items in order,
    /// each on its own; failures are indexed item errors (4.12).
    pub(crate) fn bulk(
        &mut self,
        body: &Map<String, Value>,
        knobs: Knobs,
    ) -> Result<BulkOutcome, Failure> {
        let items = bulk_items(body)?;
        let mut outcome = BulkOutcome::default();
        let mut committed = HashSet::new();
        let mut deployed = HashSet::new();
        for (index, item) in items.iter().enumerate() {
            let result = match item.action {
                Action::Update => self.bulk_update(item),
                Action::Commit if committed.contains(item.prompt_id) => Err(format!(
                    "prompt {} was already committed earlier in this request",
                    item.prompt_id
                )),
                Action::Commit => self.bulk_commit(item, knobs).map(|()| {
                    committed.insert(item.prompt_id);
                }),
                Action::Deploy if deployed.contains(item.prompt_id) => Err(format!(
                    "prompt {} was already deployed earlier in this request",
                    item.prompt_id
                )),
                Action::Deploy => self.bulk_deploy(item).map(|()| {
                    deployed.insert(item.prompt_id);
                }),
            };
            match result {
                Ok(()) => outcome.success_count += 1,
                Err(error) => outcome.errors.push((index, error)),
            }
        }
        Ok(outcome)
    }

    fn bulk_prompt(&mut self, id: &str) -> Result<&mut PromptRecord, String> {
        self.prompt_mut(id)
            .map_err(|_| format!("prompt {id} not found"))
    }

    fn bulk_update(&mut self, item: &BulkItem<'_>) -> Result<(), String> {
        let body = match item.body {
            Some(Value::Object(body)) => body,
            Some(_) => return Err("body: expected an object of model settings".to_owned()),
            None => return Err("body: this field is required for update".to_owned()),
        };
        let input = validate::version_input(body, Mode::Bulk).map_err(|f| f.message())?;
        let now = self.now();
        let prompt = self.bulk_prompt(item.prompt_id)?;
        let index = prompt.draft_index().ok_or_else(|| {
            format!(
                "prompt {} has no draft to update; create a version first",
                item.prompt_id
            )
        })?;
        let version = &mut prompt.versions[index];
        version.fields.extend(input.fields);
        version.updated_at.clone_from(&now);
        prompt.updated_at = now;
        self.changed();
        Ok(())
    }

    fn bulk_commit(&mut self, item: &BulkItem<'_>, knobs: Knobs) -> Result<(), String> {
        let description = match item.body {
            None | Some(Value::Null) => None,
            Some(Value::Object(body)) => {
                validate::commit_description(body).map_err(|f| f.message())?
            }
            Some(_) => return Err("body: expected an object".to_owned()),
        };
        let now = self.now();
        let prompt = self.bulk_prompt(item.prompt_id)?;
        commit_draft(prompt, description, knobs, &now).map_err(|f| f.message())?;
        self.changed();
        Ok(())
    }

    fn bulk_deploy(&mut self, item: &BulkItem<'_>) -> Result<(), String> {
        match item.body {
            None | Some(Value::Null) => {}
            Some(Value::Object(body)) if body.is_empty() => {}
            Some(_) => return Err("body: deploy takes no fields; send {} or nothing".to_owned()),
        }
        let now = self.now();
        let prompt = self.bulk_prompt(item.prompt_id)?;
        let number = prompt
            .versions
            .iter()
            .rev()
            .find(|v| v.readonly)
            .map(|v| v.version)
            .ok_or_else(|| {
                format!(
                    "prompt {} has no committed version to deploy; commit first",
                    item.prompt_id
                )
            })?;
        if prompt.live != Some(number) {
            prompt.live = Some(number);
            prompt.updated_at = now;
            self.changed();
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Update,
    Commit,
    Deploy,
}

#[derive(Debug)]
struct BulkItem<'a> {
    action: Action,
    prompt_id: &'a str,
    body: Option<&'a Value>,
}

/// The bulk envelope: 1 to 100 objects, each with a known `action` and a string
/// `prompt_id`. Anything else is a 400 with DRF's per-item error list.
fn bulk_items(body: &Map<String, Value>) -> Result<Vec<BulkItem<'_>>, Failure> {
    let items = match body.get("requests") {
        None => return Err(Failure::field("requests", "This field is required.")),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(Failure::field(
                "requests",
                "Expected a list of items but got another type.",
            ));
        }
    };
    if items.is_empty() {
        return Err(Failure::field(
            "requests",
            "Ensure this field has at least 1 elements.",
        ));
    }
    if items.len() > BULK_MAX_ITEMS {
        return Err(Failure::field(
            "requests",
            format!("Ensure this field has no more than {BULK_MAX_ITEMS} elements."),
        ));
    }
    let mut parsed = Vec::with_capacity(items.len());
    let mut per_item = Vec::with_capacity(items.len());
    for item in items {
        let mut errors = Map::new();
        let mut error = |field: &str, message: String| {
            errors.insert(field.to_owned(), json!([message]));
        };
        let action = match item.get("action") {
            Some(Value::String(action)) => match action.as_str() {
                "update" => Some(Action::Update),
                "commit" => Some(Action::Commit),
                "deploy" => Some(Action::Deploy),
                other => {
                    error("action", format!("\"{other}\" is not a valid choice."));
                    None
                }
            },
            Some(_) => {
                error("action", "Not a valid string.".to_owned());
                None
            }
            None if item.is_object() => {
                error("action", "This field is required.".to_owned());
                None
            }
            None => {
                error(
                    "non_field_errors",
                    "Invalid data. Expected a dictionary.".to_owned(),
                );
                None
            }
        };
        let prompt_id = match item.get("prompt_id") {
            Some(Value::String(id)) => Some(id.as_str()),
            Some(_) => {
                error("prompt_id", "Not a valid string.".to_owned());
                None
            }
            None if item.is_object() => {
                error("prompt_id", "This field is required.".to_owned());
                None
            }
            None => None,
        };
        if let (Some(action), Some(prompt_id)) = (action, prompt_id) {
            parsed.push(BulkItem {
                action,
                prompt_id,
                body: item.get("body"),
            });
        }
        per_item.push(Value::Object(errors));
    }
    if parsed.len() < items.len() {
        let mut map = Map::new();
        map.insert("requests".to_owned(), Value::Array(per_item));
        return Err(Failure {
            status: 400,
            body: Value::Object(map),
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::store::tests::{add_version, body, knobs, new_prompt};

    #[test]
    fn bulk_runs_items_in_order_each_on_its_own() {
        let mut store = Store::default();
        let id = new_prompt(&mut store);
        add_version(&mut store, &id, "one");
        let request = body(json!({"requests": [
            {"action": "update", "prompt_id": id, "body": {"model": "gpt-4o-mini", "temperature": 0.2}},
            {"action": "update", "prompt_id": id, "body": {"messages": []}},
            {"action": "commit", "prompt_id": id, "body": {"description": "bulk"}},
            {"action": "commit", "prompt_id": id},
            {"action": "deploy", "prompt_id": id},
            {"action": "deploy", "prompt_id": id, "body": {}},
            {"action": "deploy", "prompt_id": "prm_missing"},
            {"action": "update", "prompt_id": id, "body": {"temperature": 5}},
        ]}));
        let outcome = store.bulk(&request, knobs()).unwrap();
        assert_eq!(outcome.success_count, 3);
        let indexes: Vec<usize> = outcome.errors.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, [1, 3, 5, 6, 7]);
        assert!(outcome.errors[0].1.contains("content fields: messages"));
        assert!(outcome.errors[1].1.contains("already committed"));
        assert!(outcome.errors[3].1.contains("not found"));
        let version = store.retrieve_version(&id, 1).unwrap();
        assert_eq!(version["model"], json!("gpt-4o-mini"));
        assert_eq!(version["temperature"], json!(0.2));
        assert_eq!(version["description"], json!("bulk"));
        assert_eq!(version["is_deployed"], json!(true));
        assert_eq!(
            outcome.to_json()["error_count"],
            json!(5),
            "success_count + error_count = items"
        );
    }

    #[test]
    fn bulk_item_rules_without_draft_or_commit() {
        let mut store = Store::default();
        let id = new_prompt(&mut store);
        let request = body(json!({"requests": [
            {"action": "update", "prompt_id": id, "body": {"temperature": 0.2}},
            {"action": "commit", "prompt_id": id},
            {"action": "deploy", "prompt_id": id},
            {"action": "update", "prompt_id": id},
            {"action": "deploy", "prompt_id": id, "body": {"version": 1}},
        ]}));
        let outcome = store.bulk(&request, knobs()).unwrap();
        assert_eq!(outcome.success_count, 0);
        let messages: Vec<&str> = outcome.errors.iter().map(|(_, e)| e.as_str()).collect();
        assert!(messages[0].contains("no draft"), "{messages:?}");
        assert!(
            messages[1].contains("No draft version to commit"),
            "{messages:?}"
        );
        assert!(messages[2].contains("no committed version"), "{messages:?}");
        assert!(messages[3].contains("required"), "{messages:?}");
        assert!(messages[4].contains("no fields"), "{messages:?}");
    }

    #[test]
    fn bulk_envelopes_are_checked_first() {
        let mut store = Store::default();
        let too_many: Vec<Value> = (0..=BULK_MAX_ITEMS)
            .map(|_| json!({"action": "deploy", "prompt_id": "x"}))
            .collect();
        let cases = [
            json!({}),
            json!({"requests": []}),
            json!({"requests": "all"}),
            json!({ "requests": too_many }),
        ];
        for case in cases {
            assert_eq!(
                store.bulk(&body(case.clone()), knobs()).unwrap_err().status,
                400,
                "{case}"
            );
        }
        let failure = store
            .bulk(
                &body(json!({"requests": [
                    {"action": "deploy", "prompt_id": "x"},
                    {"action": "frob", "prompt_id": "x"},
                    {"action": "commit"},
                ]})),
                knobs(),
            )
            .unwrap_err();
        assert_eq!(
            failure.body,
            json!({"requests": [
                {},
                {"action": ["\"frob\" is not a valid choice."]},
                {"prompt_id": ["This field is required."]},
            ]})
        );
    }
}
