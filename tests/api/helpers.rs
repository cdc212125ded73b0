//! Shared test set-up: `spawn_app` gives each test its own SQLite file, a manual clock and a
//! desk built by the same code as `switchboard run`.

use std::sync::{Arc, OnceLock};

use chrono::{TimeZone, Utc};
use switchboard::app::build_desk_with_store;
use switchboard::config::Config;
use switchboard::core::clock::ManualClock;
use switchboard::core::command::UsageError;
use switchboard::core::directory::Actor;
use switchboard::core::message::Reply;
use switchboard::core::ticket::{Origin, Source};
use switchboard::core::types::{ChannelRef, Platform, RoleRef, UserRef};
use switchboard::desk::{Desk, DeskError, FlagOutcome, FlagRequest, TicketOverrides};
use switchboard::store::{DynStore, PgStore, SqliteStore};

/// Alice: admin, linked on both platforms. Bob: billing member by person, linked. Carol:
/// billing lead on Slack. Dave: it member through a Discord role. Erin: it member through a
/// Slack user group. Customers have no standing.
pub const TEST_CONFIG: &str = r#"
admins = ["person:alice"]

[[people]]
id = "alice"
name = "Alice"
slack = "UALICE"
discord = "1001"

[[people]]
id = "bob"
name = "Bob"
slack = "UBOB"
discord = "1002"

[[people]]
id = "carol"
name = "Carol"
slack = "UCAROL"

[[departments]]
name = "billing"
channels = ["slack:CBILLING", "discord:2001"]
members = ["person:bob"]
leads = ["person:carol"]

[[departments]]
name = "it"
channels = ["discord:2002"]
members = ["discord-role:3001", "slack-group:SIT"]

[[departments]]
name = "support"
channels = ["slack:CSUPPORT"]
members = ["person:alice"]

[flagging]
emojis = ["ticket", "🎫", "rotating_light"]
who = "members"

[knowledge]
dir = "tests/fixtures/kb"

[web]
enabled = true
public_url = "http://127.0.0.1:8080"

[routing]
fallback = "support"

[[routing.rules]]
name = "outage"
emojis = ["rotating_light"]
department = "it"
priority = "urgent"

[[routing.rules]]
name = "refunds"
keywords = ["refund", "charged twice"]
department = "billing"
priority = "high"
tags = ["money"]

[[digests]]
name = "weekly"
cron = "0 9 * * MON"
timezone = "Europe/Berlin"
targets = ["slack:CLEADS", "discord:2003"]
"#;

/// The Slack signing secret every test desk is configured with.
pub const TEST_SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// The metrics API token every test desk is configured with.
pub const TEST_API_TOKEN: &str = "test-api-token-0123456789";

/// The secret of the API token whose `secret_env` is `var` (any `SWITCHBOARD_TEST_TOKEN_…`).
pub fn test_token(var: &str) -> String {
    format!("{}-0123456789abcdef", var.to_ascii_lowercase())
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running desk on its own database.
pub struct TestApp {
    pub desk: Desk,
    pub clock: ManualClock,
    /// The database URL (for PostgreSQL, of the shared test database).
    pub url: String,
    /// The PostgreSQL schema holding this test's tables.
    pub schema: Option<String>,
    pub dir: tempfile::TempDir,
}

/// A desk on a fresh SQLite file.
pub async fn spawn_app() -> TestApp {
    spawn_on(Backend::Sqlite)
        .await
        .expect("SQLite is always available")
}

/// Serves the desk's HTTP endpoints on a free loopback port: the base URL, and the sender that
/// stops the server (dropping it stops it too).
pub async fn serve_http(app: &TestApp) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(switchboard::app::serve(
        app.desk.clone(),
        listener,
        Default::default(),
        async {
            let _ = stopped.await;
        },
    ));
    (base, stop)
}

/// The `details` of a JSON problem answer (`{"error": …, "details": ["field: why", …]}`).
pub fn details(answer: &serde_json::Value) -> Vec<&str> {
    answer["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details in {answer}"))
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect()
}

/// How many tickets the store holds.
pub async fn ticket_count(app: &TestApp) -> usize {
    app.desk
        .store
        .list_tickets(&switchboard::store::TicketFilter::default())
        .await
        .unwrap()
        .len()
}

/// The PostgreSQL server for tests: `SWITCHBOARD_TEST_POSTGRES`, else the local default when
/// it answers. In CI (`CI` set) its absence is a failure, never a skip.
pub fn postgres_url() -> Option<String> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("SWITCHBOARD_TEST_POSTGRES") {
            return Some(url);
        }
        let local = "127.0.0.1:5432".parse().unwrap();
        if std::net::TcpStream::connect_timeout(&local, std::time::Duration::from_millis(500)).is_ok() {
            return Some("postgres://postgres@127.0.0.1:5432/test".to_string());
        }
        if std::env::var_os("CI").is_some() {
            panic!("CI must run the PostgreSQL half of the suite: set SWITCHBOARD_TEST_POSTGRES or start PostgreSQL on 127.0.0.1:5432");
        }
        eprintln!("SKIPPING the PostgreSQL half of the suite: no SWITCHBOARD_TEST_POSTGRES and nothing on 127.0.0.1:5432");
        None
    })
    .clone()
}

