//! Reading prompt files from git: a commit's tree (not the working tree), detached
//! HEADs, shallow clones, linked worktrees, empty repositories, symlinks, tags and the
//! release they select. Real repositories made with the git CLI.

use promptsync::api::types::MessageContent;
use promptsync::config::PromptSettings;
use promptsync::deploy::select_release;
use promptsync::desired::{self, DesiredSet, PromptKey, SourceRev};
use promptsync::gitrepo::{GitError, GitRepo};

use crate::support::git::{BASE_TIME, TestRepo};

fn prompt(name: &str, text: &str) -> String {
    format!("name: {name}\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: {text:?}\n")
}

fn load(repo: &TestRepo, rev: SourceRev) -> DesiredSet {
    let git = GitRepo::open(repo.path()).unwrap();
    desired::load(&git, &rev, &PromptSettings::default()).unwrap()
}

fn head() -> SourceRev {
    SourceRev::Commit("HEAD".into())
}

fn text_of(set: &DesiredSet, path: &str) -> MessageContent {
    let prompt = set
        .prompts
        .iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("no prompt {path} in {:?}", set.files));
    prompt.spec.messages[0].content.clone()
}

/// The errors of a load, as `path:line:col: message`.
pub(crate) fn errors(set: &DesiredSet) -> Vec<String> {
    set.diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {}", d.location(), d.message))
        .collect()
}

#[test]
fn a_commit_is_read_from_its_tree_not_the_working_tree() {
    let repo = TestRepo::new();
    repo.write("prompts/a.prompt.yaml", &prompt("A", "committed"));
    let commit = repo.commit("add A");
    repo.write("prompts/a.prompt.yaml", &prompt("A", "edited"));
    repo.write("prompts/b.prompt.yaml", &prompt("B", "untracked"));

    let set = load(&repo, head());
    assert_eq!(set.files, ["prompts/a.prompt.yaml"]);
    assert_eq!(
        text_of(&set, "prompts/a.prompt.yaml"),
        MessageContent::Text("committed".into())
    );
    assert_eq!(set.source.commit.as_deref(), Some(commit.as_str()));
    assert_eq!(set.source.subject.as_deref(), Some("add A"));
    assert!(!set.source.worktree);

    let set = load(&repo, SourceRev::Worktree);
    assert_eq!(
        set.files,
        ["prompts/a.prompt.yaml", "prompts/b.prompt.yaml"]
    );
    assert_eq!(
        text_of(&set, "prompts/a.prompt.yaml"),
        MessageContent::Text("edited".into())
    );
    assert!(set.source.worktree);
    assert_eq!(set.source.commit.as_deref(), Some(commit.as_str()));
}

#[test]
fn any_revision_can_be_read() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A", "one"));
    let first = repo.commit("one");
    repo.tag("v1");
    repo.write("a.prompt.yaml", &prompt("A", "two"));
    repo.commit("two");

    for rev in [first.as_str(), "v1", "HEAD~1", &first[..10]] {
        let set = load(&repo, SourceRev::Commit(rev.into()));
        assert_eq!(
            text_of(&set, "a.prompt.yaml"),
            MessageContent::Text("one".into()),
            "{rev}"
        );
    }
    let git = GitRepo::open(repo.path()).unwrap();
    let err = git.resolve_commit("no-such-branch").unwrap_err();
    assert!(matches!(err, GitError::UnknownRevision { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("unknown revision `no-such-branch`"),
        "{err}"
    );
}

#[test]
fn a_detached_head_is_fine() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A", "one"));
    let first = repo.commit("one");
    repo.write("a.prompt.yaml", &prompt("A", "two"));
    repo.commit("two");
    repo.detach(&first);

    let set = load(&repo, head());
    assert_eq!(set.source.commit.as_deref(), Some(first.as_str()));
    assert_eq!(
        text_of(&set, "a.prompt.yaml"),
        MessageContent::Text("one".into())
    );
}

