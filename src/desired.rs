//! The desired state of one source (a commit or the working tree): every valid prompt
//! file turned into a [`DesiredPrompt`] with its identity and the exact version content
//! to send, plus the findings of the invalid ones and the source's provenance.
//! Conflicts (two files naming one prompt) are found here. Knows nothing about the API
//! beyond the shape of a version body.
//!
//! This file holds the types of the desired state. The rest, a concern a file:
//! `desired::load` ([`load`], [`load_with`], [`load_paths`]: a commit, the working
//! tree, paths on disk), `desired::content` (a file's `content_file`s read and its
//! variables checked), `desired::conflicts`, `desired::spec` (the version body), and
//! `desired::cache`, `desired::findings`, `desired::parallel`.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::api::types::VersionSpec;
use crate::diagnostic::Diagnostic;

mod cache;
mod conflicts;
mod content;
mod findings;
mod load;
pub(crate) mod parallel;
mod spec;
pub use cache::LoadCache;
pub use load::{LoadError, load, load_paths, load_with};
pub use spec::{desired_prompt, version_spec};

/// How a prompt file names its remote prompt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKey {
    /// `prompt_id:` in the file.
    Id(String),
    /// `name:` alone: matched exactly against remote names, created when none has it.
    Name(String),
}

/// One valid prompt file, ready to be compared with the remote. Its fields are read
/// through [`DesiredPromptFields`]; a clone shares them (the daemon's cache hands the
/// same prompts to every pass, and a pass over 10,000 kept files copies none).
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPrompt(std::sync::Arc<DesiredPromptFields>);

/// What a [`DesiredPrompt`] holds; read-only once made.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPromptFields {
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
    pub spec: std::sync::Arc<VersionSpec>,
    /// A digest of all of the above, taken once by [`DesiredPrompt::new`].
    fingerprint: u64,
    /// The content digest of `spec` ([`normalize::digest`](crate::normalize::digest)),
    /// taken once where the file is read (on the parsing threads; a cached file keeps
    /// it), not at every plan.
    digest: String,
}

impl std::ops::Deref for DesiredPrompt {
    type Target = DesiredPromptFields;

    fn deref(&self) -> &DesiredPromptFields {
        &self.0
    }
}

impl DesiredPrompt {
    pub fn new(
        path: String,
        key: PromptKey,
        name: Option<String>,
        description: Option<String>,
        sync: bool,
        spec: VersionSpec,
    ) -> DesiredPrompt {
        let mut hasher = DefaultHasher::new();
        path.hash(&mut hasher);
        key.hash(&mut hasher);
        name.hash(&mut hasher);
        description.hash(&mut hasher);
        sync.hash(&mut hasher);
        serde_json::to_string(&spec)
            .unwrap_or_default()
            .hash(&mut hasher);
        let digest = crate::normalize::digest(&spec);
        DesiredPrompt(std::sync::Arc::new(DesiredPromptFields {
            path,
            key,
            name,
            description,
            sync,
            spec: std::sync::Arc::new(spec),
            fingerprint: hasher.finish(),
            digest,
        }))
    }

    /// The content digest of the spec (`normalize::digest`).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// A digest of everything a pass would send for this file: equal digests, same
    /// requests.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The same prompt in allocations of its own, shared with nothing (see
    /// [`LoadCache::compact`]).
    pub fn deep_copy(&self) -> DesiredPrompt {
        let mut fields = DesiredPromptFields::clone(&self.0);
        fields.spec = std::sync::Arc::new(VersionSpec::clone(&self.spec));
        DesiredPrompt(std::sync::Arc::new(fields))
    }
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
    /// Every finding, errors and warnings, of every file (valid files may carry warnings),
    /// by file in path order, then by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Every prompt file examined, valid or not, in path order.
    pub files: Vec<String>,
}

impl DesiredSet {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Which content to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRev {
    /// The tree of a commit (a revision: `HEAD`, a branch, a tag, an id).
    Commit(String),
    /// The working tree, uncommitted edits included.
    Worktree,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn prompt(description: Option<&str>) -> DesiredPrompt {
        DesiredPrompt::new(
            "prompts/a.prompt.yaml".into(),
            PromptKey::Name("A".into()),
            Some("A".into()),
            description.map(str::to_owned),
            true,
            VersionSpec {
                model: Some("gpt-4o".into()),
                ..VersionSpec::default()
            },
        )
    }

    #[test]
    fn equal_prompts_have_equal_fingerprints_and_a_change_shows() {
        assert_eq!(prompt(None).fingerprint(), prompt(None).fingerprint());
        assert_ne!(prompt(None).fingerprint(), prompt(Some("x")).fingerprint());
        let mut spec = VersionSpec::clone(&prompt(None).spec);
        spec.temperature = Some(0.5);
        let other = DesiredPrompt::new(
            "prompts/a.prompt.yaml".into(),
            PromptKey::Name("A".into()),
            Some("A".into()),
            None,
            true,
            spec,
        );
        assert_ne!(prompt(None).fingerprint(), other.fingerprint());
    }

    #[test]
    fn a_clone_shares_the_fields_and_a_deep_copy_does_not() {
        let first = prompt(None);
        let clone = first.clone();
        assert!(Arc::ptr_eq(&first.0, &clone.0));
        let copy = first.deep_copy();
        assert_eq!(copy, first);
        assert_eq!(copy.fingerprint(), first.fingerprint());
        assert!(!Arc::ptr_eq(&first.0, &copy.0));
        assert!(!Arc::ptr_eq(&first.spec, &copy.spec));
    }

    #[test]
    fn a_set_has_errors_when_one_finding_is_an_error() {
        let mut set = DesiredSet {
            source: SourceInfo {
                commit: None,
                subject: None,
                worktree: true,
            },
            prompts: vec![prompt(None)],
            diagnostics: vec![Diagnostic::warning("a.prompt.yaml", "a warning")],
            files: vec!["a.prompt.yaml".into()],
        };
        assert!(!set.has_errors());
        set.diagnostics
            .push(Diagnostic::error("b.prompt.yaml", "an error"));
        assert!(set.has_errors());
    }
}
