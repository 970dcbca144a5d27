//! The prompt file format, version 1, as Rust types. These types are the single
//! source of the format: serde reads files into them, schemars turns them into the
//! JSON Schema that editors use and that validation checks files against. Pure, no I/O.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A promptsync prompt file (format version 1): one prompt, identified by `prompt_id`
/// or `name`, and the content of its version as the Respan API stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "promptsync prompt file (format version 1)")]
pub struct PromptFile {
    /// The Respan prompt id. When absent, the prompt is found by `name` (and created
    /// when no remote prompt has that name).
    #[serde(default)]
    pub prompt_id: Option<String>,

    /// The prompt's name (prompt-level metadata). Identifies the prompt when
    /// `prompt_id` is absent.
    #[serde(default)]
    pub name: Option<String>,

    /// The prompt's description (prompt-level metadata, not a version field).
    #[serde(default)]
    pub description: Option<String>,

    /// `false`: the file is validated but never sent. Default `true`.
    #[serde(default)]
    pub sync: Option<bool>,

    /// The chat messages of the prompt version; at least one.
    #[schemars(length(min = 1))]
    pub messages: Vec<FileMessage>,

    /// The model the version runs on, e.g. `gpt-4o`.
    pub model: String,

    /// Provider-specific reasoning configuration.
    #[serde(default)]
    pub thinking: Option<Map<String, Value>>,

    /// Stream the response. API default `false`.
    #[serde(default)]
    pub stream: Option<bool>,

    /// Sampling temperature, 0 to 2. API default 0.7.
    #[serde(default)]
    #[schemars(range(min = 0, max = 2))]
    pub temperature: Option<f64>,

    /// Maximum tokens to generate, at least 1. API default 4096.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<i64>,

    /// Nucleus sampling, 0 to 1. API default 1.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1))]
    pub top_p: Option<f64>,

    /// Frequency penalty, -2 to 2. API default 0.
    #[serde(default)]
    #[schemars(range(min = -2, max = 2))]
    pub frequency_penalty: Option<f64>,

    /// Presence penalty, -2 to 2. API default 0.
    #[serde(default)]
    #[schemars(range(min = -2, max = 2))]
    pub presence_penalty: Option<f64>,

    /// Reasoning effort for reasoning models, e.g. `low`, `medium`, `high`.
    #[serde(default)]
    pub reasoning_effort: Option<String>,

    /// Output verbosity, where the model supports it.
    #[serde(default)]
    pub verbosity: Option<String>,

    /// Seed for reproducible sampling.
    #[serde(default)]
    pub seed: Option<i64>,

    /// Template variables used as `{{name}}` in messages, mapped to their default or
    /// example values.
    #[serde(default)]
    pub variables: Option<Map<String, Value>>,

    /// Models to try, in order, when the main model fails.
    #[serde(default)]
    pub fallback_models: Option<Vec<String>>,

    /// Models to spread requests over, by weight.
    #[serde(default)]
    pub load_balance_models: Option<Vec<LoadBalanceModel>>,

    /// Tools (OpenAI function-tool objects) the model may call.
    #[serde(default)]
    pub tools: Option<Vec<Map<String, Value>>>,

    /// `auto`, `none`, `required`, or an object naming a tool.
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,

    /// The response format object (e.g. `{type: json_schema, json_schema: {...}}`).
    #[serde(default)]
    pub response_format: Option<Map<String, Value>>,

    /// A JSON Schema for structured output.
    #[serde(default)]
    pub json_schema: Option<Map<String, Value>>,

    /// Enforce `response_format`. API default `false`.
    #[serde(default)]
    pub is_enforcing_response_format: Option<bool>,
}

/// One chat message. Its text is `content`, or the contents of `content_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileMessage {
    /// Who speaks.
    pub role: Role,

    /// The text, a list of content parts, or null.
    #[serde(default)]
    pub content: Option<Content>,

    /// A file holding the message text, relative to this prompt file; it must stay
    /// inside the repository. Not allowed together with `content`.
    #[serde(default)]
    pub content_file: Option<String>,

    /// Name of the participant.
    #[serde(default)]
    pub name: Option<String>,

    /// The tool call this message answers (role `tool`).
    #[serde(default)]
    pub tool_call_id: Option<String>,

    /// Tool calls made by an assistant message.
    #[serde(default)]
    pub tool_calls: Option<Vec<Map<String, Value>>>,
}

/// A message role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
    Developer,
    None,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Developer => "developer",
            Role::None => "none",
        }
    }
}

/// A message's content: text or a list of content parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One content part, tagged by `type` (`text`, `image_url`, `file`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContentPart {
    /// The part's kind, e.g. `text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The part's other keys, as the API expects them (`text`, `image_url`, ...).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// One entry of `load_balance_models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalanceModel {
    pub model: String,
    /// Relative share of requests, 0 or more.
    #[schemars(range(min = 0))]
    pub weight: f64,
    /// Provider credentials for this model, when it needs its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Map<String, Value>>,
}

/// `tool_choice`: a mode name or an object naming a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ToolChoice {
    Mode(ToolChoiceMode),
    /// E.g. `{type: function, function: {name: lookup}}`.
    Tool(Map<String, Value>),
}

/// The named `tool_choice` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceMode {
    Auto,
    None,
    Required,
}
