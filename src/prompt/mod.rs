//! The prompt file format (version 1): its types, parsing with positions, validation
//! and the JSON Schema generated from the types.
