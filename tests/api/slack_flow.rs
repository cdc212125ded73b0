//! A Slack flag end to end in HTTP mode: a signed `reaction_added` to `/slack/events`, the inbox
//! worker completing it through the real slack-morphism client against the fake Slack, and the
//! outbox worker posting the thread reply and the alert there.

use std::sync::Arc;
use std::time::Duration;

use sandbox::slack::{FakeSlack, Fault, BOT_USER};
use serde_json::{json, Value};
use switchboard::app::serve;
use switchboard::chat::slack::client::SlackApi;
use switchboard::chat::slack::events::sign;
use switchboard::chat::slack::source::SlackEventSource;
use switchboard::chat::{Delivery, EventSource};
use switchboard::config::Secret;
use switchboard::core::types::TicketRef;
use switchboard::inbox::{InboxSettings, InboxWorker};
use switchboard::outbox::OutboxWorker;

use crate::helpers::*;

const TOKEN: &str = "xoxb-sandbox-token";

struct Rig {
    fake: FakeSlack,
    api: SlackApi,
    base: String,
    inbox: InboxWorker,
    outbox: OutboxWorker,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn rig(app: &TestApp) -> Rig {
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    for (id, name) in [
        ("CHELP", "help"),
        ("CBILLING", "billing"),
        ("CSUPPORT", "support"),
    ] {
        fake.add_channel(id, name, true);
    }
    fake.add_user("UCUSTOMER", "Casey Customer");
    let api = SlackApi::new(&fake.api_url, &Secret::new(TOKEN)).unwrap();
    let api_handle = api.clone();
    fake.add_group("SIT", &["UERIN"]);
    let source = SlackEventSource::new(
        api.clone(),
        app.desk.config.flag_emojis.clone(),
        Some(BOT_USER.into()),
    )
    .with_groups(app.desk.config.slack_groups());
    let (inbox, outbox) = workers(
        app,
        vec![Arc::new(source) as Arc<dyn EventSource>],
        vec![Arc::new(api) as Arc<dyn Delivery>],
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        app.desk.clone(),
        listener,
        Default::default(),
        async {
            let _ = stopped.await;
        },
    ));
    Rig {
        fake,
        api: api_handle,
        base,
        inbox,
        outbox,
        _stop: stop,
    }
}

fn reaction(event_id: &str, user: &str, emoji: &str, ts: &str) -> Value {
    json!({
        "token": "XXYYZZ", "team_id": "T0SANDBOX", "api_app_id": "A0APP", "type": "event_callback",
        "event_id": event_id, "event_time": 1_772_442_100, "authed_users": [BOT_USER],
        "event": {
            "type": "reaction_added", "user": user, "reaction": emoji, "item_user": "UCUSTOMER",
            "item": {"type": "message", "channel": "CHELP", "ts": ts}, "event_ts": "1772442100.000100"
        }
    })
}

