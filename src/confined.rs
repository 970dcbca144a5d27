//! Writing files inside the repository and nowhere else (for `promptsync pull`). A
//! directory is named by components relative to the repository root, none of them
//! `..` or `.git`; each is opened relative to its parent's handle with `O_NOFOLLOW`,
//! so a committed symbolic link cannot lead a write out of the repository, and a swap
//! made while pull runs cannot either. Files are read and written the same way: an
//! existing target is looked at without following it (a link, a FIFO or a device is
//! an error, never opened for writing), read bounded and without blocking, and
//! replaced atomically (a temporary file in the same directory, then a rename relative
//! to the directory handle; without `replace`, a rename that refuses to overwrite).
//! Knows nothing about prompts.

use std::ffi::{OsStr, OsString};
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use thiserror::Error;

use crate::localfile::FileKind;

/// Why a directory or file inside the repository cannot be written. Paths are shown
/// relative to the repository root, with `/`.
#[derive(Debug, Error)]
pub enum WriteError {
    #[error("`{dir}` is an absolute path; give the directory relative to the repository root")]
    Absolute { dir: String },

    #[error("`{dir}` leads out of the repository (`..`); give a directory inside it")]
    Parent { dir: String },

    #[error("`{dir}` is inside a `.git` directory; promptsync never writes there")]
    GitDir { dir: String },

    #[error(
        "`{path}` is a symbolic link; promptsync does not write through links (it could \
         lead out of the repository): replace it with a directory or choose another one"
    )]
    Link { path: String },

    #[error("`{path}` is {what}, not a directory")]
    NotADirectory { path: String, what: &'static str },

    #[error("`{path}` is {kind}, not a regular file; remove it or move it away")]
    NotAFile { path: String, kind: FileKind },

    #[error(
        "`{path}` is another git repository (a submodule or a nested clone); pull into a \
         directory of this repository"
    )]
    Nested { path: String },

    /// The target exists and `replace` was not asked for.
    #[error("`{path}` exists")]
    Exists { path: String },

    #[error("cannot write `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The components of `dir`, a directory relative to the repository root (`.` for the
/// root itself), checked without touching the disk: not absolute, no `..`, no `.git`
/// (in any letter case: case-insensitive file systems).
pub(crate) fn components(dir: &Path) -> Result<Vec<OsString>, WriteError> {
    let shown = || dir.display().to_string();
    let mut parts = Vec::new();
    for component in dir.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => {
                return Err(WriteError::Absolute { dir: shown() });
            }
            Component::ParentDir => return Err(WriteError::Parent { dir: shown() }),
            Component::CurDir => {}
            Component::Normal(name) if name.eq_ignore_ascii_case(".git") => {
                return Err(WriteError::GitDir { dir: shown() });
            }
            Component::Normal(name) => parts.push(name.to_owned()),
        }
    }
    Ok(parts)
}

/// What a name in a directory is, looked at without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    Missing,
    File,
    Link,
    Other(FileKind),
}

/// A directory inside the repository, opened through no link.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    /// Its path from the repository root (`` for the root), for messages.
    shown: String,
}

impl Dir {
    /// Open `parts` below `root` (the root itself may be reached through a link: the
    /// operator chose it). `create`: make the directories that are missing; without
    /// it, `None` when one is missing. A link, a file or a nested repository on the
    /// way is an error.
    pub(crate) fn open(
        root: &Path,
        parts: &[OsString],
        create: bool,
    ) -> Result<Option<Dir>, WriteError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(root, flags, Mode::empty()).map_err(|errno| WriteError::Io {
            path: root.display().to_string(),
            source: errno.into(),
        })?;
        let mut dir = Dir {
            fd,
            shown: String::new(),
        };
        for name in parts {
            match dir.child(name, create)? {
                Some(child) => dir = child,
                None => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// The path of `name` in this directory, for messages.
    pub(crate) fn shown(&self, name: &OsStr) -> String {
        let name = name.to_string_lossy();
        if self.shown.is_empty() {
            name.into_owned()
        } else {
            format!("{}/{name}", self.shown)
        }
    }

    fn child(&self, name: &OsStr, create: bool) -> Result<Option<Dir>, WriteError> {
        let shown = self.shown(name);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut made = false;
        let fd = loop {
            match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if create && !made => {
                    match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => made = true,
                        Err(errno) => return Err(io(&shown, errno)),
                    }
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    return Err(match self.entry(name)? {
                        Entry::Link => WriteError::Link { path: shown },
                        Entry::Other(kind) => WriteError::NotADirectory {
                            path: shown,
                            what: kind.describe(),
                        },
                        Entry::File => WriteError::NotADirectory {
                            path: shown,
                            what: "a regular file",
                        },
                        // Swapped away meanwhile: say what was seen.
                        Entry::Missing => io(&shown, Errno::NOTDIR),
                    });
                }
                Err(errno) => return Err(io(&shown, errno)),
            }
        };
        let child = Dir { fd, shown };
        if child.entry(OsStr::new(".git"))? != Entry::Missing {
            return Err(WriteError::Nested { path: child.shown });
        }
        Ok(Some(child))
    }

