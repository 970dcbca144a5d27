//! Webhooks on the probe server: `POST /hooks/github`, `/hooks/gitlab` and
//! `/hooks/generic` ask the source worker for a look at the remote now (the poll
//! every `source.interval` stays on as the fallback). Each provider's secret is read
//! from its file (`webhook.github_secret_file`, `webhook.gitlab_secret_file`,
//! `webhook.generic_secret_file`) at each request, through [`crate::secretfile`].
//!
//! | provider | verified by | events |
//! | --- | --- | --- |
//! | GitHub | `X-Hub-Signature-256`: HMAC-SHA256 of the raw body | `push`; `ping` answered 200; deliveries de-duplicated on `X-GitHub-Delivery` |
//! | GitLab | `X-Gitlab-Token`, compared in constant time | `Push Hook`, `Tag Push Hook` |
//! | generic | Standard Webhooks: `webhook-id`, `webhook-timestamp` (within 5 minutes), `webhook-signature` | any; de-duplicated on `webhook-id` |
//!
//! Answers: 401 with no detail for a missing or wrong signature; 413 for a body over
//! [`HOOK_BODY_LIMIT`] (by its declared length before anything is read, else while
//! reading); 409 when the daemon has no remote source (a webhook has nothing to
//! fetch); 404 when the provider's secret file is not set; 202 otherwise, at once.
//! A push to another branch, or whose changed paths cannot matter (none is the
//! configuration file, a prompt file, or a content file a prompt file of the synced
//! revision names), is answered 202 with `ignored` and makes no look. A push whose
//! payload does not list every changed path (a forced or very large push) is looked
//! at. The signatures are checked in `verify`; which pushes can matter is `push`'s.

mod push;
mod verify;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::metrics::Metrics;
use super::source::Remote;
use crate::config::HookSettings;
use push::{Push, cannot_matter};
use verify::{verify_generic, verify_github, verify_gitlab};

/// The largest webhook body read (GitHub's own limit is 25 MiB, but a push payload of
/// a prompt repository is a few KiB).
pub(crate) const HOOK_BODY_LIMIT: usize = 1024 * 1024;

/// Delivery ids remembered for de-duplication.
const REMEMBERED: usize = 4096;

/// A webhook provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    GitHub,
    GitLab,
    Generic,
}

impl Provider {
    fn label(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Generic => "generic",
        }
    }

    fn secret_key(self) -> &'static str {
        match self {
            Provider::GitHub => "webhook.github_secret_file",
            Provider::GitLab => "webhook.gitlab_secret_file",
            Provider::Generic => "webhook.generic_secret_file",
        }
    }
}

/// What the webhook routes need: the remote source (none: the daemon reads a local
/// clone), the secret files, the delivery ids seen, the metrics they count in.
#[derive(Debug)]
pub(crate) struct Hooks {
    remote: Option<Arc<Remote>>,
    settings: HookSettings,
    metrics: Arc<Metrics>,
    seen: Mutex<Seen>,
    /// The content files the prompt files of a revision name, by revision.
    content: Mutex<Option<(String, Arc<HashSet<String>>)>>,
}

/// Recent delivery ids, oldest first, bounded.
#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Remember `id`; whether it was new.
    fn insert(&mut self, id: String) -> bool {
        if self.ids.contains(&id) {
            return false;
        }
        if self.order.len() >= REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.clone());
        self.order.push_back(id);
        true
    }
}

impl Hooks {
    pub(crate) fn new(
        remote: Option<Arc<Remote>>,
        settings: HookSettings,
        metrics: Arc<Metrics>,
    ) -> Hooks {
        Hooks {
            remote,
            settings,
            metrics,
            seen: Mutex::default(),
            content: Mutex::default(),
        }
    }

    fn secret_file(&self, provider: Provider) -> Option<&std::path::Path> {
        match provider {
            Provider::GitHub => self.settings.github_secret_file.as_deref(),
            Provider::GitLab => self.settings.gitlab_secret_file.as_deref(),
            Provider::Generic => self.settings.generic_secret_file.as_deref(),
        }
    }

    /// Whether the delivery `id` of `provider` is new (and remember it).
    fn first_delivery(&self, provider: Provider, id: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(format!("{}:{id}", provider.label()))
    }
}

/// The webhook routes, with their own body limit (the probe routes take none) and
/// their own state: they fit a router of any state.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(hooks: Arc<Hooks>) -> Router<S> {
    Router::new()
        .route("/hooks/github", post(github))
        .route("/hooks/gitlab", post(gitlab))
        .route("/hooks/generic", post(generic))
        .with_state(hooks)
}

async fn github(State(hooks): State<Arc<Hooks>>, request: Request) -> Response {
    receive(&hooks, Provider::GitHub, request).await
}

async fn gitlab(State(hooks): State<Arc<Hooks>>, request: Request) -> Response {
    receive(&hooks, Provider::GitLab, request).await
}

