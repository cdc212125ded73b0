//! Time from a reaction dispatch to the department alert being sent, through the real
//! Discord adapter: the fake Discord sends MESSAGE_REACTION_ADD over the gateway WebSocket,
//! serenity's handler stores it in the inbox, the inbox worker fetches the message over REST and
//! opens the ticket, and the outbox worker posts the reply and the alert. "Sent" is when the
//! fake received the alert's `POST /channels/{id}/messages`. Workers run with the production
//! settings (`switchboard run`'s defaults).
//!
//! Two shapes, 200 flags each (`BENCH_FLAGS=N` changes it): one flag at a time, and all at once
//! (a burst). Prints median, p90, p99 and max per store.
//!
//! Run: `cargo bench --bench discord_flags` (PostgreSQL from `SWITCHBOARD_TEST_POSTGRES`, else
//! 127.0.0.1:5432 when it answers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::discord::{FakeDiscord, BOT_USER_ID};
use switchboard::app::build_desk_with_store;
use switchboard::chat::discord::client::DiscordApi;
use switchboard::chat::discord::gateway::{Gateway, GatewaySettings};
use switchboard::chat::discord::source::DiscordEventSource;
use switchboard::chat::{Delivery, EventSource};
use switchboard::config::{Config, Secret};
use switchboard::core::clock::SystemClock;
use switchboard::inbox::{InboxSettings, InboxWorker};
use switchboard::outbox::{OutboxSettings, OutboxWorker};
use switchboard::store::{DynStore, PgStore, SqliteStore};

const CONFIG: &str = r#"
[[departments]]
name = "billing"
channels = ["discord:2001"]
members = ["discord:1002"]
[[departments]]
name = "support"
channels = ["discord:2002"]
# One person flags every message here; the per-person flag limit would refuse most.
[flagging]
emojis = ["🎫"]
who = "members"
limit = 0
[routing]
fallback = "support"
[[routing.rules]]
name = "refunds"
keywords = ["refund"]
department = "billing"
"#;

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;
use support::{postgres_url, report};

const TOKEN: &str = "bench-discord-token";
const HELP: &str = "2100";

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
        for (id, name) in [(HELP, "help"), ("2001", "billing"), ("2002", "support")] {
            fake.add_channel(id, name);
        }
        fake.add_member("1002", "Bob", &[]);
        fake.add_member("1099", "Casey", &[]);
        let api = DiscordApi::new(&fake.base_url, &Secret::new(TOKEN)).unwrap();
        let gateway = Gateway::start(
            api.clone(),
            BOT_USER_ID.into(),
            desk.store.clone(),
            desk.clock.clone(),
            GatewaySettings::default(),
        )
        .await
        .unwrap();
        assert!(gateway.wait_sessions(0, Duration::from_secs(10)).await > 0);
        let inbox = InboxWorker::new(
            desk.clone(),
            vec![Arc::new(DiscordEventSource::new(
                api.clone(),
                desk.config.flag_emojis.clone(),
            )) as Arc<dyn EventSource>],
            InboxSettings::default(),
        );
        let outbox = OutboxWorker::new(
            desk.store.clone(),
            vec![Arc::new(api) as Arc<dyn Delivery>],
            desk.clock.clone(),
            desk.telemetry.clone(),
            OutboxSettings::default(),
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(inbox.run(stopped.clone()));
        tokio::spawn(outbox.run(stopped));
        Bench {
            fake,
            gateway,
            stop,
            next: 0,
        }
    }

    /// Says `n` messages, reacts to all of them (at once, or each after the previous alert),
    /// and returns each flag's time from dispatch to its alert's arrival at the fake.
    async fn flags(&mut self, n: usize, burst: bool) -> Vec<Duration> {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        for _ in 0..n {
            self.next += 1;
            let id = self
                .fake
                .say(HELP, "1099", &format!("refund for order {}", self.next));
            pending.push((self.next, id));
        }
        let mut started = Vec::new();
        for (i, (ticket, id)) in pending.into_iter().enumerate() {
            let t0 = Instant::now();
            self.fake.react(HELP, &id, "1002", "🎫");
            started.push((ticket, t0));
            if !burst {
                out.push(self.wait_alert(ticket, t0).await);
            }
            let _ = i;
        }
        if burst {
            for (ticket, t0) in started {
                out.push(self.wait_alert(ticket, t0).await);
            }
        }
        out
    }

    /// Waits for the alert of ticket number `n` (tickets open in flag order) and returns how
    /// long after `t0` the fake received it.
    async fn wait_alert(&self, n: usize, t0: Instant) -> Duration {
        let prefix = format!("T-{n} ");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let hit = self.fake.requests().into_iter().find(|r| {
                r.method == "POST"
                    && r.path == "channels/2001/messages"
                    && r.body["embeds"][0]["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(&prefix))
            });
            if let Some(r) = hit {
                return r.at.saturating_duration_since(t0);
            }
            assert!(
                Instant::now() < deadline,
                "the alert of T-{n} never arrived"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.gateway.shutdown().await;
    }
}

async fn run(label: &str, store: DynStore, n: usize) {
    println!("{label}:");
    let mut b = Bench::start(store).await;
    // Warm-up: connections, caches, prepared statements.
    b.flags(5, false).await;
    report("one flag at a time", b.flags(n, false).await);
    report("all at once (burst)", b.flags(n, true).await);
    b.stop().await;
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_FLAGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!(
        "switchboard Discord flag benchmark: reaction dispatch → alert sent, {n} flags per shape, {} cores",
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite = Arc::new(SqliteStore::open(&url).await.unwrap());
    run("SQLite", sqlite, n).await;
    match postgres_url().await {
        Some(url) => {
            let schema = format!("bench_discord_{}", std::process::id());
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
