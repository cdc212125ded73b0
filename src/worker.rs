//! The loop every background worker runs: rounds until shutdown, pausing when idle.
//!
//! Owns only pacing and shutdown; what a round does belongs to each worker.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::store::StoreError;

/// Signals that new work was stored in this process, so a local worker starts its next round
/// now instead of after its idle pause. Work stored by another instance is found by polling.
#[derive(Debug, Default)]
pub struct Wake {
    /// New inbox rows.
    pub inbox: Notify,
    /// New outbox rows.
    pub outbox: Notify,
}

/// Wakes a worker when dropped: held through a store call that may queue work, so the signal
/// comes after the commit (or the failure, which costs one empty round).
pub struct WakeOnDrop<'a>(pub &'a Notify);

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

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
