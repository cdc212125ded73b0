//! Follow-ups on both databases with the injected clock: a reporter left waiting is reminded
//! once in the ticket's thread, then the ticket is resolved "after no reply" (counted as
//! auto-resolved, no rating asked); a reply from the customer cancels both; durations on
//! business hours; idle tickets nudged once per idle spell, to the assignee or the
//! department; two instances send each follow-up once.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sandbox::discord::FakeDiscord;
use sandbox::slack::FakeSlack;
use switchboard::app::build_desk_with_store;
use switchboard::chat::discord::client::DiscordApi;
use switchboard::chat::slack::client::SlackApi;
use switchboard::chat::Delivery;
use switchboard::cmd::digest::report;
use switchboard::config::Secret;
use switchboard::config::{Config, Period};
use switchboard::core::directory::Actor;
use switchboard::core::message::{OutKind, Target};
use switchboard::core::ticket::EventKind;
use switchboard::core::types::{ChannelRef, Mention, Status, TicketRef};
use switchboard::followups::FollowUp;
use switchboard::outbox::{OutboxSettings, OutboxWorker};
use switchboard::schedule::{Scheduler, SchedulerSettings};

use crate::helpers::*;

const FOLLOWUPS_CONFIG: &str = r#"
admins = ["person:alice"]

[[people]]
id = "alice"
name = "Alice"
slack = "UALICE"

[[people]]
id = "bob"
name = "Bob"
slack = "UBOB"

[[departments]]
name = "billing"
channels = ["slack:CBILLING"]
members = ["person:bob", "person:alice"]

[[departments]]
name = "it"
channels = ["slack:CIT"]
members = ["person:alice"]
hours = { timezone = "Europe/Berlin", days = "MON-FRI", open = "09:00", close = "18:00" }
followups = { remind_after = "1d", close_after = "2d", nudge_after = "off" }

[routing]
fallback = "billing"

[followups]
remind_after = "1d"
close_after = "3d"
nudge_after = "4h"
"#;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn scheduler(app: &TestApp, owner: &str) -> Scheduler {
    Scheduler::new(
        app.desk.clone(),
        SchedulerSettings {
            owner: owner.into(),
            tick: std::time::Duration::from_secs(1),
        },
    )
}

/// `(ticket, kind, done)` of a tick, by ticket.
async fn tick(s: &Scheduler) -> Vec<(i64, &'static str, bool)> {
    let mut out: Vec<_> = s
        .followup_tick()
        .await
        .unwrap()
        .into_iter()
        .map(|FollowUp { ticket, kind, done }| (ticket.0, kind, done))
        .collect();
    out.sort();
    out
}

