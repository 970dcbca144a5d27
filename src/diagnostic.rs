//! Findings about user files (prompt files, configuration), positioned by file, line
//! and column, with the source line they point into and an optional help line (a
//! did-you-mean, say); [`Diagnostic::render`] shows them like a compiler's. A file lists at most
//! [`MAX_PER_KIND`] findings of one kind ([`Tally`]); the last one listed counts the
//! rest. Knows nothing about what the files mean.

mod render;

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
    /// The text of the line the finding points at, for the caret rendering; of a long
    /// line, only the part around the column (`source_cut` says what was left out), so
    /// that many findings on one huge line stay small.
    #[serde(skip)]
    pub source_line: Option<String>,
    #[serde(skip)]
    pub source_cut: SourceCut,
    /// How many more findings of this kind the file has, not listed (see [`Tally`]);
    /// set on the last one listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_like_it: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What [`Diagnostic::source_line`] leaves out of a long line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCut {
    /// Characters left out before it.
    pub before: usize,
    /// Whether characters are left out after it.
    pub after: bool,
}

/// Where every line of a text starts and ends, and for long lines where every 256th
/// character starts, so that the part of a line a finding shows is found without
/// scanning the text again for each finding (a 1 MiB line can carry thousands of them).
/// Lines end as YAML ends them: at `\r\n`, `\n` or a lone `\r` (which is how YAML
/// counts the lines that positions refer to).
#[derive(Debug, Clone, Default)]
pub(crate) struct LineIndex {
    /// Byte ranges of the lines, without their breaks.
    lines: Vec<(usize, usize)>,
    /// By 0-based line, for lines longer than a snippet keeps: the line's length in
    /// characters and the byte offset (in the line) of every [`CHECKPOINT`]th character.
    long: HashMap<usize, (usize, Vec<usize>)>,
}

/// The spacing of the character checkpoints of a long line.
const CHECKPOINT: usize = 256;

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let bytes = text.as_bytes();
        let mut lines = Vec::new();
        let mut start = 0;
        let mut at = 0;
        while at < bytes.len() {
            match bytes[at] {
                b'\n' => {
                    lines.push((start, at));
                    start = at + 1;
                }
                b'\r' => {
                    lines.push((start, at));
                    if bytes.get(at + 1) == Some(&b'\n') {
                        at += 1;
                    }
                    start = at + 1;
                }
                _ => {}
            }
            at += 1;
        }
        if start < bytes.len() {
            lines.push((start, bytes.len()));
        }
        let mut long = HashMap::new();
        for (number, &(start, end)) in lines.iter().enumerate() {
            let Some(source) = text.get(start..end).filter(|s| s.len() > SNIPPET_KEEP) else {
                continue;
            };
            let mut chars = 0;
            let mut checkpoints = Vec::new();
            for (at, _) in source.char_indices() {
                if chars % CHECKPOINT == 0 {
                    checkpoints.push(at);
                }
                chars += 1;
            }
            long.insert(number, (chars, checkpoints));
        }
        LineIndex { lines, long }
    }

    /// The 1-based `line` of `text` (the text this index was made from), without its
    /// line break.
    pub(crate) fn line<'t>(&self, text: &'t str, line: usize) -> Option<&'t str> {
        let &(start, end) = self.lines.get(line.checked_sub(1)?)?;
        text.get(start..end)
    }

    /// The 1-based line and column (in characters) of byte `offset` of `text`.
    pub(crate) fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        let line = self
            .lines
            .partition_point(|&(start, _)| start <= offset)
            .max(1);
        let start = self.lines.get(line - 1).map_or(0, |&(start, _)| start);
        let column = text
            .get(start..offset.min(text.len()))
            .map_or(0, |before| before.chars().count());
        (line, column + 1)
    }

    /// What a finding at 1-based `line` and `column` keeps of its line: all of a short
    /// line, a window around the column of a long one.
    pub(crate) fn snippet<'t>(
        &self,
        text: &'t str,
        line: usize,
        column: usize,
    ) -> Option<(&'t str, SourceCut)> {
        let source = self.line(text, line)?;
        let Some((chars, checkpoints)) = self.long.get(&(line - 1)) else {
            return Some((source, SourceCut::default()));
        };
        let keep = SNIPPET_KEEP.min(*chars);
        let before = column
            .saturating_sub(1)
            .saturating_sub(SNIPPET_WIDTH)
            .min(chars - keep);
        let byte_at = |char_index: usize| -> usize {
            let from = checkpoints
                .get(char_index / CHECKPOINT)
                .copied()
                .unwrap_or(source.len());
            source[from..]
                .char_indices()
                .nth(char_index % CHECKPOINT)
                .map_or(source.len(), |(at, _)| from + at)
        };
        let (start, end) = (byte_at(before), byte_at(before + keep));
        let cut = SourceCut {
            before,
            after: before + keep < *chars,
        };
        Some((&source[start..end], cut))
    }
}

