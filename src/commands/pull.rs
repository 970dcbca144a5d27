//! `promptsync pull`: write prompt files for remote prompts, to adopt an existing
//! account. Which prompts: the ones named (by id or exact name), or with `--all` every
//! prompt that no file of the working tree names. Which version: the newest (what a
//! sync compares with, so `plan` then shows nothing) or the live one. Files are never
//! overwritten without `--force`; each is written whole or not at all, inside the
//! repository only and through no symbolic link ([`crate::confined`]). The exit
//! status is 1 unless every prompt asked for was written or already up to date.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;

use serde_json::Map;

use crate::Error;
use crate::api::types::{Prompt, Version};
use crate::api::{ApiError, Client, filter_in};
use crate::cli::{GlobalArgs, OutputFormat, PullArgs, PullVersion};
use crate::commands::ExitStatus;
use crate::config::{Overrides, Settings};
use crate::confined::{self, Dir, Entry, WriteError};
use crate::desired::{self, PromptKey, SourceRev};
use crate::discover::Matcher;
use crate::gitrepo::GitRepo;
use crate::pull;
use crate::report::pull::{PullAction, PullReport, PullRow};

/// The one target `pull` reads: the named one, or the only one there is.
fn one_target(settings: &Settings, names: &[String]) -> Result<Settings, Error> {
    let mut selected = settings.select(names)?;
    if selected.len() != 1 {
        let names: Vec<String> = selected.iter().map(|s| s.target.clone()).collect();
        return Err(Error::Usage(format!(
            "pull writes one project's prompts into the files: name one target with \
             --target NAME (the targets are {})",
            names.join(", ")
        )));
    }
    Ok(selected.remove(0))
}

