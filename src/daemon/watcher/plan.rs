//! What to watch: [`plan`] decides which directories matter (the git dir's refs, the
//! directory that holds a git-sync link, the configuration and key files'
//! directories, and in `--worktree` mode every directory of the working tree) and how
//! to tell a relevant event from noise ([`Filter`]). Directories are watched, never
//! files, because editors save by rename. The [`WatchSet`] it makes is what both the
//! events ([`super::events`]) and polling ([`super::poll`]) read.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::DEFAULT_CONFIG_FILE;
use crate::daemon::trigger::Reason;
use crate::gitrepo::GitRepo;

/// Entries one walk may look at, so that a huge tree cannot make it unbounded.
pub(super) const POLL_BUDGET: usize = 200_000;

/// Whether a directory is watched with its subdirectories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    Flat,
    Deep,
}

/// The directories to watch and how to read their events.
#[derive(Debug, Clone, Default)]
pub(crate) struct WatchSet {
    pub dirs: BTreeMap<PathBuf, Depth>,
    pub filter: Filter,
    /// Counts the sets sent; [`super::Source`] reports the one it has applied.
    pub generation: u64,
}

/// Tells relevant paths from noise, and what a relevant one means.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// The worktree's own git dir and the common one (canonical), the most specific
    /// first: a linked worktree's own (`.git/worktrees/<name>`) lies inside the common
    /// one, and its `HEAD` is the worktree's.
    pub(super) git_dirs: Vec<PathBuf>,
    /// The repository path's parent and name, when it is a symlink (git-sync's link)
    /// or does not exist yet.
    link: Option<(PathBuf, OsString)>,
    /// The configuration file (in a canonical directory).
    config: Option<PathBuf>,
    /// The directories of the key files, one per target (a Kubernetes secret mount
    /// swaps `..data` there).
    key_dirs: Vec<PathBuf>,
    /// The work tree root, when the working tree is what syncs.
    work_root: Option<PathBuf>,
}

impl WatchSet {
    pub(super) fn add(&mut self, dir: PathBuf, depth: Depth) {
        let entry = self.dirs.entry(dir).or_insert(depth);
        if depth == Depth::Deep {
            *entry = Depth::Deep;
        }
    }
}

impl Filter {
    /// What a change at `path` means, or `None` for noise: `.git` internals other than
    /// refs, lock files, editor temp files, unrelated files.
    pub(crate) fn classify(&self, path: &Path) -> Option<Reason> {
        if let Some((parent, name)) = &self.link
            && path.parent() == Some(parent.as_path())
            && path.file_name() == Some(name.as_os_str())
        {
            return Some(Reason::Repository);
        }
        // The deepest git dir that holds the path decides (see `git_dirs`).
        let git_dir = self
            .git_dirs
            .iter()
            .filter(|dir| path.starts_with(dir))
            .max_by_key(|dir| dir.components().count());
        if let Some(rel) = git_dir.and_then(|dir| path.strip_prefix(dir).ok()) {
            let rel = rel.to_string_lossy();
            let is_ref = rel == "HEAD" || rel == "packed-refs" || rel.starts_with("refs/");
            return (is_ref && !rel.ends_with(".lock")).then_some(Reason::Refs);
        }
        if self.config.as_deref() == Some(path) {
            return Some(Reason::Config);
        }
        if path
            .parent()
            .is_some_and(|parent| self.key_dirs.iter().any(|dir| dir == parent))
        {
            return Some(Reason::KeyFile);
        }
        let root = self.work_root.as_deref()?;
        let rel = path.strip_prefix(root).ok()?;
        let mut parts = rel.components();
        if parts
            .next()
            .is_some_and(|first| first.as_os_str() == ".git")
        {
            return None;
        }
        let name = path.file_name()?.to_string_lossy();
        (!is_temp_file(&name)).then_some(Reason::Files)
    }
}

