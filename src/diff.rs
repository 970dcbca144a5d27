//! Human-readable unified diffs of version content, made with `similar`. Content is
//! rendered in a stable YAML-like layout (one field per line, multi-line message text
//! as blocks, JSON objects spread over lines) so that the diff points at the line that
//! changed. Fields at their API default on both sides are left out. Differences a
//! terminal would not show are made visible: one-line text is quoted, trailing spaces
//! and tabs in a block show as `·` and `→`, a block without a newline at its end gets
//! git's `\ No newline at end of text` line, and control characters are escaped
//! ([`term::block`]). Pure, no I/O.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use similar::TextDiff;

use crate::normalize::{CONTENT_FIELDS, canonical, is_default};
use crate::term;

/// The line after a block of text that does not end with a newline.
const NO_NEWLINE: &str = "\\ No newline at end of text";

/// A unified diff from `before` (the remote version's fields; `None` for a new prompt)
/// to `after` (the desired fields). Empty when they render the same.
pub(crate) fn unified(
    before: Option<&Map<String, Value>>,
    after: &Map<String, Value>,
    labels: (&str, &str),
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
        .header(&term::line(labels.0), &term::line(labels.1))
        .to_string();
    term::block(&text).into_owned()
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
            Value::String(text) if text.contains('\n') => {
                let _ = writeln!(out, "    {key}: |");
                text_block(out, text, "      ");
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

/// Multi-line text as an indented block, each line as it is but for its trailing
/// spaces and tabs (shown as `·` and `→`), and [`NO_NEWLINE`] after a last line that
/// has no newline.
fn text_block(out: &mut String, text: &str, prefix: &str) {
    for segment in text.split_inclusive('\n') {
        let (line, ended) = match segment.strip_suffix('\n') {
            Some(line) => (line, true),
            None => (segment, false),
        };
        let body = line.trim_end_matches([' ', '\t']);
        out.push_str(prefix);
        out.push_str(body);
        out.extend(
            line[body.len()..]
                .chars()
                .map(|c| if c == '\t' { '→' } else { '·' }),
        );
        out.push('\n');
        if !ended {
            out.push_str(prefix);
            out.push_str(NO_NEWLINE);
            out.push('\n');
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

/// `diff` (from [`unified`] without colour) with ANSI colours for a terminal.
pub(crate) fn paint(diff: &str) -> String {
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
        );
        assert_eq!(
            diff,
            "\
--- remote v3
+++ prompts/a.prompt.yaml
@@ -3,6 +3,6 @@
   - role: system
     content: |
       You help.
-      Be brief.
+      Be thorough.
       \\ No newline at end of text
-temperature: 0.7
+temperature: 0.2
"
        );
    }

    fn message(content: &str) -> Map<String, Value> {
        fields(json!({"model": "m", "messages": [{"role": "user", "content": content}]}))
    }

    #[test]
    fn whitespace_only_changes_are_visible() {
        let diff = |a: &str, b: &str| unified(Some(&message(a)), &message(b), ("a", "b"));
        // A newline added at the end of a one-line message.
        let added = diff("Hello.", "Hello.\n");
        assert!(
            added.contains("-    content: \"Hello.\"\n+    content: |\n+      Hello.\n"),
            "{added}"
        );
        // ... and at the end of a block.
        let ended = diff("Hi.\nBye.", "Hi.\nBye.\n");
        assert!(
            ended.contains("       Bye.\n-      \\ No newline at end of text\n"),
            "{ended}"
        );
        // Trailing spaces and tabs, inside a block and on a one-line text.
        let trailing = diff("Hi.\nBye.\n", "Hi.  \nBye.\t\n");
        assert!(
            trailing.contains("+      Hi.··\n+      Bye.→\n"),
            "{trailing}"
        );
        assert!(diff("Hi.", "Hi. ").contains("+    content: \"Hi. \"\n"));
        // A carriage return before the newline.
        let cr = diff("Hi.\nBye.\n", "Hi.\r\nBye.\n");
        assert!(cr.contains("+      Hi.\\r\n"), "{cr}");
        // Every one of them is a change that shows.
        for (a, b) in [
            ("x", "x\n"),
            ("x\ny", "x\ny\n"),
            ("x\n", "x\n\n"),
            ("x\n", " x\n"),
        ] {
            assert!(!diff(a, b).is_empty(), "{a:?} -> {b:?}");
        }
    }

    #[test]
    fn control_characters_never_reach_the_terminal_raw() {
        let evil = "Title \u{1b}]0;owned\u{7}\nclear \u{1b}[2J\n";
        let diff = unified(
            None,
            &message(evil),
            ("(none)", "prompts/\u{1b}[31mred.prompt.yaml"),
        );
        assert!(
            !diff.contains('\u{1b}') && !diff.contains('\u{7}'),
            "{diff:?}"
        );
        assert!(
            diff.contains("+      Title \\u{1b}]0;owned\\u{7}\n"),
            "{diff}"
        );
        assert!(
            diff.contains("+++ prompts/\\u{1b}[31mred.prompt.yaml\n"),
            "{diff}"
        );
        let one_line = unified(None, &message("\u{1b}[2J"), ("a", "b"));
        assert!(!one_line.contains('\u{1b}'), "{one_line:?}");
    }

    #[test]
    fn defaults_on_both_sides_are_left_out_and_equal_content_has_no_diff() {
        let a = fields(json!({"model": "m", "messages": [], "stream": false}));
        let b = fields(json!({"model": "m", "messages": [], "top_p": 1.0}));
        assert_eq!(unified(Some(&a), &b, ("a", "b")), "");
    }

    #[test]
    fn a_new_prompt_diffs_against_nothing() {
        let after = fields(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]}),
        );
        let diff = unified(None, &after, ("(none)", "new"));
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
        let diff = paint(&unified(Some(&a), &b, ("x", "y")));
        assert!(diff.contains("\u{1b}["), "{diff:?}");
    }
}
