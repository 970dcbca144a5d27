//! The settings of telling people (`[notify]`) and of the deploy gate
//! (`deploy.gate_command`): commit statuses on GitHub and GitLab, webhooks, the exec
//! hook. Every piece is off unless its table is present. Secrets stay files here: a
//! token, a webhook secret or a URL with credentials in it is read by
//! [`notify`](crate::notify) when it is used (bounded, and again each time, so a
//! rotated Kubernetes Secret takes effect), never by the configuration. Where a token
//! or a signed payload may go ([`check_url`]) is a rule of these settings, which
//! `notify` applies again to a URL read from a file ([`check_secret_url`]).

use std::path::PathBuf;
use std::time::Duration;

use url::{Host, Url};

/// `[notify]`: where results go besides the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifySettings {
    /// `[notify.github]`: commit statuses on GitHub (and the plan comment's API).
    pub github: Option<ForgeSettings>,
    /// `[notify.gitlab]`: commit statuses on GitLab (and the plan note's API).
    pub gitlab: Option<ForgeSettings>,
    /// `[[notify.webhook]]`, in the order written.
    pub webhooks: Vec<WebhookSettings>,
    /// `[notify.exec]`: a program run on events.
    pub exec: Option<ExecSettings>,
    /// The least time between two messages of one kind about one target to one
    /// receiver; what comes between is held and coalesced (a flapping prompt does not
    /// page twice a minute).
    pub min_interval: Duration,
    /// One request to a notification endpoint, its reply included.
    pub timeout: Duration,
    /// How long one delivery is retried (with backoff) before it is given up.
    pub retry_max_elapsed: Duration,
}

impl NotifySettings {
    /// Whether any receiver is configured.
    pub fn any(&self) -> bool {
        self.github.is_some()
            || self.gitlab.is_some()
            || !self.webhooks.is_empty()
            || self.exec.is_some()
    }
}

/// `[notify.github]` or `[notify.gitlab]`. Unset values come from the CI's variables
/// (GitHub Actions: `GITHUB_REPOSITORY`, `GITHUB_API_URL`, `GITHUB_TOKEN`; GitLab CI:
/// `CI_PROJECT_ID`, `CI_API_V4_URL`, `GITLAB_TOKEN`) or the repository's `origin`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgeSettings {
    /// `owner/name` on GitHub, the numeric id or `group/project` path on GitLab.
    pub repository: Option<String>,
    /// The REST API root (GitHub Enterprise, a self-managed GitLab).
    pub api_url: Option<url::Url>,
    /// The file holding the token.
    pub token_file: Option<PathBuf>,
    /// The link a commit status points at (a dashboard, the daemon's `/status`).
    pub target_url: Option<String>,
}

/// The events a receiver can ask for.
pub const EVENTS: [&str; 6] = [
    "deploy.succeeded",
    "deploy.failed",
    "pass.failed",
    "drift.detected",
    "stalled",
    "recovered",
];

/// What a webhook's body looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// JSON, signed with Standard Webhooks headers when a secret is set.
    Json,
    /// A Slack incoming webhook's `text` and `blocks`.
    Slack,
}

/// One `[[notify.webhook]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub url: WebhookUrl,
    /// The events it gets (every event when the key is left out).
    pub events: Vec<String>,
    pub format: WebhookFormat,
    /// The Standard Webhooks secret (`whsec_...`), for `json`.
    pub secret_file: Option<PathBuf>,
}

/// Where a webhook goes: written out, or in a file when it carries credentials (a
/// Slack webhook URL is a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookUrl {
    Url(url::Url),
    File(PathBuf),
}

/// `[notify.exec]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSettings {
    /// The command line, split like a shell would (no shell runs it).
    pub command: Vec<String>,
    pub events: Vec<String>,
    pub timeout: Duration,
}

/// `deploy.gate`: what a failing gate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GateMode {
    /// A failing gate holds the deploy.
    #[default]
    Enforce,
    /// The gate only reports.
    Advisory,
}

/// `deploy.gate_command` and what goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateSettings {
    /// The command line, split like a shell would (no shell runs it).
    pub command: Vec<String>,
    pub mode: GateMode,
    pub timeout: Duration,
}

/// A URL promptsync may send a token or a signed payload to: `https://`, or `http://`
/// for a loopback host only; no user name or password (give a URL with credentials in
/// `url_file`).
pub fn check_url(text: &str) -> Result<Url, String> {
    check(text, false)
}

/// [`check_url`] for a URL read from a file, where credentials may be part of it.
pub fn check_secret_url(text: &str) -> Result<Url, String> {
    check(text, true).map_err(|err| err.replace(&format!("{text:?}"), "the URL"))
}

fn check(text: &str, credentials: bool) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|err| format!("{text:?} is not a URL ({err})"))?;
    let loopback = match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(format!("{text:?} has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{text:?} is plain http://; use https:// (http is allowed only for loopback hosts)"
            ));
        }
        other => return Err(format!("{text:?} uses the scheme {other:?}; use https://")),
    }
    if !credentials && (!url.username().is_empty() || url.password().is_some()) {
        return Err(
            "carries a user name or password; put a URL with credentials in a file (url_file)"
                .to_owned(),
        );
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_or_loopback() {
        assert!(check_url("https://api.github.com").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(
            check_url("http://example.com/hook")
                .unwrap_err()
                .contains("https")
        );
        assert!(check_url("ftp://example.com").is_err());
        assert!(
            check_url("https://u:p@example.com")
                .unwrap_err()
                .contains("url_file")
        );
        assert!(check_secret_url("https://u:p@example.com").is_ok());
        let err = check_secret_url("http://u:secret@example.com/x").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }
}