pub(super) fn run(global: &GlobalArgs, args: PullArgs) -> Result<ExitStatus, Error> {
    let settings = super::load_settings(global, &Overrides::default())?;
    crate::logging::init(&settings.log)?;
    let mut settings = one_target(&settings, &args.targets)?;
    let runtime = super::runtime()?;
    let report = runtime.block_on(async {
        let local = if args.emulator {
            Some(super::local::start_local_emulator(&mut settings).await?)
        } else {
            None
        };
        let client = Client::new(&settings.api)?;
        let rows = pull_all(&settings, &client, &args).await;
        if let Some(local) = local {
            local.shutdown().await?;
        }
        Ok::<_, Error>(PullReport::new(rows?))
    })?;
    crate::report::print(&report, args.output == OutputFormat::Json)?;
    Ok(if report.has_errors() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// One remote prompt to write, or why it cannot be.
type Selected = (String, Result<Prompt, String>);

async fn pull_all(
    settings: &Settings,
    client: &Client,
    args: &PullArgs,
) -> Result<Vec<PullRow>, Error> {
    // The directory is checked before anything is asked of the API: a bad one fails
    // the command, not each prompt.
    let root = repo_root(settings);
    let parts = confined::components(&args.dir)?;
    let mut dir = Dir::open(&root, &parts, false)?;
    let selected = if args.all {
        unmanaged(settings, client).await?
    } else {
        named(client, &args.prompts).await?
    };
    let matcher = Matcher::new(&settings.prompts).map_err(desired::LoadError::from)?;
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut rows = Vec::new();
    for (asked, prompt) in selected {
        let prompt = match prompt {
            Ok(prompt) => prompt,
            Err(error) => {
                rows.push(failed(asked, None, error));
                continue;
            }
        };
        let version = match version_of(client, &prompt, args.which()).await {
            Ok(version) => version,
            Err(error) => {
                rows.push(failed(asked, Some(&prompt), error));
                continue;
            }
        };
        let text = match pull::file_text(&prompt, &version) {
            // A file is committed and shared: one that would hold a secret (a server
            // that echoes the key in a name or a message) is never written.
            Ok(text) if crate::secret::holds_secret(&text) => {
                let error = "the remote prompt holds a secret promptsync holds (the API key); \
                             its file is not written";
                rows.push(failed(asked, Some(&prompt), error.to_owned()));
                continue;
            }
            Ok(text) => text,
            Err(err) => {
                rows.push(failed(asked, Some(&prompt), err.to_string()));
                continue;
            }
        };
        let target = match &dir {
            Some(dir) => dir,
            None => dir.insert(
                Dir::open(&root, &parts, true)?
                    .ok_or_else(|| Error::Internal(format!("{} vanished", args.dir.display())))?,
            ),
        };
        let id = prompt.id().unwrap_or_default();
        let slug = pull::slug(prompt.name.as_deref().unwrap_or(id));
        let (action, rel) = match place(target, &slug, id, &text, args.force, &mut taken) {
            Ok(placed) => placed,
            Err((rel, err)) => {
                let mut row = failed(asked, Some(&prompt), err.to_string());
                row.file = rel;
                rows.push(row);
                continue;
            }
        };
        tracing::debug!(
            file = rel,
            prompt_id = id,
            version = version.number,
            ?action,
            "pulled"
        );
        let warning = (!matcher.is_match(&rel)).then(|| {
            format!("{rel} is not matched by prompts.include/exclude: sync will not see it; pull into a matched directory or change the globs")
        });
        rows.push(PullRow {
            file: Some(rel),
            asked,
            prompt_id: Some(id.to_owned()),
            name: prompt.name.clone(),
            version: Some(version.number),
            action,
            error: None,
            warning,
        });
    }
    Ok(rows)
}

/// Write `text` as prompt `id`'s file in `dir`: its own file when one exists (replaced
/// with `force`, left alone without it, nothing to do when it says the same), else the
/// first free name. The file's path from the repository root comes back, also with an
/// error when one was chosen.
fn place(
    dir: &Dir,
    slug: &str,
    id: &str,
    text: &str,
    force: bool,
    taken: &mut BTreeSet<String>,
) -> Result<(PullAction, String), (Option<String>, WriteError)> {
    let (name, existing) =
        choose_file(dir, slug, id, taken).map_err(|(name, err)| (Some(dir.shown(&name)), err))?;
    let rel = dir.shown(&name);
    let outcome = match existing {
        Some(bytes) if bytes == text.as_bytes() => Ok(PullAction::Unchanged),
        Some(_) if !force => Ok(PullAction::Exists),
        Some(_) => dir
            .write(&name, text.as_bytes(), true)
            .map(|()| PullAction::Replaced),
        None => match dir.write(&name, text.as_bytes(), false) {
            Ok(()) => Ok(PullAction::Wrote),
            // Made by someone else meanwhile.
            Err(WriteError::Exists { .. }) => Ok(PullAction::Exists),
            Err(err) => Err(err),
        },
    };
    match outcome {
        Ok(action) => Ok((action, rel)),
        Err(err) => Err((Some(rel), err)),
    }
}

fn failed(asked: String, prompt: Option<&Prompt>, error: String) -> PullRow {
    PullRow {
        file: None,
        asked,
        prompt_id: prompt.and_then(Prompt::id).map(str::to_owned),
        name: prompt.and_then(|p| p.name.clone()),
        version: None,
        action: PullAction::Failed,
        error: Some(error),
        warning: None,
    }
}

fn repo_root(settings: &Settings) -> PathBuf {
    GitRepo::open(&settings.repo).map_or_else(|_| settings.repo.clone(), |r| r.root().to_owned())
}

/// Every remote prompt that no file of the working tree names (by id, or by name for
/// files without an id).
async fn unmanaged(settings: &Settings, client: &Client) -> Result<Vec<Selected>, Error> {
    let settings_for_load = settings.clone();
    let set = tokio::task::spawn_blocking(move || {
        let repo = GitRepo::open(&settings_for_load.repo)?;
        desired::load(&repo, &SourceRev::Worktree, &settings_for_load.prompts).map_err(Error::from)
    })
    .await
    .map_err(|err| Error::Internal(format!("reading the working tree: {err}")))??;
    if set.has_errors() {
        tracing::warn!(
            "some prompt files are invalid; the prompts they name count as unmanaged and may be pulled again (run `promptsync validate`)"
        );
    }
    let mut ids = BTreeSet::new();
    let mut names = BTreeSet::new();
    for prompt in &set.prompts {
        match &prompt.key {
            PromptKey::Id(id) => ids.insert(id.clone()),
            PromptKey::Name(name) => names.insert(name.clone()),
        };
    }
    let all = client.list_prompts(&Map::new()).await?;
    warn_unreadable(&all.problems);
    Ok(all
        .items
        .into_iter()
        .filter(|p| {
            let by_id = p.id().is_some_and(|id| ids.contains(id));
            let by_name = p.name.as_ref().is_some_and(|n| names.contains(n));
            !by_id && !by_name
        })
        .map(|p| (p.id().unwrap_or_default().to_owned(), Ok(p)))
        .collect())
}

/// The prompts named on the command line: an id match first, then an exact name.
pub(super) async fn named(client: &Client, asked: &[String]) -> Result<Vec<Selected>, ApiError> {
    let ids = filter_in("prompt_id", asked.iter().cloned());
    let names = filter_in("name", asked.iter().cloned());
    let (by_id, by_name) =
        tokio::try_join!(client.list_prompts(&ids), client.list_prompts(&names))?;
    warn_unreadable(&by_id.problems);
    warn_unreadable(&by_name.problems);
    // A listing whose pages disagree with its count may have left a prompt out.
    let incomplete = by_id.untrusted.or(by_name.untrusted);
    let (by_id, by_name) = (by_id.items, by_name.items);
    let mut named: BTreeMap<&str, Vec<&Prompt>> = BTreeMap::new();
    for prompt in &by_name {
        if let Some(name) = prompt.name.as_deref() {
            named.entry(name).or_default().push(prompt);
        }
    }
    Ok(asked
        .iter()
        .map(|asked| {
            if let Some(prompt) = by_id.iter().find(|p| p.id() == Some(asked.as_str())) {
                return (asked.clone(), Ok(prompt.clone()));
            }
            let found = match named.get(asked.as_str()).map(Vec::as_slice) {
                Some([one]) => Ok((*one).clone()),
                Some(many) => Err(format!(
                    "{} remote prompts are named {asked:?} ({}); pull one by its id",
                    many.len(),
                    many.iter()
                        .filter_map(|p| p.id())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                None => Err(match &incomplete {
                    Some(why) => format!(
                        "no remote prompt listed has the id or the name {asked:?}, but the \
                         prompt list is incomplete ({why})"
                    ),
                    None => format!("no remote prompt has the id or the name {asked:?}"),
                }),
            };
            (asked.clone(), found)
        })
        .collect())
}

/// Remote prompts the listing could not read are left out, and said so.
fn warn_unreadable(problems: &[crate::api::types::ItemProblem]) {
    for problem in problems {
        tracing::warn!(
            prompt_id = problem.prompt_id.as_deref(),
            name = problem.name.as_deref(),
            "a remote prompt cannot be read and is not pulled: {problem}"
        );
    }
}

/// The version to write, with all its fields.
async fn version_of(
    client: &Client,
    prompt: &Prompt,
    which: PullVersion,
) -> Result<Version, String> {
    let id = prompt.id().ok_or("the remote prompt has no string id")?;
    let version = match which {
        PullVersion::Newest => prompt
            .current_version
            .as_ref()
            .ok_or("it has no version yet")?,
        PullVersion::Live => prompt
            .live_version
            .as_ref()
            .ok_or("it has no live version (pull it without --live)")?,
    };
    if version.has_content() {
        return Ok(version.clone());
    }
    client
        .get_version(id, version.number)
        .await
        .map_err(|err| err.to_string())
}

/// A file name, with the file's bytes when it is the prompt's own already.
type Chosen = (OsString, Option<Vec<u8>>);

/// The file for prompt `id` in `dir`: `slug.prompt.yaml`, or the next free
/// `slug-N.prompt.yaml` when that is taken by another prompt's file; with the file's
/// bytes when it is this prompt's already. A link, a FIFO or anything else that is not
/// a regular file where a name is wanted is an error, never skipped or opened.
fn choose_file(
    dir: &Dir,
    slug: &str,
    id: &str,
    taken: &mut BTreeSet<String>,
) -> Result<Chosen, (OsString, WriteError)> {
    loop {
        let name = OsString::from(pull::unique_file_name(slug, taken));
        let entry = match dir.entry(&name) {
            Ok(entry) => entry,
            Err(err) => return Err((name, err)),
        };
        match entry {
            Entry::Missing => return Ok((name, None)),
            Entry::Link => {
                let path = dir.shown(&name);
                return Err((name, WriteError::Link { path }));
            }
            Entry::Other(kind) => {
                let path = dir.shown(&name);
                return Err((name, WriteError::NotAFile { path, kind }));
            }
            Entry::File => {
                // A file too large to be a prompt file is not this prompt's.
                let bytes = match dir.read(&name, crate::prompt::MAX_FILE_BYTES) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => continue,
                    Err(err) => return Err((name, err)),
                };
                let file = crate::prompt::parse_file(&name.to_string_lossy(), &bytes);
                if file
                    .value
                    .get("prompt_id")
                    .and_then(serde_json::Value::as_str)
                    == Some(id)
                {
                    return Ok((name, Some(bytes)));
                }
            }
        }
    }
}
