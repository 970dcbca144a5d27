//! The real `promptsync watch` as a child process: its JSON log lines collected as
//! they come, the probe server's address read from them, probe and signal helpers,
//! and waits on the log instead of sleeps.

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::emulator::Http;
use super::wait_until;

/// How long a daemon may take to bind its probe port.
const START: Duration = Duration::from_secs(20);

pub(crate) struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    http: Http,
}

impl Daemon {
    /// Spawn `command` (a `promptsync ... watch` command line without `--listen`):
    /// adds `--listen 127.0.0.1:0` and JSON logs, and waits for the probe server.
    pub(crate) fn spawn(mut command: std::process::Command) -> Daemon {
        command.args(["--listen", "127.0.0.1:0"]);
        Daemon::attach(command)
    }

    /// Spawn `command` as it is (it must make the daemon listen on a port it logs),
    /// with JSON logs, and wait for the probe server.
    pub(crate) fn attach(command: std::process::Command) -> Daemon {
        Daemon::try_attach(command).unwrap_or_else(|err| panic!("{err}"))
    }

    /// [`Daemon::attach`], with a daemon that exits before it listens returned as its
    /// exit status and log.
    pub(crate) fn try_attach(mut command: std::process::Command) -> Result<Daemon, String> {
        command
            .env("PROMPTSYNC_LOG__FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn promptsync watch");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr pipe");
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut daemon = Daemon {
            child,
            lines,
            reader: Some(reader),
            http: Http::unpooled("http://127.0.0.1:1"),
        };
        let addr = wait_until(START, "the probe server to listen", || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Some(Err(status));
            }
            daemon
                .logs()
                .iter()
                .find(|l| l["message"] == "probe server listening")
                .and_then(|l| l["addr"].as_str().map(|a| Ok(a.to_owned())))
        });
        match addr {
            Ok(addr) => {
                daemon.http = Http::unpooled(&format!("http://{addr}"));
                Ok(daemon)
            }
            Err(status) => {
                // The whole log, up to the end of the pipe.
                if let Some(reader) = daemon.reader.take() {
                    let _ = reader.join();
                }
                Err(format!(
                    "promptsync watch exited ({status}):\n{}",
                    daemon.log_text()
                ))
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far, parsed (lines that are not JSON are kept as strings).
    pub(crate) fn logs(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String(l.clone())))
            .collect()
    }

    /// The raw log text, for failure messages and leak checks.
    pub(crate) fn log_text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The `pass finished` and `pass failed` lines so far.
    pub(crate) fn passes(&self) -> Vec<Value> {
        self.logs()
            .into_iter()
            .filter(|l| l["message"] == "pass finished" || l["message"] == "pass failed")
            .collect()
    }

    /// Wait until `count` passes have ended; returns the last one.
    pub(crate) fn wait_passes(&self, count: usize, timeout: Duration) -> Value {
        wait_until(timeout, &format!("{count} passes"), || {
            let passes = self.passes();
            (passes.len() >= count).then(|| passes[count - 1].clone())
        })
    }

    /// Wait until a pass for which `which` holds has ended; returns it.
    pub(crate) fn wait_pass(
        &self,
        timeout: Duration,
        what: &str,
        which: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_until(timeout, what, || {
            self.passes().into_iter().find(|p| which(p))
        })
    }

    /// `GET path` on the probe server: status and body.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let reply = self.http.call("GET", path).key(None).send();
        (reply.status, reply.text)
    }

    pub(crate) fn post(&self, path: &str) -> (u16, String) {
        let reply = self.http.call("POST", path).key(None).send();
        (reply.status, reply.text)
    }

    /// `POST path` with these headers and this body: status and body.
    pub(crate) fn post_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut call = self.http.call("POST", path).key(None).raw(body.to_vec());
        for (name, value) in headers {
            call = call.header(name, value);
        }
        let reply = call.send();
        (reply.status, reply.text)
    }

    /// `GET /status` as JSON.
    pub(crate) fn status(&self) -> Value {
        let (code, body) = self.get("/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Wait for `/readyz` to answer 200.
    pub(crate) fn wait_ready(&self, timeout: Duration) {
        wait_until(timeout, "/readyz to answer 200", || {
            (self.get("/readyz").0 == 200).then_some(())
        });
    }

    /// Send a signal by name (`TERM`, `HUP`, `KILL`, ...).
    pub(crate) fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Wait for the process to exit.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_until(timeout, "promptsync watch to exit", || {
            self.child.try_wait().expect("try_wait")
        })
    }

    /// Whether the process still runs.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
