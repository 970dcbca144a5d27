//! The git host a repository lives on, GitHub or GitLab, as one type: where its API
//! is, which repository, which token, worked out from `[notify.github]` /
//! `[notify.gitlab]`, then the CI's own variables, then the `origin` remote. The two
//! clients ([`github`](super::github), [`gitlab`](super::gitlab)) speak the hosts'
//! REST APIs with what this module works out; [`send`](super::send) picks which.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::http::{Failure, Http};
use super::status::CommitStatus;
use crate::config::ForgeSettings;

/// The environment variables the forges' defaults come from, read once (tests give
/// them explicitly).
#[derive(Debug, Clone, Default)]
pub(crate) struct CiEnv {
    vars: BTreeMap<String, String>,
}

/// Variables read from the environment.
/// Comment pages read at most (100 a page): a pull request with more than 5,000
/// comments gets a new plan comment rather than an endless search.
const MAX_COMMENT_PAGES: u32 = 50;

/// Where a forge keeps a pull request's comments, for [`Forge::upsert`].
pub(super) struct Thread<'a> {
    /// The comment list's path: a page of it is read with GET, a new one POSTed.
    pub list: &'a [&'a str],
    /// The list's query besides its page (its order).
    pub order: &'a str,
    /// One comment's path, before its id.
    pub item: &'a [&'a str],
    /// How one is edited: PATCH on GitHub, PUT on GitLab.
    pub edit: reqwest::Method,
    /// What one is called in messages: `issue comment`, `merge request note`.
    pub noun: &'a str,
    /// Whether a listed comment can be ours at all (GitLab's system notes are not).
    pub candidate: fn(&serde_json::Value) -> bool,
}

const VARS: [&str; 13] = [
    "GITHUB_ACTIONS",
    "GITHUB_REPOSITORY",
    "GITHUB_API_URL",
    "GITHUB_TOKEN",
    "GITHUB_EVENT_PATH",
    "GITHUB_SERVER_URL",
    "GITHUB_RUN_ID",
    "GITLAB_CI",
    "CI_PROJECT_ID",
    "CI_API_V4_URL",
    "GITLAB_TOKEN",
    "CI_MERGE_REQUEST_IID",
    "CI_PIPELINE_URL",
];

impl CiEnv {
    pub(crate) fn from_process() -> CiEnv {
        CiEnv::from_pairs(VARS.iter().filter_map(|name| {
            std::env::var(name)
                .ok()
                .map(|value| (name.to_string(), value))
        }))
    }

    pub(crate) fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> CiEnv {
        CiEnv {
            vars: pairs
                .into_iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .collect(),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub(crate) fn in_github_actions(&self) -> bool {
        self.get("GITHUB_ACTIONS") == Some("true")
    }
}

/// Which host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    GitHub,
    GitLab,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::GitHub => "github",
            Kind::GitLab => "gitlab",
        }
    }
}

/// Where the token is: read at each use, so a rotated one takes effect.
#[derive(Debug, Clone)]
enum Token {
    File(PathBuf),
    Env(SecretString),
}

/// A forge's API, a repository on it and the token: ready to post.
#[derive(Debug, Clone)]
pub(crate) struct Forge {
    pub kind: Kind,
    /// The API root, without a trailing slash.
    api: String,
    /// `owner/name`, or a GitLab project id or path.
    pub repository: String,
    token: Token,
    pub target_url: Option<String>,
    http: Http,
}

impl Forge {
    /// The forge of `settings` with the defaults filled in; the error says what is
    /// missing (no repository, no token).
    pub(crate) fn resolve(
        kind: Kind,
        settings: &ForgeSettings,
        env: &CiEnv,
        origin_url: Option<&str>,
        http: Http,
    ) -> Result<Forge, String> {
        let (repo_var, api_var, token_var, default_api) = match kind {
            Kind::GitHub => (
                "GITHUB_REPOSITORY",
                "GITHUB_API_URL",
                "GITHUB_TOKEN",
                "https://api.github.com",
            ),
            Kind::GitLab => (
                "CI_PROJECT_ID",
                "CI_API_V4_URL",
                "GITLAB_TOKEN",
                "https://gitlab.com/api/v4",
            ),
        };
        let repository = settings
            .repository
            .clone()
            .or_else(|| env.get(repo_var).map(str::to_owned))
            .or_else(|| origin_url.and_then(repository_of_url))
            .ok_or_else(|| {
                format!(
                    "notify.{}: no repository: set `repository`, or {repo_var}, or an `origin` remote",
                    kind.name()
                )
            })?;
        let api = match (&settings.api_url, env.get(api_var)) {
            (Some(url), _) => url.as_str().to_owned(),
            (None, Some(text)) => crate::config::check_url(text)
                .map_err(|err| format!("{api_var}: {err}"))?
                .as_str()
                .to_owned(),
            (None, None) => default_api.to_owned(),
        };
        let token = match (
            &settings.token_file,
            crate::secretfile::from_env(env.get(token_var)),
        ) {
            (Some(file), _) => Token::File(file.clone()),
            (None, Some(token)) => Token::Env(token),
            (None, None) => {
                return Err(format!(
                    "notify.{}: no token: set `token_file`, or {token_var}",
                    kind.name()
                ));
            }
        };
        // In CI, a status links to the run that posted it.
        let run_url = run_url(kind, env);
        Ok(Forge {
            kind,
            api: api.trim_end_matches('/').to_owned(),
            repository,
            token,
            target_url: settings.target_url.clone().or(run_url),
            http,
        })
    }

