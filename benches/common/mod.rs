//! What the benchmarks share: a git repository of many prompt files, the emulator's
//! admin endpoint, and the process figures read from `/proc`.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// Write prompt file `i` of a benchmark repository, at `revision`.
pub(crate) fn write_prompt(repo: &Path, i: usize, revision: impl std::fmt::Display) {
    let text = format!(
        "name: Prompt {i:05}\nmodel: gpt-4o\ntemperature: 0.3\nmessages:\n  - role: system\n    content: |\n      You are assistant number {i} ({revision} revision).\n      Answer briefly about {{{{topic}}}}.\n  - role: user\n    content: \"{{{{question}}}}\"\nvariables:\n  topic: billing\n  question: How do I pay?\n"
    );
    let path = repo.join(format!("prompts/p{i:05}.prompt.yaml"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A new repository in `repo` with `n` prompt files committed.
pub(crate) fn repository(repo: &Path, n: usize) {
    git(repo, &["init", "--quiet", "--initial-branch=main"]);
    for i in 0..n {
        write_prompt(repo, i, "first");
    }
    git(repo, &["add", "--all"]);
    git(repo, &["commit", "--quiet", "-m", "Many prompts"]);
}

fn git_command(repo: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    command
}

pub(crate) fn git(repo: &Path, args: &[&str]) {
    let status = git_command(repo, args).status().unwrap();
    assert!(status.success(), "git {args:?}");
}

pub(crate) fn git_output(repo: &Path, args: &[&str]) -> String {
    let output = git_command(repo, args).output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`, `RssAnon:`...).
pub(crate) fn status_kib(pid: u32, name: &str) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of `pid` (clock ticks of 10 ms).
pub(crate) fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which is in parentheses and may hold spaces):
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// CPU time of the live threads of `pid`, to the nanosecond (the scheduler's own
/// count, `/proc/PID/task/*/schedstat`), for spans shorter than [`cpu`]'s 10 ms
/// ticks. A thread that ended is not counted: measure across a span in which the
/// process keeps its threads.
pub(crate) fn cpu_precise(pid: u32) -> Duration {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path().join("schedstat");
        // A thread may end between the listing and the read.
        if let Ok(stat) = std::fs::read_to_string(path) {
            total += stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// Wait until `pid` stops using CPU (its [`cpu`] time unchanged over `poll`), for at
/// most 30 s: a pass's aftermath (the load cache packed, free pages returned) runs
/// after its log line.
pub(crate) fn wait_until_idle(pid: u32, poll: Duration) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = cpu(pid);
    loop {
        std::thread::sleep(poll);
        let now = cpu(pid);
        if now == last || std::time::Instant::now() > deadline {
            break;
        }
        last = now;
    }
}

/// The release binary, quiet, run in `repo` against the emulator at `base`.
pub(crate) fn promptsync(repo: &Path, base: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_promptsync"));
    command
        .current_dir(repo)
        .args(args)
        .args(["-q"])
        .env("RESPAN_BASE_URL", base)
        .env("RESPAN_API_KEY", "bench")
        .stdout(std::process::Stdio::null());
    command
}

/// Run `command` to its end, sampling its peak RSS (`VmHWM`, KiB) every 2 ms; its wall
/// time and that peak. Panics unless it succeeds.
pub(crate) fn run_measured(mut command: Command) -> (Duration, i64) {
    let started = std::time::Instant::now();
    let mut child = command.spawn().unwrap();
    let mut peak = 0;
    let status = loop {
        if let Some(hwm) = status_kib(child.id(), "VmHWM:") {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(status.success(), "{command:?} failed");
    (started.elapsed(), peak)
}

/// A request to the emulator's admin endpoint; its JSON reply (`null` when empty).
pub(crate) fn admin(
    runtime: &tokio::runtime::Runtime,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    runtime.block_on(async {
        promptsync::api::install_tls_provider();
        let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().await.unwrap();
        reply.json().await.unwrap_or(Value::Null)
    })
}

pub(crate) fn set_latency(runtime: &tokio::runtime::Runtime, base: &str, ms: u64) {
    admin(
        runtime,
        base,
        reqwest::Method::PATCH,
        "/_emulator/knobs",
        Some(serde_json::json!({"latency": {"fixed_ms": ms}})),
    );
}

pub(crate) fn clear_requests(runtime: &tokio::runtime::Runtime, base: &str) {
    admin(
        runtime,
        base,
        reqwest::Method::DELETE,
        "/_emulator/requests",
        None,
    );
}

/// The emulator's request log.
pub(crate) fn requests(runtime: &tokio::runtime::Runtime, base: &str) -> Vec<Value> {
    admin(
        runtime,
        base,
        reqwest::Method::GET,
        "/_emulator/requests",
        None,
    )["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The emulator in this process, on a loopback port.
pub(crate) fn emulator(
    runtime: &tokio::runtime::Runtime,
    config: promptsync_emulator::EmulatorConfig,
) -> promptsync_emulator::RunningEmulator {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        promptsync_emulator::start(config, listener).await.unwrap()
    })
}

/// `promptsync watch` (the release binary) on `repo` against the emulator at `base`,
/// with its JSON log read line by line as it arrives.
pub(crate) struct Watch {
    child: std::process::Child,
    log: std::sync::mpsc::Receiver<(std::time::Instant, String)>,
}

impl Watch {
    pub(crate) fn start(repo: &Path, base: &str, env: &[(&str, &str)]) -> Watch {
        Watch::start_with(repo, base, env, &[])
    }

    /// [`Watch::start`] with more arguments (`--emulator`, say).
    pub(crate) fn start_with(
        repo: &Path,
        base: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Watch {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_promptsync"))
            .current_dir(repo)
            .args(["watch", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env("RESPAN_BASE_URL", base)
            .env("RESPAN_API_KEY", "bench")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (lines, log) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if lines.send((std::time::Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Watch { child, log }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the probe server to listen; its address (`127.0.0.1:PORT`).
    pub(crate) fn listening(&self) -> String {
        loop {
            let (_, line) = self
                .log
                .recv_timeout(Duration::from_secs(60))
                .expect("the probe server to listen");
            if line.contains("\"probe server listening\"") {
                let value: Value = serde_json::from_str(&line).unwrap();
                return value["addr"].as_str().unwrap().to_owned();
            }
        }
    }

    /// Wait for a successful pass (of `revision`, when given); the instant its log line
    /// arrived. Panics on a failed pass.
    pub(crate) fn wait_pass(&self, revision: Option<&str>) -> std::time::Instant {
        loop {
            let (at, line) = self
                .log
                .recv_timeout(Duration::from_secs(600))
                .expect("a pass");
            if !line.contains("\"pass finished\"") && !line.contains("\"pass failed\"") {
                continue;
            }
            assert!(
                line.contains("\"outcome\":\"success\""),
                "a pass failed: {line}"
            );
            if revision.is_none_or(|r| line.contains(r)) {
                return at;
            }
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub(crate) fn stop(mut self) {
        let pid = self.pid().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "promptsync watch exited with {status}");
    }
}

/// `promptsync emulator` in a process of its own, serving (and keeping) a state file.
pub(crate) struct EmulatorProcess {
    child: std::process::Child,
    base_url: String,
}

impl EmulatorProcess {
    pub(crate) fn start(state: &Path) -> EmulatorProcess {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_promptsync"))
            .args([
                "emulator",
                "--listen",
                "127.0.0.1:0",
                "--deferred-writes",
                "-q",
            ])
            .arg("--state")
            .arg(state)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base_url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("the emulator prints its address")
            .to_owned();
        EmulatorProcess { child, base_url }
    }

    pub(crate) fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for it to exit.
    pub(crate) fn stop(&mut self) {
        let pid = self.pid().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap();
    }
}
