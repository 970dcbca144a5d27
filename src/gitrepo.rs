//! git2 only: open a repository (also a linked worktree, a shallow clone, a detached
//! HEAD), resolve revisions, read files from a commit's tree, list tags. Blocking:
//! async callers use `spawn_blocking`. Knows nothing about prompts.

use thiserror::Error;

#[derive(Debug, Error)]
#[error("git error")]
pub struct GitError {}
