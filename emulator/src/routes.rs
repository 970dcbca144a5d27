//! The prompts API over HTTP (respan-api.md section 3, E1–E20): routes with their trailing
//! slashes, Bearer authentication (section 5), body and query decoding, status codes
//! (1.3), and the layers that log requests and inject faults. Handlers only decode,
//! call the store, wait for persistence and encode; the rules live in `store`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::App;
use super::filters::{Filter, Scope, Sort};
use super::inject::fault_layer;
use super::knobs::Knobs;
use super::paging::{self, Query};
use super::presets::{preset_input, preset_order};
use super::reply::Failure;
use super::reqlog::log_layer;
use super::store::Store;
use super::validate::{self, Mode};

/// Largest request body accepted.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Page sizes of E1 (default, maximum) and E7.
const PROMPT_PAGE: (usize, usize) = (25, 100);
const VERSION_PAGE: (usize, usize) = (25, 500);
/// E16 documents no limits; the prompt list's are used.
const PRESET_PAGE: (usize, usize) = (25, 100);

type Reply = Result<Response, Failure>;

/// Who may call the API.
#[derive(Debug, Default)]
pub(crate) struct Auth {
    /// Accepted keys; empty accepts any key.
    pub keys: HashSet<String>,
    /// Keys that are known but get 403.
    pub forbidden: HashSet<String>,
}

impl Auth {
    fn check(&self, header: Option<&HeaderValue>) -> Result<(), Failure> {
        let token = header
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty() && !token.contains(' '))
            .ok_or_else(|| Failure::detail(401, "Missing bearer token."))?;
        if self.forbidden.contains(token) {
            return Err(Failure::detail(
                403,
                "You do not have permission to perform this action.",
            ));
        }
        if !self.keys.is_empty() && !self.keys.contains(token) {
            return Err(Failure::detail(401, "Unknown or revoked API key."));
        }
        Ok(())
    }
}

async fn auth_layer(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    match app.auth.check(request.headers().get(header::AUTHORIZATION)) {
        Ok(()) => next.run(request).await,
        Err(failure) => failure.into_response(),
    }
}

/// The `/api/` router with its layers: log (outermost), faults, then auth on matched
/// routes. Unknown paths (a missing trailing slash included) are 404 without auth.
pub(crate) fn router(app: &Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/api/prompts/", post(create_prompt))
        .route("/api/prompts/list/", post(list_prompts))
        .route("/api/prompts/bulk/", post(bulk))
        .route("/api/prompts/summary/", get(summary).post(summary_filtered))
        .route(
            "/api/prompts/{prompt_id}/",
            get(retrieve_prompt)
                .patch(update_prompt)
                .delete(delete_prompt),
        )
        .route(
            "/api/prompts/{prompt_id}/versions/",
            get(list_versions).post(create_version),
        )
        .route(
            "/api/prompts/{prompt_id}/versions/{version}/",
            get(retrieve_version)
                .patch(update_version)
                .delete(delete_version),
        )
        .route("/api/prompts/{prompt_id}/commits/", post(commit))
        .route("/api/prompts/{prompt_id}/deployments/", post(deploy))
        .route(
            "/api/response-format-presets/",
            get(list_presets).post(create_preset),
        )
        .route(
            "/api/response-format-presets/{preset_id}/",
            get(retrieve_preset)
                .patch(update_preset)
                .delete(delete_preset),
        )
        .route_layer(from_fn_with_state(Arc::clone(app), auth_layer))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(from_fn_with_state(Arc::clone(app), fault_layer))
        .layer(from_fn_with_state(Arc::clone(app), log_layer))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

async fn not_found() -> Failure {
    Failure::not_found()
}

async fn method_not_allowed(method: Method) -> Failure {
    Failure::detail(405, format!("Method \"{method}\" not allowed."))
}

// --- decoding helpers ----------------------------------------------------------------

/// The JSON object body; an empty body is `{}`. Non-JSON content types get 415.
fn json_body(headers: &HeaderMap, bytes: &Bytes) -> Result<Map<String, Value>, Failure> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let text = content_type.to_str().unwrap_or_default();
        let essence = text.split(';').next().unwrap_or_default().trim();
        if !(essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")) {
            return Err(Failure::detail(
                415,
                format!("Unsupported media type \"{text}\" in request."),
            ));
        }
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Failure::bad_request(format!("JSON parse error - {e}")))?;
    validate::object_body(value)
}

/// A version number in a path; anything else matches no route (404).
fn version_number(text: &str) -> Result<u32, Failure> {
    text.parse::<u32>().map_err(|_| Failure::not_found())
}