impl Rig {
    async fn deliver(&self, app: &TestApp, event: &Value) -> u16 {
        let body = serde_json::to_vec(event).unwrap();
        let ts = app.desk.now().timestamp().to_string();
        let sig = sign(&Secret::new(TEST_SIGNING_SECRET), &ts, &body);
        reqwest::Client::new()
            .post(format!("{}/slack/events", self.base))
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn work(&self) {
        while self.inbox.round().await.unwrap() > 0 {}
        while self.outbox.round().await.unwrap() > 0 {}
    }
}

async fn a_reaction_becomes_a_ticket_a_thread_reply_and_an_alert(app: TestApp) {
    let r = rig(&app).await;
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "Hi <!here>, I was charged twice for March",
        None,
    );
    assert_eq!(
        r.deliver(
            &app,
            &reaction("Ev1", "UBOB", "ticket", "1772442000.000100")
        )
        .await,
        200
    );
    r.work().await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.department, "billing");
    let src = t.source.clone().unwrap();
    assert_eq!(
        src.original_text, "Hi <!here>, I was charged twice for March",
        "the exact message"
    );
    assert_eq!(
        src.permalink.as_deref(),
        Some("https://sandbox.slack.com/archives/CHELP/p1772442000000100")
    );
    assert_eq!(t.reporter.to_string(), "slack:UCUSTOMER");
    let mut posted = r.fake.bot_messages();
    assert_eq!(posted.len(), 2, "{posted:#?}");
    // The reply and the alert go to different channels, at once: in either order.
    posted.sort_by_key(|m| m.channel != "CHELP");
    assert_eq!(posted[0].thread_ts.as_deref(), Some("1772442000.000100"));
    assert!(posted[0].text.contains("T-1") && posted[0].text.contains("billing"));
    assert_eq!(posted[1].channel, "CBILLING");
    assert!(!posted[1].text.contains("<!here>"));
    let blocks = serde_json::to_string(&posted[1].blocks).unwrap();
    assert!(
        blocks.contains("claim:1") && blocks.contains("p1772442000000100"),
        "{blocks}"
    );
    assert!(
        blocks.contains("*Reporter*\\nCasey Customer"),
        "the reporter by their Slack name: {blocks}"
    );

    // A second flag of the same message, and Slack retrying the first delivery, add nothing.
    assert_eq!(
        r.deliver(
            &app,
            &reaction("Ev2", "UALICE", "ticket", "1772442000.000100")
        )
        .await,
        200
    );
    assert_eq!(
        r.deliver(
            &app,
            &reaction("Ev1", "UBOB", "ticket", "1772442000.000100")
        )
        .await,
        200
    );
    r.work().await;
    assert_eq!(ticket_count(&app).await, 1);
    assert_eq!(r.fake.bot_messages().len(), 2);
    // Another message by the same author: their name comes from the cache.
    r.fake.seed_message(
        "CHELP",
        "1772442500.000100",
        "UCUSTOMER",
        "and the refund for April",
        None,
    );
    r.deliver(
        &app,
        &reaction("Ev9", "UBOB", "ticket", "1772442500.000100"),
    )
    .await;
    r.work().await;
    assert_eq!(ticket_count(&app).await, 2);
    assert_eq!(
        r.fake.calls().iter().filter(|c| *c == "users.info").count(),
        1,
        "users.info is cached"
    );
}

async fn a_thread_reply_is_flagged_as_itself(app: TestApp) {
    let r = rig(&app).await;
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "Printer question",
        None,
    );
    r.fake.seed_message(
        "CHELP",
        "1772442050.000200",
        "UCUSTOMER2",
        "Also the refund never came",
        Some("1772442000.000100"),
    );
    r.deliver(
        &app,
        &reaction("Ev3", "UBOB", "ticket", "1772442050.000200"),
    )
    .await;
    r.work().await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    let src = t.source.unwrap();
    assert_eq!(src.original_text, "Also the refund never came");
    assert_eq!(src.thread_id.as_deref(), Some("1772442000.000100"));
    assert_eq!(t.reporter.to_string(), "slack:UCUSTOMER2");
    assert!(
        r.fake
            .bot_messages()
            .iter()
            .any(|m| m.thread_ts.as_deref() == Some("1772442000.000100")),
        "the reply goes to the thread"
    );
}

async fn flags_by_strangers_other_emojis_and_the_bot_make_no_ticket(app: TestApp) {
    let r = rig(&app).await;
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "refund please",
        None,
    );
    r.deliver(
        &app,
        &reaction("Ev4", "USTRANGER", "ticket", "1772442000.000100"),
    )
    .await;
    r.deliver(
        &app,
        &reaction("Ev5", "UBOB", "thumbsup", "1772442000.000100"),
    )
    .await;
    r.deliver(
        &app,
        &reaction("Ev6", BOT_USER, "ticket", "1772442000.000100"),
    )
    .await;
    r.work().await;
    assert_eq!(ticket_count(&app).await, 0);
    let rows = app.desk.store.inbox(None, 0).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.status == "done"), "{rows:#?}");
    assert!(rows[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("allowed to flag"));
    assert!(r.fake.bot_messages().is_empty());
}

