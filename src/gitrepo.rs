//! git2 only: open a repository (also a linked worktree, a shallow clone, a detached
//! HEAD, promptsync's bare mirror of a remote source), resolve revisions, read files from a commit's tree, list tags. Blocking:
//! async callers use `spawn_blocking`. Knows nothing about prompts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use git2::{
    ErrorCode, ObjectType, Oid, Repository, RepositoryOpenFlags, TreeWalkMode, TreeWalkResult,
};
use thiserror::Error;

/// Blob file mode of a symbolic link in a git tree.
const MODE_SYMLINK: i32 = 0o120000;
/// File mode of a submodule (a gitlink) in a git tree.
const MODE_GITLINK: i32 = 0o160000;

/// A failure to open or read the repository.
#[derive(Debug, Error)]
pub enum GitError {
    #[error(
        "{} is not inside a git repository: run promptsync in the repository that holds the prompt files, or pass --repo PATH",
        path.display()
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

    #[error(
        "unknown revision `{rev}` in {}: give a branch, tag or commit id that exists here (in a shallow clone, fetch it first)",
        root.display()
    )]
    UnknownRevision {
        rev: String,
        root: PathBuf,
        #[source]
        source: git2::Error,
    },

    #[error("revision `{rev}` is a {kind}, not a commit: give a branch, tag or commit id")]
    NotACommit { rev: String, kind: String },

    #[error("cannot read {what} in the repository at {}: {source}", root.display())]
    Read {
        what: String,
        root: PathBuf,
        #[source]
        source: git2::Error,
    },
}

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

/// The tags of a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagScan {
    /// Tags that lead to a commit, by name.
    pub tags: Vec<TagInfo>,
    /// Tags that do not (they point at a tree or a blob, or at an object missing from a
    /// shallow clone), with the reason, for a warning.
    pub skipped: Vec<SkippedTag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// Short name (`v1.2.0`).
    pub name: String,
    /// Full id of the commit the tag leads to.
    pub commit: String,
    /// The annotated tag's own date (tagger), or the commit's date for a lightweight
    /// tag; unix seconds.
    pub date: i64,
    pub annotated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTag {
    pub name: String,
    pub reason: String,
}

/// What a path names in a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEntry {
    /// A regular (or executable) file of `size` bytes.
    File {
        size: u64,
    },
    /// A symbolic link, with its target as stored.
    Symlink {
        target: String,
    },
    Dir,
    /// A submodule (its files are not in this repository).
    Submodule,
}

/// A file of a commit's tree, found by [`CommitTree::files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Path from the tree root, `/`-separated.
    pub path: String,
    pub symlink: bool,
}