/// The most characters of a line a finding keeps.
const SNIPPET_KEEP: usize = 2 * SNIPPET_WIDTH;

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
            source_cut: SourceCut::default(),
            more_like_it: 0,
        }
    }

    /// How many findings this one stands for: itself and the ones like it that are not
    /// listed. Counts in summaries add these up.
    pub fn count(&self) -> usize {
        1 + self.more_like_it
    }

    /// Point at 1-based `line` and `column` of `text` (the file's contents); the line's
    /// text is kept for the rendering (of a long line, a window around the column).
    pub fn at(self, text: &str, line: usize, column: usize) -> Diagnostic {
        let snippet = LineIndex::new(text).snippet(text, line, column);
        self.at_snippet(snippet, line, column)
    }

    /// [`Diagnostic::at`] with the line's text already found by a [`LineIndex`] of the
    /// file, for the many findings of one file.
    pub fn at_snippet(
        mut self,
        snippet: Option<(&str, SourceCut)>,
        line: usize,
        column: usize,
    ) -> Diagnostic {
        self.line = Some(line);
        self.column = Some(column);
        if let Some((source, cut)) = snippet {
            self.source_line = Some(source.to_owned());
            self.source_cut = cut;
        }
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

    /// `and 79,950 more like it in this file`, when findings like this one are not
    /// listed.
    pub fn more_note(&self) -> Option<String> {
        (self.more_like_it > 0).then(|| {
            format!(
                "and {} more like it in this file",
                crate::excerpt::thousands(self.more_like_it)
            )
        })
    }
}

/// The widest part of a source line shown, in characters.
pub(crate) const SNIPPET_WIDTH: usize = 120;

/// The most findings of one kind listed for one file. A file with 80,000 undeclared
/// placeholders lists 50, and the 50th says how many more there are: the output, and
/// the time to make it, stay proportional to the file, not to the square of it.
pub(crate) const MAX_PER_KIND: usize = 50;

/// Counts the findings of one file by kind, to list at most [`MAX_PER_KIND`] of each.
/// A finding's kind is its severity and its message with the quoted parts and numbers
/// left out (`unknown key `_``): two findings differ in kind when their wording does.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    seen: HashMap<u64, usize>,
}

impl Tally {
    /// Count a finding; whether it is to be listed (one of the first of its kind).
    pub(crate) fn admit(&mut self, severity: Severity, message: &str) -> bool {
        let seen = self.seen.entry(kind(severity, message)).or_default();
        *seen += 1;
        *seen <= MAX_PER_KIND
    }

    /// Whether any finding was left out.
    pub(crate) fn left_out(&self) -> bool {
        self.seen.values().any(|&n| n > MAX_PER_KIND)
    }

    /// Put the count of each kind's findings left out on the last one listed (in the
    /// order of `diagnostics`, the file's own findings).
    pub(crate) fn settle(&self, diagnostics: &mut [Diagnostic]) {
        if !self.left_out() {
            return;
        }
        let mut last: HashMap<u64, usize> = HashMap::new();
        for (i, d) in diagnostics.iter_mut().enumerate() {
            d.more_like_it = 0;
            last.insert(kind(d.severity, &d.message), i);
        }
        for (kind, &seen) in &self.seen {
            if let (Some(more), Some(&i)) = (seen.checked_sub(MAX_PER_KIND), last.get(kind)) {
                diagnostics[i].more_like_it = more;
            }
        }
    }
}

