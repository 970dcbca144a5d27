//! The daemon's load cache: a commit is read with the files of earlier loads whose
//! blobs did not change, and what comes out is exactly what a load without the cache
//! gives, through edits of prompt files and content files, a content file's link
//! pointed elsewhere, a file made invalid, a conflict between a kept file and a new
//! one, a rename and a deletion. Real repositories made with the git CLI.

use promptsync::config::PromptSettings;
use promptsync::desired::{self, DesiredSet, LoadCache, SourceRev};
use promptsync::gitrepo::GitRepo;

use crate::gitsource::errors;
use crate::support::git::TestRepo;

fn prompt(name: &str, text: &str) -> String {
    format!("name: {name}\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: {text:?}\n")
}

fn with_content(name: &str, content_file: &str) -> String {
    format!(
        "name: {name}\nmodel: gpt-4o\nmessages:\n  - role: system\n    content_file: {content_file}\n"
    )
}

/// Load HEAD with and without the cache; they must agree. Returns how many files came
/// from the cache.
fn load_both(repo: &TestRepo, cache: &mut LoadCache) -> (DesiredSet, usize) {
    let git = GitRepo::open(repo.path()).unwrap();
    let head = SourceRev::Commit("HEAD".into());
    let settings = PromptSettings::default();
    let cached = desired::load_with(&git, &head, &settings, Some(cache)).unwrap();
    let reused = cache.sweep();
    let plain = desired::load(&git, &head, &settings).unwrap();
    assert_eq!(cached.prompts, plain.prompts, "prompts");
    assert_eq!(cached.diagnostics, plain.diagnostics, "diagnostics");
    assert_eq!(cached.files, plain.files, "files");
    (cached, reused)
}

fn system_text(set: &DesiredSet, path: &str) -> String {
    let prompt = set.prompts.iter().find(|p| p.path == path).unwrap();
    serde_json::to_value(&prompt.spec.messages[0].content)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_cached_load_reads_only_what_changed_and_equals_a_full_load() {
    let repo = TestRepo::new();
    for i in 0..5 {
        repo.write(
            &format!("prompts/p{i}.prompt.yaml"),
            &prompt(&format!("P{i}"), "hi"),
        );
    }
    repo.write(
        "prompts/c.prompt.yaml",
        &with_content("C", "../text/link.md"),
    );
    repo.write("text/a.md", "from a\n");
    repo.write("text/b.md", "from b\n");
    repo.symlink("text/link.md", "a.md");
    repo.commit("Prompts");
    let mut cache = LoadCache::default();

    let (set, reused) = load_both(&repo, &mut cache);
    assert_eq!((reused, set.prompts.len(), cache.len()), (0, 6, 6));

    // Nothing changed: every file comes from the cache.
    repo.git(["commit", "--allow-empty", "--quiet", "-m", "Nothing"]);
    assert_eq!(load_both(&repo, &mut cache).1, 6);

    // One prompt edited: the others are kept.
    repo.write("prompts/p1.prompt.yaml", &prompt("P1", "hello"));
    repo.commit("Edit p1");
    assert_eq!(load_both(&repo, &mut cache).1, 5);

    // The content file edited: its prompt is read again.
    repo.write("text/a.md", "from a, edited\n");
    repo.commit("Edit a.md");
    let (set, reused) = load_both(&repo, &mut cache);
    assert_eq!(reused, 5);
    assert_eq!(
        system_text(&set, "prompts/c.prompt.yaml"),
        "from a, edited\n"
    );

    // The link the content file goes through now leads elsewhere.
    repo.remove("text/link.md");
    repo.symlink("text/link.md", "b.md");
    repo.commit("Point the link at b.md");
    let (set, reused) = load_both(&repo, &mut cache);
    assert_eq!(reused, 5);
    assert_eq!(system_text(&set, "prompts/c.prompt.yaml"), "from b\n");

    // A kept file made invalid is reported, and not kept.
    repo.write("prompts/p2.prompt.yaml", "name: P2\nmodel: [\n");
    repo.commit("Break p2");
    let (set, _) = load_both(&repo, &mut cache);
    assert_eq!(errors(&set).len(), 1, "{:?}", errors(&set));
    assert_eq!(cache.len(), 5);

    // A new file takes the name of a kept one: both files carry the conflict.
    repo.write("prompts/twin.prompt.yaml", &prompt("P3", "twin"));
    repo.commit("A twin of p3");
    let (set, _) = load_both(&repo, &mut cache);
    let errors = errors(&set);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("prompts/p3.prompt.yaml:"))
            && errors
                .iter()
                .any(|e| e.starts_with("prompts/twin.prompt.yaml:")),
        "{errors:?}"
    );
    assert!(
        !set.prompts
            .iter()
            .any(|p| p.path == "prompts/p3.prompt.yaml")
    );

    // The twin goes, a file is renamed, another deleted: the cache follows.
    repo.remove("prompts/twin.prompt.yaml");
    repo.git([
        "mv",
        "prompts/p4.prompt.yaml",
        "prompts/p4-renamed.prompt.yaml",
    ]);
    repo.remove("prompts/p0.prompt.yaml");
    repo.commit("Rename p4, delete p0");
    let (set, _) = load_both(&repo, &mut cache);
    let paths: Vec<&str> = set.prompts.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "prompts/c.prompt.yaml",
            "prompts/p1.prompt.yaml",
            "prompts/p3.prompt.yaml",
            "prompts/p4-renamed.prompt.yaml",
        ]
    );
    assert_eq!(cache.len(), 4);
}

#[test]
fn the_working_tree_is_never_cached() {
    let repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A", "hi"));
    repo.commit("A");
    let git = GitRepo::open(repo.path()).unwrap();
    let mut cache = LoadCache::default();
    let settings = PromptSettings::default();
    desired::load_with(&git, &SourceRev::Worktree, &settings, Some(&mut cache)).unwrap();
    assert!(cache.is_empty());
    assert_eq!(cache.sweep(), 0);
}
