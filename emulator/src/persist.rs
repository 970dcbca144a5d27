//! The state file: read at start (through `statefile`'s bounded reader, under its
//! lock, which the writer holds until its last save), written atomically (temp file in the same
//! directory, fsync, rename, fsync of the directory) so that a killed emulator never
//! leaves a torn file. Writes are group commits: by default a change waits until a
//! save that includes it has reached the disk before it is answered, and changes that
//! arrive during a save share the next one; with deferred writes a change is answered
//! at once and saved by the next save (a kill may lose the newest changes, but still
//! never tears the file). In-memory mode never gets here. Knows nothing about HTTP or
//! the lifecycle rules.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::EmulatorError;
use super::statefile::{self, StateLock};
use super::store::Store;

/// Identifies a state file.
const FORMAT: &str = "promptsync-emulator-state";
/// The layout this code reads and writes.
const VERSION: u32 = 1;

#[derive(Serialize)]
struct StateOut<'a> {
    format: &'static str,
    version: u32,
    store: &'a Store,
}

#[derive(Deserialize)]
struct StateIn {
    format: String,
    version: u32,
    store: Store,
}

/// Serialise a store as a state file's bytes.
pub(crate) fn encode(store: &Store) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&StateOut {
        format: FORMAT,
        version: VERSION,
        store,
    })
}

/// Read the state file (bounded, a regular file only); `None` when it does not exist
/// yet.
pub(crate) fn load(path: &Path) -> Result<Option<Store>, EmulatorError> {
    let Some(bytes) = statefile::read(path)? else {
        return Ok(None);
    };
    let invalid = |reason: String| EmulatorError::InvalidState {
        path: path.to_owned(),
        reason,
    };
    let state: StateIn = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if state.format != FORMAT {
        return Err(invalid(format!(
            "format is `{}`, not `{FORMAT}`",
            state.format
        )));
    }
    if state.version != VERSION {
        return Err(invalid(format!(
            "layout version {} is not the supported version {VERSION}",
            state.version
        )));
    }
    state.store.restored().map(Some).map_err(invalid)
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned());
    format!(".{name}.")
}

const TEMP_SUFFIX: &str = ".tmp";

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Replace `path` with `bytes` atomically and durably.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let mut temp = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(&dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    // The rename itself is durable only once the directory is synced.
    fs::File::open(&dir)?.sync_all()
}

/// Remove temp files a killed emulator left beside `path`.
pub(crate) fn remove_stale_temps(path: &Path) {
    let prefix = temp_prefix(path);
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(TEMP_SUFFIX) {
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::debug!(file = %entry.path().display(), "removed stale temp file")
                }
                Err(err) => {
                    tracing::warn!(file = %entry.path().display(), error = %err, "cannot remove stale temp file");
                }
            }
        }
    }
}

/// What has reached the disk.
#[derive(Debug, Clone, Default)]
struct Saved {
    /// Every change up to this store generation is on disk.
    generation: u64,
    /// The last failed save: the generation it tried to reach, and why.
    failure: Option<(u64, String)>,
}

/// The background writer of one state file.
#[derive(Debug)]
pub(crate) struct Persister {
    path: PathBuf,
    wake: Arc<Notify>,
    saved: watch::Receiver<Saved>,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Answer a change only once it is on disk.
    durable: bool,
    /// The state file's lock, let go once the last save is done.
    lock: std::sync::Mutex<Option<StateLock>>,
}

/// Takes a snapshot of the store: its generation and its encoded bytes.
pub(crate) type Snapshot = Box<dyn Fn() -> Result<(u64, Vec<u8>), String> + Send + Sync>;

impl Persister {
    /// Start the writer; `initial` is the generation already on disk.
    pub(crate) fn start(
        path: PathBuf,
        initial: u64,
        snapshot: Snapshot,
        durable: bool,
        lock: StateLock,
    ) -> Persister {
        let wake = Arc::new(Notify::new());
        let (saved_tx, saved) = watch::channel(Saved {
            generation: initial,
            failure: None,
        });
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn({
            let wake = Arc::clone(&wake);
            let path = path.clone();
            async move {
                loop {
                    let stopping = tokio::select! {
                        () = wake.notified() => false,
                        _ = stop_rx.changed() => true,
                    };
                    save_once(&path, &snapshot, &saved_tx).await;
                    if stopping {
                        break;
                    }
                }
            }
        });
        Persister {
            path,
            wake,
            saved,
            stop,
            task: std::sync::Mutex::new(Some(task)),
            durable,
            lock: std::sync::Mutex::new(Some(lock)),
        }
    }

