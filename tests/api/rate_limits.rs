//! The platforms' rate limits, with the fakes enforcing their published model
//! (`sandbox::limits`): the real clients pace a burst to one channel so that the platform
//! refuses nothing, and every message still arrives. Time is real here (the limits are); the
//! worker's own clock is advanced so rescheduled rows come due at once, which proves a row
//! keeps the slot the client booked for it rather than racing for a new one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::discord::FakeDiscord;
use sandbox::limits::{DiscordLimits, SlackLimits, Window};
use sandbox::slack::FakeSlack;
use switchboard::chat::discord::client::DiscordApi;
use switchboard::chat::slack::client::SlackApi;
use switchboard::chat::Delivery;
use switchboard::config::Secret;
use switchboard::outbox::{OutboxSettings, OutboxWorker};

use crate::helpers::*;

fn worker(app: &TestApp, delivery: Arc<dyn Delivery>) -> OutboxWorker {
    OutboxWorker::new(
        app.desk.store.clone(),
        vec![delivery],
        Arc::new(app.clock.clone()),
        app.desk.telemetry.clone(),
        OutboxSettings {
            owner: "limits-test".into(),
            idle: Duration::from_millis(5),
            ..OutboxSettings::default()
        },
    )
}

/// Runs rounds (advancing the worker's clock, so every rescheduled row is due again at once)
/// until `done` or 30 s; returns how long it took.
async fn deliver_until(app: &TestApp, w: &OutboxWorker, done: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not delivered in 30 s"
        );
        w.round().await.unwrap();
        app.clock.advance(chrono::Duration::seconds(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_burst_to_one_slack_channel_is_paced_to_one_a_second_and_slack_refuses_none() {
    let app = spawn_app().await;
    let fake = FakeSlack::start("xoxb-limits").await.unwrap();
    fake.add_channel("CSUPPORT", "support", true);
    fake.set_limits(Some(SlackLimits::default()));
    let api = SlackApi::new(&fake.api_url, &Secret::new("xoxb-limits")).unwrap();
    let w = worker(&app, Arc::new(api));
    for i in 0..6 {
        app.ok(
            &slack("UC"),
            &format!("/ticket new printer {i} department:support"),
        )
        .await;
    }
    let took = deliver_until(&app, &w, || fake.bot_messages().len() == 6).await;
    assert_eq!(
        fake.rate_limited(),
        Default::default(),
        "Slack refused nothing"
    );
    // Two at once (Slack's burst of three less the one the client keeps in hand), then one a
    // second: the sixth about four seconds in.
    assert!(took >= Duration::from_millis(3900), "{took:?}");
    assert_eq!(
        fake.calls_by_method()["chat.postMessage"],
        6,
        "one call each"
    );
    let rows = app.desk.store.outbox(Some("sent"), 0).await.unwrap();
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter().all(|r| r.attempts == 1),
        "waiting for a slot is not an attempt: {rows:#?}"
    );
}

#[tokio::test]
async fn a_burst_to_one_discord_channel_keeps_to_its_bucket_and_discord_refuses_none() {
    let app = spawn_app().await;
    let fake = FakeDiscord::start("limits-token").await.unwrap();
    fake.add_channel("2002", "it-alerts");
    // Discord's message bucket is 5 per 5 s per channel; a one-second window keeps this short.
    fake.set_limits(Some(DiscordLimits {
        create_message: Window {
            limit: 5,
            per: Duration::from_secs(1),
        },
        ..DiscordLimits::default()
    }));
    let api = DiscordApi::new(&fake.base_url, &Secret::new("limits-token")).unwrap();
    let w = worker(&app, Arc::new(api));
    for i in 0..12 {
        app.ok(
            &slack("UC"),
            &format!("/ticket new server {i} down department:it"),
        )
        .await;
    }
    let took = deliver_until(&app, &w, || fake.sent().len() == 12).await;
    assert_eq!(
        fake.rate_limited(),
        Default::default(),
        "the client kept to the bucket its first answer announced"
    );
    // Twelve messages at five a second need at least two full windows after the first.
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert_eq!(fake.invalid_requests(), 0);
}

#[tokio::test]
async fn a_discord_global_429_stops_every_route_for_its_wait() {
    let fake = FakeDiscord::start("limits-token").await.unwrap();
    fake.add_channel("2002", "it-alerts");
    // A global window of one request in three seconds: the second call is refused, with a
    // wait longer than the client holds a call for.
    fake.set_limits(Some(DiscordLimits {
        global: Window {
            limit: 1,
            per: Duration::from_secs(3),
        },
        ..DiscordLimits::default()
    }));
    let api = DiscordApi::new(&fake.base_url, &Secret::new("limits-token")).unwrap();
    api.whoami().await.unwrap();
    let refused = api.whoami().await.unwrap_err();
    assert!(
        matches!(refused, switchboard::chat::ChatError::RateLimited(_)),
        "{refused:?}"
    );
    assert_eq!(fake.rate_limited().get("global"), Some(&1));
    // Until the wait is over no route is called at all.
    let before = fake.calls_by_method().values().sum::<u32>();
    let also_refused = api.channel("2002").await.unwrap_err();
    assert!(matches!(
        also_refused,
        switchboard::chat::ChatError::RateLimited(_)
    ));
    assert_eq!(fake.calls_by_method().values().sum::<u32>(), before);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    api.channel("2002").await.unwrap();
}
