//! The SQLite backend: the embedded default, one file, one writer at a time.
//!
//! Owns SQLite's settings (WAL, `synchronous=NORMAL`, foreign keys, a busy timeout, memory-mapped
//! reads and a larger page cache), how its columns hold times and JSON (fixed-width RFC 3339
//! text, JSON text), and what only SQLite does: every write transaction starts with
//! `BEGIN IMMEDIATE` (a deferred transaction that reads and then writes fails with "database is
//! locked" instead of waiting), claims are a read and an update under that lock, new tickets go
//! through one group-commit writer (which counts flag quotas request by request, under the
//! lock), and the digest's tickets come back packed into one JSON
//! array. Migrations come from `migrations/sqlite/`, embedded in the binary. The operations
//! themselves are written once, in [`super::sql`].

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr, Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::dialect::{args, Arg, Backend, Conn, DigestPart, DigestSet, SqlRow, WriteTx};
use super::sql::{
    digest_part, held_external_keys, inbox_from_row, insert_events, insert_rows, key_of,
    link_external, mark_inbox_done, new_ticket_values, off_thread, outbox_from_row, outbox_values,
    read_history, recent_flags_in, source_key, tickets_by_sources, EventRow, SourceKey, SqlStore,
    DIGEST_RECENT, DIGEST_ROUTED, INBOX_COLUMNS, INSERT_OUTBOX, NEW_TICKET_COLUMNS,
    NEW_TICKET_WIDTH, OUTBOX_COLUMNS, OUTBOX_WIDTH,
};
use super::{
    corrupt, enum_from, parse_ts, parse_user, ts, CreateTicket, Created, InboxRow, OutboxRow,
    StoreError,
};
use crate::core::digest::DigestTicket;
use crate::core::ticket::{EventKind, Ticket};
use crate::core::types::{Platform, TicketRef};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A SQLite database file.
pub type SqliteStore = SqlStore<SqliteDb>;

/// SQLite's side of the store: one connection that writes, a pool that reads, and the
/// group-commit writer.
///
/// SQLite lets one connection write at a time. With several writing connections the others
/// would find the database locked and poll (sleep, retry) in SQLite's busy handler, which costs
/// CPU and adds latency under load; one writing connection makes writers queue for it instead,
/// waking once when it is free. Reads never wait for writes (WAL).
#[derive(Debug)]
pub struct SqliteDb {
    pool: SqlitePool,
    writer: SqlitePool,
    creates: mpsc::Sender<CreateJob>,
}

impl SqlStore<SqliteDb> {
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
            // used) so repeated reads of recent tickets stay in memory. The map covers up to
            // SQLite's largest (just under 2 GiB of address space, not memory): a digest's
            // still-open tickets lie all over the file, and pages past a smaller map are copied
            // in one read call each (a 1M-ticket file is 1.3 GB).
            .pragma("mmap_size", "2147418112")
            .pragma("cache_size", "-16384");
        // The writer first: it creates the file and switches it to WAL before readers open.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let (creates, jobs) = mpsc::channel(1024);
        tokio::spawn(group_writer(writer.clone(), jobs));
        Ok(SqlStore::new(SqliteDb {
            pool,
            writer,
            creates,
        }))
    }

    /// The writing connection, for benchmarks that write raw statements.
    pub fn writer(&self) -> &SqlitePool {
        &self.db.writer
    }
}

impl SqlRow for SqliteRow {
    fn int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn real(&self, col: &str) -> Result<f64, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn text(&self, col: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(col)?)
    }

    fn time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.try_get::<Option<&str>, _>(col)?
            .map(parse_ts)
            .transpose()
    }

    fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T, StoreError> {
        serde_json::from_str(self.try_get::<&str, _>(col)?).map_err(|e| corrupt(col, e))
    }
}

