//! `[source]`: the remote repository promptsync fetches itself, validated. Every key is
//! operator-trusted (where the credentials are, where the mirror lives, which remote
//! is the truth): the repository's own `promptsync.toml` may set none of them
//! ([`trust::set_by_repository`](crate::config::trust)). Pure: the files it names are
//! read at each fetch, not here.

use std::path::PathBuf;
use std::time::Duration;

use figment::value::Value;

use super::super::SourceSettings;
use super::super::error::Problem;
use super::super::layers::Origin;
use super::super::raw::RawSource;
use super::{Checker, duration, path, text};
use crate::source::{RemoteUrl, Transport};

/// The `[source]` section: `Some(None)` when no URL is set, `None` when invalid.
pub(super) fn source(check: &mut Checker<'_>, raw: RawSource) -> Option<Option<SourceSettings>> {
    let url = check.optional("source.url", raw.url, |v, _| RemoteUrl::parse(&text(v)?));
    let branch = check.optional("source.branch", raw.branch, branch);
    let username = check.optional("source.username", raw.username, username);
    let token_file = check.optional("source.token_file", raw.token_file, file);
    let ssh_key_file = check.optional("source.ssh_key_file", raw.ssh_key_file, file);
    let known_hosts_file = check.optional("source.known_hosts_file", raw.known_hosts_file, file);
    let cache_dir = check.optional("source.cache_dir", raw.cache_dir, file);
    let interval = check.get(
        "source.interval",
        raw.interval,
        duration(Duration::from_secs(1)),
    );
    let fetch_timeout = check.get(
        "source.fetch_timeout",
        raw.fetch_timeout,
        duration(Duration::from_millis(100)),
    );
    let max_fetch_size = check.get("source.max_fetch_size", raw.max_fetch_size, |v, _| size(v));
    let (url, branch, username, token_file, ssh_key_file, known_hosts_file, cache_dir) = (
        url?,
        branch?,
        username?,
        token_file?,
        ssh_key_file?,
        known_hosts_file?,
        cache_dir?,
    );
    let Some(url) = url else {
        let stray = [
            ("source.branch", branch.is_some()),
            ("source.username", username.is_some()),
            ("source.token_file", token_file.is_some()),
            ("source.ssh_key_file", ssh_key_file.is_some()),
            ("source.known_hosts_file", known_hosts_file.is_some()),
            ("source.cache_dir", cache_dir.is_some()),
        ];
        for (key, _) in stray.iter().filter(|(_, set)| *set) {
            check.problems.push(Problem::new(
                Some(key),
                "configuration",
                "is set but source.url is not; set source.url (or --source URL) to fetch a remote, or remove it",
            ));
        }
        return Some(None);
    };
    let problem = |check: &mut Checker<'_>, key: &str, message: String| {
        check
            .problems
            .push(Problem::new(Some(key), "configuration", message));
    };
    match url.transport() {
        Transport::Ssh => {
            if token_file.is_some() {
                problem(
                    check,
                    "source.token_file",
                    format!(
                        "is for https:// remotes; {url} is reached over SSH, which uses source.ssh_key_file"
                    ),
                );
            }
            if ssh_key_file.is_some() != known_hosts_file.is_some() {
                problem(check, "source.known_hosts_file", "source.ssh_key_file and source.known_hosts_file go together: the host key is always checked against a known_hosts file you give (`ssh-keyscan -p PORT HOST > known_hosts`, then check the fingerprint)".to_owned());
            }
        }
        Transport::Http | Transport::Git => {
            if ssh_key_file.is_some() || known_hosts_file.is_some() {
                problem(
                    check,
                    "source.ssh_key_file",
                    format!(
                        "is for ssh:// remotes; {url} is reached over HTTP, which uses source.token_file"
                    ),
                );
            }
            if url.transport() == Transport::Git && token_file.is_some() {
                problem(
                    check,
                    "source.token_file",
                    "git:// sends no credentials; use https://".to_owned(),
                );
            }
            if username.is_some() && token_file.is_none() {
                problem(
                    check,
                    "source.username",
                    "is sent only with a token; set source.token_file too".to_owned(),
                );
            }
        }
    }
    Some(Some(SourceSettings {
        url,
        branch,
        interval: interval?,
        token_file: token_file.map(|(path, _)| path),
        username,
        ssh_key_file: ssh_key_file.map(|(path, _)| path),
        known_hosts_file: known_hosts_file.map(|(path, _)| path),
        cache_dir: cache_dir.map(|(path, _)| path),
        fetch_timeout: fetch_timeout?,
        max_fetch_size: max_fetch_size?,
    }))
}

fn file(value: &Value, origin: &Origin) -> Result<(PathBuf, Origin), String> {
    let (path, origin) = path(value, origin)?;
    if path.as_os_str().is_empty() {
        return Err("is empty; give a path".to_owned());
    }
    Ok((path, origin))
}

/// A branch name as git allows it (`git check-ref-format --branch`, the common rules).
fn branch(value: &Value, _: &Origin) -> Result<String, String> {
    let name = text(value)?;
    let name = name.strip_prefix("refs/heads/").unwrap_or(&name).to_owned();
    let bad = name.is_empty()
        || name.starts_with(['-', '/', '.'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name
            .chars()
            .any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c));
    if bad {
        return Err(format!("{name:?} is not a branch name git accepts"));
    }
    Ok(name)
}

fn username(value: &Value, _: &Origin) -> Result<String, String> {
    let name = text(value)?;
    if name.is_empty() || name.contains(':') || name.chars().any(|c| c.is_control()) {
        return Err("must be a non-empty name without `:` or control characters".to_owned());
    }
    Ok(name)
}

/// A size in bytes: a whole number, or one with a unit (`KiB`, `MiB`, `GiB`, and
/// `KB`, `MB`, `GB`).
fn size(value: &Value) -> Result<u64, String> {
    let raw = text(value)?;
    let trimmed = raw.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => {
            return Err(format!(
                "{raw:?} is not a size; write it like \"512MiB\" or \"2GiB\""
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| *n >= 1 << 20)
        .ok_or_else(|| {
            format!("{raw:?} is not a size of at least 1MiB; write it like \"512MiB\" or \"2GiB\"")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::layers::Layer;

    fn value(text: &str) -> Value {
        Value::from(text.to_owned())
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(size(&value("512MiB")), Ok(512 << 20));
        assert_eq!(size(&value("2 GiB")), Ok(2 << 30));
        assert_eq!(size(&value("1048576")), Ok(1 << 20));
        assert!(size(&value("12 parsecs")).is_err());
        assert!(size(&value("1KiB")).unwrap_err().contains("at least 1MiB"));
    }

    #[test]
    fn branch_names_follow_git() {
        let origin = Origin {
            layer: Layer::Env,
            label: "env".into(),
        };
        assert_eq!(branch(&value("main"), &origin), Ok("main".into()));
        assert_eq!(
            branch(&value("refs/heads/release/1"), &origin),
            Ok("release/1".into())
        );
        for bad in ["", "-x", "a..b", "a b", "x.lock", "a:b", "a/"] {
            assert!(branch(&value(bad), &origin).is_err(), "{bad}");
        }
    }
}
