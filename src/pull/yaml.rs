//! YAML text from JSON values, written so that YAML reads each back as the same value:
//! `key: value` entries and `- item` lists at an indent, strings plain only where no
//! YAML schema could read them as anything else (else double-quoted), long or
//! multi-line text as a literal block with the chomping its trailing newlines need.
//! Knows nothing about prompts: which fields are written, in which order, is `pull`'s.

use std::fmt::Write as _;

use serde_json::Value;

/// Message text longer than this (or with a line break) is written as a block.
const BLOCK_FROM: usize = 80;

/// `key: value` at `indent`, the value a scalar on the line or a block below it.
pub(super) fn entry(out: &mut String, indent: usize, key: &str, value: &Value) {
    pad(out, indent);
    entry_at(out, indent, key, value, false);
}

/// [`entry`] without the leading indent (already written); nested lines at `indent`.
pub(super) fn entry_at(out: &mut String, indent: usize, key: &str, value: &Value, _in_item: bool) {
    let key = yaml_key(key);
    match value {
        Value::Object(map) if !map.is_empty() => {
            let _ = writeln!(out, "{key}:");
            for (k, v) in map {
                entry(out, indent + 2, k, v);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let _ = writeln!(out, "{key}:");
            for item in items {
                item_line(out, indent + 2, item);
            }
        }
        scalar => {
            let _ = writeln!(out, "{key}: {}", scalar_text(scalar));
        }
    }
}

/// One `- item` of a list at `indent`.
fn item_line(out: &mut String, indent: usize, item: &Value) {
    pad(out, indent);
    match item {
        Value::Object(map) if !map.is_empty() => {
            let mut first = true;
            for (k, v) in map {
                if first {
                    out.push_str("- ");
                    first = false;
                } else {
                    pad(out, indent + 2);
                }
                entry_at(out, indent + 2, k, v, true);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("-\n");
            for inner in items {
                item_line(out, indent + 2, inner);
            }
        }
        scalar => {
            let _ = writeln!(out, "- {}", scalar_text(scalar));
        }
    }
}

/// Message text: a literal block when it is long or multi-line and a block can carry
/// it exactly, else a double-quoted scalar.
pub(super) fn text_entry(out: &mut String, indent: usize, key: &str, text: &str) {
    let wants_block = text.contains('\n') || text.chars().count() > BLOCK_FROM;
    match block(text, indent + 2) {
        Some(block) if wants_block => {
            let _ = write!(out, "{key}: {block}");
        }
        _ => {
            let _ = writeln!(out, "{key}: {}", quoted(text));
        }
    }
}

/// `text` as a literal block scalar (header and lines, each line indented), when one
/// holds it exactly: printable characters and line feeds only, at least one line with
/// something on it, no line starting with a tab.
fn block(text: &str, indent: usize) -> Option<String> {
    let printable = text
        .chars()
        .all(|c| c == '\n' || (!c.is_control() && c != '\u{feff}'));
    if !printable || text.trim().is_empty() {
        return None;
    }
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let first = body.lines().next().unwrap_or_default();
    if first.starts_with(' ') || body.lines().any(|l| l.starts_with('\t')) {
        // An indentation indicator would do for leading spaces; a quoted string is
        // simpler to trust.
        return None;
    }
    let mut out = format!("|{chomp}\n");
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(&mut out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    Some(out)
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar as YAML: strings plain when YAML reads them back as the same string, else
/// double-quoted (JSON escapes are YAML escapes); numbers, booleans and null as they
/// are; empty lists and mappings in flow style.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) if plain_ok(text) => text.clone(),
        Value::String(text) => quoted(text),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
        other => other.to_string(),
    }
}

pub(super) fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Whether `text` written plain reads back as the same string, in any YAML schema:
/// a letter first, then letters, digits and a few safe marks, no indicator that could
/// start a comment, a mapping or a flow, and not a word YAML 1.1 takes for a boolean.
fn plain_ok(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ' | '+'))
        && !text.ends_with(' ')
        && !text.contains("  ")
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true"
                | "false"
                | "null"
                | "yes"
                | "no"
                | "on"
                | "off"
                | "y"
                | "n"
                | "inf"
                | "nan"
                | "infinity"
        )
}

/// A mapping key: plain when YAML reads it back as the same string, else quoted.
fn yaml_key(key: &str) -> String {
    if plain_ok(key) && !key.contains(' ') {
        key.to_owned()
    } else {
        quoted(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `value` under `key` as YAML, read back by a YAML parser.
    fn read_back(key: &str, value: &Value) -> Value {
        let mut out = String::new();
        entry(&mut out, 0, key, value);
        let read: Value = serde_saphyr::from_str(&out).unwrap();
        read[key].clone()
    }

    #[test]
    fn nested_values_read_back_as_written() {
        let value = json!({
            "a b": [1, 2.5, true, null, "yes", "0123", "plain text", {"k": "v", "x": []}],
            "empty": {},
            "nested": [[1, 2], ["-", "# no comment"]],
        });
        assert_eq!(read_back("v", &value), value);
    }

    #[test]
    fn strings_are_plain_only_where_no_schema_reads_them_otherwise() {
        for plain in ["gpt-4o", "a/b.c+d", "two words"] {
            assert_eq!(scalar_text(&json!(plain)), plain);
        }
        for other in ["yes", "Off", "2024", "x: y", "a  b", "trailing ", "-x", ""] {
            assert_eq!(scalar_text(&json!(other)), quoted(other), "{other}");
        }
        assert_eq!(yaml_key("two words"), "\"two words\"");
    }

    #[test]
    fn a_block_keeps_trailing_newlines_with_its_chomping() {
        assert_eq!(block("a\nb", 2).as_deref(), Some("|-\n  a\n  b\n"));
        assert_eq!(block("a\n", 2).as_deref(), Some("|\n  a\n"));
        assert_eq!(block("a\n\n", 2).as_deref(), Some("|+\n  a\n\n"));
        assert_eq!(block("  indented", 2), None);
        assert_eq!(block("bell \u{7}", 2), None);
        let mut out = String::new();
        text_entry(&mut out, 0, "t", "short");
        assert_eq!(out, "t: \"short\"\n");
    }
}
