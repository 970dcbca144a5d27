//! The probe server is not an open door: it listens on loopback unless told otherwise,
//! answers `/healthz` promptly while hundreds of slow clients hold connections (also
//! under a low open-file limit), refuses large bodies, lets a peer other than loopback
//! force a pass only with the token, and spaces forced passes out. Raw HTTP over real
//! sockets, so that what a neighbour could send is what the tests send.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{DEADLINE, one_prompt, wait_reconciling};
use crate::support::daemon::Daemon;
use crate::support::scenario::Scenario;
use crate::support::wait_until;

/// What Kubernetes allows a probe in the shipped manifests (`timeoutSeconds: 2`).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One HTTP/1.1 exchange on a new connection: status, head, body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// Send `request` (the whole text) to `addr` and read the reply until the server
/// closes, within `timeout` for each step.
fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(request)?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok(Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<Reply> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n");
    exchange(addr, request.as_bytes(), PROBE_TIMEOUT)
}

/// `POST /reconcile` with extra header lines (each ending in CRLF).
fn post_reconcile(addr: SocketAddr, headers: &str) -> Reply {
    let request = format!(
        "POST /reconcile HTTP/1.1\r\nHost: probe\r\nConnection: close\r\nContent-Length: 0\r\n{headers}\r\n"
    );
    exchange(addr, request.as_bytes(), DEADLINE).unwrap()
}

/// The probe server's address, as the daemon logged it.
fn probe_addr(daemon: &Daemon) -> SocketAddr {
    let logs = daemon.logs();
    let line = logs
        .iter()
        .find(|l| l["message"] == "probe server listening")
        .unwrap();
    line["addr"].as_str().unwrap().parse().unwrap()
}

/// `/healthz` answers 200 within [`PROBE_TIMEOUT`], `times` times in a row.
fn assert_healthz_prompt(addr: SocketAddr, times: usize) {
    for i in 0..times {
        let started = Instant::now();
        let reply = get(addr, "/healthz")
            .unwrap_or_else(|err| panic!("probe {i}: no answer within {PROBE_TIMEOUT:?}: {err}"));
        assert_eq!(reply.status, 200, "probe {i}: {}", reply.head);
        assert!(
            started.elapsed() < PROBE_TIMEOUT,
            "probe {i} took {:?}",
            started.elapsed()
        );
    }
}

/// `count` connections that send half a request head and then nothing.
fn slow_clients(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    // This process holds them all: make sure it may.
    promptsync::raise_fd_limit();
    // A server that stops accepting lets its backlog fill, and a connect then waits:
    // bounded, so that such a server fails the test instead of hanging it.
    (0..count)
        .map(|i| {
            let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
                .unwrap_or_else(|err| panic!("slow client {i} cannot even connect: {err}"));
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
                .unwrap();
            stream
        })
        .collect()
}

/// A child process, killed when dropped (also when a test panics).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `promptsync watch` run through `sh -c 'ulimit ...'`, with the daemon's usual
/// test settings and `--listen 127.0.0.1:0`.
fn watch_under_ulimit(s: &Scenario, ulimit: &str) -> Daemon {
    let inner = s.watch_command(&["--listen", "127.0.0.1:0"]);
    let line = format!("ulimit {ulimit} && exec \"$0\" \"$@\"");
    Daemon::attach(super::wrapped(&inner, "sh", &[], &line))
}

#[test]
fn the_default_listen_address_is_loopback() {
    let s = one_prompt();
    let mut child = Killed(
        s.watch_command(&[])
            .env("PROMPTSYNC_LOG__FORMAT", "json")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&lines);
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stderr);
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut reader, &mut line).is_ok_and(|n| n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    // Port 8080 may be taken on a shared machine: then the refusal names the address.
    let said = wait_until(DEADLINE, "the daemon to bind or give up", || {
        let text = lines.lock().unwrap().clone();
        let exited = child.0.try_wait().unwrap().is_some();
        (text.contains("probe server listening") || exited).then_some(text)
    });
    drop(child);
    assert!(
        said.contains("\"addr\":\"127.0.0.1:8080\"")
            || said.contains("cannot listen on 127.0.0.1:8080"),
        "{said}"
    );
    assert!(!said.contains("0.0.0.0"), "{said}");
}

