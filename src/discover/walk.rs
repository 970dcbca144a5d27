//! The walk of a working tree on disk: every file that the globs take, less what git
//! ignores, `.git` and symbolic links to directories skipped, names that are not UTF-8
//! listed as unreadable, nested repositories (submodules) noted for a warning and
//! never entered for reading.

use std::path::Path;

use super::ignores::Ignores;
use super::{DiscoverError, Listing, ReadError, Submodule};

/// A walk of a working tree on disk, collecting what `accept` takes.
pub(super) struct Walk<'a> {
    pub(super) accept: &'a dyn Fn(&str) -> bool,
    pub(super) out: &'a mut Listing,
}

impl Walk<'_> {
    /// Walk the directory `full` (`rel` from the root, as lossy text when `utf8` is
    /// false: a directory on the way has a name that is not UTF-8, so every file under
    /// it is unreadable by its path).
    pub(super) fn dir(
        &mut self,
        full: &Path,
        rel: &str,
        utf8: bool,
        mut ignores: Option<&mut Ignores>,
    ) -> Result<(), DiscoverError> {
        let walk_error = |error| DiscoverError::Walk {
            path: full.to_owned(),
            error,
        };
        let entries = std::fs::read_dir(full).map_err(walk_error)?;
        if let Some(ignores) = ignores.as_deref_mut() {
            ignores.enter(full);
        }
        for entry in entries {
            let entry = entry.map_err(walk_error)?;
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let (name, name_utf8) = match name.to_str() {
                Some(name) => (name.to_owned(), true),
                None => (name.to_string_lossy().into_owned(), false),
            };
            if name == ".git" {
                continue;
            }
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let utf8 = utf8 && name_utf8;
            let path = entry.path();
            let ignored = |is_dir: bool| {
                ignores
                    .as_deref()
                    .is_some_and(|ignores| ignores.ignored(&path, is_dir))
            };
            // A symbolic link to a directory is skipped like the directories it could
            // loop through; every other non-directory is listed, whatever it is.
            if file_type.is_dir() {
                if ignored(true) {
                    continue;
                }
                if path.join(".git").exists() {
                    self.nested_repository(&path, &child);
                    continue;
                }
                self.dir(&path, &child, utf8, ignores.as_deref_mut())?;
            } else if file_type.is_symlink() && path.is_dir() {
                continue;
            } else if (self.accept)(&child) && !ignored(false) {
                if utf8 {
                    self.out.files.push(child);
                } else {
                    self.out
                        .unreadable
                        .push((child.clone(), ReadError::NameNotUtf8 { path: child }));
                }
            }
        }
        if let Some(ignores) = ignores {
            ignores.leave();
        }
        Ok(())
    }

    /// A submodule, or another repository inside this one: never read, but the files
    /// in it that `accept` takes are noted, for a warning.
    fn nested_repository(&mut self, full: &Path, rel: &str) {
        let mut inside = Listing::default();
        let walked = Walk {
            accept: self.accept,
            out: &mut inside,
        }
        .dir(full, rel, true, None);
        // Only for a warning: a part that cannot be listed is left out of it.
        if let Err(err) = walked {
            tracing::debug!(dir = %full.display(), error = %err, "cannot list a nested repository");
        }
        let mut files: Vec<String> = inside
            .files
            .into_iter()
            .chain(inside.unreadable.into_iter().map(|(path, _)| path))
            .chain(inside.submodules.into_iter().flat_map(|s| s.files))
            .collect();
        if !files.is_empty() {
            files.sort();
            self.out.submodules.push(Submodule {
                path: rel.to_owned(),
                files,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn a_walk_lists_what_it_takes_and_notes_nested_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "a.prompt.yaml",
            "notes.md",
            "sub/b.prompt.yaml",
            ".git/c.prompt.yaml",
            "nested/.git/HEAD",
            "nested/d.prompt.yaml",
        ] {
            std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            std::fs::write(root.join(file), "x").unwrap();
        }
        std::os::unix::fs::symlink("sub", root.join("linked")).unwrap();
        std::fs::write(root.join(OsStr::from_bytes(b"odd-\xff.prompt.yaml")), "x").unwrap();

        let accept = |path: &str| path.ends_with(".prompt.yaml");
        let mut listing = Listing::default();
        Walk {
            accept: &accept,
            out: &mut listing,
        }
        .dir(root, "", true, None)
        .unwrap();
        listing.files.sort();

        assert_eq!(listing.files, ["a.prompt.yaml", "sub/b.prompt.yaml"]);
        let unreadable: Vec<&str> = listing.unreadable.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(unreadable, ["odd-\u{fffd}.prompt.yaml"]);
        assert!(matches!(
            listing.unreadable[0].1,
            ReadError::NameNotUtf8 { .. }
        ));
        assert_eq!(
            listing.submodules,
            [Submodule {
                path: "nested".into(),
                files: vec!["nested/d.prompt.yaml".into()],
            }]
        );
    }

    #[test]
    fn a_directory_that_cannot_be_listed_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let mut listing = Listing::default();
        let err = Walk {
            accept: &|_| true,
            out: &mut listing,
        }
        .dir(&missing, "gone", true, None)
        .unwrap_err();
        assert!(
            err.to_string().starts_with("cannot list the directory "),
            "{err}"
        );
        assert!(err.to_string().contains("gone"), "{err}");
    }
}
