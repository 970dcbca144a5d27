//! A commit's tree: one walk into an index of every entry by path, then listing its
//! files, odd (non-UTF-8) names and submodules, looking paths up (symbolic links
//! reported, never followed here) and reading blobs, also on other threads
//! ([`BlobReader`]). Knows nothing about prompts.

use std::collections::HashMap;
use std::path::PathBuf;

use git2::{ErrorCode, ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use super::{CommitInfo, GitError, GitRepo};

/// Blob file mode of a symbolic link in a git tree.
const MODE_SYMLINK: i32 = 0o120000;
/// File mode of a submodule (a gitlink) in a git tree.
const MODE_GITLINK: i32 = 0o160000;

/// What a path names in a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEntry {
    /// A regular (or executable) file (what it holds is not read: its size is told
    /// when it is read, [`CommitTree::read_at_most`]).
    File,
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
            Some(ObjectType::Blob) => TreeEntry::File,
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

    /// The bytes of the regular file at `path`; `Ok(Err(size))` when it is over
    /// `limit` bytes (see [`BlobReader::read_at_most`]).
    pub fn read_at_most(&self, path: &str, limit: u64) -> Result<Result<Vec<u8>, u64>, GitError> {
        let read = |source| self.read_error(crate::excerpt::quoted(path), source);
        let oid = self.blob_id(path).ok_or_else(|| {
            read(git2::Error::new(
                ErrorCode::NotFound,
                git2::ErrorClass::Tree,
                "no regular file at this path in the commit",
            ))
        })?;
        at_most(&self.repo.repo, oid, limit).map_err(read)
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
    /// (libgit2's stream of a loose object, which gives the size as it opens, costs
    /// more CPU than the header and the read: it maps the file and hashes as it goes.)
    pub fn read_at_most(
        &self,
        path: &str,
        oid: Oid,
        limit: u64,
    ) -> Result<Result<Vec<u8>, u64>, GitError> {
        at_most(&self.repo, oid, limit)
            .map_err(|source| GitError::read(crate::excerpt::quoted(path), &self.root, &source))
    }
}

/// Blob `oid`'s bytes, or its size when it is over `limit` (told by the object's
/// header, without loading it).
fn at_most(repo: &Repository, oid: Oid, limit: u64) -> Result<Result<Vec<u8>, u64>, git2::Error> {
    let odb = repo.odb()?;
    let (size, _) = odb.read_header(oid)?;
    if size as u64 > limit {
        return Ok(Err(size as u64));
    }
    Ok(Ok(odb.read(oid)?.data().to_vec()))
}

#[cfg(test)]
mod tests {
    use crate::testrepo::TestRepo;

    use super::*;

    fn repo() -> TestRepo {
        let repo = TestRepo::new();
        repo.write("prompts/a.prompt.yaml", "name: A\n")
            .write("prompts/texts/long.md", "Hello\n")
            .symlink("prompts/link.md", "texts/long.md");
        repo.commit("first", 1_700_000_000);
        repo
    }

    #[test]
    fn a_commit_tree_lists_its_files_in_path_order_and_reports_links() {
        let repo = repo();
        let git = GitRepo::open(repo.path()).unwrap();
        let commit = git.resolve_commit("HEAD").unwrap();
        let tree = git.tree(&commit).unwrap();
        let files: Vec<(String, bool)> = tree
            .files()
            .unwrap()
            .into_iter()
            .map(|file| (file.path, file.symlink))
            .collect();
        assert_eq!(
            files,
            vec![
                ("prompts/a.prompt.yaml".to_owned(), false),
                ("prompts/link.md".to_owned(), true),
                ("prompts/texts/long.md".to_owned(), false),
            ]
        );
        assert!(tree.odd_names().unwrap().is_empty());
        assert!(tree.submodules(&|_| true).unwrap().is_empty());
    }

    #[test]
    fn entries_say_what_a_path_names_without_following_links() {
        let repo = repo();
        let git = GitRepo::open(repo.path()).unwrap();
        let tree = git.tree(&git.resolve_commit("HEAD").unwrap()).unwrap();
        assert_eq!(
            tree.entry("prompts/texts/long.md").unwrap(),
            Some(TreeEntry::File)
        );
        assert_eq!(
            tree.entry("prompts/link.md").unwrap(),
            Some(TreeEntry::Symlink {
                target: "texts/long.md".into()
            })
        );
        assert_eq!(tree.entry("prompts").unwrap(), Some(TreeEntry::Dir));
        assert_eq!(tree.entry("").unwrap(), Some(TreeEntry::Dir));
        assert_eq!(tree.entry("nothing.md").unwrap(), None);
        assert!(tree.blob_id("prompts/link.md").is_none());
        assert!(tree.blob_id("prompts").is_none());
    }

    #[test]
    fn blobs_read_here_and_on_another_thread_within_a_limit() {
        let repo = repo();
        let git = GitRepo::open(repo.path()).unwrap();
        let tree = git.tree(&git.resolve_commit("HEAD").unwrap()).unwrap();
        assert_eq!(tree.read("prompts/texts/long.md").unwrap(), b"Hello\n");
        assert_eq!(tree.read("prompts/link.md").unwrap(), b"texts/long.md");
        assert!(tree.read("nothing.md").is_err());

        let oid = tree.blob_id("prompts/texts/long.md").unwrap();
        let reader = tree.blob_reader().unwrap();
        let read = std::thread::spawn(move || {
            (
                reader.read_at_most("long.md", oid, 6).unwrap(),
                reader.read_at_most("long.md", oid, 5).unwrap(),
            )
        })
        .join()
        .unwrap();
        assert_eq!(read, (Ok(b"Hello\n".to_vec()), Err(6)));
    }

    /// Loose and packed objects: the same bytes and the same limit either way.
    #[test]
    fn loose_and_packed_blobs_read_the_same() {
        let repo = repo();
        let read = |limit| {
            let git = GitRepo::open(repo.path()).unwrap();
            let tree = git.tree(&git.resolve_commit("HEAD").unwrap()).unwrap();
            let oid = tree.blob_id("prompts/texts/long.md").unwrap();
            let reader = tree.blob_reader().unwrap();
            reader.read_at_most("long.md", oid, limit).unwrap()
        };
        let loose = (read(6), read(5));
        assert_eq!(loose, (Ok(b"Hello\n".to_vec()), Err(6)));
        repo.git(&["repack", "-a", "-d", "--quiet"], 0);
        repo.git(&["prune-packed"], 0);
        assert!(
            std::fs::read_dir(repo.path().join(".git/objects/pack"))
                .unwrap()
                .any(|entry| entry
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|e| e == "pack")),
            "the objects are packed"
        );
        assert_eq!((read(6), read(5)), loose);
    }
}
