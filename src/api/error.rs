//! Errors of the API client, and the one classification of them ([`ApiError::class`]):
//! what the caller does next (wait for a change, retry later), and whether the whole
//! run must stop ([`ApiError::stops_run`]: every other request would fail the same
//! way). Messages say what happened and where (method and path, what was expected,
//! what came) and what to do; never a library's type name, never the key.

use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use crate::failure::FailureClass;

/// Method and path of a request, for messages and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub method: &'static str,
    pub path: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

#[derive(Debug, Clone, Error)]
pub enum ApiError {
    /// No key was configured.
    #[error(
        "no API key: set RESPAN_API_KEY, or api.api_key_file (PROMPTSYNC_API__API_KEY_FILE, \
         or a --config file outside the repository) to a file that holds it (or add \
         --emulator to try promptsync on a local emulator)"
    )]
    MissingKey,

    /// The HTTP client could not be built (TLS setup, bad header).
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),

    /// 401/403: the key is wrong, revoked or lacks rights. Needs a person.
    #[error(
        "the API refused the key ({target} answered {status}: {detail}); \
         check RESPAN_API_KEY or api_key_file"
    )]
    Unauthorized {
        target: Target,
        status: u16,
        detail: String,
    },

    /// A 4xx other than 401/403/429, or a 5xx that is not transient: the request
    /// itself was refused. Not retried.
    #[error("{target} answered {status}: {detail}")]
    Rejected {
        target: Target,
        status: u16,
        detail: String,
    },

    /// A failure worth retrying (a timeout, a lost reply, a 5xx) of a request that is
    /// harmless to send again (it only reads, or sending it twice changes nothing).
    /// A connection that could not be made at all is [`ApiError::Connect`].
    #[error("{target}: {cause}")]
    Transient { target: Target, cause: String },

    /// No connection could be made, so nothing reached the server: the host name does
    /// not resolve, the connection was refused, or connecting failed otherwise.
    /// `fails_fast`: retrying cannot help soon (refused, unknown host), so the retry
    /// budget is short. `base` is the API's host root; the message shows base and path
    /// (never the key, which is not part of a URL here).
    #[error(
        "{} {base}{}: cannot connect ({cause}); check RESPAN_BASE_URL (api.base_url) \
         and the network",
        target.method,
        target.path
    )]
    Connect {
        target: Target,
        base: String,
        cause: String,
        fails_fast: bool,
    },

    /// Transient failures went on past the retry budget. `last` names the request;
    /// `budget` says which budget ran out and where it comes from.
    #[error(
        "gave up after {attempts} attempt(s) in {:.1}s (retry budget {budget}); last error: {last}",
        elapsed.as_secs_f64()
    )]
    GaveUp {
        target: Target,
        attempts: u32,
        elapsed: Duration,
        budget: String,
        last: String,
    },

    /// A change request got no answer (timeout, connection lost, or a 5xx) and may or
    /// may not have been applied. Callers re-read the remote before sending it again.
    #[error("{target}: {cause}; the server may or may not have applied it")]
    OutcomeUnknown { target: Target, cause: String },

    /// The request was not sent because an earlier one stalled the run.
    #[error("not attempted: {0}")]
    NotAttempted(String),

    /// A 2xx answer whose body is not what the contract describes.
    #[error("{target}: unexpected response body: {reason}")]
    Decode { target: Target, reason: String },

    /// A 2xx answer whose body is larger than promptsync reads: it declared a
    /// `Content-Length` over the limit, or sent more than the limit. Not retried.
    #[error(
        "{target}: the reply is larger than the limit of {} MiB{}; promptsync stopped \
         reading it",
        limit / (1024 * 1024),
        declared.map(|n| format!(" (it declared {n} bytes)")).unwrap_or_default()
    )]
    TooLarge {
        target: Target,
        limit: u64,
        declared: Option<u64>,
    },

    /// A 3xx: the API never redirects, so the base URL points somewhere else (a
    /// proxy, a login page, an old host). Not followed; needs a person.
    #[error(
        "{target} answered {status}, a redirect to {location}; the Respan API never \
         redirects and promptsync does not follow: check RESPAN_BASE_URL (api.base_url)"
    )]
    Redirected {
        target: Target,
        status: u16,
        location: String,
    },

    /// A paged listing that does not end as the contract says (respan-api.md 2.5):
    /// `next` set forever, the same page again, more pages than any account has, or
    /// more in all than promptsync holds.
    #[error("{target}: {problem}")]
    Paging { target: Target, problem: String },

    /// Replies past what promptsync holds of them together (`api::held`): a listing
    /// of too many pages' worth, or a pass that read too much. Not retried.
    #[error("{target}: {problem}")]
    TooMuch { target: Target, problem: String },

    /// The server asked to wait (a 429's `Retry-After`) longer than the retry budget
    /// allows: the request fails at once instead of waiting.
    #[error("{target}: {limit}")]
    RateLimited {
        target: Target,
        limit: Box<RateLimit>,
    },

    /// A prompt id that cannot be put in a request path (`.`, `..`, empty): refused
    /// before anything is sent.
    #[error(
        "prompt id {id:?} cannot be put in a request path (`.` and `..` would name \
         other paths); nothing was sent for it"
    )]
    BadId { id: String },
}

