//! The web view's ticket list and search over a large store: `BENCH_WEB_TICKETS` (default
//! 1,000,000) tickets over two years across 12 departments, with titles and bodies drawn from
//! a 3,000-word made-up vocabulary of skewed frequency (plus a few help-desk words), on SQLite
//! and on PostgreSQL when `SWITCHBOARD_TEST_POSTGRES` (or the local default) answers.
//!
//! Each page is fetched over real HTTP from the server `switchboard run` uses, signed in as
//! an admin (every ticket) or as a member of one department (its tickets and their own), and
//! timed from request to the whole HTML answer: the default list, any status, a department, a
//! page deep in the history, rare filters together, full-text searches of a common word, of a
//! rare one and of two words, and one transcript. Prints the median and p99 of
//! `BENCH_WEB_RUNS` (default 100) fetches of each. Target: p99 ≤ 100 ms for every list and
//! search page.
//!
//! Run: `cargo bench --bench web_list`.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use switchboard::app::{build_desk_with_store, serve};
use switchboard::config::Config;
use switchboard::core::clock::ManualClock;
use switchboard::core::directory::Actor;
use switchboard::core::types::{Platform, UserRef};
use switchboard::desk::Desk;
use switchboard::store::{DynStore, PgStore, SqliteStore};

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;
use support::{percentile, postgres_url};

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1000.0
}

const DEPARTMENTS: usize = 12;
const TAGS: [&str; 6] = ["money", "login", "vip", "bug", "export", "mobile"];
const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];
/// Help-desk words mixed into the made-up vocabulary, each with its chance per word drawn:
/// with about 45 words a ticket, "refund" is in about 10% of tickets, "invoice" 5%, "vat" 2%,
/// "chargeback" 0.1%.
const WORDS: [(&str, f64); 4] = [
    ("refund", 0.0023),
    ("invoice", 0.0011),
    ("vat", 0.00045),
    ("chargeback", 0.000022),
];

fn config() -> String {
    let mut c = String::from(
        "admins = [\"slack:UADMIN\"]\n[web]\nenabled = true\npublic_url = \"http://127.0.0.1:8080\"\n",
    );
    for d in 0..DEPARTMENTS {
        c.push_str(&format!(
            "[[departments]]\nname = \"dept{d:02}\"\nchannels = [\"slack:C{d:02}\"]\nmembers = [\"slack:UMEMBER{d:02}\"]\n"
        ));
    }
    c
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
}

/// A made-up word for rank `i`: syllables, so the stemmers treat it as a word.
fn word(i: usize) -> String {
    const SYL: [&str; 12] = [
        "ka", "lo", "mi", "ne", "ru", "to", "sa", "vi", "de", "po", "ga", "zu",
    ];
    let mut w = String::new();
    let mut n = i + 12;
    while n > 0 {
        w.push_str(SYL[n % 12]);
        n /= 12;
    }
    w
}

/// One generated ticket.
struct Row {
    title: String,
    body: String,
    department: String,
    priority: &'static str,
    tags: String,
    status: &'static str,
    created: DateTime<Utc>,
    assignee: Option<String>,
}

