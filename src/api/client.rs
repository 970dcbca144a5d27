//! The HTTP client and its typed requests: one `reqwest::Client` with the Bearer key,
//! timeouts and a User-Agent; a semaphore bounding requests in flight; every call sent
//! by `send` (a slot, the pacer, retries per [`RetryPolicy`] within one clock). Change
//! requests that are not safe to resend take a `recover` callback: after an unknown
//! outcome the caller re-reads the remote (within the same request's deadline) and
//! says whether the change already happened, so no duplicate is ever created.
//!
//! Against a broken or hostile server every read is bounded: a 2xx body is read in
//! chunks up to [`MAX_BODY_BYTES`] (an error body up to 1 MiB) and decoded within a
//! budget of JSON values (`decode`), a list page holds at most the items asked for
//! (`page`), a listing ends within its page cap (`listing`), what replies hold
//! together is bounded, for a listing or a whole pass (`held`), every wait ends by the
//! request's deadline, and a redirect is an error, never followed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use super::decode::{self, DecodeError, MAX_REPLY_VALUES};
use super::error::{ApiError, Target};
use super::exchange::{Answer, Exchange, Resend, interpret, rejected, undecodable};
use super::held::{Bound, Held};
use super::listing::Rounds;
use super::pace::Pacer;
use super::paging::Pager;
use super::retry::{Clock, RetryPolicy, Step, retrying};
use super::send::target;
use super::types::{
    BulkItem, BulkResponse, CommitBody, CreatePrompt, Listed, Listing, Prompt, UpdatePrompt,
    Version, VersionSpec, usable_id,
};
use crate::config::ApiSettings;

/// Page size of `POST /api/prompts/list/` (the documented maximum).
pub(super) const PROMPT_PAGE_SIZE: usize = 100;
/// Page size of `GET .../versions/`: 100, like prompts, so that a page of versions
/// needs no more room than a page of prompts.
pub(super) const VERSION_PAGE_SIZE: usize = 100;
/// Pages [`Client::list_prompts`] reads at most: 100,000 prompts at 100 a page.
pub(super) const MAX_PROMPT_PAGES: u64 = 1000;
/// Pages [`Client::list_versions`] reads at most: 10,000 versions of one prompt at
/// 100 a page.
pub(super) const MAX_VERSION_PAGES: u64 = 100;

/// The largest 2xx body promptsync reads: 8 MiB. The largest replies are list pages
/// of 100 prompts whose current and live versions come in full: real prompts are a
/// few KiB, so a real page is well under 1 MiB, and 8 MiB holds 100 prompts whose two
/// versions average 40 KiB of JSON each, or one prompt at the 1 MiB prompt-file cap
/// (twice that, for JSON escaping, and twice again for its two versions) beside 99
/// ordinary ones. A body at the limit, decoded within [`MAX_REPLY_VALUES`], costs
/// under 30 MiB while it is read; a 1.5 GB body costs no more.
pub(super) const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// A Respan prompts API client. Cheap to clone; clones share the connection pool, the
/// in-flight limit and the pause a 429 sets.
#[derive(Clone)]
pub(crate) struct Client {
    pub(super) inner: Arc<Inner>,
    /// What the replies of one pass hold together (`for_one_pass`); `None`: each
    /// listing is counted on its own.
    pub(super) held: Option<Arc<Held>>,
}

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    /// Host root, without a trailing slash.
    pub(super) base: String,
    /// `api.connect_timeout`, for messages.
    pub(super) connect_timeout: Duration,
    pub(super) limiter: Semaphore,
    /// The limiter's permits (`api.max_in_flight`).
    in_flight: usize,
    pub(super) pacer: Pacer,
    pub(super) retry: RetryPolicy,
    /// Told about every exchange (for metrics); knows nothing of what is sent.
    pub(super) on_reply: Option<ReplyHook>,
}

