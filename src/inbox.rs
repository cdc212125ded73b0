//! The inbox worker: completes raw platform events into tickets.
//!
//! Adapters commit each event to the inbox (unique key) before they acknowledge it; this worker
//! claims due rows with a lease, asks the platform's [`EventSource`] for what the event lacks,
//! and hands the flag to the desk, which marks the row done in the transaction that writes the
//! ticket. Rate limits and errors reschedule the row; nothing is lost. Many events are
//! completed at once (`concurrency`), so a burst of flags reaches the store's group commit as
//! a group; the store never claims an event while an earlier one about the same platform
//! message is pending, so a flag, its edit and a reply apply in the order received. Must not
//! talk to a platform except through `EventSource`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::chat::{backoff, ChatError, Completion, EventSource};
use crate::core::types::Platform;
use crate::desk::{Desk, DeskError};
use crate::store::{InboxOutcome, InboxRow, StoreError};

/// Tuning of the inbox worker.
#[derive(Debug, Clone)]
pub struct InboxSettings {
    /// Name of this worker in leases (unique per process).
    pub owner: String,
    /// How long a claim is held; a dead worker's rows are taken over after this.
    pub lease: Duration,
    /// Rows claimed per round by [`InboxWorker::round`].
    pub batch: i64,
    /// Events completed at once (`[inbox] concurrency`); events about one platform message are
    /// never among them together, so they apply in the order received.
    pub concurrency: usize,
    /// Wait between rounds when there was nothing to do.
    pub idle: Duration,
    /// First backoff after a temporary failure.
    pub backoff_base: Duration,
    /// Longest backoff (events are retried at this pace for as long as it takes).
    pub backoff_cap: Duration,
}

impl Default for InboxSettings {
    fn default() -> Self {
        Self {
            owner: format!("inbox-{}", uuid::Uuid::new_v4().simple()),
            lease: Duration::from_secs(60),
            batch: 20,
            concurrency: crate::config::DEFAULT_INBOX_CONCURRENCY,
            idle: Duration::from_millis(250),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxResult {
    /// A new ticket.
    Ticket(String),
    /// The message already had a ticket.
    Existing(String),
    /// Not a flag, or refused (with the reason); the row is done.
    Ignored(String),
    /// Rescheduled (rate limit or temporary failure).
    Retry(String),
    /// Can never be processed; kept as failed.
    Failed(String),
}

/// The inbox worker.
pub struct InboxWorker {
    desk: Desk,
    sources: HashMap<Platform, Arc<dyn EventSource>>,
    settings: InboxSettings,
}

impl std::fmt::Debug for InboxWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxWorker")
            .field("platforms", &self.sources.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish()
    }
}

impl InboxWorker {
    /// A worker completing events through `sources` (one per platform).
    pub fn new(desk: Desk, sources: Vec<Arc<dyn EventSource>>, settings: InboxSettings) -> Self {
        let sources = sources.into_iter().map(|s| (s.platform(), s)).collect();
        Self {
            desk,
            sources,
            settings,
        }
    }

    /// Completes events until `shutdown` turns true, up to `concurrency` at once; the events
    /// in hand are finished first.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let name = format!("inbox {}", self.settings.owner);
        let store = self.desk.store.clone();
        let me = Arc::new(self);
        crate::worker::run_concurrent(
            &name,
            me.settings.idle,
            me.settings.concurrency,
            shutdown,
            &store.wake().inbox,
            // Events put off by a rate limit are rescheduled in the store, not parked: a
            // fetch's wait is rare and the event's place is cheap to take again.
            &crate::worker::Parking::default(),
            |n| me.claim(i64::try_from(n).unwrap_or(i64::MAX)),
            |row| {
                let me = me.clone();
                async move {
                if let Err(e) = me.handle(&row).await {
                    tracing::warn!(event = %row.key.escape_debug(), error = %e, "could not record an event's outcome; it is retried when its lease ends");
                }
                }
            },
        )
        .await;
    }

    /// Claims one batch and processes it, up to `concurrency` events at once; returns how
    /// many events it handled.
    pub async fn round(&self) -> Result<usize, StoreError> {
        use futures_util::stream::{self, TryStreamExt};
        let rows = self.claim(self.settings.batch).await?;
        let n = rows.len();
        stream::iter(rows.iter().map(Ok))
            .try_for_each_concurrent(self.settings.concurrency.max(1), |row| self.handle(row))
            .await?;
        Ok(n)
    }

    /// Leases up to `limit` due events.
    async fn claim(&self, limit: i64) -> Result<Vec<InboxRow>, StoreError> {
        let platforms: Vec<Platform> = self.sources.keys().copied().collect();
        if platforms.is_empty() {
            return Ok(vec![]);
        }
        let lease = chrono::Duration::from_std(self.settings.lease)
            .unwrap_or(chrono::Duration::seconds(60));
        self.desk
            .store
            .inbox_claim(
                &self.settings.owner,
                &platforms,
                self.desk.now(),
                lease,
                limit,
            )
            .await
    }

    /// Processes one claimed event and counts its outcome.
    async fn handle(&self, row: &InboxRow) -> Result<(), StoreError> {
        let result = self.process(row).await?;
        let outcome = match &result {
            InboxResult::Ticket(_) => "ticket",
            InboxResult::Existing(_) => "existing",
            InboxResult::Ignored(_) => "ignored",
            InboxResult::Retry(_) => "retry",
            InboxResult::Failed(_) => "failed",
        };
        self.desk.telemetry.inbox(&row.platform, outcome);
        Ok(())
    }

    /// Counts and logs an event whose lease another worker took over before this one
    /// finished it.
    fn lost_lease(&self, row: &InboxRow) {
        self.desk.telemetry.lease_lost("inbox");
        tracing::warn!(
            event = %row.key.escape_debug(),
            "inbox event's lease passed to another worker before its outcome was recorded; that worker's outcome stands"
        );
    }

    async fn retry(
        &self,
        row: &InboxRow,
        wait: Duration,
        why: String,
    ) -> Result<InboxResult, StoreError> {
        let until = self.desk.now()
            + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(1));
        tracing::info!(event = %row.key.escape_debug(), attempts = row.attempts, ?wait, reason = %why, "event will be retried");
        if !self
            .desk
            .store
            .inbox_retry(row.id, &self.settings.owner, until, &why)
            .await?
        {
            self.lost_lease(row);
        }
        Ok(InboxResult::Retry(why))
    }

