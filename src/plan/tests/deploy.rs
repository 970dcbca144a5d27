use super::*;

#[test]
fn deploy_does_nothing_when_the_release_content_is_live() {
    let remote = Remote::new([prompt("p1", "Greeter", None, Some(ours(2, &hello(), true)))]);
    assert_eq!(
        deploy_one(by_name("Greeter", hello()), &remote).step,
        DeployStep::AlreadyLive { version: 2 }
    );
}

#[test]
fn deploy_commits_the_draft_that_holds_the_release_content() {
    let first = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(ours(1, &hello(), false)),
        None,
    )]);
    let d = by_name("Greeter", hello());
    assert!(
        !needs_version_list(&d, &first.prompts["p1"]),
        "nothing below a first draft"
    );
    assert_eq!(
        deploy_one(d.clone(), &first).step,
        DeployStep::Deploy {
            target: DeployTarget::Existing {
                version: 1,
                commit: true
            },
            live_before: None
        }
    );
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}]});
    let mut remote = Remote::new([prompt(
        "p1",
        "Greeter",
        Some(ours(2, &hello(), false)),
        None,
    )]);
    assert!(
        needs_version_list(&d, &remote.prompts["p1"]),
        "a committed version below the draft may hold it"
    );
    remote.versions.insert(
        "p1".into(),
        history(vec![ours(2, &hello(), false), ours(1, &other, true)]),
    );
    assert_eq!(
        deploy_one(d, &remote).step,
        DeployStep::Deploy {
            target: DeployTarget::Existing {
                version: 2,
                commit: true
            },
            live_before: None
        }
    );
}

/// Under `commit_mode = bump` a commit copies the committed version into a new draft:
/// a pass killed between its commit and its deploy leaves v1 committed and v2, its
/// copy, as the draft. Deploying the committed one writes nothing; committing the copy
/// would add v3.
#[test]
fn deploy_prefers_a_committed_version_to_the_server_s_draft_copy_of_it() {
    let copy = ours(2, &hello(), false);
    let mut remote = Remote::new([prompt("p1", "Greeter", Some(copy.clone()), None)]);
    let d = by_name("Greeter", hello());
    assert!(needs_version_list(&d, &remote.prompts["p1"]));
    remote
        .versions
        .insert("p1".into(), history(vec![copy, ours(1, &hello(), true)]));
    assert_eq!(
        deploy_one(d.clone(), &remote).step,
        DeployStep::Deploy {
            target: DeployTarget::Existing {
                version: 1,
                commit: false
            },
            live_before: None
        }
    );
    assert_eq!(version_searches(&[d], &remote), vec!["p1".to_owned()]);
}

#[test]
fn deploy_of_an_older_version_is_a_rollback_and_reuses_it() {
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "bye"}]});
    let live = ours(5, &other, true);
    let mut remote = Remote::new([prompt("p1", "Greeter", Some(live.clone()), Some(live))]);
    let d = by_name("Greeter", hello());
    assert!(needs_version_list(&d, &remote.prompts["p1"]));
    remote.versions.insert(
        "p1".into(),
        history(vec![
            ours(5, &other, true),
            ours(4, &hello(), true),
            ours(2, &hello(), true),
        ]),
    );
    let item = deploy_one(d, &remote);
    assert_eq!(
        item.step,
        DeployStep::Deploy {
            target: DeployTarget::Existing {
                version: 4,
                commit: false
            },
            live_before: Some(5)
        }
    );
    assert!(item.is_rollback());
}

#[test]
fn deploy_creates_the_release_version_when_none_has_its_content() {
    let item = deploy_one(by_name("Greeter", hello()), &Remote::default());
    let DeployStep::Deploy {
        target: DeployTarget::Create { spec, .. },
        live_before: None,
    } = &item.step
    else {
        panic!("{item:?}")
    };
    assert!(spec.description.as_deref().unwrap().contains(COMMIT));
}

#[test]
fn a_simulated_deploy_makes_the_release_content_newest() {
    let d = by_name("Greeter", hello());
    let items = plan_deploy(std::slice::from_ref(&d), &release(), &Remote::default());
    let after = simulate_deploy(&Remote::default(), &items);
    let item = sync_one(d, &after);
    assert_eq!(item.target, Some(Target::Pending("Greeter".into())));
    assert_eq!(item.step, SyncStep::Unchanged { version: Some(1) });
}
