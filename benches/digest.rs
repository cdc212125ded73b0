//! The weekly digest over a large history: 1,000,000 tickets spread evenly over two years
//! across 12 departments, each with its audit log as the desk writes it (with CSAT answers,
//! NPS answers and a custom metric), on SQLite and
//! PostgreSQL. Times `cmd::digest::report` (the store's read plus every figure) for the whole
//! organisation and for one department, and rendering; prints medians and p90s of several
//! runs, the rows read, and the query plan. Target: under 100 ms each.
//!
//! Run: `cargo bench --bench digest` (PostgreSQL from `SWITCHBOARD_TEST_POSTGRES`, else
//! 127.0.0.1:5432 when it answers; `BENCH_TICKETS=N` changes the history size).
//! `BENCH_KEEP=DIR` keeps the filled SQLite file and PostgreSQL schema under names derived from
//! the size, and a later run with the same `BENCH_KEEP` and size measures them again without
//! refilling (for profiling one change after another). `BENCH_ONLY=sqlite` (or `postgres`)
//! measures one database.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use switchboard::app::build_desk_with_store;
use switchboard::cmd::digest::report;
use switchboard::config::{Config, Period};
use switchboard::core::clock::ManualClock;
use switchboard::core::digest::render;
use switchboard::desk::Desk;
use switchboard::store::{DynStore, PgStore, SqliteStore};

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

const DEPARTMENTS: usize = 12;
const RUNS: usize = 15;
const TAGS: [&str; 6] = ["money", "login", "vip", "bug", "export", "mobile"];
const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

fn config() -> String {
    let mut c = String::from(
        "[sla]\nfirst_response = { urgent = \"30m\", high = \"2h\", normal = \"8h\", low = \"1d\" }\nresolution = { urgent = \"4h\", high = \"1d\", normal = \"3d\", low = \"1w\" }\n",
    );
    for d in 0..DEPARTMENTS {
        c.push_str(&format!(
            "[[departments]]\nname = \"dept{d:02}\"\nchannels = [\"slack:C{d:02}\"]\n"
        ));
    }
    c.push_str("[[digests]]\nname = \"weekly\"\ncron = \"0 9 * * 1\"\ntimezone = \"Europe/Berlin\"\ntargets = [\"slack:CLEADS\"]\n");
    c
}

/// Monday 2026-11-23 09:00 in Berlin: the weekly fire the benchmark measures.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
}

fn ts(t: DateTime<Utc>) -> String {
    switchboard::store::ts(t)
}

/// One generated ticket's columns.
struct Row {
    department: String,
    priority: &'static str,
    tags: String,
    status: &'static str,
    created: DateTime<Utc>,
    first: Option<DateTime<Utc>>,
    resolved: Option<DateTime<Utc>>,
    closed: Option<DateTime<Utc>>,
    assignee: Option<String>,
}

fn rows(n: usize) -> Vec<Row> {
    let mut rng = fastrand::Rng::with_seed(42);
    let span = Duration::days(730).num_seconds();
    let start = now() - Duration::days(730);
    (0..n)
        .map(|i| {
            let created = start + Duration::seconds((i as i64 * span) / n as i64 + rng.i64(0..60));
            let first =
                Some(created + Duration::minutes(rng.i64(5..8 * 60))).filter(|t| *t <= now());
            let done = created + Duration::minutes(rng.i64(60..10 * 24 * 60));
            // A few tickets are forgotten: the stale backlog every help desk has.
            let stale = rng.u32(0..1000) < 3;
            let finished = (!stale && done <= now()).then_some(done);
            let closed_only = rng.u32(0..100) < 2;
            let (resolved, closed) = match (finished, closed_only) {
                (Some(d), false) => (Some(d), None),
                (Some(d), true) => (None, Some(d)),
                (None, _) => (None, None),
            };
            let tags: Vec<&str> = (0..rng.usize(0..3))
                .map(|_| TAGS[rng.usize(0..TAGS.len())])
                .collect();
            Row {
                department: format!("dept{:02}", i % DEPARTMENTS),
                priority: PRIORITIES[rng.usize(0..4)],
                tags: serde_json::to_string(&tags).unwrap(),
                status: match (resolved, closed, first) {
                    (Some(_), _, _) => "resolved",
                    (_, Some(_), _) => "closed",
                    (_, _, Some(_)) => "in_progress",
                    _ => "open",
                },
                created,
                first,
                resolved,
                closed,
                assignee: first.map(|_| format!("slack:UAGENT{}", i % 7)),
            }
        })
        .collect()
}

const INSERT: &str = "INSERT INTO tickets (version, title, body, reporter, department, priority, \
    tags, status, created_at, updated_at, first_response_at, resolved_at, closed_at, assignee) ";

