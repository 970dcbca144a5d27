//! The Respan prompts API client: typed requests and responses, paging with caps,
//! bounded body reads and decoding, retries with backoff within one deadline, the one
//! classification of API failures. Knows nothing about git, files or prompt files.

mod client;
pub(crate) mod decode;
mod error;
mod exchange;
mod held;
mod listing;
mod pace;
mod page;
mod paging;
mod retry;
pub mod types;

pub use client::{
    Client, MAX_BODY_BYTES, MAX_PROMPT_PAGES, MAX_VERSION_PAGES, PROMPT_PAGE_SIZE, ReplyHook,
    VERSION_PAGE_SIZE, filter_in, install_tls_provider,
};
pub use decode::MAX_REPLY_VALUES;
pub use error::{ApiError, RateLimit, Target};
pub use held::{MAX_HELD_BYTES, MAX_HELD_VALUES};
pub use pace::MAX_PAUSE;
pub use retry::{FAIL_FAST_BUDGET, RetryPolicy};
