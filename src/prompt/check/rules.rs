//! The format's rules that the schema does not say (or not with a clear message): an
//! identity, names and ids that can be meant (no control character, not over
//! [`MAX_IDENTITY_CHARS`], an id that fits in a request path), `content` or
//! `content_file` but not both. On the untyped value, so that they are reported along
//! with the schema's findings. Pure, no I/O.

use serde_json::Value;

use super::Finding;

/// The format's rules that the schema does not express (or not with a clear message):
/// an identity, non-empty names, `content` or `content_file` but not both. Works on
/// the untyped value so that they are reported along with any schema findings.
pub(crate) fn rule_findings(value: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(root) = value.as_object() else {
        return out;
    };
    let text = |key: &str| root.get(key).and_then(Value::as_str);
    for key in ["prompt_id", "name", "model"] {
        if text(key).is_some_and(|value| value.trim().is_empty()) {
            out.push(Finding::at_value(
                format!("/{key}"),
                format!("`{key}` is empty"),
            ));
        }
    }
    // (An empty one was reported just above.)
    if let Some(id) = text("prompt_id").filter(|id| !id.trim().is_empty()) {
        out.extend(id_finding(id));
    }
    if let Some(name) = text("name").filter(|name| !name.trim().is_empty()) {
        out.extend(name_finding(name));
    }
    let identity_given = ["prompt_id", "name"]
        .iter()
        .any(|key| root.get(*key).is_some_and(|v| !v.is_null()));
    if !identity_given {
        out.push(
            Finding::at_value("", "the prompt has no identity: neither `prompt_id` nor `name` is given")
                .help("add `name: <prompt name>` (created remotely when no prompt has it) or `prompt_id: <Respan prompt id>`"),
        );
    }
    if let Some(messages) = root.get("messages").and_then(Value::as_array) {
        for (i, message) in messages.iter().enumerate() {
            let Some(message) = message.as_object() else {
                continue;
            };
            let file = message.get("content_file");
            if file.is_some_and(|f| !f.is_null())
                && message.get("content").is_some_and(|c| !c.is_null())
            {
                out.push(
                    Finding::at_key(
                        format!("/messages/{i}/content_file"),
                        format!("`messages[{i}]` has both `content` and `content_file`"),
                    )
                    .help("keep one: `content` for inline text, `content_file` for text kept in a file"),
                );
            }
            if file
                .and_then(Value::as_str)
                .is_some_and(|f| f.trim().is_empty())
            {
                out.push(Finding::at_value(
                    format!("/messages/{i}/content_file"),
                    format!("`messages[{i}].content_file` is empty"),
                ));
            }
        }
    }
    out
}

/// The longest `prompt_id` or `name` accepted, in characters.
pub(super) const MAX_IDENTITY_CHARS: usize = 256;

/// A `prompt_id` that cannot be a Respan id: the API's ids are short hex strings, and an
/// id is put in request paths, so a `/`, `..`, whitespace or a control character is never
/// part of one, and `.` is never one.
fn id_finding(id: &str) -> Option<Finding> {
    let problem = if let Some(problem) = control_character(id) {
        problem
    } else if id.chars().any(char::is_whitespace) {
        "contains whitespace".to_owned()
    } else if id.contains('/') {
        "contains `/`".to_owned()
    } else if id.contains("..") {
        "contains `..`".to_owned()
    } else if id == "." {
        "is `.`, which a URL reads as the directory it is in".to_owned()
    } else {
        too_long(id)?
    };
    Some(
        Finding::at_value("/prompt_id", format!("`prompt_id` {problem}; it cannot be a Respan prompt id"))
            .help("copy the id from Respan (a short hex string such as `4f7c2a9e1b`), or leave `prompt_id` out and identify the prompt by `name`"),
    )
}

/// A `name` that cannot be meant: names are free text, but not control characters (a
/// line break, an escape sequence) and not pages long.
fn name_finding(name: &str) -> Option<Finding> {
    let problem = control_character(name).or_else(|| too_long(name))?;
    Some(
        Finding::at_value("/name", format!("`name` {problem}"))
            .help("a prompt name is one line of text; put longer text in `description`"),
    )
}

/// `contains the control character `\u{1b}``, when `text` holds one.
fn control_character(text: &str) -> Option<String> {
    let c = text.chars().find(|c| c.is_control())?;
    Some(format!(
        "contains the control character `{}`",
        c.escape_debug()
    ))
}

/// `is 300 characters long, over the limit of 256`, when it is.
fn too_long(text: &str) -> Option<String> {
    let chars = text.chars().count();
    (chars > MAX_IDENTITY_CHARS)
        .then(|| format!("is {chars} characters long, over the limit of {MAX_IDENTITY_CHARS}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::check::tests::messages;
    use serde_json::json;

    #[test]
    fn identity_and_content_rules() {
        let value = json!({"model": "m", "name": " ", "messages": [
            {"role": "user", "content": "a", "content_file": "a.md"},
            {"role": "user", "content_file": ""},
        ]});
        assert_eq!(
            messages(&rule_findings(&value)),
            vec![
                ("/name".into(), "`name` is empty".into()),
                (
                    "/messages/0/content_file".into(),
                    "`messages[0]` has both `content` and `content_file`".into()
                ),
                (
                    "/messages/1/content_file".into(),
                    "`messages[1].content_file` is empty".into()
                ),
            ]
        );
        let value = json!({"model": "m", "messages": []});
        assert_eq!(
            messages(&rule_findings(&value)),
            vec![(
                "".into(),
                "the prompt has no identity: neither `prompt_id` nor `name` is given".into()
            )]
        );
    }

    #[test]
    fn identities_that_cannot_be_valid() {
        let long = "a".repeat(MAX_IDENTITY_CHARS + 1);
        let cases = [
            (
                "prm/../x",
                "`prompt_id` contains `/`; it cannot be a Respan prompt id",
            ),
            (
                "a..b",
                "`prompt_id` contains `..`; it cannot be a Respan prompt id",
            ),
            (
                "..",
                "`prompt_id` contains `..`; it cannot be a Respan prompt id",
            ),
            (
                ".",
                "`prompt_id` is `.`, which a URL reads as the directory it is in; it cannot be a Respan prompt id",
            ),
            (
                "abc def",
                "`prompt_id` contains whitespace; it cannot be a Respan prompt id",
            ),
            (
                "abc\u{1b}[2J",
                "`prompt_id` contains the control character `\\u{1b}`; it cannot be a Respan prompt id",
            ),
            (
                long.as_str(),
                "`prompt_id` is 257 characters long, over the limit of 256; it cannot be a Respan prompt id",
            ),
        ];
        for (id, expected) in cases {
            let value = json!({"prompt_id": id, "model": "m", "messages": []});
            assert_eq!(
                messages(&rule_findings(&value)),
                [("/prompt_id".to_owned(), expected.to_owned())],
                "{id}"
            );
        }
        let value =
            json!({"prompt_id": "4f7c2a9e1b", "name": "Support — ünïcode 2024", "model": "m"});
        assert_eq!(rule_findings(&value), []);
        let value = json!({"name": "two\nlines", "model": "m"});
        assert_eq!(
            messages(&rule_findings(&value)),
            [(
                "/name".to_owned(),
                "`name` contains the control character `\\n`".to_owned()
            )]
        );
        let value = json!({"name": long, "model": "m"});
        assert_eq!(
            messages(&rule_findings(&value)),
            [(
                "/name".to_owned(),
                "`name` is 257 characters long, over the limit of 256".to_owned()
            )]
        );
    }
}
