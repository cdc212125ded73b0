//! Starting the Discord adapter as `switchboard run` does: the token check, the channel
//! check that names what is missing, the shard range, and a flag through the wired-up app.

use std::sync::Arc;
use std::time::Duration;

use sandbox::discord::{FakeDiscord, Fault, BOT_USER_ID};
use switchboard::app::{adapters, build_desk_with_store, serve};
use switchboard::chat::discord::client::DiscordApi;
use switchboard::chat::discord::gateway::{Gateway, GatewaySettings};
use switchboard::chat::discord::{channel_problems, perms};
use switchboard::chat::Delivery;
use switchboard::config::{Config, Secret, ShardRange};
use switchboard::core::clock::SystemClock;
use switchboard::core::types::TicketRef;
use switchboard::store::SqliteStore;

use crate::helpers::*;

const TOKEN: &str = "setup-token";

#[tokio::test]
async fn the_start_up_check_names_each_channel_the_bot_cannot_use_and_why() {
    let app = spawn_app().await;
    let fake = FakeDiscord::start(TOKEN).await.unwrap();
    // The test config's Discord channels: 2001 (billing), 2002 (it), 2003 (the digest).
    fake.add_channel("2001", "billing");
    fake.add_channel("2002", "it-alerts");
    fake.deny_bot("2002", perms::SEND_MESSAGES | perms::EMBED_LINKS);
    let api = DiscordApi::new(&fake.base_url, &Secret::new(TOKEN)).unwrap();
    let problems = channel_problems(&api, &app.desk.config, BOT_USER_ID).await;
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with("cannot post in discord:2002 (department it)")
            && problems[0].contains("lacks Send Messages, Embed Links"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("cannot post in discord:2003 (digest weekly)")
            && problems[1].contains("Copy Channel ID"),
        "{problems:#?}"
    );
    fake.deny_bot("2001", perms::VIEW_CHANNEL);
    let problems = channel_problems(&api, &app.desk.config, BOT_USER_ID).await;
    assert!(
        problems[0].contains("discord:2001") && problems[0].contains("cannot see this channel"),
        "{problems:#?}"
    );
}

#[tokio::test]
async fn a_wrong_token_is_refused_at_start_with_the_reason() {
    let fake = FakeDiscord::start(TOKEN).await.unwrap();
    let api = DiscordApi::new(&fake.base_url, &Secret::new("not-the-token")).unwrap();
    let err = api.whoami().await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
    assert!(
        !err.contains("not-the-token"),
        "the token is never shown: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_range_runs_exactly_those_shards_counted_as_serenity_counts() {
    let app = spawn_app().await;
    let fake = FakeDiscord::start(TOKEN).await.unwrap();
    let api = DiscordApi::new(&fake.base_url, &Secret::new(TOKEN)).unwrap();
    let gateway = Gateway::start(
        api,
        BOT_USER_ID.into(),
        app.desk.store.clone(),
        Arc::new(app.clock.clone()),
        GatewaySettings {
            shards: Some("1-2/4".parse::<ShardRange>().unwrap()),
            ..GatewaySettings::default()
        },
    )
    .await
    .unwrap();
    // serenity boots one shard at a time, a few seconds apart.
    let mut seen = 0;
    for _ in 0..30 {
        seen = gateway.wait_sessions(seen, Duration::from_secs(1)).await;
        if seen >= 2 {
            break;
        }
    }
    let shards: Vec<(u64, u64)> = fake
        .identifies()
        .iter()
        .map(|i| {
            (
                i["shard"][0].as_u64().unwrap(),
                i["shard"][1].as_u64().unwrap(),
            )
        })
        .collect();
    gateway.shutdown().await;
    let mut sorted = shards.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [(1, 4), (2, 4)],
        "shards 1 and 2 of 4, inclusive: {shards:?}"
    );
}

