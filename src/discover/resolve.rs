//! Where a path a repository names leads, confined to the repository: a message's
//! `content_file` resolved against its prompt file's directory, `..` applied
//! lexically first (a path that climbs out by its own `..`s is refused unread), then
//! symbolic links followed one component at a time, inside the root only: in a
//! commit's tree by splicing link targets in by hand, on disk through
//! [`repofile`](crate::repofile). Nothing under a git directory (a `.git` component,
//! or where a link leads) is ever the answer. Security-critical: every refusal names
//! the path as written, and the link that led out when one did.

use std::path::Path;

use super::{Disk, FileTree, ReadError, refused};
use crate::gitrepo::{CommitTree, TreeEntry};
use crate::repofile::MAX_SYMLINKS;

impl FileTree<'_> {
    /// Whether `path` (relative to the root, `/`-separated) is in a git directory: a
    /// `.git` component anywhere (the repository's own, a nested one's), or, on disk,
    /// under one of the repository's git dirs once symbolic links are followed.
    pub(crate) fn in_git_dir(&self, path: &str) -> bool {
        has_git_component(path) || self.disk().is_some_and(|disk| disk.under_git_dir(path))
    }

    /// Resolve `relative` (a `content_file` value) against the directory of the file
    /// `from`, following symbolic links; the result must be a file inside the
    /// repository. Returns its path relative to the root.
    pub(crate) fn resolve(&self, from: &str, relative: &str) -> Result<String, ReadError> {
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
        let resolved = self.resolve_path(&joined).and_then(|resolved| {
            // On disk a submodule's files are there to read: refused as in a commit.
            match self.disk().and_then(|disk| disk.submodule_of(&resolved)) {
                Some(submodule) => Err(ReadError::InSubmodule {
                    path: resolved,
                    submodule,
                }),
                None => Ok(resolved),
            }
        });
        resolved.map_err(|err| match err {
            ReadError::Missing { .. } => ReadError::Missing {
                path: relative.to_owned(),
            },
            ReadError::Escapes { via, .. } => ReadError::Escapes {
                path: relative.to_owned(),
                via,
            },
            ReadError::NotAFile { what, .. } => ReadError::NotAFile {
                path: relative.to_owned(),
                what,
            },
            ReadError::InGitDir { .. } => ReadError::InGitDir {
                path: relative.to_owned(),
            },
            ReadError::Dangling { link, .. } => ReadError::Dangling {
                path: relative.to_owned(),
                link,
            },
            ReadError::InSubmodule { submodule, .. } => ReadError::InSubmodule {
                path: relative.to_owned(),
                submodule,
            },
            other => other,
        })
    }

    /// Follow `path` (normalized, relative to the root) to a file inside the tree and
    /// outside any git directory.
    pub(super) fn resolve_path(&self, path: &str) -> Result<String, ReadError> {
        match self {
            FileTree::Commit(tree) => {
                outside_git_dirs(path, has_git_component, |path| resolve_in_tree(tree, path))
            }
            FileTree::Disk { root, repo } => Disk::new(root, *repo).resolve(path),
        }
    }
}

impl Disk<'_> {
    /// Follow `path` on disk to a regular file inside the root and outside any git
    /// directory.
    fn resolve(&self, path: &str) -> Result<String, ReadError> {
        self.dir
            .resolve(path)
            .map(|resolved| resolved.path)
            .map_err(|refusal| refused(path, refusal))
    }

    /// Whether `path` (without a `.git` component) is under one of the repository's
    /// git directories once symbolic links are followed.
    fn under_git_dir(&self, path: &str) -> bool {
        let root = self.dir.root();
        let full = root.join(path);
        if without_links(root, path) {
            return self.dir.in_git_dirs(&full);
        }
        std::fs::canonicalize(full).is_ok_and(|canonical| self.dir.in_git_dirs(&canonical))
    }
}

