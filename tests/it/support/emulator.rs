//! The emulator for integration tests: [`TestEmulator`] runs it in-process on
//! `127.0.0.1:0` (its own tokio runtime, so tests stay plain `#[test]` fns that can run
//! the real `promptsync` binary against it); [`EmulatorProcess`] runs the real
//! `promptsync emulator` binary, for persistence and kill tests. Both talk to it
//! through [`Http`], a small blocking client over reqwest: raw HTTP, never through
//! promptsync's own API client.
//!
//! The helper's own set-up and inspection requests (`get`, `post`, `versions`, ...)
//! carry the User-Agent [`HELPER_AGENT`] and are left out of [`TestEmulator::requests`],
//! so a test counts only what the client under test sent.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use promptsync_emulator::{self as emulator, EmulatorConfig, RunningEmulator};
use serde_json::{Value, json};

pub(crate) use promptsync_emulator::RequestRecord;

/// The Bearer key helpers send. The default emulator accepts any key.
pub(crate) const TEST_KEY: &str = "sk_test_emulator";
/// The User-Agent of the helpers' own requests.
pub(crate) const HELPER_AGENT: &str = "promptsync-test-helper";
/// The User-Agent of [`Call`] requests (conformance tests), which the log keeps.
pub(crate) const CALL_AGENT: &str = "promptsync-conformance";

/// One HTTP reply, read in full.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    /// The body as JSON (`Null` when empty); panics on anything else.
    pub(crate) fn json(&self) -> Value {
        if self.text.is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", self.text))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A blocking HTTP client for one base URL, on its own current-thread runtime.
pub(crate) struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

impl Http {
    pub(crate) fn new(base: &str) -> Http {
        Http::with_pool(base, true)
    }

    /// [`Http::new`] with a new connection for every request: for a server that
    /// closes idle kept-alive connections (the daemon's, after its header timeout),
    /// which a client whose runtime is idle between requests may not notice before it
    /// sends on one.
    pub(crate) fn unpooled(base: &str) -> Http {
        Http::with_pool(base, false)
    }

    fn with_pool(base: &str, pooled: bool) -> Http {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("test client runtime");
        promptsync::api::install_tls_provider();
        // Raw replies: a redirect is a reply to look at, never followed.
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(if pooled { usize::MAX } else { 0 })
            .build()
            .expect("test HTTP client");
        Http {
            runtime,
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub(crate) fn base_url(&self) -> String {
        self.base.clone()
    }

    /// A request to `path` (e.g. `/api/prompts/`) with the test key.
    pub(crate) fn call(&self, method: &str, path: &str) -> Call<'_> {
        Call {
            http: self,
            method: reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method"),
            path: path.to_owned(),
            key: Some(TEST_KEY.to_owned()),
            headers: vec![("user-agent".to_owned(), CALL_AGENT.to_owned())],
            body: None,
        }
    }

    fn helper(&self, method: &str, path: &str) -> Call<'_> {
        self.call(method, path).header("user-agent", HELPER_AGENT)
    }

    /// A request to the test-only admin endpoint (no key, the helper's User-Agent).
    pub(crate) fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let mut call = self.helper(method, path).key(None);
        if let Some(body) = body {
            call = call.json(body);
        }
        call.send()
    }
}

/// A request being built; `send` panics on a connection error, `try_send` returns it.
pub(crate) struct Call<'a> {
    http: &'a Http,
    method: reqwest::Method,
    path: String,
    key: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl<'a> Call<'a> {
    /// A JSON body with `content-type: application/json`.
    pub(crate) fn json(self, body: Value) -> Self {
        let bytes = serde_json::to_vec(&body).expect("JSON body");
        self.header("content-type", "application/json").raw(bytes)
    }

    /// A body sent as is.
    pub(crate) fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The Bearer key, or `None` for no Authorization header.
    pub(crate) fn key(mut self, key: Option<&str>) -> Self {
        self.key = key.map(str::to_owned);
        self
    }

    /// Set a header (replacing an earlier one of that name).
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The reqwest request, and the runtime to send it on.
    fn build(self) -> (&'a Http, reqwest::RequestBuilder) {
        let url = format!("{}{}", self.http.base, self.path);
        let mut request = self.http.client.request(self.method, url);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = self.body {
            request = request.body(body);
        }
        (self.http, request)
    }

    pub(crate) fn try_send(self) -> Result<Reply, reqwest::Error> {
        let (http, request) = self.build();
        http.runtime.block_on(async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await?;
            Ok(Reply {
                status,
                headers,
                text,
            })
        })
    }

    pub(crate) fn send(self) -> Reply {
        let what = format!("{} {}", self.method, self.path);
        self.try_send()
            .unwrap_or_else(|e| panic!("{what} failed without a reply: {e}"))
    }

    /// Send, then read the body as it streams in: until it ends, `max` bytes have
    /// come, or `stop` returns true for the bytes so far. The first `keep` bytes
    /// are kept; the rest is only counted, so a huge body costs nothing here.
    pub(crate) fn stream(
        self,
        max: u64,
        keep: usize,
        mut stop: impl FnMut(&Streamed) -> bool,
    ) -> Streamed {
        let what = format!("{} {}", self.method, self.path);
        let (http, request) = self.build();
        http.runtime.block_on(async move {
            let started = std::time::Instant::now();
            let mut response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{what} failed without a reply: {e}"));
            let mut streamed = Streamed {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                head: Vec::new(),
                read: 0,
                complete: false,
                headers_after: started.elapsed(),
                arrivals: Vec::new(),
            };
            while streamed.read < max && !stop(&streamed) {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = keep.saturating_sub(streamed.head.len());
                        streamed
                            .head
                            .extend_from_slice(&chunk[..room.min(chunk.len())]);
                        streamed.read += chunk.len() as u64;
                        streamed.arrivals.push(started.elapsed());
                    }
                    Ok(None) => {
                        streamed.complete = true;
                        break;
                    }
                    Err(e) => panic!("{what}: the body broke off: {e}"),
                }
            }
            streamed
        })
    }
}

