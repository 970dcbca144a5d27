//! Find prompt files in a tree by the configured include/exclude globs, and read them;
//! a message's `content_file` is resolved inside the repository (never outside,
//! symlinks included) by `discover::resolve`.
//! A tree is a commit's (read through [`gitrepo`](crate::gitrepo)) or a directory on
//! disk (the working tree, less what git ignores: the rules read once per walk).
//! Nothing under a git directory is ever read (it holds the repository's
//! configuration, credentials included). On disk every file is read through
//! [`repofile`](crate::repofile), the one reader of files a repository names: links
//! followed inside the root only, regular files only, never more than
//! [`MAX_FILE_BYTES`]: a FIFO, socket or device that matches a glob is reported, not
//! read. Knows nothing about the prompt format.

use std::path::{Component, Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};
use thiserror::Error;

use crate::config::PromptSettings;
use crate::excerpt::quoted;
use crate::gitrepo::{BlobReader, CommitTree, GitError, GitRepo, TreeEntry};
use crate::localfile;
use crate::prompt::MAX_FILE_BYTES;
use crate::repofile::{MAX_SYMLINKS, Refusal, RepoDir};
use ignores::Ignores;
use resolve::tree_kind;
use walk::Walk;

mod ignores;
mod resolve;
mod walk;

/// A failure to list a tree (as opposed to a problem with one file).
#[derive(Debug, Error)]
pub enum DiscoverError {
    #[error(
        "invalid glob {} in prompts.{key}: {}; fix it in promptsync.toml",
        quoted(glob),
        error.kind()
    )]
    Glob {
        key: &'static str,
        glob: String,
        error: globset::Error,
    },

    #[error(
        "cannot list the directory {}: {}",
        crate::term::line(&path.display().to_string()),
        localfile::io_text(error)
    )]
    Walk {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error(transparent)]
    Git(#[from] GitError),
}

impl DiscoverError {
    /// What to do next (`crate::failure`): a bad glob needs a fix; a directory that
    /// could not be listed may list on a later look.
    pub fn class(&self) -> crate::failure::FailureClass {
        use crate::failure::FailureClass;
        match self {
            DiscoverError::Git(err) => err.class(),
            DiscoverError::Glob { .. } => FailureClass::Stalled,
            DiscoverError::Walk { .. } => FailureClass::Transient,
        }
    }
}

/// A problem reading one file of a tree. Paths are quoted as excerpts (a
/// `content_file` can name any length of path).
#[derive(Debug, Error)]
pub(crate) enum ReadError {
    #[error("{} does not exist", quoted(path))]
    Missing { path: String },

    #[error("{} leads outside the repository{}", quoted(path), via.as_ref().map(|v| format!(" (through the symbolic link {})", quoted(v))).unwrap_or_default())]
    Escapes { path: String, via: Option<String> },

    #[error(
        "{} does not exist: the symbolic link {} leads nowhere",
        quoted(path),
        quoted(link)
    )]
    Dangling { path: String, link: String },

    #[error("{} is {what}, not a regular file", quoted(path))]
    NotAFile { path: String, what: &'static str },

    #[error(
        "{} is inside the git directory, which promptsync never reads",
        quoted(path)
    )]
    InGitDir { path: String },

    #[error("the name of {} is not valid UTF-8", quoted(path))]
    NameNotUtf8 { path: String },

    #[error(
        "{} is inside the submodule {}, whose files promptsync does not read",
        quoted(path),
        quoted(submodule)
    )]
    InSubmodule { path: String, submodule: String },

    #[error("{} is {size} bytes, over the limit of 1 MiB", quoted(path))]
    TooLarge { path: String, size: u64 },

    #[error(
        "{} passes through more than {MAX_SYMLINKS} symbolic links",
        quoted(path)
    )]
    SymlinkLoop { path: String },

    #[error("cannot read {}: {}", quoted(path), localfile::io_text(error))]
    Io { path: String, error: std::io::Error },

    #[error(transparent)]
    Git(#[from] GitError),
}