#[test]
fn listen_takes_localhost_and_explains_forms_without_an_interface() {
    let s = one_prompt();
    for args in [&["--listen", ":8080"][..], &["--listen", "8080"]] {
        let output = s.watch_command(args).output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("127.0.0.1:8080"), "{args:?}: {err}");
        assert!(err.contains("0.0.0.0:8080"), "{args:?}: {err}");
    }
    let output = s
        .watch_command(&[])
        .env("PROMPTSYNC_WATCH__LISTEN", ":8080")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("watch.listen") && err.contains("names no interface"),
        "{err}"
    );

    let daemon = Daemon::attach(s.watch_command(&["--listen", "localhost:0"]));
    let addr = probe_addr(&daemon);
    assert_eq!(addr.ip(), IpAddr::from([127, 0, 0, 1]));
    assert_healthz_prompt(addr, 1);
    let mut emulator = Killed(
        crate::support::promptsync_command()
            .args(["emulator", "--listen", "localhost:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(emulator.0.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    drop(emulator);
    assert!(
        first.starts_with("promptsync emulator listening on http://127.0.0.1:"),
        "{first}"
    );
}

#[test]
fn healthz_answers_while_1100_slow_clients_hold_connections() {
    // The repro: the soft limit many systems start with, and more slow clients
    // than it allows. The daemon raises its soft limit to the hard one.
    let s = one_prompt();
    let daemon = watch_under_ulimit(&s, "-Sn 1024");
    daemon.wait_ready(DEADLINE);
    let addr = probe_addr(&daemon);
    let mut slow = slow_clients(addr, 1100);
    assert_healthz_prompt(addr, 10);
    // (A fresh connection: the test client's kept-alive one was idle, so it may have
    // been closed to make room.)
    let metrics = get(addr, "/metrics").unwrap().body;
    assert!(
        metrics.contains("promptsync_http_refused_total{reason=\"evicted\"}"),
        "the oldest slow clients made room: {metrics}"
    );
    // Each slow client is let go after the header timeout at the latest.
    for stream in slow.iter_mut().rev().take(20) {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(err) => assert!(
                !matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "a slow client is still held: {err}"
            ),
        }
    }
}

#[test]
fn a_low_hard_open_file_limit_still_leaves_room_for_probes() {
    let s = one_prompt();
    let mut daemon = watch_under_ulimit(&s, "-n 256");
    daemon.wait_ready(DEADLINE);
    let addr = probe_addr(&daemon);
    let _slow = slow_clients(addr, 400);
    assert_healthz_prompt(addr, 10);
    assert_eq!(get(addr, "/readyz").unwrap().status, 200);
    // The daemon still works: a commit syncs.
    s.repo.write(
        "prompts/a.prompt.yaml",
        &crate::support::scenario::prompt("A", "crowded"),
    );
    s.repo.commit("A while crowded");
    super::wait_for_text(&s, "A", "crowded");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(DEADLINE).code(), Some(0));
}

#[test]
fn a_body_over_the_limit_is_refused_and_triggers_nothing() {
    let s = one_prompt();
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    let addr = probe_addr(&daemon);
    let before = daemon.passes().len();
    // Declared too large: refused before a byte of it is read.
    let declared = exchange(
        addr,
        b"POST /reconcile HTTP/1.1\r\nHost: probe\r\nContent-Length: 100000000\r\n\r\n{}",
        DEADLINE,
    )
    .unwrap();
    assert_eq!(declared.status, 413, "{}", declared.head);
    assert_eq!(declared.header("connection").as_deref(), Some("close"));
    // Sent in chunks with no length: refused once it is over.
    let mut chunked =
        b"POST /reconcile HTTP/1.1\r\nHost: probe\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..16 {
        chunked.extend_from_slice(b"1000\r\n");
        chunked.extend_from_slice(&[b'x'; 4096]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let reply = exchange(addr, &chunked, DEADLINE).unwrap();
    assert_eq!(reply.status, 413, "{}", reply.head);
    // A small body is fine.
    let small = exchange(
        addr,
        b"POST /reconcile HTTP/1.1\r\nHost: probe\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        DEADLINE,
    )
    .unwrap();
    assert_eq!(small.status, 202, "{}", small.body);
    let pass = daemon.wait_passes(before + 1, DEADLINE);
    assert_eq!(pass["trigger"], "http", "{pass}");
    assert!(
        daemon
            .get("/metrics")
            .1
            .contains("promptsync_http_refused_total{reason=\"body_too_large\"} 2")
    );
}

/// A local address of this machine that is not loopback (the source address of a
/// route out; nothing is sent), if it has one.
fn outside_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn a_forced_pass_from_another_host_needs_the_token() {
    let Some(outside) = outside_address() else {
        eprintln!(
            "skipped: this machine has no address but loopback (the door's decision is unit-tested in daemon::door)"
        );
        return;
    };
    let s = one_prompt();
    let every_interface = |env: &[(&str, &str)]| {
        let mut command = s.watch_command(&["--listen", "0.0.0.0:0"]);
        command.envs(env.iter().copied());
        let daemon = Daemon::attach(command);
        daemon.wait_ready(DEADLINE);
        let port = probe_addr(&daemon).port();
        (
            daemon,
            SocketAddr::new(outside, port),
            SocketAddr::from(([127, 0, 0, 1], port)),
        )
    };
    let no_limit = ("PROMPTSYNC_WATCH__RECONCILE_MIN_INTERVAL", "0s");

    // No token configured: other hosts may not force a pass at all; loopback may.
    let (daemon, from_outside, from_loopback) = every_interface(&[no_limit]);
    assert!(
        daemon
            .log_text()
            .contains("POST /reconcile is answered for loopback peers only"),
        "{}",
        daemon.log_text()
    );
    let before = daemon.passes().len();
    let refused = post_reconcile(from_outside, "");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(get(from_outside, "/healthz").unwrap().status, 200);
    assert_eq!(post_reconcile(from_loopback, "").status, 202);
    let pass = daemon.wait_passes(before + 1, DEADLINE);
    assert_eq!(pass["trigger"], "http");
    drop(daemon);

    // With a token file: the token, and nothing else, opens the door.
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("reconcile-token");
    std::fs::write(&token_file, "t0ken-one\n").unwrap();
    let token_var = token_file.to_str().unwrap();
    let (daemon, from_outside, _) = every_interface(&[
        no_limit,
        ("PROMPTSYNC_WATCH__RECONCILE_TOKEN_FILE", token_var),
    ]);
    let before = daemon.passes().len();
    for headers in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: Bearer t0ken-one-and-more\r\n",
        "Authorization: Basic dDBrZW4tb25l\r\n",
    ] {
        let reply = post_reconcile(from_outside, headers);
        assert_eq!(reply.status, 401, "{headers:?}: {}", reply.body);
        assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"));
        assert!(!reply.body.contains("token"), "no detail: {}", reply.body);
    }
    let reply = post_reconcile(from_outside, "Authorization: Bearer t0ken-one\r\n");
    assert_eq!(reply.status, 202, "{}", reply.body);
    let pass = daemon.wait_passes(before + 1, DEADLINE);
    assert_eq!(pass["trigger"], "http");
    // A rotated token counts at once; the old one no longer does.
    std::fs::write(&token_file, "t0ken-two\n").unwrap();
    let old = post_reconcile(from_outside, "Authorization: Bearer t0ken-one\r\n");
    assert_eq!(old.status, 401);
    let new = post_reconcile(from_outside, "Authorization: bearer t0ken-two\r\n");
    assert_eq!(new.status, 202, "{}", new.body);
    daemon.wait_passes(before + 2, DEADLINE);
    let (_, metrics) = daemon.get("/metrics");
    assert!(
        metrics.contains("promptsync_http_refused_total{reason=\"unauthorized\"} 5"),
        "{metrics}"
    );
    let text = format!("{}{}{metrics}", daemon.log_text(), daemon.status());
    assert!(!text.contains("t0ken"), "the token never shows: {text}");
}