#[test]
fn a_shallow_clone_reads_its_commit_and_tags() {
    let origin = TestRepo::new();
    origin.write("a.prompt.yaml", &prompt("A", "old"));
    origin.commit("old");
    origin.write("a.prompt.yaml", &prompt("A", "new"));
    let tip = origin.commit("new");
    origin.tag_annotated("v2.0.0", "release", BASE_TIME + 10_000);

    let clone = origin.shallow_clone();
    let git = GitRepo::open(clone.path()).unwrap();
    assert!(git.is_shallow());
    let set = load(&clone, head());
    assert_eq!(set.source.commit.as_deref(), Some(tip.as_str()));
    assert_eq!(
        text_of(&set, "a.prompt.yaml"),
        MessageContent::Text("new".into())
    );

    let scan = git.tags().unwrap();
    assert_eq!(scan.tags.len(), 1, "{scan:?}");
    assert_eq!(scan.tags[0].name, "v2.0.0");
    assert_eq!(scan.tags[0].commit, tip);
    assert_eq!(scan.tags[0].date, BASE_TIME + 10_000);
}

#[test]
fn a_linked_worktree_opens_with_its_own_root_and_the_common_git_dir() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A", "main"));
    let commit = repo.commit("one");
    let linked = repo.linked_worktree("linked");
    assert!(linked.join(".git").is_file());

    let git = GitRepo::open(&linked).unwrap();
    assert_eq!(git.root(), linked);
    assert_eq!(git.git_dir(), repo.path().join(".git"));
    assert_eq!(
        git.git_dirs(),
        [
            repo.path().join(".git").as_path(),
            repo.path().join(".git/worktrees/linked").as_path()
        ]
    );
    let set = desired::load(&git, &head(), &PromptSettings::default()).unwrap();
    assert_eq!(set.source.commit.as_deref(), Some(commit.as_str()));
    assert_eq!(set.files, ["a.prompt.yaml"]);

    std::fs::write(linked.join("b.prompt.yaml"), prompt("B", "only here")).unwrap();
    let set = desired::load(&git, &SourceRev::Worktree, &PromptSettings::default()).unwrap();
    assert_eq!(set.files, ["a.prompt.yaml", "b.prompt.yaml"]);
}

#[test]
fn a_repository_without_commits_is_a_clear_error_but_its_worktree_reads() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A", "draft"));
    let git = GitRepo::open(repo.path()).unwrap();

    let err = desired::load(&git, &head(), &PromptSettings::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("has no commits yet"), "{text}");
    assert!(text.contains("--worktree"), "{text}");

    let set = load(&repo, SourceRev::Worktree);
    assert_eq!(set.source.commit, None);
    assert_eq!(set.prompts.len(), 1);
}

#[test]
fn open_finds_the_root_from_a_subdirectory_and_refuses_non_repositories() {
    let repo = TestRepo::new();
    repo.write("deep/er/x.txt", "x");
    let git = GitRepo::open(&repo.path().join("deep/er")).unwrap();
    assert_eq!(git.root(), repo.path());

    let plain = tempfile::tempdir().unwrap();
    let err = GitRepo::open(plain.path()).unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }), "{err}");
    assert!(err.to_string().contains("--repo"), "{err}");
}

/// The advice is followed to the letter: the suggested command, run as it is printed,
/// makes the repository open. Started from a subdirectory with a relative `--repo`, the
/// advice still names the work tree's top, absolute.
#[test]
fn a_repository_of_another_owner_explains_safe_directory() {
    use std::os::unix::fs::MetadataExt;
    let repo = TestRepo::new();
    repo.write("sub/dir/a.prompt.yaml", &prompt("A", "a"));
    let git_dir = repo.path().join(".git");
    if std::fs::metadata(&git_dir).unwrap().uid() != 0 {
        // Only root can hand a directory to another user; nothing to check otherwise.
        eprintln!("skipped: needs root to chown");
        return;
    }
    std::os::unix::fs::chown(repo.path(), Some(65533), Some(65533)).unwrap();
    std::os::unix::fs::chown(&git_dir, Some(65533), Some(65533)).unwrap();
    // The binary, with an empty HOME: a developer's own safe.directory cannot interfere.
    let home = tempfile::tempdir().unwrap();
    let validate = || {
        let mut cmd = crate::support::promptsync();
        cmd.current_dir(repo.path().join("sub"))
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .args(["validate", "--repo", "dir"]);
        cmd
    };
    let output = validate().output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.contains("owned by another user"), "{stderr}");
    assert!(stderr.contains("65533"), "{stderr}");
    let advice = format!(
        "`git config --global --add safe.directory {}`",
        repo.path().display()
    );
    assert!(stderr.contains(&advice), "{stderr}");

    // Follow it: run the command as printed, with that HOME.
    let command = advice.trim_matches('`');
    let status = std::process::Command::new("sh")
        .args(["-c", command])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("GIT_CONFIG_GLOBAL")
        .env_remove("GIT_CONFIG_SYSTEM")
        .status()
        .unwrap();
    assert!(status.success());
    validate()
        .assert()
        .success()
        .stdout("checked 1 prompt file: 1 valid, 0 invalid; 0 errors, 0 warnings\n");
}

