//! Acknowledgement latency of Slack's Events API in HTTP mode while Slack is saturated: 200
//! flags from 32 concurrent senders, each a signed `reaction_added` POSTed to `/slack/events`,
//! while the fake Slack answers every `chat.postMessage` with 429 (Retry-After 10). The ack is
//! the HTTP 200, sent only after the event is committed to the inbox. Prints the median and p99
//! and checks that every acknowledged flag became a ticket.
//!
//! The same load is then pushed over Socket Mode through the fake's WebSocket.
//!
//! Run: `cargo bench --bench slack_ack` (`BENCH_FLAGS=N` changes the flags per mode).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::slack::{FakeSlack, Fault, BOT_USER};
use serde_json::json;
use switchboard::app::{build_desk_with_store, serve, Adapters};
use switchboard::chat::slack::client::SlackApi;
use switchboard::chat::slack::events::sign;
use switchboard::chat::slack::source::SlackEventSource;
use switchboard::config::{Config, Secret};
use switchboard::core::clock::SystemClock;
use switchboard::store::{SqliteStore, TicketFilter};

/// The client's pacing opened up: the fake enforces no limits, and at Slack's real pace the
/// 200 `conversations.replies` fetches behind the flags would take four minutes (Tier 3), so
/// "every acknowledged flag became a ticket" could not be checked within the run.
const UNPACED: switchboard::config::SlackLimits = switchboard::config::SlackLimits {
    tiers: [10_000; 4],
    posts_per_second: 1_000,
    post_burst: 1_000,
    instances: 1,
};