/// Called after every exchange with the method and the status (`None`: no answer).
pub(super) type ReplyHook = Arc<dyn Fn(&'static str, Option<u16>) + Send + Sync>;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

/// How long a connection is kept open idle. Each keeps a read buffer as large as the
/// largest reply it read (a page of 100 prompts, over 100 KB), so a daemon would hold
/// one per connection of its last pass (up to `api.max_in_flight`) while it idles;
/// within a pass, requests follow one another well inside this. The pool closes an
/// idle connection within twice this.
pub(crate) const POOL_IDLE: Duration = Duration::from_secs(5);

impl Client {
    /// A client for the configured base URL and key.
    pub(crate) fn new(settings: &ApiSettings) -> Result<Client, ApiError> {
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
        // request. Each attempt sets its own timeout (`retry::Clock`); this one is the
        // default for none.
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("promptsync/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(POOL_IDLE)
            .redirect(reqwest::redirect::Policy::none());
        if plain_http(settings.base_url.as_str()) {
            // Over plain http (a loopback host: `config::base_url` refuses any other)
            // no certificate is ever checked, and redirects are not followed, so the
            // system's root certificates (parsed one by one when the client is built,
            // before the first request could leave) are not loaded at all.
            builder = builder.tls_certs_only(std::iter::empty());
        }
        let http = builder
            .build()
            .map_err(|err| ApiError::Setup(err.to_string()))?;
        Ok(Client {
            held: None,
            inner: Arc::new(Inner {
                http,
                base: settings.base_url.as_str().trim_end_matches('/').to_owned(),
                connect_timeout: settings.connect_timeout,
                limiter: Semaphore::new(settings.max_in_flight.max(1)),
                in_flight: settings.max_in_flight.max(1),
                pacer: Pacer::new(settings.requests_per_minute),
                retry: RetryPolicy::new(settings.retry_max_elapsed, settings.timeout),
                on_reply: None,
            }),
        })
    }

    /// [`Client::new`], telling `hook` the method and status of every exchange.
    pub(crate) fn observed(settings: &ApiSettings, hook: ReplyHook) -> Result<Client, ApiError> {
        let client = Client::new(settings)?;
        let Ok(mut inner) = Arc::try_unwrap(client.inner) else {
            unreachable!("a new client has no other handle")
        };
        inner.on_reply = Some(hook);
        Ok(Client {
            inner: Arc::new(inner),
            held: None,
        })
    }

    /// This client (the same connections, limits and pause), counting everything its
    /// replies hold against one bound for a pass ([`crate::api::MAX_HELD_BYTES`],
    /// [`crate::api::MAX_HELD_VALUES`]): a pass's snapshot, histories and versions together never
    /// hold more, however many listings and requests it takes.
    pub(crate) fn for_one_pass(&self) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            held: Some(Arc::new(Held::new("the replies of this pass"))),
        }
    }

    /// Requests this client has in flight at most (`api.max_in_flight`).
    pub(super) fn in_flight(&self) -> usize {
        self.inner.in_flight
    }

    /// What replies are counted against: the pass's, or a new one of `scope`.
    pub(super) fn held(&self, scope: &'static str) -> Arc<Held> {
        self.held
            .clone()
            .unwrap_or_else(|| Arc::new(Held::new(scope)))
    }

    /// Decode a 2xx reply as `expected`, counted against the pass's bound when there is
    /// one.
    pub(super) fn decoded<T: DeserializeOwned>(
        &self,
        target: &Target,
        answer: &Answer,
        expected: &str,
    ) -> Result<T, ApiError> {
        let left = self
            .held
            .as_ref()
            .map_or(u64::MAX, |held| held.values_left());
        let (value, values) = match decode::reply(&answer.body, left) {
            Ok(decoded) => decoded,
            Err(DecodeError::TooManyValues { .. }) if left < MAX_REPLY_VALUES => {
                return Err(self.too_much(target, Bound::Values));
            }
            Err(err) => return Err(undecodable(target, answer, expected, err)),
        };
        if let Some(held) = &self.held
            && let Err(bound) = held.keep(answer.body.len() as u64, values)
        {
            return Err(self.too_much(target, bound));
        }
        Ok(value)
    }

    /// A reply past what the pass holds.
    pub(super) fn too_much(&self, target: &Target, bound: Bound) -> ApiError {
        let scope = self.held("the replies of this pass");
        ApiError::TooMuch {
            target: target.clone(),
            problem: format!(
                "{}; promptsync holds no more and stopped reading",
                scope.text(bound)
            ),
        }
    }

    /// When requests go out again, while a server's `Retry-After` holds them.
    pub(crate) fn paused_until(&self) -> Option<SystemTime> {
        self.inner.pacer.paused_until()
    }

    /// Every prompt matching `filters` (a respan-api.md 2.6 filter object), all pages
    /// (at most [`MAX_PROMPT_PAGES`]; see `paging` for when a listing ends); items
    /// that do not parse are in the listing's problems, and a listing whose pages
    /// disagree with its `count` says so in `untrusted`.
    pub(crate) async fn list_prompts(
        &self,
        filters: &Map<String, Value>,
    ) -> Result<Listing<Prompt>, ApiError> {
        self.prompt_pages(filters, &Rounds::PLAIN).await
    }

    /// The pages of `POST /api/prompts/list/` for `filters`, read as `T`, with what
    /// `rounds` does to their items, their pages and at their rounds (see `all_pages`).
    pub(super) async fn prompt_pages<T: Listed>(
        &self,
        filters: &Map<String, Value>,
        rounds: &Rounds<'_, T>,
    ) -> Result<Listing<T>, ApiError> {
        let body = serde_json::to_vec(&json!({ "filters": filters })).map_err(encode_error)?;
        let pager = Pager::new("prompts", PROMPT_PAGE_SIZE, MAX_PROMPT_PAGES);
        let path_of = |page: u64| {
            format!("/api/prompts/list/?page={page}&page_size={PROMPT_PAGE_SIZE}&sort_by=-id")
        };
        self.all_pages(Method::POST, path_of, Some(&body), pager, rounds)
            .await
    }

    /// One prompt with its current and live versions.
    pub(crate) async fn get_prompt(&self, prompt_id: &str) -> Result<Prompt, ApiError> {
        let path = format!("/api/prompts/{}/", segment(prompt_id)?);
        self.request(Method::GET, &path, None, "a prompt object")
            .await
    }

    /// Create a prompt. After an unknown outcome, `recover` looks for it (by name) and
    /// returns it if it was created after all.
    pub(crate) async fn create_prompt<R, Fut>(
        &self,
        body: &CreatePrompt<'_>,
        recover: R,
    ) -> Result<Prompt, ApiError>
    where
        R: Fn() -> Fut,
        Fut: Future<Output = Result<Option<Prompt>, ApiError>>,
    {
        let bytes = serde_json::to_vec(body).map_err(encode_error)?;
        self.change(
            Method::POST,
            "/api/prompts/",
            &bytes,
            recover,
            "a prompt object",
        )
        .await
    }

    /// Change a prompt's name or description.
    pub(crate) async fn update_prompt(
        &self,
        prompt_id: &str,
        body: &UpdatePrompt<'_>,
    ) -> Result<(), ApiError> {
        let path = format!("/api/prompts/{}/", segment(prompt_id)?);
        let bytes = serde_json::to_vec(body).map_err(encode_error)?;
        // The reply is not used: any body will do.
        self.answer(&Method::PATCH, &path, Some(&bytes), Resend::Safe)
            .await
            .map(drop)
    }

    /// Every version of a prompt, newest first (at most [`MAX_VERSION_PAGES`]); items
    /// that do not parse are in the listing's problems.
    pub(crate) async fn list_versions(
        &self,
        prompt_id: &str,
    ) -> Result<Listing<Version>, ApiError> {
        let pager = Pager::new("versions", VERSION_PAGE_SIZE, MAX_VERSION_PAGES);
        let id = segment(prompt_id)?;
        let path_of = |page: u64| {
            format!("/api/prompts/{id}/versions/?page={page}&page_size={VERSION_PAGE_SIZE}")
        };
        self.all_pages(Method::GET, path_of, None, pager, &Rounds::PLAIN)
            .await
    }

    /// One version, with all its fields.
    pub(crate) async fn get_version(
        &self,
        prompt_id: &str,
        number: u64,
    ) -> Result<Version, ApiError> {
        let path = format!("/api/prompts/{}/versions/{number}/", segment(prompt_id)?);
        self.request(Method::GET, &path, None, "a version object")
            .await
    }

    /// Create a version (the new draft). After an unknown outcome, `recover` re-reads
    /// the prompt and returns the version if it was created after all.
    pub(crate) async fn create_version<R, Fut>(
        &self,
        prompt_id: &str,
        spec: &VersionSpec,
        recover: R,
    ) -> Result<Version, ApiError>
    where
        R: Fn() -> Fut,
        Fut: Future<Output = Result<Option<Version>, ApiError>>,
    {
        let path = format!("/api/prompts/{}/versions/", segment(prompt_id)?);
        let bytes = serde_json::to_vec(spec).map_err(encode_error)?;
        self.change(Method::POST, &path, &bytes, recover, "a version object")
            .await
    }

    /// Edit the draft in place with `fields` (absent: unchanged; null: cleared).
    pub(crate) async fn update_version(
        &self,
        prompt_id: &str,
        number: u64,
        fields: &Map<String, Value>,
    ) -> Result<Version, ApiError> {
        let path = format!("/api/prompts/{}/versions/{number}/", segment(prompt_id)?);
        let bytes = serde_json::to_vec(fields).map_err(encode_error)?;
        self.request(Method::PATCH, &path, Some(&bytes), "a version object")
            .await
    }

    /// Commit (freeze) the prompt's draft. After an unknown outcome, `recover` re-reads
    /// and returns the committed version if the commit happened after all.
    pub(crate) async fn commit<R, Fut>(
        &self,
        prompt_id: &str,
        body: &CommitBody,
        recover: R,
    ) -> Result<Version, ApiError>
    where
        R: Fn() -> Fut,
        Fut: Future<Output = Result<Option<Version>, ApiError>>,
    {
        let path = format!("/api/prompts/{}/commits/", segment(prompt_id)?);
        let bytes = serde_json::to_vec(body).map_err(encode_error)?;
        self.change(Method::POST, &path, &bytes, recover, "a version object")
            .await
    }

    /// Make a committed version live. Deploying the live version again changes
    /// nothing, so this is safe to resend.
    pub(crate) async fn deploy(&self, prompt_id: &str, number: u64) -> Result<Version, ApiError> {
        let path = format!("/api/prompts/{}/deployments/", segment(prompt_id)?);
        let bytes = serde_json::to_vec(&json!({ "version": number })).map_err(encode_error)?;
        self.request(Method::POST, &path, Some(&bytes), "a version object")
            .await
    }

    /// Run up to 100 commit/deploy items in one request. A partial failure (422 with a
    /// bulk body) is an `Ok` with per-index errors. After an unknown outcome the error
    /// is returned: the caller re-reads and redoes what is left, item by item.
    pub(crate) async fn bulk(&self, items: &[BulkItem]) -> Result<BulkResponse, ApiError> {
        let bytes = serde_json::to_vec(&json!({ "requests": items })).map_err(encode_error)?;
        let method = Method::POST;
        let target = target(&method, "/api/prompts/bulk/");
        let clock = Clock::new(&self.inner.retry);
        retrying(&clock, &target, || async {
            let exchange = self.exchange(&clock, &target, &method, Some(&bytes)).await;
            match exchange {
                Exchange::Answer { status, body, .. }
                    if status == StatusCode::UNPROCESSABLE_ENTITY =>
                {
                    match decode::reply::<BulkResponse>(&body, MAX_REPLY_VALUES) {
                        Ok((response, _)) if !response.errors.is_empty() => Step::Done(response),
                        _ => Step::Fail(rejected(&target, status, &body)),
                    }
                }
                exchange => match interpret(&target, exchange, Resend::Unsafe) {
                    Step::Done(answer) => match decode::reply(&answer.body, MAX_REPLY_VALUES) {
                        Ok((response, _)) => Step::Done(response),
                        Err(err) => Step::Fail(undecodable(&target, &answer, "a bulk result", err)),
                    },
                    Step::Fail(error) => Step::Fail(error),
                    Step::Again { error, after } => Step::Again { error, after },
                },
            }
        })
        .await
    }
}

