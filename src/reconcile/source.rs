//! The desired state a pass works from: the source (a commit, the working tree, or
//! the files of a deploy-only pass), read again when a linked worktree or checkout
//! moved under it, and the release commit's when a release tag applies.

use crate::Error;
use crate::config::{Live, Settings};
use crate::deploy::{self, Release};
use crate::desired::{self, DesiredSet, LoadCache, SourceRev};
use crate::gitrepo::GitRepo;

use super::{Halves, PassOptions};

/// The desired state of the source, and of the release commit when a tag applies.
pub(super) async fn load(
    settings: &Settings,
    options: &PassOptions,
    halves: Halves,
) -> Result<(DesiredSet, Option<(Release, DesiredSet)>), Error> {
    let settings = settings.clone();
    let options = options.clone();
    tokio::task::spawn_blocking(move || {
        // The repository path may be a link that kubernetes git-sync swaps to a new
        // worktree at any moment: read again when it moved during the read, so that
        // what is read is one revision, named as the link named it.
        for attempt in 1..=MOVED_RETRIES {
            let before = resolved(&settings.repo);
            let read = read_sources(&settings, &options, halves);
            if resolved(&settings.repo) == before {
                return read;
            }
            tracing::info!(attempt, repo = %settings.repo.display(), "the repository moved during the read (a git-sync swap?); reading it again");
        }
        read_sources(&settings, &options, halves)
    })
    .await
    .map_err(|err| Error::Internal(format!("loading the repository: {err}")))?
}

/// Reads of a repository whose path moved under them before one is stable.
const MOVED_RETRIES: u32 = 5;

/// Where `path` leads now, links followed (`None` when it leads nowhere).
fn resolved(path: &std::path::Path) -> Option<std::path::PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// The desired state of the source and, when a release tag applies, of its commit.
fn read_sources(
    settings: &Settings,
    options: &PassOptions,
    halves: Halves,
) -> Result<(DesiredSet, Option<(Release, DesiredSet)>), Error> {
    let mut cache = options.cache.as_ref().map(|cache| {
        cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    });
    let read = match halves {
        Halves::Both => read_trees(settings, options, cache.as_deref_mut()),
        Halves::DeployOnly => read_release(settings, cache.as_deref_mut()),
    };
    if let Some(cache) = cache.as_deref_mut() {
        let reused = cache.sweep();
        tracing::debug!(
            reused,
            kept = cache.len(),
            "prompt files taken from the cache"
        );
    }
    read
}

/// [`read_sources`], with the cache.
fn read_trees(
    settings: &Settings,
    options: &PassOptions,
    mut cache: Option<&mut LoadCache>,
) -> Result<(DesiredSet, Option<(Release, DesiredSet)>), Error> {
    let repo = GitRepo::open(&settings.repo)?;
    let source = desired::load_with(
        &repo,
        &options.source,
        &settings.prompts,
        cache.as_deref_mut(),
    )?;
    if !(options.deploy && settings.deploy.enabled) || settings.deploy.live == Live::None {
        return Ok((source, None));
    }
    let release = match settings.deploy.live {
        Live::Branch => branch_release(&source, &options.source),
        _ => newest_release(&repo, settings)?,
    };
    let Some(release) = release else {
        return Ok((source, None));
    };
    tracing::debug!(tag = release.tag, commit = release.commit, "release");
    let set = if !source.source.worktree
        && source.source.commit.as_deref() == Some(release.commit.as_str())
    {
        source.clone()
    } else {
        desired::load_with(
            &repo,
            &SourceRev::Commit(release.commit.clone()),
            &settings.prompts,
            cache,
        )?
    };
    Ok((source, Some((release, set))))
}

/// A target with `live = "branch"`: the synced commit is the release (named by the
/// revision read, `HEAD` by default); none for the working tree.
fn branch_release(source: &DesiredSet, rev: &SourceRev) -> Option<Release> {
    let commit = source
        .source
        .commit
        .clone()
        .filter(|_| !source.source.worktree)?;
    let name = match rev {
        SourceRev::Commit(rev) => rev.clone(),
        SourceRev::Worktree => return None,
    };
    Some(Release {
        tag: name,
        commit,
        date: 0,
        annotated: false,
    })
}

/// The newest tag that matches `deploy.tags`, if any.
fn newest_release(repo: &GitRepo, settings: &Settings) -> Result<Option<Release>, Error> {
    let scan = repo.tags()?;
    for skipped in &scan.skipped {
        tracing::warn!(tag = skipped.name, reason = skipped.reason, "skipped tag");
    }
    let release = deploy::select_release(&scan.tags, &settings.deploy.tags)?;
    match &release {
        Some(release) => tracing::info!(tag = release.tag, commit = release.commit, "release"),
        None => tracing::debug!(patterns = ?settings.deploy.tags, "no release tag matches"),
    }
    Ok(release)
}