/// Drops schemas left by earlier runs of this suite, once per process.
async fn clean_old_schemas(url: &str) {
    static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CLEANED
        .get_or_init(|| async {
            let pool = sqlx::PgPool::connect(url)
                .await
                .expect("PostgreSQL test database answers");
            let old: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'sbtest_%'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            for s in old {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {s} CASCADE"
                )))
                .execute(&pool)
                .await;
            }
            pool.close().await;
        })
        .await;
}

/// A desk with the test config on `backend`; `None` when PostgreSQL is unavailable off CI.
pub async fn spawn_on(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, TEST_CONFIG).await
}

/// A desk with `config` on `backend`, each on its own database (SQLite) or schema (PostgreSQL).
pub async fn spawn_with(backend: Backend, config: &str) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, schema, store): (String, Option<String>, DynStore) = match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            let store = Arc::new(SqliteStore::open(&url).await.expect("SQLite opens"));
            (url, None, store)
        }
        Backend::Postgres => {
            let url = postgres_url()?;
            clean_old_schemas(&url).await;
            let schema = format!("sbtest_{}", uuid::Uuid::new_v4().simple());
            let store = Arc::new(
                PgStore::open_in_schema(&url, &schema)
                    .await
                    .expect("PostgreSQL opens"),
            );
            (url, Some(schema), store)
        }
    };
    let config = Config::from_toml(config, "test config", |k| match k {
        "SWITCHBOARD_DATABASE_URL" => Some(url.clone()),
        "SLACK_SIGNING_SECRET" => Some(TEST_SIGNING_SECRET.to_string()),
        "SWITCHBOARD_API_TOKEN" => Some(TEST_API_TOKEN.to_string()),
        k if k.starts_with("SWITCHBOARD_TEST_TOKEN_") => Some(test_token(k)),
        _ => None,
    })
    .expect("test config is valid");
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let desk = build_desk_with_store(config, store, Arc::new(clock.clone()))
        .await
        .expect("desk starts");
    Some(TestApp {
        desk,
        clock,
        url,
        schema,
        dir,
    })
}

impl TestApp {
    /// A second, independent store (its own pool) on the same database, as another
    /// instance would have.
    pub async fn second_store(&self) -> DynStore {
        match &self.schema {
            None => Arc::new(SqliteStore::open(&self.url).await.unwrap()),
            Some(schema) => Arc::new(PgStore::open_in_schema(&self.url, schema).await.unwrap()),
        }
    }
}

/// Like [`on_both_backends!`] with a desk built from the config `$config` (a path to a
/// `&str` constant, from the calling module).
#[macro_export]
macro_rules! on_both_backends_with {
    ($config:ident; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::helpers::spawn_with($crate::helpers::Backend::Sqlite, super::$config).await.unwrap();
                    super::$name(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(app) = $crate::helpers::spawn_with($crate::helpers::Backend::Postgres, super::$config).await else {
                        return;
                    };
                    super::$name(app).await;
                }
            }
        )*
    };
}

/// Runs each named `async fn(TestApp)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::helpers::spawn_on($crate::helpers::Backend::Sqlite).await.unwrap();
                    super::$name(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(app) = $crate::helpers::spawn_on($crate::helpers::Backend::Postgres).await else {
                        return;
                    };
                    super::$name(app).await;
                }
            }
        )*
    };
}

pub fn slack(id: &str) -> Actor {
    Actor::user(UserRef::new(Platform::Slack, id))
}

pub fn discord(id: &str) -> Actor {
    Actor::user(UserRef::new(Platform::Discord, id))
}

pub fn alice() -> Actor {
    slack("UALICE")
}

pub fn bob() -> Actor {
    slack("UBOB")
}

pub fn carol() -> Actor {
    slack("UCAROL")
}

/// An IT member by Discord role.
pub fn dave() -> Actor {
    let mut a = discord("1004");
    a.roles.push(RoleRef::new(Platform::Discord, "3001"));
    a
}

pub fn customer() -> UserRef {
    UserRef::new(Platform::Slack, "UCUSTOMER")
}

pub fn source(channel: &str, ts: &str, text: &str) -> Source {
    Source {
        channel: channel.parse::<ChannelRef>().unwrap(),
        message_id: ts.into(),
        thread_id: None,
        permalink: Some(format!("https://example.slack.com/archives/x/p{ts}")),
        original_text: text.into(),
        author: customer(),
        author_name: None,
    }
}

