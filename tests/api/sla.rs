//! SLA clocks on real tickets: business hours, waiting on the customer, `/ticket show`, and
//! escalations claimed once across instances that ping the department's leads and nobody
//! else. The clock is injected; nothing sleeps.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use switchboard::app::build_desk_with_store;
use switchboard::chat::slack::blocks;
use switchboard::cmd::digest::report;
use switchboard::config::{Config, Period};
use switchboard::core::directory::Actor;
use switchboard::core::message::Mention;
use switchboard::core::types::{ChannelRef, Platform, RoleRef, Status, TicketRef, UserRef};
use switchboard::schedule::{Escalation, Scheduler, SchedulerSettings};

use crate::helpers::*;

const SLA_CONFIG: &str = r#"
admins = ["person:alice"]

[[people]]
id = "alice"
name = "Alice"
slack = "UALICE"

[[people]]
id = "carol"
name = "Carol"
slack = "UCAROL"
discord = "1003"

[[departments]]
name = "billing"
channels = ["slack:CBILLING"]
members = ["person:alice", "slack:UBOB"]
leads = ["person:carol", "slack-group:SLEADS"]
hours = { timezone = "Europe/Berlin", days = "MON-FRI", open = "09:00", close = "18:00" }
holidays = ["2026-12-24"]
sla = { first_response = { high = "2h" }, warn = true }

[[departments]]
name = "it"
channels = ["slack:CIT"]
members = ["slack:UBOB"]

[sla]
first_response = { normal = "1h", high = "4h" }
resolution = { normal = "4h", high = "1d" }

[flagging]
who = "members"

[routing]
fallback = "billing"
"#;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Alice flags a customer's message at `at` (billing, by the fallback).
async fn flagged(app: &TestApp, at: &str, ts: &str, text: &str) -> TicketRef {
    app.clock.set(utc(at));
    app.flag(&slack("UALICE"), "ticket", source("slack:CHELP", ts, text))
        .await
        .unwrap()
        .ticket
        .id
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

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .to_string()
}

async fn waiting_on_the_customer_pauses_and_a_reply_resumes(app: TestApp) {
    // Monday 23 Nov 09:00 in Berlin; normal priority: 1h to respond, 4h to resolve.
    let id = flagged(&app, "2026-11-23T08:00:00Z", "1.1", "invoice is wrong").await;
    app.clock.set(utc("2026-11-23T08:30:00Z"));
    app.ok(&slack("UBOB"), "/ticket claim T-1").await;
    app.clock.set(utc("2026-11-23T09:00:00Z")); // 10:00: 1h of 4h used
    app.ok(&slack("UBOB"), "/ticket status T-1 waiting").await;
    app.clock.set(utc("2026-11-23T16:00:00Z"));
    let shown = app.ok(&slack("UBOB"), "/ticket show T-1").await;
    assert_eq!(field(&shown, "First response SLA"), "met");
    assert_eq!(
        field(&shown, "Resolution SLA"),
        "paused while waiting on the customer; 3h left"
    );
    assert!(
        scheduler(&app, "a").sla_tick().await.unwrap().is_empty(),
        "no escalation while paused"
    );
    // The customer answers in the thread on Tuesday 09:00.
    app.clock.set(utc("2026-11-24T08:00:00Z"));
    let channel: ChannelRef = "slack:CHELP".parse().unwrap();
    let t = app
        .desk
        .record_reply(&channel, "1.1", &Actor::user(customer()), None)
        .await
        .unwrap()
        .expect("the reply ends the wait");
    assert_eq!(t.status, Status::InProgress);
    assert_eq!(t.waiting_since, None);
    assert_eq!(t.sla_paused, Duration::hours(8), "Monday 10:00 to 18:00");
    let shown = app.ok(&slack("UBOB"), "/ticket show T-1").await;
    assert_eq!(
        field(&shown, "Resolution SLA"),
        "due in 3h (Tue 24 Nov 12:00 Europe/Berlin)"
    );
    let events = app.desk.store.events(id).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind.describe().contains("the customer replied")));
    // A status change ends a wait too, and counts only business time.
    app.clock.set(utc("2026-11-24T09:00:00Z")); // Tue 10:00
    app.ok(&slack("UBOB"), "/ticket status T-1 waiting").await;
    app.clock.set(utc("2026-11-24T10:00:00Z"));
    app.ok(&slack("UBOB"), "/ticket status T-1 in_progress")
        .await;
    let t = app.desk.ticket(id).await.unwrap();
    assert_eq!(t.sla_paused, Duration::hours(9));
}

