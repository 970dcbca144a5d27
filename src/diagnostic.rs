//! Findings about user files (prompt files, configuration), positioned by file, line
//! and column, and rendered like a compiler's: the location, the line, a caret under
//! the column, and an optional help line (a did-you-mean, say). Knows nothing about
//! what the files mean.

use std::fmt::Write as _;

use console::Style;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Path of the file, relative to the repository root, with `/` separators.
    pub path: String,
    /// 1-based line, when the finding has a position.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the finding has a position.
    pub column: Option<usize>,
    /// What is wrong, in one sentence without a trailing period.
    pub message: String,
    /// How to fix it, when we can tell (`did you mean `temperature`?`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The text of the line the finding points at, for the caret rendering.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// An error about the file at `path`, without a position yet.
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, path, message)
    }

    /// A warning about the file at `path`, without a position yet.
    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Warning, path, message)
    }

    pub fn new(severity: Severity, path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            path: path.into(),
            line: None,
            column: None,
            message: message.into(),
            help: None,
            source_line: None,
        }
    }

    /// Point at 1-based `line` and `column` of `text` (the file's contents); the line's
    /// text is kept for the rendering.
    pub fn at(mut self, text: &str, line: usize, column: usize) -> Diagnostic {
        self.line = Some(line);
        self.column = Some(column);
        self.source_line = line
            .checked_sub(1)
            .and_then(|index| text.lines().nth(index))
            .map(str::to_owned);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `path:line:column`, or less when the position is unknown.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}", self.path),
            (Some(line), None) => format!("{}:{line}", self.path),
            _ => self.path.clone(),
        }
    }

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
    /// `color` adds ANSI colours (only for a terminal, never with NO_COLOR).
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
            paint.strong.apply_to(&self.message)
        );
        let _ = writeln!(
            out,
            "{gutter}{} {}",
            paint.frame.apply_to("-->"),
            self.location()
        );
        if let (Some(source), Some(column)) = (&self.source_line, self.column) {
            let source = source.replace('\t', " ");
            let offset = column.saturating_sub(1);
            let width = token_width(&source, offset);
            let _ = writeln!(out, "{gutter} {}", paint.frame.apply_to("|"));
            let _ = writeln!(
                out,
                "{} {} {}",
                paint
                    .frame
                    .apply_to(format!("{number:>width$}", width = gutter.len())),
                paint.frame.apply_to("|"),
                source.trim_end()
            );
            let _ = writeln!(
                out,
                "{gutter} {} {}{}",
                paint.frame.apply_to("|"),
                " ".repeat(offset),
                level.apply_to("^".repeat(width))
            );
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "{gutter} {} {help}", paint.frame.apply_to("= help:"));
        }
        out
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

/// The candidate closest to `word`, when one is close enough to be a likely typo
/// (`temprature` → `temperature`). Case is ignored.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            let score = strsim::normalized_damerau_levenshtein(&word, &candidate.to_lowercase());
            (candidate, score)
        })
        .filter(|(_, score)| *score >= 0.7)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(candidate, _)| candidate)
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
    fn suggestions_are_close_matches_only() {
        let keys = ["temperature", "top_p", "max_tokens", "model", "messages"];
        assert_eq!(did_you_mean("temprature", keys), Some("temperature"));
        assert_eq!(did_you_mean("max_token", keys), Some("max_tokens"));
        assert_eq!(did_you_mean("Model", keys), Some("model"));
        assert_eq!(did_you_mean("colour", keys), None);
    }
}
