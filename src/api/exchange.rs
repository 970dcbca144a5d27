//! One HTTP exchange and what it came to: the answer's body read within its bound, a
//! failure put in plain words (what happened and where, never a library's type name),
//! and the next step (done, failed for good, try again). Knows nothing about what the
//! request was for.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::decode::DecodeError;
use super::error::{ApiError, Target, error_detail};
use super::retry::{AttemptTime, Step, retry_after};

/// Of a non-2xx answer only the start is read: 1 MiB, room for a bulk 422 that lists
/// an error for each of its 100 items (the detail shown is 300 characters anyway).
pub(crate) const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;

/// Whether resending a request whose outcome is unknown could do the change twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Reads, PATCH, deploy: sending again leaves the same state.
    Safe,
    /// Creates and commits: the caller must re-read before sending again.
    Unsafe,
}

/// A 2xx answer: its headers and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// One HTTP exchange, before interpretation.
#[derive(Debug)]
pub(crate) enum Exchange {
    Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    /// The request was not sent: no connection could be made ([`ApiError::Connect`]),
    /// or a pause lasts past the request's deadline ([`ApiError::RateLimited`]).
    NotSent(ApiError),
    /// Sent, but no complete answer came back: why, from [`describe`].
    Lost(String),
    /// A 2xx whose body is over its limit ([`ApiError::TooLarge`]).
    TooLarge(ApiError),
}

/// Read an answer's body in chunks, within `limit` for a 2xx (refused at once when its
/// `Content-Length` is over) and [`MAX_ERROR_BODY_BYTES`] otherwise (cut there: only
/// its start is shown). Dropping the response mid-body closes the connection, so the
/// rest is never read.
pub(crate) async fn read_answer(
    target: &Target,
    mut response: reqwest::Response,
    limit: usize,
    time: AttemptTime,
) -> Exchange {
    let status = response.status();
    let headers = response.headers().clone();
    let success = status.is_success();
    let limit = if success { limit } else { MAX_ERROR_BODY_BYTES };
    let too_large = |declared| {
        Exchange::TooLarge(ApiError::TooLarge {
            target: target.clone(),
            limit: limit as u64,
            declared,
        })
    };
    let declared = response.content_length();
    if success && declared.is_some_and(|length| length > limit as u64) {
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
            Err(err) => return Exchange::Lost(describe(&err, time)),
        }
    }
    Exchange::Answer {
        status,
        headers,
        body,
    }
}

/// A failed connection, classified: refused and unknown hosts fail fast.
pub(crate) fn connect_error(
    target: &Target,
    base: &str,
    err: &reqwest::Error,
    time: AttemptTime,
    connect_timeout: Duration,
) -> ApiError {
    let refused = causes(err).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    let (cause, fails_fast) = if refused {
        ("connection refused".to_owned(), true)
    } else if err.is_dns() && !err.is_timeout() {
        let innermost = causes(err).last().map(ToString::to_string);
        let detail = innermost
            .map(|text| format!(": {text}"))
            .unwrap_or_default();
        (format!("the host name does not resolve{detail}"), true)
    } else if err.is_timeout() {
        let limit = connect_timeout.min(time.limit);
        let name = if connect_timeout <= time.limit {
            "api.connect_timeout"
        } else {
            "what was left of the retry budget"
        };
        (
            format!(
                "timed out after {} ({name})",
                humantime::format_duration(limit)
            ),
            false,
        )
    } else {
        (describe(err, time), false)
    };
    ApiError::Connect {
        target: target.clone(),
        base: base.to_owned(),
        cause,
        fails_fast,
    }
}

