//! Who may force a pass (`POST /reconcile`), and how often. Each forced pass lists the
//! whole account with the operator's key, so the door is not open to the network: a
//! peer on loopback may knock; any other peer needs the bearer token held in
//! `watch.reconcile_token_file` (read bounded, again whenever the file changes, and
//! compared in constant time); without that file, only loopback may. Forced passes are
//! rate-limited: a request while one is still waiting joins it, and one sooner than
//! `watch.reconcile_min_interval` after the last is refused with the time to wait.
//! Knows nothing about HTTP beyond the header's text, nor about what a pass does.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// What to answer a request for a forced pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Fire the trigger.
    Fire,
    /// A forced pass is already waiting to start: this request joins it.
    Joined,
    /// Too soon after the last forced pass: try again after this long.
    TooSoon(Duration),
    /// A peer other than loopback with no token or a wrong one (401).
    Unauthorized,
    /// A peer other than loopback, and no token is configured (403).
    Forbidden,
}

/// The door of `POST /reconcile`.
#[derive(Debug)]
pub(crate) struct Door {
    token: Option<TokenFile>,
    min_interval: Duration,
    last: Mutex<Option<Instant>>,
}

impl Door {
    pub(crate) fn new(token_file: Option<PathBuf>, min_interval: Duration) -> Door {
        Door {
            token: token_file.map(TokenFile::new),
            min_interval,
            last: Mutex::new(None),
        }
    }

    /// Decide on a request from `peer` with this `Authorization` header, `waiting`
    /// telling whether a forced pass is queued already. Records the pass it lets fire.
    pub(crate) fn admit(&self, peer: IpAddr, authorization: Option<&[u8]>, waiting: bool) -> Admit {
        if !is_loopback(peer) {
            let Some(token) = &self.token else {
                return Admit::Forbidden;
            };
            if !token.accepts(authorization) {
                return Admit::Unauthorized;
            }
        }
        if waiting {
            return Admit::Joined;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some(at) = *last {
            let since = now.saturating_duration_since(at);
            if since < self.min_interval {
                return Admit::TooSoon(self.min_interval - since);
            }
        }
        *last = Some(now);
        Admit::Fire
    }
}

/// Loopback, IPv4-mapped IPv6 included (`::ffff:127.0.0.1`, what a dual-stack socket
/// reports).
pub(crate) fn is_loopback(peer: IpAddr) -> bool {
    peer.to_canonical().is_loopback()
}

/// The token file, read again when what it names changes (a Kubernetes secret mount
/// swaps its `..data` link, so the file's identity changes with the token).
#[derive(Debug)]
struct TokenFile {
    path: PathBuf,
    cached: Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    seen: Option<Seen>,
    /// The token's SHA-256: compared in constant time with the offered one's, so that
    /// neither content nor length leaks through timing.
    digest: Option<[u8; 32]>,
    /// The last reading error, logged once until it changes.
    error: Option<String>,
}

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
    ctime: i64,
    ctime_nsec: i64,
}

impl TokenFile {
    fn new(path: PathBuf) -> TokenFile {
        TokenFile {
            path,
            cached: Mutex::new(Cached::default()),
        }
    }

    fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(offered) = authorization.and_then(bearer) else {
            return false;
        };
        let Some(wanted) = self.digest() else {
            return false;
        };
        let offered: [u8; 32] = Sha256::digest(offered).into();
        bool::from(offered.ct_eq(&wanted))
    }

    /// The current token's digest, read again when the file changed.
    fn digest(&self) -> Option<[u8; 32]> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let seen = seen(&self.path);
        if seen.is_some() && seen == cached.seen {
            return cached.digest;
        }
        cached.seen = seen;
        match read_token(&self.path) {
            Ok(token) => {
                cached.digest = Some(Sha256::digest(token.expose_secret().as_bytes()).into());
                cached.error = None;
            }
            Err(message) => {
                if cached.error.as_deref() != Some(&message) {
                    tracing::warn!(error = %message, "forced passes from other hosts are refused until the reconcile token can be read");
                }
                cached.digest = None;
                cached.error = Some(message);
            }
        }
        cached.digest
    }
}

fn seen(path: &Path) -> Option<Seen> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some(Seen {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        modified: meta.modified().ok(),
        ctime: meta.ctime(),
        ctime_nsec: meta.ctime_nsec(),
    })
}

/// The token in `Authorization: Bearer TOKEN` (the scheme in any case).
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = header.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

/// Read the token file (a regular file, at most 64 KiB, trimmed, not empty). Errors
/// name the file, never its contents.
pub(crate) fn read_token(path: &Path) -> Result<SecretString, String> {
    crate::secretfile::read_file(path, "reconcile token")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTSIDE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));
    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn loopback_knocks_others_need_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        let door = Door::new(Some(file.clone()), Duration::ZERO);
        assert_eq!(door.admit(LOOPBACK, None, false), Admit::Fire);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(door.admit(mapped, None, false), Admit::Fire);
        for header in [
            None,
            Some(&b"Bearer wrong"[..]),
            Some(b"Bearer s3cret2"),
            Some(b"Basic s3cret"),
            Some(b"Bearer "),
            Some(b"s3cret"),
        ] {
            assert_eq!(door.admit(OUTSIDE, header, false), Admit::Unauthorized);
        }
        assert_eq!(
            door.admit(OUTSIDE, Some(b"bearer s3cret"), false),
            Admit::Fire
        );
        // A rotated token takes effect, the old one stops working.
        std::fs::write(&file, "n3w-token-longer").unwrap();
        assert_eq!(
            door.admit(OUTSIDE, Some(b"Bearer s3cret"), false),
            Admit::Unauthorized
        );
        assert_eq!(
            door.admit(OUTSIDE, Some(b"Bearer n3w-token-longer"), false),
            Admit::Fire
        );
        std::fs::remove_file(&file).unwrap();
        assert_eq!(
            door.admit(OUTSIDE, Some(b"Bearer n3w-token-longer"), false),
            Admit::Unauthorized,
            "no file, no token"
        );
        let closed = Door::new(None, Duration::ZERO);
        assert_eq!(
            closed.admit(OUTSIDE, Some(b"Bearer x"), false),
            Admit::Forbidden
        );
        assert_eq!(closed.admit(LOOPBACK, None, false), Admit::Fire);
    }

    #[test]
    fn forced_passes_are_spaced_and_a_waiting_one_is_joined() {
        let door = Door::new(None, Duration::from_secs(60));
        assert_eq!(door.admit(LOOPBACK, None, false), Admit::Fire);
        assert_eq!(door.admit(LOOPBACK, None, true), Admit::Joined);
        match door.admit(LOOPBACK, None, false) {
            Admit::TooSoon(wait) => {
                assert!(wait > Duration::from_secs(59) && wait <= Duration::from_secs(60))
            }
            other => panic!("{other:?}"),
        }
        let open = Door::new(None, Duration::ZERO);
        assert_eq!(open.admit(LOOPBACK, None, false), Admit::Fire);
        assert_eq!(open.admit(LOOPBACK, None, false), Admit::Fire);
    }

    #[test]
    fn a_bad_token_file_is_named_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "  \n").unwrap();
        assert!(read_token(&empty).unwrap_err().contains("is empty"));
        let missing = read_token(&dir.path().join("none")).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        let err = read_token(dir.path()).unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
    }
}
