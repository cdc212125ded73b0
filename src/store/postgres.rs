//! The PostgreSQL backend: what several Switchboard instances share.
//!
//! Owns PostgreSQL's connection settings, how its columns hold values (native `timestamptz`,
//! `jsonb`, arrays for lists), and what only PostgreSQL does: claims of inbox and outbox rows
//! with `FOR UPDATE SKIP LOCKED` so two instances never hold the same row, a new ticket's
//! insert with `ON CONFLICT` on its flagged message so a flag raced by two instances makes one
//! ticket, a transaction-scoped advisory lock per person around a flag's quota count so
//! every instance counts one person's flags one at a time, and `LOCK TABLE` around a people
//! sync. Migrations come from `migrations/postgres/`,
//! embedded in the binary, each the twin of a SQLite one. The operations themselves are
//! written once, in [`super::sql`].

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, SqlSafeStr, Transaction, TypeInfo, ValueRef};

use super::dialect::{args, Arg, Backend, Conn, DigestSet, SqlRow, WriteTx};
use super::sql::{
    digest_part, held_external_keys, inbox_from_row, insert_events, insert_outbox, link_external,
    mark_inbox_done, new_ticket_values, off_thread, outbox_from_row, read_history, recent_flags_in,
    source_key, tickets_by_sources, SqlStore, DIGEST_RECENT, DIGEST_ROUTED, DIGEST_TICKET_COLUMNS,
    INBOX_COLUMNS, NEW_TICKET_COLUMNS, OUTBOX_COLUMNS,
};
use super::{
    corrupt, enum_from, parse_user, CreateTicket, Created, InboxRow, OutboxRow, StoreError,
};
use crate::core::digest::DigestTicket;
use crate::core::ticket::EventKind;
use crate::core::types::{Platform, TicketRef};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The first key of the advisory locks that serialise one person's flags (`flag` in ASCII),
/// the second being a hash of the person; no other lock of this database uses it.
const FLAG_QUOTA_LOCK: i32 = 0x666c_6167;

/// A PostgreSQL database, shareable by several instances.
pub type PgStore = SqlStore<PgDb>;

/// PostgreSQL's side of the store: its pool, and where it connects for `pg_dump`.
pub struct PgDb {
    pool: PgPool,
    /// The URL it was opened with (may hold a password: never shown).
    url: String,
    /// The schema its tables are in, when not the default.
    schema: Option<String>,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb")
            .field("pool", &self.pool)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl SqlStore<PgDb> {
    /// Connects to the database at `url` (`postgres://user@host/db`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::connect(PgConnectOptions::from_str(url)?, url, None).await
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
        Self::connect(options, url, Some(schema)).await
    }

    /// The connection pool, for benchmarks that compare against raw statements.
    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    async fn connect(
        options: PgConnectOptions,
        url: &str,
        schema: Option<&str>,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(SqlStore::new(PgDb {
            pool,
            url: url.to_string(),
            schema: schema.map(str::to_string),
        }))
    }
}

impl SqlRow for PgRow {
    fn int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        // Columns are BIGINT, but a CSAT score is SMALLINT: read whatever width is there.
        let raw = self.try_get_raw(col)?;
        if raw.is_null() {
            return Ok(None);
        }
        let info = raw.type_info();
        Ok(Some(match info.name() {
            "INT2" => i64::from(self.try_get::<i16, _>(col)?),
            "INT4" => i64::from(self.try_get::<i32, _>(col)?),
            _ => self.try_get::<i64, _>(col)?,
        }))
    }

    fn real(&self, col: &str) -> Result<f64, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn text(&self, col: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T, StoreError> {
        Ok(self.try_get::<sqlx::types::Json<T>, _>(col)?.0)
    }
}

