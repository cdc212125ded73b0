//! First-response latency of Discord interactions while the outbox is held back by 429s:
//! the fake Discord sends INTERACTION_CREATE over the gateway to the real serenity client,
//! Switchboard runs the command (`/ticket new …`, which queues an alert) and answers through
//! `POST /interactions/{id}/{token}/callback`; "first response" is when the fake received that
//! callback. Meanwhile every message create is answered 429 with `retry_after` 30 s, so the
//! outbox is stuck waiting and must not slow the answers down.
//!
//! Two shapes, 200 interactions each (`BENCH_INTERACTIONS=N` changes it): one at a time and
//! all at once. Prints median, p90, p99 and max per store.
//!
//! Run: `cargo bench --bench discord_interactions` (PostgreSQL from
//! `SWITCHBOARD_TEST_POSTGRES`, else 127.0.0.1:5432 when it answers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::discord::{FakeDiscord, Fault, BOT_USER_ID};
use serde_json::json;
use switchboard::app::build_desk_with_store;
use switchboard::chat::discord::client::DiscordApi;
use switchboard::chat::discord::gateway::{Gateway, GatewaySettings};
use switchboard::chat::discord::interact::DiscordInteractions;
use switchboard::chat::Delivery;
use switchboard::config::{Config, Secret};
use switchboard::core::clock::SystemClock;
use switchboard::outbox::{OutboxSettings, OutboxWorker};
use switchboard::store::{DynStore, PgStore, SqliteStore};

const CONFIG: &str = r#"
[[people]]
id = "bob"
discord = "1002"
[[departments]]
name = "support"
channels = ["discord:2002"]
members = ["person:bob"]
[routing]
fallback = "support"
"#;

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;
use support::{postgres_url, report};

const TOKEN: &str = "bench-interactions-token";

struct Bench {
    fake: FakeDiscord,
    gateway: Gateway,
    stop: tokio::sync::watch::Sender<bool>,
    next: usize,
}

impl Bench {
    async fn start(store: DynStore) -> Bench {
        let config = Config::from_toml(CONFIG, "bench config", |_| None).expect("bench config");
        let desk = build_desk_with_store(config, store, Arc::new(SystemClock))
            .await
            .expect("desk");
        let fake = FakeDiscord::start(TOKEN).await.unwrap();
        fake.add_channel("2100", "help");
        fake.add_channel("2002", "support");
        fake.add_member("1002", "Bob", &[]);
        let api = DiscordApi::new(&fake.base_url, &Secret::new(TOKEN)).unwrap();
        let gateway = Gateway::start(
            api.clone(),
            BOT_USER_ID.into(),
            desk.store.clone(),
            desk.clock.clone(),
            GatewaySettings {
                interactions: Some(DiscordInteractions::new(desk.clone(), api.clone())),
                ..GatewaySettings::default()
            },
        )
        .await
        .unwrap();
        assert!(gateway.wait_sessions(0, Duration::from_secs(10)).await > 0);
        let outbox = OutboxWorker::new(
            desk.store.clone(),
            vec![Arc::new(api) as Arc<dyn Delivery>],
            desk.clock.clone(),
            desk.telemetry.clone(),
            OutboxSettings::default(),
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(outbox.run(stopped));
        Bench {
            fake,
            gateway,
            stop,
            next: 0,
        }
    }

    fn send(&mut self) -> (String, Instant) {
        self.next += 1;
        let data = json!({
            "id": "900000000000000001", "name": "ticket", "type": 1,
            "options": [{ "name": "new", "type": 1, "options": [
                { "name": "title", "type": 3, "value": format!("printer jam {}", self.next) }
            ]}]
        });
        let t0 = Instant::now();
        (self.fake.interact(2, "1002", "2100", data, None), t0)
    }

    /// When the callback for `token` reached the fake, after `t0`.
    async fn answered(&self, token: &str, t0: Instant) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let hit =
                self.fake.requests().into_iter().find(|r| {
                    r.method == "POST" && r.path.ends_with(&format!("/{token}/callback"))
                });
            if let Some(r) = hit {
                assert_eq!(r.status, 204, "the answer was accepted");
                return r.at.saturating_duration_since(t0);
            }
            assert!(Instant::now() < deadline, "no answer to {token}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn run(&mut self, n: usize, burst: bool) -> Vec<Duration> {
        let mut out = Vec::new();
        let mut sent = Vec::new();
        for _ in 0..n {
            let (token, t0) = self.send();
            if burst {
                sent.push((token, t0));
            } else {
                out.push(self.answered(&token, t0).await);
            }
        }
        for (token, t0) in sent {
            out.push(self.answered(&token, t0).await);
        }
        out
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.gateway.shutdown().await;
    }
}

async fn run(label: &str, store: DynStore, n: usize) {
    println!("{label}:");
    let mut b = Bench::start(store).await;
    // Hold the outbox back: every message create is rate limited for 30 s.
    b.fake.fail(
        "POST /channels/{channel_id}/messages",
        &vec![Fault::RateLimited(30.0); 4 * n + 20],
    );
    b.run(5, false).await;
    report("one at a time", b.run(n, false).await);
    report("all at once (burst)", b.run(n, true).await);
    let held = b
        .fake
        .requests()
        .iter()
        .filter(|r| r.route == "/channels/{channel_id}/messages" && r.status == 429)
        .count();
    let delivered = b.fake.sent().iter().filter(|m| !m.ephemeral).count();
    println!("  (message creates answered 429 meanwhile: {held}; channel messages delivered: {delivered})");
    b.stop().await;
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_INTERACTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!(
        "switchboard Discord interaction benchmark: dispatch → first response, {n} per shape, outbox held back by 429s, {} cores",
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    run(
        "SQLite",
        Arc::new(SqliteStore::open(&url).await.unwrap()),
        n,
    )
    .await;
    match postgres_url().await {
        Some(url) => {
            let schema = format!("bench_interactions_{}", std::process::id());
            let pg = Arc::new(PgStore::open_in_schema(&url, &schema).await.unwrap());
            run("PostgreSQL", pg, n).await;
            if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&pool).await;
            }
        }
        None => println!("PostgreSQL: skipped (nothing answers on 127.0.0.1:5432 and SWITCHBOARD_TEST_POSTGRES is unset)"),
    }
}
