//! Webhooks on the probe server: `POST /hooks/github`, `/hooks/gitlab` and
//! `/hooks/generic` ask the source worker for a look at the remote now (the poll
//! every `source.interval` stays on as the fallback). Each provider's secret is read
//! from its file (`webhook.github_secret_file`, `webhook.gitlab_secret_file`,
//! `webhook.generic_secret_file`) at each request, through [`crate::secretfile`].
//!
//! | provider | verified by | events |
//! | --- | --- | --- |
//! | GitHub | `X-Hub-Signature-256`: HMAC-SHA256 of the raw body | `push`; `ping` answered 200; deliveries de-duplicated on `X-GitHub-Delivery` |
//! | GitLab | `X-Gitlab-Token`, compared in constant time | `Push Hook`, `Tag Push Hook` |
//! | generic | Standard Webhooks: `webhook-id`, `webhook-timestamp` (within 5 minutes), `webhook-signature` | any; de-duplicated on `webhook-id` |
//!
//! Answers: 401 with no detail for a missing or wrong signature; 413 for a body over
//! [`HOOK_BODY_LIMIT`] (by its declared length before anything is read, else while
//! reading); 409 when the daemon has no remote source (a webhook has nothing to
//! fetch); 404 when the provider's secret file is not set; 202 otherwise, at once.
//! A push to another branch, or whose changed paths cannot matter (none is the
//! configuration file, a prompt file, or a content file a prompt file of the synced
//! revision names), is answered 202 with `ignored` and makes no look. A push whose
//! payload does not list every changed path (a forced or very large push) is looked
//! at. The signatures are checked in `verify`.

mod verify;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::metrics::Metrics;
use super::source::Remote;
use crate::config::{DEFAULT_CONFIG_FILE, HookSettings};
use verify::{verify_generic, verify_github, verify_gitlab};

/// The largest webhook body read (GitHub's own limit is 25 MiB, but a push payload of
/// a prompt repository is a few KiB).
pub(crate) const HOOK_BODY_LIMIT: usize = 1024 * 1024;

/// Delivery ids remembered for de-duplication.
const REMEMBERED: usize = 4096;

/// How long working out a revision's content files may take before a push is looked
/// at without that check.
const CONTENT_FILES_TIMEOUT: Duration = Duration::from_secs(2);

/// A webhook provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    GitHub,
    GitLab,
    Generic,
}

impl Provider {
    fn label(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Generic => "generic",
        }
    }

    fn secret_key(self) -> &'static str {
        match self {
            Provider::GitHub => "webhook.github_secret_file",
            Provider::GitLab => "webhook.gitlab_secret_file",
            Provider::Generic => "webhook.generic_secret_file",
        }
    }
}

/// What the webhook routes need: the remote source (none: the daemon reads a local
/// clone), the secret files, the delivery ids seen, the metrics they count in.
#[derive(Debug)]
pub(crate) struct Hooks {
    remote: Option<Arc<Remote>>,
    settings: HookSettings,
    metrics: Arc<Metrics>,
    seen: Mutex<Seen>,
    /// The content files the prompt files of a revision name, by revision.
    content: Mutex<Option<(String, Arc<HashSet<String>>)>>,
}

/// Recent delivery ids, oldest first, bounded.
#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Remember `id`; whether it was new.
    fn insert(&mut self, id: String) -> bool {
        if self.ids.contains(&id) {
            return false;
        }
        if self.order.len() >= REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.clone());
        self.order.push_back(id);
        true
    }
}

impl Hooks {
    pub(crate) fn new(
        remote: Option<Arc<Remote>>,
        settings: HookSettings,
        metrics: Arc<Metrics>,
    ) -> Hooks {
        Hooks {
            remote,
            settings,
            metrics,
            seen: Mutex::default(),
            content: Mutex::default(),
        }
    }

