//! The Respan prompts API client: typed requests and responses, paging with caps,
//! bounded body reads, retries with backoff, error classes. Knows nothing about git,
//! files or prompt files.

mod client;
mod error;
mod pace;
mod paging;
mod retry;
pub mod types;

pub use client::{
    Client, MAX_BODY_BYTES, MAX_PROMPT_PAGES, MAX_VERSION_PAGES, PROMPT_PAGE_SIZE, ReplyHook,
    VERSION_PAGE_SIZE, filter_in, install_tls_provider,
};
pub use error::{ApiError, Target};
pub use retry::{FAIL_FAST_BUDGET, RetryPolicy};