/// The include/exclude globs of prompt files, matched against `/`-separated paths
/// relative to the repository root. `*` stays within a directory; `**` crosses them.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    include: GlobSet,
    exclude: GlobSet,
}

impl Matcher {
    pub(crate) fn new(settings: &PromptSettings) -> Result<Matcher, DiscoverError> {
        Ok(Matcher {
            include: glob_set("include", &settings.include)?,
            exclude: glob_set("exclude", &settings.exclude)?,
        })
    }

    pub(crate) fn is_match(&self, path: &str) -> bool {
        self.includes(path) && !self.excludes(path)
    }

    /// Whether an include glob matches `path`.
    pub(crate) fn includes(&self, path: &str) -> bool {
        self.include.is_match(path)
    }

    /// Whether an exclude glob matches `path`.
    pub(crate) fn excludes(&self, path: &str) -> bool {
        self.exclude.is_match(path)
    }
}

fn glob_set(key: &'static str, globs: &[String]) -> Result<GlobSet, DiscoverError> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let parsed = globset::GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .map_err(|error| DiscoverError::Glob {
                key,
                glob: glob.clone(),
                error,
            })?;
        builder.add(parsed);
    }
    builder.build().map_err(|error| DiscoverError::Glob {
        key,
        glob: globs.join(", "),
        error,
    })
}

/// Whether `path` matches the format's own file names (`*.prompt.yaml`,
/// `*.prompt.yml`), whatever the configuration says.
pub(crate) fn is_prompt_file_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".prompt.yaml") || name.ends_with(".prompt.yml")
}

/// A tree of files: a commit's or the working tree's. Paths are relative to the
/// repository root and `/`-separated.
#[derive(Debug)]
pub(crate) enum FileTree<'r> {
    Commit(CommitTree<'r>),
    Disk {
        /// The root, canonical.
        root: PathBuf,
        /// The repository, for its ignore rules; `None` for a plain directory.
        repo: Option<&'r GitRepo>,
    },
}

