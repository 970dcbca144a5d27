//! What the remote advertises and what the mirror must hold: the branch whose tip
//! syncs (the remote's HEAD when none is set) and the release tags, chosen by
//! `deploy.tags`. Comparing the two says whether a fetch is needed at all. Pure, no I/O.

use std::collections::BTreeMap;

use globset::{Glob, GlobSetBuilder};

/// The refs a remote advertised (ls-refs): branches and tags by short name, each with
/// the object its ref points at (an annotated tag's own object, not its commit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Advertised {
    /// The branch the remote's HEAD names, when it said.
    pub head: Option<String>,
    pub branches: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// The refs the mirror holds, or must hold after a fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// The branch and its tip.
    pub branch: Option<(String, String)>,
    /// Release tags (those `deploy.tags` matches) and the objects they point at.
    pub tags: BTreeMap<String, String>,
}

/// Why the advertised refs cannot be synced: a person must act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Missing {
    /// The configured branch is not on the remote (deleted, or misspelt).
    Branch { branch: String },
    /// No branch was configured and the remote's HEAD names none (an empty remote).
    Head,
}

impl Advertised {
    /// What the mirror must hold to sync `branch` (the remote's HEAD when `None`) with
    /// the tags `patterns` (globs, `deploy.tags`) match.
    pub(crate) fn wanted(
        &self,
        branch: Option<&str>,
        patterns: &[String],
    ) -> Result<Wanted, Missing> {
        let name = match branch {
            Some(branch) => branch.to_owned(),
            None => self.head.clone().ok_or(Missing::Head)?,
        };
        let Some(tip) = self.branches.get(&name) else {
            return Err(match branch {
                Some(_) => Missing::Branch { branch: name },
                None => Missing::Head,
            });
        };
        Ok(Wanted {
            branch: Some((name, tip.clone())),
            tags: self.tags_matching(patterns),
        })
    }

    /// The tags whose names `patterns` match (an invalid glob matches nothing: the
    /// configuration has checked them).
    pub(crate) fn tags_matching(&self, patterns: &[String]) -> BTreeMap<String, String> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            if let Ok(glob) = Glob::new(pattern) {
                set.add(glob);
            }
        }
        let Ok(set) = set.build() else {
            return BTreeMap::new();
        };
        self.tags
            .iter()
            .filter(|(name, _)| set.is_match(name.as_str()))
            .map(|(name, id)| (name.clone(), id.clone()))
            .collect()
    }
}

impl Wanted {
    /// The refs to fetch to get from `held` to `self`: the branch when its tip moved
    /// (a force-push too), and each tag that is new or points elsewhere. Empty: no
    /// fetch.
    pub(crate) fn to_fetch(&self, held: &Wanted) -> Vec<String> {
        let mut refs = Vec::new();
        if let Some((name, tip)) = &self.branch
            && held.branch.as_ref() != Some(&(name.clone(), tip.clone()))
        {
            refs.push(format!("refs/heads/{name}"));
        }
        for (tag, id) in &self.tags {
            if held.tags.get(tag) != Some(id) {
                refs.push(format!("refs/tags/{tag}"));
            }
        }
        refs
    }

    /// The tags the mirror holds that it must not any more (deleted remotely, moved
    /// out of `deploy.tags`).
    pub(crate) fn to_prune<'a>(&self, held: &'a Wanted) -> Vec<&'a str> {
        held.tags
            .keys()
            .filter(|tag| !self.tags.contains_key(*tag))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn advertised() -> Advertised {
        Advertised {
            head: Some("main".into()),
            branches: map(&[("main", "c2"), ("dev", "c9")]),
            tags: map(&[("v1", "t1"), ("v2", "t2"), ("nightly", "c5")]),
        }
    }

    #[test]
    fn the_head_branch_and_matching_tags_are_wanted() {
        let wanted = advertised().wanted(None, &["v*".into()]).unwrap();
        assert_eq!(wanted.branch, Some(("main".into(), "c2".into())));
        assert_eq!(wanted.tags, map(&[("v1", "t1"), ("v2", "t2")]));
        let wanted = advertised().wanted(Some("dev"), &[]).unwrap();
        assert_eq!(wanted.branch, Some(("dev".into(), "c9".into())));
        assert!(wanted.tags.is_empty());
    }

    #[test]
    fn a_missing_branch_or_head_is_named() {
        let missing = advertised().wanted(Some("release"), &[]).unwrap_err();
        assert_eq!(
            missing,
            Missing::Branch {
                branch: "release".into()
            }
        );
        let empty = Advertised::default();
        assert_eq!(empty.wanted(None, &[]).unwrap_err(), Missing::Head);
    }

    #[test]
    fn an_unchanged_remote_needs_no_fetch() {
        let wanted = advertised().wanted(None, &["v*".into()]).unwrap();
        assert!(wanted.to_fetch(&wanted).is_empty());
        assert!(wanted.to_prune(&wanted).is_empty());
    }

    #[test]
    fn a_moved_tip_a_new_tag_and_a_deleted_tag() {
        let held = advertised().wanted(None, &["v*".into()]).unwrap();
        let mut remote = advertised();
        remote.branches.insert("main".into(), "c3".into());
        remote.tags.insert("v3".into(), "t3".into());
        remote.tags.remove("v1");
        let wanted = remote.wanted(None, &["v*".into()]).unwrap();
        assert_eq!(wanted.to_fetch(&held), ["refs/heads/main", "refs/tags/v3"]);
        assert_eq!(wanted.to_prune(&held), ["v1"]);
    }

    #[test]
    fn a_moved_tag_is_fetched_again() {
        let held = advertised().wanted(None, &["v*".into()]).unwrap();
        let mut remote = advertised();
        remote.tags.insert("v2".into(), "t2b".into());
        let wanted = remote.wanted(None, &["v*".into()]).unwrap();
        assert_eq!(wanted.to_fetch(&held), ["refs/tags/v2"]);
    }
}