    /// A receiver's name in logs and `/status`: `github owner/name`.
    pub(crate) fn label(&self) -> String {
        format!("{} {}", self.kind.name(), self.repository)
    }

    /// `{api}/{segments...}` with each segment escaped, then `query`.
    pub(super) fn url(&self, segments: &[&str], query: &str) -> Result<url::Url, Failure> {
        let mut text = self.api.clone();
        for segment in segments {
            text.push('/');
            text.extend(url::form_urlencoded::byte_serialize(segment.as_bytes()));
        }
        if !query.is_empty() {
            text.push('?');
            text.push_str(query);
        }
        url::Url::parse(&text).map_err(|err| Failure::fail(format!("a bad API URL: {err}")))
    }

    /// The authentication headers, with the token read now.
    pub(super) fn auth(&self) -> Result<Vec<(HeaderName, HeaderValue)>, Failure> {
        let token = match &self.token {
            Token::File(path) => {
                crate::secretfile::read_file(path, "token").map_err(Failure::fail)?
            }
            Token::Env(token) => token.clone(),
        };
        let (name, text) = match self.kind {
            Kind::GitHub => (
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", token.expose_secret()),
            ),
            Kind::GitLab => (
                HeaderName::from_static("private-token"),
                token.expose_secret().to_owned(),
            ),
        };
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| Failure::fail("the token holds characters not allowed in a header"))?;
        value.set_sensitive(true);
        let mut headers = vec![(name, value)];
        if self.kind == Kind::GitHub {
            headers.push((
                reqwest::header::ACCEPT,
                HeaderValue::from_static("application/vnd.github+json"),
            ));
            headers.push((
                HeaderName::from_static("x-github-api-version"),
                HeaderValue::from_static("2022-11-28"),
            ));
        }
        Ok(headers)
    }

    /// One JSON exchange with the API, authenticated; the reply's JSON (`null` when empty).
    pub(super) async fn send_json(
        &self,
        method: reqwest::Method,
        url: url::Url,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<serde_json::Value, Failure> {
        let headers = self.auth()?;
        let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        let reply = self.http.send(method, url, &headers, body, what).await?;
        if reply.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&reply.body)
            .map_err(|err| Failure::fail(format!("{what}: the reply is not JSON ({err})")))
    }

    /// Edit the comment of `thread` whose body holds `marker` to say `body`, or add
    /// one: also when that comment cannot be edited (someone else's with our marker,
    /// or one deleted meanwhile). Whether an existing comment was edited.
    pub(super) async fn upsert(
        &self,
        thread: &Thread<'_>,
        marker: &str,
        body: &str,
    ) -> Result<bool, Failure> {
        let noun = thread.noun;
        let mut found = None;
        for page in 1..=MAX_COMMENT_PAGES {
            let query = format!("per_page=100&page={page}{}", thread.order);
            let url = self.url(thread.list, &query)?;
            let what = format!("GET {noun}s");
            let reply = self
                .send_json(reqwest::Method::GET, url, None, &what)
                .await?;
            let serde_json::Value::Array(comments) = reply else {
                return Err(Failure::fail(format!("{what}: the reply is not a list")));
            };
            found = comments.iter().find_map(|c| {
                let text = c["body"].as_str()?;
                (text.contains(marker) && (thread.candidate)(c))
                    .then(|| c["id"].as_u64())
                    .flatten()
            });
            if found.is_some() || comments.len() < 100 {
                break;
            }
        }
        let payload = serde_json::json!({ "body": body });
        if let Some(id) = found {
            let id_text = id.to_string();
            let mut path = thread.item.to_vec();
            path.push(&id_text);
            let url = self.url(&path, "")?;
            let what = format!("{} {noun}", thread.edit);
            match self
                .send_json(thread.edit.clone(), url, Some(&payload), &what)
                .await
            {
                Ok(_) => return Ok(true),
                Err(Failure::Fail {
                    status: Some(403 | 404),
                    message,
                }) => {
                    tracing::warn!(comment = id, error = %message, "cannot edit the plan {noun}; adding a new one");
                }
                Err(other) => return Err(other),
            }
        }
        let url = self.url(thread.list, "")?;
        self.send_json(
            reqwest::Method::POST,
            url,
            Some(&payload),
            &format!("POST {noun}"),
        )
        .await?;
        Ok(false)
    }

    /// POST `status` to `url` as `{"state", <name_field>, "description", "target_url"}`:
    /// what GitHub and GitLab share; each host names its fields and states.
    pub(super) async fn send_status(
        &self,
        url: url::Url,
        status: &CommitStatus,
        state: &str,
        name_field: &str,
    ) -> Result<(), Failure> {
        let mut body = serde_json::json!({
            "state": state,
            name_field: status.context,
            "description": status.description,
        });
        if let Some(link) = status.target_url.as_ref().or(self.target_url.as_ref()) {
            body["target_url"] = serde_json::Value::String(link.clone());
        }
        let what = format!("POST statuses ({})", status.context);
        self.send_json(reqwest::Method::POST, url, Some(&body), &what)
            .await?;
        Ok(())
    }
}

