//! Where the API key comes from: `RESPAN_API_KEY`, or the file named by
//! `api.api_key_file` (a Kubernetes secret mount), never both. The key's text is never
//! put in a message; only the variable's or the file's name is.

use std::path::Path;

use super::error::Problem;
use super::layers::API_KEY_VAR;
use crate::localfile::{self, Failure, FileKind};
use crate::secret::ApiKey;

/// A key file larger than this is not a key file.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The key file setting, resolved to a path, with the origin of the setting.
#[derive(Debug)]
pub(super) struct KeyFile<'a> {
    pub(super) path: &'a Path,
    pub(super) origin: &'a str,
}

/// The API key, if one is set. `env_key` is `RESPAN_API_KEY` (already trimmed; empty
/// counts as unset).
pub(super) fn resolve(
    env_key: Option<ApiKey>,
    file: Option<KeyFile<'_>>,
) -> Result<Option<ApiKey>, Problem> {
    match (env_key, file) {
        (Some(_), Some(file)) => Err(Problem::new(
            Some("api.api_key_file"),
            file.origin,
            format!(
                "is set together with the environment variable {API_KEY_VAR}; keep one \
                 of them so that it is clear which key is used"
            ),
        )),
        (Some(key), None) => check(key).map(Some).map_err(|message| {
            Problem::new(None, format!("environment variable {API_KEY_VAR}"), message)
        }),
        (None, Some(file)) => read(file.path)
            .and_then(check)
            .map(Some)
            .map_err(|message| Problem::new(Some("api.api_key_file"), file.origin, message)),
        (None, None) => Ok(None),
    }
}

/// Read and trim the key file (a regular file, at most [`MAX_KEY_FILE_BYTES`]). Errors
/// name the file, never its contents.
pub(super) fn read(path: &Path) -> Result<ApiKey, String> {
    let shown = path.display();
    let bytes = localfile::read(path, MAX_KEY_FILE_BYTES).map_err(|failure| match failure {
        Failure::Missing => {
            format!("the key file {shown} does not exist; check the path (is the secret mounted?)")
        }
        Failure::NotAFile(FileKind::Directory) => format!(
            "{shown} is a directory; point api_key_file at the file inside it that holds the key"
        ),
        Failure::NotAFile(kind) => format!(
            "the key file {shown} is {kind}, not a regular file; point api_key_file at the \
             file that holds the key"
        ),
        Failure::TooLarge { .. } => format!(
            "the key file {shown} is larger than {}; it must hold the key alone",
            localfile::human_size(MAX_KEY_FILE_BYTES)
        ),
        Failure::Io(err) => format!(
            "cannot read the key file {shown}: {}",
            localfile::io_text(&err)
        ),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        format!("the key file {shown} is not UTF-8 text; it must hold the key alone")
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!(
            "the key file {shown} is empty; put the API key in it, or unset api_key_file"
        ));
    }
    Ok(ApiKey::new(key))
}

/// A key must fit in an HTTP header as it is: printable ASCII without spaces.
pub(super) fn check(key: ApiKey) -> Result<ApiKey, String> {
    if key.expose().bytes().all(|byte| byte.is_ascii_graphic()) {
        Ok(key)
    } else {
        Err(
            "the API key contains spaces, line breaks or non-ASCII characters; it \
             must be the key alone, on one line"
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk_test_0123456789abcdef";

    fn from_file(contents: &[u8]) -> Result<Option<ApiKey>, Problem> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-key");
        std::fs::write(&path, contents).unwrap();
        resolve(
            None,
            Some(KeyFile {
                path: &path,
                origin: "promptsync.toml",
            }),
        )
    }

    fn assert_no_secret(problem: &Problem) {
        let text = format!("{problem} {problem:?}");
        assert!(!text.contains(SECRET), "{text}");
    }

    #[test]
    fn the_file_is_trimmed() {
        let key = from_file(format!("  {SECRET}\n\n").as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(key.expose(), SECRET);
    }

    #[test]
    fn env_key_alone_is_used() {
        let key = resolve(Some(ApiKey::new(SECRET)), None).unwrap().unwrap();
        assert_eq!(key.expose(), SECRET);
        assert!(resolve(None, None).unwrap().is_none());
    }

    #[test]
    fn both_sources_at_once_is_an_error() {
        let problem = resolve(
            Some(ApiKey::new(SECRET)),
            Some(KeyFile {
                path: Path::new("/run/secrets/key"),
                origin: "environment variable PROMPTSYNC_API__API_KEY_FILE",
            }),
        )
        .unwrap_err();
        assert!(problem.message.contains("RESPAN_API_KEY"), "{problem}");
        assert_no_secret(&problem);
    }

    #[test]
    fn empty_multiline_and_binary_files_are_refused_without_quoting_them() {
        let empty = from_file(b" \n").unwrap_err();
        assert!(empty.message.contains("is empty"), "{empty}");
        let two_lines = from_file(format!("{SECRET}\n{SECRET}\n").as_bytes()).unwrap_err();
        assert!(two_lines.message.contains("line breaks"), "{two_lines}");
        assert_no_secret(&two_lines);
        let binary = from_file(&[0xff, 0xfe, 0x00]).unwrap_err();
        assert!(binary.message.contains("not UTF-8"), "{binary}");
    }

    #[test]
    fn a_huge_file_is_not_a_key() {
        let problem = from_file(&vec![b'a'; 70_000]).unwrap_err();
        assert!(problem.message.contains("larger than"), "{problem}");
    }

    #[test]
    fn missing_file_and_directory_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let problem = resolve(
            None,
            Some(KeyFile {
                path: &missing,
                origin: "promptsync.toml",
            }),
        )
        .unwrap_err();
        assert!(problem.message.contains("does not exist"), "{problem}");
        assert_eq!(problem.key.as_deref(), Some("api.api_key_file"));
        let problem = resolve(
            None,
            Some(KeyFile {
                path: dir.path(),
                origin: "promptsync.toml",
            }),
        )
        .unwrap_err();
        assert!(problem.message.contains("is a directory"), "{problem}");
    }

    #[test]
    fn fifos_and_devices_are_not_key_files_and_do_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = localfile::test_fifo(dir.path());
        for (path, kind) in [
            (fifo.as_path(), "a named pipe (FIFO)"),
            (Path::new("/dev/zero"), "a character device"),
        ] {
            let problem = resolve(
                None,
                Some(KeyFile {
                    path,
                    origin: "promptsync.toml",
                }),
            )
            .unwrap_err();
            assert!(
                problem
                    .message
                    .contains(&format!("is {kind}, not a regular file")),
                "{problem}"
            );
        }
    }

    #[test]
    fn a_key_with_a_space_from_the_env_is_refused() {
        let problem = resolve(Some(ApiKey::new(format!("Bearer {SECRET}"))), None).unwrap_err();
        assert_eq!(problem.origin, "environment variable RESPAN_API_KEY");
        assert_no_secret(&problem);
    }
}
