//! Every store operation, written once for both databases over the [`Backend`] dialect.
//!
//! Owns the SQL that SQLite and PostgreSQL share (sqlx-sqlite accepts PostgreSQL's `$1`
//! placeholders, and both speak `ON CONFLICT` and `RETURNING`), the decoding of rows into the
//! store's types, and the shared pieces of ticket creation (events, outbox rows, inbox rows
//! marked done) that each backend's `create_ticket` calls. What really differs (claiming work,
//! the group commit, the digest's bulk read, backups) is the backend's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::dialect::{args, json, Arg, Backend, Conn, DigestPart, DigestSet, SqlRow, WriteTx};
use super::{
    corrupt, enum_from, enum_text, parse_user, CreateTicket, Created, Csat, ExternalClaim,
    ExternalKey, ExternalTicket, InboxOutcome, InboxRow, Kudos, MetricSample, NewKudos, NewMetric,
    OutboxRow, Prunable, SavedReply, Store, StoreError, TicketFilter, Wake, WakeOnDrop, WebGrant,
    WebLink, WebSession,
};
use crate::core::digest::{CsatSample, DigestInput, KbEvent, KbWhat, MetricPoint, Step};
use crate::core::directory::Person;
use crate::core::message::{Outgoing, Target};
use crate::core::ticket::{EventKind, Source, ThreadReply, Ticket, TicketEvent};
use crate::core::types::{ChannelRef, Platform, TicketRef, UserRef};

/// `SELECT <every ticket column> FROM tickets` followed by the rest of a statement.
macro_rules! select_tickets {
    ($rest:literal) => {
        concat!(
            "SELECT id, version, title, body, source_platform, source_channel, source_message, \
             source_thread, source_permalink, source_text, source_author, source_author_name, reporter, department, \
             priority, tags, assignee, status, created_at, updated_at, first_response_at, \
             resolved_at, closed_at, waiting_since, sla_paused_seconds, origin, staff_at FROM tickets ",
            $rest
        )
    };
}

/// The columns of an outbox row as [`outbox_from_row`] reads them.
pub(crate) const OUTBOX_COLUMNS: &str = "id, kind, target, payload, ticket_id, status, attempts, \
    last_error, platform_message_id, created_at";

/// The columns of an inbox row as [`inbox_from_row`] reads them.
pub(crate) const INBOX_COLUMNS: &str =
    "id, dedupe_key, platform, payload, attempts, status, last_error, received_at";

/// The most rows one multi-row INSERT carries: far below SQLite's 32,766 bound variables.
const ROWS_PER_INSERT: usize = 500;

/// A store over one database: the operations of [`Store`], each written once.
#[derive(Debug, Clone)]
pub struct SqlStore<B> {
    pub(crate) db: Arc<B>,
    wake: Arc<Wake>,
}

impl<B: Backend> SqlStore<B> {
    /// A store over `db`.
    pub(crate) fn new(db: B) -> Self {
        Self {
            db: Arc::new(db),
            wake: Arc::default(),
        }
    }
}

/// Decodes a row of [`select_tickets!`].
pub(crate) fn ticket_from_row(row: &impl SqlRow) -> Result<Ticket, StoreError> {
    let source = match row.text("source_message")? {
        None => None,
        Some(message_id) => {
            let platform: Platform = row
                .required_text("source_platform")?
                .parse()
                .map_err(|e| corrupt("platform", e))?;
            Some(Source {
                channel: ChannelRef::new(platform, row.required_text("source_channel")?),
                message_id,
                thread_id: row.text("source_thread")?,
                permalink: row.text("source_permalink")?,
                original_text: row.text("source_text")?.unwrap_or_default(),
                author: parse_user(&row.required_text("source_author")?)?,
                author_name: row.text("source_author_name")?,
            })
        }
    };
    Ok(Ticket {
        id: TicketRef(row.required_int("id")?),
        version: row.required_int("version")?,
        title: row.required_text("title")?,
        body: row.required_text("body")?,
        source,
        reporter: parse_user(&row.required_text("reporter")?)?,
        department: row.required_text("department")?,
        priority: enum_from("priority", &row.required_text("priority")?)?,
        tags: row.json("tags")?,
        assignee: row
            .text("assignee")?
            .as_deref()
            .map(parse_user)
            .transpose()?,
        status: enum_from("status", &row.required_text("status")?)?,
        created_at: row.required_time("created_at")?,
        updated_at: row.required_time("updated_at")?,
        first_response_at: row.time("first_response_at")?,
        resolved_at: row.time("resolved_at")?,
        closed_at: row.time("closed_at")?,
        waiting_since: row.time("waiting_since")?,
        sla_paused: chrono::Duration::seconds(row.required_int("sla_paused_seconds")?),
        origin: enum_from("origin", &row.required_text("origin")?)?,
        staff_at: row.time("staff_at")?,
    })
}

/// The ticket columns a digest reads, in the order each store decodes them by position.
pub(crate) const DIGEST_TICKET_COLUMNS: &str =
    "id, title, department, priority, tags, created_at, \
    first_response_at, resolved_at, closed_at, waiting_since, sla_paused_seconds, assignee, origin";

/// Which tickets a digest of `(since, …]` reads: created after `since` or not done by then.
/// Each OR term has its own index (created_at, or the done-time expression, each also behind
/// the department), so only recent and still-open tickets are read, never the whole history.
/// Every ticket that changed after `since` is among them: a change needs an active ticket.
pub(crate) const DIGEST_RECENT: &str =
    "created_at > $1 OR COALESCE(resolved_at, closed_at) IS NULL \
     OR COALESCE(resolved_at, closed_at) > $1";

/// [`DIGEST_RECENT`]'s `part`, for reading the three at once (`$1` the start of the
/// previous period, `$2` the start of this one). The still-active part is found from the
/// done-time index alone (`B::OPENED_BY` keeps the planner off the opening-time index, whose
/// range there is the whole history).
pub(crate) fn digest_part<B: Backend>(part: DigestPart) -> String {
    match part {
        DigestPart::OpenedBefore => "created_at > $1 AND created_at <= $2".into(),
        DigestPart::OpenedSince => "created_at > $2".into(),
        DigestPart::StillActive => format!(
            "{} AND (COALESCE(resolved_at, closed_at) IS NULL \
             OR COALESCE(resolved_at, closed_at) > $1)",
            B::OPENED_BY
        ),
    }
}

/// Runs `f` (decoding many rows) on a blocking thread, so parts read at once are decoded at
/// once too; a panic in it is the caller's panic.
pub(crate) async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(StoreError::Unsupported(format!("shutting down: {e}"))),
        },
    }
}

/// Tickets moved to another department after `$1`: a department's digest reads them too,
/// as they may have been its own at a period's end. Each was active when moved, so it is one
/// of [`DIGEST_RECENT`]'s; found from the few routing entries alone.
pub(crate) const DIGEST_ROUTED: &str =
    "id IN (SELECT ticket_id FROM ticket_events WHERE kind = 'routed' AND at > $1)";

/// The entries of `events` a digest follows, in the form of the tickets' `history` column:
/// `at|kind|from|to;` each (accounts as `platform:id`, an empty field for none). A status
/// change has no `from`; its middle field is `automation` when another system or a timer
/// made it (`actor` an automation), so digests can count what resolved itself. No value
/// holds `|` or `;`: statuses, priorities, department names and account references are
/// letters, digits, `-`, `_`, `.` and `:`.
pub(crate) fn history_steps(
    events: &[EventKind],
    actor: Option<&UserRef>,
    at: DateTime<Utc>,
) -> String {
    let automated = actor
        .and_then(|a| a.automation_source())
        .map(|_| AUTOMATED.to_string());
    let mut out = String::new();
    for e in events {
        let (kind, from, to) = match e {
            EventKind::StatusChanged { to, .. } => {
                ("status_changed", automated.clone(), Some(enum_text(to)))
            }
            EventKind::Routed { from, to } => ("routed", Some(from.clone()), Some(to.clone())),
            EventKind::PriorityChanged { from, to } => (
                "priority_changed",
                Some(enum_text(from)),
                Some(enum_text(to)),
            ),
            EventKind::Assigned { from, to } => (
                "assigned",
                from.as_ref().map(|u| u.to_string()),
                to.as_ref().map(|u| u.to_string()),
            ),
            _ => continue,
        };
        let field = |v: Option<String>| v.unwrap_or_default().replace(['|', ';'], "_");
        out.push_str(&format!(
            "{}|{kind}|{}|{};",
            super::ts(at),
            field(from),
            field(to)
        ));
    }
    out
}

