//! When a paged listing ends. The contract (respan-api.md 2.5) says: follow `next`
//! until it is null. A broken or hostile server can keep `next` set forever, so the
//! listing also ends on:
//!
//! - **an empty page** (`results: []`) with `next` set: taken as the end, with a debug
//!   log. A server that sets `next` whenever a page is full sends exactly that after
//!   a full last page, and the listing is complete; an error would fail every account
//!   whose count is a multiple of the page size.
//! - **a repeated page** (the same ids as the page before): an error. The server
//!   ignores `page`, and reading on would only repeat it.
//! - **a page cap**: an error. When the first page's `count` is larger than the page
//!   itself it is a total (2.5: per page or total; a per-page count always equals the
//!   page's length), and the cap is the pages that total needs at the server's own
//!   page size plus [`SLACK_PAGES`] for items created while we read. Otherwise, and
//!   never above it, the hard ceiling of the listing (`max_pages`).
//!
//! A listing that ends is also checked against the `count`s its pages gave: when it
//! holds fewer items than the largest `count` (a per-page count never exceeds what
//! the listing holds; a total does when items are missing, as when page 1 is empty
//! while `count` > 0 and `next` is set), it is untrusted: its items are real, but
//! nothing may be taken as absent from it ([`Pager::untrusted`]).
//!
//! Pure: the client feeds it each page and does the requests.

/// Pages read beyond what a claimed total needs: prompts or versions created while
/// the listing runs push items onto later pages.
pub(crate) const SLACK_PAGES: u64 = 2;

/// What to do after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Ask for this page number.
    Page(u64),
    Done,
}

/// The state of one listing.
#[derive(Debug, Clone)]
pub(crate) struct Pager {
    /// What is listed, plural ("prompts"), for messages.
    what: &'static str,
    /// The page size asked for.
    page_size: usize,
    /// The hard ceiling, in pages.
    max_pages: u64,
    /// The page just read (1-based).
    page: u64,
    /// The cap from a claimed total: (pages, total).
    claimed: Option<(u64, u64)>,
    previous_ids: Vec<String>,
    /// Items in the pages read so far (those that did not parse included).
    items: u64,
    /// The largest `count` a page gave.
    counted: Option<u64>,
    /// The pages a claimed total needs at page 1's length (no slack).
    known: Option<u64>,
}

impl Pager {
    pub(crate) fn new(what: &'static str, page_size: usize, max_pages: u64) -> Pager {
        Pager {
            what,
            page_size,
            max_pages,
            page: 1,
            claimed: None,
            previous_ids: Vec::new(),
            items: 0,
            counted: None,
            known: None,
        }
    }

    /// The pages the listing holds, as page 1's claimed total says at page 1's length
    /// (within the caps, without the pages to spare): known once page 1 is read and
    /// gave a total. The client asks for the pages up to it at once; what they say is
    /// still checked in order, so a listing ends as it would page by page.
    pub(crate) fn known_pages(&self) -> Option<u64> {
        self.known
    }

