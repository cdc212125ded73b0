//! The loop every background worker runs: rounds until shutdown, pausing when idle.
//!
//! Owns only pacing and shutdown; what a round does belongs to each worker, and the wake-up
//! signal comes from the store ([`crate::store::Wake`]).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::store::StoreError;

/// Runs `round` until `shutdown` turns true. A round that handled nothing (or failed, which is
/// logged) is followed by a pause of `idle`, cut short by shutdown or by `wake`; a busy round
/// is followed at once by the next. The round in progress always finishes.
pub async fn run_rounds<F, Fut>(
    name: &str,
    idle: Duration,
    shutdown: watch::Receiver<bool>,
    wake: &Notify,
    round: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, StoreError>>,
{
    run_rounds_with(name, || idle, shutdown, wake, round).await;
}

/// [`run_rounds`] with the pause after an idle round asked of `idle` each time, for a worker
/// whose next piece of work is due at a known time (the scheduler's next digest fire).
pub async fn run_rounds_with<I, F, Fut>(
    name: &str,
    mut idle: I,
    mut shutdown: watch::Receiver<bool>,
    wake: &Notify,
    mut round: F,
) where
    I: FnMut() -> Duration,
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
                _ = tokio::time::sleep(idle()) => {}
                _ = shutdown.changed() => {}
                _ = wake.notified() => {}
            }
        }
    }
    tracing::info!(worker = name, "worker stopped");
}

/// Places of a [`run_concurrent`] worker given up by rows that wait for a moment in memory
/// (a rate limit's slot a few seconds away) instead of rescheduling themselves in the store: a
/// parked row does not count against `concurrency`, so it holds back no other row, and it
/// costs no write to put it off and no claim to take it again.
#[derive(Debug, Default)]
pub struct Parking {
    parked: AtomicUsize,
    freed: Notify,
}

impl Parking {
    /// Rows parked now.
    pub fn count(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }

    /// Waits `wait` with this row's place given up, unless `shutdown` turns true first; then
    /// the answer is the wait left (the caller reschedules the row in the store).
    pub async fn park(
        &self,
        wait: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Duration> {
        let until = tokio::time::Instant::now() + wait;
        self.parked.fetch_add(1, Ordering::Relaxed);
        self.freed.notify_one();
        let stopped = tokio::select! {
            _ = tokio::time::sleep_until(until) => false,
            _ = shutdown.wait_for(|stop| *stop) => true,
        };
        self.parked.fetch_sub(1, Ordering::Relaxed);
        if stopped {
            return Err(until.saturating_duration_since(tokio::time::Instant::now()));
        }
        Ok(())
    }
}

/// Runs a worker that handles up to `concurrency` rows at once until `shutdown` turns true.
///
/// `claim(n)` leases at most `n` rows; each is handed to `handle` and runs as its own task, and
/// a row finishing frees its place for the next claim, so a slow row holds back only itself.
/// (Tasks rather than futures polled by this loop: a row waiting on a database connection or a
/// platform must make progress while the loop itself awaits a claim, or the two starve each
/// other of pool connections.) The store keeps rows that must go in order (the same ticket and
/// destination, the same platform message) out of a claim until the one before them is
/// finished, so everything claimed may run at once. Rows parked in `parking` do not count
/// against `concurrency`. When nothing is due the loop waits `idle`, cut short by `wake` or
/// shutdown; at shutdown it claims nothing more and waits for the rows in hand.
#[allow(clippy::too_many_arguments)]
pub async fn run_concurrent<R, C, CF, H, HF>(
    name: &str,
    idle: Duration,
    concurrency: usize,
    mut shutdown: watch::Receiver<bool>,
    wake: &Notify,
    parking: &Parking,
    mut claim: C,
    handle: H,
) where
    C: FnMut(usize) -> CF,
    CF: Future<Output = Result<Vec<R>, StoreError>>,
    H: Fn(R) -> HF,
    HF: Future<Output = ()> + Send + 'static,
{
    let concurrency = concurrency.max(1);
    tracing::info!(worker = name, concurrency, "worker started");
    let mut in_flight = tokio::task::JoinSet::new();
    let finished = |r: Result<(), tokio::task::JoinError>| {
        if let Err(e) = r {
            tracing::error!(worker = name, error = %e, "a row's task panicked; the row is retried when its lease ends");
        }
    };
    // Rows at work: in flight and not parked.
    let busy =
        |in_flight: &tokio::task::JoinSet<()>| in_flight.len().saturating_sub(parking.count());
    while !*shutdown.borrow() {
        let free = concurrency.saturating_sub(busy(&in_flight));
        let claimed = if free > 0 {
            match claim(free).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(worker = name, error = %e, "worker claim failed; retrying");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let got = claimed.len();
        for row in claimed {
            in_flight.spawn(handle(row));
        }
        if got > 0 && busy(&in_flight) < concurrency {
            // More may be due at once (a burst): claim again before waiting.
            continue;
        }
        if in_flight.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => {}
                _ = wake.notified() => {}
            }
            continue;
        }
        // Wait for a row to finish (its place is free again, and a row it held back may now
        // be due) or for new work while there is room for it.
        let room = busy(&in_flight) < concurrency;
        tokio::select! {
            Some(r) = in_flight.join_next() => {
                finished(r);
                // Collect whatever else finished meanwhile, so one claim serves them all.
                while let Some(r) = in_flight.try_join_next() {
                    finished(r);
                }
            }
            _ = parking.freed.notified() => {}
            _ = wake.notified(), if room => {}
            _ = tokio::time::sleep(idle), if room => {}
            _ = shutdown.changed() => {}
        }
    }
    while let Some(r) = in_flight.join_next().await {
        finished(r);
    }
    tracing::info!(worker = name, "worker stopped");
}
