//! Find prompt files in a tree by the configured include/exclude globs, and resolve a
//! message's `content_file` inside the repository (never outside, symlinks included).
//! A tree is a commit's (read through [`gitrepo`](crate::gitrepo)) or a directory on
//! disk (the working tree). Knows nothing about the prompt format.

use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};
use thiserror::Error;

use crate::config::PromptSettings;
use crate::gitrepo::{CommitTree, GitError, GitRepo, TreeEntry};
use crate::prompt::MAX_FILE_BYTES;

/// How many symbolic links one path may pass through.
const MAX_SYMLINKS: usize = 40;

/// A failure to list a tree (as opposed to a problem with one file).
#[derive(Debug, Error)]
pub enum DiscoverError {
    #[error("invalid glob `{glob}` in prompts.{key}: {source}; fix it in promptsync.toml")]
    Glob {
        key: &'static str,
        glob: String,
        #[source]
        source: globset::Error,
    },

    #[error("cannot list {}: {source}", path.display())]
    Walk {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Git(#[from] GitError),
}

/// A problem reading one file of a tree.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("`{path}` does not exist")]
    Missing { path: String },

    #[error("`{path}` leads outside the repository{}", via.as_ref().map(|v| format!(" (through the symbolic link `{v}`)")).unwrap_or_default())]
    Escapes { path: String, via: Option<String> },

    #[error("`{path}` is not a file")]
    NotAFile { path: String },

    #[error("`{path}` is {size} bytes, over the limit of 1 MiB")]
    TooLarge { path: String, size: u64 },

    #[error("`{path}` passes through more than {MAX_SYMLINKS} symbolic links")]
    SymlinkLoop { path: String },

    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Git(#[from] GitError),
}

/// The include/exclude globs of prompt files, matched against `/`-separated paths
/// relative to the repository root. `*` stays within a directory; `**` crosses them.
#[derive(Debug, Clone)]
pub struct Matcher {
    include: GlobSet,
    exclude: GlobSet,
}

impl Matcher {
    pub fn new(settings: &PromptSettings) -> Result<Matcher, DiscoverError> {
        Ok(Matcher {
            include: glob_set("include", &settings.include)?,
            exclude: glob_set("exclude", &settings.exclude)?,
        })
    }

    pub fn is_match(&self, path: &str) -> bool {
        self.includes(path) && !self.excludes(path)
    }

    /// Whether an include glob matches `path`.
    pub fn includes(&self, path: &str) -> bool {
        self.include.is_match(path)
    }

    /// Whether an exclude glob matches `path`.
    pub fn excludes(&self, path: &str) -> bool {
        self.exclude.is_match(path)
    }
}

fn glob_set(key: &'static str, globs: &[String]) -> Result<GlobSet, DiscoverError> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let parsed = globset::GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .map_err(|source| DiscoverError::Glob {
                key,
                glob: glob.clone(),
                source,
            })?;
        builder.add(parsed);
    }
    builder.build().map_err(|source| DiscoverError::Glob {
        key,
        glob: globs.join(", "),
        source,
    })
}

/// Whether `path` matches the format's own file names (`*.prompt.yaml`,
/// `*.prompt.yml`), whatever the configuration says.
pub fn is_prompt_file_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".prompt.yaml") || name.ends_with(".prompt.yml")
}

