//! The desired prompt of one valid file: its identity (`prompt_id`, else `name`) and
//! the version body to send, `content_file`s inlined as text. Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{DesiredPrompt, PromptKey};
use crate::api::types::{Message, MessageContent, VersionSpec};
use crate::prompt::format::{Content, PromptFile};

/// The desired prompt of one valid file (`prompt`, read from `path`), `texts` its
/// content files' text by message index. Pure.
pub fn desired_prompt(
    path: &str,
    prompt: &PromptFile,
    texts: &BTreeMap<usize, String>,
) -> DesiredPrompt {
    let key = match (&prompt.prompt_id, &prompt.name) {
        (Some(id), _) => PromptKey::Id(id.clone()),
        (None, Some(name)) => PromptKey::Name(name.clone()),
        // Validation refuses a file without either; keep the path as a last resort.
        (None, None) => PromptKey::Name(path.to_owned()),
    };
    DesiredPrompt::new(
        path.to_owned(),
        key,
        prompt.name.clone(),
        prompt.description.clone(),
        prompt.sync.unwrap_or(true),
        version_spec(prompt, texts),
    )
}

/// The version body for `prompt`, content files inlined as text.
pub fn version_spec(prompt: &PromptFile, texts: &BTreeMap<usize, String>) -> VersionSpec {
    let messages = prompt
        .messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let content = match (texts.get(&i), &message.content) {
                (Some(text), _) => MessageContent::Text(text.clone()),
                (None, Some(Content::Text(text))) => MessageContent::Text(text.clone()),
                (None, Some(Content::Parts(parts))) => {
                    MessageContent::Parts(parts.iter().map(to_value).collect())
                }
                (None, None) => MessageContent::Null,
            };
            let mut extra = Map::new();
            if let Some(name) = &message.name {
                extra.insert("name".to_owned(), Value::from(name.clone()));
            }
            if let Some(id) = &message.tool_call_id {
                extra.insert("tool_call_id".to_owned(), Value::from(id.clone()));
            }
            if let Some(calls) = &message.tool_calls {
                extra.insert("tool_calls".to_owned(), to_value(calls));
            }
            Message {
                role: message.role.as_str().to_owned(),
                content,
                extra,
            }
        })
        .collect();
    VersionSpec {
        description: None,
        messages,
        model: Some(prompt.model.clone()),
        thinking: boxed_object(&prompt.thinking),
        stream: prompt.stream,
        temperature: prompt.temperature,
        max_tokens: prompt.max_tokens,
        top_p: prompt.top_p,
        frequency_penalty: prompt.frequency_penalty,
        presence_penalty: prompt.presence_penalty,
        reasoning_effort: prompt.reasoning_effort.clone(),
        verbosity: prompt.verbosity.clone(),
        seed: prompt.seed,
        variables: prompt.variables.clone(),
        fallback_models: prompt.fallback_models.clone(),
        load_balance_models: prompt
            .load_balance_models
            .as_ref()
            .map(|models| models.iter().map(to_value).collect()),
        tools: prompt
            .tools
            .as_ref()
            .map(|tools| tools.iter().cloned().map(Value::Object).collect()),
        tool_choice: prompt
            .tool_choice
            .as_ref()
            .map(|choice| Box::new(to_value(choice))),
        response_format: boxed_object(&prompt.response_format),
        json_schema: boxed_object(&prompt.json_schema),
        is_enforcing_response_format: prompt.is_enforcing_response_format,
    }
}

/// An object the file gives, as the spec keeps it (boxed: few prompts set one).
fn boxed_object(object: &Option<Map<String, Value>>) -> Option<Box<Value>> {
    object.clone().map(|map| Box::new(Value::Object(map)))
}

/// One of the format's own types as JSON; they are plain data, so this cannot fail
/// (a failure would give `null`).
fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt;

    fn parsed(yaml: &str) -> PromptFile {
        let file = prompt::parse_file("prompts/a.prompt.yaml", yaml.as_bytes());
        *file
            .prompt
            .unwrap_or_else(|| panic!("{:?}", file.diagnostics))
    }

    #[test]
    fn the_id_is_the_key_and_content_files_replace_the_text() {
        let file = parsed(
            "prompt_id: p-1\nname: A\ndescription: About A\nmodel: gpt-4o\ntemperature: 0.2\nmessages:\n  - role: system\n    content_file: a.md\n  - role: user\n    name: bob\n    content: Hi\n",
        );
        let texts = BTreeMap::from([(0, "From the file".to_owned())]);
        let desired = desired_prompt("prompts/a.prompt.yaml", &file, &texts);
        assert_eq!(desired.path, "prompts/a.prompt.yaml");
        assert_eq!(desired.key, PromptKey::Id("p-1".into()));
        assert_eq!(desired.name.as_deref(), Some("A"));
        assert_eq!(desired.description.as_deref(), Some("About A"));
        assert!(desired.sync);
        let spec = &desired.spec;
        assert_eq!(spec.description, None, "the provenance line is added later");
        assert_eq!(spec.model.as_deref(), Some("gpt-4o"));
        assert_eq!(spec.temperature, Some(0.2));
        assert_eq!(spec.messages.len(), 2);
        assert_eq!(spec.messages[0].role, "system");
        assert_eq!(
            spec.messages[0].content,
            MessageContent::Text("From the file".into())
        );
        assert_eq!(spec.messages[1].content, MessageContent::Text("Hi".into()));
        assert_eq!(
            spec.messages[1].extra.get("name"),
            Some(&Value::from("bob"))
        );
    }

    #[test]
    fn a_name_alone_is_the_key_and_sync_false_is_kept() {
        let file = parsed(
            "name: B\nsync: false\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: Hi\n",
        );
        let desired = desired_prompt("b.prompt.yaml", &file, &BTreeMap::new());
        assert_eq!(desired.key, PromptKey::Name("B".into()));
        assert!(!desired.sync);
        assert_eq!(
            version_spec(&file, &BTreeMap::new()),
            VersionSpec::clone(&desired.spec)
        );
    }
}