/// What a server's `Retry-After` came to for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// The server's wait, as said (`1h`, `until 2099-01-01T00:00:00Z`).
    pub asked: String,
    /// When requests go out again (RFC 3339).
    pub resume: String,
    /// The retry budget, named.
    pub budget: String,
    /// This request was answered 429; otherwise an earlier answer set the pause and
    /// this one was not sent.
    pub sent: bool,
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = if self.sent {
            "answered 429 (rate limited) and"
        } else {
            "not sent: the API"
        };
        write!(
            f,
            "{who} asked to wait {}, past the retry budget ({}); rate limited until {}",
            self.asked, self.budget, self.resume
        )
    }
}

impl ApiError {
    /// What to do next: the one classification of API failures (`crate::failure`),
    /// used for a pass that ended with this error and for a prompt that failed with it.
    /// A request the server refused for what it is (400, 404, 422), or a reply that is
    /// not what the contract says, stalls: sending it again cannot help until
    /// something changes. A busy or unreachable server, a lost reply or a server that
    /// asked to wait is transient.
    pub fn class(&self) -> FailureClass {
        match self {
            ApiError::MissingKey
            | ApiError::Setup(_)
            | ApiError::Unauthorized { .. }
            | ApiError::Redirected { .. }
            | ApiError::Decode { .. }
            | ApiError::TooLarge { .. }
            | ApiError::Paging { .. }
            | ApiError::TooMuch { .. }
            | ApiError::BadId { .. } => FailureClass::Stalled,
            ApiError::Rejected { status, .. } => match status {
                408 | 409 | 425 | 429 | 500..=599 => FailureClass::Transient,
                _ => FailureClass::Stalled,
            },
            ApiError::Transient { .. }
            | ApiError::Connect { .. }
            | ApiError::GaveUp { .. }
            | ApiError::OutcomeUnknown { .. }
            | ApiError::RateLimited { .. }
            | ApiError::NotAttempted(_) => FailureClass::Transient,
        }
    }

    /// Errors that no other prompt can get past: the run stops. They come from the
    /// key or the base URL (a redirect), so every other request would get them too.
    pub fn stops_run(&self) -> bool {
        matches!(
            self,
            ApiError::MissingKey
                | ApiError::Setup(_)
                | ApiError::Unauthorized { .. }
                | ApiError::Redirected { .. }
        )
    }

    /// A connection failure that retrying cannot mend soon (refused, unknown host).
    pub fn fails_fast(&self) -> bool {
        matches!(
            self,
            ApiError::Connect {
                fails_fast: true,
                ..
            }
        )
    }

    /// The message without the request it names, for log lines that give the
    /// request in their own fields.
    pub(crate) fn reason(&self) -> String {
        match self {
            ApiError::Connect { base, cause, .. } => {
                format!("cannot connect to {base} ({cause})")
            }
            ApiError::Transient { cause, .. } => cause.clone(),
            ApiError::Rejected { status, detail, .. } => format!("answered {status}: {detail}"),
            other => other.to_string(),
        }
    }

