//! The HTTP client: one `reqwest::Client` with the Bearer key, timeouts and a
//! User-Agent; a semaphore bounding requests in flight; every call retried per
//! [`RetryPolicy`]. Change requests that are not safe to resend take a `recover`
//! callback: after an unknown outcome the caller re-reads the remote and says whether
//! the change already happened, so no duplicate is ever created.
//!
//! Against a broken or hostile server every read is bounded: a 2xx body is read in
//! chunks up to [`MAX_BODY_BYTES`] (an error body up to 1 MiB), a listing ends
//! within its page cap (`paging`), and a redirect is an error, never followed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use super::error::{ApiError, Target, error_detail};
use super::pace::Pacer;
use super::paging::{Next, Pager};
use super::retry::{RetryPolicy, Step, retry_after, retrying};
use super::types::{
    BulkItem, BulkResponse, CommitBody, CreatePrompt, Listed, Listing, Page, Prompt, UpdatePrompt,
    Version, VersionSpec,
};
use crate::config::ApiSettings;

/// Page size of `POST /api/prompts/list/` (the documented maximum).
pub const PROMPT_PAGE_SIZE: usize = 100;
/// Page size of `GET .../versions/` (the documented maximum).
pub const VERSION_PAGE_SIZE: usize = 500;
/// Pages [`Client::list_prompts`] reads at most: 100,000 prompts at 100 a page.
pub const MAX_PROMPT_PAGES: u64 = 1000;
/// Pages [`Client::list_versions`] reads at most: 50,000 versions of one prompt at
/// 500 a page.
pub const MAX_VERSION_PAGES: u64 = 100;

/// The largest 2xx body promptsync reads: 32 MiB. The largest replies are list
/// pages: 100 prompts whose current and live versions come in full, or 500 versions.
/// Real prompts are a few KiB, so a real page is well under 1 MiB; 32 MiB holds a
/// page of 100 prompts averaging 160 KiB per version, or 500 versions averaging
/// 64 KiB, or 16 versions at the 1 MiB prompt-file cap (twice that, for JSON
/// escaping). A body at the limit costs about twice its size while it is read and
/// parsed, which keeps promptsync well under 100 MB; a 1.5 GB body costs no more.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Of a non-2xx answer only the start is read: 1 MiB, room for a bulk 422 that lists
/// an error for each of its 100 items (the detail shown is 300 characters anyway).
const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;

/// A Respan prompts API client. Cheap to clone; clones share the connection pool and
/// the in-flight limit.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Host root, without a trailing slash.
    base: String,
    timeouts: Timeouts,
    limiter: Semaphore,
    pacer: Pacer,
    retry: RetryPolicy,
    /// Told about every exchange (for metrics); knows nothing of what is sent.
    on_reply: Option<ReplyHook>,
}

/// Called after every exchange with the method and the status (`None`: no answer).
pub type ReplyHook = Arc<dyn Fn(&'static str, Option<u16>) + Send + Sync>;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

/// The configured timeouts, for messages that say which one ran out.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// `api.timeout`: the whole request, its reply's body included.
    request: Duration,
    /// `api.connect_timeout`.
    connect: Duration,
}

/// Whether resending a request whose outcome is unknown could do the change twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// Reads, PATCH, deploy: sending again leaves the same state.
    Safe,
    /// Creates and commits: the caller must re-read before sending again.
    Unsafe,
}

/// One HTTP exchange, before interpretation.
enum Exchange {
    Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    /// The connection could not be made: nothing reached the server
    /// ([`ApiError::Connect`]).
    NotSent(ApiError),
    /// Sent, but no complete answer came back: why, from [`describe`].
    Lost(String),
    /// A 2xx whose body is over [`MAX_BODY_BYTES`] ([`ApiError::TooLarge`]).
    TooLarge(ApiError),
}

