//! The deploy gate (`deploy.gate_command`): before a release is made live, the release
//! commit's files are exported to a temporary directory and the command runs there
//! (no shell; its process group stopped at `deploy.gate_timeout`) with the facts in
//! environment variables. A non-zero exit holds the deploy unless `deploy.gate =
//! "advisory"`, which only reports. Reconcile calls [`check`] with the release's facts;
//! the gate knows nothing about the API.

use std::path::{Component, Path};

use serde::Serialize;

use super::process;
use crate::config::{GateMode, GateSettings};
use crate::gitrepo::{GitRepo, TreeEntry};

/// The most files exported for a gate.
const MAX_FILES: usize = 100_000;
/// The most bytes exported for a gate.
const MAX_BYTES: u64 = 512 * 1024 * 1024;

/// What the gate is told about the release.
#[derive(Debug, Clone)]
pub(crate) struct ReleaseFacts {
    pub target: String,
    pub tag: String,
    pub commit: String,
    /// The commit being synced as drafts.
    pub source_commit: Option<String>,
    /// The prompt files whose versions would go live, relative to the export.
    pub prompt_files: Vec<String>,
}

/// How the gate came out, for the report and the commit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateOutcome {
    /// The command line, as configured.
    pub command: String,
    /// `enforce` or `advisory`.
    pub mode: &'static str,
    pub passed: bool,
    /// The deploy was held (a failed gate in `enforce` mode).
    pub held: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    /// Why it failed (`gate exit 1`, `gate timed out after 10m (stopped)`), or `passed`.
    pub reason: String,
    /// The end of the command's output.
    pub output: String,
}

/// Export the release and run the gate.
pub(crate) async fn check(repo: &Path, gate: &GateSettings, facts: &ReleaseFacts) -> GateOutcome {
    let span = tracing::info_span!("gate", tag = %facts.tag);
    tracing::Instrument::instrument(run_gate(repo, gate, facts), span).await
}

async fn run_gate(repo: &Path, gate: &GateSettings, facts: &ReleaseFacts) -> GateOutcome {
    let mode = match gate.mode {
        GateMode::Enforce => "enforce",
        GateMode::Advisory => "advisory",
    };
    let command = shell_words::join(&gate.command);
    let failed = |reason: String| GateOutcome {
        command: command.clone(),
        mode,
        passed: false,
        held: gate.mode == GateMode::Enforce,
        exit_code: None,
        timed_out: false,
        duration_ms: 0,
        reason,
        output: String::new(),
    };
    let repo = repo.to_owned();
    let commit = facts.commit.clone();
    let exported = tokio::task::spawn_blocking(move || export(&repo, &commit)).await;
    let dir = match exported {
        Ok(Ok(dir)) => dir,
        Ok(Err(err)) => return report(failed(format!("cannot export the release: {err}"))),
        Err(err) => return report(failed(format!("cannot export the release: {err}"))),
    };
    let env = vec![
        (
            "PROMPTSYNC_GATE_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("PROMPTSYNC_TARGET".to_owned(), facts.target.clone()),
        ("PROMPTSYNC_RELEASE_TAG".to_owned(), facts.tag.clone()),
        ("PROMPTSYNC_RELEASE_COMMIT".to_owned(), facts.commit.clone()),
        (
            "PROMPTSYNC_SOURCE_COMMIT".to_owned(),
            facts.source_commit.clone().unwrap_or_default(),
        ),
        (
            "PROMPTSYNC_PROMPT_FILES".to_owned(),
            facts.prompt_files.join("\n"),
        ),
    ];
    tracing::info!(command = %command, "running the deploy gate");
    let ran = process::run(&gate.command, Some(dir.path()), &env, None, gate.timeout).await;
    let outcome = match ran {
        Err(err) => failed(err),
        Ok(done) => GateOutcome {
            command,
            mode,
            passed: done.success(),
            held: !done.success() && gate.mode == GateMode::Enforce,
            exit_code: done.code,
            timed_out: done.timed_out,
            duration_ms: u64::try_from(done.duration.as_millis()).unwrap_or(u64::MAX),
            reason: if done.success() {
                "passed".to_owned()
            } else {
                format!("gate {}", done.describe(gate.timeout))
            },
            output: done.output,
        },
    };
    report(outcome)
}

fn report(outcome: GateOutcome) -> GateOutcome {
    if outcome.passed {
        tracing::info!(duration_ms = outcome.duration_ms, "the deploy gate passed");
    } else if outcome.held {
        tracing::warn!(reason = %outcome.reason, "the deploy gate failed: the deploy is held (drafts still sync)");
    } else {
        tracing::warn!(reason = %outcome.reason, "the deploy gate failed (advisory: deploying anyway)");
    }
    outcome
}

/// The files of `commit` in a new temporary directory: regular files, and links that
/// stay inside it; nothing over [`MAX_FILES`] or [`MAX_BYTES`].
fn export(repo: &Path, commit: &str) -> Result<tempfile::TempDir, String> {
    let repo = GitRepo::open(repo).map_err(|e| e.to_string())?;
    let info = repo.resolve_commit(commit).map_err(|e| e.to_string())?;
    let tree = repo.tree(&info).map_err(|e| e.to_string())?;
    let files = tree.files().map_err(|e| e.to_string())?;
    if files.len() > MAX_FILES {
        return Err(format!(
            "{} files, over the limit of {MAX_FILES}",
            files.len()
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("promptsync-gate-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let mut total = 0u64;
    for file in files {
        let rel = Path::new(&file.path);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            continue;
        }
        let dest = dir.path().join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot write {}: {e}", file.path))?;
        }
        if file.symlink {
            if let Ok(Some(TreeEntry::Symlink { target })) = tree.entry(&file.path) {
                let inside = rel
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(&target)
                    .components()
                    .try_fold(0i32, |depth, c| match c {
                        Component::Normal(_) => Some(depth + 1),
                        Component::ParentDir if depth > 0 => Some(depth - 1),
                        Component::CurDir => Some(depth),
                        _ => None,
                    })
                    .is_some();
                if inside {
                    let _ = std::os::unix::fs::symlink(&target, &dest);
                }
            }
            continue;
        }
        // Read no more than what is left of the bound: a huge blob is told by its size.
        let read = tree.read_at_most(&file.path, MAX_BYTES - total);
        let Ok(bytes) = read.map_err(|e| e.to_string())? else {
            return Err(format!(
                "the release is over {} MiB",
                MAX_BYTES / (1024 * 1024)
            ));
        };
        total += bytes.len() as u64;
        std::fs::write(&dest, bytes).map_err(|e| format!("cannot write {}: {e}", file.path))?;
    }
    Ok(dir)
}
