//! Work on many files (or prompts) at once: a parallel map over scoped threads, in order, each
//! thread with a state of its own (a repository handle, say). Knows nothing about
//! what the work is.

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
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .zip(states)
            .map(|(part, mut state)| {
                scope.spawn(move || {
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