impl Client {
    /// A client for the configured base URL and key.
    pub fn new(settings: &ApiSettings) -> Result<Client, ApiError> {
        let key = settings.api_key.as_ref().ok_or(ApiError::MissingKey)?;
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                ApiError::Setup(
                    "the API key contains characters not allowed in an HTTP header".into(),
                )
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        install_tls_provider();
        // Redirects are never followed: the API does not redirect, so a 3xx means the
        // base URL points elsewhere (`ApiError::Redirected`). Followed, they would do
        // harm: reqwest (0.13) follows up to 10 by default, drops the Authorization
        // header only when host, port or scheme change (so the key goes to any path
        // on the same origin), and turns a POST answered 301/302/303 into a GET
        // without its body, so a list or a create would silently become another
        // request.
        let http = reqwest::Client::builder()
            .user_agent(concat!("promptsync/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ApiError::Setup(err.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base: settings.base_url.as_str().trim_end_matches('/').to_owned(),
                timeouts: Timeouts {
                    request: settings.timeout,
                    connect: settings.connect_timeout,
                },
                limiter: Semaphore::new(settings.max_in_flight.max(1)),
                pacer: Pacer::new(settings.requests_per_minute),
                retry: RetryPolicy::new(settings.retry_max_elapsed),
                on_reply: None,
            }),
        })
    }

    /// [`Client::new`], telling `hook` the method and status of every exchange.
    pub fn observed(settings: &ApiSettings, hook: ReplyHook) -> Result<Client, ApiError> {
        let client = Client::new(settings)?;
        let Ok(mut inner) = Arc::try_unwrap(client.inner) else {
            unreachable!("a new client has no other handle")
        };
        inner.on_reply = Some(hook);
        Ok(Client {
            inner: Arc::new(inner),
        })
    }

    /// Every prompt matching `filters` (a respan-api.md 2.6 filter object), all pages
    /// (at most [`MAX_PROMPT_PAGES`]; see `paging` for when a listing ends); items
    /// that do not parse are in the listing's problems.
    pub async fn list_prompts(
        &self,
        filters: &Map<String, Value>,
    ) -> Result<Listing<Prompt>, ApiError> {
        let body = serde_json::to_vec(&json!({ "filters": filters })).map_err(encode_error)?;
        let pager = Pager::new("prompts", PROMPT_PAGE_SIZE, MAX_PROMPT_PAGES);
        let path_of = |page: u64| {
            format!("/api/prompts/list/?page={page}&page_size={PROMPT_PAGE_SIZE}&sort_by=-id")
        };
        self.all_pages(
            Method::POST,
            path_of,
            Some(&body),
            pager,
            |prompt: &Prompt| prompt.id().map(str::to_owned),
        )
        .await
    }

    /// One prompt with its current and live versions.
    pub async fn get_prompt(&self, prompt_id: &str) -> Result<Prompt, ApiError> {
        let path = format!("/api/prompts/{}/", segment(prompt_id));
        self.request(Method::GET, &path, None, Resend::Safe).await
    }

    /// Create a prompt. After an unknown outcome, `recover` looks for it (by name) and
    /// returns it if it was created after all.
    pub async fn create_prompt<R, Fut>(
        &self,
        body: &CreatePrompt<'_>,
        recover: R,
    ) -> Result<Prompt, ApiError>
    where
        R: Fn() -> Fut,
        Fut: Future<Output = Result<Option<Prompt>, ApiError>>,
    {
        let bytes = serde_json::to_vec(body).map_err(encode_error)?;
        self.change(Method::POST, "/api/prompts/", &bytes, recover)
            .await
    }

    /// Change a prompt's name or description.
    pub async fn update_prompt(
        &self,
        prompt_id: &str,
        body: &UpdatePrompt<'_>,
    ) -> Result<(), ApiError> {
        let path = format!("/api/prompts/{}/", segment(prompt_id));
        let bytes = serde_json::to_vec(body).map_err(encode_error)?;
        let _: Value = self
            .request(Method::PATCH, &path, Some(&bytes), Resend::Safe)
            .await?;
        Ok(())
    }

    /// Every version of a prompt, newest first (at most [`MAX_VERSION_PAGES`]); items
    /// that do not parse are in the listing's problems.
    pub async fn list_versions(&self, prompt_id: &str) -> Result<Listing<Version>, ApiError> {
        let pager = Pager::new("versions", VERSION_PAGE_SIZE, MAX_VERSION_PAGES);
        let id = segment(prompt_id);
        let path_of = |page: u64| {
            format!("/api/prompts/{id}/versions/?page={page}&page_size={VERSION_PAGE_SIZE}")
        };
        self.all_pages(Method::GET, path_of, None, pager, |version: &Version| {
            Some(version.number.to_string())
        })
        .await
    }

    /// Read a listing page by page until `pager` says it ended (or why it cannot).
    async fn all_pages<T, P>(
        &self,
        method: Method,
        path_of: P,
        body: Option<&[u8]>,
        mut pager: Pager,
        id_of: fn(&T) -> Option<String>,
    ) -> Result<Listing<T>, ApiError>
    where
        T: Listed,
        P: Fn(u64) -> String,
    {
        let mut listing = Listing::default();
        loop {
            let path = path_of(pager.page());
            let page: Page<T> = self
                .request(method.clone(), &path, body, Resend::Safe)
                .await?;
            let count = page.count.as_ref().and_then(Value::as_u64);
            let ids = page.results.iter().filter_map(id_of).collect();
            // An item that did not parse still fills the page: it is not empty.
            let len = page.results.len() + page.problems.len();
            let number = usize::try_from(pager.page()).unwrap_or(usize::MAX);
            let next = pager.after(count, len, ids, page.next.is_some());
            listing.add(number, page);
            match next.map_err(|problem| ApiError::Paging {
                target: target(&method, &path),
                problem,
            })? {
                Next::Page(_) => {}
                Next::Done => return Ok(listing),
            }
        }
    }

    /// One version, with all its fields.
    pub async fn get_version(&self, prompt_id: &str, number: u64) -> Result<Version, ApiError> {
        let path = format!("/api/prompts/{}/versions/{number}/", segment(prompt_id));
        self.request(Method::GET, &path, None, Resend::Safe).await
    }

    /// Create a version (the new draft). After an unknown outcome, `recover` re-reads
    /// the prompt and returns the version if it was created after all.
    pub async fn create_version<R, Fut>(
        &self,
        prompt_id: &str,
        spec: &VersionSpec,
        recover: R,
    ) -> Result<Version, ApiError>
    where
        R: Fn() -> Fut,
        Fut: Future<Output = Result<Option<Version>, ApiError>>,
    {
        let path = format!("/api/prompts/{}/versions/", segment(prompt_id));
        let bytes = serde_json::to_vec(spec).map_err(encode_error)?;
        self.change(Method::POST, &path, &bytes, recover).await
    }

    /// Edit the draft in place with `fields` (absent: unchanged; null: cleared).
    pub async fn update_version(
        &self,
        prompt_id: &str,
        number: u64,
        fields: &Map<String, Value>,
    ) -> Result<Version, ApiError> {
        let path = format!("/api/prompts/{}/versions/{number}/", segment(prompt_id));
        let bytes = serde_json::to_vec(fields).map_err(encode_error)?;
        self.request(Method::PATCH, &path, Some(&bytes), Resend::Safe)
            .await
    }

    /// Commit (freeze) the prompt's draft. After an unknown outcome, `recover` re-reads
    /// and returns the committed version if the commit happened after all.
    pub async fn commit<R, Fut>(
        &self,
        prompt_id: &str,
        body: &CommitBody,
        recover: R,
    ) -> Result<Version, ApiError>
    where
        R: Fn() -> Fut,
        Fut: Future<Output = Result<Option<Version>, ApiError>>,
    {
        let path = format!("/api/prompts/{}/commits/", segment(prompt_id));
        let bytes = serde_json::to_vec(body).map_err(encode_error)?;
        self.change(Method::POST, &path, &bytes, recover).await
    }

    /// Make a committed version live. Deploying the live version again changes
    /// nothing, so this is safe to resend.
    pub async fn deploy(&self, prompt_id: &str, number: u64) -> Result<Version, ApiError> {
        let path = format!("/api/prompts/{}/deployments/", segment(prompt_id));
        let bytes = serde_json::to_vec(&json!({ "version": number })).map_err(encode_error)?;
        self.request(Method::POST, &path, Some(&bytes), Resend::Safe)
            .await
    }

    /// Run up to 100 commit/deploy items in one request. A partial failure (422 with a
    /// bulk body) is an `Ok` with per-index errors. After an unknown outcome the error
    /// is returned: the caller re-reads and redoes what is left, item by item.
    pub async fn bulk(&self, items: &[BulkItem]) -> Result<BulkResponse, ApiError> {
        let bytes = serde_json::to_vec(&json!({ "requests": items })).map_err(encode_error)?;
        let target = target(&Method::POST, "/api/prompts/bulk/");
        retrying(&self.inner.retry, &target, || async {
            match self.exchange(&target, &Method::POST, Some(&bytes)).await {
                Exchange::Answer { status, body, .. }
                    if status == StatusCode::UNPROCESSABLE_ENTITY =>
                {
                    match serde_json::from_slice::<BulkResponse>(&body) {
                        Ok(response) if !response.errors.is_empty() => Step::Done(response),
                        _ => Step::Fail(rejected(&target, status, &body)),
                    }
                }
                exchange => interpret(&target, exchange, Resend::Unsafe),
            }
        })
        .await
    }

    /// A request whose resending is harmless (or, for `Unsafe`, reported as an
    /// unknown outcome instead of resent).
    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        resend: Resend,
    ) -> Result<T, ApiError> {
        let target = target(&method, path);
        retrying(&self.inner.retry, &target, || async {
            interpret(&target, self.exchange(&target, &method, body).await, resend)
        })
        .await
    }

    /// A change request that must not be resent blindly: after an unknown outcome,
    /// `recover` decides whether it happened (done) or not (send again after backoff).
    async fn change<T, R, Fut>(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        recover: R,
    ) -> Result<T, ApiError>
    where
        T: DeserializeOwned,
        R: Fn() -> Fut,
        Fut: Future<Output = Result<Option<T>, ApiError>>,
    {
        let target = target(&method, path);
        let policy = &self.inner.retry;
        retrying(policy, &target, || {
            let exchange = self.exchange(&target, &method, Some(body));
            let recover = &recover;
            let target = &target;
            async move {
                match interpret(target, exchange.await, Resend::Unsafe) {
                    Step::Fail(error @ ApiError::OutcomeUnknown { .. }) => {
                        tracing::warn!(%error, "re-reading the remote before sending again");
                        match recover().await {
                            Ok(Some(found)) => {
                                tracing::info!(method = target.method, path = %target.path,
                                    "the change was applied before the reply was lost");
                                Step::Done(found)
                            }
                            Ok(None) => Step::Again { error, after: None },
                            Err(err) => Step::Fail(err),
                        }
                    }
                    step => step,
                }
            }
        })
        .await
    }

    async fn exchange(&self, target: &Target, method: &Method, body: Option<&[u8]>) -> Exchange {
        let Ok(_permit) = self.inner.limiter.acquire().await else {
            unreachable!("the semaphore is never closed")
        };
        self.inner.pacer.ready().await;
        let url = format!("{}{}", self.inner.base, target.path);
        let mut request = self.inner.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        tracing::debug!(%method, url, "request");
        let exchange = match request.send().await {
            Err(err) if err.is_connect() => Exchange::NotSent(connect_error(
                target,
                &self.inner.base,
                &err,
                self.inner.timeouts,
            )),
            Err(err) => Exchange::Lost(describe(&err, self.inner.timeouts)),
            Ok(response) => read_answer(target, response, self.inner.timeouts).await,
        };
        if let Exchange::Answer {
            status,
            headers,
            body,
        } = &exchange
            && *status == StatusCode::TOO_MANY_REQUESTS
        {
            // Throttled: the whole client waits, not only this request.
            let wait = retry_after(headers, body).unwrap_or(Duration::from_secs(1));
            tracing::debug!(
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "throttled: every request waits"
            );
            self.inner.pacer.pause(wait);
        }
        if let Some(hook) = &self.inner.on_reply {
            let status = match &exchange {
                Exchange::Answer { status, .. } => Some(status.as_u16()),
                // No usable answer: a refused connection, a lost reply, an oversized body.
                Exchange::NotSent(_) | Exchange::Lost(_) | Exchange::TooLarge(_) => None,
            };
            hook(target.method, status);
        }
        exchange
    }
}