/// The middle field of a status change another system or a timer made.
const AUTOMATED: &str = "automation";

/// Reads a ticket's `history` column (see [`history_steps`]): its followed changes in order.
pub(crate) fn read_history(text: &str) -> Result<Vec<(DateTime<Utc>, Step)>, StoreError> {
    let mut out = Vec::new();
    for step in text.split(';').filter(|s| !s.is_empty()) {
        let mut f = step.split('|');
        let (Some(at), Some(kind), Some(from), Some(to)) = (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(corrupt("ticket history", step));
        };
        let need = |v: &str| {
            (!v.is_empty())
                .then(|| v.to_string())
                .ok_or_else(|| corrupt("ticket history", step))
        };
        let account = |v: &str| (!v.is_empty()).then(|| parse_user(v)).transpose();
        let change = match kind {
            "status_changed" => Step::Status {
                to: enum_from("status", to)?,
                automated: from == AUTOMATED,
            },
            "routed" => Step::Department {
                from: need(from)?,
                to: need(to)?,
            },
            "priority_changed" => Step::Priority {
                from: enum_from("priority", from)?,
                to: enum_from("priority", to)?,
            },
            "assigned" => Step::Assignee {
                from: account(from)?,
                to: account(to)?,
            },
            // A kind written by a later version: not one these figures follow.
            _ => continue,
        };
        out.push((super::parse_ts(at)?, change));
    }
    Ok(out)
}

/// Decodes a row of [`OUTBOX_COLUMNS`]; `reclaimed` says whether a claim found an old lease.
pub(crate) fn outbox_from_row(r: &impl SqlRow, reclaimed: bool) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: r.required_int("id")?,
        reclaimed,
        outgoing: Outgoing {
            kind: enum_from("outbox kind", &r.required_text("kind")?)?,
            target: serde_json::from_str(&r.required_text("target")?)
                .map_err(|e| corrupt("target", e))?,
            ticket: r.int("ticket_id")?.map(TicketRef),
            message: r.json("payload")?,
        },
        status: r.required_text("status")?,
        attempts: r.required_int("attempts")?,
        last_error: r.text("last_error")?,
        platform_message_id: r.text("platform_message_id")?,
        created_at: r.required_time("created_at")?,
    })
}

/// Decodes a row of [`INBOX_COLUMNS`].
pub(crate) fn inbox_from_row(r: &impl SqlRow) -> Result<InboxRow, StoreError> {
    Ok(InboxRow {
        id: r.required_int("id")?,
        key: r.required_text("dedupe_key")?,
        platform: r.required_text("platform")?,
        payload: r.json("payload")?,
        attempts: r.required_int("attempts")?,
        status: r.required_text("status")?,
        last_error: r.text("last_error")?,
        received_at: r.required_time("received_at")?,
    })
}

/// `($1, $2, …), ($n+1, …)`: placeholders for `rows` rows of `cols` values.
fn values(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// Runs `INSERT … VALUES` for `rows` (each `cols` values long) in chunks, with `tail` after
/// each chunk's values (e.g. `RETURNING id`), and returns every row the statements returned.
pub(crate) async fn insert_rows<C: Conn>(
    conn: &mut C,
    head: &str,
    cols: usize,
    rows: Vec<Vec<Arg>>,
    tail: &str,
) -> Result<Vec<C::Row>, StoreError> {
    let mut out = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Arg>> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        let sql = format!("{head} VALUES {}{tail}", values(chunk.len(), cols));
        let args = chunk.into_iter().flatten().collect();
        out.extend(conn.fetch(sqlx::AssertSqlSafe(sql), args).await?);
    }
    Ok(out)
}

/// Whether full-text search leaves `word` (lowercase) out: PostgreSQL's English
/// configuration drops these, and SQLite's search drops the same, so both find the same
/// tickets ("the printer" finds what "printer" finds).
fn is_stop_word(word: &str) -> bool {
    static WORDS: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    WORDS
        .get_or_init(|| {
            include_str!("english.stop")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect()
        })
        .contains(word)
}

/// One audit entry to write: the ticket, who, what, when.
pub(crate) type EventRow<'a> = (TicketRef, Option<&'a UserRef>, &'a EventKind, DateTime<Utc>);

/// Writes audit entries with as few statements as possible.
pub(crate) async fn insert_events<C: Conn>(
    conn: &mut C,
    events: &[EventRow<'_>],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(events.len());
    for (ticket, actor, kind, at) in events {
        let data = serde_json::to_value(kind).map_err(|e| corrupt("event", e))?;
        let name = data["kind"].as_str().unwrap_or("unknown").to_string();
        rows.push(vec![
            Arg::from(ticket.0),
            Arg::from(*at),
            Arg::from(actor.map(|a| a.to_string())),
            Arg::from(name),
            json("event", &data)?,
        ]);
    }
    insert_rows(
        conn,
        "INSERT INTO ticket_events (ticket_id, at, actor, kind, data)",
        5,
        rows,
        "",
    )
    .await?;
    Ok(())
}

/// Points a claimed external key at the ticket opened for it (see `Store::external_claim`).
pub(crate) async fn link_external<C: Conn>(
    conn: &mut C,
    ticket: TicketRef,
    ext: &ExternalKey,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (source, key) = (ext.source.as_str(), ext.key.as_str());
    let linked = if ext.claimed {
        conn.exec(
            "UPDATE external_keys SET ticket_id = $1 WHERE source = $2 AND key = $3 \
             AND ticket_id IS NULL",
            args![ticket.0, source, key],
        )
        .await?
    } else {
        // The caller found the key free in this transaction (see `held_external_keys`).
        conn.exec(
            "INSERT INTO external_keys (source, key, ticket_id, claimed_at) \
             VALUES ($1, $2, $3, $4)",
            args![source, key, ticket.0, at],
        )
        .await?
    };
    if linked == 1 {
        Ok(())
    } else {
        // The claim was taken over or released meanwhile: writing the ticket would make a
        // second one for the key.
        Err(StoreError::Conflict(ticket))
    }
}

/// What the external keys `keys` (source, key) already hold, read in the transaction that
/// would claim them: the ticket of each key that has one, `None` for a key another request
/// holds while it opens its ticket; a free key is absent.
pub(crate) async fn held_external_keys<C: Conn>(
    conn: &mut C,
    keys: &[(&str, &str)],
) -> Result<HashMap<(String, String), Option<Ticket>>, StoreError> {
    let mut out = HashMap::new();
    if keys.is_empty() {
        return Ok(out);
    }
    let mut args = Vec::with_capacity(keys.len() * 2);
    let mut terms = Vec::with_capacity(keys.len());
    for (source, key) in keys {
        terms.push(format!(
            "(source = ${} AND key = ${})",
            args.len() + 1,
            args.len() + 2
        ));
        args.push(Arg::from(*source));
        args.push(Arg::from(*key));
    }
    let rows = conn
        .fetch(
            sqlx::AssertSqlSafe(format!(
                "SELECT source, key, ticket_id FROM external_keys WHERE {}",
                terms.join(" OR ")
            )),
            args,
        )
        .await?;
    let mut ids = Vec::new();
    for r in &rows {
        let k = (r.required_text("source")?, r.required_text("key")?);
        let id = r.int("ticket_id")?;
        if let Some(id) = id {
            ids.push((k.clone(), id));
        }
        out.insert(k, None);
    }
    if !ids.is_empty() {
        let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let rows = conn
            .fetch(
                sqlx::AssertSqlSafe(format!(
                    "{}WHERE id IN ({})",
                    select_tickets!(""),
                    list.join(", ")
                )),
                ids.iter().map(|(_, id)| Arg::from(*id)).collect(),
            )
            .await?;
        let mut tickets: HashMap<i64, Ticket> = HashMap::new();
        for r in &rows {
            let t = ticket_from_row(r)?;
            tickets.insert(t.id.0, t);
        }
        for (k, id) in ids {
            let t = tickets
                .remove(&id)
                .ok_or_else(|| corrupt("external key", "a key of a ticket not stored"))?;
            out.insert(k, Some(t));
        }
    }
    Ok(out)
}

/// Queues outgoing messages at `at`; a message without a ticket takes `ticket`. Messages
/// queued together without a ticket (a digest's text and its chart) keep their order per
/// destination, like a ticket's do.
pub(crate) async fn insert_outbox<C: Conn>(
    conn: &mut C,
    ticket: Option<TicketRef>,
    outbox: Vec<Outgoing>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if outbox.is_empty() {
        return Ok(());
    }
    let batch = format!("batch:{}", uuid::Uuid::new_v4().simple());
    let rows = outbox
        .into_iter()
        .map(|o| outbox_values(o.ticket.or(ticket), &o, at, &batch))
        .collect::<Result<Vec<_>, _>>()?;
    insert_rows(conn, INSERT_OUTBOX, OUTBOX_WIDTH, rows, "").await?;
    Ok(())
}

/// The columns of a new outbox row, in the order of [`outbox_values`].
pub(crate) const INSERT_OUTBOX: &str = "INSERT INTO outbox (ticket_id, platform, kind, target, \
    payload, next_attempt_at, created_at, order_key)";

/// How many values [`outbox_values`] gives.
pub(crate) const OUTBOX_WIDTH: usize = 8;

/// What an outbox row is delivered in order with: the other rows of its ticket (or, without
/// one, of the `batch` it was queued with) to the same destination.
fn outbox_order_key(ticket: Option<TicketRef>, o: &Outgoing, batch: &str) -> String {
    match ticket {
        Some(t) => format!("ticket:{}:{}", t.0, o.target.destination()),
        None => format!("{batch}:{}", o.target.destination()),
    }
}

/// The values of one outbox row, in the column order of [`INSERT_OUTBOX`].
pub(crate) fn outbox_values(
    ticket: Option<TicketRef>,
    o: &Outgoing,
    at: DateTime<Utc>,
    batch: &str,
) -> Result<Vec<Arg>, StoreError> {
    let target = serde_json::to_string(&o.target).map_err(|e| corrupt("target", e))?;
    Ok(vec![
        Arg::from(ticket.map(|t| t.0)),
        Arg::from(o.target.platform().as_str()),
        Arg::from(enum_text(&o.kind)),
        Arg::from(target),
        json("message", &o.message)?,
        Arg::from(at),
        Arg::from(at),
        Arg::from(outbox_order_key(ticket, o, batch)),
    ])
}

/// Marks the inbox rows stored under `keys` done, in the transaction that completed them.
pub(crate) async fn mark_inbox_done<C: Conn, B: Backend>(
    conn: &mut C,
    keys: Vec<String>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE inbox SET status = 'done', done_at = $1, lease_owner = NULL, lease_until = NULL \
         WHERE {}",
        B::in_list("dedupe_key", "$2")
    );
    conn.exec(sqlx::AssertSqlSafe(sql), args![at, keys]).await?;
    Ok(())
}

