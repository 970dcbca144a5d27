//! How one request is sent, whatever it asks for: an in-flight slot, the pacer a 429
//! sets, one clock for its attempts and their retries (`retry`), each answer sorted
//! (`exchange`), and for a change that must not be resent blindly, the caller's
//! re-read after an unknown outcome. The requests themselves are `client`'s.

use std::future::Future;
use std::time::Duration;

use reqwest::header;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::client::{Client, MAX_BODY_BYTES};
use super::error::{ApiError, RateLimit, Target};
use super::exchange::{Answer, Exchange, Resend, connect_error, describe, interpret, read_answer};
use super::retry::{Clock, Step, retry_after, retrying, wait_text};

/// What a change request came to before it was decoded.
enum Changed<T> {
    Answer(Answer),
    /// The recovery found the change applied.
    Found(T),
}

impl Client {
    /// A request whose resending is harmless, its 2xx reply decoded as `expected`.
    pub(super) async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        expected: &str,
    ) -> Result<T, ApiError> {
        let (target, answer) = self.answer(&method, path, body, Resend::Safe).await?;
        self.decoded(&target, &answer, expected)
    }

    /// Send until a 2xx answer comes (or the request fails for good).
    pub(super) async fn answer(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        resend: Resend,
    ) -> Result<(Target, Answer), ApiError> {
        let target = target(method, path);
        let clock = Clock::new(&self.inner.retry);
        let answer = retrying(&clock, &target, || async {
            interpret(
                &target,
                self.exchange(&clock, &target, method, body).await,
                resend,
            )
        })
        .await?;
        Ok((target, answer))
    }

    /// A change request that must not be resent blindly: after an unknown outcome,
    /// `recover` decides (within this request's deadline) whether it happened (done)
    /// or not (send again after backoff).
    pub(super) async fn change<T, R, Fut>(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        recover: R,
        expected: &str,
    ) -> Result<T, ApiError>
    where
        T: DeserializeOwned,
        R: Fn() -> Fut,
        Fut: Future<Output = Result<Option<T>, ApiError>>,
    {
        let target = target(&method, path);
        let clock = Clock::new(&self.inner.retry);
        let changed = retrying(&clock, &target, || {
            let exchange = self.exchange(&clock, &target, &method, Some(body));
            let (recover, target, clock) = (&recover, &target, &clock);
            async move {
                match interpret(target, exchange.await, Resend::Unsafe) {
                    Step::Fail(ApiError::OutcomeUnknown { target, cause }) => {
                        tracing::warn!(method = target.method, path = %target.path, error = %cause,
                            "re-reading the remote before sending again");
                        match clock.scope(recover()).await {
                            Ok(Some(found)) => {
                                tracing::info!(method = target.method, path = %target.path,
                                    "the change was applied before the reply was lost");
                                Step::Done(Changed::Found(found))
                            }
                            Ok(None) => Step::Again {
                                error: ApiError::OutcomeUnknown { target, cause },
                                after: None,
                            },
                            Err(err) if err.stops_run() => Step::Fail(err),
                            Err(err) => Step::Fail(ApiError::OutcomeUnknown {
                                target,
                                cause: format!(
                                    "{cause}; checking whether it was applied failed ({})",
                                    err.reason()
                                ),
                            }),
                        }
                    }
                    Step::Done(answer) => Step::Done(Changed::Answer(answer)),
                    Step::Fail(error) => Step::Fail(error),
                    Step::Again { error, after } => Step::Again { error, after },
                }
            }
        })
        .await?;
        match changed {
            Changed::Found(found) => Ok(found),
            Changed::Answer(answer) => self.decoded(&target, &answer, expected),
        }
    }

    /// One attempt: a slot, the pacer, then the request within the time the clock
    /// gives it.
    pub(super) async fn exchange(
        &self,
        clock: &Clock<'_>,
        target: &Target,
        method: &Method,
        body: Option<&[u8]>,
    ) -> Exchange {
        let Ok(_permit) = self.inner.limiter.acquire().await else {
            unreachable!("the semaphore is never closed")
        };
        clock.begin();
        if let Err(paused) = self.inner.pacer.ready(clock.wait_deadline()).await {
            return Exchange::NotSent(ApiError::RateLimited {
                target: target.clone(),
                limit: Box::new(RateLimit {
                    asked: wait_text(paused.asked),
                    resume: paused.resume,
                    budget: clock.budget_text(),
                    sent: false,
                }),
            });
        }
        let Some(time) = clock.attempt() else {
            return Exchange::NotSent(ApiError::Transient {
                target: target.clone(),
                cause: "not sent: no time was left (api.retry_max_elapsed, or one \
                        api.timeout when that is longer)"
                    .to_owned(),
            });
        };
        let url = format!("{}{}", self.inner.base, target.path);
        let mut request = self
            .inner
            .http
            .request(method.clone(), &url)
            .timeout(time.limit);
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        tracing::debug!(%method, url, timeout_ms = u64::try_from(time.limit.as_millis()).unwrap_or(u64::MAX), "request");
        let exchange = match request.send().await {
            Err(err) if err.is_connect() => Exchange::NotSent(connect_error(
                target,
                &self.inner.base,
                &err,
                time,
                self.inner.connect_timeout,
            )),
            Err(err) => Exchange::Lost(describe(&err, time)),
            Ok(response) => read_answer(target, response, MAX_BODY_BYTES, time).await,
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

pub(super) fn target(method: &Method, path: &str) -> Target {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_names_its_method_and_keeps_its_path() {
        let listed = target(&Method::POST, "/api/prompts/list/");
        assert_eq!(
            (listed.method, listed.path.as_str()),
            ("POST", "/api/prompts/list/")
        );
        assert_eq!(target(&Method::PATCH, "/x").method, "PATCH");
        assert_eq!(target(&Method::OPTIONS, "/x").method, "REQUEST");
    }
}