/// Read an answer's body in chunks, within [`MAX_BODY_BYTES`] for a 2xx (refused at
/// once when its `Content-Length` is over) and [`MAX_ERROR_BODY_BYTES`] otherwise
/// (cut there: only its start is shown). Dropping the response mid-body closes the
/// connection, so the rest is never read.
async fn read_answer(
    target: &Target,
    mut response: reqwest::Response,
    timeouts: Timeouts,
) -> Exchange {
    let status = response.status();
    let headers = response.headers().clone();
    let success = status.is_success();
    let limit = if success {
        MAX_BODY_BYTES
    } else {
        MAX_ERROR_BODY_BYTES
    };
    let too_large = |declared| {
        Exchange::TooLarge(ApiError::TooLarge {
            target: target.clone(),
            limit: MAX_BODY_BYTES as u64,
            declared,
        })
    };
    let declared = response.content_length();
    if success && declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return too_large(declared);
    }
    let expected = declared.map_or(0, |length| usize::try_from(length).unwrap_or(limit));
    let mut body = Vec::with_capacity(expected.min(limit));
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > limit => {
                if success {
                    return too_large(None);
                }
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(err) => return Exchange::Lost(describe(&err, timeouts)),
        }
    }
    Exchange::Answer {
        status,
        headers,
        body,
    }
}

