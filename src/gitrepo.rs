//! git2 only: open a repository (also a linked worktree, a shallow clone, a detached
//! HEAD, promptsync's bare mirror of a remote source), its identity (root, git dirs,
//! ignore rules, remote) and revisions resolved to commits; a commit's files are read
//! in `gitrepo::tree`, its tags listed in `gitrepo::tags`. Blocking: async callers
//! use `spawn_blocking`. Knows nothing about prompts.

use std::path::{Path, PathBuf};

use git2::{ErrorCode, Repository, RepositoryOpenFlags};
use thiserror::Error;

mod tags;
mod tree;
pub use tags::{SkippedTag, TagScan};
pub use tree::{BlobReader, CommitTree, SubmoduleFiles, TreeEntry, TreeFile};

/// A failure to open or read the repository. Said in our words: libgit2's own text
/// (`class=Reference (4); code=NotFound (-3)`) is logged, never shown; a revision or
/// path quoted is cut to an excerpt.
#[derive(Debug, Error)]
pub enum GitError {
    #[error(
        "{} does not exist: pass --repo the directory of a git repository's working tree",
        shown(path)
    )]
    Missing { path: PathBuf },

    #[error(
        "{} is a file, not a directory: pass --repo the directory of a git repository's working tree",
        shown(path)
    )]
    NotADirectory { path: PathBuf },

    #[error(
        "{} is not inside a git repository: run promptsync in the repository that holds the prompt files, or pass --repo PATH",
        shown(path)
    )]
    NotARepository { path: PathBuf },

    #[error(
        "git refuses the repository at {}: it is owned by another user. Run promptsync as the \
         repository's owner (for kubernetes git-sync, uid 65533), or mark it safe knowingly with \
         `git config --global --add safe.directory {}`",
        path.display(),
        shell_word(&path.to_string_lossy())
    )]
    NotOwner {
        /// The work tree's top, absolute and canonical: what `safe.directory` must say.
        path: PathBuf,
    },

    #[error(
        "{} is a bare repository: promptsync needs a working tree (clone it without --bare)",
        path.display()
    )]
    Bare { path: PathBuf },

    #[error(
        "the repository at {} has no commits yet: commit the prompt files first, or use --worktree to read the working tree",
        root.display()
    )]
    NoCommits { root: PathBuf },

    #[error("unknown revision {} in {}: {reason}", shown_rev(rev), root.display())]
    UnknownRevision {
        rev: String,
        root: PathBuf,
        /// Why, in a sentence of ours that ends with what to give instead.
        reason: &'static str,
    },

    #[error(
        "revision {} is a {kind}, not a commit: give a branch, tag or commit id",
        shown_rev(rev)
    )]
    NotACommit { rev: String, kind: String },

    #[error("cannot read {what} in the repository at {}: {message}", root.display())]
    Read {
        what: String,
        root: PathBuf,
        /// libgit2's message, without its class and code.
        message: String,
    },
}

impl GitError {
    /// What to do next (`crate::failure`): a repository that is not ours to read
    /// (another owner, bare) needs a person; the rest may pass on a later look.
    pub fn class(&self) -> crate::failure::FailureClass {
        use crate::failure::FailureClass;
        match self {
            GitError::NotOwner { .. } | GitError::Bare { .. } => FailureClass::Stalled,
            _ => FailureClass::Transient,
        }
    }
}

/// A path for a message: an excerpt of it, as a path given on the command line can be
/// any length.
fn shown(path: &Path) -> String {
    crate::excerpt::excerpt(&path.display().to_string()).into_owned()
}

/// A revision for a message: an excerpt, on one line (a line break in it is escaped).
fn shown_rev(rev: &str) -> String {
    crate::term::line(&crate::excerpt::quoted(rev)).into_owned()
}

impl GitError {
    fn read(what: String, root: &Path, source: &git2::Error) -> GitError {
        tracing::debug!(what = %what, error = %source, "git read failed");
        GitError::Read {
            what,
            root: root.to_owned(),
            message: source.message().trim_end_matches('.').to_owned(),
        }
    }
}