fn rows(n: usize) -> Vec<Row> {
    let mut rng = fastrand::Rng::with_seed(7);
    let vocabulary: Vec<String> = (0..3000).map(word).collect();
    // Skewed: rank r is drawn about 1/r as often (a Zipf-like law), by squaring a uniform.
    let draw = |rng: &mut fastrand::Rng| -> String {
        let mut x = rng.f64();
        for (w, p) in WORDS {
            if x < p {
                return w.to_string();
            }
            x -= p;
        }
        // Skewed: low ranks far more often than high ones (a Zipf-like law), by squaring a
        // uniform draw.
        let r = (rng.f64().powi(2) * vocabulary.len() as f64) as usize;
        vocabulary[r.min(vocabulary.len() - 1)].clone()
    };
    let span = Duration::days(730).num_seconds();
    let start = now() - Duration::days(730);
    (0..n)
        .map(|i| {
            let created = start + Duration::seconds((i as i64 * span) / n as i64);
            let title: Vec<String> = (0..rng.usize(4..9)).map(|_| draw(&mut rng)).collect();
            let body: Vec<String> = (0..rng.usize(20..60)).map(|_| draw(&mut rng)).collect();
            let tags: Vec<&str> = (0..rng.usize(0..3))
                .map(|_| TAGS[rng.usize(0..TAGS.len())])
                .collect();
            let age = now() - created;
            let status = if age < Duration::days(2) {
                ["open", "in_progress", "waiting_on_customer"][i % 3]
            } else if rng.u32(0..1000) < 3 {
                "open"
            } else if i % 50 == 0 {
                "closed"
            } else {
                "resolved"
            };
            Row {
                title: title.join(" "),
                body: body.join(" "),
                department: format!("dept{:02}", i % DEPARTMENTS),
                priority: PRIORITIES[rng.usize(0..4)],
                tags: serde_json::to_string(&tags).unwrap(),
                status,
                created,
                assignee: (status != "open").then(|| format!("slack:UAGENT{}", i % 7)),
            }
        })
        .collect()
}

const INSERT: &str = "INSERT INTO tickets (version, title, body, reporter, department, priority, \
    tags, status, created_at, updated_at, assignee) ";

