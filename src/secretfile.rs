//! Secrets read from files or the environment: notification tokens, webhook secrets and
//! URLs that carry credentials, the reconcile token. Read when they are used (a regular
//! file, at most 64 KiB, trimmed), so a rotated Kubernetes Secret takes effect at the
//! next use; kept in a
//! [`SecretString`]; and every one of them passes through [`remember`], the one place
//! where a secret promptsync holds is handed to the process's redactor. Messages name
//! the file or variable, never the value.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use crate::localfile::{self, Failure};

/// A secret file larger than this holds more than a secret.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Read the secret in `path`. The error names the file and what is wrong with it.
pub(crate) fn read_file(path: &Path, what: &str) -> Result<SecretString, String> {
    let shown = path.display();
    let bytes = localfile::read(path, MAX_SECRET_BYTES).map_err(|failure| match failure {
        Failure::Missing => {
            format!("the {what} file {shown} does not exist (is the secret mounted?)")
        }
        Failure::TooLarge { .. } => format!(
            "the {what} file {shown} is larger than {}; it must hold the {what} alone",
            localfile::human_size(MAX_SECRET_BYTES)
        ),
        other => format!("the {what} file {shown} {other}"),
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("the {what} file {shown} is not UTF-8 text"))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(format!("the {what} file {shown} is empty"));
    }
    Ok(remember(SecretString::from(value.to_owned())))
}

/// A secret from an environment variable (`GITHUB_TOKEN`), trimmed; `None` when unset
/// or empty.
pub(crate) fn from_env(value: Option<&str>) -> Option<SecretString> {
    let value = value?.trim();
    (!value.is_empty()).then(|| remember(SecretString::from(value.to_owned())))
}

/// Every secret of this module goes through here: the one call site where the
/// process-wide redactor learns the values it must never let out.
pub(crate) fn remember(secret: SecretString) -> SecretString {
    crate::secret::register(secret.expose_secret());
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_trimmed_and_errors_name_the_file_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  ghp_secret\n").unwrap();
        assert_eq!(
            read_file(&file, "token").unwrap().expose_secret(),
            "ghp_secret"
        );
        std::fs::write(&file, " \n").unwrap();
        let err = read_file(&file, "token").unwrap_err();
        assert!(err.contains("is empty") && err.contains("token"), "{err}");
        let err = read_file(&dir.path().join("nope"), "token").unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        assert!(
            read_file(dir.path(), "token")
                .unwrap_err()
                .contains("directory")
        );
        assert!(from_env(Some("  ")).is_none());
        assert_eq!(from_env(Some(" t ")).unwrap().expose_secret(), "t");
    }
}
