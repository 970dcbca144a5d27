use super::*;

#[test]
fn a_new_name_creates_a_prompt_and_its_first_version() {
    let item = sync_one(by_name("Greeter", hello()), &Remote::default());
    assert_eq!(
        item.target,
        Some(Target::New(NewPrompt {
            name: "Greeter".into(),
            description: None
        }))
    );
    let change = content_of(&item);
    assert_eq!(change.write, VersionWrite::Create);
    assert_eq!(change.fields, vec!["model", "messages"]);
    let description = change.spec.description.as_deref().unwrap();
    assert_eq!(provenance::parse(description).unwrap().source, COMMIT);
    assert!(item.is_change());
}

#[test]
fn our_own_version_with_the_same_content_is_unchanged() {
    let remote = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(ours(3, &hello(), false)),
        None,
    )]);
    let item = sync_one(by_name("Greeter", hello()), &remote);
    assert_eq!(item.step, SyncStep::Unchanged { version: Some(3) });
    assert!(!item.is_change());
}

#[test]
fn server_filled_defaults_and_converted_content_do_not_cause_a_new_version() {
    let mut echoed = ours(1, &hello(), false);
    echoed.fields.insert("temperature".into(), json!(1.0));
    echoed.fields.insert(
        "messages".into(),
        json!([{"role": "user", "content": [{"type": "text", "text": "hello"}]}]),
    );
    let remote = Remote::new([prompt("p1", "Greeter", Some(echoed), None)]);
    let item = sync_one(by_name("Greeter", hello()), &remote);
    assert_eq!(item.step, SyncStep::Unchanged { version: Some(1) });
}

#[test]
fn equal_content_made_by_hand_is_unchanged_with_defaults_spelled_out() {
    let mut spelled = hello();
    spelled["temperature"] = json!(0.7);
    spelled["max_tokens"] = json!(4096.0);
    let remote = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(foreign(2, &spelled, true)),
        None,
    )]);
    assert_eq!(
        sync_one(by_name("Greeter", hello()), &remote).step,
        SyncStep::Unchanged { version: Some(2) }
    );
}

#[test]
fn changed_content_creates_a_version_listing_the_changed_fields() {
    let mut new = hello();
    new["temperature"] = json!(0.2);
    let remote = Remote::new([prompt("p1", "Greeter", Some(ours(3, &hello(), true)), None)]);
    let item = sync_one(by_name("Greeter", new), &remote);
    let change = content_of(&item);
    assert_eq!(change.write, VersionWrite::Create);
    assert_eq!(change.fields, vec!["temperature"]);
    assert!(!change.drift);
    assert_eq!(change.before.as_ref().map(|v| v.number), Some(3));
}

#[test]
fn an_edit_in_place_of_our_version_is_drift() {
    let mut edited = ours(3, &hello(), false);
    edited.fields.insert("model".into(), json!("gpt-4o-mini"));
    let remote = Remote::new([prompt("p1", "Greeter", Some(edited), None)]);
    let item = sync_one(by_name("Greeter", hello()), &remote);
    assert!(content_of(&item).drift);
    assert!(drift_is_reported(by_name("Greeter", hello()), &remote));
}

#[test]
fn a_foreign_newest_version_on_a_managed_prompt_is_drift_but_adoption_is_not() {
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}]});
    let managed = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(foreign(4, &other, false)),
        Some(ours(3, &hello(), true)),
    )]);
    assert!(content_of(&sync_one(by_name("Greeter", hello()), &managed)).drift);
    let adopted = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(foreign(1, &other, false)),
        None,
    )]);
    assert!(!content_of(&sync_one(by_name("Greeter", hello()), &adopted)).drift);
}

#[test]
fn an_unknown_prompt_id_fails_with_advice() {
    let item = sync_one(
        desired(PromptKey::Id("prm_nope".into()), hello()),
        &Remote::default(),
    );
    let SyncStep::Failed { error } = &item.step else {
        panic!("{item:?}")
    };
    assert!(
        error.contains("prm_nope") && error.contains("does not exist"),
        "{error}"
    );
}

#[test]
fn a_name_shared_by_several_remote_prompts_fails_naming_them() {
    let remote = Remote::new([
        prompt("p1", "Greeter", None, None),
        prompt("p2", "Greeter", None, None),
    ]);
    let item = sync_one(by_name("Greeter", hello()), &remote);
    let SyncStep::Failed { error } = &item.step else {
        panic!("{item:?}")
    };
    assert!(
        error.contains("p1, p2") && error.contains("prompt_id"),
        "{error}"
    );
}