#[test]
fn content_files_are_inlined_from_the_commit_and_follow_symlinks_inside() {
    let repo = TestRepo::new();
    repo.write(
        "prompts/a.prompt.yaml",
        "name: A\nmodel: m\nmessages:\n  - role: system\n    content_file: text/system.md\n  - role: user\n    content_file: ../shared/link.md\n",
    );
    repo.write("prompts/text/system.md", "System text\n");
    repo.write("shared/real/user.md", "User text\n");
    repo.symlink("shared/link.md", "real/user.md");
    repo.commit("add");
    repo.write("prompts/text/system.md", "edited, not committed\n");

    let set = load(&repo, head());
    assert_eq!(errors(&set), Vec::<String>::new());
    let spec = &set.prompts[0].spec;
    assert_eq!(
        spec.messages[0].content,
        MessageContent::Text("System text\n".into())
    );
    assert_eq!(
        spec.messages[1].content,
        MessageContent::Text("User text\n".into())
    );

    let set = load(&repo, SourceRev::Worktree);
    assert_eq!(
        set.prompts[0].spec.messages[0].content,
        MessageContent::Text("edited, not committed\n".into())
    );
}

#[test]
fn content_files_may_not_leave_the_repository() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let repo = TestRepo::new();
    repo.write(
        "p/a.prompt.yaml",
        "name: A\nmodel: m\nmessages:\n  - role: system\n    content_file: escape.md\n  - role: user\n    content_file: ../../up.md\n  - role: user\n    content_file: dir/../../../x.md\n  - role: user\n    content_file: missing.md\n",
    );
    repo.symlink(
        "p/escape.md",
        &outside.path().join("secret.txt").display().to_string(),
    );
    repo.commit("add");

    for rev in [head(), SourceRev::Worktree] {
        let set = load(&repo, rev.clone());
        assert!(set.prompts.is_empty());
        assert_eq!(
            errors(&set),
            [
                "p/a.prompt.yaml:5:5: content file `escape.md` leads outside the repository through the symbolic link `p/escape.md`",
                "p/a.prompt.yaml:7:5: content file `../../up.md` is outside the repository",
                "p/a.prompt.yaml:9:5: content file `dir/../../../x.md` is outside the repository",
                "p/a.prompt.yaml:11:5: content file `missing.md` does not exist",
            ],
            "{rev:?}"
        );
    }
}

#[test]
fn a_relative_symlink_climbing_out_is_refused_in_the_commit_too() {
    let repo = TestRepo::new();
    repo.write(
        "a.prompt.yaml",
        "name: A\nmodel: m\nmessages:\n  - role: system\n    content_file: sub/up.md\n",
    );
    repo.symlink("sub/up.md", "../../outside.md");
    repo.commit("add");
    let set = load(&repo, head());
    assert_eq!(
        errors(&set),
        [
            "a.prompt.yaml:5:5: content file `sub/up.md` leads outside the repository through the symbolic link `sub/up.md`"
        ]
    );
}

#[test]
fn symlinked_prompt_files_are_read_through_the_link() {
    let repo = TestRepo::new();
    repo.write("real/a.yaml", &prompt("A", "via link"));
    repo.symlink("a.prompt.yaml", "real/a.yaml");
    repo.commit("add");
    for rev in [head(), SourceRev::Worktree] {
        let set = load(&repo, rev);
        assert_eq!(set.files, ["a.prompt.yaml"]);
        assert_eq!(
            text_of(&set, "a.prompt.yaml"),
            MessageContent::Text("via link".into())
        );
    }
}

