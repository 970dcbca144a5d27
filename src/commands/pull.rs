//! `promptsync pull`: write prompt files for remote prompts, to adopt an existing
//! account. Which prompts: the ones named (by id or exact name), or with `--all` every
//! prompt that no file of the working tree names. Which version: the newest (what a
//! sync compares with, so `plan` then shows nothing) or the live one. Files are never
//! overwritten without `--force`; each is written whole or not at all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Map;

use crate::Error;
use crate::api::types::{Prompt, Version};
use crate::api::{ApiError, Client, filter_in};
use crate::cli::{GlobalArgs, OutputFormat, PullArgs, PullVersion};
use crate::commands::ExitStatus;
use crate::config::{Overrides, Settings};
use crate::desired::{self, PromptKey, SourceRev};
use crate::discover::Matcher;
use crate::gitrepo::GitRepo;
use crate::pull;
use crate::report::Stdout;
use crate::report::pull::{PullAction, PullReport, PullRow};

pub fn run(global: &GlobalArgs, args: PullArgs) -> Result<ExitStatus, Error> {
    let mut settings = super::load_settings(global, &Overrides::default())?;
    crate::logging::init(&settings.log)?;
    let runtime = super::runtime()?;
    let report = runtime.block_on(async {
        let local = if args.emulator {
            Some(super::sync::start_local_emulator(&mut settings).await?)
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
    let mut out = Stdout::new();
    let written = match args.output {
        OutputFormat::Text => out.text(&report.to_text()),
        OutputFormat::Json => out.json(&report),
    };
    written
        .and_then(|()| out.flush())
        .map_err(|source| Error::Io {
            what: "cannot write the report".into(),
            source,
        })?;
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
    let selected = if args.all {
        unmanaged(settings, client).await?
    } else {
        named(client, &args.prompts).await?
    };
    let root = repo_root(settings);
    let dir = root.join(&args.dir);
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
            Ok(text) => text,
            Err(err) => {
                rows.push(failed(asked, Some(&prompt), err.to_string()));
                continue;
            }
        };
        let id = prompt.id().unwrap_or_default();
        let (file, existing) = choose_file(
            &dir,
            &pull::slug(prompt.name.as_deref().unwrap_or(id)),
            id,
            &mut taken,
        );
        let rel = relative(&root, &file);
        let action = match write(&file, &text, existing && args.force) {
            Ok(()) if existing => PullAction::Replaced,
            Ok(()) => PullAction::Wrote,
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => PullAction::Exists,
            Err(err) => {
                let mut row = failed(asked, Some(&prompt), format!("cannot write {rel}: {err}"));
                row.file = Some(rel);
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

fn relative(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .map(crate::discover::to_slash)
        .unwrap_or_else(|_| file.display().to_string())
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
                None => Err(format!("no remote prompt has the id or the name {asked:?}")),
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

/// The file for prompt `id`: `slug.prompt.yaml` in `dir`, or the next free
/// `slug-N.prompt.yaml` when that is taken by another prompt's file. `true` when the
/// file exists and is this prompt's already.
fn choose_file(dir: &Path, slug: &str, id: &str, taken: &mut BTreeSet<String>) -> (PathBuf, bool) {
    loop {
        let name = pull::unique_file_name(slug, taken);
        let path = dir.join(&name);
        match std::fs::read(&path) {
            Err(_) => return (path, false),
            Ok(bytes) => {
                let file = crate::prompt::parse_file(&name, &bytes);
                if file
                    .value
                    .get("prompt_id")
                    .and_then(serde_json::Value::as_str)
                    == Some(id)
                {
                    return (path, true);
                }
            }
        }
    }
}

/// Write `text` to `path` whole: a temporary file beside it, then moved into place;
/// without `replace`, an existing file is left alone (`AlreadyExists`).
fn write(path: &Path, text: &str, replace: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".promptsync-pull-")
        .tempfile_in(dir)?;
    std::io::Write::write_all(&mut temp, text.as_bytes())?;
    temp.as_file().sync_all()?;
    if replace {
        temp.persist(path).map_err(|err| err.error)?;
    } else {
        temp.persist_noclobber(path).map_err(|err| err.error)?;
    }
    Ok(())
}
