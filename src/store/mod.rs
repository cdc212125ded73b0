//! Persistence: one `Store` trait, each operation written once for both databases.
//!
//! Owns every SQL statement, the transaction boundaries (a ticket, its event and its outbox
//! rows are written together or not at all) and the wake-up signals workers subscribe to when
//! work is queued. Knows nothing of chat platforms, rules, use cases or workers: it stores the
//! core's neutral types. Layout: `sql` holds every operation, written once over `dialect`
//! (how a database binds values, reads rows and does what only it does); `sqlite` (the
//! embedded default: group commit, claims under the single writer) and `postgres` (what
//! several instances share: `SKIP LOCKED` claims, `ON CONFLICT` inserts) are those dialects.
//! One contract suite (`tests/api/store.rs`) runs on both.

mod dialect;
mod postgres;
mod prune;
mod restore;
mod sql;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::core::digest::DigestInput;
use crate::core::directory::Person;
use crate::core::message::{Outgoing, Target};
use crate::core::ticket::{EventKind, NewTicket, Origin, ThreadReply, Ticket, TicketEvent};
use crate::core::types::{ChannelRef, Platform, Priority, RoleRef, Status, TicketRef, UserRef};
use tokio::sync::Notify;

pub use postgres::{PgDb, PgStore};
pub use prune::Prunable;
pub use restore::restore;
pub use sql::SqlStore;
pub use sqlite::{SqliteDb, SqliteStore};

/// Storage failures. `Conflict` is expected under concurrency and retried by callers; the
/// rest are internal and never shown to chat users verbatim.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The ticket changed since it was read.
    #[error("{0} was changed at the same time by someone else")]
    Conflict(TicketRef),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be read back.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// A group commit failed as a whole; nothing of it was written.
    #[error("group commit failed: {0}")]
    Batch(String),
    /// The URL names no supported database, or the operation does not apply to it.
    #[error("{0}")]
    Unsupported(String),
}

/// A shared handle to whichever store the URL chose.
pub type DynStore = Arc<dyn Store>;

/// Opens the store the URL's scheme names: `sqlite://…` or `postgres://…`.
pub async fn open(url: &str) -> Result<DynStore, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::open(url).await?))
    } else {
        Err(StoreError::Unsupported(format!(
            "database URL must start with sqlite:// or postgres:// (got `{}`)",
            url.split(':').next().unwrap_or("")
        )))
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn parse_user(s: &str) -> Result<UserRef, StoreError> {
    s.parse().map_err(|e| corrupt("user", e))
}

/// A unit enum variant as stored: its serde name without quotes.
fn enum_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn enum_from<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    // Straight from the text: digests read several per ticket, and a JSON value would cost an
    // allocation each.
    let text = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s);
    T::deserialize(text).map_err(|e| corrupt(what, e))
}

