//! Run a plan through the API client with bounded concurrency; one prompt's failure
//! does not stop the others.