#[test]
fn the_working_tree_leaves_out_what_git_ignores_as_git_does() {
    let repo = TestRepo::new();
    // Rules at every level git reads them: nested `.gitignore`s (a deeper one wins,
    // a `!` brings a file back), anchored and directory patterns, `info/exclude` and
    // `core.excludesFile`.
    repo.write(
        ".gitignore",
        "*.draft.prompt.yaml\nbuild/\n/top.prompt.yaml\n# a comment\n\\#hash.prompt.yaml\n",
    );
    repo.write(
        "prompts/.gitignore",
        "!keep.draft.prompt.yaml\nlocal/\n*.yml\n",
    );
    repo.write("prompts/team/.gitignore", "!*.yml\nold-*\n");
    repo.write(".git/info/exclude", "secret.prompt.yaml\n");
    repo.write("excludes", "*.mine.prompt.yaml\n");
    let excludes = repo.path().join("excludes");
    repo.git(["config", "core.excludesFile", excludes.to_str().unwrap()]);
    for path in [
        "top.prompt.yaml",
        "sub/top.prompt.yaml",
        "#hash.prompt.yaml",
        "a.draft.prompt.yaml",
        "build/b.prompt.yaml",
        "docs/build/c.prompt.yaml",
        "prompts/keep.draft.prompt.yaml",
        "prompts/other.draft.prompt.yaml",
        "prompts/local/d.prompt.yaml",
        "prompts/e.prompt.yml",
        "prompts/team/f.prompt.yml",
        "prompts/team/old-g.prompt.yaml",
        "prompts/team/h.prompt.yaml",
        "prompts/team/x.draft.prompt.yaml",
        "prompts/secret.prompt.yaml",
        "prompts/i.mine.prompt.yaml",
        "prompts/j.prompt.yaml",
    ] {
        repo.write(path, &prompt(path, "x"));
    }

    let set = load(&repo, SourceRev::Worktree);
    // What git itself lists as untracked and not ignored.
    let listed = repo.git(["ls-files", "--others", "--exclude-standard"]);
    let mut git_sees: Vec<&str> = listed
        .lines()
        .filter(|path| path.ends_with(".prompt.yaml") || path.ends_with(".prompt.yml"))
        .map(|path| path.trim_matches('"'))
        .collect();
    git_sees.sort_unstable();
    assert_eq!(set.files, git_sees);
    assert_eq!(
        set.files,
        [
            "prompts/j.prompt.yaml",
            "prompts/keep.draft.prompt.yaml",
            "prompts/team/f.prompt.yml",
            "prompts/team/h.prompt.yaml",
            "sub/top.prompt.yaml",
        ]
    );
    // A directory named on the command line: the rules of the directories above it
    // apply too.
    let git = GitRepo::open(repo.path()).unwrap();
    let named = desired::load_paths(
        repo.path(),
        Some(&git),
        &[repo.path().join("prompts/team")],
        &PromptSettings::default(),
    )
    .unwrap();
    assert_eq!(
        named.files,
        ["prompts/team/f.prompt.yml", "prompts/team/h.prompt.yaml"]
    );
}

#[test]
fn globs_select_and_git_ignores_in_the_working_tree() {
    let repo = TestRepo::new();
    repo.write(".gitignore", "build/\n");
    repo.write("prompts/a.prompt.yaml", &prompt("A", "a"));
    repo.write("prompts/b.prompt.yml", &prompt("B", "b"));
    repo.write("prompts/drafts/c.prompt.yaml", &prompt("C", "c"));
    repo.write("prompts/notes.yaml", "not a prompt");
    repo.write("build/d.prompt.yaml", &prompt("D", "d"));
    repo.commit("add");

    let set = load(&repo, SourceRev::Worktree);
    assert_eq!(
        set.files,
        [
            "prompts/a.prompt.yaml",
            "prompts/b.prompt.yml",
            "prompts/drafts/c.prompt.yaml"
        ]
    );
    let git = GitRepo::open(repo.path()).unwrap();
    let settings = PromptSettings {
        include: vec!["prompts/**".into()],
        exclude: vec![
            "**/drafts/**".into(),
            "**/*.yml".into(),
            "**/notes.yaml".into(),
        ],
    };
    let set = desired::load(&git, &head(), &settings).unwrap();
    assert_eq!(set.files, ["prompts/a.prompt.yaml"]);
}