/// A reaction past the flag limit is refused as flags by people not allowed to flag are:
/// the event is done with the reason on record, no ticket, nothing posted. A reaction on a
/// message that already has a ticket still finds it.
async fn a_reaction_past_the_flag_limit_makes_no_ticket(app: TestApp) {
    let r = rig(&app).await;
    for ts in ["1772442000.000100", "1772442000.000200"] {
        r.fake
            .seed_message("CHELP", ts, "UCUSTOMER", "refund please", None);
    }
    r.deliver(
        &app,
        &reaction("Ev1", "UBOB", "ticket", "1772442000.000200"),
    )
    .await;
    r.work().await;
    assert_eq!(ticket_count(&app).await, 1);
    crate::flag_limit::use_up_flags(&app, &bob(), "slack:CELSEWHERE", "s", 29).await;
    let posted = r.fake.bot_messages().len();
    r.deliver(
        &app,
        &reaction("Ev2", "UBOB", "ticket", "1772442000.000100"),
    )
    .await;
    r.deliver(
        &app,
        &reaction("Ev3", "UBOB", "rotating_light", "1772442000.000200"),
    )
    .await;
    while r.inbox.round().await.unwrap() > 0 {}
    assert_eq!(ticket_count(&app).await, 30);
    let rows = app.desk.store.inbox(None, 0).await.unwrap();
    let row = |key: &str| rows.iter().find(|r| r.key == key).unwrap();
    assert_eq!(row("slack:event:Ev2").status, "done");
    assert_eq!(
        row("slack:event:Ev2").last_error.as_deref(),
        Some("You have flagged 30 messages in the last 10 minutes; the limit is 30 per 10 minutes. Try again in 10 minutes.")
    );
    assert_eq!(row("slack:event:Ev3").status, "done", "the re-flag");
    assert_eq!(row("slack:event:Ev3").last_error, None);
    assert_eq!(r.fake.bot_messages().len(), posted, "nothing posted");
}

async fn a_rate_limited_history_call_is_retried_and_the_flag_is_not_lost(app: TestApp) {
    let r = rig(&app).await;
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "refund please",
        None,
    );
    r.fake
        .fail_next("conversations.replies", Fault::RateLimited(3), 2);
    let fetches = |f: &FakeSlack| {
        f.calls()
            .iter()
            .filter(|c| *c == "conversations.replies")
            .count()
    };
    r.deliver(
        &app,
        &reaction("Ev7", "UBOB", "ticket", "1772442000.000100"),
    )
    .await;
    r.work().await;
    assert_eq!(ticket_count(&app).await, 0);
    // Due again by the worker's clock, but Slack's three seconds have not passed: no call.
    app.clock.advance(chrono::Duration::seconds(3));
    r.work().await;
    assert_eq!(ticket_count(&app).await, 0);
    assert_eq!(fetches(&r.fake), 1, "the method waits its Retry-After");
    tokio::time::sleep(std::time::Duration::from_millis(3050)).await;
    app.clock.advance(chrono::Duration::seconds(3));
    r.work().await;
    assert_eq!(ticket_count(&app).await, 0, "rate limited again");
    assert_eq!(fetches(&r.fake), 2);
    tokio::time::sleep(std::time::Duration::from_millis(3050)).await;
    app.clock.advance(chrono::Duration::seconds(3));
    r.work().await;
    assert_eq!(ticket_count(&app).await, 1);
    assert_eq!(r.fake.bot_messages().len(), 2);
    assert_eq!(fetches(&r.fake), 3);
}

async fn a_deleted_message_leaves_the_event_failed_not_lost(app: TestApp) {
    let r = rig(&app).await;
    r.deliver(
        &app,
        &reaction("Ev8", "UBOB", "ticket", "1772442999.000100"),
    )
    .await;
    r.work().await;
    let rows = app.desk.store.inbox(Some("failed"), 0).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no longer exists"),
        "{rows:?}"
    );
}

