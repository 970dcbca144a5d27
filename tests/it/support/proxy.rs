//! A hostile server of the test suite's own: it stands on `127.0.0.1:0` in front of an
//! emulator and passes every request through, except those its rule answers itself
//! (any status, headers and body), changes (the emulator's JSON reply, rewritten) or
//! leaves unanswered (the connection stays open, silent). It records what it saw, with
//! the filter of each list request, so a test can answer the listing by name one way
//! and the listing by id another.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

/// A request the proxy saw.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub body: Vec<u8>,
    /// For a list request: the field its filter is on (`name`, `prompt_id`), or
    /// `None` for the whole account.
    pub filter: Option<String>,
}

impl Seen {
    pub(crate) fn is_list(&self) -> bool {
        self.path.starts_with("/api/prompts/list/")
    }

    /// A list request filtered on `field`.
    pub(crate) fn lists_by(&self, field: &str) -> bool {
        self.is_list() && self.filter.as_deref() == Some(field)
    }
}

/// What the proxy does with one request.
pub(crate) enum Act {
    /// Pass it to the emulator and its reply back.
    Forward,
    /// Answer itself; the emulator never sees the request.
    Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Pass it on, then change the emulator's JSON reply.
    Rewrite(Box<dyn FnOnce(Value) -> Value + Send>),
    /// Never answer (the connection stays open until the client gives up).
    Silent,
    /// A 200 `application/json` answer sent in chunks, with no `Content-Length`: its
    /// size is known only by reading it.
    Stream(Vec<u8>),
}

impl Act {
    /// A 200 `application/json` answer with this body.
    pub(crate) fn json(body: impl Into<Vec<u8>>) -> Act {
        Act::Reply {
            status: 200,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.into(),
        }
    }
}

type Rule = dyn Fn(&Seen) -> Act + Send + Sync;

struct Shared {
    upstream: String,
    client: reqwest::Client,
    rule: Box<Rule>,
    seen: Mutex<Vec<Seen>>,
}

/// The running proxy; stops with its runtime on drop.
pub(crate) struct Proxy {
    base: String,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    /// A proxy in front of `upstream` (an emulator's base URL), acting by `rule`.
    pub(crate) fn start(
        upstream: &str,
        rule: impl Fn(&Seen) -> Act + Send + Sync + 'static,
    ) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        promptsync::api::install_tls_provider();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("proxy client"),
            rule: Box::new(rule),
            seen: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let base = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let addr = listener.local_addr().expect("local addr");
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            format!("http://{addr}")
        });
        Proxy {
            base,
            shared,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:PORT`, for `RESPAN_BASE_URL`.
    pub(crate) fn base_url(&self) -> String {
        self.base.clone()
    }

    /// Every request seen so far, in arrival order.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

/// The field a list request's filter is on.
fn filter_of(body: &[u8]) -> Option<String> {
    let body: Value = serde_json::from_slice(body).ok()?;
    body["filters"].as_object()?.keys().next().cloned()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let seen = Seen {
        method: method.to_string(),
        path: path.clone(),
        body: body.to_vec(),
        filter: filter_of(&body),
    };
    let act = (shared.rule)(&seen);
    shared.seen.lock().unwrap().push(seen);
    match act {
        Act::Reply {
            status,
            headers,
            body,
        } => reply(status, &headers, body),
        Act::Silent => std::future::pending().await,
        Act::Stream(body) => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = body
                .chunks(64 * 1024)
                .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
                .collect();
            let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
            response.headers_mut().insert(
                HeaderName::from_static("content-type"),
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Act::Forward => forward(&shared, method, &path, &headers, body, None).await,
        Act::Rewrite(change) => forward(&shared, method, &path, &headers, body, Some(change)).await,
    }
}

fn reply(status: u16, headers: &[(&'static str, String)], body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).expect("a status");
    for (name, value) in headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    response
}

async fn forward(
    shared: &Shared,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
    change: Option<Box<dyn FnOnce(Value) -> Value + Send>>,
) -> Response {
    let url = format!("{}{path}", shared.upstream);
    let mut request = shared.client.request(method, url).body(body);
    for name in ["authorization", "content-type", "user-agent", "accept"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        return reply(502, &[], b"the emulator did not answer".to_vec());
    };
    let status = answer.status().as_u16();
    let retry_after = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = answer.bytes().await.unwrap_or_default().to_vec();
    let bytes = match (change, serde_json::from_slice::<Value>(&bytes)) {
        (Some(change), Ok(json)) => serde_json::to_vec(&change(json)).expect("JSON"),
        _ => bytes,
    };
    let mut out = vec![("content-type", "application/json".to_owned())];
    if let Some(retry_after) = retry_after {
        out.push(("retry-after", retry_after));
    }
    reply(status, &out, bytes)
}
