//! When to send a request again, and how long a request may take in all. Exponential
//! backoff with jitter (backon), or the server's own `Retry-After`, inside a total time
//! budget; knows nothing about which requests are safe to resend (the client decides).
//!
//! Every wait of a request is bounded by one [`Clock`], started when its first attempt
//! gets its slot (time queued behind other requests is not counted):
//!
//! - a retry is sent only while the retry budget (`api.retry_max_elapsed`) lasts; a
//!   refused connection or a host name that does not resolve gets a short budget
//!   ([`FAIL_FAST_BUDGET`]) whatever the configured one;
//! - the server's wait (a 429's `Retry-After`, or a pause another reply set for the
//!   whole client) counts against that budget: when it ends past the budget the
//!   request fails at once, transient, naming the server's wait, instead of sleeping;
//! - the whole request, with its retries, the waits before them and the reads that
//!   check an unknown outcome, ends by its deadline: the budget, or one `api.timeout`
//!   when that is longer. The first attempt gets a whole `api.timeout`; a later one only
//!   what is left, so a silent server costs one timeout per attempt and never pushes a
//!   request past its deadline.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use super::error::{ApiError, RateLimit, Target};

/// The most a request retries a refused connection or an unknown host: enough to
/// ride out a server restarting or a resolver hiccup, short enough that a wrong
/// `api.base_url` fails within seconds.
pub(super) const FAIL_FAST_BUDGET: Duration = Duration::from_secs(3);

/// No attempt starts with less time than this left before its deadline: it could
/// only time out.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// The longest wait a server can ask for that is taken as said (100 years): a larger
/// `Retry-After` is read as this, so that no time computed from it overflows.
const MAX_ASKED: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Backoff bounds, the total budget one request may spend retrying, and the timeout
/// of one attempt.
#[derive(Debug, Clone)]
pub(super) struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// The budget (`api.retry_max_elapsed`).
    pub max_elapsed: Duration,
    /// The budget for errors that fail fast; never above `max_elapsed`.
    pub fail_fast: Duration,
    /// One attempt's timeout (`api.timeout`), the request and its whole reply.
    pub timeout: Duration,
}

impl RetryPolicy {
    pub(super) fn new(max_elapsed: Duration, timeout: Duration) -> RetryPolicy {
        RetryPolicy {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(8),
            max_elapsed,
            fail_fast: FAIL_FAST_BUDGET,
            timeout,
        }
    }

    /// The budget that applies after `error`, and how to name it.
    fn budget(&self, error: &ApiError) -> (Duration, String) {
        if error.fails_fast() && self.fail_fast < self.max_elapsed {
            let text = format!(
                "{}, the most promptsync retries a refused connection or an unknown host",
                humantime::format_duration(self.fail_fast)
            );
            (self.fail_fast, text)
        } else {
            (self.max_elapsed, self.budget_text())
        }
    }

    /// The configured budget, named.
    fn budget_text(&self) -> String {
        format!(
            "{}, api.retry_max_elapsed",
            humantime::format_duration(self.max_elapsed)
        )
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

tokio::task_local! {
    /// The deadline of the request whose outcome is being checked: reads made for it
    /// end by then too.
    static OUTER: Instant;
}

/// The time of one request (see the module doc).
#[derive(Debug)]
pub(crate) struct Clock<'p> {
    policy: &'p RetryPolicy,
    started: OnceLock<Instant>,
    /// The deadline of a request this one runs for (a recovery read), if any.
    outer: Option<Instant>,
}

/// How long one attempt may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttemptTime {
    pub limit: Duration,
    /// The deadline cut it below `api.timeout`.
    pub shortened: bool,
}

