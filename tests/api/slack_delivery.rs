//! The real slack-morphism client delivering the outbox to the fake Slack over HTTP: alerts as
//! Block Kit with buttons, replies in the flagged message's thread, edits in place, mentions
//! neutralised, and Slack's 429, 5xx and permanent errors handled by the worker.

use std::sync::Arc;
use std::time::Duration;

use sandbox::slack::{FakeSlack, Fault};
use switchboard::chat::slack::client::SlackApi;
use switchboard::chat::Delivery;
use switchboard::config::Secret;
use switchboard::outbox::{OutboxSettings, OutboxWorker};

use crate::helpers::*;

const TOKEN: &str = "xoxb-sandbox-token";

async fn fake() -> FakeSlack {
    let f = FakeSlack::start(TOKEN).await.unwrap();
    for (id, name) in [
        ("CHELP", "help"),
        ("CBILLING", "billing"),
        ("CSUPPORT", "support"),
        ("CLEADS", "leads"),
    ] {
        f.add_channel(id, name, true);
    }
    f
}

fn worker(app: &TestApp, fake_slack: &FakeSlack) -> OutboxWorker {
    let api = SlackApi::new(&fake_slack.api_url, &Secret::new(TOKEN)).unwrap();
    OutboxWorker::new(
        app.desk.store.clone(),
        vec![Arc::new(api) as Arc<dyn Delivery>],
        Arc::new(app.clock.clone()),
        app.desk.telemetry.clone(),
        OutboxSettings {
            owner: "slack-test".into(),
            lease: Duration::from_secs(60),
            batch: 50,
            concurrency: 8,
            idle: Duration::from_millis(5),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(8),
            max_attempts: 5,
        },
    )
}

async fn drain(w: &OutboxWorker) {
    while w.round().await.unwrap() > 0 {}
}

#[tokio::test]
async fn a_flag_becomes_a_thread_reply_and_a_block_kit_alert_that_is_edited_in_place() {
    let app = spawn_app().await;
    let fake_slack = fake().await;
    let w = worker(&app, &fake_slack);
    let text = "<!here> I was charged twice, ask <@U0BOSS|boss> or <!subteam^S1|@billing-team>";
    app.flag(
        &bob(),
        "ticket",
        source("slack:CHELP", "1772442000.000100", text),
    )
    .await
    .unwrap();
    drain(&w).await;
    let mut posted = fake_slack.bot_messages();
    assert_eq!(posted.len(), 2, "{posted:#?}");
    // The reply and the alert go to different channels, at once: in either order.
    posted.sort_by_key(|m| m.thread_ts.is_none());
    let reply = &posted[0];
    assert_eq!(
        (reply.channel.as_str(), reply.thread_ts.as_deref()),
        ("CHELP", Some("1772442000.000100"))
    );
    assert!(
        reply.text.contains("ticket T-1 with billing"),
        "{}",
        reply.text
    );
    let alert = &posted[1];
    assert_eq!(alert.channel, "CBILLING");
    let blocks =
        serde_json::to_string(alert.blocks.as_ref().expect("an alert has blocks")).unwrap();
    assert!(
        blocks.contains("\"action_id\":\"claim:1\"")
            && blocks.contains("\"action_id\":\"resolve:1\""),
        "{blocks}"
    );
    for rendered in [&alert.text, &blocks] {
        for bad in ["<!here>", "<@U0BOSS", "<!subteam"] {
            assert!(!rendered.contains(bad), "{bad} reached Slack: {rendered}");
        }
    }
    assert!(
        blocks.contains("@boss") && blocks.contains("@billing-team"),
        "{blocks}"
    );

    app.ok(&bob(), "/ticket claim T-1").await;
    drain(&w).await;
    let posted = fake_slack.bot_messages();
    assert_eq!(posted.len(), 2, "an edit, not a new post");
    assert_eq!(posted[1].edits, 1);
    let rows = app.desk.store.outbox(None, 0).await.unwrap();
    let slack_rows = rows
        .iter()
        .filter(|r| r.outgoing.target.platform() == switchboard::core::types::Platform::Slack);
    assert!(
        slack_rows.clone().count() == 3 && slack_rows.clone().all(|r| r.status == "sent"),
        "every row recorded as sent: {rows:#?}"
    );
    assert!(serde_json::to_string(&posted[1].blocks)
        .unwrap()
        .contains("in progress"));
}