#[test]
fn two_files_on_one_remote_prompt_both_fail() {
    let remote = Remote::new([prompt("p1", "Greeter", None, None)]);
    let items = plan_sync(
        &[
            desired(PromptKey::Id("p1".into()), hello()),
            by_name("Greeter", hello()),
        ],
        &source(),
        &remote,
        DriftPolicy::Correct,
    );
    for item in &items {
        let SyncStep::Failed { error } = &item.step else {
            panic!("{item:?}")
        };
        assert!(
            error.contains("conflict") && error.contains("prompt p1"),
            "{error}"
        );
        assert!(
            error.contains("prompts/p1.prompt.yaml and prompts/Greeter.prompt.yaml"),
            "{error}"
        );
    }
}

#[test]
fn a_draft_the_server_copied_on_commit_is_edited_in_place() {
    let mut new = hello();
    new["temperature"] = json!(0.1);
    let live = ours(3, &hello(), true);
    let copy = ours(4, &hello(), false);
    let remote = Remote::new([prompt("p1", "Greeter", Some(copy), Some(live))]);
    let item = sync_one(by_name("Greeter", new), &remote);
    assert_eq!(content_of(&item).write, VersionWrite::EditDraft(4));
}

#[test]
fn a_draft_of_other_content_is_never_overwritten() {
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}]});
    let remote = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(ours(4, &other, false)),
        Some(ours(3, &hello(), true)),
    )]);
    let mut new = hello();
    new["seed"] = json!(7);
    assert_eq!(
        content_of(&sync_one(by_name("Greeter", new), &remote)).write,
        VersionWrite::Create
    );
}

#[test]
fn a_server_copy_edited_by_a_person_is_never_overwritten_and_is_drift() {
    let live = ours(3, &hello(), true);
    // The server's copy of v3 (same description), then edited in the UI.
    let mut copy = ours(4, &hello(), false);
    copy.fields.insert("temperature".into(), json!(0.1));
    let remote = Remote::new([prompt("p1", "Greeter", Some(copy), Some(live))]);
    let mut new = hello();
    new["seed"] = json!(7);
    let item = sync_one(by_name("Greeter", new.clone()), &remote);
    let change = content_of(&item);
    assert_eq!(change.write, VersionWrite::Create);
    assert!(change.drift);
    assert!(drift_is_reported(by_name("Greeter", new), &remote));
}

#[test]
fn a_draft_of_ours_above_the_live_version_is_not_taken_for_a_copy() {
    // HEAD ahead of the tag: v3 live, v4 our own draft of other content.
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}]});
    let draft = {
        let mut source = source();
        source.commit = Some("f".repeat(40));
        let spec: VersionSpec = serde_json::from_value(other.clone()).unwrap();
        let mut v = ours(4, &other, false);
        v.fields.insert(
            "description".into(),
            json!(provenance::describe(&source, &normalize::digest(&spec))),
        );
        v
    };
    let remote = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(draft),
        Some(ours(3, &hello(), true)),
    )]);
    let change = content_of(&sync_one(by_name("Greeter", hello()), &remote)).clone();
    assert_eq!(change.write, VersionWrite::Create);
    assert!(!change.drift, "git changed, nobody else");
}

#[test]
fn a_person_s_version_on_a_prompt_with_no_live_version_is_drift_when_the_history_is_ours() {
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}]});
    let mut remote = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(foreign(2, &other, false)),
        None,
    )]);
    let d = by_name("Greeter", hello());
    assert_eq!(
        history_searches(std::slice::from_ref(&d), &remote),
        vec!["p1".to_owned()]
    );
    remote.versions.insert(
        "p1".into(),
        history(vec![foreign(2, &other, false), ours(1, &hello(), true)]),
    );
    assert!(history_searches(std::slice::from_ref(&d), &remote).is_empty());
    assert!(content_of(&sync_one(d.clone(), &remote)).drift);
    assert!(drift_is_reported(d.clone(), &remote));
    // A history with nothing of ours is an adoption, not drift.
    remote
        .versions
        .insert("p1".into(), history(vec![foreign(2, &other, false)]));
    assert!(!content_of(&sync_one(d.clone(), &remote)).drift);
    // One that could not be read in full cannot tell: the prompt fails.
    remote.versions.insert(
        "p1".into(),
        History {
            versions: vec![foreign(2, &other, false)],
            incomplete: Some("item 1 of page 1 could not be read".into()),
        },
    );
    let SyncStep::Failed { error } = sync_one(d, &remote).step else {
        panic!("expected a failure")
    };
    assert!(error.contains("item 1 of page 1"), "{error}");
}

