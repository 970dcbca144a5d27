//! git2 only: open a repository (also a linked worktree, a shallow clone, a detached
//! HEAD), resolve revisions, read files from a commit's tree, list tags. Blocking:
//! async callers use `spawn_blocking`. Knows nothing about prompts.

use thiserror::Error;

#[derive(Debug, Error)]
#[error("git error")]
pub struct GitError {}

use std::path::{Path, PathBuf};

/// An open repository (skeleton: the real one lands with the git work).
#[derive(Debug)]
pub struct GitRepo {
    root: PathBuf,
}

/// A resolved commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    pub subject: String,
    pub time: i64,
}

/// Tags that point at commits, and the ones skipped.
#[derive(Debug, Clone, Default)]
pub struct TagScan {
    pub tags: Vec<TagInfo>,
    pub skipped: Vec<SkippedTag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    pub name: String,
    pub commit: String,
    pub date: i64,
    pub annotated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTag {
    pub name: String,
    pub reason: String,
}

impl GitRepo {
    pub fn open(path: &Path) -> Result<GitRepo, GitError> {
        Ok(GitRepo {
            root: path.to_owned(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn git_dir(&self) -> &Path {
        &self.root
    }

    pub fn resolve_commit(&self, _rev: &str) -> Result<CommitInfo, GitError> {
        Err(GitError {})
    }

    pub fn tags(&self) -> Result<TagScan, GitError> {
        Ok(TagScan::default())
    }
}
