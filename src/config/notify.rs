//! The settings of telling people (`[notify]`) and of the deploy gate
//! (`deploy.gate_command`): commit statuses on GitHub and GitLab, webhooks, the exec
//! hook. Every piece is off unless its table is present. Secrets stay files here: a
//! token, a webhook secret or a URL with credentials in it is read by
//! [`notify`](crate::notify) when it is used (bounded, and again each time, so a
//! rotated Kubernetes Secret takes effect), never by the configuration.

use std::path::PathBuf;
use std::time::Duration;

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
