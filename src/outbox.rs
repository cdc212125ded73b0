//! The delivery worker: claims due outbox rows with a lease and sends them through the
//! platform's [`Delivery`], in order per ticket and platform.
//!
//! Delivers many rows at once (`concurrency`): the store never claims a row while an earlier
//! one of the same ticket and destination (or, without a ticket, of the same batch and
//! destination) is pending, so order holds where it matters and a slow or failing channel
//! holds back only its own rows. Owns retry policy: a rate limit (the platform's Retry-After,
//! or the client's own pacing when a slot is further away than a moment) reschedules the row to
//! then without counting an attempt, while the client keeps what the limit concerns (a
//! channel, a method, a bucket, or all of a platform for a global limit) paused for its other
//! rows; a temporary failure backs off with jitter, a permanent one (or too many attempts) moves the
//! row to the dead-letter state, logged once and retryable from the CLI. Nothing is dropped.
//! Must not render or decide content: rows arrive ready to send.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::chat::{backoff, ChatError, Delivery};
use crate::core::clock::Clock;
use crate::core::message::{OutKind, Target};
use crate::core::types::Platform;
use crate::store::{DynStore, OutboxRow, StoreError};
use crate::telemetry::Telemetry;
use crate::worker::Parking;

/// Tuning of the delivery worker.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// Name of this worker in leases (unique per process).
    pub owner: String,
    /// How long a claim is held; a dead worker's rows are taken over after this.
    pub lease: Duration,
    /// Rows claimed per round by [`OutboxWorker::round`].
    pub batch: i64,
    /// Deliveries in flight at once (`[outbox] concurrency`); rows that must keep their order
    /// (one ticket's messages to one destination) are never among them together.
    pub concurrency: usize,
    /// Wait between rounds when there was nothing to do.
    pub idle: Duration,
    /// First backoff after a temporary failure.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_cap: Duration,
    /// Attempts after which a still-failing row is dead-lettered.
    pub max_attempts: i64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            owner: format!("outbox-{}", uuid::Uuid::new_v4().simple()),
            lease: Duration::from_secs(60),
            batch: 20,
            concurrency: crate::config::DEFAULT_OUTBOX_CONCURRENCY,
            idle: Duration::from_millis(500),
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(300),
            max_attempts: 15,
        }
    }
}

/// What one row's delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent and recorded.
    Sent,
    /// Sent, but another worker had recorded it already: a duplicate delivery.
    Duplicate,
    /// Will be tried again at the given time.
    Retry(DateTime<Utc>),
    /// The platform (or the client's pacing) asked to wait until the given time.
    RateLimited(DateTime<Utc>),
    /// Moved to the dead-letter state.
    Dead(String),
}

/// The delivery worker.
pub struct OutboxWorker {
    store: DynStore,
    deliveries: HashMap<Platform, Arc<dyn Delivery>>,
    clock: Arc<dyn Clock>,
    telemetry: Arc<Telemetry>,
    settings: OutboxSettings,
}

impl std::fmt::Debug for OutboxWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWorker")
            .field("platforms", &self.deliveries.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish()
    }
}

impl OutboxWorker {
    /// A worker delivering through `deliveries` (one per platform).
    pub fn new(
        store: DynStore,
        deliveries: Vec<Arc<dyn Delivery>>,
        clock: Arc<dyn Clock>,
        telemetry: Arc<Telemetry>,
        settings: OutboxSettings,
    ) -> Self {
        let deliveries = deliveries.into_iter().map(|d| (d.platform(), d)).collect();
        Self {
            store,
            deliveries,
            clock,
            telemetry,
            settings,
        }
    }