async fn edits_and_deletions_of_the_flagged_message_are_recorded_on_its_ticket(app: TestApp) {
    let r = rig(&app).await;
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "refund please",
        None,
    );
    r.deliver(
        &app,
        &reaction("Ev1", "UBOB", "ticket", "1772442000.000100"),
    )
    .await;
    r.work().await;
    let envelope = |id: &str, event: Value| {
        json!({
            "token": "XXYYZZ", "team_id": "T0SANDBOX", "api_app_id": "A0APP", "type": "event_callback",
            "event_id": id, "event_time": 1_772_442_200, "authed_users": [BOT_USER], "event": event
        })
    };
    let edited = envelope(
        "Ev2",
        json!({
            "type": "message", "subtype": "message_changed", "channel": "CHELP", "hidden": true,
            "ts": "1772442200.000300", "event_ts": "1772442200.000300",
            "message": {"type": "message", "user": "UCUSTOMER", "text": "refund please, it was $40", "ts": "1772442000.000100",
                        "edited": {"user": "UCUSTOMER", "ts": "1772442200.000000"}},
            "previous_message": {"type": "message", "user": "UCUSTOMER", "text": "refund please", "ts": "1772442000.000100"}
        }),
    );
    let deleted = envelope(
        "Ev3",
        json!({
            "type": "message", "subtype": "message_deleted", "channel": "CHELP", "hidden": true,
            "ts": "1772442300.000400", "event_ts": "1772442300.000400", "deleted_ts": "1772442000.000100",
            "previous_message": {"type": "message", "user": "UCUSTOMER", "text": "refund please, it was $40", "ts": "1772442000.000100"}
        }),
    );
    let unrelated = envelope(
        "Ev4",
        json!({
            "type": "message", "subtype": "message_deleted", "channel": "CHELP", "hidden": true,
            "ts": "1772442400.000500", "event_ts": "1772442400.000500", "deleted_ts": "1772440000.000001"
        }),
    );
    let plain = envelope(
        "Ev5",
        json!({
            "type": "message", "channel": "CHELP", "user": "UCUSTOMER", "text": "hello", "ts": "1772442500.000600", "event_ts": "1772442500.000600"
        }),
    );
    for e in [&edited, &deleted, &unrelated, &plain] {
        assert_eq!(r.deliver(&app, e).await, 200);
    }
    r.work().await;
    let events = app.desk.store.events(TicketRef(1)).await.unwrap();
    let kinds: Vec<String> = events.iter().map(|e| e.kind.describe()).collect();
    assert!(
        kinds.contains(&"the flagged message was edited: refund please, it was $40".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"the flagged message was deleted".to_string()),
        "{kinds:?}"
    );
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(
        t.source.unwrap().original_text,
        "refund please",
        "the ticket keeps the text as flagged"
    );
    let rows = app.desk.store.inbox(None, 0).await.unwrap();
    assert_eq!(rows.len(), 4, "plain messages are not stored");
    assert_eq!(
        rows[3].last_error.as_deref(),
        Some("the message has no ticket")
    );
    assert_eq!(
        r.fake.bot_messages().len(),
        2,
        "no alert edit for a source change"
    );
}

async fn a_restart_between_the_ack_and_the_ticket_loses_no_flag(app: TestApp) {
    let first = rig(&app).await;
    first.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "refund please",
        None,
    );
    assert_eq!(
        first
            .deliver(
                &app,
                &reaction("Ev1", "UBOB", "ticket", "1772442000.000100")
            )
            .await,
        200
    );
    // The process dies after acknowledging: no worker ever ran.
    let fake = first.fake.clone();
    drop(first);
    assert_eq!(ticket_count(&app).await, 0);
    // A new process (new workers, new pool) on the same database picks the event up.
    let desk = switchboard::desk::Desk {
        store: app.second_store().await,
        ..app.desk.clone()
    };
    let api = SlackApi::new(&fake.api_url, &Secret::new(TOKEN)).unwrap();
    let source = SlackEventSource::new(api, desk.config.flag_emojis.clone(), Some(BOT_USER.into()));
    let inbox = InboxWorker::new(
        desk,
        vec![Arc::new(source) as Arc<dyn EventSource>],
        InboxSettings::default(),
    );
    while inbox.round().await.unwrap() > 0 {}
    assert_eq!(ticket_count(&app).await, 1);
    assert_eq!(
        app.desk.store.inbox(Some("done"), 0).await.unwrap().len(),
        1
    );
}

async fn a_slack_user_group_member_may_flag(app: TestApp) {
    let r = rig(&app).await;
    assert_eq!(app.desk.config.slack_groups(), ["SIT"]);
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "printer is broken",
        None,
    );
    r.fake.seed_message(
        "CHELP",
        "1772442000.000200",
        "UCUSTOMER",
        "printer is still broken",
        None,
    );
    // Erin is in the SIT user group, which makes her an it member (and so allowed to flag).
    r.deliver(
        &app,
        &reaction("Ev1", "UERIN", "ticket", "1772442000.000100"),
    )
    .await;
    r.deliver(
        &app,
        &reaction("Ev2", "UERIN", "ticket", "1772442000.000200"),
    )
    .await;
    r.work().await;
    assert_eq!(ticket_count(&app).await, 2);
    assert_eq!(
        r.fake
            .calls()
            .iter()
            .filter(|c| *c == "usergroups.users.list")
            .count(),
        1,
        "membership is cached"
    );
}

