//! Work on many files (or prompts) at once: a parallel map over scoped threads, in order, each
//! thread with a state of its own (a repository handle, say). Knows nothing about
//! what the work is. Within an async runtime (a pass, whose requests may be in flight)
//! its threads run at a lower priority than the rest of the process
//! ([`yield_to_requests`]): the thread that sends requests and reads replies runs as
//! soon as a reply comes, instead of waiting for a parser's time slice. Elsewhere
//! (`validate`) they run at the process's priority.

/// Files below this many are parsed on the calling thread (threads cost more).
const PARALLEL_FROM: usize = 64;

/// How many threads `items` things are worked on with: one below [`PARALLEL_FROM`],
/// else as many as there are cores (at most 8).
pub(crate) fn threads_for(items: usize) -> usize {
    if items < PARALLEL_FROM {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// How much lower than the process's a helper thread's priority is (its nice value
/// higher by this). A sync reads its files while the listing's pages are in flight:
/// at the same priority, on two cores, the two parsing threads kept the runtime's
/// worker from sending the pages after page 1 for up to 20 ms after its reply came
/// (`perf sched`: 16.6 ms runnable, not running). At +5 a parser weighs a third of
/// that worker, which runs at once; with nothing else to run, the parsers still get
/// every core.
#[cfg(target_os = "linux")]
const HELPER_NICE: libc::c_int = 5;

/// Lower the calling thread's scheduling priority by [`HELPER_NICE`]: called first on
/// each helper thread, which ends with the work (a nice value, once raised, cannot be
/// lowered again without privileges). Best effort: a failure leaves it as it was.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn yield_to_requests() {
    // SAFETY: `nice` takes an integer and touches no memory; on Linux it changes the
    // calling thread's nice value only.
    let _ = unsafe { libc::nice(HELPER_NICE) };
}

#[cfg(not(target_os = "linux"))]
fn yield_to_requests() {}

/// `work` on every item, in order, on one thread per state in `states` (each thread
/// works with its own); on the calling thread when there is one state.
pub(crate) fn on_all_cores<T: Send, S: Send, R: Send>(
    items: Vec<T>,
    mut states: Vec<S>,
    work: impl Fn(&mut S, T) -> R + Sync,
) -> Vec<R> {
    if states.len() < 2 {
        let Some(mut state) = states.pop() else {
            return Vec::new();
        };
        return items
            .into_iter()
            .map(|item| work(&mut state, item))
            .collect();
    }
    let chunk = items.len().div_ceil(states.len());
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut rest = items.into_iter();
    loop {
        let part: Vec<_> = rest.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        chunks.push(part);
    }
    let work = &work;
    // A runtime is running when a pass loads or plans: its worker must not wait.
    let yield_to = tokio::runtime::Handle::try_current().is_ok();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .zip(states)
            .map(|(part, mut state)| {
                scope.spawn(move || {
                    if yield_to {
                        yield_to_requests();
                    }
                    part.into_iter()
                        .map(|item| work(&mut state, item))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(done) => done,
                // A panic in the parser is a bug; carry it to the caller's thread.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's nice value (field 19 of its `stat`).
    #[cfg(target_os = "linux")]
    fn nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    /// Within a runtime (a pass's load runs on its blocking pool) helper threads run
    /// below the caller's priority, and the caller keeps its own; without one
    /// (`validate`) they keep the caller's.
    #[cfg(target_os = "linux")]
    #[test]
    fn helper_threads_yield_to_the_runtime_when_there_is_one() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let load = || {
            let caller = nice();
            let seen = on_all_cores((0..8).collect(), vec![(); 2], |(), _: u32| nice());
            // One state: the work runs on the calling thread, which keeps its priority.
            let alone = on_all_cores((0..3).collect(), vec![()], |(), _: u32| nice());
            (caller, seen, nice(), alone)
        };
        let (caller, seen, after, alone) = runtime
            .block_on(async { tokio::task::spawn_blocking(load).await })
            .unwrap();
        let lowered = (caller + i64::from(HELPER_NICE)).min(19);
        assert_eq!(
            seen,
            vec![lowered; 8],
            "the caller's nice value is {caller}"
        );
        assert_eq!(after, caller);
        assert_eq!(alone, vec![caller; 3]);
        let caller = nice();
        let outside = on_all_cores((0..8).collect(), vec![(); 2], |(), _: u32| nice());
        assert_eq!(outside, vec![caller; 8]);
    }

    /// Results come in the order of the items, whichever thread worked on each.
    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u32> = (0..100).collect();
        let doubled = on_all_cores(items, vec![(); 3], |(), item| item * 2);
        assert_eq!(doubled, (0..100).map(|i| i * 2).collect::<Vec<_>>());
    }
}
