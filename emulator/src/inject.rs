//! The fault layer of the API router: it asks the fault model what to do with each
//! request ([`Faults::decide`](super::faults::Faults::decide)) and does it: waits,
//! throttles with 429, answers with an injected status, a hostile reply or a rewritten
//! one, or cuts the connection ([`Connection`]) before or after running the request.
//! `drop_after` runs the request (the change is applied and persisted) before cutting
//! the connection; `drop_before` cuts it without running anything. Knows nothing about
//! prompts.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::App;
use super::faults::{FaultKind, FaultRule};
use super::killable::Connection;
use super::reqlog::{FaultMark, NoReply};
use super::{hostile, paging};

/// A throttled reply: 429, `Retry-After`, and `retry_after` in the body.
fn throttled(retry_after: u64, mark: &'static str) -> Response {
    let body = json!({"detail": "Request was throttled.", "retry_after": retry_after});
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response.extensions_mut().insert(FaultMark(mark));
    response
}

fn injected(rule: &FaultRule, mark: &'static str) -> Response {
    let status = rule
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return throttled(rule.retry_after.unwrap_or(1), mark);
    }
    let detail = format!(
        "{} (injected by the emulator)",
        status.canonical_reason().unwrap_or("Error")
    );
    let mut response = (
        status,
        axum::Json(json!({"detail": detail, "error_code": "injected"})),
    )
        .into_response();
    if let Some(seconds) = rule.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response.extensions_mut().insert(FaultMark(mark));
    response
}

/// Cut the request's connection: no reply at all. The response returned is never
/// sent; it only carries the markers for the log.
fn no_reply(connection: Option<&Connection>, mark: &'static str) -> Response {
    if let Some(connection) = connection {
        connection.kill();
    }
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response.extensions_mut().insert(NoReply);
    response.extensions_mut().insert(FaultMark(mark));
    response
}

/// Wait `delay` to within a fraction of a millisecond. tokio's timer counts whole
/// milliseconds and rounds up, which would add up to two to every request's latency
/// (a 20 ms emulator answering in 21.5 on average): the timer takes all but the last
/// two milliseconds, a blocking thread's sleep the rest.
async fn sleep_exactly(delay: Duration) {
    let deadline = std::time::Instant::now() + delay;
    let coarse = delay.saturating_sub(Duration::from_millis(2));
    if !coarse.is_zero() {
        tokio::time::sleep(coarse).await;
    }
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    if !left.is_zero() {
        // A sleep that cannot start (the runtime is shutting down) is no reason to fail.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(left)).await;
    }
}

/// The fault layer of the API router: latency, rate limit, then armed faults.
pub(crate) async fn fault_layer(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let connection = request
        .extensions()
        .get::<ConnectInfo<Connection>>()
        .map(|info| info.0.clone());
    let decision = app
        .faults
        .decide(request.method().as_str(), request.uri().path());
    if !decision.delay.is_zero() {
        sleep_exactly(decision.delay).await;
    }
    if let Some(retry_after) = decision.throttled {
        return throttled(retry_after, "rate_limited");
    }
    let Some(rule) = decision.rule else {
        return next.run(request).await;
    };
    tracing::debug!(kind = ?rule.kind, status = ?rule.status, path = %request.uri().path(), "injecting fault");
    match rule.kind {
        FaultKind::Status if rule.after_apply => {
            drop(next.run(request).await);
            injected(&rule, "injected_after_apply")
        }
        FaultKind::Status => injected(&rule, "injected"),
        FaultKind::DropBefore => no_reply(connection.as_ref(), "drop_before"),
        FaultKind::DropAfter => {
            drop(next.run(request).await);
            no_reply(connection.as_ref(), "drop_after")
        }
        FaultKind::Delay => {
            tokio::time::sleep(Duration::from_millis(rule.delay_ms.unwrap_or(0))).await;
            let mut response = next.run(request).await;
            response.extensions_mut().insert(FaultMark("delay"));
            response
        }
        FaultKind::EndlessPages => {
            let base = paging::request_base(request.headers(), request.uri().path(), &app);
            let query = paging::parse_query(request.uri().query());
            marked(
                hostile::endless_page(&base, &query, rule.fresh, rule.count),
                &rule,
            )
        }
        FaultKind::HugeBody => marked(
            hostile::huge_body(
                rule.bytes.unwrap_or(hostile::HUGE_BODY_BYTES),
                rule.declare_length,
            ),
            &rule,
        ),
        FaultKind::GarbageJson => marked(hostile::garbage_json(), &rule),
        FaultKind::Html => marked(hostile::html_page(), &rule),
        FaultKind::Trickle => marked(
            hostile::trickle(
                rule.bytes.unwrap_or(hostile::TRICKLE_BYTES),
                Duration::from_millis(rule.interval_ms.unwrap_or(hostile::TRICKLE_INTERVAL_MS)),
            ),
            &rule,
        ),
        FaultKind::Redirect => {
            let status = rule
                .status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::FOUND);
            let location = rule
                .location
                .as_deref()
                .unwrap_or(hostile::REDIRECT_LOCATION);
            marked(hostile::redirect(status, location), &rule)
        }
        FaultKind::Rewrite => {
            let response = next.run(request).await;
            let pointer = rule.pointer.as_deref().unwrap_or_default();
            super::rewrite::rewritten(response, pointer, rule.value.as_ref()).await
        }
    }
}

/// A hostile reply (the request was not run), marked with its kind for the log.
fn marked(mut response: Response, rule: &FaultRule) -> Response {
    response
        .extensions_mut()
        .insert(FaultMark(rule.kind.name()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(response: &Response) -> Option<&'static str> {
        response.extensions().get::<FaultMark>().map(|mark| mark.0)
    }

    #[test]
    fn a_throttled_reply_says_when_to_come_back() {
        let response = throttled(7, "rate_limited");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(mark(&response), Some("rate_limited"));
    }

    #[test]
    fn an_injected_status_carries_its_retry_after_and_a_429_is_a_throttle() {
        let mut rule = FaultRule::new(FaultKind::Status);
        rule.status = Some(503);
        rule.retry_after = Some(2);
        let response = injected(&rule, "injected");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(mark(&response), Some("injected"));
        rule.status = Some(429);
        rule.retry_after = None;
        let response = injected(&rule, "injected");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn no_reply_and_hostile_replies_are_marked_for_the_log() {
        let response = no_reply(None, "drop_before");
        assert!(response.extensions().get::<NoReply>().is_some());
        assert_eq!(mark(&response), Some("drop_before"));
        let rule = FaultRule::new(FaultKind::Html);
        let response = marked(StatusCode::OK.into_response(), &rule);
        assert_eq!(mark(&response), Some(FaultKind::Html.name()));
    }
}