/// The statement and arguments of [`Store::recent_flags`]: the creation events, by any of
/// `accounts` since `since`, of tickets made from a flagged message.
fn recent_flags_query<B: Backend>(
    accounts: &[UserRef],
    since: DateTime<Utc>,
) -> (String, Vec<Arg>) {
    let accounts: Vec<String> = accounts.iter().map(|a| a.to_string()).collect();
    let sql = format!(
        "SELECT e.at FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id \
         WHERE e.kind = 'created' AND {} AND e.at >= $2 AND t.source_message IS NOT NULL \
         ORDER BY e.at",
        B::in_list("e.actor", "$1")
    );
    (sql, args![accounts, since])
}

/// [`Store::recent_flags`] inside a transaction (a ticket's creation checking its quota).
pub(crate) async fn recent_flags_in<C: Conn, B: Backend>(
    conn: &mut C,
    accounts: &[UserRef],
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let (sql, args) = recent_flags_query::<B>(accounts, since);
    conn.fetch(sqlx::AssertSqlSafe(sql), args)
        .await?
        .iter()
        .map(|r| r.required_time("at"))
        .collect()
}

/// A flagged message's identity: platform, channel and message id.
pub(crate) type SourceKey = (String, String, String);

/// The identity of a flagged message.
pub(crate) fn key_of(s: &Source) -> SourceKey {
    (
        s.channel.platform.as_str().to_string(),
        s.channel.id.clone(),
        s.message_id.clone(),
    )
}

/// The identity of the message a new ticket comes from, if it was flagged.
pub(crate) fn source_key(t: &crate::core::ticket::NewTicket) -> Option<SourceKey> {
    t.source.as_ref().map(key_of)
}

/// The tickets already made from any of these flagged messages.
pub(crate) async fn tickets_by_sources<C: Conn>(
    conn: &mut C,
    keys: &[SourceKey],
) -> Result<Vec<Ticket>, StoreError> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    // One equality triple per message, OR-ed: each is answered from the unique index (a
    // row-value `IN (VALUES …)` makes SQLite scan the whole table).
    let mut sql = String::from(select_tickets!("WHERE "));
    let mut params = Vec::with_capacity(keys.len() * 3);
    for (i, (p, c, m)) in keys.iter().enumerate() {
        if i > 0 {
            sql.push_str(" OR ");
        }
        let n = i * 3;
        sql.push_str(&format!(
            "(source_platform = ${} AND source_channel = ${} AND source_message = ${})",
            n + 1,
            n + 2,
            n + 3
        ));
        params.extend([Arg::from(p), Arg::from(c), Arg::from(m)]);
    }
    conn.fetch(sqlx::AssertSqlSafe(sql), params)
        .await?
        .iter()
        .map(ticket_from_row)
        .collect()
}

/// The columns of `tickets` a new ticket is written with, in the order of [`new_ticket_values`].
pub(crate) const NEW_TICKET_COLUMNS: &str = "INSERT INTO tickets (version, title, body, \
    source_platform, source_channel, source_message, source_thread, source_permalink, \
    source_text, source_author, source_author_name, reporter, department, priority, tags, \
    status, created_at, updated_at, origin)";

/// How many values [`new_ticket_values`] gives.
pub(crate) const NEW_TICKET_WIDTH: usize = 19;

/// The values of a new ticket's row.
pub(crate) fn new_ticket_values(
    t: &crate::core::ticket::NewTicket,
) -> Result<Vec<Arg>, StoreError> {
    let src = t.source.as_ref();
    Ok(vec![
        Arg::from(1i64),
        Arg::from(&t.title),
        Arg::from(&t.body),
        Arg::from(src.map(|s| s.channel.platform.as_str())),
        Arg::from(src.map(|s| s.channel.id.clone())),
        Arg::from(src.map(|s| s.message_id.clone())),
        Arg::from(src.and_then(|s| s.thread_id.clone())),
        Arg::from(src.and_then(|s| s.permalink.clone())),
        Arg::from(src.map(|s| s.original_text.clone())),
        Arg::from(src.map(|s| s.author.to_string())),
        Arg::from(src.and_then(|s| s.author_name.clone())),
        Arg::from(t.reporter.to_string()),
        Arg::from(&t.department),
        Arg::from(enum_text(&t.priority)),
        json("tags", &t.tags)?,
        Arg::from("open"),
        Arg::from(t.created_at),
        Arg::from(t.created_at),
        Arg::from(enum_text(&t.origin)),
    ])
}

/// Finishes a claim (an `INSERT … ON CONFLICT DO NOTHING` of `claimed` rows in `tx`): the
/// winner queues `outbox` and commits; a lost claim rolls back and queues nothing.
async fn queue_if_claimed<T: WriteTx>(
    mut tx: T,
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

/// How many typed words a ticket search matches against titles; more are ignored.
const SEARCH_WORDS: usize = 4;

/// A ticket search as [`TicketFilter::search`] describes it, as `LIKE` patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Search {
    /// `12%` for `T-12`: ticket numbers starting with the typed digits.
    number: Option<String>,
    /// `%word%` for each typed word (lowercase, wildcards escaped), at most [`SEARCH_WORDS`].
    words: Vec<Option<String>>,
}

