//! The canonical form of a version's content used for semantic equality: API defaults
//! filled, numbers canonical, keys ordered. Pure, no I/O.