/// A reply read by [`Call::stream`].
#[derive(Debug)]
pub(crate) struct Streamed {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// The first bytes of the body.
    pub head: Vec<u8>,
    /// Bytes read in all.
    pub read: u64,
    /// The body ended (rather than the read being stopped).
    pub complete: bool,
    /// Time from sending to the status line and headers.
    pub headers_after: Duration,
    /// Time from sending to each chunk of the body.
    pub arrivals: Vec<Duration>,
}

/// The emulator in-process on `127.0.0.1:0`, stopped (state flushed) on drop.
pub(crate) struct TestEmulator {
    http: Http,
    running: Option<RunningEmulator>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestEmulator {
    /// In memory, any key, default knobs.
    pub(crate) fn start() -> TestEmulator {
        TestEmulator::start_with(EmulatorConfig::default())
    }

    /// An emulator that takes only another key than the one the tests send.
    pub(crate) fn refusing_the_test_key() -> TestEmulator {
        TestEmulator::start_with(EmulatorConfig {
            api_keys: vec!["sk_the_right_one".into()],
            ..Default::default()
        })
    }

    pub(crate) fn start_with(config: EmulatorConfig) -> TestEmulator {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("emulator runtime");
        let running = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            emulator::start(config, listener)
                .await
                .expect("emulator starts")
        });
        TestEmulator {
            http: Http::new(&running.base_url()),
            running: Some(running),
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:PORT`, for `RESPAN_BASE_URL`.
    pub(crate) fn base_url(&self) -> String {
        self.http.base_url()
    }

    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// A raw request to the API, logged like a client's (see [`Call`]).
    pub(crate) fn call(&self, method: &str, path: &str) -> Call<'_> {
        self.http.call(method, path)
    }

    /// Set knobs through the admin endpoint, e.g. `json!({"commit_mode": "bump"})`.
    pub(crate) fn set_knobs(&self, knobs: Value) {
        let reply = self.http.admin("PATCH", "/_emulator/knobs", Some(knobs));
        assert_eq!(reply.status, 200, "set_knobs: {}", reply.text);
    }

    /// The armed faults (`GET /_emulator/faults`).
    pub(crate) fn faults(&self) -> Value {
        let reply = self.http.admin("GET", "/_emulator/faults", None);
        assert_eq!(reply.status, 200, "faults: {}", reply.text);
        reply.json()
    }

    /// Arm a fault (or a list of faults) through the admin endpoint.
    pub(crate) fn inject(&self, fault: Value) {
        let reply = self.http.admin("POST", "/_emulator/faults", Some(fault));
        assert_eq!(reply.status, 201, "inject: {}", reply.text);
    }

    /// Every logged request, the helper's own included, in arrival order.
    pub(crate) fn all_requests(&self) -> Vec<RequestRecord> {
        let reply = self.http.admin("GET", "/_emulator/requests", None);
        assert_eq!(reply.status, 200, "requests: {}", reply.text);
        serde_json::from_value(reply.json()["requests"].clone()).expect("request records")
    }

    /// The logged requests other than the helper's own, in arrival order.
    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        self.all_requests()
            .into_iter()
            .filter(|r| r.user_agent.as_deref() != Some(HELPER_AGENT))
            .collect()
    }

    /// [`TestEmulator::requests`] to the prompt list endpoint, in arrival order.
    pub(crate) fn list_requests(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/api/prompts/list/"))
            .collect()
    }

    pub(crate) fn clear_requests(&self) {
        let reply = self.http.admin("DELETE", "/_emulator/requests", None);
        assert_eq!(reply.status, 204, "clear_requests: {}", reply.text);
    }

    /// [`TestEmulator::requests`] that may change state: everything but GET and the
    /// POST reads (list, summary).
    pub(crate) fn change_requests(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| {
                let read = r.method == "GET"
                    || (r.method == "POST"
                        && (r.path.starts_with("/api/prompts/list/")
                            || r.path.starts_with("/api/prompts/summary/")));
                !read
            })
            .collect()
    }

    /// GET `path`; panics unless 200.
    pub(crate) fn get(&self, path: &str) -> Value {
        let reply = self.http.helper("GET", path).send();
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
        reply.json()
    }

    pub(crate) fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let reply = self.http.helper("POST", path).json(body).send();
        (reply.status, reply.json())
    }

    pub(crate) fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let reply = self.http.helper("PATCH", path).json(body).send();
        (reply.status, reply.json())
    }

    pub(crate) fn delete(&self, path: &str) -> u16 {
        self.http.helper("DELETE", path).send().status
    }

    /// Create a prompt; returns its id.
    pub(crate) fn create_prompt(&self, name: &str) -> String {
        let (status, body) = self.post("/api/prompts/", json!({ "name": name }));
        assert_eq!(status, 201, "create prompt: {body}");
        body["id"].as_str().expect("prompt id").to_owned()
    }

    /// Create a version of `prompt_id` from `body`; returns the version object.
    pub(crate) fn create_version(&self, prompt_id: &str, body: Value) -> Value {
        let (status, created) = self.post(&format!("/api/prompts/{prompt_id}/versions/"), body);
        assert_eq!(status, 201, "create version: {created}");
        created
    }

    /// Every version of a prompt, newest first (all pages).
    pub(crate) fn versions(&self, prompt_id: &str) -> Vec<Value> {
        let mut all = Vec::new();
        for page in 1.. {
            let body = self.get(&format!(
                "/api/prompts/{prompt_id}/versions/?page={page}&page_size=500"
            ));
            all.extend(body["results"].as_array().cloned().unwrap_or_default());
            if body["next"].is_null() {
                break;
            }
        }
        all
    }

    /// Every active prompt, newest first (all pages).
    pub(crate) fn prompts(&self) -> Vec<Value> {
        let mut all = Vec::new();
        for page in 1.. {
            let (status, body) = self.post(
                &format!("/api/prompts/list/?page={page}&page_size=100"),
                json!({}),
            );
            assert_eq!(status, 200, "list prompts: {body}");
            all.extend(body["results"].as_array().cloned().unwrap_or_default());
            if body["next"].is_null() {
                break;
            }
        }
        all
    }
}

impl Drop for TestEmulator {
    fn drop(&mut self) {
        if let (Some(runtime), Some(running)) = (self.runtime.as_ref(), self.running.take()) {
            let result = runtime.block_on(running.shutdown());
            if let Err(err) = result
                && !std::thread::panicking()
            {
                panic!("emulator shutdown failed: {err}");
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`: the peak RSS), in KiB;
/// `None` once the process is gone.
pub(crate) fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// How long the binary may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The real `promptsync emulator` binary on `127.0.0.1:0`, killed on drop.
pub(crate) struct EmulatorProcess {
    child: Child,
    http: Http,
    /// Reads stderr to the end; its text once the process has exited.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl EmulatorProcess {
    /// Start `promptsync emulator --listen 127.0.0.1:0 ARGS...`; panics if it does not
    /// print its address.
    pub(crate) fn spawn(args: &[&str]) -> EmulatorProcess {
        EmulatorProcess::try_spawn(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`EmulatorProcess::spawn`], but a failed start is returned: the exit
    /// status and stderr.
    pub(crate) fn try_spawn(args: &[&str]) -> Result<EmulatorProcess, String> {
        let mut command = super::promptsync_command();
        command
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn promptsync emulator");
        let mut err_pipe = child.stderr.take().expect("stderr pipe");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err_pipe.read_to_string(&mut text);
            text
        });
        let out_pipe = child.stdout.take().expect("stdout pipe");
        let (lines, first) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out_pipe).lines() {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let line = match first.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line,
            _ => {
                let status = super::wait_until(START_TIMEOUT, "the emulator to exit", || {
                    child.try_wait().ok().flatten()
                });
                let text = stderr.join().unwrap_or_default();
                return Err(format!(
                    "promptsync emulator printed no address; {status}; stderr:\n{text}"
                ));
            }
        };
        let url = line
            .strip_prefix("promptsync emulator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        Ok(EmulatorProcess {
            child,
            http: Http::new(&url),
            stderr: Some(stderr),
        })
    }

    pub(crate) fn base_url(&self) -> String {
        self.http.base_url()
    }

    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    pub(crate) fn call(&self, method: &str, path: &str) -> Call<'_> {
        self.http.call(method, path)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (up to 20 s) for the exit status.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        super::wait_until(START_TIMEOUT, "the emulator to exit after SIGTERM", || {
            self.child.try_wait().expect("try_wait")
        })
    }

    /// Everything the process wrote to stderr; call once it has exited.
    pub(crate) fn stderr(&mut self) -> String {
        assert!(
            matches!(self.child.try_wait(), Ok(Some(_))),
            "read stderr after the process has exited"
        );
        self.stderr
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// When a logged request arrived, in seconds since the epoch (from its ISO time).
pub(crate) fn arrived(at: &str) -> f64 {
    let time = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    time.unix_timestamp_nanos() as f64 / 1e9
}
