//! Flags turned into tickets per second, on SQLite and PostgreSQL, with 1 and 32 concurrent
//! flags, each flag's acknowledgement waiting for its commit. Beside them, on the same pool,
//! two baselines: single-row INSERTs in autocommit, and one INSERT per transaction
//! (`BEGIN IMMEDIATE … COMMIT` on SQLite). Prints medians of several runs; asserts that no
//! acknowledged flag is missing.
//!
//! Run: `cargo bench --bench flags` (PostgreSQL from `SWITCHBOARD_TEST_POSTGRES`, else
//! 127.0.0.1:5432 when it answers; `BENCH_FLAGS=N` changes the flags per run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use switchboard::app::build_desk_with_store;
use switchboard::config::Config;
use switchboard::core::clock::SystemClock;
use switchboard::core::directory::Actor;
use switchboard::core::ticket::{Origin, Source};
use switchboard::core::types::{Platform, UserRef};
use switchboard::desk::{Desk, FlagRequest, TicketOverrides};
use switchboard::store::{DynStore, PgStore, SqliteStore, TicketFilter};

const CONFIG: &str = r#"
[[departments]]
name = "billing"
channels = ["slack:CBILLING", "discord:2001"]
members = ["slack:UBOB"]
[[departments]]
name = "support"
channels = ["slack:CSUPPORT"]
# One person flags every message here; the per-person flag limit would refuse most.
[flagging]
limit = 0
[routing]
fallback = "support"
[[routing.rules]]
name = "refunds"
keywords = ["refund", "charged twice"]
department = "billing"
"#;

const RUNS: usize = 3;

enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn desk(store: DynStore) -> Desk {
    let config = Config::from_toml(CONFIG, "bench config", |_| None).expect("bench config");
    build_desk_with_store(config, store, Arc::new(SystemClock))
        .await
        .expect("desk")
}

/// Runs `total` flags from `clients` concurrent clients; returns flags per second.
async fn flags(desk: &Desk, run: usize, total: usize, clients: usize) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let desk = desk.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in (c..total).step_by(clients) {
                let req = FlagRequest {
                    flagger: Actor::user(UserRef::new(Platform::Slack, "UBOB")),
                    origin: Origin::Flag,
                    emoji: Some("ticket".into()),
                    source: Source {
                        channel: format!("slack:CBENCH{run}{clients}").parse().unwrap(),
                        message_id: format!("{i}.0001"),
                        thread_id: None,
                        permalink: None,
                        original_text: "I was charged twice, please refund".into(),
                        author: UserRef::new(Platform::Slack, "UCUSTOMER"),
                        author_name: None,
                    },
                    author_roles: vec![],
                    overrides: TicketOverrides::default(),
                    inbox_key: None,
                };
                // The flag returns only after its ticket is committed: this is the ack.
                acked.push(desk.flag(req).await.expect("flag").ticket.id);
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    assert_eq!(acked.len(), total);
    for id in &acked {
        assert!(
            desk.store.ticket(*id).await.unwrap().is_some(),
            "acked {id} was lost"
        );
    }
    rate
}

