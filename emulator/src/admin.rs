//! The admin endpoint: **test-only**, no authentication, not part of the Respan API.
//! It lives outside `/api/`, is neither logged nor subject to faults, latency or the
//! rate limit, and can be turned off (`EmulatorConfig::admin = false`,
//! `promptsync emulator --no-admin`). Bodies and replies are JSON; a bad request gets
//! 400 `{"detail": "..."}` saying what is wrong.
//!
//! | method and path | body | effect / reply |
//! | --- | --- | --- |
//! | `GET /_emulator/` | | `{"knobs": {...}, "faults": [...], "request_count": n}` |
//! | `GET /_emulator/knobs` | | every knob, plus `latency` and `rate_limit` |
//! | `PATCH /_emulator/knobs` | any subset of the knobs | sets them, replies with all of them |
//! | `GET /_emulator/faults` | | armed faults: `[{"id", "remaining", "rule"}]` |
//! | `POST /_emulator/faults` | one rule or a list of rules | arms them, 201 `{"ids": [...]}` |
//! | `DELETE /_emulator/faults` | | disarms every fault, 204 |
//! | `GET /_emulator/requests?since=SEQ` | | `{"requests": [RequestRecord...], "dropped": n}` |
//! | `DELETE /_emulator/requests` | | empties the request log, 204 |
//! | `GET /_emulator/state` | | the whole state, as the state file holds it |
//! | `POST /_emulator/reset` | | forgets every prompt and preset (persisted), 204 |
//!
//! Knobs (`PATCH /_emulator/knobs`; respan-api.md 4.13, defaults first):
//! `commit_mode` (`freeze` / `bump`), `deploy_draft` (`reject` / `auto_commit`),
//! `edit_readonly` (`reject` / `fork`), `delete_live` (`reject` / `allow`),
//! `create_deploy` (`reject` / `commit_and_deploy`), `count_mode` (`page` / `total`),
//! `legacy_prompt_deploy` (`false` / `true`), `require_model` (`false` / `true`),
//! `fill_defaults` (`standard` / `alternate`: temperature 1.0, max_tokens 1024, and
//! string message content stored as `[{"type": "text", "text": ...}]`),
//! `latency` (`{"fixed_ms": 0, "jitter_ms": 0}`), and `rate_limit` (`null` or
//! `{"requests": N, "window_ms": 1000}`: a fixed window; over it, 429 with
//! `Retry-After`).
//!
//! A fault rule (`POST /_emulator/faults`) acts on the next `times` (default 1) API
//! requests whose method (`method`, default `*`) and path (`path`, a glob where `*`
//! stays within a segment and `**` spans segments; default `/api/**`; the query is
//! not matched) match; rules are tried in the order armed. `kind` is one of:
//!
//! - `status`: reply `status` (400–599) without running the request; a 429 carries
//!   `Retry-After: retry_after` (default 1) and `retry_after` in the body; other
//!   statuses carry `Retry-After` only when `retry_after` is given. With
//!   `"after_apply": true` the request runs (and is persisted) first.
//! - `drop_before`: close the connection with no reply; nothing is applied.
//! - `drop_after`: apply the request, then close the connection with no reply.
//! - `delay`: wait `delay_ms` more, then reply normally.
//! - `rewrite`: run the request, then change its JSON reply at `pointer` (a JSON
//!   pointer, e.g. `/results/0/version`): put `value` there, or remove the key (or
//!   array item) when `value` is absent.
//!
//! Hostile kinds, for a client's defences; none of them runs the request:
//!
//! - `endless_pages`: a list page (`count`, `next`, `previous`, `results`) whose `next`
//!   always links the following page. Its items are synthetic (`id`, `prompt_id`,
//!   `name`, an integer `version`), `page_size` of them (default 100, at most 500).
//!   By default every page repeats the first page's items; `"fresh": true` gives new
//!   ids on every page. `count` is the page's own item count unless the rule gives
//!   `"count": N` (a claimed total).
//! - `huge_body`: 200 `application/json` with a body of `bytes` bytes (default
//!   1,500,000,000) that is one valid list envelope once complete (one item whose
//!   `description` is `x` repeated). Generated while sent, never held in memory;
//!   chunked (no length) unless `"declare_length": true` sends `Content-Length`.
//! - `garbage_json`: 200 `application/json` whose body is broken JSON.
//! - `html`: 200 `text/html` with a small "Sign in" page (a captive portal or proxy).
//! - `trickle`: 200 `application/json` at once, then the body (an empty list page
//!   padded with leading spaces to `bytes`, default 65,536) one byte every
//!   `interval_ms` (default 100): no single read is slow, the whole body is.
//! - `redirect`: `status` (300–399, default 302) with `Location: location` (default
//!   `/api/moved/`; any other path or an absolute URL on another host).
//!
//! A parameter given with a kind it does not belong to is refused (400).
//!
//! Examples: `{"method": "POST", "path": "/api/prompts/*/versions/", "kind": "status",
//! "status": 503, "times": 2}`; `{"method": "POST", "path": "/api/prompts/list/",
//! "kind": "endless_pages", "fresh": true, "times": 1000}`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::App;
use super::faults::{FaultRule, Latency, RateLimit};
use super::paging;
use super::persist;
use super::reply::Failure;

pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/_emulator/", get(overview))
        .route("/_emulator/knobs", get(get_knobs).patch(patch_knobs))
        .route(
            "/_emulator/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route(
            "/_emulator/requests",
            get(read_requests).delete(clear_requests),
        )
        .route("/_emulator/state", get(state))
        .route("/_emulator/reset", axum::routing::post(reset))
}

fn bad(message: impl Into<String>) -> Failure {
    Failure::bad_request(message)
}

fn parse(bytes: &Bytes) -> Result<Value, Failure> {
    serde_json::from_slice(bytes).map_err(|e| bad(format!("the body is not JSON: {e}")))
}

/// Every knob with `latency` and `rate_limit`, as one object.
fn knobs_view(app: &App) -> Value {
    let mut view = serde_json::to_value(app.knobs()).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut view {
        map.insert("latency".into(), json!(app.faults.latency()));
        map.insert("rate_limit".into(), json!(app.faults.rate_limit()));
    }
    view
}

/// Apply a knob patch: everything is checked before anything is set.
pub(crate) fn apply_knobs(app: &App, patch: Map<String, Value>) -> Result<(), String> {
    let mut knob_patch = Map::new();
    let mut latency = None;
    let mut rate_limit = None;
    for (key, value) in patch {
        match key.as_str() {
            "latency" => {
                let parsed: Latency =
                    serde_json::from_value(value).map_err(|e| format!("invalid `latency`: {e}"))?;
                latency = Some(parsed);
            }
            "rate_limit" => {
                let parsed: Option<RateLimit> = serde_json::from_value(value)
                    .map_err(|e| format!("invalid `rate_limit`: {e}"))?;
                rate_limit = Some(parsed);
            }
            _ => {
                knob_patch.insert(key, value);
            }
        }
    }
    let knobs = app.knobs().patched(&knob_patch)?;
    if let Some(rate_limit) = rate_limit {
        app.faults.set_rate_limit(rate_limit)?;
    }
    if let Some(latency) = latency {
        app.faults.set_latency(latency);
    }
    app.set_knobs(knobs);
    tracing::info!(?knobs, "emulator knobs set");
    Ok(())
}

async fn overview(State(app): State<Arc<App>>) -> Json<Value> {
    let (records, dropped) = app.log.read(0);
    Json(json!({
        "knobs": knobs_view(&app),
        "faults": app.faults.list(),
        "request_count": records.len() as u64 + dropped,
    }))
}

async fn get_knobs(State(app): State<Arc<App>>) -> Json<Value> {
    Json(knobs_view(&app))
}

async fn patch_knobs(State(app): State<Arc<App>>, bytes: Bytes) -> Result<Json<Value>, Failure> {
    let Value::Object(patch) = parse(&bytes)? else {
        return Err(bad("the body must be an object of knob names to values"));
    };
    apply_knobs(&app, patch).map_err(bad)?;
    Ok(Json(knobs_view(&app)))
}

async fn list_faults(State(app): State<Arc<App>>) -> Json<Value> {
    Json(Value::Array(app.faults.list()))
}

async fn add_faults(State(app): State<Arc<App>>, bytes: Bytes) -> Result<Response, Failure> {
    let rules: Vec<FaultRule> = match parse(&bytes)? {
        Value::Array(items) => items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>(),
        single => serde_json::from_value(single).map(|rule| vec![rule]),
    }
    .map_err(|e| bad(format!("invalid fault rule: {e}")))?;
    for rule in &rules {
        tracing::info!(?rule, "arming fault");
    }
    let ids = app.faults.add_all(rules).map_err(bad)?;
    Ok((StatusCode::CREATED, Json(json!({ "ids": ids }))).into_response())
}

async fn clear_faults(State(app): State<Arc<App>>) -> StatusCode {
    app.faults.clear();
    StatusCode::NO_CONTENT
}

async fn read_requests(
    State(app): State<Arc<App>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, Failure> {
    let query = paging::parse_query(raw.as_deref());
    let since = match paging::query_value(&query, "since") {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| bad(format!("`since` must be a sequence number, not `{text}`")))?,
    };
    let (records, dropped) = app.log.read(since);
    Ok(Json(json!({ "requests": records, "dropped": dropped })))
}

async fn clear_requests(State(app): State<Arc<App>>) -> StatusCode {
    app.log.clear();
    StatusCode::NO_CONTENT
}

async fn state(State(app): State<Arc<App>>) -> Result<Response, Failure> {
    let bytes = persist::encode(&app.store()).map_err(|e| Failure::detail(500, e.to_string()))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response())
}

async fn reset(State(app): State<Arc<App>>) -> Result<StatusCode, Failure> {
    let generation = {
        let mut store = app.store();
        store.reset();
        store.generation()
    };
    app.persisted(generation)
        .await
        .map_err(|reason| Failure::detail(500, reason))?;
    Ok(StatusCode::NO_CONTENT)
}