impl FileTree<'_> {
    /// The working tree of `repo`.
    pub(crate) fn worktree(repo: &GitRepo) -> FileTree<'_> {
        FileTree::Disk {
            root: repo.root().to_owned(),
            repo: Some(repo),
        }
    }

    /// Every file of the tree that `accept` takes, in path order. On disk: `.git`,
    /// nested repositories, git-ignored paths and symlinked directories are skipped;
    /// anything else that `accept` takes is listed, FIFOs, sockets, devices and links
    /// that lead nowhere included, so that reading it reports what it is. A name that
    /// is not UTF-8 cannot be read by its path: it is listed as unreadable.
    pub(crate) fn list(&self, accept: impl Fn(&str) -> bool) -> Result<Listing, DiscoverError> {
        self.list_under("", accept)
    }

    /// [`FileTree::list`] for the files under `dir` (relative to the root).
    pub(crate) fn list_under(
        &self,
        dir: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Result<Listing, DiscoverError> {
        let mut listing = Listing::default();
        match self {
            FileTree::Commit(tree) => {
                let prefix = format!("{}/", dir.trim_end_matches('/'));
                let under = |path: &str| dir.is_empty() || path.starts_with(&prefix);
                listing.files = tree
                    .files()?
                    .into_iter()
                    .map(|file| file.path)
                    .filter(|path| under(path) && accept(path))
                    .collect();
                // The same findings as a walk on disk gives.
                listing.unreadable = tree
                    .odd_names()?
                    .iter()
                    .filter(|path| under(path) && accept(path))
                    .map(|path| (path.clone(), ReadError::NameNotUtf8 { path: path.clone() }))
                    .collect();
                listing.submodules = tree
                    .submodules(&accept)?
                    .into_iter()
                    .filter(|submodule| under(&submodule.path))
                    .filter_map(|submodule| {
                        Some(Submodule {
                            path: submodule.path,
                            files: submodule.files?,
                        })
                    })
                    .filter(|submodule| !submodule.files.is_empty())
                    .collect();
            }
            FileTree::Disk { root, repo } => {
                let mut ignores = repo.map(|repo| Ignores::new(root, repo, dir));
                let full = if dir.is_empty() {
                    root.to_owned()
                } else {
                    root.join(dir)
                };
                let mut walk = Walk {
                    accept: &accept,
                    out: &mut listing,
                };
                walk.dir(&full, dir, true, ignores.as_mut())?;
                listing.files.sort();
                listing.unreadable.sort_by(|a, b| a.0.cmp(&b.0));
                listing.submodules.sort_by(|a, b| a.path.cmp(&b.path));
            }
        }
        Ok(listing)
    }

    /// The part of a tree on disk that reading needs (see [`Disk`]); `None` for a
    /// commit's tree.
    pub(crate) fn disk(&self) -> Option<Disk<'_>> {
        match self {
            FileTree::Commit(_) => None,
            FileTree::Disk { root, repo } => Some(Disk::new(root, *repo)),
        }
    }

    /// The blob id of the regular file at `path` of a commit's tree; `None` on disk
    /// (a working tree has no content ids) and for anything but a regular file.
    pub(crate) fn blob_id(&self, path: &str) -> Option<git2::Oid> {
        match self {
            FileTree::Commit(tree) => tree.blob_id(path),
            FileTree::Disk { .. } => None,
        }
    }

    /// Read the file at `path`, following symbolic links inside the repository; at
    /// most [`MAX_FILE_BYTES`].
    pub(crate) fn read(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        if let Some(disk) = self.disk() {
            return disk.read(path);
        }
        let path = self.resolve_path(path)?;
        self.read_exact(&path)
    }

    /// Where reading `path` finds its bytes: in a commit's tree, the blob (links
    /// followed), to be read with a [`BlobReader`] on another thread; on disk, or for
    /// what is not a regular file, what reading gives.
    pub(crate) fn locate(&self, path: &str) -> Result<Located, ReadError> {
        let FileTree::Commit(tree) = self else {
            return self.read(path).map(Located::Read);
        };
        let resolved = self.resolve_path(path)?;
        match tree.blob_id(&resolved) {
            Some(oid) => Ok(Located::Blob { resolved, oid }),
            // Not a regular file: reading it says what it is.
            None => self.read_exact(&resolved).map(Located::Read),
        }
    }

    /// Read exactly `path` (already resolved), refusing files over the limit.
    fn read_exact(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        match self {
            FileTree::Commit(tree) => match tree.entry(path)? {
                Some(TreeEntry::File) => match tree.read_at_most(path, MAX_FILE_BYTES)? {
                    Ok(bytes) => Ok(bytes),
                    Err(size) => Err(ReadError::TooLarge {
                        path: path.to_owned(),
                        size,
                    }),
                },
                Some(entry) => Err(ReadError::NotAFile {
                    path: path.to_owned(),
                    what: tree_kind(&entry),
                }),
                None => Err(ReadError::Missing {
                    path: path.to_owned(),
                }),
            },
            FileTree::Disk { root, repo } => Disk::new(root, *repo).read(path),
        }
    }
}

/// A tree on disk as reading sees it: the one reader of files a repository names
/// ([`RepoDir`]) over its root and git directories, without the repository's handle
/// (which is not thread-safe), so that the files of one load can be read on every core.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Disk<'a> {
    dir: RepoDir<'a>,
}

impl<'a> Disk<'a> {
    fn new(root: &'a Path, repo: Option<&'a GitRepo>) -> Disk<'a> {
        let dir = RepoDir::new(root);
        Disk {
            dir: match repo {
                Some(repo) => dir.with_git_dirs(repo.git_dirs()),
                None => dir,
            },
        }
    }

    /// [`FileTree::read`] on disk: resolved one `lstat` a component, links followed
    /// inside the root only, then the file that was found is read.
    pub(crate) fn read(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        self.dir
            .read(path, MAX_FILE_BYTES)
            .map_err(|refusal| refused(path, refusal))
    }

    /// The submodule (or other repository inside this one) that `path` (resolved,
    /// relative to the root) is in or is: the first directory on the way, itself
    /// included, that holds a `.git`.
    pub(crate) fn submodule_of(&self, path: &str) -> Option<String> {
        if path.is_empty() {
            return None;
        }
        let mut dir = self.dir.root().to_path_buf();
        let ends = path
            .match_indices('/')
            .map(|(at, _)| at)
            .chain([path.len()]);
        for (end, part) in ends.zip(path.split('/')) {
            dir.push(part);
            if dir.join(".git").exists() {
                return Some(path[..end].to_owned());
            }
        }
        None
    }
}