    /// Marks an event done with `note`, as handled without a new ticket.
    async fn finish_ignored(
        &self,
        row: &InboxRow,
        note: String,
    ) -> Result<InboxResult, StoreError> {
        if !self
            .desk
            .store
            .inbox_finish(
                row.id,
                &self.settings.owner,
                InboxOutcome::Done,
                &note,
                self.desk.now(),
            )
            .await?
        {
            self.lost_lease(row);
        }
        Ok(InboxResult::Ignored(note))
    }

    /// After a desk error: a storage failure is retried after `wait`; the user's kind of error
    /// will not change by retrying, so the event is done with it as the note.
    async fn settle(
        &self,
        row: &InboxRow,
        e: DeskError,
        wait: Duration,
    ) -> Result<InboxResult, StoreError> {
        match e {
            DeskError::Internal(e) => self.retry(row, wait, e.to_string()).await,
            e => self.finish_ignored(row, e.to_string()).await,
        }
    }

    /// Processes one claimed event and records what became of it.
    pub async fn process(&self, row: &InboxRow) -> Result<InboxResult, StoreError> {
        let Some(source) = row
            .platform
            .parse::<Platform>()
            .ok()
            .and_then(|p| self.sources.get(&p))
        else {
            return self
                .retry(
                    row,
                    Duration::from_secs(60),
                    format!("no {} adapter is running", row.platform),
                )
                .await;
        };
        let backoff_wait = || {
            backoff(
                row.attempts,
                self.settings.backoff_base,
                self.settings.backoff_cap,
            )
        };
        let completion = match source.complete(&row.payload).await {
            Ok(c) => c,
            Err(ChatError::RateLimited(wait)) => {
                return self
                    .retry(row, wait, "rate limited while fetching the message".into())
                    .await
            }
            Err(ChatError::Transient(e)) => return self.retry(row, backoff_wait(), e).await,
            Err(ChatError::Permanent(e)) => {
                tracing::warn!(event = %row.key.escape_debug(), error = %e, "event cannot be completed; kept as failed");
                if !self
                    .desk
                    .store
                    .inbox_finish(
                        row.id,
                        &self.settings.owner,
                        InboxOutcome::Failed,
                        &e,
                        self.desk.now(),
                    )
                    .await?
                {
                    self.lost_lease(row);
                }
                return Ok(InboxResult::Failed(e));
            }
        };
        let mut request = match completion {
            Completion::Flag(r) => *r,
            Completion::SourceChanged {
                channel,
                message_id,
                by,
                text,
            } => {
                let done = self
                    .desk
                    .record_source_change(&channel, &message_id, by.as_ref(), text)
                    .await;
                let note = match done {
                    Ok(Some(t)) => format!("recorded on {}", t.id),
                    Ok(None) => "the message has no ticket".to_string(),
                    Err(e) => return self.settle(row, e, backoff_wait()).await,
                };
                return self.finish_ignored(row, note).await;
            }
            Completion::Reply {
                channel,
                message_id,
                by,
                reply,
            } => {
                let note = match self
                    .desk
                    .record_reply(&channel, &message_id, &by, reply.as_ref())
                    .await
                {
                    Ok(Some(t)) => format!("recorded a reply on {}", t.id),
                    Ok(None) => "a reply that changes nothing".to_string(),
                    Err(e) => return self.settle(row, e, backoff_wait()).await,
                };
                return self.finish_ignored(row, note).await;
            }
            Completion::Ignore(why) => return self.finish_ignored(row, why).await,
        };
        request.inbox_key = Some(row.key.clone());
        match self.desk.flag(request).await {
            Ok(o) if o.created => Ok(InboxResult::Ticket(o.ticket.id.to_string())),
            Ok(o) => Ok(InboxResult::Existing(o.ticket.id.to_string())),
            Err(e) => self.settle(row, e, backoff_wait()).await,
        }
    }
}