/// Each ticket's audit log as the desk writes it: opened; claimed at its first response
/// (assigned, then open → in progress); resolved or closed. `{OBJ}` is the database's JSON
/// object function.
const EVENTS: [&str; 5] = [
    "SELECT id, created_at, NULL, 'created', {OBJ}('kind', 'created', 'origin', 'command', \
     'department', department, 'rule', NULL, 'reasons', {ARR}()) FROM tickets",
    "SELECT id, first_response_at, assignee, 'assigned', {OBJ}('kind', 'assigned', 'from', NULL, \
     'to', {OBJ}('platform', 'slack', 'id', substr(assignee, 7))) FROM tickets \
     WHERE first_response_at IS NOT NULL",
    "SELECT id, first_response_at, assignee, 'status_changed', {OBJ}('kind', 'status_changed', \
     'from', 'open', 'to', 'in_progress', 'reason', NULL) FROM tickets \
     WHERE first_response_at IS NOT NULL",
    "SELECT id, resolved_at, assignee, 'status_changed', {OBJ}('kind', 'status_changed', \
     'from', CASE WHEN first_response_at IS NULL THEN 'open' ELSE 'in_progress' END, \
     'to', 'resolved', 'reason', NULL) FROM tickets WHERE resolved_at IS NOT NULL",
    "SELECT id, closed_at, assignee, 'status_changed', {OBJ}('kind', 'status_changed', \
     'from', CASE WHEN first_response_at IS NULL THEN 'open' ELSE 'in_progress' END, \
     'to', 'closed', 'reason', NULL) FROM tickets WHERE closed_at IS NOT NULL",
];