/// A failed connection, classified: refused and unknown hosts fail fast.
fn connect_error(
    target: &Target,
    base: &str,
    err: &reqwest::Error,
    timeouts: Timeouts,
) -> ApiError {
    let refused = std::iter::successors(std::error::Error::source(err), |e| e.source()).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    let (cause, fails_fast) = if refused {
        ("connection refused".to_owned(), true)
    } else if err.is_dns() && !err.is_timeout() {
        let innermost = std::iter::successors(std::error::Error::source(err), |e| e.source())
            .last()
            .map(ToString::to_string)
            .unwrap_or_default();
        (format!("the host name does not resolve: {innermost}"), true)
    } else {
        (describe(err, timeouts), false)
    };
    ApiError::Connect {
        target: target.clone(),
        base: base.to_owned(),
        cause,
        fails_fast,
    }
}

/// Turn an exchange into the next step: done, failed for good, or try again.
fn interpret<T: DeserializeOwned>(target: &Target, exchange: Exchange, resend: Resend) -> Step<T> {
    let (status, headers, body) = match exchange {
        Exchange::NotSent(error) => return Step::Again { error, after: None },
        Exchange::TooLarge(error) => return Step::Fail(error),
        Exchange::Lost(cause) => {
            return unknown_or_again(target, resend, cause, None);
        }
        Exchange::Answer {
            status,
            headers,
            body,
        } => (status, headers, body),
    };
    match status.as_u16() {
        200..=299 => {
            // DELETE-style empty answers decode as null.
            let parsed = if body.is_empty() {
                serde_json::from_value(Value::Null)
            } else {
                serde_json::from_slice(&body)
            };
            match parsed {
                Ok(value) => Step::Done(value),
                Err(err) => Step::Fail(ApiError::Decode {
                    target: target.clone(),
                    reason: undecodable(&headers, &body, &err),
                }),
            }
        }
        300..=399 => Step::Fail(ApiError::Redirected {
            target: target.clone(),
            status: status.as_u16(),
            location: location(&headers),
        }),
        401 | 403 => Step::Fail(ApiError::Unauthorized {
            target: target.clone(),
            status: status.as_u16(),
            detail: error_detail(&body),
        }),
        429 => Step::Again {
            error: rejected(target, status, &body),
            after: Some(retry_after(&headers, &body).unwrap_or(std::time::Duration::from_secs(1))),
        },
        408 | 500 | 502 | 503 | 504 => unknown_or_again(
            target,
            resend,
            format!("answered {status}: {}", error_detail(&body)),
            retry_after(&headers, &body),
        ),
        _ => Step::Fail(rejected(target, status, &body)),
    }
}

