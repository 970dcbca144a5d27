//! The whole account's listing ([`Client::list_account`]): every prompt kept small
//! ([`AccountPrompt`]: its facts and JSON text), except the ones a pass wants in full
//! ([`InFull`]), which keep what reading their page built of them once the pass has
//! said which they are (it lists while it reads its files). What arrived before is
//! read in full again from its text after the listing ([`Client::full_prompt`]). A
//! pass that may write and has read its files before page 1 came back has the listing
//! read in one round when it fits in one (page 1 again with the pages after it,
//! [`Listing::one_round`]); when it takes more rounds, the wanted prompts that the
//! pass says it may write are read again by id beside the last round, once the pages
//! before it are in ([`LastRound`]). Knows prompts by id and name only.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use reqwest::Method;
use serde_json::Map;

use super::client::{Client, filter_in};
use super::decode::{self, DecodeError, MAX_REPLY_VALUES};
use super::error::ApiError;
use super::held::Bound;
use super::listing::Rounds;
use super::send::target;
use super::types::{AccountPrompt, Listing, Page, Prompt};

/// Whether a pass may write on a prompt, judged from the prompt alone (read in full).
pub(crate) type MayWrite = Box<dyn Fn(&Prompt) -> bool + Send + Sync>;

/// Told of each prompt a pass wants as soon as its page is read in full (the page is
/// a read of it just before anything the pass writes on it at once).
pub(crate) type Arrived = Box<dyn Fn(&Prompt) + Send + Sync>;

/// The prompts of an account listing to read in full: by id, and by name; whether
/// the listing should be read in one round from here on (page 1 again with the pages
/// after it), for a pass that may write; and which of them that pass may write, to be
/// read again beside the listing's last round when it is not read in one; and who is
/// told of each as its page arrives.
#[derive(Default)]
pub(crate) struct InFull {
    pub(crate) ids: BTreeSet<String>,
    pub(crate) names: BTreeSet<String>,
    pub(crate) one_round: bool,
    pub(crate) may_write: Option<MayWrite>,
    pub(crate) arrived: Option<Arrived>,
}

impl InFull {
    fn wants(&self, item: &AccountPrompt) -> bool {
        self.ids.contains(&item.prompt_id)
            || item
                .name
                .as_ref()
                .is_some_and(|name| self.names.contains(name))
    }
}

/// The whole account, as [`Client::list_account`] read it.
pub(crate) struct AccountListing {
    pub(crate) listing: Listing<AccountPrompt>,
    /// What was read in the listing's last round, when it took more than one round
    /// after page 1 and the pass said by then which prompts it may write.
    pub(crate) last_round: Option<LastRound>,
}

/// The prompts an account listing read in its last round of requests: the ones on
/// its pages, and the read again by id beside it of the wanted prompts of the pages
/// before it that the pass may write (`None` when there were none), which may still
/// be on its way when the listing is done.
pub(crate) struct LastRound {
    pub(crate) on_its_pages: BTreeSet<String>,
    pub(crate) again: Option<ReadAgain>,
}

/// Prompts read again by id beside a listing's last round: their ids, and the read,
/// stopped if this is dropped before it is awaited.
pub(crate) struct ReadAgain {
    ids: BTreeSet<String>,
    task: tokio::task::JoinHandle<Result<Listing<Prompt>, ApiError>>,
}

impl ReadAgain {
    /// The ids read again, and what the read found; `None` when it did not finish (the
    /// runtime is stopping).
    pub(crate) async fn read(
        mut self,
    ) -> Option<(BTreeSet<String>, Result<Listing<Prompt>, ApiError>)> {
        let read = (&mut self.task).await.ok()?;
        Some((std::mem::take(&mut self.ids), read))
    }
}

impl Drop for ReadAgain {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The read again beside a listing's last round, under way: the listing's items
/// before that round.
struct Beside {
    before: usize,
    again: Option<ReadAgain>,
}

impl Client {
    /// Every prompt of the account, all pages, each kept small (counted as bytes of
    /// what the replies hold); otherwise as [`Client::list_prompts`] without filters.
    /// Once `in_full` is set, the prompts it names keep what reading their pages
    /// built of them ([`AccountPrompt::take_full`]); if it says so and page 1 is read by
    /// then, the listing is read in one round ([`Listing::one_round`]); else the ones
    /// it may write are read again beside the last round ([`LastRound`]).
    pub(crate) async fn list_account(
        &self,
        in_full: &OnceLock<Arc<InFull>>,
    ) -> Result<AccountListing, ApiError> {
        // Files read before the pages after the first go out, by a pass that may write:
        // page 1 goes again with them, so that the whole listing is as fresh as a read
        // just before writing.
        let again = || in_full.get().is_some_and(|in_full| in_full.one_round);
        // More rounds than one: what the pass may write of the pages before the last
        // round is read again beside it, so that all it writes is as fresh.
        let beside = Mutex::new(None);
        let before_last = |listing: &mut Listing<AccountPrompt>| {
            let started = in_full
                .get()
                .and_then(|in_full| self.read_again(listing, in_full));
            *beside.lock().unwrap_or_else(PoisonError::into_inner) = started;
        };
        // An item no file names is left small as soon as it is read.
        let each = |item: &mut AccountPrompt| {
            if !in_full.get().is_some_and(|in_full| in_full.wants(item)) {
                item.drop_full();
            }
        };
        let page = |page: &mut Page<AccountPrompt>| self.keep_wanted(page, in_full.get());
        let rounds = Rounds {
            again: &again,
            before_last: &before_last,
            each: &each,
            page: &page,
        };
        let listing = self.prompt_pages(&Map::new(), &rounds).await?;
        let beside = beside.into_inner().unwrap_or_else(PoisonError::into_inner);
        let last_round = beside.map(|beside| beside.finish(&listing));
        Ok(AccountListing {
            listing,
            last_round,
        })
    }

