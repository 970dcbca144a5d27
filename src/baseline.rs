//! What was in sync after a pass, so that the next pass after a commit can look at
//! the prompts that changed and nothing else (the daemon's incremental passes): each
//! prompt file's fingerprint when it was last known to match the remote, and the
//! identity it synced under (the remote prompt its `prompt_id` or `name` resolved
//! to), the release that was live, and the settings the pass ran with. A pass with a
//! baseline that still applies (same release, same settings) lists and plans only the
//! prompts whose fingerprint differs, unless one of them resolves to a prompt an
//! unchanged file syncs ([`Baseline::carried_ids`]): then it plans every file, as a
//! full pass would, so that the conflict check sees both. The periodic full pass
//! catches what a baseline cannot see (an edit made in the Respan UI). Pure.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::config::Settings;
use crate::desired::DesiredPrompt;
use crate::pass::Pass;
use crate::plan::{DeployStep, SyncStep};

/// Maps over every prompt file of a pass, made and read on every pass: hashed with
/// foldhash (the keys are the repository's paths, not a stranger's).
type PathMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One prompt file known to be in sync.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Its [`DesiredPrompt::fingerprint`] then.
    print: u64,
    /// The remote prompt it resolved to (its `prompt_id`, or what its `name` found or
    /// created).
    prompt_id: Option<String>,
}

/// The prompts known to be in sync, and under which release and settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Baseline {
    /// By prompt file path.
    prompts: PathMap<String, Entry>,
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

/// Whether `pass` renamed a remote prompt (a file's `name` written onto it).
pub(crate) fn renamed_any(pass: &Pass) -> bool {
    !pass.dry_run
        && pass.sync.iter().any(|(item, outcome)| {
            matches!(&item.step, SyncStep::Change { metadata, .. } if metadata.name.is_some())
                && matches!(outcome, Some(Ok(_)))
        })
}

impl Baseline {
    /// What `pass` left in sync. `since` is the baseline it ran with (its carried
    /// prompts stay in sync, under the identity they had); a prompt that failed, or
    /// whose change was not sent (a dry run, `suspend`, `drift = "report"`), is left
    /// out, so the next pass looks at it again.
    pub(crate) fn after(pass: &Pass, since: Option<&Baseline>, settings: &Settings) -> Baseline {
        let mut in_sync: PathMap<&str, Option<Option<&str>>> =
            PathMap::with_capacity_and_hasher(pass.sync.len(), Default::default());
        for (item, outcome) in &pass.sync {
            let planned = item.target.as_ref().and_then(crate::plan::Target::id);
            let synced = match (&item.step, outcome) {
                (SyncStep::Unchanged { .. }, _) => Some(planned),
                (SyncStep::Change { .. }, Some(Ok(applied))) if !pass.dry_run => {
                    Some(Some(applied.prompt_id.as_str()))
                }
                _ => None,
            };
            in_sync.insert(item.path.as_str(), synced);
        }
        let mut prompts =
            PathMap::with_capacity_and_hasher(pass.source.prompts.len(), Default::default());
        for desired in &pass.source.prompts {
            let print = desired.fingerprint();
            let entry = match in_sync.get(desired.path.as_str()) {
                Some(Some(id)) => Some(Entry {
                    print,
                    prompt_id: id.map(str::to_owned),
                }),
                Some(None) => None,
                // Not planned: carried from `since` when unchanged.
                None => since
                    .and_then(|b| b.prompts.get(&desired.path))
                    .filter(|entry| entry.print == print)
                    .cloned(),
            };
            if let Some(entry) = entry {
                prompts.insert(desired.path.clone(), entry);
            }
        }
        let release_live = pass.deploy.iter().all(|(item, outcome)| {
            matches!(item.step, DeployStep::AlreadyLive { .. })
                || (matches!(item.step, DeployStep::Deploy { .. })
                    && matches!(outcome, Some(Ok(_))))
        });
        let release = match &pass.release {
            // A prompt renamed: a release file may have named it, and a full pass
            // would now resolve that file elsewhere. The next pass plans everything.
            Some(_) if renamed_any(pass) => None,
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
    pub(crate) fn applies(&self, settings: &Settings, release: Option<(&str, &str)>) -> bool {
        let same_release = match (release, &self.release) {
            (None, None) => true,
            (Some((tag, commit)), Some((t, c))) => tag == t && commit == c,
            _ => false,
        };
        same_release && self.settings == settings_fingerprint(settings)
    }

    /// Whether `desired` is as it was when last in sync.
    pub(crate) fn unchanged(&self, desired: &DesiredPrompt) -> bool {
        self.prompts
            .get(&desired.path)
            .is_some_and(|entry| entry.print == desired.fingerprint())
    }

    /// The remote prompts that the unchanged files among `prompts` sync: a changed
    /// file that names or resolves to one of them shares its identity, and only a
    /// plan of every file sees that conflict.
    pub(crate) fn carried_ids<'a>(
        &'a self,
        prompts: impl IntoIterator<Item = &'a DesiredPrompt>,
    ) -> HashSet<&'a str> {
        prompts
            .into_iter()
            .filter_map(|desired| self.prompts.get(&desired.path).map(|e| (desired, e)))
            .filter(|(desired, entry)| entry.print == desired.fingerprint())
            .filter_map(|(_, entry)| entry.prompt_id.as_deref())
            .collect()
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
            failed_reads: Vec::new(),
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
        assert_eq!(
            baseline.prompts.len(),
            2,
            "the failed prompt is looked at again"
        );
        assert!(baseline.unchanged(&desired("a", "1")));
        assert!(!baseline.unchanged(&desired("a", "2")), "a changed file");
        assert!(!baseline.unchanged(&desired("c", "1")));
        // An incremental pass that looked only at `c`: `a` and `b` are carried.
        let second = pass(
            vec![desired("a", "1"), desired("b", "1"), desired("c", "1")],
            vec![(item("c", SyncStep::Unchanged { version: Some(1) }), None)],
        );
        let next = Baseline::after(&second, Some(&baseline), &s);
        assert_eq!(next.prompts.len(), 3);
    }

