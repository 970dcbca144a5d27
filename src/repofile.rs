//! The one reader of a file on disk that promptsync reads because a repository names
//! it: the repository's `promptsync.toml` (and a `--config` file inside the work
//! tree), and the prompt and content files of a working tree. A path is resolved
//! component by component with `lstat`, from the root down: a symbolic link is
//! followed while it stays inside the root (README promises "symlinks included" for
//! content files), never out of it and never into a git directory. Nothing outside the
//! root is ever looked at, opened or quoted, so a committed link to `/proc/self/environ`
//! or to the key file is refused by where it leads, before any byte is read, and the
//! refusal does not even say whether its target exists. What is found is read through
//! [`localfile`]: a regular file, bounded, never blocking, the very file that was looked
//! at (device and inode checked after the open).
//!
//! Knows nothing about what the files hold, about configuration or prompts, nor about
//! git beyond the paths of its git directories.

use std::fmt;
use std::fs::Metadata;
use std::io;
use std::path::{Component, Path};

use crate::localfile::{self, Failure, FileKind};

/// How many symbolic links one path may pass through.
pub(crate) const MAX_SYMLINKS: usize = 40;

/// How often a file swapped between its `lstat` and its open is looked up again.
const ATTEMPTS: usize = 3;

/// Why a file of the repository is not read. Carries no path but those of the
/// repository's own links: callers name their files themselves.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Nothing is there.
    Missing,
    /// A symbolic link on the way (`link`, relative to the root) leads to nothing.
    Dangling { link: String },
    /// The path leads outside the root: by its own `..`s (`via` is `None`), or through
    /// the symbolic link `via` (relative to the root).
    Escapes { via: Option<String> },
    /// The path is, or leads into, a git directory.
    InGitDir,
    /// More than [`MAX_SYMLINKS`] links on the way.
    SymlinkLoop,
    /// What is there is not a regular file.
    NotAFile(FileKind),
    /// Over the limit.
    TooLarge { size: u64, limit: u64 },
    /// Any other I/O error (permissions, a name too long, ...).
    Io(io::Error),
    /// It kept changing while it was read.
    Unstable,
}

impl fmt::Display for Refusal {
    /// The refusal as the end of a sentence about the file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Missing => f.write_str("does not exist"),
            Refusal::Dangling { link } => write!(
                f,
                "does not exist: the symbolic link `{}` leads nowhere",
                crate::term::line(link)
            ),
            Refusal::Escapes { via: None } => f.write_str("is outside the repository"),
            Refusal::Escapes { via: Some(via) } => write!(
                f,
                "leads outside the repository through the symbolic link `{}`",
                crate::term::line(via)
            ),
            Refusal::InGitDir => {
                f.write_str("is inside the git directory, which promptsync never reads")
            }
            Refusal::SymlinkLoop => {
                write!(f, "passes through more than {MAX_SYMLINKS} symbolic links")
            }
            Refusal::NotAFile(FileKind::Other) => f.write_str("is not a regular file"),
            Refusal::NotAFile(kind) => write!(f, "is {kind}, not a regular file"),
            Refusal::TooLarge { size, limit } => write!(
                f,
                "is {size} bytes, over the limit of {}",
                localfile::human_size(*limit)
            ),
            Refusal::Io(err) => write!(f, "cannot be read ({})", localfile::io_text(err)),
            Refusal::Unstable => f.write_str("kept changing while it was read; try again"),
        }
    }
}

impl From<Failure> for Refusal {
    fn from(failure: Failure) -> Refusal {
        match failure {
            Failure::Missing => Refusal::Missing,
            Failure::NotAFile(kind) => Refusal::NotAFile(kind),
            Failure::TooLarge { size, limit } => Refusal::TooLarge { size, limit },
            Failure::Io(err) => Refusal::Io(err),
        }
    }
}

/// A regular file inside the root, as resolution found it.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// Its path relative to the root, `/`-separated, without links, `.` or `..`.
    pub path: String,
    /// Its `lstat`.
    metadata: Metadata,
}

/// A directory tree on disk whose files are read because it names them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RepoDir<'a> {
    /// The root, canonical: every path is resolved from it and must stay under it.
    root: &'a Path,
    /// The repository's git directories (canonical), never read, whatever leads there.
    git_dirs: Option<[&'a Path; 2]>,
}

