//! The prompt file format (version 1): its types, parsing with positions, validation
//! and the JSON Schema generated from the types. Works on bytes already read; knows
//! nothing about git or the file system (content files are resolved by
//! [`desired`](crate::desired)).

pub mod check;
pub mod format;
pub mod schema;
pub mod variables;
pub mod yaml;

use serde_json::Value;

use crate::diagnostic::{Diagnostic, LineIndex, Severity};
use check::Finding;
use format::PromptFile;
use yaml::PosIndex;

/// The largest prompt (or content) file accepted: 1 MiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// One prompt file, parsed and checked on its own (without its content files and
/// without the other files of the source).
#[derive(Debug, Clone)]
pub struct ParsedFile {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// The file's text (empty when it is not UTF-8).
    pub text: String,
    /// The file as an untyped value (`Null` when it did not parse).
    pub value: Value,
    pub index: PosIndex,
    /// The typed prompt, when the file has no error so far.
    pub prompt: Option<PromptFile>,
    /// Findings so far, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Where the lines of `text` start, for positioning findings.
    lines: LineIndex,
}

impl ParsedFile {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// A diagnostic for `finding`, positioned in this file.
    pub fn diagnostic(&self, severity: Severity, finding: Finding) -> Diagnostic {
        let pos = if finding.at_key {
            self.index.key_pos(&finding.pointer)
        } else {
            self.index.value_pos(&finding.pointer)
        };
        let line = pos.line.max(1);
        let column = pos.column.max(1);
        let diagnostic = Diagnostic::new(severity, &self.path, finding.message).at_snippet(
            self.lines.snippet(&self.text, line, column),
            line,
            column,
        );
        match finding.help {
            Some(help) => diagnostic.with_help(help),
            None => diagnostic,
        }
    }

    /// A problem of the YAML itself, as an error positioned in this file.
    fn yaml_diagnostic(&self, problem: yaml::Problem) -> Diagnostic {
        let yaml::Pos { line, column } = problem.pos;
        let diagnostic = Diagnostic::error(&self.path, problem.message).at_snippet(
            self.lines.snippet(&self.text, line, column),
            line,
            column,
        );
        match problem.help {
            Some(help) => diagnostic.with_help(help),
            None => diagnostic,
        }
    }

    /// Add findings of `severity`; an error drops the typed prompt.
    pub fn add(&mut self, severity: Severity, findings: impl IntoIterator<Item = Finding>) {
        for finding in findings {
            let diagnostic = self.diagnostic(severity, finding);
            if diagnostic.is_error() {
                self.prompt = None;
            }
            self.diagnostics.push(diagnostic);
        }
        self.diagnostics
            .sort_by_key(|d| (d.line, d.column, std::cmp::Reverse(d.severity)));
    }
}

/// Parse and check one prompt file: size, UTF-8, YAML syntax, the schema of the
/// format, and the rules of [`check::rule_findings`]. Every finding is kept.
pub fn parse_file(path: &str, bytes: &[u8]) -> ParsedFile {
    let mut file = ParsedFile {
        path: path.to_owned(),
        text: String::new(),
        value: Value::Null,
        index: PosIndex::default(),
        prompt: None,
        diagnostics: Vec::new(),
        lines: LineIndex::default(),
    };
    if bytes.len() as u64 > MAX_FILE_BYTES {
        file.diagnostics.push(too_large(path, bytes.len() as u64));
        return file;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            file.diagnostics
                .push(not_utf8(path, bytes, err.valid_up_to()));
            return file;
        }
    };
    file.text = text.to_owned();
    file.lines = LineIndex::new(text);
    let document = match yaml::parse(text) {
        Ok(document) => document,
        Err(problems) => {
            file.diagnostics = problems
                .into_iter()
                .map(|problem| file.yaml_diagnostic(problem))
                .collect();
            return file;
        }
    };
    file.value = document.value;
    file.index = document.index;
    let yaml_problems = document.problems.len();
    file.diagnostics = document
        .problems
        .into_iter()
        .map(|problem| file.yaml_diagnostic(problem))
        .collect();
    let mut findings = check::schema_findings(&file.value);
    findings.extend(check::rule_findings(&file.value));
    if findings.is_empty() && yaml_problems == 0 {
        match serde_path_to_error::deserialize::<_, PromptFile>(&file.value) {
            Ok(prompt) => file.prompt = Some(prompt),
            Err(err) => findings.push(decode_finding(&err)),
        }
    }
    file.add(Severity::Error, findings);
    file
}

/// A value the schema let through but the types refuse (`max_tokens: 1.0`).
fn decode_finding(err: &serde_path_to_error::Error<serde_json::Error>) -> Finding {
    let mut pointer = String::new();
    for segment in err.path().iter() {
        pointer.push('/');
        match segment {
            serde_path_to_error::Segment::Seq { index } => pointer.push_str(&index.to_string()),
            serde_path_to_error::Segment::Map { key } => yaml::push_escaped(&mut pointer, key),
            serde_path_to_error::Segment::Enum { variant } => {
                yaml::push_escaped(&mut pointer, variant)
            }
            serde_path_to_error::Segment::Unknown => pointer.push('?'),
        }
    }
    let name = check::display_path(&pointer);
    Finding {
        pointer,
        at_key: false,
        message: format!("invalid value for `{name}`: {}", err.inner()),
        help: None,
    }
}