async fn a_friday_evening_ticket_breaches_monday_and_is_escalated_once(app: TestApp) {
    // High priority in billing: 2 business hours to respond. Friday 20 Nov 17:55 in Berlin.
    app.clock.set(utc("2026-11-20T16:55:00Z"));
    app.flag(
        &slack("UALICE"),
        "ticket",
        source(
            "slack:CHELP",
            "2.1",
            "urgent: <!channel> refund for <@UOTHER|dan> please",
        ),
    )
    .await
    .unwrap();
    app.ok(&slack("UALICE"), "/ticket priority T-1 high").await;
    let (a, b) = (scheduler(&app, "a"), scheduler(&app, "b"));
    // 80% of 2h used is Monday 10:31 (5 min Friday + 1h31 Monday): the warning (billing asks).
    app.clock.set(utc("2026-11-23T09:30:00Z"));
    assert!(a.sla_tick().await.unwrap().is_empty(), "79% used at 10:30");
    app.clock.set(utc("2026-11-23T09:31:00Z"));
    let out = a.sla_tick().await.unwrap();
    assert_eq!(
        out,
        [Escalation {
            ticket: TicketRef(1),
            clock: "first_response".into(),
            level: "warning".into(),
            posted: true
        }]
    );
    app.clock.set(utc("2026-11-23T09:54:59Z"));
    assert!(
        a.sla_tick().await.unwrap().is_empty(),
        "not yet breached at 10:54:59"
    );
    // The deadline itself is still in time: nothing is escalated at 10:55:00.
    app.clock.set(utc("2026-11-23T09:55:00Z")); // Monday 10:55
    assert!(
        a.sla_tick().await.unwrap().is_empty(),
        "due, not late, at 10:55"
    );
    let shown = app.ok(&slack("UBOB"), "/ticket show T-1").await;
    assert!(
        field(&shown, "First response SLA").starts_with("due in 0m (Mon 23 Nov 10:55"),
        "{shown}"
    );
    app.clock.set(utc("2026-11-23T09:55:01Z"));
    let shown = app.ok(&slack("UBOB"), "/ticket show T-1").await;
    assert!(
        field(&shown, "First response SLA").starts_with("breached by 0m (was due Mon 23 Nov 10:55"),
        "{shown}"
    );
    let (ra, rb) = tokio::join!(a.sla_tick(), b.sla_tick());
    let all: Vec<Escalation> = ra.unwrap().into_iter().chain(rb.unwrap()).collect();
    let posted: Vec<&Escalation> = all.iter().filter(|e| e.posted).collect();
    assert_eq!(posted.len(), 1, "{all:?}");
    assert_eq!(posted[0].level, "breach");
    app.clock.advance(Duration::hours(3));
    assert!(a.sla_tick().await.unwrap().is_empty());
    assert!(scheduler(&app, "c")
        .sla_tick()
        .await
        .unwrap()
        .iter()
        .all(|e| !e.posted));

    // The posts: one warning and one breach, to billing's channel, pinging only its leads.
    let rows = app.desk.store.outbox(None, 0).await.unwrap();
    let escalations: Vec<_> = rows
        .iter()
        .filter(|r| {
            r.outgoing
                .message
                .title
                .as_deref()
                .is_some_and(|t| t.contains("SLA"))
        })
        .collect();
    assert_eq!(escalations.len(), 2);
    let breach = &escalations[1].outgoing;
    assert_eq!(breach.target.to_string(), "slack:CBILLING");
    assert!(breach
        .message
        .title
        .as_deref()
        .unwrap()
        .starts_with("⏰ SLA breached: T-1"));
    assert_eq!(
        breach.message.mentions,
        [
            Mention::User(UserRef::new(Platform::Slack, "UCAROL")),
            Mention::User(UserRef::new(Platform::Discord, "1003")),
            Mention::Group(RoleRef::new(Platform::Slack, "SLEADS")),
        ]
    );
    let (text, rendered) = blocks::render(&breach.message);
    let all_text = format!("{text} {rendered}");
    let pings: Vec<&str> = all_text
        .match_indices('<')
        .map(|(i, _)| {
            &all_text[i..all_text[i..]
                .find('>')
                .map_or(all_text.len(), |e| i + e + 1)]
        })
        .filter(|m| m.starts_with("<@") || m.starts_with("<!"))
        .collect();
    assert!(
        pings
            .iter()
            .all(|p| *p == "<@UCAROL>" || *p == "<!subteam^SLEADS>"),
        "only the leads are pinged: {pings:?}"
    );
    assert!(pings.contains(&"<@UCAROL>") && pings.contains(&"<!subteam^SLEADS>"));
    assert!(!all_text.contains("<!channel>") && !all_text.contains("<@UOTHER"));
}

