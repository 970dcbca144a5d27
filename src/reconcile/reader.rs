//! The reads of the remote for one pass ([`Reader`]): the snapshot (from the
//! account listing when there is one, else listed by id and by name, 100 a page), the
//! versions a plan needs, the prompts about to be written read again just before
//! (one writer at a time) unless the account listing's last round read them (on its
//! pages, or again beside it: [`Freshness`]), and after a deploy what it touched. A
//! read that fails for one prompt is recorded on that prompt; a listing that cannot be
//! trusted holds back what it was for instead of reading as "nothing there".

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures_util::stream::{self, StreamExt};
use tracing::Instrument;

use crate::api::types::{Listing, Prompt, Version};
use crate::api::{AccountListing, ApiError, Client, LastRound, ReadAgain, filter_in};
use crate::apply::Outcome;
use crate::desired::DesiredPrompt;
use crate::desired::parallel::{on_all_cores, threads_for};
use crate::plan::{DeployItem, DeployStep, History, Remote, Target, Writes};

use super::{Unmanaged, cpu};

mod trust;

use trust::Asked;

/// Prompts to read again: by id (with the name, when known, so that a prompt that
/// cannot be read again is never created a second time by name), and by name where a
/// deploy may have created a prompt without learning its id.
#[derive(Debug, Default)]
pub(super) struct Touched {
    pub(super) ids: BTreeMap<String, Option<String>>,
    pub(super) names: BTreeSet<String>,
}

/// The prompts the deploy step sent anything for, failed or not.
pub(super) fn touched(items: &[DeployItem], outcomes: &[Option<Outcome>]) -> Touched {
    let mut touched = Touched::default();
    for (item, outcome) in items.iter().zip(outcomes) {
        if !matches!(item.step, DeployStep::Deploy { .. }) {
            continue;
        }
        let planned = item.target.as_ref().and_then(Target::id).map(str::to_owned);
        let id = match outcome {
            Some(Ok(applied)) => Some(applied.prompt_id.clone()),
            Some(Err(failed)) => failed.prompt_id.clone().or(planned),
            None => planned,
        };
        match (id, &item.target) {
            (Some(id), target) => {
                let name = match target {
                    Some(Target::New(new)) => Some(new.name.clone()),
                    _ => None,
                };
                touched.ids.insert(id, name);
            }
            (None, Some(Target::New(new))) => {
                touched.names.insert(new.name.clone());
            }
            (None, _) => {}
        }
    }
    touched
}

/// Reads of the remote for one pass. A read that fails for one prompt is recorded in
/// the [`Remote`] (the prompt's items then fail with the reason); only a stalled
/// error is returned, or a failure of the snapshot's list itself.
pub(super) struct Reader<'a> {
    pub(super) client: &'a Client,
    pub(super) limit: usize,
    pub(super) warnings: Vec<String>,
    /// The whole account, listed for the prompts no file names (when asked for), each
    /// prompt kept small until it is known whether a file names it.
    pub(super) account: Option<Result<AccountListing, ApiError>>,
    /// What that listing found.
    pub(super) unmanaged_found: Option<Vec<Unmanaged>>,
    /// A snapshot listing that failed: the pass runs for the prompts it did not
    /// concern, then ends with this error (its class decides what comes next).
    pub(super) failed_listing: Option<ApiError>,
    /// How fresh the snapshot is for a write ([`Reader::refresh`]).
    pub(super) fresh: Freshness,
    /// The prompts read again beside the account listing's last round, while that
    /// read may still be on its way ([`Reader::settle`]); dropped (and stopped) once
    /// anything makes the snapshot older.
    pub(super) again: Option<ReadAgain>,
    /// The reads that failed a prompt (see [`Pass::failed_reads`]).
    pub(super) failed_reads: Vec<ApiError>,
}

