//! What the daemon does so that its resident memory stays near what it keeps alive.
//! glibc's allocator gives each thread that contends for it an arena of its own and
//! returns freed pages only from the top of a heap, so a long-running process stays
//! resident at the high-water mark of its last busy moment. Every command caps the
//! arenas before its threads start (`commands::run`); the daemon hands the free pages
//! back after each pass. Elsewhere
//! (musl, macOS, other allocators) both are no-ops.
//!
//! Two of the crate's three `unsafe` calls (the third lowers a helper thread's
//! priority, `desired::parallel`): calls into glibc that take no pointers.

/// Arenas the daemon's allocator may use; its passes are I/O-bound, so two keep the
/// lock uncontended without one arena per thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Cap glibc's arenas. Call before the runtime starts its threads: an arena, once
/// made, lives as long as the process.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn limit_arenas() {
    // SAFETY: `mallopt` takes no pointers and glibc serializes it with every other
    // allocator call; `M_ARENA_MAX` with a positive value is always valid.
    let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) } == 1;
    tracing::debug!(arenas = ARENAS, set, "capped the allocator's arenas");
}

/// Hand the pages the allocator holds free back to the system. Cheap at a quiescent
/// point (after a pass); it locks each arena in turn while it walks it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn release() {
    // SAFETY: `malloc_trim` takes no pointers and only rearranges glibc's own free
    // lists, under their locks.
    let released = unsafe { libc::malloc_trim(0) } == 1;
    tracing::trace!(released, "returned free heap pages to the system");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}

/// Leave `value` to the process's exit: for what a one-shot command no longer needs
/// just before it exits. The exit returns its memory at once; freeing it allocation by
/// allocation is a few milliseconds per thousand prompts, on the command's wall time.
pub(crate) fn leave_to_exit<T>(value: T) {
    std::mem::forget(value);
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release() {}