    #[test]
    fn the_prompt_each_file_synced_under_is_kept_while_it_is_carried() {
        let s = settings(&[]);
        let created = Some(Ok(Applied {
            prompt_id: "p-b".into(),
            version: Some(1),
            created_prompt: true,
            created_version: true,
        }));
        let change = SyncStep::Change {
            metadata: MetadataUpdate::default(),
            content: None,
        };
        let mut new_b = item("b", change);
        new_b.target = Some(Target::New(crate::plan::NewPrompt {
            name: "b".into(),
            description: None,
        }));
        let mut a = item("a", SyncStep::Unchanged { version: Some(1) });
        a.target = Some(Target::Existing("p-a".into()));
        let first = pass(
            vec![desired("a", "1"), desired("b", "1")],
            vec![(a, None), (new_b, created)],
        );
        let baseline = Baseline::after(&first, None, &s);
        let (a1, b1, a2) = (desired("a", "1"), desired("b", "1"), desired("a", "2"));
        let ids = baseline.carried_ids([&a1, &b1]);
        assert_eq!(ids, HashSet::from(["p-a", "p-b"]), "the id a create learnt");
        assert_eq!(
            baseline.carried_ids([&a2, &b1]),
            HashSet::from(["p-b"]),
            "a changed file is not carried"
        );
        // A pass that looked at nothing carries both, under the same identity.
        let next = Baseline::after(
            &pass(vec![a1.clone(), b1.clone()], Vec::new()),
            Some(&baseline),
            &s,
        );
        assert_eq!(next.carried_ids([&a1, &b1]), HashSet::from(["p-a", "p-b"]));
    }

    #[test]
    fn a_rename_under_a_release_drops_the_release_so_the_next_pass_plans_everything() {
        let s = settings(&[]);
        let release = crate::deploy::Release {
            tag: "v1".into(),
            commit: "abc".into(),
            date: 0,
            annotated: false,
        };
        let renamed = SyncStep::Change {
            metadata: MetadataUpdate {
                name: Some("Bar".into()),
                description: None,
            },
            content: None,
        };
        let applied = Some(Ok(Applied {
            prompt_id: "p".into(),
            version: None,
            created_prompt: false,
            created_version: false,
        }));
        let mut with_release = pass(vec![desired("a", "1")], vec![(item("a", renamed), applied)]);
        with_release.release = Some((release.clone(), with_release.source.clone()));
        assert!(renamed_any(&with_release));
        let after = Baseline::after(&with_release, None, &s);
        assert!(
            !after.applies(&s, Some(("v1", "abc"))),
            "the next pass plans everything"
        );
        let mut plain = pass(
            vec![desired("a", "1")],
            vec![(item("a", SyncStep::Unchanged { version: Some(1) }), None)],
        );
        plain.release = Some((release, plain.source.clone()));
        assert!(!renamed_any(&plain));
        assert!(Baseline::after(&plain, None, &s).applies(&s, Some(("v1", "abc"))));
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