    /// Start reading again, by id, the wanted prompts of `listing` (the pages before
    /// its last round) that the pass may write. Those of its pages that came before
    /// the pass said which it wants are read in full first. `None` unless the pass
    /// said which it may write.
    fn read_again(&self, listing: &mut Listing<AccountPrompt>, in_full: &InFull) -> Option<Beside> {
        let may_write = in_full.may_write.as_ref()?;
        let mut ids = BTreeSet::new();
        for item in listing.items.iter_mut().filter(|item| in_full.wants(item)) {
            if item.full().is_none() {
                // One that does not read fails the snapshot later, with why.
                let Ok(prompt) = self.prompt_of(item.text()) else {
                    continue;
                };
                item.set_full(prompt);
            }
            if item.full().is_some_and(may_write) {
                ids.insert(item.prompt_id.clone());
            }
        }
        tracing::debug!(
            prompts = ids.len(),
            "the prompts it may write of the pages before the listing's last round go again beside it"
        );
        let again = (!ids.is_empty()).then(|| {
            let client = self.clone();
            let filters = filter_in("prompt_id", ids.iter().cloned());
            let task = tokio::spawn(async move { client.list_prompts(&filters).await });
            ReadAgain { ids, task }
        });
        Some(Beside {
            before: listing.items.len(),
            again,
        })
    }

    /// Finish an account page as it arrives: the prompts the pass wants keep what
    /// reading the page built of them, counted against what this client's replies may
    /// hold, and the pass is told of each ([`InFull::arrived`]); the others (and all of
    /// them before the pass said which it wants) only their facts and text (most were
    /// left so as each was read). One that is not kept
    /// is read from its text later ([`Client::full_prompt`], which says why when it
    /// cannot be).
    fn keep_wanted(&self, page: &mut Page<AccountPrompt>, in_full: Option<&Arc<InFull>>) {
        let mut kept = 0;
        for item in &mut page.results {
            let keep = item.full().is_some()
                && in_full.is_some_and(|in_full| in_full.wants(item))
                && self
                    .held
                    .as_ref()
                    .is_none_or(|held| held.keep(0, item.values()).is_ok());
            if keep {
                kept += 1;
                if let (Some(arrived), Some(prompt)) = (
                    in_full.and_then(|in_full| in_full.arrived.as_ref()),
                    item.full(),
                ) {
                    arrived(prompt);
                }
            } else {
                item.drop_full();
            }
        }
        if kept > 0 {
            tracing::debug!(
                prompts = kept,
                "listed prompts read in full as their page arrived"
            );
        }
    }

    /// A prompt of [`Client::list_account`] read in full from its text (unless its
    /// page had it read already), its JSON values counted against what this client's
    /// replies may hold.
    pub(crate) fn full_prompt(&self, item: &mut AccountPrompt) -> Result<Prompt, ApiError> {
        match item.take_full() {
            Some(prompt) => Ok(prompt),
            None => self.prompt_of(item.text()),
        }
    }

    /// A listed prompt's text read in full, counted against what the replies may hold.
    fn prompt_of(&self, text: &str) -> Result<Prompt, ApiError> {
        let target = target(&Method::POST, "/api/prompts/list/");
        let left = self
            .held
            .as_ref()
            .map_or(MAX_REPLY_VALUES, |held| held.values_left());
        let (prompt, values) = match decode::reply::<Prompt>(text.as_bytes(), left) {
            Ok(read) => read,
            Err(DecodeError::TooManyValues { .. }) => {
                return Err(self.too_much(&target, Bound::Values));
            }
            Err(_) => {
                return Err(ApiError::TooMuch {
                    target,
                    problem: "a listed prompt no longer reads as one".to_owned(),
                });
            }
        };
        if let Some(held) = &self.held
            && let Err(bound) = held.keep(0, values)
        {
            return Err(self.too_much(&target, bound));
        }
        Ok(prompt)
    }
}

impl Beside {
    /// What the listing's last round read, once the listing is done.
    fn finish(self, listing: &Listing<AccountPrompt>) -> LastRound {
        let on_its_pages = listing
            .items
            .iter()
            .skip(self.before)
            .map(|item| item.prompt_id.clone())
            .collect();
        LastRound {
            on_its_pages,
            again: self.again,
        }
    }
}
