//! The SQLite store: the embedded default, one file, one writer at a time.
//!
//! Owns SQLite's settings (WAL, `synchronous=NORMAL`, foreign keys, a busy timeout, memory-mapped
//! reads and a larger page cache) and starts
//! every write transaction with `BEGIN IMMEDIATE`, because a deferred transaction that reads
//! and then writes fails with "database is locked" instead of waiting. Migrations come from
//! `migrations/sqlite/`, embedded in the binary.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use std::sync::Arc;

use crate::worker::{Wake, WakeOnDrop};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use std::collections::HashMap;

use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{
    corrupt, enum_from, enum_text, parse_ts, parse_user, ticket_from_row, ts, CreateTicket,
    Created, Csat, InboxOutcome, InboxRow, Kudos, MetricSample, NewKudos, NewMetric, OutboxRow,
    Store, StoreError, TicketFilter,
};
use crate::core::digest::{CsatSample, DigestInput, DigestTicket, MetricPoint};
use crate::core::directory::Person;
use crate::core::message::{Outgoing, Target};
use crate::core::ticket::{EventKind, Ticket, TicketEvent};
use crate::core::types::{ChannelRef, Platform, TicketRef, UserRef};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

// Every query here reads its rows with `fetch_all`, never `fetch_one`/`fetch_optional`: those
// drop the row stream early, and sqlx resets the SQLite statement later on its worker thread,
// so a connection can keep a stale WAL read snapshot and miss rows committed meanwhile
// (reported as sqlx issue #2543). Reading every row keeps each statement's life inside the call.

/// A SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    creates: mpsc::Sender<CreateJob>,
    wake: Arc<Wake>,
}

