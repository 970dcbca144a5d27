//! The prompt file format (version 1): its types, parsing with positions, validation
//! and the JSON Schema generated from the types. Works on bytes already read; knows
//! nothing about git or the file system (content files are resolved by
//! [`desired`](crate::desired)).

pub(crate) mod check;
pub(crate) mod format;
pub(crate) mod lfs;
mod pointer;
pub mod schema;
pub(crate) mod variables;
pub(crate) mod yaml;

use serde_json::Value;

use crate::diagnostic::{Diagnostic, LineIndex, Severity, Tally};
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
    /// The typed prompt, when the file has no error so far. Boxed: a load holds every
    /// file at once, and the typed prompt is most of a file's inline size.
    pub prompt: Option<Box<PromptFile>>,
    /// Findings so far, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Where the lines of `text` start, for positioning findings.
    lines: LineIndex,
    /// The findings by kind, all of them counted, a few of each listed.
    tally: Tally,
}

impl ParsedFile {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Drop the parse tree and its positions but for the top-level `keys` (and the
    /// root's position): once a file is checked, a load holding every file keeps only
    /// what its conflict check reads and positions. Its text, typed prompt and
    /// findings stay.
    pub fn shed(&mut self, keys: &[&str]) {
        let kept: serde_json::Map<String, Value> = keys
            .iter()
            .filter_map(|key| Some(((*key).to_owned(), self.value.get(*key)?.clone())))
            .collect();
        if !self.value.is_null() {
            self.value = Value::Object(kept);
        }
        let pointers: Vec<String> = keys.iter().map(|key| format!("/{key}")).collect();
        let pointers: Vec<&str> = pointers.iter().map(String::as_str).collect();
        self.index.retain(&pointers);
    }

    /// Where `finding` points in this file: 1-based line and column.
    fn position(&self, finding: &Finding) -> yaml::Pos {
        let pos = if finding.at_key {
            self.index.key_pos(&finding.pointer)
        } else {
            self.index.value_pos(&finding.pointer)
        };
        yaml::Pos {
            line: pos.line.max(1),
            column: pos.column.max(1),
        }
    }

    fn diagnostic_at(&self, severity: Severity, finding: Finding, pos: yaml::Pos) -> Diagnostic {
        let yaml::Pos { line, column } = pos;
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

    /// Add findings of `severity` (at most `MAX_PER_KIND`
    /// of a kind are listed, the last of them counting the rest); an error drops the
    /// typed prompt.
    pub fn add(&mut self, severity: Severity, findings: impl IntoIterator<Item = Finding>) {
        // In file order, so that the findings listed are a kind's first ones.
        let mut positioned: Vec<(yaml::Pos, Finding)> = findings
            .into_iter()
            .map(|finding| (self.position(&finding), finding))
            .collect();
        positioned.sort_by_key(|(pos, _)| *pos);
        for (pos, finding) in positioned {
            if severity == Severity::Error {
                self.prompt = None;
            }
            if self.tally.admit(severity, &finding.message) {
                let diagnostic = self.diagnostic_at(severity, finding, pos);
                self.diagnostics.push(diagnostic);
            }
        }
        self.diagnostics
            .sort_by_key(|d| (d.line, d.column, std::cmp::Reverse(d.severity)));
        self.tally.settle(&mut self.diagnostics);
    }

    /// Take the problems of the YAML itself, as errors positioned in this file.
    fn take_yaml(&mut self, problems: yaml::Problems) {
        self.diagnostics = problems
            .list
            .into_iter()
            .map(|problem| self.yaml_diagnostic(problem))
            .collect();
        self.tally = problems.tally;
        self.tally.settle(&mut self.diagnostics);
    }
}

/// Parse and check one prompt file: size, UTF-8, YAML syntax, the schema of the
/// format, and the rules of `check::rule_findings`. Every finding is kept.
pub fn parse_file(path: &str, bytes: &[u8]) -> ParsedFile {
    let mut file = ParsedFile {
        path: path.to_owned(),
        text: String::new(),
        value: Value::Null,
        index: PosIndex::default(),
        prompt: None,
        diagnostics: Vec::new(),
        lines: LineIndex::default(),
        tally: Tally::default(),
    };
    if bytes.len() as u64 > MAX_FILE_BYTES {
        file.diagnostics.push(too_large(path, bytes.len() as u64));
        return file;
    }
    if let Some(pointer) = lfs::Pointer::of(bytes) {
        file.diagnostics.push(pointer.prompt_file(path));
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
            file.take_yaml(problems);
            return file;
        }
    };
    file.value = document.value;
    file.index = document.index;
    let yaml_problems = document.problems.list.len();
    file.take_yaml(document.problems);
    let mut findings = check::schema_findings(&file.value);
    findings.extend(check::rule_findings(&file.value));
    if findings.is_empty() && yaml_problems == 0 {
        match serde_path_to_error::deserialize::<_, PromptFile>(&file.value) {
            Ok(prompt) => file.prompt = Some(Box::new(prompt)),
            Err(err) => findings.push(decode_finding(&err)),
        }
    }
    file.add(Severity::Error, findings);
    file
}

/// A value the schema let through but the types refuse. Not expected (the schema is
/// generated from the types): said in our words, the library's text logged only.
fn decode_finding(err: &serde_path_to_error::Error<serde_json::Error>) -> Finding {
    tracing::debug!(error = %err.inner(), path = %err.path(), "a value the schema accepts does not fit the types");
    let mut pointer = String::new();
    for segment in err.path().iter() {
        pointer.push('/');
        match segment {
            serde_path_to_error::Segment::Seq { index } => pointer.push_str(&index.to_string()),
            serde_path_to_error::Segment::Map { key } => pointer::push_escaped(&mut pointer, key),
            serde_path_to_error::Segment::Enum { variant } => {
                pointer::push_escaped(&mut pointer, variant)
            }
            serde_path_to_error::Segment::Unknown => pointer.push('?'),
        }
    }
    let name = pointer::display_path(&pointer);
    Finding {
        pointer,
        at_key: false,
        message: format!("`{name}` holds a value the prompt file format cannot hold"),
        help: Some(format!(
            "see the format's JSON Schema ({}) for what `{name}` takes",
            schema::SCHEMA_PATH
        )),
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

    impl ParsedFile {
        /// A diagnostic for `finding`, positioned in this file.
        fn diagnostic(&self, severity: Severity, finding: Finding) -> Diagnostic {
            let pos = self.position(&finding);
            self.diagnostic_at(severity, finding, pos)
        }
    }
    use crate::diagnostic::MAX_PER_KIND;

    fn rendered(file: &ParsedFile) -> String {
        file.diagnostics
            .iter()
            .map(|d| d.render(false))
            .collect::<Vec<_>>()
            .join("")
    }

    #[test]
    fn a_shed_file_keeps_its_conflict_keys_and_where_they_are() {
        let text = "model: gpt-4o\nname: Greeter\nmessages:\n  - role: user\n    content: Hi\n";
        let mut file = parse_file("p.prompt.yaml", text.as_bytes());
        let finding = || Finding {
            pointer: "/name".into(),
            at_key: false,
            message: "name \"Greeter\" is also used by \"q.prompt.yaml\"".into(),
            help: None,
        };
        let before = file.diagnostic(Severity::Error, finding());
        file.shed(&["prompt_id", "name"]);
        assert_eq!(file.value, serde_json::json!({"name": "Greeter"}));
        assert!(
            file.index.get("/messages/0/content").is_none(),
            "the rest is dropped"
        );
        let after = file.diagnostic(Severity::Error, finding());
        assert_eq!((after.line, after.column), (Some(2), Some(7)));
        assert_eq!(after.render(false), before.render(false));
        assert!(file.prompt.is_some(), "the typed prompt stays");
        // A file that did not parse stays as it was.
        let mut broken = parse_file("b.prompt.yaml", b"name: [unclosed\n");
        broken.shed(&["prompt_id", "name"]);
        assert!(broken.value.is_null());
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
    fn integral_floats_are_integers_where_integers_go() {
        let file = parse_file(
            "a.yaml",
            b"name: A\nmodel: m\nmax_tokens: 2048.0\nseed: 1e3\nmessages:\n  - role: user\n",
        );
        assert!(file.diagnostics.is_empty(), "{}", rendered(&file));
        let prompt = file.prompt.unwrap();
        assert_eq!((prompt.max_tokens, prompt.seed), (Some(2048), Some(1000)));
        let file = parse_file(
            "a.yaml",
            b"name: A\nmodel: m\nmax_tokens: 100.5\nseed: 1e300\nmessages:\n  - role: user\n",
        );
        let found: Vec<_> = file
            .diagnostics
            .iter()
            .map(|d| (d.location(), d.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "a.yaml:3:13".to_owned(),
                    "wrong type for `max_tokens`: expected an integer, found the number 100.5"
                ),
                (
                    "a.yaml:4:7".to_owned(),
                    "`seed` is 1e300, out of range: it must be at most 9223372036854775807"
                ),
            ]
        );
    }

    #[test]
    fn findings_of_a_kind_are_capped_and_counted() {
        let keys: String = (0..120).map(|i| format!("k{i}: 1\n")).collect();
        let text = format!("name: A\nmodel: m\n{keys}messages: [{{role: user}}]\n");
        let file = parse_file("a.yaml", text.as_bytes());
        assert_eq!(file.diagnostics.len(), MAX_PER_KIND);
        let last = file.diagnostics.last().unwrap();
        assert_eq!(last.more_like_it, 70);
        assert_eq!(last.location(), "a.yaml:52:1");
        assert!(
            last.render(false)
                .ends_with("= note: and 70 more like it in this file\n"),
            "{}",
            last.render(false)
        );
        let total: usize = file.diagnostics.iter().map(Diagnostic::count).sum();
        assert_eq!(total, 120);
    }

    #[test]
    fn a_git_lfs_pointer_is_not_a_prompt() {
        let file = parse_file(
            "a.prompt.yaml",
            b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 2048\n",
        );
        assert_eq!(file.diagnostics.len(), 1);
        assert_eq!(
            file.diagnostics[0].message,
            "the prompt file is a Git LFS pointer (to 2,048 bytes stored in LFS), not the prompt itself"
        );
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
