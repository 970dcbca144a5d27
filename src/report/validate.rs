//! Text and JSON rendering of validation findings (`promptsync validate`, and the
//! findings part of other reports): each finding like a compiler's, then a summary.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Printable, Stdout};
use crate::desired::{DesiredSet, SourceInfo};
use crate::diagnostic::{Diagnostic, Severity};

/// Counts over one validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Prompt files checked.
    pub files: usize,
    pub valid: usize,
    pub invalid: usize,
    pub errors: usize,
    pub warnings: usize,
}

impl Summary {
    pub fn of(set: &DesiredSet) -> Summary {
        let invalid = invalid_paths(set);
        let invalid = set
            .files
            .iter()
            .filter(|path| invalid.contains(path.as_str()))
            .count();
        // A finding listed for the ones like it that are not counts them too.
        let count = |severity| {
            set.diagnostics
                .iter()
                .filter(|d| d.severity == severity)
                .map(Diagnostic::count)
                .sum()
        };
        Summary {
            files: set.files.len(),
            valid: set.files.len() - invalid,
            invalid,
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
        }
    }

    /// `checked 5 prompt files: 3 valid, 2 invalid; 4 errors, 1 warning`
    pub fn line(&self) -> String {
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        format!(
            "checked {}: {} valid, {} invalid; {}, {}",
            plural(self.files, "prompt file"),
            self.valid,
            self.invalid,
            plural(self.errors, "error"),
            plural(self.warnings, "warning"),
        )
    }
}

/// The paths that have at least one error.
fn invalid_paths(set: &DesiredSet) -> BTreeSet<&str> {
    set.diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.path.as_str())
        .collect()
}

/// The findings as text: each rendered like a compiler's, a blank line between them,
/// then the summary line.
pub fn text(set: &DesiredSet, color: bool) -> String {
    let mut out = String::new();
    for diagnostic in &set.diagnostics {
        out.push_str(&diagnostic.render(color));
        out.push('\n');
    }
    out.push_str(&Summary::of(set).line());
    out.push('\n');
    out
}

#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    source: &'a SourceInfo,
    summary: Summary,
    files: Vec<JsonFile<'a>>,
    diagnostics: &'a [Diagnostic],
}

#[derive(Debug, Serialize)]
struct JsonFile<'a> {
    path: &'a str,
    valid: bool,
}

/// The findings as one JSON document.
pub fn json(set: &DesiredSet) -> serde_json::Value {
    let invalid = invalid_paths(set);
    let report = JsonReport {
        source: &set.source,
        summary: Summary::of(set),
        files: set
            .files
            .iter()
            .map(|path| JsonFile {
                path,
                valid: !invalid.contains(path.as_str()),
            })
            .collect(),
        diagnostics: &set.diagnostics,
    };
    serde_json::to_value(report).unwrap_or_default()
}

/// The findings of one validation as a report to print: [`json`] or [`text`] (coloured
/// when stdout wants it).
#[derive(Debug)]
pub struct Findings<'a>(pub &'a DesiredSet);

impl Serialize for Findings<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        json(self.0).serialize(serializer)
    }
}

impl Printable for Findings<'_> {
    fn text(&self) -> String {
        text(self.0, Stdout::wants_color())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[&str], diagnostics: Vec<Diagnostic>) -> DesiredSet {
        DesiredSet {
            source: SourceInfo {
                commit: None,
                subject: None,
                worktree: true,
            },
            prompts: Vec::new(),
            diagnostics,
            files: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn summary_counts_files_and_findings() {
        let set = set(
            &["a.yaml", "b.yaml", "c.yaml"],
            vec![
                Diagnostic::error("a.yaml", "x"),
                Diagnostic::error("a.yaml", "y"),
                Diagnostic::warning("b.yaml", "z"),
            ],
        );
        let summary = Summary::of(&set);
        assert_eq!(
            summary,
            Summary {
                files: 3,
                valid: 2,
                invalid: 1,
                errors: 2,
                warnings: 1
            }
        );
        assert_eq!(
            summary.line(),
            "checked 3 prompt files: 2 valid, 1 invalid; 2 errors, 1 warning"
        );
    }

    #[test]
    fn text_is_findings_then_summary() {
        let set = set(
            &["a.yaml"],
            vec![Diagnostic::error("a.yaml", "bad").at("k: v\n", 1, 1)],
        );
        assert_eq!(
            text(&set, false),
            "error: bad\n  --> a.yaml:1:1\n   |\n 1 | k: v\n   | ^\n\nchecked 1 prompt file: 0 valid, 1 invalid; 1 error, 0 warnings\n"
        );
    }

    #[test]
    fn json_has_files_summary_and_findings() {
        let set = set(
            &["a.yaml", "b.yaml"],
            vec![Diagnostic::error("a.yaml", "bad").at("k: v\n", 1, 1)],
        );
        let value = json(&set);
        assert_eq!(value["summary"]["invalid"], 1);
        assert_eq!(
            value["files"][1],
            serde_json::json!({"path": "b.yaml", "valid": true})
        );
        assert_eq!(
            value["diagnostics"][0],
            serde_json::json!({"severity": "error", "path": "a.yaml", "line": 1, "column": 1, "message": "bad"})
        );
    }
}