    fn secret_file(&self, provider: Provider) -> Option<&std::path::Path> {
        match provider {
            Provider::GitHub => self.settings.github_secret_file.as_deref(),
            Provider::GitLab => self.settings.gitlab_secret_file.as_deref(),
            Provider::Generic => self.settings.generic_secret_file.as_deref(),
        }
    }

    /// Whether the delivery `id` of `provider` is new (and remember it).
    fn first_delivery(&self, provider: Provider, id: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(format!("{}:{id}", provider.label()))
    }
}

/// The webhook routes, with their own body limit (the probe routes take none) and
/// their own state: they fit a router of any state.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(hooks: Arc<Hooks>) -> Router<S> {
    Router::new()
        .route("/hooks/github", post(github))
        .route("/hooks/gitlab", post(gitlab))
        .route("/hooks/generic", post(generic))
        .with_state(hooks)
}

async fn github(State(hooks): State<Arc<Hooks>>, request: Request) -> Response {
    receive(&hooks, Provider::GitHub, request).await
}

async fn gitlab(State(hooks): State<Arc<Hooks>>, request: Request) -> Response {
    receive(&hooks, Provider::GitLab, request).await
}

async fn generic(State(hooks): State<Arc<Hooks>>, request: Request) -> Response {
    receive(&hooks, Provider::Generic, request).await
}

/// One webhook request, from its head to its answer.
async fn receive(hooks: &Hooks, provider: Provider, request: Request) -> Response {
    let metrics = &hooks.metrics;
    let count = |result: &'static str| metrics.webhook(provider.label(), result);
    let Some(remote) = hooks.remote.clone() else {
        count("no_source");
        return (
            StatusCode::CONFLICT,
            "no remote source is configured (source.url, --source): there is nothing for a webhook to fetch\n",
        )
            .into_response();
    };
    let Some(secret_file) = hooks.secret_file(provider) else {
        count("not_configured");
        return (
            StatusCode::NOT_FOUND,
            format!("this webhook is off: set {}\n", provider.secret_key()),
        )
            .into_response();
    };
    let (parts, body) = request.into_parts();
    let body = match read_body(body, &parts.headers, metrics).await {
        Ok(body) => body,
        Err(response) => {
            count("too_large");
            return response;
        }
    };
    let secret = match crate::secretfile::read_file(secret_file, "webhook secret") {
        Ok(secret) => secret,
        Err(message) => {
            tracing::error!(provider = provider.label(), error = %message, "cannot read the webhook secret; the request is refused");
            count("unauthorized");
            return unauthorized();
        }
    };
    let headers = &parts.headers;
    let verified = match provider {
        Provider::GitHub => verify_github(headers, &body, &secret),
        Provider::GitLab => verify_gitlab(headers, &secret),
        Provider::Generic => verify_generic(headers, &body, &secret, now()),
    };
    if !verified {
        count("unauthorized");
        tracing::debug!(
            provider = provider.label(),
            "webhook without a valid signature"
        );
        return unauthorized();
    }
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match provider {
        Provider::GitHub => match header_text("x-github-event") {
            Some("ping") => {
                count("ping");
                return (StatusCode::OK, axum::Json(json!({"pong": true}))).into_response();
            }
            Some("push") => {}
            other => {
                count("ignored");
                return ignored(&format!(
                    "the event {:?} is not a push",
                    other.unwrap_or("")
                ));
            }
        },
        Provider::GitLab => match header_text("x-gitlab-event") {
            Some("Push Hook" | "Tag Push Hook") => {}
            other => {
                count("ignored");
                return ignored(&format!(
                    "the event {:?} is not a Push Hook or Tag Push Hook",
                    other.unwrap_or("")
                ));
            }
        },
        Provider::Generic => {}
    }
    let delivery = match provider {
        Provider::GitHub => header_text("x-github-delivery"),
        Provider::GitLab => header_text("x-gitlab-event-uuid"),
        Provider::Generic => header_text("webhook-id"),
    };
    if let Some(id) = delivery
        && !hooks.first_delivery(provider, id)
    {
        count("duplicate");
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({"accepted": true, "duplicate": true})),
        )
            .into_response();
    }
    let push = Push::of(provider, &body);
    if let Some(why) = cannot_matter(hooks, &remote, &push).await {
        count("ignored");
        tracing::info!(provider = provider.label(), reason = why, "webhook ignored");
        return ignored(why);
    }
    count("accepted");
    tracing::info!(
        provider = provider.label(),
        git_ref = push.git_ref.as_deref(),
        "webhook: looking at the remote now"
    );
    remote.request_look();
    (StatusCode::ACCEPTED, axum::Json(json!({"accepted": true}))).into_response()
}

