//! Versions written as the account listing's pages arrive ([`Early`]): a file that
//! names its prompt by `prompt_id` needs no other page to be planned, when nothing
//! else in the pass can touch that prompt. Its page is then the read just before
//! writing (one writer at a time), and its version goes out while the listing's
//! other pages are on their way ([`write`], beside the whole pass). The pass's plan,
//! made once every page is in, sends the rest beside what is still going out, and
//! keeps what was written so in its files' places ([`Written`]).
//!
//! A prompt is written early only when the plan of its file alone, on that prompt
//! alone, is the plan the whole pass would make for it (`plan::plan_alone`): its file
//! is the only one that names it (no other file has its id, no file of the source or
//! the release has its name), the release does not name it (a deploy half comes first
//! and may change it), its versions came in full, and the plan needs no version
//! history for it. Anything else waits for the last page, as before.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::api::types::Prompt;
use crate::api::{Arrived, Client};
use crate::apply::{self, Observer, Outcome};
use crate::config::DriftPolicy;
use crate::deploy::Release;
use crate::desired::{DesiredPrompt, DesiredSet, PromptKey};
use crate::plan::{self, SyncItem};

/// One pass's versions written as their page arrived: which prompts and files were
/// taken, the way their items go to the writer until the listing is done
/// ([`Early::close`]), and what the writer did, once it is done ([`Early::written`]).
pub(super) struct Early {
    taken: Taken,
    send: Arc<Mutex<Option<mpsc::UnboundedSender<SyncItem>>>>,
    written: Mutex<Option<oneshot::Receiver<Written>>>,
}

/// The prompts (by id) and files taken to be written as their page arrived.
#[derive(Clone, Default)]
pub(super) struct Taken(Arc<Mutex<TakenSet>>);

#[derive(Default)]
struct TakenSet {
    ids: BTreeSet<String>,
    files: BTreeSet<String>,
}

impl Taken {
    fn lock(&self) -> std::sync::MutexGuard<'_, TakenSet> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the prompt with this id was taken.
    pub(super) fn took(&self, id: &str) -> bool {
        self.lock().ids.contains(id)
    }

    /// Take the prompt `id` for the file `path`, once; whether it was not taken yet.
    fn take(&self, id: &str, path: &str) -> bool {
        let mut taken = self.lock();
        let first = taken.ids.insert(id.to_owned());
        if first {
            taken.files.insert(path.to_owned());
        }
        first
    }
}

impl Early {
    /// A pass's early writes; what their writer receives, and where it says what it
    /// did ([`write`]).
    pub(super) fn new() -> (
        Early,
        mpsc::UnboundedReceiver<SyncItem>,
        oneshot::Sender<Written>,
    ) {
        let (send, receive) = mpsc::unbounded_channel();
        let (done, written) = oneshot::channel();
        let early = Early {
            taken: Taken::default(),
            send: Arc::new(Mutex::new(Some(send))),
            written: Mutex::new(Some(written)),
        };
        (early, receive, done)
    }

    /// No more prompts arrive (the listing is done): the writer ends once what it was
    /// given is sent. The prompts taken are all known from here on.
    pub(super) fn close(&self) {
        self.send
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Whether the prompt with this id was taken to be written as its page arrived.
    pub(super) fn took(&self, id: &str) -> bool {
        self.taken.took(id)
    }

    /// Whether the file at `path` was.
    pub(super) fn took_file(&self, path: &str) -> bool {
        self.taken.lock().files.contains(path)
    }

    /// The prompts taken, as they are taken.
    pub(super) fn taken(&self) -> Taken {
        self.taken.clone()
    }

    /// What the writer did, once it is done (after [`Early::close`]); the second time,
    /// nothing.
    pub(super) async fn written(&self) -> Written {
        let written = self
            .written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match written {
            Some(written) => written.await.unwrap_or_default(),
            None => Written::default(),
        }
    }

    /// What the listing tells of each prompt the pass wants as its page arrives: the
    /// file of `source` that may be written then is planned alone on it, and its
    /// change, if any, taken to the writer.
    pub(super) fn on_arrival(
        &self,
        source: &DesiredSet,
        release: Option<&(Release, DesiredSet)>,
        drift: DriftPolicy,
    ) -> Arrived {
        let alone = Alone::of(source, release);
        let (taken, send) = (self.taken.clone(), Arc::clone(&self.send));
        let info = source.source.clone();
        Box::new(move |prompt: &Prompt| {
            let Some((id, desired)) = alone.file_of(prompt) else {
                return;
            };
            let Some(item) = plan::plan_alone(desired, &info, prompt, drift) else {
                return;
            };
            let send = send.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(send) = send.as_ref() else {
                return;
            };
            if taken.take(id, &desired.path) && send.send(item).is_ok() {
                tracing::debug!(
                    prompt_id = id,
                    file = %desired.path,
                    "its page is the read before writing: the version goes out now"
                );
            }
        })
    }
}

/// The files that may be planned alone on their prompt: syncing, and the only file
/// of the source and the release that names it by its id (a release that names it
/// deploys it first); with the names any file names (a prompt of one of those names
/// is not planned alone).
struct Alone {
    by_id: HashMap<String, DesiredPrompt>,
    names: HashSet<String>,
}

impl Alone {
    fn of(source: &DesiredSet, release: Option<&(Release, DesiredSet)>) -> Alone {
        let release = release
            .map(|(_, set)| set.prompts.as_slice())
            .unwrap_or_default();
        let mut files_of: HashMap<&str, usize> = HashMap::new();
        let mut names = HashSet::new();
        for desired in source.prompts.iter().chain(release) {
            match &desired.key {
                PromptKey::Id(id) => *files_of.entry(id).or_default() += 1,
                PromptKey::Name(name) => {
                    names.insert(name.clone());
                }
            }
        }
        let by_id = source
            .prompts
            .iter()
            .filter(|desired| desired.sync)
            .filter_map(|desired| match &desired.key {
                PromptKey::Id(id) if files_of.get(id.as_str()) == Some(&1) => {
                    Some((id.clone(), desired.clone()))
                }
                _ => None,
            })
            .collect();
        Alone { by_id, names }
    }