/// Why git could not resolve a revision, from libgit2's code: what to give instead.
fn revision_reason(err: &git2::Error) -> &'static str {
    match (err.code(), err.class()) {
        (ErrorCode::InvalidSpec, _) => {
            "git cannot read it as a revision: give a branch, tag or commit id (`main`, `v1.2.0`, `HEAD~2` and the like)"
        }
        (ErrorCode::Ambiguous, _) => {
            "the short id matches more than one object: give more of its digits"
        }
        (ErrorCode::NotFound, git2::ErrorClass::Reference) => {
            "no branch, tag or commit of that name exists here: give one that does (in a shallow clone, fetch it first)"
        }
        (ErrorCode::NotFound, _) => {
            "it leads to a commit this repository does not have (the history is shorter, or a shallow clone lacks it): give one that exists here"
        }
        _ => "git cannot resolve it here: give a branch, tag or commit id that exists here",
    }
}

/// The git config key that marks a bare repository as a promptsync mirror (made by
/// `source`), which [`GitRepo::open`] reads like a working tree.
pub const MARKER_KEY: &str = "promptsync.mirror";

/// An open repository with a working tree.
pub struct GitRepo {
    repo: Repository,
    root: PathBuf,
    git_dir: PathBuf,
    /// The worktree's own git dir (`.git/worktrees/NAME` for a linked worktree; the
    /// same as `git_dir` otherwise), canonical.
    worktree_git_dir: PathBuf,
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo")
            .field("root", &self.root)
            .field("git_dir", &self.git_dir)
            .finish_non_exhaustive()
    }
}

/// A commit, as promptsync records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full hex id.
    pub id: String,
    /// First line of the message.
    pub subject: String,
    /// Committer time, unix seconds.
    pub time: i64,
}