    /// What `name` is, without following it.
    pub(crate) fn entry(&self, name: &OsStr) -> Result<Entry, WriteError> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile => Entry::File,
                FileType::Symlink => Entry::Link,
                FileType::Directory => Entry::Other(FileKind::Directory),
                FileType::Fifo => Entry::Other(FileKind::Fifo),
                FileType::Socket => Entry::Other(FileKind::Socket),
                FileType::CharacterDevice => Entry::Other(FileKind::CharDevice),
                FileType::BlockDevice => Entry::Other(FileKind::BlockDevice),
                FileType::Unknown => Entry::Other(FileKind::Other),
            }),
            Err(Errno::NOENT) => Ok(Entry::Missing),
            Err(errno) => Err(io(&self.shown(name), errno)),
        }
    }

    /// The bytes of the regular file `name`, opened without following a link and
    /// without waiting; `None` when it holds more than `limit` bytes.
    pub(crate) fn read(&self, name: &OsStr, limit: u64) -> Result<Option<Vec<u8>>, WriteError> {
        let shown = self.shown(name);
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd =
            rustix::fs::openat(&self.fd, name, flags, Mode::empty()).map_err(
                |errno| match errno {
                    Errno::LOOP => WriteError::Link {
                        path: shown.clone(),
                    },
                    errno => io(&shown, errno),
                },
            )?;
        let stat = rustix::fs::fstat(&fd).map_err(|errno| io(&shown, errno))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(WriteError::NotAFile {
                path: shown,
                kind: FileKind::Other,
            });
        }
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| WriteError::Io {
                path: shown.clone(),
                source,
            })?;
        Ok((bytes.len() as u64 <= limit).then_some(bytes))
    }

    /// Write `bytes` to `name` whole: a temporary file beside it, synced, then renamed
    /// into place relative to this directory. With `replace`, an existing regular
    /// file is replaced (its permissions kept); without it, an existing name is left
    /// alone ([`WriteError::Exists`]). Anything but a regular file at `name` is an
    /// error either way.
    pub(crate) fn write(
        &self,
        name: &OsStr,
        bytes: &[u8],
        replace: bool,
    ) -> Result<(), WriteError> {
        let shown = self.shown(name);
        let mode = match self.entry(name)? {
            Entry::Missing => None,
            Entry::File if replace => rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .ok()
                .map(|stat| Mode::from_raw_mode(stat.st_mode & 0o7777)),
            Entry::File => return Err(WriteError::Exists { path: shown }),
            Entry::Link => return Err(WriteError::Link { path: shown }),
            Entry::Other(kind) => return Err(WriteError::NotAFile { path: shown, kind }),
        };
        let (temp, fd) = self.temp_file().map_err(|errno| io(&shown, errno))?;
        let written = write_synced(fd, bytes, mode)
            .and_then(|()| self.rename(&temp, name, replace))
            .and_then(|()| rustix::fs::fsync(&self.fd).or(Ok(())));
        match written {
            Ok(()) => Ok(()),
            Err(errno) => {
                let _ = rustix::fs::unlinkat(&self.fd, &temp, AtFlags::empty());
                Err(match errno {
                    Errno::EXIST if !replace => WriteError::Exists { path: shown },
                    errno => io(&shown, errno),
                })
            }
        }
    }

    /// A new file of a fresh name in this directory, for writing.
    fn temp_file(&self) -> Result<(OsString, OwnedFd), Errno> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut last = Errno::EXIST;
        for _ in 0..16 {
            let name = OsString::from(format!(".promptsync-pull-{:016x}.tmp", fastrand::u64(..)));
            match rustix::fs::openat(&self.fd, &name, flags, Mode::from_raw_mode(0o666)) {
                Ok(fd) => return Ok((name, fd)),
                Err(errno) => last = errno,
            }
            if last != Errno::EXIST {
                break;
            }
        }
        Err(last)
    }

    fn rename(&self, temp: &OsStr, name: &OsStr, replace: bool) -> Result<(), Errno> {
        if replace {
            return rustix::fs::renameat(&self.fd, temp, &self.fd, name);
        }
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        match rustix::fs::renameat_with(
            &self.fd,
            temp,
            &self.fd,
            name,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Err(Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => {}
            done => return done,
        }
        // A file system without an exclusive rename: a hard link fails on an existing
        // name too.
        rustix::fs::linkat(&self.fd, temp, &self.fd, name, AtFlags::empty())?;
        rustix::fs::unlinkat(&self.fd, temp, AtFlags::empty())
    }
}