async fn kinds(app: &TestApp, id: TicketRef) -> Vec<EventKind> {
    app.desk
        .store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Bob flags a customer's message in #help at `at` (billing, by the fallback), claims it
/// and asks the customer a question.
async fn waiting_ticket(app: &TestApp, at: &str, ts: &str) -> TicketRef {
    app.clock.set(utc(at));
    let t = app
        .flag(
            &bob(),
            "ticket",
            source("slack:CHELP", ts, "my invoice is wrong"),
        )
        .await
        .unwrap()
        .ticket
        .id;
    app.ok(&bob(), &format!("/ticket claim {t}")).await;
    app.ok(&bob(), &format!("/ticket status {t} waiting")).await;
    t
}

async fn a_silent_reporter_is_reminded_once_then_the_ticket_closes(app: TestApp) {
    // Monday 2 March, 09:00 UTC; billing runs on the wall clock: 1d, then 3d from the wait.
    let t1 = waiting_ticket(&app, "2026-03-02T09:00:00Z", "1.1").await;
    let a = scheduler(&app, "instance-a");
    app.clock.set(utc("2026-03-03T08:59:00Z"));
    assert_eq!(tick(&a).await, [], "not yet a day");
    app.clock.set(utc("2026-03-03T09:00:00Z"));
    assert_eq!(tick(&a).await, [(1, "remind", true)]);
    assert_eq!(tick(&a).await, [], "once");
    // A second instance on the same database finds it claimed.
    let config: Config = (*app.desk.config).clone();
    let other = build_desk_with_store(
        config,
        app.second_store().await,
        Arc::new(app.clock.clone()),
    )
    .await
    .unwrap();
    let b = Scheduler::new(
        other,
        SchedulerSettings {
            owner: "instance-b".into(),
            tick: std::time::Duration::from_secs(1),
        },
    );
    assert_eq!(tick(&b).await, [(1, "remind", false)]);
    let reminders: Vec<_> = ticket_posts(&app, t1)
        .await
        .into_iter()
        .filter(|p| p.2.contains("is waiting for your reply"))
        .collect();
    assert_eq!(reminders.len(), 1, "{reminders:#?}");
    let (kind, target, text, mentions) = &reminders[0];
    assert_eq!(*kind, OutKind::Post);
    assert_eq!(
        *target,
        Target::Channel {
            channel: "slack:CHELP".parse().unwrap(),
            thread: Some("1.1".into()),
        }
    );
    assert!(text.contains("we'll close it"), "{text}");
    assert_eq!(*mentions, [Mention::User(customer())], "the reporter only");
    assert!(kinds(&app, t1).await.contains(&EventKind::Reminded));

    // Still silent three days after the wait began: resolved, as automation.
    app.clock.set(utc("2026-03-05T08:59:00Z"));
    assert_eq!(tick(&a).await, []);
    app.clock.set(utc("2026-03-05T09:00:00Z"));
    let (ra, rb) = tokio::join!(a.followup_tick(), b.followup_tick());
    let done: Vec<bool> = ra
        .unwrap()
        .into_iter()
        .chain(rb.unwrap())
        .map(|f| f.done)
        .collect();
    assert_eq!(
        done.iter().filter(|d| **d).count(),
        1,
        "one instance closes it: {done:?}"
    );
    let t = app.desk.ticket(t1).await.unwrap();
    assert_eq!(t.status, Status::Resolved);
    let events = app.desk.store.events(t1).await.unwrap();
    let closed = events.last().unwrap();
    assert!(
        matches!(&closed.kind, EventKind::StatusChanged { to: Status::Resolved, reason: Some(r), .. } if r == "resolved after no reply"),
        "{closed:?}"
    );
    assert_eq!(
        closed.actor.as_ref().and_then(|a| a.automation_source()),
        Some("followups")
    );
    // No rating is asked (ask_csat is off), and digests count it as auto-resolved.
    let dms = app
        .desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r.outgoing.target, Target::User { .. }))
        .count();
    assert_eq!(dms, 0);
    let r = report(
        &app.desk,
        "weekly",
        chrono_tz::UTC,
        Period::Week,
        &[],
        app.desk.now(),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            r.overall.current.resolved,
            r.overall.current.automation.auto_resolved
        ),
        (1, 1)
    );
    assert_eq!(tick(&a).await, [], "nothing more for a resolved ticket");
}

async fn a_customer_reply_cancels_the_reminder_and_the_close(app: TestApp) {
    let t1 = waiting_ticket(&app, "2026-03-02T09:00:00Z", "2.1").await;
    let s = scheduler(&app, "a");
    // The customer answers in the thread after 20 hours: back in progress.
    app.clock.set(utc("2026-03-03T05:00:00Z"));
    let channel: ChannelRef = "slack:CHELP".parse().unwrap();
    let t = app
        .desk
        .record_reply(&channel, "2.1", &Actor::user(customer()), None)
        .await
        .unwrap()
        .expect("the reply ends the wait");
    assert_eq!(t.status, Status::InProgress);
    app.clock.set(utc("2026-03-06T09:00:00Z"));
    let done = tick(&s).await;
    assert!(
        !done.iter().any(|(_, k, _)| *k == "remind" || *k == "close"),
        "{done:?}"
    );
    assert_eq!(
        app.desk.ticket(t1).await.unwrap().status,
        Status::InProgress
    );
    // Asked again, it waits again: a new wait gets its own reminder.
    app.ok(&bob(), "/ticket status T-1 waiting").await;
    app.clock.set(utc("2026-03-07T09:00:00Z"));
    assert_eq!(tick(&s).await, [(1, "remind", true)]);
    // A claim made from a stale view (the wait the customer answered) sends nothing.
    let by = switchboard::core::types::UserRef::automation(
        switchboard::core::types::Platform::Slack,
        "followups",
    );
    let stale = app
        .desk
        .store
        .claim_followup(
            t1,
            "remind",
            utc("2026-03-02T09:00:00Z"),
            "late",
            &by,
            EventKind::Reminded,
            app.desk.now(),
            vec![],
        )
        .await
        .unwrap();
    assert!(!stale, "that wait is over");
    let reminded = kinds(&app, t1)
        .await
        .into_iter()
        .filter(|k| *k == EventKind::Reminded)
        .count();
    assert_eq!(reminded, 1, "none for the wait the customer answered");
}