/// `resolve` `path`, refused when it or where it leads is in a git directory.
fn outside_git_dirs(
    path: &str,
    in_git_dir: impl Fn(&str) -> bool,
    resolve: impl FnOnce(&str) -> Result<String, ReadError>,
) -> Result<String, ReadError> {
    let in_git_dir_error = || ReadError::InGitDir {
        path: path.to_owned(),
    };
    if in_git_dir(path) {
        return Err(in_git_dir_error());
    }
    let resolved = resolve(path)?;
    if resolved != path && in_git_dir(&resolved) {
        return Err(in_git_dir_error());
    }
    Ok(resolved)
}

/// Whether a component of `path` is `.git` (in any case).
fn has_git_component(path: &str) -> bool {
    path.split('/')
        .any(|part| part.eq_ignore_ascii_case(".git"))
}

/// What a tree entry that is not a file is, for messages.
pub(super) fn tree_kind(entry: &TreeEntry) -> &'static str {
    match entry {
        TreeEntry::File => "a file",
        TreeEntry::Symlink { .. } => "a symbolic link",
        TreeEntry::Dir => "a directory",
        TreeEntry::Submodule => "a submodule",
    }
}

/// Whether no component of `path` (clean: no `.`, `..` or empty parts) is a symbolic
/// link and all exist, so that `root/path` is its own canonical path.
fn without_links(root: &Path, path: &str) -> bool {
    let mut current = root.to_path_buf();
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return false;
        }
        current.push(part);
        match std::fs::symlink_metadata(&current) {
            Ok(found) if !found.file_type().is_symlink() => {}
            _ => return false,
        }
    }
    true
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
            // Not even a crafted tree's `.git`, nor one a symbolic link leads into.
            part if part.eq_ignore_ascii_case(".git") => {
                return Err(ReadError::InGitDir {
                    path: path.to_owned(),
                });
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
            Some(TreeEntry::File) if !pending.is_empty() => {
                return Err(ReadError::Missing {
                    path: path.to_owned(),
                });
            }
            Some(TreeEntry::Submodule) if !pending.is_empty() => {
                return Err(ReadError::InSubmodule {
                    path: path.to_owned(),
                    submodule: current,
                });
            }
            Some(_) => {}
        }
    }
    let resolved = resolved.join("/");
    match tree.entry(&resolved)? {
        Some(TreeEntry::File) => Ok(resolved),
        Some(entry) => Err(ReadError::NotAFile {
            path: path.to_owned(),
            what: tree_kind(&entry),
        }),
        None => Err(ReadError::Missing {
            path: path.to_owned(),
        }),
    }
}