async fn generic(State(hooks): State<Arc<Hooks>>, request: Request) -> Response {
    receive(&hooks, Provider::Generic, request).await
}

/// One webhook request, from its head to its answer.
async fn receive(hooks: &Hooks, provider: Provider, request: Request) -> Response {
    let metrics = &hooks.metrics;
    let count = |result: &'static str| metrics.webhook(provider.label(), result);
    let Some(remote) = hooks.remote.clone() else {
        count("no_source");
        return (
            StatusCode::CONFLICT,
            "no remote source is configured (source.url, --source): there is nothing for a webhook to fetch\n",
        )
            .into_response();
    };
    let Some(secret_file) = hooks.secret_file(provider) else {
        count("not_configured");
        return (
            StatusCode::NOT_FOUND,
            format!("this webhook is off: set {}\n", provider.secret_key()),
        )
            .into_response();
    };
    let (parts, body) = request.into_parts();
    let body = match read_body(body, &parts.headers, metrics).await {
        Ok(body) => body,
        Err(response) => {
            count("too_large");
            return response;
        }
    };
    let secret = match crate::secretfile::read_file(secret_file, "webhook secret") {
        Ok(secret) => secret,
        Err(message) => {
            tracing::error!(provider = provider.label(), error = %message, "cannot read the webhook secret; the request is refused");
            count("unauthorized");
            return unauthorized();
        }
    };
    let headers = &parts.headers;
    let verified = match provider {
        Provider::GitHub => verify_github(headers, &body, &secret),
        Provider::GitLab => verify_gitlab(headers, &secret),
        Provider::Generic => verify_generic(headers, &body, &secret, now()),
    };
    if !verified {
        count("unauthorized");
        tracing::debug!(
            provider = provider.label(),
            "webhook without a valid signature"
        );
        return unauthorized();
    }
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match provider {
        Provider::GitHub => match header_text("x-github-event") {
            Some("ping") => {
                count("ping");
                return (StatusCode::OK, axum::Json(json!({"pong": true}))).into_response();
            }
            Some("push") => {}
            other => {
                count("ignored");
                return ignored(&format!(
                    "the event {:?} is not a push",
                    other.unwrap_or("")
                ));
            }
        },
        Provider::GitLab => match header_text("x-gitlab-event") {
            Some("Push Hook" | "Tag Push Hook") => {}
            other => {
                count("ignored");
                return ignored(&format!(
                    "the event {:?} is not a Push Hook or Tag Push Hook",
                    other.unwrap_or("")
                ));
            }
        },
        Provider::Generic => {}
    }
    let delivery = match provider {
        Provider::GitHub => header_text("x-github-delivery"),
        Provider::GitLab => header_text("x-gitlab-event-uuid"),
        Provider::Generic => header_text("webhook-id"),
    };
    if let Some(id) = delivery
        && !hooks.first_delivery(provider, id)
    {
        count("duplicate");
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({"accepted": true, "duplicate": true})),
        )
            .into_response();
    }
    let push = Push::of(provider, &body);
    if let Some(why) = cannot_matter(hooks, &remote, &push).await {
        count("ignored");
        tracing::info!(provider = provider.label(), reason = why, "webhook ignored");
        return ignored(why);
    }
    count("accepted");
    tracing::info!(
        provider = provider.label(),
        git_ref = push.git_ref.as_deref(),
        "webhook: looking at the remote now"
    );
    remote.request_look();
    (StatusCode::ACCEPTED, axum::Json(json!({"accepted": true}))).into_response()
}

/// The body, read whole up to [`HOOK_BODY_LIMIT`]: a larger declared length is
/// refused before a byte is read, a longer body while reading; both within the
/// header timeout.
async fn read_body(
    body: axum::body::Body,
    headers: &HeaderMap,
    metrics: &Metrics,
) -> Result<Bytes, Response> {
    let too_large = || {
        metrics.http_refused("body_too_large");
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!("webhook bodies are limited to {HOOK_BODY_LIMIT} bytes\n"),
        )
            .into_response()
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > HOOK_BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(
        super::http::HEADER_TIMEOUT,
        axum::body::to_bytes(body, HOOK_BODY_LIMIT),
    )
    .await;
    match read {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            "the request body did not arrive in time\n",
        )
            .into_response()),
    }
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response()
}

fn ignored(why: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"accepted": true, "ignored": why})),
    )
        .into_response()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_remembered_within_a_bound() {
        let mut seen = Seen::default();
        assert!(seen.insert("a".into()));
        assert!(!seen.insert("a".into()));
        for i in 0..REMEMBERED {
            seen.insert(i.to_string());
        }
        assert!(seen.ids.len() <= REMEMBERED);
        assert!(seen.insert("a".into()), "the oldest is forgotten");
    }
}