/// The release alone, for a deploy-only pass: its desired state, and as the source an
/// empty set that names the release commit (nothing of the source is synced).
fn read_release(
    settings: &Settings,
    cache: Option<&mut LoadCache>,
) -> Result<(DesiredSet, Option<(Release, DesiredSet)>), Error> {
    if !settings.deploy.enabled || settings.deploy.live == Live::None {
        return Err(deploy::DeployError::Disabled.into());
    }
    let repo = GitRepo::open(&settings.repo)?;
    let release = if settings.deploy.live == Live::Branch {
        let head = repo.resolve_commit("HEAD")?;
        Some(Release {
            tag: "HEAD".to_owned(),
            commit: head.id,
            date: 0,
            annotated: false,
        })
    } else {
        newest_release(&repo, settings)?
    };
    let release = release.ok_or_else(|| deploy::DeployError::NoRelease {
        patterns: settings.deploy.tags.join(", "),
    })?;
    let set = desired::load_with(
        &repo,
        &SourceRev::Commit(release.commit.clone()),
        &settings.prompts,
        cache,
    )?;
    let source = DesiredSet {
        source: set.source.clone(),
        prompts: Vec::new(),
        diagnostics: Vec::new(),
        files: Vec::new(),
    };
    Ok((source, Some((release, set))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::config::Overrides;
    use crate::testrepo::TestRepo;

    fn settings(repo: &TestRepo) -> Settings {
        let root = repo.path().to_string_lossy().into_owned();
        let global = Cli::try_parse_checked(["promptsync", "--repo", root.as_str(), "sync"])
            .unwrap()
            .global;
        Settings::load_from_env(
            &global,
            &Overrides::default(),
            std::iter::empty::<(&str, &str)>(),
        )
        .unwrap()
    }

    fn prompt(content: &str) -> String {
        format!("name: A\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: {content}\n")
    }

    /// A repository whose tag `v1.0.0` is on the first of two commits.
    fn tagged() -> (TestRepo, String) {
        let repo = TestRepo::new();
        repo.write("prompts/a.prompt.yaml", &prompt("Released"));
        let released = repo.commit("first", 1_700_000_000);
        repo.git(&["tag", "v1.0.0"], 1_700_000_000);
        repo.write("prompts/a.prompt.yaml", &prompt("Newer"));
        repo.commit("second", 1_700_000_100);
        (repo, released)
    }

    fn options(deploy: bool) -> PassOptions {
        PassOptions::command_line(SourceRev::Commit("HEAD".into()), true, deploy, false)
    }

    /// The source is HEAD; the release is the newest tag's commit, read on its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_source_and_the_release_tags_commit_are_both_read() {
        let (repo, released) = tagged();
        let (source, release) = load(&settings(&repo), &options(true), Halves::Both)
            .await
            .unwrap();
        let content =
            |set: &DesiredSet| serde_json::to_string(set.prompts[0].spec.as_ref()).unwrap();
        assert!(content(&source).contains("Newer"));
        let (release, set) = release.expect("the tag applies");
        assert_eq!((release.tag.as_str(), release.commit), ("v1.0.0", released));
        assert!(content(&set).contains("Released"));
    }

    /// `--no-deploy` reads no release; a deploy-only pass reads the release alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_deploy_reads_no_release_and_deploy_only_reads_only_the_release() {
        let (repo, released) = tagged();
        let settings = settings(&repo);
        let (source, release) = load(&settings, &options(false), Halves::Both)
            .await
            .unwrap();
        assert_eq!(source.prompts.len(), 1);
        assert!(release.is_none());
        let (_, release) = load(&settings, &options(true), Halves::DeployOnly)
            .await
            .unwrap();
        assert_eq!(release.expect("the tag applies").0.commit, released);
    }

    /// A branch as the release (`live = "branch"`) is the source commit itself, and
    /// never the working tree.
    #[test]
    fn a_branch_release_is_the_source_commit_and_never_the_worktree() {
        let set = |worktree| DesiredSet {
            source: desired::SourceInfo {
                commit: Some("c0ffee".into()),
                subject: None,
                worktree,
            },
            prompts: Vec::new(),
            diagnostics: Vec::new(),
            files: Vec::new(),
        };
        let release = branch_release(&set(false), &SourceRev::Commit("main".into())).unwrap();
        assert_eq!(
            (release.tag.as_str(), release.commit.as_str()),
            ("main", "c0ffee")
        );
        assert!(branch_release(&set(true), &SourceRev::Worktree).is_none());
        assert!(branch_release(&set(false), &SourceRev::Worktree).is_none());
    }
}
