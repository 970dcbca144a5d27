//! Two writers at once, measured: the daemon (`promptsync watch`, a real process) and
//! a CI `promptsync sync` (another), on one repository and one emulator, racing round
//! after round. Each round is a commit with new prompts and changed ones (now and then a
//! release tag, on HEAD or on an older commit), which both writers see at about the
//! same moment: the daemon after its debounce, the sync after a random offset from a
//! fixed seed (`SEED` for another). Counted after each round: prompts that share a
//! name, adjacent versions of a prompt that hold the same content, and versions beyond
//! what the commits' content changes called for.
//!
//! The API has no lock and no conditional request, so two writers that read "no such
//! prompt" (or "this content is not the newest") at the same moment both write. What
//! promptsync closes: a writer whose snapshot is older than one round of reads reads
//! the prompts it creates on again just before it creates (`plan::fresh`; the
//! deterministic tests are `tests/it/race.rs`). What remains is the last round trip
//! before each create: how often it bites depends on how the two processes are
//! scheduled, so it is a figure this bench prints (README quotes it), not a test.
//!
//! `cargo bench --bench race` (ROUNDS=50, SEED=18 by default).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    unused_imports
)]

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::emulator::TestEmulator;
use support::git::BASE_TIME;
use support::scenario::{KEY, Scenario, prompt};
use support::{promptsync_command, wait_until};

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

fn main() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seed = env("SEED", 18);
    let rounds = usize::try_from(env("ROUNDS", 50)).unwrap();
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
    for round in 1..=rounds {
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
    // The figure README quotes. Without the second read before creating, 45 rounds of
    // 50 left a duplicate (66 prompts named twice); the goal is what is left once the
    // window is the last round trip alone.
    let goal = rounds / 5;
    println!(
        "race (seed {seed}): {rounds} rounds in {:.1} s, {} prompts created",
        started.elapsed().as_secs_f64(),
        generation.len()
    );
    println!(
        "  rounds that left a duplicate: {} (goal: {goal} or fewer): {}",
        bitten.len(),
        if bitten.len() <= goal {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "  {} prompt(s) named twice, {} adjacent version(s) of equal content, {} version(s) \
         beyond the commits'",
        found.prompts, found.adjacent, found.excess
    );
    println!("  by round: {bitten:?}");
}
