//! GitLab's REST API (v4), the calls promptsync makes: a commit status
//! (`POST /projects/:id/statuses/:sha`), and a merge request's notes
//! (`GET /projects/:id/merge_requests/:iid/notes`, paged and capped; `POST` the same
//! path; `PUT /projects/:id/merge_requests/:iid/notes/:note_id`). The project is its
//! numeric id or its path, sent as one escaped segment (`group%2Fproject`).

use reqwest::Method;
use serde_json::{Value, json};

use super::forge::Forge;
use super::http::Failure;
use super::status::{CommitStatus, State};

/// Note pages read at most (100 a page).
const MAX_NOTE_PAGES: u64 = 50;

pub(super) async fn post_status(forge: &Forge, status: &CommitStatus) -> Result<(), Failure> {
    let url = forge.url(
        &["projects", &forge.repository, "statuses", &status.sha],
        "",
    )?;
    let state = match status.state {
        State::Pending => "pending",
        State::Success => "success",
        State::Failure => "failed",
    };
    forge.send_status(url, status, state, "name").await
}

pub(super) async fn upsert_note(
    forge: &Forge,
    iid: u64,
    marker: &str,
    body: &str,
) -> Result<bool, Failure> {
    let iid = iid.to_string();
    let project = forge.repository.as_str();
    let mut found = None;
    for page in 1..=MAX_NOTE_PAGES {
        let url = forge.url(
            &["projects", project, "merge_requests", &iid, "notes"],
            &format!("per_page=100&page={page}&sort=asc&order_by=created_at"),
        )?;
        let reply = forge
            .send_json(Method::GET, url, None, "GET merge request notes")
            .await?;
        let Value::Array(notes) = reply else {
            return Err(Failure::fail(
                "GET merge request notes: the reply is not a list",
            ));
        };
        found = notes.iter().find_map(|n| {
            let text = n["body"].as_str()?;
            (text.contains(marker) && n["system"] != true)
                .then(|| n["id"].as_u64())
                .flatten()
        });
        if found.is_some() || notes.len() < 100 {
            break;
        }
    }
    let payload = json!({ "body": body });
    if let Some(id) = found {
        let url = forge.url(
            &[
                "projects",
                project,
                "merge_requests",
                &iid,
                "notes",
                &id.to_string(),
            ],
            "",
        )?;
        match forge
            .send_json(Method::PUT, url, Some(&payload), "PUT merge request note")
            .await
        {
            Ok(_) => return Ok(true),
            Err(Failure::Fail {
                status: Some(403 | 404),
                message,
            }) => {
                tracing::warn!(note = id, error = %message, "cannot edit the plan note; adding a new one");
            }
            Err(other) => return Err(other),
        }
    }
    let url = forge.url(&["projects", project, "merge_requests", &iid, "notes"], "")?;
    forge
        .send_json(Method::POST, url, Some(&payload), "POST merge request note")
        .await?;
    Ok(false)
}