/// Normalize a relative `/`-separated path lexically (`.` dropped, `..` applied);
/// `None` when it climbs above its start.
pub(crate) fn normalize(path: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitrepo::GitRepo;
    use crate::testrepo::TestRepo;

    /// A repository whose commit and working tree hold links of every kind beside a
    /// prompt file at `prompts/a.prompt.yaml`.
    fn repo() -> TestRepo {
        let repo = TestRepo::new();
        repo.write("prompts/a.prompt.yaml", "name: A\n")
            .write("prompts/texts/a.md", "A")
            .symlink("prompts/link.md", "texts/a.md")
            .symlink("prompts/out.md", "../../outside.md")
            .symlink("prompts/abs.md", "/etc/hostname")
            .symlink("prompts/git.md", "../.git/config")
            .symlink("prompts/nowhere.md", "missing.md")
            .symlink("prompts/loop1.md", "loop2.md")
            .symlink("prompts/loop2.md", "loop1.md")
            .symlink("prompts/up", "..");
        repo.commit("links", 1_700_000_000);
        std::fs::write(repo.path().join("../outside.md"), "secret").unwrap();
        repo
    }

    fn resolve(tree: &FileTree<'_>, relative: &str) -> String {
        match tree.resolve("prompts/a.prompt.yaml", relative) {
            Ok(path) => format!("ok {path}"),
            Err(err) => err.to_string(),
        }
    }

    /// What both trees answer alike.
    fn confined_alike(tree: &FileTree<'_>) {
        for (relative, expected) in [
            ("texts/a.md", "ok prompts/texts/a.md"),
            ("link.md", "ok prompts/texts/a.md"),
            ("../prompts/./texts/a.md", "ok prompts/texts/a.md"),
            ("up/prompts/link.md", "ok prompts/texts/a.md"),
            ("../../x.md", "`../../x.md` leads outside the repository"),
            (
                "/etc/hostname",
                "`/etc/hostname` leads outside the repository",
            ),
            (
                "out.md",
                "`out.md` leads outside the repository (through the symbolic link `prompts/out.md`)",
            ),
            (
                "up/../out.md",
                "`up/../out.md` leads outside the repository (through the symbolic link `prompts/up`)",
            ),
            (
                "git.md",
                "`git.md` is inside the git directory, which promptsync never reads",
            ),
            (
                "../.git/config",
                "`../.git/config` is inside the git directory, which promptsync never reads",
            ),
            // Named from the root, unlike the others (the loop is not remapped).
            (
                "loop1.md",
                "`prompts/loop1.md` passes through more than 40 symbolic links",
            ),
            ("texts", "`texts` is a directory, not a regular file"),
        ] {
            assert_eq!(resolve(tree, relative), expected, "{relative}");
        }
    }

    #[test]
    fn a_commits_links_are_followed_inside_the_tree_only() {
        let repo = repo();
        let git = GitRepo::open(repo.path()).unwrap();
        let tree = FileTree::Commit(git.tree(&git.resolve_commit("HEAD").unwrap()).unwrap());
        confined_alike(&tree);
        assert_eq!(
            resolve(&tree, "abs.md"),
            "`abs.md` leads outside the repository (through the symbolic link `prompts/abs.md`)"
        );
        assert_eq!(resolve(&tree, "nowhere.md"), "`nowhere.md` does not exist");
    }

    #[test]
    fn links_on_disk_are_followed_inside_the_root_only() {
        let repo = repo();
        let git = GitRepo::open(repo.path()).unwrap();
        let tree = FileTree::worktree(&git);
        confined_alike(&tree);
        assert_eq!(
            resolve(&tree, "nowhere.md"),
            "`nowhere.md` does not exist: the symbolic link `prompts/nowhere.md` leads nowhere"
        );
    }

    #[test]
    fn git_directories_are_found_by_name_and_on_disk_through_links() {
        let repo = repo();
        repo.symlink("gitdir", ".git");
        let git = GitRepo::open(repo.path()).unwrap();
        let disk = FileTree::worktree(&git);
        let commit = FileTree::Commit(git.tree(&git.resolve_commit("HEAD").unwrap()).unwrap());
        for tree in [&disk, &commit] {
            assert!(tree.in_git_dir(".git/config"));
            assert!(tree.in_git_dir("sub/.GIT/config"));
            assert!(!tree.in_git_dir("prompts/a.prompt.yaml"));
        }
        assert!(disk.in_git_dir("gitdir/config"));
        assert!(
            !commit.in_git_dir("gitdir/config"),
            "a commit has no such link"
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
    fn outside_git_dirs_refuses_where_a_path_leads_too() {
        let in_git_dir = |path: &str| path.starts_with(".git");
        assert_eq!(
            outside_git_dirs("a", in_git_dir, |_| Ok("b".into())).unwrap(),
            "b"
        );
        assert!(matches!(
            outside_git_dirs("a", in_git_dir, |_| Ok(".git/config".into())),
            Err(ReadError::InGitDir { path }) if path == "a"
        ));
        assert!(matches!(
            outside_git_dirs(".git/x", in_git_dir, |_| panic!("never looked up")),
            Err(ReadError::InGitDir { .. })
        ));
    }
}
