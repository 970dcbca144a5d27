use super::*;
use reqwest::header::HeaderValue;

/// `api.timeout` in these tests.
const TIMEOUT: Duration = Duration::from_secs(2);

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
    // What the server asked is kept as said (the pacer decides how much of it to
    // wait), up to 100 years so that no time computed from it overflows.
    assert_eq!(
        retry_after(&headers(&[("retry-after", "3600")]), b""),
        Some(Duration::from_secs(3600))
    );
    assert_eq!(
        retry_after(&headers(&[("retry-after", "1e300")]), b""),
        Some(MAX_ASKED)
    );
    let far = retry_after(
        &headers(&[("retry-after", "Thu, 01 Jan 2099 00:00:00 GMT")]),
        b"",
    )
    .unwrap();
    assert!(far > Duration::from_secs(70 * 365 * 86_400), "{far:?}");
    assert!(
        wait_text(far).starts_with("until 2099-01-01T00:00:0"),
        "{}",
        wait_text(far)
    );
}

#[test]
fn a_wait_reads_as_people_say_it() {
    assert_eq!(wait_text(Duration::from_millis(250)), "250ms");
    assert_eq!(wait_text(Duration::from_secs(3)), "3s");
    assert_eq!(wait_text(Duration::from_secs(3600)), "1h");
    assert_eq!(wait_text(Duration::from_millis(5400)), "5s");
    assert!(
        wait_text(MAX_ASKED).starts_with("until 21"),
        "{}",
        wait_text(MAX_ASKED)
    );
}

fn throttled() -> ApiError {
    ApiError::Rejected {
        target: target(),
        status: 429,
        detail: "Request was throttled.".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_that_asks_past_the_budget_fails_at_once_with_the_servers_wait() {
    let policy = RetryPolicy::new(Duration::from_secs(5), TIMEOUT);
    let start = Instant::now();
    let err = retrying::<(), _, _>(&Clock::new(&policy), &target(), || async {
        Step::Again {
            error: throttled(),
            after: Some(Duration::from_secs(3600)),
        }
    })
    .await
    .unwrap_err();
    assert_eq!(Instant::now(), start, "no time is spent waiting");
    assert_eq!(err.class(), crate::failure::FailureClass::Transient);
    let text = err.to_string();
    assert!(
        text.starts_with("GET /api/x/: answered 429 (rate limited) and asked to wait 1h, past the retry budget (5s, api.retry_max_elapsed); rate limited until "),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_within_the_budget_waits_as_asked_and_retries() {
    let policy = RetryPolicy::new(Duration::from_secs(10), TIMEOUT);
    let start = Instant::now();
    let mut calls = 0;
    let value = retrying(&Clock::new(&policy), &target(), || {
        calls += 1;
        let n = calls;
        async move {
            if n == 1 {
                Step::Again {
                    error: throttled(),
                    after: Some(Duration::from_secs(3)),
                }
            } else {
                Step::Done(n)
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(value, 2);
    assert_eq!(Instant::now() - start, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn attempts_end_by_the_deadline_one_timeout_or_the_budget() {
    // Budget 3 s, timeout 2 s: the first attempt gets 2 s, a retry at 2.1 s the 0.9 s
    // left, none starts after.
    let policy = RetryPolicy::new(Duration::from_secs(3), TIMEOUT);
    let clock = Clock::new(&policy);
    let start = clock.begin();
    assert_eq!(
        clock.attempt(),
        Some(AttemptTime {
            limit: TIMEOUT,
            shortened: false
        })
    );
    tokio::time::advance(Duration::from_millis(2100)).await;
    assert_eq!(
        clock.attempt(),
        Some(AttemptTime {
            limit: Duration::from_millis(900),
            shortened: true
        })
    );
    tokio::time::advance(Duration::from_millis(870)).await;
    assert_eq!(
        clock.attempt(),
        None,
        "less than the shortest attempt is left"
    );
    assert_eq!(clock.deadline(), start + Duration::from_secs(3));
    // A budget below one timeout: the request may take one timeout.
    let policy = RetryPolicy::new(Duration::ZERO, TIMEOUT);
    let clock = Clock::new(&policy);
    assert_eq!(clock.deadline(), clock.begin() + TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_read_that_checks_an_unknown_outcome_ends_by_the_outer_deadline() {
    let outer_policy = RetryPolicy::new(Duration::from_secs(3), TIMEOUT);
    let outer = Clock::new(&outer_policy);
    let start = outer.begin();
    tokio::time::advance(Duration::from_millis(2500)).await;
    let inner_policy = RetryPolicy::new(Duration::from_secs(60), Duration::from_secs(30));
    let (deadline, attempt) = outer
        .scope(async {
            let inner = Clock::new(&inner_policy);
            (inner.deadline(), inner.attempt())
        })
        .await;
    assert_eq!(deadline, start + Duration::from_secs(3));
    assert_eq!(attempt.map(|a| a.limit), Some(Duration::from_millis(500)));
}

fn target() -> Target {
    Target {
        method: "GET",
        path: "/api/x/".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn retries_until_done_within_the_budget() {
    let policy = RetryPolicy::new(Duration::from_secs(10), TIMEOUT);
    let mut calls = 0;
    let value = retrying(&Clock::new(&policy), &target(), || {
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
    let policy = RetryPolicy::new(Duration::from_secs(5), TIMEOUT);
    let err = retrying::<(), _, _>(&Clock::new(&policy), &target(), || async {
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
    assert!(
        text.contains("asked to wait 1m, past the retry budget"),
        "{text}"
    );
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
    let policy = RetryPolicy::new(Duration::from_secs(600), TIMEOUT);
    let err = retrying::<(), _, _>(&Clock::new(&policy), &target(), || async {
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
    let policy = RetryPolicy::new(Duration::from_secs(1), TIMEOUT);
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
    let policy = RetryPolicy::new(Duration::from_secs(5), TIMEOUT);
    let mut calls = 0;
    let err = retrying::<(), _, _>(&Clock::new(&policy), &target(), || {
        calls += 1;
        async { Step::Fail(ApiError::MissingKey) }
    })
    .await
    .unwrap_err();
    assert!(matches!(err, ApiError::MissingKey));
    assert_eq!(calls, 1);
}
