//! An address to serve on (`watch.listen`, `watch --listen`, `emulator --listen`):
//! `IP:PORT`, or `localhost:PORT` for loopback. A form that says nothing about the
//! interface (`:8080`, a bare port) is explained rather than guessed: the daemon's
//! probe server answers requests that cost API calls, so which interfaces it opens is
//! written down, not implied.

use std::net::{Ipv4Addr, SocketAddr};

/// Parse `text` as an address to listen on, or say how to write it.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let example = "write IP:PORT: 127.0.0.1:8080 for this machine only, 0.0.0.0:8080 for \
                   every interface, [::]:8080 for every IPv6 one";
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(if text.parse::<u16>().is_ok() {
            format!("{text:?} is a port alone; {example}")
        } else {
            format!("{text:?} is not an address; {example}")
        });
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!(
            "{text:?} does not end in a port (0 to 65535); {example}"
        ));
    };
    if host.is_empty() {
        return Err(format!(
            "{text:?} names no interface; write 127.0.0.1:{port} for this machine only or \
             0.0.0.0:{port} for every interface"
        ));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if host.contains(':') {
        return Err(format!(
            "{text:?}: write an IPv6 address in brackets, like [::1]:{port}"
        ));
    }
    Err(format!(
        "{text:?}: {host:?} is not an IP address (host names other than localhost are not \
         looked up); {example}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_localhost_are_taken() {
        for (text, addr) in [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("0.0.0.0:0", "0.0.0.0:0"),
            ("[::]:8080", "[::]:8080"),
            ("localhost:8080", "127.0.0.1:8080"),
            (" LOCALHOST:9 ", "127.0.0.1:9"),
        ] {
            assert_eq!(parse_listen(text).unwrap().to_string(), addr, "{text}");
        }
    }

    #[test]
    fn forms_that_name_no_interface_are_explained() {
        for (text, wanted) in [
            (
                ":8080",
                "127.0.0.1:8080 for this machine only or 0.0.0.0:8080",
            ),
            ("8080", "a port alone"),
            ("example.com:80", "not an IP address"),
            ("::1:8080", "in brackets, like [::1]:8080"),
            ("localhost:http", "does not end in a port"),
            ("localhost", "not an address"),
        ] {
            let err = parse_listen(text).unwrap_err();
            assert!(err.contains(wanted), "{text}: {err}");
        }
    }
}
