//! Page-number pagination as Django REST framework does it (respan-api.md 2.5):
//! `page` from 1 (or `last`), `page_size` clamped to the endpoint's maximum, 404
//! `Invalid page.` past the last page (page 1 of nothing is an empty page), and
//! absolute `next` / `previous` links that keep the other query parameters. Pure.

use std::ops::Range;

use axum::http::{HeaderMap, header};
use serde::Serialize;
use serde_json::Value;

use super::App;
use super::knobs::CountMode;
use super::reply::Failure;

/// The query of a request, decoded, in order.
pub(crate) type Query = Vec<(String, String)>;

pub(crate) fn parse_query(raw: Option<&str>) -> Query {
    raw.map(|raw| {
        url::form_urlencoded::parse(raw.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

pub(crate) fn query_value<'a>(query: &'a Query, key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The page a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRequest {
    /// `None` for `page=last`.
    page: Option<usize>,
    size: usize,
}

fn invalid_page() -> Failure {
    Failure::detail(404, "Invalid page.")
}

/// Read `page` and `page_size`. A bad `page_size` falls back to the default (DRF).
pub(crate) fn page_request(
    query: &Query,
    default_size: usize,
    max_size: usize,
) -> Result<PageRequest, Failure> {
    let page = match query_value(query, "page") {
        None => Some(1),
        Some("last") => None,
        Some(text) => match text.parse::<usize>() {
            Ok(page) if page >= 1 => Some(page),
            _ => return Err(invalid_page()),
        },
    };
    let size = query_value(query, "page_size")
        .and_then(|text| text.parse::<usize>().ok())
        .filter(|size| *size >= 1)
        .map_or(default_size, |size| size.min(max_size));
    Ok(PageRequest { page, size })
}

/// One page of `total` items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub range: Range<usize>,
    number: usize,
    pages: usize,
    total: usize,
}

pub(crate) fn window(total: usize, request: PageRequest) -> Result<Page, Failure> {
    let pages = total.div_ceil(request.size).max(1);
    let number = request.page.unwrap_or(pages);
    if number > pages {
        return Err(invalid_page());
    }
    let start = (number - 1) * request.size;
    let end = (start + request.size).min(total);
    Ok(Page {
        range: start..end,
        number,
        pages,
        total,
    })
}

/// The envelope `{count, next, previous, results}` (and a list's extra keys after
/// them). Serialized straight from the page's items: a page of prompts is written
/// without building a JSON tree of it first.
#[derive(Debug, Serialize)]
pub(crate) struct Envelope<T> {
    pub count: usize,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
    /// The presets list's `current_filters` (`{}`); absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_filters: Option<Value>,
}

/// The envelope of `page`. `base` is the absolute URL of the
/// request without its query.
pub(crate) fn envelope<T>(
    results: Vec<T>,
    page: &Page,
    count_mode: CountMode,
    base: &str,
    query: &Query,
) -> Envelope<T> {
    let link = |number: usize| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in query.iter().filter(|(k, _)| k != "page") {
            serializer.append_pair(key, value);
        }
        if number > 1 {
            serializer.append_pair("page", &number.to_string());
        }
        let query = serializer.finish();
        if query.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{query}")
        }
    };
    let next = (page.number < page.pages).then(|| link(page.number + 1));
    let previous = (page.number > 1).then(|| link(page.number - 1));
    let count = match count_mode {
        CountMode::Page => results.len(),
        CountMode::Total => page.total,
    };
    Envelope {
        count,
        next,
        previous,
        results,
        current_filters: None,
    }
}

/// The absolute URL of this request without its query, for paging links.
pub(crate) fn request_base(headers: &HeaderMap, path: &str, app: &App) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| app.addr.to_string(), str::to_owned);
    format!("http://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(raw: &str) -> Result<PageRequest, Failure> {
        page_request(&parse_query(Some(raw)), 25, 100)
    }

    #[test]
    fn sizes_default_clamp_and_fall_back() {
        assert_eq!(request("").unwrap().size, 25);
        assert_eq!(request("page_size=500").unwrap().size, 100);
        assert_eq!(request("page_size=0").unwrap().size, 25);
        assert_eq!(request("page_size=lots").unwrap().size, 25);
        assert_eq!(request("page_size=7").unwrap().size, 7);
    }

    #[test]
    fn pages_past_the_end_are_invalid_but_an_empty_first_page_is_not() {
        for bad in ["page=0", "page=-1", "page=two"] {
            assert_eq!(
                request(bad).unwrap_err(),
                Failure::detail(404, "Invalid page."),
                "{bad}"
            );
        }
        assert_eq!(window(0, request("").unwrap()).unwrap().range, 0..0);
        assert!(window(0, request("page=2").unwrap()).is_err());
        assert_eq!(
            window(30, request("page=2").unwrap()).unwrap().range,
            25..30
        );
        assert!(window(30, request("page=3").unwrap()).is_err());
        assert_eq!(
            window(30, request("page=last&page_size=10").unwrap())
                .unwrap()
                .range,
            20..30
        );
    }

    #[test]
    fn links_keep_other_parameters_and_count_follows_the_knob() {
        let query = parse_query(Some("page=2&page_size=10&sort_by=-id"));
        let page = window(35, page_request(&query, 25, 100).unwrap()).unwrap();
        let results = vec![json!(1); 10];
        let base = "http://127.0.0.1:1/api/prompts/list/";
        let body = json!(envelope(
            results.clone(),
            &page,
            CountMode::Page,
            base,
            &query
        ));
        assert_eq!(body["count"], json!(10));
        assert_eq!(
            body["next"],
            json!("http://127.0.0.1:1/api/prompts/list/?page_size=10&sort_by=-id&page=3")
        );
        assert_eq!(
            body["previous"],
            json!("http://127.0.0.1:1/api/prompts/list/?page_size=10&sort_by=-id")
        );
        let body = json!(envelope(results, &page, CountMode::Total, base, &query));
        assert_eq!(body["count"], json!(35));
        let last = window(
            35,
            page_request(&parse_query(Some("page=4&page_size=10")), 25, 100).unwrap(),
        )
        .unwrap();
        let body = json!(envelope(
            Vec::<Value>::new(),
            &last,
            CountMode::Page,
            base,
            &Query::new()
        ));
        assert_eq!(body["next"], Value::Null);
    }
}
