//! A smart-HTTP git server on loopback: `git http-backend` run as a CGI behind a small
//! HTTP/1.1 server of the suite's own, serving the repositories under one directory.
//! It can demand a token (basic auth), hang on every request, and it logs what it
//! served (a ref advertisement, an `ls-refs`, a `fetch`) so tests can count them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the server answered (or held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Served {
    pub method: String,
    pub path: String,
    /// `advertise` (GET info/refs), `ls-refs` or `fetch` (POST git-upload-pack).
    pub command: String,
    pub status: u16,
    /// Whether the request carried an Authorization header.
    pub authorized: bool,
}

#[derive(Default)]
struct State {
    token: Option<(String, String)>,
    hang: bool,
    served: Vec<Served>,
}

pub(crate) struct GitHttp {
    port: u16,
    root: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl GitHttp {
    /// Serve the repositories under `root` (a repository `root/NAME`, bare or not, is
    /// `http://127.0.0.1:PORT/NAME`).
    pub(crate) fn start(root: &Path) -> GitHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the git server");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let server = GitHttp {
            port,
            root: root.to_owned(),
            state: Arc::clone(&state),
            stop: Arc::clone(&stop),
        };
        let root = root.to_owned();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (state, root, stop) =
                            (Arc::clone(&state), root.clone(), Arc::clone(&stop));
                        std::thread::spawn(move || {
                            let _ = serve(stream, &root, &state, &stop);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        server
    }

    /// The URL of the repository `name` under the root.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Demand basic auth with this user name and token (`None`: anyone may read).
    pub(crate) fn require_token(&self, credentials: Option<(&str, &str)>) {
        self.state.lock().unwrap().token =
            credentials.map(|(user, token)| (user.to_owned(), token.to_owned()));
    }

    /// Hold every new request without an answer.
    pub(crate) fn hang(&self, on: bool) {
        self.state.lock().unwrap().hang = on;
    }

    pub(crate) fn served(&self) -> Vec<Served> {
        self.state.lock().unwrap().served.clone()
    }

    pub(crate) fn clear(&self) {
        self.state.lock().unwrap().served.clear();
    }

    /// How many requests of `command` were served.
    pub(crate) fn count(&self, command: &str) -> usize {
        self.served()
            .iter()
            .filter(|s| s.command == command)
            .count()
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    stream: TcpStream,
    root: &Path,
    state: &Mutex<State>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = read_body(
        &mut reader,
        &header("content-length"),
        header("transfer-encoding").as_deref(),
    )?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let command = if method == "GET" {
        "advertise".to_owned()
    } else if contains(&body, b"command=ls-refs") {
        "ls-refs".to_owned()
    } else {
        "fetch".to_owned()
    };
    let authorized = header("authorization").is_some();
    let (hang, token) = {
        let state = state.lock().unwrap();
        (state.hang, state.token.clone())
    };
    let mut record = Served {
        method: method.clone(),
        path: path.to_owned(),
        command,
        status: 0,
        authorized,
    };
    let mut out = stream;
    if hang {
        state.lock().unwrap().served.push(record);
        let until = Instant::now() + Duration::from_secs(120);
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return Ok(());
    }
    if let Some((user, token)) = token {
        let expected = format!("Basic {}", base64(format!("{user}:{token}").as_bytes()));
        if header("authorization").as_deref() != Some(expected.as_str()) {
            record.status = 401;
            state.lock().unwrap().served.push(record);
            out.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        }
    }
    let mut cgi = Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &method)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(protocol) = header("git-protocol") {
        cgi.env("GIT_PROTOCOL", protocol);
    }
    let mut child = cgi.spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let mut output = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut output)?;
    let _ = writer.join();
    child.wait()?;
    let split = find(&output, b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| find(&output, b"\n\n").map(|at| (at, 2)))
        .unwrap_or((output.len(), 0));
    let head = String::from_utf8_lossy(&output[..split.0]).into_owned();
    let content = &output[(split.0 + split.1).min(output.len())..];
    let mut status = 200;
    let mut response = Vec::new();
    for line in head.lines() {
        match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => {
                status = value
                    .trim()
                    .split(' ')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(500);
            }
            Some(_) => response.extend_from_slice(format!("{line}\r\n").as_bytes()),
            None => {}
        }
    }
    record.status = status;
    state.lock().unwrap().served.push(record);
    out.write_all(
        format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
            content.len()
        )
        .as_bytes(),
    )?;
    out.write_all(&response)?;
    out.write_all(b"\r\n")?;
    out.write_all(content)?;
    out.flush()
}

fn read_body(
    reader: &mut impl BufRead,
    length: &Option<String>,
    encoding: Option<&str>,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if encoding.is_some_and(|e| e.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = length.as_ref().and_then(|l| l.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_encodes_like_rfc_4648() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"git:token"), "Z2l0OnRva2Vu");
}