impl<'a> RepoDir<'a> {
    /// The tree under `root`, which must be canonical (`std::fs::canonicalize`).
    pub(crate) fn new(root: &'a Path) -> RepoDir<'a> {
        RepoDir {
            root,
            git_dirs: None,
        }
    }

    /// The same tree, refusing anything under `git_dirs` too (a `.git` component is
    /// refused in any case).
    pub(crate) fn with_git_dirs(self, git_dirs: [&'a Path; 2]) -> RepoDir<'a> {
        RepoDir {
            git_dirs: Some(git_dirs),
            ..self
        }
    }

    /// The root.
    pub(crate) fn root(&self) -> &'a Path {
        self.root
    }

    /// Whether `canonical` is under one of the git directories.
    pub(crate) fn in_git_dirs(&self, canonical: &Path) -> bool {
        self.git_dirs
            .is_some_and(|dirs| dirs.iter().any(|dir| canonical.starts_with(dir)))
    }

    /// The bytes of the regular file `path` (relative to the root, `/`-separated),
    /// at most `limit`.
    pub(crate) fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, Refusal> {
        for _ in 0..ATTEMPTS {
            let resolved = self.resolve(path)?;
            let full = self.root.join(&resolved.path);
            if let Some(bytes) = localfile::read_if_same(&full, &resolved.metadata, limit)? {
                return Ok(bytes);
            }
        }
        Err(Refusal::Unstable)
    }

    /// Follow `path` (relative to the root, `/`-separated) to a regular file inside
    /// the root and outside any git directory, one component at a time.
    pub(crate) fn resolve(&self, path: &str) -> Result<Resolved, Refusal> {
        // A path that names a git directory is refused as such, whatever is on disk.
        if path.split('/').any(is_git) {
            return Err(Refusal::InGitDir);
        }
        // Components still to walk, the next one last.
        let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut current = self.root.to_path_buf();
        let mut metadata: Option<Metadata> = None;
        let mut via: Option<String> = None;
        let mut links = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    if resolved.pop().is_none() {
                        return Err(Refusal::Escapes { via });
                    }
                    current.pop();
                    metadata = None;
                    continue;
                }
                // Not even one a link leads into, nor a nested repository's.
                git if is_git(git) => return Err(Refusal::InGitDir),
                _ => {}
            }
            current.push(&part);
            resolved.push(part);
            let found = match std::fs::symlink_metadata(&current) {
                Ok(found) => found,
                Err(err) if is_missing(&err) => {
                    return Err(match via {
                        Some(link) => Refusal::Dangling { link },
                        None => Refusal::Missing,
                    });
                }
                Err(err) => return Err(Refusal::Io(err)),
            };
            if !found.file_type().is_symlink() {
                metadata = Some(found);
                continue;
            }
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Refusal::SymlinkLoop);
            }
            let link = resolved.join("/");
            let target = std::fs::read_link(&current).map_err(Refusal::Io)?;
            via = Some(link);
            // The target replaces the link, relative to the link's directory.
            resolved.pop();
            current.pop();
            metadata = None;
            let relative = if target.is_absolute() {
                // Inside only when it names the root's own (canonical) path.
                let Ok(inside) = target.strip_prefix(self.root) else {
                    return Err(Refusal::Escapes { via });
                };
                resolved.clear();
                current = self.root.to_path_buf();
                inside.to_path_buf()
            } else {
                target
            };
            push_components(&relative, &mut pending)?;
        }
        let Some(metadata) = metadata else {
            // The root itself, or a path that ends in `..`: a directory.
            return Err(Refusal::NotAFile(FileKind::Directory));
        };
        if self.in_git_dirs(&current) {
            return Err(Refusal::InGitDir);
        }
        if let Some(kind) = FileKind::of(&metadata) {
            return Err(Refusal::NotAFile(kind));
        }
        Ok(Resolved {
            path: resolved.join("/"),
            metadata,
        })
    }
}