    /// What is listed, plural.
    pub(crate) fn what(&self) -> &'static str {
        self.what
    }

    /// The page size asked for.
    pub(crate) fn page_size(&self) -> usize {
        self.page_size
    }

    /// Why the listing that just ended may be missing items: its pages held fewer
    /// than a `count` the server gave. `None`: complete as far as can be told.
    pub(crate) fn untrusted(&self) -> Option<String> {
        let counted = self.counted.filter(|counted| self.items < *counted)?;
        Some(if self.items == 0 {
            format!(
                "page 1 is empty, yet the server counted {counted} {}",
                self.what
            )
        } else {
            format!(
                "its pages held {} of the {counted} {} the server counted",
                self.items, self.what
            )
        })
    }

    /// The page to ask for now.
    pub(crate) fn page(&self) -> u64 {
        self.page
    }

    /// The page just read had `len` items with these `ids`, this `count`, and `next`
    /// set or not. `Err` says why the listing cannot go on (without the request,
    /// which the caller names).
    pub(crate) fn after(
        &mut self,
        count: Option<u64>,
        len: usize,
        ids: Vec<String>,
        has_next: bool,
    ) -> Result<Next, String> {
        let page = self.page;
        self.items += len as u64;
        self.counted = self.counted.max(count);
        if !has_next {
            return Ok(Next::Done);
        }
        if len == 0 {
            tracing::debug!(
                page,
                what = self.what,
                "an empty page says more pages follow; taking it as the end of the listing"
            );
            return Ok(Next::Done);
        }
        if !ids.is_empty() && ids == self.previous_ids {
            return Err(format!(
                "page {page} repeats page {} (the same {len} {}) and still says more \
                 follow; the server does not page, so promptsync stopped listing",
                page - 1,
                self.what
            ));
        }
        if page == 1
            && let Some(total) = count.filter(|total| *total > len as u64)
        {
            let pages = total.div_ceil(len as u64);
            self.known = Some(pages.min(self.max_pages));
            self.claimed = Some(((pages + SLACK_PAGES).min(self.max_pages), total));
        }
        match self.claimed {
            Some((cap, total)) if page >= cap => {
                return Err(format!(
                    "page {page} still says more pages follow, but the server counted \
                     {total} {what} in all, {cap} pages at most at {len} a page (with \
                     {SLACK_PAGES} pages to spare); promptsync stopped listing",
                    what = self.what
                ));
            }
            None if page >= self.max_pages => {
                return Err(format!(
                    "page {page} still says more pages follow; promptsync reads at most \
                     {max} pages ({} {what} at {} a page) and stopped listing",
                    self.max_pages * self.page_size as u64,
                    self.page_size,
                    max = self.max_pages,
                    what = self.what
                ));
            }
            _ => {}
        }
        self.previous_ids = ids;
        self.page += 1;
        Ok(Next::Page(self.page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(page: u64, len: usize) -> Vec<String> {
        (0..len).map(|i| format!("{page}-{i}")).collect()
    }

    #[test]
    fn next_null_ends_and_pages_count_up() {
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(
            pager.after(Some(100), 100, ids(1, 100), true),
            Ok(Next::Page(2))
        );
        assert_eq!(pager.page(), 2);
        assert_eq!(pager.after(Some(30), 30, ids(2, 30), false), Ok(Next::Done));
    }

    #[test]
    fn an_empty_page_with_next_is_the_end() {
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(pager.after(None, 100, ids(1, 100), true), Ok(Next::Page(2)));
        assert_eq!(pager.after(None, 0, vec![], true), Ok(Next::Done));
    }

    #[test]
    fn a_repeated_page_is_an_error() {
        let mut pager = Pager::new("versions", 500, 100);
        assert_eq!(pager.after(None, 3, ids(1, 3), true), Ok(Next::Page(2)));
        let err = pager.after(None, 3, ids(1, 3), true).unwrap_err();
        assert!(
            err.starts_with("page 2 repeats page 1 (the same 3 versions)"),
            "{err}"
        );
        // Items without ids are never taken for a repeat.
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(pager.after(None, 2, vec![], true), Ok(Next::Page(2)));
        assert_eq!(pager.after(None, 2, vec![], true), Ok(Next::Page(3)));
    }

    #[test]
    fn the_hard_ceiling_ends_fresh_pages_that_never_stop() {
        let mut pager = Pager::new("prompts", 100, 5);
        for page in 1..5 {
            assert_eq!(
                pager.after(Some(100), 100, ids(page, 100), true),
                Ok(Next::Page(page + 1)),
                "a per-page count is no total"
            );
        }
        let err = pager.after(Some(100), 100, ids(5, 100), true).unwrap_err();
        assert_eq!(
            err,
            "page 5 still says more pages follow; promptsync reads at most 5 pages \
             (500 prompts at 100 a page) and stopped listing"
        );
    }

    #[test]
    fn page_1s_total_says_how_many_pages_to_ask_for_at_once() {
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(pager.known_pages(), None, "nothing is known before page 1");
        assert_eq!(
            pager.after(Some(250), 100, ids(1, 100), true),
            Ok(Next::Page(2))
        );
        assert_eq!(pager.known_pages(), Some(3));
        // At the server's own page size, within the hard ceiling.
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(
            pager.after(Some(250), 25, ids(1, 25), true),
            Ok(Next::Page(2))
        );
        assert_eq!(pager.known_pages(), Some(10));
        let mut pager = Pager::new("prompts", 100, 5);
        assert_eq!(
            pager.after(Some(1_000_000), 100, ids(1, 100), true),
            Ok(Next::Page(2))
        );
        assert_eq!(pager.known_pages(), Some(5));
        // A per-page count (or none) is no total: pages follow one by one.
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(
            pager.after(Some(100), 100, ids(1, 100), true),
            Ok(Next::Page(2))
        );
        assert_eq!(pager.known_pages(), None);
    }

    #[test]
    fn a_claimed_total_caps_the_pages_at_the_servers_page_size() {
        // 250 in all at 25 a page (the server clamped our 100): 10 pages, 2 to spare.
        let mut pager = Pager::new("prompts", 100, 1000);
        for page in 1..12 {
            assert_eq!(
                pager.after(Some(250), 25, ids(page, 25), true),
                Ok(Next::Page(page + 1))
            );
        }
        let err = pager.after(Some(250), 25, ids(12, 25), true).unwrap_err();
        assert!(
            err.contains("the server counted 250 prompts in all, 12 pages at most at 25 a page"),
            "{err}"
        );
        // A claimed total never lifts the hard ceiling.
        let mut pager = Pager::new("versions", 500, 3);
        assert_eq!(
            pager.after(Some(1_000_000), 500, ids(1, 500), true),
            Ok(Next::Page(2))
        );
        assert_eq!(
            pager.after(Some(1_000_000), 500, ids(2, 500), true),
            Ok(Next::Page(3))
        );
        assert!(
            pager
                .after(Some(1_000_000), 500, ids(3, 500), true)
                .is_err()
        );
    }

    #[test]
    fn a_listing_that_holds_fewer_items_than_counted_is_untrusted() {
        // Page 1 empty while the server counts 5 and says more follow.
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(pager.after(Some(5), 0, vec![], true), Ok(Next::Done));
        assert_eq!(
            pager.untrusted().as_deref(),
            Some("page 1 is empty, yet the server counted 5 prompts")
        );
        // Paging ends with fewer items than the total.
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(
            pager.after(Some(250), 100, ids(1, 100), true),
            Ok(Next::Page(2))
        );
        assert_eq!(
            pager.after(Some(250), 30, ids(2, 30), false),
            Ok(Next::Done)
        );
        assert_eq!(
            pager.untrusted().as_deref(),
            Some("its pages held 130 of the 250 prompts the server counted")
        );
    }

    #[test]
    fn per_page_counts_totals_and_no_counts_are_trusted_when_they_add_up() {
        let mut pager = Pager::new("versions", 100, 100);
        assert_eq!(
            pager.after(Some(100), 100, ids(1, 100), true),
            Ok(Next::Page(2))
        );
        assert_eq!(pager.after(Some(3), 3, ids(2, 3), false), Ok(Next::Done));
        assert_eq!(pager.untrusted(), None, "per-page counts");
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(
            pager.after(Some(200), 100, ids(1, 100), true),
            Ok(Next::Page(2))
        );
        assert_eq!(
            pager.after(Some(200), 100, ids(2, 100), true),
            Ok(Next::Page(3))
        );
        // A server that sets `next` on a full last page, then an empty one.
        assert_eq!(pager.after(Some(200), 0, vec![], true), Ok(Next::Done));
        assert_eq!(pager.untrusted(), None, "a total");
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(pager.after(None, 0, vec![], false), Ok(Next::Done));
        assert_eq!(pager.untrusted(), None, "no count, an empty account");
        let mut pager = Pager::new("prompts", 100, 1000);
        assert_eq!(pager.after(Some(0), 0, vec![], false), Ok(Next::Done));
        assert_eq!(pager.untrusted(), None, "count 0, an empty account");
    }
}
