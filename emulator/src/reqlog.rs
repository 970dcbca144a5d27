//! The request log: one record per API request (admin requests excluded), with the
//! status sent, or 0 when no reply was sent (a dropped connection, or a client that
//! went away), and which fault, if any, answered it. Bounded: the oldest records go
//! first. Tests read it through the admin endpoint to count what a client sent.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::App;
use super::model::format_time;

/// One API request as the emulator saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Arrival order, from 1.
    pub seq: u64,
    pub method: String,
    /// Path with the query string, as sent.
    pub path: String,
    /// The status sent; 0 when no reply was sent at all.
    pub status: u16,
    /// When the request arrived (ISO 8601, `Z`).
    pub at: String,
    /// Time from arrival to reply, in milliseconds.
    pub duration_ms: u64,
    /// The `User-Agent` header, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// What answered instead of the API: `latency`, `rate_limited`, `injected`,
    /// `injected_after_apply`, `drop_before`, `drop_after`, `delay`, a hostile kind
    /// (`endless_pages`, `huge_body`, `garbage_json`, `html`, `trickle`, `redirect`), `rewrite`,
    /// or `client_gone` when the client closed the connection before the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// A fault marker a layer puts on a response for the log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultMark(pub &'static str);

/// Set on a response whose connection is closed instead of answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoReply;

#[derive(Debug)]
pub(crate) struct RequestLog {
    next_seq: AtomicU64,
    capacity: usize,
    records: Mutex<VecDeque<RequestRecord>>,
    /// Records pushed out by the capacity limit.
    dropped: AtomicU64,
}

impl RequestLog {
    pub(crate) fn new(capacity: usize) -> RequestLog {
        RequestLog {
            next_seq: AtomicU64::new(1),
            capacity: capacity.max(1),
            records: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
        }
    }

    fn push(&self, record: RequestRecord) {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if records.len() >= self.capacity {
            records.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        records.push_back(record);
    }

    /// Records with `seq > since`, in arrival order, and how many were dropped.
    pub(crate) fn read(&self, since: u64) -> (Vec<RequestRecord>, u64) {
        let records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<RequestRecord> =
            records.iter().filter(|r| r.seq > since).cloned().collect();
        out.sort_by_key(|r| r.seq);
        (out, self.dropped.load(Ordering::Relaxed))
    }

    pub(crate) fn clear(&self) {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// A record that is written when the request ends, however it ends: if the request
/// future is dropped (the client went away), it is logged with status 0.
struct Pending<'a> {
    log: &'a RequestLog,
    record: Option<RequestRecord>,
    started: Instant,
}

impl Pending<'_> {
    fn finish(&mut self, status: u16, fault: Option<&'static str>) {
        if let Some(mut record) = self.record.take() {
            record.status = status;
            record.fault = fault.map(str::to_owned);
            record.duration_ms =
                u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::debug!(
                method = %record.method,
                path = %record.path,
                status,
                fault,
                duration_ms = record.duration_ms,
                "emulator request"
            );
            self.log.push(record);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.finish(0, Some("client_gone"));
    }
}

/// The outermost layer of the API router: log every request.
pub(crate) async fn log_layer(
    State(app): State<std::sync::Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let log = &app.log;
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let user_agent = request
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut pending = Pending {
        log,
        record: Some(RequestRecord {
            seq: log.next_seq.fetch_add(1, Ordering::Relaxed),
            method: request.method().as_str().to_owned(),
            path,
            status: 0,
            at: format_time(time::OffsetDateTime::now_utc()),
            duration_ms: 0,
            user_agent,
            fault: None,
        }),
        started: Instant::now(),
    };
    let response = next.run(request).await;
    let fault = response.extensions().get::<FaultMark>().map(|m| m.0);
    let status = if response.extensions().get::<NoReply>().is_some() {
        0
    } else {
        response.status().as_u16()
    };
    pending.finish(status, fault);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> RequestRecord {
        RequestRecord {
            seq,
            method: "GET".to_owned(),
            path: "/api/prompts/summary/".to_owned(),
            status: 200,
            at: "2026-01-01T00:00:00.000000Z".to_owned(),
            duration_ms: 0,
            user_agent: None,
            fault: None,
        }
    }

    #[test]
    fn the_log_is_bounded_and_read_in_arrival_order() {
        let log = RequestLog::new(3);
        for seq in [2, 1, 3, 4] {
            log.push(record(seq));
        }
        let (records, dropped) = log.read(0);
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(
            seqs,
            [1, 3, 4],
            "the oldest pushed went first, sorted by arrival"
        );
        assert_eq!(dropped, 1);
        assert_eq!(log.read(3).0.len(), 1);
        log.clear();
        assert!(log.read(0).0.is_empty());
    }
}
