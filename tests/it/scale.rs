//! Scale: pacing against the API's rate limit (a token bucket paced to the limit gets
//! no 429; a 429 pauses every request of the run, not only the one throttled), and
//! reading prompt files in time linear in their number.

use std::time::Duration;

use serde_json::json;

use crate::support::emulator::arrived;
use crate::support::git::TestRepo;
use crate::support::scenario::{Scenario, prompt};

fn many(s: &Scenario, n: usize) {
    for i in 0..n {
        s.repo.write(
            &format!("p/{i:03}.prompt.yaml"),
            &prompt(&format!("P{i}"), "x"),
        );
    }
    s.repo.commit("Many prompts");
}

/// A sync of 12 new prompts against an emulator that admits `requests` per window
/// (`env` set for promptsync); the requests it received.
fn limited_sync(
    requests: u32,
    window_ms: u64,
    env: (&str, &str),
) -> Vec<crate::support::emulator::RequestRecord> {
    let s = Scenario::new();
    many(&s, 12);
    s.emu
        .set_knobs(json!({"rate_limit": {"requests": requests, "window_ms": window_ms}}));
    s.emu.clear_requests();
    let output = s.cmd(&["sync"]).env(env.0, env.1).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    s.emu.requests()
}

#[test]
fn a_sync_paced_to_the_limit_gets_no_429() {
    let requests = limited_sync(10, 1000, ("PROMPTSYNC_API__REQUESTS_PER_MINUTE", "600"));
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 0, "{requests:#?}");
    assert_eq!(
        requests.len(),
        26,
        "the account listing, the 12 names again just before writing, two creates a prompt"
    );
}

#[test]
fn a_429_pauses_every_request_of_the_run() {
    let requests = limited_sync(6, 2000, ("PROMPTSYNC_API__RETRY_MAX_ELAPSED", "60s"));
    let first = requests
        .iter()
        .find(|r| r.status == 429)
        .expect("the limit was hit");
    // Its Retry-After is the rest of the 2 s window, at least 1 s. Requests sent in
    // the meantime were already on their way; after a short grace nothing arrives
    // until the pause is over.
    let throttled_at = arrived(&first.at) + first.duration_ms as f64 / 1000.0;
    let during: Vec<_> = requests
        .iter()
        .filter(|r| {
            let t = arrived(&r.at);
            t > throttled_at + 0.15 && t < throttled_at + 0.9
        })
        .collect();
    assert!(
        during.is_empty(),
        "requests went out during the pause: {during:#?}"
    );
}

/// The CPU time (user and system) `promptsync validate` takes over `n` prompt files in
/// one directory: CPU time, not wall time, so that other work on a shared machine does
/// not make a linear read look quadratic.
fn validate_time(n: usize, rev: bool) -> Duration {
    let repo = TestRepo::new();
    for i in 0..n {
        repo.write(
            &format!("p/{i:05}.prompt.yaml"),
            &format!("name: P{i}\nmodel: m\nmessages:\n  - role: user\n    content: hi {i}\n"),
        );
    }
    repo.commit("Many");
    let args: &[&str] = if rev {
        &["validate", "--rev", "HEAD"]
    } else {
        &["validate"]
    };
    // The best of three.
    (0..3)
        .map(|_| {
            let child = crate::support::promptsync_command()
                .current_dir(repo.path())
                .args(args)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            cpu_of(child)
        })
        .min()
        .unwrap()
}

/// Wait for `child` to end successfully and return the CPU time (user and system) it
/// took, its own alone (`wait4`), whatever else the test process runs meanwhile.
fn cpu_of(child: std::process::Child) -> Duration {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: wait4 reaps `pid`, a child of this process that nothing else waits
    // for (the `Child` is not waited on), and writes its status and a `rusage` into
    // pointers to live values of those types.
    #[allow(unsafe_code)]
    let usage = unsafe {
        assert_eq!(libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()), pid);
        usage.assume_init()
    };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "promptsync validate failed: status {status}"
    );
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

#[test]
fn reading_a_commit_is_linear_in_its_files() {
    let small = validate_time(500, true);
    let large = validate_time(2000, true);
    let ratio = large.as_secs_f64() / small.as_secs_f64();
    eprintln!(
        "validate --rev HEAD, CPU: 500 files {small:?}, 2000 files {large:?}, ratio {ratio:.2}"
    );
    assert!(
        ratio < 6.0,
        "4x the files cost {ratio:.1}x the time ({small:?} vs {large:?})"
    );
}

#[test]
fn reading_the_working_tree_is_linear_in_its_files() {
    let small = validate_time(500, false);
    let large = validate_time(2000, false);
    let ratio = large.as_secs_f64() / small.as_secs_f64();
    eprintln!("validate: 500 files {small:?}, 2000 files {large:?}, ratio {ratio:.2}");
    assert!(
        ratio < 6.0,
        "4x the files cost {ratio:.1}x the time ({small:?} vs {large:?})"
    );
}

/// Once page 1 gives the count (a total, `count_mode = total`), the other pages of a listing are asked for at once
/// (within `api.max_in_flight`): page 3 arrives while page 2 is still unanswered,
/// page 2 only once page 1 was (it gives the count), and no page is asked for twice
/// or past the count.
#[test]
fn the_pages_after_the_first_are_asked_for_at_once() {
    let s = Scenario::new();
    for i in 0..250 {
        s.emu.create_prompt(&format!("Remote {i:03}"));
    }
    s.repo
        .write("p/a.prompt.yaml", &prompt("Remote 000", "changed"));
    s.repo.commit("One prompt");
    // Long enough that a page asked for only after the one before was answered
    // cannot arrive before it, however loaded the machine.
    s.emu
        .set_knobs(json!({"latency": {"fixed_ms": 400}, "count_mode": "total"}));
    s.emu.clear_requests();
    s.run(&["plan"], 0);
    let pages: Vec<_> = s.emu.list_requests();
    let numbers: Vec<&str> = pages
        .iter()
        .map(|r| {
            r.path
                .split(['?', '&'])
                .find_map(|part| part.strip_prefix("page="))
                .unwrap()
        })
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["1", "2", "3"],
        "the account's three pages, each once: {pages:#?}"
    );
    let page = |n: &str| &pages[numbers.iter().position(|p| *p == n).unwrap()];
    let answered = |r: &crate::support::emulator::RequestRecord| {
        arrived(&r.at) + r.duration_ms as f64 / 1000.0
    };
    assert!(
        arrived(&page("2").at) >= answered(page("1")),
        "page 2 waits for page 1's count: {pages:#?}"
    );
    assert!(
        arrived(&page("3").at) < answered(page("2")),
        "page 3 is asked for before page 2 is answered: {pages:#?}"
    );
}
