//! Why the watcher polls instead of waiting for file system events, what to tell the
//! operator, and whether events are worth trying again. `EMFILE` from `inotify_init`
//! means either that the user is at the limit on inotify instances (it stays so until
//! another program lets one go: say how to raise it, and poll) or that this process is
//! out of descriptors (it passes: poll meanwhile and try events again); the two are
//! told apart by counting this process's descriptors against its limit
//! ([`crate::fdlimit`]). Knows nothing about what is watched.

use std::time::Duration;

use crate::fdlimit::{self, Exhaustion};

/// `ENOSPC`: from `inotify_add_watch`, the user is at the limit on watches.
const ENOSPC: i32 = 28;

/// Why changes are polled for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fallback {
    /// `watch.poll` asks for it.
    Asked,
    /// The limit on inotify watches is reached.
    WatchLimit,
    /// The limit on inotify instances is reached.
    InstanceLimit,
    /// This process (or the system) is out of file descriptors: transient.
    Descriptors(Exhaustion),
    /// Events are not available here for another reason.
    Unavailable(String),
}

impl Fallback {
    /// The fallback an error of the event watcher calls for; `None` for an error that
    /// concerns one directory only (it is skipped).
    pub(crate) fn of(err: &notify::Error) -> Option<Fallback> {
        let code = match &err.kind {
            notify::ErrorKind::MaxFilesWatch => return Some(Fallback::WatchLimit),
            notify::ErrorKind::Io(io) => io.raw_os_error(),
            _ => None,
        };
        match code {
            Some(ENOSPC) => Some(Fallback::WatchLimit),
            Some(fdlimit::EMFILE | fdlimit::ENFILE) => Some(match fdlimit::classify(code) {
                Exhaustion::No => Fallback::InstanceLimit,
                exhausted => Fallback::Descriptors(exhausted),
            }),
            _ => None,
        }
    }

    /// The fallback when the event watcher cannot be made at all.
    pub(crate) fn at_start(err: &notify::Error) -> Fallback {
        Fallback::of(err).unwrap_or_else(|| Fallback::Unavailable(err.to_string()))
    }

    /// Whether events should be tried again later.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Fallback::Descriptors(_))
    }

    /// Why, for `/status`.
    pub(crate) fn reason(&self) -> String {
        match self {
            Fallback::Asked => "watch.poll is set".to_owned(),
            Fallback::WatchLimit => {
                "the limit on inotify watches is reached (fs.inotify.max_user_watches)".to_owned()
            }
            Fallback::InstanceLimit => {
                "the limit on inotify instances is reached (fs.inotify.max_user_instances)"
                    .to_owned()
            }
            Fallback::Descriptors(Exhaustion::Process { open, limit }) => format!(
                "out of file descriptors ({open} of {limit} open); events are tried again \
                 as some are freed"
            ),
            Fallback::Descriptors(_) => "the system is out of file descriptors; events are \
                                         tried again as some are freed"
                .to_owned(),
            Fallback::Unavailable(why) => format!("file system events are not available: {why}"),
        }
    }

    /// Say once why events are not used and how to change that.
    pub(crate) fn advise(&self, err: &notify::Error, interval: Duration) {
        let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        let how = match self {
            Fallback::Asked => return,
            Fallback::InstanceLimit => {
                "To use events, raise the limit on inotify instances: sysctl \
                 fs.inotify.max_user_instances=512 (or close other watching programs)"
            }
            Fallback::WatchLimit => {
                "To use events, raise the limit on inotify watches: sysctl \
                 fs.inotify.max_user_watches=524288"
            }
            Fallback::Descriptors(_) => {
                "This passes as descriptors are freed: events are tried again meanwhile. If \
                 it recurs, raise the open-file limit (ulimit -n, LimitNOFILE=)"
            }
            Fallback::Unavailable(_) => "File system events are not available here",
        };
        tracing::warn!(
            error = %err,
            reason = %self.reason(),
            interval_ms,
            "cannot watch for file changes; polling refs and file times instead. {how}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(code: i32) -> notify::Error {
        notify::Error::io(std::io::Error::from_raw_os_error(code))
    }

    #[test]
    fn limits_and_exhaustion_are_told_apart() {
        assert_eq!(Fallback::of(&io(ENOSPC)), Some(Fallback::WatchLimit));
        assert_eq!(
            Fallback::of(&notify::Error::new(notify::ErrorKind::MaxFilesWatch)),
            Some(Fallback::WatchLimit)
        );
        // This test process has descriptors to spare: EMFILE is the instance limit.
        assert_eq!(
            Fallback::of(&io(fdlimit::EMFILE)),
            Some(Fallback::InstanceLimit)
        );
        let system = Fallback::of(&io(fdlimit::ENFILE)).unwrap();
        assert!(system.is_transient(), "{system:?}");
        assert_eq!(Fallback::of(&io(2)), None, "one directory's trouble");
        assert!(matches!(
            Fallback::at_start(&io(2)),
            Fallback::Unavailable(_)
        ));
        assert!(!Fallback::InstanceLimit.is_transient());
        let out = Fallback::Descriptors(Exhaustion::Process {
            open: 1021,
            limit: 1024,
        });
        assert!(out.is_transient());
        assert!(out.reason().contains("1021 of 1024"), "{}", out.reason());
    }
}
