//! Terminal safety: text that came from outside (prompt content, file names, remote
//! versions, server error bodies) is escaped before it reaches a person's terminal, so
//! that a control character can never move the cursor, clear the screen or set the
//! window title. JSON output stays exact; only human output goes through here. Pure.
//!
//! Escapes are written the way Rust writes them (`\u{1b}`, `\r`), so the reader sees
//! that something is there and what it is. Bidirectional overrides (the "Trojan
//! Source" characters) are escaped too: they reorder what a terminal shows.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` for one line of output: every control character escaped, line breaks and
/// tabs included.
pub(crate) fn line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// `text` for a block of lines: line feeds and tabs kept, every other control
/// character escaped (a carriage return too: it would overwrite the line).
pub(crate) fn block(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

/// Whether `c` must not reach a terminal raw.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe(c) || keep(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(
            line("Support assistant — ünïcode"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(block("a\n\tb\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_and_osc_sequences_are_made_visible() {
        assert_eq!(line("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(
            line("\u{1b}]0;owned\u{7}title"),
            "\\u{1b}]0;owned\\u{7}title"
        );
        assert_eq!(line("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(line("del\u{7f}"), "del\\u{7f}");
    }

    #[test]
    fn lines_escape_breaks_and_blocks_keep_them() {
        assert_eq!(line("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(block("a\nb\tc\rd"), "a\nb\tc\\rd");
    }

    #[test]
    fn bidi_overrides_are_escaped() {
        assert_eq!(line("abc\u{202e}def"), "abc\\u{202e}def");
        assert_eq!(block("x\u{2066}y"), "x\\u{2066}y");
    }
}
