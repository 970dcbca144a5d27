//! `{{variable}}` placeholders in message text, compared with the declared
//! `variables`: a placeholder nobody declared, or a declared variable no message uses,
//! is a warning. Understands the plain `{{name}}` form and enough of Jinja
//! (`{{ name.field | filter }}`, `{% for x in items %}`, `{% if flag %}`,
//! `{% set x = ... %}`) not to warn about loop and local names. Pure, no I/O.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use super::check::Finding;
use crate::excerpt;

/// The variables a template reads, in order of first use, without its local names.
/// Linear in the text: each name is looked up in a set, never in the list so far.
pub(crate) fn placeholders(text: &str) -> Vec<String> {
    let mut used = Used::default();
    let mut locals: BTreeSet<String> = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find(['{']) {
        let tail = &rest[start..];
        let (close, is_block) = if tail.starts_with("{{") {
            ("}}", false)
        } else if tail.starts_with("{%") {
            ("%}", true)
        } else {
            rest = &tail[1..];
            continue;
        };
        let Some(end) = tail[2..].find(close) else {
            break;
        };
        let inner =
            tail[2..2 + end].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if is_block {
            block(inner, &mut used, &mut locals);
        } else if let Some(name) = leading_identifier(inner) {
            push_use(&mut used, &locals, name);
        }
        rest = &tail[2 + end + close.len()..];
    }
    used.order
}

/// The names used so far: in order, and as a set.
#[derive(Default)]
struct Used {
    order: Vec<String>,
    seen: HashSet<String>,
}

fn block(inner: &str, used: &mut Used, locals: &mut BTreeSet<String>) {
    let mut words = inner.split_whitespace();
    match words.next() {
        Some("for") => {
            let head: Vec<&str> = words.collect();
            let Some(in_at) = head.iter().position(|w| *w == "in") else {
                return;
            };
            for local in head[..in_at].join(" ").split(',') {
                if let Some(name) = leading_identifier(local.trim()) {
                    locals.insert(name.to_owned());
                }
            }
            if let Some(name) = head.get(in_at + 1).and_then(|w| leading_identifier(w)) {
                push_use(used, locals, name);
            }
        }
        Some("if" | "elif") => {
            let mut condition = words.filter(|w| *w != "not");
            if let Some(name) = condition.next().and_then(leading_identifier) {
                push_use(used, locals, name);
            }
        }
        Some("set") => {
            if let Some(name) = words.next().and_then(leading_identifier) {
                locals.insert(name.to_owned());
            }
        }
        _ => {}
    }
}

fn push_use(used: &mut Used, locals: &BTreeSet<String>, name: &str) {
    const KEYWORDS: [&str; 6] = ["true", "false", "none", "True", "False", "None"];
    if locals.contains(name) || KEYWORDS.contains(&name) || used.seen.contains(name) {
        return;
    }
    used.seen.insert(name.to_owned());
    used.order.push(name.to_owned());
}

/// The identifier at the start of `text` (`a_b` of `a_b.c | upper`).
fn leading_identifier(text: &str) -> Option<&str> {
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(text.len(), |(i, _)| i);
    let name = &text[..end];
    let first = name.chars().next()?;
    (first.is_alphabetic() || first == '_').then_some(name)
}

