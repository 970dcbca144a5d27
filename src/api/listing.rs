//! Reading a whole listing through the client: page by page until `paging` says it
//! ended, each page decoded item by item (`page`) within what is left to hold
//! (`held`: of the pass, or of this listing alone), so that no listing, however many
//! pages it has, holds more. Knows nothing of what is listed beyond [`Listed`].

use reqwest::Method;

use super::client::Client;
use super::decode::{DecodeError, MAX_REPLY_VALUES};
use super::error::{ApiError, Target};
use super::exchange::{Resend, undecodable};
use super::held::{Bound, Held};
use super::page::{self, PageLimits};
use super::paging::{Next, Pager};
use super::types::{Listed, Listing};

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
        let held = self.held("the replies of this listing");
        loop {
            let path = path_of(pager.page());
            let (target, answer) = self.answer(&method, &path, body, Resend::Safe).await?;
            let left = held.values_left();
            let limits = PageLimits {
                size: pager.page_size(),
                values: left.min(MAX_REPLY_VALUES),
            };
            let expected = format!("a page of {}", pager.what());
            let read = match page::read::<T>(&answer.body, limits) {
                Ok(read) => read,
                Err(DecodeError::TooManyValues { .. }) if left < MAX_REPLY_VALUES => {
                    return Err(too_much(&target, &pager, &held, Bound::Values));
                }
                Err(err) => return Err(undecodable(&target, &answer, &expected, err)),
            };
            drop(answer);
            if let Err(bound) = held.keep(read.bytes, read.values) {
                return Err(too_much(&target, &pager, &held, bound));
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

/// A listing past what is left to hold.
fn too_much(target: &Target, pager: &Pager, held: &Held, bound: Bound) -> ApiError {
    ApiError::TooMuch {
        target: target.clone(),
        problem: format!(
            "{} by page {} of {}; promptsync holds no more and stopped listing",
            held.text(bound),
            pager.page(),
            pager.what()
        ),
    }
}
