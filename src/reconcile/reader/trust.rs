//! What a snapshot's listings cannot vouch for: a listing that failed holds back
//! every prompt it was asked for, one short of its `count` the prompts it did not
//! return, an item that cannot be read the prompt it names (or, naming none, every
//! prompt asked for that did not come back). Such prompts are marked unreadable, so
//! that none is taken as absent and created again; the pass gets a warning. Sends
//! nothing.

use std::collections::BTreeSet;

use crate::api::ApiError;
use crate::api::types::{ItemProblem, Listing, Prompt};
use crate::plan::Remote;

use super::Reader;

/// What a prompt list was asked for, to attribute an item that names nothing.
#[derive(Debug, Clone, Copy)]
pub(super) enum Asked<'a> {
    Ids(&'a BTreeSet<String>),
    Names(&'a BTreeSet<String>),
}

impl Reader<'_> {
    /// A snapshot listing, or, when it failed while the other one worked, an empty one
    /// with every prompt it was asked for marked unreadable with the reason: those
    /// prompts fail, the others still sync, and the failure ends the pass once it has
    /// run ([`Reader::failed_listing`]). A failure that stops the run is returned.
    pub(super) fn listing_or_hold(
        &mut self,
        listed: Result<Listing<Prompt>, ApiError>,
        asked: Asked<'_>,
        remote: &mut Remote,
    ) -> Result<Listing<Prompt>, ApiError> {
        let err = match listed {
            Ok(listing) => return Ok(listing),
            Err(err) if err.stops_run() => return Err(err),
            Err(err) => err,
        };
        tracing::warn!(error = %err, "a prompt list failed; the prompts it was for are not synced this pass");
        let reason = format!("the prompt list failed: {err}");
        let (keys, by_id) = match asked {
            Asked::Ids(ids) => (ids, true),
            Asked::Names(names) => (names, false),
        };
        hold_back(remote, keys.iter().cloned().collect(), by_id, &reason);
        self.failed_listing.get_or_insert(err);
        Ok(Listing::default())
    }

    /// A listing that may be missing items (its pages disagree with its `count`): every
    /// prompt asked for that it did not return is marked unreadable with the reason,
    /// so that none is taken as absent (and created again by name); the pass gets a
    /// warning. The prompts it did return are real and sync.
    pub(super) fn distrust(
        &mut self,
        remote: &mut Remote,
        listing: &Listing<Prompt>,
        asked: Asked<'_>,
    ) {
        let Some(untrusted) = &listing.untrusted else {
            return;
        };
        let reason = format!("the prompt list is incomplete: {untrusted}");
        tracing::warn!(problem = %reason, "a prompt list cannot be trusted to be complete");
        let (missing, by_id): (Vec<String>, bool) = match asked {
            Asked::Ids(ids) => (
                ids.iter()
                    .filter(|id| !listing.items.iter().any(|p| p.id() == Some(id.as_str())))
                    .cloned()
                    .collect(),
                true,
            ),
            Asked::Names(names) => (
                names
                    .iter()
                    .filter(|name| !listing.items.iter().any(|p| p.name.as_ref() == Some(*name)))
                    .cloned()
                    .collect(),
                false,
            ),
        };
        if missing.is_empty() {
            return;
        }
        self.warnings.push(format!(
            "{reason}; the {} prompt(s) it did not return are not synced this pass",
            missing.len()
        ));
        hold_back(remote, missing, by_id, &reason);
    }

    /// Record the list items that could not be read on the prompts they name. One
    /// that does not name what the list was asked for may be any prompt asked for
    /// that did not come back: those are marked too (so none is created twice), and
    /// the pass gets a warning.
    pub(super) fn attribute(
        &mut self,
        remote: &mut Remote,
        problems: &[ItemProblem],
        asked: Asked<'_>,
    ) {
        for problem in problems {
            let reason = problem.to_string();
            tracing::warn!(
                prompt_id = problem.prompt_id,
                name = problem.name,
                problem = %reason,
                "a listed prompt could not be read"
            );
            remote.mark_unreadable(
                problem.prompt_id.as_deref(),
                problem.name.as_deref(),
                &reason,
            );
            let unnamed = match asked {
                Asked::Ids(ids) => {
                    let missing: Vec<String> = ids
                        .iter()
                        .filter(|id| !remote.prompts.contains_key(*id))
                        .cloned()
                        .collect();
                    problem.prompt_id.is_none().then_some((missing, true))
                }
                Asked::Names(names) => {
                    let known = remote.ids_by_name();
                    let missing: Vec<String> = names
                        .iter()
                        .filter(|name| !known.contains_key(name.as_str()))
                        .cloned()
                        .collect();
                    problem.name.is_none().then_some((missing, false))
                }
            };
            let Some((missing, by_id)) = unnamed else {
                continue;
            };
            self.warnings.push(format!(
                "the prompt list: {reason}; it names no prompt, so the {} prompt(s) the list did not return are not synced this pass",
                missing.len()
            ));
            hold_back(remote, missing, by_id, &reason);
        }
    }

    /// The prompts of a listing, its problems recorded (and what it may miss).
    pub(super) fn listed(
        &mut self,
        listing: Listing<Prompt>,
        asked: Asked<'_>,
        remote: &mut Remote,
    ) -> Vec<Prompt> {
        self.distrust(remote, &listing, asked);
        self.attribute(remote, &listing.problems, asked);
        listing.items
    }
}

/// Mark prompts asked for that a listing did not return (by id, or by name) unreadable
/// for `reason`, so that none is taken as absent and created again.
fn hold_back(remote: &mut Remote, missing: Vec<String>, by_id: bool, reason: &str) {
    let map = if by_id {
        &mut remote.unreadable
    } else {
        &mut remote.unreadable_names
    };
    for key in missing {
        map.entry(key).or_insert_with(|| reason.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prompts a listing could not vouch for are marked unreadable with the first
    /// reason given, by id or by name.
    #[test]
    fn held_back_prompts_keep_the_first_reason() {
        let mut remote = Remote::default();
        hold_back(&mut remote, vec!["prm_a".into()], true, "first");
        hold_back(
            &mut remote,
            vec!["prm_a".into(), "prm_b".into()],
            true,
            "second",
        );
        hold_back(&mut remote, vec!["A".into()], false, "by name");
        assert_eq!(remote.unreadable["prm_a"], "first");
        assert_eq!(remote.unreadable["prm_b"], "second");
        assert_eq!(remote.unreadable_names["A"], "by name");
        assert!(!remote.unreadable.contains_key("A"));
    }
}