/// Warnings: placeholders no `variables` entry declares, and declared variables no
/// message uses. Read from the file's untyped value, so that a file with errors gets
/// them too; linear in the text (each name looked up in a set).
pub(crate) fn findings(value: &Value, texts: &BTreeMap<usize, String>) -> Vec<Finding> {
    let declared: BTreeSet<&str> = value
        .get("variables")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|variables| variables.keys().map(String::as_str))
        .collect();
    let messages = value
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let mut used = BTreeSet::new();
    let mut findings = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let content = message.get("content");
        let (text, pointer) = match (texts.get(&i), content) {
            (Some(text), _) => (text.clone(), format!("/messages/{i}/content_file")),
            (None, Some(Value::String(text))) => (text.clone(), format!("/messages/{i}/content")),
            (None, Some(Value::Array(parts))) => {
                let text: Vec<&str> = parts
                    .iter()
                    .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|part| part.get("text").and_then(Value::as_str))
                    .collect();
                (text.join("\n"), format!("/messages/{i}/content"))
            }
            _ => continue,
        };
        for name in placeholders(&text) {
            if !declared.contains(name.as_str()) && !used.contains(&name) {
                let shown = excerpt::excerpt(&name);
                findings.push(Finding {
                    pointer: pointer.clone(),
                    at_key: false,
                    message: format!(
                        "`{{{{{shown}}}}}` in `messages[{i}]` is not declared under `variables`"
                    ),
                    help: Some(format!(
                        "declare it with an example value: `variables: {{{shown}: ...}}`"
                    )),
                });
            }
            used.insert(name);
        }
    }
    for name in declared {
        if !used.contains(name) {
            let mut pointer = "/variables/".to_owned();
            super::yaml::push_escaped(&mut pointer, name);
            let shown = excerpt::excerpt(name);
            findings.push(Finding {
                pointer,
                at_key: true,
                message: format!(
                    "variable {} is declared but no message uses it",
                    excerpt::quoted(name)
                ),
                help: Some(format!(
                    "use it as `{{{{{shown}}}}}` in a message, or remove it"
                )),
            });
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(value: serde_json::Value, texts: &[(usize, &str)]) -> Vec<(String, String)> {
        let texts = texts.iter().map(|(i, t)| (*i, (*t).to_owned())).collect();
        findings(&value, &texts)
            .into_iter()
            .map(|finding| (finding.pointer, finding.message))
            .collect()
    }

    #[test]
    fn undeclared_and_unused_variables_are_warned_about_once_each() {
        let value = serde_json::json!({
            "variables": {"topic": "x", "unused": "y"},
            "messages": [
                {"role": "system", "content": "About {{topic}} for {{who}}"},
                {"role": "user", "content": [{"type": "text", "text": "{{who}} again"}]},
            ],
        });
        assert_eq!(
            warnings(value, &[]),
            [
                (
                    "/messages/0/content".to_owned(),
                    "`{{who}}` in `messages[0]` is not declared under `variables`".to_owned()
                ),
                (
                    "/variables/unused".to_owned(),
                    "variable `unused` is declared but no message uses it".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_content_files_text_is_what_is_checked() {
        let value = serde_json::json!({
            "variables": {"a/b": "x"},
            "messages": [{"role": "system", "content_file": "a.md"}],
        });
        assert_eq!(
            warnings(value, &[(0, "{{other}}")]),
            [
                (
                    "/messages/0/content_file".to_owned(),
                    "`{{other}}` in `messages[0]` is not declared under `variables`".to_owned()
                ),
                (
                    "/variables/a~1b".to_owned(),
                    "variable `a/b` is declared but no message uses it".to_owned()
                ),
            ]
        );
        assert!(warnings(serde_json::Value::Null, &[]).is_empty());
    }

    #[test]
    fn plain_placeholders() {
        assert_eq!(
            placeholders("Hi {{name}}, about {{ topic }} and {{name}} again"),
            ["name", "topic"]
        );
        assert_eq!(
            placeholders("no placeholders { here }"),
            Vec::<String>::new()
        );
        assert_eq!(placeholders("{{ unclosed"), Vec::<String>::new());
        assert_eq!(placeholders("{{ 42 }} {{ \"lit\" }}"), Vec::<String>::new());
    }

    #[test]
    fn jinja_forms() {
        assert_eq!(
            placeholders("{{- input.key | upper -}} {% if not flag %}x{% endif %}"),
            ["input", "flag"]
        );
        assert_eq!(
            placeholders("{% for k, v in pairs %}{{ k }}={{ v }} {{ sep }}{% endfor %}"),
            ["pairs", "sep"]
        );
        assert_eq!(
            placeholders("{% set x = 1 %}{{ x }}{{ true }}"),
            Vec::<String>::new()
        );
    }

    /// Each name is looked up in a set: 200,000 distinct names take a moment, where a
    /// scan of the names so far for each (20 billion comparisons) takes minutes.
    #[test]
    fn many_distinct_names_take_linear_time() {
        let text: String = (0..200_000).map(|i| format!("{{{{v{i}}}}}")).collect();
        let started = std::time::Instant::now();
        let names = placeholders(&text);
        assert_eq!(names.len(), 200_000);
        assert_eq!(names[199_999], "v199999");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn unicode_is_fine() {
        assert_eq!(placeholders("héllo {{ café }} ✓"), ["café"]);
    }
}
