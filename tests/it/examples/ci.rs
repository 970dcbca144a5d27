//! examples/ci/: the steps and jobs that call promptsync are run as the runners run
//! them (bash, the file's variables, the runner's own variables such as
//! GITHUB_STEP_SUMMARY), with the binary under test on PATH, against a test repository
//! and the emulator, through a pull request (or merge request), a push to the default
//! branch and a release tag. `.ci/run` checks both files against their schemas.

use serde_json::Value;

use super::{BinDir, run_script, shown, text, yaml};
use crate::support::emulator::TestEmulator;
use crate::support::git::TestRepo;
use crate::support::recorder::{Recorder, TOKEN};
use crate::support::scenario::{KEY, prompt};

/// The remote prompt `A`'s newest and live version numbers.
fn versions_of_a(emu: &TestEmulator) -> (Option<u64>, Option<u64>) {
    let Some(a) = emu.prompts().into_iter().find(|p| p["name"] == "A") else {
        return (None, None);
    };
    let id = a["id"].as_str().unwrap();
    let prompt = emu.get(&format!("/api/prompts/{id}/"));
    (
        prompt["current_version"]["version"].as_u64(),
        prompt["live_version"]["version"].as_u64(),
    )
}

/// Whether a script calls promptsync (installing it does not count).
fn calls_promptsync(script: &str) -> bool {
    script.lines().any(|line| {
        let line = line.trim_start();
        !line.contains("cargo install")
            && (line.starts_with("promptsync ") || line.contains(" promptsync "))
    })
}

/// A `KEY: value` mapping as pairs; `${{ secrets.RESPAN_API_KEY }}` becomes the test
/// key, `${{ github.token }}` the recorder's token, and any other expression fails the
/// test (it could not be run here).
fn github_env(mapping: &Value) -> Vec<(String, String)> {
    mapping
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let value = value.as_str().expect("a string").to_owned();
            let value = match value.as_str() {
                "${{ secrets.RESPAN_API_KEY }}" => KEY.to_owned(),
                "${{ github.token }}" => TOKEN.to_owned(),
                v if v.contains("${{") => {
                    panic!("{name}: an expression this test cannot evaluate: {v}")
                }
                _ => value,
            };
            (name.clone(), value)
        })
        .collect()
}

/// A step's script, with its name and environment.
struct Step {
    name: String,
    script: String,
    env: Vec<(String, String)>,
}

struct GitHubRun {
    repo: TestRepo,
    emu: TestEmulator,
    bin: BinDir,
    runner: tempfile::TempDir,
    workflow: Value,
    /// Runs so far: each gets its own output and summary files, as each job does.
    runs: std::cell::Cell<usize>,
    /// GitHub's API, for the plan comment.
    github: Recorder,
}

impl GitHubRun {
    /// The promptsync steps whose `if:` mentions `event` (`None`: the steps without
    /// an `if:`), with their environment.
    fn steps(&self, event: Option<&str>) -> Vec<Step> {
        let job = &self.workflow["jobs"]["promptsync"];
        job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|step| step["run"].as_str().is_some_and(calls_promptsync))
            .filter(|step| match (step["if"].as_str(), event) {
                (None, None) => true,
                (Some(condition), Some(event)) => condition.contains(event),
                _ => false,
            })
            .map(|step| {
                let mut env = github_env(&self.workflow["env"]);
                env.extend(github_env(&job["env"]));
                env.extend(github_env(&step["env"]));
                Step {
                    name: step["name"].as_str().unwrap_or_default().to_owned(),
                    script: step["run"].as_str().unwrap().to_owned(),
                    env,
                }
            })
            .collect()
    }

    /// Run the validate step, then the steps of `event`; the step outputs and the job
    /// summary they wrote.
    fn on(&self, event: &str) -> (String, String) {
        self.runs.set(self.runs.get() + 1);
        let name = format!("{}-{}", self.runs.get(), event.replace('/', "-"));
        let outputs = self.runner.path().join(format!("{name}.outputs"));
        let summary = self.runner.path().join(format!("{name}.summary.md"));
        let mut steps = self.steps(None);
        steps.extend(self.steps(Some(event)));
        assert!(steps.len() >= 2, "validate and a step for {event}");
        for Step {
            name,
            script,
            mut env,
        } in steps
        {
            env.extend([
                ("GITHUB_ACTIONS".to_owned(), "true".to_owned()),
                ("GITHUB_WORKSPACE".to_owned(), text(self.repo.path())),
                ("GITHUB_OUTPUT".to_owned(), text(&outputs)),
                ("GITHUB_STEP_SUMMARY".to_owned(), text(&summary)),
                ("RESPAN_BASE_URL".to_owned(), self.emu.base_url()),
                ("HOME".to_owned(), text(self.runner.path())),
                ("GITHUB_API_URL".to_owned(), self.github.url()),
                ("GITHUB_REPOSITORY".to_owned(), "acme/prompts".to_owned()),
                ("GITHUB_EVENT_PATH".to_owned(), text(&self.event(event))),
            ]);
            let output = run_script(&script, self.repo.path(), &self.bin, &env);
            assert!(
                output.status.success(),
                "step {name:?} on {event}:\n{}",
                shown(&output)
            );
        }
        let read = |path| std::fs::read_to_string(path).unwrap_or_default();
        (read(&outputs), read(&summary))
    }

    /// The event file GitHub would write for `event` (pull request 5, or a push).
    fn event(&self, event: &str) -> std::path::PathBuf {
        let path = self.runner.path().join("event.json");
        let body = if event == "pull_request" {
            r#"{"action": "synchronize", "number": 5, "pull_request": {"number": 5}}"#
        } else {
            r#"{"ref": "refs/heads/main"}"#
        };
        std::fs::write(&path, body).unwrap();
        path
    }
}

