//! Human-readable unified diffs of desired versus remote content, made with `similar`.
