use super::*;

#[test]
fn a_plan_s_writes_are_its_new_prompts_and_new_versions() {
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}]});
    let remote = Remote::new([
        prompt("p1", "Changed", Some(ours(1, &other, true)), None),
        prompt("p2", "Same", Some(ours(1, &hello(), true)), None),
    ]);
    let items = plan_sync(
        &[
            by_name("Changed", hello()),
            by_name("Same", hello()),
            by_name("New", hello()),
        ],
        &source(),
        &remote,
        DriftPolicy::Correct,
    );
    let writes = sync_writes(&items);
    assert_eq!(writes.ids, ["p1".to_owned()].into());
    assert_eq!(writes.names, ["New".to_owned()].into());
    let deploys = plan_deploy(
        &[by_name("Same", hello()), by_name("Fresh", hello())],
        &release(),
        &remote,
    );
    let writes = deploy_writes(&deploys);
    assert!(
        writes.ids.is_empty(),
        "p2's release content exists: {writes:?}"
    );
    assert_eq!(writes.names, ["Fresh".to_owned()].into());
}

#[test]
fn reading_again_says_whether_another_writer_changed_what_a_plan_writes() {
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}]});
    let snapshot = Remote::new([prompt("p1", "A", Some(ours(1, &other, true)), None)]);
    let writes = Writes {
        ids: ["p1".to_owned()].into(),
        names: ["B".to_owned()].into(),
    };
    let mut same = snapshot.clone();
    assert!(!same.refresh(&writes, snapshot.clone()), "nothing moved");

    // Another writer created B, and A's version 2 with the file's content.
    let mut moved = snapshot.clone();
    moved.versions.insert("p1".into(), history(vec![]));
    let fresh = Remote::new([
        prompt("p1", "A", Some(ours(2, &hello(), false)), None),
        prompt("p9", "B", Some(ours(1, &hello(), false)), None),
    ]);
    assert!(moved.refresh(&writes, fresh));
    assert!(
        !moved.versions.contains_key("p1"),
        "its version list is stale"
    );
    let items = plan_sync(
        &[by_name("A", hello()), by_name("B", hello())],
        &source(),
        &moved,
        DriftPolicy::Correct,
    );
    assert_eq!(items[0].step, SyncStep::Unchanged { version: Some(2) });
    assert_eq!(items[1].target, Some(Target::Existing("p9".into())));
    assert_eq!(items[1].step, SyncStep::Unchanged { version: Some(1) });

    // A prompt deleted meanwhile is gone from the snapshot, so its file fails.
    let mut gone = snapshot.clone();
    assert!(gone.refresh(&writes, Remote::default()));
    assert!(!gone.prompts.contains_key("p1"));
}
