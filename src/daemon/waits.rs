//! The daemon's small waits, shared by the loop, the targets' passes and the
//! watcher: sleeping until an instant that may not come, work on a blocking thread
//! that gives way to a cancellation, and a duration as milliseconds for a log field.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Run `work` on a blocking thread; `None` when `force` comes first (the thread is
/// left to finish on its own) or when it panicked.
pub(super) async fn blocking<T: Send + 'static>(
    force: &CancellationToken,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let job = tokio::task::spawn_blocking(work);
    tokio::select! {
        done = job => match done {
            Ok(value) => Some(value),
            Err(err) => {
                tracing::error!(error = %err, "work on a blocking thread failed");
                None
            }
        },
        () = force.cancelled() => None,
    }
}

/// `duration` in whole milliseconds, for a log field.
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Sleep until `at`; never, without one (a branch of a `select!` that is off).
pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blocking_work_gives_its_value_or_way_to_the_token() {
        let token = CancellationToken::new();
        assert_eq!(blocking(&token, || 7).await, Some(7));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        token.cancel();
        // The work never ends on its own (until the test lets it go): the token ends
        // the wait.
        let left = blocking(&token, move || rx.recv().is_ok()).await;
        assert_eq!(left, None);
        drop(tx);
    }

    #[test]
    fn millis_saturate() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