    /// The file that may be planned alone on `prompt`, with the prompt's id.
    fn file_of<'p>(&self, prompt: &'p Prompt) -> Option<(&'p str, &DesiredPrompt)> {
        let id = prompt.id()?;
        let desired = self.by_id.get(id)?;
        let named = prompt
            .name
            .as_ref()
            .is_some_and(|name| self.names.contains(name));
        (!named).then_some((id, desired))
    }
}

/// Send the items taken as their pages arrived, `limit` at a time, until the listing
/// is done, and say what was written to `done`.
pub(super) async fn write(
    receive: mpsc::UnboundedReceiver<SyncItem>,
    client: &Client,
    limit: usize,
    observer: &dyn Observer,
    done: oneshot::Sender<Written>,
) {
    let items = futures_util::stream::unfold(receive, |mut receive| async move {
        let item = receive.recv().await?;
        Some((item, receive))
    });
    // The bar (or the progress log) counts each with the changes planned later.
    let items = items.inspect(|_| observer.planned(1));
    let written = apply::apply_as_they_come(client, items, limit, observer).await;
    let written = written
        .into_iter()
        .map(|(item, outcome)| (item.path.clone(), (item, outcome)))
        .collect();
    // The pass is gone when nobody waits.
    let _ = done.send(Written(written));
}

/// What was written as its page arrived, by file path, until the pass's plan takes it.
#[derive(Default)]
pub(super) struct Written(BTreeMap<String, (SyncItem, Outcome)>);

impl Written {
    /// Put what was written in the place of the plan's items of the same files, with
    /// its outcome.
    pub(super) fn into_plan(mut self, items: &mut [SyncItem], outcomes: &mut [Option<Outcome>]) {
        for (item, outcome) in items.iter_mut().zip(outcomes) {
            if let Some((written, result)) = self.0.remove(&item.path) {
                *item = written;
                *outcome = Some(result);
            }
        }
    }

    /// What was written and no plan took (the pass ended before it planned).
    pub(super) fn rest(self) -> impl Iterator<Item = (SyncItem, Option<Outcome>)> {
        self.0
            .into_values()
            .map(|(item, outcome)| (item, Some(outcome)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::SourceInfo;

    fn file(path: &str, key: PromptKey, sync: bool) -> DesiredPrompt {
        let spec = serde_json::from_value(serde_json::json!({
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hello"}]
        }))
        .unwrap();
        DesiredPrompt::new(path.into(), key, None, None, sync, spec)
    }

    fn set(prompts: Vec<DesiredPrompt>) -> DesiredSet {
        DesiredSet {
            source: SourceInfo {
                commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
                subject: None,
                worktree: false,
            },
            prompts,
            diagnostics: Vec::new(),
            files: Vec::new(),
        }
    }

    fn id(id: &str) -> PromptKey {
        PromptKey::Id(id.into())
    }

    /// Only a file that alone can touch its prompt is written as the prompt's page
    /// arrives: not one whose prompt another file names by id or by name (a conflict
    /// the whole plan decides), that does not sync, or whose prompt the release names
    /// (its deploy comes first); each prompt once, and nothing once the listing is
    /// done.
    #[test]
    fn only_a_prompt_its_file_alone_can_touch_is_written_as_its_page_arrives() {
        let source = set(vec![
            file("alone.yaml", id("p1"), true),
            file("twice-a.yaml", id("p2"), true),
            file("twice-b.yaml", id("p2"), true),
            file("off.yaml", id("p3"), false),
            file("released.yaml", id("p4"), true),
            file("by-id.yaml", id("p5"), true),
            file("by-name.yaml", PromptKey::Name("Five".into()), true),
        ]);
        let release = Release {
            tag: "v1".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            date: 0,
            annotated: false,
        };
        let release = (release, set(vec![file("released.yaml", id("p4"), true)]));
        let (early, mut receive, _done) = Early::new();
        let arrived = early.on_arrival(&source, Some(&release), DriftPolicy::Correct);
        let prompts = [
            Prompt::with_id("p1", "One"),
            Prompt::with_id("p2", "Two"),
            Prompt::with_id("p3", "Three"),
            Prompt::with_id("p4", "Four"),
            Prompt::with_id("p5", "Five"),
            Prompt::with_id("p1", "One"),
        ];
        for prompt in &prompts {
            arrived(prompt);
        }
        let item = receive.try_recv().expect("alone.yaml's version");
        assert_eq!(item.path, "alone.yaml");
        assert!(receive.try_recv().is_err(), "nothing else, and p1 once");
        assert!(early.took("p1") && early.took_file("alone.yaml"));
        assert!(["p2", "p3", "p4", "p5"].iter().all(|id| !early.took(id)));
        early.close();
        arrived(&Prompt::with_id("p1", "One"));
        assert!(receive.try_recv().is_err());
    }
}
