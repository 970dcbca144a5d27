//! The bare mirror in the cache directory: made on first use (marked as promptsync's,
//! so that [`GitRepo`](crate::gitrepo::GitRepo) opens it for reading), locked while a
//! look or fetch runs (another promptsync sharing the cache waits its turn), its refs
//! read and pruned to the wanted set, and a file of a commit read with a bound. git2;
//! blocking. Knows nothing about the network.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use git2::Repository;

use super::refs::Wanted;
pub(crate) use crate::gitrepo::MARKER_KEY;

/// An open, locked mirror. The lock is released on drop.
pub(super) struct Mirror {
    repo: Repository,
    path: PathBuf,
    _lock: File,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A mirror that cannot be made, locked or read.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot use the mirror at {}: {what}", path.display())]
    Unusable { path: PathBuf, what: String },
    #[error("the mirror at {} is in use by another promptsync, still after {}", path.display(), humantime::format_duration(*waited))]
    Busy { path: PathBuf, waited: Duration },
}

impl Mirror {
    /// Open (or make) the mirror at `path` and lock it, waiting until `deadline`.
    pub(super) fn open(path: &Path, url: &str, deadline: Instant) -> Result<Mirror, MirrorError> {
        let unusable = |what: String| MirrorError::Unusable {
            path: path.to_owned(),
            what,
        };
        std::fs::create_dir_all(path)
            .map_err(|err| unusable(format!("cannot create it: {err}")))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join("promptsync.lock"))
            .map_err(|err| unusable(format!("cannot open its lock file: {err}")))?;
        let started = Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(MirrorError::Busy {
                        path: path.to_owned(),
                        waited: started.elapsed(),
                    });
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(unusable(format!("cannot lock it: {err}")));
                }
            }
        }
        let repo = match Repository::open_bare(path) {
            Ok(repo) => repo,
            Err(_) => {
                let repo = Repository::init_bare(path).map_err(|err| {
                    unusable(format!(
                        "cannot make a bare repository there: {}",
                        err.message()
                    ))
                })?;
                let mut config = repo
                    .config()
                    .map_err(|err| unusable(err.message().to_owned()))?;
                config
                    .set_bool(MARKER_KEY, true)
                    .and_then(|()| config.set_str("promptsync.url", url))
                    .map_err(|err| unusable(err.message().to_owned()))?;
                tracing::info!(mirror = %path.display(), url, "made a new mirror");
                repo
            }
        };
        Ok(Mirror {
            repo,
            path: path.to_owned(),
            _lock: lock,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The branch (`branch`, or the one branch held when `None`) and tags held now.
    pub(super) fn held(&self, branch: Option<&str>) -> Result<Wanted, MirrorError> {
        let mut held = Wanted::default();
        let mut branches = BTreeMap::new();
        let refs = self.repo.references().map_err(|err| self.unusable(err))?;
        for reference in refs.flatten() {
            let (Ok(name), Some(target)) = (reference.name(), reference.target()) else {
                continue;
            };
            if let Some(tag) = name.strip_prefix("refs/tags/") {
                held.tags.insert(tag.to_owned(), target.to_string());
            } else if let Some(head) = name.strip_prefix("refs/heads/") {
                branches.insert(head.to_owned(), target.to_string());
            }
        }
        held.branch = match branch {
            Some(branch) => branches.remove_entry(branch),
            None if branches.len() == 1 => branches.into_iter().next(),
            None => None,
        };
        Ok(held)
    }

    /// Make the refs exactly `wanted`: other branches and unwanted tags are deleted,
    /// and HEAD names the branch (for a person looking with git).
    pub(super) fn prune(&self, wanted: &Wanted) -> Result<(), MirrorError> {
        let refs = self.repo.references().map_err(|err| self.unusable(err))?;
        let mut doomed = Vec::new();
        for reference in refs.flatten() {
            let Ok(name) = reference.name() else {
                continue;
            };
            let keep = match (
                name.strip_prefix("refs/heads/"),
                name.strip_prefix("refs/tags/"),
            ) {
                (Some(head), _) => wanted.branch.as_ref().is_some_and(|(b, _)| b == head),
                (_, Some(tag)) => wanted.tags.contains_key(tag),
                _ => true,
            };
            if !keep {
                doomed.push(name.to_owned());
            }
        }
        for name in doomed {
            tracing::debug!(reference = name, "pruned from the mirror");
            if let Ok(mut reference) = self.repo.find_reference(&name) {
                reference.delete().map_err(|err| self.unusable(err))?;
            }
        }
        if let Some((branch, _)) = &wanted.branch {
            self.repo
                .set_head(&format!("refs/heads/{branch}"))
                .map_err(|err| self.unusable(err))?;
        }
        Ok(())
    }

    /// The bytes of `path` in `commit`'s tree: `Ok(None)` when there is no such file,
    /// an error when it is over `limit` bytes or not a regular file.
    pub(super) fn read_file(
        &self,
        commit: &str,
        path: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, String> {
        let tree = git2::Oid::from_str(commit)
            .and_then(|oid| self.repo.find_commit(oid))
            .and_then(|commit| commit.tree())
            .map_err(|err| err.message().to_owned())?;
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        if entry.kind() != Some(git2::ObjectType::Blob) || entry.filemode() == 0o120000 {
            return Err(format!("`{path}` is not a regular file at {commit}"));
        }
        let odb = self.repo.odb().map_err(|err| err.message().to_owned())?;
        let (size, _) = odb
            .read_header(entry.id())
            .map_err(|err| err.message().to_owned())?;
        if size as u64 > limit {
            return Err(format!(
                "`{path}` at {commit} is {size} bytes, over the limit of {}",
                crate::localfile::human_size(limit)
            ));
        }
        let object = odb
            .read(entry.id())
            .map_err(|err| err.message().to_owned())?;
        Ok(Some(object.data().to_vec()))
    }

    /// The bytes held in `objects/pack`, to bound what a fetch brings in.
    pub(super) fn pack_bytes(path: &Path) -> u64 {
        std::fs::read_dir(path.join("objects").join("pack"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.metadata().ok())
            .map(|metadata| metadata.len())
            .sum()
    }

    fn unusable(&self, err: git2::Error) -> MirrorError {
        MirrorError::Unusable {
            path: self.path.clone(),
            what: err.message().to_owned(),
        }
    }
}

impl Mirror {
    /// The commit `id` leads to (an annotated tag is peeled), as a full hex id.
    pub(super) fn peel_to_commit(&self, id: &str) -> Option<String> {
        let oid = git2::Oid::from_str(id).ok()?;
        let object = self.repo.find_object(oid, None).ok()?;
        Some(object.peel_to_commit().ok()?.id().to_string())
    }
}

impl Mirror {
    /// The files in `objects/pack` now.
    pub(super) fn packs(path: &Path) -> std::collections::BTreeSet<PathBuf> {
        std::fs::read_dir(path.join("objects").join("pack"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .collect()
    }

    /// Undo a fetch that was refused after it landed: the pack files it added are
    /// removed and the refs it moved go back to what `held` says (or away).
    pub(super) fn discard(
        &self,
        packs: &std::collections::BTreeSet<PathBuf>,
        refs: &[String],
        held: &Wanted,
    ) -> Result<(), MirrorError> {
        for pack in Self::packs(&self.path).difference(packs) {
            let _ = std::fs::remove_file(pack);
        }
        for name in refs {
            let before = match (
                name.strip_prefix("refs/heads/"),
                name.strip_prefix("refs/tags/"),
            ) {
                (Some(branch), _) => held
                    .branch
                    .as_ref()
                    .filter(|(held, _)| held == branch)
                    .map(|(_, id)| id.clone()),
                (_, Some(tag)) => held.tags.get(tag).cloned(),
                _ => None,
            };
            let restored = match before.and_then(|id| git2::Oid::from_str(&id).ok()) {
                Some(oid) => self
                    .repo
                    .reference(name, oid, true, "promptsync: fetch refused")
                    .map(drop),
                None => match self.repo.find_reference(name) {
                    Ok(mut reference) => reference.delete(),
                    Err(_) => Ok(()),
                },
            };
            restored.map_err(|err| self.unusable(err))?;
        }
        Ok(())
    }
}
