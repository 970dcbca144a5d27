//! Wire types of the prompts API (respan-api.md sections 2 and 8).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The content of a prompt version as promptsync sends it (create-version body).
/// `None` means "not sent": the server applies its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balance_models: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enforcing_response_format: Option<bool>,
}

/// One chat message. `content` is a string, a list of content parts (kept as raw
/// JSON), or null; other keys (`name`, `tool_call_id`, ...) are kept as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: MessageContent,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A message's content: text, a list of parts, or nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<Value>),
    #[default]
    Null,
}

/// A prompt as the list and retrieve endpoints return it. Every field is optional on
/// the wire (respan-api.md 1.2); [`Prompt::id`] picks the string identifier.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Prompt {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    prompt_id: Option<Value>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub current_version: Option<Version>,
    #[serde(default)]
    pub live_version: Option<Version>,
}

impl Prompt {
    /// The prompt's identifier for paths: `id` when it is a string, else `prompt_id`
    /// (an integer `id` is a database key that must never be used, 2.1).
    pub fn id(&self) -> Option<&str> {
        match (&self.id, &self.prompt_id) {
            (Some(Value::String(id)), _) => Some(id),
            (_, Some(Value::String(id))) => Some(id),
            _ => None,
        }
    }

    /// A prompt with the given identity, for building snapshots in tests.
    pub fn with_id(id: &str, name: &str) -> Prompt {
        Prompt {
            id: Some(Value::String(id.to_owned())),
            name: Some(name.to_owned()),
            ..Prompt::default()
        }
    }
}

/// A prompt version: its number and lifecycle flags typed, every field kept as
/// received in [`Version::fields`] (the server may send more than we know, or only the
/// summary `{version, model, updated_at}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Version {
    pub number: u64,
    pub fields: Map<String, Value>,
}

impl Version {
    pub fn from_fields(fields: Map<String, Value>) -> Option<Version> {
        let number = match fields.get("version")? {
            Value::Number(n) => n.as_u64()?,
            Value::String(s) => s.parse().ok()?,
            _ => return None,
        };
        Some(Version { number, fields })
    }

    /// `readonly: true` (committed). Missing means unknown; treated as not committed.
    pub fn readonly(&self) -> bool {
        self.fields.get("readonly").and_then(Value::as_bool) == Some(true)
    }

    pub fn is_deployed(&self) -> bool {
        self.fields.get("is_deployed").and_then(Value::as_bool) == Some(true)
    }

    pub fn description(&self) -> Option<&str> {
        self.fields.get("description").and_then(Value::as_str)
    }

    /// Whether the content fields came with it (a summary object has no `messages`).
    pub fn has_content(&self) -> bool {
        self.fields.contains_key("messages")
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = Map::<String, Value>::deserialize(deserializer)?;
        Version::from_fields(fields)
            .ok_or_else(|| serde::de::Error::custom("version object without an integer `version`"))
    }
}

/// The paging envelope (2.5), read leniently: each item is parsed on its own, and one
/// that does not parse becomes an [`ItemProblem`] instead of failing the page, so one
/// malformed prompt or version costs only itself. `next` only says whether more pages
/// exist; `count` (per page or a total; any JSON, so an odd one never fails the page)
/// only caps the pages read (`api::paging`).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub count: Option<Value>,
    pub next: Option<String>,
    pub results: Vec<T>,
    pub problems: Vec<ItemProblem>,
}

/// A list item that could not be read, with what could still be read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemProblem {
    /// The page it came in (1-based; 0 until [`Listing::add`] sets it).
    pub page: usize,
    /// Its position in the page (0-based).
    pub index: usize,
    /// The prompt it belongs to, when the item names one readably.
    pub prompt_id: Option<String>,
    /// The prompt's name, when readable.
    pub name: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for ItemProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "item {} of page {} could not be read: {}",
            self.index, self.page, self.reason
        )
    }
}

/// A type that list pages hold.
pub trait Listed: serde::de::DeserializeOwned {
    /// The prompt id and name that can still be read from an item that does not
    /// parse. Version items carry no prompt id of their own: their caller knows it.
    fn identify(_raw: &Value) -> (Option<String>, Option<String>) {
        (None, None)
    }
}

impl Listed for Prompt {
    fn identify(raw: &Value) -> (Option<String>, Option<String>) {
        let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_owned);
        (text("id").or_else(|| text("prompt_id")), text("name"))
    }
}

impl Listed for Version {}

impl<'de, T: Listed> Deserialize<'de> for Page<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(default)]
            count: Option<Value>,
            #[serde(default)]
            next: Option<String>,
            #[serde(default)]
            results: Vec<Value>,
        }
        let envelope = Envelope::deserialize(deserializer)?;
        let mut results = Vec::with_capacity(envelope.results.len());
        let mut problems = Vec::new();
        for (index, raw) in envelope.results.iter().enumerate() {
            match T::deserialize(raw) {
                Ok(item) => results.push(item),
                Err(err) => {
                    let (prompt_id, name) = T::identify(raw);
                    problems.push(ItemProblem {
                        page: 0,
                        index,
                        prompt_id,
                        name,
                        reason: err.to_string(),
                    });
                }
            }
        }
        Ok(Page {
            count: envelope.count,
            next: envelope.next,
            results,
            problems,
        })
    }
}

/// Every page of a list: the items read, and those that could not be.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub problems: Vec<ItemProblem>,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            items: Vec::new(),
            problems: Vec::new(),
        }
    }
}

impl<T> Listing<T> {
    /// Add page `number` (1-based); whether more pages follow.
    pub fn add(&mut self, number: usize, page: Page<T>) -> bool {
        self.items.extend(page.results);
        self.problems
            .extend(page.problems.into_iter().map(|problem| ItemProblem {
                page: number,
                ..problem
            }));
        page.next.is_some()
    }
}

