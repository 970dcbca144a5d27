//! Reading a whole listing through the client: page by page until `paging` says it
//! ended, each page decoded item by item (`page`) within what is left of the
//! listing's bounds, [`MAX_LISTING_BYTES`] of items and [`MAX_LISTING_VALUES`] JSON
//! values, so that no listing, however many pages it has, holds more. Knows nothing of
//! what is listed beyond [`Listed`].

use reqwest::Method;

use super::client::Client;
use super::decode::{DecodeError, MAX_REPLY_VALUES};
use super::error::{ApiError, Target};
use super::exchange::{Resend, undecodable};
use super::page::{self, PageLimits};
use super::paging::{Next, Pager};
use super::types::{Listed, Listing};

/// The most one listing holds, in the JSON text of its items: 40 MiB (10,000 prompts
/// with their two versions in full take about 22 MiB).
pub const MAX_LISTING_BYTES: u64 = 40 * 1024 * 1024;
/// The most JSON values one listing holds: 1.5 million (10,000 prompts with their two
/// versions in full hold about 950,000).
pub const MAX_LISTING_VALUES: u64 = 1_500_000;

impl Client {
    /// Read a listing page by page until `pager` says it ended (or why it cannot),
    /// within the listing's bounds.
    pub(super) async fn all_pages<T, P>(
        &self,
        method: Method,
        path_of: P,
        body: Option<&[u8]>,
        mut pager: Pager,
    ) -> Result<Listing<T>, ApiError>
    where
        T: Listed,
        P: Fn(u64) -> String,
    {
        let mut listing = Listing::default();
        let (mut bytes, mut values) = (0u64, 0u64);
        loop {
            let path = path_of(pager.page());
            let (target, answer) = self.answer(&method, &path, body, Resend::Safe).await?;
            let left = MAX_LISTING_VALUES.saturating_sub(values);
            let limits = PageLimits {
                size: pager.page_size(),
                values: left.min(MAX_REPLY_VALUES),
            };
            let expected = format!("a page of {}", pager.what());
            let read = match page::read::<T>(&answer.body, limits) {
                Ok(read) => read,
                Err(DecodeError::TooManyValues { .. }) if left < MAX_REPLY_VALUES => {
                    return Err(too_much(&target, &pager, "JSON values", MAX_LISTING_VALUES));
                }
                Err(err) => return Err(undecodable(&target, &answer, &expected, err)),
            };
            drop(answer);
            bytes += read.bytes;
            values += read.values;
            if bytes > MAX_LISTING_BYTES {
                return Err(too_much(
                    &target,
                    &pager,
                    "bytes of JSON",
                    MAX_LISTING_BYTES,
                ));
            }
            let page = read.page;
            let ids = page.results.iter().filter_map(Listed::key).collect();
            // An item that did not parse still fills the page: it is not empty.
            let len = page.results.len() + page.problems.len();
            let number = usize::try_from(pager.page()).unwrap_or(usize::MAX);
            let next = pager.after(page.count, len, ids, page.next.is_some());
            listing.add(number, page);
            match next.map_err(|problem| ApiError::Paging { target, problem })? {
                Next::Page(_) => {}
                Next::Done => {
                    listing.untrusted = pager.untrusted();
                    return Ok(listing);
                }
            }
        }
    }
}

/// A listing past one of its bounds.
fn too_much(target: &Target, pager: &Pager, unit: &str, limit: u64) -> ApiError {
    ApiError::Paging {
        target: target.clone(),
        problem: format!(
            "the listing holds more than {limit} {unit} of {} by page {}, more than \
             promptsync holds; it stopped listing",
            pager.what(),
            pager.page()
        ),
    }
}
