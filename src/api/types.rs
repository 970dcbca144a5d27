//! Wire types of the prompts API (respan-api.md sections 2 and 8).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The content of a prompt version as promptsync sends it (create-version body).
/// `None` means "not sent": the server applies its default. The JSON fields few
/// prompts set are boxed: a `Value` is 72 bytes inline, and the daemon keeps a spec
/// for every prompt file it has read (`desired::LoadCache`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Box<Value>>,
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
    pub tool_choice: Option<Box<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Box<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<Box<Value>>,
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
#[serde(expecting = "a prompt object")]
pub struct Prompt {
    #[serde(default)]
    id: Option<IdField>,
    #[serde(default)]
    prompt_id: Option<IdField>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub current_version: Option<Version>,
    #[serde(default)]
    pub live_version: Option<Version>,
}

/// An `id` as sent: text, or anything else (a database key, garbage), never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IdField {
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for IdField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let shape = crate::api::decode::Shape::deserialize(deserializer)?;
        Ok(shape.into_text().map_or(IdField::Other, IdField::Text))
    }
}

/// Whether `id` can stand for a prompt in a request path: not empty, `.` or `..`
/// (which a URL resolves as directories: `/api/prompts/./versions/` is
/// `/api/prompts/versions/`).
pub fn usable_id(id: &str) -> bool {
    !matches!(id, "" | "." | "..")
}

impl Prompt {
    /// The prompt's identifier for paths: `id` when it is a string, else `prompt_id`
    /// (an integer `id` is a database key that must never be used, 2.1); `None` when
    /// neither is a usable one ([`usable_id`]).
    pub fn id(&self) -> Option<&str> {
        fn text(field: &Option<IdField>) -> Option<&str> {
            match field {
                Some(IdField::Text(id)) => Some(id),
                _ => None,
            }
        }
        text(&self.id)
            .or_else(|| text(&self.prompt_id))
            .filter(|id| usable_id(id))
    }

    /// A prompt with the given identity, for building snapshots in tests.
    pub fn with_id(id: &str, name: &str) -> Prompt {
        Prompt {
            id: Some(IdField::Text(id.to_owned())),
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
        // Counted against the reply's budget of JSON values (`api::decode`).
        let fields = crate::api::decode::object(deserializer, "a version object")?;
        Version::from_fields(fields).ok_or_else(|| {
            serde::de::Error::custom("a version object without a whole number in `version`")
        })
    }
}

/// One page of a listing (2.5), as `api::page` reads it: each item parsed on its own,
/// and one that does not parse (or cannot be used) becomes an [`ItemProblem`] instead
/// of failing the page, so one malformed prompt or version costs only itself. `next`
/// only says whether more pages exist; `count` (per page or a total, when it is a
/// whole number) caps the pages read and says whether the listing is complete
/// (`api::paging`).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub count: Option<u64>,
    pub next: Option<String>,
    pub results: Vec<T>,
    pub problems: Vec<ItemProblem>,
}

/// A list item that could not be read, with what could still be read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemProblem {
    /// The page it came in (1-based; 0 until the listing adds it).
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
    /// The prompt id and name that can still be read from an item (its JSON text)
    /// that does not parse. Version items carry no prompt id of their own: their
    /// caller knows it.
    fn identify(_raw: &str) -> (Option<String>, Option<String>) {
        (None, None)
    }

    /// Why an item that parsed cannot be used, if it cannot.
    fn unusable(&self) -> Option<String> {
        None
    }

    /// What tells items apart, for finding a page that repeats the one before.
    fn key(&self) -> Option<String>;

    /// Whether an item keeps the JSON values it was read into (counted against what
    /// replies may hold, `api::held`), or only its text (counted as bytes).
    const KEEPS_VALUES: bool = true;

    /// The item read from its JSON text.
    fn from_item(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }
}

impl Listed for Prompt {
    fn identify(raw: &str) -> (Option<String>, Option<String>) {
        use crate::api::decode::{Shape, small};
        #[derive(Deserialize)]
        struct Identity {
            id: Option<Shape>,
            prompt_id: Option<Shape>,
            name: Option<Shape>,
        }
        let Some(identity) = small::<Identity>(raw.as_bytes()) else {
            return (None, None);
        };
        let text = |field: Option<Shape>| field.and_then(Shape::into_text);
        let id = text(identity.id)
            .or_else(|| text(identity.prompt_id))
            .filter(|id| usable_id(id));
        (id, text(identity.name))
    }

    fn unusable(&self) -> Option<String> {
        if self.id().is_some() {
            return None;
        }
        let given =
            [&self.id, &self.prompt_id]
                .into_iter()
                .flatten()
                .find_map(|field| match field {
                    IdField::Text(id) => Some(id.clone()),
                    IdField::Other => None,
                });
        Some(match given {
            Some(id) => format!(
                "its id {:?} cannot name a prompt in a request path",
                crate::api::decode::quoted(&id)
            ),
            None => "it has no string `id` or `prompt_id`".to_owned(),
        })
    }

    fn key(&self) -> Option<String> {
        self.id().map(str::to_owned)
    }
}

impl Listed for Version {
    fn key(&self) -> Option<String> {
        Some(self.number.to_string())
    }
}

