//! Noticing changes. [`plan`] decides which directories matter (the git dir's refs,
//! the directory that holds a git-sync link, the configuration and key files'
//! directories, and in `--worktree` mode every directory of the working tree) and how
//! to tell a relevant event from noise ([`Filter`]). [`Source`] turns file system
//! events (notify, one watcher instance) into [`Reason`]s, or polls the same
//! directories when events cannot be had: the OS limit on watches or instances is
//! reached, the process is out of file descriptors (then events are tried again every
//! few seconds), or `watch.poll` asks for it ([`super::fallback`] says which, and what
//! `/status` shows; [`super::poll`] fingerprints what is polled). [`debounce`] turns a
//! burst of reasons into one
//! trigger. Directories are watched, never files, because editors save by rename.
//! Adding and removing watches walks directories, so it runs on a blocking thread, and
//! the stop token ends the wait for it.
//!
//! The debounce is written here rather than taken from notify-debouncer-full: that
//! crate delays and stitches per-path events (renames, file ids), while the loop only
//! needs "something relevant changed", once per burst, with a cap on the wait.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fallback::Fallback;
use super::metrics::Metrics;
use super::poll::{scan, send_changes};
use super::status::Status;
use super::trigger::{Reason, Reasons, Triggers};
use crate::config::DEFAULT_CONFIG_FILE;
use crate::gitrepo::GitRepo;

/// A steady stream of events still triggers a pass this soon after its first event.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(5);

/// Entries one walk may look at, so that a huge tree cannot make it unbounded.
pub(super) const POLL_BUDGET: usize = 200_000;

/// While out of file descriptors, events are tried again this often.
const EVENTS_RETRY: Duration = Duration::from_secs(3);

/// Whether a directory is watched with its subdirectories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    Flat,
    Deep,
}

/// The directories to watch and how to read their events.
#[derive(Debug, Clone, Default)]
pub struct WatchSet {
    pub dirs: BTreeMap<PathBuf, Depth>,
    pub filter: Filter,
    /// Counts the sets sent; [`Source`] reports the one it has applied.
    pub generation: u64,
}

/// Tells relevant paths from noise, and what a relevant one means.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The worktree's own git dir and the common one (canonical), the most specific
    /// first: a linked worktree's own (`.git/worktrees/<name>`) lies inside the common
    /// one, and its `HEAD` is the worktree's.
    git_dirs: Vec<PathBuf>,
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
    fn add(&mut self, dir: PathBuf, depth: Depth) {
        let entry = self.dirs.entry(dir).or_insert(depth);
        if depth == Depth::Deep {
            *entry = Depth::Deep;
        }
    }
}

