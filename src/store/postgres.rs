//! The PostgreSQL store: what several Switchboard instances share.
//!
//! Owns PostgreSQL's SQL: native timestamps and JSONB, claims of inbox and outbox rows with
//! `FOR UPDATE SKIP LOCKED` so two instances never hold the same row, and `ON CONFLICT` for
//! every "at most once" rule (a flagged message, a CSAT answer, a schedule fire). Migrations
//! come from `migrations/postgres/`, embedded in the binary, each the twin of a SQLite one.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use std::sync::Arc;

use crate::worker::{Wake, WakeOnDrop};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::{
    corrupt, digest_ticket_from_row, enum_from, enum_text, parse_user, ticket_from_row,
    CreateTicket, Created, Csat, InboxOutcome, InboxRow, Kudos, MetricSample, NewKudos, NewMetric,
    OutboxRow, Store, StoreError, TicketFilter, DIGEST_TICKET_COLUMNS,
};
use crate::core::digest::{CsatSample, DigestInput, MetricPoint};
use crate::core::directory::Person;
use crate::core::message::{Outgoing, Target};
use crate::core::ticket::{EventKind, Ticket, TicketEvent};
use crate::core::types::{ChannelRef, Platform, TicketRef, UserRef};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A PostgreSQL database, shareable by several instances.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    wake: Arc<Wake>,
}

fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|e| corrupt(what, e))
}

const OUTBOX_COLUMNS: &str = "id, kind, target, payload, ticket_id, status, attempts, last_error, \
                              platform_message_id, created_at";

fn outbox_from_row(r: &PgRow, reclaimed: bool) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: r.try_get("id")?,
        reclaimed,
        outgoing: Outgoing {
            kind: enum_from("outbox kind", &r.try_get::<String, _>("kind")?)?,
            target: serde_json::from_str(&r.try_get::<String, _>("target")?)
                .map_err(|e| corrupt("target", e))?,
            ticket: r.try_get::<Option<i64>, _>("ticket_id")?.map(TicketRef),
            message: serde_json::from_value(r.try_get("payload")?)
                .map_err(|e| corrupt("payload", e))?,
        },
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        platform_message_id: r.try_get("platform_message_id")?,
        created_at: r.try_get("created_at")?,
    })
}

fn inbox_from_row(r: &PgRow) -> Result<InboxRow, StoreError> {
    Ok(InboxRow {
        id: r.try_get("id")?,
        key: r.try_get("dedupe_key")?,
        platform: r.try_get("platform")?,
        payload: r.try_get("payload")?,
        attempts: r.try_get("attempts")?,
        status: r.try_get("status")?,
        last_error: r.try_get("last_error")?,
        received_at: r.try_get("received_at")?,
    })
}

