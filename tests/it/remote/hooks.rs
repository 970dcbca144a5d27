//! Webhooks on the daemon's server: `POST /hooks/github`, `/hooks/gitlab`,
//! `/hooks/generic`.
