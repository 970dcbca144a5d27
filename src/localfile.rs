//! Reading the local files promptsync is pointed at (the configuration file, the API key
//! file, prompt and content files on disk): regular files only, never more than a limit,
//! and never blocking. A FIFO, socket or device (or a symbolic link to one) is refused by
//! its type before it is opened, and the open itself does not wait where the platform
//! allows it to say so; `/dev/zero` cannot fill the memory. Knows nothing about what the
//! files hold; callers word the failures for their own files.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// `O_NONBLOCK` where its value is known (0 elsewhere): opening a FIFO swapped in after
/// the type check then fails instead of waiting for a writer. Regular files ignore it.
const O_NONBLOCK: i32 = if cfg!(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64",
        target_arch = "s390x",
        target_arch = "powerpc64",
        target_arch = "loongarch64"
    )
)) {
    0o4000
} else if cfg!(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)) {
    0x4
} else {
    0
};

/// What a path names when it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Other,
}

impl FileKind {
    /// The kind of a file that is not a regular file; `None` for a regular file.
    pub fn of(metadata: &Metadata) -> Option<FileKind> {
        let ty = metadata.file_type();
        Some(if ty.is_file() {
            return None;
        } else if ty.is_dir() {
            FileKind::Directory
        } else if ty.is_fifo() {
            FileKind::Fifo
        } else if ty.is_socket() {
            FileKind::Socket
        } else if ty.is_char_device() {
            FileKind::CharDevice
        } else if ty.is_block_device() {
            FileKind::BlockDevice
        } else {
            FileKind::Other
        })
    }

    /// `a directory`, `a named pipe (FIFO)`, ...
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a named pipe (FIFO)",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Other => "not a regular file",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why a file could not be read. Carries no path: callers name their files themselves.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nothing is there (or a symbolic link leads nowhere).
    Missing,
    /// Something that is not a regular file is there.
    NotAFile(FileKind),
    /// Over the limit; `size` is the size seen (at least `limit + 1`).
    TooLarge { size: u64, limit: u64 },
    /// Any other I/O error (permissions, ...).
    Io(io::Error),
}

impl fmt::Display for Failure {
    /// The failure as the end of a sentence about the file: `is a directory, not a
    /// regular file`, `is 5000000 bytes, over the limit of 1 MiB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Missing => f.write_str("does not exist"),
            Failure::NotAFile(FileKind::Other) => f.write_str("is not a regular file"),
            Failure::NotAFile(kind) => write!(f, "is {kind}, not a regular file"),
            Failure::TooLarge { size, limit } => write!(
                f,
                "is {size} bytes, over the limit of {}",
                human_size(*limit)
            ),
            Failure::Io(err) => write!(f, "cannot be read ({})", io_text(err)),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        if err.kind() == io::ErrorKind::NotFound {
            Failure::Missing
        } else {
            Failure::Io(err)
        }
    }
}

/// The kind of what `path` names (symbolic links followed): `Ok(None)` for a regular
/// file. Never opens it.
pub(crate) fn kind(path: &Path) -> Result<Option<FileKind>, Failure> {
    Ok(FileKind::of(&std::fs::metadata(path)?))
}

/// The bytes of the regular file at `path` (symbolic links followed), at most `limit`.
pub(crate) fn read(path: &Path, limit: u64) -> Result<Vec<u8>, Failure> {
    if let Some(kind) = kind(path)? {
        return Err(Failure::NotAFile(kind));
    }
    read_opened(path, limit)
}

/// [`read`] for a path the caller has just seen to be a regular file (by `lstat`):
/// opened without looking at it again. What was opened is still checked, and the open
/// does not wait where the platform allows it to say so.
pub(crate) fn read_opened(path: &Path, limit: u64) -> Result<Vec<u8>, Failure> {
    let (file, metadata) = open(path)?;
    read_checked(file, &metadata, limit)
}

/// [`read_opened`] for the file that `seen` (its `lstat`) describes: `Ok(None)` when
/// what the open found is another file (same device and inode, or not), because a
/// name on the way was swapped in between. Callers resolve the path again.
pub(crate) fn read_if_same(
    path: &Path,
    seen: &Metadata,
    limit: u64,
) -> Result<Option<Vec<u8>>, Failure> {
    use std::os::unix::fs::MetadataExt as _;
    let (file, metadata) = open(path)?;
    if (metadata.dev(), metadata.ino()) != (seen.dev(), seen.ino()) {
        return Ok(None);
    }
    read_checked(file, &metadata, limit).map(Some)
}

/// Open `path` for reading without waiting, and what was opened.
fn open(path: &Path) -> Result<(File, Metadata), Failure> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    // What was opened, not what was looked at: it may have been swapped since.
    let metadata = file.metadata()?;
    Ok((file, metadata))
}

/// Read the opened `file` when it is a regular file within `limit`.
fn read_checked(file: File, metadata: &Metadata, limit: u64) -> Result<Vec<u8>, Failure> {
    if let Some(kind) = FileKind::of(metadata) {
        return Err(Failure::NotAFile(kind));
    }
    if metadata.len() > limit {
        return Err(Failure::TooLarge {
            size: metadata.len(),
            limit,
        });
    }
    read_at_most(file, metadata.len(), limit)
}

/// Read to the end, refusing more than `limit` bytes (a file can grow while it is read,
/// and some report no size at all).
fn read_at_most(file: File, expected: u64, limit: u64) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::with_capacity(usize::try_from(expected.min(limit)).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(Failure::TooLarge { size, limit });
    }
    Ok(bytes)
}

/// `1 MiB`, `64 KiB`, `100 bytes`.
pub(crate) fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// An I/O error's text without Rust's `(os error N)` suffix.
pub(crate) fn io_text(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// A FIFO at `dir/fifo`, for tests (with the `mkfifo` tool).
#[cfg(test)]
pub(crate) fn test_fifo(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&path).status();
    assert!(made.is_ok_and(|status| status.success()), "mkfifo {path:?}");
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read(&path, 5).unwrap(), b"12345");
        let err = read(&path, 4).unwrap_err();
        assert!(
            matches!(err, Failure::TooLarge { size: 5, limit: 4 }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "is 5 bytes, over the limit of 4 bytes");
    }

    #[test]
    fn directories_fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = test_fifo(dir.path());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        for (path, kind) in [
            (dir.path(), FileKind::Directory),
            (fifo.as_path(), FileKind::Fifo),
            (link.as_path(), FileKind::Fifo),
            (Path::new("/dev/zero"), FileKind::CharDevice),
        ] {
            let err = read(path, 1024).unwrap_err();
            assert!(
                matches!(err, Failure::NotAFile(k) if k == kind),
                "{path:?}: {err:?}"
            );
        }
        assert_eq!(
            read(&fifo, 1).unwrap_err().to_string(),
            "is a named pipe (FIFO), not a regular file"
        );
    }

    #[test]
    fn missing_files_and_dangling_links() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert!(matches!(read(&link, 1), Err(Failure::Missing)));
        assert!(matches!(
            read(&dir.path().join("x"), 1),
            Err(Failure::Missing)
        ));
    }

    #[test]
    fn sizes_and_errors_read_well() {
        assert_eq!(human_size(1024 * 1024), "1 MiB");
        assert_eq!(human_size(64 * 1024), "64 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
        let err = io::Error::from_raw_os_error(13);
        assert_eq!(io_text(&err), "Permission denied");
    }
}
