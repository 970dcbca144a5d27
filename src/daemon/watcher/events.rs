//! The events: [`Source`] turns file system events (notify, one watcher instance)
//! into [`Reason`]s for the [`WatchSet`] the loop sends it, or polls the same
//! directories when events cannot be had: the OS limit on watches or instances is
//! reached, the process is out of file descriptors (then events are tried again every
//! few seconds), or `watch.poll` asks for it ([`super::fallback`] says which, and what
//! `/status` shows; [`super::poll`] fingerprints what is polled). Adding and removing
//! watches walks directories, so it runs on a blocking thread, and the stop token
//! ends the wait for it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fallback::Fallback;
use super::plan::{Depth, Filter, POLL_BUDGET, WatchSet};
use super::poll::{scan, send_changes};
use crate::daemon::metrics::Metrics;
use crate::daemon::status::Status;
use crate::daemon::trigger::Reason;
use crate::daemon::waits::{millis, sleep_until};

/// The directories the event watcher watches, and how.
type Watched = BTreeMap<PathBuf, Depth>;

/// While out of file descriptors, events are tried again this often.
const EVENTS_RETRY: Duration = Duration::from_secs(3);

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
pub(crate) struct Source {
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
    pub(crate) async fn run(
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
                        let work = move |w: &mut RecommendedWatcher, d: &mut Watched| rewatch(w, d, &wanted);
                        let Some(next) = self.with_watcher(watcher, &mut watched, &stop, work).await? else {
                            return Ok(());
                        };
                        mode = next;
                        if matches!(mode, Mode::Polling(_)) {
                            fingerprint = None;
                            retry_at = retry_time(&mode);
                        }
                    }
                    self.applied.send_replace(set.generation);
                }
                Some(dir) = new_dirs.recv() => {
                    if let Some(watcher) = mode.take_watcher() {
                        let work = move |w: &mut RecommendedWatcher, d: &mut Watched| watch_tree(w, d, &dir);
                        let Some(next) = self.with_watcher(watcher, &mut watched, &stop, work).await? else {
                            return Ok(());
                        };
                        mode = next;
                        if matches!(mode, Mode::Polling(_)) {
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

    /// Work with the event watcher and the directories it watches off the async threads
    /// (`work` walks directories), then the mode to go on in: events, or polling when
    /// `work` failed in a way that calls for it. `None` when `stop` came first.
    async fn with_watcher(
        &self,
        watcher: RecommendedWatcher,
        watched: &mut Watched,
        stop: &CancellationToken,
        work: impl FnOnce(&mut RecommendedWatcher, &mut Watched) -> notify::Result<()> + Send + 'static,
    ) -> Result<Option<Mode>, String> {
        let mut taken = std::mem::take(watched);
        let done = off_thread(stop, move || {
            let mut watcher = watcher;
            let result = work(&mut watcher, &mut taken);
            (watcher, taken, result)
        });
        let Some((watcher, now_watched, result)) = done.await? else {
            return Ok(None);
        };
        *watched = now_watched;
        Ok(Some(match result {
            Ok(()) => Mode::Events(watcher),
            Err(err) => self.fall_back(&err, watched),
        }))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher() -> RecommendedWatcher {
        notify::recommended_watcher(|_event: notify::Result<notify::Event>| {}).unwrap()
    }

    #[test]
    fn a_new_directory_is_watched_with_the_ones_below_it_but_not_git_or_nested_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for sub in ["a/b", ".git/refs", "nested/.git", "nested/c"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let mut watched = Watched::new();
        watch_tree(&mut watcher(), &mut watched, &root).unwrap();
        let mut dirs: Vec<_> = watched.keys().cloned().collect();
        dirs.sort();
        assert_eq!(dirs, [root.clone(), root.join("a"), root.join("a/b")]);
        assert!(watched.values().all(|depth| *depth == Depth::Flat));
    }

    #[test]
    fn rewatching_drops_what_is_no_longer_wanted_and_skips_what_vanished() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("refs")).unwrap();
        let mut w = watcher();
        let mut watched = Watched::new();
        let wanted = Watched::from([
            (root.clone(), Depth::Flat),
            (root.join("refs"), Depth::Deep),
        ]);
        rewatch(&mut w, &mut watched, &wanted).unwrap();
        assert_eq!(watched, wanted);
        let wanted = Watched::from([
            (root.join("refs"), Depth::Deep),
            (root.join("gone"), Depth::Flat),
        ]);
        rewatch(&mut w, &mut watched, &wanted).unwrap();
        assert_eq!(watched, Watched::from([(root.join("refs"), Depth::Deep)]));
    }
}