async fn permalinks_are_built_from_the_workspace_url_once_one_matched(app: TestApp) {
    let r = rig(&app).await;
    r.api.whoami().await.unwrap();
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "refund please",
        None,
    );
    r.fake.seed_message(
        "CHELP",
        "1772442000.000200",
        "UCUSTOMER",
        "and the invoice too",
        Some("1772442000.000100"),
    );
    r.fake
        .seed_message("CHELP", "1772442000.000300", "UCUSTOMER", "printer", None);
    for (ev, ts) in [
        ("Ev1", "1772442000.000100"),
        ("Ev2", "1772442000.000200"),
        ("Ev3", "1772442000.000300"),
    ] {
        assert_eq!(
            r.deliver(&app, &reaction(ev, "UBOB", "ticket", ts)).await,
            200
        );
        r.work().await;
    }
    let asked = r
        .fake
        .calls()
        .iter()
        .filter(|c| *c == "chat.getPermalink")
        .count();
    assert_eq!(
        asked, 1,
        "only the first link is asked, to check the built one"
    );
    let links: Vec<Option<String>> = {
        let mut out = Vec::new();
        for id in 1..=3 {
            let t = app.desk.ticket(TicketRef(id)).await.unwrap();
            out.push(t.source.unwrap().permalink);
        }
        out
    };
    assert_eq!(
        links,
        [
            Some("https://sandbox.slack.com/archives/CHELP/p1772442000000100".to_string()),
            Some(
                "https://sandbox.slack.com/archives/CHELP/p1772442000000200?thread_ts=1772442000.000100&cid=CHELP"
                    .to_string()
            ),
            Some("https://sandbox.slack.com/archives/CHELP/p1772442000000300".to_string()),
        ]
    );
}

crate::on_both_backends!(
    permalinks_are_built_from_the_workspace_url_once_one_matched,
    a_slack_user_group_member_may_flag,
    a_restart_between_the_ack_and_the_ticket_loses_no_flag,
    edits_and_deletions_of_the_flagged_message_are_recorded_on_its_ticket,
    a_reaction_becomes_a_ticket_a_thread_reply_and_an_alert,
    a_thread_reply_is_flagged_as_itself,
    flags_by_strangers_other_emojis_and_the_bot_make_no_ticket,
    a_rate_limited_history_call_is_retried_and_the_flag_is_not_lost,
    a_reaction_past_the_flag_limit_makes_no_ticket,
    a_deleted_message_leaves_the_event_failed_not_lost,
);

/// The released binary in HTTP mode against the fake Slack: start-up checks, a signed event,
/// the ticket's thread reply and alert delivered, a clean stop.
#[tokio::test]
async fn the_binary_runs_http_mode_end_to_end_and_names_channels_it_cannot_post_in() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    fake.add_channel("CHELP", "help", true);
    fake.add_channel("CBILLING", "billing", true);
    fake.add_channel("CSUPPORT", "support", false);
    fake.seed_message(
        "CHELP",
        "1772442000.000100",
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
        .env("SLACK_SIGNING_SECRET", TEST_SIGNING_SECRET)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let addr = loop {
        let line = match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(line)) => line,
            _ => {
                let _ = child.kill();
                panic!("the bot did not start:\n{log}");
            }
        };
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    assert!(
        log.contains("cannot post in slack:CSUPPORT (department support): the bot is not a member"),
        "{log}"
    );
    assert!(
        log.contains(
            "cannot post in slack:CLEADS (digest weekly): permanent failure: channel_not_found"
        ),
        "{log}"
    );

    let event = reaction("EvBin1", "UBOB", "ticket", "1772442000.000100");
    let body = serde_json::to_vec(&event).unwrap();
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = sign(&Secret::new(TEST_SIGNING_SECRET), &ts, &body);
    let status = reqwest::Client::new()
        .post(format!("http://{addr}/slack/events"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fake.bot_messages().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut posted = fake.bot_messages();
    assert_eq!(posted.len(), 2, "{posted:#?}\n{log}");
    posted.sort_by_key(|m| m.thread_ts.is_none());
    assert_eq!(posted[0].thread_ts.as_deref(), Some("1772442000.000100"));
    assert_eq!(posted[1].channel, "CBILLING");

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
    while let Ok(line) = rx.try_recv() {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(
        !log.contains(TOKEN) && !log.contains(TEST_SIGNING_SECRET),
        "a secret reached the log:\n{log}"
    );
}