async fn a_holiday_moves_the_deadline_and_digests_count_business_time(app: TestApp) {
    // Wednesday 23 Dec 17:00, high priority (2h): Thursday 24 Dec is a holiday, so the promise
    // falls due on Friday 25 Dec at 10:00.
    app.clock.set(utc("2026-12-23T16:00:00Z"));
    app.flag(
        &slack("UALICE"),
        "ticket",
        source("slack:CHELP", "3.1", "card declined"),
    )
    .await
    .unwrap();
    app.ok(&slack("UALICE"), "/ticket priority T-1 high").await;
    let shown = app.ok(&slack("UBOB"), "/ticket show T-1").await;
    assert_eq!(
        field(&shown, "First response SLA"),
        "due in 2h (Fri 25 Dec 10:00 Europe/Berlin)"
    );
    // Answered on Friday 09:30: on time in business hours (wall-clock, it would be 40h late).
    app.clock.set(utc("2026-12-25T08:30:00Z"));
    app.ok(&slack("UBOB"), "/ticket claim T-1").await;
    let r = report(
        &app.desk,
        "weekly",
        chrono_tz::Europe::Berlin,
        Period::Week,
        &[],
        utc("2026-12-28T08:00:00Z"),
    )
    .await
    .unwrap();
    let c = &r.overall.current;
    assert_eq!(
        (c.sla_first_response.met, c.sla_first_response.breached),
        (1, 0)
    );
}

async fn two_instances_escalate_a_breach_once(app: TestApp) {
    app.clock.set(utc("2026-11-23T08:00:00Z"));
    app.ok(&slack("UCUST"), "/ticket new printer department:it")
        .await; // it: 1h, wall clock
    let config: Config = (*app.desk.config).clone();
    let other = build_desk_with_store(
        config,
        app.second_store().await,
        Arc::new(app.clock.clone()),
    )
    .await
    .unwrap();
    let a = scheduler(&app, "instance-a");
    let b = Scheduler::new(
        other,
        SchedulerSettings {
            owner: "instance-b".into(),
            tick: std::time::Duration::from_secs(1),
        },
    );
    app.clock.set(utc("2026-11-23T09:00:01Z"));
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(a.sla_tick(), b.sla_tick());
        let _ = (ra.unwrap(), rb.unwrap());
    }
    let posts = app
        .desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.outgoing
                .message
                .title
                .as_deref()
                .is_some_and(|t| t.contains("SLA breached"))
        })
        .count();
    assert_eq!(posts, 1, "one breach, one post to its one channel");
}

crate::on_both_backends_with!(
    SLA_CONFIG;
    waiting_on_the_customer_pauses_and_a_reply_resumes,
    a_friday_evening_ticket_breaches_monday_and_is_escalated_once,
    a_holiday_moves_the_deadline_and_digests_count_business_time,
    two_instances_escalate_a_breach_once,
);

#[test]
fn bad_business_hours_are_config_errors() {
    for (from, to, key) in [
        (
            "open = \"09:00\"",
            "open = \"9am\"",
            "departments[0].hours.open",
        ),
        (
            "close = \"18:00\"",
            "close = \"08:00\"",
            "departments[0].hours.close",
        ),
        (
            "days = \"MON-FRI\"",
            "days = \"weekdays\"",
            "departments[0].hours.days",
        ),
        (
            "holidays = [\"2026-12-24\"]",
            "holidays = [\"24.12.2026\"]",
            "departments[0].holidays[0]",
        ),
        ("warn = true", "warn = \"yes\"", "departments[0].sla.warn"),
    ] {
        let bad = SLA_CONFIG.replace(from, to);
        assert_ne!(bad, SLA_CONFIG, "{from}");
        let err = Config::from_toml(&bad, "test", |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}