fn json(status: StatusCode, body: impl serde::Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Run a change on the store and wait until it is persisted.
async fn mutate<T>(
    app: &App,
    op: impl FnOnce(&mut Store, Knobs) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let knobs = app.knobs();
    let (result, generation) = {
        let mut store = app.store();
        let result = op(&mut store, knobs);
        (result, store.generation())
    };
    let value = result?;
    app.persisted(generation)
        .await
        .map_err(|reason| Failure::detail(500, reason))?;
    Ok(value)
}

// --- prompts ---------------------------------------------------------------------------

async fn create_prompt(State(app): State<Arc<App>>, headers: HeaderMap, bytes: Bytes) -> Reply {
    let input = validate::prompt_input(&json_body(&headers, &bytes)?)?;
    let body = mutate(&app, |store, _| Ok(store.create_prompt(input))).await?;
    Ok(json(StatusCode::CREATED, body))
}

async fn list_prompts(
    State(app): State<Arc<App>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let query = paging::parse_query(raw.as_deref());
    let body = json_body(&headers, &bytes)?;
    let filter = Filter::parse(&body, Scope::List)?;
    let sort = Sort::parse(paging::query_value(&query, "sort_by"))?;
    let request = paging::page_request(&query, PROMPT_PAGE.0, PROMPT_PAGE.1)?;
    let count_mode = app.knobs().count_mode;
    let base = paging::request_base(&headers, "/api/prompts/list/", &app);
    // The page is written from the records under the lock, not copied out of it.
    let store = app.store();
    let selected = store.select(&filter, &sort);
    let page = paging::window(selected.len(), request)?;
    let results: Vec<_> = selected[page.range.clone()]
        .iter()
        .map(|p| p.view())
        .collect();
    Ok(json(
        StatusCode::OK,
        paging::envelope(results, &page, count_mode, &base, &query),
    ))
}

async fn retrieve_prompt(State(app): State<Arc<App>>, Path(prompt_id): Path<String>) -> Reply {
    let body = app.store().retrieve_prompt(&prompt_id)?;
    Ok(json(StatusCode::OK, body))
}

async fn update_prompt(
    State(app): State<Arc<App>>,
    Path(prompt_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let input = validate::prompt_input(&json_body(&headers, &bytes)?)?;
    let body = mutate(&app, |store, knobs| {
        store.update_prompt(&prompt_id, input, knobs)
    })
    .await?;
    Ok(json(StatusCode::OK, body))
}

async fn delete_prompt(State(app): State<Arc<App>>, Path(prompt_id): Path<String>) -> Reply {
    mutate(&app, |store, _| store.delete_prompt(&prompt_id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn summary(State(app): State<Arc<App>>) -> Reply {
    let total = app.store().count(&Filter::default());
    Ok(json(StatusCode::OK, json!({ "total_count": total })))
}

async fn summary_filtered(State(app): State<Arc<App>>, headers: HeaderMap, bytes: Bytes) -> Reply {
    let filter = Filter::parse(&json_body(&headers, &bytes)?, Scope::Summary)?;
    let total = app.store().count(&filter);
    Ok(json(StatusCode::OK, json!({ "total_count": total })))
}

async fn bulk(State(app): State<Arc<App>>, headers: HeaderMap, bytes: Bytes) -> Reply {
    let body = json_body(&headers, &bytes)?;
    let outcome = mutate(&app, |store, knobs| store.bulk(&body, knobs)).await?;
    let status = if outcome.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(json(status, outcome.to_json()))
}

// --- versions --------------------------------------------------------------------------

async fn list_versions(
    State(app): State<Arc<App>>,
    Path(prompt_id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    let query: Query = paging::parse_query(raw.as_deref());
    let request = paging::page_request(&query, VERSION_PAGE.0, VERSION_PAGE.1)?;
    let count_mode = app.knobs().count_mode;
    let base = paging::request_base(
        &headers,
        &format!("/api/prompts/{prompt_id}/versions/"),
        &app,
    );
    let store = app.store();
    let (versions, live) = store.versions(&prompt_id)?;
    let page = paging::window(versions.len(), request)?;
    // Newest first: page ranges count from the newest version.
    let results: Vec<_> = versions
        .iter()
        .rev()
        .skip(page.range.start)
        .take(page.range.len())
        .map(|v| v.view(live))
        .collect();
    Ok(json(
        StatusCode::OK,
        paging::envelope(results, &page, count_mode, &base, &query),
    ))
}

async fn create_version(
    State(app): State<Arc<App>>,
    Path(prompt_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let body = json_body(&headers, &bytes)?;
    let require_model = app.knobs().require_model;
    let input = validate::version_input(&body, Mode::Create { require_model })?;
    let created = mutate(&app, |store, knobs| {
        store.create_version(&prompt_id, input, knobs)
    })
    .await?;
    Ok(json(StatusCode::CREATED, created))
}

async fn retrieve_version(
    State(app): State<Arc<App>>,
    Path((prompt_id, version)): Path<(String, String)>,
) -> Reply {
    let number = version_number(&version)?;
    let body = app.store().retrieve_version(&prompt_id, number)?;
    Ok(json(StatusCode::OK, body))
}

async fn update_version(
    State(app): State<Arc<App>>,
    Path((prompt_id, version)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let number = version_number(&version)?;
    let input = validate::version_input(&json_body(&headers, &bytes)?, Mode::Patch)?;
    let body = mutate(&app, |store, knobs| {
        store.update_version(&prompt_id, number, input, knobs)
    })
    .await?;
    Ok(json(StatusCode::OK, body))
}

async fn delete_version(
    State(app): State<Arc<App>>,
    Path((prompt_id, version)): Path<(String, String)>,
) -> Reply {
    let number = version_number(&version)?;
    mutate(&app, |store, knobs| {
        store.delete_version(&prompt_id, number, knobs)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn commit(
    State(app): State<Arc<App>>,
    Path(prompt_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let description = validate::commit_description(&json_body(&headers, &bytes)?)?;
    let body = mutate(&app, |store, knobs| {
        store.commit(&prompt_id, description, knobs)
    })
    .await?;
    Ok(json(StatusCode::CREATED, body))
}

async fn deploy(
    State(app): State<Arc<App>>,
    Path(prompt_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let version = validate::deploy_version(&json_body(&headers, &bytes)?)?;
    let body = mutate(&app, |store, knobs| {
        store.deploy(&prompt_id, version, knobs)
    })
    .await?;
    Ok(json(StatusCode::OK, body))
}

// --- response-format presets (E16–E20) -------------------------------------------------

async fn list_presets(
    State(app): State<Arc<App>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    let query = paging::parse_query(raw.as_deref());
    let (key, descending) = preset_order(paging::query_value(&query, "sort_by"))?;
    let request = paging::page_request(&query, PRESET_PAGE.0, PRESET_PAGE.1)?;
    let count_mode = app.knobs().count_mode;
    let all = app.store().presets().list(&key, descending);
    let page = paging::window(all.len(), request)?;
    let results = all[page.range.clone()].to_vec();
    let base = paging::request_base(&headers, "/api/response-format-presets/", &app);
    let mut body = paging::envelope(results, &page, count_mode, &base, &query);
    body.current_filters = Some(json!({}));
    Ok(json(StatusCode::OK, body))
}

async fn create_preset(State(app): State<Arc<App>>, headers: HeaderMap, bytes: Bytes) -> Reply {
    let input = preset_input(&json_body(&headers, &bytes)?, true)?;
    let body = mutate(&app, |store, _| {
        store.change_presets(|presets, id, now| Ok(presets.create(id, input, now)))
    })
    .await?;
    Ok(json(StatusCode::CREATED, body))
}

async fn retrieve_preset(State(app): State<Arc<App>>, Path(preset_id): Path<String>) -> Reply {
    let body = app.store().presets().retrieve(&preset_id)?;
    Ok(json(StatusCode::OK, body))
}

async fn update_preset(
    State(app): State<Arc<App>>,
    Path(preset_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let input = preset_input(&json_body(&headers, &bytes)?, false)?;
    let body = mutate(&app, |store, _| {
        store.change_presets(|presets, _, now| presets.update(&preset_id, input, now))
    })
    .await?;
    Ok(json(StatusCode::OK, body))
}

async fn delete_preset(State(app): State<Arc<App>>, Path(preset_id): Path<String>) -> Reply {
    mutate(&app, |store, _| {
        store.change_presets(|presets, _, _| presets.delete(&preset_id))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let open = Auth::default();
        let header = |text: &str| HeaderValue::from_str(text).unwrap();
        assert!(open.check(Some(&header("Bearer anything"))).is_ok());
        assert!(open.check(Some(&header("bearer anything"))).is_ok());
        for bad in ["Bearer", "Bearer ", "Basic abc", "anything", "Bearer a b"] {
            let failure = open.check(Some(&header(bad))).unwrap_err();
            assert_eq!(
                failure,
                Failure::detail(401, "Missing bearer token."),
                "{bad}"
            );
        }
        assert_eq!(open.check(None).unwrap_err().status, 401);

        let closed = Auth {
            keys: ["good".to_owned(), "banned".to_owned()].into(),
            forbidden: ["banned".to_owned()].into(),
        };
        assert!(closed.check(Some(&header("Bearer good"))).is_ok());
        assert_eq!(
            closed.check(Some(&header("Bearer other"))).unwrap_err(),
            Failure::detail(401, "Unknown or revoked API key.")
        );
        assert_eq!(
            closed
                .check(Some(&header("Bearer banned")))
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn bodies() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            json_body(&headers, &Bytes::from_static(b"  ")),
            Ok(Map::new())
        );
        assert_eq!(
            json_body(&headers, &Bytes::from_static(b"{\"a\":1}")).unwrap()["a"],
            json!(1)
        );
        assert_eq!(
            json_body(&headers, &Bytes::from_static(b"{\"a\":"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            json_body(&headers, &Bytes::from_static(b"[1]"))
                .unwrap_err()
                .status,
            400
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(
            json_body(&headers, &Bytes::from_static(b"{}"))
                .unwrap_err()
                .status,
            415
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(json_body(&headers, &Bytes::from_static(b"{}")).is_ok());
    }
}
