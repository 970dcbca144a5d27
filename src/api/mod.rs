//! The Respan prompts API client: typed requests and responses, paging, retries with
//! backoff, error classes. Knows nothing about git, files or prompt files.

pub mod types;

use thiserror::Error;

#[derive(Debug, Error)]
#[error("API error")]
pub struct ApiError {}
