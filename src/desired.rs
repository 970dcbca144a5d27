//! The desired state of one source (a commit or the working tree): every valid prompt
//! file turned into a [`DesiredPrompt`] with its identity and the exact version content
//! to send, plus the findings of the invalid ones and the source's provenance.
//! Conflicts (two files naming one prompt) are found here. Knows nothing about the API
//! beyond the shape of a version body.

use thiserror::Error;

use crate::api::types::VersionSpec;
use crate::diagnostic::Diagnostic;

/// How a prompt file names its remote prompt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKey {
    /// `prompt_id:` in the file.
    Id(String),
    /// `name:` alone: matched exactly against remote names, created when none has it.
    Name(String),
}

/// One valid prompt file, ready to be compared with the remote.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPrompt {
    /// Path of the file, relative to the repository root, `/`-separated.
    pub path: String,
    pub key: PromptKey,
    /// Prompt-level name (metadata), when the file gives one.
    pub name: Option<String>,
    /// Prompt-level description, when the file gives one.
    pub description: Option<String>,
    /// `sync: false` in the file: validated, never sent.
    pub sync: bool,
    /// The version content to send, `content_file`s already inlined; `description`
    /// left empty (the provenance line is added when a version is created).
    pub spec: VersionSpec,
}

/// Where the desired state was read from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceInfo {
    /// Full commit id; `None` when reading the working tree of a repository without
    /// commits.
    pub commit: Option<String>,
    /// First line of the commit message.
    pub subject: Option<String>,
    /// True when the working tree was read (uncommitted edits included).
    pub worktree: bool,
}

/// The outcome of loading one source.
#[derive(Debug, Clone)]
pub struct DesiredSet {
    pub source: SourceInfo,
    /// Valid prompts, in path order.
    pub prompts: Vec<DesiredPrompt>,
    /// Every finding, errors and warnings, of every file (valid files may carry warnings).
    pub diagnostics: Vec<Diagnostic>,
}

/// A failure to read the source at all (as opposed to findings in files).
#[derive(Debug, Error)]
#[error("cannot load prompts")]
pub struct LoadError {}

/// Which content to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRev {
    /// A revision (HEAD, a branch, a tag, an id): its commit's tree.
    Commit(String),
    /// The working tree, uncommitted edits included.
    Worktree,
}

/// Discover, parse, validate and resolve every prompt file of one source (skeleton).
pub fn load(
    _repo: &crate::gitrepo::GitRepo,
    _rev: &SourceRev,
    _prompts: &crate::config::PromptSettings,
) -> Result<DesiredSet, LoadError> {
    Err(LoadError {})
}
