//! Reading a whole listing through the client: page 1 first; when it gives a total
//! (`paging`), the other pages it says the listing holds are asked for at once (within
//! the in-flight limit and the pacing every request goes through), and read in order;
//! then page by page until `paging` says it ended. Every page is decoded item by item
//! (`page`) within what is left to hold (`held`: of the pass, or of this listing
//! alone), so that no listing, however many pages it has, holds more; pages asked for
//! at once are checked in order, so a listing ends where it would page by page, and
//! what is past its end is dropped unread. A listing may finish each item and each
//! page as it arrives ([`Rounds`]: the account listing keeps in full only the prompts
//! a pass names). Knows nothing of what is listed beyond [`Listed`].

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
    /// one by one. When page 1's total fits in one round of requests and
    /// `rounds.again` says so once page 1 is read, page 1 is asked for again with the
    /// others and the listing is read from that round alone ([`Listing::one_round`]):
    /// all of it is as fresh as its newest page, at one request more. When the pages
    /// take more rounds than one after page 1, `rounds.before_last` is called with
    /// what was read once every page before the last round is in ([`last_round`]).
    pub(super) async fn all_pages<T, P>(
        &self,
        method: Method,
        path_of: P,
        body: Option<&[u8]>,
        pager: Pager,
        rounds: &Rounds<'_, T>,
    ) -> Result<Listing<T>, ApiError>
    where
        T: Listed,
        P: Fn(u64) -> String,
    {
        let held = self.held("the replies of this listing");
        let request = PageRequest {
            method: &method,
            body,
            what: pager.what(),
            size: pager.page_size(),
        };
        let read = |number: u64| {
            let read = self.one_page::<T>(request, number, &path_of, &held, rounds.each);
            async {
                let (target, number, mut page) = read.await?;
                (rounds.page)(&mut page);
                Ok::<_, ApiError>((target, number, page))
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
        let one_round = known.is_some_and(|known| known <= in_flight as u64) && (rounds.again)();
        if let Some(known) = known {
            let last = last_round(known, in_flight as u64).filter(|_| !one_round);
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
                let read = read?;
                let number = read.1;
                if let Next::Done = take(&mut pager, &mut listing, read)? {
                    listing.one_round = one_round;
                    return Ok(listing);
                }
                if last.is_some_and(|last| number + 1 == last) {
                    (rounds.before_last)(&mut listing);
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
        each: &(dyn Fn(&mut T) + Sync),
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
        let read = match page::read_each::<T>(&answer.body, limits, each) {
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

/// What the caller of [`Client::all_pages`] does at its rounds of requests.
pub(super) struct Rounds<'a, T> {
    /// Asked once page 1 is read: read the whole listing in one round (page 1 again
    /// with the others), when it fits in one?
    pub(super) again: &'a (dyn Fn() -> bool + Sync),
    /// Called once every page before the listing's last round of requests is read,
    /// with what was read (the listing so far), while that round is on its way.
    pub(super) before_last: &'a (dyn Fn(&mut Listing<T>) + Sync),
    /// Called on every item as soon as it is read, before the next one is.
    pub(super) each: &'a (dyn Fn(&mut T) + Sync),
    /// Called on every page once it is read, before the listing takes it.
    pub(super) page: &'a (dyn Fn(&mut Page<T>) + Sync),
}

impl<T: 'static> Rounds<'_, T> {
    /// A listing read as it comes.
    pub(super) const PLAIN: Rounds<'static, T> = Rounds {
        again: &|| false,
        before_last: &|_| {},
        each: &|_| {},
        page: &|_| {},
    };
}

/// The first page of a listing's last round of requests, when its `known` pages take
/// more than one round after page 1 at `in_flight` requests at a time: page 1 alone,
/// then the others `in_flight` at a time, each going out as one before it comes back.
/// `None` when the pages after page 1 fit in one round.
pub(super) fn last_round(known: u64, in_flight: u64) -> Option<u64> {
    let in_flight = in_flight.max(1);
    let after_first = known.checked_sub(1)?;
    (after_first > in_flight).then(|| 2 + in_flight * ((known - 2) / in_flight))
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

#[cfg(test)]
mod tests {
    use super::last_round;

    #[test]
    fn the_last_round_starts_after_the_full_rounds_after_page_1() {
        // 10 pages at 8: page 1; pages 2 to 9; page 10.
        assert_eq!(last_round(10, 8), Some(10));
        // 20 pages at 8: 2-9, 10-17, then 18-20.
        assert_eq!(last_round(20, 8), Some(18));
        // 17 pages at 8: 2-9, then 10-17.
        assert_eq!(last_round(17, 8), Some(10));
        // 4 pages at 2: 2-3, then 4.
        assert_eq!(last_round(4, 2), Some(4));
        // The pages after page 1 in one round: no round before the last but page 1's.
        assert_eq!(last_round(9, 8), None);
        assert_eq!(last_round(2, 8), None);
        assert_eq!(last_round(1, 8), None);
        assert_eq!(last_round(0, 8), None);
        // One at a time: every page is a round.
        assert_eq!(last_round(3, 1), Some(3));
        assert_eq!(last_round(3, 0), Some(3));
    }
}
