//! The tags of a repository: every `refs/tags/*` peeled (through annotated tag
//! objects) to the commit it leads to, as the [`TagInfo`] release selection
//! ([`deploy`](crate::deploy)) chooses from; the tags that lead to no commit are kept
//! apart with the reason, for a warning.

use git2::{ObjectType, Oid};

use super::{GitError, GitRepo};
use crate::deploy::TagInfo;

/// The tags of a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagScan {
    /// Tags that lead to a commit, by name.
    pub tags: Vec<TagInfo>,
    /// Tags that do not (they point at a tree or a blob, or at an object missing from a
    /// shallow clone), with the reason, for a warning.
    pub skipped: Vec<SkippedTag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTag {
    pub name: String,
    pub reason: String,
}

impl GitRepo {
    /// All tags that point (directly or through annotated tag objects) at commits;
    /// the others are returned in `skipped` with a reason, for a warning.
    pub fn tags(&self) -> Result<TagScan, GitError> {
        let read = |source: git2::Error| GitError::read("tags".to_owned(), &self.root, &source);
        let mut scan = TagScan::default();
        for reference in self.repo.references().map_err(read)? {
            let reference = reference.map_err(read)?;
            let Some(name) = reference.name_bytes().strip_prefix(b"refs/tags/") else {
                continue;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let target = match reference.resolve() {
                Ok(resolved) => resolved.target(),
                Err(_) => None,
            };
            let Some(target) = target else {
                scan.skipped.push(SkippedTag {
                    name,
                    reason: "it is a symbolic reference that leads nowhere".to_owned(),
                });
                continue;
            };
            match self.peel_tag(target) {
                Ok((commit, date, annotated)) => scan.tags.push(TagInfo {
                    name,
                    commit,
                    date,
                    annotated,
                }),
                Err(reason) => scan.skipped.push(SkippedTag { name, reason }),
            }
        }
        scan.tags.sort_by(|a, b| a.name.cmp(&b.name));
        scan.skipped.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(scan)
    }

    /// The commit id, date and kind of the tag whose ref points at `oid`.
    fn peel_tag(&self, oid: Oid) -> Result<(String, i64, bool), String> {
        let missing = |oid: Oid| {
            let hint = if self.repo.is_shallow() {
                " (a shallow clone: fetch more history)"
            } else {
                ""
            };
            format!("it points at {oid}, which is not in this repository{hint}")
        };
        let mut object = self.repo.find_object(oid, None).map_err(|_| missing(oid))?;
        let mut tag_date = None;
        let mut annotated = false;
        for _ in 0..16 {
            match object.kind() {
                Some(ObjectType::Commit) => {
                    let commit = object
                        .peel_to_commit()
                        .map_err(|err| err.message().to_owned())?;
                    let date = tag_date.unwrap_or_else(|| commit.time().seconds());
                    return Ok((commit.id().to_string(), date, annotated));
                }
                Some(ObjectType::Tag) => {
                    let tag = object
                        .peel_to_tag()
                        .map_err(|err| err.message().to_owned())?;
                    annotated = true;
                    if tag_date.is_none() {
                        tag_date = tag.tagger().map(|tagger| tagger.when().seconds());
                    }
                    let target = tag.target_id();
                    object = self
                        .repo
                        .find_object(target, None)
                        .map_err(|_| missing(target))?;
                }
                Some(kind) => return Err(format!("it points at a {kind}, not a commit")),
                None => return Err("it points at an object of unknown kind".to_owned()),
            }
        }
        Err("it is a chain of more than 16 tag objects".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use crate::testrepo::TestRepo;

    use super::*;

    #[test]
    fn tags_peel_to_commits_with_their_dates_and_the_others_are_skipped() {
        let repo = TestRepo::new();
        repo.write("a.txt", "a\n");
        let first = repo.commit("first", 1_700_000_000);
        repo.git(&["tag", "v1.0.0"], 1_700_000_000);
        let second = repo.commit("second", 1_700_000_600);
        repo.git(
            &["tag", "--annotate", "v1.1.0", "-m", "release"],
            1_700_000_900,
        );
        let tree = repo.git(&["rev-parse", "HEAD^{tree}"], 0);
        repo.git(&["tag", "tree-tag", &tree], 0);

        let scan = GitRepo::open(repo.path()).unwrap().tags().unwrap();
        assert_eq!(
            scan.tags,
            vec![
                TagInfo {
                    name: "v1.0.0".into(),
                    commit: first,
                    date: 1_700_000_000,
                    annotated: false,
                },
                TagInfo {
                    name: "v1.1.0".into(),
                    commit: second,
                    date: 1_700_000_900,
                    annotated: true,
                },
            ]
        );
        assert_eq!(
            scan.skipped,
            vec![SkippedTag {
                name: "tree-tag".into(),
                reason: "it points at a tree, not a commit".into(),
            }]
        );
    }

    #[test]
    fn a_repository_without_tags_has_none() {
        let repo = TestRepo::new();
        repo.commit("first", 1_700_000_000);
        let scan = GitRepo::open(repo.path()).unwrap().tags().unwrap();
        assert_eq!(scan, TagScan::default());
    }
}