/// The page of the CI run this process is part of (a GitHub Actions run, a GitLab
/// pipeline).
pub(crate) fn run_url(kind: Kind, env: &CiEnv) -> Option<String> {
    match kind {
        Kind::GitHub => env
            .get("GITHUB_SERVER_URL")
            .zip(env.get("GITHUB_REPOSITORY"))
            .zip(env.get("GITHUB_RUN_ID"))
            .map(|((server, repo), run)| format!("{server}/{repo}/actions/runs/{run}")),
        Kind::GitLab => env.get("CI_PIPELINE_URL").map(str::to_owned),
    }
}

/// `owner/name` (or `group/sub/project`) from a remote URL: `https://host/owner/name.git`,
/// `git@host:owner/name.git`, `ssh://git@host/owner/name`.
pub(crate) fn repository_of_url(url: &str) -> Option<String> {
    let path = if let Some((_, rest)) = url.split_once("://") {
        rest.split_once('/')?.1
    } else {
        // scp-like: user@host:path
        url.split_once(':')?.1
    };
    let path = path
        .trim_matches('/')
        .trim_end_matches(".git")
        .trim_matches('/');
    (path.contains('/') && !path.contains("..")).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_come_from_remote_urls() {
        for (url, repo) in [
            ("https://github.com/acme/prompts.git", Some("acme/prompts")),
            (
                "https://x:tok@github.com/acme/prompts",
                Some("acme/prompts"),
            ),
            ("git@github.com:acme/prompts.git", Some("acme/prompts")),
            (
                "ssh://git@gitlab.com/group/sub/proj.git",
                Some("group/sub/proj"),
            ),
            ("/srv/repo", None),
            ("https://github.com/acme", None),
        ] {
            assert_eq!(repository_of_url(url).as_deref(), repo, "{url}");
        }
    }

    #[test]
    fn defaults_come_from_the_ci_then_origin() {
        let http = Http::new(std::time::Duration::from_secs(1)).unwrap();
        let env = CiEnv::from_pairs([
            ("GITHUB_REPOSITORY".to_owned(), "acme/from-env".to_owned()),
            ("GITHUB_TOKEN".to_owned(), "t".to_owned()),
            (
                "GITHUB_API_URL".to_owned(),
                "https://ghe.example.com/api/v3".to_owned(),
            ),
        ]);
        let forge = Forge::resolve(
            Kind::GitHub,
            &ForgeSettings::default(),
            &env,
            Some("git@github.com:acme/origin.git"),
            http.clone(),
        )
        .unwrap();
        assert_eq!(forge.repository, "acme/from-env");
        assert_eq!(
            forge.url(&["repos", "acme/x"], "").unwrap().as_str(),
            "https://ghe.example.com/api/v3/repos/acme%2Fx"
        );
        let none = CiEnv::default();
        let err = Forge::resolve(
            Kind::GitHub,
            &ForgeSettings::default(),
            &none,
            Some("git@github.com:acme/origin.git"),
            http.clone(),
        )
        .unwrap_err();
        assert!(err.contains("no token"), "{err}");
        let err =
            Forge::resolve(Kind::GitLab, &ForgeSettings::default(), &none, None, http).unwrap_err();
        assert!(
            err.contains("no repository") && err.contains("CI_PROJECT_ID"),
            "{err}"
        );
    }
}
