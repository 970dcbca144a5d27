//! What was in sync after a pass, so that the next pass after a commit can look at
//! the prompts that changed and nothing else (the daemon's incremental passes): each
//! prompt file's fingerprint when it was last known to match the remote, the release
//! that was live, and the settings the pass ran with. A pass with a baseline that
//! still applies (same release, same settings) lists and plans only the prompts whose
//! fingerprint differs; the periodic full pass catches what a baseline cannot see
//! (an edit made in the Respan UI). Pure.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::config::Settings;
use crate::desired::DesiredPrompt;
use crate::plan::{DeployStep, SyncStep};
use crate::reconcile::Pass;

/// Maps over every prompt file of a pass, made and read on every pass: hashed with
/// foldhash (the keys are the repository's paths, not a stranger's).
type PathMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The prompts known to be in sync, and under which release and settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Fingerprint by prompt file path.
    prompts: PathMap<String, u64>,
    /// The release tag and its commit, when the release's content was all live.
    release: Option<(String, String)>,
    settings: u64,
}

/// A digest of the settings that change what a pass does.
fn settings_fingerprint(settings: &Settings) -> u64 {
    let mut hasher = DefaultHasher::new();
    settings.prompts.include.hash(&mut hasher);
    settings.prompts.exclude.hash(&mut hasher);
    settings.deploy.enabled.hash(&mut hasher);
    settings.deploy.tags.hash(&mut hasher);
    format!("{:?}", settings.sync.drift).hash(&mut hasher);
    settings.sync.suspend.hash(&mut hasher);
    settings.api.base_url.as_str().hash(&mut hasher);
    hasher.finish()
}

impl Baseline {
    /// What `pass` left in sync. `since` is the baseline it ran with (its carried
    /// prompts stay in sync); a prompt that failed, or whose change was not sent (a
    /// dry run, `suspend`, `drift = "report"`), is left out, so the next pass looks at
    /// it again.
    pub fn after(pass: &Pass, since: Option<&Baseline>, settings: &Settings) -> Baseline {
        let mut in_sync: PathMap<&str, bool> =
            PathMap::with_capacity_and_hasher(pass.sync.len(), Default::default());
        for (item, outcome) in &pass.sync {
            let ok = match (&item.step, outcome) {
                (SyncStep::Unchanged { .. }, _) => true,
                (SyncStep::Change { .. }, Some(Ok(_))) => !pass.dry_run,
                _ => false,
            };
            in_sync.insert(item.path.as_str(), ok);
        }
        let mut prompts =
            PathMap::with_capacity_and_hasher(pass.source.prompts.len(), Default::default());
        for desired in &pass.source.prompts {
            let print = desired.fingerprint();
            let carried = since.is_some_and(|b| b.prompts.get(&desired.path) == Some(&print));
            let synced = in_sync.get(desired.path.as_str()).copied();
            if synced == Some(true) || (synced.is_none() && carried) {
                prompts.insert(desired.path.clone(), print);
            }
        }
        let release_live = pass.deploy.iter().all(|(item, outcome)| {
            matches!(item.step, DeployStep::AlreadyLive { .. })
                || (matches!(item.step, DeployStep::Deploy { .. })
                    && matches!(outcome, Some(Ok(_))))
        });
        let release = match &pass.release {
            Some((release, _)) if release_live && !pass.dry_run => {
                Some((release.tag.clone(), release.commit.clone()))
            }
            // Carried over from a pass that deployed it, when this one did not look.
            Some((release, _)) if pass.deploy.is_empty() => since
                .and_then(|b| b.release.clone())
                .filter(|(tag, commit)| *tag == release.tag && *commit == release.commit),
            Some(_) => None,
            None => None,
        };
        Baseline {
            prompts,
            release,
            settings: settings_fingerprint(settings),
        }
    }

    /// Whether a pass with these settings and this release (tag, commit) may rely on
    /// this baseline. A new release needs every prompt looked at.
    pub fn applies(&self, settings: &Settings, release: Option<(&str, &str)>) -> bool {
        let same_release = match (release, &self.release) {
            (None, None) => true,
            (Some((tag, commit)), Some((t, c))) => tag == t && commit == c,
            _ => false,
        };
        same_release && self.settings == settings_fingerprint(settings)
    }

