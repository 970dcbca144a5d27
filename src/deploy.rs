//! Release-tag selection: which tag (and so which commit) decides what is live. Pure,
//! no I/O.

use thiserror::Error;

use crate::gitrepo::TagInfo;

/// The release a tag selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub tag: String,
    pub commit: String,
    pub date: i64,
    pub annotated: bool,
}

#[derive(Debug, Error)]
#[error("invalid tag pattern")]
pub struct DeployError {}

/// The newest tag matching any of `patterns` (skeleton).
pub fn select_release(
    _tags: &[TagInfo],
    _patterns: &[String],
) -> Result<Option<Release>, DeployError> {
    Ok(None)
}
