//! The Respan prompts API client: typed requests and responses, paging with caps,
//! bounded body reads and decoding, retries with backoff within one deadline, the one
//! classification of API failures. Knows nothing about git, files or prompt files.

mod account;
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
mod send;
pub mod types;

pub(crate) use account::{AccountListing, Arrived, InFull, LastRound, MayWrite, ReadAgain};
pub use client::install_tls_provider;
pub(crate) use client::{Client, POOL_IDLE, filter_in};
pub(crate) use error::{ApiError, Target};
