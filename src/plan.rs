//! Desired state versus remote snapshot, to a list of actions with field-level diffs.
//! Pure, no I/O.