impl GitRepo {
    /// Open the repository at `path` (its work tree root or any directory inside it;
    /// linked worktrees too). Owner-check failures (git2 code -36) get an error that
    /// explains safe.directory.
    pub fn open(path: &Path) -> Result<GitRepo, GitError> {
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
                .and_then(|config| config.get_bool(crate::source::MARKER_KEY))
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
                GitError::UnknownRevision {
                    rev: rev.to_owned(),
                    root: self.root.clone(),
                    source,
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

    /// The tree of `commit`, for reading its files.
    pub fn tree(&self, commit: &CommitInfo) -> Result<CommitTree<'_>, GitError> {
        let read = |source| GitError::Read {
            what: format!("commit {}", commit.id),
            root: self.root.clone(),
            source,
        };
        let oid = Oid::from_str(&commit.id).map_err(read)?;
        let tree = self
            .repo
            .find_commit(oid)
            .and_then(|commit| commit.tree())
            .map_err(read)?;
        Ok(CommitTree {
            repo: self,
            commit: commit.clone(),
            tree,
            index: std::cell::OnceCell::new(),
        })
    }

    /// Whether git ignores `path` (relative to the root; a directory ends with `/`).
    pub fn is_ignored(&self, path: &str) -> bool {
        self.repo.is_path_ignored(path).unwrap_or(false)
    }

    /// All tags that point (directly or through annotated tag objects) at commits;
    /// the others are returned in `skipped` with a reason, for a warning.
    pub fn tags(&self) -> Result<TagScan, GitError> {
        let read = |source| GitError::Read {
            what: "tags".to_owned(),
            root: self.root.clone(),
            source,
        };
        let mut scan = TagScan::default();
        for reference in self.repo.references().map_err(read)? {
            let reference = reference.map_err(read)?;
            let Some(name) = reference.name_bytes().strip_prefix(b"refs/tags/") else {
                continue;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let target = match reference.resolve() {
                Ok(resolved) => resolved.target(),
                Err(_) => None,
            };
            let Some(target) = target else {
                scan.skipped.push(SkippedTag {
                    name,
                    reason: "it is a symbolic reference that leads nowhere".to_owned(),
                });
                continue;
            };
            match self.peel_tag(target) {
                Ok((commit, date, annotated)) => scan.tags.push(TagInfo {
                    name,
                    commit,
                    date,
                    annotated,
                }),
                Err(reason) => scan.skipped.push(SkippedTag { name, reason }),
            }
        }
        scan.tags.sort_by(|a, b| a.name.cmp(&b.name));
        scan.skipped.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(scan)
    }

    /// The commit id, date and kind of the tag whose ref points at `oid`.
    fn peel_tag(&self, oid: Oid) -> Result<(String, i64, bool), String> {
        let missing = |oid: Oid| {
            let hint = if self.repo.is_shallow() {
                " (a shallow clone: fetch more history)"
            } else {
                ""
            };
            format!("it points at {oid}, which is not in this repository{hint}")
        };
        let mut object = self.repo.find_object(oid, None).map_err(|_| missing(oid))?;
        let mut tag_date = None;
        let mut annotated = false;
        for _ in 0..16 {
            match object.kind() {
                Some(ObjectType::Commit) => {
                    let commit = object.peel_to_commit().map_err(|err| err.to_string())?;
                    let date = tag_date.unwrap_or_else(|| commit.time().seconds());
                    return Ok((commit.id().to_string(), date, annotated));
                }
                Some(ObjectType::Tag) => {
                    let tag = object.peel_to_tag().map_err(|err| err.to_string())?;
                    annotated = true;
                    if tag_date.is_none() {
                        tag_date = tag.tagger().map(|tagger| tagger.when().seconds());
                    }
                    let target = tag.target_id();
                    object = self
                        .repo
                        .find_object(target, None)
                        .map_err(|_| missing(target))?;
                }
                Some(kind) => return Err(format!("it points at a {kind}, not a commit")),
                None => return Err("it points at an object of unknown kind".to_owned()),
            }
        }
        Err("it is a chain of more than 16 tag objects".to_owned())
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

/// The tree of one commit: list its files, look up and read paths. Paths are
/// `/`-separated from the tree root; symlinks are reported, never followed here.
///
/// The tree is walked once, on first use, into an index of every entry by path:
/// looking paths up one by one in git (`Tree::get_path`) reads and checks the hash of
/// every tree object along the path each time, which made reading a directory of n
/// files cost n² (10,000 files did not load in two minutes).
pub struct CommitTree<'r> {
    repo: &'r GitRepo,
    commit: CommitInfo,
    tree: git2::Tree<'r>,
    index: std::cell::OnceCell<TreeIndex>,
}

/// Every entry of a commit's tree, from one walk: by path (looked up several times a
/// file on every pass, so hashed with foldhash), and the files in path order.
#[derive(Debug, Default)]
struct TreeIndex {
    entries: HashMap<String, IndexEntry, foldhash::fast::RandomState>,
    files: Vec<TreeFile>,
}

/// One entry of a commit's tree.
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    oid: Oid,
    mode: i32,
    kind: Option<ObjectType>,
}

impl std::fmt::Debug for CommitTree<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitTree")
            .field("commit", &self.commit.id)
            .finish_non_exhaustive()
    }
}

