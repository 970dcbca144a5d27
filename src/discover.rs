//! Find prompt files in a tree by the configured include/exclude globs, and resolve a
//! message's `content_file` inside the repository (never outside, symlinks included).