/// The body, read whole up to [`HOOK_BODY_LIMIT`]: a larger declared length is
/// refused before a byte is read, a longer body while reading; both within the
/// header timeout.
async fn read_body(
    body: axum::body::Body,
    headers: &HeaderMap,
    metrics: &Metrics,
) -> Result<Bytes, Response> {
    let too_large = || {
        metrics.http_refused("body_too_large");
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!("webhook bodies are limited to {HOOK_BODY_LIMIT} bytes\n"),
        )
            .into_response()
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > HOOK_BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(
        super::http::HEADER_TIMEOUT,
        axum::body::to_bytes(body, HOOK_BODY_LIMIT),
    )
    .await;
    match read {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            "the request body did not arrive in time\n",
        )
            .into_response()),
    }
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response()
}

fn ignored(why: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"accepted": true, "ignored": why})),
    )
        .into_response()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a push payload says, as far as it says it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Push {
    /// `refs/heads/main`, `refs/tags/v1`.
    git_ref: Option<String>,
    /// Every changed path, when the payload lists them all.
    paths: Option<Vec<String>>,
}

impl Push {
    /// GitHub and GitLab: `ref` and `commits[].added/modified/removed`. The list is
    /// complete only when every commit of the push is in it (GitHub lists at most 20,
    /// GitLab says `total_commits_count`), the push is no forced one, and it made or
    /// deleted no ref. Generic: `ref` and `paths`, both optional.
    fn of(provider: Provider, body: &[u8]) -> Push {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return Push::default();
        };
        let git_ref = value["ref"].as_str().map(str::to_owned);
        let strings = |value: &Value| -> Option<Vec<String>> {
            value
                .as_array()?
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let paths = match provider {
            Provider::Generic => strings(&value["paths"]),
            Provider::GitHub | Provider::GitLab => {
                let commits = value["commits"].as_array();
                let listed = commits.map_or(0, Vec::len);
                let total = value["total_commits_count"]
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(listed);
                let whole = listed > 0
                    && total == listed
                    && listed < 20
                    && value["forced"].as_bool() != Some(true)
                    && value["created"].as_bool() != Some(true)
                    && value["deleted"].as_bool() != Some(true);
                commits.filter(|_| whole).and_then(|commits| {
                    let mut paths = Vec::new();
                    for commit in commits {
                        for key in ["added", "modified", "removed"] {
                            paths.extend(strings(&commit[key])?);
                        }
                    }
                    Some(paths)
                })
            }
        };
        Push { git_ref, paths }
    }
}

/// Why `push` cannot change what is synced (`None`: it may; look).
async fn cannot_matter(hooks: &Hooks, remote: &Arc<Remote>, push: &Push) -> Option<&'static str> {
    let git_ref = push.git_ref.as_deref()?;
    let branch = git_ref.strip_prefix("refs/heads/")?;
    if remote.branch().is_some_and(|synced| synced != branch) {
        return Some("a push to another branch");
    }
    let paths = push.paths.as_ref()?;
    let prompts = remote.prompt_settings()?;
    let matcher = crate::discover::Matcher::new(&prompts).ok()?;
    let named = |path: &str| {
        path == DEFAULT_CONFIG_FILE
            || crate::discover::is_prompt_file_name(path)
            || matcher.is_match(path)
    };
    if paths.iter().any(|path| named(path)) {
        return None;
    }
    let content = content_files(hooks, remote).await?;
    if paths.iter().any(|path| content.contains(path)) {
        return None;
    }
    Some("no changed path is the configuration, a prompt file or a content file of one")
}

