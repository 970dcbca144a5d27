//! The debounce: [`debounce`] turns a burst of reasons into one trigger, with a cap
//! on the wait ([`MAX_DEBOUNCE`]).
//!
//! It is written here rather than taken from notify-debouncer-full: that crate delays
//! and stitches per-path events (renames, file ids), while the loop only needs
//! "something relevant changed", once per burst, with a cap on the wait.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::daemon::trigger::{Reason, Reasons, Triggers};

/// A steady stream of events still triggers a pass this soon after its first event.
pub(crate) const MAX_DEBOUNCE: Duration = Duration::from_secs(5);
/// Turn bursts of reasons into triggers: wait until `quiet` passes without a new one
/// (but never longer than [`MAX_DEBOUNCE`] after the first), then fire every reason of
/// the burst as one trigger (the slot keeps the most demanding).
pub(crate) async fn debounce(
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

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_trigger_after_the_quiet_period() {
        let (tx, rx) = mpsc::channel(16);
        let (triggers, mut pending) = crate::daemon::trigger::slot();
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
        let (triggers, mut pending) = crate::daemon::trigger::slot();
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
}
