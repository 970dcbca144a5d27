//! The daemon's contract as a model test (issue 18, "Done when"): random sequences of
//! commits (files added, edited, moved, deleted, broken and fixed, identities
//! duplicated, files switched between `prompt_id` and `name`, renames, content-file
//! edits, release tags and rollback tags) are fed to the running daemon (the real
//! binary, the emulator over HTTP) at random moments, with random extra triggers
//! (`POST /reconcile`, SIGHUP, swaps of the repository link, API latency). At the end:
//!
//! - one full `plan` of the last commit shows no change: the daemon got where one
//!   full sync gets, every prompt's newest and live content included;
//! - that plan's verdict for each file (synced, conflict, invalid, failed) is the one
//!   the model works out without promptsync ([`world`]), and the daemon's last pass
//!   counted the same failures;
//! - no two remote prompts share a name (a second prompt was never made for one), no
//!   version repeats the one below it, and every version promptsync wrote came from a
//!   file that, at the commit the version names, loaded, named that prompt and had no
//!   rival for it.
//!
//! A fixed seed in CI; any other with `PROMPTSYNC_MODEL_SEED=<n>` (and
//! `PROMPTSYNC_MODEL_STEPS=<n>`). The seed is printed first and in every failure.

mod checks;
mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::daemon::Daemon;
use crate::support::emulator::TestEmulator;
use crate::support::git::TestRepo;
use crate::support::scenario::KEY;
use world::{CONTENTS, Key, Meta, SLOTS, Spec, Text, World};

/// The seeds CI runs, each a minute's fraction: both reach, within their first few
/// commits, a file that shares a synced file's prompt (what the daemon used to write).
const SEEDS: [u64; 2] = [2, 5];
const STEPS: usize = 60;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn random_commits_and_triggers_end_where_one_full_sync_ends() {
    let seeds = env_number("PROMPTSYNC_MODEL_SEED").map_or(SEEDS.to_vec(), |seed| vec![seed]);
    let steps = env_number("PROMPTSYNC_MODEL_STEPS").map_or(STEPS, |n| n as usize);
    for seed in seeds {
        eprintln!(
            "model test: seed {seed}, {steps} steps (PROMPTSYNC_MODEL_SEED={seed} to run it again)"
        );
        let mut run = Run::start(seed);
        for step in 0..steps {
            run.step(step);
        }
        run.settle();
        run.check();
        run.stop();
    }
}

/// The daemon, its repository (through a link it follows), the emulator, and the model.
struct Run {
    seed: u64,
    rng: fastrand::Rng,
    emu: TestEmulator,
    repo: TestRepo,
    /// Holds the link the daemon is given as `--repo`.
    _links: tempfile::TempDir,
    link: PathBuf,
    daemon: Daemon,
    world: World,
    counter: u64,
    /// Release tags made, and the commit (index) of the newest one.
    tags: u64,
    release: Option<usize>,
}

