//! Which host's API a forge's status or comment goes to: the one place that knows
//! both clients ([`github`](super::github), [`gitlab`](super::gitlab)), which
//! themselves only know the [`Forge`] they are given.

use super::forge::{Forge, Kind};
use super::http::Failure;
use super::status::CommitStatus;

impl Forge {
    /// Post a commit status.
    pub(crate) async fn post_status(&self, status: &CommitStatus) -> Result<(), Failure> {
        match self.kind {
            Kind::GitHub => super::github::post_status(self, status).await,
            Kind::GitLab => super::gitlab::post_status(self, status).await,
        }
    }

    /// Put `body` on the pull (merge) request `number`: edit the comment that holds
    /// `marker`, or add one. Returns whether a comment was edited (not added).
    pub(crate) async fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<bool, Failure> {
        match self.kind {
            Kind::GitHub => super::github::upsert_comment(self, number, marker, body).await,
            Kind::GitLab => super::gitlab::upsert_note(self, number, marker, body).await,
        }
    }
}