/// Formats a time the way every store writes it: fixed-width UTC with milliseconds.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads a time written by [`ts`].
pub fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    // Every stored time has the fixed shape `ts` writes; reading it digit by digit is several
    // times faster than a general RFC 3339 parse, which digests over many rows notice.
    if let Some(t) = parse_fixed_ts(s.as_bytes()) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{s}`: {e}")))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, or `None` for any other shape.
fn parse_fixed_ts(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date =
        chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_milli_opt(
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
        num(20..23)?,
    )?;
    Some(date.and_time(time).and_utc())
}

/// Signals that new work was stored in this process, so a local worker starts its next round
/// now instead of after its idle pause. Work stored by another instance is found by polling.
/// The store raises these; workers subscribe through [`Store::wake`].
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

/// Builds a new ticket's outbox rows once the store has given it its reference. It may be
/// called again if a group commit is retried, so it must only compute.
pub type OutboxFor = Box<dyn Fn(&Ticket) -> Vec<Outgoing> + Send + Sync>;

/// A ticket to open, with what must be written in the same transaction.
pub struct CreateTicket {
    /// The ticket.
    pub ticket: NewTicket,
    /// Who opened it (the flagger or command user).
    pub actor: UserRef,
    /// The creation event (and any others, such as a first assignment).
    pub events: Vec<EventKind>,
    /// Messages to deliver (alert, confirmation), built from the stored ticket.
    pub outbox: OutboxFor,
    /// The inbox row this completes, marked done in the same transaction.
    pub inbox_key: Option<String>,
    /// For a flag: how many tickets its flagger may open from flagged messages in a window.
    /// Checked in the transaction that would write the ticket, against what is stored; a
    /// message that already has a ticket is not counted (nor refused).
    pub quota: Option<FlagQuota>,
    /// For a ticket opened through the API or by monitoring: the other system's key for it,
    /// pointed at the ticket in the same transaction.
    pub external: Option<ExternalKey>,
}

/// Another system's key for a ticket (see [`CreateTicket::external`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalKey {
    /// Who keys it: the API token's name.
    pub source: String,
    /// Its key, e.g. `id:…` or `alert:FINGERPRINT`.
    pub key: String,
    /// Already claimed by this caller ([`Store::external_claim`]). Otherwise it is claimed in
    /// the ticket's own transaction, one write instead of two: a key that already has a
    /// ticket answers [`Created::Existing`] and one another request holds [`Created::Taken`],
    /// writing nothing.
    pub claimed: bool,
}

impl ExternalKey {
    /// `(source, key)`, to be claimed with the ticket.
    pub fn unclaimed(source: &str, key: &str) -> ExternalKey {
        ExternalKey {
            source: source.into(),
            key: key.into(),
            claimed: false,
        }
    }
}

impl std::fmt::Debug for CreateTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateTicket")
            .field("ticket", &self.ticket)
            .field("actor", &self.actor)
            .field("events", &self.events)
            .field("inbox_key", &self.inbox_key)
            .field("quota", &self.quota)
            .field("external", &self.external)
            .finish_non_exhaustive()
    }
}

/// At most `max` tickets opened from flagged messages by one person since `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagQuota {
    /// The person (or lone account), as a stable key: flags of one person are counted one at
    /// a time, across instances.
    pub person: String,
    /// Every account of the person; a flag by any of them counts.
    pub accounts: Vec<UserRef>,
    /// The start of the window.
    pub since: DateTime<Utc>,
    /// How many the window holds.
    pub max: u32,
}

/// Result of [`Store::create_ticket`].
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new ticket.
    New(Ticket),
    /// The flagged message already had this ticket; nothing new was written but a
    /// `Reflagged` event.
    Existing(Ticket),
    /// The flagger's [`FlagQuota`] is used up; nothing was written (nor the inbox row marked
    /// done). Holds when they opened the tickets counted in the window, oldest first.
    OverQuota(Vec<DateTime<Utc>>),
    /// The unclaimed [`CreateTicket::external`] key is held by another request still opening
    /// its ticket; nothing was written.
    Taken,
}

/// Result of [`Store::external_claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalClaim {
    /// The key is this caller's: open the ticket (with [`CreateTicket::external`]) or
    /// release the key.
    Claimed,
    /// The key already has this ticket.
    Ticket(ExternalTicket),
    /// Another request claimed the key moments ago and is opening its ticket.
    Busy,
}

/// A key's ticket, with the state its source last reported (monitoring alerts: `firing` or
/// `resolved`) and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalTicket {
    /// The ticket.
    pub id: TicketRef,
    /// Whether the source last said its alert was resolved (`None`: no state kept).
    pub resolved: Option<bool>,
    /// When that state was recorded.
    pub state_at: Option<DateTime<Utc>>,
}

