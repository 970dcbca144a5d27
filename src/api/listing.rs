//! Reading a whole listing through the client: page 1 first; when it gives a total
//! (`paging`), the other pages it says the listing holds are asked for at once (within
//! the in-flight limit and the pacing every request goes through), and read in order;
//! then page by page until `paging` says it ended. Every page is decoded item by item
//! (`page`) within what is left to hold (`held`: of the pass, or of this listing
//! alone), so that no listing, however many pages it has, holds more; pages asked for
//! at once are checked in order, so a listing ends where it would page by page, and
//! what is past its end is dropped unread. A listing may finish each page as it
//! arrives (`after`: the account listing reads the prompts a pass names in full), in
//! the page's own request, concurrently with the others. Knows nothing of what is
//! listed beyond [`Listed`].

use std::future::Future;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use reqwest::Method;

use super::client::Client;
use super::decode::{DecodeError, MAX_REPLY_VALUES};
use super::error::{ApiError, Target};
use super::exchange::{Resend, undecodable};
use super::held::{Bound, Held};
use super::page::{self, PageLimits};
use super::paging::{Next, Pager};
use super::types::{Listed, Listing, Page};

/// What one page request needs to know of its listing.
#[derive(Clone, Copy)]
struct PageRequest<'a> {
    method: &'a Method,
    body: Option<&'a [u8]>,
    what: &'static str,
    size: usize,
}

impl Client {
    /// Read a listing until `pager` says it ended (or why it cannot), within the
    /// listing's bounds: page 1, then at once the pages its total says follow, then
    /// one by one. When page 1's total fits in one round of requests and `again` says
    /// so once page 1 is read, page 1 is asked for again with the others and the
    /// listing is read from that round alone ([`Listing::one_round`]): all of it is
    /// as fresh as its newest page, at one request more.
    pub(super) async fn all_pages<T, P, A, F>(
        &self,
        method: Method,
        path_of: P,
        body: Option<&[u8]>,
        pager: Pager,
        after: A,
        again: &dyn Fn() -> bool,
    ) -> Result<Listing<T>, ApiError>
    where
        T: Listed,
        P: Fn(u64) -> String,
        A: Fn(Page<T>) -> F,
        F: Future<Output = Page<T>>,
    {
        let held = self.held("the replies of this listing");
        let request = PageRequest {
            method: &method,
            body,
            what: pager.what(),
            size: pager.page_size(),
        };
        let read = |number: u64| {
            let read = self.one_page::<T>(request, number, &path_of, &held);
            async {
                let (target, number, page) = read.await?;
                Ok::<_, ApiError>((target, number, after(page).await))
            }
        };
        let first = read(1).await?;
        // The listing's state before page 1, should page 1 be read again.
        let before = pager.clone();
        let (mut pager, mut listing) = (pager, Listing::default());
        if let Next::Done = take(&mut pager, &mut listing, first)? {
            return Ok(listing);
        }
        // Page 1 gave a total: the pages it needs, at once, read in order.
        let in_flight = self.in_flight();
        let known = pager.known_pages().filter(|known| *known >= 2);
        let one_round = known.is_some_and(|known| known <= in_flight as u64) && again();
        if let Some(known) = known {
            let from = if one_round {
                // Page 1 again, with the others: what was read of it is dropped.
                tracing::debug!(
                    pages = known,
                    "page 1 again with the pages after it: the listing is read in one round"
                );
                (pager, listing) = (before, Listing::default());
                1
            } else {
                2
            };
            // The client's in-flight limit bounds the requests; twice as many pages in
            // hand lets the next request go out while pages that came are finished.
            let mut pages = stream::iter(from..=known)
                .map(&read)
                .buffered(in_flight * 2);
            while let Some(read) = pages.next().await {
                if let Next::Done = take(&mut pager, &mut listing, read?)? {
                    listing.one_round = one_round;
                    return Ok(listing);
                }
            }
        }
        loop {
            let page = read(pager.page()).await?;
            if let Next::Done = take(&mut pager, &mut listing, page)? {
                return Ok(listing);
            }
        }
    }

    /// Page `number`, decoded within what `held` has left, and counted against it.
    async fn one_page<T: Listed>(
        &self,
        request: PageRequest<'_>,
        number: u64,
        path_of: &impl Fn(u64) -> String,
        held: &Arc<Held>,
    ) -> Result<(Target, u64, Page<T>), ApiError> {
        let path = path_of(number);
        let (target, answer) = self
            .answer(request.method, &path, request.body, Resend::Safe)
            .await?;
        let left = held.values_left();
        let limits = PageLimits {
            size: request.size,
            values: left.min(MAX_REPLY_VALUES),
        };
        let read = match page::read::<T>(&answer.body, limits) {
            Ok(read) => read,
            Err(DecodeError::TooManyValues { .. }) if left < MAX_REPLY_VALUES => {
                return Err(too_much(&target, number, request.what, held, Bound::Values));
            }
            Err(err) => {
                let expected = format!("a page of {}", request.what);
                return Err(undecodable(&target, &answer, &expected, err));
            }
        };
        drop(answer);
        let values = if T::KEEPS_VALUES { read.values } else { 0 };
        if let Err(bound) = held.keep(read.bytes, values) {
            return Err(too_much(&target, number, request.what, held, bound));
        }
        Ok((target, number, read.page))
    }
}

/// Page `number` read: told to the pager, added to the listing. What comes next, or
/// why the listing cannot go on.
fn take<T: Listed>(
    pager: &mut Pager,
    listing: &mut Listing<T>,
    (target, number, page): (Target, u64, Page<T>),
) -> Result<Next, ApiError> {
    debug_assert_eq!(number, pager.page(), "pages are taken in order");
    let ids = page.results.iter().filter_map(Listed::key).collect();
    // An item that did not parse still fills the page: it is not empty.
    let len = page.results.len() + page.problems.len();
    let next = pager.after(page.count, len, ids, page.next.is_some());
    listing.add(usize::try_from(number).unwrap_or(usize::MAX), page);
    let next = next.map_err(|problem| ApiError::Paging { target, problem })?;
    if next == Next::Done {
        listing.untrusted = pager.untrusted();
    }
    Ok(next)
}

/// A listing past what is left to hold.
fn too_much(target: &Target, page: u64, what: &str, held: &Held, bound: Bound) -> ApiError {
    ApiError::TooMuch {
        target: target.clone(),
        problem: format!(
            "{} by page {page} of {what}; promptsync holds no more and stopped listing",
            held.text(bound),
        ),
    }
}