#[test]
fn identities_sync_flag_and_conflicts() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", "prompt_id: prm_1\nname: A\ndescription: about A\nsync: false\nmodel: m\nmessages:\n  - role: user\n");
    repo.write("b.prompt.yaml", &prompt("B", "b"));
    repo.write("c1.prompt.yaml", &prompt("Same", "c"));
    repo.write("c2.prompt.yaml", &prompt("Same", "c"));
    repo.commit("add");

    let set = load(&repo, head());
    let keys: Vec<(&str, &PromptKey, bool)> = set
        .prompts
        .iter()
        .map(|p| (p.path.as_str(), &p.key, p.sync))
        .collect();
    assert_eq!(
        keys,
        [
            ("a.prompt.yaml", &PromptKey::Id("prm_1".into()), false),
            ("b.prompt.yaml", &PromptKey::Name("B".into()), true),
        ]
    );
    let a = &set.prompts[0];
    assert_eq!(a.description.as_deref(), Some("about A"));
    assert_eq!(a.spec.description, None);
    assert_eq!(a.spec.messages[0].content, MessageContent::Null);
    assert_eq!(
        errors(&set),
        [
            "c1.prompt.yaml:1:7: name `Same` is also used by `c2.prompt.yaml`",
            "c2.prompt.yaml:1:7: name `Same` is also used by `c1.prompt.yaml`",
        ]
    );
}

/// Respan ids are hex and names free text: unquoted, `0123`, `2024` or `1e3` are the
/// text as written, in the commit and the working tree alike; numbers stay numbers.
#[test]
fn unquoted_ids_names_and_models_are_the_text_as_written() {
    let repo = TestRepo::new();
    repo.write(
        "a.prompt.yaml",
        "prompt_id: 37159387308e4920\nname: 2024\ndescription: 1e3\nmodel: 0123\ntemperature: 1e0\nmessages:\n  - role: user\n    content: 007\n",
    );
    repo.write(
        "b.prompt.yaml",
        "prompt_id: 0123\nname: true\nmodel: m\nmessages:\n  - role: user\n",
    );
    repo.commit("add");
    for rev in [head(), SourceRev::Worktree] {
        let set = load(&repo, rev);
        assert_eq!(errors(&set), Vec::<String>::new());
        let a = &set.prompts[0];
        assert_eq!(a.key, PromptKey::Id("37159387308e4920".into()));
        assert_eq!(a.name.as_deref(), Some("2024"));
        assert_eq!(a.description.as_deref(), Some("1e3"));
        assert_eq!(a.spec.model.as_deref(), Some("0123"));
        assert_eq!(a.spec.temperature, Some(1.0));
        assert_eq!(
            a.spec.messages[0].content,
            MessageContent::Text("007".into())
        );
        let b = &set.prompts[1];
        assert_eq!(b.key, PromptKey::Id("0123".into()));
        assert_eq!(b.name.as_deref(), Some("true"));
    }
    crate::support::promptsync()
        .current_dir(repo.path())
        .arg("validate")
        .assert()
        .success()
        .stdout("checked 2 prompt files: 2 valid, 0 invalid; 0 errors, 0 warnings\n");
}

#[test]
fn tags_annotated_lightweight_and_odd_ones() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A", "one"));
    let first = repo.commit_at("one", BASE_TIME + 100);
    repo.tag("v1.0.0");
    repo.write("a.prompt.yaml", &prompt("A", "two"));
    let second = repo.commit_at("two", BASE_TIME + 200);
    repo.tag_annotated("v2.0.0", "second", BASE_TIME + 300);
    // A newer annotated tag on the older commit: a rollback.
    repo.tag_annotated_at("v1.0.1", &first, "rollback", BASE_TIME + 400);
    let tree = repo.git(["rev-parse", "HEAD^{tree}"]);
    repo.tag_at("tree-tag", &tree);
    repo.git([
        "tag",
        "--annotate",
        "nested",
        "v2.0.0",
        "-m",
        "tag of a tag",
    ]);

    let git = GitRepo::open(repo.path()).unwrap();
    let scan = git.tags().unwrap();
    let tags: Vec<(&str, &str, i64, bool)> = scan
        .tags
        .iter()
        .map(|t| (t.name.as_str(), t.commit.as_str(), t.date, t.annotated))
        .collect();
    assert_eq!(
        tags,
        [
            ("nested", second.as_str(), BASE_TIME + 200, true),
            ("v1.0.0", first.as_str(), BASE_TIME + 100, false),
            ("v1.0.1", first.as_str(), BASE_TIME + 400, true),
            ("v2.0.0", second.as_str(), BASE_TIME + 300, true),
        ]
    );
    assert_eq!(scan.skipped.len(), 1);
    assert_eq!(scan.skipped[0].name, "tree-tag");
    assert!(
        scan.skipped[0].reason.contains("tree"),
        "{:?}",
        scan.skipped
    );

    let release = select_release(&scan.tags, &["v*".to_owned()])
        .unwrap()
        .unwrap();
    assert_eq!(
        (release.tag.as_str(), release.commit.as_str()),
        ("v1.0.1", first.as_str())
    );
}

