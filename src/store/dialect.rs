//! The seam between the store's operations, written once in [`super::sql`], and each database.
//!
//! Owns the neutral forms that cross it: [`Arg`] (a value to bind), [`SqlRow`] (a row to read),
//! [`Conn`] (something that runs a statement: the pool or a write transaction) and [`Backend`]
//! (what one database does its own way: connecting, migrations, claiming work, the group
//! commit, the digest's bulk read, backups). Each database encodes an `Arg` as its columns
//! want it: SQLite keeps times as fixed-width RFC 3339 text and JSON as text, PostgreSQL as
//! `timestamptz` and `jsonb`. Must not hold any rule of the help desk.

use std::fmt::Debug;
use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::SqlSafeStr;

use super::{CreateTicket, Created, InboxRow, OutboxRow, StoreError};
use crate::core::digest::DigestTicket;
use crate::core::types::Platform;

/// Which tickets one digest read returns.
#[derive(Debug, Clone, Copy)]
pub enum DigestSet<'a> {
    /// Every department's, one part of them (the parts are disjoint and together are every
    /// ticket a digest reads, so they are read at once on separate connections); the time is
    /// the start of the current period.
    Part(DigestPart, DateTime<Utc>),
    /// Those of one department now.
    Department(&'a str),
    /// Those moved between departments after `since`.
    Routed,
}

/// One of the three parts of a whole organisation's digest read (see `sql::digest_part`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestPart {
    /// Opened in the previous period.
    OpenedBefore,
    /// Opened in the current period.
    OpenedSince,
    /// Opened earlier and not done when the previous period began.
    StillActive,
}

/// A value to bind to a statement, in a form both databases understand.
///
/// Text is cleaned of NUL characters here, once for every statement: PostgreSQL rejects NUL in
/// `text` and `jsonb` while SQLite stores it, and both must hold the same text.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// An integer, or NULL.
    Int(Option<i64>),
    /// A floating-point number.
    Real(f64),
    /// Text, or NULL.
    Text(Option<String>),
    /// A point in time, or NULL.
    Time(Option<DateTime<Utc>>),
    /// A JSON document, already serialised (a `jsonb` column on PostgreSQL, text on SQLite).
    Json(String),
    /// A list of text, for [`Backend::in_list`].
    Texts(Vec<String>),
    /// A list of integers, for [`Backend::in_list`].
    Ints(Vec<i64>),
}

/// Serialises `v` for a JSON column.
pub fn json<T: serde::Serialize + ?Sized>(what: &str, v: &T) -> Result<Arg, StoreError> {
    let text = serde_json::to_string(v).map_err(|e| super::corrupt(what, e))?;
    Ok(Arg::Json(clean_json(text)))
}

/// Removes NUL from text.
pub fn clean(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}

/// Removes NUL characters from every string inside a serialised JSON document (written as the
/// escape `\u0000`). Re-parses only when the escape appears, which real traffic almost never has.
pub fn clean_json(text: String) -> String {
    if !text.contains("\\u0000") {
        return text;
    }
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => *s = s.replace('\0', ""),
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            serde_json::Value::Object(o) => {
                let keys: Vec<String> = o.keys().filter(|k| k.contains('\0')).cloned().collect();
                for k in keys {
                    if let Some(val) = o.remove(&k) {
                        o.insert(k.replace('\0', ""), val);
                    }
                }
                o.values_mut().for_each(walk);
            }
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        // `\\u0000` (an escaped backslash before `u0000`) is not a NUL: leave such text alone.
        Err(_) => text,
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::Real(v)
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(clean(v)))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(clean(v.to_string())))
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::from(v.as_str())
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v.map(clean))
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(|s| clean(s.to_string())))
    }
}

impl From<DateTime<Utc>> for Arg {
    fn from(v: DateTime<Utc>) -> Self {
        Arg::Time(Some(v))
    }
}

impl From<Option<DateTime<Utc>>> for Arg {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Arg::Time(v)
    }
}

impl From<Vec<String>> for Arg {
    fn from(v: Vec<String>) -> Self {
        Arg::Texts(v.into_iter().map(clean).collect())
    }
}

impl From<Vec<i64>> for Arg {
    fn from(v: Vec<i64>) -> Self {
        Arg::Ints(v)
    }
}

/// `vec![Arg::from(a), Arg::from(b), …]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        vec![$($crate::store::dialect::Arg::from($a)),*]
    };
}
pub(crate) use args;

/// A row as each database returns it, read by column name in neutral types.
pub trait SqlRow: Send + Sync {
    /// An integer column of any width, or `None` for NULL.
    fn int(&self, col: &str) -> Result<Option<i64>, StoreError>;
    /// A floating-point column.
    fn real(&self, col: &str) -> Result<f64, StoreError>;
    /// A text column, or `None` for NULL.
    fn text(&self, col: &str) -> Result<Option<String>, StoreError>;
    /// A time column, or `None` for NULL.
    fn time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// A JSON column (`jsonb` on PostgreSQL, text on SQLite), decoded.
    fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T, StoreError>;

    /// A NOT NULL integer column.
    fn required_int(&self, col: &str) -> Result<i64, StoreError> {
        self.int(col)?.ok_or_else(|| super::corrupt(col, "missing"))
    }

