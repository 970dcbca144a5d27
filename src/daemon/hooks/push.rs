//! Which pushes can matter: what a push payload says (its ref, and every changed path
//! when it lists them all), and whether a push to the synced branch touches the
//! configuration file, a prompt file or a content file a prompt file of the synced
//! revision names (those worked out from the mirror, bounded in time, cached by
//! revision). A push that cannot matter is answered without a look. Knows nothing
//! about HTTP or signatures.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Hooks, Provider};
use crate::config::DEFAULT_CONFIG_FILE;
use crate::daemon::source::Remote;

/// How long working out a revision's content files may take before a push is looked
/// at without that check.
const CONTENT_FILES_TIMEOUT: Duration = Duration::from_secs(2);

/// What a push payload says, as far as it says it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Push {
    /// `refs/heads/main`, `refs/tags/v1`.
    pub(super) git_ref: Option<String>,
    /// Every changed path, when the payload lists them all.
    paths: Option<Vec<String>>,
}

impl Push {
    /// GitHub and GitLab: `ref` and `commits[].added/modified/removed`. The list is
    /// complete only when every commit of the push is in it (GitHub lists at most 20,
    /// GitLab says `total_commits_count`), the push is no forced one, and it made or
    /// deleted no ref. Generic: `ref` and `paths`, both optional.
    pub(super) fn of(provider: Provider, body: &[u8]) -> Push {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return Push::default();
        };
        let git_ref = value["ref"].as_str().map(str::to_owned);
        let strings = |value: &Value| -> Option<Vec<String>> {
            value
                .as_array()?
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let paths = match provider {
            Provider::Generic => strings(&value["paths"]),
            Provider::GitHub | Provider::GitLab => {
                let commits = value["commits"].as_array();
                let listed = commits.map_or(0, Vec::len);
                let total = value["total_commits_count"]
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(listed);
                let whole = listed > 0
                    && total == listed
                    && listed < 20
                    && value["forced"].as_bool() != Some(true)
                    && value["created"].as_bool() != Some(true)
                    && value["deleted"].as_bool() != Some(true);
                commits.filter(|_| whole).and_then(|commits| {
                    let mut paths = Vec::new();
                    for commit in commits {
                        for key in ["added", "modified", "removed"] {
                            paths.extend(strings(&commit[key])?);
                        }
                    }
                    Some(paths)
                })
            }
        };
        Push { git_ref, paths }
    }
}

/// Why `push` cannot change what is synced (`None`: it may; look).
pub(super) async fn cannot_matter(
    hooks: &Hooks,
    remote: &Arc<Remote>,
    push: &Push,
) -> Option<&'static str> {
    let git_ref = push.git_ref.as_deref()?;
    let branch = git_ref.strip_prefix("refs/heads/")?;
    if remote.branch().is_some_and(|synced| synced != branch) {
        return Some("a push to another branch");
    }
    let paths = push.paths.as_ref()?;
    let prompts = remote.prompt_settings()?;
    let matcher = crate::discover::Matcher::new(&prompts).ok()?;
    let named = |path: &str| {
        path == DEFAULT_CONFIG_FILE
            || crate::discover::is_prompt_file_name(path)
            || matcher.is_match(path)
    };
    if paths.iter().any(|path| named(path)) {
        return None;
    }
    let content = content_files(hooks, remote).await?;
    if paths.iter().any(|path| content.contains(path)) {
        return None;
    }
    Some("no changed path is the configuration, a prompt file or a content file of one")
}

/// The content files the prompt files of the synced revision name (cached by
/// revision); `None` when they cannot be worked out in time.
async fn content_files(hooks: &Hooks, remote: &Arc<Remote>) -> Option<Arc<HashSet<String>>> {
    let good = remote.good()?;
    {
        let cached = hooks.content.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((commit, files)) = cached.as_ref()
            && *commit == good.commit
        {
            return Some(Arc::clone(files));
        }
    }
    let prompts = remote.prompt_settings()?;
    let commit = good.commit.clone();
    let job =
        tokio::task::spawn_blocking(move || named_content_files(&good.mirror, &commit, &prompts));
    let files = match tokio::time::timeout(CONTENT_FILES_TIMEOUT, job).await {
        Ok(Ok(Some(files))) => Arc::new(files),
        _ => return None,
    };
    *hooks.content.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((good.commit, Arc::clone(&files)));
    Some(files)
}

/// Every `content_file` the prompt files at `commit` in `mirror` name, resolved.
fn named_content_files(
    mirror: &std::path::Path,
    commit: &str,
    prompts: &crate::config::PromptSettings,
) -> Option<HashSet<String>> {
    use crate::discover::FileTree;
    let repo = crate::gitrepo::GitRepo::open(mirror).ok()?;
    let commit = repo.resolve_commit(commit).ok()?;
    let tree = FileTree::Commit(repo.tree(&commit).ok()?);
    let matcher = crate::discover::Matcher::new(prompts).ok()?;
    let listing = tree.list(|path| matcher.is_match(path)).ok()?;
    let mut files = HashSet::new();
    for path in &listing.files {
        let Ok(bytes) = tree.read(path) else { continue };
        let parsed = crate::prompt::parse_file(path, &bytes);
        let Some(messages) = parsed.value["messages"].as_array() else {
            continue;
        };
        for message in messages {
            if let Some(relative) = message["content_file"].as_str()
                && let Ok(resolved) = tree.resolve(path, relative)
            {
                files.insert(resolved);
            }
        }
    }
    Some(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_push_lists_its_paths_only_when_it_lists_them_all() {
        let body = json!({
            "ref": "refs/heads/main",
            "commits": [{"added": ["a.txt"], "modified": ["b.prompt.yaml"], "removed": []}],
        });
        let push = Push::of(Provider::GitHub, body.to_string().as_bytes());
        assert_eq!(push.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(
            push.paths,
            Some(vec!["a.txt".to_owned(), "b.prompt.yaml".to_owned()])
        );
        let forced = json!({"ref": "refs/heads/main", "forced": true, "commits": [{"added": []}]});
        assert_eq!(
            Push::of(Provider::GitHub, forced.to_string().as_bytes()).paths,
            None
        );
        let more = json!({"ref": "refs/heads/main", "total_commits_count": 30,
            "commits": [{"added": [], "modified": [], "removed": []}]});
        assert_eq!(
            Push::of(Provider::GitLab, more.to_string().as_bytes()).paths,
            None
        );
        assert_eq!(Push::of(Provider::Generic, b"not json"), Push::default());
    }
}
