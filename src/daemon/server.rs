//! The probe server beside the loop (axum): liveness, readiness, metrics, status, and
//! a door to ask for a pass. It reads the shared status and metrics and fires
//! triggers; it never calls the remote API, so an API outage cannot fail a probe.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /healthz` | 200 while the loop's heartbeat is fresh, else 503 |
//! | `GET /readyz` | 503 until a pass ran to its end, then 200 unless stalled |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /status` | the status as JSON (no configuration, no key) |
//! | `POST /reconcile` | 202: a pass is requested |
//!
//! Every body passes through [`redacted`] on its way out: a secret promptsync holds
//! (a server's error that echoed the key, kept in the status) shows as `[redacted]`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::status::Status;
use super::trigger::{Reason, Triggers};

/// A heartbeat older than this fails liveness.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(30);

/// What the handlers read and do.
#[derive(Debug)]
pub struct Shared {
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    pub triggers: Triggers,
}

/// The probe routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/reconcile", post(reconcile))
        .with_state(shared)
        .layer(axum::middleware::map_response(redacted))
}

/// The largest body [`redacted`] handles; the probe server's own bodies are far smaller.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// `response` with every secret promptsync holds redacted from its body (and its
/// length fixed to match). A body that cannot be read whole is not sent.
pub async fn redacted(response: Response) -> Response {
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

/// Serve until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
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

async fn reconcile(State(shared): State<Arc<Shared>>) -> Response {
    shared.triggers.fire(Reason::Http);
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"accepted": true})),
    )
        .into_response()
}