/// Writes every ticket's audit log (`json` names the database's JSON object and array
/// functions), then fills each ticket's history from it with the statement of the history
/// `migration`, timing that.
async fn audit_log<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    name: &str,
    json: (&str, &str),
    migration: &str,
) where
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
{
    for sql in events(json.0, json.1) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap();
    }
    let fill = &migration[migration.find("UPDATE tickets").expect("the fill")..];
    let t = Instant::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(fill.to_string()))
        .execute(pool)
        .await
        .unwrap();
    println!(
        "{name}: history filled from the audit log in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

/// The audit log's statements for a database with JSON functions `obj` and `arr`.
fn events(obj: &str, arr: &str) -> Vec<String> {
    EVENTS
        .iter()
        .map(|sel| {
            format!(
                "INSERT INTO ticket_events (ticket_id, at, actor, kind, data) {}",
                sel.replace("{OBJ}", obj).replace("{ARR}", arr)
            )
        })
        .collect()
}

async fn fill_sqlite(pool: &sqlx::SqlitePool, rows: &[Row]) {
    for chunk in rows.chunks(2000) {
        let mut tx = pool.begin().await.unwrap();
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(INSERT);
        q.push_values(chunk, |mut b, r| {
            b.push_bind(1i64)
                .push_bind("Customer problem")
                .push_bind("details")
                .push_bind("slack:UCUSTOMER")
                .push_bind(&r.department)
                .push_bind(r.priority)
                .push_bind(&r.tags)
                .push_bind(r.status)
                .push_bind(ts(r.created))
                .push_bind(ts(r.created))
                .push_bind(r.first.map(ts))
                .push_bind(r.resolved.map(ts))
                .push_bind(r.closed.map(ts))
                .push_bind(&r.assignee);
        });
        q.build().execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    audit_log(
        pool,
        "SQLite",
        ("json_object", "json_array"),
        include_str!("../migrations/sqlite/20261202000002_ticket_history.sql"),
    )
    .await;
    extras_sqlite(pool).await;
}

async fn extras_sqlite(pool: &sqlx::SqlitePool) {
    // CSAT for every 5th resolved ticket, NPS answers and a daily custom metric.
    sqlx::query(
        "INSERT INTO csat_responses (ticket_id, score, responder, created_at) \
         SELECT id, 1 + (id % 5), 'slack:UCUSTOMER', resolved_at FROM tickets \
         WHERE resolved_at IS NOT NULL AND id % 5 = 0",
    )
    .execute(pool)
    .await
    .unwrap();
    let mut tx = pool.begin().await.unwrap();
    for day in 0..730 {
        let at = now() - Duration::days(day);
        for k in 0..10 {
            let at = ts(at - Duration::minutes(i64::from(k) * 37));
            sqlx::query("INSERT INTO metric_samples (name, value, department, recorded_at, received_at) VALUES (?, ?, ?, ?, ?)")
                .bind(if k < 9 { "nps" } else { "mrr" })
                .bind(if k < 9 { f64::from((day as u32 + k) % 11) } else { 10_000.0 + day as f64 })
                .bind(None::<String>)
                .bind(&at)
                .bind(&at)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
}

async fn fill_pg(pool: &sqlx::PgPool, rows: &[Row]) {
    for chunk in rows.chunks(2000) {
        let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(INSERT);
        q.push_values(chunk, |mut b, r| {
            b.push_bind(1i64)
                .push_bind("Customer problem")
                .push_bind("details")
                .push_bind("slack:UCUSTOMER")
                .push_bind(&r.department)
                .push_bind(r.priority)
                .push_bind(sqlx::types::Json(
                    serde_json::from_str::<serde_json::Value>(&r.tags).unwrap(),
                ))
                .push_bind(r.status)
                .push_bind(r.created)
                .push_bind(r.created)
                .push_bind(r.first)
                .push_bind(r.resolved)
                .push_bind(r.closed)
                .push_bind(&r.assignee);
        });
        q.build().execute(pool).await.unwrap();
    }
    audit_log(
        pool,
        "PostgreSQL",
        ("jsonb_build_object", "jsonb_build_array"),
        include_str!("../migrations/postgres/20261202000002_ticket_history.sql"),
    )
    .await;
    sqlx::query(
        "INSERT INTO csat_responses (ticket_id, score, responder, created_at) \
         SELECT id, 1 + (id % 5), 'slack:UCUSTOMER', resolved_at FROM tickets \
         WHERE resolved_at IS NOT NULL AND id % 5 = 0",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO metric_samples (name, value, department, recorded_at, received_at) \
         SELECT name, value, NULL, at, at FROM (\
           SELECT CASE WHEN k < 9 THEN 'nps' ELSE 'mrr' END AS name, \
                  CASE WHEN k < 9 THEN (d + k) % 11 ELSE 10000 + d END AS value, \
                  $1::timestamptz - make_interval(days => d) - make_interval(mins => k * 37) AS at \
           FROM generate_series(0, 729) d, generate_series(0, 9) k) s",
    )
    .bind(now())
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
}

/// Median and p90 (nearest rank) in ms.
fn stats(mut v: Vec<StdDuration>) -> (f64, f64) {
    v.sort();
    let ms = |d: StdDuration| d.as_secs_f64() * 1000.0;
    (
        ms(support::percentile(&v, 50)),
        ms(support::percentile(&v, 90)),
    )
}

async fn measure(name: &str, desk: &Desk) {
    let tz = chrono_tz::Europe::Berlin;
    let one = vec!["dept03".to_string()];
    for (label, depts) in [("whole organisation", &vec![]), ("one department", &one)] {
        // Warm the caches once, as a running bot's would be.
        let r = report(desk, "weekly", tz, Period::Week, depts, now())
            .await
            .unwrap();
        let mut times = Vec::new();
        let mut render_times = Vec::new();
        // The whole process's CPU time over the runs: the store's threads and, for SQLite,
        // the database's own work (PostgreSQL's server process is not counted).
        let cpu_before = support::cpu_of(std::process::id());
        for _ in 0..RUNS {
            let start = Instant::now();
            let r = report(desk, "weekly", tz, Period::Week, depts, now())
                .await
                .unwrap();
            times.push(start.elapsed());
            let start = Instant::now();
            let msg = render(&r, tz);
            render_times.push(start.elapsed());
            // The digest's text lives in its fields and sections as much as in `text`.
            assert!(!msg.plain().trim().is_empty());
        }
        let cpu = support::cpu_of(std::process::id()).saturating_sub(cpu_before);
        let (median, p90) = stats(times);
        let (rmedian, _) = stats(render_times);
        println!(
            "  {name}, {label}: report median {median:.1} ms, p90 {p90:.1} ms, CPU {:.0} ms each; render {rmedian:.2} ms \
             (opened {}, resolved {}, open at end {}, breached {})",
            cpu.as_secs_f64() * 1000.0 / RUNS as f64,
            r.overall.current.opened,
            r.overall.current.resolved,
            r.overall.current.backlog,
            r.overall.current.sla_first_response.breached + r.overall.current.sla_resolution.breached
        );
    }
    let w_from = now() - Duration::days(14);
    for (label, depts) in [
        ("whole organisation", vec![]),
        ("one department", one.clone()),
    ] {
        let mut reads = Vec::new();
        for _ in 0..RUNS {
            let start = Instant::now();
            desk.store
                .digest_input(w_from, now(), &depts)
                .await
                .unwrap();
            reads.push(start.elapsed());
        }
        let (median, _) = stats(reads);
        println!("  {name}, {label}: of which the store's read: median {median:.1} ms");
    }
    let input = desk.store.digest_input(w_from, now(), &[]).await.unwrap();
    println!(
        "  {name}: rows read per digest: {} tickets, {} CSAT answers, {} metric values",
        input.tickets.len(),
        input.csat.len(),
        input.metrics.len()
    );
}

async fn desk(store: DynStore) -> Desk {
    let config = Config::from_toml(&config(), "bench", |_| None).expect("bench config");
    build_desk_with_store(config, store, Arc::new(ManualClock::new(now())))
        .await
        .expect("desk")
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "switchboard digest benchmark: {n} tickets over two years, {DEPARTMENTS} departments, {} ({} cores)",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    let generated = rows(n);

    let keep = std::env::var("BENCH_KEEP")
        .ok()
        .map(std::path::PathBuf::from);
    // `BENCH_ONLY=sqlite` or `postgres` measures one database (for profiling one).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "postgres" {
        let dir = tempfile::tempdir().unwrap();
        let file = match &keep {
            Some(k) => k.join(format!("digest-{n}.db")),
            None => dir.path().join("digest.db"),
        };
        // The marker is written once the fill has finished.
        let marker = file.with_extension("filled");
        let filled = keep.is_some() && marker.exists();
        if !filled {
            // A fill that did not finish starts again from nothing.
            let _ = std::fs::remove_file(&file);
        }
        let url = format!("sqlite://{}", file.display());
        let sqlite = SqliteStore::open(&url).await.unwrap();
        let start = Instant::now();
        let pool = sqlite.writer().clone();
        let d = desk(Arc::new(sqlite)).await;
        if !filled {
            fill_sqlite(&pool, &generated).await;
            if keep.is_some() {
                std::fs::write(&marker, b"").unwrap();
            }
        }
        println!(
            "SQLite: history written in {:.0} s",
            start.elapsed().as_secs_f64()
        );
        let since = switchboard::store::ts(now() - Duration::days(14));
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN SELECT id FROM tickets WHERE created_at > '{since}' \
             OR COALESCE(resolved_at, closed_at) IS NULL OR COALESCE(resolved_at, closed_at) > '{since}'"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        for (_, _, _, detail) in plan {
            println!("  plan: {detail}");
        }
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN SELECT id FROM tickets WHERE department = 'dept03' AND (created_at > '{since}' \
             OR COALESCE(resolved_at, closed_at) IS NULL OR COALESCE(resolved_at, closed_at) > '{since}')"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        for (_, _, _, detail) in plan {
            println!("  plan (one department): {detail}");
        }
        measure("SQLite", &d).await;
    }

    let pg_url = std::env::var("SWITCHBOARD_TEST_POSTGRES").ok().or_else(|| {
        let local = "127.0.0.1:5432".parse().unwrap();
        std::net::TcpStream::connect_timeout(&local, StdDuration::from_millis(500))
            .ok()
            .map(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
    });
    let pg_url = pg_url.filter(|_| only != "sqlite");
    match pg_url {
        Some(url) => {
            let schema = match keep {
                Some(_) => format!("sbbench_keep_{n}"),
                None => format!("sbbench_{}", uuid::Uuid::new_v4().simple()),
            };
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            // Metric samples are written last: with them there, the fill had finished.
            let filled = keep.is_some()
                && sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(format!(
                    "SELECT EXISTS (SELECT 1 FROM {schema}.metric_samples)"
                )))
                .fetch_one(&admin)
                .await
                .unwrap_or(false);
            if !filled {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&admin)
                .await
                .unwrap();
            }
            let pg = PgStore::open_in_schema(&url, &schema).await.unwrap();
            let pool = pg.pool().clone();
            let start = Instant::now();
            let d = desk(Arc::new(pg)).await;
            if !filled {
                fill_pg(&pool, &generated).await;
            }
            println!(
                "PostgreSQL: history written in {:.0} s",
                start.elapsed().as_secs_f64()
            );
            let plan: Vec<(String,)> = sqlx::query_as(
                "EXPLAIN SELECT id FROM tickets WHERE created_at > $1 \
                 OR COALESCE(resolved_at, closed_at) IS NULL OR COALESCE(resolved_at, closed_at) > $1",
            )
            .bind(now() - Duration::days(14))
            .fetch_all(&pool)
            .await
            .unwrap();
            for (line,) in plan {
                println!("  plan: {line}");
            }
            measure("PostgreSQL", &d).await;
            if keep.is_none() {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&admin)
                    .await
                    .unwrap();
            }
        }
        None => println!(
            "\nPostgreSQL: skipped (set SWITCHBOARD_TEST_POSTGRES or run one on 127.0.0.1:5432)"
        ),
    }
}
