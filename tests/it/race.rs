//! Two writers at once, the parts that do not depend on scheduling: a writer whose
//! snapshot missed another writer's create finds it before creating again
//! (`plan::fresh`). The API has no lock and no conditional request, so the last round
//! trip before each create stays open; how often two real processes racing hit it is
//! a figure, printed by `cargo bench --bench race` (README quotes it), not a test.

use serde_json::json;

use crate::support::emulator::arrived;
use crate::support::scenario::{Scenario, prompt, texts};

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
    let first = a_synced_twice(&s);
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

/// An account of two pages, listed while the files are read (every request 200 ms
/// away, so the files are read before page 1 comes back): page 1 goes out again with
/// page 2 and the listing is read from that round alone, so no second read goes out
/// before the writes. What page 1's first read got wrong (here another writer's
/// prompt, the newest, shows under another name, as if created just after) its second
/// read has right: the prompt is not created again.
#[test]
fn a_listing_read_in_one_round_once_the_files_are_read_needs_no_second_read() {
    let s = Scenario::new();
    for i in 0..110 {
        let name = format!("P{i:03}");
        s.repo
            .write(&format!("p{i:03}.prompt.yaml"), &prompt(&name, "text"));
    }
    s.repo.commit("110 prompts");
    s.sync();
    s.emu.create_prompt("Late");
    s.repo.write("late.prompt.yaml", &prompt("Late", "ours"));
    s.repo.commit("Late");
    hide_the_newest_on_page_1(&s, 200);
    let output = s.run(&["sync", "--output", "json", "-v"], 0);
    let (_, log) = texts(&output);
    assert!(
        log.contains("page 1 again with the pages after it"),
        "{log}"
    );
    assert!(!log.contains("reading the prompts to write again"), "{log}");
    assert_eq!(named(&s, "Late"), 1, "no second prompt named Late");
    assert_eq!(s.versions_of("Late").len(), 1);
}

/// An account of 4 pages at 2 requests at a time (page 1; pages 2 and 3; page 4):
/// more rounds than one after page 1, so it cannot be read in one. Once the pages
/// before the last round are in, the prompts on them that the sync may write go
/// again, by id, beside page 4, and that read is the one the plan uses; no second read
/// goes out before the writes. Here page 1's first read shows A as it was before
/// another writer synced its new content: the read beside the last round has it right
/// (it comes back after the first plan, which is made again), so A gets no second
/// version of that content, while B's change is written.
#[test]
fn prompts_read_again_beside_the_last_round_of_the_listing_need_no_second_read() {
    let s = more_rounds_than_one();
    // Another writer syncs A's second content.
    let first = a_synced_twice(&s);
    s.repo.write("prompts/b.prompt.yaml", &prompt("B", "b two"));
    s.repo.commit("Change B");
    s.emu
        .set_knobs(json!({"count_mode": "total", "latency": {"fixed_ms": 150}}));
    // A, the newest prompt, heads page 1.
    s.emu
        .inject(json!({"method": "POST", "path": "/api/prompts/list/",
        "kind": "rewrite", "pointer": "/results/0/current_version", "value": first}));
    s.emu.clear_requests();
    let output = s.run(&["sync", "--output", "json", "-v"], 0);
    let (_, log) = texts(&output);
    assert!(log.contains("go again beside it"), "{log}");
    assert!(
        log.contains("the remote changed while the listing was read"),
        "{log}"
    );
    assert!(
        !log.contains("reading the prompts to write again: the snapshot is older"),
        "{log}"
    );
    assert_eq!(
        s.versions_of("A").len(),
        2,
        "no second version of \"second\""
    );
    assert_eq!(s.versions_of("B").len(), 2, "B's change written");
    let report = crate::support::scenario::json_of(&output);
    let action = |path: &str| crate::support::scenario::row(&report, path)["action"].clone();
    assert_eq!(action("prompts/a.prompt.yaml"), "unchanged", "{report:#}");
    assert_eq!(action("prompts/b.prompt.yaml"), "update", "{report:#}");
    // Four pages, then A and B again by id, sent before page 4 came back.
    let lists: Vec<_> = s.emu.list_requests();
    assert_eq!(lists.len(), 5, "{lists:#?}");
    let page_4 = lists
        .iter()
        .find(|r| r.path.contains("page=4"))
        .expect("page 4");
    // Page 1 of the account, then page 1 of the prompts read again by id.
    let again = lists
        .iter()
        .filter(|r| r.path.contains("page=1&"))
        .nth(1)
        .expect("the read again");
    let (page_4_back, again_out) = (
        arrived(&page_4.at) + page_4.duration_ms as f64 / 1000.0,
        arrived(&again.at),
    );
    assert!(
        again_out < page_4_back,
        "the read again went out before page 4 came back: {lists:#?}"
    );
}