impl Filter {
    /// What a change at `path` means, or `None` for noise: `.git` internals other than
    /// refs, lock files, editor temp files, unrelated files.
    pub fn classify(&self, path: &Path) -> Option<Reason> {
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
pub struct Inputs {
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
pub fn plan(inputs: &Inputs) -> WatchSet {
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

/// How changes are noticed.
#[derive(Debug)]
enum Mode {
    Events(RecommendedWatcher),
    Polling(Fallback),
}

impl Mode {
    fn label(&self) -> &'static str {
        match self {
            Mode::Events(_) => "events",
            Mode::Polling(_) => "polling",
        }
    }

    /// The event watcher, taken out to work with it off the async threads (the mode
    /// is a placeholder until it is put back); `None` while polling, which stays.
    fn take_watcher(&mut self) -> Option<RecommendedWatcher> {
        match std::mem::replace(self, Mode::Polling(Fallback::Asked)) {
            Mode::Events(watcher) => Some(watcher),
            polling => {
                *self = polling;
                None
            }
        }
    }

    fn reason(&self) -> Option<String> {
        match self {
            Mode::Events(_) => None,
            Mode::Polling(fallback) => Some(fallback.reason()),
        }
    }
}

/// The producer of [`Reason`]s: file system events, or polling.
#[derive(Debug)]
pub struct Source {
    pub set: watch::Receiver<Arc<WatchSet>>,
    /// The generation of the set whose watches are in place (or polled).
    pub applied: Arc<watch::Sender<u64>>,
    pub poll: bool,
    pub poll_interval: Duration,
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
}

impl Source {
    /// Send reasons to `out` until `stop` is cancelled. An error says why it could not
    /// go on (its supervisor restarts it).
    pub async fn run(
        mut self,
        out: mpsc::Sender<Reason>,
        stop: CancellationToken,
    ) -> Result<(), String> {
        let filter = Arc::new(RwLock::new(Arc::new(Filter::default())));
        let mut watched: BTreeMap<PathBuf, Depth> = BTreeMap::new();
        // Directories created in the working tree are watched at once, not only after
        // the next pass: an edit in a new directory right after it appears counts.
        let (new_dirs_tx, new_dirs_rx) = mpsc::channel::<PathBuf>(256);
        let mut mode = if self.poll {
            tracing::info!(
                interval_ms = millis(self.poll_interval),
                "watching by polling (watch.poll is set)"
            );
            Mode::Polling(Fallback::Asked)
        } else {
            match events(&filter, &out, &new_dirs_tx, &self.metrics) {
                Ok(watcher) => Mode::Events(watcher),
                Err(err) => {
                    let fallback = Fallback::at_start(&err);
                    fallback.advise(&err, self.poll_interval);
                    Mode::Polling(fallback)
                }
            }
        };
        let mut new_dirs = new_dirs_rx;
        let mut ticks = tokio::time::interval(self.poll_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fingerprint: Option<HashMap<Reason, u64>> = None;
        let mut retry_at = retry_time(&mode);
        let mut shown: Option<(&'static str, Option<String>)> = None;
        self.set.mark_changed();
        loop {
            let now_shown = (mode.label(), mode.reason());
            if shown.as_ref() != Some(&now_shown) {
                self.status.set_watcher(now_shown.0, now_shown.1.clone());
                shown = Some(now_shown);
            }
            let polling = matches!(mode, Mode::Polling(_));
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                changed = self.set.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let set = Arc::clone(&self.set.borrow_and_update());
                    if let Ok(mut current) = filter.write() {
                        *current = Arc::new(set.filter.clone());
                    }
                    if let Some(watcher) = mode.take_watcher() {
                        let wanted = set.dirs.clone();
                        let done = off_thread(&stop, move || {
                            let mut watcher = watcher;
                            let result = rewatch(&mut watcher, &mut watched, &wanted);
                            (watcher, watched, result)
                        });
                        let Some((watcher, now_watched, result)) = done.await? else {
                            return Ok(());
                        };
                        watched = now_watched;
                        mode = Mode::Events(watcher);
                        if let Err(err) = result {
                            mode = self.fall_back(&err, &mut watched);
                            fingerprint = None;
                            retry_at = retry_time(&mode);
                        }
                    }
                    self.applied.send_replace(set.generation);
                }
                Some(dir) = new_dirs.recv() => {
                    if let Some(watcher) = mode.take_watcher() {
                        let done = off_thread(&stop, move || {
                            let mut watcher = watcher;
                            let result = watch_tree(&mut watcher, &mut watched, &dir);
                            (watcher, watched, result)
                        });
                        let Some((watcher, now_watched, result)) = done.await? else {
                            return Ok(());
                        };
                        watched = now_watched;
                        mode = Mode::Events(watcher);
                        if let Err(err) = result {
                            mode = self.fall_back(&err, &mut watched);
                            fingerprint = None;
                            retry_at = retry_time(&mode);
                        }
                        // Files written into it before its watch began made no event.
                        let _ = out.try_send(Reason::Files);
                    }
                }
                () = sleep_until(retry_at), if retry_at.is_some() => {
                    let set = Arc::clone(&self.set.borrow());
                    // The walk of the watched directories runs off the async threads.
                    let again = match events(&filter, &out, &new_dirs_tx, &self.metrics) {
                        Ok(watcher) => {
                            let wanted = set.dirs.clone();
                            let done = off_thread(&stop, move || {
                                let mut watcher = watcher;
                                let mut watched = BTreeMap::new();
                                let result = rewatch(&mut watcher, &mut watched, &wanted);
                                (watcher, watched, result)
                            });
                            let Some((watcher, now_watched, result)) = done.await? else {
                                return Ok(());
                            };
                            watched = now_watched;
                            result.map(|()| watcher)
                        }
                        Err(err) => Err(err),
                    };
                    match again {
                        Ok(watcher) => {
                            tracing::info!("watching for file system events again");
                            mode = Mode::Events(watcher);
                            retry_at = None;
                            // What changed since the last poll, before the watches
                            // were in place, made no event.
                            if let Some(before) = fingerprint.take() {
                                let now = tokio::task::spawn_blocking(move || scan(&set)).await.unwrap_or_default();
                                send_changes(&before, &now, &out);
                            }
                        }
                        Err(err) => {
                            let fallback = Fallback::at_start(&err);
                            if !fallback.is_transient() {
                                fallback.advise(&err, self.poll_interval);
                            }
                            mode = Mode::Polling(fallback);
                            retry_at = retry_time(&mode);
                        }
                    }
                }
                _ = ticks.tick(), if polling => {
                    let set = Arc::clone(&self.set.borrow());
                    let Some(now) = off_thread(&stop, move || scan(&set)).await? else {
                        return Ok(());
                    };
                    if let Some(before) = &fingerprint {
                        send_changes(before, &now, &out);
                    }
                    fingerprint = Some(now);
                }
            }
        }
    }

    /// Events failed with `err`: say why and poll (for a limit reached, for good; when
    /// out of descriptors, until events can be had again).
    fn fall_back(&self, err: &notify::Error, watched: &mut BTreeMap<PathBuf, Depth>) -> Mode {
        let fallback = Fallback::at_start(err);
        fallback.advise(err, self.poll_interval);
        watched.clear();
        Mode::Polling(fallback)
    }
}

/// When to try events again: only while polling for a reason that passes.
fn retry_time(mode: &Mode) -> Option<Instant> {
    match mode {
        Mode::Polling(fallback) if fallback.is_transient() => Some(Instant::now() + EVENTS_RETRY),
        _ => None,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Run `work` on a blocking thread (it walks directories, which a slow or hung file
/// system can make take any time); `None` when `stop` comes first (the thread is left
/// to finish on its own), an error when it panicked.
async fn off_thread<T: Send + 'static>(
    stop: &CancellationToken,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<Option<T>, String> {
    let job = tokio::task::spawn_blocking(work);
    tokio::select! {
        () = stop.cancelled() => Ok(None),
        done = job => done.map(Some).map_err(|err| format!("watching the directories: {err}")),
    }
}

/// The notify watcher, sending classified reasons to `out` from its own thread.
fn events(
    filter: &Arc<RwLock<Arc<Filter>>>,
    out: &mpsc::Sender<Reason>,
    new_dirs: &mpsc::Sender<PathBuf>,
    metrics: &Arc<Metrics>,
) -> notify::Result<RecommendedWatcher> {
    let filter = Arc::clone(filter);
    let out = out.clone();
    let new_dirs = new_dirs.clone();
    let metrics = Arc::clone(metrics);
    notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(error = %err, "file watcher error; the periodic resync covers what was missed");
                return;
            }
        };
        if event.need_rescan() {
            metrics.rescan();
            tracing::warn!(
                "file system events were lost (queue overflow): reading everything again"
            );
            let _ = out.try_send(Reason::Rescan);
            return;
        }
        // Our own reads (and everyone's) are not changes; a finished write is.
        if let EventKind::Access(kind) = event.kind
            && kind != AccessKind::Close(AccessMode::Write)
        {
            return;
        }
        let Ok(filter) = filter.read().map(|f| Arc::clone(&f)) else {
            return;
        };
        if let Some(reason) = event.paths.iter().find_map(|path| filter.classify(path)) {
            tracing::trace!(reason = reason.as_str(), paths = ?event.paths, "change noticed");
            let appeared = matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_))
            );
            if reason == Reason::Files && appeared {
                for path in event.paths.iter().filter(|path| path.is_dir()) {
                    let _ = new_dirs.try_send(path.clone());
                }
            }
            // A full channel already holds a reason: the pass will come.
            let _ = out.try_send(reason);
        }
    })
}

