//! The whole account's listing ([`Client::list_account`]): every prompt kept small
//! ([`AccountPrompt`]: its facts and JSON text), except the ones a pass wants in full
//! ([`InFull`]), which are read in full as their pages arrive once the pass has said
//! which they are (it lists while it reads its files), on a blocking thread, while the
//! other pages are still on their way. What arrived before is read in full after the
//! listing ([`Client::full_prompt`]). A pass that may write and has read its files
//! before page 1 came back has the listing read in one round when it fits in one
//! (page 1 again with the pages after it, [`Listing::one_round`]). Knows prompts by id
//! and name only.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use reqwest::Method;
use serde_json::Map;

use super::client::Client;
use super::decode::{self, DecodeError, MAX_REPLY_VALUES};
use super::error::ApiError;
use super::held::Bound;
use super::send::target;
use super::types::{AccountPrompt, Listing, Page, Prompt};

/// The prompts of an account listing to read in full: by id, and by name; and
/// whether the listing should be read in one round from here on (page 1 again with
/// the pages after it), for a pass that may write.
#[derive(Debug, Default)]
pub(crate) struct InFull {
    pub(crate) ids: BTreeSet<String>,
    pub(crate) names: BTreeSet<String>,
    pub(crate) one_round: bool,
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

impl Client {
    /// Every prompt of the account, all pages, each kept small (counted as bytes of
    /// what the replies hold); otherwise as [`Client::list_prompts`] without filters.
    /// Once `in_full` is set, the prompts it names are read in full as their pages
    /// arrive ([`AccountPrompt::take_full`]), and, if it says so and page 1 is read by
    /// then, the listing is read in one round ([`Listing::one_round`]).
    pub(crate) async fn list_account(
        &self,
        in_full: &OnceLock<Arc<InFull>>,
    ) -> Result<Listing<AccountPrompt>, ApiError> {
        let after = |page| self.read_in_full(page, in_full.get());
        // Files read before the pages after the first go out, by a pass that may write:
        // page 1 goes again with them, so that the whole listing is as fresh as a read
        // just before writing.
        let again = || in_full.get().is_some_and(|in_full| in_full.one_round);
        self.prompt_pages(&Map::new(), after, &again).await
    }

    /// The wanted prompts of `page`, read in full on a blocking thread. One that does
    /// not read is left as it came ([`Client::full_prompt`] says why later).
    async fn read_in_full(
        &self,
        mut page: Page<AccountPrompt>,
        in_full: Option<&Arc<InFull>>,
    ) -> Page<AccountPrompt> {
        let Some(in_full) = in_full else {
            return page;
        };
        let wanted: Vec<(usize, Box<str>)> = page
            .results
            .iter()
            .enumerate()
            .filter(|(_, item)| in_full.wants(item))
            .map(|(index, item)| (index, item.text().into()))
            .collect();
        if wanted.is_empty() {
            return page;
        }
        let client = self.clone();
        let read = tokio::task::spawn_blocking(move || {
            wanted
                .into_iter()
                .filter_map(|(index, text)| Some((index, client.prompt_of(&text).ok()?)))
                .collect::<Vec<_>>()
        });
        // A thread that could not run (the runtime is stopping) reads nothing early.
        let read = read.await.unwrap_or_default();
        tracing::debug!(
            prompts = read.len(),
            "listed prompts read in full as their page arrived"
        );
        for (index, prompt) in read {
            page.results[index].set_full(prompt);
        }
        page
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