#[test]
fn equal_tag_dates_fall_back_to_version_order() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A", "one"));
    let one = repo.commit_at("one", BASE_TIME);
    repo.write("a.prompt.yaml", &prompt("A", "two"));
    let two = repo.commit_at("two", BASE_TIME);
    repo.tag_at("v1.10.0", &one);
    repo.tag_at("v1.9.0", &two);
    let scan = GitRepo::open(repo.path()).unwrap().tags().unwrap();
    let release = select_release(&scan.tags, &["v*".to_owned()])
        .unwrap()
        .unwrap();
    assert_eq!(release.tag, "v1.10.0");
    assert_eq!(release.commit, one);
    assert!(!release.annotated);
}

#[test]
fn many_files_read_on_every_core_give_what_a_few_read_in_turn_give() {
    // Odd files among many (read and parsed on threads, a commit's blobs through a
    // repository handle per thread) and alone (read in turn): the same findings.
    let odd = |repo: &TestRepo| {
        repo.write("big.prompt.yaml", &"#".repeat(1024 * 1024 + 1));
        repo.write("real/linked.yaml", &prompt("Linked", "through a link"));
        repo.symlink("linked.prompt.yaml", "real/linked.yaml");
        repo.symlink("dangling.prompt.yaml", "nowhere.yaml");
        repo.symlink("dir.prompt.yaml", "real");
        repo.write("broken.prompt.yaml", "name: [unclosed\n");
    };
    let few = TestRepo::new();
    odd(&few);
    few.commit("odd files");
    let many = TestRepo::new();
    odd(&many);
    for i in 0..100 {
        many.write(
            &format!("many/p{i:03}.prompt.yaml"),
            &prompt(&format!("P{i}"), "x"),
        );
    }
    many.commit("odd files among many");
    for rev in [head(), SourceRev::Worktree] {
        let alone = load(&few, rev.clone());
        let among = load(&many, rev.clone());
        assert_eq!(among.files.len(), alone.files.len() + 100, "{rev:?}");
        assert_eq!(errors(&among), errors(&alone), "{rev:?}");
        for (file, error) in [
            ("big", "the file is 1048577 bytes"),
            ("broken", "invalid YAML"),
            ("dangling", ""),
        ] {
            let at = format!("{file}.prompt.yaml:1:");
            assert!(
                errors(&among)
                    .iter()
                    .any(|e| e.starts_with(&at) && e.contains(error)),
                "{rev:?}: {:?}",
                errors(&among)
            );
        }
        assert_eq!(
            text_of(&among, "linked.prompt.yaml"),
            MessageContent::Text("through a link".into())
        );
        assert_eq!(
            text_of(&among, "many/p042.prompt.yaml"),
            MessageContent::Text("x".into())
        );
    }
}

#[test]
fn files_over_one_mebibyte_are_refused_in_commits_and_on_disk() {
    let repo = TestRepo::new();
    let big = "#".repeat(1024 * 1024 + 1);
    repo.write("big.prompt.yaml", &big);
    repo.write(
        "a.prompt.yaml",
        "name: A\nmodel: m\nmessages:\n  - role: system\n    content_file: big.md\n",
    );
    repo.write("big.md", &big);
    repo.commit("add");
    for rev in [head(), SourceRev::Worktree] {
        let set = load(&repo, rev);
        assert_eq!(
            errors(&set),
            [
                "a.prompt.yaml:5:5: content file `big.md` is 1048577 bytes, over the limit of 1 MiB",
                "big.prompt.yaml:1:1: the file is 1048577 bytes, over the limit of 1 MiB (1048576 bytes)",
            ]
        );
    }
}