#[tokio::test]
async fn a_429_pauses_only_its_channel_for_retry_after_and_a_5xx_backs_off_and_each_alert_arrives_once(
) {
    let app = spawn_app().await;
    let fake_slack = fake().await;
    let w = worker(&app, &fake_slack);
    let posts = |f: &FakeSlack| {
        f.calls()
            .iter()
            .filter(|c| *c == "chat.postMessage")
            .count()
    };
    app.ok(&slack("UC"), "/ticket new printer jam department:support")
        .await;
    fake_slack.fail_next("chat.postMessage", Fault::RateLimited(3), 1);
    w.round().await.unwrap();
    assert!(fake_slack.bot_messages().is_empty());
    assert_eq!(posts(&fake_slack), 1);
    // The row is due again (the worker's clock), but Slack's three seconds have not passed: the
    // client does not call Slack for that channel; the row waits again, as no attempt.
    app.clock.advance(chrono::Duration::seconds(3));
    w.round().await.unwrap();
    assert_eq!(
        posts(&fake_slack),
        1,
        "Retry-After is honoured for the channel"
    );
    // Another channel is not paused.
    app.ok(&slack("UC"), "/ticket new refund please department:billing")
        .await;
    w.round().await.unwrap();
    let sent = fake_slack.bot_messages();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].channel, "CBILLING");
    tokio::time::sleep(Duration::from_millis(3050)).await;
    app.clock.advance(chrono::Duration::seconds(3));
    fake_slack.fail_next("chat.postMessage", Fault::ServerError(503), 1);
    w.round().await.unwrap();
    assert_eq!(fake_slack.bot_messages().len(), 1);
    app.clock.advance(chrono::Duration::seconds(2));
    drain(&w).await;
    let sent = fake_slack.bot_messages();
    assert_eq!(
        sent.iter().filter(|m| m.channel == "CSUPPORT").count(),
        1,
        "delivered exactly once"
    );
    assert_eq!(posts(&fake_slack), 4, "the 429, the 503, then one each");
    let rows = app.desk.store.outbox(Some("sent"), 0).await.unwrap();
    assert_eq!(rows.len(), 2);
    let support = rows
        .iter()
        .find(|r| r.outgoing.target.to_string().contains("CSUPPORT"))
        .unwrap();
    assert_eq!(
        support.attempts, 2,
        "waiting for the rate limit was not an attempt"
    );
}

/// A saved reply on a ticket opened by command (no flagged message) is posted in the thread
/// of the ticket's alert, after the alert, with the alert's timestamp as Slack's `thread_ts`.
#[tokio::test]
async fn a_saved_reply_goes_into_the_alerts_thread() {
    let app = spawn_app().await;
    let fake_slack = fake().await;
    let w = worker(&app, &fake_slack);
    app.ok(
        &alice(),
        "/reply add vpn Hi {reporter}, restart the VPN client please.",
    )
    .await;
    app.ok(&alice(), "/ticket new The VPN drops every hour")
        .await;
    app.ok(&alice(), "/reply T-1 vpn").await;
    drain(&w).await;
    let posted = fake_slack.bot_messages();
    assert_eq!(posted.len(), 2, "{posted:#?}");
    let (alert, reply) = (&posted[0], &posted[1]);
    assert_eq!(
        (alert.channel.as_str(), alert.thread_ts.as_deref()),
        ("CSUPPORT", None)
    );
    assert_eq!(reply.channel, "CSUPPORT");
    assert_eq!(reply.thread_ts.as_deref(), Some(alert.ts.as_str()));
    assert!(
        reply.text.contains("Alice, from the saved reply vpn:")
            && reply.text.contains("restart the VPN client"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn a_channel_the_bot_is_not_in_dead_letters_the_alert_with_slacks_reason() {
    let app = spawn_app().await;
    let fake_slack = fake().await;
    fake_slack.add_channel("CSUPPORT", "support", false);
    let w = worker(&app, &fake_slack);
    app.ok(&slack("UC"), "/ticket new printer jam department:support")
        .await;
    drain(&w).await;
    let failed = app.desk.store.outbox(Some("failed"), 0).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("not_in_channel"),
        "{failed:?}"
    );
}

#[tokio::test]
async fn the_client_checks_its_token() {
    let fake_slack = fake().await;
    let good = SlackApi::new(&fake_slack.api_url, &Secret::new(TOKEN)).unwrap();
    assert_eq!(good.whoami().await.unwrap(), sandbox::slack::BOT_USER);
    let bad = SlackApi::new(&fake_slack.api_url, &Secret::new("xoxb-wrong")).unwrap();
    let err = bad.whoami().await.unwrap_err();
    assert_eq!(
        err,
        switchboard::chat::ChatError::Permanent("invalid_auth".into())
    );
    assert!(
        !format!("{good:?}").contains(TOKEN),
        "the token never prints"
    );
}
