//! GitHub's REST API, the three calls promptsync makes: a commit status
//! (`POST /repos/{owner}/{repo}/statuses/{sha}`), and the pull request's comments
//! (`GET /repos/{owner}/{repo}/issues/{number}/comments`, paged and capped; `POST` the
//! same path; `PATCH /repos/{owner}/{repo}/issues/comments/{id}`). Also reads the pull
//! request's number from the event file GitHub Actions names in `GITHUB_EVENT_PATH`.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use super::forge::Forge;
use super::http::Failure;
use super::status::{CommitStatus, State};

/// Comment pages read at most (100 a page): a pull request with more than 5,000
/// comments gets a new plan comment rather than an endless search.
const MAX_COMMENT_PAGES: u64 = 50;

fn owner_and_name(forge: &Forge) -> Result<(&str, &str), Failure> {
    forge
        .repository
        .split_once('/')
        .filter(|(owner, name)| !owner.is_empty() && !name.is_empty() && !name.contains('/'))
        .ok_or_else(|| {
            Failure::fail(format!(
                "notify.github: {:?} is not owner/name",
                forge.repository
            ))
        })
}

pub(super) async fn post_status(forge: &Forge, status: &CommitStatus) -> Result<(), Failure> {
    let (owner, name) = owner_and_name(forge)?;
    let url = forge.url(&["repos", owner, name, "statuses", &status.sha], "")?;
    let state = match status.state {
        State::Pending => "pending",
        State::Success => "success",
        State::Failure => "failure",
    };
    forge.send_status(url, status, state, "context").await
}

pub(super) async fn upsert_comment(
    forge: &Forge,
    number: u64,
    marker: &str,
    body: &str,
) -> Result<bool, Failure> {
    let (owner, name) = owner_and_name(forge)?;
    let number = number.to_string();
    let mut found = None;
    for page in 1..=MAX_COMMENT_PAGES {
        let url = forge.url(
            &["repos", owner, name, "issues", &number, "comments"],
            &format!("per_page=100&page={page}"),
        )?;
        let reply = forge
            .send_json(Method::GET, url, None, "GET issue comments")
            .await?;
        let Value::Array(comments) = reply else {
            return Err(Failure::fail("GET issue comments: the reply is not a list"));
        };
        found = comments.iter().find_map(|c| {
            let text = c["body"].as_str()?;
            text.contains(marker).then(|| c["id"].as_u64()).flatten()
        });
        if found.is_some() || comments.len() < 100 {
            break;
        }
    }
    let payload = json!({ "body": body });
    if let Some(id) = found {
        let url = forge.url(
            &["repos", owner, name, "issues", "comments", &id.to_string()],
            "",
        )?;
        match forge
            .send_json(Method::PATCH, url, Some(&payload), "PATCH issue comment")
            .await
        {
            Ok(_) => return Ok(true),
            // Someone else's comment with our marker (or one deleted meanwhile): add ours.
            Err(Failure::Fail {
                status: Some(403 | 404),
                message,
            }) => {
                tracing::warn!(comment = id, error = %message, "cannot edit the plan comment; adding a new one");
            }
            Err(other) => return Err(other),
        }
    }
    let url = forge.url(&["repos", owner, name, "issues", &number, "comments"], "")?;
    forge
        .send_json(Method::POST, url, Some(&payload), "POST issue comment")
        .await?;
    Ok(false)
}

/// The pull request number of a GitHub Actions event file (`pull_request`,
/// `pull_request_target`, an `issue_comment` on a pull request); `None` for other
/// events.
pub(crate) fn pull_request_number(event_path: &Path) -> Result<Option<u64>, String> {
    let bytes = crate::localfile::read(event_path, 16 * 1024 * 1024)
        .map_err(|failure| format!("GITHUB_EVENT_PATH {} {failure}", event_path.display()))?;
    let event: Value = serde_json::from_slice(&bytes).map_err(|err| {
        format!(
            "GITHUB_EVENT_PATH {} is not JSON: {err}",
            event_path.display()
        )
    })?;
    Ok(event["pull_request"]["number"]
        .as_u64()
        .or_else(|| {
            event["issue"]["pull_request"]
                .is_object()
                .then(|| event["issue"]["number"].as_u64())
                .flatten()
        })
        .or_else(|| {
            event["number"]
                .as_u64()
                .filter(|_| event["pull_request"].is_object())
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pull_request_number_comes_from_the_event() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("event.json");
        std::fs::write(
            &file,
            r#"{"action":"opened","number":7,"pull_request":{"number":7}}"#,
        )
        .unwrap();
        assert_eq!(pull_request_number(&file).unwrap(), Some(7));
        std::fs::write(&file, r#"{"ref":"refs/heads/main"}"#).unwrap();
        assert_eq!(pull_request_number(&file).unwrap(), None);
        std::fs::write(&file, "nope").unwrap();
        assert!(pull_request_number(&file).unwrap_err().contains("not JSON"));
    }
}
