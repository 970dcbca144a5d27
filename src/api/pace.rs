//! Pacing requests: an optional token bucket (`api.requests_per_minute`) that spaces
//! requests out so a large sync stays inside the API's rate limit, and a pause that a
//! 429 sets for the whole client, so that every request in flight waits out the
//! server's `Retry-After` together instead of each one being throttled in turn.
//!
//! The pause is bounded twice: it lasts at most [`MAX_PAUSE`] whatever the server
//! asked, and a request waits for it only when it ends before the request's own
//! deadline (`api::retry`); otherwise the request fails at once, naming the wait, and
//! nothing is sent. Knows nothing about what is sent.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The longest promptsync holds its requests for a server's `Retry-After` (5 minutes):
/// a server that asks for an hour, or a date in 2099, is asked again after this.
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(300);

/// The pacer shared by every request of one client.
#[derive(Debug)]
pub(super) struct Pacer {
    /// Tokens added per second, and the most the bucket holds; `None`: no bucket.
    bucket: Option<(f64, f64)>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled: Instant,
    /// No request starts before it ends (a 429's `Retry-After`).
    pause: Option<Pause>,
}

#[derive(Debug, Clone, Copy)]
struct Pause {
    until: Instant,
    /// What the server asked for, as said (for messages).
    asked: Duration,
}

/// A request that could not wait for the pause: it would end past its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Paused {
    /// What the server asked for.
    pub asked: Duration,
    /// When requests resume, as text.
    pub resume: String,
}

impl Pacer {
    /// At most `per_minute` requests a minute, evenly spaced (no bursts: a server
    /// that counts in fixed windows then never sees more than the limit in one), or no
    /// pacing for `None`.
    pub(super) fn new(per_minute: Option<usize>) -> Pacer {
        let bucket = per_minute.map(|n| (n as f64 / 60.0, 1.0));
        Pacer {
            bucket,
            state: Mutex::new(State {
                tokens: bucket.map_or(0.0, |(_, burst)| burst),
                refilled: Instant::now(),
                pause: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wait until a request may start, and take its token; `Err` at once when a pause
    /// lasts past `deadline`.
    pub(super) async fn ready(&self, deadline: Instant) -> Result<(), Paused> {
        loop {
            match self.try_take(deadline)? {
                None => return Ok(()),
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Take a token now (`None`), or how long to wait before trying again.
    fn try_take(&self, deadline: Instant) -> Result<Option<Duration>, Paused> {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(pause) = state.pause {
            if pause.until > deadline {
                return Err(Paused {
                    asked: pause.asked,
                    resume: wall_text(pause.until),
                });
            }
            if pause.until > now {
                return Ok(Some(pause.until - now));
            }
            state.pause = None;
        }
        let Some((rate, burst)) = self.bucket else {
            return Ok(None);
        };
        let elapsed = now.duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(burst);
        state.refilled = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(None)
        } else {
            Ok(Some(Duration::from_secs_f64((1.0 - state.tokens) / rate)))
        }
    }

    /// The server said to wait `asked`: no request of this client starts before then,
    /// or [`MAX_PAUSE`] from now if that is sooner.
    pub(super) fn pause(&self, asked: Duration) {
        let until = Instant::now() + asked.min(MAX_PAUSE);
        let mut state = self.lock();
        if state.pause.is_none_or(|current| current.until < until) {
            state.pause = Some(Pause { until, asked });
        }
        // A throttled server also gets an empty bucket: the pace resumes gently.
        state.tokens = state.tokens.min(0.0);
    }

    /// When requests resume, while a pause lasts.
    pub(super) fn paused_until(&self) -> Option<SystemTime> {
        let until = self.lock().pause?.until;
        let left = until.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then(|| SystemTime::now() + left)
    }
}

/// When requests resume after a server asked to wait `asked` now, as text.
pub(crate) fn resume_text(asked: Duration) -> String {
    wall_text(Instant::now() + asked.min(MAX_PAUSE))
}

/// An instant on the wall clock, RFC 3339 to the second.
fn wall_text(at: Instant) -> String {
    let left = at.saturating_duration_since(Instant::now());
    humantime::format_rfc3339_seconds(SystemTime::now() + left).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deadline no test reaches.
    fn far() -> Instant {
        Instant::now() + Duration::from_secs(86_400)
    }

    #[tokio::test(start_paused = true)]
    async fn no_limit_never_waits() {
        let pacer = Pacer::new(None);
        let start = Instant::now();
        for _ in 0..1000 {
            pacer.ready(far()).await.unwrap();
        }
        assert_eq!(Instant::now(), start);
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_spaces_requests_to_the_rate() {
        let pacer = Pacer::new(Some(120));
        let start = Instant::now();
        for _ in 0..12 {
            pacer.ready(far()).await.unwrap();
        }
        // The first at once, then one every half second.
        let took = Instant::now() - start;
        assert!(
            took >= Duration::from_millis(5400) && took <= Duration::from_millis(5600),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request_until_it_ends() {
        let pacer = Pacer::new(None);
        pacer.pause(Duration::from_secs(3));
        pacer.pause(Duration::from_secs(1));
        let start = Instant::now();
        pacer.ready(far()).await.unwrap();
        assert_eq!(
            Instant::now() - start,
            Duration::from_secs(3),
            "the longer pause wins"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_past_the_deadline_fails_at_once_and_says_what_was_asked() {
        let pacer = Pacer::new(None);
        pacer.pause(Duration::from_secs(3600));
        let start = Instant::now();
        let paused = pacer
            .ready(start + Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(Instant::now(), start, "no wait at all");
        assert_eq!(paused.asked, Duration::from_secs(3600));
        // Held for five minutes, not the hour asked.
        let until = pacer.paused_until().unwrap();
        let left = until.duration_since(SystemTime::now()).unwrap();
        assert!(
            left <= MAX_PAUSE && left > MAX_PAUSE - Duration::from_secs(5),
            "{left:?}"
        );
        pacer.ready(far()).await.unwrap();
        assert_eq!(Instant::now() - start, MAX_PAUSE);
        assert_eq!(pacer.paused_until(), None);
    }
}
