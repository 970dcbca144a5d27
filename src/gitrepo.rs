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

/// A submodule of a commit's tree, found by [`CommitTree::submodules`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmoduleFiles {
    /// Its path from the tree root.
    pub path: String,
    /// The files asked for of the commit it records, from the tree root; `None` when
    /// that commit cannot be read here (the submodule is not checked out, or lacks it).
    pub files: Option<Vec<String>>,
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

    /// The tree of `commit`, for reading its files.
    pub fn tree(&self, commit: &CommitInfo) -> Result<CommitTree<'_>, GitError> {
        let read = |source: git2::Error| {
            GitError::read(format!("commit {}", commit.id), &self.root, &source)
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

    /// The files of commit `oid` of the submodule checked out at `path` that `accept`
    /// takes (given `path/file`); `None` when the submodule is not checked out or does
    /// not have that commit.
    fn submodule_files(
        &self,
        path: &str,
        oid: Oid,
        accept: &dyn Fn(&str) -> bool,
    ) -> Option<Vec<String>> {
        let repo = Repository::open(self.root.join(path)).ok()?;
        let tree = repo.find_commit(oid).ok()?.tree().ok()?;
        blob_paths(&repo, tree.id(), &format!("{path}/"), accept).ok()
    }

    /// Whether git ignores `path` (relative to the root; a directory ends with `/`).
    pub fn is_ignored(&self, path: &str) -> bool {
        self.repo.is_path_ignored(path).unwrap_or(false)
    }

    /// All tags that point (directly or through annotated tag objects) at commits;
    /// the others are returned in `skipped` with a reason, for a warning.
    pub fn tags(&self) -> Result<TagScan, GitError> {
        let read = |source: git2::Error| GitError::read("tags".to_owned(), &self.root, &source);
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
                    let commit = object
                        .peel_to_commit()
                        .map_err(|err| err.message().to_owned())?;
                    let date = tag_date.unwrap_or_else(|| commit.time().seconds());
                    return Ok((commit.id().to_string(), date, annotated));
                }
                Some(ObjectType::Tag) => {
                    let tag = object
                        .peel_to_tag()
                        .map_err(|err| err.message().to_owned())?;
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

/// The paths of the files (blobs) under tree `oid` that `accept` takes, each after
/// `prefix`, names that are not UTF-8 as lossy text, in path order. Submodules are not
/// entered.
fn blob_paths(
    repo: &Repository,
    oid: Oid,
    prefix: &str,
    accept: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, git2::Error> {
    let mut files = Vec::new();
    let mut pending = vec![(prefix.to_owned(), oid)];
    while let Some((dir, oid)) = pending.pop() {
        let tree = repo.find_tree(oid)?;
        for entry in tree.iter() {
            let path = format!("{dir}{}", String::from_utf8_lossy(entry.name_bytes()));
            match entry.kind() {
                Some(ObjectType::Blob) if accept(&path) => files.push(path),
                Some(ObjectType::Tree) => pending.push((format!("{path}/"), entry.id())),
                _ => {}
            }
        }
    }
    files.sort();
    Ok(files)
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
    /// Files whose path is not UTF-8 (their name, or a directory's on the way), as
    /// lossy text, in path order: they cannot be named, only reported.
    odd_names: Vec<String>,
    /// The submodules (gitlinks): path and the commit they record.
    submodules: Vec<(String, Oid)>,
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
        GitError::read(what, &self.repo.root, &source)
    }

    /// Every entry of the tree by path, from one walk. Paths that are not UTF-8 are
    /// kept apart ([`CommitTree::odd_names`]); submodules are not entered.
    fn index(&self) -> Result<&TreeIndex, GitError> {
        if let Some(index) = self.index.get() {
            return Ok(index);
        }
        let mut index = TreeIndex::default();
        // Trees whose name is not UTF-8: git2 cannot walk below them (it hands paths
        // over as `&str`), so they are listed apart.
        let mut odd_trees: Vec<(String, Oid)> = Vec::new();
        self.tree
            .walk(TreeWalkMode::PreOrder, |dir, entry| {
                let kind = entry.kind();
                let Ok(name) = std::str::from_utf8(entry.name_bytes()) else {
                    let path = format!("{dir}{}", String::from_utf8_lossy(entry.name_bytes()));
                    match kind {
                        Some(ObjectType::Blob) => index.odd_names.push(path),
                        Some(ObjectType::Tree) => odd_trees.push((path, entry.id())),
                        _ => {}
                    }
                    return TreeWalkResult::Skip;
                };
                let path = format!("{dir}{name}");
                let mode = entry.filemode();
                if kind == Some(ObjectType::Blob) {
                    index.files.push(TreeFile {
                        path: path.clone(),
                        symlink: mode == MODE_SYMLINK,
                    });
                } else if mode == MODE_GITLINK {
                    index.submodules.push((path.clone(), entry.id()));
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
        for (path, oid) in odd_trees {
            let files = blob_paths(&self.repo.repo, oid, &format!("{path}/"), &|_| true).map_err(
                |source| self.read_error(format!("the tree of {}", self.commit.id), source),
            )?;
            index.odd_names.extend(files);
        }
        index.odd_names.sort();
        // Git keeps a tree's entries sorted with directories as if named `dir/`, so
        // a walk meets the paths in order; a tree written out of order is sorted here.
        if !index.files.is_sorted_by(|a, b| a.path <= b.path) {
            index.files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        Ok(self.index.get_or_init(|| index))
    }

    /// The files of the tree whose path is not UTF-8, as lossy text (`\u{fffd}` for
    /// the bytes that are not), in path order.
    pub fn odd_names(&self) -> Result<&[String], GitError> {
        Ok(&self.index()?.odd_names)
    }

    /// The submodules of the tree: each path, and the files of the commit it records
    /// that `accept` takes (given their path from this tree's root), when that commit
    /// can be read (the submodule is checked out at `path` and has it); `None` when it
    /// cannot be.
    pub fn submodules(
        &self,
        accept: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<SubmoduleFiles>, GitError> {
        Ok(self
            .index()?
            .submodules
            .iter()
            .map(|(path, oid)| SubmoduleFiles {
                path: path.clone(),
                files: self.repo.submodule_files(path, *oid, accept),
            })
            .collect())
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
        let read = |source| self.read_error(crate::excerpt::quoted(path), source);
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
        let open = |source: git2::Error| {
            GitError::read(
                "the repository, again for reading on another thread".to_owned(),
                &self.repo.root,
                &source,
            )
        };
        Ok(BlobReader {
            repo: Repository::open(self.repo.repo.path()).map_err(open)?,
            root: self.repo.root.clone(),
        })
    }

    /// The bytes of the file (or symlink target) at `path`.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, GitError> {
        let read = |source| self.read_error(crate::excerpt::quoted(path), source);
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
        let read =
            |source: git2::Error| GitError::read(crate::excerpt::quoted(path), &self.root, &source);
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