/// Put the components of a link's target on the stack of components to walk, the
/// first one last. A target that is not valid UTF-8 cannot name a file of ours.
fn push_components(target: &Path, pending: &mut Vec<String>) -> Result<(), Refusal> {
    let mut parts = Vec::new();
    for component in target.components() {
        match component {
            Component::Normal(part) => match part.to_str() {
                Some(part) => parts.push(part.to_owned()),
                None => return Err(Refusal::Missing),
            },
            Component::ParentDir => parts.push("..".to_owned()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    pending.extend(parts.into_iter().rev());
    Ok(())
}

/// Whether a path component is `.git` (in any case).
fn is_git(part: &str) -> bool {
    part.eq_ignore_ascii_case(".git")
}

/// Whether an `lstat` error means "nothing there" (a component that is a file counts).
fn is_missing(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// `path` relative to `root` (canonical) when the file it names lies inside it: its
/// directory is resolved (links followed, as the operator named it), its last
/// component is kept as it is, so that [`RepoDir::read`] decides where that leads.
pub(crate) fn inside(root: &Path, path: &Path) -> Option<String> {
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir).ok()?;
    let relative = dir.strip_prefix(root).ok()?;
    let mut parts: Vec<&str> = Vec::new();
    for component in relative.components() {
        parts.push(component.as_os_str().to_str()?);
    }
    parts.push(name.to_str()?);
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    use super::*;

    /// A canonical temporary root with `outside/secret` beside it.
    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let root = base.join("repo");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "sk_outside_secret").unwrap();
        std::fs::write(root.join("sub/a.txt"), "inside").unwrap();
        std::fs::write(root.join(".git/config"), "[core]").unwrap();
        Fixture {
            _dir: dir,
            root,
            outside,
        }
    }

    #[test]
    fn plain_files_and_links_inside_are_read() {
        let f = fixture();
        let repo = RepoDir::new(&f.root);
        symlink("sub/a.txt", f.root.join("rel")).unwrap();
        symlink(f.root.join("sub/a.txt"), f.root.join("abs")).unwrap();
        symlink("../sub", f.root.join("sub/loop-dir")).unwrap();
        for path in [
            "sub/a.txt",
            "rel",
            "abs",
            "sub/loop-dir/a.txt",
            "./sub/../sub/a.txt",
        ] {
            assert_eq!(repo.read(path, 100).unwrap(), b"inside", "{path}");
        }
        assert_eq!(repo.resolve("rel").unwrap().path, "sub/a.txt");
        assert_eq!(
            repo.resolve("sub/loop-dir/a.txt").unwrap().path,
            "sub/a.txt"
        );
    }

    #[test]
    fn links_out_are_refused_without_looking_at_their_target() {
        let f = fixture();
        let repo = RepoDir::new(&f.root);
        symlink(f.outside.join("secret"), f.root.join("key")).unwrap();
        symlink("/proc/self/environ", f.root.join("environ")).unwrap();
        symlink("../../outside/secret", f.root.join("sub/up")).unwrap();
        symlink(f.outside.join("missing"), f.root.join("nowhere-out")).unwrap();
        symlink(&f.outside, f.root.join("out-dir")).unwrap();
        for (path, via) in [
            ("key", Some("key")),
            ("environ", Some("environ")),
            ("sub/up", Some("sub/up")),
            // Whether the target exists is not told.
            ("nowhere-out", Some("nowhere-out")),
            ("out-dir/secret", Some("out-dir")),
            ("../outside/secret", None),
            ("sub/../../outside/secret", None),
        ] {
            let err = repo.read(path, 100).unwrap_err();
            match &err {
                Refusal::Escapes { via: found } => assert_eq!(found.as_deref(), via, "{path}"),
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn git_dirs_are_never_read() {
        let f = fixture();
        let elsewhere = f.root.join("gitdir");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("config"), "x").unwrap();
        let repo = RepoDir::new(&f.root).with_git_dirs([&elsewhere, &elsewhere]);
        symlink(".git/config", f.root.join("cfg")).unwrap();
        symlink(".GIT", f.root.join("g")).unwrap();
        for path in [
            ".git/config",
            "sub/../.Git/config",
            "cfg",
            "g/config",
            "gitdir/config",
        ] {
            assert!(
                matches!(repo.read(path, 100), Err(Refusal::InGitDir)),
                "{path}"
            );
        }
    }

    #[test]
    fn missing_dangling_loops_and_odd_files() {
        let f = fixture();
        let repo = RepoDir::new(&f.root);
        symlink("nothing", f.root.join("dangling")).unwrap();
        symlink("loop", f.root.join("loop")).unwrap();
        let fifo = localfile::test_fifo(&f.root);
        assert!(matches!(repo.read("none", 9), Err(Refusal::Missing)));
        assert!(matches!(repo.read("sub/a.txt/x", 9), Err(Refusal::Missing)));
        assert!(
            matches!(repo.read("dangling", 9), Err(Refusal::Dangling { link }) if link == "dangling")
        );
        assert!(matches!(repo.read("loop", 9), Err(Refusal::SymlinkLoop)));
        assert!(matches!(
            repo.read("sub", 9),
            Err(Refusal::NotAFile(FileKind::Directory))
        ));
        assert!(matches!(
            repo.read(fifo.file_name().unwrap().to_str().unwrap(), 9),
            Err(Refusal::NotAFile(FileKind::Fifo))
        ));
        assert!(matches!(
            repo.read("sub/a.txt", 3),
            Err(Refusal::TooLarge { size: 6, limit: 3 })
        ));
        assert_eq!(
            Refusal::Escapes {
                via: Some("promptsync.toml".into())
            }
            .to_string(),
            "leads outside the repository through the symbolic link `promptsync.toml`"
        );
    }

    #[test]
    fn paths_inside_the_root() {
        let f = fixture();
        assert_eq!(
            inside(&f.root, &f.root.join("sub/../sub/x.toml")).as_deref(),
            Some("sub/x.toml")
        );
        assert_eq!(inside(&f.root, &f.outside.join("x.toml")), None);
        symlink(&f.root, f.outside.join("to-repo")).unwrap();
        assert_eq!(
            inside(&f.root, &f.outside.join("to-repo/p.toml")).as_deref(),
            Some("p.toml")
        );
    }
}