impl CommitTree<'_> {
    pub fn commit(&self) -> &CommitInfo {
        &self.commit
    }

    fn read_error(&self, what: String, source: git2::Error) -> GitError {
        GitError::Read {
            what,
            root: self.repo.root.clone(),
            source,
        }
    }

    /// Every entry of the tree by path, from one walk. Paths that are not UTF-8 are
    /// skipped with a warning; submodules are not entered.
    fn index(&self) -> Result<&TreeIndex, GitError> {
        if let Some(index) = self.index.get() {
            return Ok(index);
        }
        let mut index = TreeIndex::default();
        self.tree
            .walk(TreeWalkMode::PreOrder, |dir, entry| {
                let Ok(name) = std::str::from_utf8(entry.name_bytes()) else {
                    tracing::warn!(dir, name = %String::from_utf8_lossy(entry.name_bytes()), "skipping a path that is not UTF-8");
                    return TreeWalkResult::Skip;
                };
                let path = format!("{dir}{name}");
                let kind = entry.kind();
                let mode = entry.filemode();
                if kind == Some(ObjectType::Blob) {
                    index.files.push(TreeFile {
                        path: path.clone(),
                        symlink: mode == MODE_SYMLINK,
                    });
                }
                index.entries.insert(
                    path,
                    IndexEntry {
                        oid: entry.id(),
                        mode,
                        kind,
                    },
                );
                TreeWalkResult::Ok
            })
            .map_err(|source| self.read_error(format!("the tree of {}", self.commit.id), source))?;
        // Git keeps a tree's entries sorted with directories as if named `dir/`, so
        // a walk meets the paths in order; a tree written out of order is sorted here.
        if !index.files.is_sorted_by(|a, b| a.path <= b.path) {
            index.files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        Ok(self.index.get_or_init(|| index))
    }

    /// Every file and symlink of the tree, in path order.
    pub fn files(&self) -> Result<Vec<TreeFile>, GitError> {
        Ok(self.index()?.files.clone())
    }

    /// What `path` names, or `None` when nothing is there.
    pub fn entry(&self, path: &str) -> Result<Option<TreeEntry>, GitError> {
        if path.is_empty() {
            return Ok(Some(TreeEntry::Dir));
        }
        let Some(entry) = self.index()?.entries.get(path).copied() else {
            return Ok(None);
        };
        let read = |source| self.read_error(format!("`{path}`"), source);
        Ok(Some(match entry.kind {
            Some(ObjectType::Tree) => TreeEntry::Dir,
            _ if entry.mode == MODE_GITLINK => TreeEntry::Submodule,
            Some(ObjectType::Blob) if entry.mode == MODE_SYMLINK => {
                let blob = self.repo.repo.find_blob(entry.oid).map_err(read)?;
                TreeEntry::Symlink {
                    target: String::from_utf8_lossy(blob.content()).into_owned(),
                }
            }
            Some(ObjectType::Blob) => {
                // The size from the object header, without loading the content.
                let (size, _) = self
                    .repo
                    .repo
                    .odb()
                    .and_then(|odb| odb.read_header(entry.oid))
                    .map_err(read)?;
                TreeEntry::File { size: size as u64 }
            }
            _ => TreeEntry::Submodule,
        }))
    }

    /// The blob id of the regular file at `path` (`None` for anything else: a link, a
    /// directory, nothing), without reading it.
    pub fn blob_id(&self, path: &str) -> Option<Oid> {
        let entry = self.index().ok()?.entries.get(path).copied()?;
        (entry.kind == Some(ObjectType::Blob) && entry.mode != MODE_SYMLINK).then_some(entry.oid)
    }

    /// A reader of this tree's blobs for another thread (see [`BlobReader`]).
    pub fn blob_reader(&self) -> Result<BlobReader, GitError> {
        let open = |source| GitError::Read {
            what: "the repository, again for reading on another thread".to_owned(),
            root: self.repo.root.clone(),
            source,
        };
        Ok(BlobReader {
            repo: Repository::open(self.repo.repo.path()).map_err(open)?,
            root: self.repo.root.clone(),
        })
    }

    /// The bytes of the file (or symlink target) at `path`.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, GitError> {
        let read = |source| self.read_error(format!("`{path}`"), source);
        let entry = self.index()?.entries.get(path).copied().ok_or_else(|| {
            read(git2::Error::new(
                ErrorCode::NotFound,
                git2::ErrorClass::Tree,
                "no such path in the commit",
            ))
        })?;
        let blob = self.repo.repo.find_blob(entry.oid).map_err(read)?;
        Ok(blob.content().to_vec())
    }
}

/// Reads blobs by id on a thread of its own: git2's handles are not shared between
/// threads, so this is a second handle on the same repository.
pub struct BlobReader {
    repo: Repository,
    root: PathBuf,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl BlobReader {
    /// The bytes of blob `oid` (the file at `path`, for messages); `Ok(Err(size))`
    /// when it is over `limit` bytes, told by the object's header without loading it.
    pub fn read_at_most(
        &self,
        path: &str,
        oid: Oid,
        limit: u64,
    ) -> Result<Result<Vec<u8>, u64>, GitError> {
        let read = |source| GitError::Read {
            what: format!("`{path}`"),
            root: self.root.clone(),
            source,
        };
        let odb = self.repo.odb().map_err(read)?;
        let (size, _) = odb.read_header(oid).map_err(read)?;
        if size as u64 > limit {
            return Ok(Err(size as u64));
        }
        Ok(Ok(odb.read(oid).map_err(read)?.data().to_vec()))
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