impl Reader<'_> {
    /// The remote prompts the repository names: listed by id and by name, 100 a page,
    /// with their current and live versions complete.
    pub(super) async fn snapshot(
        &mut self,
        source: &[DesiredPrompt],
        release: Option<&[DesiredPrompt]>,
    ) -> Result<Remote, ApiError> {
        let (ids, names) = super::keys(source.iter().chain(release.into_iter().flatten()));
        match self.account_snapshot(&ids, &names).await? {
            // The whole account was listed for the unmanaged prompts: the snapshot
            // comes from that listing, at no extra request.
            Some(mut remote) => {
                // Versions read in full after the listing are a round of reads later.
                let summaries = remote
                    .prompts
                    .values()
                    .flat_map(|p| [&p.current_version, &p.live_version])
                    .flatten()
                    .any(|version| !version.has_content());
                if summaries {
                    self.older();
                }
                let failures = self.complete(remote.prompts.values_mut()).await?;
                for (id, reason) in failures {
                    remote.unreadable.insert(id, reason);
                }
                Ok(remote)
            }
            None => self.listed_remote(&ids, &names).await,
        }
    }

    /// The prompts with these ids or names, listed (100 a page, by id and by name at
    /// once) with their current and live versions complete.
    async fn listed_remote(
        &mut self,
        ids: &BTreeSet<String>,
        names: &BTreeSet<String>,
    ) -> Result<Remote, ApiError> {
        let (by_id, by_name) = tokio::join!(
            list_in(self.client, "prompt_id", ids),
            list_in(self.client, "name", names)
        );
        self.remote_of(by_id, by_name, ids, names).await
    }

    /// The prompts listed by id (`by_id`, for `ids`) and by name, with their current
    /// and live versions complete; what a listing could not vouch for held back.
    async fn remote_of(
        &mut self,
        by_id: Result<Listing<Prompt>, ApiError>,
        by_name: Result<Listing<Prompt>, ApiError>,
        ids: &BTreeSet<String>,
        names: &BTreeSet<String>,
    ) -> Result<Remote, ApiError> {
        // With nothing else to sync, a failed listing ends the pass at once.
        let (by_id, by_name) = match (by_id, by_name) {
            (Err(err), _) if names.is_empty() => return Err(err),
            (_, Err(err)) if ids.is_empty() => return Err(err),
            (Err(err), Err(_)) => return Err(err),
            both => both,
        };
        let mut remote = Remote::default();
        let by_id = self.listing_or_hold(by_id, Asked::Ids(ids), &mut remote)?;
        let by_name = self.listing_or_hold(by_name, Asked::Names(names), &mut remote)?;
        self.distrust(&mut remote, &by_id, Asked::Ids(ids));
        self.distrust(&mut remote, &by_name, Asked::Names(names));
        remote.add(by_id.items.into_iter().chain(by_name.items));
        self.attribute(&mut remote, &by_id.problems, Asked::Ids(ids));
        self.attribute(&mut remote, &by_name.problems, Asked::Names(names));
        let failures = self.complete(remote.prompts.values_mut()).await?;
        for (id, reason) in failures {
            remote.unreadable.insert(id, reason);
        }
        Ok(remote)
    }

    /// Read again, just before a plan is applied, the prompts it creates something on
    /// (`plan::fresh`): whether they changed since the snapshot (another writer), in
    /// which case `remote` has their new state and the plan must be made again. One
    /// list request per 100 prompts and per kind (ids, names); nothing when the plan
    /// creates nothing, or when the snapshot is the filtered lists just read (a
    /// daemon's pass after a commit), which a second read would hardly make fresher.
    pub(super) async fn refresh(
        &mut self,
        writes: &Writes,
        remote: &mut Remote,
    ) -> Result<bool, ApiError> {
        // A snapshot of one round of reads just taken is as fresh as a second read.
        if writes.is_empty() || self.fresh.covers(writes) {
            return Ok(false);
        }
        tracing::debug!(
            prompts = writes.ids.len(),
            names = writes.names.len(),
            "reading the prompts to write again: the snapshot is older than a round of reads"
        );
        let fresh = self.listed_remote(&writes.ids, &writes.names).await?;
        self.fresh = Freshness::Fresh;
        self.again = None;
        let changed = remote.refresh(writes, fresh);
        if changed {
            tracing::info!(
                prompts = writes.ids.len(),
                names = writes.names.len(),
                "the remote changed since it was read (another writer?): planning again"
            );
        }
        Ok(changed)
    }

    /// Fetch the full objects of current and live versions that came as summaries (a
    /// server may list `{version, model, updated_at}` only). Returns the prompts whose
    /// versions could not be read, with why.
    async fn complete<'p>(
        &mut self,
        prompts: impl Iterator<Item = &'p mut Prompt>,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let mut slots: Vec<(String, &'p mut Version)> = Vec::new();
        for prompt in prompts {
            let Some(id) = prompt.id().map(str::to_owned) else {
                continue;
            };
            for version in [&mut prompt.current_version, &mut prompt.live_version]
                .into_iter()
                .flatten()
            {
                if !version.has_content() {
                    slots.push((id.clone(), version));
                }
            }
        }
        let wanted: Vec<(usize, String, u64)> = slots
            .iter()
            .enumerate()
            .map(|(slot, (id, version))| (slot, id.clone(), version.number))
            .collect();
        let client = self.client;
        let fetched: Vec<(usize, Result<Version, ApiError>)> = stream::iter(wanted)
            .map(|(slot, id, number)| async move {
                let span = tracing::info_span!("prompt", prompt_id = %id, version = number);
                (slot, client.get_version(&id, number).instrument(span).await)
            })
            .buffer_unordered(self.limit)
            .collect()
            .await;
        let mut failures = Vec::new();
        for (slot, result) in fetched {
            let (id, version) = &mut slots[slot];
            match result {
                Ok(full) => **version = full,
                Err(err) if err.stops_run() => return Err(err),
                Err(err) => {
                    tracing::warn!(prompt_id = %id, version = version.number, error = %err, "cannot read a version in full");
                    self.failed_reads.push(err.clone());
                    failures.push((
                        id.clone(),
                        format!("reading v{} in full: {err}", version.number),
                    ));
                }
            }
        }
        Ok(failures)
    }

    /// Every version of the given prompts, concurrently, into `remote.versions`; a
    /// list that could not be read in full says why in its [`History`].
    pub(super) async fn histories(
        &mut self,
        ids: &[String],
        remote: &mut Remote,
    ) -> Result<(), ApiError> {
        if !ids.is_empty() {
            // A round of reads later, the snapshot is older than a second read would be.
            self.older();
        }
        let client = self.client;
        let listed = self.each(ids, |id| client.list_versions(id)).await;
        for (id, result) in listed {
            let history = match result {
                Err(err) if err.stops_run() => return Err(err),
                Err(err) => {
                    tracing::warn!(prompt_id = %id, error = %err, "cannot list the versions");
                    self.failed_reads.push(err.clone());
                    History {
                        versions: Vec::new(),
                        incomplete: Some(err.to_string()),
                    }
                }
                Ok(listing) => {
                    let mut problems: Vec<String> =
                        listing.problems.iter().map(ToString::to_string).collect();
                    for problem in &problems {
                        tracing::warn!(prompt_id = %id, problem, "a listed version could not be read");
                    }
                    if let Some(untrusted) = listing.untrusted {
                        tracing::warn!(prompt_id = %id, problem = %untrusted, "the version list cannot be trusted to be complete");
                        problems.push(format!("it is incomplete: {untrusted}"));
                    }
                    History {
                        versions: listing.items,
                        incomplete: (!problems.is_empty())
                            .then(|| format!("the version list: {}", problems.join("; "))),
                    }
                }
            };
            remote.versions.insert(id.clone(), history);
        }
        Ok(())
    }

    /// Read the given prompts again (after a deploy changed them or may have), by id
    /// (one request each, or the list endpoint when that takes fewer) and by name. A
    /// prompt that cannot be read again is marked unreadable: its sync would act on a
    /// stale snapshot.
    pub(super) async fn reread(
        &mut self,
        touched: &Touched,
        remote: &mut Remote,
    ) -> Result<(), ApiError> {
        // It follows the deploy's writes: what was not read again is older now.
        if !touched.ids.is_empty() || !touched.names.is_empty() {
            self.older();
        }
        let client = self.client;
        let mut fresh: Vec<Prompt> = Vec::new();
        let mut lost: Vec<(&String, String)> = Vec::new();
        if touched.ids.len() > self.limit {
            let ids: BTreeSet<String> = touched.ids.keys().cloned().collect();
            match client
                .list_prompts(&filter_in("prompt_id", ids.iter().cloned()))
                .await
            {
                Ok(listing) => fresh.extend(self.listed(listing, Asked::Ids(&ids), remote)),
                Err(err) if err.stops_run() => return Err(err),
                Err(err) => {
                    self.failed_reads.push(err.clone());
                    lost.extend(touched.ids.keys().map(|id| (id, err.to_string())));
                }
            }
            for id in touched.ids.keys() {
                if !fresh.iter().any(|p| p.id() == Some(id.as_str()))
                    && !lost.iter().any(|(lost, _)| *lost == id)
                {
                    lost.push((id, "not found".into()));
                }
            }
        } else {
            let got = self
                .each(touched.ids.keys(), |id| client.get_prompt(id))
                .await;
            for (id, result) in got {
                match result {
                    Ok(prompt) => fresh.push(prompt),
                    Err(err) if err.stops_run() => return Err(err),
                    Err(err) => {
                        self.failed_reads.push(err.clone());
                        lost.push((id, err.to_string()));
                    }
                }
            }
        }
        for (id, error) in lost {
            tracing::warn!(prompt_id = %id, error, "cannot read the prompt again after the deploy");
            let name = touched.ids[id]
                .clone()
                .or_else(|| remote.prompts.get(id).and_then(|p| p.name.clone()));
            let reason = format!("reading it again after the deploy: {error}");
            remote.mark_unreadable(Some(id), name.as_deref(), &reason);
        }
        if !touched.names.is_empty() {
            match client
                .list_prompts(&filter_in("name", touched.names.iter().cloned()))
                .await
            {
                Ok(listing) => {
                    fresh.extend(self.listed(listing, Asked::Names(&touched.names), remote));
                }
                Err(err) if err.stops_run() => return Err(err),
                Err(err) => {
                    self.failed_reads.push(err.clone());
                    let reason = format!("reading it again after the deploy: {err}");
                    for name in &touched.names {
                        remote.mark_unreadable(None, Some(name), &reason);
                    }
                }
            }
        }
        let failures = self.complete(fresh.iter_mut()).await?;
        for prompt in fresh {
            if let Some(id) = prompt.id().map(str::to_owned) {
                remote.versions.remove(&id);
                remote.unreadable.remove(&id);
                remote.prompts.insert(id, prompt);
            }
        }
        for (id, reason) in failures {
            remote.unreadable.insert(id, reason);
        }
        Ok(())
    }

    /// `read` for each prompt id, `limit` at a time, each in its prompt's span.
    async fn each<'i, T, Fut>(
        &self,
        ids: impl IntoIterator<Item = &'i String>,
        read: impl Fn(&'i String) -> Fut,
    ) -> Vec<(&'i String, Result<T, ApiError>)>
    where
        Fut: Future<Output = Result<T, ApiError>>,
    {
        stream::iter(ids)
            .map(|id| {
                let span = tracing::info_span!("prompt", prompt_id = %id);
                let read = read(id);
                async move { (id, read.instrument(span).await) }
            })
            .buffer_unordered(self.limit)
            .collect()
            .await
    }

    /// The whole account's listing, when it was asked for: the prompts named by `ids`
    /// or `names` make the snapshot, the others are the unmanaged prompts. `None` when
    /// not asked, or when the listing failed (a warning; the filtered lists are read
    /// instead).
    async fn account_snapshot(
        &mut self,
        ids: &BTreeSet<String>,
        names: &BTreeSet<String>,
    ) -> Result<Option<Remote>, ApiError> {
        let Some(account) = self.account.take() else {
            return Ok(None);
        };
        let (listing, last_round) = match account {
            Ok(AccountListing {
                listing:
                    Listing {
                        untrusted: Some(untrusted),
                        ..
                    },
                ..
            }) => {
                self.warnings.push(format!(
                    "cannot list the whole account for unmanaged prompts: the listing is \
                     incomplete: {untrusted}"
                ));
                return Ok(None);
            }
            Ok(AccountListing {
                listing,
                last_round,
            }) => (listing, last_round),
            Err(err) if err.stops_run() => return Err(err),
            Err(err) => {
                self.warnings.push(format!(
                    "cannot list the whole account for unmanaged prompts: {err}"
                ));
                return Ok(None);
            }
        };
        let one_round = listing.one_round;
        // The prompts the files name are read in full; of the others only what the
        // unmanaged report says is kept.
        let mut wanted = Vec::new();
        let mut unmanaged = Vec::new();
        for item in listing.items {
            if ids.contains(&item.prompt_id)
                || item.name.as_ref().is_some_and(|name| names.contains(name))
            {
                wanted.push(item);
            } else {
                unmanaged.push(Unmanaged {
                    prompt_id: item.prompt_id,
                    name: item.name,
                    live_version: item.live_version,
                    newest_version: item.current_version,
                });
            }
        }
        // Each named prompt not read in full as its page arrived is decoded from its
        // text on its own: on every core for thousands.
        let client = self.client;
        let undecoded = wanted.iter().filter(|item| item.full().is_none()).count();
        let threads = vec![(); threads_for(undecoded)];
        // Once one fails the snapshot is not taken from this listing: the rest are not
        // decoded (nor counted against what the pass may hold).
        let failed = std::sync::atomic::AtomicBool::new(false);
        let decoded = cpu(|| {
            on_all_cores(wanted, threads, |(), mut item| {
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return None;
                }
                let read = client.full_prompt(&mut item);
                if read.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Some(read)
            })
        });
        let named = match decoded
            .into_iter()
            .flatten()
            .collect::<Result<Vec<Prompt>, ApiError>>()
        {
            Ok(named) => named,
            Err(err) => {
                self.warnings.push(format!(
                    "cannot list the whole account for unmanaged prompts: {err}"
                ));
                return Ok(None);
            }
        };
        let mut remote = Remote::new(named);
        self.attribute(&mut remote, &listing.problems, Asked::Ids(ids));
        self.attribute(&mut remote, &listing.problems, Asked::Names(names));
        self.unmanaged_found = Some(unmanaged);
        // A listing that ran while the files were read is older than a round of reads,
        // unless all of it was read in one round once they were (`Listing::one_round`),
        // but for what its last round read (what it read again is settled later).
        self.fresh = if one_round {
            Freshness::Fresh
        } else {
            Freshness::older()
        };
        if let Some(LastRound {
            on_its_pages,
            again,
        }) = last_round
        {
            self.fresh = Freshness::OlderBut(on_its_pages);
            self.again = again;
        }
        Ok(Some(remote))
    }

    /// The snapshot is older than a round of reads now, all of it: what was read
    /// again beside the account listing's last round is too (a second read will be).
    fn older(&mut self) {
        self.fresh = Freshness::older();
        self.again = None;
    }

    /// Merge into `remote` the prompts read again beside the account listing's last
    /// round (`api::account::LastRound`), as a second read's are, and count them
    /// fresh: whether any differs from what the listing showed, in which case the plan
    /// must be made again. Nothing to do without such a read, or once the snapshot got
    /// older since; a read that failed is left to the second read. Called before
    /// anything else reads, so that the plan can be made while that read is on its way.
    pub(super) async fn settle(&mut self, remote: &mut Remote) -> Result<bool, ApiError> {
        let Some(again) = self.again.take() else {
            return Ok(false);
        };
        let Some((ids, read)) = again.read().await else {
            return Ok(false);
        };
        let listing = match read {
            Ok(listing) => listing,
            Err(err) => {
                tracing::debug!(
                    error = %err,
                    "the prompts read again beside the listing's last round did not read; \
                     they are read again before writing"
                );
                return Ok(false);
            }
        };
        let none = BTreeSet::new();
        let read = self
            .remote_of(Ok(listing), Ok(Listing::default()), &ids, &none)
            .await?;
        let writes = Writes { ids, names: none };
        let changed = remote.refresh(&writes, read);
        if changed {
            tracing::info!(
                prompts = writes.ids.len(),
                "the remote changed while the listing was read (another writer?): planning again"
            );
        }
        if let Freshness::OlderBut(fresh) = &mut self.fresh {
            fresh.extend(writes.ids);
        }
        Ok(changed)
    }
}

