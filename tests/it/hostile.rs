//! A broken or hostile server, and the real binary against it: endless paging, a
//! 1.5 GB body, garbage JSON, an HTML page with status 200, a body that trickles, a
//! redirect, and an API that cannot be reached at all. Every run must end within its
//! bound (measured wall time, with a margin for a loaded machine) with an error that
//! names the request, keep its memory bounded (the child's peak RSS, polled from
//! `/proc`), and never show the key.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::emulator::{TestEmulator, memory_kib};
use crate::support::promptsync_command;
use crate::support::scenario::{KEY, Scenario, prompt};

/// What a run of the binary came to.
#[derive(Debug)]
pub(crate) struct Measured {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The highest `VmHWM` seen while it ran, in KiB.
    pub peak_rss_kib: u64,
}

/// The longest any run here may take before the test gives up on it.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// Run `cmd` to its end, polling its peak RSS every 2 ms (VmHWM only grows, so the
/// last sample before it exits is the best), and check the key never shows.
pub(crate) fn measure(mut cmd: Command) -> Measured {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("promptsync starts");
    let pid = child.id();
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout pipe")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr pipe")));
    let mut peak_rss_kib = 0;
    let status = loop {
        if let Some(hwm) = memory_kib(pid, "VmHWM") {
            peak_rss_kib = peak_rss_kib.max(hwm);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > RUN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("promptsync still ran after {RUN_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the API key leaked:\n{stdout}\n{stderr}"
    );
    let measured = Measured {
        code: status.code(),
        stdout,
        stderr,
        elapsed,
        peak_rss_kib,
    };
    let error = measured.stderr.lines().find(|l| l.starts_with("error: "));
    eprintln!(
        "measured: exit {:?} in {:.2}s, peak RSS {} KiB; {}",
        measured.code,
        measured.elapsed.as_secs_f64(),
        measured.peak_rss_kib,
        error.unwrap_or("no error line")
    );
    measured
}

/// A repository with one prompt, beside an emulator.
fn one_prompt() -> Scenario {
    let s = Scenario::new();
    s.repo.write("a.prompt.yaml", &prompt("A", "a"));
    s.repo.commit("One prompt");
    s
}

/// [`one_prompt`], with `fault` armed.
fn scenario(fault: Value) -> Scenario {
    let s = one_prompt();
    s.emu.inject(fault);
    s
}

/// `promptsync <args>` in the scenario's repository, against `base_url`.
fn command(s: &Scenario, base_url: &str, args: &[&str]) -> Command {
    let mut cmd = promptsync_command();
    cmd.current_dir(s.repo.path())
        .env("RESPAN_BASE_URL", base_url)
        .env("RESPAN_API_KEY", KEY)
        .env("PROMPTSYNC_API__TIMEOUT", "5s")
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "5s")
        // The snapshot's own lists face the hostile replies, not an account listing
        // whose failure would only be a warning.
        .env("PROMPTSYNC_SYNC__REPORT_UNMANAGED", "false")
        .args(args);
    cmd
}

/// Run `promptsync <args>` against the scenario's emulator; it must fail (exit 1)
/// within `bound`, and the error must contain every one of `expected`.
fn fails_within(s: &Scenario, args: &[&str], bound: Duration, expected: &[&str]) -> Measured {
    let run = measure(command(s, &s.emu.base_url(), args));
    check_failure(&run, bound, expected);
    run
}

fn check_failure(run: &Measured, bound: Duration, expected: &[&str]) {
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.elapsed < bound,
        "took {:?}, more than {bound:?}:\n{}",
        run.elapsed,
        run.stderr
    );
    let error = run
        .stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{}", run.stderr));
    for text in expected {
        assert!(error.contains(text), "{text:?} is not in:\n{error}");
    }
}

/// Requests for list pages the binary sent.
fn list_requests(emu: &TestEmulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/prompts/list/"))
        .count()
}

/// The peak RSS a run may reach here. The debug binary idles at about 36 MB (the
/// release one at about 10); a body is never held beyond the 8 MiB limit.
const RSS_CEILING_KIB: u64 = 100 * 1024;

/// The peak RSS of a run that holds a listing at its hard ceiling: 100,000 prompts
/// or 10,000 versions, parsed, cost 45 to 60 MB more in a debug build. Bounded, and
/// the bound is the ceiling's price.
const LISTING_RSS_CEILING_KIB: u64 = 150 * 1024;

#[test]
fn endless_paging_with_the_same_page_stops_at_the_repeat() {
    let s = scenario(json!({"method": "POST", "path": "/api/prompts/list/",
        "kind": "endless_pages", "times": 100_000}));
    fails_within(
        &s,
        &["plan"],
        Duration::from_secs(15),
        &[
            "POST /api/prompts/list/?page=2&page_size=100&sort_by=-id: page 2 repeats page 1",
            "the same 100 prompts",
        ],
    );
    assert_eq!(list_requests(&s.emu), 2, "page 1 and its repeat");
}

