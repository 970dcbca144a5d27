//! Two writers at once: the daemon (`promptsync watch`, a real process) and a CI
//! `promptsync sync` (another), on one repository and one emulator, racing round after
//! round. Each round is a commit with new prompts and changed ones (now and then a
//! release tag, on HEAD or on an older commit), which both writers see at about the
//! same moment: the daemon after its debounce, the sync after a random offset from a
//! fixed seed (`PROMPTSYNC_RACE_SEED` for another). Counted after each round: prompts
//! that share a name, adjacent versions of a prompt that hold the same content, and
//! versions beyond what the commits' content changes called for.
//!
//! The API has no lock and no conditional request, so two writers that read "no such
//! prompt" (or "this content is not the newest") at the same moment both write. What
//! promptsync closes: a writer whose snapshot is older than one round of reads reads
//! the prompts it creates on again just before it creates (`plan::fresh`), and finds
//! the other writer's prompt by name and its version by content, so only a create
//! that lands in the last round trip is missed. That remainder is measured, printed
//! (README quotes it) and bounded here; README says to run one writer at a time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::emulator::TestEmulator;
use crate::support::git::BASE_TIME;
use crate::support::scenario::{KEY, Scenario, prompt};
use crate::support::{promptsync_command, wait_until};

/// Rounds in CI: each is a commit both writers sync.
const ROUNDS: usize = 50;

/// The seed in CI; `PROMPTSYNC_RACE_SEED` runs another (printed on failure).
const SEED: u64 = 18;

/// A pass on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// What the remote holds that two writers should never leave.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Duplicates {
    /// Prompts beyond the first with one name.
    prompts: usize,
    /// Versions whose content equals the version just below.
    adjacent: usize,
    /// Versions beyond what the commits called for (content changes at HEAD).
    excess: usize,
}

/// The content of a version that the test's prompt files set.
fn content(version: &Value) -> Value {
    serde_json::json!([version["model"], version["messages"], version["variables"]])
}

/// Count what should not be there; `changes` is, per prompt name, how many distinct
/// contents in a row its file has had (each one version).
fn duplicates(emu: &TestEmulator, changes: &BTreeMap<String, usize>) -> Duplicates {
    let mut found = Duplicates::default();
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for prompt in emu.prompts() {
        let name = prompt["name"].as_str().unwrap_or_default().to_owned();
        let id = prompt["id"].as_str().unwrap().to_owned();
        by_name.entry(name).or_default().push(id);
    }
    for (name, ids) in &by_name {
        found.prompts += ids.len() - 1;
        let mut versions = 0;
        for id in ids {
            let mut list = emu.versions(id);
            list.sort_by_key(|v| v["version"].as_u64());
            versions += list.len();
            found.adjacent += list
                .windows(2)
                .filter(|pair| content(&pair[0]) == content(&pair[1]))
                .count();
        }
        found.excess += versions.saturating_sub(changes.get(name).copied().unwrap_or(0));
    }
    found
}

/// The file's text of prompt `name` at `generation` (a generation is one content).
fn body(name: &str, generation: usize) -> String {
    prompt(name, &format!("{name} generation {generation}"))
}