/// The same listing, where what the plan writes is not all read in the last round:
/// a new prompt (by name) is never, since another writer's prompt of that name would
/// show on page 1, read a round before. The second read goes out for it, and finds
/// the prompt another writer created after page 1 was read (page 1 rewritten to show
/// it under another name): it is not created again.
#[test]
fn a_new_prompt_is_read_again_before_writing_even_beside_a_last_round() {
    let s = more_rounds_than_one();
    s.emu.create_prompt("Late");
    s.repo
        .write("prompts/late.prompt.yaml", &prompt("Late", "ours"));
    s.repo.write("prompts/b.prompt.yaml", &prompt("B", "b two"));
    s.repo.commit("Late, and a change to B");
    hide_the_newest_on_page_1(&s, 150);
    let output = s.run(&["sync", "--output", "json", "-v"], 0);
    let (_, log) = texts(&output);
    assert!(log.contains("go again beside it"), "{log}");
    assert!(
        log.contains("reading the prompts to write again: the snapshot is older"),
        "{log}"
    );
    assert_eq!(named(&s, "Late"), 1, "no second prompt named Late");
    assert_eq!(s.versions_of("Late").len(), 1);
    assert_eq!(s.versions_of("B").len(), 2, "B's change written");
}

/// An account that takes more rounds than one after page 1: 310 prompts no file names,
/// then B synced from its file (4 pages, 2 requests at a time).
fn more_rounds_than_one() -> Scenario {
    more_rounds_than_one_with(None).0
}

/// [`more_rounds_than_one`], with a prompt of the name `among` (no version) made
/// among the 310, where it lands on page 2; its id.
fn more_rounds_than_one_with(among: Option<&str>) -> (Scenario, Option<String>) {
    let s = Scenario::new();
    s.repo
        .write("promptsync.toml", "[api]\nmax_in_flight = 2\n");
    let mut id = None;
    for i in 0..310 {
        if i == 160 {
            id = among.map(|name| s.emu.create_prompt(name));
        }
        s.emu.create_prompt(&format!("Unmanaged {i:03}"));
    }
    s.repo.write("prompts/b.prompt.yaml", &prompt("B", "b one"));
    s.repo.commit("Add B");
    s.sync();
    (s, id)
}

/// Every request `latency_ms` away, the pages giving their total, and page 1's first
/// read showing its newest prompt (another writer's, just made) under another name.
fn hide_the_newest_on_page_1(s: &Scenario, latency_ms: u64) {
    s.emu
        .set_knobs(json!({"count_mode": "total", "latency": {"fixed_ms": latency_ms}}));
    s.emu
        .inject(json!({"method": "POST", "path": "/api/prompts/list/",
        "kind": "rewrite", "pointer": "/results/0/name", "value": "Someone else's"}));
}

/// How many remote prompts have this name.
fn named(s: &Scenario, name: &str) -> usize {
    s.emu
        .prompts()
        .into_iter()
        .filter(|p| p["name"] == name)
        .count()
}

/// A synced with "first", then with "second" (the newest prompt, at v2); its v1.
fn a_synced_twice(s: &Scenario) -> serde_json::Value {
    s.repo.write("prompts/a.prompt.yaml", &prompt("A", "first"));
    s.repo.commit("Add A");
    s.sync();
    let first = s.newest_of("A");
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    s.repo.commit("Change A");
    s.sync();
    first
}

