//! The report of `promptsync status`: what is where. One row per prompt file of the
//! source (the remote prompt it names, its newest and live versions and the commits
//! they came from, whether the newest matches the file and the live one the release
//! tag, drift, `sync: false`), then the remote prompts no file names. Built from a
//! dry-run pass; pure. Also the history of one prompt, read like git history.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::types::Version;
use crate::desired::PromptKey;
use crate::plan::{DeployStep, SkipReason, SyncStep, Target};
use crate::provenance;
use crate::reconcile::{Pass, Unmanaged};
use crate::report::pass::InvalidFile;
use crate::report::{Printable, unmanaged_line};
use crate::term;

/// Where a version came from, as its description says.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Origin {
    /// The commit promptsync wrote it from (`worktree@<id>` for a working-tree run);
    /// `null` when promptsync did not write it ("edited in the UI").
    pub commit: Option<String>,
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub version: u64,
    pub origin: Origin,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    pub file: String,
    pub prompt_id: Option<String>,
    pub name: Option<String>,
    /// The remote's newest version.
    pub newest: Option<VersionInfo>,
    /// Whether the newest version holds the file's content (and metadata).
    pub in_sync: bool,
    /// What differs, when it does not.
    pub changes: Vec<String>,
    /// The newest version was changed outside promptsync.
    pub drift: bool,
    pub live: Option<VersionInfo>,
    /// The release tag that decides what is live for this prompt, if any.
    pub release_tag: Option<String>,
    /// Whether the live version holds the release's content (`null` without a release).
    pub live_in_sync: Option<bool>,
    /// `sync: false` in the file.
    pub sync_disabled: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub format: u32,
    pub source: SourceLine,
    pub release: Option<String>,
    pub prompts: Vec<StatusRow>,
    pub invalid_files: Vec<InvalidFile>,
    /// `null` when the account could not be listed (see `warnings`).
    pub unmanaged: Option<Vec<Unmanaged>>,
    pub warnings: Vec<String>,
    pub summary: StatusSummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceLine {
    pub commit: Option<String>,
    pub worktree: bool,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StatusSummary {
    pub prompts: usize,
    pub in_sync: usize,
    pub out_of_sync: usize,
    pub failed: usize,
    pub invalid_files: usize,
    pub unmanaged: usize,
}

/// Where a version came from: its provenance, or nothing (a person's edit).
pub fn origin(version: &Version) -> Origin {
    let description = version.description().unwrap_or_default();
    match provenance::parse(description) {
        Some(p) => Origin {
            commit: Some(p.source),
            subject: provenance::subject(description).map(str::to_owned),
        },
        None => Origin {
            commit: None,
            subject: None,
        },
    }
}

fn info(version: Option<&Version>) -> Option<VersionInfo> {
    version.map(|v| VersionInfo {
        version: v.number,
        origin: origin(v),
    })
}

impl StatusReport {
    /// The status of a dry-run `pass` (its `remote` is the snapshot it read).
    pub fn new(pass: &Pass, invalid_files: Vec<InvalidFile>) -> StatusReport {
        let tag = pass.release.as_ref().map(|(r, _)| r.tag.clone());
        let deploys: BTreeMap<&str, &DeployStep> = pass
            .deploy
            .iter()
            .map(|(item, _)| (item.path.as_str(), &item.step))
            .collect();
        let disabled: BTreeMap<&str, bool> = pass
            .source
            .prompts
            .iter()
            .map(|p| (p.path.as_str(), !p.sync))
            .collect();
        let mut prompts = Vec::new();
        for (item, _) in &pass.sync {
            let id = item.target.as_ref().and_then(Target::id).map(str::to_owned);
            let remote = id.as_deref().and_then(|id| pass.remote.prompts.get(id));
            let mut row = StatusRow {
                file: item.path.clone(),
                prompt_id: id.clone(),
                name: match &item.key {
                    PromptKey::Name(name) => Some(name.clone()),
                    PromptKey::Id(_) => remote.and_then(|p| p.name.clone()),
                },
                newest: info(remote.and_then(|p| p.current_version.as_ref())),
                in_sync: false,
                changes: Vec::new(),
                drift: false,
                live: info(remote.and_then(|p| p.live_version.as_ref())),
                release_tag: None,
                live_in_sync: None,
                sync_disabled: disabled.get(item.path.as_str()).copied().unwrap_or(false),
                error: None,
            };
            let content = match &item.step {
                SyncStep::Unchanged { .. } => {
                    row.in_sync = true;
                    None
                }
                SyncStep::Change { metadata, content } => {
                    if metadata.name.is_some() {
                        row.changes.push("name".to_owned());
                    }
                    if metadata.description.is_some() {
                        row.changes.push("description".to_owned());
                    }
                    if matches!(item.target, Some(Target::New(_))) {
                        row.changes.push("not created yet".to_owned());
                    }
                    content.as_ref()
                }
                SyncStep::Skipped { reason, content } => {
                    row.in_sync = content.is_none();
                    if *reason == SkipReason::DriftReported {
                        row.drift = true;
                    }
                    content.as_ref()
                }
                SyncStep::Failed { error } => {
                    row.error = Some(error.clone());
                    None
                }
            };
            if let Some(content) = content {
                row.changes
                    .extend(content.fields.iter().map(|f| (*f).to_owned()));
                row.drift |= content.drift;
            }
            if let Some(step) = deploys.get(item.path.as_str()) {
                row.release_tag.clone_from(&tag);
                row.live_in_sync = match step {
                    DeployStep::AlreadyLive { .. } => Some(true),
                    DeployStep::Deploy { .. } => Some(false),
                    DeployStep::Skipped { .. } | DeployStep::Failed { .. } => None,
                };
                if let DeployStep::Failed { error } = step
                    && row.error.is_none()
                {
                    row.error = Some(error.clone());
                }
            }
            prompts.push(row);
        }
        let mut summary = StatusSummary {
            prompts: prompts.len(),
            invalid_files: invalid_files.len(),
            unmanaged: pass.unmanaged.as_ref().map_or(0, Vec::len),
            ..StatusSummary::default()
        };
        for row in &prompts {
            if row.error.is_some() {
                summary.failed += 1;
            } else if row.in_sync && row.live_in_sync != Some(false) {
                summary.in_sync += 1;
            } else {
                summary.out_of_sync += 1;
            }
        }
        StatusReport {
            format: 1,
            source: SourceLine {
                commit: pass.source.source.commit.clone(),
                worktree: pass.source.source.worktree,
            },
            release: tag,
            prompts,
            invalid_files,
            unmanaged: pass.unmanaged.clone(),
            warnings: pass.warnings.clone(),
            summary,
        }
    }

    pub fn has_errors(&self) -> bool {
        self.summary.failed > 0 || self.summary.invalid_files > 0
    }

    pub fn out_of_sync(&self) -> bool {
        self.summary.out_of_sync > 0
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for file in &self.invalid_files {
            for d in &file.diagnostics {
                out.push_str(&d.render(false));
                out.push('\n');
            }
        }
        for warning in &self.warnings {
            out.push_str(&format!("warning: {}\n", term::line(warning)));
        }
        let source = if self.source.worktree {
            "the working tree"
        } else {
            "HEAD"
        };
        for row in &self.prompts {
            let who = match (&row.name, &row.prompt_id) {
                (Some(name), Some(id)) => format!("{:?} ({})", term::line(name), term::line(id)),
                (Some(name), None) => format!("{:?} (not created yet)", term::line(name)),
                (None, Some(id)) => term::line(id).into_owned(),
                (None, None) => String::new(),
            };
            let state = if row.error.is_some() {
                "failed"
            } else if row.in_sync && row.live_in_sync != Some(false) {
                "in sync"
            } else {
                "out of sync"
            };
            out.push_str(&format!("{state:<12}{}  {who}\n", term::line(&row.file)));
            if let Some(error) = &row.error {
                out.push_str(&format!("    error: {}\n", term::line(error)));
                continue;
            }
            let newest = match &row.newest {
                Some(v) => {
                    let matches = if row.in_sync {
                        format!("matches {source}")
                    } else if row.changes.is_empty() {
                        format!("differs from {source}")
                    } else {
                        format!("differs from {source}: {}", row.changes.join(", "))
                    };
                    format!("v{} {}, {matches}", v.version, describe(&v.origin))
                }
                None => "none yet".to_owned(),
            };
            out.push_str(&format!("    newest  {newest}"));
            if row.drift {
                out.push_str(" [drift: changed outside promptsync]");
            }
            out.push('\n');
            let live = match &row.live {
                Some(v) => format!("v{} {}", v.version, describe(&v.origin)),
                None => "none".to_owned(),
            };
            let release = match (&row.release_tag, row.live_in_sync) {
                (Some(tag), Some(true)) => format!(", as release {} wants", term::line(tag)),
                (Some(tag), Some(false)) => {
                    format!(", but release {} wants other content", term::line(tag))
                }
                _ => String::new(),
            };
            out.push_str(&format!("    live    {live}{release}\n"));
            if row.sync_disabled {
                out.push_str("    sync: false (validated, never sent)\n");
            }
        }
        match &self.unmanaged {
            Some(unmanaged) if !unmanaged.is_empty() => {
                out.push_str(&format!(
                    "unmanaged: {} remote prompt(s) that no file names (`promptsync pull --all` adopts them)\n",
                    unmanaged.len()
                ));
                for p in unmanaged {
                    out.push_str(&format!("    {}\n", unmanaged_line(p)));
                }
            }
            _ => {}
        }
        let s = &self.summary;
        out.push_str(&format!(
            "{} prompt file(s): {} in sync, {} out of sync, {} failed; {} invalid file(s); {} unmanaged.\n",
            s.prompts, s.in_sync, s.out_of_sync, s.failed, s.invalid_files, s.unmanaged
        ));
        out
    }
}

/// `from 4ecaecc7e1 "Subject"`, or `edited in the UI`.
fn describe(origin: &Origin) -> String {
    match (&origin.commit, &origin.subject) {
        (Some(commit), Some(subject)) => {
            format!("from {} {:?}", short(commit), term::line(subject))
        }
        (Some(commit), None) => format!("from {}", short(commit)),
        (None, _) => "edited in the UI (no promptsync provenance)".to_owned(),
    }
}

fn short(commit: &str) -> String {
    let (prefix, id) = match commit.split_once('@') {
        Some((prefix, id)) => (format!("{prefix}@"), id),
        None => (String::new(), commit),
    };
    format!("{prefix}{}", term::line(id.get(..10).unwrap_or(id)))
}

/// One version of a prompt's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub version: u64,
    pub live: bool,
    /// `false` for the draft.
    pub committed: bool,
    pub origin: Origin,
    /// The git tags on the commit the version came from.
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryReport {
    pub format: u32,
    pub prompt_id: String,
    pub name: Option<String>,
    pub versions: Vec<HistoryRow>,
}

impl HistoryReport {
    /// `versions` newest first; `tags` maps a commit id to its tag names.
    pub fn new(
        prompt_id: &str,
        name: Option<&str>,
        versions: &[Version],
        live: Option<u64>,
        tags: &BTreeMap<String, Vec<String>>,
    ) -> HistoryReport {
        let rows = versions
            .iter()
            .map(|v| {
                let origin = origin(v);
                let commit = origin
                    .commit
                    .as_deref()
                    .map(|c| c.rsplit('@').next().unwrap_or(c));
                HistoryRow {
                    version: v.number,
                    live: v.is_deployed() || live == Some(v.number),
                    committed: v.readonly(),
                    tags: commit
                        .and_then(|c| tags.get(c))
                        .cloned()
                        .unwrap_or_default(),
                    origin,
                }
            })
            .collect();
        HistoryReport {
            format: 1,
            prompt_id: prompt_id.to_owned(),
            name: name.map(str::to_owned),
            versions: rows,
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} ({})\n",
            term::line(self.name.as_deref().unwrap_or("")),
            term::line(&self.prompt_id)
        );
        for row in &self.versions {
            let marks = [
                row.live.then_some("live"),
                (!row.committed).then_some("draft"),
            ];
            let marks: Vec<&str> = marks.into_iter().flatten().collect();
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!(" ({})", marks.join(", "))
            };
            let tags = if row.tags.is_empty() {
                String::new()
            } else {
                format!(
                    " [{}]",
                    row.tags
                        .iter()
                        .map(|t| term::line(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            out.push_str(&format!(
                "v{:<4}{marks} {}{tags}\n",
                row.version,
                describe(&row.origin)
            ));
        }
        out
    }
}
impl Printable for StatusReport {
    fn text(&self) -> String {
        self.to_text()
    }
}

impl Printable for HistoryReport {
    fn text(&self) -> String {
        self.to_text()
    }
}
