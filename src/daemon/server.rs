//! The probe server beside the loop (axum routes, served by [`super::http`] with its
//! bounds): liveness, readiness, metrics, status, and a door to ask for a pass. It
//! reads the shared status and metrics and fires triggers; it never calls the remote
//! API, so an API outage cannot fail a probe.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /healthz` | 200 while the loop's heartbeat is fresh, else 503 |
//! | `GET /readyz` | 503 until a pass ran to its end, then 200 unless stalled |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /status` | the status as JSON (no configuration, no key) |
//! | `POST /reconcile` | 202: a pass is requested (or joins one waiting); 401/403 for a peer other than loopback without the token ([`super::door`]); 429 with `Retry-After` when too soon |
//! | `POST /hooks/github`, `/hooks/gitlab`, `/hooks/generic` | webhooks that ask for a look at the remote source ([`super::hooks`]) |
//!
//! No probe route takes a body: one over [`BODY_LIMIT`] bytes is answered 413 and the
//! connection closed. Every body passes through [`redacted`] on its way out: a secret
//! promptsync holds (a server's error that echoed the key, kept in the status) shows as
//! `[redacted]`.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::door::{Admit, Door};
use super::http::Peer;
use super::metrics::Metrics;
use super::status::Status;
use super::trigger::{Reason, Triggers};

/// A heartbeat older than this fails liveness.
pub(crate) const HEARTBEAT_STALE: Duration = Duration::from_secs(30);

/// The most a request body may hold (no route reads one).
pub(crate) const BODY_LIMIT: usize = 4096;

/// What the handlers read and do.
#[derive(Debug)]
pub(crate) struct Shared {
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    pub triggers: Triggers,
    pub door: Door,
    /// The webhooks (`/hooks/*`, see [`super::hooks`]), served with their own state.
    pub hooks: Arc<super::hooks::Hooks>,
}

/// The probe routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/reconcile", post(reconcile))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            limit_body,
        ))
        // After the layer: the webhooks read bodies of their own limit.
        .merge(super::hooks::router(Arc::clone(&shared.hooks)))
        .with_state(shared)
        .layer(axum::middleware::map_response(redacted))
}

/// The largest body [`redacted`] handles; the probe server's own bodies are far smaller.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// `response` with every secret promptsync holds redacted from its body (and its
/// length fixed to match). A body that cannot be read whole is not sent.
pub(crate) async fn redacted(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            let body = match crate::secret::redact_bytes(&bytes) {
                std::borrow::Cow::Borrowed(_) => bytes,
                std::borrow::Cow::Owned(redacted) => axum::body::Bytes::from(redacted),
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(body))
        }
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the answer could not be read to be redacted\n",
        )
            .into_response(),
    }
}

/// Serve until `stop` is cancelled, with at most `max_connections` open.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: usize,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let metrics = Arc::clone(&shared.metrics);
    super::http::serve(listener, router(shared), max_connections, metrics, stop).await
}

/// Refuse a body over [`BODY_LIMIT`] (by its declared length before reading any of
/// it, else while reading, within the header timeout) and pass the rest on.
async fn limit_body(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let too_large = || {
        shared.metrics.http_refused("body_too_large");
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!("request bodies are limited to {BODY_LIMIT} bytes\n"),
        )
            .into_response()
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        super::http::HEADER_TIMEOUT,
        axum::body::to_bytes(body, BODY_LIMIT),
    )
    .await;
    match read {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => too_large(),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            "the request body did not arrive in time\n",
        )
            .into_response(),
    }
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let age = shared.status.heartbeat_age();
    if age <= HEARTBEAT_STALE {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        let text = format!("the loop's last heartbeat is {}s old\n", age.as_secs());
        (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
    }
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.status.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(),
    )
        .into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.status.snapshot()).into_response()
}

async fn reconcile(
    State(shared): State<Arc<Shared>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let waiting = shared.triggers.waits_for(Reason::Http);
    match shared.door.admit(peer.ip(), authorization, waiting) {
        Admit::Fire => {
            shared.triggers.fire(Reason::Http);
            accepted(false)
        }
        Admit::Joined => accepted(true),
        Admit::TooSoon(wait) => {
            shared.metrics.http_refused("rate_limited");
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, seconds.to_string())],
                axum::Json(serde_json::json!({"accepted": false, "retry_after_seconds": seconds})),
            )
                .into_response()
        }
        Admit::Unauthorized => {
            shared.metrics.http_refused("unauthorized");
            tracing::debug!(%peer, "POST /reconcile without the right token");
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "unauthorized\n",
            )
                .into_response()
        }
        Admit::Forbidden => {
            shared.metrics.http_refused("forbidden");
            tracing::debug!(%peer, "POST /reconcile from another host, and no reconcile token is set");
            (StatusCode::FORBIDDEN, "forbidden\n").into_response()
        }
    }
}

/// 202: a forced pass is coming (`joined`: the one that was waiting already).
fn accepted(joined: bool) -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"accepted": true, "joined": joined})),
    )
        .into_response()
}