#[test]
fn the_github_workflow_plans_pull_requests_syncs_main_and_deploys_tags() {
    let workflow = yaml("examples/ci/github-actions.yml");
    assert_eq!(
        workflow["defaults"]["run"]["shell"], "bash",
        "as run_script runs it"
    );
    let checkout = &workflow["jobs"]["promptsync"]["steps"][0];
    assert_eq!(checkout["with"]["fetch-depth"], 0, "tags and their dates");
    let run = GitHubRun {
        repo: TestRepo::new(),
        emu: TestEmulator::start(),
        bin: BinDir::new(),
        runner: tempfile::tempdir().unwrap(),
        workflow,
        runs: std::cell::Cell::new(0),
        github: Recorder::start(),
    };
    run.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "first"));
    let first = run.repo.commit("Add A");

    let (outputs, summary) = run.on("pull_request");
    assert!(outputs.contains("changes=true"), "{outputs}");
    assert!(
        summary.contains("### promptsync plan\n\nPlan for commit ")
            && summary.contains(": 1 created"),
        "{summary}"
    );
    assert!(
        summary.contains("<details><summary><code>prompts/a.prompt.yaml</code>"),
        "{summary}"
    );
    assert_eq!(
        versions_of_a(&run.emu),
        (None, None),
        "a plan sends nothing"
    );
    let comments = run.github.comments("github/acme/prompts/5");
    assert_eq!(
        comments.len(),
        1,
        "the plan on the pull request: {comments:?}"
    );
    assert!(
        comments[0].1.contains("promptsync:plan target=default")
            && comments[0].1.contains(": 1 created"),
        "{}",
        comments[0].1
    );

    let (_, summary) = run.on("refs/heads/main");
    assert!(
        summary.contains("### promptsync sync\n\nSynced commit ")
            && summary.contains(": 1 created"),
        "{summary}"
    );
    assert_eq!(
        versions_of_a(&run.emu),
        (Some(1), None),
        "a draft, not live"
    );

    let (outputs, _) = run.on("pull_request");
    assert!(outputs.contains("changes=false"), "{outputs}");
    let comments = run.github.comments("github/acme/prompts/5");
    assert_eq!(comments.len(), 1, "edited in place, not a second comment");
    assert!(comments[0].1.contains("no changes"), "{}", comments[0].1);

    run.repo
        .tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    let (_, summary) = run.on("refs/tags/");
    assert_eq!(
        versions_of_a(&run.emu),
        (Some(1), Some(1)),
        "the tag's version is live"
    );
    assert!(
        summary.contains("### promptsync sync --deploy-only\n\nDeployed release v1.0.0")
            && summary.contains("no draft written"),
        "{summary}"
    );

    // Main moves on, then a tag lands on the older commit (a rollback; or main moved
    // before the tag's pipeline ran), whose pipeline runs on the tag's checkout: the
    // release goes live, and neither it nor main's next sync writes a version
    // (`--sync` there wrote the release content as the newest version, then main
    // wrote its own again: A, B, A, B).
    run.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    run.repo.commit("Change A");
    run.on("refs/heads/main");
    assert_eq!(versions_of_a(&run.emu), (Some(2), Some(1)));
    run.repo.tag_annotated_at(
        "v1.0.1",
        &first,
        "Roll back",
        crate::support::git::BASE_TIME + 7200,
    );
    run.repo.detach("v1.0.1");
    run.on("refs/tags/");
    run.repo.git(["checkout", "--quiet", "main"]);
    run.on("refs/heads/main");
    assert_eq!(
        versions_of_a(&run.emu),
        (Some(2), Some(1)),
        "history A, B; the release live, main's content newest"
    );
}