/// An account of 4 pages at 2 requests at a time, where a file names its prompt by
/// `prompt_id` and that prompt is on page 2: nothing else in the pass can touch it, so
/// its page is the read just before writing and its version goes out as soon as that
/// page is in, before the last page comes back. The plan made once every page is in
/// keeps that write: the version is created once, and the report says so.
#[test]
fn a_prompt_named_by_its_id_is_written_as_its_page_arrives() {
    let (s, id) = by_id_on_page_2();
    s.repo.write(
        "prompts/by-id.prompt.yaml",
        &format!("prompt_id: {id}\n{}", prompt("By id", "ours")),
    );
    s.repo.commit("By id");
    let (output, log) = sync_at(&s, 150, 0);
    assert!(log.contains("the version goes out now"), "{log}");
    assert!(!log.contains("reading the prompts to write again"), "{log}");
    let changes = s.emu.change_requests();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].path, format!("/api/prompts/{id}/versions/"));
    assert_eq!(s.versions_of("By id").len(), 1);
    let report = crate::support::scenario::json_of(&output);
    let row = crate::support::scenario::row(&report, "prompts/by-id.prompt.yaml");
    assert_eq!(row["action"], "update", "{report:#}");
    let lists = s.emu.list_requests();
    let page_4 = lists
        .iter()
        .find(|r| r.path.contains("page=4"))
        .expect("page 4");
    let page_4_back = arrived(&page_4.at) + page_4.duration_ms as f64 / 1000.0;
    assert!(
        arrived(&changes[0].at) < page_4_back,
        "the version went out before page 4 came back: {lists:#?} {changes:#?}"
    );
}

/// The same prompt, also named by a file that names it by its name: the two files
/// conflict, which only the whole plan decides, so nothing goes out as the page
/// arrives, and neither file is synced.
#[test]
fn a_prompt_another_file_names_is_not_written_as_its_page_arrives() {
    let (s, id) = by_id_on_page_2();
    // No name of its own: the files do not share one, only the remote prompt.
    let unnamed = prompt("By id", "ours").replacen("name: By id\n", "", 1);
    s.repo.write(
        "prompts/by-id.prompt.yaml",
        &format!("prompt_id: {id}\n{unnamed}"),
    );
    s.repo
        .write("prompts/by-name.prompt.yaml", &prompt("By id", "theirs"));
    s.repo.commit("Two files on one prompt");
    let (output, log) = sync_at(&s, 100, 1);
    assert!(!log.contains("the version goes out now"), "{log}");
    assert_eq!(s.emu.change_requests(), vec![]);
    let report = crate::support::scenario::json_of(&output);
    for file in ["prompts/by-id.prompt.yaml", "prompts/by-name.prompt.yaml"] {
        let row = crate::support::scenario::row(&report, file);
        assert!(
            row["error"]
                .as_str()
                .is_some_and(|e| e.contains("conflict")),
            "{report:#}"
        );
    }
}

/// A verbose JSON `sync` (exit code `code`) with every request `latency_ms` away and
/// the pages giving their total, the emulator's request log cleared first; its output
/// and log.
fn sync_at(s: &Scenario, latency_ms: u64, code: i32) -> (std::process::Output, String) {
    s.emu
        .set_knobs(json!({"count_mode": "total", "latency": {"fixed_ms": latency_ms}}));
    s.emu.clear_requests();
    let output = s.run(&["sync", "--output", "json", "-v"], code);
    let (_, log) = texts(&output);
    (output, log)
}

/// 4 pages at 2 requests at a time, B synced from its file heading page 1, and a
/// prompt no file names yet ("By id", no version) on page 2; its id.
fn by_id_on_page_2() -> (Scenario, String) {
    let (s, id) = more_rounds_than_one_with(Some("By id"));
    (s, id.expect("the prompt made among the others"))
}
