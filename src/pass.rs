//! What one reconcile pass found and did, as the report, the daemon and the baseline
//! read it: the [`Pass`] (desired state, plans with their outcomes, what was not
//! managed), and the [`PassError`] of a pass that ended early with the part it had
//! done. The record only: [`crate::reconcile`] runs a pass and fills it.

use crate::api::ApiError;
use crate::apply::Outcome;
use crate::deploy::Release;
use crate::desired::DesiredSet;
use crate::error::Error;
use crate::failure::FailureClass;
use crate::plan::{DeployItem, Remote, SyncItem};

/// A remote prompt that no prompt file names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unmanaged {
    pub prompt_id: String,
    pub name: Option<String>,
    /// Its live version, when one is deployed.
    pub live_version: Option<u64>,
    /// Its newest version.
    pub newest_version: Option<u64>,
}

/// A pass that ended before it was done, with what it had found and done so far.
#[derive(Debug)]
pub struct PassError {
    pub class: FailureClass,
    pub error: Error,
    /// The pass up to the failure; `None` when it failed before reading the source.
    pub partial: Option<Box<Pass>>,
}

impl PassError {
    pub(crate) fn new(error: impl Into<Error>, partial: Option<Pass>) -> PassError {
        let error = error.into();
        PassError {
            class: error.class(),
            error,
            partial: partial.map(Box::new),
        }
    }
}

impl std::fmt::Display for PassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for PassError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

/// Everything a pass found and did, for the report.
#[derive(Debug)]
pub struct Pass {
    pub source: DesiredSet,
    /// The release tag that decides what is live, with its commit's desired state.
    pub release: Option<(Release, DesiredSet)>,
    /// No change was sent: a dry run, or `suspend` is set.
    pub dry_run: bool,
    pub suspended: bool,
    pub sync: Vec<(SyncItem, Option<Outcome>)>,
    pub deploy: Vec<(DeployItem, Option<Outcome>)>,
    /// Problems no single prompt owns (a list item that names no prompt).
    pub warnings: Vec<String>,
    /// The remote prompts no file names, when asked for and the listing worked.
    pub unmanaged: Option<Vec<Unmanaged>>,
    /// The remote prompts the repository names: when no change is sent (a dry run),
    /// as read at the start of the pass, for reports that show what is where; when the
    /// pass wrote, as it last read them, held so that whoever owns the pass decides
    /// when they are freed (a one-shot command leaves them to its exit).
    pub remote: Remote,
    /// Prompt files left out because they are as they were when last in sync (an
    /// incremental pass); they count as unchanged.
    pub carried: usize,
    /// The deploy gate's outcome, when `deploy.gate_command` ran before the deploy.
    pub gate: Option<crate::notify::gate::GateOutcome>,
    /// The reads that failed one prompt each (its version list, a version in full,
    /// reading it again after the deploy), for a caller that retries: whether one is
    /// worth it is the error's to say.
    pub failed_reads: Vec<ApiError>,
}