/// Flags per mode (`BENCH_FLAGS`, default 200).
fn flags() -> usize {
    std::env::var("BENCH_FLAGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}
const SENDERS: usize = 32;
const TOKEN: &str = "xoxb-bench";
const SECRET: &str = "bench-signing-secret";

const CONFIG: &str = r#"
[[departments]]
name = "billing"
channels = ["slack:CBILLING"]
members = ["slack:UBOB"]
# One person flags every message here; the per-person flag limit would refuse most.
[flagging]
limit = 0
[routing]
fallback = "billing"
"#;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main]
async fn main() {
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    fake.add_channel("CHELP", "help", true);
    fake.add_channel("CBILLING", "billing", true);
    for i in 0..flags() {
        fake.seed_message(
            "CHELP",
            &format!("1772440000.{i:06}"),
            "UCUSTOMER",
            "I was charged twice",
            None,
        );
    }
    fake.fail_next("chat.postMessage", Fault::RateLimited(10), 1_000_000);

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let config = Config::from_toml(CONFIG, "bench", |k| {
        (k == "SLACK_SIGNING_SECRET").then(|| SECRET.to_string())
    })
    .unwrap();
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let desk = build_desk_with_store(config, store, Arc::new(SystemClock))
        .await
        .unwrap();
    let api = SlackApi::new(&fake.api_url, &Secret::new(TOKEN))
        .unwrap()
        .with_limits(UNPACED, Default::default());
    let adapters = Adapters {
        deliveries: vec![Arc::new(api.clone())],
        sources: vec![Arc::new(SlackEventSource::new(
            api,
            desk.config.flag_emojis.clone(),
            Some(BOT_USER.into()),
        ))],
        slack_socket: None,
        slack_interactions: None,
        discord_gateway: None,
        discord_endpoint: None,
        slack_api: None,
        discord_api: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(desk.clone(), listener, adapters, async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let client = client.clone();
        let base = base.clone();
        senders.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in (s..flags()).step_by(SENDERS) {
                let body = serde_json::to_vec(&json!({
                    "token": "bench", "team_id": "T0SANDBOX", "api_app_id": "A0BENCH", "type": "event_callback",
                    "event_id": format!("EvBench{i}"), "event_time": 1_772_442_000, "authed_users": [BOT_USER],
                    "event": {"type": "reaction_added", "user": "UBOB", "reaction": "ticket", "item_user": "UCUSTOMER",
                              "item": {"type": "message", "channel": "CHELP", "ts": format!("1772440000.{i:06}")},
                              "event_ts": "1772442000.000100"}
                }))
                .unwrap();
                let ts = chrono::Utc::now().timestamp().to_string();
                let sig = sign(&Secret::new(SECRET), &ts, &body);
                let t0 = Instant::now();
                let r = client
                    .post(format!("{base}/slack/events"))
                    .header("content-type", "application/json")
                    .header("x-slack-request-timestamp", ts)
                    .header("x-slack-signature", sig)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                latencies.push(t0.elapsed());
                assert_eq!(r.status(), 200);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for s in senders {
        latencies.extend(s.await.unwrap());
    }
    let sending = started.elapsed();
    latencies.sort();
    let stored = desk.store.inbox(None, 0).await.unwrap().len();
    // Every acknowledged flag must become a ticket, even while Slack refuses every post.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tickets = 0;
    while Instant::now() < deadline {
        tickets = desk
            .store
            .list_tickets(&TicketFilter::default())
            .await
            .unwrap()
            .len();
        if tickets == flags() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let posts = fake
        .calls()
        .iter()
        .filter(|c| *c == "chat.postMessage")
        .count();
    println!("Slack HTTP-mode ack latency, {} flags from {SENDERS} concurrent senders, every chat.postMessage answered 429 (Retry-After 10)", flags());
    println!(
        "  median {:?}   p99 {:?}   max {:?}   ({} flags sent in {:?})",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap(),
        latencies.len(),
        sending
    );
    println!("  acknowledged {} / stored in the inbox {stored} / tickets {tickets}; chat.postMessage attempts during the run: {posts}", latencies.len());
    assert_eq!(stored, flags(), "every acknowledged flag is in the inbox");
    assert_eq!(tickets, flags(), "every acknowledged flag became a ticket");
    let _ = stop.send(());
    let _ = server.await;
    socket_mode().await;
}

/// The same load over Socket Mode: 32 tasks push 200 envelopes through the fake's WebSocket;
/// the latency is from the push to the ack the fake receives (sent after the inbox commit).
async fn socket_mode() {
    use sandbox::slack::app_token_for;
    use switchboard::chat::slack::socket::{SocketMode, SocketSettings};
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    fake.add_channel("CHELP", "help", true);
    fake.add_channel("CBILLING", "billing", true);
    for i in 0..flags() {
        fake.seed_message(
            "CHELP",
            &format!("1772440000.{i:06}"),
            "UCUSTOMER",
            "I was charged twice",
            None,
        );
    }
    fake.fail_next("chat.postMessage", Fault::RateLimited(10), 1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("socket.db").display());
    let config = Config::from_toml(CONFIG, "bench", |_| None).unwrap();
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let desk = build_desk_with_store(config, store, Arc::new(SystemClock))
        .await
        .unwrap();
    let api = SlackApi::new(&fake.api_url, &Secret::new(TOKEN))
        .unwrap()
        .with_limits(UNPACED, Default::default());
    let settings = SocketSettings {
        connections: 1,
        reconnect_seconds: 1,
        stagger_seconds: 0,
    };
    let socket = SocketMode::start(
        &api,
        &Secret::new(app_token_for(TOKEN)),
        desk.store.clone(),
        desk.clock.clone(),
        None,
        settings,
    )
    .await
    .unwrap();
    let adapters = Adapters {
        deliveries: vec![Arc::new(api.clone())],
        sources: vec![Arc::new(SlackEventSource::new(
            api,
            desk.config.flag_emojis.clone(),
            Some(BOT_USER.into()),
        ))],
        slack_socket: Some(socket),
        slack_interactions: None,
        discord_gateway: None,
        discord_endpoint: None,
        slack_api: None,
        discord_api: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(desk.clone(), listener, adapters, async {
        let _ = stopped.await;
    }));
    while fake.connections() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut pushers = Vec::new();
    for s in 0..SENDERS {
        let fake = fake.clone();
        pushers.push(tokio::spawn(async move {
            for i in (s..flags()).step_by(SENDERS) {
                fake.push_event(json!({
                    "token": "bench", "team_id": "T0SANDBOX", "api_app_id": "A0BENCH", "type": "event_callback",
                    "event_id": format!("EvSock{i}"), "event_time": 1_772_442_000, "authed_users": [BOT_USER],
                    "event": {"type": "reaction_added", "user": "UBOB", "reaction": "ticket", "item_user": "UCUSTOMER",
                              "item": {"type": "message", "channel": "CHELP", "ts": format!("1772440000.{i:06}")},
                              "event_ts": "1772442000.000100"}
                }));
                tokio::task::yield_now().await;
            }
        }));
    }
    for p in pushers {
        p.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.ack_latencies().len() < flags() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies = fake.ack_latencies();
    latencies.sort();
    let mut tickets = 0;
    while Instant::now() < deadline {
        tickets = desk
            .store
            .list_tickets(&TicketFilter::default())
            .await
            .unwrap()
            .len();
        if tickets == flags() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = desk.store.inbox(None, 0).await.unwrap().len();
    println!("Slack Socket Mode ack latency (push → ack at the fake), {} envelopes from {SENDERS} concurrent pushers, every chat.postMessage answered 429 (Retry-After 10)", flags());
    println!(
        "  median {:?}   p99 {:?}   max {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap()
    );
    println!(
        "  acknowledged {} / stored in the inbox {stored} / tickets {tickets}",
        latencies.len()
    );
    assert_eq!(latencies.len(), flags());
    assert_eq!(stored, flags());
    assert_eq!(tickets, flags());
    let _ = stop.send(());
    let _ = server.await;
}