impl<'p> Clock<'p> {
    pub(crate) fn new(policy: &'p RetryPolicy) -> Clock<'p> {
        Clock {
            policy,
            started: OnceLock::new(),
            outer: OUTER.try_with(|deadline| *deadline).ok(),
        }
    }

    /// The request's first attempt has its slot: the clock runs from now (later calls
    /// change nothing). Returns when it started.
    pub(crate) fn begin(&self) -> Instant {
        *self.started.get_or_init(Instant::now)
    }

    /// When the request must be over.
    pub(crate) fn deadline(&self) -> Instant {
        let own = self.begin() + self.policy.max_elapsed.max(self.policy.timeout);
        self.outer.map_or(own, |outer| outer.min(own))
    }

    /// The latest a wait before an attempt (a server's pause) may end: the retry
    /// budget counts every wait the server asks for.
    pub(crate) fn wait_deadline(&self) -> Instant {
        (self.begin() + self.policy.max_elapsed).min(self.deadline())
    }

    /// The time an attempt starting now may take; `None` when too little is left.
    pub(crate) fn attempt(&self) -> Option<AttemptTime> {
        let left = self.deadline().saturating_duration_since(Instant::now());
        if left < MIN_ATTEMPT {
            return None;
        }
        Some(AttemptTime {
            limit: left.min(self.policy.timeout),
            shortened: left < self.policy.timeout,
        })
    }

    /// Run `work` (the reads that check an unknown outcome) inside this request's
    /// deadline.
    pub(crate) fn scope<F: Future>(&self, work: F) -> impl Future<Output = F::Output> {
        OUTER.scope(self.deadline(), work)
    }

    /// The configured budget, named (for messages).
    pub(crate) fn budget_text(&self) -> String {
        self.policy.budget_text()
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Step<T> {
    Done(T),
    /// Do not try again.
    Fail(ApiError),
    /// Try again after `after` (the server's wish) or the next backoff delay.
    Again {
        error: ApiError,
        after: Option<Duration>,
    },
}

/// Run `attempt` until it is done, fails for good, or the budget runs out. `attempt`
/// calls [`Clock::begin`] once it has its slot, and sends within [`Clock::attempt`].
pub(crate) async fn retrying<T, F, Fut>(
    clock: &Clock<'_>,
    target: &Target,
    mut attempt: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Step<T>>,
{
    let policy = clock.policy;
    let mut backoff = policy.backoff();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let (error, after) = match attempt().await {
            Step::Done(value) => return Ok(value),
            Step::Fail(error) => return Err(error),
            Step::Again { error, after } => (error, after),
        };
        let started = clock.begin();
        let now = Instant::now();
        let throttled = error.status() == Some(429);
        // The server's wait, as said; what is waited of it is at most `MAX_PAUSE`.
        let asked = after.map(|wait| wait.min(MAX_ASKED));
        let delay = asked
            .map(|wait| wait.min(super::pace::MAX_PAUSE))
            .or_else(|| backoff.next())
            .unwrap_or(policy.max_delay);
        let (budget, budget_text) = policy.budget(&error);
        let retry_by = (started + budget).min(clock.deadline());
        if now + delay + MIN_ATTEMPT > retry_by {
            if let (true, Some(asked)) = (throttled, asked) {
                return Err(ApiError::RateLimited {
                    target: target.clone(),
                    limit: Box::new(RateLimit {
                        asked: wait_text(asked),
                        resume: super::pace::resume_text(asked),
                        budget: budget_text,
                        sent: true,
                    }),
                });
            }
            let last = match asked {
                Some(asked) => format!(
                    "{error} (the server asked to wait {}, past the retry budget)",
                    wait_text(asked)
                ),
                None => error.to_string(),
            };
            return Err(ApiError::GaveUp {
                target: target.clone(),
                attempts,
                elapsed: now.duration_since(started),
                budget: budget_text,
                last,
            });
        }
        // The request once, in its fields; the error without it.
        tracing::warn!(
            method = target.method,
            path = %target.path,
            attempt = attempts,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %error.reason(),
            "retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

/// A server's wait for people: `3s`, `1h 30m`, or past a day, the time it ends.
pub(crate) fn wait_text(wait: Duration) -> String {
    if wait >= Duration::from_secs(86_400) {
        match SystemTime::now().checked_add(wait) {
            Some(at) => format!("until {}", humantime::format_rfc3339_seconds(at)),
            None => "more than a day".to_owned(),
        }
    } else if wait < Duration::from_secs(1) {
        format!("{}ms", wait.as_millis())
    } else {
        humantime::format_duration(Duration::from_secs(wait.as_secs())).to_string()
    }
}

/// How long a 429 (or 503) answer asks us to wait: `Retry-After-Ms`, then
/// `Retry-After` (seconds or an HTTP date), then a `retry_after` number in the body.
/// Read as said (up to 100 years); how much of it is waited is the caller's choice.
pub(crate) fn retry_after(headers: &HeaderMap, body: &[u8]) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return duration_from_secs(ms / 1000.0);
    }
    if let Some(value) = header("retry-after") {
        if let Ok(secs) = value.parse::<f64>() {
            return duration_from_secs(secs);
        }
        if let Ok(when) = httpdate::parse_http_date(value) {
            let wait = when
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            return Some(wait.min(MAX_ASKED));
        }
    }
    #[derive(serde::Deserialize)]
    struct Body {
        retry_after: Option<f64>,
    }
    let body: Body = super::decode::small(body)?;
    duration_from_secs(body.retry_after?)
}

fn duration_from_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::from_secs_f64(secs.min(MAX_ASKED.as_secs_f64())))
}

#[cfg(test)]
mod tests;