    /// A NOT NULL text column.
    fn required_text(&self, col: &str) -> Result<String, StoreError> {
        self.text(col)?
            .ok_or_else(|| super::corrupt(col, "missing"))
    }

    /// A NOT NULL time column.
    fn required_time(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        self.time(col)?
            .ok_or_else(|| super::corrupt(col, "missing"))
    }
}

/// Something that runs statements: the pool (each statement on its own) or a transaction.
///
/// Rows are always read whole (`fetch_all`): on SQLite a statement dropped half-read is reset
/// later on its worker thread and can leave the connection on a stale read snapshot (sqlx
/// issue #2543), so no statement outlives its call.
#[async_trait]
pub trait Conn: Send {
    /// The database's row type.
    type Row: SqlRow;
    /// Runs `sql` with `args` and returns every row.
    async fn fetch<S: SqlSafeStr + Send>(
        &mut self,
        sql: S,
        args: Vec<Arg>,
    ) -> Result<Vec<Self::Row>, StoreError>;
    /// Runs `sql` with `args` and returns how many rows it changed.
    async fn exec<S: SqlSafeStr + Send>(
        &mut self,
        sql: S,
        args: Vec<Arg>,
    ) -> Result<u64, StoreError>;
}

/// A write transaction.
#[async_trait]
pub trait WriteTx: Conn {
    /// Makes its writes durable.
    async fn commit(self) -> Result<(), StoreError>;
    /// Undoes its writes.
    async fn rollback(self) -> Result<(), StoreError>;
}

/// What one database does its own way. Everything else is written once, over this.
#[async_trait]
pub trait Backend: Send + Sync + Debug + 'static {
    /// The database's row type.
    type Row: SqlRow;
    /// A write transaction on it.
    type Tx: WriteTx<Row = Self::Row>;
    /// Runs one statement on the pool (its own transaction) and returns every row.
    async fn read<S: SqlSafeStr + Send>(
        &self,
        sql: S,
        args: Vec<Arg>,
    ) -> Result<Vec<Self::Row>, StoreError>;
    /// Runs one statement on the pool (its own transaction) and returns how many rows it
    /// changed. A single statement needs no explicit transaction on either database: SQLite
    /// takes the write lock for it at once.
    async fn run<S: SqlSafeStr + Send>(&self, sql: S, args: Vec<Arg>) -> Result<u64, StoreError>;
    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE`, so it waits for the lock
    /// instead of failing half-way).
    async fn write(&self) -> Result<Self::Tx, StoreError>;
    /// Applies this database's migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// `expr` is one of the list bound at `param` (an [`Arg::Texts`] or [`Arg::Ints`]).
    fn in_list(expr: &str, param: &str) -> String;
    /// The ticket's `tags` hold the text bound at `param`.
    fn has_tag(param: &str) -> String;
    /// The ticket (`tickets` row) holds every word of the search bound at `param` in its title
    /// or body, by the database's own full-text search (see [`Self::fulltext_query`]).
    fn matches_words(param: &str) -> String;
    /// The search to bind for `words` (letters and digits only, at least one).
    fn fulltext_query(words: &[String]) -> String;
    /// Windows of the newest ticket ids a word search looks in first, smallest first, before
    /// the whole history; empty: the whole history at once. (PostgreSQL: a common word's
    /// newest matches are near the top, a rare word's few matches cheap to fetch anywhere;
    /// only the stretch between is costly, and the windows keep it small.)
    const SEARCH_WINDOWS: &'static [i64];
    /// Runs the statement of a word search (see `SqlStore::list_tickets`): as any read, or,
    /// on PostgreSQL, planned with bitmap scans only.
    async fn read_search(&self, sql: String, args: Vec<Arg>) -> Result<Vec<Self::Row>, StoreError> {
        self.read(sqlx::AssertSqlSafe(sql), args).await
    }
    /// A statement that serialises concurrent people syncs in the transaction, if the
    /// database needs one (SQLite's single writer already does).
    fn lock_people() -> Option<&'static str>;
    /// `created_at <= $1` written so that no plan (PostgreSQL's generic plan of a prepared
    /// statement included) reads it from the column's index: that range is the whole history.
    const OPENED_BY: &'static str;

    /// Opens a ticket, or finds the one its flagged message already has (see
    /// [`super::Store::create_ticket`]).
    async fn create_ticket(&self, req: CreateTicket) -> Result<Created, StoreError>;
    /// Claims pending inbox rows (see [`super::Store::inbox_claim`]).
    async fn inbox_claim(
        &self,
        owner: &str,
        platforms: &[Platform],
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<InboxRow>, StoreError>;
    /// Claims due outbox rows (see [`super::Store::outbox_claim`]).
    async fn outbox_claim(
        &self,
        owner: &str,
        platforms: &[Platform],
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    /// The tickets a digest reads, each with its history: created after `since` or not done
    /// by then, of the set asked for.
    async fn digest_tickets(
        &self,
        since: DateTime<Utc>,
        set: DigestSet<'_>,
    ) -> Result<Vec<DigestTicket>, StoreError>;
    /// Writes a consistent copy of the database to `path`.
    async fn backup(&self, path: &Path) -> Result<(), StoreError>;
}