/// `total` single-row inserts from `clients` clients; `tx` wraps each in its own transaction.
async fn baseline(pool: &Pool, total: usize, clients: usize, tx: bool) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let pool = match pool {
            Pool::Sqlite(p) => Pool::Sqlite(p.clone()),
            Pool::Postgres(p) => Pool::Postgres(p.clone()),
        };
        tasks.push(tokio::spawn(async move {
            for i in (c..total).step_by(clients) {
                let payload = format!("row {i}");
                match (&pool, tx) {
                    (Pool::Sqlite(p), false) => {
                        sqlx::query("INSERT INTO bench_rows (payload) VALUES (?)")
                            .bind(payload)
                            .execute(p)
                            .await
                            .unwrap();
                    }
                    (Pool::Sqlite(p), true) => {
                        let mut t = p.begin_with("BEGIN IMMEDIATE").await.unwrap();
                        sqlx::query("INSERT INTO bench_rows (payload) VALUES (?)")
                            .bind(payload)
                            .execute(&mut *t)
                            .await
                            .unwrap();
                        t.commit().await.unwrap();
                    }
                    (Pool::Postgres(p), false) => {
                        sqlx::query("INSERT INTO bench_rows (payload) VALUES ($1)")
                            .bind(payload)
                            .execute(p)
                            .await
                            .unwrap();
                    }
                    (Pool::Postgres(p), true) => {
                        let mut t = p.begin().await.unwrap();
                        sqlx::query("INSERT INTO bench_rows (payload) VALUES ($1)")
                            .bind(payload)
                            .execute(&mut *t)
                            .await
                            .unwrap();
                        t.commit().await.unwrap();
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

async fn bench(name: &str, store: DynStore, pool: Pool, total: usize) {
    match &pool {
        Pool::Sqlite(p) => {
            sqlx::query("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
                .execute(p)
                .await
                .unwrap();
        }
        Pool::Postgres(p) => {
            sqlx::query(
                "CREATE TABLE bench_rows (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)",
            )
            .execute(p)
            .await
            .unwrap();
        }
    }
    let desk = desk(store).await;
    println!("\n{name}: {total} flags per run, median of {RUNS} runs");
    println!("  {:<44} {:>12} {:>12}", "", "1 client", "32 clients");
    let mut rows: Vec<(&str, [f64; 2])> = Vec::new();
    let mut run = 0;
    let measure = |label: &'static str| (label, [0.0f64; 2]);
    let mut flag_row = measure("flags → tickets (ack after commit)");
    let mut auto_row = measure("baseline: INSERT, autocommit");
    let mut tx_row = measure(if name == "SQLite" {
        "baseline: BEGIN IMMEDIATE; INSERT; COMMIT"
    } else {
        "baseline: BEGIN; INSERT; COMMIT"
    });
    for (slot, clients) in [1usize, 32].into_iter().enumerate() {
        let mut f = Vec::new();
        let mut a = Vec::new();
        let mut t = Vec::new();
        for _ in 0..RUNS {
            run += 1;
            f.push(flags(&desk, run, total, clients).await);
            a.push(baseline(&pool, total, clients, false).await);
            t.push(baseline(&pool, total, clients, true).await);
        }
        flag_row.1[slot] = median(f);
        auto_row.1[slot] = median(a);
        tx_row.1[slot] = median(t);
    }
    rows.extend([flag_row, auto_row, tx_row]);
    for (label, [one, many]) in &rows {
        println!("  {label:<44} {one:>10.0}/s {many:>10.0}/s");
    }
    let flags32 = rows[0].1[1];
    let tx32 = rows[2].1[1];
    println!(
        "  flags at 32 clients / one-insert-per-transaction at 32 clients = {:.2}",
        flags32 / tx32
    );
    let stored = desk
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap()
        .len();
    println!("  tickets stored: {stored} (every acknowledged flag was found after its run)");
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("BENCH_FLAGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    println!(
        "switchboard flag benchmark, {} ({} cores)",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite = SqliteStore::open(&url).await.unwrap();
    let pool = Pool::Sqlite(sqlite.writer().clone());
    bench("SQLite", Arc::new(sqlite), pool, total).await;

    let pg_url = std::env::var("SWITCHBOARD_TEST_POSTGRES").ok().or_else(|| {
        let local = "127.0.0.1:5432".parse().unwrap();
        std::net::TcpStream::connect_timeout(&local, Duration::from_millis(500))
            .ok()
            .map(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
    });
    match pg_url {
        Some(url) => {
            let schema = format!("sbbench_{}", uuid::Uuid::new_v4().simple());
            let pg = PgStore::open_in_schema(&url, &schema).await.unwrap();
            let pool = Pool::Postgres(pg.pool().clone());
            bench("PostgreSQL", Arc::new(pg), pool, total / 2).await;
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&admin)
                .await
                .unwrap();
        }
        None => println!(
            "\nPostgreSQL: skipped (set SWITCHBOARD_TEST_POSTGRES or run one on 127.0.0.1:5432)"
        ),
    }
}