/// A prompt of the whole account's listing, kept small: what tells it apart and what
/// the unmanaged report says of it, and its JSON text as received. The listing runs
/// while the files are read, before it is known which prompts they name; most of a
/// large account is prompts no file names, and each of those costs its text, not a
/// tree of JSON values. A prompt a file names is read in full from that text
/// (`crate::api::Client::full_prompt`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountPrompt {
    /// The identifier for paths ([`Prompt::id`]): every listed item has one.
    pub prompt_id: String,
    pub name: Option<String>,
    /// The live version's number.
    pub live_version: Option<u64>,
    /// The current (newest) version's number.
    pub current_version: Option<u64>,
    /// The item's JSON text.
    text: Box<str>,
    /// Why it cannot be used ([`Listed::unusable`]).
    unusable: Option<String>,
    /// The prompt as its page was read, while the page is finished, and after that
    /// when a pass had said by then that it wants it (`crate::api::InFull`).
    full: Option<Box<Prompt>>,
    /// The JSON values reading it in full built.
    values: u64,
}

impl AccountPrompt {
    /// The item's JSON text, as received.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The prompt read in full as its page arrived, if it was.
    pub(crate) fn full(&self) -> Option<&Prompt> {
        self.full.as_deref()
    }

    /// The prompt read in full as its page arrived, if it was, taken out.
    pub(crate) fn take_full(&mut self) -> Option<Prompt> {
        self.full.take().map(|full| *full)
    }

    pub(super) fn set_full(&mut self, prompt: Prompt) {
        self.full = Some(Box::new(prompt));
    }

    /// Drop the prompt read in full: only its facts and text are kept.
    pub(super) fn drop_full(&mut self) {
        self.full = None;
    }

    /// The JSON values reading it in full built.
    pub(super) fn values(&self) -> u64 {
        self.values
    }
}

impl<'de> Deserialize<'de> for AccountPrompt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        <AccountPrompt as Listed>::from_item(raw.get()).map_err(serde::de::Error::custom)
    }
}

impl Listed for AccountPrompt {
    fn identify(raw: &str) -> (Option<String>, Option<String>) {
        Prompt::identify(raw)
    }

    /// Read as a [`Prompt`] (so an item that does not read is refused as one), then
    /// kept as its facts and text, and as read until its page is finished (the
    /// account listing keeps the ones a pass wants, `crate::api::InFull`).
    fn from_item(text: &str) -> serde_json::Result<Self> {
        let before = super::decode::values_left();
        let prompt: Prompt = serde_json::from_str(text)?;
        let values = before
            .zip(super::decode::values_left())
            .map_or(0, |(before, after)| before.saturating_sub(after));
        let unusable = prompt.unusable();
        Ok(AccountPrompt {
            prompt_id: prompt.id().unwrap_or_default().to_owned(),
            name: prompt.name.clone(),
            live_version: prompt.live_version.as_ref().map(|v| v.number),
            current_version: prompt.current_version.as_ref().map(|v| v.number),
            // An item that cannot be used is not kept.
            text: if unusable.is_none() {
                text.into()
            } else {
                Box::default()
            },
            full: unusable.is_none().then(|| Box::new(prompt)),
            unusable,
            values,
        })
    }

    fn unusable(&self) -> Option<String> {
        self.unusable.clone()
    }

    fn key(&self) -> Option<String> {
        self.unusable.is_none().then(|| self.prompt_id.clone())
    }

    const KEEPS_VALUES: bool = false;
}

/// Every page of a list: the items read, those that could not be, and whether the
/// listing as a whole can be trusted to be complete.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub problems: Vec<ItemProblem>,
    /// Why the listing may be missing items (its pages disagree with the `count` the
    /// server gave): nothing may be taken as absent from it.
    pub untrusted: Option<String>,
    /// Every page it holds was asked for at once, in one round of requests, after its
    /// caller said it was time (page 1 read again with the others; see
    /// `crate::api::Client::list_account`).
    pub one_round: bool,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            items: Vec::new(),
            problems: Vec::new(),
            untrusted: None,
            one_round: false,
        }
    }
}

impl<T> Listing<T> {
    /// Add page `number` (1-based).
    pub fn add(&mut self, number: usize, page: Page<T>) {
        self.items.extend(page.results);
        self.problems
            .extend(page.problems.into_iter().map(|problem| ItemProblem {
                page: number,
                ..problem
            }));
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

impl BulkItem {}

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
    use serde::de::DeserializeSeed;
    Ok(
        match crate::api::decode::Bounded.deserialize(deserializer)? {
            Value::String(s) => s,
            other => other.to_string(),
        },
    )
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
        assert_eq!(
            p.unusable().as_deref(),
            Some("it has no string `id` or `prompt_id`")
        );
    }

    #[test]
    fn dot_ids_name_no_prompt() {
        for id in ["", ".", ".."] {
            assert!(!usable_id(id));
            let p: Prompt = serde_json::from_value(json!({"id": id, "name": "N"})).unwrap();
            assert_eq!(p.id(), None, "{id:?}");
            let reason = p.unusable().unwrap();
            assert!(
                reason.contains("cannot name a prompt in a request path"),
                "{reason}"
            );
            let raw = json!({"id": id, "name": "N"}).to_string();
            assert_eq!(Prompt::identify(&raw), (None, Some("N".to_owned())));
        }
        assert!(usable_id(".x") && usable_id("a..b") && usable_id("..."));
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