/// Bring the watches in line with `wanted`. A watch limit is an error (the caller
/// falls back to polling); a directory that vanished meanwhile is skipped.
fn rewatch(
    watcher: &mut RecommendedWatcher,
    watched: &mut BTreeMap<PathBuf, Depth>,
    wanted: &BTreeMap<PathBuf, Depth>,
) -> notify::Result<()> {
    let gone: Vec<PathBuf> = watched
        .iter()
        .filter(|(dir, depth)| wanted.get(*dir) != Some(depth))
        .map(|(dir, _)| dir.clone())
        .collect();
    for dir in gone {
        let _ = watcher.unwatch(&dir);
        watched.remove(&dir);
    }
    for (dir, depth) in wanted {
        if watched.contains_key(dir) {
            continue;
        }
        let mode = match depth {
            Depth::Flat => RecursiveMode::NonRecursive,
            Depth::Deep => RecursiveMode::Recursive,
        };
        match watcher.watch(dir, mode) {
            Ok(()) => {
                watched.insert(dir.clone(), *depth);
            }
            Err(err) if Fallback::of(&err).is_some() => return Err(err),
            Err(err) => {
                tracing::debug!(dir = %dir.display(), error = %err, "not watched");
            }
        }
    }
    tracing::debug!(dirs = watched.len(), "watching");
    Ok(())
}