/// A finding's kind: its severity and its message without what is quoted in it
/// (between backticks or double quotes) and without its numbers (`-12.5`, `1e3`).
fn kind(severity: Severity, message: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    severity.hash(&mut hasher);
    let mut quote = None;
    let mut in_number = false;
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(open) = quote {
            if c == open {
                quote = None;
                c.hash(&mut hasher);
            }
            continue;
        }
        let next_is_digit = chars.peek().is_some_and(char::is_ascii_digit);
        let starts_number = c.is_ascii_digit() || (c == '-' && next_is_digit);
        let continues_number =
            in_number && (c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
        if starts_number || continues_number {
            if !in_number {
                '0'.hash(&mut hasher);
            }
            in_number = true;
            continue;
        }
        in_number = false;
        if c == '`' || c == '"' {
            quote = Some(c);
        }
        c.hash(&mut hasher);
    }
    hasher.finish()
}

/// The candidate closest to `word`, when one is close enough to be a likely typo
/// (`temprature` → `temperature`). Case is ignored.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // The distance takes time and memory in the product of the lengths: a word far
    // longer than any candidate is no typo of one.
    if word.len() > 4 * crate::excerpt::MAX_CHARS {
        return None;
    }
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
    fn lines_end_as_yaml_ends_them() {
        let text = "a\r\nb\rc\nd";
        let index = LineIndex::new(text);
        let lines: Vec<Option<&str>> = (1..=5).map(|n| index.line(text, n)).collect();
        assert_eq!(lines, [Some("a"), Some("b"), Some("c"), Some("d"), None]);
        assert_eq!(index.position(text, text.find('c').unwrap()), (3, 1));
        assert_eq!(index.position(text, text.len()), (4, 2));
        let rendered = Diagnostic::error("a.yaml", "here")
            .at(text, 3, 1)
            .render(false);
        assert!(rendered.contains(" 3 | c\n"), "{rendered}");
    }

    #[test]
    fn a_kind_is_the_wording_without_what_it_quotes() {
        let same = [
            (
                "`{{a}}` in `messages[0]` is not declared",
                "`{{bb}}` in `messages[12]` is not declared",
            ),
            (
                "`max_tokens` is 0, out of range",
                "`seed` is -12.5, out of range",
            ),
            ("found the string \"yes\"", "found the string \"no\""),
        ];
        for (a, b) in same {
            assert_eq!(
                kind(Severity::Error, a),
                kind(Severity::Error, b),
                "{a} / {b}"
            );
        }
        let different = [
            ("unknown key `a`", "duplicate key `a`"),
            ("found a list", "found a mapping"),
        ];
        for (a, b) in different {
            assert_ne!(
                kind(Severity::Error, a),
                kind(Severity::Error, b),
                "{a} / {b}"
            );
        }
        assert_ne!(kind(Severity::Error, "x"), kind(Severity::Warning, "x"));
    }

    #[test]
    fn a_tally_lists_the_first_of_a_kind_and_counts_the_rest() {
        let mut tally = Tally::default();
        let mut listed = Vec::new();
        for i in 0..MAX_PER_KIND + 7 {
            let message = format!("unknown key `k{i}`");
            if tally.admit(Severity::Error, &message) {
                listed.push(Diagnostic::error("a.yaml", message));
            }
        }
        assert!(tally.admit(Severity::Warning, "unused `x`"));
        listed.push(Diagnostic::warning("a.yaml", "unused `x`"));
        assert_eq!(listed.len(), MAX_PER_KIND + 1);
        tally.settle(&mut listed);
        let more: Vec<usize> = listed.iter().map(|d| d.more_like_it).collect();
        assert_eq!(more[MAX_PER_KIND - 1], 7);
        assert_eq!(more.iter().sum::<usize>(), 7);
        assert_eq!(
            listed.iter().map(Diagnostic::count).sum::<usize>(),
            MAX_PER_KIND + 8
        );
        let json = serde_json::to_value(&listed[MAX_PER_KIND - 1]).unwrap();
        assert_eq!(json["more_like_it"], 7);
        assert!(
            serde_json::to_value(&listed[0])
                .unwrap()
                .get("more_like_it")
                .is_none()
        );
    }

    #[test]
    fn suggestions_are_close_matches_only() {
        let keys = ["temperature", "top_p", "max_tokens", "model", "messages"];
        assert_eq!(did_you_mean("temprature", keys), Some("temperature"));
        assert_eq!(did_you_mean("max_token", keys), Some("max_tokens"));
        assert_eq!(did_you_mean("Model", keys), Some("model"));
        assert_eq!(did_you_mean("colour", keys), None);
        // A word far longer than any key is no typo (and costs no distance matrix).
        assert_eq!(did_you_mean(&"temperature".repeat(10_000), keys), None);
    }
}
