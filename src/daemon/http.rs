//! Serving the probe router over HTTP/1 with the bounds axum's `serve` lacks, so that
//! no neighbour can starve the liveness probe:
//!
//! - a client has [`HEADER_TIMEOUT`] to send a request's head, on a new connection and
//!   between requests on a kept-alive one; a connection lives at most [`LIFETIME`];
//! - request heads are small (16 KiB of buffer, 64 headers);
//! - at most `max_connections` are open (see `fdlimit::connection_cap`, well under the
//!   open-file limit). A new connection beyond that closes the oldest one that has no
//!   request in progress (a slow client holding a half-sent head is such a one), or is
//!   closed at once when every one is busy. So a flood of slow clients cannot keep a
//!   prompt probe out, however many there are;
//! - running out of descriptors at `accept` closes an idle connection and waits a
//!   moment, instead of spinning.
//!
//! Every request carries the peer's address ([`Peer`]) for the handlers. Knows nothing
//! about the routes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use crate::fdlimit;

/// Time a client has to send a request's head.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a connection may stay open, requests and all.
pub(crate) const LIFETIME: Duration = Duration::from_secs(60);
/// Time requests in flight get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(2);

/// The peer of the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Conn {
    /// Requests being served on it now.
    busy: Arc<AtomicUsize>,
    /// Cancelled to close it at once (to make room).
    close: CancellationToken,
}

/// The open connections, oldest first (ids grow with time).
#[derive(Debug, Default)]
struct Registry {
    next: u64,
    conns: BTreeMap<u64, Conn>,
}

impl Registry {
    /// Connections not already told to close.
    fn live(&self) -> usize {
        self.conns
            .values()
            .filter(|c| !c.close.is_cancelled())
            .count()
    }

    /// Close the oldest connection with no request in progress; whether there was one.
    fn evict_oldest_idle(&self) -> bool {
        let idle = self
            .conns
            .values()
            .find(|c| !c.close.is_cancelled() && c.busy.load(Ordering::Acquire) == 0);
        idle.map(|c| c.close.cancel()).is_some()
    }
}

type Shared = Arc<Mutex<Registry>>;

fn lock(registry: &Shared) -> std::sync::MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serve `router` on `listener` until `stop`, with at most `max_connections` open.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let registry: Shared = Arc::default();
    let mut tasks = JoinSet::new();
    let mut warned_out_of_fds = false;
    tracing::debug!(max_connections, "probe server bounds");
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                let code = err.raw_os_error();
                if matches!(code, Some(fdlimit::EMFILE | fdlimit::ENFILE)) {
                    if !warned_out_of_fds {
                        tracing::warn!(error = %err, open = lock(&registry).conns.len(), "out of file descriptors accepting a probe connection; closing an idle one");
                        warned_out_of_fds = true;
                    }
                    lock(&registry).evict_oldest_idle();
                    metrics.http_refused("out_of_descriptors");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                } else {
                    tracing::debug!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                continue;
            }
        };
        warned_out_of_fds = false;
        let (id, busy, close) = {
            let mut reg = lock(&registry);
            if reg.live() >= max_connections {
                if reg.evict_oldest_idle() {
                    metrics.http_refused("evicted");
                } else {
                    metrics.http_refused("connection_cap");
                    drop(stream);
                    continue;
                }
            }
            let id = reg.next;
            reg.next += 1;
            let conn = Conn {
                busy: Arc::default(),
                close: CancellationToken::new(),
            };
            let handles = (id, Arc::clone(&conn.busy), conn.close.clone());
            reg.conns.insert(id, conn);
            handles
        };
        let registry = Arc::clone(&registry);
        let router = router.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            connection(stream, peer, router, busy, close, stop).await;
            lock(&registry).conns.remove(&id);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN + Duration::from_millis(500), async {
        while tasks.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tasks.abort_all();
    }
    Ok(())
}

/// Counts a request in progress on its connection while alive.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(count))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serve one connection until it ends, is evicted (dropped at once: it has no request
/// in progress), outlives [`LIFETIME`] or the server stops (both: requests in progress
/// may finish, within [`DRAIN`]).
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    busy: Arc<AtomicUsize>,
    close: CancellationToken,
    stop: CancellationToken,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let entered = Busy::enter(&busy);
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(Peer(peer));
        let mut router = router.clone();
        async move {
            let _entered = entered;
            tower_service::Service::call(&mut router, request).await
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(16 * 1024)
        .max_headers(64)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => {
            if let Err(err) = served {
                tracing::trace!(%peer, error = %err, "probe connection ended");
            }
            return;
        }
        () = close.cancelled() => return,
        () = stop.cancelled() => {}
        () = tokio::time::sleep(LIFETIME) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN, conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_makes_room() {
        let registry = Registry::default();
        let mut reg = registry;
        let mut closes = Vec::new();
        for id in 0..3 {
            let conn = Conn {
                busy: Arc::new(AtomicUsize::new(usize::from(id == 0))),
                close: CancellationToken::new(),
            };
            closes.push(conn.close.clone());
            reg.conns.insert(id, conn);
        }
        assert_eq!(reg.live(), 3);
        assert!(reg.evict_oldest_idle());
        assert!(!closes[0].is_cancelled(), "busy: kept");
        assert!(closes[1].is_cancelled(), "the oldest idle one goes");
        assert_eq!(reg.live(), 2);
        assert!(reg.evict_oldest_idle());
        assert!(closes[2].is_cancelled());
        assert!(!reg.evict_oldest_idle(), "only a busy one is left");
    }
}
