//! The loop every background worker runs: rounds until shutdown, pausing when idle.
//!
//! Owns only pacing and shutdown; what a round does belongs to each worker, and the wake-up
//! signal comes from the store ([`crate::store::Wake`]).

use std::future::Future;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::store::StoreError;

/// Runs `round` until `shutdown` turns true. A round that handled nothing (or failed, which is
/// logged) is followed by a pause of `idle`, cut short by shutdown or by `wake`; a busy round
/// is followed at once by the next. The round in progress always finishes.
pub async fn run_rounds<F, Fut>(
    name: &str,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
    wake: &Notify,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, StoreError>>,
{
    tracing::info!(worker = name, "worker started");
    while !*shutdown.borrow() {
        let busy = match round().await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(worker = name, error = %e, "worker round failed; retrying");
                false
            }
        };
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => {}
                _ = wake.notified() => {}
            }
        }
    }
    tracing::info!(worker = name, "worker stopped");
}