    /// Delivers until `shutdown` turns true, up to `concurrency` rows at once; the rows in
    /// hand are finished first.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let name = format!("outbox {}", self.settings.owner);
        let store = self.store.clone();
        let me = Arc::new(self);
        let parking = Arc::new(Parking::default());
        crate::worker::run_concurrent(
            &name,
            me.settings.idle,
            me.settings.concurrency,
            shutdown.clone(),
            &store.wake().outbox,
            &parking,
            |n| me.claim(i64::try_from(n).unwrap_or(i64::MAX)),
            |row| {
                let me = me.clone();
                let parking = parking.clone();
                let mut shutdown = shutdown.clone();
                async move {
                    let park = Some((&*parking, &mut shutdown));
                    if let Err(e) = me.deliver_parking(&row, park).await {
                        tracing::warn!(row = row.id, error = %e, "could not record a delivery; the row is retried when its lease ends");
                    }
                }
            },
        )
        .await;
    }

    /// Claims one batch and delivers it, up to `concurrency` rows at once; returns how many
    /// rows it handled.
    pub async fn round(&self) -> Result<usize, StoreError> {
        use futures_util::stream::{self, TryStreamExt};
        let rows = self.claim(self.settings.batch).await?;
        let n = rows.len();
        stream::iter(rows.iter().map(Ok))
            .try_for_each_concurrent(self.settings.concurrency.max(1), |row| async move {
                self.deliver(row).await.map(|_| ())
            })
            .await?;
        Ok(n)
    }

    /// Leases up to `limit` due rows of the platforms this worker delivers to.
    async fn claim(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let now = self.clock.now();
        let platforms: Vec<Platform> = self.deliveries.keys().copied().collect();
        let lease = chrono::Duration::from_std(self.settings.lease)
            .unwrap_or(chrono::Duration::seconds(60));
        self.store
            .outbox_claim(&self.settings.owner, &platforms, now, lease, limit)
            .await
    }

    /// Counts and logs a row whose lease another worker took over before this one finished.
    fn lost_lease(&self, row: &OutboxRow, what: &str) {
        self.telemetry.lease_lost("outbox");
        tracing::warn!(
            row = row.id,
            "outbox row's lease passed to another worker before its {what} was recorded; that worker's outcome stands"
        );
    }

    /// Delivers one claimed row and records the outcome.
    pub async fn deliver(&self, row: &OutboxRow) -> Result<Outcome, StoreError> {
        self.deliver_parking(row, None).await
    }

    /// The longest a row waits for a rate limit's slot in memory (parked) rather than being
    /// rescheduled in the store: well inside its lease, so no other worker takes it over.
    fn park_limit(&self) -> Duration {
        self.settings.lease / 3
    }

    /// [`Self::deliver`]; with `park`, a row whose slot is less than [`Self::park_limit`] away
    /// waits for it in memory with its place given up (at most four times `concurrency` rows at
    /// once), instead of a write to put it off and a claim to take it again.
    async fn deliver_parking(
        &self,
        row: &OutboxRow,
        mut park: Option<(&Parking, &mut watch::Receiver<bool>)>,
    ) -> Result<Outcome, StoreError> {
        let platform = row.outgoing.target.platform();
        let label = platform.as_str();
        if row.reclaimed {
            // A previous claim ended without an outcome: its worker may have sent it already.
            self.telemetry
                .counter(&self.telemetry.outbox_reclaimed, label);
            tracing::warn!(
                row = row.id,
                attempts = row.attempts,
                "outbox row taken over from an expired lease; it may be delivered twice"
            );
        }
        let owner = self.settings.owner.as_str();
        let Some(delivery) = self.deliveries.get(&platform) else {
            let until = self.clock.now() + chrono::Duration::seconds(60);
            if !self
                .store
                .outbox_retry(
                    row.id,
                    owner,
                    until,
                    &format!("no {platform} adapter is running"),
                )
                .await?
            {
                self.lost_lease(row, "retry");
            }
            return Ok(Outcome::Retry(until));
        };
        let key = format!("switchboard-outbox-{}", row.id);
        let most_parked = self.settings.concurrency.saturating_mul(4);
        let mut result = self.send(delivery.as_ref(), row, &key).await?;
        while let (Err(ChatError::RateLimited(wait)), Some((parking, shutdown))) =
            (&result, park.as_mut())
        {
            if *wait > self.park_limit() || parking.count() >= most_parked {
                break;
            }
            if let Err(left) = parking.park(*wait, shutdown).await {
                result = Err(ChatError::RateLimited(left));
                break;
            }
            result = self.send(delivery.as_ref(), row, &key).await?;
        }
        let now = self.clock.now();
        let outcome = match result {
            Ok(message_id) => {
                if self
                    .store
                    .outbox_sent(row.id, owner, Some(&message_id), now)
                    .await?
                {
                    self.telemetry.counter(&self.telemetry.outbox_sent, label);
                    Outcome::Sent
                } else {
                    self.telemetry
                        .counter(&self.telemetry.outbox_duplicates, label);
                    self.telemetry.lease_lost("outbox");
                    tracing::warn!(row = row.id, "outbox row was delivered by two workers (its lease passed to another before the delivery was recorded)");
                    Outcome::Duplicate
                }
            }
            Err(ChatError::RateLimited(wait)) => {
                let until =
                    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(1));
                self.telemetry
                    .counter(&self.telemetry.outbox_rate_limited, label);
                // Waiting for a rate limit is not a failed attempt.
                if !self
                    .store
                    .outbox_defer(row.id, owner, until, &format!("rate limited for {wait:?}"))
                    .await?
                {
                    self.lost_lease(row, "retry");
                }
                Outcome::RateLimited(until)
            }
            Err(ChatError::Transient(e)) if row.attempts < self.settings.max_attempts => {
                let wait = backoff(
                    row.attempts,
                    self.settings.backoff_base,
                    self.settings.backoff_cap,
                );
                let until =
                    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(1));
                tracing::info!(row = row.id, attempts = row.attempts, error = %e, ?wait, "delivery failed; will retry");
                if !self.store.outbox_retry(row.id, owner, until, &e).await? {
                    self.lost_lease(row, "retry");
                }
                Outcome::Retry(until)
            }
            Err(e) => {
                let why = match e {
                    ChatError::Transient(e) => {
                        format!("gave up after {} attempts: {e}", row.attempts)
                    }
                    other => other.to_string(),
                };
                self.telemetry.counter(&self.telemetry.outbox_dead, label);
                tracing::error!(row = row.id, target = %row.outgoing.target, error = %why, "delivery failed for good; the row is dead-lettered (`switchboard outbox list --failed`, `switchboard outbox retry`)");
                if !self.store.outbox_dead(row.id, owner, &why, now).await? {
                    self.lost_lease(row, "failure");
                }
                Outcome::Dead(why)
            }
        };
        Ok(outcome)
    }

    /// One attempt at the platform: posts the row, or edits the alert it updates.
    async fn send(
        &self,
        delivery: &dyn Delivery,
        row: &OutboxRow,
        key: &str,
    ) -> Result<Result<String, ChatError>, StoreError> {
        Ok(match (row.outgoing.kind, &row.outgoing.target) {
            (OutKind::AlertUpdate, Target::Channel { channel, .. }) => {
                let alert_target = Target::Channel {
                    channel: channel.clone(),
                    thread: None,
                };
                let ticket = row.outgoing.ticket;
                let posted = match ticket {
                    Some(t) => self.store.alert_message_id(t, &alert_target).await?,
                    None => None,
                };
                match posted {
                    Some(id) => delivery
                        .edit(channel, &id, &row.outgoing.message)
                        .await
                        .map(|()| id),
                    None => Err(ChatError::Permanent(
                        "the alert this edits was never posted".into(),
                    )),
                }
            }
            (OutKind::AlertReply, Target::Channel { channel, .. }) => {
                let alert_target = Target::Channel {
                    channel: channel.clone(),
                    thread: None,
                };
                let posted = match row.outgoing.ticket {
                    Some(t) => self.store.alert_message_id(t, &alert_target).await?,
                    None => None,
                };
                match posted {
                    Some(id) => {
                        let target = Target::Channel {
                            channel: channel.clone(),
                            thread: Some(id),
                        };
                        delivery.post(&target, &row.outgoing.message, key).await
                    }
                    None => Err(ChatError::Permanent(
                        "the alert this replies to was never posted".into(),
                    )),
                }
            }
            (OutKind::AlertUpdate | OutKind::AlertReply, Target::User { .. }) => Err(
                ChatError::Permanent("alerts live in channels, not DMs".into()),
            ),
            (OutKind::Alert | OutKind::Post, target) => {
                delivery.post(target, &row.outgoing.message, key).await
            }
        })
    }
}
