//! `promptsync validate` end to end.