async fn business_hours_count_and_a_ticket_without_a_message_is_reminded_under_its_alert(
    app: TestApp,
) {
    // IT: 09:00-18:00 Berlin, Monday to Friday; 1d = 9 working hours, 2d = 18.
    app.clock.set(utc("2026-03-06T08:00:00Z")); // Friday 09:00 Berlin
    app.ok(
        &slack("UCUSTOMER"),
        "/ticket new The VPN drops department:it",
    )
    .await;
    app.ok(&alice(), "/ticket claim T-1").await;
    app.clock.set(utc("2026-03-06T16:00:00Z")); // Friday 17:00: 1 working hour left today
    app.ok(&alice(), "/ticket status T-1 waiting").await;
    let s = scheduler(&app, "a");
    for (at, want) in [
        ("2026-03-07T16:00:00Z", vec![]), // Saturday: closed
        ("2026-03-09T15:59:00Z", vec![]), // Monday 16:59: 8h59m
        ("2026-03-09T16:00:00Z", vec![(1, "remind", true)]), // Monday 17:00: 9h
        ("2026-03-10T15:59:00Z", vec![]),
        ("2026-03-10T16:00:00Z", vec![(1, "close", true)]), // Tuesday 17:00: 18h
    ] {
        app.clock.set(utc(at));
        assert_eq!(tick(&s).await, want, "at {at}");
    }
    let reminder = ticket_posts(&app, TicketRef(1))
        .await
        .into_iter()
        .find(|p| p.2.contains("is waiting for your reply"))
        .expect("a reminder");
    assert_eq!(
        reminder.0,
        OutKind::AlertReply,
        "under the alert: no flagged message"
    );
    assert_eq!(
        reminder.1,
        Target::Channel {
            channel: "slack:CIT".parse().unwrap(),
            thread: None,
        }
    );
    assert!(
        reminder.2.contains("Tue 10 Mar 17:00 CET"),
        "{}",
        reminder.2
    );
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().status,
        Status::Resolved
    );
}

async fn idle_tickets_are_nudged_once_per_idle_spell(app: TestApp) {
    app.clock.set(utc("2026-03-02T09:00:00Z"));
    app.ok(&slack("UCUSTOMER"), "/ticket new Refund missing")
        .await; // billing
    let s = scheduler(&app, "a");
    app.clock.set(utc("2026-03-02T12:59:00Z"));
    assert_eq!(tick(&s).await, []);
    app.clock.set(utc("2026-03-02T13:00:00Z"));
    assert_eq!(tick(&s).await, [(1, "nudge", true)]);
    app.clock.set(utc("2026-03-02T20:00:00Z"));
    assert_eq!(tick(&s).await, [], "once per idle spell");
    // Another instance (its own memory) finds the nudge claimed.
    assert_eq!(tick(&scheduler(&app, "b")).await, [(1, "nudge", false)]);
    let nudges = ticket_posts(&app, TicketRef(1)).await;
    assert_eq!(nudges.len(), 1, "{nudges:#?}");
    assert_eq!(
        nudges[0].1,
        Target::Channel {
            channel: "slack:CBILLING".parse().unwrap(),
            thread: None,
        },
        "unassigned: the department's channel"
    );
    assert!(
        nudges[0].2.contains("nobody has claimed it"),
        "{}",
        nudges[0].2
    );
    // Bob claims it: a new idle spell, and the next nudge is a direct message to him.
    app.ok(&bob(), "/ticket claim T-1").await;
    app.clock.set(utc("2026-03-03T00:00:01Z"));
    assert_eq!(tick(&s).await, [(1, "nudge", true)]);
    let nudges = ticket_posts(&app, TicketRef(1)).await;
    assert_eq!(nudges.last().unwrap().1, Target::User { user: bob().user });
    assert!(nudges.last().unwrap().2.contains("is yours"));
    let nudged: Vec<EventKind> = kinds(&app, TicketRef(1))
        .await
        .into_iter()
        .filter(|k| matches!(k, EventKind::Nudged { .. }))
        .collect();
    assert_eq!(
        nudged,
        [
            EventKind::Nudged { assignee: None },
            EventKind::Nudged {
                assignee: Some(bob().user)
            }
        ]
    );
    // IT turned nudges off.
    app.ok(&alice(), "/ticket new printer department:it").await;
    app.clock.set(utc("2026-03-10T00:00:00Z"));
    assert!(!tick(&s).await.iter().any(|(t, _, _)| *t == 2));
}