#[test]
fn a_daemon_and_a_ci_sync_racing_rarely_leave_a_duplicate_and_say_how_rarely() {
    let seed = std::env::var("PROMPTSYNC_RACE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let mut rng = fastrand::Rng::with_seed(seed);
    // A little latency, as over a network: a round trip is a window.
    let s = Scenario::with(TestEmulator::start_with(
        promptsync_emulator::EmulatorConfig {
            latency: promptsync_emulator::Latency {
                fixed_ms: 2,
                jitter_ms: 6,
            },
            ..Default::default()
        },
    ));
    // Per prompt: its current generation, and how many content changes it has had.
    let mut generation: BTreeMap<String, usize> = BTreeMap::new();
    let mut changes: BTreeMap<String, usize> = BTreeMap::new();
    let mut next_prompt = 0;
    let mut add = |s: &Scenario, generation: &mut BTreeMap<String, usize>| {
        let name = format!("P{next_prompt:02}");
        next_prompt += 1;
        s.repo
            .write(&format!("prompts/{name}.prompt.yaml"), &body(&name, 0));
        generation.insert(name, 0);
    };
    for _ in 0..3 {
        add(&s, &mut generation);
    }
    let mut commits = vec![s.repo.commit("Start")];
    for name in generation.keys() {
        changes.insert(name.clone(), 1);
    }
    let daemon = s.watch_with(&[], &[("PROMPTSYNC_WATCH__DEBOUNCE", "40ms")]);
    daemon.wait_passes(1, DEADLINE);

    let started = Instant::now();
    let mut bitten: Vec<(usize, Duplicates)> = Vec::new();
    let mut before = duplicates(&s.emu, &changes);
    for round in 1..=ROUNDS {
        // New prompts, changed prompts (now and then back to an older content).
        for _ in 0..rng.usize(1..=2) {
            add(&s, &mut generation);
        }
        let names: Vec<String> = generation.keys().cloned().collect();
        for _ in 0..rng.usize(1..=3) {
            let name = &names[rng.usize(0..names.len())];
            let now = generation[name];
            let next = if now > 0 && rng.u8(0..4) == 0 {
                now - 1
            } else {
                now + 1
            };
            s.repo
                .write(&format!("prompts/{name}.prompt.yaml"), &body(name, next));
        }
        let mark = daemon.logs().len();
        let commit = s.repo.commit(&format!("Round {round}"));
        commits.push(commit.clone());
        let when = BASE_TIME + 10_000 + 100 * i64::try_from(round).unwrap();
        let tag = match rng.u8(0..6) {
            0 => Some((format!("v1.{round}.0"), commit.clone())),
            1 => Some((
                format!("v1.{round}.1"),
                commits[rng.usize(0..commits.len())].clone(),
            )),
            _ => None,
        };
        if let Some((tag, at)) = &tag {
            s.repo.tag_annotated_at(tag, at, "Release", when);
        }
        for (name, now) in generation.iter_mut() {
            let text = s.repo.read(&format!("prompts/{name}.prompt.yaml"));
            let at = (0..=*now + 1)
                .find(|g| body(name, *g) == text)
                .expect("a known generation");
            if at != *now || !changes.contains_key(name) {
                *changes.entry(name.clone()).or_default() += 1;
                *now = at;
            }
        }

        // The CI job starts somewhere around the daemon's debounce.
        std::thread::sleep(Duration::from_millis(rng.u64(0..80)));
        let ci = promptsync_command()
            .current_dir(s.repo.path())
            .env("RESPAN_BASE_URL", s.emu.base_url())
            .env("RESPAN_API_KEY", KEY)
            .args(["sync", "--output", "json"])
            .output()
            .expect("promptsync sync runs");
        assert!(
            ci.status.code().is_some(),
            "round {round} (seed {seed}): sync ended by a signal"
        );
        wait_until(
            DEADLINE,
            &format!("round {round} (seed {seed}): the daemon's pass of {commit}"),
            || {
                let logs = daemon.logs();
                let after = &logs[mark.min(logs.len())..];
                let release = match &tag {
                    Some((tag, _)) => after
                        .iter()
                        .position(|l| l["message"] == "release" && l["tag"] == tag.as_str())?,
                    None => 0,
                };
                after[release..]
                    .iter()
                    .any(|l| {
                        (l["message"] == "pass finished" || l["message"] == "pass failed")
                            && l["revision"] == commit.as_str()
                    })
                    .then_some(())
            },
        );
        let now = duplicates(&s.emu, &changes);
        if now != before {
            bitten.push((round, now));
            before = now;
        }
    }
    let found = duplicates(&s.emu, &changes);
    // The figure README quotes.
    println!(
        "race (seed {seed}): {ROUNDS} rounds in {:.1} s, {} prompts created; {} round(s) left a \
         duplicate: {} prompt(s) named twice, {} adjacent version(s) of equal content, {} \
         version(s) beyond the commits' ({bitten:?})",
        started.elapsed().as_secs_f64(),
        generation.len(),
        bitten.len(),
        found.prompts,
        found.adjacent,
        found.excess
    );
    // The window that remains is the last round trip before each create, with no lock
    // in the API to close it: it bit in 4 to 6 rounds of 50 when this was written
    // (both writers start within 80 ms, and a loaded emulator answers them in step),
    // more on a busier machine. Without the second read it bit in 45 of 50 (66 prompts
    // named twice): the bound tells the two apart with room for a loaded CI machine.
    assert!(
        bitten.len() <= ROUNDS * 2 / 5,
        "seed {seed}: two writers left duplicates in {} of {ROUNDS} rounds: {found:?} ({bitten:?})",
        bitten.len()
    );
}

/// A sync whose snapshot (the account listing, read while the files were) missed the
/// prompt another writer created meanwhile: the listing's reply is rewritten to the
/// empty page it was before the other writer's create (count 0: a page short of its
/// count would be distrusted, not believed). The sync reads the name again
/// just before creating, finds the prompt, and creates neither it nor its version.
#[test]
fn a_prompt_another_writer_created_after_the_snapshot_is_found_before_creating() {
    let s = Scenario::new();
    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "first"));
    s.repo.commit("Add A");
    s.sync();
    s.emu.inject(
        serde_json::json!({"method": "POST", "path": "/api/prompts/list/",
        "kind": "rewrite", "pointer": "",
        "value": {"count": 0, "next": null, "previous": null, "results": []}}),
    );
    s.emu.clear_requests();
    let output = s.run(&["sync", "--output", "json"], 0);
    let report = crate::support::scenario::json_of(&output);
    assert_eq!(s.emu.prompts().len(), 1, "no second prompt named A");
    assert_eq!(s.versions_of("A").len(), 1);
    assert_eq!(
        crate::support::scenario::row(&report, "prompts/a.prompt.yaml")["action"],
        "unchanged",
        "{report:#}"
    );
    assert_eq!(s.emu.change_requests(), vec![]);
    let (_, log) = crate::support::scenario::texts(&output);
    assert!(
        log.contains("the remote changed since it was read"),
        "{log}"
    );
}

/// The same for a version: another writer wrote the new content after the snapshot
/// (rewritten to show the version before); the sync finds it by content before
/// creating it again.
#[test]
fn a_version_another_writer_created_after_the_snapshot_is_found_before_creating() {
    let s = Scenario::new();
    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "first"));
    s.repo.commit("Add A");
    s.sync();
    let first = s.newest_of("A");
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    s.repo.commit("Change A");
    s.sync();
    assert_eq!(s.versions_of("A").len(), 2);
    s.emu.inject(
        serde_json::json!({"method": "POST", "path": "/api/prompts/list/",
        "kind": "rewrite", "pointer": "/results/0/current_version", "value": first}),
    );
    s.emu.clear_requests();
    let output = s.run(&["sync", "--output", "json"], 0);
    assert_eq!(
        s.versions_of("A").len(),
        2,
        "no second version of \"second\""
    );
    assert_eq!(s.emu.change_requests(), vec![]);
    let report = crate::support::scenario::json_of(&output);
    assert_eq!(
        crate::support::scenario::row(&report, "prompts/a.prompt.yaml")["action"],
        "unchanged",
        "{report:#}"
    );
}