/// `DISCORD_BOT_TOKEN` set: `adapters` checks the token and channels, starts the gateway and
/// hands the workers Discord's source and delivery, so a reaction in the served app becomes a
/// ticket and an alert with nothing else wired by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_wires_discord_from_the_environment() {
    let fake = FakeDiscord::start(TOKEN).await.unwrap();
    for (id, name) in [
        ("2100", "help"),
        ("2001", "billing"),
        ("2002", "it"),
        ("2003", "leads"),
    ] {
        fake.add_channel(id, name);
    }
    fake.add_member("1002", "Bob", &[]);
    fake.add_member("1099", "Casey", &[]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wired.db").display());
    let base = fake.base_url.clone();
    let config = Config::from_toml(TEST_CONFIG, "test config", |k| match k {
        "SWITCHBOARD_DATABASE_URL" => Some(url.clone()),
        "DISCORD_BOT_TOKEN" => Some(TOKEN.to_string()),
        "SWITCHBOARD_DISCORD_API_URL" => Some(base.clone()),
        _ => None,
    })
    .unwrap();
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let desk = build_desk_with_store(config, store, Arc::new(SystemClock))
        .await
        .unwrap();
    let wired = adapters(&desk).await.unwrap();
    assert!(wired.discord_gateway.is_some());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(serve(desk.clone(), listener, wired, async {
        let _ = stopped.await;
    }));
    for _ in 0..500 {
        if fake.live_sessions() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let msg = fake.say("2100", "1099", "I was charged twice");
    fake.react("2100", &msg, "1002", "🎫");
    let mut alert = None;
    for _ in 0..500 {
        alert = fake.sent().into_iter().find(|m| m.channel_id == "2001");
        if alert.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let alert = alert.expect("the billing alert arrives");
    assert!(alert.embeds[0]["title"]
        .as_str()
        .unwrap()
        .starts_with("T-1 "));
    assert_eq!(
        desk.ticket(TicketRef(1)).await.unwrap().department,
        "billing"
    );
    let _ = stop.send(());
    served.await.unwrap().unwrap();
    assert_eq!(fake.live_sessions(), 0, "the gateway closed on shutdown");
}

/// Kudos ask Discord whether the receiver is a bot (`GET /users/{id}`) once the adapter has
/// registered itself, as `adapters` does at start.
#[tokio::test]
async fn kudos_to_a_discord_bot_or_an_unknown_account_are_refused() {
    let app = spawn_app().await;
    let fake = FakeDiscord::start(TOKEN).await.unwrap();
    fake.add_member("1002", "Bob", &[]);
    fake.add_member("1005", "Dana", &[]);
    fake.add_bot_member("1777", "MEE6");
    let api = DiscordApi::new(&fake.base_url, &Secret::new(TOKEN)).unwrap();
    app.desk.accounts.register(Arc::new(api));
    let err = app
        .user_error(&alice(), "/kudos give discord:1777 for the role reactions")
        .await;
    assert!(err.contains("That's a bot"), "{err}");
    let err = app
        .user_error(&alice(), "/kudos give discord:1888 thanks")
        .await;
    assert!(err.contains("can't find the user `1888`"), "{err}");
    let out = app
        .ok(&alice(), "/kudos give discord:1005 for the export fix")
        .await;
    assert!(out.contains("thanked"), "{out}");
    // Bob's Discord account is Bob: a person in the directory, no lookup needed.
    let out = app
        .ok(&alice(), "/kudos give discord:1002 for the refunds")
        .await;
    assert!(out.contains("thanked Bob"), "{out}");
}

/// Against `https://discord.com` serenity's own rate limiter sends every request and waits
/// out a 429 itself. The fake serves TLS with a self-signed certificate for discord.com, and
/// the client resolves discord.com to it and trusts that certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_discord_com_serenitys_limiter_waits_out_a_429() {
    let app = spawn_app().await;
    let cert = rcgen::generate_simple_self_signed(vec!["discord.com".to_string()]).unwrap();
    let fake = FakeDiscord::start_tls(
        TOKEN,
        vec![cert.cert.der().to_vec()],
        cert.key_pair.serialize_der(),
    )
    .await
    .unwrap();
    fake.add_channel("2001", "billing");
    let client = DiscordApi::client_builder()
        .resolve("discord.com", fake.tls_addr.unwrap())
        .add_root_certificate(reqwest::Certificate::from_der(cert.cert.der()).unwrap())
        .build()
        .unwrap();
    let api = DiscordApi::with_client("https://discord.com", &Secret::new(TOKEN), client);
    assert_eq!(
        api.whoami().await.unwrap().0,
        BOT_USER_ID,
        "TLS to the fake works"
    );
    fake.fail(
        "POST /channels/{channel_id}/messages",
        &[Fault::RateLimited(1.0)],
    );
    app.ok(&alice(), "/ticket new printer jam department:billing")
        .await;
    let row = app
        .desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.outgoing.target.to_string() == "discord:2001")
        .unwrap();
    let id = api
        .post(
            &row.outgoing.target,
            &row.outgoing.message,
            "switchboard-outbox-1",
        )
        .await
        .expect("serenity waited and retried inside the call");
    let creates: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|q| q.route == "/channels/{channel_id}/messages" && q.method == "POST")
        .collect();
    assert_eq!(creates.len(), 2, "one 429, one retry");
    assert_eq!(creates[0].status, 429);
    let waited = creates[1].at.duration_since(creates[0].at);
    assert!(
        waited >= Duration::from_secs(1),
        "no retry before Retry-After: {waited:?}"
    );
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(fake.sent()[0].id, id);
}

/// Discord (or the proxy) unreachable at start: the gateway keeps trying with backoff, then
/// connects and stores the flags it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_connects_once_discord_answers_again() {
    let app = spawn_app().await;
    let fake = FakeDiscord::start(TOKEN).await.unwrap();
    fake.add_channel("2100", "help");
    fake.add_member("1002", "Bob", &[]);
    fake.add_member("1099", "Casey", &[]);
    fake.fail(
        "GET /gateway/bot",
        &[
            Fault::ServerError(502),
            Fault::ServerError(503),
            Fault::ServerError(502),
        ],
    );
    let api = DiscordApi::new(&fake.base_url, &Secret::new(TOKEN)).unwrap();
    let gateway = Gateway::start(
        api,
        BOT_USER_ID.into(),
        app.desk.store.clone(),
        Arc::new(app.clock.clone()),
        GatewaySettings {
            retry_base: Some(Duration::from_millis(100)),
            telemetry: Some(app.desk.telemetry.clone()),
            ..GatewaySettings::default()
        },
    )
    .await
    .unwrap();
    assert!(
        gateway.wait_sessions(0, Duration::from_secs(15)).await >= 1,
        "connected after the failures"
    );
    let asked = fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.route == "/gateway/bot")
        .count();
    assert!(
        asked >= 4,
        "three failures, then the one that worked: {asked}"
    );
    let health = app
        .desk
        .telemetry
        .adapters(app.desk.now(), chrono::Duration::seconds(60));
    let gateway_health = health.iter().find(|h| h.part == "gateway").unwrap();
    assert_eq!(gateway_health.state, "up", "{health:#?}");
    assert!(gateway_health.last_success.is_some() && gateway_health.failing_since.is_none());
    let msg = fake.say("2100", "1099", "refund please");
    fake.react("2100", &msg, "1002", "🎫");
    let mut stored = 0;
    for _ in 0..200 {
        stored = app.desk.store.inbox(None, 0).await.unwrap().len();
        if stored > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(stored, 1, "the flag reached the inbox");
    gateway.shutdown().await;
}