/// The Discord customer of the reminder test.
fn src_author() -> switchboard::core::types::UserRef {
    switchboard::core::types::UserRef::new(switchboard::core::types::Platform::Discord, "1099")
}

fn outbox_worker(app: &TestApp, delivery: Arc<dyn Delivery>) -> OutboxWorker {
    OutboxWorker::new(
        app.desk.store.clone(),
        vec![delivery],
        Arc::new(app.clock.clone()),
        app.desk.telemetry.clone(),
        OutboxSettings {
            owner: "followups-test".into(),
            idle: std::time::Duration::from_millis(5),
            ..OutboxSettings::default()
        },
    )
}

/// The reminder through the real clients: on Slack a reply in the flagged message's thread
/// that pings the reporter; on Discord a reply to the flagged message whose
/// `allowed_mentions` lets it ping the reporter and nobody else.
async fn reminders_reach_the_reporter_on_both_platforms(app: TestApp) {
    const TOKEN: &str = "followups-token";
    let slack = FakeSlack::start("xoxb-followups").await.unwrap();
    slack.add_channel("CHELP", "help", true);
    let discord = FakeDiscord::start(TOKEN).await.unwrap();
    discord.add_channel("2100", "help");
    discord.add_member("1099", "Casey", &[]);
    app.clock.set(utc("2026-03-02T09:00:00Z"));
    app.flag(
        &bob(),
        "ticket",
        source("slack:CHELP", "5.1", "my invoice is wrong"),
    )
    .await
    .unwrap();
    let said = discord.say("2100", "1099", "my refund is late");
    let mut src = source("discord:2100", &said, "my refund is late");
    src.author = src_author();
    src.permalink = None;
    app.flag(&bob(), "ticket", src).await.unwrap();
    for t in ["T-1", "T-2"] {
        app.ok(&bob(), &format!("/ticket status {t} waiting")).await;
    }
    app.clock.set(utc("2026-03-03T09:00:00Z"));
    assert_eq!(
        tick(&scheduler(&app, "a")).await,
        [(1, "remind", true), (2, "remind", true)]
    );
    let slack_api = SlackApi::new(&slack.api_url, &Secret::new("xoxb-followups")).unwrap();
    let w = outbox_worker(&app, Arc::new(slack_api));
    while w.round().await.unwrap() > 0 {}
    let reminder = slack
        .bot_messages()
        .into_iter()
        .find(|m| m.text.contains("is waiting for your reply"))
        .expect("the reminder reached Slack");
    assert_eq!(
        (reminder.channel.as_str(), reminder.thread_ts.as_deref()),
        ("CHELP", Some("5.1"))
    );
    assert!(reminder.text.contains("<@UCUSTOMER>"), "{}", reminder.text);
    let discord_api = DiscordApi::new(&discord.base_url, &Secret::new(TOKEN)).unwrap();
    let w = outbox_worker(&app, Arc::new(discord_api));
    while w.round().await.unwrap() > 0 {}
    let reminder = discord
        .sent()
        .into_iter()
        .find(|m| m.content.contains("is waiting for your reply"))
        .expect("the reminder reached Discord");
    assert_eq!(reminder.channel_id, "2100");
    assert_eq!(reminder.reply_to.as_deref(), Some(said.as_str()));
    assert!(reminder.content.contains("<@1099>"), "{}", reminder.content);
    let allowed = reminder.allowed_mentions.unwrap();
    assert_eq!(allowed["parse"], serde_json::json!([]));
    assert_eq!(allowed["users"], serde_json::json!(["1099"]));
    crate::discord_flow::assert_bodies_match_discords_schema(&discord);
    // The customer answers the reminder itself (a reply to the bot's message): the wait ends.
    let t = app
        .desk
        .record_reply(
            &"discord:2100".parse().unwrap(),
            &reminder.id,
            &Actor::user(src_author()),
            None,
        )
        .await
        .unwrap()
        .expect("a reply to the reminder ends the wait");
    assert_eq!((t.id, t.status), (TicketRef(2), Status::InProgress));
}

