//! The model test's checks at the end (see the parent module): a full `plan` as the
//! oracle, the model's verdicts, the contents, and the invariants no timing may break.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::world::{self, Verdict, World};
use super::{Run, text_of};
use crate::support::scenario::KEY;

impl Run {
    pub(super) fn check(&self) {
        let head = self.world.commits.len() - 1;
        let names = self.remote_names();
        self.no_two_prompts_share_a_name(&names);
        let plan = self.full_plan();
        self.plan_shows_no_change(&plan);
        self.verdicts_agree(&plan, head, &names);
        self.daemon_counted_the_same(&plan);
        self.contents_are_the_files(head, &names);
        self.every_version_had_a_file(&names);
    }

    fn no_two_prompts_share_a_name(&self, names: &BTreeMap<String, String>) {
        let mut seen = BTreeSet::new();
        for name in names.values() {
            if !seen.insert(name) {
                self.fail(&format!(
                    "two remote prompts are named {name:?}: {names:#?}"
                ));
            }
        }
    }

    /// `promptsync plan --output json` of HEAD: one full pass that sends nothing.
    fn full_plan(&self) -> Value {
        let output = crate::support::promptsync_command()
            .current_dir(self.repo.path())
            .env("RESPAN_BASE_URL", self.emu.base_url())
            .env("RESPAN_API_KEY", KEY)
            .args(["plan", "--output", "json"])
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            self.fail(&format!(
                "plan printed no JSON ({err}): {}",
                String::from_utf8_lossy(&output.stderr)
            ))
        })
    }

    fn plan_shows_no_change(&self, plan: &Value) {
        if !plan["error"].is_null() {
            self.fail(&format!("the plan ended early: {plan:#}"));
        }
        for row in plan["prompts"].as_array().into_iter().flatten() {
            let action = row["action"].as_str().unwrap_or_default();
            let deploy = row["deploy"]["action"].as_str();
            let settled = matches!(action, "unchanged" | "failed" | "deploy_only")
                && matches!(deploy, None | Some("already_live" | "failed" | "skipped"));
            if !settled {
                self.fail(&format!(
                    "a full sync would still change {}: {row:#}\n--- plan\n{plan:#}",
                    row["file"]
                ));
            }
        }
    }

    /// Each file's verdict in the plan is the model's.
    fn verdicts_agree(&self, plan: &Value, head: usize, names: &BTreeMap<String, String>) {
        let tree = &self.world.commits[head].1;
        let expected = self.world.verdicts(tree, names);
        let invalid: BTreeSet<&str> = plan["invalid_files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["release_tag"].is_null())
            .filter_map(|f| f["file"].as_str())
            .collect();
        for (slot, verdict) in &expected {
            let path = world::path_of(*slot);
            let row = plan["prompts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["file"] == path.as_str() && r["action"] != "deploy_only");
            let got = match row {
                _ if invalid.contains(path.as_str()) => Verdict::Invalid,
                None => Verdict::Invalid,
                Some(row) if row["action"] == "unchanged" => {
                    Verdict::Synced(row["prompt_id"].as_str().map(str::to_owned))
                }
                Some(row)
                    if row["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("conflict")) =>
                {
                    Verdict::Conflict
                }
                Some(_) => Verdict::Failed,
            };
            let same = match (verdict, &got) {
                (Verdict::Synced(Some(want)), Verdict::Synced(Some(got))) => want == got,
                (want, got) => want == got,
            };
            if !same {
                self.fail(&format!(
                    "{path}: the plan says {got:?}, the model {verdict:?}\n--- files\n{tree:#?}\n--- remote\n{names:#?}\n--- plan\n{plan:#}"
                ));
            }
        }
    }

    /// The daemon's last pass failed the prompts one full pass fails (failed prompts
    /// are never carried, so an incremental pass counts them too).
    fn daemon_counted_the_same(&self, plan: &Value) {
        let last = self
            .daemon
            .passes()
            .into_iter()
            .last()
            .unwrap_or_else(|| self.fail("no pass"));
        let summary = &plan["summary"];
        if last["failed"] != summary["failed"] || last["invalid_files"] != summary["invalid_files"]
        {
            self.fail(&format!(
                "the daemon's last pass counted differently from a full plan:\n{last:#}\n{summary:#}"
            ));
        }
    }

    /// Every file in sync has its text as its prompt's newest version (and its name,
    /// when it sets one); every file of the release has its text live.
    fn contents_are_the_files(&self, head: usize, names: &BTreeMap<String, String>) {
        let tree = &self.world.commits[head].1;
        for (slot, verdict) in self.world.verdicts(tree, names) {
            let Verdict::Synced(Some(id)) = verdict else {
                continue;
            };
            let spec = &tree.files[&slot];
            let want = World::text_of(tree, spec);
            let newest = self.emu.versions(&id).into_iter().next();
            let got = newest.as_ref().map(text_of);
            if got.as_deref() != Some(want.as_str()) {
                self.fail(&format!(
                    "f{slot} on {id}: newest {got:?}, the file {want:?}"
                ));
            }
            if let Some(name) = self.world.written_name(spec)
                && names.get(&id) != Some(&name)
            {
                self.fail(&format!(
                    "f{slot} on {id}: named {:?}, the file {name:?}",
                    names.get(&id)
                ));
            }
        }
        let Some(release) = self.release else {
            return;
        };
        let tree = &self.world.commits[release].1;
        for (slot, verdict) in self.world.verdicts(tree, names) {
            let Verdict::Synced(Some(id)) = verdict else {
                continue;
            };
            let want = World::text_of(tree, &tree.files[&slot]);
            let prompt = self.emu.get(&format!("/api/prompts/{id}/"));
            let live = text_of(&prompt["live_version"]);
            if live != want {
                self.fail(&format!(
                    "release f{slot} on {id}: live {live:?}, the release {want:?}"
                ));
            }
        }
    }

    /// Every version promptsync wrote came from a file that, at the commit the
    /// version names, loaded, named that prompt and had no rival for it; no version
    /// repeats the one below it.
    fn every_version_had_a_file(&self, names: &BTreeMap<String, String>) {
        let index: BTreeMap<&str, usize> = self
            .world
            .commits
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.as_str(), i))
            .collect();
        for id in names.keys() {
            let orig = self.world.orig.get(id).unwrap_or(&names[id]);
            let versions = self.emu.versions(id);
            for pair in versions.windows(2) {
                if text_of(&pair[0]) == text_of(&pair[1]) {
                    self.fail(&format!(
                        "{id}: v{} repeats v{}: {pair:#?}",
                        pair[0]["version"], pair[1]["version"]
                    ));
                }
            }
            for version in &versions {
                let Some(commit) = version["description"]
                    .as_str()
                    .and_then(|d| d.rsplit_once("[promptsync "))
                    .and_then(|(_, rest)| rest.split(';').next())
                else {
                    continue;
                };
                let Some(at) = index.get(commit) else {
                    self.fail(&format!(
                        "{id} v{}: a commit the test never made: {commit}",
                        version["version"]
                    ));
                };
                if let Err(why) = self.world.may_write(*at, id, orig, &text_of(version)) {
                    self.fail(&format!(
                        "{id} v{}: {why}\n--- files of that commit\n{:#?}\n--- versions\n{versions:#?}",
                        version["version"], self.world.commits[*at].1
                    ));
                }
            }
        }
    }
}