impl Search {
    /// `None` when nothing but an optional `T-` or `#` was typed.
    fn parse(typed: &str) -> Option<Self> {
        let typed = typed.trim();
        let rest = typed
            .strip_prefix("T-")
            .or_else(|| typed.strip_prefix("t-"))
            .or_else(|| typed.strip_prefix('#'))
            .unwrap_or(typed)
            .trim();
        if rest.is_empty() {
            return None;
        }
        let escape = |w: &str| {
            w.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        };
        Some(Self {
            number: rest
                .chars()
                .all(|c| c.is_ascii_digit())
                .then(|| format!("{rest}%")),
            words: typed
                .split_whitespace()
                .take(SEARCH_WORDS)
                .map(|w| Some(format!("%{}%", escape(w))))
                .collect(),
        })
    }
}

/// `LIMIT` for "at most `limit`, or every row when it is 0 or less".
fn limit_or_all(limit: i64) -> i64 {
    if limit > 0 {
        limit
    } else {
        i64::MAX
    }
}

fn grant_from_row(r: &impl SqlRow) -> Result<WebGrant, StoreError> {
    Ok(WebGrant {
        user: parse_user(&r.required_text("account")?)?,
        roles: serde_json::from_str(&r.required_text("roles")?).map_err(|e| corrupt("roles", e))?,
    })
}

fn kudos_from_row(r: &impl SqlRow) -> Result<Kudos, StoreError> {
    Ok(Kudos {
        id: r.required_int("id")?,
        giver: parse_user(&r.required_text("giver")?)?,
        receiver: parse_user(&r.required_text("receiver")?)?,
        receiver_key: r.required_text("receiver_key")?,
        reason: r.required_text("reason")?,
        ticket: r.int("ticket_id")?.map(TicketRef),
        created_at: r.required_time("created_at")?,
    })
}

fn score(r: &impl SqlRow) -> Result<u8, StoreError> {
    u8::try_from(r.required_int("score")?).map_err(|e| corrupt("csat score", e))
}

fn metric_values(m: &NewMetric) -> Vec<Arg> {
    args![
        m.name.as_str(),
        m.value,
        m.department.as_deref(),
        m.note.as_deref(),
        m.recorded_by.as_ref().map(|u| u.to_string()),
        m.at,
        m.received_at,
    ]
}