/// Names editors and tools give their scratch files (they save by writing one and
/// renaming it over the real file; the rename is what counts).
fn is_temp_file(name: &str) -> bool {
    name.ends_with('~')
        || (name.starts_with('#') && name.ends_with('#'))
        || name.starts_with(".#")
        || name.starts_with(".~lock.")
        || name.starts_with(".goutputstream-")
        || name.contains("___jb_tmp___")
        || name.contains("___jb_old___")
        || name == "4913"
        || [".swp", ".swx", ".swo", ".tmp", ".part", ".crdownload"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// What [`plan`] needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    /// The repository path as configured (a git-sync link stays a link).
    pub repo: PathBuf,
    /// The configuration file read, if any.
    pub config_file: Option<PathBuf>,
    /// The key files, one per target that reads its key from a file.
    pub key_files: Vec<PathBuf>,
    /// The working tree syncs (`--worktree`): watch its directories too.
    pub worktree: bool,
    /// The repository is a remote source's mirror: its source worker says when it
    /// moved, so neither it nor a configuration file inside it is watched.
    pub remote: bool,
}

/// The directories to watch now. Blocking (opens the repository, walks the working
/// tree in `--worktree` mode).
pub(crate) fn plan(inputs: &Inputs) -> WatchSet {
    let mut set = WatchSet::default();
    let repo_path = std::path::absolute(&inputs.repo).unwrap_or_else(|_| inputs.repo.clone());
    let is_link =
        std::fs::symlink_metadata(&repo_path).map_or(true, |m| m.file_type().is_symlink());
    if !inputs.remote
        && is_link
        && let (Some(parent), Some(name)) = (repo_path.parent(), repo_path.file_name())
    {
        let parent = canonical(parent);
        set.add(parent.clone(), Depth::Flat);
        set.filter.link = Some((parent, name.to_owned()));
    }
    let mut config = inputs.config_file.clone();
    if inputs.remote {
        // The configuration comes from the mirror's tree unless it is `--config`.
        config = config.filter(|file| file.is_file());
    } else if let Ok(repo) = GitRepo::open(&repo_path) {
        let common = repo.git_dir().to_owned();
        let own = repo.worktree_git_dir();
        set.add(common.clone(), Depth::Flat);
        set.add(common.join("refs"), Depth::Deep);
        if own != common {
            set.add(own.clone(), Depth::Flat);
        }
        set.filter.git_dirs = vec![own, common];
        if config.is_none() {
            config = Some(repo.root().join(DEFAULT_CONFIG_FILE));
        }
        if inputs.worktree {
            let root = repo.root().to_owned();
            let mut budget = POLL_BUDGET;
            work_tree_dirs(&repo, &root, &mut set, &mut budget);
            set.filter.work_root = Some(root);
        }
    }
    if let Some(file) = config
        && let (Some(parent), Some(name)) = (file.parent(), file.file_name())
    {
        let parent = canonical(parent);
        set.filter.config = Some(parent.join(name));
        set.add(parent, Depth::Flat);
    }
    for parent in inputs.key_files.iter().filter_map(|file| file.parent()) {
        let parent = canonical(parent);
        if !set.filter.key_dirs.contains(&parent) {
            set.filter.key_dirs.push(parent.clone());
            set.add(parent, Depth::Flat);
        }
    }
    set
}

fn canonical(path: &Path) -> PathBuf {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Every directory of the working tree that discovery would enter: not `.git`, not a
/// nested repository, not ignored.
fn work_tree_dirs(repo: &GitRepo, dir: &Path, set: &mut WatchSet, budget: &mut usize) {
    set.add(dir.to_owned(), Depth::Flat);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || entry.file_name() == ".git" || path.join(".git").exists() {
            continue;
        }
        let rel = path
            .strip_prefix(repo.root())
            .map(|rel| format!("{}/", crate::discover::to_slash(rel)))
            .unwrap_or_default();
        if !repo.is_ignored(&rel) {
            work_tree_dirs(repo, &path, set, budget);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> Filter {
        Filter {
            git_dirs: vec![PathBuf::from("/r/.git")],
            link: Some((PathBuf::from("/git"), OsString::from("link"))),
            config: Some(PathBuf::from("/r/promptsync.toml")),
            key_dirs: vec![PathBuf::from("/secrets")],
            work_root: Some(PathBuf::from("/r")),
        }
    }

    #[test]
    fn refs_count_and_other_git_internals_do_not() {
        let f = filter();
        for path in [
            "/r/.git/HEAD",
            "/r/.git/packed-refs",
            "/r/.git/refs/heads/main",
            "/r/.git/refs/tags/v1",
        ] {
            assert_eq!(f.classify(Path::new(path)), Some(Reason::Refs), "{path}");
        }
        for path in [
            "/r/.git/refs/heads/main.lock",
            "/r/.git/index",
            "/r/.git/objects/ab/cdef",
            "/r/.git/promptsync/emulator.json",
            "/r/.git/FETCH_HEAD",
        ] {
            assert_eq!(f.classify(Path::new(path)), None, "{path}");
        }
    }

    #[test]
    fn a_linked_worktrees_own_head_counts_though_it_lies_in_the_common_dir() {
        let common = PathBuf::from("/r/.git");
        let own = common.join("worktrees/wt");
        // Either order: the deepest git dir that holds the path decides.
        for git_dirs in [
            vec![own.clone(), common.clone()],
            vec![common.clone(), own.clone()],
        ] {
            let f = Filter {
                git_dirs,
                ..Filter::default()
            };
            for path in ["/r/.git/worktrees/wt/HEAD", "/r/.git/refs/heads/main"] {
                assert_eq!(f.classify(Path::new(path)), Some(Reason::Refs), "{path}");
            }
            for path in [
                "/r/.git/worktrees/wt/index",
                "/r/.git/worktrees/wt/HEAD.lock",
                "/r/.git/worktrees/wt/logs/HEAD",
                "/r/.git/worktrees/other/HEAD",
            ] {
                assert_eq!(f.classify(Path::new(path)), None, "{path}");
            }
        }
    }

    #[test]
    fn the_link_the_config_and_the_key_dir_have_their_reasons() {
        let f = filter();
        assert_eq!(f.classify(Path::new("/git/link")), Some(Reason::Repository));
        assert_eq!(f.classify(Path::new("/git/.link.tmp")), None);
        assert_eq!(
            f.classify(Path::new("/r/promptsync.toml")),
            Some(Reason::Config)
        );
        assert_eq!(
            f.classify(Path::new("/secrets/..data")),
            Some(Reason::KeyFile)
        );
        assert_eq!(f.classify(Path::new("/secrets/sub/x")), None);
    }

    #[test]
    fn work_tree_files_count_but_editor_scratch_files_do_not() {
        let f = filter();
        assert_eq!(
            f.classify(Path::new("/r/prompts/a.prompt.yaml")),
            Some(Reason::Files)
        );
        for path in [
            "/r/prompts/.a.prompt.yaml.swp",
            "/r/prompts/a.prompt.yaml~",
            "/r/prompts/#a#",
            "/r/prompts/.#a.prompt.yaml",
            "/r/prompts/4913",
            "/elsewhere/a.prompt.yaml",
        ] {
            assert_eq!(f.classify(Path::new(path)), None, "{path}");
        }
        let commit_mode = Filter {
            work_root: None,
            ..filter()
        };
        assert_eq!(
            commit_mode.classify(Path::new("/r/prompts/a.prompt.yaml")),
            None
        );
    }
}
