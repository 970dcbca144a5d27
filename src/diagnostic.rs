//! Findings about user files (prompt files, configuration), positioned by file, line
//! and column, and rendered like a compiler's: the location, the line, a caret under
//! the column, and an optional help line (a did-you-mean, say).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
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