const INSERT_METRIC: &str =
    "INSERT INTO metric_samples (name, value, department, note, recorded_by, recorded_at, received_at)";

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    fn wake(&self) -> &Wake {
        &self.wake
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.db.migrate().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.read("SELECT 1", vec![]).await?;
        Ok(())
    }

    async fn create_ticket(&self, req: CreateTicket) -> Result<Created, StoreError> {
        let _wake = WakeOnDrop(&self.wake.outbox);
        self.db.create_ticket(req).await
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
        // The changes digests follow are appended to the ticket's own history as well.
        let steps = history_steps(&events, actor, t.updated_at);
        let mut tx = self.db.write().await?;
        let values = vec![
            Arg::from(t.version),
            Arg::from(&t.title),
            Arg::from(&t.body),
            Arg::from(&t.department),
            Arg::from(enum_text(&t.priority)),
            json("tags", &t.tags)?,
            Arg::from(t.assignee.as_ref().map(|a| a.to_string())),
            Arg::from(enum_text(&t.status)),
            Arg::from(t.updated_at),
            Arg::from(t.first_response_at),
            Arg::from(t.resolved_at),
            Arg::from(t.closed_at),
            Arg::from(t.waiting_since),
            Arg::from(t.sla_paused.num_seconds()),
            Arg::from(t.id.0),
            Arg::from(expected_version),
            Arg::from(steps),
            Arg::from(t.staff_at),
        ];
        let done = tx
            .exec(
                "UPDATE tickets SET version = $1, title = $2, body = $3, department = $4, \
                 priority = $5, tags = $6, assignee = $7, status = $8, updated_at = $9, \
                 first_response_at = $10, resolved_at = $11, closed_at = $12, \
                 waiting_since = $13, sla_paused_seconds = $14, history = history || $17, \
                 staff_at = $18 WHERE id = $15 AND version = $16",
                values,
            )
            .await?;
        if done != 1 {
            return Err(StoreError::Conflict(t.id));
        }
        let rows: Vec<EventRow<'_>> = events
            .iter()
            .map(|e| (t.id, actor, e, t.updated_at))
            .collect();
        insert_events(&mut tx, &rows).await?;
        insert_outbox(&mut tx, Some(t.id), outbox, t.updated_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ticket(&self, id: TicketRef) -> Result<Option<Ticket>, StoreError> {
        let rows = self
            .db
            .read(select_tickets!("WHERE id = $1"), args![id.0])
            .await?;
        rows.first().map(ticket_from_row).transpose()
    }

    async fn ticket_by_source(
        &self,
        channel: &ChannelRef,
        message_id: &str,
    ) -> Result<Option<Ticket>, StoreError> {
        let rows = self
            .db
            .read(
                select_tickets!(
                    "WHERE source_platform = $1 AND source_channel = $2 AND source_message = $3"
                ),
                args![channel.platform.as_str(), &channel.id, message_id],
            )
            .await?;
        rows.first().map(ticket_from_row).transpose()
    }

    async fn ticket_by_bot_message(
        &self,
        channel: &ChannelRef,
        message_id: &str,
    ) -> Result<Option<Ticket>, StoreError> {
        let rows = self
            .db
            .read(
                "SELECT ticket_id, target FROM outbox WHERE platform_message_id = $1 \
                 AND ticket_id IS NOT NULL ORDER BY id DESC",
                args![message_id],
            )
            .await?;
        for r in &rows {
            let target: Target = serde_json::from_str(&r.required_text("target")?)
                .map_err(|e| corrupt("outbox target", e))?;
            if matches!(&target, Target::Channel { channel: c, .. } if c == channel) {
                if let Some(id) = r.int("ticket_id")? {
                    return self.ticket(TicketRef(id)).await;
                }
            }
        }
        Ok(None)
    }

    async fn add_thread_reply(&self, reply: &ThreadReply) -> Result<bool, StoreError> {
        let added = self
            .db
            .run(
                "INSERT INTO ticket_replies (ticket_id, channel, message_id, author, text, at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel, message_id) DO NOTHING",
                args![
                    reply.ticket.0,
                    reply.channel.to_string(),
                    &reply.message_id,
                    reply.author.to_string(),
                    &reply.text,
                    reply.at
                ],
            )
            .await?;
        Ok(added > 0)
    }

    async fn change_thread_reply(
        &self,
        channel: &ChannelRef,
        message_id: &str,
        text: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<TicketRef>, StoreError> {
        let changed = match text {
            Some(text) => {
                self.db
                    .run(
                        "UPDATE ticket_replies SET text = $3, edited_at = $4 \
                         WHERE channel = $1 AND message_id = $2",
                        args![channel.to_string(), message_id, text, at],
                    )
                    .await?
            }
            None => {
                self.db
                    .run(
                        "UPDATE ticket_replies SET deleted_at = $3 \
                         WHERE channel = $1 AND message_id = $2 AND deleted_at IS NULL",
                        args![channel.to_string(), message_id, at],
                    )
                    .await?
            }
        };
        if changed == 0 {
            return Ok(None);
        }
        let rows = self
            .db
            .read(
                "SELECT ticket_id FROM ticket_replies WHERE channel = $1 AND message_id = $2",
                args![channel.to_string(), message_id],
            )
            .await?;
        rows.first()
            .map(|r| r.required_int("ticket_id").map(TicketRef))
            .transpose()
    }

    async fn add_web_link(
        &self,
        token_hash: &str,
        grant: &WebGrant,
        next: Option<&str>,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let roles = serde_json::to_string(&grant.roles).map_err(|e| corrupt("roles", e))?;
        let mut tx = self.db.write().await?;
        // Kept a day past expiry, so a late click is told "expired" rather than "unknown".
        tx.exec(
            "DELETE FROM web_links WHERE expires_at < $1",
            args![at - chrono::Duration::days(1)],
        )
        .await?;
        tx.exec(
            "INSERT INTO web_links (token_hash, account, roles, next, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            args![
                token_hash,
                grant.user.to_string(),
                roles,
                next,
                at,
                expires_at
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_web_link(
        &self,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<WebLink, StoreError> {
        let mut tx = self.db.write().await?;
        // Found unused and marked used in one statement: two clicks cannot both sign in.
        let taken = tx
            .exec(
                "UPDATE web_links SET used_at = $2 \
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
                args![token_hash, at],
            )
            .await?;
        let rows = tx
            .fetch(
                "SELECT account, roles, next, used_at FROM web_links WHERE token_hash = $1",
                args![token_hash],
            )
            .await?;
        tx.commit().await?;
        let Some(r) = rows.first() else {
            return Ok(WebLink::Unknown);
        };
        Ok(if taken == 1 {
            WebLink::Valid {
                grant: grant_from_row(r)?,
                next: r.text("next")?,
            }
        } else if r.time("used_at")?.is_some() {
            WebLink::Used
        } else {
            WebLink::Expired
        })
    }

    async fn add_web_session(
        &self,
        id_hash: &str,
        session: &WebSession,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let roles = serde_json::to_string(&session.grant.roles).map_err(|e| corrupt("roles", e))?;
        let mut tx = self.db.write().await?;
        tx.exec("DELETE FROM web_sessions WHERE expires_at <= $1", args![at])
            .await?;
        tx.exec(
            "INSERT INTO web_sessions (id_hash, account, roles, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            args![
                id_hash,
                session.grant.user.to_string(),
                roles,
                session.csrf.as_str(),
                at,
                session.expires_at
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn web_session(
        &self,
        id_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<WebSession>, StoreError> {
        let rows = self
            .db
            .read(
                "SELECT account, roles, csrf, expires_at FROM web_sessions \
                 WHERE id_hash = $1 AND expires_at > $2",
                args![id_hash, at],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(WebSession {
                    grant: grant_from_row(r)?,
                    csrf: r.required_text("csrf")?,
                    expires_at: r.required_time("expires_at")?,
                })
            })
            .transpose()
    }

    async fn end_web_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.db
            .run(
                "DELETE FROM web_sessions WHERE id_hash = $1",
                args![id_hash],
            )
            .await?;
        Ok(())
    }

    async fn thread_replies(&self, ticket: TicketRef) -> Result<Vec<ThreadReply>, StoreError> {
        // Replies are kept concurrently: written in the same millisecond, the platform's own
        // ids (Slack timestamps, Discord snowflakes) say which came first.
        let rows = self
            .db
            .read(
                "SELECT channel, message_id, author, text, at, edited_at, deleted_at \
                 FROM ticket_replies WHERE ticket_id = $1 \
                 ORDER BY at, length(message_id), message_id",
                args![ticket.0],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ThreadReply {
                    ticket,
                    channel: r
                        .required_text("channel")?
                        .parse()
                        .map_err(|e| corrupt("channel", e))?,
                    message_id: r.required_text("message_id")?,
                    author: parse_user(&r.required_text("author")?)?,
                    text: r.required_text("text")?,
                    at: r.required_time("at")?,
                    edited_at: r.time("edited_at")?,
                    deleted_at: r.time("deleted_at")?,
                })
            })
            .collect()
    }

    async fn tickets_in_thread(
        &self,
        channel: &ChannelRef,
        thread: &str,
    ) -> Result<Vec<Ticket>, StoreError> {
        let rows = self
            .db
            .read(
                select_tickets!(
                    "WHERE source_channel = $2 AND source_thread = $3 AND source_platform = $1 \
                     ORDER BY id"
                ),
                args![channel.platform.as_str(), &channel.id, thread],
            )
            .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    async fn recent_flags(
        &self,
        accounts: &[UserRef],
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let (sql, args) = recent_flags_query::<B>(accounts, since);
        self.db
            .read(sqlx::AssertSqlSafe(sql), args)
            .await?
            .iter()
            .map(|r| r.required_time("at"))
            .collect()
    }

    async fn list_tickets(&self, f: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        let statuses: Vec<String> = f.statuses.iter().map(enum_text).collect();
        let assignees: Vec<String> = f.assignees.iter().map(|a| a.to_string()).collect();
        let (scope_departments, scope_reporters) =
            f.within.as_ref().map_or((vec![], vec![]), |s| {
                (
                    s.departments.clone(),
                    s.reporters
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>(),
                )
            });
        let search = f.search.as_deref().and_then(Search::parse);
        let text_words: Vec<String> = f.text.as_deref().map_or(vec![], |t| {
            t.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .filter(|w| !is_stop_word(w))
                .collect()
        });
        let mut words = search.as_ref().map_or(vec![], |s| s.words.clone());
        words.resize(SEARCH_WORDS, None);
        // Each word is its own optional parameter, so one statement text serves any search.
        let word_terms: Vec<String> = (0..SEARCH_WORDS)
            .map(|i| {
                let p = 13 + i;
                format!("(${p} IS NULL OR LOWER(title) LIKE ${p} ESCAPE '\\')")
            })
            .collect();
        // The web view's filters, each only when set, so each combination gets a plan that
        // can use the indexes it needs; their parameters follow the fixed ones.
        let first_extra = 13 + SEARCH_WORDS + usize::from(!text_words.is_empty());
        let mut extra_sql = String::new();
        let mut extra: Vec<Arg> = Vec::new();
        let mut cond = |make: &dyn Fn(&str) -> String, value: Arg| {
            let p = format!("${}", first_extra + extra.len());
            extra_sql.push_str(&format!(" AND {}", make(&p)));
            extra.push(value);
        };
        if !f.priorities.is_empty() {
            let v: Vec<String> = f.priorities.iter().map(enum_text).collect();
            cond(&|p| B::in_list("priority", p), Arg::from(v));
        }
        if let Some(tag) = &f.tag {
            cond(&|p| B::has_tag(p), Arg::from(tag.as_str()));
        }
        if !f.origins.is_empty() {
            let v: Vec<String> = f.origins.iter().map(enum_text).collect();
            cond(&|p| B::in_list("origin", p), Arg::from(v));
        }
        if let Some(from) = f.created_from {
            cond(&|p| format!("created_at >= {p}"), Arg::from(from));
        }
        if let Some(to) = f.created_to {
            cond(&|p| format!("created_at < {p}"), Arg::from(to));
        }
        if let Some(before) = f.before {
            cond(&|p| format!("id < {p}"), Arg::from(before.0));
        }
        if f.unassigned {
            extra_sql.push_str(" AND assignee IS NULL");
        }
        // The statement, with one more condition (a search window) or none.
        let statement = |window: &str| {
            format!(
                concat!(
                    select_tickets!(""),
                    "WHERE ($1 IS NULL OR department = $1) \
                       AND ($2 = 0 OR {}) AND ($4 = 0 OR {}) \
                       AND ($7 IS NULL OR status IN ('open', 'in_progress', 'waiting_on_customer') \
                            OR created_at >= $7 OR resolved_at >= $7 OR closed_at >= $7) \
                       AND ($8 = 0 OR {} OR {}) \
                       AND ($11 = 0 OR CAST(id AS TEXT) LIKE $12 OR ({})) {}{}{} \
                     ORDER BY id DESC LIMIT $6"
                ),
                B::in_list("status", "$3"),
                B::in_list("assignee", "$5"),
                B::in_list("department", "$9"),
                B::in_list("reporter", "$10"),
                word_terms.join(" AND "),
                // Only with words to find: a full-text match has no "no filter" value.
                if text_words.is_empty() {
                    String::new()
                } else {
                    format!(
                        "AND {}",
                        B::matches_words(&format!("${}", 13 + SEARCH_WORDS))
                    )
                },
                extra_sql,
                window,
            )
        };
        let mut args = args![
            f.department.as_deref(),
            statuses.len() as i64,
            statuses,
            assignees.len() as i64,
            assignees,
            limit_or_all(f.limit),
            f.active_or_since,
            i64::from(f.within.is_some()),
            scope_departments,
            scope_reporters,
            i64::from(search.is_some()),
            search.as_ref().and_then(|s| s.number.clone()),
        ];
        args.extend(words.into_iter().map(Arg::from));
        if !text_words.is_empty() {
            args.push(Arg::from(B::fulltext_query(&text_words)));
        }
        args.extend(extra);
        if text_words.is_empty() {
            let rows = self
                .db
                .read(sqlx::AssertSqlSafe(statement("")), args)
                .await?;
            return rows.iter().map(ticket_from_row).collect();
        }
        // A word search looks among the newest tickets first (see `Backend::SEARCH_WINDOWS`):
        // a window holding a whole page answers; otherwise the next, larger one is asked.
        if f.limit > 0 && !B::SEARCH_WINDOWS.is_empty() {
            let top = match f.before {
                Some(b) => b.0,
                None => {
                    let rows = self
                        .db
                        .read(
                            "SELECT COALESCE(MAX(id), 0) + 1 AS top FROM tickets",
                            vec![],
                        )
                        .await?;
                    rows.first()
                        .map_or(Ok(None), |r| r.int("top"))?
                        .unwrap_or(1)
                }
            };
            for window in B::SEARCH_WINDOWS {
                let from = top - window;
                if from <= 1 {
                    break;
                }
                let windowed = statement(&format!(" AND id >= ${}", args.len() + 1));
                let mut windowed_args = args.clone();
                windowed_args.push(Arg::from(from));
                let rows = self.db.read_search(windowed, windowed_args).await?;
                if rows.len() as i64 >= f.limit {
                    return rows.iter().map(ticket_from_row).collect();
                }
            }
        }
        let rows = self.db.read_search(statement(""), args).await?;
        rows.iter().map(ticket_from_row).collect()
    }

    async fn events(&self, id: TicketRef) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = self
            .db
            .read(
                "SELECT at, actor, data FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
                args![id.0],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TicketEvent {
                    ticket: id,
                    at: r.required_time("at")?,
                    actor: r.text("actor")?.as_deref().map(parse_user).transpose()?,
                    kind: r.json("data")?,
                })
            })
            .collect()
    }

    async fn external_claim(
        &self,
        source: &str,
        key: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<ExternalClaim, StoreError> {
        let mut tx = self.db.write().await?;
        let inserted = tx
            .exec(
                "INSERT INTO external_keys (source, key, ticket_id, claimed_at) \
                 VALUES ($1, $2, NULL, $3) ON CONFLICT (source, key) DO NOTHING",
                args![source, key, now],
            )
            .await?;
        if inserted == 1 {
            tx.commit().await?;
            return Ok(ExternalClaim::Claimed);
        }
        let rows = tx
            .fetch(
                "SELECT ticket_id, claimed_at, state, state_at FROM external_keys \
                 WHERE source = $1 AND key = $2",
                args![source, key],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| corrupt("external key", "a conflict without a row"))?;
        let outcome = match row.int("ticket_id")? {
            Some(id) => ExternalClaim::Ticket(ExternalTicket {
                id: TicketRef(id),
                resolved: row.text("state")?.map(|s| s == "resolved"),
                state_at: row.time("state_at")?,
            }),
            None if row.required_time("claimed_at")? < stale_before => {
                let taken = tx
                    .exec(
                        "UPDATE external_keys SET claimed_at = $3 WHERE source = $1 AND key = $2 \
                         AND ticket_id IS NULL AND claimed_at < $4",
                        args![source, key, now, stale_before],
                    )
                    .await?;
                if taken == 1 {
                    ExternalClaim::Claimed
                } else {
                    ExternalClaim::Busy
                }
            }
            None => ExternalClaim::Busy,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn external_release(&self, source: &str, key: &str) -> Result<(), StoreError> {
        self.db
            .run(
                "DELETE FROM external_keys WHERE source = $1 AND key = $2 AND ticket_id IS NULL",
                args![source, key],
            )
            .await?;
        Ok(())
    }

    async fn external_state(
        &self,
        source: &str,
        keys: &[String],
        ticket: Option<TicketRef>,
        resolved: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let state = if resolved { "resolved" } else { "firing" };
        self.db
            .run(
                sqlx::AssertSqlSafe(format!(
                    "UPDATE external_keys SET state = $1, state_at = $2, \
                     ticket_id = COALESCE(ticket_id, $3) WHERE source = $4 AND {}",
                    B::in_list("key", "$5")
                )),
                args![state, at, ticket.map(|t| t.0), source, keys.to_vec()],
            )
            .await?;
        Ok(())
    }

    async fn external_reclaim(
        &self,
        source: &str,
        key: &str,
        from: TicketRef,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let freed = self
            .db
            .run(
                "UPDATE external_keys SET ticket_id = NULL, claimed_at = $1, state = NULL, \
                 state_at = NULL WHERE source = $2 AND key = $3 AND ticket_id = $4",
                args![now, source, key, from.0],
            )
            .await?;
        Ok(freed == 1)
    }

    async fn inbox_insert(
        &self,
        key: &str,
        order: Option<&str>,
        platform: &str,
        payload: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _wake = WakeOnDrop(&self.wake.inbox);
        let done = self
            .db
            .run(
                "INSERT INTO inbox (dedupe_key, platform, payload, next_attempt_at, received_at, \
                 order_key) VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (dedupe_key) DO NOTHING",
                vec![
                    Arg::from(key),
                    Arg::from(platform),
                    json("inbox payload", payload)?,
                    Arg::from(at),
                    Arg::from(order),
                ],
            )
            .await?;
        Ok(done == 1)
    }

    async fn inbox_claim(
        &self,
        owner: &str,
        platforms: &[Platform],
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<InboxRow>, StoreError> {
        self.db
            .inbox_claim(owner, platforms, now, lease, limit)
            .await
    }

    async fn inbox_retry(
        &self,
        id: i64,
        owner: &str,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done = self
            .db
            .run(
                "UPDATE inbox SET next_attempt_at = $1, last_error = $2, lease_owner = NULL, \
                 lease_until = NULL WHERE id = $3 AND status = 'pending' AND lease_owner = $4",
                args![next_at, error, id, owner],
            )
            .await?;
        Ok(done == 1)
    }

    async fn inbox_finish(
        &self,
        id: i64,
        owner: &str,
        outcome: InboxOutcome,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let status = match outcome {
            InboxOutcome::Done => "done",
            InboxOutcome::Failed => "failed",
        };
        let done = self
            .db
            .run(
                "UPDATE inbox SET status = $1, last_error = $2, done_at = $3, lease_owner = NULL, \
                 lease_until = NULL WHERE id = $4 AND status = 'pending' AND lease_owner = $5",
                args![status, note, now, id, owner],
            )
            .await?;
        Ok(done == 1)
    }

    async fn inbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<InboxRow>, StoreError> {
        let rows = self
            .db
            .read(
                sqlx::AssertSqlSafe(format!(
                    "SELECT {INBOX_COLUMNS} FROM inbox WHERE ($1 IS NULL OR status = $1) \
                     ORDER BY id LIMIT $2"
                )),
                args![status, limit_or_all(limit)],
            )
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
        self.db
            .outbox_claim(owner, platforms, now, lease, limit)
            .await
    }

    async fn outbox_sent(
        &self,
        id: i64,
        owner: &str,
        message_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = self
            .db
            .run(
                "UPDATE outbox SET status = 'sent', platform_message_id = $1, sent_at = $2, \
                 last_error = NULL, lease_owner = NULL, lease_until = NULL \
                 WHERE id = $3 AND status = 'pending' AND lease_owner = $4",
                args![message_id, now, id, owner],
            )
            .await?;
        Ok(done == 1)
    }

    async fn outbox_retry(
        &self,
        id: i64,
        owner: &str,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done = self
            .db
            .run(
                "UPDATE outbox SET next_attempt_at = $1, last_error = $2, lease_owner = NULL, \
                 lease_until = NULL WHERE id = $3 AND status = 'pending' AND lease_owner = $4",
                args![next_at, error, id, owner],
            )
            .await?;
        Ok(done == 1)
    }

    async fn outbox_defer(
        &self,
        id: i64,
        owner: &str,
        next_at: DateTime<Utc>,
        why: &str,
    ) -> Result<bool, StoreError> {
        let done = self
            .db
            .run(
                "UPDATE outbox SET next_attempt_at = $1, last_error = $2, lease_owner = NULL, \
                 lease_until = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
                 WHERE id = $3 AND status = 'pending' AND lease_owner = $4",
                args![next_at, why, id, owner],
            )
            .await?;
        Ok(done == 1)
    }

    async fn outbox_dead(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = self
            .db
            .run(
                "UPDATE outbox SET status = 'failed', last_error = $1, lease_owner = NULL, \
                 lease_until = NULL, failed_at = $4 \
                 WHERE id = $2 AND status = 'pending' AND lease_owner = $3",
                args![error, id, owner, now],
            )
            .await?;
        Ok(done == 1)
    }

    async fn outbox_requeue(&self, ids: &[i64], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = format!(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, \
             failed_at = NULL WHERE status = 'failed' AND ($2 = 0 OR {})",
            B::in_list("id", "$3")
        );
        self.db
            .run(
                sqlx::AssertSqlSafe(sql),
                args![now, ids.len() as i64, ids.to_vec()],
            )
            .await
    }

    async fn alert_message_id(
        &self,
        ticket: TicketRef,
        target: &Target,
    ) -> Result<Option<String>, StoreError> {
        let target = serde_json::to_string(target).map_err(|e| corrupt("target", e))?;
        let rows = self
            .db
            .read(
                "SELECT platform_message_id FROM outbox WHERE ticket_id = $1 AND kind = 'alert' \
                 AND target = $2 AND status = 'sent' ORDER BY id DESC LIMIT 1",
                args![ticket.0, target],
            )
            .await?;
        match rows.first() {
            Some(r) => r.text("platform_message_id"),
            None => Ok(None),
        }
    }

    async fn outbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = self
            .db
            .read(
                sqlx::AssertSqlSafe(format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 IS NULL OR status = $1) \
                     ORDER BY id LIMIT $2"
                )),
                args![status, limit_or_all(limit)],
            )
            .await?;
        rows.iter().map(|r| outbox_from_row(r, false)).collect()
    }

    async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self
            .db
            .read(
                "SELECT status, COUNT(*) AS n FROM outbox GROUP BY status ORDER BY status",
                vec![],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.required_text("status")?, r.required_int("n")?)))
            .collect()
    }

    async fn enqueue(&self, outbox: Vec<Outgoing>, at: DateTime<Utc>) -> Result<(), StoreError> {
        let _wake = WakeOnDrop(&self.wake.outbox);
        let mut tx = self.db.write().await?;
        insert_outbox(&mut tx, None, outbox, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_saved_reply(&self, r: &SavedReply) -> Result<bool, StoreError> {
        let department = r.department.as_deref().unwrap_or("");
        let mut tx = self.db.write().await?;
        let values = || {
            args![
                r.name.as_str(),
                department,
                r.text.as_str(),
                r.updated_by.to_string(),
                r.updated_at,
            ]
        };
        let replaced = tx
            .exec(
                "UPDATE saved_replies SET text = $3, updated_by = $4, updated_at = $5 \
                 WHERE name = $1 AND department = $2",
                values(),
            )
            .await?;
        if replaced == 0 {
            // Two instances saving the same new name at once: the later one's text wins.
            tx.exec(
                "INSERT INTO saved_replies (name, department, text, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name, department) DO UPDATE \
                 SET text = $3, updated_by = $4, updated_at = $5",
                values(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(replaced > 0)
    }

    async fn saved_replies(&self) -> Result<Vec<SavedReply>, StoreError> {
        let rows = self
            .db
            .read(
                "SELECT name, department, text, updated_by, updated_at FROM saved_replies \
                 ORDER BY name, department = '', department",
                vec![],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SavedReply {
                    name: r.required_text("name")?,
                    department: Some(r.required_text("department")?).filter(|d| !d.is_empty()),
                    text: r.required_text("text")?,
                    updated_by: parse_user(&r.required_text("updated_by")?)?,
                    updated_at: r.required_time("updated_at")?,
                })
            })
            .collect()
    }

    async fn remove_saved_reply(
        &self,
        name: &str,
        department: Option<&str>,
    ) -> Result<bool, StoreError> {
        let removed = self
            .db
            .run(
                "DELETE FROM saved_replies WHERE name = $1 AND department = $2",
                args![name, department.unwrap_or("")],
            )
            .await?;
        Ok(removed > 0)
    }

    async fn add_kudos(&self, k: NewKudos) -> Result<Kudos, StoreError> {
        let rows = self
            .db
            .read(
                "INSERT INTO kudos (giver, giver_key, receiver, receiver_key, reason, created_at, \
                 ticket_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                args![
                    k.giver.to_string(),
                    &k.giver_key,
                    k.receiver.to_string(),
                    &k.receiver_key,
                    &k.reason,
                    k.at,
                    k.ticket.map(|t| t.0),
                ],
            )
            .await?;
        let id = rows
            .first()
            .ok_or_else(|| corrupt("kudos", "no id returned"))?
            .required_int("id")?;
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
        let rows = self
            .db
            .read(
                "SELECT id, giver, receiver, receiver_key, reason, ticket_id, created_at FROM kudos \
                 WHERE created_at >= $1 AND ($2 IS NULL OR receiver_key = $2) \
                 ORDER BY created_at DESC, id DESC",
                args![since, receiver_key],
            )
            .await?;
        rows.iter().map(kudos_from_row).collect()
    }

    async fn add_metric(&self, m: NewMetric) -> Result<MetricSample, StoreError> {
        let rows = self
            .db
            .read(
                sqlx::AssertSqlSafe(format!(
                    "{INSERT_METRIC} VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"
                )),
                metric_values(&m),
            )
            .await?;
        let id = rows
            .first()
            .ok_or_else(|| corrupt("metric", "no id returned"))?
            .required_int("id")?;
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
        let n = samples.len();
        let mut tx = self.db.write().await?;
        insert_rows(
            &mut tx,
            INSERT_METRIC,
            7,
            samples.iter().map(metric_values).collect(),
            "",
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn list_metrics(
        &self,
        name: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MetricSample>, StoreError> {
        let rows = self
            .db
            .read(
                "SELECT id, name, value, department, note, recorded_at FROM metric_samples \
                 WHERE recorded_at >= $1 AND ($2 IS NULL OR name = $2) \
                 ORDER BY recorded_at DESC, id DESC",
                args![since, name],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(MetricSample {
                    id: r.required_int("id")?,
                    name: r.required_text("name")?,
                    value: r.real("value")?,
                    department: r.text("department")?,
                    note: r.text("note")?,
                    recorded_at: r.required_time("recorded_at")?,
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
        let done = self
            .db
            .run(
                "INSERT INTO csat_responses (ticket_id, score, comment, responder, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ticket_id) DO NOTHING",
                args![
                    ticket.0,
                    i64::from(score),
                    comment,
                    responder.to_string(),
                    at
                ],
            )
            .await?;
        Ok(done == 1)
    }

    async fn digest_input(
        &self,
        since: DateTime<Utc>,
        to: DateTime<Utc>,
        departments: &[String],
    ) -> Result<DigestInput, StoreError> {
        let tickets = async {
            if departments.is_empty() {
                // The parts are read at once, each on its own connection (SQLite: its own
                // thread), so a whole organisation's history is read on every core.
                let mid = since + (to - since) / 2;
                let part = |p| self.db.digest_tickets(since, DigestSet::Part(p, mid));
                let (a, b, c) = tokio::try_join!(
                    part(DigestPart::OpenedBefore),
                    part(DigestPart::OpenedSince),
                    part(DigestPart::StillActive),
                )?;
                let mut out = a;
                out.extend(b);
                out.extend(c);
                return Ok(out);
            }
            // One query per department, each answered from that department's indexes, and the
            // tickets moved since: they may have been one of these departments' at an end.
            let mut out = Vec::new();
            for d in departments {
                out.extend(
                    self.db
                        .digest_tickets(since, DigestSet::Department(d))
                        .await?,
                );
            }
            let mut seen: std::collections::HashSet<TicketRef> = out.iter().map(|t| t.id).collect();
            for t in self.db.digest_tickets(since, DigestSet::Routed).await? {
                if seen.insert(t.id) {
                    out.push(t);
                }
            }
            Ok(out)
        };
        let csat = async {
            let rows = self
                .db
                .read(
                    "SELECT c.ticket_id, t.department, t.assignee, c.score, c.created_at \
                     FROM csat_responses c JOIN tickets t ON t.id = c.ticket_id \
                     WHERE c.created_at > $1 AND c.created_at <= $2",
                    args![since, to],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let sample = CsatSample {
                    ticket: TicketRef(r.required_int("ticket_id")?),
                    department: r.required_text("department")?,
                    assignee: r.text("assignee")?.as_deref().map(parse_user).transpose()?,
                    score: score(r)?,
                    at: r.required_time("created_at")?,
                };
                // A department's digest filters by the department at each period's end.
                out.push(sample);
            }
            Ok::<_, StoreError>(out)
        };
        let metrics = async {
            let rows = self
                .db
                .read(
                    // Counted by when measured, but only once it had arrived: a value sent
                    // late for a past period never changes a digest already posted.
                    "SELECT name, value, department, recorded_at, received_at \
                     FROM metric_samples \
                     WHERE recorded_at > $1 AND recorded_at <= $2 AND received_at <= $2",
                    args![since, to],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(MetricPoint {
                        name: r.required_text("name")?,
                        value: r.real("value")?,
                        department: r.text("department")?,
                        at: r.required_time("recorded_at")?,
                        received_at: r.required_time("received_at")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        };
        let knowledge = async {
            let rows = self
                .db
                .read(
                    // The condition is the partial index's own, so the index answers it.
                    "SELECT e.ticket_id, e.at, e.data, t.department, t.title, t.body \
                     FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id \
                     WHERE e.kind IN ('kb_suggested', 'kb_answered', 'kb_not_helpful') \
                     AND e.at > $1 AND e.at <= $2",
                    args![since, to],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let what = match r.json::<EventKind>("data")? {
                    EventKind::KbSuggested { articles } => KbWhat::Suggested(articles),
                    EventKind::KbAnswered { article } => KbWhat::Answered(article),
                    EventKind::KbNotHelpful { articles } => KbWhat::NotHelpful(articles),
                    _ => continue,
                };
                let text = matches!(&what, KbWhat::Suggested(a) if a.is_empty())
                    .then(|| -> Result<String, StoreError> {
                        Ok(format!(
                            "{}\n{}",
                            r.required_text("title")?,
                            r.required_text("body")?
                        ))
                    })
                    .transpose()?;
                out.push(KbEvent {
                    ticket: TicketRef(r.required_int("ticket_id")?),
                    department: r.required_text("department")?,
                    at: r.required_time("at")?,
                    what,
                    words: vec![],
                    text,
                });
            }
            Ok::<_, StoreError>(out)
        };
        // Four independent reads, on separate connections of the pool, at once.
        let (tickets, csat, metrics, knowledge) =
            tokio::try_join!(tickets, csat, metrics, knowledge)?;
        Ok(DigestInput {
            tickets,
            csat,
            metrics,
            knowledge,
        })
    }

    async fn csat(&self, ticket: TicketRef) -> Result<Option<Csat>, StoreError> {
        let rows = self
            .db
            .read(
                "SELECT ticket_id, score, comment, responder, created_at FROM csat_responses \
                 WHERE ticket_id = $1",
                args![ticket.0],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Csat {
            ticket: TicketRef(r.required_int("ticket_id")?),
            score: score(r)?,
            comment: r.text("comment")?,
            responder: parse_user(&r.required_text("responder")?)?,
            created_at: r.required_time("created_at")?,
        }))
    }

    async fn csat_comment(
        &self,
        ticket: TicketRef,
        responder: &UserRef,
        comment: &str,
    ) -> Result<bool, StoreError> {
        let done = self
            .db
            .run(
                "UPDATE csat_responses SET comment = $1 WHERE ticket_id = $2 AND responder = $3 \
                 AND comment IS NULL",
                args![comment, ticket.0, responder.to_string()],
            )
            .await?;
        Ok(done == 1)
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
        let mut tx = self.db.write().await?;
        let claimed = tx
            .exec(
                "INSERT INTO schedule_fires (schedule, fire_local, claimed_by, claimed_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (schedule, fire_local) DO NOTHING",
                args![schedule, fire_local, owner, at],
            )
            .await?;
        queue_if_claimed(tx, claimed, None, outbox, at).await
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
        let mut tx = self.db.write().await?;
        let claimed = tx
            .exec(
                "INSERT INTO sla_escalations (ticket_id, clock, level, claimed_by, claimed_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ticket_id, clock, level) DO NOTHING",
                args![ticket.0, clock, level, owner, at],
            )
            .await?;
        queue_if_claimed(tx, claimed, Some(ticket), outbox, at).await
    }

    async fn remember_names(
        &self,
        names: &[(UserRef, String)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.write().await?;
        for (user, name) in names {
            tx.exec(
                "INSERT INTO account_names (account, name, learned_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (account) DO UPDATE SET name = $2, learned_at = $3",
                args![user.to_string(), name.as_str(), at],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn account_names(&self) -> Result<Vec<(UserRef, String)>, StoreError> {
        let rows = self
            .db
            .read("SELECT account, name FROM account_names", vec![])
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_user(&r.required_text("account")?)?,
                    r.required_text("name")?,
                ))
            })
            .collect()
    }

    async fn claim_followup(
        &self,
        ticket: TicketRef,
        kind: &str,
        since: DateTime<Utc>,
        owner: &str,
        actor: &UserRef,
        event: EventKind,
        at: DateTime<Utc>,
        outbox: Vec<Outgoing>,
    ) -> Result<bool, StoreError> {
        let _wake = WakeOnDrop(&self.wake.outbox);
        // Claimed only while the ticket still stands as the tick saw it: a reply or a change
        // since then ended that wait or idle spell, and nothing is sent for it.
        let still = match kind {
            "remind" => "status = 'waiting_on_customer' AND waiting_since = $3",
            _ => "status IN ('open', 'in_progress') AND COALESCE(staff_at, created_at) = $3",
        };
        let mut tx = self.db.write().await?;
        let claimed = tx
            .exec(
                sqlx::AssertSqlSafe(format!(
                    "INSERT INTO followup_claims (ticket_id, kind, since, claimed_by, claimed_at) \
                     SELECT $1, $2, $3, $4, $5 \
                     WHERE EXISTS (SELECT 1 FROM tickets WHERE id = $1 AND {still}) \
                     ON CONFLICT (ticket_id, kind, since) DO NOTHING"
                )),
                args![ticket.0, kind, since, owner, at],
            )
            .await?;
        if claimed == 1 {
            insert_events(&mut tx, &[(ticket, Some(actor), &event, at)]).await?;
        }
        queue_if_claimed(tx, claimed, Some(ticket), outbox, at).await
    }

    async fn prunable(&self, what: Prunable, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let rows = self
            .db
            .read(sqlx::AssertSqlSafe(what.count_sql()), args![before])
            .await?;
        let n = match rows.first() {
            Some(r) => r.required_int("n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn prune(
        &self,
        what: Prunable,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError> {
        self.db
            .run(sqlx::AssertSqlSafe(what.delete_sql()), args![before, limit])
            .await
    }

    async fn oldest_kept(
        &self,
        what: Prunable,
        before: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let rows = self
            .db
            .read(sqlx::AssertSqlSafe(what.oldest_kept_sql()), args![before])
            .await?;
        match rows.first() {
            Some(r) => r.time("t"),
            None => Ok(None),
        }
    }

    async fn sync_people(&self, people: &[Person], at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        if let Some(lock) = B::lock_people() {
            tx.exec(lock, vec![]).await?;
        }
        // Accounts move between people when the config changes: clear links first so the
        // unique account columns never collide half-way through.
        tx.exec(
            "UPDATE people SET slack_id = NULL, discord_id = NULL",
            vec![],
        )
        .await?;
        for p in people {
            tx.exec(
                "INSERT INTO people (id, name, slack_id, discord_id, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 slack_id = excluded.slack_id, discord_id = excluded.discord_id, \
                 updated_at = excluded.updated_at",
                args![
                    &p.id.0,
                    &p.name,
                    p.slack.as_deref(),
                    p.discord.as_deref(),
                    at
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn backup(&self, path: &Path) -> Result<(), StoreError> {
        self.db.backup(path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_is_a_number_prefix_or_title_words_with_wildcards_escaped() {
        assert_eq!(Search::parse("  "), None);
        assert_eq!(Search::parse("T-"), None);
        assert_eq!(Search::parse("#"), None);
        let s = Search::parse("t-12").unwrap();
        assert_eq!(s.number.as_deref(), Some("12%"));
        assert_eq!(s.words, [Some("%t-12%".to_string())]);
        assert_eq!(Search::parse("4").unwrap().number.as_deref(), Some("4%"));
        let s = Search::parse("Refund 100%_off a\\b five six").unwrap();
        assert_eq!(s.number, None);
        assert_eq!(
            s.words,
            [
                Some("%refund%".to_string()),
                Some("%100\\%\\_off%".to_string()),
                Some("%a\\\\b%".to_string()),
                Some("%five%".to_string()),
            ],
            "lowercase, escaped, at most {SEARCH_WORDS} words"
        );
    }
}
