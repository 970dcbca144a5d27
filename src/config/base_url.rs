//! The API base URL: parsed, normalised to the host root (a trailing `/` or `/api` is
//! dropped, as respan-api.md 1.1 asks) and refused over plain `http://` for every host
//! but loopback, since the API key travels with each request. Pure, no I/O.

use url::{Host, Url};

use super::error::quoted;

/// Parse and normalise a base URL; the error says what is wrong and what to write.
pub(super) fn parse(text: &str) -> Result<Url, String> {
    let shown = quoted(text);
    let mut url = Url::parse(text).map_err(|err| {
        format!("{shown} is not a URL ({err}); write it like \"https://api.respan.ai\"")
    })?;
    let host = match url.host() {
        Some(host) => host.to_owned(),
        None => {
            return Err(format!(
                "{shown} has no host; write it like \"https://api.respan.ai\""
            ));
        }
    };
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err(format!(
                "plain http:// is refused for {host}: it would send the API key \
                 unencrypted; use https:// (http is allowed only for loopback hosts: \
                 127.0.0.0/8, [::1], localhost)"
            ));
        }
        other => {
            return Err(format!(
                "{shown} uses the scheme {other:?}; use https:// (or http:// for a \
                 loopback host)"
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "carries a user name or password; remove them (the API key is read from \
             RESPAN_API_KEY or api.api_key_file)"
                .to_owned(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{shown} has a query or fragment; give the host root, like \
             \"https://api.respan.ai\""
        ));
    }
    let path = url.path().trim_end_matches('/');
    let path = path
        .strip_suffix("/api")
        .unwrap_or(path)
        .trim_end_matches('/');
    if !path.is_empty() {
        return Err(format!(
            "{shown} has the path {}; give the host root, like \
             \"https://api.respan.ai\" (a trailing /api is accepted)",
            quoted(path)
        ));
    }
    url.set_path("/");
    Ok(url)
}

fn is_loopback(host: &Host) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        parse(text)
            .unwrap_or_else(|err| panic!("{text}: {err}"))
            .to_string()
    }

    fn err(text: &str) -> String {
        parse(text).expect_err(text)
    }

    #[test]
    fn trailing_slash_and_api_are_normalised_to_the_host_root() {
        for text in [
            "https://api.respan.ai",
            "https://api.respan.ai/",
            "https://api.respan.ai/api",
            "https://api.respan.ai/api/",
            "https://API.respan.ai//api//",
        ] {
            assert_eq!(ok(text), "https://api.respan.ai/", "{text}");
        }
        assert_eq!(
            ok("https://proxy.example:8443/api"),
            "https://proxy.example:8443/"
        );
    }

    #[test]
    fn plain_http_is_refused_for_remote_hosts() {
        for text in [
            "http://api.respan.ai",
            "http://10.0.0.5:8080",
            "http://[2001:db8::1]/",
            "http://localhost.example.com",
        ] {
            let message = err(text);
            assert!(message.contains("use https://"), "{text}: {message}");
        }
    }

    #[test]
    fn plain_http_is_accepted_for_loopback() {
        assert_eq!(ok("http://127.0.0.1:8787"), "http://127.0.0.1:8787/");
        assert_eq!(ok("http://127.3.2.1:1/api"), "http://127.3.2.1:1/");
        assert_eq!(ok("http://localhost:8787/"), "http://localhost:8787/");
        assert_eq!(ok("http://LOCALHOST:8787/"), "http://localhost:8787/");
        assert_eq!(ok("http://[::1]:8787"), "http://[::1]:8787/");
    }

    #[test]
    fn other_shapes_are_refused_with_advice() {
        assert!(err("api.respan.ai").contains("not a URL"));
        assert!(err("ftp://api.respan.ai").contains("scheme \"ftp\""));
        assert!(err("https://user:pw@api.respan.ai").contains("user name or password"));
        assert!(err("https://api.respan.ai/?x=1").contains("query"));
        assert!(err("https://api.respan.ai/v2/prompts").contains("path \"/v2/prompts\""));
        assert!(err("unix:/tmp/sock").contains("no host"));
    }
}
