//! A finding rendered like a compiler's: the location, the source line (escaped for
//! the terminal, cut to a window around the column when long), a caret under the
//! token, the help line, colours only when asked. Presentation only: what a finding
//! says is [`Diagnostic`]'s.

use std::fmt::Write as _;

use console::Style;

use super::{Diagnostic, SNIPPET_WIDTH, Severity, SourceCut};
use crate::term;

impl Diagnostic {
    /// Render like a compiler, ending with a newline:
    ///
    /// ```text
    /// error: unknown key `temprature`
    ///   --> prompts/support.prompt.yaml:4:1
    ///    |
    ///  4 | temprature: 0.7
    ///    | ^^^^^^^^^^
    ///    = help: did you mean `temperature`?
    /// ```
    ///
    /// `color` adds ANSI colours (only for a terminal, never with NO_COLOR). Text from
    /// the files (message, help, path, the source line) goes through [`term::line`], so a
    /// control character is shown escaped and never acts on the terminal; a line longer
    /// than [`SNIPPET_WIDTH`] is cut to a window around the column, marked with `…`.
    pub fn render(&self, color: bool) -> String {
        let paint = Paint::new(color);
        let level = match self.severity {
            Severity::Error => &paint.error,
            Severity::Warning => &paint.warning,
        };
        let number = self.line.map(|line| line.to_string()).unwrap_or_default();
        let gutter = " ".repeat(number.len() + 1);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}{} {}",
            level.apply_to(self.severity.as_str()),
            paint.strong.apply_to(":"),
            paint.strong.apply_to(term::line(&self.message))
        );
        let _ = writeln!(
            out,
            "{gutter}{} {}",
            paint.frame.apply_to("-->"),
            term::line(&self.location())
        );
        if let (Some(source), Some(column)) = (&self.source_line, self.column) {
            let snippet = Snippet::new(
                source,
                column
                    .saturating_sub(1)
                    .saturating_sub(self.source_cut.before),
                self.source_cut,
            );
            let _ = writeln!(out, "{gutter} {}", paint.frame.apply_to("|"));
            let _ = writeln!(
                out,
                "{} {} {}",
                paint
                    .frame
                    .apply_to(format!("{number:>width$}", width = gutter.len())),
                paint.frame.apply_to("|"),
                snippet.text.trim_end()
            );
            let _ = writeln!(
                out,
                "{gutter} {} {}{}",
                paint.frame.apply_to("|"),
                " ".repeat(snippet.caret_offset),
                level.apply_to("^".repeat(snippet.caret_width))
            );
        }
        if let Some(help) = &self.help {
            let _ = writeln!(
                out,
                "{gutter} {} {}",
                paint.frame.apply_to("= help:"),
                term::line(help)
            );
        }
        if let Some(note) = self.more_note() {
            let _ = writeln!(out, "{gutter} {} {note}", paint.frame.apply_to("= note:"));
        }
        out
    }
}

/// A source line as shown under a finding: escaped for the terminal, cut to a window
/// around the column when long, and where the caret goes in what is shown.
#[derive(Debug, PartialEq, Eq)]
struct Snippet {
    text: String,
    caret_offset: usize,
    caret_width: usize,
}

impl Snippet {
    /// `offset` is the 0-based column in characters of `line`, itself cut out of a
    /// longer line as `cut` says.
    fn new(line: &str, offset: usize, cut: SourceCut) -> Snippet {
        let line = line.replace('\t', " ");
        let width = token_width(&line, offset);
        let chars: Vec<char> = line.chars().collect();
        let len = chars.len();
        let (start, end) = if len <= SNIPPET_WIDTH {
            (0, len)
        } else {
            // Some context before the column, the rest after it.
            let start = offset
                .min(len)
                .saturating_sub(SNIPPET_WIDTH / 4)
                .min(len - SNIPPET_WIDTH);
            (start, start + SNIPPET_WIDTH)
        };
        let shown = |range: &[char]| -> Vec<String> {
            range
                .iter()
                .map(|c| term::line(c.encode_utf8(&mut [0; 4])).into_owned())
                .collect()
        };
        let pieces = shown(&chars[start..end]);
        let cut_before = start > 0 || cut.before > 0;
        let cut_after = end < len || cut.after;
        let mut text = String::new();
        if cut_before {
            text.push('…');
        }
        text.extend(pieces.iter().map(String::as_str));
        if cut_after {
            text.push('…');
        }
        let piece_width = |piece: &String| piece.chars().count();
        let before = offset.clamp(start, end) - start;
        let caret_offset = usize::from(cut_before)
            + pieces[..before].iter().map(piece_width).sum::<usize>()
            + offset.saturating_sub(end);
        let token_end = offset.saturating_add(width).min(end);
        let caret_width = pieces[before..token_end.max(offset.min(end)) - start]
            .iter()
            .map(piece_width)
            .sum::<usize>()
            .max(1);
        Snippet {
            text,
            caret_offset,
            caret_width,
        }
    }
}

