//! The Respan prompts API client: typed requests and responses, paging, retries with
//! backoff, error classes. Knows nothing about git, files or prompt files.

mod client;
mod error;
mod retry;
pub mod types;

pub use client::{Client, PROMPT_PAGE_SIZE, VERSION_PAGE_SIZE, filter_in};
pub use error::{ApiError, Target};
pub use retry::RetryPolicy;
