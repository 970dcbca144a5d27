//! Who sent a webhook: each provider's proof, checked in constant time (`subtle`).
//! GitHub's HMAC-SHA256 of the raw body, GitLab's token (digests compared, so the
//! length does not show), Standard Webhooks' signature of `id.timestamp.body` with a
//! timestamp within five minutes. The secret is the caller's, read at each request.

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit as _, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// How far a Standard Webhooks timestamp may be from now.
const TIMESTAMP_TOLERANCE: u64 = 5 * 60;

/// `X-Hub-Signature-256: sha256=<hex of HMAC-SHA256(secret, body)>`.
pub(super) fn verify_github(headers: &HeaderMap, body: &[u8], secret: &SecretString) -> bool {
    let Some(given) = headers.get("x-hub-signature-256") else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
        return false;
    };
    mac.update(body);
    let expected = format!("sha256={}", hex(&mac.finalize().into_bytes()));
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// `X-Gitlab-Token`: the secret itself, compared in constant time (digests of both,
/// so that the length does not show either).
pub(super) fn verify_gitlab(headers: &HeaderMap, secret: &SecretString) -> bool {
    let Some(given) = headers.get("x-gitlab-token") else {
        return false;
    };
    let expected = Sha256::digest(secret.expose_secret().as_bytes());
    let given = Sha256::digest(given.as_bytes());
    bool::from(expected.ct_eq(&given))
}

/// Standard Webhooks: `webhook-signature` holds one or more `v1,<base64>` (space
/// separated), one of which must be the HMAC of `id.timestamp.body` (signed as
/// [`crate::notify::webhook::sign`] signs what promptsync sends); the timestamp
/// within [`TIMESTAMP_TOLERANCE`] of `now`.
pub(super) fn verify_generic(
    headers: &HeaderMap,
    body: &[u8],
    secret: &SecretString,
    now: u64,
) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        text("webhook-id"),
        text("webhook-timestamp"),
        text("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(timestamp) = timestamp.trim().parse::<u64>() else {
        return false;
    };
    if timestamp.abs_diff(now) > TIMESTAMP_TOLERANCE {
        return false;
    }
    let Ok(expected) = crate::notify::webhook::sign(secret.expose_secret(), id, timestamp, body)
    else {
        tracing::error!(
            "webhook.generic_secret_file does not hold a Standard Webhooks secret (whsec_ followed by base64)"
        );
        return false;
    };
    signatures
        .split(' ')
        .filter(|s| !s.is_empty())
        .fold(false, |found, given| {
            found | bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn github_signatures_are_hmac_sha256_of_the_raw_body() {
        // GitHub's documented example: secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        let secret = SecretString::from("It's a Secret to Everybody".to_owned());
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify_github(
            &headers(&[("x-hub-signature-256", good)]),
            b"Hello, World!",
            &secret
        ));
        assert!(!verify_github(
            &headers(&[("x-hub-signature-256", good)]),
            b"Hello, World?",
            &secret
        ));
        assert!(!verify_github(&headers(&[]), b"Hello, World!", &secret));
    }

    #[test]
    fn standard_webhooks_signatures_and_timestamps_are_checked() {
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let body = br#"{"test": 2432232314}"#;
        let at = 1_614_265_330;
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let with = |signature: &str, timestamp: u64| {
            headers(&[
                ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
                ("webhook-timestamp", &timestamp.to_string()),
                ("webhook-signature", signature),
            ])
        };
        assert!(verify_generic(&with(good, at), body, &secret, at + 10));
        assert!(verify_generic(
            &with(&format!("v1,bm90IGl0 {good}"), at),
            body,
            &secret,
            at
        ));
        assert!(!verify_generic(&with(good, at), body, &secret, at + 301));
        assert!(!verify_generic(&with("v1,bm90IGl0", at), body, &secret, at));
        assert!(!verify_generic(&headers(&[]), body, &secret, at));
    }

    #[test]
    fn gitlab_tokens_are_compared_whole() {
        let secret = SecretString::from("s3cret".to_owned());
        assert!(verify_gitlab(
            &headers(&[("x-gitlab-token", "s3cret")]),
            &secret
        ));
        assert!(!verify_gitlab(
            &headers(&[("x-gitlab-token", "s3cre")]),
            &secret
        ));
        assert!(!verify_gitlab(&headers(&[]), &secret));
    }
}