#[test]
fn the_history_is_fetched_only_where_it_decides_something() {
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}]});
    let remote = Remote::new([
        // Ours, differs: git changed.
        prompt("a", "A", Some(ours(1, &other, false)), None),
        // Someone else's, equal: unchanged.
        prompt("b", "B", Some(foreign(1, &hello(), false)), None),
        // Someone else's, differs, our live version says it is managed.
        prompt(
            "c",
            "C",
            Some(foreign(2, &other, false)),
            Some(ours(1, &hello(), true)),
        ),
        // Someone else's, differs, nothing live: only the history can tell.
        prompt("d", "D", Some(foreign(2, &other, false)), None),
    ]);
    let files: Vec<DesiredPrompt> = ["A", "B", "C", "D"]
        .into_iter()
        .map(|n| by_name(n, hello()))
        .collect();
    assert_eq!(history_searches(&files, &remote), vec!["d".to_owned()]);
}

#[test]
fn an_unreadable_remote_prompt_fails_its_files_instead_of_creating_another() {
    let mut remote = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(ours(1, &hello(), false)),
        None,
    )]);
    remote.mark_unreadable(Some("p1"), None, "reading v1 in full: 500");
    remote.mark_unreadable(
        Some("p2"),
        Some("Lost"),
        "item 0 of page 1 could not be read",
    );
    for d in [
        by_name("Greeter", hello()),
        desired(PromptKey::Id("p1".into()), hello()),
        by_name("Lost", hello()),
        desired(PromptKey::Id("p2".into()), hello()),
    ] {
        let item = sync_one(d.clone(), &remote);
        let SyncStep::Failed { error } = &item.step else {
            panic!("{item:?}")
        };
        assert!(
            error.contains("could not be read") || error.contains("500"),
            "{error}"
        );
        let deploy = deploy_one(d, &remote);
        assert!(
            matches!(deploy.step, DeployStep::Failed { .. }),
            "{deploy:?}"
        );
    }
    assert!(sync_one(by_name("Other", hello()), &remote).is_change());
}

#[test]
fn a_deploy_search_in_an_incomplete_history_reuses_what_it_finds_and_never_guesses() {
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}]});
    let live = ours(5, &other, true);
    let mut remote = Remote::new([prompt("p1", "Greeter", Some(live.clone()), Some(live))]);
    remote.versions.insert(
        "p1".into(),
        History {
            versions: vec![ours(5, &other, true), ours(2, &hello(), true)],
            incomplete: Some("item 1 of page 1 could not be read".into()),
        },
    );
    assert!(matches!(
        deploy_one(by_name("Greeter", hello()), &remote).step,
        DeployStep::Deploy {
            target: DeployTarget::Existing { version: 2, .. },
            ..
        }
    ));
    let third = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "third"}]});
    let DeployStep::Failed { error } = deploy_one(by_name("Greeter", third), &remote).step else {
        panic!("expected a failure")
    };
    assert!(
        error.contains("cannot search the versions of p1"),
        "{error}"
    );
}

#[test]
fn sync_false_is_skipped_but_still_shows_its_change() {
    let greeter = by_name("Greeter", hello());
    let d = altered(&greeter, greeter.name.as_deref(), None, false);
    let item = sync_one(d, &Remote::default());
    assert!(matches!(
        item.step,
        SyncStep::Skipped {
            reason: SkipReason::SyncDisabled,
            content: Some(_)
        }
    ));
}

#[test]
fn metadata_differences_update_the_prompt_without_a_version() {
    let d = altered(
        &desired(PromptKey::Id("p1".into()), hello()),
        Some("Greeter v2"),
        Some("Says hello"),
        true,
    );
    let remote = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(ours(1, &hello(), false)),
        None,
    )]);
    let item = sync_one(d, &remote);
    assert_eq!(
        item.step,
        SyncStep::Change {
            metadata: MetadataUpdate {
                name: Some("Greeter v2".into()),
                description: Some("Says hello".into())
            },
            content: None
        }
    );
}