impl TestApp {
    /// Runs a command line such as `/ticket claim T-1`, returning the error kind on failure.
    pub async fn run(&self, actor: &Actor, line: &str) -> Result<Reply, DeskError> {
        let (cmd, text) = line.split_once(' ').unwrap_or((line, ""));
        let inv = self
            .desk
            .commands
            .parse_text(cmd, text)?
            .ok_or(DeskError::Usage(UsageError::UnknownCommand("help".into())))?;
        let channel: ChannelRef = "slack:CSUPPORT".parse().unwrap();
        switchboard::cmd::try_run(&self.desk, actor, Some(&channel), &inv).await
    }

    /// Runs a command that must succeed and returns its text.
    pub async fn ok(&self, actor: &Actor, line: &str) -> String {
        match self.run(actor, line).await {
            Ok(r) => r.message.plain(),
            Err(e) => panic!("`{line}` failed: {e}"),
        }
    }

    /// Runs a command that must fail with a user error and returns its message.
    pub async fn user_error(&self, actor: &Actor, line: &str) -> String {
        match self.run(actor, line).await {
            Ok(r) => panic!("`{line}` succeeded: {}", r.message.plain()),
            Err(e) => {
                assert!(e.is_user_error(), "`{line}`: not a user error: {e}");
                e.to_string()
            }
        }
    }

    pub async fn flag(
        &self,
        flagger: &Actor,
        emoji: &str,
        src: Source,
    ) -> Result<FlagOutcome, DeskError> {
        self.desk
            .flag(FlagRequest {
                flagger: flagger.clone(),
                origin: Origin::Flag,
                emoji: Some(emoji.into()),
                source: src,
                author_roles: vec![],
                overrides: TicketOverrides::default(),
                inbox_key: None,
            })
            .await
    }
}

/// Handles `n` inbox events keyed `prefix:i` at the clock's time, finishing them with
/// `outcome`.
pub async fn inbox_rows(
    app: &TestApp,
    prefix: &str,
    n: usize,
    outcome: switchboard::store::InboxOutcome,
) {
    let now = app.desk.now();
    let store = &app.desk.store;
    for i in 0..n {
        let key = format!("{prefix}:{i}");
        assert!(store
            .inbox_insert(&key, None, "slack", &serde_json::json!({"event": i}), now)
            .await
            .unwrap());
    }
    let rows = store
        .inbox_claim(
            "w",
            &[Platform::Slack],
            now,
            chrono::Duration::minutes(1),
            1000,
        )
        .await
        .unwrap();
    for r in rows {
        assert!(store
            .inbox_finish(r.id, "w", outcome, "handled", now)
            .await
            .unwrap());
    }
}

/// The inbox and outbox workers a platform test drives round by round: `sources` complete
/// inbox events and `deliveries` send, each pausing only 5 ms when idle.
pub fn workers(
    app: &TestApp,
    sources: Vec<Arc<dyn switchboard::chat::EventSource>>,
    deliveries: Vec<Arc<dyn switchboard::chat::Delivery>>,
) -> (
    switchboard::inbox::InboxWorker,
    switchboard::outbox::OutboxWorker,
) {
    let idle = std::time::Duration::from_millis(5);
    let inbox = switchboard::inbox::InboxWorker::new(
        app.desk.clone(),
        sources,
        switchboard::inbox::InboxSettings {
            owner: "inbox".into(),
            idle,
            ..switchboard::inbox::InboxSettings::default()
        },
    );
    let outbox = switchboard::outbox::OutboxWorker::new(
        app.desk.store.clone(),
        deliveries,
        Arc::new(app.clock.clone()),
        app.desk.telemetry.clone(),
        switchboard::outbox::OutboxSettings {
            owner: "outbox".into(),
            idle,
            ..switchboard::outbox::OutboxSettings::default()
        },
    );
    (inbox, outbox)
}

/// A ticket's queued posts other than its alerts and their edits (thread posts, DMs,
/// follow-ups): kind, target, plain text and who it pings, oldest first.
pub async fn ticket_posts(
    app: &TestApp,
    id: switchboard::core::types::TicketRef,
) -> Vec<(
    switchboard::core::message::OutKind,
    switchboard::core::message::Target,
    String,
    Vec<switchboard::core::types::Mention>,
)> {
    use switchboard::core::message::OutKind;
    app.desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.outgoing.ticket == Some(id))
        .filter(|r| matches!(r.outgoing.kind, OutKind::Post | OutKind::AlertReply))
        .map(|r| {
            (
                r.outgoing.kind,
                r.outgoing.target,
                r.outgoing.message.plain(),
                r.outgoing.message.mentions,
            )
        })
        .collect()
}

/// A ticket's kept thread replies as `(author, text, edited, deleted)`, oldest first.
pub async fn replies_seen(
    app: &TestApp,
    id: switchboard::core::types::TicketRef,
) -> Vec<(String, String, bool, bool)> {
    app.desk
        .store
        .thread_replies(id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.author.to_string(),
                r.text,
                r.edited_at.is_some(),
                r.deleted_at.is_some(),
            )
        })
        .collect()
}