fn write_synced(fd: OwnedFd, bytes: &[u8], mode: Option<Mode>) -> Result<(), Errno> {
    if let Some(mode) = mode {
        rustix::fs::fchmod(fd.as_fd(), mode)?;
    }
    let mut file = std::fs::File::from(fd);
    let errno = |err: std::io::Error| Errno::from_io_error(&err).unwrap_or(Errno::IO);
    file.write_all(bytes).map_err(errno)?;
    file.sync_all().map_err(errno)
}

fn io(path: &str, errno: Errno) -> WriteError {
    WriteError::Io {
        path: path.to_owned(),
        source: errno.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn parts(dir: &str) -> Result<Vec<OsString>, WriteError> {
        components(Path::new(dir))
    }

    #[test]
    fn a_directory_must_stay_inside_and_out_of_git() {
        assert_eq!(parts("prompts/team").unwrap(), ["prompts", "team"]);
        assert_eq!(parts("./prompts/").unwrap(), ["prompts"]);
        assert!(parts(".").unwrap().is_empty());
        for (dir, wanted) in [
            ("/tmp/x", "absolute"),
            ("../x", "leads out"),
            ("prompts/../../x", "leads out"),
            (".git/hooks", "`.git`"),
            ("a/.GIT", "`.git`"),
        ] {
            let err = parts(dir).unwrap_err().to_string();
            assert!(err.contains(wanted), "{dir}: {err}");
        }
    }

    #[test]
    fn links_files_and_nested_repositories_on_the_way_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.path().join("linked")).unwrap();
        std::fs::write(root.path().join("file"), "x").unwrap();
        std::fs::create_dir_all(root.path().join("sub/.git")).unwrap();
        for (dir, wanted) in [
            ("linked", "symbolic link"),
            ("linked/deeper", "symbolic link"),
            ("file", "is a regular file, not a directory"),
            ("sub", "another git repository"),
        ] {
            let err = Dir::open(root.path(), &parts(dir).unwrap(), true)
                .unwrap_err()
                .to_string();
            assert!(err.contains(wanted), "{dir}: {err}");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(
            Dir::open(root.path(), &parts("new/dir").unwrap(), false)
                .unwrap()
                .is_none()
        );
        let made = Dir::open(root.path(), &parts("new/dir").unwrap(), true)
            .unwrap()
            .unwrap();
        assert_eq!(made.shown(OsStr::new("f")), "new/dir/f");
        assert!(root.path().join("new/dir").is_dir());
    }

    #[test]
    fn writes_are_whole_and_never_through_a_link() {
        let root = tempfile::tempdir().unwrap();
        let dir = Dir::open(root.path(), &[], false).unwrap().unwrap();
        let name = OsStr::new("a.yaml");
        dir.write(name, b"one", false).unwrap();
        assert!(matches!(
            dir.write(name, b"two", false),
            Err(WriteError::Exists { .. })
        ));
        assert_eq!(std::fs::read(root.path().join("a.yaml")).unwrap(), b"one");
        dir.write(name, b"two", true).unwrap();
        assert_eq!(dir.read(name, 10).unwrap().unwrap(), b"two");
        assert_eq!(dir.read(name, 2).unwrap(), None, "over the limit");

        let target = root.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        symlink(&target, root.path().join("link.yaml")).unwrap();
        for replace in [false, true] {
            let err = dir
                .write(OsStr::new("link.yaml"), b"x", replace)
                .unwrap_err();
            assert!(matches!(err, WriteError::Link { .. }), "{err}");
        }
        assert!(matches!(
            dir.read(OsStr::new("link.yaml"), 10),
            Err(WriteError::Link { .. })
        ));
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        let names: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".promptsync"))
            .collect();
        assert!(names.is_empty(), "no temporary file left: {names:?}");
    }

    #[test]
    fn a_fifo_is_named_and_never_opened() {
        let root = tempfile::tempdir().unwrap();
        let fifo = crate::localfile::test_fifo(root.path());
        let name = fifo.file_name().unwrap();
        let dir = Dir::open(root.path(), &[], false).unwrap().unwrap();
        assert_eq!(dir.entry(name).unwrap(), Entry::Other(FileKind::Fifo));
        let err = dir.write(name, b"x", true).unwrap_err().to_string();
        assert!(err.contains("named pipe"), "{err}");
        // Opened without waiting for a writer, and refused by what was opened.
        assert!(dir.read(name, 10).is_err());
    }
}