/// Which tickets to list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only this department.
    pub department: Option<String>,
    /// Only these statuses (empty: all).
    pub statuses: Vec<Status>,
    /// Only tickets assigned to one of these accounts.
    pub assignees: Vec<UserRef>,
    /// Only tickets still active, or created, resolved or closed since this time (digests).
    pub active_or_since: Option<DateTime<Utc>>,
    /// Only tickets of these departments or reported by these accounts (`None`: any ticket).
    pub within: Option<TicketScope>,
    /// Only tickets matching this text as someone types it: a ticket number prefix (`T-4`,
    /// `4`), or words that all appear in the title, case-insensitively (only ASCII letters
    /// fold on SQLite). Empty or just `T-`: no filter.
    pub search: Option<String>,
    /// Only tickets whose title or body holds every one of these words in some form
    /// ("refunds" finds "refunded"), by the database's own full-text search (SQLite FTS5,
    /// PostgreSQL's English text search). Only letters and digits count; none: no filter.
    pub text: Option<String>,
    /// Only these priorities (empty: all).
    pub priorities: Vec<Priority>,
    /// Only tickets carrying this tag.
    pub tag: Option<String>,
    /// Only tickets opened this way (empty: all).
    pub origins: Vec<Origin>,
    /// Only tickets opened at or after this moment.
    pub created_from: Option<DateTime<Utc>>,
    /// Only tickets opened before this moment.
    pub created_to: Option<DateTime<Utc>>,
    /// Only tickets nobody is assigned to.
    pub unassigned: bool,
    /// Only tickets numbered below this one: the page after one that ended with it.
    pub before: Option<TicketRef>,
    /// At most this many, newest first (0: no limit).
    pub limit: i64,
}

impl TicketFilter {
    /// Every active ticket (open, in progress, waiting on the customer), as the scheduler's
    /// SLA check and follow-ups read them.
    pub fn active() -> TicketFilter {
        TicketFilter {
            statuses: Status::ALL.into_iter().filter(|s| s.is_active()).collect(),
            ..TicketFilter::default()
        }
    }
}

/// Whom a web sign-in link or session is for: the account, with the Slack user groups or
/// Discord roles chat saw it hold when the link was asked for (what it may see depends on
/// them, as in chat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebGrant {
    /// The platform account.
    pub user: UserRef,
    /// Its groups or roles, as chat saw them.
    pub roles: Vec<RoleRef>,
}

/// What became of a followed sign-in link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebLink {
    /// Good, and now used: whom it signs in, and the page to open.
    Valid {
        /// Whom it signs in.
        grant: WebGrant,
        /// The page to open after signing in (a path under `/ui/`), if the link named one.
        next: Option<String>,
    },
    /// It was used before.
    Used,
    /// Its ten minutes are over.
    Expired,
    /// No such link.
    Unknown,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// Who is signed in.
    pub grant: WebGrant,
    /// The token every form of this session carries (CSRF).
    pub csrf: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// Whose tickets a listing may include: those of `departments`, and those `reporters`
/// reported. Both empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketScope {
    /// Department names.
    pub departments: Vec<String>,
    /// Reporter accounts.
    pub reporters: Vec<UserRef>,
}

/// An outbox row as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// True when the row was claimed before and that claim ended without an outcome (its
    /// worker died or lost the lease): the message may already have been delivered once.
    pub reclaimed: bool,
    /// The message.
    pub outgoing: Outgoing,
    /// pending, sent or failed.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// Platform message id once sent.
    pub platform_message_id: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

/// A raw platform event waiting in the inbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxRow {
    /// Row id.
    pub id: i64,
    /// The unique key it was stored under.
    pub key: String,
    /// Platform that sent it.
    pub platform: String,
    /// The event as received.
    pub payload: serde_json::Value,
    /// Processing attempts so far, including this claim.
    pub attempts: i64,
    /// pending, done or failed.
    pub status: String,
    /// Last processing error or outcome note.
    pub last_error: Option<String>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// How an inbox row ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxOutcome {
    /// Processed; it created something or needed nothing.
    Done,
    /// Cannot ever be processed (e.g. the message was deleted); kept for inspection.
    Failed,
}