    /// Whether `desired` is as it was when last in sync.
    pub fn unchanged(&self, desired: &DesiredPrompt) -> bool {
        self.prompts.get(&desired.path) == Some(&desired.fingerprint())
    }

    /// How many prompt files it holds.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Applied;
    use crate::cli::Cli;
    use crate::config::Overrides;
    use crate::desired::{DesiredSet, PromptKey, SourceInfo};
    use crate::plan::{MetadataUpdate, SyncItem, Target};

    fn settings(env: &[(&str, &str)]) -> Settings {
        let global = Cli::try_parse_checked(["promptsync", "--repo", "/nonexistent/x", "sync"])
            .unwrap()
            .global;
        Settings::load_from_env(&global, &Overrides::default(), env.iter().copied()).unwrap()
    }

    fn desired(path: &str, text: &str) -> DesiredPrompt {
        DesiredPrompt::new(
            path.into(),
            PromptKey::Name(path.into()),
            None,
            None,
            true,
            serde_json::from_value(serde_json::json!({
                "model": "m", "messages": [{"role": "user", "content": text}]
            }))
            .unwrap(),
        )
    }

    fn item(path: &str, step: SyncStep) -> SyncItem {
        SyncItem {
            path: path.into(),
            key: PromptKey::Name(path.into()),
            target: Some(Target::Existing("p".into())),
            step,
        }
    }

    fn pass(
        prompts: Vec<DesiredPrompt>,
        sync: Vec<(SyncItem, Option<crate::apply::Outcome>)>,
    ) -> Pass {
        Pass {
            source: DesiredSet {
                source: SourceInfo {
                    commit: None,
                    subject: None,
                    worktree: false,
                },
                prompts,
                diagnostics: Vec::new(),
                files: Vec::new(),
            },
            release: None,
            dry_run: false,
            suspended: false,
            sync,
            deploy: Vec::new(),
            warnings: Vec::new(),
            unmanaged: None,
            remote: Default::default(),
            carried: 0,
            gate: None,
        }
    }

    #[test]
    fn only_what_ended_in_sync_is_kept_and_carried_prompts_stay() {
        let s = settings(&[]);
        let applied = Some(Ok(Applied {
            prompt_id: "p".into(),
            version: Some(2),
            created_prompt: false,
            created_version: true,
        }));
        let change = SyncStep::Change {
            metadata: MetadataUpdate::default(),
            content: None,
        };
        let first = pass(
            vec![desired("a", "1"), desired("b", "1"), desired("c", "1")],
            vec![
                (item("a", SyncStep::Unchanged { version: Some(1) }), None),
                (item("b", change.clone()), applied),
                (
                    item(
                        "c",
                        SyncStep::Failed {
                            error: "boom".into(),
                        },
                    ),
                    None,
                ),
            ],
        );
        let baseline = Baseline::after(&first, None, &s);
        assert_eq!(baseline.len(), 2, "the failed prompt is looked at again");
        assert!(baseline.unchanged(&desired("a", "1")));
        assert!(!baseline.unchanged(&desired("a", "2")), "a changed file");
        assert!(!baseline.unchanged(&desired("c", "1")));
        // An incremental pass that looked only at `c`: `a` and `b` are carried.
        let second = pass(
            vec![desired("a", "1"), desired("b", "1"), desired("c", "1")],
            vec![(item("c", SyncStep::Unchanged { version: Some(1) }), None)],
        );
        let next = Baseline::after(&second, Some(&baseline), &s);
        assert_eq!(next.len(), 3);
    }

    #[test]
    fn another_release_or_other_settings_need_a_full_pass() {
        let s = settings(&[]);
        let baseline = Baseline::after(&pass(Vec::new(), Vec::new()), None, &s);
        assert!(baseline.applies(&s, None));
        assert!(!baseline.applies(&s, Some(("v1", "abc"))), "a new release");
        let other = settings(&[("PROMPTSYNC_SYNC__DRIFT", "report")]);
        assert!(!baseline.applies(&other, None), "other settings");
    }
}
