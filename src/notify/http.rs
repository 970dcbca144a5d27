//! One HTTP exchange with a notification endpoint (a forge's API, a webhook): the
//! project's reqwest setup (ring for TLS, `api::install_tls_provider`), a timeout for
//! the whole exchange, redirects never followed (a token must not travel to wherever a
//! `Location` points), replies read up to [`MAX_REPLY_BYTES`], and the outcome sorted
//! into done, worth retrying, or not. Messages never hold a URL: a webhook URL can be a
//! credential. Knows nothing about what is sent.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

/// The most of a reply that is read: lists of comments are the largest replies.
pub(crate) const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// A client for notification endpoints. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    timeout: Duration,
}

/// A 2xx reply.
#[derive(Debug)]
pub(crate) struct Reply {
    pub body: Vec<u8>,
}

/// Why an exchange did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// It may work later (no connection, a timeout, 429, 5xx): retry, after the
    /// server's wish when it said one.
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// It will not work by sending it again (a refused token, a bad request, a
    /// redirect).
    Fail {
        message: String,
        status: Option<u16>,
    },
}

impl Failure {
    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Retry { message, .. } | Failure::Fail { message, .. } => message,
        }
    }

    pub(crate) fn fail(message: impl Into<String>) -> Failure {
        Failure::Fail {
            message: message.into(),
            status: None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl Http {
    pub(crate) fn new(timeout: Duration) -> Result<Http, String> {
        crate::api::install_tls_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("promptsync/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("cannot set up the HTTP client: {}", err.without_url()))?;
        Ok(Http { client, timeout })
    }

    /// Send one request; `what` names it in messages (`POST statuses`).
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        headers: &[(HeaderName, HeaderValue)],
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<Reply, Failure> {
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(name, value.clone());
        }
        if let Some(body) = body {
            // Server replies and file names reach payloads: every secret promptsync
            // holds is redacted on the way out, as on every other channel.
            let body = crate::secret::redact_bytes(&body).into_owned();
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut response = request.send().await.map_err(|err| Failure::Retry {
            message: format!("{what}: {}", self.describe(&err)),
            after: None,
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > MAX_REPLY_BYTES => {
                    if status.is_success() {
                        return Err(Failure::fail(format!(
                            "{what}: the reply is over {} MiB",
                            MAX_REPLY_BYTES / (1024 * 1024)
                        )));
                    }
                    break;
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(err) => {
                    return Err(Failure::Retry {
                        message: format!("{what}: the reply broke off: {}", self.describe(&err)),
                        after: None,
                    });
                }
            }
        }
        classify(status, headers, body, what)
    }

    fn describe(&self, err: &reqwest::Error) -> String {
        if err.is_timeout() {
            return format!(
                "timed out after {} (notify.timeout)",
                humantime::format_duration(self.timeout)
            );
        }
        let text = if err.is_connect() {
            "cannot connect"
        } else {
            "no reply"
        };
        crate::failure::with_causes(text.to_owned(), std::error::Error::source(err))
    }
}

fn classify(
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    what: &str,
) -> Result<Reply, Failure> {
    let code = status.as_u16();
    if status.is_success() {
        return Ok(Reply { body });
    }
    let after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let detail = detail(&body);
    let message = format!("{what}: answered {code}{detail}");
    match code {
        300..=399 => Err(Failure::Fail {
            message: format!(
                "{what}: answered {code}, a redirect; not followed (a token must not go where a redirect points): check the URL"
            ),
            status: Some(code),
        }),
        408 | 429 | 500..=599 => Err(Failure::Retry { message, after }),
        // GitHub's secondary rate limit is a 403 that says when to come back.
        403 if after.is_some() => Err(Failure::Retry { message, after }),
        _ => Err(Failure::Fail {
            message,
            status: Some(code),
        }),
    }
}

/// The start of an error body, as one line.
fn detail(body: &[u8]) -> String {
    const SHOWN: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(SHOWN * 4)]);
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(SHOWN)
        .collect();
    let line = line.trim();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_sorted_into_retry_and_fail() {
        let headers = |after: Option<&str>| {
            let mut map = HeaderMap::new();
            if let Some(after) = after {
                map.insert(
                    reqwest::header::RETRY_AFTER,
                    HeaderValue::from_str(after).unwrap(),
                );
            }
            map
        };
        let ok = classify(StatusCode::CREATED, headers(None), b"{}".to_vec(), "x");
        assert_eq!(ok.unwrap().body, b"{}");
        for code in [429, 500, 502, 503] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(matches!(
                classify(status, headers(Some("7")), Vec::new(), "x"),
                Err(Failure::Retry { after: Some(d), .. }) if d == Duration::from_secs(7)
            ));
        }
        let refused = classify(
            StatusCode::UNAUTHORIZED,
            headers(None),
            b"Bad\ncredentials".to_vec(),
            "POST x",
        );
        assert_eq!(
            refused.unwrap_err(),
            Failure::Fail {
                message: "POST x: answered 401: Bad credentials".into(),
                status: Some(401)
            }
        );
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, headers(Some("60")), Vec::new(), "x"),
            Err(Failure::Retry { .. })
        ));
        assert!(matches!(
            classify(StatusCode::FOUND, headers(None), Vec::new(), "x"),
            Err(Failure::Fail {
                status: Some(302),
                ..
            })
        ));
    }
}