#[test]
fn endless_fresh_pages_stop_at_the_total_the_server_claims() {
    let s = scenario(json!({"method": "POST", "path": "/api/prompts/list/",
        "kind": "endless_pages", "fresh": true, "count": 250, "times": 100_000}));
    fails_within(
        &s,
        &["sync"],
        Duration::from_secs(15),
        &[
            "POST /api/prompts/list/?page=5&page_size=100&sort_by=-id: page 5 still says more",
            "the server counted 250 prompts in all, 5 pages at most at 100 a page",
        ],
    );
    assert_eq!(list_requests(&s.emu), 5, "3 pages for 250, 2 to spare");
    assert!(
        s.emu.change_requests().is_empty(),
        "nothing was sent after the failed list"
    );
}

/// With no total to go by, the hard ceiling: 1000 pages (100,000 prompts).
#[test]
fn endless_fresh_pages_without_a_total_stop_at_the_hard_ceiling() {
    let s = scenario(json!({"method": "POST", "path": "/api/prompts/list/",
        "kind": "endless_pages", "fresh": true, "times": 100_000}));
    let run = fails_within(
        &s,
        &["plan"],
        Duration::from_secs(90),
        &[
            "POST /api/prompts/list/?page=1000&page_size=100&sort_by=-id: page 1000 still says more",
            "promptsync reads at most 1000 pages (100000 prompts at 100 a page)",
        ],
    );
    assert_eq!(list_requests(&s.emu), 1000);
    assert!(run.peak_rss_kib < LISTING_RSS_CEILING_KIB, "{run:?}");
}

/// The versions listing (read to find a release's version) has its own ceiling:
/// 100 pages (10,000 versions).
#[test]
fn endless_version_pages_stop_at_their_hard_ceiling() {
    let s = one_prompt();
    let release = s.repo.head();
    s.sync();
    s.repo.write("a.prompt.yaml", &prompt("A", "a, revised"));
    s.repo.commit("Revise");
    s.sync();
    // The release's content is neither the current nor the live version: only a
    // listing of the versions can find it.
    s.repo.tag_at("v1.0.0", &release);
    s.emu
        .inject(json!({"method": "GET", "path": "/api/prompts/*/versions/",
        "kind": "endless_pages", "fresh": true, "times": 100_000}));
    s.emu.clear_requests();
    // A listing that cannot finish fails that prompt's deploy (logged and reported),
    // not the run.
    let run = measure(command(&s, &s.emu.base_url(), &["plan"]));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.elapsed < Duration::from_secs(60),
        "took {:?}",
        run.elapsed
    );
    for text in [
        "/versions/?page=100&page_size=100: page 100 still says more pages follow",
        "promptsync reads at most 100 pages (10000 versions at 100 a page)",
    ] {
        assert!(
            run.stderr.contains(text),
            "{text:?} is not in:\n{}",
            run.stderr
        );
    }
    let pages = s
        .emu
        .requests()
        .iter()
        .filter(|r| r.path.contains("/versions/?page="))
        .count();
    assert_eq!(pages, 100);
    assert!(run.peak_rss_kib < LISTING_RSS_CEILING_KIB, "{run:?}");
}

#[test]
fn a_huge_streamed_body_is_cut_at_the_limit_with_bounded_memory() {
    // 1.5 GB, chunked: the size is known only by reading.
    let s = scenario(json!({"method": "POST", "path": "/api/prompts/list/", "kind": "huge_body"}));
    let run = fails_within(
        &s,
        &["sync"],
        Duration::from_secs(20),
        &[
            "POST /api/prompts/list/?page=1&page_size=100&sort_by=-id: the reply is larger \
             than the limit of 8 MiB; promptsync stopped reading it",
        ],
    );
    assert!(
        run.peak_rss_kib < RSS_CEILING_KIB,
        "peak RSS {} KiB",
        run.peak_rss_kib
    );
    assert_eq!(
        list_requests(&s.emu),
        1,
        "a body over the limit is not fetched again"
    );
}

#[test]
fn a_huge_declared_body_is_refused_before_it_is_read() {
    let s = scenario(
        json!({"method": "POST", "path": "/api/prompts/list/", "kind": "huge_body",
        "declare_length": true}),
    );
    let run = fails_within(
        &s,
        &["plan"],
        Duration::from_secs(15),
        &["the reply is larger than the limit of 8 MiB (it declared 1500000000 bytes)"],
    );
    assert!(run.peak_rss_kib < RSS_CEILING_KIB, "{run:?}");
}

#[test]
fn garbage_json_is_a_decode_error_that_shows_the_body() {
    let s =
        scenario(json!({"method": "POST", "path": "/api/prompts/list/", "kind": "garbage_json"}));
    fails_within(
        &s,
        &["sync"],
        Duration::from_secs(15),
        &[
            "POST /api/prompts/list/?page=1&page_size=100&sort_by=-id: unexpected response body",
            r#"(the body starts `{"count": 2, "next": null, "results": [{"id": "prm_1", "name"#,
        ],
    );
    assert_eq!(list_requests(&s.emu), 1, "not retried");
}