/// The width of the caret: the token that starts at `offset` (in characters) of
/// `line`. A quoted string to its closing quote; a mapping value (after `key: `) to
/// the end of the line or a comment (in flow style, to the next `,`, `]` or `}`);
/// anything else, a key say, to its colon or the next blank. At least 1.
fn token_width(line: &str, offset: usize) -> usize {
    let chars: Vec<char> = line.chars().collect();
    let rest = chars.get(offset..).unwrap_or_default();
    let Some(&first) = rest.first() else {
        return 1;
    };
    if first == '"' || first == '\'' {
        let close = rest[1..].iter().position(|&c| c == first);
        return close.map_or(rest.len(), |close| close + 2);
    }
    let before = &chars[..offset];
    let is_value = before.iter().rev().find(|c| !c.is_whitespace()) == Some(&':');
    let in_flow = before.iter().any(|c| matches!(c, '{' | '['));
    let mut width = 0;
    while width < rest.len() {
        let c = rest[width];
        let next = rest.get(width + 1).copied();
        let ends = if is_value {
            (c == ' ' && next == Some('#')) || (in_flow && matches!(c, ',' | ']' | '}'))
        } else {
            let ends_key = c == ':' && next.is_none_or(char::is_whitespace);
            c.is_whitespace() || ends_key || matches!(c, ',' | ']' | '}' | '#')
        };
        if ends {
            break;
        }
        width += 1;
    }
    let token: String = rest[..width].iter().collect();
    token.trim_end().chars().count().max(1)
}

struct Paint {
    error: Style,
    warning: Style,
    strong: Style,
    frame: Style,
}