/// What a pass may write, judged from a prompt alone (`may_create_on`: the account
/// listing reads again what it may write), agrees with the plan wherever the prompt
/// alone tells: our newest version of the file's content, or the same content made by
/// hand, has nothing to write; another content, or no version, does. An edit in place
/// of our version keeps our provenance, so only the plan sees it; what the plan writes
/// that this did not name is read again before writing (`Reader::refresh`).
#[test]
fn what_a_prompt_alone_tells_of_a_write_agrees_with_the_plan() {
    let spec =
        |content: &Value| -> VersionSpec { serde_json::from_value(content.clone()).unwrap() };
    let may = |remote: &Prompt, content: &Value| {
        let spec = spec(content);
        may_create_on(remote, &spec, &normalize::digest(&spec))
    };
    let plans_a_change = |remote: Prompt, content: Value| {
        sync_one(by_name("Greeter", content), &Remote::new([remote])).is_change()
    };
    let mut new = hello();
    new["temperature"] = json!(0.2);
    let cases = [
        (Some(ours(3, &hello(), false)), hello(), false),
        (Some(ours(3, &hello(), false)), new.clone(), true),
        (Some(foreign(2, &hello(), true)), hello(), false),
        (Some(foreign(2, &hello(), true)), new.clone(), true),
    ];
    for (current, content, expected) in cases {
        let remote = prompt("p1", "Greeter", current, None);
        assert_eq!(may(&remote, &content), expected, "{remote:?} for {content}");
        assert_eq!(plans_a_change(remote, content), expected);
    }
    assert!(may(&prompt("p1", "Greeter", None, None), &hello()));
    let mut edited = ours(3, &hello(), false);
    edited.fields.insert("model".into(), json!("gpt-4o-mini"));
    let edited = prompt("p1", "Greeter", Some(edited), None);
    assert!(!may(&edited, &hello()), "left to the plan");
    assert!(plans_a_change(edited, hello()));
}

/// A file planned alone on its prompt alone (`plan_alone`, what the pass writes as
/// the prompt's page arrives) gets the item the whole plan gives it beside other files
/// and prompts, when it is a change that needs nothing else; and nothing where the
/// plan needs a version history (someone else's newest version, no provenance live),
/// where a version came as a summary, or where nothing is to be written.
#[test]
fn a_file_planned_alone_on_its_prompt_gets_the_item_of_the_whole_plan() {
    let mut new = hello();
    new["temperature"] = json!(0.2);
    let summary = || {
        let mut fields = serde_json::Map::new();
        fields.insert("version".into(), json!(4));
        fields.insert("model".into(), json!("gpt-4o"));
        Version::from_fields(fields).unwrap()
    };
    // (current, live, content, whether planning alone gives a change; drift
    // corrected, reported)
    let cases = [
        (None, None, hello(), (true, true)),
        (
            Some(ours(3, &hello(), false)),
            None,
            new.clone(),
            (true, true),
        ),
        (
            Some(ours(3, &hello(), false)),
            None,
            hello(),
            (false, false),
        ),
        // Drift on a managed prompt: corrected is a change, reported is not.
        (
            Some(foreign(3, &new, false)),
            Some(ours(2, &hello(), true)),
            hello(),
            (true, false),
        ),
        (Some(foreign(3, &new, false)), None, hello(), (false, false)),
        (Some(summary()), None, hello(), (false, false)),
    ];
    let policies = [DriftPolicy::Correct, DriftPolicy::Report];
    for (drift, (current, live, content, changes)) in policies
        .into_iter()
        .flat_map(|drift| cases.clone().into_iter().map(move |case| (drift, case)))
    {
        let alone = if drift == DriftPolicy::Correct {
            changes.0
        } else {
            changes.1
        };
        let file = desired(PromptKey::Id("p1".into()), content);
        let others = by_name("Other", new.clone());
        let target = prompt("p1", "Greeter", current, live);
        let remote = Remote::new([
            target.clone(),
            prompt("p2", "Other", Some(ours(1, &hello(), false)), None),
        ]);
        let planned = plan_alone(&file, &source(), &target, drift);
        assert_eq!(planned.is_some(), alone, "{target:?}");
        if let Some(planned) = planned {
            let whole = plan_sync(&[others, file], &source(), &remote, drift);
            assert_eq!(planned, whole[1], "{target:?}");
        }
    }
}
