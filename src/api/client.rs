//! The HTTP client: one `reqwest::Client` with the Bearer key, timeouts and a
//! User-Agent; a semaphore bounding requests in flight; every call retried per
//! [`RetryPolicy`]. Change requests that are not safe to resend take a `recover`
//! callback: after an unknown outcome the caller re-reads the remote and says whether
//! the change already happened, so no duplicate is ever created.

use std::future::Future;
use std::sync::Arc;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use super::error::{ApiError, Target, error_detail};
use super::retry::{RetryPolicy, Step, retry_after, retrying};
use super::types::{
    BulkItem, BulkResponse, CommitBody, CreatePrompt, Listing, Page, Prompt, UpdatePrompt, Version,
    VersionSpec,
};
use crate::config::ApiSettings;

/// Page size of `POST /api/prompts/list/` (the documented maximum).
pub const PROMPT_PAGE_SIZE: usize = 100;
/// Page size of `GET .../versions/` (the documented maximum).
pub const VERSION_PAGE_SIZE: usize = 500;

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
    limiter: Semaphore,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
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
        body: bytes::Bytes,
    },
    /// The connection could not be made: nothing reached the server.
    NotSent(reqwest::Error),
    /// Sent, but no complete answer came back.
    Lost(reqwest::Error),
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
        let http = reqwest::Client::builder()
            .user_agent(concat!("promptsync/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .build()
            .map_err(|err| ApiError::Setup(err.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base: settings.base_url.as_str().trim_end_matches('/').to_owned(),
                limiter: Semaphore::new(settings.max_in_flight.max(1)),
                retry: RetryPolicy::new(settings.retry_max_elapsed),
            }),
        })
    }

    /// Every prompt matching `filters` (a respan-api.md 2.6 filter object), all pages;
    /// items that do not parse are in the listing's problems.
    pub async fn list_prompts(
        &self,
        filters: &Map<String, Value>,
    ) -> Result<Listing<Prompt>, ApiError> {
        let body = serde_json::to_vec(&json!({ "filters": filters })).map_err(encode_error)?;
        let mut prompts = Listing::default();
        for page in 1.. {
            let path =
                format!("/api/prompts/list/?page={page}&page_size={PROMPT_PAGE_SIZE}&sort_by=-id");
            let got: Page<Prompt> = self
                .request(Method::POST, &path, Some(&body), Resend::Safe)
                .await?;
            if !prompts.add(page, got) {
                break;
            }
        }
        Ok(prompts)
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

    /// Every version of a prompt, newest first; items that do not parse are in the
    /// listing's problems.
    pub async fn list_versions(&self, prompt_id: &str) -> Result<Listing<Version>, ApiError> {
        let mut versions = Listing::default();
        for page in 1.. {
            let path = format!(
                "/api/prompts/{}/versions/?page={page}&page_size={VERSION_PAGE_SIZE}",
                segment(prompt_id)
            );
            let got: Page<Version> = self.request(Method::GET, &path, None, Resend::Safe).await?;
            if !versions.add(page, got) {
                break;
            }
        }
        Ok(versions)
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
        let url = format!("{}{}", self.inner.base, target.path);
        retrying(&self.inner.retry, &target, || async {
            match self.exchange(&Method::POST, &url, Some(&bytes)).await {
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
        let url = format!("{}{}", self.inner.base, path);
        retrying(&self.inner.retry, &target, || async {
            interpret(&target, self.exchange(&method, &url, body).await, resend)
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
        let url = format!("{}{}", self.inner.base, path);
        let policy = &self.inner.retry;
        retrying(policy, &target, || {
            let exchange = self.exchange(&method, &url, Some(body));
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

    async fn exchange(&self, method: &Method, url: &str, body: Option<&[u8]>) -> Exchange {
        let Ok(_permit) = self.inner.limiter.acquire().await else {
            unreachable!("the semaphore is never closed")
        };
        let mut request = self.inner.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        tracing::debug!(%method, url, "request");
        match request.send().await {
            Err(err) if err.is_connect() => Exchange::NotSent(err),
            Err(err) => Exchange::Lost(err),
            Ok(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(body) => Exchange::Answer {
                        status,
                        headers,
                        body,
                    },
                    Err(err) => Exchange::Lost(err),
                }
            }
        }
    }
}

/// Turn an exchange into the next step: done, failed for good, or try again.
fn interpret<T: DeserializeOwned>(target: &Target, exchange: Exchange, resend: Resend) -> Step<T> {
    let (status, headers, body) = match exchange {
        Exchange::NotSent(err) => {
            return Step::Again {
                error: ApiError::Transient {
                    target: target.clone(),
                    cause: format!(
                        "cannot connect ({}); check RESPAN_BASE_URL and the network",
                        describe(&err)
                    ),
                },
                after: None,
            };
        }
        Exchange::Lost(err) => {
            return unknown_or_again(target, resend, describe(&err), None);
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
                    reason: err.to_string(),
                }),
            }
        }
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

fn rejected(target: &Target, status: StatusCode, body: &[u8]) -> ApiError {
    ApiError::Rejected {
        target: target.clone(),
        status: status.as_u16(),
        detail: error_detail(body),
    }
}

/// A reqwest error without its URL (which is in the target already) and with its
/// causes, e.g. "operation timed out" or "connection closed before message completed".
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "the reply broke off"
    } else {
        "no reply"
    }
    .to_owned();
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
            timeout: std::time::Duration::from_secs(1),
            connect_timeout: std::time::Duration::from_secs(1),
            max_in_flight: 1,
            retry_max_elapsed: std::time::Duration::from_secs(1),
        };
        assert!(matches!(Client::new(&settings), Err(ApiError::MissingKey)));
    }
}