/// How fresh a pass's snapshot is for a write ([`Reader::refresh`]).
#[derive(Debug)]
pub(super) enum Freshness {
    /// One round of reads just taken (or none yet): as fresh as a second read.
    Fresh,
    /// Older than a round of reads: it came from the account listing (pages that ran
    /// while the files were read), or version lists were read or the deploy step
    /// wrote since; but for these prompts (by id), read in the account listing's last
    /// round of requests or again beside it.
    OlderBut(BTreeSet<String>),
}

impl Freshness {
    /// Older than a round of reads, all of it.
    fn older() -> Freshness {
        Freshness::OlderBut(BTreeSet::new())
    }

    /// Whether the prompts `writes` creates on are as fresh as a second read would
    /// have them: new prompts (by name) never are, unless all of it is.
    fn covers(&self, writes: &Writes) -> bool {
        match self {
            Freshness::Fresh => true,
            Freshness::OlderBut(fresh) => writes.names.is_empty() && writes.ids.is_subset(fresh),
        }
    }
}

/// The prompts whose `field` is one of `values` (none asked, none listed).
async fn list_in(
    client: &Client,
    field: &str,
    values: &BTreeSet<String>,
) -> Result<Listing<Prompt>, ApiError> {
    if values.is_empty() {
        return Ok(Listing::default());
    }
    client
        .list_prompts(&filter_in(field, values.iter().cloned()))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{Applied, Failed};
    use crate::desired::PromptKey;
    use crate::plan::{DeployStep, DeployTarget, NewPrompt};

    fn deploy(path: &str, target: Target) -> DeployItem {
        DeployItem {
            path: path.to_owned(),
            key: PromptKey::Name(path.to_owned()),
            target: Some(target),
            step: DeployStep::Deploy {
                target: DeployTarget::Existing {
                    version: 1,
                    commit: false,
                },
                live_before: None,
            },
        }
    }

    fn failed(prompt_id: Option<&str>) -> Option<Outcome> {
        Some(Err(Failed {
            prompt_id: prompt_id.map(str::to_owned),
            ..Failed::from(ApiError::NotAttempted("stopped".into()))
        }))
    }

    /// A deploy's prompts are read again by the id it learned or planned (with the
    /// name of one it was to create, so that it is never created twice by name), by
    /// name when no id is known; a prompt it sent nothing for is left alone.
    #[test]
    fn a_deploy_touches_what_it_sent_for_by_id_and_else_by_name() {
        let new = |name: &str| {
            Target::New(NewPrompt {
                name: name.to_owned(),
                description: None,
            })
        };
        let mut live = deploy("live.prompt.yaml", Target::Existing("prm_live".into()));
        live.step = DeployStep::AlreadyLive { version: 3 };
        let items = vec![
            deploy("a.prompt.yaml", Target::Existing("prm_a".into())),
            deploy("b.prompt.yaml", new("B")),
            deploy("c.prompt.yaml", new("C")),
            deploy("d.prompt.yaml", Target::Existing("prm_d".into())),
            live,
        ];
        let outcomes = vec![
            Some(Ok(Applied {
                prompt_id: "prm_a".into(),
                version: Some(2),
                created_prompt: false,
                created_version: false,
            })),
            failed(Some("prm_b")),
            failed(None),
            None,
            None,
        ];
        let touched = touched(&items, &outcomes);
        assert_eq!(
            touched.ids,
            BTreeMap::from([
                ("prm_a".to_owned(), None),
                ("prm_b".to_owned(), Some("B".to_owned())),
                ("prm_d".to_owned(), None),
            ])
        );
        assert_eq!(touched.names, BTreeSet::from(["C".to_owned()]));
    }
}
