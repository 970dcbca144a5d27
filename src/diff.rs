//! Human-readable unified diffs of version content, made with `similar`. Content is
//! rendered in a stable YAML-like layout (one field per line, messages as blocks, JSON
//! objects spread over lines) so that the diff points at the line that changed. Fields
//! at their API default on both sides are left out. Pure, no I/O.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use similar::TextDiff;

use crate::normalize::{CONTENT_FIELDS, canonical, is_default};

/// A unified diff from `before` (the remote version's fields; `None` for a new prompt)
/// to `after` (the desired fields). Empty when they render the same.
pub fn unified(
    before: Option<&Map<String, Value>>,
    after: &Map<String, Value>,
    labels: (&str, &str),
    color: bool,
) -> String {
    let before = before.map(canonical);
    let after = canonical(after);
    let shown: Vec<&str> = CONTENT_FIELDS
        .iter()
        .copied()
        .filter(|f| {
            !is_default(f, &after[*f]) || before.as_ref().is_some_and(|b| !is_default(f, &b[*f]))
        })
        .collect();
    let old = before.map(|b| render(&b, &shown)).unwrap_or_default();
    let new = render(&after, &shown);
    if old == new {
        return String::new();
    }
    let text = TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(labels.0, labels.1)
        .to_string();
    if color { paint(&text) } else { text }
}

/// The fields in `shown`, one per line; messages and objects as indented blocks.
fn render(fields: &Map<String, Value>, shown: &[&str]) -> String {
    let mut out = String::new();
    for &field in shown {
        let value = &fields[field];
        match (field, value) {
            ("messages", Value::Array(messages)) => {
                out.push_str("messages:\n");
                for message in messages {
                    render_message(&mut out, message);
                }
            }
            (_, Value::Object(_) | Value::Array(_)) => {
                let _ = writeln!(out, "{field}:");
                indent(&mut out, &pretty(value), "  ");
            }
            (_, scalar) => {
                let _ = writeln!(out, "{field}: {scalar}");
            }
        }
    }
    out
}

fn render_message(out: &mut String, message: &Value) {
    let Value::Object(message) = message else {
        let _ = writeln!(out, "  - {message}");
        return;
    };
    let role = message.get("role").and_then(Value::as_str).unwrap_or("?");
    let _ = writeln!(out, "  - role: {role}");
    for (key, value) in message {
        if key == "role" {
            continue;
        }
        match value {
            Value::String(text) if text.contains('\n') || key == "content" => {
                let _ = writeln!(out, "    {key}: |");
                indent(out, text, "      ");
                if text.is_empty() {
                    out.push_str("      \n");
                }
            }
            Value::Object(_) | Value::Array(_) => {
                let _ = writeln!(out, "    {key}:");
                indent(out, &pretty(value), "      ");
            }
            scalar => {
                let _ = writeln!(out, "    {key}: {scalar}");
            }
        }
    }
}

fn indent(out: &mut String, text: &str, prefix: &str) {
    for line in text.lines() {
        out.push_str(prefix);
        out.push_str(line);
        out.push('\n');
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn paint(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() + 64);
    for line in diff.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let styled = if body.starts_with("+++") || body.starts_with("---") {
            console::style(body).bold().to_string()
        } else if body.starts_with('+') {
            console::style(body).green().to_string()
        } else if body.starts_with('-') {
            console::style(body).red().to_string()
        } else if body.starts_with("@@") {
            console::style(body).cyan().to_string()
        } else {
            body.to_owned()
        };
        out.push_str(&styled);
        out.push_str(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_changed_line_of_a_message_shows_as_that_line() {
        let before = fields(json!({
            "model": "gpt-4o",
            "messages": [{"role": "system", "content": "You help.\nBe brief."}],
            "temperature": 0.7
        }));
        let after = fields(json!({
            "model": "gpt-4o",
            "messages": [{"role": "system", "content": "You help.\nBe thorough."}],
            "temperature": 0.2
        }));
        let diff = unified(
            Some(&before),
            &after,
            ("remote v3", "prompts/a.prompt.yaml"),
            false,
        );
        assert_eq!(
            diff,
            "\
--- remote v3
+++ prompts/a.prompt.yaml
@@ -3,5 +3,5 @@
   - role: system
     content: |
       You help.
-      Be brief.
-temperature: 0.7
+      Be thorough.
+temperature: 0.2
"
        );
    }

    #[test]
    fn defaults_on_both_sides_are_left_out_and_equal_content_has_no_diff() {
        let a = fields(json!({"model": "m", "messages": [], "stream": false}));
        let b = fields(json!({"model": "m", "messages": [], "top_p": 1.0}));
        assert_eq!(unified(Some(&a), &b, ("a", "b"), false), "");
    }

    #[test]
    fn a_new_prompt_diffs_against_nothing() {
        let after = fields(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]}),
        );
        let diff = unified(None, &after, ("(none)", "new"), false);
        assert!(
            diff.starts_with("--- (none)\n+++ new\n@@ -0,0 +1,"),
            "{diff}"
        );
        assert!(diff.contains("+model: \"m\"\n"), "{diff}");
        assert!(!diff.contains("\n-"), "{diff}");
        assert!(diff.contains("\"name\": \"f\""), "{diff}");
    }

    #[test]
    fn colour_marks_added_and_removed_lines() {
        console::set_colors_enabled(true);
        let a = fields(json!({"model": "a", "messages": []}));
        let b = fields(json!({"model": "b", "messages": []}));
        let diff = unified(Some(&a), &b, ("x", "y"), true);
        assert!(diff.contains("\u{1b}["), "{diff:?}");
    }
}
