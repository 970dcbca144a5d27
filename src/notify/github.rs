//! GitHub's REST API, the three calls promptsync makes: a commit status
//! (`POST /repos/{owner}/{repo}/statuses/{sha}`), and the pull request's comments
//! (`GET /repos/{owner}/{repo}/issues/{number}/comments`, paged and capped; `POST` the
//! same path; `PATCH /repos/{owner}/{repo}/issues/comments/{id}`). Also reads the pull
//! request's number from the event file GitHub Actions names in `GITHUB_EVENT_PATH`.

use std::path::Path;

use reqwest::Method;
use serde_json::Value;

use super::forge::{Forge, Thread};
use super::http::Failure;
use super::status::{CommitStatus, State};

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
    let thread = Thread {
        list: &["repos", owner, name, "issues", &number, "comments"],
        order: "",
        item: &["repos", owner, name, "issues", "comments"],
        edit: Method::PATCH,
        noun: "issue comment",
        candidate: |_| true,
    };
    forge.upsert(&thread, marker, body).await
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