#[test]
fn an_html_page_with_status_200_says_what_came_instead_of_json() {
    let s = scenario(json!({"method": "POST", "path": "/api/prompts/list/", "kind": "html"}));
    fails_within(
        &s,
        &["plan"],
        Duration::from_secs(15),
        &[
            "POST /api/prompts/list/?page=1&page_size=100&sort_by=-id: unexpected response body",
            "expected JSON, got text/html; charset=utf-8 starting `<!DOCTYPE html>",
            "not a proxy or a login page?",
        ],
    );
}

/// Headers at once, then a byte every 100 ms: only the whole-request timeout ends
/// each attempt, and the retry budget ends the run.
#[test]
fn a_trickling_body_ends_at_the_timeout_and_the_retry_budget() {
    let s = scenario(
        json!({"method": "POST", "path": "/api/prompts/list/", "kind": "trickle",
        "times": 1000}),
    );
    let mut cmd = command(&s, &s.emu.base_url(), &["sync"]);
    cmd.env("PROMPTSYNC_API__TIMEOUT", "1s")
        .env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "2s");
    let run = measure(cmd);
    // An attempt of 1 s, then one of what is left of the 2 s budget: 2 s in all, not
    // a whole timeout more.
    check_failure(
        &run,
        Duration::from_secs(8),
        &[
            "retry budget 2s, api.retry_max_elapsed",
            "POST /api/prompts/list/?page=1&page_size=100&sort_by=-id: timed out after",
            "(what was left of the retry budget, api.retry_max_elapsed)",
        ],
    );
    assert!(
        run.stderr
            .contains("timed out after 1s (api.timeout, for the request and its whole reply)"),
        "the first attempt had a whole timeout:\n{}",
        run.stderr
    );
    assert!(run.elapsed >= Duration::from_secs(2), "{run:?}");
}

#[test]
fn a_redirect_to_another_host_is_not_followed() {
    let elsewhere = TestEmulator::start();
    let location = format!("{}/api/prompts/list/", elsewhere.base_url());
    let s = scenario(
        json!({"method": "POST", "path": "/api/prompts/list/", "kind": "redirect",
        "status": 307, "location": location}),
    );
    fails_within(
        &s,
        &["sync"],
        Duration::from_secs(15),
        &[
            &format!(
                "POST /api/prompts/list/?page=1&page_size=100&sort_by=-id answered 307, a \
                 redirect to {location}"
            ),
            "promptsync does not follow: check RESPAN_BASE_URL (api.base_url)",
        ],
    );
    assert!(
        elsewhere.requests().is_empty(),
        "nothing reached the other host"
    );
    assert_eq!(list_requests(&s.emu), 1, "a redirect is not retried");
}

#[test]
fn a_redirect_to_another_path_is_not_followed() {
    let s = scenario(json!({"method": "POST", "path": "/api/prompts/list/", "kind": "redirect"}));
    fails_within(
        &s,
        &["plan"],
        Duration::from_secs(15),
        &["answered 302, a redirect to /api/moved/"],
    );
    let paths: Vec<String> = s.emu.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/api/prompts/list/?page=1&page_size=100&sort_by=-id"]
    );
}

/// Each WARN "retrying" line names the request once.
fn check_retry_lines(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("retrying")).collect();
    assert!(!lines.is_empty(), "it retried:\n{stderr}");
    for line in lines {
        assert_eq!(line.matches("/api/prompts/list/").count(), 1, "{line}");
    }
}

/// The budget a test sets for ordinary failures: far more than a fast failure
/// may take, so a run that ends in seconds proves the short budget.
const LONG_BUDGET: &str = "2m";

#[test]
fn a_refused_connection_fails_within_seconds_and_names_the_url() {
    let s = one_prompt();
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = command(&s, &base, &["sync"]);
    cmd.env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", LONG_BUDGET);
    let run = measure(cmd);
    check_failure(
        &run,
        Duration::from_secs(10),
        &[
            &format!(
                "POST {base}/api/prompts/list/?page=1&page_size=100&sort_by=-id: cannot \
                 connect (connection refused)"
            ),
            "retry budget 3s, the most promptsync retries a refused connection",
        ],
    );
    check_retry_lines(&run.stderr);
}

#[test]
fn an_unknown_host_fails_within_seconds_and_names_the_url() {
    let s = one_prompt();
    let base = "https://promptsync-nonexistent.invalid";
    let mut cmd = command(&s, base, &["plan"]);
    cmd.env("PROMPTSYNC_API__RETRY_MAX_ELAPSED", LONG_BUDGET);
    let run = measure(cmd);
    check_failure(
        &run,
        Duration::from_secs(15),
        &[
            &format!(
                "POST {base}/api/prompts/list/?page=1&page_size=100&sort_by=-id: cannot \
                 connect (the host name does not resolve"
            ),
            "check RESPAN_BASE_URL (api.base_url) and the network",
        ],
    );
    check_retry_lines(&run.stderr);
}
