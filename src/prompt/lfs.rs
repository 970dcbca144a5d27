//! Git LFS pointers where a prompt or content file is expected. A file stored with Git
//! LFS is committed as a small text pointer (`version https://git-lfs.github.com/spec/v1`,
//! its object id and size); promptsync reads what is committed, so such a file would
//! be read, and sent, as the pointer. Recognised by its first line, and refused with
//! advice. Pure.

use crate::diagnostic::Diagnostic;
use crate::excerpt;

/// The first line of a Git LFS pointer (and of the pre-release "hawser" one).
const VERSIONS: [&str; 2] = [
    "version https://git-lfs.github.com/spec/",
    "version https://hawser.github.com/spec/",
];

/// Pointers are small; a longer file that happens to start with the line is text.
const MAX_POINTER_BYTES: usize = 1024;

/// What to do about a pointer.
pub(crate) const HELP: &str = "promptsync reads the files committed to git, and a file kept in Git LFS is committed as this pointer: keep prompt and content files out of LFS (`git lfs untrack PATTERN`, `git add --renormalize .`, commit); `git lfs pull` fetches the real files into a working tree only";

/// A Git LFS pointer: the size of the file it stands for, when it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub size: Option<u64>,
}

impl Pointer {
    /// `bytes` read as a Git LFS pointer, when they are one.
    pub(crate) fn of(bytes: &[u8]) -> Option<Pointer> {
        if bytes.len() > MAX_POINTER_BYTES {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        if !VERSIONS.iter().any(|version| text.starts_with(version)) {
            return None;
        }
        let size = text
            .lines()
            .find_map(|line| line.strip_prefix("size "))
            .and_then(|size| size.trim().parse().ok());
        Some(Pointer { size })
    }

    /// `a Git LFS pointer (to 2,048 bytes stored in LFS)`.
    fn describe(self) -> String {
        match self.size {
            Some(size) => format!(
                "a Git LFS pointer (to {} bytes stored in LFS)",
                excerpt::thousands(usize::try_from(size).unwrap_or(usize::MAX))
            ),
            None => "a Git LFS pointer".to_owned(),
        }
    }

    /// The finding for a prompt file that is a pointer: the whole file, at 1:1.
    pub(crate) fn prompt_file(self, path: &str) -> Diagnostic {
        let mut diagnostic = Diagnostic::error(
            path,
            format!(
                "the prompt file is {}, not the prompt itself",
                self.describe()
            ),
        )
        .with_help(HELP);
        diagnostic.line = Some(1);
        diagnostic.column = Some(1);
        diagnostic
    }

    /// The message for a content file (`relative` as the prompt file names it) that is
    /// a pointer.
    pub(crate) fn content_file(self, relative: &str) -> String {
        format!(
            "content file {} is {}, not the text itself",
            excerpt::quoted(relative),
            self.describe()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTER: &str = "version https://git-lfs.github.com/spec/v1\n\
        oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n\
        size 12345\n";

    #[test]
    fn pointers_are_recognised_by_their_first_line() {
        assert_eq!(
            Pointer::of(POINTER.as_bytes()),
            Some(Pointer { size: Some(12345) })
        );
        let hawser = "version https://hawser.github.com/spec/v1\noid sha256:ab\n";
        assert_eq!(Pointer::of(hawser.as_bytes()), Some(Pointer { size: None }));
        assert_eq!(Pointer::of(b"name: A\nmodel: m\n"), None);
        assert_eq!(Pointer::of(b"\xff\xfe"), None);
        let long = format!("{POINTER}{}", "x".repeat(2000));
        assert_eq!(Pointer::of(long.as_bytes()), None);
    }

    #[test]
    fn findings_say_what_it_is() {
        let pointer = Pointer::of(POINTER.as_bytes()).unwrap();
        let d = pointer.prompt_file("p/a.prompt.yaml");
        assert_eq!(
            d.message,
            "the prompt file is a Git LFS pointer (to 12,345 bytes stored in LFS), not the prompt itself"
        );
        assert_eq!((d.line, d.column), (Some(1), Some(1)));
        assert_eq!(
            pointer.content_file("text/system.md"),
            "content file `text/system.md` is a Git LFS pointer (to 12,345 bytes stored in LFS), not the text itself"
        );
    }
}