/// A tree of files: a commit's or the working tree's. Paths are relative to the
/// repository root and `/`-separated.
#[derive(Debug)]
pub enum FileTree<'r> {
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
    pub fn worktree(repo: &GitRepo) -> FileTree<'_> {
        FileTree::Disk {
            root: repo.root().to_owned(),
            repo: Some(repo),
        }
    }

    /// Every file of the tree that `accept` takes, in path order. On disk: `.git`,
    /// nested repositories, git-ignored paths and symlinked directories are skipped.
    pub fn list(&self, accept: impl Fn(&str) -> bool) -> Result<Vec<String>, DiscoverError> {
        match self {
            FileTree::Commit(tree) => Ok(tree
                .files()?
                .into_iter()
                .map(|file| file.path)
                .filter(|path| accept(path))
                .collect()),
            FileTree::Disk { root, repo } => {
                let mut files = Vec::new();
                walk(root, "", *repo, &accept, &mut files)?;
                files.sort();
                Ok(files)
            }
        }
    }

    /// The files under `dir` (relative to the root) that `accept` takes, on disk.
    pub fn list_under(
        &self,
        dir: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, DiscoverError> {
        match self {
            FileTree::Commit(_) => {
                let prefix = format!("{}/", dir.trim_end_matches('/'));
                self.list(|path| (dir.is_empty() || path.starts_with(&prefix)) && accept(path))
            }
            FileTree::Disk { root, repo } => {
                let mut files = Vec::new();
                walk(root, dir, *repo, &accept, &mut files)?;
                files.sort();
                Ok(files)
            }
        }
    }

    /// Read the file at `path`, following symbolic links inside the repository; at
    /// most [`MAX_FILE_BYTES`].
    pub fn read(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        let path = self.resolve_path(path)?;
        self.read_exact(&path)
    }

    /// Resolve `relative` (a `content_file` value) against the directory of the file
    /// `from`, following symbolic links; the result must be a file inside the
    /// repository. Returns its path relative to the root.
    pub fn resolve(&self, from: &str, relative: &str) -> Result<String, ReadError> {
        if relative.starts_with('/') || Path::new(relative).is_absolute() {
            return Err(ReadError::Escapes {
                path: relative.to_owned(),
                via: None,
            });
        }
        let dir = from.rsplit_once('/').map_or("", |(dir, _)| dir);
        let joined = if dir.is_empty() {
            relative.to_owned()
        } else {
            format!("{dir}/{relative}")
        };
        // A path that climbs out by its own `..`s is refused before any lookup.
        if normalize(&joined).is_none() {
            return Err(ReadError::Escapes {
                path: relative.to_owned(),
                via: None,
            });
        }
        self.resolve_path(&joined).map_err(|err| match err {
            ReadError::Missing { .. } => ReadError::Missing {
                path: relative.to_owned(),
            },
            ReadError::Escapes { via, .. } => ReadError::Escapes {
                path: relative.to_owned(),
                via,
            },
            ReadError::NotAFile { .. } => ReadError::NotAFile {
                path: relative.to_owned(),
            },
            other => other,
        })
    }

    /// Follow `path` (normalized, relative to the root) to a file inside the tree.
    fn resolve_path(&self, path: &str) -> Result<String, ReadError> {
        match self {
            FileTree::Commit(tree) => resolve_in_tree(tree, path),
            FileTree::Disk { root, .. } => {
                let full = root.join(path);
                let canonical = match std::fs::canonicalize(&full) {
                    Ok(canonical) => canonical,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        return Err(ReadError::Missing {
                            path: path.to_owned(),
                        });
                    }
                    Err(source) => {
                        return Err(ReadError::Io {
                            path: path.to_owned(),
                            source,
                        });
                    }
                };
                let Ok(inside) = canonical.strip_prefix(root) else {
                    return Err(ReadError::Escapes {
                        path: path.to_owned(),
                        via: full
                            .is_symlink()
                            .then(|| path.to_owned())
                            .or_else(|| symlink_on_the_way(root, path)),
                    });
                };
                if !canonical.is_file() {
                    return Err(ReadError::NotAFile {
                        path: path.to_owned(),
                    });
                }
                Ok(to_slash(inside))
            }
        }
    }

    /// Read exactly `path` (already resolved), refusing files over the limit.
    fn read_exact(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        match self {
            FileTree::Commit(tree) => match tree.entry(path)? {
                Some(TreeEntry::File { size }) if size > MAX_FILE_BYTES => {
                    Err(ReadError::TooLarge {
                        path: path.to_owned(),
                        size,
                    })
                }
                Some(TreeEntry::File { .. }) => Ok(tree.read(path)?),
                Some(_) => Err(ReadError::NotAFile {
                    path: path.to_owned(),
                }),
                None => Err(ReadError::Missing {
                    path: path.to_owned(),
                }),
            },
            FileTree::Disk { root, .. } => {
                let io = |source: std::io::Error| match source.kind() {
                    std::io::ErrorKind::NotFound => ReadError::Missing {
                        path: path.to_owned(),
                    },
                    _ => ReadError::Io {
                        path: path.to_owned(),
                        source,
                    },
                };
                let file = std::fs::File::open(root.join(path)).map_err(io)?;
                let size = file.metadata().map_err(io)?.len();
                if size > MAX_FILE_BYTES {
                    return Err(ReadError::TooLarge {
                        path: path.to_owned(),
                        size,
                    });
                }
                let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                file.take(MAX_FILE_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(io)?;
                Ok(bytes)
            }
        }
    }
}

