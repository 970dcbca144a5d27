//! Hostile replies, for tests of a client's defences: paging that never ends, a body
//! too large to hold, a body that is not JSON (garbage, or an HTML page with status
//! 200), a body that trickles in slower than any timeout, and a redirect. They are
//! armed as fault rules (the `faults` module matches them to requests). Bodies are
//! generated while they are sent: a 1.5 GB body costs the emulator one static 64 KiB
//! buffer, never the body's size. Knows the paging envelope, nothing of prompts.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};

use super::paging::{Query, query_value};

/// Size of a `huge_body` unless the rule gives `bytes`: 1.5 GB.
pub(crate) const HUGE_BODY_BYTES: u64 = 1_500_000_000;
/// Size of a `trickle` body unless the rule gives `bytes`: 64 KiB.
pub(crate) const TRICKLE_BYTES: u64 = 64 * 1024;
/// Pause between two bytes of a `trickle` body unless the rule gives `interval_ms`.
pub(crate) const TRICKLE_INTERVAL_MS: u64 = 100;
/// `Location` of a `redirect` unless the rule gives one.
pub(crate) const REDIRECT_LOCATION: &str = "/api/moved/";

/// Items on an endless page when the request names no `page_size`, and at most.
const ENDLESS_PAGE_SIZE: usize = 100;
const ENDLESS_MAX_PAGE_SIZE: usize = 500;

/// Filler of a huge body, sent again and again.
static FILLER: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// One page of a listing that never ends: `next` always links the following page.
/// Items are synthetic, shaped to pass as prompts and as versions (`id`, `prompt_id`,
/// `name`, an integer `version`). `fresh`: every page has new ids; otherwise every
/// page repeats the first. `count`: the total every page claims; by default the
/// page's own item count (respan-api.md 2.5).
pub(crate) fn endless_page(base: &str, query: &Query, fresh: bool, count: Option<u64>) -> Response {
    let page = query_value(query, "page")
        .and_then(|p| p.parse::<u64>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let size = query_value(query, "page_size")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|s| *s >= 1)
        .map_or(ENDLESS_PAGE_SIZE, |s| s.min(ENDLESS_MAX_PAGE_SIZE));
    let shown = if fresh { page } else { 1 };
    let results: Vec<Value> = (0..size as u64)
        .map(|i| {
            let id = format!("endless_{shown}_{i}");
            json!({
                "id": id,
                "prompt_id": id,
                "prompt_version_id": id,
                "name": format!("Endless {shown}.{i}"),
                "version": (shown - 1) * size as u64 + i + 1,
                "readonly": true,
            })
        })
        .collect();
    let link = |number: u64| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in query.iter().filter(|(k, _)| k != "page") {
            serializer.append_pair(key, value);
        }
        serializer.append_pair("page", &number.to_string());
        format!("{base}?{}", serializer.finish())
    };
    let body = json!({
        "count": count.unwrap_or(results.len() as u64),
        "next": link(page + 1),
        "previous": (page > 1).then(|| link(page - 1)),
        "results": results,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// A 200 whose body is `bytes` long (at least its JSON frame): one list envelope with
/// one item whose `description` is `x` repeated, valid JSON once complete. Sent
/// chunked, or with `Content-Length` when `declare_length`.
pub(crate) fn huge_body(bytes: u64, declare_length: bool) -> Response {
    const HEAD: &[u8] = br#"{"count": 1, "next": null, "previous": null, "results": [{"id": "huge", "prompt_id": "huge", "name": "Huge", "version": 1, "description": ""#;
    const TAIL: &[u8] = br#""}]}"#;
    let frame = (HEAD.len() + TAIL.len()) as u64;
    let filler = bytes.saturating_sub(frame);
    let chunk = FILLER.len() as u64;
    let full = filler / chunk;
    let rest = usize::try_from(filler % chunk).unwrap_or(0);
    let chunks = std::iter::once(Bytes::from_static(HEAD))
        .chain((0..full).map(|_| Bytes::from_static(&FILLER)))
        .chain((rest > 0).then(|| Bytes::from_static(&FILLER[..rest])))
        .chain(std::iter::once(Bytes::from_static(TAIL)))
        .map(Ok::<_, Infallible>);
    let mut response = json_response(Body::from_stream(stream::iter(chunks)));
    if declare_length {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(filler + frame));
    }
    response
}

/// A 200 with `Content-Type: application/json` whose body is broken JSON.
pub(crate) fn garbage_json() -> Response {
    json_response(Body::from(
        r#"{"count": 2, "next": null, "results": [{"id": "prm_1", "name": "Garbage"},, {"id": }"#,
    ))
}

/// A 200 with an HTML page, as a captive portal or a login proxy sends it.
pub(crate) fn html_page() -> Response {
    let page = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\
                <body><h1>Sign in to continue</h1><form method=\"post\"></form></body></html>\n";
    let mut response = (StatusCode::OK, page).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A 200 whose headers come at once and whose body (an empty list page, padded with
/// leading spaces to `bytes`) then arrives one byte per `interval`.
pub(crate) fn trickle(bytes: u64, interval: Duration) -> Response {
    const PAGE: &[u8] = br#"{"count": 0, "next": null, "previous": null, "results": []}"#;
    let padding = bytes.saturating_sub(PAGE.len() as u64);
    let body = (0..padding).map(|_| b' ').chain(PAGE.iter().copied());
    let dribble = stream::iter(body).then(move |byte| async move {
        tokio::time::sleep(interval).await;
        Ok::<_, Infallible>(Bytes::from(vec![byte]))
    });
    json_response(Body::from_stream(dribble))
}

/// A redirect (`status` 300 to 399) to `location`.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn json_response(body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