impl super::TicketRow for SqliteRow {
    fn text(&self, col: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn int(&self, col: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.try_get::<Option<String>, _>(col)?
            .as_deref()
            .map(parse_ts)
            .transpose()
    }

    fn tags(&self, col: &str) -> Result<Vec<String>, StoreError> {
        serde_json::from_str(&self.try_get::<String, _>(col)?).map_err(|e| corrupt("tags", e))
    }
}

/// One ticket as packed by the digest query: the columns of `DIGEST_TICKET_COLUMNS`, in order.
type PackedTicket = (
    i64,
    String,
    String,
    String,
    Vec<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
);

fn unpack_digest_tickets(json: &str) -> Result<Vec<DigestTicket>, StoreError> {
    if json.is_empty() {
        return Ok(vec![]);
    }
    let rows: Vec<PackedTicket> =
        serde_json::from_str(json).map_err(|e| corrupt("digest tickets", e))?;
    let time = |t: Option<String>| t.as_deref().map(parse_ts).transpose();
    rows.into_iter()
        .map(
            |(
                id,
                title,
                department,
                priority,
                tags,
                created,
                first,
                resolved,
                closed,
                waiting,
                paused,
                assignee,
            )| {
                Ok(DigestTicket {
                    id: TicketRef(id),
                    title,
                    department,
                    priority: enum_from("priority", &priority)?,
                    tags,
                    created_at: parse_ts(&created)?,
                    first_response_at: time(first)?,
                    resolved_at: time(resolved)?,
                    closed_at: time(closed)?,
                    waiting_since: time(waiting)?,
                    sla_paused: chrono::Duration::seconds(paused),
                    assignee: assignee.as_deref().map(parse_user).transpose()?,
                })
            },
        )
        .collect()
}

async fn insert_events(
    tx: &mut Transaction<'static, Sqlite>,
    ticket: TicketRef,
    actor: Option<&UserRef>,
    events: &[EventKind],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for e in events {
        let data = serde_json::to_value(e).map_err(|e| corrupt("event", e))?;
        let kind = data["kind"].as_str().unwrap_or("unknown").to_string();
        sqlx::query(
            "INSERT INTO ticket_events (ticket_id, at, actor, kind, data) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(ticket.0)
        .bind(ts(at))
        .bind(actor.map(|a| a.to_string()))
        .bind(kind)
        .bind(data.to_string())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Finishes a claim (an `INSERT … ON CONFLICT DO NOTHING` of `claimed` rows in `tx`): the
/// winner queues `outbox` and commits; a lost claim rolls back and queues nothing.
async fn queue_if_claimed(
    mut tx: Transaction<'static, Sqlite>,
    claimed: u64,
    ticket: Option<TicketRef>,
    outbox: Vec<Outgoing>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if claimed == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    insert_outbox(&mut tx, ticket, outbox, at).await?;
    tx.commit().await?;
    Ok(true)
}

async fn insert_outbox(
    tx: &mut Transaction<'static, Sqlite>,
    ticket: Option<TicketRef>,
    outbox: Vec<Outgoing>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for mut o in outbox {
        if o.ticket.is_none() {
            o.ticket = ticket;
        }
        let target = serde_json::to_string(&o.target).map_err(|e| corrupt("target", e))?;
        let payload = serde_json::to_string(&o.message).map_err(|e| corrupt("message", e))?;
        sqlx::query(
            "INSERT INTO outbox (ticket_id, platform, kind, target, payload, next_attempt_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(o.ticket.map(|t| t.0))
        .bind(o.target.platform().as_str())
        .bind(enum_text(&o.kind))
        .bind(target)
        .bind(payload)
        .bind(ts(at))
        .bind(ts(at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`, e.g. `sqlite://switchboard.db`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Reads of many rows (digests) go through the OS page cache by memory map instead of
            // copying each page, and each connection keeps up to 16 MiB of pages (allocated as
            // used) so repeated reads of recent tickets stay in memory.
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-16384");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        let (creates, jobs) = mpsc::channel(1024);
        tokio::spawn(group_writer(pool.clone(), jobs));
        Ok(Self {
            pool,
            creates,
            wake: Arc::default(),
        })
    }

    /// The connection pool, for benchmarks that compare against raw statements.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn wake(&self) -> &Wake {
        &self.wake
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_ticket(&self, req: CreateTicket) -> Result<Created, StoreError> {
        let _wake = WakeOnDrop(&self.wake.outbox);
        let (reply, answer) = oneshot::channel();
        self.creates
            .send((req, reply))
            .await
            .map_err(|_| StoreError::Batch("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Batch("the SQLite writer has stopped".into()))?
    }

    async fn update_ticket(
        &self,
        t: &Ticket,
        expected_version: i64,
        actor: Option<&UserRef>,
        events: Vec<EventKind>,
        outbox: Vec<Outgoing>,
    ) -> Result<(), StoreError> {
        let _wake = WakeOnDrop(&self.wake.outbox);
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE tickets SET version = ?, title = ?, body = ?, department = ?, priority = ?, tags = ?, \
             assignee = ?, status = ?, updated_at = ?, first_response_at = ?, resolved_at = ?, closed_at = ?, \
             waiting_since = ?, sla_paused_seconds = ? WHERE id = ? AND version = ?",
        )
        .bind(t.version)
        .bind(&t.title)
        .bind(&t.body)
        .bind(&t.department)
        .bind(enum_text(&t.priority))
        .bind(serde_json::to_string(&t.tags).map_err(|e| corrupt("tags", e))?)
        .bind(t.assignee.as_ref().map(|a| a.to_string()))
        .bind(enum_text(&t.status))
        .bind(ts(t.updated_at))
        .bind(t.first_response_at.map(ts))
        .bind(t.resolved_at.map(ts))
        .bind(t.closed_at.map(ts))
        .bind(t.waiting_since.map(ts))
        .bind(t.sla_paused.num_seconds())
        .bind(t.id.0)
        .bind(expected_version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(t.id));
        }
        insert_events(&mut tx, t.id, actor, &events, t.updated_at).await?;
        insert_outbox(&mut tx, Some(t.id), outbox, t.updated_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ticket(&self, id: TicketRef) -> Result<Option<Ticket>, StoreError> {
        let row = sqlx::query(select_tickets!("WHERE id = ?"))
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(ticket_from_row).transpose()
    }

    async fn ticket_by_source(
        &self,
        channel: &ChannelRef,
        message_id: &str,
    ) -> Result<Option<Ticket>, StoreError> {
        let row = sqlx::query(select_tickets!(
            "WHERE source_platform = ? AND source_channel = ? AND source_message = ?"
        ))
        .bind(channel.platform.as_str())
        .bind(&channel.id)
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .next();
        row.as_ref().map(ticket_from_row).transpose()
    }

    async fn list_tickets(&self, f: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        let statuses: Vec<String> = f.statuses.iter().map(enum_text).collect();
        let assignees: Vec<String> = f.assignees.iter().map(|a| a.to_string()).collect();
        let rows = sqlx::query(select_tickets!(
            "WHERE (?1 IS NULL OR department = ?1) \
               AND (?2 = '[]' OR status IN (SELECT value FROM json_each(?2))) \
               AND (?3 = '[]' OR assignee IN (SELECT value FROM json_each(?3))) \
               AND (?5 IS NULL OR status IN ('open', 'in_progress', 'waiting_on_customer') \
                    OR created_at >= ?5 OR resolved_at >= ?5 OR closed_at >= ?5) \
             ORDER BY id DESC LIMIT ?4"
        ))
        .bind(f.department.as_deref())
        .bind(serde_json::to_string(&statuses).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&assignees).unwrap_or_else(|_| "[]".into()))
        .bind(if f.limit > 0 { f.limit } else { -1 })
        .bind(f.active_or_since.map(ts))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    async fn events(&self, id: TicketRef) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, data FROM ticket_events WHERE ticket_id = ? ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TicketEvent {
                    ticket: id,
                    at: parse_ts(&r.try_get::<String, _>("at")?)?,
                    actor: r
                        .try_get::<Option<String>, _>("actor")?
                        .as_deref()
                        .map(parse_user)
                        .transpose()?,
                    kind: serde_json::from_str(&r.try_get::<String, _>("data")?)
                        .map_err(|e| corrupt("event", e))?,
                })
            })
            .collect()
    }

    async fn inbox_insert(
        &self,
        key: &str,
        platform: &str,
        payload: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _wake = WakeOnDrop(&self.wake.inbox);
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "INSERT INTO inbox (dedupe_key, platform, payload, next_attempt_at, received_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(key)
        .bind(platform)
        .bind(payload.to_string())
        .bind(ts(at))
        .bind(ts(at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, target, payload, ticket_id, status, attempts, last_error, platform_message_id, \
             created_at, NULL AS lease_until FROM outbox WHERE (?1 IS NULL OR status = ?1) ORDER BY id LIMIT ?2",
        )
        .bind(status)
        .bind(if limit > 0 { limit } else { -1 })
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    async fn inbox_claim(
        &self,
        owner: &str,
        platforms: &[Platform],
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<InboxRow>, StoreError> {
        let platforms: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
        let mut tx = self.write().await?;
        let rows = sqlx::query(
            "SELECT id, dedupe_key, platform, payload, attempts, status, last_error, received_at FROM inbox \
             WHERE status = 'pending' AND platform IN (SELECT value FROM json_each(?3)) \
               AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) \
             ORDER BY id LIMIT ?2",
        )
        .bind(ts(now))
        .bind(limit)
        .bind(serde_json::to_string(&platforms).map_err(|e| corrupt("platforms", e))?)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = rows
            .iter()
            .map(inbox_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<i64> = out.iter().map(|r| r.id).collect();
        lease_rows(&mut tx, Leased::Inbox, &ids, owner, now + lease).await?;
        tx.commit().await?;
        for row in &mut out {
            row.attempts += 1;
        }
        Ok(out)
    }

    async fn inbox_retry(
        &self,
        id: i64,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE inbox SET next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL \
             WHERE id = ? AND status = 'pending'",
        )
        .bind(ts(next_at))
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn inbox_finish(
        &self,
        id: i64,
        outcome: InboxOutcome,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let status = match outcome {
            InboxOutcome::Done => "done",
            InboxOutcome::Failed => "failed",
        };
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE inbox SET status = ?, last_error = ?, done_at = ?, lease_owner = NULL, lease_until = NULL \
             WHERE id = ? AND status = 'pending'",
        )
        .bind(status)
        .bind(note)
        .bind(ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn inbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<InboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, dedupe_key, platform, payload, attempts, status, last_error, received_at FROM inbox \
             WHERE (?1 IS NULL OR status = ?1) ORDER BY id LIMIT ?2",
        )
        .bind(status)
        .bind(if limit > 0 { limit } else { -1 })
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(inbox_from_row).collect()
    }

    async fn outbox_claim(
        &self,
        owner: &str,
        platforms: &[Platform],
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let platforms: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
        let mut tx = self.write().await?;
        let rows = sqlx::query(
            "SELECT id, kind, target, payload, ticket_id, status, attempts, last_error, platform_message_id, \
             created_at, lease_until FROM outbox o \
             WHERE status = 'pending' AND platform IN (SELECT value FROM json_each(?1)) \
               AND next_attempt_at <= ?2 AND (lease_until IS NULL OR lease_until <= ?2) \
               AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.ticket_id = o.ticket_id \
                               AND e.platform = o.platform AND e.id < o.id AND e.status = 'pending') \
             ORDER BY id LIMIT ?3",
        )
        .bind(serde_json::to_string(&platforms).map_err(|e| corrupt("platforms", e))?)
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = rows
            .iter()
            .map(outbox_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<i64> = out.iter().map(|r| r.id).collect();
        lease_rows(&mut tx, Leased::Outbox, &ids, owner, now + lease).await?;
        tx.commit().await?;
        for row in &mut out {
            row.attempts += 1;
        }
        Ok(out)
    }

    async fn outbox_sent(
        &self,
        id: i64,
        message_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'sent', platform_message_id = ?, sent_at = ?, last_error = NULL, \
             lease_owner = NULL, lease_until = NULL WHERE id = ? AND status = 'pending'",
        )
        .bind(message_id)
        .bind(ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbox_retry(
        &self,
        id: i64,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL \
             WHERE id = ? AND status = 'pending'",
        )
        .bind(ts(next_at))
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn outbox_dead(
        &self,
        id: i64,
        error: &str,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE outbox SET status = 'failed', last_error = ?, lease_owner = NULL, lease_until = NULL \
             WHERE id = ? AND status = 'pending'",
        )
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn outbox_requeue(&self, ids: &[i64], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?1 \
             WHERE status = 'failed' AND (?2 = '[]' OR id IN (SELECT value FROM json_each(?2)))",
        )
        .bind(ts(now))
        .bind(serde_json::to_string(ids).map_err(|e| corrupt("ids", e))?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn alert_message_id(
        &self,
        ticket: TicketRef,
        target: &Target,
    ) -> Result<Option<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT platform_message_id FROM outbox WHERE ticket_id = ? AND kind = 'alert' AND target = ? \
             AND status = 'sent' ORDER BY id DESC LIMIT 1",
        )
        .bind(ticket.0)
        .bind(serde_json::to_string(target).map_err(|e| corrupt("target", e))?)
        .fetch_all(&self.pool)
        .await?;
        match rows.first() {
            Some(r) => Ok(r.try_get("platform_message_id")?),
            None => Ok(None),
        }
    }

    async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    async fn enqueue(&self, outbox: Vec<Outgoing>, at: DateTime<Utc>) -> Result<(), StoreError> {
        let _wake = WakeOnDrop(&self.wake.outbox);
        let mut tx = self.write().await?;
        insert_outbox(&mut tx, None, outbox, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_kudos(&self, k: NewKudos) -> Result<Kudos, StoreError> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO kudos (giver, giver_key, receiver, receiver_key, reason, created_at, ticket_id) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(k.giver.to_string())
        .bind(&k.giver_key)
        .bind(k.receiver.to_string())
        .bind(&k.receiver_key)
        .bind(&k.reason)
        .bind(ts(k.at))
        .bind(k.ticket.map(|t| t.0))
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)?
        .try_get(0)?;
        tx.commit().await?;
        Ok(Kudos {
            id,
            giver: k.giver,
            receiver: k.receiver,
            receiver_key: k.receiver_key,
            reason: k.reason,
            ticket: k.ticket,
            created_at: k.at,
        })
    }

    async fn list_kudos(
        &self,
        since: DateTime<Utc>,
        receiver_key: Option<&str>,
    ) -> Result<Vec<Kudos>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, giver, receiver, receiver_key, reason, ticket_id, created_at FROM kudos \
             WHERE created_at >= ?1 AND (?2 IS NULL OR receiver_key = ?2) ORDER BY created_at DESC, id DESC",
        )
        .bind(ts(since))
        .bind(receiver_key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Kudos {
                    id: r.try_get("id")?,
                    giver: parse_user(&r.try_get::<String, _>("giver")?)?,
                    receiver: parse_user(&r.try_get::<String, _>("receiver")?)?,
                    receiver_key: r.try_get("receiver_key")?,
                    reason: r.try_get("reason")?,
                    ticket: r.try_get::<Option<i64>, _>("ticket_id")?.map(TicketRef),
                    created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
                })
            })
            .collect()
    }

    async fn add_metric(&self, m: NewMetric) -> Result<MetricSample, StoreError> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO metric_samples (name, value, department, note, recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&m.name)
        .bind(m.value)
        .bind(m.department.as_deref())
        .bind(m.note.as_deref())
        .bind(m.recorded_by.as_ref().map(|u| u.to_string()))
        .bind(ts(m.at))
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)?
        .try_get(0)?;
        tx.commit().await?;
        Ok(MetricSample {
            id,
            name: m.name,
            value: m.value,
            department: m.department,
            note: m.note,
            recorded_at: m.at,
        })
    }

    async fn add_metrics(&self, samples: Vec<NewMetric>) -> Result<usize, StoreError> {
        let mut tx = self.write().await?;
        let n = samples.len();
        for m in samples {
            sqlx::query(
                "INSERT INTO metric_samples (name, value, department, note, recorded_by, recorded_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&m.name)
            .bind(m.value)
            .bind(m.department.as_deref())
            .bind(m.note.as_deref())
            .bind(m.recorded_by.as_ref().map(|u| u.to_string()))
            .bind(ts(m.at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn list_metrics(
        &self,
        name: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MetricSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, value, department, note, recorded_at FROM metric_samples \
             WHERE recorded_at >= ?1 AND (?2 IS NULL OR name = ?2) ORDER BY recorded_at DESC, id DESC",
        )
        .bind(ts(since))
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MetricSample {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    value: r.try_get("value")?,
                    department: r.try_get("department")?,
                    note: r.try_get("note")?,
                    recorded_at: parse_ts(&r.try_get::<String, _>("recorded_at")?)?,
                })
            })
            .collect()
    }

    async fn record_csat(
        &self,
        ticket: TicketRef,
        score: u8,
        comment: Option<&str>,
        responder: &UserRef,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "INSERT INTO csat_responses (ticket_id, score, comment, responder, created_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (ticket_id) DO NOTHING",
        )
        .bind(ticket.0)
        .bind(i64::from(score))
        .bind(comment)
        .bind(responder.to_string())
        .bind(ts(at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn digest_input(
        &self,
        since: DateTime<Utc>,
        to: DateTime<Utc>,
        departments: &[String],
    ) -> Result<DigestInput, StoreError> {
        let (since, to) = (ts(since), ts(to));
        // Each OR term has its own index (created_at or the done-time expression, each also
        // behind the department), so SQLite reads only recent and still-open tickets, never
        // the whole history; a digest of some departments asks for each one.
        let recent = "created_at > ?1 OR COALESCE(resolved_at, closed_at) IS NULL \
             OR COALESCE(resolved_at, closed_at) > ?1";
        // sqlx hands SQLite rows over one at a time through a channel, which costs more than
        // the read itself for tens of thousands of rows; SQLite packs them into one JSON array
        // instead, read back in one piece.
        let packed =
            "SELECT json_group_array(json_array(id, title, department, priority, json(tags), \
             created_at, first_response_at, resolved_at, closed_at, waiting_since, sla_paused_seconds, assignee)) FROM tickets WHERE ";
        let ticket_queries: Vec<String> = if departments.is_empty() {
            vec![format!("{packed}{recent}")]
        } else {
            departments
                .iter()
                .map(|_| format!("{packed}department = ?2 AND ({recent})"))
                .collect()
        };
        let tickets = async {
            let mut out = Vec::new();
            for (k, sql) in ticket_queries.into_iter().enumerate() {
                let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(&since);
                if let Some(d) = departments.get(k) {
                    q = q.bind(d.as_str());
                }
                let json = q.fetch_all(&self.pool).await?.pop().unwrap_or_default();
                out.extend(unpack_digest_tickets(&json)?);
            }
            Ok::<_, StoreError>(out)
        };
        let csat = async {
            sqlx::query(
                "SELECT t.department, t.assignee, c.score, c.created_at FROM csat_responses c \
                 JOIN tickets t ON t.id = c.ticket_id WHERE c.created_at > ?1 AND c.created_at <= ?2",
            )
            .bind(&since)
            .bind(&to)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(CsatSample {
                    department: r.try_get("department")?,
                    assignee: r
                        .try_get::<Option<String>, _>("assignee")?
                        .as_deref()
                        .map(parse_user)
                        .transpose()?,
                    score: u8::try_from(r.try_get::<i64, _>("score")?).map_err(|e| corrupt("csat score", e))?,
                    at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
                })
            })
            .filter(|c: &Result<CsatSample, StoreError>| {
                departments.is_empty()
                    || c.as_ref().map_or(true, |c| departments.contains(&c.department))
            })
            .collect::<Result<Vec<_>, StoreError>>()
        };
        let metrics = async {
            sqlx::query(
                "SELECT name, value, department, recorded_at FROM metric_samples \
                 WHERE recorded_at > ?1 AND recorded_at <= ?2",
            )
            .bind(&since)
            .bind(&to)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(MetricPoint {
                    name: r.try_get("name")?,
                    value: r.try_get("value")?,
                    department: r.try_get("department")?,
                    at: parse_ts(&r.try_get::<String, _>("recorded_at")?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
        };
        // Three independent reads, on separate connections of the pool, at once.
        let (tickets, csat, metrics) = tokio::try_join!(tickets, csat, metrics)?;
        Ok(DigestInput {
            tickets,
            csat,
            metrics,
        })
    }

    async fn csat(&self, ticket: TicketRef) -> Result<Option<Csat>, StoreError> {
        let rows = sqlx::query("SELECT ticket_id, score, comment, responder, created_at FROM csat_responses WHERE ticket_id = ?").bind(ticket.0).fetch_all(&self.pool).await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let score: i64 = r.try_get("score")?;
        Ok(Some(Csat {
            ticket: TicketRef(r.try_get("ticket_id")?),
            score: u8::try_from(score).map_err(|e| corrupt("csat score", e))?,
            comment: r.try_get("comment")?,
            responder: parse_user(&r.try_get::<String, _>("responder")?)?,
            created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
        }))
    }

    async fn csat_comment(
        &self,
        ticket: TicketRef,
        responder: &UserRef,
        comment: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query("UPDATE csat_responses SET comment = ? WHERE ticket_id = ? AND responder = ? AND comment IS NULL")
        .bind(comment)
        .bind(ticket.0)
        .bind(responder.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_fire(
        &self,
        schedule: &str,
        fire_local: &str,
        owner: &str,
        at: DateTime<Utc>,
        outbox: Vec<Outgoing>,
    ) -> Result<bool, StoreError> {
        let _wake = WakeOnDrop(&self.wake.outbox);
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "INSERT INTO schedule_fires (schedule, fire_local, claimed_by, claimed_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (schedule, fire_local) DO NOTHING",
        )
        .bind(schedule)
        .bind(fire_local)
        .bind(owner)
        .bind(ts(at))
        .execute(&mut *tx)
        .await?;
        queue_if_claimed(tx, done.rows_affected(), None, outbox, at).await
    }

    async fn claim_escalation(
        &self,
        ticket: TicketRef,
        clock: &str,
        level: &str,
        owner: &str,
        at: DateTime<Utc>,
        outbox: Vec<Outgoing>,
    ) -> Result<bool, StoreError> {
        let _wake = WakeOnDrop(&self.wake.outbox);
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "INSERT INTO sla_escalations (ticket_id, clock, level, claimed_by, claimed_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (ticket_id, clock, level) DO NOTHING",
        )
        .bind(ticket.0)
        .bind(clock)
        .bind(level)
        .bind(owner)
        .bind(ts(at))
        .execute(&mut *tx)
        .await?;
        queue_if_claimed(tx, done.rows_affected(), Some(ticket), outbox, at).await
    }

    async fn sync_people(&self, people: &[Person], at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        // Accounts move between people when the config changes: clear links first so the
        // unique account columns never collide half-way through.
        sqlx::query("UPDATE people SET slack_id = NULL, discord_id = NULL")
            .execute(&mut *tx)
            .await?;
        for p in people {
            sqlx::query(
                "INSERT INTO people (id, name, slack_id, discord_id, updated_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, slack_id = excluded.slack_id, \
                 discord_id = excluded.discord_id, updated_at = excluded.updated_at",
            )
            .bind(&p.id.0)
            .bind(&p.name)
            .bind(p.slack.as_deref())
            .bind(p.discord.as_deref())
            .bind(ts(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn backup(&self, path: &Path) -> Result<(), StoreError> {
        if path.exists() {
            return Err(StoreError::Unsupported(format!(
                "{} already exists; choose a new file so no backup is overwritten",
                path.display()
            )));
        }
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Unsupported("backup path must be valid UTF-8".into()))?;
        // VACUUM INTO reads one consistent snapshot while other connections keep writing.
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Flags waiting for the group-commit writer, each with where to send its outcome.
type CreateJob = (CreateTicket, oneshot::Sender<Result<Created, StoreError>>);

/// The most tickets one group commit writes.
const MAX_GROUP: usize = 64;

/// Group commit: one task writes every new ticket. It takes whatever flags are waiting (up to
/// [`MAX_GROUP`]), writes them all in one `BEGIN IMMEDIATE` transaction with one multi-row
/// statement per table, commits once, and only then answers each caller. Under load many flags
/// share one commit; alone, a flag commits by itself at once. If a group fails, its flags are
/// written one by one, so a bad flag fails alone.
async fn group_writer(pool: SqlitePool, mut jobs: mpsc::Receiver<CreateJob>) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // Its own task, so a panic while writing one group fails that group's callers (they
        // see the writer stop) and the writer goes on with the next group.
        if let Err(e) = tokio::spawn(commit_group(pool.clone(), group)).await {
            tracing::error!(error = %e, "a group commit panicked; its flags were not written");
        }
    }
}

async fn commit_group(pool: SqlitePool, group: Vec<CreateJob>) {
    let (requests, replies): (Vec<CreateTicket>, Vec<_>) = group.into_iter().unzip();
    // Fast path: the whole group in a handful of multi-row statements.
    let fast = async {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let results = write_group(&mut tx, &requests).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(results)
    }
    .await;
    match fast {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Err(e) if requests.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(e) => {
            // Something in the group failed: nothing of it was written. Write each flag on its
            // own so one bad flag fails alone.
            tracing::warn!(error = %e, size = requests.len(), "group commit failed; writing its flags one by one");
            for (req, reply) in requests.into_iter().zip(replies) {
                let one = async {
                    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                    let mut results = write_group(&mut tx, std::slice::from_ref(&req)).await?;
                    tx.commit().await?;
                    Ok::<_, StoreError>(results.remove(0))
                }
                .await;
                let _ = reply.send(one);
            }
        }
    }
}

/// The columns of `tickets` a new ticket is written with, in bind order.
const NEW_TICKET_COLUMNS: &str = "INSERT INTO tickets (version, title, body, source_platform, \
    source_channel, source_message, source_thread, source_permalink, source_text, source_author, \
    source_author_name, reporter, department, priority, tags, status, created_at, updated_at) ";

/// Writes a group of new tickets inside `tx` with one statement per table: each flagged
/// message already stored (or flagged twice within the group) gets a `Reflagged` event on its
/// ticket instead of a second ticket.
async fn write_group(
    tx: &mut Transaction<'static, Sqlite>,
    reqs: &[CreateTicket],
) -> Result<Vec<Created>, StoreError> {
    type Key = (String, String, String);
    let key = |r: &CreateTicket| -> Option<Key> {
        r.ticket.source.as_ref().map(|s| {
            (
                s.channel.platform.as_str().to_string(),
                s.channel.id.clone(),
                s.message_id.clone(),
            )
        })
    };
    // Tickets that already exist for the group's messages.
    let mut stored: HashMap<Key, Ticket> = HashMap::new();
    let keys: Vec<Key> = reqs.iter().filter_map(key).collect();
    if !keys.is_empty() {
        // One equality triple per message, OR-ed: SQLite answers each from the unique index
        // (a row-value `IN (VALUES …)` would scan the whole table).
        let mut q = QueryBuilder::<Sqlite>::new(select_tickets!("WHERE ("));
        let mut sep = q.separated(" OR ");
        for (p, c, m) in &keys {
            sep.push("(source_platform = ")
                .push_bind_unseparated(p.clone())
                .push_unseparated(" AND source_channel = ")
                .push_bind_unseparated(c.clone())
                .push_unseparated(" AND source_message = ")
                .push_bind_unseparated(m.clone())
                .push_unseparated(")");
        }
        q.push(")");
        for row in q.build().fetch_all(&mut **tx).await? {
            let t = ticket_from_row(&row)?;
            if let Some(k) = t.source.as_ref().map(|s| {
                (
                    s.channel.platform.as_str().to_string(),
                    s.channel.id.clone(),
                    s.message_id.clone(),
                )
            }) {
                stored.insert(k, t);
            }
        }
    }
    // Which requests make a new ticket: the first of each message not yet stored.
    let mut first_in_group: HashMap<Key, usize> = HashMap::new();
    let mut fresh: Vec<usize> = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        match key(r) {
            Some(k) if stored.contains_key(&k) || first_in_group.contains_key(&k) => {}
            Some(k) => {
                first_in_group.insert(k, i);
                fresh.push(i);
            }
            None => fresh.push(i),
        }
    }
    let mut created: HashMap<usize, Ticket> = HashMap::new();
    if !fresh.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(NEW_TICKET_COLUMNS);
        let mut bind_error = None;
        q.push_values(fresh.iter().map(|&i| &reqs[i].ticket), |mut b, t| {
            let src = t.source.as_ref();
            let tags = serde_json::to_string(&t.tags).unwrap_or_else(|e| {
                bind_error = Some(corrupt("tags", e));
                "[]".into()
            });
            b.push_bind(1i64)
                .push_bind(t.title.clone())
                .push_bind(t.body.clone())
                .push_bind(src.map(|s| s.channel.platform.as_str()))
                .push_bind(src.map(|s| s.channel.id.clone()))
                .push_bind(src.map(|s| s.message_id.clone()))
                .push_bind(src.and_then(|s| s.thread_id.clone()))
                .push_bind(src.and_then(|s| s.permalink.clone()))
                .push_bind(src.map(|s| s.original_text.clone()))
                .push_bind(src.map(|s| s.author.to_string()))
                .push_bind(src.and_then(|s| s.author_name.clone()))
                .push_bind(t.reporter.to_string())
                .push_bind(t.department.clone())
                .push_bind(enum_text(&t.priority))
                .push_bind(tags)
                .push_bind("open")
                .push_bind(ts(t.created_at))
                .push_bind(ts(t.created_at));
        });
        if let Some(e) = bind_error {
            return Err(e);
        }
        q.push(" RETURNING id");
        // One writer holds the lock and AUTOINCREMENT counts up in VALUES order, so the
        // sorted ids belong to the rows in the order they were listed.
        let mut ids: Vec<i64> = q
            .build()
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        ids.sort_unstable();
        if ids.len() != fresh.len() {
            return Err(corrupt("group commit", "fewer ticket ids than tickets"));
        }
        for (&i, id) in fresh.iter().zip(ids) {
            created.insert(i, reqs[i].ticket.clone().into_ticket(TicketRef(id)));
        }
    }
    // Every request's outcome, then its events, outbox rows and inbox row.
    let mut results = Vec::with_capacity(reqs.len());
    let mut events: Vec<(TicketRef, &UserRef, EventKind, DateTime<Utc>)> = Vec::new();
    let mut outbox: Vec<(TicketRef, Outgoing, DateTime<Utc>)> = Vec::new();
    let mut inbox_keys: Vec<&str> = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        let at = r.ticket.created_at;
        let result = match created.get(&i) {
            Some(t) => {
                events.extend(r.events.iter().map(|e| (t.id, &r.actor, e.clone(), at)));
                outbox.extend((r.outbox)(t).into_iter().map(|o| (t.id, o, at)));
                Created::New(t.clone())
            }
            None => {
                let k = key(r)
                    .ok_or_else(|| corrupt("group commit", "a duplicate without a source"))?;
                let t = match stored.get(&k) {
                    Some(t) => t.clone(),
                    None => created[&first_in_group[&k]].clone(),
                };
                events.push((t.id, &r.actor, EventKind::Reflagged, at));
                Created::Existing(t)
            }
        };
        if let Some(k) = r.inbox_key.as_deref() {
            inbox_keys.push(k);
        }
        results.push(result);
    }
    if !events.is_empty() {
        let mut rows = Vec::with_capacity(events.len());
        for (id, actor, e, at) in events {
            let data = serde_json::to_value(&e).map_err(|e| corrupt("event", e))?;
            let kind = data["kind"].as_str().unwrap_or("unknown").to_string();
            rows.push((id.0, ts(at), actor.to_string(), kind, data.to_string()));
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO ticket_events (ticket_id, at, actor, kind, data) ",
        );
        q.push_values(rows, |mut b, (id, at, actor, kind, data)| {
            b.push_bind(id)
                .push_bind(at)
                .push_bind(actor)
                .push_bind(kind)
                .push_bind(data);
        });
        q.build().execute(&mut **tx).await?;
    }
    if !outbox.is_empty() {
        let mut rows = Vec::with_capacity(outbox.len());
        for (id, o, at) in outbox {
            let target = serde_json::to_string(&o.target).map_err(|e| corrupt("target", e))?;
            let payload = serde_json::to_string(&o.message).map_err(|e| corrupt("message", e))?;
            rows.push((
                o.ticket.unwrap_or(id).0,
                o.target.platform().as_str(),
                enum_text(&o.kind),
                target,
                payload,
                ts(at),
            ));
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO outbox (ticket_id, platform, kind, target, payload, next_attempt_at, created_at) ",
        );
        q.push_values(rows, |mut b, (id, platform, kind, target, payload, at)| {
            b.push_bind(id)
                .push_bind(platform)
                .push_bind(kind)
                .push_bind(target)
                .push_bind(payload)
                .push_bind(at.clone())
                .push_bind(at);
        });
        q.build().execute(&mut **tx).await?;
    }
    if !inbox_keys.is_empty() {
        let now = ts(reqs[0].ticket.created_at);
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE inbox SET status = 'done', lease_owner = NULL, lease_until = NULL, done_at = ",
        );
        q.push_bind(now).push(" WHERE dedupe_key IN (");
        let mut sep = q.separated(", ");
        for k in inbox_keys {
            sep.push_bind(k.to_string());
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    Ok(results)
}

/// The tables whose rows workers claim with a lease.
#[derive(Debug, Clone, Copy)]
enum Leased {
    Inbox,
    Outbox,
}

/// Leases the claimed rows `ids` to `owner` until `until` and counts the attempt, in one
/// statement.
async fn lease_rows(
    tx: &mut Transaction<'static, Sqlite>,
    table: Leased,
    ids: &[i64],
    owner: &str,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = match table {
        Leased::Inbox => "UPDATE inbox SET lease_owner = ",
        Leased::Outbox => "UPDATE outbox SET lease_owner = ",
    };
    let mut q = QueryBuilder::<Sqlite>::new(sql);
    q.push_bind(owner.to_string())
        .push(", lease_until = ")
        .push_bind(ts(until))
        .push(", attempts = attempts + 1 WHERE id IN (");
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    q.push(")");
    q.build().execute(&mut **tx).await?;
    Ok(())
}

fn outbox_from_row(r: &SqliteRow) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: r.try_get("id")?,
        reclaimed: r.try_get::<Option<String>, _>("lease_until")?.is_some(),
        outgoing: Outgoing {
            kind: enum_from("outbox kind", &r.try_get::<String, _>("kind")?)?,
            target: serde_json::from_str(&r.try_get::<String, _>("target")?)
                .map_err(|e| corrupt("target", e))?,
            ticket: r.try_get::<Option<i64>, _>("ticket_id")?.map(TicketRef),
            message: serde_json::from_str(&r.try_get::<String, _>("payload")?)
                .map_err(|e| corrupt("payload", e))?,
        },
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        platform_message_id: r.try_get("platform_message_id")?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
    })
}

fn inbox_from_row(r: &SqliteRow) -> Result<InboxRow, StoreError> {
    Ok(InboxRow {
        id: r.try_get("id")?,
        key: r.try_get("dedupe_key")?,
        platform: r.try_get("platform")?,
        payload: serde_json::from_str(&r.try_get::<String, _>("payload")?)
            .map_err(|e| corrupt("inbox payload", e))?,
        attempts: r.try_get("attempts")?,
        status: r.try_get("status")?,
        last_error: r.try_get("last_error")?,
        received_at: parse_ts(&r.try_get::<String, _>("received_at")?)?,
    })
}
