//! GitLab's REST API (v4), the calls promptsync makes: a commit status
//! (`POST /projects/:id/statuses/:sha`), and a merge request's notes
//! (`GET /projects/:id/merge_requests/:iid/notes`, paged and capped; `POST` the same
//! path; `PUT /projects/:id/merge_requests/:iid/notes/:note_id`). The project is its
//! numeric id or its path, sent as one escaped segment (`group%2Fproject`).

use reqwest::Method;

use super::forge::{Forge, Thread};
use super::http::Failure;
use super::status::{CommitStatus, State};

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
    let thread = Thread {
        list: &["projects", project, "merge_requests", &iid, "notes"],
        order: "&sort=asc&order_by=created_at",
        item: &["projects", project, "merge_requests", &iid, "notes"],
        edit: Method::PUT,
        noun: "merge request note",
        candidate: |note| note["system"] != true,
    };
    forge.upsert(&thread, marker, body).await
}
