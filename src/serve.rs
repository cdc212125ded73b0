//! Serving HTTP for real: the accept loop in front of the router.
//!
//! Owns what axum's `serve` leaves open: a header-read timeout on every connection (hyper's,
//! which needs a timer axum does not give it), a time limit on each request including its
//! body (a client that declares a length and sends less is answered 408), an immediate 413
//! when the declared length is over [`MAX_DECLARED_BODY`] (before any of it is read), a cap on
//! open connections (further clients wait in the kernel's backlog), and a bounded drain at
//! shutdown: connections get to finish what they are doing for [`ServeSettings::drain`], then
//! are dropped. Must not know routes or their rules; each route keeps its own body limit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The largest body any route takes (the metrics API's 1 MiB); a request declaring more is
/// refused before its body is read.
pub const MAX_DECLARED_BODY: u64 = 1024 * 1024;

/// Time limits and caps of the server.
#[derive(Debug, Clone, Copy)]
pub struct ServeSettings {
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long a request may take from its headers to its answer, body included.
    pub request_timeout: Duration,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// How long open connections get to finish at shutdown.
    pub drain: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 512,
            drain: Duration::from_secs(10),
        }
    }
}

/// Refuses a declared body over [`MAX_DECLARED_BODY`] at once, and answers 408 to a request
/// that takes longer than `limit` (a body sent slowly or not at all).
async fn limits(limit: Duration, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DECLARED_BODY) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long").into_response(),
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limit = settings.request_timeout;
    let router = router.layer(middleware::from_fn(move |req: Request, next: Next| {
        limits(limit, req, next)
    }));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout);
    let permits = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out is its own business, not an error of ours.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(settings.drain) => {
            tracing::warn!(drain = ?settings.drain, "connections still open after the drain time; closing them");
        }
    }
}
