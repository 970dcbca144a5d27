//! Release-tag selection: which tag (and so which commit) decides what is live. Pure,
//! no I/O.