async fn fill_sqlite(pool: &sqlx::SqlitePool, rows: &[Row]) {
    // The search index is filled once at the end, as its migration does, instead of by the
    // insert trigger row by row.
    sqlx::query("DROP TRIGGER tickets_fts_insert")
        .execute(pool)
        .await
        .unwrap();
    for chunk in rows.chunks(2000) {
        let mut tx = pool.begin().await.unwrap();
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(INSERT);
        q.push_values(chunk, |mut b, r| {
            let at = switchboard::store::ts(r.created);
            b.push_bind(1i64)
                .push_bind(&r.title)
                .push_bind(&r.body)
                .push_bind("slack:UCUSTOMER")
                .push_bind(&r.department)
                .push_bind(r.priority)
                .push_bind(&r.tags)
                .push_bind(r.status)
                .push_bind(at.clone())
                .push_bind(at)
                .push_bind(&r.assignee);
        });
        q.build().execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    for statement in [
        "INSERT INTO tickets_fts (tickets_fts) VALUES ('rebuild')",
        "CREATE TRIGGER tickets_fts_insert AFTER INSERT ON tickets BEGIN \
           INSERT INTO tickets_fts (rowid, title, body) VALUES (new.id, new.title, new.body); END",
        "ANALYZE",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
}

async fn fill_pg(pool: &sqlx::PgPool, rows: &[Row]) {
    // The search index is built once at the end, from its migration's own statement.
    sqlx::query("DROP INDEX tickets_search")
        .execute(pool)
        .await
        .unwrap();
    for chunk in rows.chunks(2000) {
        let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(INSERT);
        q.push_values(chunk, |mut b, r| {
            b.push_bind(1i64)
                .push_bind(&r.title)
                .push_bind(&r.body)
                .push_bind("slack:UCUSTOMER")
                .push_bind(&r.department)
                .push_bind(r.priority)
                .push_bind(sqlx::types::Json(
                    serde_json::from_str::<serde_json::Value>(&r.tags).unwrap(),
                ))
                .push_bind(r.status)
                .push_bind(r.created)
                .push_bind(r.created)
                .push_bind(&r.assignee);
        });
        q.build().execute(pool).await.unwrap();
    }
    let migration: String = include_str!("../migrations/postgres/20261207000003_ticket_search.sql")
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let create = migration
        .split(';')
        .find(|s| s.contains("CREATE INDEX"))
        .unwrap()
        .to_string();
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
}

/// A signed-in browser's cookie for `actor`, through a link from chat as a person would.
async fn cookie(base: &str, desk: &Desk, actor: &Actor) -> String {
    let link = desk.web_link(actor, None).await.unwrap();
    let token = link.rsplit('/').next().unwrap().to_string();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}/ui/signin"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "sign-in");
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

async fn measure(name: &str, desk: Desk, n: usize, runs: usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(desk.clone(), listener, Default::default(), async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    let admin = cookie(
        &base,
        &desk,
        &Actor::user(UserRef::new(Platform::Slack, "UADMIN")),
    )
    .await;
    let member = cookie(
        &base,
        &desk,
        &Actor::user(UserRef::new(Platform::Slack, "UMEMBER03")),
    )
    .await;
    let client = reqwest::Client::new();
    let deep = n / 2;
    let pages: Vec<(&str, String, &String)> = vec![
        ("list (active, admin)", "/ui/tickets".into(), &admin),
        ("list (any status)", "/ui/tickets?status=any".into(), &admin),
        (
            "list (one department)",
            "/ui/tickets?status=any&department=dept05".into(),
            &admin,
        ),
        (
            "list (deep page)",
            format!("/ui/tickets?status=any&before={deep}"),
            &admin,
        ),
        (
            "list (urgent, vip, closed)",
            "/ui/tickets?status=closed&priority=urgent&tag=vip".into(),
            &admin,
        ),
        (
            "list (member's scope)",
            "/ui/tickets?status=any".into(),
            &member,
        ),
        (
            "search (common word)",
            "/ui/tickets?status=any&q=refund".into(),
            &admin,
        ),
        (
            "search (rare word)",
            "/ui/tickets?status=any&q=chargebacks".into(),
            &admin,
        ),
        (
            "search (two words)",
            "/ui/tickets?status=any&q=invoice+vat".into(),
            &admin,
        ),
        (
            "search (member's scope)",
            "/ui/tickets?status=any&q=refund".into(),
            &member,
        ),
        ("transcript", format!("/ui/tickets/{deep}"), &admin),
    ];
    println!("\n{name}: page, median / p99 of {runs} fetches (ms), rows shown");
    for (label, path, cookie) in pages {
        let mut times = Vec::with_capacity(runs);
        let mut shown = 0;
        for _ in 0..runs {
            let start = Instant::now();
            let r = client
                .get(format!("{base}{path}"))
                .header("cookie", cookie.as_str())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{label}: {path}");
            let body = r.text().await.unwrap();
            times.push(start.elapsed());
            shown = body.matches("<tr>").count().saturating_sub(1);
        }
        times.sort();
        println!(
            "  {label:<28} {:>7.2} / {:>7.2}   {shown}",
            ms(percentile(&times, 50)),
            ms(percentile(&times, 99))
        );
    }
    let _ = stop.send(());
}

async fn desk(store: DynStore) -> Desk {
    let config = Config::from_toml(&config(), "bench", |_| None).expect("bench config");
    build_desk_with_store(config, store, Arc::new(ManualClock::new(now())))
        .await
        .expect("desk")
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_WEB_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("BENCH_WEB_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    println!(
        "switchboard web list benchmark: {n} tickets, {DEPARTMENTS} departments, {} ({} cores)",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    let generated = rows(n);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("web.db").display());
    let sqlite = SqliteStore::open(&url).await.unwrap();
    let pool = sqlite.writer().clone();
    let d = desk(Arc::new(sqlite)).await;
    let start = Instant::now();
    fill_sqlite(&pool, &generated).await;
    println!("SQLite: filled in {:.0} s", start.elapsed().as_secs_f64());
    measure("SQLite", d, n, runs).await;

    let Some(url) = postgres_url().await else {
        println!(
            "\nPostgreSQL: skipped (set SWITCHBOARD_TEST_POSTGRES or run one on 127.0.0.1:5432)"
        );
        return;
    };
    let schema = format!("sbbench_{}", uuid::Uuid::new_v4().simple());
    let pg = PgStore::open_in_schema(&url, &schema).await.unwrap();
    let pool = pg.pool().clone();
    let d = desk(Arc::new(pg)).await;
    let start = Instant::now();
    fill_pg(&pool, &generated).await;
    println!(
        "\nPostgreSQL: filled in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    measure("PostgreSQL", d, n, runs).await;
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
}