/// The first symbolic link among the components of `path` on disk, for the message.
fn symlink_on_the_way(root: &Path, path: &str) -> Option<String> {
    let mut current = String::new();
    for part in path.split('/') {
        if !current.is_empty() {
            current.push('/');
        }
        current.push_str(part);
        if root.join(&current).is_symlink() {
            return Some(current);
        }
    }
    None
}

/// Walk a commit's tree along `path`, splicing in symbolic link targets by hand (git
/// stores them as blobs of mode 120000) so that `..` is applied physically, as the
/// file system would; refuse any step outside the root.
fn resolve_in_tree(tree: &CommitTree<'_>, path: &str) -> Result<String, ReadError> {
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut via: Option<String> = None;
    let mut links = 0;
    let escapes = |via: &Option<String>| ReadError::Escapes {
        path: path.to_owned(),
        via: via.clone(),
    };
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop().ok_or_else(|| escapes(&via))?;
                continue;
            }
            _ => resolved.push(part),
        }
        let current = resolved.join("/");
        match tree.entry(&current)? {
            None => {
                return Err(ReadError::Missing {
                    path: path.to_owned(),
                });
            }
            Some(TreeEntry::Symlink { target }) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(ReadError::SymlinkLoop {
                        path: path.to_owned(),
                    });
                }
                via = Some(current);
                if target.starts_with('/') {
                    return Err(escapes(&via));
                }
                // The target replaces the link, relative to the link's directory.
                resolved.pop();
                pending.extend(target.split('/').rev().map(str::to_owned));
            }
            Some(TreeEntry::File { .. }) if !pending.is_empty() => {
                return Err(ReadError::Missing {
                    path: path.to_owned(),
                });
            }
            Some(TreeEntry::Submodule) if !pending.is_empty() => {
                return Err(ReadError::Missing {
                    path: path.to_owned(),
                });
            }
            Some(_) => {}
        }
    }
    let resolved = resolved.join("/");
    match tree.entry(&resolved)? {
        Some(TreeEntry::File { .. }) => Ok(resolved),
        Some(_) => Err(ReadError::NotAFile {
            path: path.to_owned(),
        }),
        None => Err(ReadError::Missing {
            path: path.to_owned(),
        }),
    }
}

/// Normalize a relative `/`-separated path lexically (`.` dropped, `..` applied);
/// `None` when it climbs above its start.
pub fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// A path's components joined with `/`.
pub fn to_slash(path: &Path) -> String {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn walk(
    root: &Path,
    dir: &str,
    repo: Option<&GitRepo>,
    accept: &dyn Fn(&str) -> bool,
    out: &mut Vec<String>,
) -> Result<(), DiscoverError> {
    let full = if dir.is_empty() {
        root.to_owned()
    } else {
        root.join(dir)
    };
    let entries = std::fs::read_dir(&full).map_err(|source| DiscoverError::Walk {
        path: full.clone(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| DiscoverError::Walk {
            path: full.clone(),
            source,
        })?;
        let Ok(name) = entry.file_name().into_string() else {
            tracing::warn!(dir = %full.display(), "skipping a file name that is not UTF-8");
            continue;
        };
        if name == ".git" {
            continue;
        }
        let rel = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            let nested_repo = entry.path().join(".git").exists();
            if nested_repo || repo.is_some_and(|repo| repo.is_ignored(&format!("{rel}/"))) {
                continue;
            }
            walk(root, &rel, repo, accept, out)?;
        } else if (file_type.is_file() || (file_type.is_symlink() && entry.path().is_file()))
            && !repo.is_some_and(|repo| repo.is_ignored(&rel))
            && accept(&rel)
        {
            out.push(rel);
        }
    }
    Ok(())
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
    fn normalize_refuses_to_climb_out() {
        assert_eq!(normalize("a/./b/../c").as_deref(), Some("a/c"));
        assert_eq!(normalize("a/../../c"), None);
        assert_eq!(normalize("../c"), None);
        assert_eq!(normalize("a//b/").as_deref(), Some("a/b"));
    }

    #[test]
    fn prompt_file_names() {
        assert!(is_prompt_file_name("x/a.prompt.yaml"));
        assert!(is_prompt_file_name("a.prompt.yml"));
        assert!(!is_prompt_file_name("a.yaml"));
    }
}
