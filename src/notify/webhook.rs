//! A webhook delivery: the JSON payload signed as Standard Webhooks asks
//! (`webhook-id`, `webhook-timestamp`, and `webhook-signature: v1,<base64>` over
//! `id.timestamp.body` with HMAC-SHA256 and the secret `whsec_<base64>`), or a Slack
//! message ([`slack`](super::slack)). The URL and the secret are read at each delivery,
//! from a file when they are kept in one. The message id stays the same across
//! retries, so a receiver can drop a duplicate.

use std::path::PathBuf;

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::event::Payload;
use super::http::{Failure, Http};
use crate::config::{WebhookFormat, WebhookSettings, WebhookUrl};

/// One configured webhook.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    /// Its place in the configuration, for logs and `/status` (`webhook 1`).
    pub label: String,
    url: WebhookUrl,
    format: WebhookFormat,
    secret_file: Option<PathBuf>,
    pub events: Vec<String>,
    http: Http,
}

impl Webhook {
    pub(crate) fn new(index: usize, settings: &WebhookSettings, http: Http) -> Webhook {
        let label = match settings.format {
            WebhookFormat::Json => format!("webhook {}", index + 1),
            WebhookFormat::Slack => format!("webhook {} (slack)", index + 1),
        };
        Webhook {
            label,
            url: settings.url.clone(),
            format: settings.format,
            secret_file: settings.secret_file.clone(),
            events: settings.events.clone(),
            http,
        }
    }

    /// Send `payload` with the message id `id`.
    pub(crate) async fn deliver(&self, id: &str, payload: &Payload) -> Result<(), Failure> {
        let url = match &self.url {
            WebhookUrl::Url(url) => url.clone(),
            WebhookUrl::File(path) => {
                let text =
                    crate::secretfile::read_file(path, "webhook URL").map_err(Failure::fail)?;
                crate::config::check_secret_url(text.expose_secret()).map_err(|err| {
                    Failure::fail(format!("the webhook URL in {}: {err}", path.display()))
                })?
            }
        };
        let (body, headers) = match self.format {
            WebhookFormat::Slack => {
                let body = serde_json::to_vec(&super::slack::message(payload))
                    .map_err(|err| Failure::fail(err.to_string()))?;
                (body, Vec::new())
            }
            WebhookFormat::Json => {
                // Redacted before it is signed (`Http::send` redacts again, a no-op),
                // so the signature holds for what is sent.
                let body =
                    serde_json::to_vec(payload).map_err(|err| Failure::fail(err.to_string()))?;
                let body = crate::secret::redact_bytes(&body).into_owned();
                let secret = match &self.secret_file {
                    Some(path) => Some(
                        crate::secretfile::read_file(path, "webhook secret")
                            .map_err(Failure::fail)?,
                    ),
                    None => None,
                };
                let timestamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let headers =
                    headers(id, timestamp, &body, secret.as_ref()).map_err(Failure::fail)?;
                (body, headers)
            }
        };
        let what = format!("POST {} ({})", self.label, payload.kind);
        self.http
            .send(reqwest::Method::POST, url, &headers, Some(body), &what)
            .await
            .map(|_| ())
    }
}

/// The Standard Webhooks headers for `body`; signed when there is a secret.
pub(crate) fn headers(
    id: &str,
    timestamp: u64,
    body: &[u8],
    secret: Option<&SecretString>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let value = |text: String| {
        HeaderValue::from_str(&text).map_err(|_| "a header value that is not plain text".to_owned())
    };
    let mut headers = vec![
        (HeaderName::from_static("webhook-id"), value(id.to_owned())?),
        (
            HeaderName::from_static("webhook-timestamp"),
            value(timestamp.to_string())?,
        ),
    ];
    if let Some(secret) = secret {
        let signature = sign(secret.expose_secret(), id, timestamp, body)?;
        headers.push((
            HeaderName::from_static("webhook-signature"),
            value(signature)?,
        ));
    }
    Ok(headers)
}

/// `v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key being the
/// base64 after `whsec_`.
pub fn sign(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> Result<String, String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| {
            "the webhook secret is not a Standard Webhooks secret (whsec_ followed by base64)"
                .to_owned()
        })?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| "the webhook secret cannot key an HMAC".to_owned())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", engine.encode(mac.finalize().into_bytes())))
}

/// A new message id: `msg_` and 24 random hex digits.
pub(crate) fn message_id() -> String {
    format!("msg_{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, id, 1_614_265_330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(
            sign("whsec_!!!", id, 1, body)
                .unwrap_err()
                .contains("whsec_")
        );
        let unsigned = headers(id, 1, body, None).unwrap();
        assert_eq!(unsigned.len(), 2);
        assert!(message_id().starts_with("msg_"));
    }
}
