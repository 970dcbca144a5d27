//! A recorder server of the test suite's own, on `127.0.0.1:0`, that implements the
//! endpoints promptsync's notifications call, as the hosts document them, and records
//! every request: GitHub (`POST /repos/{o}/{r}/statuses/{sha}`, the issue comments
//! list, create and update), GitLab (`POST /api/v4/projects/{id}/statuses/{sha}`, the
//! merge request notes list, create and update), and webhook receivers (`/hooks/{name}`
//! verifies a Standard Webhooks signature when a secret is set; `/slack/{name}` takes
//! Slack's shape). A wrong token is answered 401, as the hosts do. It can be told to
//! answer 500, or to hang.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::{Value, json};

/// The token the recorder accepts.
pub(crate) const TOKEN: &str = "ghp_recorder_test_token";

/// How the recorder answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    Normal,
    /// Every request answered with this status.
    Fail(u16),
    /// Every request waits an hour.
    Hang,
}

/// One request as it came.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: String,
    /// The path and query.
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// For `/hooks/...` with a secret: whether the signature verified.
    pub verified: Option<bool>,
}

impl Recorded {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Recorded>,
    /// Comments (GitHub) and notes (GitLab) by pull request: (id, body).
    comments: BTreeMap<String, Vec<(u64, String)>>,
    next_id: u64,
    behaviour: Option<Behaviour>,
    /// The Standard Webhooks secret `/hooks/...` verifies with.
    secret: Option<String>,
}

pub(crate) struct Recorder {
    base: String,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

impl Recorder {
    pub(crate) fn start() -> Recorder {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(State {
            next_id: 1000,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let base = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = axum::Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let state = Arc::clone(&shared);
                    async move { handle(&state, method, uri, headers, body).await }
                },
            );
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            format!("http://{addr}")
        });
        Recorder {
            base,
            state,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        self.base.clone()
    }

    pub(crate) fn behave(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = Some(behaviour);
    }

    pub(crate) fn verify_with(&self, secret: &str) {
        self.state.lock().unwrap().secret = Some(secret.to_owned());
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests whose path starts with `prefix`.
    pub(crate) fn requests_to(&self, prefix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    /// The comments (or notes) on `thread` (`github/acme/prompts/7`, `gitlab/42/3`).
    pub(crate) fn comments(&self, thread: &str) -> Vec<(u64, String)> {
        self.state
            .lock()
            .unwrap()
            .comments
            .get(thread)
            .cloned()
            .unwrap_or_default()
    }

    /// Add a comment as someone else would.
    pub(crate) fn add_comment(&self, thread: &str, body: &str) {
        let mut state = self.state.lock().unwrap();
        state.next_id += 1;
        let id = state.next_id;
        state
            .comments
            .entry(thread.to_owned())
            .or_default()
            .push((id, body.to_owned()));
    }
}

async fn handle(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let full = uri
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_owned());
    let header_map: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let (behaviour, secret) = {
        let state = state.lock().unwrap();
        (
            state.behaviour.unwrap_or(Behaviour::Normal),
            state.secret.clone(),
        )
    };
    let verified = (path.starts_with("/hooks/"))
        .then(|| secret.map(|s| verify(&s, &header_map, &body)))
        .flatten();
    state.lock().unwrap().requests.push(Recorded {
        method: method.to_string(),
        path: full,
        headers: header_map.clone(),
        body: body.to_vec(),
        verified,
    });
    match behaviour {
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Behaviour::Fail(code) => {
            return (StatusCode::from_u16(code).unwrap(), "recorder told to fail").into_response();
        }
        Behaviour::Normal => {}
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let github_auth =
        header_map.get("authorization").map(String::as_str) == Some(&*format!("Bearer {TOKEN}"));
    let gitlab_auth = header_map.get("private-token").map(String::as_str) == Some(TOKEN);
    let unauthorized = || {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials"})),
        )
            .into_response()
    };
    let page = uri
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("page=")))
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1);
    let new_body = || -> String {
        serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null)["body"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["repos", _, _, "statuses", _])
        | ("POST", ["api", "v4", "projects", _, "statuses", _]) => {
            if !(github_auth || gitlab_auth) {
                return unauthorized();
            }
            (StatusCode::CREATED, axum::Json(json!({"id": 1}))).into_response()
        }
        (m @ ("GET" | "POST"), ["repos", owner, repo, "issues", number, "comments"]) => {
            if !github_auth {
                return unauthorized();
            }
            thread(
                state,
                m,
                format!("github/{owner}/{repo}/{number}"),
                page,
                new_body(),
            )
        }
        (
            m @ ("GET" | "POST"),
            [
                "api",
                "v4",
                "projects",
                project,
                "merge_requests",
                iid,
                "notes",
            ],
        ) => {
            if !gitlab_auth {
                return unauthorized();
            }
            thread(
                state,
                m,
                format!("gitlab/{project}/{iid}"),
                page,
                new_body(),
            )
        }
        ("PATCH", ["repos", _, _, "issues", "comments", id])
        | ("PUT", ["api", "v4", "projects", _, "merge_requests", _, "notes", id]) => {
            let gitlab = segments[0] == "api";
            if !(if gitlab { gitlab_auth } else { github_auth }) {
                return unauthorized();
            }
            let id: u64 = id.parse().unwrap_or(0);
            let text = new_body();
            let mut state = state.lock().unwrap();
            for comments in state.comments.values_mut() {
                if let Some(comment) = comments.iter_mut().find(|(cid, _)| *cid == id) {
                    comment.1 = text.clone();
                    return axum::Json(json!({"id": id, "body": text})).into_response();
                }
            }
            StatusCode::NOT_FOUND.into_response()
        }
        ("POST", ["hooks", _]) => match verified {
            Some(false) => (StatusCode::UNAUTHORIZED, "bad signature").into_response(),
            _ => StatusCode::NO_CONTENT.into_response(),
        },
        ("POST", ["slack", _]) => (StatusCode::OK, "ok").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// List (a page of 100) or add the comments of `thread`.
fn thread(
    state: &Mutex<State>,
    method: &str,
    thread: String,
    page: usize,
    text: String,
) -> Response {
    let mut state = state.lock().unwrap();
    if method == "GET" {
        let list: Vec<Value> = state
            .comments
            .get(&thread)
            .map(|c| {
                c.iter()
                    .skip((page - 1) * 100)
                    .take(100)
                    .map(|(id, body)| json!({"id": id, "body": body}))
                    .collect()
            })
            .unwrap_or_default();
        return axum::Json(Value::Array(list)).into_response();
    }
    state.next_id += 1;
    let id = state.next_id;
    state
        .comments
        .entry(thread)
        .or_default()
        .push((id, text.clone()));
    (
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "body": text})),
    )
        .into_response()
}

/// Standard Webhooks verification: `v1,<base64 HMAC-SHA256>` over `id.timestamp.body`,
/// a timestamp within five minutes, compared in constant time.
fn verify(secret: &str, headers: &BTreeMap<String, String>, body: &[u8]) -> bool {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts).abs() > 300 {
        return false;
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .unwrap();
    signatures.split(' ').any(|signature| {
        let Some(sig) = signature.strip_prefix("v1,") else {
            return false;
        };
        let Ok(sig) = engine.decode(sig) else {
            return false;
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    })
}