/// A ticket without a flagged message has its thread under its alert: the customer replying
/// there ends the wait (so no reminder comes), and staff talking there is no first response.
async fn a_reply_under_the_alert_ends_the_wait(app: TestApp) {
    let fake = FakeSlack::start("xoxb-alert-thread").await.unwrap();
    fake.add_channel("CBILLING", "billing", true);
    let api = SlackApi::new(&fake.api_url, &Secret::new("xoxb-alert-thread")).unwrap();
    let w = outbox_worker(&app, Arc::new(api));
    app.clock.set(utc("2026-03-02T09:00:00Z"));
    app.ok(&slack("UCUSTOMER"), "/ticket new Refund missing")
        .await;
    while w.round().await.unwrap() > 0 {}
    let alert = fake.bot_messages().remove(0);
    assert_eq!(alert.channel, "CBILLING");
    let channel: ChannelRef = "slack:CBILLING".parse().unwrap();
    // Bob talks it over under the alert: not an answer the customer sees.
    let said = app
        .desk
        .record_reply(&channel, &alert.ts, &bob(), None)
        .await
        .unwrap();
    assert!(said.is_none());
    assert_eq!(
        app.desk
            .ticket(TicketRef(1))
            .await
            .unwrap()
            .first_response_at,
        None
    );
    app.ok(&bob(), "/ticket status T-1 waiting").await;
    app.clock.set(utc("2026-03-02T15:00:00Z"));
    let t = app
        .desk
        .record_reply(&channel, &alert.ts, &Actor::user(customer()), None)
        .await
        .unwrap()
        .expect("the customer's reply under the alert ends the wait");
    assert_eq!(t.status, Status::InProgress);
    app.clock.set(utc("2026-03-03T09:00:00Z"));
    let done = tick(&scheduler(&app, "a")).await;
    assert!(!done.iter().any(|(_, k, _)| *k == "remind"), "{done:?}");
}

#[test]
fn close_after_must_come_after_remind_after() {
    let config = FOLLOWUPS_CONFIG.replace("close_after = \"3d\"", "close_after = \"12h\"");
    let err = Config::from_toml(&config, "test", |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("close_after must be longer than remind_after"),
        "{err}"
    );
    let config = FOLLOWUPS_CONFIG.replace("nudge_after = \"4h\"", "nudge_after = \"soon\"");
    let err = Config::from_toml(&config, "test", |_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("or \"off\""), "{err}");
}

crate::on_both_backends_with!(
    FOLLOWUPS_CONFIG;
    a_silent_reporter_is_reminded_once_then_the_ticket_closes,
    a_customer_reply_cancels_the_reminder_and_the_close,
    business_hours_count_and_a_ticket_without_a_message_is_reminded_under_its_alert,
    idle_tickets_are_nudged_once_per_idle_spell,
    reminders_reach_the_reporter_on_both_platforms,
    a_reply_under_the_alert_ends_the_wait,
);
