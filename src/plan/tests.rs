//! The plans' tests, by plan: `sync` (the sync plan, what a prompt alone tells of a
//! write, a file planned alone), `deploy` (the deploy plan), `writes` (what a plan
//! writes and the reading again of it). The fixtures they share are here.

use serde_json::{Value, json};

use super::*;
use crate::api::types::{Prompt, Version, VersionSpec};
use crate::config::DriftPolicy;
use crate::desired::{DesiredPrompt, PromptKey, SourceInfo};
use crate::normalize;
use crate::provenance;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn source() -> SourceInfo {
    SourceInfo {
        commit: Some(COMMIT.into()),
        subject: Some("Edit prompts".into()),
        worktree: false,
    }
}

fn desired(key: PromptKey, content: Value) -> DesiredPrompt {
    let path = format!(
        "prompts/{}.prompt.yaml",
        match &key {
            PromptKey::Id(s) | PromptKey::Name(s) => s.replace(' ', "-"),
        }
    );
    DesiredPrompt::new(
        path,
        key,
        None,
        None,
        true,
        serde_json::from_value(content).unwrap(),
    )
}

fn by_name(name: &str, content: Value) -> DesiredPrompt {
    desired(PromptKey::Name(name.into()), content)
}

/// `d` with other metadata and `sync` flag.
fn altered(
    d: &DesiredPrompt,
    name: Option<&str>,
    description: Option<&str>,
    sync: bool,
) -> DesiredPrompt {
    DesiredPrompt::new(
        d.path.clone(),
        d.key.clone(),
        name.map(Into::into),
        description.map(Into::into),
        sync,
        VersionSpec::clone(&d.spec),
    )
}

fn hello() -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]})
}

/// A remote version as promptsync would have created it from `content`.
fn ours(number: u64, content: &Value, readonly: bool) -> Version {
    let spec: VersionSpec = serde_json::from_value(content.clone()).unwrap();
    let mut fields = content.as_object().unwrap().clone();
    fields.insert("version".into(), json!(number));
    fields.insert("readonly".into(), json!(readonly));
    fields.insert(
        "description".into(),
        json!(provenance::describe(&source(), &normalize::digest(&spec))),
    );
    Version::from_fields(fields).unwrap()
}

fn foreign(number: u64, content: &Value, readonly: bool) -> Version {
    let mut fields = content.as_object().unwrap().clone();
    fields.insert("version".into(), json!(number));
    fields.insert("readonly".into(), json!(readonly));
    fields.insert("description".into(), json!("edited in the UI"));
    Version::from_fields(fields).unwrap()
}

fn prompt(id: &str, name: &str, current: Option<Version>, live: Option<Version>) -> Prompt {
    let mut p = Prompt::with_id(id, name);
    p.current_version = current;
    p.live_version = live;
    p
}

fn history(versions: Vec<Version>) -> History {
    History {
        versions,
        incomplete: None,
    }
}

fn sync_one(d: DesiredPrompt, remote: &Remote) -> SyncItem {
    plan_sync(&[d], &source(), remote, DriftPolicy::Correct).remove(0)
}

/// Whether `drift = "report"` skips `d`, reporting its drift.
fn drift_is_reported(d: DesiredPrompt, remote: &Remote) -> bool {
    let item = plan_sync(&[d], &source(), remote, DriftPolicy::Report).remove(0);
    matches!(
        item.step,
        SyncStep::Skipped {
            reason: SkipReason::DriftReported,
            ..
        }
    )
}

fn content_of(item: &SyncItem) -> &ContentChange {
    match &item.step {
        SyncStep::Change {
            content: Some(c), ..
        }
        | SyncStep::Skipped {
            content: Some(c), ..
        } => c,
        other => panic!("expected a content change, got {other:?}"),
    }
}

fn release() -> ReleaseRef {
    ReleaseRef {
        tag: "v1.0.0".into(),
        source: source(),
    }
}

fn deploy_one(d: DesiredPrompt, remote: &Remote) -> DeployItem {
    plan_deploy(&[d], &release(), remote).remove(0)
}

mod deploy;
mod sync;
mod writes;