/// Binds neutral values as PostgreSQL's own types.
fn bind(args: Vec<Arg>) -> Result<PgArguments, StoreError> {
    use sqlx::Arguments;
    let mut out = PgArguments::default();
    for a in args {
        let added = match a {
            Arg::Int(v) => out.add(v),
            Arg::Real(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::Time(v) => out.add(v),
            Arg::Json(v) => out
                .add(serde_json::value::RawValue::from_string(v).map_err(|e| corrupt("json", e))?),
            Arg::Texts(v) => out.add(v),
            Arg::Ints(v) => out.add(v),
        };
        added.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}

#[async_trait]
impl<'c> Conn for Transaction<'c, Postgres> {
    type Row = PgRow;

    async fn fetch<S: SqlSafeStr + Send>(
        &mut self,
        sql: S,
        args: Vec<Arg>,
    ) -> Result<Vec<PgRow>, StoreError> {
        Ok(sqlx::query_with(sql, bind(args)?)
            .fetch_all(&mut **self)
            .await?)
    }

    async fn exec<S: SqlSafeStr + Send>(
        &mut self,
        sql: S,
        args: Vec<Arg>,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query_with(sql, bind(args)?)
            .execute(&mut **self)
            .await?
            .rows_affected())
    }
}

#[async_trait]
impl<'c> WriteTx for Transaction<'c, Postgres> {
    async fn commit(self) -> Result<(), StoreError> {
        Ok(Transaction::commit(self).await?)
    }

    async fn rollback(self) -> Result<(), StoreError> {
        Ok(Transaction::rollback(self).await?)
    }
}

#[async_trait]
impl Backend for PgDb {
    type Row = PgRow;
    type Tx = Transaction<'static, Postgres>;

    async fn read<S: SqlSafeStr + Send>(
        &self,
        sql: S,
        args: Vec<Arg>,
    ) -> Result<Vec<PgRow>, StoreError> {
        Ok(sqlx::query_with(sql, bind(args)?)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn run<S: SqlSafeStr + Send>(&self, sql: S, args: Vec<Arg>) -> Result<u64, StoreError> {
        Ok(sqlx::query_with(sql, bind(args)?)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn write(&self) -> Result<Self::Tx, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    fn in_list(expr: &str, param: &str) -> String {
        format!("{expr} = ANY({param})")
    }

    const SEARCH_WINDOWS: &'static [i64] = &[5_000, 100_000];

    /// The planner prices `to_tsvector` far below what it costs and would walk the id index
    /// newest first, computing it for every ticket until enough match (seconds for a rare
    /// word). With plain index scans off it takes the search index's bitmap, joined with the
    /// window's id range and any other indexed filter, and reads only the rows that match.
    async fn read_search(&self, sql: String, args: Vec<Arg>) -> Result<Vec<PgRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        for setting in [
            "SET LOCAL enable_indexscan = off",
            "SET LOCAL enable_indexonlyscan = off",
            "SET LOCAL enable_seqscan = off",
        ] {
            sqlx::query(setting).execute(&mut *tx).await?;
        }
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), bind(args)?)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    fn has_tag(param: &str) -> String {
        format!("tags @> jsonb_build_array({param}::text)")
    }

    /// The indexed expression itself (`tickets_search`), so the index answers it.
    fn matches_words(param: &str) -> String {
        format!(
            "to_tsvector('english', title || ' ' || body) @@ plainto_tsquery('english', {param})"
        )
    }

    /// `plainto_tsquery` reads plain words (no query syntax), every one required.
    fn fulltext_query(words: &[String]) -> String {
        words.join(" ")
    }

    /// An expression over the column keeps PostgreSQL off its index.
    const OPENED_BY: &'static str = "created_at + INTERVAL '0 s' <= $1";

    fn lock_people() -> Option<&'static str> {
        // Serialises syncs from instances starting together.
        Some("LOCK TABLE people IN EXCLUSIVE MODE")
    }

    async fn create_ticket(&self, req: CreateTicket) -> Result<Created, StoreError> {
        let mut tx = self.write().await?;
        let at = req.ticket.created_at;
        if let Some(q) = &req.quota {
            // One person's flags are counted one at a time, by every instance: the lock is held
            // to the commit, so each count sees the tickets the ones before it wrote.
            tx.fetch(
                sqlx::AssertSqlSafe(format!(
                    "SELECT pg_advisory_xact_lock({FLAG_QUOTA_LOCK}, hashtext($1))"
                )),
                args![q.person.as_str()],
            )
            .await?;
            let counted = recent_flags_in::<_, PgDb>(&mut tx, &q.accounts, q.since).await?;
            if counted.len() >= q.max as usize {
                // A message that already has a ticket is only pointed to: not counted.
                let existing = match source_key(&req.ticket) {
                    Some(key) => tickets_by_sources(&mut tx, &[key]).await?.pop(),
                    None => None,
                };
                if existing.is_none() {
                    WriteTx::rollback(tx).await?;
                    return Ok(Created::OverQuota(counted));
                }
            }
        }
        // Another system's key is claimed first: a concurrent claim of it waits here for the
        // first one's commit, then finds its ticket (or that it is still being opened).
        let mut external = req.external.clone();
        if let Some(e) = external.as_mut().filter(|e| !e.claimed) {
            let claimed = tx
                .exec(
                    "INSERT INTO external_keys (source, key, ticket_id, claimed_at) \
                     VALUES ($1, $2, NULL, $3) ON CONFLICT (source, key) DO NOTHING",
                    args![e.source.as_str(), e.key.as_str(), at],
                )
                .await?;
            if claimed == 0 {
                let mut held =
                    held_external_keys(&mut tx, &[(e.source.as_str(), e.key.as_str())]).await?;
                WriteTx::rollback(tx).await?;
                return Ok(match held.drain().next() {
                    Some((_, Some(t))) => Created::Existing(t),
                    _ => Created::Taken,
                });
            }
            e.claimed = true;
        }
        // ON CONFLICT makes a second flag of one message, by any instance, find the first ticket.
        let inserted = tx
            .fetch(
                sqlx::AssertSqlSafe(format!(
                    "{NEW_TICKET_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                     $12, $13, $14, $15, $16, $17, $18, $19) \
                     ON CONFLICT (source_platform, source_channel, source_message) \
                     WHERE source_message IS NOT NULL DO NOTHING RETURNING id"
                )),
                new_ticket_values(&req.ticket)?,
            )
            .await?;
        let inbox_keys: Vec<String> = req.inbox_key.iter().cloned().collect();
        let Some(row) = inserted.first() else {
            let key = source_key(&req.ticket)
                .ok_or_else(|| corrupt("ticket", "conflict without a source"))?;
            let ticket = tickets_by_sources(&mut tx, &[key])
                .await?
                .pop()
                .ok_or_else(|| corrupt("ticket", "conflict without a stored ticket"))?;
            insert_events(
                &mut tx,
                &[(ticket.id, Some(&req.actor), &EventKind::Reflagged, at)],
            )
            .await?;
            mark_inbox_done::<_, PgDb>(&mut tx, inbox_keys, at).await?;
            WriteTx::commit(tx).await?;
            return Ok(Created::Existing(ticket));
        };
        let id = row.required_int("id")?;
        let ticket = req.ticket.clone().into_ticket(TicketRef(id));
        let events: Vec<_> = req
            .events
            .iter()
            .map(|e| (ticket.id, Some(&req.actor), e, at))
            .collect();
        insert_events(&mut tx, &events).await?;
        if let Some(ext) = &external {
            link_external(&mut tx, ticket.id, ext, at).await?;
        }
        insert_outbox(&mut tx, Some(ticket.id), (req.outbox)(&ticket), at).await?;
        mark_inbox_done::<_, PgDb>(&mut tx, inbox_keys, at).await?;
        WriteTx::commit(tx).await?;
        Ok(Created::New(ticket))
    }

    async fn inbox_claim(
        &self,
        owner: &str,
        platforms: &[Platform],
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<InboxRow>, StoreError> {
        let platforms: Vec<String> = platforms.iter().map(|p| p.as_str().to_string()).collect();
        // SKIP LOCKED: rows another instance is claiming right now are left to it. The
        // NOT EXISTS keeps the events about one platform message in order.
        let rows = self
            .read(
                sqlx::AssertSqlSafe(format!(
                    "UPDATE inbox i SET lease_owner = $1, lease_until = $2, next_attempt_at = $2, attempts = i.attempts + 1 \
                     FROM (SELECT c.id FROM inbox c WHERE c.status = 'pending' AND c.platform = ANY($3) \
                             AND c.next_attempt_at <= $4 AND (c.lease_until IS NULL OR c.lease_until <= $4) \
                             AND (c.order_key IS NULL OR NOT EXISTS (SELECT 1 FROM inbox e \
                                  WHERE e.order_key = c.order_key AND e.id < c.id AND e.status = 'pending')) \
                           ORDER BY c.id LIMIT $5 FOR UPDATE SKIP LOCKED) picked \
                     WHERE i.id = picked.id RETURNING {}",
                    prefixed("i", INBOX_COLUMNS)
                )),
                args![owner, now + lease, platforms, now, limit],
            )
            .await?;
        let mut out: Vec<InboxRow> = rows.iter().map(inbox_from_row).collect::<Result<_, _>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    async fn outbox_claim(
        &self,
        owner: &str,
        platforms: &[Platform],
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let platforms: Vec<String> = platforms.iter().map(|p| p.as_str().to_string()).collect();
        // SKIP LOCKED: rows another instance is claiming right now are left to it. The
        // NOT EXISTS keeps each ticket's messages to one destination in order.
        let rows = self
            .read(
                sqlx::AssertSqlSafe(format!(
                    "UPDATE outbox o SET lease_owner = $1, lease_until = $2, next_attempt_at = $2, attempts = o.attempts + 1 \
                     FROM (SELECT c.id, c.lease_until AS old_lease FROM outbox c \
                           WHERE c.status = 'pending' AND c.platform = ANY($3) AND c.next_attempt_at <= $4 \
                             AND (c.lease_until IS NULL OR c.lease_until <= $4) \
                             AND (c.order_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox e \
                                  WHERE e.order_key = c.order_key AND e.id < c.id AND e.status = 'pending')) \
                           ORDER BY c.id LIMIT $5 FOR UPDATE SKIP LOCKED) picked \
                     WHERE o.id = picked.id RETURNING {}, picked.old_lease",
                    prefixed("o", OUTBOX_COLUMNS)
                )),
                args![owner, now + lease, platforms, now, limit],
            )
            .await?;
        let mut out = rows
            .iter()
            .map(|r| outbox_from_row(r, r.time("old_lease")?.is_some()))
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    async fn digest_tickets(
        &self,
        since: DateTime<Utc>,
        set: DigestSet<'_>,
    ) -> Result<Vec<DigestTicket>, StoreError> {
        let select = format!("SELECT {DIGEST_TICKET_COLUMNS}, history FROM tickets WHERE ");
        let (sql, params) = match set {
            DigestSet::Part(part, mid) => (
                format!("{select}{}", digest_part::<Self>(part)),
                args![since, mid],
            ),
            DigestSet::Department(d) => (
                format!("{select}department = $2 AND ({DIGEST_RECENT})"),
                args![since, d],
            ),
            DigestSet::Routed => (format!("{select}{DIGEST_ROUTED}"), args![since]),
        };
        let rows = self.read(sqlx::AssertSqlSafe(sql), params).await?;
        off_thread(move || rows.iter().map(digest_ticket_at).collect()).await
    }

    async fn backup(&self, path: &Path) -> Result<(), StoreError> {
        super::restore::pg_backup(&self.url, self.schema.as_deref(), path).await
    }
}

/// Decodes a digest row (`DIGEST_TICKET_COLUMNS`, then `history`) by position, borrowing its
/// text: a whole organisation's digest decodes tens of thousands, where finding each column by
/// name and copying every text would cost more than the query.
fn digest_ticket_at(r: &PgRow) -> Result<DigestTicket, StoreError> {
    let text = |i: usize| r.try_get::<&str, _>(i);
    Ok(DigestTicket {
        id: TicketRef(r.try_get(0)?),
        title: r.try_get(1)?,
        department: r.try_get(2)?,
        priority: enum_from("priority", text(3)?)?,
        tags: r.try_get::<sqlx::types::Json<Vec<String>>, _>(4)?.0,
        created_at: r.try_get(5)?,
        first_response_at: r.try_get(6)?,
        resolved_at: r.try_get(7)?,
        closed_at: r.try_get(8)?,
        waiting_since: r.try_get(9)?,
        sla_paused: chrono::Duration::seconds(r.try_get(10)?),
        assignee: r
            .try_get::<Option<&str>, _>(11)?
            .map(parse_user)
            .transpose()?,
        origin: enum_from("origin", text(12)?)?,
        history: read_history(text(13)?)?,
    })
}

/// `a, b, c` as `t.a, t.b, t.c`.
fn prefixed(table: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
