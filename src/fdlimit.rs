//! The process's file descriptors: the soft limit raised to the hard one at start (as
//! Go's runtime does: the soft default of 1024 is a relic of `select`), the probe
//! server's connection cap derived from it, and telling "this process ran out of
//! descriptors" from "the kernel refused an inotify instance" when both say `EMFILE`.
//! Knows nothing about what the descriptors are for.

use std::io;
use std::path::Path;

use rustix::process::{Resource, getrlimit, setrlimit};

/// `EMFILE`: this process is at its descriptor limit, or (from `inotify_init`) the
/// user is at the limit on inotify instances.
pub(crate) const EMFILE: i32 = 24;
/// `ENFILE`: the system-wide table of open files is full.
pub(crate) const ENFILE: i32 = 23;

/// Descriptors kept free of the probe server's connections for the daemon's own work
/// (git, API connections, the watcher, logs).
const RESERVE: u64 = 64;
/// The probe server never holds more connections than this.
pub(crate) const MAX_CONNECTIONS: usize = 512;
/// Fewer free descriptors than this counts as exhausted: the watcher needs three
/// (inotify, epoll, an eventfd).
const EXHAUSTED_MARGIN: u64 = 8;

/// The soft limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub before: Option<u64>,
    pub after: Option<u64>,
}

/// Raise the soft limit on open files to the hard limit. Children the process starts
/// inherit it; promptsync starts none that care.
pub fn raise() -> Raised {
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    let mut after = before;
    if let Some(hard) = limit.maximum
        && before.is_none_or(|soft| soft < hard)
    {
        let wanted = rustix::process::Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => after = Some(hard),
            Err(err) => tracing::debug!(error = %err, hard, "cannot raise the open-file limit"),
        }
    }
    Raised { before, after }
}

/// The soft limit on open files now (`None`: unlimited).
pub(crate) fn soft_limit() -> Option<u64> {
    getrlimit(Resource::Nofile).current
}

/// How many connections the probe server may hold with `soft` as the open-file limit:
/// half of what is left after [`RESERVE`], at most [`MAX_CONNECTIONS`], at least 4.
pub(crate) fn connection_cap(soft: Option<u64>) -> usize {
    let Some(soft) = soft else {
        return MAX_CONNECTIONS;
    };
    let half = soft.saturating_sub(RESERVE) / 2;
    usize::try_from(half)
        .unwrap_or(MAX_CONNECTIONS)
        .clamp(4, MAX_CONNECTIONS)
}

/// How many descriptors this process has open (Linux: `/proc/self/fd`; elsewhere
/// `/dev/fd`). Counting needs one descriptor itself: `EMFILE` here means none is free.
pub(crate) fn open_count() -> io::Result<u64> {
    let dir = if Path::new("/proc/self/fd").is_dir() {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    let mut count = 0u64;
    for entry in std::fs::read_dir(dir)? {
        entry?;
        count += 1;
    }
    // The directory's own descriptor is in the listing.
    Ok(count.saturating_sub(1))
}

/// Why an `EMFILE`/`ENFILE` happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exhaustion {
    /// This process is out of descriptors (`open` of `limit`): transient, it passes
    /// when some are closed.
    Process { open: u64, limit: u64 },
    /// The system-wide file table is full (`ENFILE`): transient too.
    System,
    /// Descriptors are free: the error is about something else (for `inotify_init`,
    /// the per-user limit on inotify instances).
    No,
}

/// Whether an error with OS code `code` means descriptors ran out, judged by counting
/// them against the soft limit now.
pub(crate) fn classify(code: Option<i32>) -> Exhaustion {
    match code {
        Some(ENFILE) => Exhaustion::System,
        Some(EMFILE) => judge(open_count(), soft_limit()),
        _ => Exhaustion::No,
    }
}

/// [`classify`]'s decision on what was counted.
pub(crate) fn judge(open: io::Result<u64>, limit: Option<u64>) -> Exhaustion {
    match (open, limit) {
        (Err(err), limit) if matches!(err.raw_os_error(), Some(EMFILE | ENFILE)) => {
            Exhaustion::Process {
                open: limit.unwrap_or(0),
                limit: limit.unwrap_or(0),
            }
        }
        (Ok(open), Some(limit)) if open.saturating_add(EXHAUSTED_MARGIN) >= limit => {
            Exhaustion::Process { open, limit }
        }
        _ => Exhaustion::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_well_under_the_limit() {
        assert_eq!(connection_cap(Some(1_048_576)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(None), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(1024)), 480);
        assert_eq!(connection_cap(Some(200)), 68);
        assert_eq!(connection_cap(Some(16)), 4);
    }

    #[test]
    fn exhaustion_is_told_from_the_instance_limit_by_counting() {
        assert_eq!(
            judge(Ok(1020), Some(1024)),
            Exhaustion::Process {
                open: 1020,
                limit: 1024
            }
        );
        assert_eq!(judge(Ok(40), Some(1024)), Exhaustion::No);
        let no_slot = io::Error::from_raw_os_error(EMFILE);
        assert_ne!(judge(Err(no_slot), Some(64)), Exhaustion::No);
        let other = io::Error::from_raw_os_error(2);
        assert_eq!(judge(Err(other), Some(64)), Exhaustion::No);
        assert_eq!(classify(Some(ENFILE)), Exhaustion::System);
        assert_eq!(classify(Some(28)), Exhaustion::No);
        // This test process has descriptors to spare.
        assert_eq!(classify(Some(EMFILE)), Exhaustion::No);
    }

    #[test]
    fn open_descriptors_are_counted() {
        let before = open_count().unwrap();
        let file = tempfile::tempfile().unwrap();
        let during = open_count().unwrap();
        drop(file);
        // Other tests open files concurrently: only a lower bound holds.
        assert!(during >= 1 && before >= 3, "{before} {during}");
    }
}