impl Run {
    fn start(seed: u64) -> Run {
        let emu = TestEmulator::start();
        let repo = TestRepo::new();
        let mut world = World::default();
        // Two prompts a person made, with a version each.
        for name in ["Alpha", "Beta"] {
            let id = emu.create_prompt(name);
            emu.create_version(
                &id,
                json!({"model": "gpt-4o", "messages": [{"role": "system", "content": format!("{name} by hand")}]}),
            );
            world.orig.insert(id, name.to_owned());
        }
        world.tree.contents = (0..CONTENTS).map(|n| format!("content {n} v0")).collect();
        world.tree.files.insert(
            0,
            Spec {
                key: Key::Name("Alpha".into()),
                meta: Meta::None,
                text: Text::Inline("alpha first".into()),
                broken: false,
            },
        );
        world.tree.files.insert(
            1,
            Spec {
                key: Key::Name("Gamma".into()),
                meta: Meta::None,
                text: Text::Content(0),
                broken: false,
            },
        );
        // The first commit exists before the daemon starts.
        write_tree(&repo, &world);
        let first = repo.commit("first: Alpha by name, Gamma from a content file");
        world.committed(first);
        let links = tempfile::tempdir().unwrap();
        let link = std::fs::canonicalize(links.path())
            .unwrap()
            .join("prompts-repo");
        std::os::unix::fs::symlink(repo.path(), &link).unwrap();
        let mut command = crate::support::promptsync_command();
        command
            .arg("--repo")
            .arg(&link)
            .arg("watch")
            .env("RESPAN_BASE_URL", emu.base_url())
            .env("RESPAN_API_KEY", KEY)
            .env("PROMPTSYNC_WATCH__DEBOUNCE", "50ms")
            // Full passes come from the triggers below, not from a timer that would
            // mend what an incremental pass got wrong before the check.
            .env("PROMPTSYNC_WATCH__RESYNC_INTERVAL", "1h")
            // Forced passes come as often as the model asks (their rate limit has its
            // own test, `doors::forced_passes_are_spaced_and_one_waiting_is_joined`).
            .env("PROMPTSYNC_WATCH__RECONCILE_MIN_INTERVAL", "0s");
        let run = Run {
            seed,
            rng: fastrand::Rng::with_seed(seed),
            daemon: Daemon::spawn(command),
            emu,
            repo,
            _links: links,
            link,
            world,
            counter: 0,
            tags: 0,
            release: None,
        };
        run.daemon.wait_ready(Duration::from_secs(30));
        run
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "model test, seed {} (PROMPTSYNC_MODEL_SEED={} to run it again): {what}\n--- daemon log\n{}",
            self.seed,
            self.seed,
            self.daemon.log_text()
        );
    }

    fn fresh_text(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{what} {}", self.counter)
    }

    /// The remote prompts now: id to name.
    fn remote_names(&self) -> BTreeMap<String, String> {
        self.emu
            .prompts()
            .into_iter()
            .filter_map(|p| Some((p["id"].as_str()?.to_owned(), p["name"].as_str()?.to_owned())))
            .collect()
    }

    /// A prompt that exists now, for a file to name by id; its first name recorded.
    fn pick_prompt(&mut self) -> Option<String> {
        let names = self.remote_names();
        let ids: Vec<&String> = names.keys().collect();
        let id = (*self.rng.choice(ids)?).clone();
        let orig = self
            .world
            .orig
            .get(&id)
            .cloned()
            .unwrap_or_else(|| names[&id].clone());
        self.world.orig.insert(id.clone(), orig);
        Some(id)
    }

    /// The `name` an id file of `id` may write: a rename, the first name (never once a
    /// file renamed it: it would rename it back), or none.
    fn pick_meta(&mut self, id: &str) -> Meta {
        match self.rng.u8(0..4) {
            0 => Meta::Renamed,
            1 if !self.world.first_rename.contains_key(id)
                && !self
                    .world
                    .tree
                    .files
                    .values()
                    .any(|s| s.key == Key::Id(id.to_owned()) && s.meta == Meta::Renamed) =>
            {
                Meta::Orig
            }
            _ => Meta::None,
        }
    }

    fn pick_text(&mut self) -> Text {
        if self.rng.u8(0..4) == 0 {
            Text::Content(self.rng.usize(0..CONTENTS))
        } else {
            Text::Inline(self.fresh_text("text"))
        }
    }

    fn new_spec(&mut self) -> Spec {
        let key = match self.rng.u8(0..3) {
            0 => self.pick_prompt().map(Key::Id),
            _ => None,
        };
        let (key, meta) = match key {
            Some(Key::Id(id)) => {
                let meta = self.pick_meta(&id);
                (Key::Id(id), meta)
            }
            _ => {
                let name = *self
                    .rng
                    .choice(["Alpha", "Beta", "Gamma", "Delta"].iter())
                    .unwrap();
                (Key::Name(name.to_owned()), Meta::None)
            }
        };
        Spec {
            key,
            meta,
            text: self.pick_text(),
            broken: false,
        }
    }

    fn empty_slot(&mut self) -> Option<usize> {
        let free: Vec<usize> = (0..SLOTS)
            .filter(|s| !self.world.tree.files.contains_key(s))
            .collect();
        self.rng.choice(free)
    }

    fn some_file(&mut self) -> Option<usize> {
        let used: Vec<usize> = self.world.tree.files.keys().copied().collect();
        self.rng.choice(used)
    }

    /// One random step: a change committed (or a tag), then maybe extra triggers, then
    /// a random pause, so that the next step lands before, during or after a pass.
    fn step(&mut self, step: usize) {
        let what = match self.rng.u8(0..20) {
            0..=3 => self.add(),
            4..=6 => self.edit(),
            7 => self.edit_content(),
            8 => self.move_file(),
            9 => self.delete(),
            10..=11 => self.duplicate(),
            12..=13 => self.switch(),
            14 => self.toggle_broken(),
            15 => self.tag(false),
            16 => self.tag(true),
            _ => self.edit(),
        };
        if let Some(what) = what
            && !what.starts_with("tag")
        {
            self.commit(&format!("step {step}: {what}"));
        }
        if self.rng.u8(0..6) == 0 {
            let ms = *self.rng.choice([0u64, 0, 30, 120].iter()).unwrap();
            self.emu.set_knobs(json!({"latency": {"fixed_ms": ms}}));
        }
        match self.rng.u8(0..12) {
            0 => {
                let (code, body) = self.daemon.post("/reconcile");
                if code != 202 {
                    self.fail(&format!("POST /reconcile answered {code}: {body}"));
                }
            }
            1 => self.daemon.signal("HUP"),
            2 => self.swap_link(),
            _ => {}
        }
        // The random moment of the next step: no condition to wait for, on purpose.
        std::thread::sleep(Duration::from_millis(self.rng.u64(0..250)));
    }

    fn add(&mut self) -> Option<String> {
        let slot = self.empty_slot()?;
        let spec = self.new_spec();
        self.world.tree.files.insert(slot, spec);
        Some(format!("add f{slot}"))
    }

    fn edit(&mut self) -> Option<String> {
        let slot = self.some_file()?;
        let text = self.pick_text();
        let spec = self.world.tree.files.get_mut(&slot)?;
        spec.text = text;
        Some(format!("edit f{slot}"))
    }

    fn edit_content(&mut self) -> Option<String> {
        let n = self.rng.usize(0..CONTENTS);
        let text = self.fresh_text(&format!("content {n}"));
        self.world.tree.contents[n] = text;
        Some(format!("edit t{n}"))
    }

    fn move_file(&mut self) -> Option<String> {
        let from = self.some_file()?;
        let to = self.empty_slot()?;
        let spec = self.world.tree.files.remove(&from)?;
        self.world.tree.files.insert(to, spec);
        Some(format!("move f{from} to f{to}"))
    }

    fn delete(&mut self) -> Option<String> {
        let slot = self.some_file()?;
        self.world.tree.files.remove(&slot);
        Some(format!("delete f{slot}"))
    }

    /// A new file with another's identity: its name, its id, or the id of the prompt
    /// its name finds (what `pull` writes), with a rename or not.
    fn duplicate(&mut self) -> Option<String> {
        let of = self.some_file()?;
        let slot = self.empty_slot()?;
        let original = self.world.tree.files[&of].clone();
        let key = match (&original.key, self.rng.bool()) {
            (Key::Name(name), true) => {
                let names = self.remote_names();
                let id = names
                    .iter()
                    .find(|(_, n)| *n == name)
                    .map(|(id, _)| id.clone());
                match id {
                    Some(id) => {
                        self.world
                            .orig
                            .entry(id.clone())
                            .or_insert_with(|| name.clone());
                        Key::Id(id)
                    }
                    None => Key::Name(name.clone()),
                }
            }
            (Key::Id(id), true) => Key::Name(self.world.orig[id].clone()),
            (key, false) => key.clone(),
        };
        let meta = match &key {
            Key::Id(id) => {
                let id = id.clone();
                self.pick_meta(&id)
            }
            Key::Name(_) => Meta::None,
        };
        let text = self.pick_text();
        self.world.tree.files.insert(
            slot,
            Spec {
                key,
                meta,
                text,
                broken: false,
            },
        );
        Some(format!("f{slot} shares f{of}'s identity"))
    }

    /// A file switched from `name` to the `prompt_id` its name finds, or back.
    fn switch(&mut self) -> Option<String> {
        let slot = self.some_file()?;
        let spec = self.world.tree.files[&slot].clone();
        let (key, meta) = match &spec.key {
            Key::Id(id) => (Key::Name(self.world.orig[id].clone()), Meta::None),
            Key::Name(name) => {
                let names = self.remote_names();
                let id = names
                    .iter()
                    .find(|(_, n)| *n == name)
                    .map(|(id, _)| id.clone())?;
                self.world
                    .orig
                    .entry(id.clone())
                    .or_insert_with(|| name.clone());
                let meta = self.pick_meta(&id);
                (Key::Id(id), meta)
            }
        };
        let spec = self.world.tree.files.get_mut(&slot)?;
        spec.key = key;
        spec.meta = meta;
        Some(format!("switch f{slot}"))
    }

    fn toggle_broken(&mut self) -> Option<String> {
        let slot = self.some_file()?;
        let spec = self.world.tree.files.get_mut(&slot)?;
        spec.broken = !spec.broken;
        Some(format!("break or fix f{slot}"))
    }

    /// A release tag on HEAD, or (`rollback`) on an earlier commit: annotated, dated
    /// after every tag before it, so it is the newest.
    fn tag(&mut self, rollback: bool) -> Option<String> {
        let index = if rollback {
            self.rng.usize(0..self.world.commits.len())
        } else {
            self.world.commits.len() - 1
        };
        self.tags += 1;
        let name = format!("v{}.0.0", self.tags);
        let when = crate::support::git::BASE_TIME + 10_000_000 + 60 * self.tags as i64;
        let commit = self.world.commits[index].0.clone();
        self.repo.tag_annotated_at(&name, &commit, "release", when);
        self.release = Some(index);
        self.world.tagged.insert(index);
        Some(format!("tag {name}"))
    }

    /// The link the daemon follows, replaced by a new one to the same repository (what
    /// git-sync's swap looks like to a watcher).
    fn swap_link(&mut self) {
        let tmp = self.link.with_file_name(".prompts-repo.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(self.repo.path(), &tmp).unwrap();
        std::fs::rename(&tmp, &self.link).unwrap();
    }

    /// Write the tree as the model has it and commit it.
    fn commit(&mut self, message: &str) {
        write_tree(&self.repo, &self.world);
        let id = self.repo.commit(message);
        self.world.committed(id);
    }

    /// One last edit, then wait until the daemon has passed over it and is idle.
    fn settle(&mut self) {
        let text = self.fresh_text("content 0");
        self.world.tree.contents[0] = text;
        self.commit("last: edit t0");
        self.emu.set_knobs(json!({"latency": {"fixed_ms": 0}}));
        let head = self.world.commits.last().unwrap().0.clone();
        let found = wait_until_or(Duration::from_secs(60), || {
            self.daemon
                .passes()
                .into_iter()
                .any(|p| p["revision"] == head.as_str())
                .then_some(())
        });
        if found.is_none() {
            self.fail(&format!("no pass of the last commit {head}"));
        }
        // Idle: no pass running, and none ended for half a second.
        let mut last = (self.daemon.passes().len(), Instant::now());
        let idle = wait_until_or(Duration::from_secs(60), || {
            let count = self.daemon.passes().len();
            if count != last.0 {
                last = (count, Instant::now());
            }
            let reconciling = self.daemon.status()["conditions"][1]["status"] == "True";
            (!reconciling && last.1.elapsed() >= Duration::from_millis(500)).then_some(())
        });
        if idle.is_none() {
            self.fail("the daemon never went idle");
        }
    }

    fn stop(mut self) {
        self.daemon.signal("TERM");
        let status = self.daemon.wait_exit(Duration::from_secs(30));
        if status.code() != Some(0) {
            self.fail(&format!("the daemon ended with {status:?}"));
        }
    }
}

/// The system message of a version.
fn text_of(version: &Value) -> String {
    version["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// [`wait_until`] that gives up quietly (`None`), for a failure message of our own.
fn wait_until_or<T>(timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Write every slot and content file as `world` has them.
fn write_tree(repo: &TestRepo, world: &World) {
    for slot in 0..SLOTS {
        let path = world::path_of(slot);
        match world.tree.files.get(&slot) {
            Some(spec) => {
                repo.write(&path, &world.render(spec));
            }
            None if repo.path().join(&path).exists() => {
                repo.remove(&path);
            }
            None => {}
        }
    }
    for (n, text) in world.tree.contents.iter().enumerate() {
        repo.write(&world::content_path(n), text);
    }
}