impl super::TicketRow for PgRow {
    fn text(&self, col: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn int(&self, col: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn tags(&self, col: &str) -> Result<Vec<String>, StoreError> {
        serde_json::from_value(self.try_get(col)?).map_err(|e| corrupt("tags", e))
    }
}

async fn insert_events(
    tx: &mut Transaction<'static, Postgres>,
    ticket: TicketRef,
    actor: Option<&UserRef>,
    events: &[EventKind],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for e in events {
        let data = to_json("event", e)?;
        let kind = data["kind"].as_str().unwrap_or("unknown").to_string();
        sqlx::query(
            "INSERT INTO ticket_events (ticket_id, at, actor, kind, data) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ticket.0)
        .bind(at)
        .bind(actor.map(|a| a.to_string()))
        .bind(kind)
        .bind(data)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Finishes a claim (an `INSERT … ON CONFLICT DO NOTHING` of `claimed` rows in `tx`): the
/// winner queues `outbox` and commits; a lost claim rolls back and queues nothing.
async fn queue_if_claimed(
    mut tx: Transaction<'static, Postgres>,
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
    tx: &mut Transaction<'static, Postgres>,
    ticket: Option<TicketRef>,
    outbox: Vec<Outgoing>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for mut o in outbox {
        if o.ticket.is_none() {
            o.ticket = ticket;
        }
        let target = serde_json::to_string(&o.target).map_err(|e| corrupt("target", e))?;
        sqlx::query(
            "INSERT INTO outbox (ticket_id, platform, kind, target, payload, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(o.ticket.map(|t| t.0))
        .bind(o.target.platform().as_str())
        .bind(enum_text(&o.kind))
        .bind(target)
        .bind(to_json("message", &o.message)?)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn mark_inbox_done(
    tx: &mut Transaction<'static, Postgres>,
    key: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(key) = key {
        sqlx::query(
            "UPDATE inbox SET status = 'done', done_at = $1, lease_owner = NULL, lease_until = NULL \
             WHERE dedupe_key = $2",
        )
        .bind(at)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::connect(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with every table in `schema` (created if missing): lets tests share one
    /// database without seeing each other's rows.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        if !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(StoreError::Unsupported(format!(
                "schema name `{schema}` must be letters, digits or _"
            )));
        }
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(PgConnectOptions::from_str(url)?)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
        let options = PgConnectOptions::from_str(url)?.options([("search_path", schema)]);
        Self::connect(options).await
    }

    /// The connection pool, for benchmarks that compare against raw statements.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn connect(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            wake: Arc::default(),
        })
    }
}

#[async_trait]
impl Store for PgStore {
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
        let mut tx = self.pool.begin().await?;
        let at = req.ticket.created_at;
        let t = &req.ticket;
        let src = t.source.as_ref();
        // ON CONFLICT makes a second flag of one message, by any instance, find the first ticket.
        let inserted = sqlx::query(
            "INSERT INTO tickets (version, title, body, source_platform, source_channel, source_message, \
             source_thread, source_permalink, source_text, source_author, source_author_name, reporter, department, \
             priority, tags, status, created_at, updated_at) \
             VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $15, $10, $11, $12, $13, 'open', $14, $14) \
             ON CONFLICT (source_platform, source_channel, source_message) WHERE source_message IS NOT NULL \
             DO NOTHING RETURNING id",
        )
        .bind(&t.title)
        .bind(&t.body)
        .bind(src.map(|s| s.channel.platform.as_str()))
        .bind(src.map(|s| s.channel.id.clone()))
        .bind(src.map(|s| s.message_id.clone()))
        .bind(src.and_then(|s| s.thread_id.clone()))
        .bind(src.and_then(|s| s.permalink.clone()))
        .bind(src.map(|s| s.original_text.clone()))
        .bind(src.map(|s| s.author.to_string()))
        .bind(t.reporter.to_string())
        .bind(&t.department)
        .bind(enum_text(&t.priority))
        .bind(to_json("tags", &t.tags)?)
        .bind(at)
        .bind(src.and_then(|s| s.author_name.clone()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            let src = src.ok_or_else(|| corrupt("ticket", "conflict without a source"))?;
            let row = sqlx::query(select_tickets!(
                "WHERE source_platform = $1 AND source_channel = $2 AND source_message = $3"
            ))
            .bind(src.channel.platform.as_str())
            .bind(&src.channel.id)
            .bind(&src.message_id)
            .fetch_one(&mut *tx)
            .await?;
            let ticket = ticket_from_row(&row)?;
            insert_events(
                &mut tx,
                ticket.id,
                Some(&req.actor),
                &[EventKind::Reflagged],
                at,
            )
            .await?;
            mark_inbox_done(&mut tx, req.inbox_key.as_deref(), at).await?;
            tx.commit().await?;
            return Ok(Created::Existing(ticket));
        };
        let ticket = req.ticket.into_ticket(TicketRef(row.try_get(0)?));
        insert_events(&mut tx, ticket.id, Some(&req.actor), &req.events, at).await?;
        insert_outbox(&mut tx, Some(ticket.id), (req.outbox)(&ticket), at).await?;
        mark_inbox_done(&mut tx, req.inbox_key.as_deref(), at).await?;
        tx.commit().await?;
        Ok(Created::New(ticket))
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
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tickets SET version = $1, title = $2, body = $3, department = $4, priority = $5, tags = $6, \
             assignee = $7, status = $8, updated_at = $9, first_response_at = $10, resolved_at = $11, \
             closed_at = $12, waiting_since = $13, sla_paused_seconds = $14 WHERE id = $15 AND version = $16",
        )
        .bind(t.version)
        .bind(&t.title)
        .bind(&t.body)
        .bind(&t.department)
        .bind(enum_text(&t.priority))
        .bind(to_json("tags", &t.tags)?)
        .bind(t.assignee.as_ref().map(|a| a.to_string()))
        .bind(enum_text(&t.status))
        .bind(t.updated_at)
        .bind(t.first_response_at)
        .bind(t.resolved_at)
        .bind(t.closed_at)
        .bind(t.waiting_since)
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
        let row = sqlx::query(select_tickets!("WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    async fn ticket_by_source(
        &self,
        channel: &ChannelRef,
        message_id: &str,
    ) -> Result<Option<Ticket>, StoreError> {
        let row = sqlx::query(select_tickets!(
            "WHERE source_platform = $1 AND source_channel = $2 AND source_message = $3"
        ))
        .bind(channel.platform.as_str())
        .bind(&channel.id)
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    async fn list_tickets(&self, f: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        let statuses: Vec<String> = f.statuses.iter().map(enum_text).collect();
        let assignees: Vec<String> = f.assignees.iter().map(|a| a.to_string()).collect();
        let rows = sqlx::query(select_tickets!(
            "WHERE ($1::text IS NULL OR department = $1) \
               AND (cardinality($2::text[]) = 0 OR status = ANY($2)) \
               AND (cardinality($3::text[]) = 0 OR assignee = ANY($3)) \
               AND ($5::timestamptz IS NULL OR status IN ('open', 'in_progress', 'waiting_on_customer') \
                    OR created_at >= $5 OR resolved_at >= $5 OR closed_at >= $5) \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(f.department.as_deref())
        .bind(&statuses)
        .bind(&assignees)
        .bind((f.limit > 0).then_some(f.limit))
        .bind(f.active_or_since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    async fn events(&self, id: TicketRef) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, data FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TicketEvent {
                    ticket: id,
                    at: r.try_get("at")?,
                    actor: r
                        .try_get::<Option<String>, _>("actor")?
                        .as_deref()
                        .map(parse_user)
                        .transpose()?,
                    kind: serde_json::from_value(r.try_get("data")?)
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
        let done = sqlx::query(
            "INSERT INTO inbox (dedupe_key, platform, payload, next_attempt_at, received_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(key)
        .bind(platform)
        .bind(payload)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
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
        let rows = sqlx::query(
            "UPDATE inbox i SET lease_owner = $1, lease_until = $2, attempts = i.attempts + 1 \
             FROM (SELECT id FROM inbox WHERE status = 'pending' AND platform = ANY($3) \
                     AND next_attempt_at <= $4 AND (lease_until IS NULL OR lease_until <= $4) \
                   ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED) picked \
             WHERE i.id = picked.id \
             RETURNING i.id, i.dedupe_key, i.platform, i.payload, i.attempts, i.status, i.last_error, i.received_at",
        )
        .bind(owner)
        .bind(now + lease)
        .bind(&platforms)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<InboxRow> = rows.iter().map(inbox_from_row).collect::<Result<_, _>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    async fn inbox_retry(
        &self,
        id: i64,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE inbox SET next_attempt_at = $1, last_error = $2, lease_owner = NULL, lease_until = NULL \
             WHERE id = $3 AND status = 'pending'",
        )
        .bind(next_at)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
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
        sqlx::query(
            "UPDATE inbox SET status = $1, last_error = $2, done_at = $3, lease_owner = NULL, lease_until = NULL \
             WHERE id = $4 AND status = 'pending'",
        )
        .bind(status)
        .bind(note)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn inbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<InboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, dedupe_key, platform, payload, attempts, status, last_error, received_at FROM inbox \
             WHERE ($1::text IS NULL OR status = $1) ORDER BY id LIMIT $2",
        )
        .bind(status)
        .bind((limit > 0).then_some(limit))
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
        // SKIP LOCKED: rows another instance is claiming right now are left to it. The
        // NOT EXISTS keeps each ticket's messages on one platform in order.
        let rows = sqlx::query(
            "UPDATE outbox o SET lease_owner = $1, lease_until = $2, attempts = o.attempts + 1 \
             FROM (SELECT c.id, c.lease_until AS old_lease FROM outbox c \
                   WHERE c.status = 'pending' AND c.platform = ANY($3) AND c.next_attempt_at <= $4 \
                     AND (c.lease_until IS NULL OR c.lease_until <= $4) \
                     AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.ticket_id = c.ticket_id \
                                     AND e.platform = c.platform AND e.id < c.id AND e.status = 'pending') \
                   ORDER BY c.id LIMIT $5 FOR UPDATE SKIP LOCKED) picked \
             WHERE o.id = picked.id \
             RETURNING o.id, o.kind, o.target, o.payload, o.ticket_id, o.status, o.attempts, o.last_error, \
                       o.platform_message_id, o.created_at, picked.old_lease",
        )
        .bind(owner)
        .bind(now + lease)
        .bind(&platforms)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let reclaimed = r
                    .try_get::<Option<DateTime<Utc>>, _>("old_lease")?
                    .is_some();
                outbox_from_row(r, reclaimed)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    async fn outbox_sent(
        &self,
        id: i64,
        message_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'sent', platform_message_id = $1, sent_at = $2, last_error = NULL, \
             lease_owner = NULL, lease_until = NULL WHERE id = $3 AND status = 'pending'",
        )
        .bind(message_id)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbox_retry(
        &self,
        id: i64,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = $1, last_error = $2, lease_owner = NULL, lease_until = NULL \
             WHERE id = $3 AND status = 'pending'",
        )
        .bind(next_at)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_dead(
        &self,
        id: i64,
        error: &str,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'failed', last_error = $1, lease_owner = NULL, lease_until = NULL \
             WHERE id = $2 AND status = 'pending'",
        )
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_requeue(&self, ids: &[i64], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1 \
             WHERE status = 'failed' AND (cardinality($2::bigint[]) = 0 OR id = ANY($2))",
        )
        .bind(now)
        .bind(ids)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn alert_message_id(
        &self,
        ticket: TicketRef,
        target: &Target,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT platform_message_id FROM outbox WHERE ticket_id = $1 AND kind = 'alert' AND target = $2 \
             AND status = 'sent' ORDER BY id DESC LIMIT 1",
        )
        .bind(ticket.0)
        .bind(serde_json::to_string(target).map_err(|e| corrupt("target", e))?)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(r.try_get("platform_message_id")?),
            None => Ok(None),
        }
    }

    async fn outbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1::text IS NULL OR status = $1) ORDER BY id LIMIT $2"
        )))
        .bind(status)
        .bind((limit > 0).then_some(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| outbox_from_row(r, false)).collect()
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
        let mut tx = self.pool.begin().await?;
        insert_outbox(&mut tx, None, outbox, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_kudos(&self, k: NewKudos) -> Result<Kudos, StoreError> {
        let id: i64 = sqlx::query(
            "INSERT INTO kudos (giver, giver_key, receiver, receiver_key, reason, created_at, ticket_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(k.giver.to_string())
        .bind(&k.giver_key)
        .bind(k.receiver.to_string())
        .bind(&k.receiver_key)
        .bind(&k.reason)
        .bind(k.at)
        .bind(k.ticket.map(|t| t.0))
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
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
             WHERE created_at >= $1 AND ($2::text IS NULL OR receiver_key = $2) ORDER BY created_at DESC, id DESC",
        )
        .bind(since)
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
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn add_metric(&self, m: NewMetric) -> Result<MetricSample, StoreError> {
        let id: i64 = sqlx::query(
            "INSERT INTO metric_samples (name, value, department, note, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&m.name)
        .bind(m.value)
        .bind(m.department.as_deref())
        .bind(m.note.as_deref())
        .bind(m.recorded_by.as_ref().map(|u| u.to_string()))
        .bind(m.at)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
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
        let mut tx = self.pool.begin().await?;
        let n = samples.len();
        for m in samples {
            sqlx::query(
                "INSERT INTO metric_samples (name, value, department, note, recorded_by, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&m.name)
            .bind(m.value)
            .bind(m.department.as_deref())
            .bind(m.note.as_deref())
            .bind(m.recorded_by.as_ref().map(|u| u.to_string()))
            .bind(m.at)
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
             WHERE recorded_at >= $1 AND ($2::text IS NULL OR name = $2) ORDER BY recorded_at DESC, id DESC",
        )
        .bind(since)
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
                    recorded_at: r.try_get("recorded_at")?,
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
        let done = sqlx::query(
            "INSERT INTO csat_responses (ticket_id, score, comment, responder, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ticket_id) DO NOTHING",
        )
        .bind(ticket.0)
        .bind(i16::from(score))
        .bind(comment)
        .bind(responder.to_string())
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn digest_input(
        &self,
        since: DateTime<Utc>,
        to: DateTime<Utc>,
        departments: &[String],
    ) -> Result<DigestInput, StoreError> {
        // Each OR term has its own index (created_at or the done-time expression, each also
        // behind the department), so the planner reads only recent and still-open tickets, never
        // the whole history; a digest of some departments asks for each one.
        let recent = "created_at > $1 OR COALESCE(resolved_at, closed_at) IS NULL \
             OR COALESCE(resolved_at, closed_at) > $1";
        let ticket_queries: Vec<String> = if departments.is_empty() {
            vec![format!(
                "SELECT {DIGEST_TICKET_COLUMNS} FROM tickets WHERE {recent}"
            )]
        } else {
            departments
                .iter()
                .map(|_| {
                    format!(
                        "SELECT {DIGEST_TICKET_COLUMNS} FROM tickets WHERE department = $2 AND ({recent})"
                    )
                })
                .collect()
        };
        let tickets = async {
            let mut out = Vec::new();
            for (k, sql) in ticket_queries.into_iter().enumerate() {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since);
                if let Some(d) = departments.get(k) {
                    q = q.bind(d.as_str());
                }
                for r in q.fetch_all(&self.pool).await? {
                    out.push(digest_ticket_from_row(&r)?);
                }
            }
            Ok::<_, StoreError>(out)
        };
        let csat = async {
            sqlx::query(
                "SELECT t.department, t.assignee, c.score, c.created_at FROM csat_responses c \
                 JOIN tickets t ON t.id = c.ticket_id WHERE c.created_at > $1 AND c.created_at <= $2",
            )
            .bind(since)
            .bind(to)
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
                    score: u8::try_from(r.try_get::<i16, _>("score")?).map_err(|e| corrupt("csat score", e))?,
                    at: r.try_get("created_at")?,
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
                 WHERE recorded_at > $1 AND recorded_at <= $2",
            )
            .bind(since)
            .bind(to)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(MetricPoint {
                    name: r.try_get("name")?,
                    value: r.try_get("value")?,
                    department: r.try_get("department")?,
                    at: r.try_get("recorded_at")?,
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
        let Some(r) = sqlx::query("SELECT ticket_id, score, comment, responder, created_at FROM csat_responses WHERE ticket_id = $1").bind(ticket.0).fetch_optional(&self.pool).await? else { return Ok(None) };
        let score: i16 = r.try_get("score")?;
        Ok(Some(Csat {
            ticket: TicketRef(r.try_get("ticket_id")?),
            score: u8::try_from(score).map_err(|e| corrupt("csat score", e))?,
            comment: r.try_get("comment")?,
            responder: parse_user(&r.try_get::<String, _>("responder")?)?,
            created_at: r.try_get("created_at")?,
        }))
    }

    async fn csat_comment(
        &self,
        ticket: TicketRef,
        responder: &UserRef,
        comment: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE csat_responses SET comment = $1 WHERE ticket_id = $2 AND responder = $3 AND comment IS NULL")
        .bind(comment)
        .bind(ticket.0)
        .bind(responder.to_string())
        .execute(&self.pool)
        .await?;
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
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO schedule_fires (schedule, fire_local, claimed_by, claimed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (schedule, fire_local) DO NOTHING",
        )
        .bind(schedule)
        .bind(fire_local)
        .bind(owner)
        .bind(at)
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
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO sla_escalations (ticket_id, clock, level, claimed_by, claimed_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (ticket_id, clock, level) DO NOTHING",
        )
        .bind(ticket.0)
        .bind(clock)
        .bind(level)
        .bind(owner)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        queue_if_claimed(tx, done.rows_affected(), Some(ticket), outbox, at).await
    }

    async fn sync_people(&self, people: &[Person], at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Serialise syncs from instances starting together, then clear links so accounts can
        // move between people without colliding on the unique columns half-way through.
        sqlx::query("LOCK TABLE people IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE people SET slack_id = NULL, discord_id = NULL")
            .execute(&mut *tx)
            .await?;
        for p in people {
            sqlx::query(
                "INSERT INTO people (id, name, slack_id, discord_id, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, slack_id = excluded.slack_id, \
                 discord_id = excluded.discord_id, updated_at = excluded.updated_at",
            )
            .bind(&p.id.0)
            .bind(&p.name)
            .bind(p.slack.as_deref())
            .bind(p.discord.as_deref())
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn backup(&self, _path: &Path) -> Result<(), StoreError> {
        Err(StoreError::Unsupported(
            "backup copies SQLite databases; for PostgreSQL use pg_dump (e.g. `pg_dump -Fc DBNAME > switchboard.dump`)".into(),
        ))
    }
}