/// Kudos to record.
#[derive(Debug, Clone)]
pub struct NewKudos {
    /// Giver's account.
    pub giver: UserRef,
    /// Giver's identity key (person or account), for statistics.
    pub giver_key: String,
    /// Receiver's account.
    pub receiver: UserRef,
    /// Receiver's identity key.
    pub receiver_key: String,
    /// Why.
    pub reason: String,
    /// The ticket they helped with, if named.
    pub ticket: Option<TicketRef>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Stored kudos.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kudos {
    /// Row id.
    pub id: i64,
    /// Giver's account.
    pub giver: UserRef,
    /// Receiver's account.
    pub receiver: UserRef,
    /// Receiver's identity key.
    pub receiver_key: String,
    /// Why.
    pub reason: String,
    /// The ticket they helped with, if named.
    pub ticket: Option<TicketRef>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A saved reply (`/reply`): a shared answer by name, for one department or all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedReply {
    /// Its name, one lowercase word.
    pub name: String,
    /// The department it belongs to; `None`: every department's.
    pub department: Option<String>,
    /// The text, with `{reporter}`, `{ticket}`, `{department}` and `{assignee}` to fill in.
    pub text: String,
    /// Who saved it last.
    pub updated_by: UserRef,
    /// When.
    pub updated_at: DateTime<Utc>,
}

/// A metric value to record.
#[derive(Debug, Clone)]
pub struct NewMetric {
    /// Metric name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Department, if any.
    pub department: Option<String>,
    /// Where the number came from.
    pub note: Option<String>,
    /// Who recorded it, if a person.
    pub recorded_by: Option<UserRef>,
    /// When it was measured: the period it counts in.
    pub at: DateTime<Utc>,
    /// When it arrived: a digest counts it only if it had arrived by the period's end.
    pub received_at: DateTime<Utc>,
}

/// A stored metric value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSample {
    /// Row id.
    pub id: i64,
    /// Metric name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Department, if any.
    pub department: Option<String>,
    /// Note.
    pub note: Option<String>,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

/// A reporter's satisfaction answer for one ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Csat {
    /// The ticket rated.
    pub ticket: TicketRef,
    /// 1 to 5.
    pub score: u8,
    /// The optional comment.
    pub comment: Option<String>,
    /// Who answered.
    pub responder: UserRef,
    /// When the rating was given.
    pub created_at: DateTime<Utc>,
}

/// Every persistence operation Switchboard needs.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Wakes this process's workers when this store queues inbox or outbox rows.
    fn wake(&self) -> &Wake;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Opens a ticket with its events and outbox rows in one transaction; a flagged message
    /// that already has a ticket returns it instead.
    async fn create_ticket(&self, req: CreateTicket) -> Result<Created, StoreError>;
    /// Saves a changed ticket if it is still at `expected_version`, with its events and
    /// outbox rows, in one transaction.
    async fn update_ticket(
        &self,
        ticket: &Ticket,
        expected_version: i64,
        actor: Option<&UserRef>,
        events: Vec<EventKind>,
        outbox: Vec<Outgoing>,
    ) -> Result<(), StoreError>;
    /// One ticket.
    async fn ticket(&self, id: TicketRef) -> Result<Option<Ticket>, StoreError>;
    /// The ticket made from a flagged message.
    async fn ticket_by_source(
        &self,
        channel: &ChannelRef,
        message_id: &str,
    ) -> Result<Option<Ticket>, StoreError>;
    /// Tickets matching a filter, newest first.
    async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError>;
    /// When tickets were opened from flagged messages (a reaction or a message action, not
    /// `/ticket new`) by any of `accounts` since `since`, oldest first: what a
    /// [`FlagQuota`] counts.
    async fn recent_flags(
        &self,
        accounts: &[UserRef],
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError>;
    /// A ticket's audit log, oldest first.
    async fn events(&self, id: TicketRef) -> Result<Vec<TicketEvent>, StoreError>;
    /// Claims `(source, key)` for a ticket another system is about to open, so a repeat of
    /// the request (by any instance) finds that ticket instead of opening another. A claim
    /// left without a ticket since before `stale_before` (its opener died) is taken over.
    async fn external_claim(
        &self,
        source: &str,
        key: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<ExternalClaim, StoreError>;
    /// Gives up a claim whose ticket could not be opened.
    async fn external_release(&self, source: &str, key: &str) -> Result<(), StoreError>;
    /// Records the state a source reported for its keys (`resolved` or firing) at `at`; keys
    /// without a ticket yet are pointed at `ticket` when given (an alert storm's roll-up).
    async fn external_state(
        &self,
        source: &str,
        keys: &[String],
        ticket: Option<TicketRef>,
        resolved: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Frees `key` from its old ticket `from` so a new one can be opened for it (an alert
    /// firing again long after it resolved): `true` when this caller now holds the claim.
    async fn external_reclaim(
        &self,
        source: &str,
        key: &str,
        from: TicketRef,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records a raw platform event; `false` when its key was already there. Events with the
    /// same `order` key (the platform message they are about) are claimed one at a time, in
    /// the order they were stored.
    async fn inbox_insert(
        &self,
        key: &str,
        order: Option<&str>,
        platform: &str,
        payload: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Claims up to `limit` pending inbox rows from `platforms` that are due and not leased by
    /// a live worker, leasing them to `owner` until `now + lease`.
    async fn inbox_claim(
        &self,
        owner: &str,
        platforms: &[Platform],
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<InboxRow>, StoreError>;
    /// Gives an inbox row claimed by `owner` back to be tried again at `next_at`, recording
    /// why; `false` when `owner` no longer holds its lease (nothing is written).
    async fn inbox_retry(
        &self,
        id: i64,
        owner: &str,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError>;
    /// Ends an inbox row claimed by `owner` that created no ticket (a ticket's own transaction
    /// marks it done); `false` when `owner` no longer holds its lease (nothing is written).
    async fn inbox_finish(
        &self,
        id: i64,
        owner: &str,
        outcome: InboxOutcome,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Inbox rows, oldest first, optionally only with `status`.
    async fn inbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<InboxRow>, StoreError>;
    /// Claims up to `limit` due outbox rows for `platforms`, leasing them to `owner` until
    /// `now + lease`. A row waits while an earlier row of the same ticket is still pending, so
    /// each ticket's messages go out in order (an edit after the post it edits).
    async fn outbox_claim(
        &self,
        owner: &str,
        platforms: &[Platform],
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    /// Records a delivery by `owner`: status sent and the platform's message id. Returns
    /// false when `owner` no longer holds the row's lease or it is no longer pending (another
    /// worker took it over and may deliver it too: a duplicate); nothing is written then.
    async fn outbox_sent(
        &self,
        id: i64,
        owner: &str,
        message_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Gives a row claimed by `owner` back to be tried again at `next_at`, recording the
    /// error; `false` when `owner` no longer holds its lease (nothing is written).
    async fn outbox_retry(
        &self,
        id: i64,
        owner: &str,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError>;
    /// Gives a row claimed by `owner` back to be sent at `next_at` without counting this
    /// claim as an attempt (it waited for a rate limit; nothing failed), recording why;
    /// `false` when `owner` no longer holds its lease (nothing is written).
    async fn outbox_defer(
        &self,
        id: i64,
        owner: &str,
        next_at: DateTime<Utc>,
        why: &str,
    ) -> Result<bool, StoreError>;
    /// Moves a row claimed by `owner` to the dead-letter state (`failed`) with its error;
    /// `false` when `owner` no longer holds its lease (nothing is written).
    async fn outbox_dead(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Puts failed rows (all, or those listed) back to pending; returns how many.
    async fn outbox_requeue(&self, ids: &[i64], now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// The platform message id of the ticket's alert in `target`, once posted.
    async fn alert_message_id(
        &self,
        ticket: TicketRef,
        target: &Target,
    ) -> Result<Option<String>, StoreError>;
    /// Outbox rows, oldest first, optionally only with `status`.
    async fn outbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>, StoreError>;
    /// Number of outbox rows per status.
    async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Queues messages not tied to a ticket change (digests, kudos announcements).
    async fn enqueue(&self, outbox: Vec<Outgoing>, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records kudos.
    async fn add_kudos(&self, k: NewKudos) -> Result<Kudos, StoreError>;
    /// Kudos since a time, newest first, optionally for one receiver identity.
    async fn list_kudos(
        &self,
        since: DateTime<Utc>,
        receiver_key: Option<&str>,
    ) -> Result<Vec<Kudos>, StoreError>;
    /// Saves `reply`, replacing the text of the one with its name and department; true when
    /// it replaced one.
    async fn put_saved_reply(&self, reply: &SavedReply) -> Result<bool, StoreError>;
    /// Every saved reply, by name, a department's before the global one of the same name.
    async fn saved_replies(&self) -> Result<Vec<SavedReply>, StoreError>;
    /// Removes the saved reply `name` of `department` (`None`: the global one); false when
    /// there was none.
    async fn remove_saved_reply(
        &self,
        name: &str,
        department: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Records a metric value.
    async fn add_metric(&self, m: NewMetric) -> Result<MetricSample, StoreError>;
    /// Records several metric values in one transaction: all or none.
    async fn add_metrics(&self, samples: Vec<NewMetric>) -> Result<usize, StoreError>;
    /// Metric values since a time, newest first, optionally for one metric.
    async fn list_metrics(
        &self,
        name: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MetricSample>, StoreError>;
    /// Records a CSAT answer; `false` when the ticket already has one.
    async fn record_csat(
        &self,
        ticket: TicketRef,
        score: u8,
        comment: Option<&str>,
        responder: &UserRef,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// What a digest of `(since, to]` and earlier needs: every ticket (of `departments`, or
    /// all when empty) created after `since` or not done by `since` (active, or resolved or
    /// closed after it), and the CSAT answers and metric values recorded in `(since, to]`.
    async fn digest_input(
        &self,
        since: DateTime<Utc>,
        to: DateTime<Utc>,
        departments: &[String],
    ) -> Result<DigestInput, StoreError>;
    /// The CSAT answer for a ticket, if it has one.
    async fn csat(&self, ticket: TicketRef) -> Result<Option<Csat>, StoreError>;
    /// Adds a comment to `responder`'s rating of `ticket`; `false` when there is no such
    /// rating or it already has a comment (an answer is given once).
    async fn csat_comment(
        &self,
        ticket: TicketRef,
        responder: &UserRef,
        comment: &str,
    ) -> Result<bool, StoreError>;
    /// Claims one fire of a schedule by its local wall-clock time and queues its posts in the
    /// same transaction; `false` (and nothing queued) if another instance claimed it first.
    async fn claim_fire(
        &self,
        schedule: &str,
        fire_local: &str,
        owner: &str,
        at: DateTime<Utc>,
        outbox: Vec<Outgoing>,
    ) -> Result<bool, StoreError>;
    /// Claims one escalation of a ticket's SLA clock (`first_response` or `resolution`) at a
    /// level (`warning` or `breach`) and queues its posts in the same transaction; `false`
    /// (and nothing queued) if it was claimed before, by any instance.
    async fn claim_escalation(
        &self,
        ticket: TicketRef,
        clock: &str,
        level: &str,
        owner: &str,
        at: DateTime<Utc>,
        outbox: Vec<Outgoing>,
    ) -> Result<bool, StoreError>;
    /// Claims one follow-up of a ticket (`kind` `remind` or `nudge`) for the wait or idle
    /// spell that began at `since`, recording `event` by `actor` in its history and queueing
    /// `outbox` in the same transaction; `false` (and nothing written) if it was claimed
    /// before, by any instance, or the ticket no longer stands so (it stopped waiting since
    /// `since`, or changed since `since`).
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<bool, StoreError>;
    /// Stores the names platforms gave for accounts (replacing older ones).
    async fn remember_names(
        &self,
        names: &[(UserRef, String)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Every stored account name.
    async fn account_names(&self) -> Result<Vec<(UserRef, String)>, StoreError>;
    /// The ticket one of whose messages (its alert, a reminder, a saved reply) the bot posted
    /// in `channel` as `message_id`.
    async fn ticket_by_bot_message(
        &self,
        channel: &ChannelRef,
        message_id: &str,
    ) -> Result<Option<Ticket>, StoreError>;
    /// The ticket whose thread a reply to `message_id` in `channel` is in: the ticket of that
    /// flagged message, else the ticket one of the bot's posts there (its alert, a reminder,
    /// a saved reply) is about. What both adapters keep as a ticket's thread.
    async fn ticket_of_thread(
        &self,
        channel: &ChannelRef,
        message_id: &str,
    ) -> Result<Option<Ticket>, StoreError> {
        match self.ticket_by_source(channel, message_id).await? {
            Some(t) => Ok(Some(t)),
            None => self.ticket_by_bot_message(channel, message_id).await,
        }
    }
    /// Keeps a reply written in a ticket's thread; `false` when that message was already
    /// kept (a redelivered event).
    async fn add_thread_reply(&self, reply: &ThreadReply) -> Result<bool, StoreError>;
    /// Records that the kept reply `message_id` in `channel` was edited to `Some(text)` or
    /// deleted (`None`) at `at`; the reply's ticket, or `None` when no reply is kept there.
    async fn change_thread_reply(
        &self,
        channel: &ChannelRef,
        message_id: &str,
        text: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<TicketRef>, StoreError>;
    /// A ticket's kept thread replies, oldest first.
    async fn thread_replies(&self, ticket: TicketRef) -> Result<Vec<ThreadReply>, StoreError>;
    /// The tickets of messages flagged inside the thread `thread` of `channel`, oldest first.
    async fn tickets_in_thread(
        &self,
        channel: &ChannelRef,
        thread: &str,
    ) -> Result<Vec<Ticket>, StoreError>;
    /// Keeps a sign-in link for the web view: the SHA-256 of its token (hex), whom it signs
    /// in, and the page it opens; links that expired a day before `at` go.
    async fn add_web_link(
        &self,
        token_hash: &str,
        grant: &WebGrant,
        next: Option<&str>,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Uses the sign-in link whose token hashes to `token_hash`, once: it is marked used in
    /// the same statement that finds it still unused and unexpired at `at`.
    async fn take_web_link(
        &self,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<WebLink, StoreError>;
    /// Starts a web session under the SHA-256 of its id (hex); expired sessions go.
    async fn add_web_session(
        &self,
        id_hash: &str,
        session: &WebSession,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The session whose id hashes to `id_hash`, unless it has ended or expired by `at`.
    async fn web_session(
        &self,
        id_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<WebSession>, StoreError>;
    /// Ends a session (signing out); nothing when there is none.
    async fn end_web_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Makes the people table match the configuration.
    async fn sync_people(&self, people: &[Person], at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Writes a consistent copy of the database to `path` while it is in use: SQLite's file
    /// (`VACUUM INTO`), or PostgreSQL's tables through `pg_dump` (custom format). Never
    /// overwrites a file. [`restore`] puts it back.
    async fn backup(&self, path: &Path) -> Result<(), StoreError>;
    /// How many rows of `what` finished before `before` pruning would remove now.
    async fn prunable(&self, what: Prunable, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Removes at most `limit` of them in one short statement; how many it removed. Rows still
    /// in use are never among them (see [`Prunable`]); two instances pruning at once remove
    /// each row once.
    async fn prune(
        &self,
        what: Prunable,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError>;
    /// The oldest row of `what`'s table that pruning at `before` keeps (by when it arrived,
    /// was queued or was claimed), or `None` when it keeps none.
    async fn oldest_kept(
        &self,
        what: Prunable,
        before: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// The audit entries a store writes for events produced at `at` by `actor`.
pub fn to_events(
    ticket: TicketRef,
    actor: Option<&UserRef>,
    kinds: Vec<EventKind>,
    at: DateTime<Utc>,
) -> Vec<TicketEvent> {
    kinds
        .into_iter()
        .map(|kind| TicketEvent {
            ticket,
            at,
            actor: actor.cloned(),
            kind,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_timestamp_reader_agrees_with_rfc3339() {
        for t in [
            "2026-03-02T09:00:00.000Z",
            "1999-12-31T23:59:59.999Z",
            "2024-02-29T00:00:00.001Z",
        ] {
            assert_eq!(
                parse_fixed_ts(t.as_bytes()),
                Some(DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc))
            );
        }
        for odd in [
            "2026-03-02T09:00:00Z",
            "2026-02-30T09:00:00.000Z",
            "2026-03-02T09:00:00.000+00:00",
            "2026-03-02 09:00:00.000Z",
            "2026-0a-02T09:00:00.000Z",
        ] {
            assert_eq!(parse_fixed_ts(odd.as_bytes()), None, "{odd}");
        }
        assert!(
            parse_ts("2026-03-02T09:00:00Z").is_ok(),
            "other RFC 3339 shapes still read"
        );
        assert!(parse_ts("2026-02-30T09:00:00.000Z").is_err());
    }

    #[test]
    fn timestamps_are_fixed_width_so_text_order_is_time_order() {
        let a = parse_ts("2026-03-02T09:00:00Z").unwrap();
        let b = a + chrono::Duration::milliseconds(5);
        assert_eq!(ts(a), "2026-03-02T09:00:00.000Z");
        assert!(ts(a) < ts(b));
        assert_eq!(parse_ts(&ts(b)).unwrap(), b);
    }
}