/// Diagnostic for a file over [`MAX_FILE_BYTES`].
pub fn too_large(path: &str, size: u64) -> Diagnostic {
    let mut diagnostic = Diagnostic::error(
        path,
        format!("the file is {size} bytes, over the limit of 1 MiB ({MAX_FILE_BYTES} bytes)"),
    )
    .with_help("split it up, or move long message text into smaller `content_file`s");
    // A whole-file finding: line 1, column 1, no snippet.
    diagnostic.line = Some(1);
    diagnostic.column = Some(1);
    diagnostic
}

/// Diagnostic for bytes that are not UTF-8, at the first bad byte.
pub fn not_utf8(path: &str, bytes: &[u8], valid_up_to: usize) -> Diagnostic {
    // The valid prefix is the same bytes in the lossy text.
    let lossy = String::from_utf8_lossy(bytes);
    let (line, column) = LineIndex::new(&lossy).position(&lossy, valid_up_to.min(bytes.len()));
    Diagnostic::error(
        path,
        format!("the file is not valid UTF-8 (bad byte at offset {valid_up_to})"),
    )
    .at(&lossy, line, column)
    .with_help("save the file as UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(file: &ParsedFile) -> String {
        file.diagnostics
            .iter()
            .map(|d| d.render(false))
            .collect::<Vec<_>>()
            .join("")
    }

    #[test]
    fn a_valid_file_gives_a_prompt() {
        let file = parse_file(
            "a.prompt.yaml",
            b"name: A\nmodel: gpt-4o\ntemperature: 1\nmessages:\n  - role: user\n    content: hi\n",
        );
        assert!(file.diagnostics.is_empty(), "{}", rendered(&file));
        let prompt = file.prompt.unwrap();
        assert_eq!(prompt.temperature, Some(1.0));
        assert_eq!(prompt.name.as_deref(), Some("A"));
    }

    #[test]
    fn all_findings_of_a_file_in_file_order() {
        let file = parse_file(
            "prompts/support.prompt.yaml",
            b"name: Support\nmodel: gpt-4o\ntemperature: 2.5\ntemprature: 0.7\nmessages:\n  - role: user\n    content: hi\n",
        );
        assert!(file.prompt.is_none());
        let findings: Vec<_> = file
            .diagnostics
            .iter()
            .map(|d| (d.location(), d.message.as_str(), d.help.as_deref()))
            .collect();
        assert_eq!(
            findings,
            [
                (
                    "prompts/support.prompt.yaml:3:14".to_owned(),
                    "`temperature` is 2.5, out of range: it must be between 0 and 2",
                    None
                ),
                (
                    "prompts/support.prompt.yaml:4:1".to_owned(),
                    "unknown key `temprature`",
                    Some("did you mean `temperature`?")
                ),
            ]
        );
        assert_eq!(
            file.diagnostics[1].source_line.as_deref(),
            Some("temprature: 0.7")
        );
    }

    #[test]
    fn yaml_syntax_errors_are_positioned() {
        let file = parse_file("a.yaml", b"name: A\nmessages: [\n  - x\n");
        assert_eq!(file.diagnostics.len(), 1);
        let d = &file.diagnostics[0];
        assert!(d.message.starts_with("invalid YAML: "), "{}", d.message);
        assert!(d.line.is_some() && d.column.is_some());
    }

    #[test]
    fn integral_floats_for_integers_are_refused_at_their_position() {
        let file = parse_file(
            "a.yaml",
            b"name: A\nmodel: m\nmax_tokens: 100.0\nmessages:\n  - role: user\n",
        );
        assert_eq!(file.diagnostics.len(), 1, "{}", rendered(&file));
        assert_eq!(file.diagnostics[0].line, Some(3));
        assert!(file.diagnostics[0].message.contains("`max_tokens`"));
    }

    #[test]
    fn not_utf8_points_at_the_bad_byte() {
        let file = parse_file("a.yaml", b"name: A\nmodel: caf\xe9\n");
        let d = &file.diagnostics[0];
        assert_eq!((d.line, d.column), (Some(2), Some(11)));
        assert!(d.message.contains("not valid UTF-8"));
    }

    #[test]
    fn over_one_mebibyte_is_refused() {
        let big = vec![b'#'; MAX_FILE_BYTES as usize + 1];
        let file = parse_file("a.yaml", &big);
        assert_eq!(file.diagnostics.len(), 1);
        assert!(
            file.diagnostics[0]
                .message
                .contains("over the limit of 1 MiB")
        );
        assert_eq!(file.diagnostics[0].line, Some(1));
    }
}
