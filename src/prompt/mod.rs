//! The prompt file format (version 1): its types, parsing with positions, validation
//! and the JSON Schema generated from the types.

pub mod format;
pub mod yaml;
pub mod schema;
pub mod check;
