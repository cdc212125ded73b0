//! Socket Mode against the fake Slack's WebSocket: events are committed to the inbox before
//! their envelope is acknowledged, and drops and `disconnect` frames lose nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::slack::{app_token_for, FakeSlack, BOT_USER};
use serde_json::{json, Value};
use switchboard::chat::slack::client::SlackApi;
use switchboard::chat::slack::socket::{SocketMode, SocketSettings};
use switchboard::chat::slack::source::SlackEventSource;
use switchboard::chat::{Delivery, EventSource};
use switchboard::config::Secret;
use switchboard::inbox::{InboxSettings, InboxWorker};
use switchboard::outbox::{OutboxSettings, OutboxWorker};
use switchboard::store::TicketFilter;

use crate::helpers::*;

const TOKEN: &str = "xoxb-sandbox-token";

fn payload(event_id: &str, ts: &str) -> Value {
    json!({
        "token": "XXYYZZ", "team_id": "T0SANDBOX", "api_app_id": "A0SWITCHBD", "type": "event_callback",
        "event_id": event_id, "event_time": 1_772_442_100, "authed_users": [BOT_USER],
        "event": {
            "type": "reaction_added", "user": "UBOB", "reaction": "ticket", "item_user": "UCUSTOMER",
            "item": {"type": "message", "channel": "CHELP", "ts": ts}, "event_ts": "1772442100.000100"
        }
    })
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Rig {
    fake: FakeSlack,
    socket: SocketMode,
    inbox: InboxWorker,
    outbox: OutboxWorker,
}

async fn rig(app: &TestApp) -> Rig {
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    fake.add_channel("CHELP", "help", true);
    fake.add_channel("CBILLING", "billing", true);
    for i in 1..=3 {
        fake.seed_message(
            "CHELP",
            &format!("1772442000.00010{i}"),
            "UCUSTOMER",
            "I was charged twice",
            None,
        );
    }
    let api = SlackApi::new(&fake.api_url, &Secret::new(TOKEN)).unwrap();
    let settings = SocketSettings {
        connections: 1,
        reconnect_seconds: 1,
        stagger_seconds: 0,
    };
    let socket = SocketMode::start(
        &api,
        &Secret::new(app_token_for(TOKEN)),
        app.desk.store.clone(),
        Arc::new(app.clock.clone()),
        None,
        settings,
    )
    .await
    .expect("Socket Mode starts");
    let source = SlackEventSource::new(
        api.clone(),
        app.desk.config.flag_emojis.clone(),
        Some(BOT_USER.into()),
    );
    let inbox = InboxWorker::new(
        app.desk.clone(),
        vec![Arc::new(source) as Arc<dyn EventSource>],
        InboxSettings::default(),
    );
    let outbox = OutboxWorker::new(
        app.desk.store.clone(),
        vec![Arc::new(api) as Arc<dyn Delivery>],
        Arc::new(app.clock.clone()),
        app.desk.telemetry.clone(),
        OutboxSettings::default(),
    );
    wait_for("the first connection", || fake.connections() >= 1).await;
    Rig {
        fake,
        socket,
        inbox,
        outbox,
    }
}

async fn stored(app: &TestApp) -> usize {
    app.desk.store.inbox(None, 0).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_mode_flag_is_stored_before_its_ack_and_becomes_a_ticket() {
    let app = spawn_app().await;
    let r = rig(&app).await;
    let envelope = r.fake.push_event(payload("EvS1", "1772442000.000101"));
    wait_for("the ack", || r.fake.acked().contains(&envelope)).await;
    assert_eq!(stored(&app).await, 1, "committed before the ack");
    while r.inbox.round().await.unwrap() > 0 {}
    while r.outbox.round().await.unwrap() > 0 {}
    assert_eq!(
        app.desk
            .store
            .list_tickets(&TicketFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let mut posted = r.fake.bot_messages();
    assert_eq!(posted.len(), 2);
    // The reply and the alert go to different channels, at once: in either order.
    posted.sort_by_key(|m| m.thread_ts.is_none());
    assert_eq!(posted[0].thread_ts.as_deref(), Some("1772442000.000101"));
    assert_eq!(posted[1].channel, "CBILLING");
    r.socket.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_and_disconnect_frames_reconnect_and_lose_no_flag() {
    let app = spawn_app().await;
    let r = rig(&app).await;
    let first = r.fake.push_event(payload("EvS1", "1772442000.000101"));
    wait_for("the first ack", || r.fake.acked().contains(&first)).await;

    // The network drops; an event sent meanwhile waits at Slack and comes on the new connection.
    r.fake.drop_sockets();
    let second = r.fake.push_event(payload("EvS2", "1772442000.000102"));
    wait_for("the ack after reconnecting", || {
        r.fake.acked().contains(&second)
    })
    .await;
    assert!(r.fake.connections() >= 2, "reconnected after the drop");

    // Slack asks for a refresh with a `disconnect` frame.
    let before = r.fake.connections();
    r.fake.disconnect_sockets();
    let third = r.fake.push_event(payload("EvS3", "1772442000.000103"));
    wait_for("the ack after the disconnect frame", || {
        r.fake.acked().contains(&third)
    })
    .await;
    assert!(
        r.fake.connections() > before,
        "reconnected after `disconnect`"
    );

    assert_eq!(stored(&app).await, 3);
    while r.inbox.round().await.unwrap() > 0 {}
    assert_eq!(
        app.desk
            .store
            .list_tickets(&TicketFilter::default())
            .await
            .unwrap()
            .len(),
        3,
        "no flag lost"
    );
    r.socket.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_app_token_is_refused_at_start() {
    let app = spawn_app().await;
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    let api = SlackApi::new(&fake.api_url, &Secret::new(TOKEN)).unwrap();
    let err = SocketMode::start(
        &api,
        &Secret::new("xapp-wrong"),
        app.desk.store.clone(),
        Arc::new(app.clock.clone()),
        None,
        SocketSettings::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        switchboard::chat::ChatError::Permanent("invalid_auth".into())
    );
}

/// The binary in Socket Mode (`SLACK_APP_TOKEN`, no public URL) against the fake: a pushed
/// flag becomes a thread reply and an alert in the fake Slack; SIGTERM stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_socket_mode_end_to_end() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    fake.add_channel("CHELP", "help", true);
    fake.add_channel("CBILLING", "billing", true);
    fake.add_channel("CSUPPORT", "support", true);
    fake.add_channel("CLEADS", "leads", true);
    fake.seed_message(
        "CHELP",
        "1772442000.000101",
        "UCUSTOMER",
        "I need a refund for invoice 42",
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, TEST_CONFIG).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env(
            "SWITCHBOARD_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("bot.db").display()),
        )
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_SLACK_API_URL", &fake.api_url)
        .env("SWITCHBOARD_LOG", "info")
        .env("SLACK_BOT_TOKEN", TOKEN)
        .env("SLACK_APP_TOKEN", app_token_for(TOKEN))
        .env_remove("SLACK_SIGNING_SECRET")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let started = log.clone();
    wait_for("the bot to start", || {
        started.lock().unwrap().contains("switchboard is running")
    })
    .await;
    assert!(log
        .lock()
        .unwrap()
        .contains("Slack Socket Mode is connected"));
    let envelope = fake.push_event(payload("EvBinS1", "1772442000.000101"));
    wait_for("the ack", || fake.acked().contains(&envelope)).await;
    wait_for("the thread reply and the alert", || {
        fake.bot_messages().len() == 2
    })
    .await;
    let mut posted = fake.bot_messages();
    posted.sort_by_key(|m| m.thread_ts.is_none());
    assert_eq!(posted[0].thread_ts.as_deref(), Some("1772442000.000101"));
    assert_eq!(posted[1].channel, "CBILLING");
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success(), "{}", log.lock().unwrap());
    let log = log.lock().unwrap().clone();
    assert!(
        !log.contains(TOKEN.trim_start_matches("xoxb-")),
        "a token reached the log:\n{log}"
    );
}