impl GitRepo {
    /// Open the repository at `path` (its work tree root or any directory inside it;
    /// linked worktrees too). Owner-check failures (git2 code -36) get an error that
    /// explains safe.directory.
    pub fn open(path: &Path) -> Result<GitRepo, GitError> {
        match std::fs::metadata(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(GitError::Missing {
                    path: path.to_owned(),
                });
            }
            Ok(metadata) if !metadata.is_dir() => {
                return Err(GitError::NotADirectory {
                    path: path.to_owned(),
                });
            }
            _ => {}
        }
        let repo = Repository::open_ext(
            path,
            RepositoryOpenFlags::empty(),
            std::iter::empty::<&str>(),
        )
        .map_err(|err| match err.code() {
            ErrorCode::Owner => GitError::NotOwner {
                path: safe_directory(path),
            },
            _ => GitError::NotARepository {
                path: path.to_owned(),
            },
        })?;
        // A bare repository is refused, but for promptsync's own mirror of a remote
        // source (`[source]`), whose commits are read like any other.
        let mirror = repo.is_bare()
            && repo
                .config()
                .and_then(|config| config.get_bool(MARKER_KEY))
                .unwrap_or(false);
        let Some(workdir) = repo.workdir().or_else(|| mirror.then(|| repo.path())) else {
            return Err(GitError::Bare {
                path: repo.path().to_owned(),
            });
        };
        let root = std::fs::canonicalize(workdir).unwrap_or_else(|_| workdir.to_owned());
        let canonical =
            |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let git_dir = canonical(repo.commondir());
        let worktree_git_dir = canonical(repo.path());
        tracing::debug!(root = %root.display(), git_dir = %git_dir.display(), "opened repository");
        Ok(GitRepo {
            repo,
            root,
            git_dir,
            worktree_git_dir,
        })
    }

    /// Every git dir of this checkout (canonical): the common dir and the worktree's own
    /// (they differ for a linked worktree). Nothing under them is read as a prompt or
    /// content file: they hold the configuration, credentials included.
    pub fn git_dirs(&self) -> [&Path; 2] {
        [&self.git_dir, &self.worktree_git_dir]
    }

    /// The URL of the remote `name` (`origin`), as configured; `None` without one.
    pub fn remote_url(&self, name: &str) -> Option<String> {
        let remote = self.repo.find_remote(name).ok()?;
        remote.url().ok().map(str::to_owned)
    }

    /// The work tree root (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The repository's own git dir (for `.git/promptsync/` state); for a linked
    /// worktree, the common dir shared by all its worktrees.
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// This worktree's own git dir (where its `HEAD` is): the git dir itself for the
    /// main worktree, `.git/worktrees/<name>` for a linked one (canonical).
    pub fn worktree_git_dir(&self) -> PathBuf {
        std::fs::canonicalize(self.repo.path()).unwrap_or_else(|_| self.repo.path().to_owned())
    }

    /// The ignore files git reads after every `.gitignore` of the working tree, in
    /// that order: `info/exclude` of the common git dir, then `core.excludesFile`
    /// (`$XDG_CONFIG_HOME/git/ignore` when unset); and whether they match without
    /// regard to case (`core.ignoreCase`).
    pub fn exclude_files(&self) -> (Vec<PathBuf>, bool) {
        let config = self.repo.config().ok();
        let excludes = config
            .as_ref()
            .and_then(|config| config.get_path("core.excludesfile").ok())
            .or_else(|| {
                let config_home = std::env::var_os("XDG_CONFIG_HOME")
                    .filter(|dir| !dir.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|home| Path::new(&home).join(".config"))
                    })?;
                Some(config_home.join("git").join("ignore"))
            });
        let ignore_case = config
            .as_ref()
            .and_then(|config| config.get_bool("core.ignorecase").ok())
            .unwrap_or(false);
        let files = std::iter::once(self.git_dir.join("info").join("exclude"))
            .chain(excludes)
            .collect();
        (files, ignore_case)
    }

    /// Whether this is a shallow clone.
    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// Resolve a revision (HEAD, branch, tag, id) to a commit. A repository without
    /// commits is a clear error.
    pub fn resolve_commit(&self, rev: &str) -> Result<CommitInfo, GitError> {
        let object = self.repo.revparse_single(rev).map_err(|source| {
            let head_unborn =
                matches!(self.repo.head(), Err(err) if err.code() == ErrorCode::UnbornBranch);
            if source.code() == ErrorCode::UnbornBranch || (head_unborn && rev == "HEAD") {
                GitError::NoCommits {
                    root: self.root.clone(),
                }
            } else {
                tracing::debug!(error = %source, "git could not resolve the revision");
                GitError::UnknownRevision {
                    rev: rev.to_owned(),
                    root: self.root.clone(),
                    reason: revision_reason(&source),
                }
            }
        })?;
        let kind = object.kind();
        let commit = object.peel_to_commit().map_err(|_| GitError::NotACommit {
            rev: rev.to_owned(),
            kind: kind.map_or_else(|| "unknown object".to_owned(), |k| k.to_string()),
        })?;
        Ok(commit_info(&commit))
    }

    /// Whether git ignores `path` (relative to the root; a directory ends with `/`).
    pub fn is_ignored(&self, path: &str) -> bool {
        self.repo.is_path_ignored(path).unwrap_or(false)
    }
}

/// The directory that `safe.directory` must name for the repository found from `path`:
/// absolute and canonical (git compares the value with the repository's path as it is,
/// so `.` or a relative path never matches), and the work tree's top (found by its
/// `.git`), not the subdirectory promptsync was started in.
fn safe_directory(path: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_owned());
    canonical
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .map_or_else(|| canonical.clone(), Path::to_owned)
}

/// `text` as one word for a POSIX shell: as it is when that is safe, else in single
/// quotes.
pub(crate) fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | '@')
        });
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn commit_info(commit: &git2::Commit<'_>) -> CommitInfo {
    let subject = commit
        .summary_bytes()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default();
    CommitInfo {
        id: commit.id().to_string(),
        subject,
        time: commit.time().seconds(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_directory_advice_is_absolute_and_shell_safe() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap().join("my repo");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("sub/dir")).unwrap();
        assert_eq!(safe_directory(&root.join("sub/dir")), root);
        let err = GitError::NotOwner { path: root.clone() };
        assert!(
            err.to_string().ends_with(&format!(
                "`git config --global --add safe.directory '{}'`",
                root.display()
            )),
            "{err}"
        );
        assert_eq!(shell_word("/srv/repo"), "/srv/repo");
        assert_eq!(shell_word("/it's"), "'/it'\\''s'");
    }

    /// Async callers move a `GitRepo` into `spawn_blocking`.
    #[test]
    fn git_repo_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<GitRepo>();
        assert_send::<GitError>();
    }
}
