//! The remote's URL rules: which forms are accepted (`https://`, `ssh://`, scp-like
//! `git@host:path`; plain `http://` and `git://` only for loopback hosts, where the
//! tests' servers run), that no credential is ever written in a URL (they come from
//! files), and the mirror's directory name. Pure, no I/O.

use sha2::{Digest, Sha256};

/// How the remote is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `https://`, or `http://` to a loopback host.
    Http,
    /// `ssh://` or scp-like `user@host:path`, through the system's `ssh`.
    Ssh,
    /// `git://` to a loopback host (no authentication at all).
    Git,
}

/// A checked remote URL. It holds no credential, so it may be logged as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// The URL as given (trimmed), for messages and for git.
    text: String,
    transport: Transport,
    host: String,
}

impl RemoteUrl {
    /// Check `text`; the error says what is wrong and what to write instead.
    pub fn parse(text: &str) -> Result<RemoteUrl, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty; give the repository's URL, like \"https://github.com/org/prompts.git\" or \"git@github.com:org/prompts.git\"".to_owned());
        }
        let url = gix::url::parse(text.as_bytes()).map_err(|err| {
            format!("{text:?} is not a git URL ({err}); write it like \"https://github.com/org/prompts.git\" or \"git@github.com:org/prompts.git\"")
        })?;
        let host = url.host().unwrap_or_default().to_owned();
        let loopback = is_loopback(url.host_unbracketed().unwrap_or_default());
        let transport = match &url.scheme {
            gix::url::Scheme::Https => Transport::Http,
            gix::url::Scheme::Http if loopback => Transport::Http,
            gix::url::Scheme::Http => {
                return Err(format!(
                    "plain http:// is refused for {host}: the token and the prompts would travel unencrypted; use https:// (http:// and git:// are allowed only for loopback hosts)"
                ));
            }
            gix::url::Scheme::Ssh => Transport::Ssh,
            gix::url::Scheme::Git if loopback => Transport::Git,
            gix::url::Scheme::Git => {
                return Err(format!(
                    "git:// is refused for {host}: it is neither encrypted nor authenticated; use https:// or ssh://"
                ));
            }
            gix::url::Scheme::File => {
                return Err(format!(
                    "{text:?} is a local path; a remote source is fetched over https:// or ssh:// (for a local clone, leave source.url unset and pass --repo PATH)"
                ));
            }
            other => {
                return Err(format!(
                    "{text:?} uses the scheme {:?}; use https:// or ssh:// (or git@host:path)",
                    other.as_str()
                ));
            }
        };
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        if url.password().is_some() || (transport == Transport::Http && url.user().is_some()) {
            return Err(
                "carries a user name or password; remove them: the token is read from source.token_file and the user name from source.username".to_owned(),
            );
        }
        if url.path.is_empty() || url.path_is_root() {
            return Err(format!(
                "{text:?} names no repository; add its path, like \"https://github.com/org/prompts.git\""
            ));
        }
        Ok(RemoteUrl {
            text: text.to_owned(),
            transport,
            host,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The mirror's directory name in the cache: readable (host and repository name)
    /// and unique (a digest of the whole URL), `[A-Za-z0-9._-]` only.
    pub fn cache_name(&self) -> String {
        let digest = Sha256::digest(self.text.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let name = self
            .text
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or_default()
            .trim_end_matches(".git");
        let slug: String = format!("{}-{name}", self.host)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(60)
            .collect();
        format!("{}-{hex}.git", slug.trim_matches('.'))
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        RemoteUrl::parse(text).expect_err(text)
    }

    #[test]
    fn https_ssh_and_scp_like_forms_are_accepted() {
        for (text, transport, host) in [
            (
                "https://github.com/org/prompts.git",
                Transport::Http,
                "github.com",
            ),
            (
                "ssh://git@github.com/org/prompts.git",
                Transport::Ssh,
                "github.com",
            ),
            (
                "ssh://git@127.0.0.1:2222/srv/repo.git",
                Transport::Ssh,
                "127.0.0.1",
            ),
            (
                "git@github.com:org/prompts.git",
                Transport::Ssh,
                "github.com",
            ),
            (
                "http://127.0.0.1:8080/repo.git",
                Transport::Http,
                "127.0.0.1",
            ),
            ("http://localhost/repo.git", Transport::Http, "localhost"),
            ("git://127.0.0.1/repo.git", Transport::Git, "127.0.0.1"),
            ("http://[::1]:9/repo.git", Transport::Http, "[::1]"),
        ] {
            let url = RemoteUrl::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
            assert_eq!(url.transport(), transport, "{text}");
            assert_eq!(url.host, host, "{text}");
            assert_eq!(url.as_str(), text);
        }
    }

    #[test]
    fn plain_transports_are_refused_off_loopback() {
        assert!(err("http://git.example.com/repo.git").contains("use https://"));
        assert!(err("http://10.0.0.1/repo.git").contains("use https://"));
        assert!(err("git://github.com/org/repo.git").contains("neither encrypted"));
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        for text in [
            "https://user:tok@github.com/org/repo.git",
            "https://x-access-token@github.com/org/repo.git",
            "ssh://git:pw@github.com/org/repo.git",
        ] {
            assert!(err(text).contains("source.token_file"), "{text}");
        }
    }

    #[test]
    fn local_paths_and_odd_schemes_say_what_to_do() {
        assert!(err("/srv/repo.git").contains("--repo"));
        assert!(err("file:///srv/repo.git").contains("--repo"));
        assert!(err("").contains("is empty"));
        assert!(err("https://github.com/").contains("names no repository"));
    }

    #[test]
    fn cache_names_are_readable_unique_and_safe() {
        let a = RemoteUrl::parse("https://github.com/org/prompts.git").unwrap();
        let b = RemoteUrl::parse("https://gitlab.com/org/prompts.git").unwrap();
        let c = RemoteUrl::parse("git@github.com:org/prompts.git").unwrap();
        assert!(
            a.cache_name().starts_with("github.com-prompts-"),
            "{}",
            a.cache_name()
        );
        assert!(a.cache_name().ends_with(".git"));
        assert_ne!(a.cache_name(), b.cache_name());
        assert_ne!(a.cache_name(), c.cache_name());
        let odd = RemoteUrl::parse("ssh://git@127.0.0.1:2222/srv/we%20ird(repo)~.git").unwrap();
        assert!(
            odd.cache_name()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "{}",
            odd.cache_name()
        );
    }
}