/// A failure after which the server may have acted: resend when that is harmless,
/// otherwise hand the unknown outcome to the caller.
fn unknown_or_again<T>(
    target: &Target,
    resend: Resend,
    cause: String,
    after: Option<std::time::Duration>,
) -> Step<T> {
    let target = target.clone();
    match resend {
        Resend::Safe => Step::Again {
            error: ApiError::Transient { target, cause },
            after,
        },
        Resend::Unsafe => Step::Fail(ApiError::OutcomeUnknown { target, cause }),
    }
}

/// Why a 2xx body did not decode: the parser's reason and how the body starts, or,
/// when it is not JSON at all (an HTML login page), what it is instead.
fn undecodable(headers: &HeaderMap, body: &[u8], err: &serde_json::Error) -> String {
    const SHOWN: usize = 60;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no Content-Type");
    let text = String::from_utf8_lossy(&body[..body.len().min(SHOWN * 4)]);
    let start: String = text.trim_start().chars().take(SHOWN).collect();
    let start = crate::term::line(&start);
    if content_type.contains("json") {
        format!("{err} (the body starts `{start}`)")
    } else {
        format!(
            "expected JSON, got {content_type} starting `{start}`; is RESPAN_BASE_URL \
             (api.base_url) the Respan API, not a proxy or a login page?"
        )
    }
}

