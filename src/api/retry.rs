//! When and how long to wait before sending a request again: exponential backoff with
//! jitter (backon) inside a total time budget, or the server's own `Retry-After`.
//! A refused connection or a host name that does not resolve gets a short budget
//! ([`FAIL_FAST_BUDGET`]) whatever the configured one: retrying rarely mends those
//! within a minute, and a wrong base URL should say so at once. Knows nothing about
//! which requests are safe to resend; the client decides that.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::error::{ApiError, Target};

/// The most a request retries a refused connection or an unknown host: enough to
/// ride out a server restarting or a resolver hiccup, short enough that a wrong
/// `api.base_url` fails within seconds.
pub const FAIL_FAST_BUDGET: Duration = Duration::from_secs(3);

/// Backoff bounds and the total budget one request may spend retrying.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// The budget (`api.retry_max_elapsed`).
    pub max_elapsed: Duration,
    /// The budget for errors that fail fast; never above `max_elapsed`.
    pub fail_fast: Duration,
}

impl RetryPolicy {
    pub fn new(max_elapsed: Duration) -> RetryPolicy {
        RetryPolicy {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(8),
            max_elapsed,
            fail_fast: FAIL_FAST_BUDGET,
        }
    }

    /// The budget that applies after `error`, and how to name it.
    fn budget(&self, error: &ApiError) -> (Duration, String) {
        let configured = || {
            format!(
                "{}, api.retry_max_elapsed",
                humantime::format_duration(self.max_elapsed)
            )
        };
        if error.fails_fast() && self.fail_fast < self.max_elapsed {
            let text = format!(
                "{}, the most promptsync retries a refused connection or an unknown host",
                humantime::format_duration(self.fail_fast)
            );
            (self.fail_fast, text)
        } else {
            (self.max_elapsed, configured())
        }
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

/// Run `attempt` until it is done, fails for good, or the budget runs out.
pub(crate) async fn retrying<T, F, Fut>(
    policy: &RetryPolicy,
    target: &Target,
    mut attempt: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Step<T>>,
{
    let started = Instant::now();
    let mut backoff = policy.backoff();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let (error, after) = match attempt().await {
            Step::Done(value) => return Ok(value),
            Step::Fail(error) => return Err(error),
            Step::Again { error, after } => (error, after),
        };
        let delay = after.or_else(|| backoff.next()).unwrap_or(policy.max_delay);
        let (budget, budget_text) = policy.budget(&error);
        if started.elapsed() + delay > budget {
            let last = match after {
                Some(after) => format!(
                    "{error} (the server asked to wait {}s, past the retry budget)",
                    after.as_secs(),
                ),
                None => error.to_string(),
            };
            return Err(ApiError::GaveUp {
                target: target.clone(),
                attempts,
                elapsed: started.elapsed(),
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

/// How long a 429 (or 503) answer asks us to wait: `Retry-After-Ms`, then
/// `Retry-After` (seconds or an HTTP date), then a `retry_after` number in the body.
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
            return Some(
                when.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            );
        }
    }
    let body: Value = serde_json::from_slice(body).ok()?;
    duration_from_secs(body.get("retry_after")?.as_f64()?)
}

fn duration_from_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_reads_header_forms_then_body() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")]), b""),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "9")]),
                b""
            ),
            Some(Duration::from_millis(250))
        );
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after(&headers(&[("retry-after", &soon)]), b"").unwrap();
        assert!(wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28));
        assert_eq!(
            retry_after(&HeaderMap::new(), br#"{"detail": "x", "retry_after": 12}"#),
            Some(Duration::from_secs(12))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")]), b""), None);
        assert_eq!(retry_after(&HeaderMap::new(), b"not json"), None);
    }

    fn target() -> Target {
        Target {
            method: "GET",
            path: "/api/x/".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_done_within_the_budget() {
        let policy = RetryPolicy::new(Duration::from_secs(10));
        let mut calls = 0;
        let value = retrying(&policy, &target(), || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Step::Again {
                        error: ApiError::Setup("flaky".into()),
                        after: None,
                    }
                } else {
                    Step::Done(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_budget_gives_up_and_says_why() {
        let policy = RetryPolicy::new(Duration::from_secs(5));
        let err = retrying::<(), _, _>(&policy, &target(), || async {
            Step::Again {
                error: ApiError::Setup("throttled".into()),
                after: Some(Duration::from_secs(60)),
            }
        })
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("gave up after 1 attempt"), "{text}");
        assert!(
            text.contains("retry budget 5s, api.retry_max_elapsed"),
            "{text}"
        );
        assert!(text.contains("asked to wait 60s"), "{text}");
    }

    fn refused() -> ApiError {
        ApiError::Connect {
            target: target(),
            base: "http://127.0.0.1:9".into(),
            cause: "connection refused".into(),
            fails_fast: true,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_gets_the_short_budget_whatever_the_configured_one() {
        let policy = RetryPolicy::new(Duration::from_secs(600));
        let err = retrying::<(), _, _>(&policy, &target(), || async {
            Step::Again {
                error: refused(),
                after: None,
            }
        })
        .await
        .unwrap_err();
        // The loop's clock is real time (paused here), so count attempts: backoff from
        // 100 ms doubling fits a handful in 3 s, not the dozens of 600 s.
        assert!(
            matches!(
                err,
                ApiError::GaveUp {
                    attempts: 2..=6,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("retry budget 3s, the most promptsync retries a refused connection"),
            "{text}"
        );
        assert!(
            text.contains("GET http://127.0.0.1:9/api/x/: cannot connect (connection refused)"),
            "{text}"
        );
        // A smaller configured budget still wins.
        let policy = RetryPolicy::new(Duration::from_secs(1));
        let (budget, text) = policy.budget(&refused());
        assert_eq!(budget, Duration::from_secs(1));
        assert_eq!(text, "1s, api.retry_max_elapsed");
    }

    #[test]
    fn a_reason_leaves_the_request_out() {
        assert_eq!(
            refused().reason(),
            "cannot connect to http://127.0.0.1:9 (connection refused)"
        );
        let transient = ApiError::Transient {
            target: target(),
            cause: "timed out".into(),
        };
        assert_eq!(transient.reason(), "timed out");
        assert!(!transient.fails_fast());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_not_retried() {
        let policy = RetryPolicy::new(Duration::from_secs(5));
        let mut calls = 0;
        let err = retrying::<(), _, _>(&policy, &target(), || {
            calls += 1;
            async { Step::Fail(ApiError::MissingKey) }
        })
        .await
        .unwrap_err();
        assert!(matches!(err, ApiError::MissingKey));
        assert_eq!(calls, 1);
    }
}
