//! The tickets API under load: `BENCH_API_TICKETS` (default 10,000) tickets through
//! `POST /api/tickets` from 32 concurrent clients, each with its own `external_id` (a tenth of
//! the requests repeat an earlier one, as a retrying monitor would), on SQLite and on
//! PostgreSQL when `SWITCHBOARD_TEST_POSTGRES` (or the local default) answers. Prints the
//! answer time (median, p99, max), the answers by status, and how long the department alerts
//! took to reach the fake Slack; checks that every answer was 201 or 200, no 5xx, one ticket
//! per external id and every alert delivered.
//!
//! Slack's published pace is one post a second per channel, which would hold 10,000 alerts
//! for hours; the benchmark raises `[slack.limits] posts_per_second` (the fake enforces no
//! limits here) so it measures the API and the pipeline behind it, not Slack's pace.
//!
//! Run: `cargo bench --bench tickets_api` (`BENCH_API_TICKETS=N` changes the size).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::slack::FakeSlack;
use serde_json::json;
use switchboard::app::{build_desk_with_store, serve, Adapters};
use switchboard::chat::slack::client::SlackApi;
use switchboard::config::{Config, Secret};
use switchboard::core::clock::SystemClock;
use switchboard::store::{DynStore, PgStore, SqliteStore, TicketFilter};

const CLIENTS: usize = 32;
const TOKEN: &str = "xoxb-bench";
const API_SECRET: &str = "bench-api-token-0123456789abcdef";
const DEPARTMENTS: [&str; 4] = ["ops", "billing", "web", "storage"];
/// The `team` label of each kind of request (payments and web route by label).
const TEAMS: [&str; 4] = ["payments", "ops", "web", "ops"];

const CONFIG: &str = r#"
[[departments]]
name = "ops"
channels = ["slack:COPS"]

[[departments]]
name = "billing"
channels = ["slack:CBILLING"]

[[departments]]
name = "web"
channels = ["slack:CWEB"]

[[departments]]
name = "storage"
channels = ["slack:CSTORAGE"]

[routing]
fallback = "ops"

[[routing.rules]]
name = "payments"
labels = { team = "payments" }
department = "billing"

[[routing.rules]]
name = "web"
labels = { team = "web" }
department = "web"

[[routing.rules]]
name = "storage"
keywords = ["disk", "volume"]
department = "storage"

[slack.limits]
posts_per_second = 1000
post_burst = 1000

[api]
[[api.tokens]]
name = "monitoring"
secret_env = "BENCH_API_SECRET"
endpoints = ["tickets"]
"#;

/// Tickets per database (`BENCH_API_TICKETS`, default 10,000).
fn size() -> usize {
    std::env::var("BENCH_API_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// The PostgreSQL server to measure on, if one answers.
fn postgres_url() -> Option<String> {
    if let Ok(url) = std::env::var("SWITCHBOARD_TEST_POSTGRES") {
        return Some(url);
    }
    let local = "127.0.0.1:5432".parse().unwrap();
    std::net::TcpStream::connect_timeout(&local, Duration::from_millis(500))
        .is_ok()
        .then(|| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

async fn run(label: &str, store: DynStore) {
    let n = size();
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    for d in DEPARTMENTS {
        fake.add_channel(&format!("C{}", d.to_uppercase()), d, true);
    }
    let config = Config::from_toml(CONFIG, "bench", |k| {
        (k == "BENCH_API_SECRET").then(|| API_SECRET.to_string())
    })
    .unwrap();
    let desk = build_desk_with_store(config, store, Arc::new(SystemClock))
        .await
        .unwrap();
    let api = SlackApi::new(&fake.api_url, &Secret::new(TOKEN))
        .unwrap()
        .with_limits(desk.config.slack.limits, Default::default());
    let adapters = Adapters {
        deliveries: vec![Arc::new(api)],
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(desk.clone(), listener, adapters, async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (c..n).step_by(CLIENTS) {
                // Every tenth request repeats the one before it on this client.
                let id = if i % 10 == 9 && i >= CLIENTS {
                    i - CLIENTS
                } else {
                    i
                };
                let body = json!({
                    "title": match id % 4 {
                        0 => format!("Checkout errors on node {id}"),
                        1 => format!("Disk almost full on db-{id}"),
                        2 => format!("Slow page {id}"),
                        _ => format!("Queue backlog {id}"),
                    },
                    "body": "Error rate above threshold for 5 minutes.",
                        "labels": { "team": TEAMS[id % 4], "env": "prod" },
                    "links": [format!("https://grafana.example.com/d/{id}")],
                    "external_id": format!("alert-{id}"),
                });
                let t0 = Instant::now();
                let r = client
                    .post(format!("{base}/api/tickets"))
                    .bearer_auth(API_SECRET)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                out.push((t0.elapsed(), r.status().as_u16()));
            }
            out
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.extend(t.await.unwrap());
    }
    let sending = started.elapsed();
    let mut times: Vec<Duration> = answers.iter().map(|(d, _)| *d).collect();
    times.sort();
    let created = answers.iter().filter(|(_, s)| *s == 201).count();
    let existing = answers.iter().filter(|(_, s)| *s == 200).count();
    let other: Vec<u16> = answers
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| *s != 200 && *s != 201)
        .collect();
    let tickets = desk
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap()
        .len();
    // Every ticket's department alert reaches the fake Slack.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut alerts = 0;
    while Instant::now() < deadline {
        alerts = fake
            .bot_messages()
            .iter()
            .filter(|m| m.thread_ts.is_none())
            .count();
        if alerts >= tickets {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = started.elapsed();
    println!("{label}: {n} POST /api/tickets from {CLIENTS} clients (a tenth repeat an earlier external_id)");
    println!(
        "  answer time median {:?}   p99 {:?}   max {:?}   ({:.0} requests/s)",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().unwrap(),
        n as f64 / sending.as_secs_f64()
    );
    println!(
        "  201 {created}, 200 {existing}, other {}; tickets {tickets}; department alerts delivered {alerts} (all by {:?})",
        other.len(),
        delivered
    );
    assert!(other.is_empty(), "answers other than 200/201: {other:?}");
    assert_eq!(created, tickets, "one ticket per 201");
    assert_eq!(created + existing, n);
    assert_eq!(alerts, tickets, "every department alert delivered");
    let _ = stop.send(());
    let _ = server.await;
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    run(
        "SQLite",
        Arc::new(SqliteStore::open(&url).await.unwrap()) as DynStore,
    )
    .await;
    match postgres_url() {
        Some(url) => {
            let schema = format!("bench_api_{}", std::process::id());
            let store = PgStore::open_in_schema(&url, &schema).await.unwrap();
            run("PostgreSQL", Arc::new(store) as DynStore).await;
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&pool)
            .await;
        }
        None => println!("PostgreSQL: skipped (nothing answers on 127.0.0.1:5432 and SWITCHBOARD_TEST_POSTGRES is not set)"),
    }
}