#[test]
fn a_token_file_that_cannot_be_read_stops_the_start() {
    let s = one_prompt();
    let output = s
        .watch_command(&["--listen", "127.0.0.1:0"])
        .env(
            "PROMPTSYNC_WATCH__RECONCILE_TOKEN_FILE",
            "/nonexistent/token",
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("watch.reconcile_token_file")
            && err.contains("/nonexistent/token does not exist"),
        "{err}"
    );
}

#[test]
fn forced_passes_are_spaced_and_one_waiting_is_joined() {
    let s = one_prompt();
    // Long enough that the slow passes below end well within it on a loaded machine.
    let daemon = s.watch_with(&[], &[("PROMPTSYNC_WATCH__RECONCILE_MIN_INTERVAL", "60s")]);
    daemon.wait_ready(DEADLINE);
    let addr = probe_addr(&daemon);
    // A slow pass holds the loop, so that a forced pass waits.
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 500}}));
    daemon.signal("HUP");
    wait_reconciling(&daemon);
    let first = post_reconcile(addr, "");
    assert_eq!(first.status, 202, "{}", first.body);
    let body: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(body, json!({"accepted": true, "joined": false}));
    let second = post_reconcile(addr, "");
    assert_eq!(second.status, 202, "{}", second.body);
    let body: Value = serde_json::from_str(&second.body).unwrap();
    assert_eq!(body, json!({"accepted": true, "joined": true}));
    daemon.wait_pass(DEADLINE, "the forced pass", |p| p["trigger"] == "http");
    s.emu.set_knobs(json!({"latency": {"fixed_ms": 0}}));

    // Within watch.reconcile_min_interval of the last one: wait.
    let third = post_reconcile(addr, "");
    assert_eq!(third.status, 429, "{}", third.body);
    let retry: u64 = third.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");

    // One forced pass came of the two accepted requests.
    let before = daemon.passes().len();
    daemon.signal("HUP");
    let after = daemon.wait_passes(before + 1, DEADLINE);
    assert_eq!(after["trigger"], "sighup", "no second forced pass: {after}");
    let (_, metrics) = daemon.get("/metrics");
    assert!(
        metrics.contains("promptsync_reconcile_total{trigger=\"http\",result=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("promptsync_http_refused_total{reason=\"rate_limited\"} 1"),
        "{metrics}"
    );
}