impl Paint {
    fn new(color: bool) -> Paint {
        let style = |style: Style| style.force_styling(color);
        Paint {
            error: style(Style::new().red().bold()),
            warning: style(Style::new().yellow().bold()),
            strong: style(Style::new().bold()),
            frame: style(Style::new().blue().bold()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_compiler() {
        let text = "name: Support\nmodel: gpt-4o\nmessages: []\ntemprature: 0.7\n";
        let diagnostic =
            Diagnostic::error("prompts/support.prompt.yaml", "unknown key `temprature`")
                .at(text, 4, 1)
                .with_help("did you mean `temperature`?");
        assert_eq!(
            diagnostic.render(false),
            "\
error: unknown key `temprature`
  --> prompts/support.prompt.yaml:4:1
   |
 4 | temprature: 0.7
   | ^^^^^^^^^^
   = help: did you mean `temperature`?
"
        );
    }

    #[test]
    fn carets_cover_the_token() {
        assert_eq!(token_width("temperature: 2.5", 13), 3);
        assert_eq!(token_width("  content: \"a b\" # x", 11), 5);
        assert_eq!(token_width("key: [a, b]", 6), 1);
        assert_eq!(token_width("url: http://x", 5), 8);
        assert_eq!(token_width("name: Duplicate name  # note", 6), 14);
        assert_eq!(token_width("  - { model: gpt-4o, weight: 2 }", 13), 6);
        assert_eq!(token_width("  - role: system", 4), 4);
        assert_eq!(token_width("", 0), 1);
        assert_eq!(token_width("short", 10), 1);
    }

    #[test]
    fn wide_line_numbers_widen_the_gutter() {
        let text = "x\n".repeat(11);
        let rendered = Diagnostic::warning("a.yaml", "something")
            .at(&text, 11, 1)
            .render(false);
        assert_eq!(
            rendered,
            "warning: something\n   --> a.yaml:11:1\n    |\n 11 | x\n    | ^\n"
        );
    }

    #[test]
    fn no_position_no_snippet() {
        let rendered = Diagnostic::error("a.yaml", "file is over 1 MiB").render(false);
        assert_eq!(rendered, "error: file is over 1 MiB\n --> a.yaml\n");
    }

    #[test]
    fn colour_only_when_asked() {
        let diagnostic = Diagnostic::error("a.yaml", "bad").at("x: 1\n", 1, 1);
        assert!(!diagnostic.render(false).contains('\u{1b}'));
        assert!(diagnostic.render(true).contains('\u{1b}'));
    }

    #[test]
    fn control_characters_never_reach_the_terminal_raw() {
        let text = "name: \u{1b}]0;owned\u{7}\n";
        let diagnostic = Diagnostic::error("a\u{1b}[2J.prompt.yaml", "bad `\u{1b}[31m`")
            .at(text, 1, 7)
            .with_help("not \u{9b}this");
        let rendered = diagnostic.render(false);
        assert_eq!(
            rendered,
            "\
error: bad `\\u{1b}[31m`
  --> a\\u{1b}[2J.prompt.yaml:1:7
   |
 1 | name: \\u{1b}]0;owned\\u{7}
   |       ^^^^^^^^^^^^^^^^^^^
   = help: not \\u{9b}this
"
        );
        assert!(!rendered.chars().any(|c| c.is_control() && c != '\n'));
        // JSON keeps the text exact.
        let json = serde_json::to_value(&diagnostic).unwrap();
        assert_eq!(json["path"], "a\u{1b}[2J.prompt.yaml");
    }

    #[test]
    fn the_caret_stays_under_its_character_after_escapes() {
        let text = "a: \u{7}\u{7} x: [1, 2]\n";
        let rendered = Diagnostic::error("a.yaml", "here")
            .at(text, 1, 7)
            .render(false);
        let expected = format!(
            " 1 | a: \\u{{7}}\\u{{7}} x: [1, 2]\n   | {}^\n",
            " ".repeat(14)
        );
        assert!(rendered.contains(&expected), "{rendered}");
    }

    #[test]
    fn long_lines_are_cut_to_a_window_around_the_column() {
        let line = format!(
            "x: [{}], bad: \"oops\"{}",
            "1, ".repeat(100_000),
            ", 2".repeat(100_000)
        );
        let column = line.find("bad").unwrap() + 1;
        let rendered = Diagnostic::error("a.yaml", "here")
            .at(&line, 1, column)
            .render(false);
        let lines: Vec<&str> = rendered.lines().collect();
        assert!(rendered.len() < 600, "{} bytes", rendered.len());
        let shown = lines[3].strip_prefix(" 1 | ").unwrap();
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert_eq!(shown.chars().count(), SNIPPET_WIDTH + 2);
        let caret = lines[4].strip_prefix("   | ").unwrap();
        let at = caret.find('^').unwrap();
        assert_eq!(shown.chars().skip(at).take(3).collect::<String>(), "bad");
        assert_eq!(caret.trim(), "^^^");
        // Near the start and the end of the line.
        let rendered = Diagnostic::error("a.yaml", "here")
            .at(&line, 1, 1)
            .render(false);
        assert!(rendered.contains(" 1 | x: [1, 1, "), "{rendered}");
        assert!(rendered.contains("\n   | ^\n"), "{rendered}");
        let end = line.chars().count();
        let rendered = Diagnostic::error("a.yaml", "here")
            .at(&line, 1, end)
            .render(false);
        let lines: Vec<&str> = rendered.lines().collect();
        assert!(lines[3].ends_with(", 2"), "{rendered}");
        assert_eq!(lines[4].find('^'), Some(lines[3].chars().count() - 1));
    }
}