/// A redirect's `Location`, for the message (shortened; header values are visible
/// ASCII, so nothing here can move a terminal's cursor).
fn location(headers: &HeaderMap) -> String {
    const MAX: usize = 200;
    match headers.get(header::LOCATION).map(HeaderValue::to_str) {
        None => "(no Location header)".to_owned(),
        Some(Err(_)) => "(a Location that is not plain text)".to_owned(),
        Some(Ok(text)) if text.len() > MAX => format!("{}…", &text[..MAX]),
        Some(Ok(text)) => text.to_owned(),
    }
}

fn rejected(target: &Target, status: StatusCode, body: &[u8]) -> ApiError {
    ApiError::Rejected {
        target: target.clone(),
        status: status.as_u16(),
        detail: error_detail(body),
    }
}

/// A reqwest error without its URL (which is in the target already) and with its
/// causes, e.g. "operation timed out" or "connection closed before message completed";
/// a timeout says which one ran out.
fn describe(err: &reqwest::Error, timeouts: Timeouts) -> String {
    let after = |limit: Duration, name: &str| {
        format!(
            "timed out after {} ({name})",
            humantime::format_duration(limit)
        )
    };
    let mut text = if err.is_timeout() && err.is_connect() {
        after(timeouts.connect, "api.connect_timeout")
    } else if err.is_timeout() {
        after(
            timeouts.request,
            "api.timeout, for the request and its whole reply",
        )
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else if err.is_body() || err.is_decode() {
        "the reply broke off".to_owned()
    } else {
        "no reply".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn target(method: &Method, path: &str) -> Target {
    let method = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "REQUEST",
    };
    Target {
        method,
        path: path.to_owned(),
    }
}

/// A prompt id as one path segment (ids are opaque strings).
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn encode_error(err: serde_json::Error) -> ApiError {
    ApiError::Setup(format!("cannot encode a request body: {err}"))
}

/// Make ring the process's TLS provider, which every `reqwest::Client` needs: reqwest
/// is built without one (Cargo.toml). Does nothing when a provider is installed
/// already (by an earlier call, or by an application embedding this crate).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The filter that selects prompts whose `field` is one of `values` (respan-api.md 2.6).
pub fn filter_in(field: &str, values: impl IntoIterator<Item = String>) -> Map<String, Value> {
    let values: Vec<Value> = values.into_iter().map(Value::String).collect();
    let mut filters = Map::new();
    filters.insert(
        field.to_owned(),
        json!({ "operator": "in", "value": values }),
    );
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_escaped_as_one_segment() {
        assert_eq!(segment("prm_abc123"), "prm_abc123");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn a_client_needs_a_key() {
        let settings = ApiSettings {
            base_url: url::Url::parse("https://api.respan.ai").unwrap(),
            api_key: None,
            api_key_file: None,
            timeout: std::time::Duration::from_secs(1),
            connect_timeout: std::time::Duration::from_secs(1),
            max_in_flight: 1,
            requests_per_minute: None,
            retry_max_elapsed: std::time::Duration::from_secs(1),
        };
        assert!(matches!(Client::new(&settings), Err(ApiError::MissingKey)));
    }
}