    /// After a change that brought the store to `generation`: wait until it is on disk
    /// (durable writes), or only ask for a save (deferred writes).
    pub(crate) async fn after_change(&self, generation: u64) -> Result<(), String> {
        if self.saved.borrow().generation >= generation {
            return Ok(());
        }
        self.wake.notify_one();
        if !self.durable {
            return Ok(());
        }
        let mut saved = self.saved.clone();
        let reached = saved
            .wait_for(|s| {
                s.generation >= generation
                    || s.failure.as_ref().is_some_and(|(g, _)| *g >= generation)
            })
            .await
            .map_err(|_| "the state writer has stopped".to_owned())?;
        if reached.generation >= generation {
            return Ok(());
        }
        let reason = reached
            .failure
            .as_ref()
            .map_or_else(String::new, |(_, reason)| reason.clone());
        Err(format!(
            "cannot write the state file {}: {reason}",
            self.path.display()
        ))
    }

    /// Save whatever is pending and stop the writer.
    pub(crate) async fn finish(&self) -> Result<(), EmulatorError> {
        let _ = self.stop.send(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.await.map_err(|e| EmulatorError::Task(e.to_string()))?;
        }
        // Nothing more is written: the next emulator may have the file.
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let saved = self.saved.borrow();
        match &saved.failure {
            Some((generation, reason)) if *generation > saved.generation => {
                Err(EmulatorError::WriteState {
                    path: self.path.clone(),
                    source: io::Error::other(reason.clone()),
                })
            }
            _ => Ok(()),
        }
    }
}

async fn save_once(path: &Path, snapshot: &Snapshot, saved: &watch::Sender<Saved>) {
    let (generation, bytes) = match snapshot() {
        Ok(snapshot) => snapshot,
        Err(reason) => {
            tracing::error!(error = %reason, "cannot encode the emulator state");
            return;
        }
    };
    if generation <= saved.borrow().generation {
        return;
    }
    let target = path.to_owned();
    let result = tokio::task::spawn_blocking(move || write_atomic(&target, &bytes)).await;
    let result = match result {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(join) => Err(join.to_string()),
    };
    match result {
        Ok(()) => {
            tracing::trace!(generation, file = %path.display(), "state saved");
            saved.send_modify(|s| s.generation = generation);
        }
        Err(reason) => {
            tracing::error!(file = %path.display(), error = %reason, "cannot write the emulator state");
            saved.send_modify(|s| s.failure = Some((generation, reason)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_and_load_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load(&path).unwrap().is_none());
        let store = Store::default();
        write_atomic(&path, &encode(&store).unwrap()).unwrap();
        write_atomic(&path, &encode(&store).unwrap()).unwrap();
        assert!(load(&path).unwrap().is_some());
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["state.json"], "no temp file is left behind");
    }

    #[test]
    fn bad_files_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for text in [
            "{\"format\": \"promptsync-emulator-st",
            "{\"format\": \"other\", \"version\": 1, \"store\": {\"next_seq\": 0, \"prompts\": []}}",
            "{\"format\": \"promptsync-emulator-state\", \"version\": 9, \"store\": {\"next_seq\": 0, \"prompts\": []}}",
        ] {
            fs::write(&path, text).unwrap();
            let err = load(&path).unwrap_err().to_string();
            assert!(err.contains("state.json"), "{err}");
        }
    }

    #[test]
    fn stale_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(dir.path().join(".state.json.abc123.tmp"), "torn").unwrap();
        fs::write(dir.path().join("keep.tmp"), "other").unwrap();
        remove_stale_temps(&path);
        assert!(!dir.path().join(".state.json.abc123.tmp").exists());
        assert!(dir.path().join("keep.tmp").exists());
    }
}