    /// The HTTP status of a refused request.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Unauthorized { status, .. } | ApiError::Rejected { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// The human part of an error body: `detail`, a DRF field map, `error` (string or
/// OpenAI-style object), or the raw text, shortened.
pub(crate) fn error_detail(body: &[u8]) -> String {
    const MAX: usize = 300;
    let parsed = super::decode::small::<super::decode::BoundedValue>(body).map(|v| v.0);
    let detail = match parsed {
        Some(Value::Object(map)) => {
            if let Some(Value::String(detail)) = map.get("detail") {
                detail.clone()
            } else if let Some(error) = map.get("error") {
                match error {
                    Value::String(s) => s.clone(),
                    Value::Object(e) => e
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| error.to_string(), str::to_owned),
                    other => other.to_string(),
                }
            } else {
                map.iter()
                    .map(|(field, msgs)| format!("{field}: {}", flatten_messages(msgs)))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        }
        Some(other) => other.to_string(),
        None => String::from_utf8_lossy(body).trim().to_owned(),
    };
    if detail.is_empty() {
        return "(empty body)".to_owned();
    }
    match detail.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &detail[..cut]),
        None => detail,
    }
}

fn flatten_messages(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(flatten_messages)
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_come_from_every_documented_body_shape() {
        assert_eq!(error_detail(br#"{"detail": "Not found."}"#), "Not found.");
        assert_eq!(
            error_detail(br#"{"messages": ["This list may not be empty."], "temperature": "bad"}"#),
            "messages: This list may not be empty.; temperature: bad"
        );
        assert_eq!(error_detail(br#"{"error": "boom"}"#), "boom");
        assert_eq!(
            error_detail(br#"{"error": {"message": "m", "type": "t"}}"#),
            "m"
        );
        assert_eq!(
            error_detail(b"<html>Bad Gateway</html>\n"),
            "<html>Bad Gateway</html>"
        );
        assert_eq!(error_detail(b""), "(empty body)");
        assert!(error_detail("x".repeat(1000).as_bytes()).ends_with('…'));
    }

    fn target() -> Target {
        Target {
            method: "POST",
            path: "/api/prompts/list/".into(),
        }
    }

    fn rejected(status: u16) -> ApiError {
        ApiError::Rejected {
            target: target(),
            status,
            detail: "d".into(),
        }
    }

    #[test]
    fn one_classification_by_what_comes_next() {
        use FailureClass::{Stalled, Transient};
        let cases = [
            (rejected(400), Stalled, false),
            (rejected(404), Stalled, false),
            (rejected(422), Stalled, false),
            (rejected(409), Transient, false),
            (rejected(429), Transient, false),
            (rejected(501), Transient, false),
            (
                ApiError::Decode {
                    target: target(),
                    reason: "r".into(),
                },
                Stalled,
                false,
            ),
            (
                ApiError::TooLarge {
                    target: target(),
                    limit: 1,
                    declared: None,
                },
                Stalled,
                false,
            ),
            (
                ApiError::Paging {
                    target: target(),
                    problem: "p".into(),
                },
                Stalled,
                false,
            ),
            (ApiError::BadId { id: ".".into() }, Stalled, false),
            (
                ApiError::Transient {
                    target: target(),
                    cause: "c".into(),
                },
                Transient,
                false,
            ),
            (
                ApiError::OutcomeUnknown {
                    target: target(),
                    cause: "c".into(),
                },
                Transient,
                false,
            ),
            (
                ApiError::RateLimited {
                    target: target(),
                    limit: Box::new(RateLimit {
                        asked: "1h".into(),
                        resume: "T".into(),
                        budget: "5s".into(),
                        sent: true,
                    }),
                },
                Transient,
                false,
            ),
            (
                ApiError::Unauthorized {
                    target: target(),
                    status: 401,
                    detail: "d".into(),
                },
                Stalled,
                true,
            ),
            (
                ApiError::Redirected {
                    target: target(),
                    status: 302,
                    location: "/x".into(),
                },
                Stalled,
                true,
            ),
            (ApiError::MissingKey, Stalled, true),
        ];
        for (error, class, stops) in cases {
            assert_eq!(error.class(), class, "{error}");
            assert_eq!(error.stops_run(), stops, "{error}");
            // The crate's error delegates: one decision.
            assert_eq!(crate::Error::from(error.clone()).class(), class, "{error}");
        }
    }
}