/// One writer at a time (README, "One writer at a time"): every GitHub job that
/// writes (a push to main, a tag) shares one concurrency group, never cancelled in
/// the middle; in GitLab the sync and deploy jobs share one resource group.
#[test]
fn the_ci_examples_run_one_writer_at_a_time() {
    let workflow = yaml("examples/ci/github-actions.yml");
    let concurrency = &workflow["jobs"]["promptsync"]["concurrency"];
    assert_eq!(
        concurrency["group"],
        "promptsync-${{ github.event_name == 'pull_request' && github.ref || 'respan' }}",
        "pushes and tags share the group `promptsync-respan`"
    );
    assert_eq!(concurrency["cancel-in-progress"], false);
    let pipeline = yaml("examples/ci/gitlab-ci.yml");
    let writers: Vec<(&String, &Value)> = pipeline
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, job)| {
            job["script"].as_array().is_some_and(|lines| {
                lines
                    .iter()
                    .any(|l| l.as_str().is_some_and(|l| l.contains("--sync")))
            })
        })
        .collect();
    assert_eq!(writers.len(), 2, "sync and deploy");
    for (name, job) in writers {
        assert_eq!(job["resource_group"], "respan", "{name}");
    }
}

#[test]
fn the_github_plan_step_passes_without_a_key_for_forks() {
    let run = GitHubRun {
        repo: TestRepo::new(),
        emu: TestEmulator::start(),
        bin: BinDir::new(),
        runner: tempfile::tempdir().unwrap(),
        workflow: yaml("examples/ci/github-actions.yml"),
        runs: std::cell::Cell::new(0),
        github: Recorder::start(),
    };
    run.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "first"));
    run.repo.commit("Add A");
    let step = run.steps(Some("pull_request")).remove(0);
    let env: Vec<(String, String)> = step
        .env
        .into_iter()
        .filter(|(k, _)| k != "RESPAN_API_KEY")
        .collect();
    let output = run_script(&step.script, run.repo.path(), &run.bin, &env);
    assert!(
        output.status.success(),
        "{}:\n{}",
        step.name,
        shown(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("::notice title=promptsync plan::skipped"),
        "{}",
        shown(&output)
    );

    // A key but no token for the comment: the plan runs, the comment is skipped.
    let step = run.steps(Some("pull_request")).remove(0);
    let mut env: Vec<(String, String)> = step
        .env
        .into_iter()
        .filter(|(k, _)| k != "GITHUB_TOKEN")
        .collect();
    env.extend([
        ("RESPAN_BASE_URL".to_owned(), run.emu.base_url()),
        ("GITHUB_ACTIONS".to_owned(), "true".to_owned()),
        (
            "GITHUB_OUTPUT".to_owned(),
            text(&run.runner.path().join("out")),
        ),
        (
            "GITHUB_EVENT_PATH".to_owned(),
            text(&run.event("pull_request")),
        ),
        ("GITHUB_REPOSITORY".to_owned(), "acme/prompts".to_owned()),
        ("GITHUB_API_URL".to_owned(), run.github.url()),
    ]);
    let output = run_script(&step.script, run.repo.path(), &run.bin, &env);
    assert!(output.status.success(), "{}", shown(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not commenting"),
        "{}",
        shown(&output)
    );
    assert!(run.github.requests().is_empty());
}

/// The GitLab jobs whose `rules:` mention `event`, each as its script and the exit
/// codes it may end with.
fn gitlab_jobs(pipeline: &Value, event: &str) -> Vec<(String, String, Vec<i32>)> {
    pipeline
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, job)| job["script"].is_array())
        .filter(|(_, job)| {
            job["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|rule| rule["if"].as_str().is_some_and(|c| c.contains(event)))
        })
        .map(|(name, job)| {
            let script: Vec<&str> = job["script"]
                .as_array()
                .unwrap()
                .iter()
                .map(|line| line.as_str().unwrap())
                .collect();
            let mut codes = vec![0];
            codes.extend(
                job["allow_failure"]["exit_codes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| i32::try_from(c.as_i64().unwrap()).unwrap()),
            );
            (name.clone(), script.join("\n"), codes)
        })
        .collect()
}

#[test]
fn the_gitlab_pipeline_plans_merge_requests_syncs_the_default_branch_and_deploys_tags() {
    let pipeline = yaml("examples/ci/gitlab-ci.yml");
    let before: Vec<&str> = pipeline["default"]["before_script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        before
            .iter()
            .all(|l| l.starts_with("cargo install ") || l.starts_with("export PATH=")),
        "before_script only installs promptsync, which this test replaces: {before:?}"
    );
    let mut variables: Vec<(String, String)> = pipeline["variables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let repo = TestRepo::new();
    let emu = TestEmulator::start();
    let bin = BinDir::new();
    let home = tempfile::tempdir().unwrap();
    let gitlab = Recorder::start();
    let gitlab_api = format!("{}/api/v4", gitlab.url());
    variables.extend([
        // A masked CI/CD variable, set in the project's settings.
        ("RESPAN_API_KEY".to_owned(), KEY.to_owned()),
        ("RESPAN_BASE_URL".to_owned(), emu.base_url()),
        ("CI".to_owned(), "true".to_owned()),
        ("CI_PROJECT_DIR".to_owned(), text(repo.path())),
        ("HOME".to_owned(), text(home.path())),
    ]);
    let run_jobs = |event: &str, extra: &[(&str, &str)]| -> Vec<i32> {
        let jobs = gitlab_jobs(&pipeline, event);
        assert!(!jobs.is_empty(), "a job for {event}");
        let mut env = variables.clone();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        jobs.into_iter()
            .map(|(name, script, codes)| {
                let output = run_script(&script, repo.path(), &bin, &env);
                let code = output.status.code().unwrap_or(-1);
                assert!(
                    codes.contains(&code),
                    "job {name} on {event}:\n{}",
                    shown(&output)
                );
                code
            })
            .collect()
    };
    repo.write("prompts/a.prompt.yaml", &prompt("A", "first"));
    let first = repo.commit("Add A");

    let codes = run_jobs(
        "merge_request_event",
        &[
            ("CI_PIPELINE_SOURCE", "merge_request_event"),
            ("GITLAB_CI", "true"),
            ("CI_MERGE_REQUEST_IID", "4"),
            ("CI_PROJECT_ID", "42"),
            ("CI_API_V4_URL", &gitlab_api),
            // A masked CI/CD variable: a project access token for the note.
            ("GITLAB_TOKEN", TOKEN),
        ],
    );
    assert_eq!(
        codes,
        [0, 2],
        "validate: clean; plan: changes pending (a warning)"
    );
    assert_eq!(versions_of_a(&emu), (None, None));
    let notes = gitlab.comments("gitlab/42/4");
    assert_eq!(notes.len(), 1, "the plan on the merge request: {notes:?}");
    assert!(notes[0].1.contains(": 1 created"), "{}", notes[0].1);

    run_jobs(
        "CI_DEFAULT_BRANCH",
        &[("CI_COMMIT_BRANCH", "main"), ("CI_DEFAULT_BRANCH", "main")],
    );
    assert_eq!(versions_of_a(&emu), (Some(1), None));

    repo.tag_annotated("v1.0.0", "Release", crate::support::git::BASE_TIME + 3600);
    run_jobs("CI_COMMIT_TAG", &[("CI_COMMIT_TAG", "v1.0.0")]);
    assert_eq!(versions_of_a(&emu), (Some(1), Some(1)));

    // A tag on an older commit, deployed from its checkout after the default branch
    // moved on: no version is written, then or by the next sync (never A, B, A, B).
    repo.write("prompts/a.prompt.yaml", &prompt("A", "second"));
    repo.commit("Change A");
    let main = [("CI_COMMIT_BRANCH", "main"), ("CI_DEFAULT_BRANCH", "main")];
    run_jobs("CI_DEFAULT_BRANCH", &main);
    assert_eq!(versions_of_a(&emu), (Some(2), Some(1)));
    repo.tag_annotated_at(
        "v1.0.1",
        &first,
        "Roll back",
        crate::support::git::BASE_TIME + 7200,
    );
    repo.detach("v1.0.1");
    run_jobs("CI_COMMIT_TAG", &[("CI_COMMIT_TAG", "v1.0.1")]);
    repo.git(["checkout", "--quiet", "main"]);
    run_jobs("CI_DEFAULT_BRANCH", &main);
    assert_eq!(versions_of_a(&emu), (Some(2), Some(1)), "history A, B");
}
