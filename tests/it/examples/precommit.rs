//! .pre-commit-hooks.yaml: each hook's entry, run as pre-commit runs it (no file names
//! passed, in the repository's root), passes a clean repository and stops a commit
//! with an invalid prompt file. `.ci/run` has pre-commit itself check the manifest and
//! run the `system` hook.

use super::{BinDir, run_script, shipped, shown, yaml};
use crate::support::git::TestRepo;
use crate::support::scenario::prompt;

#[test]
fn every_hook_runs_promptsync_validate_on_the_whole_repository() {
    let hooks = yaml(".pre-commit-hooks.yaml");
    let hooks = hooks.as_array().expect("a list of hooks");
    let languages: Vec<&str> = hooks
        .iter()
        .map(|h| h["language"].as_str().unwrap())
        .collect();
    assert_eq!(languages, ["rust", "system"]);
    assert!(
        shipped("Cargo.toml").contains("[[bin]]\nname = \"promptsync\""),
        "the `rust` hook installs the root package's binary"
    );
    let bin = BinDir::new();
    for hook in hooks {
        let id = hook["id"].as_str().unwrap();
        assert!(id.starts_with("promptsync-"), "{id}");
        assert!(
            hook["name"].is_string() && hook["description"].is_string(),
            "{id}"
        );
        assert_eq!(
            hook["pass_filenames"], false,
            "{id}: content files and conflicts need every file"
        );
        let entry = hook["entry"].as_str().unwrap();
        assert!(entry.starts_with("promptsync "), "{id}: {entry}");

        let repo = TestRepo::new();
        repo.write("prompts/a.prompt.yaml", &prompt("A", "fine"));
        repo.commit("Add A");
        let output = run_script(entry, repo.path(), &bin, &[]);
        assert!(
            output.status.success(),
            "{id} on a clean repository:\n{}",
            shown(&output)
        );

        repo.write(
            "prompts/b.prompt.yaml",
            "name: B\nmodel: gpt-4o\nmessages: []\n",
        );
        repo.git(["add", "prompts/b.prompt.yaml"]);
        let output = run_script(entry, repo.path(), &bin, &[]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{id} on a broken file:\n{}",
            shown(&output)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("prompts/b.prompt.yaml:3:"),
            "{}",
            shown(&output)
        );
    }
}