/// A refusal of the reader, in the tree's words.
fn refused(path: &str, refusal: Refusal) -> ReadError {
    let path = path.to_owned();
    match refusal {
        Refusal::Missing => ReadError::Missing { path },
        Refusal::Dangling { link } => ReadError::Dangling { path, link },
        Refusal::Escapes { via } => ReadError::Escapes { path, via },
        Refusal::InGitDir => ReadError::InGitDir { path },
        Refusal::SymlinkLoop => ReadError::SymlinkLoop { path },
        Refusal::NotAFile(kind) => ReadError::NotAFile {
            path,
            what: kind.describe(),
        },
        Refusal::TooLarge { size, .. } => ReadError::TooLarge { path, size },
        Refusal::Io(error) => ReadError::Io { path, error },
        Refusal::Unstable => ReadError::Io {
            path,
            error: std::io::Error::other("it kept changing while it was read"),
        },
    }
}

/// What [`FileTree::locate`] found: the blob to read, or what reading gave already.
#[derive(Debug)]
pub(crate) enum Located {
    Blob { resolved: String, oid: git2::Oid },
    Read(Vec<u8>),
}

impl Located {
    /// The bytes, at most [`MAX_FILE_BYTES`].
    pub(crate) fn read(self, reader: &BlobReader) -> Result<Vec<u8>, ReadError> {
        let (resolved, oid) = match self {
            Located::Blob { resolved, oid } => (resolved, oid),
            Located::Read(bytes) => return Ok(bytes),
        };
        match reader.read_at_most(&resolved, oid, MAX_FILE_BYTES)? {
            Ok(bytes) => Ok(bytes),
            Err(size) => Err(ReadError::TooLarge {
                path: resolved,
                size,
            }),
        }
    }
}

/// A path's components joined with `/`.
pub(crate) fn to_slash(path: &Path) -> String {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What a listing found: the files to read, what matched but cannot be read by its
/// path (a name that is not UTF-8), with why, and the submodules that hold files the
/// globs match (never read: they are another repository's).
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub files: Vec<String>,
    pub unreadable: Vec<(String, ReadError)>,
    pub submodules: Vec<Submodule>,
}

/// A submodule (or another repository inside this one) holding files the globs match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Submodule {
    /// Its path from the root.
    pub path: String,
    /// The matching files in it, from the root, in path order.
    pub files: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(include: &[&str], exclude: &[&str]) -> Matcher {
        Matcher::new(&PromptSettings {
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    #[test]
    fn default_globs_match_at_any_depth() {
        let m = Matcher::new(&PromptSettings::default()).unwrap();
        assert!(m.is_match("a.prompt.yaml"));
        assert!(m.is_match("x/y/a.prompt.yml"));
        assert!(!m.is_match("a.yaml"));
        assert!(!m.is_match("a.prompt.yaml.bak"));
    }

    #[test]
    fn star_stays_in_its_directory_and_excludes_win() {
        let m = matcher(&["prompts/*.prompt.yaml"], &["prompts/draft-*"]);
        assert!(m.is_match("prompts/a.prompt.yaml"));
        assert!(!m.is_match("prompts/sub/a.prompt.yaml"));
        assert!(!m.is_match("prompts/draft-a.prompt.yaml"));
    }

    #[test]
    fn bad_globs_are_named() {
        let err = Matcher::new(&PromptSettings {
            include: vec!["prompts/[".into()],
            exclude: vec![],
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("`prompts/[` in prompts.include"),
            "{err}"
        );
    }

    #[test]
    fn prompt_file_names() {
        assert!(is_prompt_file_name("x/a.prompt.yaml"));
        assert!(is_prompt_file_name("a.prompt.yml"));
        assert!(!is_prompt_file_name("a.yaml"));
    }
}
