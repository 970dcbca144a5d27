//! Opening the state file: the lock beside it (`FILE.lock`), held for the emulator's
//! life so that two emulators never share one state (the second waits, within a
//! bound, or says which process holds it), and a bounded read that takes regular files
//! only, without ever blocking on a FIFO or reading a device such as `/dev/zero`.
//! Knows nothing about what the state holds.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::OFlags;

use super::EmulatorError;

/// A state file larger than this is refused (a large test account is tens of MiB).
pub(crate) const MAX_STATE_BYTES: u64 = 1 << 30;
/// What is read of a lock file to say who holds it.
const MAX_HOLDER_BYTES: u64 = 4096;
/// How often a waiting emulator tries the lock again.
const RETRY: Duration = Duration::from_millis(100);

/// Opens never wait: a FIFO with no writer fails at once instead.
fn nonblocking() -> i32 {
    i32::try_from(OFlags::NONBLOCK.bits()).unwrap_or(0)
}

/// What `path` is when it is not a regular file (links followed); `None` for a
/// regular file or nothing.
fn odd_kind(path: &Path) -> io::Result<Option<&'static str>> {
    let kind = match std::fs::metadata(path) {
        Ok(meta) => meta.file_type(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    Ok(if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a named pipe (FIFO)")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    })
}

/// Refuse a state path that names anything but a regular file (or nothing yet).
pub(crate) fn check_kind(path: &Path) -> Result<(), EmulatorError> {
    let read_error = |source| EmulatorError::ReadState {
        path: path.to_owned(),
        source,
    };
    match odd_kind(path).map_err(read_error)? {
        Some(what) => Err(EmulatorError::StateNotAFile {
            path: path.to_owned(),
            what,
        }),
        None => Ok(()),
    }
}

/// The bytes of the state file; `None` when it does not exist yet.
pub(crate) fn read(path: &Path) -> Result<Option<Vec<u8>>, EmulatorError> {
    check_kind(path)?;
    let read_error = |source| EmulatorError::ReadState {
        path: path.to_owned(),
        source,
    };
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nonblocking())
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(read_error(err)),
    };
    // What was opened counts, not what was looked at before.
    if !file.metadata().map_err(read_error)?.is_file() {
        return Err(EmulatorError::StateNotAFile {
            path: path.to_owned(),
            what: "not a regular file",
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(EmulatorError::InvalidState {
            path: path.to_owned(),
            reason: format!("it is larger than {} MiB", MAX_STATE_BYTES >> 20),
        });
    }
    Ok(Some(bytes))
}

/// The lock on one state file; released when dropped.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

/// `state.json` → `state.json.lock`.
pub(crate) fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    state.with_file_name(name)
}

/// Take the lock of `state`, waiting at most `wait` for another emulator to let it go;
/// `holder` (who we are) is written into the lock file for the next one to read.
pub(crate) fn lock(state: &Path, wait: Duration, holder: &str) -> Result<StateLock, EmulatorError> {
    let path = lock_path(state);
    let lock_error = |source| EmulatorError::LockState {
        path: path.clone(),
        source,
    };
    if let Some(what) = odd_kind(&path).map_err(lock_error)? {
        return Err(EmulatorError::StateNotAFile { path, what });
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(nonblocking())
        .open(&path)
        .map_err(lock_error)?;
    let deadline = Instant::now() + wait;
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                if !said {
                    tracing::info!(
                        state = %state.display(),
                        holder = %holder_of(&mut file),
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "the state file is in use by another emulator; waiting for it"
                    );
                    said = true;
                }
                std::thread::sleep(RETRY);
            }
            Err(TryLockError::WouldBlock) => {
                return Err(EmulatorError::StateLocked {
                    path: state.to_owned(),
                    holder: holder_of(&mut file),
                });
            }
            Err(TryLockError::Error(err)) => return Err(lock_error(err)),
        }
    }
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()));
    if let Err(err) = written {
        tracing::debug!(lock = %path.display(), error = %err, "cannot say who holds the lock");
    }
    Ok(StateLock { _file: file })
}

/// Who holds the lock, as its holder wrote it (bounded, one line).
fn holder_of(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let read = file
        .rewind()
        .and_then(|()| (&mut *file).take(MAX_HOLDER_BYTES).read_to_end(&mut bytes));
    let text = String::from_utf8_lossy(&bytes);
    let line: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    match read {
        Ok(_) if !line.is_empty() => line,
        _ => "another process (it has not said which)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_says_who_holds_the_first_and_may_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let first = lock(&state, Duration::ZERO, "pid 1 at http://127.0.0.1:1").unwrap();
        let err = lock(&state, Duration::from_millis(150), "pid 2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pid 1 at http://127.0.0.1:1"), "{err}");
        assert!(err.contains("state.json"), "{err}");
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(first);
        });
        lock(&state, Duration::from_secs(20), "pid 3").unwrap();
        release.join().unwrap();
    }

    #[test]
    fn devices_and_fifos_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        for (path, what) in [
            (Path::new("/dev/zero"), "a character device"),
            (fifo.as_path(), "a named pipe (FIFO)"),
            (dir.path(), "a directory"),
        ] {
            let err = read(path).unwrap_err().to_string();
            assert!(err.contains(what), "{path:?}: {err}");
        }
        assert!(read(&dir.path().join("none")).unwrap().is_none());
    }
}