/// Body of `POST /api/prompts/`.
#[derive(Debug, Clone, Serialize)]
pub struct CreatePrompt<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

/// Body of `PATCH /api/prompts/{id}/`: only the fields to change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdatePrompt<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

/// One item of `POST /api/prompts/bulk/` (2.8).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum BulkItem {
    /// Freeze the prompt's draft, with this description as the commit message.
    Commit { prompt_id: String, body: CommitBody },
    /// Make the prompt's newest committed version live.
    Deploy { prompt_id: String },
}

impl BulkItem {
    pub fn prompt_id(&self) -> &str {
        match self {
            BulkItem::Commit { prompt_id, .. } | BulkItem::Deploy { prompt_id } => prompt_id,
        }
    }
}

/// Body of a commit (`POST .../commits/` or a bulk commit item).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Outcome of a bulk request: per-item errors by 0-based index.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BulkResponse {
    #[serde(default)]
    pub success_count: u64,
    #[serde(default)]
    pub error_count: u64,
    #[serde(default)]
    pub errors: Vec<BulkItemError>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BulkItemError {
    pub index: usize,
    #[serde(default, deserialize_with = "any_to_string")]
    pub error: String,
}

fn any_to_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prompt_id_prefers_a_string_id_and_never_an_integer_key() {
        let p: Prompt = serde_json::from_value(json!({"id": "prm_1", "prompt_id": "x"})).unwrap();
        assert_eq!(p.id(), Some("prm_1"));
        let p: Prompt = serde_json::from_value(json!({"id": 17, "prompt_id": "prm_2"})).unwrap();
        assert_eq!(p.id(), Some("prm_2"));
        let p: Prompt = serde_json::from_value(json!({"id": 17})).unwrap();
        assert_eq!(p.id(), None);
    }

    #[test]
    fn versions_parse_as_summary_or_full_and_keep_unknown_keys() {
        let v: Version =
            serde_json::from_value(json!({"version": 3, "model": "gpt-4o", "updated_at": "x"}))
                .unwrap();
        assert_eq!(v.number, 3);
        assert!(!v.has_content());
        let v: Version = serde_json::from_value(json!({
            "version": "4", "readonly": true, "is_deployed": true, "messages": [],
            "description": "d", "brand_new_field": 1
        }))
        .unwrap();
        assert_eq!(v.number, 4);
        assert!(v.readonly() && v.is_deployed() && v.has_content());
        assert_eq!(v.description(), Some("d"));
        assert_eq!(v.fields["brand_new_field"], json!(1));
        assert!(serde_json::from_value::<Version>(json!({"model": "x"})).is_err());
    }

    #[test]
    fn a_malformed_item_costs_only_itself_and_names_its_prompt_when_it_can() {
        let page: Page<Prompt> = serde_json::from_value(json!({
            "next": null,
            "results": [
                {"id": "prm_1", "name": "Good"},
                {"id": "prm_2", "name": "Bad", "current_version": {"version": "three"}},
                {"id": 7, "name": ["not", "a", "name"]},
                {"id": "prm_4", "name": "Good too"}
            ]
        }))
        .unwrap();
        let ids: Vec<_> = page.results.iter().map(Prompt::id).collect();
        assert_eq!(ids, [Some("prm_1"), Some("prm_4")]);
        assert_eq!(page.problems.len(), 2);
        let bad = page.problems[0].clone();
        assert_eq!(
            (bad.index, bad.prompt_id.as_deref(), bad.name.as_deref()),
            (1, Some("prm_2"), Some("Bad"))
        );
        assert!(bad.reason.contains("version"), "{}", bad.reason);
        assert_eq!(
            (
                page.problems[1].prompt_id.as_ref(),
                page.problems[1].name.as_ref()
            ),
            (None, None)
        );

        let mut listing = Listing::default();
        assert!(!listing.add(2, page));
        assert_eq!(listing.items.len(), 2);
        assert_eq!(
            listing.problems[0].to_string(),
            format!("item 1 of page 2 could not be read: {}", bad.reason)
        );

        let versions: Page<Version> = serde_json::from_value(json!({
            "next": "https://x/?page=2",
            "results": [{"version": 2}, {"version": null}, {"version": 1}]
        }))
        .unwrap();
        assert_eq!(versions.results.len(), 2);
        assert_eq!(versions.problems[0].index, 1);
        assert_eq!(versions.problems[0].prompt_id, None);
        assert!(serde_json::from_value::<Page<Version>>(json!({"results": {}})).is_err());
    }

    #[test]
    fn message_content_takes_text_parts_or_null() {
        let m: Message = serde_json::from_value(json!({"role": "user"})).unwrap();
        assert_eq!(m.content, MessageContent::Null);
        let m: Message = serde_json::from_value(
            json!({"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "n"}),
        )
        .unwrap();
        assert!(matches!(m.content, MessageContent::Parts(ref p) if p.len() == 1));
        assert_eq!(m.extra["name"], json!("n"));
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["name"], json!("n"));
    }

    #[test]
    fn bulk_items_serialise_as_the_contract_shows() {
        let items = vec![
            BulkItem::Commit {
                prompt_id: "p".into(),
                body: CommitBody {
                    description: Some("d".into()),
                },
            },
            BulkItem::Deploy {
                prompt_id: "p".into(),
            },
        ];
        assert_eq!(
            serde_json::to_value(&items).unwrap(),
            json!([
                {"action": "commit", "prompt_id": "p", "body": {"description": "d"}},
                {"action": "deploy", "prompt_id": "p"}
            ])
        );
    }
}
