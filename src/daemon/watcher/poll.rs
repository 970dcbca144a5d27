//! Polling, for where file system events cannot be had: one poll is a hash per reason
//! over what the watched directories' entries look like (paths, sizes, times, inodes,
//! link targets), bounded in entries and depth; two polls that differ say which reasons
//! to send. Knows nothing about events or why they are not used.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::time::UNIX_EPOCH;

use tokio::sync::mpsc;

use super::plan::{Depth, Filter, POLL_BUDGET, WatchSet};
use crate::daemon::trigger::Reason;

/// How deep a recursive watch is followed when polling.
const POLL_DEPTH: usize = 32;

/// One poll: a hash per reason over what its paths look like (times, sizes, inodes,
/// link targets). Bounded by [`POLL_BUDGET`] entries.
pub(super) fn scan(set: &WatchSet) -> HashMap<Reason, u64> {
    let mut hashers: HashMap<Reason, DefaultHasher> = HashMap::new();
    let mut budget = POLL_BUDGET;
    for (dir, depth) in &set.dirs {
        let depth = match depth {
            Depth::Flat => 0,
            Depth::Deep => POLL_DEPTH,
        };
        scan_dir(dir, depth, &set.filter, &mut hashers, &mut budget);
    }
    hashers
        .into_iter()
        .map(|(reason, hasher)| (reason, hasher.finish()))
        .collect()
}

fn scan_dir(
    dir: &Path,
    depth: usize,
    filter: &Filter,
    hashers: &mut HashMap<Reason, DefaultHasher>,
    budget: &mut usize,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if let Some(reason) = filter.classify(&path) {
            let hasher = hashers.entry(reason).or_default();
            path.hash(hasher);
            meta.len().hash(hasher);
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .hash(hasher);
            std::os::unix::fs::MetadataExt::ino(&meta).hash(hasher);
            if meta.file_type().is_symlink() {
                std::fs::read_link(&path).ok().hash(hasher);
            }
        }
        if depth > 0 && meta.is_dir() {
            scan_dir(&path, depth - 1, filter, hashers, budget);
        }
    }
}

/// Send the reasons whose fingerprint differs between two polls.
pub(super) fn send_changes(
    before: &HashMap<Reason, u64>,
    now: &HashMap<Reason, u64>,
    out: &mpsc::Sender<Reason>,
) {
    for (reason, hash) in now {
        if before.get(reason) != Some(hash) {
            let _ = out.try_send(*reason);
        }
    }
    for reason in before.keys().filter(|r| !now.contains_key(r)) {
        let _ = out.try_send(*reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_sees_a_ref_move() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("refs/heads/main"), "a\n").unwrap();
        let git = std::fs::canonicalize(&git).unwrap();
        let mut set = WatchSet::default();
        set.add(git.clone(), Depth::Flat);
        set.add(git.join("refs"), Depth::Deep);
        set.filter.git_dirs = vec![git.clone()];
        let before = scan(&set);
        assert_eq!(before, scan(&set), "nothing changed");
        std::fs::write(git.join("refs/heads/main.tmp"), "bb\n").unwrap();
        std::fs::rename(git.join("refs/heads/main.tmp"), git.join("refs/heads/main")).unwrap();
        assert_ne!(before.get(&Reason::Refs), scan(&set).get(&Reason::Refs));
    }
}