/// Turn an exchange into the next step: a 2xx answer, failed for good, or try again.
pub(crate) fn interpret(target: &Target, exchange: Exchange, resend: Resend) -> Step<Answer> {
    let (status, headers, body) = match exchange {
        Exchange::NotSent(error @ ApiError::RateLimited { .. }) => return Step::Fail(error),
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
        200..=299 => Step::Done(Answer { headers, body }),
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
            after: Some(retry_after(&headers, &body).unwrap_or(Duration::from_secs(1))),
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
    after: Option<Duration>,
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

/// A 2xx body that did not decode, as an error that says what was expected and what
/// came: the parser's reason and how the body starts, or, when it is not JSON at all
/// (an HTML login page), what it is instead.
pub(crate) fn undecodable(
    target: &Target,
    answer: &Answer,
    expected: &str,
    error: DecodeError,
) -> ApiError {
    let reason = match error {
        DecodeError::Json(err) => {
            let content_type = answer
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no Content-Type");
            let start = body_start(&answer.body);
            if content_type.contains("json") || start.starts_with(['{', '[']) {
                // serde names what it expected when the type was wrong; say it once.
                let said = err.to_string();
                if said.contains(expected) {
                    format!("{said} (the body starts `{start}`)")
                } else {
                    format!("expected {expected}: {said} (the body starts `{start}`)")
                }
            } else {
                format!(
                    "expected JSON, got {content_type} starting `{start}`; is \
                     RESPAN_BASE_URL (api.base_url) the Respan API, not a proxy or a \
                     login page?"
                )
            }
        }
        DecodeError::NotAPage(what) => format!(
            "expected {expected} (an object with `results`, a list, and `next`), got \
             {what} (the body starts `{}`)",
            body_start(&answer.body)
        ),
        DecodeError::TooManyItems { size } => format!(
            "expected {expected} of at most {size} items, as asked, got more; promptsync \
             stopped reading it"
        ),
        DecodeError::TooManyValues { budget } => format!(
            "expected {expected}, got one of more than {budget} JSON values, more than it \
             can need; promptsync stopped reading it"
        ),
    };
    ApiError::Decode {
        target: target.clone(),
        reason,
    }
}

/// The first characters of a body, on one line.
fn body_start(body: &[u8]) -> String {
    const SHOWN: usize = 60;
    let text = String::from_utf8_lossy(&body[..body.len().min(SHOWN * 4)]);
    let start: String = text.trim_start().chars().take(SHOWN).collect();
    crate::term::line(&start).into_owned()
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

pub(crate) fn rejected(target: &Target, status: StatusCode, body: &[u8]) -> ApiError {
    ApiError::Rejected {
        target: target.clone(),
        status: status.as_u16(),
        detail: error_detail(body),
    }
}

/// The causes of an error, innermost last.
fn causes(err: &reqwest::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(std::error::Error::source(err), |e| e.source())
}

/// What became of a request that got no complete answer, in plain words: which
/// timeout ran out, or what the connection did. The URL is not repeated (the target
/// names it), and the HTTP libraries' own wording ("client error (SendRequest)",
/// "error sending request") is left out: only what happened is said.
pub(crate) fn describe(err: &reqwest::Error, time: AttemptTime) -> String {
    if err.is_timeout() {
        let name = if time.shortened {
            "what was left of the retry budget, api.retry_max_elapsed"
        } else {
            "api.timeout, for the request and its whole reply"
        };
        return format!("timed out after {} ({name})", millis(time.limit));
    }
    // The most concrete cause: what the socket said, else a message of the HTTP
    // library in plain words, else the innermost cause that says anything.
    let what = causes(err)
        .find_map(io_cause)
        .or_else(|| causes(err).find_map(known_cause))
        .or_else(|| causes(err).filter_map(other_cause).last());
    let broke_off = err.is_body() || err.is_decode();
    match (what, broke_off) {
        (Some(what), true) => format!("the reply broke off: {what}"),
        (Some(what), false) => format!("no reply: {what}"),
        (None, true) => "the reply broke off before its end".to_owned(),
        (None, false) => "no reply: the connection failed".to_owned(),
    }
}

/// What the socket said, in plain words.
fn io_cause(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    use std::io::ErrorKind;
    let io = cause.downcast_ref::<std::io::Error>()?;
    let said = match io.kind() {
        ErrorKind::ConnectionReset => "the connection was reset",
        ErrorKind::ConnectionAborted => "the connection was aborted",
        ErrorKind::BrokenPipe => "the connection broke",
        ErrorKind::UnexpectedEof => "the connection ended early",
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::TimedOut => return None,
        _ => return Some(io.to_string()),
    };
    Some(said.to_owned())
}

/// A message of the HTTP library, in plain words.
fn known_cause(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    const KNOWN: [(&str, &str); 6] = [
        (
            "connection closed before message completed",
            "the server closed the connection before it answered",
        ),
        (
            "end of file before message length reached",
            "the connection ended before the whole reply came",
        ),
        ("incomplete message", "the reply was cut off"),
        (
            "invalid HTTP",
            "the server did not answer in HTTP (is it an HTTP server?)",
        ),
        (
            "message head is too large",
            "the reply's headers are too large",
        ),
        (
            "unexpected message",
            "the server sent an answer nobody asked for",
        ),
    ];
    let text = cause.to_string();
    KNOWN
        .iter()
        .find(|(seen, _)| text.contains(seen))
        .map(|(_, said)| (*said).to_owned())
}

/// Any other cause, unless it is a wrapper that says nothing itself.
fn other_cause(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    const WRAPPERS: [&str; 8] = [
        "client error (",
        "error sending request",
        "request or response body error",
        "error trying to connect",
        "error reading a body",
        "operation timed out",
        "error decoding response body",
        "connection error",
    ];
    let text = cause.to_string();
    (!text.is_empty() && !WRAPPERS.iter().any(|w| text.starts_with(w))).then_some(text)
}

/// A duration to the millisecond, as people write it (`1s`, `814ms`).
fn millis(duration: Duration) -> String {
    let rounded = Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
    humantime::format_duration(rounded).to_string()
}
