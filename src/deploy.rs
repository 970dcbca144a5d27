//! Release-tag selection: which tag (and so which commit) decides what is live. Pure,
//! no I/O: owns the tag type it chooses from ([`TagInfo`]), which
//! [`gitrepo`](crate::gitrepo) fills from a repository's refs.

use std::cmp::Ordering;

use globset::{GlobBuilder, GlobSetBuilder};
use thiserror::Error;

/// A tag that leads to a commit, as release selection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// Short name (`v1.2.0`).
    pub name: String,
    /// Full id of the commit the tag leads to.
    pub commit: String,
    /// The annotated tag's own date (tagger), or the commit's date for a lightweight
    /// tag; unix seconds.
    pub date: i64,
    pub annotated: bool,
}

/// The tag chosen as the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub tag: String,
    /// Full id of the commit the tag leads to.
    pub commit: String,
    /// The tag's date (tagger date, or the commit's for a lightweight tag); unix seconds.
    pub date: i64,
    pub annotated: bool,
}

#[derive(Debug, Error)]
pub enum DeployError {
    #[error(
        "invalid release tag pattern `{pattern}` in deploy.tags: {source}; fix it in promptsync.toml"
    )]
    Pattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },

    /// A deploy-only pass with deploying switched off.
    #[error(
        "--deploy-only, but deploy.enabled is false: nothing may go live; set deploy.enabled = true or drop --deploy-only"
    )]
    Disabled,

    /// A deploy-only pass and no release tag.
    #[error(
        "--deploy-only: no tag matches deploy.tags ({patterns}), so there is nothing to deploy; are the tags fetched (`git fetch --tags`, or a CI checkout with full history)?"
    )]
    NoRelease { patterns: String },
}

/// The newest tag matching any of `patterns` (globset globs), or None. Newest by date;
/// on equal dates, the later name in version order (`v1.10.0` after `v1.9.0`).
/// No patterns, no release.
pub fn select_release(
    tags: &[TagInfo],
    patterns: &[String],
) -> Result<Option<Release>, DeployError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(false)
            .build()
            .map_err(|source| DeployError::Pattern {
                pattern: pattern.clone(),
                source,
            })?;
        builder.add(glob);
    }
    let set = builder.build().map_err(|source| DeployError::Pattern {
        pattern: patterns.join(", "),
        source,
    })?;
    let newest = tags
        .iter()
        .filter(|tag| set.is_match(&tag.name))
        .max_by(|a, b| {
            a.date
                .cmp(&b.date)
                .then_with(|| version_cmp(&a.name, &b.name))
        });
    Ok(newest.map(|tag| Release {
        tag: tag.name.clone(),
        commit: tag.commit.clone(),
        date: tag.date,
        annotated: tag.annotated,
    }))
}

/// Compare names in version order: runs of digits compare as numbers, the rest as
/// text (`v1.9.0` < `v1.10.0`, `rc2` < `rc10`); like `sort -V` for tag names.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let (chunk_a, rest_a) = split_chunk(a);
        let (chunk_b, rest_b) = split_chunk(b);
        let digits_a = chunk_a.starts_with(|c: char| c.is_ascii_digit());
        let digits_b = chunk_b.starts_with(|c: char| c.is_ascii_digit());
        let order = match (digits_a, digits_b) {
            (true, true) => {
                let trimmed_a = chunk_a.trim_start_matches('0');
                let trimmed_b = chunk_b.trim_start_matches('0');
                trimmed_a
                    .len()
                    .cmp(&trimmed_b.len())
                    .then_with(|| trimmed_a.cmp(trimmed_b))
                    .then_with(|| chunk_a.len().cmp(&chunk_b.len()))
            }
            // A number sorts before text at the same place (`1.0` < `1.a`).
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => chunk_a.cmp(chunk_b),
        };
        if order != Ordering::Equal {
            return order;
        }
        a = rest_a;
        b = rest_b;
    }
}

/// The leading run of digits, or of non-digits, and the rest.
fn split_chunk(s: &str) -> (&str, &str) {
    let digits = s.starts_with(|c: char| c.is_ascii_digit());
    let end = s
        .find(|c: char| c.is_ascii_digit() != digits)
        .unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, date: i64) -> TagInfo {
        TagInfo {
            name: name.to_owned(),
            commit: format!("commit-of-{name}"),
            date,
            annotated: true,
        }
    }

    fn patterns(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn newest_date_wins_even_on_an_older_name() {
        let tags = [tag("v2.0.0", 100), tag("v1.0.0", 200), tag("other", 300)];
        let release = select_release(&tags, &patterns(&["v*"])).unwrap().unwrap();
        assert_eq!(release.tag, "v1.0.0");
        assert_eq!(release.commit, "commit-of-v1.0.0");
        assert_eq!(release.date, 200);
        assert!(release.annotated);
    }

    #[test]
    fn ties_go_to_the_higher_version() {
        let tags = [tag("v1.10.0", 100), tag("v1.9.0", 100), tag("v1.2.0", 100)];
        let release = select_release(&tags, &patterns(&["v*"])).unwrap().unwrap();
        assert_eq!(release.tag, "v1.10.0");
        let reversed = [tag("v1.9.0", 100), tag("v1.10.0", 100)];
        assert_eq!(
            select_release(&reversed, &patterns(&["v*"]))
                .unwrap()
                .unwrap()
                .tag,
            "v1.10.0"
        );
    }

    #[test]
    fn any_pattern_matches_and_none_means_off() {
        let tags = [tag("release/2024-01", 100), tag("v1", 50)];
        let release = select_release(&tags, &patterns(&["v*", "release/*"])).unwrap();
        assert_eq!(release.unwrap().tag, "release/2024-01");
        assert_eq!(select_release(&tags, &[]).unwrap(), None);
        assert_eq!(select_release(&tags, &patterns(&["prod-*"])).unwrap(), None);
        assert_eq!(select_release(&[], &patterns(&["v*"])).unwrap(), None);
    }

    #[test]
    fn bad_patterns_are_named() {
        let err = select_release(&[], &patterns(&["v[0-9"])).unwrap_err();
        assert!(err.to_string().contains("`v[0-9`"), "{err}");
    }

    #[test]
    fn version_order() {
        let mut names = vec![
            "v1.10.0",
            "v1.9.0",
            "v1.9.0-rc10",
            "v1.9.0-rc2",
            "v2",
            "v1.09.1",
            "v10",
        ];
        names.sort_by(|a, b| version_cmp(a, b));
        assert_eq!(
            names,
            [
                "v1.9.0",
                "v1.9.0-rc2",
                "v1.9.0-rc10",
                "v1.09.1",
                "v1.10.0",
                "v2",
                "v10"
            ]
        );
        assert_eq!(version_cmp("v1.0", "v1.0"), Ordering::Equal);
        assert_eq!(version_cmp("v01", "v1"), Ordering::Greater);
    }
}
