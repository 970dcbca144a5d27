//! Pacing requests: an optional token bucket (`api.requests_per_minute`) that spaces
//! requests out so a large sync stays inside the API's rate limit, and a pause that a
//! 429 sets for the whole client, so that every request in flight waits out the
//! server's `Retry-After` together instead of each one being throttled in turn.
//! Knows nothing about what is sent.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The pacer shared by every request of one client.
#[derive(Debug)]
pub struct Pacer {
    /// Tokens added per second, and the most the bucket holds; `None`: no bucket.
    bucket: Option<(f64, f64)>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled: Instant,
    /// No request starts before this (a 429's `Retry-After`).
    paused_until: Option<Instant>,
}

impl Pacer {
    /// At most `per_minute` requests a minute, evenly spaced (no bursts: a server
    /// that counts in fixed windows then never sees more than the limit in one), or no
    /// pacing for `None`.
    pub fn new(per_minute: Option<usize>) -> Pacer {
        let bucket = per_minute.map(|n| (n as f64 / 60.0, 1.0));
        Pacer {
            bucket,
            state: Mutex::new(State {
                tokens: bucket.map_or(0.0, |(_, burst)| burst),
                refilled: Instant::now(),
                paused_until: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wait until a request may start, and take its token.
    pub async fn ready(&self) {
        loop {
            let wait = self.try_take();
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Take a token now (`None`), or how long to wait before trying again.
    fn try_take(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(until) = state.paused_until {
            if until > now {
                return Some(until - now);
            }
            state.paused_until = None;
        }
        let (rate, burst) = self.bucket?;
        let elapsed = now.duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(burst);
        state.refilled = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - state.tokens) / rate))
        }
    }

    /// The server said to wait `after`: no request of this client starts before then.
    pub fn pause(&self, after: Duration) {
        let until = Instant::now() + after;
        let mut state = self.lock();
        if state.paused_until.is_none_or(|current| current < until) {
            state.paused_until = Some(until);
        }
        // A throttled server also gets an empty bucket: the pace resumes gently.
        state.tokens = state.tokens.min(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_limit_never_waits() {
        let pacer = Pacer::new(None);
        let start = Instant::now();
        for _ in 0..1000 {
            pacer.ready().await;
        }
        assert_eq!(Instant::now(), start);
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_spaces_requests_to_the_rate() {
        let pacer = Pacer::new(Some(120));
        let start = Instant::now();
        for _ in 0..12 {
            pacer.ready().await;
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
        pacer.ready().await;
        assert_eq!(
            Instant::now() - start,
            Duration::from_secs(3),
            "the longer pause wins"
        );
    }
}