/// A prompt id as one path segment (ids are opaque strings); refused before anything
/// is sent when a URL would read it as a directory (`.`, `..`) or it is empty.
fn segment(id: &str) -> Result<String, ApiError> {
    if !usable_id(id) {
        return Err(ApiError::BadId { id: id.to_owned() });
    }
    Ok(url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20"))
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

/// Whether `base` is a plain `http://` URL (a loopback host, as the configuration
/// allows no other over plain http).
fn plain_http(base: &str) -> bool {
    base.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// The filter that selects prompts whose `field` is one of `values` (respan-api.md 2.6).
pub(crate) fn filter_in(
    field: &str,
    values: impl IntoIterator<Item = String>,
) -> Map<String, Value> {
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
    fn only_plain_http_goes_without_root_certificates() {
        assert!(plain_http("http://127.0.0.1:8787"));
        assert!(plain_http("HTTP://[::1]:8787/"));
        assert!(!plain_http("https://api.respan.ai"));
        assert!(!plain_http("http:"));
        assert!(!plain_http(""));
    }

    #[test]
    fn ids_are_escaped_as_one_segment() {
        assert_eq!(segment("prm_abc123").unwrap(), "prm_abc123");
        assert_eq!(segment("a/b c").unwrap(), "a%2Fb%20c");
        assert_eq!(segment(".x").unwrap(), ".x");
        for bad in ["", ".", ".."] {
            let err = segment(bad).unwrap_err();
            assert!(matches!(err, ApiError::BadId { .. }), "{err:?}");
            assert!(err.to_string().contains("nothing was sent"), "{err}");
        }
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