/// Binds neutral values the way SQLite's columns hold them: times as fixed-width text, JSON
/// and lists as JSON text (lists are read back with `json_each`).
fn bind(args: Vec<Arg>) -> Result<SqliteArguments, StoreError> {
    use sqlx::Arguments;
    let mut out = SqliteArguments::default();
    for a in args {
        let added = match a {
            Arg::Int(v) => out.add(v),
            Arg::Real(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::Time(v) => out.add(v.map(ts)),
            Arg::Json(v) => out.add(v),
            Arg::Texts(v) => out.add(serde_json::to_string(&v).map_err(|e| corrupt("list", e))?),
            Arg::Ints(v) => out.add(serde_json::to_string(&v).map_err(|e| corrupt("list", e))?),
        };
        added.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}

#[async_trait]
impl<'c> Conn for Transaction<'c, Sqlite> {
    type Row = SqliteRow;

    async fn fetch<S: SqlSafeStr + Send>(
        &mut self,
        sql: S,
        args: Vec<Arg>,
    ) -> Result<Vec<SqliteRow>, StoreError> {
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
impl<'c> WriteTx for Transaction<'c, Sqlite> {
    async fn commit(self) -> Result<(), StoreError> {
        Ok(Transaction::commit(self).await?)
    }

    async fn rollback(self) -> Result<(), StoreError> {
        Ok(Transaction::rollback(self).await?)
    }
}

#[async_trait]
impl Backend for SqliteDb {
    type Row = SqliteRow;
    type Tx = Transaction<'static, Sqlite>;

    async fn read<S: SqlSafeStr + Send>(
        &self,
        sql: S,
        args: Vec<Arg>,
    ) -> Result<Vec<SqliteRow>, StoreError> {
        Ok(sqlx::query_with(sql, bind(args)?)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn run<S: SqlSafeStr + Send>(&self, sql: S, args: Vec<Arg>) -> Result<u64, StoreError> {
        Ok(sqlx::query_with(sql, bind(args)?)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    async fn write(&self) -> Result<Self::Tx, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    fn in_list(expr: &str, param: &str) -> String {
        format!("{expr} IN (SELECT value FROM json_each({param}))")
    }

    /// FTS5 walks a word's matches newest first by itself.
    const SEARCH_WINDOWS: &'static [i64] = &[];

    fn has_tag(param: &str) -> String {
        format!("EXISTS (SELECT 1 FROM json_each(tags) WHERE value = {param})")
    }

    fn matches_words(param: &str) -> String {
        format!("id IN (SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH {param})")
    }

    /// Each word quoted: FTS5 reads it as a plain term, never as its query syntax
    /// (`NEAR`, `OR`, `*`, column filters); terms side by side must all match.
    fn fulltext_query(words: &[String]) -> String {
        words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A unary `+` keeps SQLite off the column's index.
    const OPENED_BY: &'static str = "+created_at <= $1";

    fn lock_people() -> Option<&'static str> {
        None
    }

    async fn create_ticket(&self, req: CreateTicket) -> Result<Created, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.creates
            .send((req, reply))
            .await
            .map_err(|_| StoreError::Batch("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Batch("the SQLite writer has stopped".into()))?
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
        if !self.due("inbox", now, &platforms).await? {
            return Ok(vec![]);
        }
        let mut tx = self.write().await?;
        let rows = tx
            .fetch(
                sqlx::AssertSqlSafe(format!(
                    "SELECT {INBOX_COLUMNS} FROM inbox i WHERE {} \
                       AND (order_key IS NULL OR NOT EXISTS (SELECT 1 FROM inbox e \
                            WHERE e.order_key = i.order_key AND e.id < i.id \
                              AND e.status = 'pending')) \
                     ORDER BY id LIMIT $2",
                    due_where("$1", "$3")
                )),
                args![now, limit, platforms],
            )
            .await?;
        let mut out = rows
            .iter()
            .map(inbox_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<i64> = out.iter().map(|r| r.id).collect();
        lease_rows(&mut tx, Leased::Inbox, ids, owner, now + lease).await?;
        tx.commit().await?;
        for row in &mut out {
            row.attempts += 1;
        }
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
        if !self.due("outbox", now, &platforms).await? {
            return Ok(vec![]);
        }
        let mut tx = self.write().await?;
        let rows = tx
            .fetch(
                sqlx::AssertSqlSafe(format!(
                    "SELECT {OUTBOX_COLUMNS}, lease_until AS old_lease FROM outbox o WHERE {} \
                       AND (order_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox e \
                            WHERE e.order_key = o.order_key AND e.id < o.id \
                              AND e.status = 'pending')) \
                     ORDER BY id LIMIT $3",
                    due_where("$2", "$1")
                )),
                args![platforms, now, limit],
            )
            .await?;
        let mut out = rows
            .iter()
            .map(|r| outbox_from_row(r, r.text("old_lease")?.is_some()))
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<i64> = out.iter().map(|r| r.id).collect();
        lease_rows(&mut tx, Leased::Outbox, ids, owner, now + lease).await?;
        tx.commit().await?;
        for row in &mut out {
            row.attempts += 1;
        }
        Ok(out)
    }

    async fn digest_tickets(
        &self,
        since: DateTime<Utc>,
        set: DigestSet<'_>,
    ) -> Result<Vec<DigestTicket>, StoreError> {
        // sqlx hands SQLite rows over one at a time through a channel, which costs more than
        // the read itself for tens of thousands of rows; SQLite packs them into one JSON array
        // instead, read back in one piece. Each ticket carries its history (see
        // `history_steps`). Tags travel as their stored JSON text (a string in the array):
        // `json(tags)` would make SQLite parse and write every ticket's tags again.
        let packed = "SELECT json_group_array(json_array(id, title, department, \
             priority, tags, created_at, first_response_at, resolved_at, closed_at, \
             waiting_since, sla_paused_seconds, assignee, origin, history)) AS packed \
             FROM tickets WHERE ";
        let recent = DIGEST_RECENT;
        let (sql, params) = match set {
            DigestSet::Part(DigestPart::StillActive, mid) => {
                // The still-open tickets lie all over the file, one page each, so this part
                // costs twice the others: read as two halves, by the rowid the index already
                // holds (tested before any row is fetched), each on its own connection.
                let where_ = digest_part::<Self>(DigestPart::StillActive);
                let half = |k: u8| {
                    self.packed_tickets(
                        format!("{packed}id % 2 = {k} AND {where_}"),
                        args![since, mid],
                    )
                };
                let (mut even, odd) = tokio::try_join!(half(0), half(1))?;
                even.extend(odd);
                return Ok(even);
            }
            DigestSet::Part(part, mid) => (
                format!("{packed}{}", digest_part::<Self>(part)),
                args![since, mid],
            ),
            DigestSet::Department(d) => (
                format!("{packed}department = $2 AND ({recent})"),
                args![since, d],
            ),
            DigestSet::Routed => (format!("{packed}{DIGEST_ROUTED}"), args![since]),
        };
        self.packed_tickets(sql, params).await
    }

    async fn backup(&self, path: &Path) -> Result<(), StoreError> {
        super::restore::refuse_existing(path)?;
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Unsupported("backup path must be valid UTF-8".into()))?;
        // VACUUM INTO reads one consistent snapshot while the writer keeps writing.
        self.read("VACUUM INTO $1", args![target]).await?;
        Ok(())
    }
}

impl SqliteDb {
    /// Runs a digest query that packs its tickets into one JSON array, and unpacks them.
    async fn packed_tickets(
        &self,
        sql: String,
        params: Vec<Arg>,
    ) -> Result<Vec<DigestTicket>, StoreError> {
        let rows = self.read(sqlx::AssertSqlSafe(sql), params).await?;
        // Unpacked from the row's own text: the array is megabytes, not worth a copy.
        off_thread(move || {
            let json = match rows.first() {
                Some(r) => r.try_get::<Option<&str>, _>("packed")?,
                None => None,
            };
            unpack_digest_tickets(json.unwrap_or_default())
        })
        .await
    }
}

/// One ticket as packed by the digest query: the columns of `DIGEST_TICKET_COLUMNS` and its
/// history, in order (a JSON array, read as this struct's fields). Text is borrowed from the
/// packed JSON where it holds no escapes, so only what a `DigestTicket` keeps is allocated.
#[derive(serde::Deserialize)]
struct PackedTicket<'a> {
    id: i64,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(borrow)]
    department: Cow<'a, str>,
    #[serde(borrow)]
    priority: Cow<'a, str>,
    #[serde(borrow)]
    tags: Cow<'a, str>,
    #[serde(borrow)]
    created: Cow<'a, str>,
    #[serde(borrow)]
    first: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resolved: Option<Cow<'a, str>>,
    #[serde(borrow)]
    closed: Option<Cow<'a, str>>,
    #[serde(borrow)]
    waiting: Option<Cow<'a, str>>,
    paused: i64,
    #[serde(borrow)]
    assignee: Option<Cow<'a, str>>,
    #[serde(borrow)]
    origin: Cow<'a, str>,
    #[serde(borrow)]
    history: Cow<'a, str>,
}

fn unpack_digest_tickets(json: &str) -> Result<Vec<DigestTicket>, StoreError> {
    if json.is_empty() {
        return Ok(vec![]);
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let tickets = serde::Deserializer::deserialize_seq(&mut de, Unpacked)
        .map_err(|e| corrupt("digest tickets", e))?;
    de.end().map_err(|e| corrupt("digest tickets", e))?;
    Ok(tickets)
}

/// Reads the packed array one ticket at a time, each made a `DigestTicket` as it is read, so
/// no array of packed tickets is built in between.
struct Unpacked;

impl<'de> serde::de::Visitor<'de> for Unpacked {
    type Value = Vec<DigestTicket>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of packed tickets")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(packed) = seq.next_element::<PackedTicket<'de>>()? {
            out.push(unpack(&packed).map_err(serde::de::Error::custom)?);
        }
        Ok(out)
    }
}

/// One packed ticket as a `DigestTicket`.
fn unpack(r: &PackedTicket<'_>) -> Result<DigestTicket, StoreError> {
    let time = |t: &Option<Cow<'_, str>>| t.as_deref().map(parse_ts).transpose();
    // Most tickets have no tags: no JSON to parse for them.
    let tags = match &*r.tags {
        "[]" => vec![],
        text => serde_json::from_str(text).map_err(|e| corrupt("ticket tags", e))?,
    };
    Ok(DigestTicket {
        id: TicketRef(r.id),
        title: r.title.to_string(),
        department: r.department.to_string(),
        priority: enum_from("priority", &r.priority)?,
        tags,
        created_at: parse_ts(&r.created)?,
        first_response_at: time(&r.first)?,
        resolved_at: time(&r.resolved)?,
        closed_at: time(&r.closed)?,
        waiting_since: time(&r.waiting)?,
        sla_paused: chrono::Duration::seconds(r.paused),
        assignee: r.assignee.as_deref().map(parse_user).transpose()?,
        origin: enum_from("origin", &r.origin)?,
        history: read_history(&r.history)?,
    })
}

/// The tables whose rows workers claim with a lease.
#[derive(Debug, Clone, Copy)]
enum Leased {
    Inbox,
    Outbox,
}

/// Leases the claimed rows `ids` to `owner` until `until` and counts the attempt, in one
/// statement. A leased row's next attempt is its lease's end (when another worker may take it
/// over), so the due index leaves rows in hand out of every claim and due check instead of
/// each one reading past them all.
async fn lease_rows(
    tx: &mut Transaction<'static, Sqlite>,
    table: Leased,
    ids: Vec<i64>,
    owner: &str,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = match table {
        Leased::Inbox => {
            "UPDATE inbox SET lease_owner = $1, lease_until = $2, next_attempt_at = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT value FROM json_each($3))"
        }
        Leased::Outbox => {
            "UPDATE outbox SET lease_owner = $1, lease_until = $2, next_attempt_at = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT value FROM json_each($3))"
        }
    };
    tx.exec(sql, args![owner, until, ids]).await?;
    Ok(())
}

/// Flags waiting for the group-commit writer, each with where to send its outcome.
type CreateJob = (CreateTicket, oneshot::Sender<Result<Created, StoreError>>);

/// The most tickets one group commit writes.
const MAX_GROUP: usize = 64;

/// An inbox or outbox row pending for one of the platforms bound at `platforms`, due and not
/// leased at the time bound at `now`: what a claim takes (its order rule aside) and what
/// [`SqliteDb::due`] looks for, written once so the two never disagree.
fn due_where(now: &str, platforms: &str) -> String {
    format!(
        "status = 'pending' AND {} AND next_attempt_at <= {now} \
         AND (lease_until IS NULL OR lease_until <= {now})",
        SqliteDb::in_list("platform", platforms)
    )
}

impl SqliteDb {
    /// Whether any row of `table` (`inbox` or `outbox`) for `platforms` is due and unleased at
    /// `now`: a read, so a worker finding nothing to do never queues for the writer.
    async fn due(
        &self,
        table: &'static str,
        now: DateTime<Utc>,
        platforms: &[String],
    ) -> Result<bool, StoreError> {
        let rows = self
            .read(
                sqlx::AssertSqlSafe(format!(
                    "SELECT 1 FROM {table} WHERE {} LIMIT 1",
                    due_where("$1", "$2")
                )),
                args![now, platforms.to_vec()],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}

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
        WriteTx::commit(tx).await?;
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
                    WriteTx::commit(tx).await?;
                    Ok::<_, StoreError>(results.remove(0))
                }
                .await;
                let _ = reply.send(one);
            }
        }
    }
}

/// The flags each person in the group opened tickets with since the earliest start of their
/// quotas' windows, oldest first, by [`super::FlagQuota::person`].
async fn recent_flags_of(
    tx: &mut Transaction<'static, Sqlite>,
    reqs: &[CreateTicket],
) -> Result<HashMap<String, Vec<DateTime<Utc>>>, StoreError> {
    let mut since: HashMap<&str, (&[crate::core::types::UserRef], DateTime<Utc>)> = HashMap::new();
    for q in reqs.iter().filter_map(|r| r.quota.as_ref()) {
        let e = since
            .entry(q.person.as_str())
            .or_insert((&q.accounts, q.since));
        e.1 = e.1.min(q.since);
    }
    let mut out = HashMap::new();
    for (person, (accounts, since)) in since {
        let times = recent_flags_in::<_, SqliteDb>(tx, accounts, since).await?;
        out.insert(person.to_string(), times);
    }
    Ok(out)
}

/// Writes a group of new tickets inside `tx` with one statement per table: each flagged
/// message already stored (or flagged twice within the group) gets a `Reflagged` event on its
/// ticket instead of a second ticket, and a flag past its flagger's quota writes nothing.
async fn write_group(
    tx: &mut Transaction<'static, Sqlite>,
    reqs: &[CreateTicket],
) -> Result<Vec<Created>, StoreError> {
    // Tickets that already exist for the group's messages.
    let keys: Vec<SourceKey> = reqs.iter().filter_map(|r| source_key(&r.ticket)).collect();
    let mut stored: HashMap<SourceKey, Ticket> = HashMap::new();
    for t in tickets_by_sources(tx, &keys).await? {
        if let Some(k) = t.source.as_ref().map(key_of) {
            stored.insert(k, t);
        }
    }
    // Keys of other systems claimed with their tickets, read under the writer's lock: a key
    // with a ticket finds it, one held (or first taken within the group) writes nothing.
    let unclaimed: Vec<(&str, &str)> = reqs
        .iter()
        .filter_map(|r| r.external.as_ref().filter(|e| !e.claimed))
        .map(|e| (e.source.as_str(), e.key.as_str()))
        .collect();
    let held = held_external_keys(tx, &unclaimed).await?;
    let mut keyed: HashSet<(&str, &str)> = HashSet::new();
    let mut settled: HashMap<usize, Created> = HashMap::new();
    for (i, r) in reqs.iter().enumerate() {
        let Some(e) = r.external.as_ref().filter(|e| !e.claimed) else {
            continue;
        };
        match held.get(&(e.source.clone(), e.key.clone())) {
            Some(Some(t)) => {
                settled.insert(i, Created::Existing(t.clone()));
            }
            Some(None) => {
                settled.insert(i, Created::Taken);
            }
            None if !keyed.insert((e.source.as_str(), e.key.as_str())) => {
                settled.insert(i, Created::Taken);
            }
            None => {}
        }
    }
    // Quotas are counted here, under the writer's lock and request by request, so a burst of
    // one person's flags written together cannot all pass a count taken before any of them.
    let mut recent = recent_flags_of(tx, reqs).await?;
    // Which requests make a new ticket: the first of each message not yet stored whose
    // flagger has quota left (a request past it writes nothing and leaves the message to the
    // next request for it).
    let mut first_in_group: HashMap<SourceKey, usize> = HashMap::new();
    let mut fresh: Vec<usize> = Vec::new();
    let mut over: HashMap<usize, Vec<DateTime<Utc>>> = HashMap::new();
    for (i, r) in reqs.iter().enumerate() {
        if settled.contains_key(&i) {
            continue;
        }
        let key = source_key(&r.ticket);
        if key
            .as_ref()
            .is_some_and(|k| stored.contains_key(k) || first_in_group.contains_key(k))
        {
            continue;
        }
        if let Some(q) = &r.quota {
            let times = recent.entry(q.person.clone()).or_default();
            let mut counted: Vec<DateTime<Utc>> =
                times.iter().copied().filter(|t| *t >= q.since).collect();
            if counted.len() >= q.max as usize {
                counted.sort_unstable();
                over.insert(i, counted);
                continue;
            }
            times.push(r.ticket.created_at);
        }
        if let Some(k) = key {
            first_in_group.insert(k, i);
        }
        fresh.push(i);
    }
    let mut created: HashMap<usize, Ticket> = HashMap::new();
    if !fresh.is_empty() {
        let rows = fresh
            .iter()
            .map(|&i| new_ticket_values(&reqs[i].ticket))
            .collect::<Result<Vec<_>, _>>()?;
        let returned = insert_rows(
            tx,
            NEW_TICKET_COLUMNS,
            NEW_TICKET_WIDTH,
            rows,
            " RETURNING id",
        )
        .await?;
        // One writer holds the lock and AUTOINCREMENT counts up in VALUES order, so the
        // sorted ids belong to the rows in the order they were listed.
        let mut ids: Vec<i64> = returned
            .iter()
            .map(|r| r.required_int("id"))
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
    let mut events: Vec<EventRow<'_>> = Vec::new();
    let mut outbox: Vec<Vec<Arg>> = Vec::new();
    let mut inbox_keys: Vec<String> = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        if let Some(counted) = over.remove(&i) {
            results.push(Created::OverQuota(counted));
            continue;
        }
        if let Some(done) = settled.remove(&i) {
            if let (Created::Existing(_), Some(k)) = (&done, &r.inbox_key) {
                inbox_keys.push(k.clone());
            }
            results.push(done);
            continue;
        }
        let at = r.ticket.created_at;
        let result = match created.get(&i) {
            Some(t) => {
                events.extend(r.events.iter().map(|e| (t.id, Some(&r.actor), e, at)));
                for o in (r.outbox)(t) {
                    outbox.push(outbox_values(o.ticket.or(Some(t.id)), &o, at, "")?);
                }
                Created::New(t.clone())
            }
            None => {
                let k = source_key(&r.ticket)
                    .ok_or_else(|| corrupt("group commit", "a duplicate without a source"))?;
                let t = match stored.get(&k) {
                    Some(t) => t.clone(),
                    None => created[&first_in_group[&k]].clone(),
                };
                events.push((t.id, Some(&r.actor), &EventKind::Reflagged, at));
                Created::Existing(t)
            }
        };
        if let Some(k) = &r.inbox_key {
            inbox_keys.push(k.clone());
        }
        results.push(result);
    }
    insert_events(tx, &events).await?;
    for (i, t) in &created {
        if let Some(ext) = &reqs[*i].external {
            link_external(tx, t.id, ext, t.created_at).await?;
        }
    }
    insert_rows(tx, INSERT_OUTBOX, OUTBOX_WIDTH, outbox, "").await?;
    mark_inbox_done::<_, SqliteDb>(tx, inbox_keys, reqs[0].ticket.created_at).await?;
    Ok(results)
}
