//! Running a program the operator configured (the deploy gate, the exec hook): no
//! shell (the words are given; `sh -c` only when the user writes it), its own process
//! group, facts in environment variables, an optional standard input, a timeout after
//! which the whole group is stopped (SIGTERM, then SIGKILL after a grace period), and
//! its output captured up to a bound (the rest is read and dropped, so the program
//! never blocks on a full pipe). When it ends, what it left running in its group is
//! stopped too. Knows nothing about gates or events.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

/// Output kept of each stream: the last 16 KiB (where a test runner's verdict is).
pub(crate) const KEPT_OUTPUT: usize = 16 * 1024;
/// Between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How long the output pipes are read after the program ended (a child it left
/// behind may hold them open).
const DRAIN: Duration = Duration::from_millis(500);

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finished {
    /// The exit code; `None` when a signal ended it (or it timed out).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub duration: Duration,
    /// The end of stdout and stderr, interleaved by stream (stdout first).
    pub output: String,
}

impl Finished {
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// `exit 1`, `timed out after 10s`, `killed by a signal`.
    pub(crate) fn describe(&self, timeout: Duration) -> String {
        match (self.timed_out, self.code) {
            (true, _) => format!(
                "timed out after {} (stopped)",
                humantime::format_duration(timeout)
            ),
            (false, Some(code)) => format!("exit {code}"),
            (false, None) => "ended by a signal".to_owned(),
        }
    }
}

/// Run `words` in `dir` with `env` added to promptsync's environment (less its own
/// secrets: `RESPAN_API_KEY`, `GITHUB_TOKEN`, `GITLAB_TOKEN`).
pub(crate) async fn run(
    words: &[String],
    dir: Option<&Path>,
    env: &[(String, String)],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Finished, String> {
    let (program, args) = words
        .split_first()
        .ok_or_else(|| "an empty command".to_owned())?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(
            env.iter()
                .map(|(k, v)| (k, crate::secret::redact(v).into_owned())),
        )
        // promptsync's own secrets stay with promptsync.
        .env_remove("RESPAN_API_KEY")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITLAB_TOKEN")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = command.spawn().map_err(|err| {
        format!(
            "cannot start {program:?}: {}",
            crate::localfile::io_text(&err)
        )
    })?;
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = crate::secret::redact_bytes(&input).into_owned();
        tokio::spawn(async move {
            // A program that does not read its input is fine.
            let _ = pipe.write_all(&input).await;
        });
    }
    let stdout = tokio::spawn(tail(child.stdout.take()));
    let stderr = tokio::spawn(tail(child.stderr.take()));
    let (code, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => (status.ok().and_then(|s| s.code()), false),
        Err(_) => {
            signal(group, rustix::process::Signal::TERM);
            match tokio::time::timeout(GRACE, child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    signal(group, rustix::process::Signal::KILL);
                    let _ = child.wait().await;
                }
            }
            (None, true)
        }
    };
    // Whatever it left running in its group goes too.
    signal(group, rustix::process::Signal::KILL);
    let mut output = String::new();
    for (name, task) in [("stdout", stdout), ("stderr", stderr)] {
        let text = tokio::time::timeout(DRAIN, task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if !text.trim().is_empty() {
            if !output.is_empty() {
                output.push('\n');
            }
            output.push_str(&format!("[{name}]\n{}", text.trim_end()));
        }
    }
    Ok(Finished {
        code,
        timed_out,
        duration: started.elapsed(),
        output,
    })
}

fn signal(group: Option<i32>, signal: rustix::process::Signal) {
    if let Some(pid) = group.and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// The last [`KEPT_OUTPUT`] bytes of a stream, read to its end, as text.
async fn tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * KEPT_OUTPUT {
                    kept.drain(..kept.len() - KEPT_OUTPUT);
                }
            }
        }
    }
    let cut = kept.len() > KEPT_OUTPUT;
    if cut {
        kept.drain(..kept.len() - KEPT_OUTPUT);
    }
    let text = String::from_utf8_lossy(&kept).into_owned();
    if cut { format!("…{text}") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        shell_words::split(line).unwrap()
    }

    #[tokio::test]
    async fn exit_codes_output_and_environment() {
        let env = vec![("PROMPTSYNC_X".to_owned(), "42".to_owned())];
        let done = run(
            &words("sh -c 'echo out $PROMPTSYNC_X; cat; echo err >&2; exit 3'"),
            None,
            &env,
            Some(b"in".to_vec()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(done.code, Some(3));
        assert!(!done.success());
        assert!(
            done.output.contains("out 42")
                && done.output.contains("in")
                && done.output.contains("[stderr]\nerr"),
            "{}",
            done.output
        );
        let err = run(
            &words("/nonexistent/program"),
            None,
            &[],
            None,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(err.contains("cannot start"), "{err}");
    }

    #[tokio::test]
    async fn a_hung_program_and_its_children_are_stopped_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let started = Instant::now();
        let done = run(
            &["sh".into(), "-c".into(), script],
            None,
            &[],
            None,
            Duration::from_millis(300),
        )
        .await
        .unwrap();
        assert!(done.timed_out && !done.success());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild got the group's signal: it is gone (or a zombie being reaped)
        // once the kernel has delivered it, which the timeout's return does not wait for.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"))
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!alive(), "the background child {pid} survived");
        assert_eq!(
            done.describe(Duration::from_millis(300)),
            "timed out after 300ms (stopped)"
        );
    }

    #[tokio::test]
    async fn output_is_bounded() {
        let done = run(
            &words("sh -c 'head -c 1000000 /dev/zero | tr \"\\\\0\" x'"),
            None,
            &[],
            None,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(
            done.output.len() <= KEPT_OUTPUT + 64,
            "{}",
            done.output.len()
        );
        assert!(done.success());
    }
}