/// The content files the prompt files of the synced revision name (cached by
/// revision); `None` when they cannot be worked out in time.
async fn content_files(hooks: &Hooks, remote: &Arc<Remote>) -> Option<Arc<HashSet<String>>> {
    let good = remote.good()?;
    {
        let cached = hooks.content.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((commit, files)) = cached.as_ref()
            && *commit == good.commit
        {
            return Some(Arc::clone(files));
        }
    }
    let prompts = remote.prompt_settings()?;
    let commit = good.commit.clone();
    let job =
        tokio::task::spawn_blocking(move || named_content_files(&good.mirror, &commit, &prompts));
    let files = match tokio::time::timeout(CONTENT_FILES_TIMEOUT, job).await {
        Ok(Ok(Some(files))) => Arc::new(files),
        _ => return None,
    };
    *hooks.content.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((good.commit, Arc::clone(&files)));
    Some(files)
}

/// Every `content_file` the prompt files at `commit` in `mirror` name, resolved.
fn named_content_files(
    mirror: &std::path::Path,
    commit: &str,
    prompts: &crate::config::PromptSettings,
) -> Option<HashSet<String>> {
    use crate::discover::FileTree;
    let repo = crate::gitrepo::GitRepo::open(mirror).ok()?;
    let commit = repo.resolve_commit(commit).ok()?;
    let tree = FileTree::Commit(repo.tree(&commit).ok()?);
    let matcher = crate::discover::Matcher::new(prompts).ok()?;
    let listing = tree.list(|path| matcher.is_match(path)).ok()?;
    let mut files = HashSet::new();
    for path in &listing.files {
        let Ok(bytes) = tree.read(path) else { continue };
        let parsed = crate::prompt::parse_file(path, &bytes);
        let Some(messages) = parsed.value["messages"].as_array() else {
            continue;
        };
        for message in messages {
            if let Some(relative) = message["content_file"].as_str()
                && let Ok(resolved) = tree.resolve(path, relative)
            {
                files.insert(resolved);
            }
        }
    }
    Some(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_lists_its_paths_only_when_it_lists_them_all() {
        let body = json!({
            "ref": "refs/heads/main",
            "commits": [{"added": ["a.txt"], "modified": ["b.prompt.yaml"], "removed": []}],
        });
        let push = Push::of(Provider::GitHub, body.to_string().as_bytes());
        assert_eq!(push.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(
            push.paths,
            Some(vec!["a.txt".to_owned(), "b.prompt.yaml".to_owned()])
        );
        let forced = json!({"ref": "refs/heads/main", "forced": true, "commits": [{"added": []}]});
        assert_eq!(
            Push::of(Provider::GitHub, forced.to_string().as_bytes()).paths,
            None
        );
        let more = json!({"ref": "refs/heads/main", "total_commits_count": 30,
            "commits": [{"added": [], "modified": [], "removed": []}]});
        assert_eq!(
            Push::of(Provider::GitLab, more.to_string().as_bytes()).paths,
            None
        );
        assert_eq!(Push::of(Provider::Generic, b"not json"), Push::default());
    }

    #[test]
    fn delivery_ids_are_remembered_within_a_bound() {
        let mut seen = Seen::default();
        assert!(seen.insert("a".into()));
        assert!(!seen.insert("a".into()));
        for i in 0..REMEMBERED {
            seen.insert(i.to_string());
        }
        assert!(seen.ids.len() <= REMEMBERED);
        assert!(seen.insert("a".into()), "the oldest is forgotten");
    }
}