/// Watch `dir` and the directories below it (not `.git`, not nested repositories)
/// that are not watched yet.
fn watch_tree(
    watcher: &mut RecommendedWatcher,
    watched: &mut BTreeMap<PathBuf, Depth>,
    dir: &Path,
) -> notify::Result<()> {
    let mut pending = vec![dir.to_owned()];
    let mut budget = POLL_BUDGET;
    while let Some(dir) = pending.pop() {
        if budget == 0 {
            break;
        }
        budget -= 1;
        if !watched.contains_key(&dir) {
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    watched.insert(dir.clone(), Depth::Flat);
                }
                Err(err) if Fallback::of(&err).is_some() => return Err(err),
                Err(_) => continue,
            }
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir())
                && entry.file_name() != ".git"
                && !path.join(".git").exists()
            {
                pending.push(path);
            }
        }
    }
    Ok(())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Turn bursts of reasons into triggers: wait until `quiet` passes without a new one
/// (but never longer than [`MAX_DEBOUNCE`] after the first), then fire every reason of
/// the burst as one trigger (the slot keeps the most demanding).
pub async fn debounce(
    mut reasons: mpsc::Receiver<Reason>,
    triggers: Triggers,
    quiet: Duration,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            reason = reasons.recv() => match reason {
                Some(reason) => reason,
                None => return,
            },
        };
        let start = Instant::now();
        let cap = start + MAX_DEBOUNCE.max(quiet);
        let mut until = start + quiet;
        let mut burst = Reasons::of(first);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(until.min(cap)) => break,
                next = reasons.recv() => match next {
                    Some(next) => {
                        burst.insert(next);
                        until = Instant::now() + quiet;
                    }
                    None => break,
                },
            }
        }
        triggers.fire_all(burst);
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

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_trigger_after_the_quiet_period() {
        let (tx, rx) = mpsc::channel(16);
        let (triggers, mut pending) = super::super::trigger::slot();
        let stop = CancellationToken::new();
        let task = tokio::spawn(debounce(
            rx,
            triggers,
            Duration::from_millis(500),
            stop.clone(),
        ));
        let start = Instant::now();
        for _ in 0..3 {
            tx.send(Reason::Files).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tx.send(Reason::Refs).await.unwrap();
        let trigger = pending.next().await.unwrap();
        assert_eq!(trigger.reason, Reason::Refs);
        let waited = Instant::now() - start;
        assert!(
            waited >= Duration::from_millis(800) && waited < Duration::from_millis(900),
            "{waited:?}"
        );
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_still_triggers_within_the_cap() {
        let (tx, rx) = mpsc::channel(16);
        let (triggers, mut pending) = super::super::trigger::slot();
        let stop = CancellationToken::new();
        tokio::spawn(debounce(
            rx,
            triggers,
            Duration::from_millis(500),
            stop.clone(),
        ));
        let start = Instant::now();
        let feeder = tokio::spawn(async move {
            loop {
                if tx.send(Reason::Files).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        pending.next().await.unwrap();
        let waited = Instant::now() - start;
        assert!(
            waited <= MAX_DEBOUNCE + Duration::from_millis(250),
            "{waited:?}"
        );
        stop.cancel();
        feeder.abort();
    }

    #[test]
    fn polling_sees_a_ref_move() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("refs/heads/main"), "a\n").unwrap();
        let git = std::fs::canonicalize(&git).unwrap();
        let mut set = WatchSet::default();
        set.add(git.clone(), Depth::Flat);
        set.add(git.join("refs"), Depth::Deep);
        set.filter.git_dirs = vec![git.clone()];
        let before = scan(&set);
        assert_eq!(before, scan(&set), "nothing changed");
        std::fs::write(git.join("refs/heads/main.tmp"), "bb\n").unwrap();
        std::fs::rename(git.join("refs/heads/main.tmp"), git.join("refs/heads/main")).unwrap();
        assert_ne!(before.get(&Reason::Refs), scan(&set).get(&Reason::Refs));
    }
}
