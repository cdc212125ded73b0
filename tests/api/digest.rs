//! Digests: figures checked against values worked out by hand on a small history (including
//! tickets spanning the period boundary), the store's row selection against a full scan, and
//! the scheduler: fires on local wall-clock time, once per fire across instances, within the
//! grace window only, and waking for a fire rather than at the next tick. The clock is injected;
//! only the wake-up test runs in real time (under a second).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use switchboard::app::build_desk_with_store;
use switchboard::cmd::digest::report;
use switchboard::config::{Config, Period};
use switchboard::core::digest::{self, DigestInput, DigestTicket, Window};
use switchboard::core::directory::Permission;
use switchboard::core::ticket::Change;
use switchboard::core::types::{Priority, Status, TicketRef};
use switchboard::desk::TicketOverrides;
use switchboard::schedule::{FireOutcome, Scheduler, SchedulerSettings};
use switchboard::store::{NewMetric, TicketFilter};

use crate::helpers::*;

const DIGEST_CONFIG: &str = r#"
admins = ["person:alice"]

[[people]]
id = "alice"
name = "Alice"
slack = "UALICE"

[[departments]]
name = "billing"
channels = ["slack:CBILLING"]
members = ["person:alice"]
sla = { first_response = { high = "30m" } }

[[departments]]
name = "it"
channels = ["slack:CIT"]
members = ["person:alice"]

[sla]
first_response = { high = "1h", normal = "4h" }
resolution = { high = "1d", normal = "3d" }

[routing]
fallback = "billing"

[[digests]]
name = "weekly"
cron = "0 9 * * 1"
timezone = "Europe/Berlin"
targets = ["slack:CLEADS", "discord:2003"]

[[digests]]
name = "nightly-berlin"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
targets = ["slack:CLEADS"]
period = "day"

[[digests]]
name = "nightly-ny"
cron = "30 1 * * *"
timezone = "America/New_York"
targets = ["slack:CLEADS"]
period = "day"
grace = "2h"
"#;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Opens a ticket at `at` in `dept` with `priority` and `tags`.
async fn open(app: &TestApp, at: &str, dept: &str, priority: Priority, tags: &[&str]) -> TicketRef {
    app.clock.set(utc(at));
    let t = app
        .desk
        .open_from_command(
            &slack("UCUSTOMER"),
            None,
            "customer problem",
            TicketOverrides {
                title: None,
                department: Some(dept.into()),
                priority: Some(priority),
                tags: tags.iter().map(|t| t.to_string()).collect(),
            },
        )
        .await
        .unwrap();
    t.ticket.id
}

async fn change(app: &TestApp, at: &str, id: TicketRef, c: Change) {
    app.clock.set(utc(at));
    app.desk
        .change(&slack("UALICE"), id, Permission::Member, "test", c)
        .await
        .unwrap();
}

fn resolve() -> Change {
    Change::SetStatus {
        to: Status::Resolved,
        reason: None,
    }
}

/// The history, in UTC. The week under review is (2026-03-02 08:00, 2026-03-09 08:00] (Monday
/// 09:00 to Monday 09:00 in Berlin); the week before ends at its start.
async fn history(app: &TestApp) {
    // A: previous week, answered in 20m there, resolved this week after 4 days.
    let a = open(app, "2026-02-27T10:00:00Z", "billing", Priority::High, &[]).await;
    change(app, "2026-02-27T10:20:00Z", a, Change::Claim).await;
    change(app, "2026-03-03T10:00:00Z", a, resolve()).await;
    // B: opened exactly at the boundary (so in the previous week), answered after 1h and
    // resolved after 4h, both in this week.
    let b = open(
        app,
        "2026-03-02T08:00:00Z",
        "billing",
        Priority::Normal,
        &[],
    )
    .await;
    change(app, "2026-03-02T09:00:00Z", b, Change::Claim).await;
    change(app, "2026-03-02T12:00:00Z", b, resolve()).await;
    // C: high, answered after 45m (billing promises 30m), still open.
    let c = open(
        app,
        "2026-03-03T09:00:00Z",
        "billing",
        Priority::High,
        &["vip", "money"],
    )
    .await;
    change(app, "2026-03-03T09:45:00Z", c, Change::Claim).await;
    // D: normal, never answered.
    open(
        app,
        "2026-03-04T12:00:00Z",
        "billing",
        Priority::Normal,
        &["money"],
    )
    .await;
    // E: it, high, answered after 30m (promise 1h), resolved after exactly 1d (promise 1d).
    let e = open(app, "2026-03-05T10:00:00Z", "it", Priority::High, &["vpn"]).await;
    change(app, "2026-03-05T10:30:00Z", e, Change::Claim).await;
    change(app, "2026-03-06T10:00:00Z", e, resolve()).await;
    // F: it, normal, a minute before the end; its promise is not due yet.
    open(app, "2026-03-09T07:59:00Z", "it", Priority::Normal, &[]).await;
    // G: just after the end.
    open(app, "2026-03-09T08:00:01Z", "it", Priority::Normal, &[]).await;
    // H: long done before either week.
    let h = open(app, "2026-02-01T08:00:00Z", "it", Priority::Low, &[]).await;
    change(app, "2026-02-02T08:00:00Z", h, resolve()).await;
    // CSAT: B 5 and A 3 (billing), E 4 (it), all this week; one last week.
    let store = &app.desk.store;
    for (t, score, at) in [
        (b, 5, "2026-03-02T13:00:00Z"),
        (a, 3, "2026-03-03T11:00:00Z"),
        (e, 4, "2026-03-06T11:00:00Z"),
        (h, 1, "2026-02-24T11:00:00Z"),
    ] {
        assert!(store
            .record_csat(t, score, None, &customer(), utc(at))
            .await
            .unwrap());
    }
    // NPS answers (0-10) and a custom metric.
    let metric = |name: &str, value: f64, dept: Option<&str>, at: &str| NewMetric {
        name: name.into(),
        value,
        department: dept.map(str::to_string),
        note: None,
        recorded_by: None,
        at: utc(at),
        received_at: utc(at),
    };
    for m in [
        metric("nps", 10.0, None, "2026-03-03T10:00:00Z"),
        metric("nps", 9.0, None, "2026-03-03T11:00:00Z"),
        metric("nps", 8.0, None, "2026-03-04T10:00:00Z"),
        metric("nps", 3.0, None, "2026-03-05T10:00:00Z"),
        metric("nps", 6.0, None, "2026-03-06T10:00:00Z"),
        metric("nps", 10.0, Some("billing"), "2026-03-06T11:00:00Z"),
        metric("nps", 0.0, None, "2026-02-25T10:00:00Z"),
        metric("mrr", 100.0, None, "2026-02-25T10:00:00Z"),
        metric("mrr", 110.0, None, "2026-03-03T10:00:00Z"),
        metric("mrr", 120.0, None, "2026-03-05T10:00:00Z"),
    ] {
        store.add_metric(m).await.unwrap();
    }
}

const END: &str = "2026-03-09T08:00:00Z";

async fn figures_match_the_hand_worked_history(app: TestApp) {
    history(&app).await;
    let r = report(
        &app.desk,
        "weekly",
        chrono_tz::Europe::Berlin,
        Period::Week,
        &[],
        utc(END),
    )
    .await
    .unwrap();
    assert_eq!(r.window.from, utc("2026-03-02T08:00:00Z"));
    let o = &r.overall.current;
    assert_eq!(
        (o.opened, o.resolved, o.backlog),
        (4, 3, 3),
        "C D E F; A B E; C D F"
    );
    assert_eq!(o.first_response.count, 3, "B, C, E answered this week");
    assert_eq!(o.first_response.median, Some(Duration::minutes(45)));
    assert_eq!(o.first_response.p90, Some(Duration::hours(1)));
    assert_eq!(o.resolution.count, 3);
    assert_eq!(o.resolution.median, Some(Duration::days(1)));
    assert_eq!(o.resolution.p90, Some(Duration::days(4)));
    // Promises decided this week: B and E answered and resolved in time; C and D's deadlines
    // passed. A's were decided the week before (answered in time, resolution deadline passed).
    assert_eq!(
        (o.sla_first_response.met, o.sla_first_response.breached),
        (2, 2)
    );
    assert_eq!((o.sla_resolution.met, o.sla_resolution.breached), (2, 2));
    assert_eq!(o.csat.count, 3);
    assert_eq!(o.csat.average, Some(4.0));
    assert_eq!(o.csat.spread, [0, 0, 1, 1, 1]);
    assert_eq!(
        (o.nps.promoters, o.nps.passives, o.nps.detractors),
        (3, 1, 2)
    );
    assert_eq!(o.nps.score, Some(16.7));
    let p = &r.overall.previous;
    assert_eq!(
        (p.opened, p.resolved, p.backlog),
        (2, 0, 2),
        "A and B; none; A and B"
    );
    assert_eq!(p.first_response.median, Some(Duration::minutes(20)));
    assert_eq!(
        (
            p.sla_first_response.met,
            p.sla_resolution.met,
            p.sla_resolution.breached
        ),
        (1, 0, 1),
        "A"
    );
    assert_eq!(p.csat.average, Some(1.0));
    assert_eq!(p.nps.score, Some(-100.0));
    let breached: Vec<(i64, &str, Duration)> = r
        .overall
        .breached
        .iter()
        .map(|b| (b.id.0, b.what.as_deref().unwrap(), b.by))
        .collect();
    assert_eq!(
        breached,
        [
            (3, "resolution", Duration::days(4) + Duration::hours(23)),
            (4, "first response", Duration::days(4) + Duration::hours(16)),
            (4, "resolution", Duration::days(1) + Duration::hours(20)),
            (3, "first response", Duration::minutes(15)),
        ]
    );
    let oldest: Vec<i64> = r.overall.oldest_open.iter().map(|t| t.id.0).collect();
    assert_eq!(oldest, [3, 4, 6]);
    assert_eq!(
        r.overall.top_tags,
        [
            ("money".to_string(), 2),
            ("vip".into(), 1),
            ("vpn".into(), 1)
        ]
    );
    assert_eq!(r.overall.metrics.len(), 1);
    assert_eq!(r.overall.metrics[0].name, "mrr");
    assert_eq!(r.overall.metrics[0].latest, 120.0);
    assert_eq!(r.overall.metrics[0].previous, Some(100.0));

    let billing = &r.departments[0];
    assert_eq!(billing.department.as_deref(), Some("billing"));
    let b = &billing.current;
    assert_eq!((b.opened, b.resolved, b.backlog), (2, 2, 2));
    assert_eq!(b.csat.average, Some(4.0));
    assert_eq!(b.nps.score, Some(100.0), "billing's own answer only");
    let it = &r.departments[1].current;
    assert_eq!((it.opened, it.resolved, it.backlog), (2, 1, 1));
    assert_eq!(
        (it.sla_first_response.met, it.sla_first_response.breached),
        (1, 0)
    );

    // The text says the same, as a person would.
    let text = digest::render(&r, chrono_tz::Europe::Berlin).plain();
    for want in [
        "Digest `weekly`: Mon 02 Mar 2026 09:00 to Mon 09 Mar 2026 09:00 (Europe/Berlin)",
        "*billing*\nOpened: 2 (no change, from 2)\nResolved: 2 (new, from 0)",
        "NPS: +100 from 1 answer (1 promoter, 0 passives, 0 detractors); before n/a",
        "Opened: 4 (▲ 100%, from 2)\nResolved: 3 (new, from 0)\nOpen at the end: 3 (▲ 50%, from 2)",
        "First response: median 45m, p90 1h 0m (3 tickets; before: median 20m)",
        "Resolution: median 1d 0h, p90 4d 0h (3 tickets; before: median n/a)",
        "SLA met: first response 50% (2 of 4), resolution 50% (2 of 4)",
        "CSAT: 4.0 from 3 answers (1★ 0 · 2★ 0 · 3★ 1 · 4★ 1 · 5★ 1); before 1.0",
        "NPS: +17 from 6 answers (3 promoters, 1 passive, 2 detractors); before -100",
        "Metrics: mrr 120 (▲ 20%, from 100)",
        "Top tags: money 2 · vip 1 · vpn 1",
        "• T-3 customer problem (billing, high): resolution 4d 23h late",
        "Oldest open:\n• T-3 customer problem (billing, high): open 5d 23h",
    ] {
        assert!(text.contains(want), "lacks `{want}`:\n{text}");
    }
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["overall"]["current"]["first_response"]["median"], 2700);
}

/// The store returns exactly the rows the figures need: computing from a full scan of every
/// ticket gives the same digest, at several period ends.
async fn the_stores_rows_give_the_same_figures_as_a_full_scan(app: TestApp) {
    history(&app).await;
    // Every ticket with its history: the same read from before the first ticket.
    let all = app
        .desk
        .store
        .digest_input(utc("2020-01-01T00:00:00Z"), utc(END), &[])
        .await
        .unwrap()
        .tickets;
    let count = app
        .desk
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap()
        .len();
    assert_eq!(all.len(), count);
    let people = |u: &switchboard::core::types::UserRef| (u.to_string(), u.to_string());
    let compute = |covered: &[String], input: &DigestInput, w: Window| {
        let spec = digest::Spec {
            schedule: "w",
            timezone: chrono_tz::UTC,
            covered,
            window: w,
            min_sample: 1,
        };
        digest::compute(&spec, input, &app.desk.config.sla, vec![], &people)
    };
    for end in [
        "2026-03-02T08:00:00Z",
        "2026-03-04T00:00:00Z",
        END,
        "2026-03-20T00:00:00Z",
    ] {
        let w = Window::new(utc(end) - Duration::days(7), utc(end));
        let mut scanned = app
            .desk
            .store
            .digest_input(w.previous().from, w.to, &[])
            .await
            .unwrap();
        let selected = scanned.tickets.clone();
        scanned.tickets = all.clone();
        let covered = vec!["billing".to_string(), "it".to_string()];
        let from_rows = compute(
            &covered,
            &DigestInput {
                tickets: selected.clone(),
                ..scanned.clone()
            },
            w,
        );
        let from_scan = compute(&covered, &scanned, w);
        assert_eq!(from_rows, from_scan, "period ending {end}");
        assert!(selected.len() < all.len(), "old, done tickets are not read");
        // A digest of one department reads only its rows, with the same result.
        let billing = vec!["billing".to_string()];
        let mine = app
            .desk
            .store
            .digest_input(w.previous().from, w.to, &billing)
            .await
            .unwrap();
        assert!(mine.tickets.iter().all(|t| t.department == "billing"));
        assert_eq!(
            compute(&billing, &mine, w),
            compute(&billing, &scanned, w),
            "billing, period ending {end}"
        );
    }
}

/// A config with only `schedule`'s digest.
async fn scheduler(app: &TestApp, owner: &str) -> Scheduler {
    Scheduler::new(
        app.desk.clone(),
        SchedulerSettings {
            owner: owner.into(),
            tick: std::time::Duration::from_secs(1),
        },
    )
}

fn posted(out: &[FireOutcome], schedule: &str) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            FireOutcome::Posted {
                schedule: s, fire, ..
            } if s == schedule => Some(fire.clone()),
            _ => None,
        })
        .collect()
}

async fn outbox_posts(app: &TestApp) -> usize {
    app.desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.outgoing.ticket.is_none())
        .count()
}

async fn monday_nine_fires_once_at_nine_local(app: TestApp) {
    let s = scheduler(&app, "a").await;
    // Sunday evening: last Monday's fire is long past its grace window.
    app.clock.set(utc("2026-11-22T20:00:00Z"));
    let out = s.tick().await.unwrap();
    assert!(posted(&out, "weekly").is_empty(), "{out:?}");
    app.clock.set(utc("2026-11-23T07:59:59Z"));
    assert!(posted(&s.tick().await.unwrap(), "weekly").is_empty());
    app.clock.set(utc("2026-11-23T08:00:00Z")); // 09:00 in Berlin
    let out = s.tick().await.unwrap();
    assert_eq!(posted(&out, "weekly"), ["2026-11-23T09:00:00"]);
    let rows = app.desk.store.outbox(None, 0).await.unwrap();
    let targets: Vec<String> = rows
        .iter()
        .filter(|r| r.outgoing.ticket.is_none())
        .filter(|r| {
            r.outgoing
                .message
                .title
                .as_deref()
                .unwrap_or("")
                .contains("weekly")
        })
        .map(|r| r.outgoing.target.to_string())
        .collect();
    assert_eq!(targets, ["slack:CLEADS", "discord:2003"]);
    let title = rows
        .iter()
        .rev()
        .find_map(|r| r.outgoing.message.title.clone())
        .unwrap();
    let charts = rows
        .iter()
        .filter(|r| {
            r.outgoing
                .message
                .attachment
                .as_ref()
                .is_some_and(|a| a.filename == "digest-weekly.png")
        })
        .count();
    assert_eq!(charts, 2, "the chart to each target");
    assert!(
        title.contains("Mon 16 Nov 2026 09:00 to Mon 23 Nov 2026 09:00"),
        "{title}"
    );
    // Later ticks, and a restarted scheduler, post nothing more for that fire.
    app.clock.advance(Duration::minutes(10));
    assert!(posted(&s.tick().await.unwrap(), "weekly").is_empty());
    let restarted = scheduler(&app, "a2").await;
    let out = restarted.tick().await.unwrap();
    assert!(out.contains(&FireOutcome::AlreadyPosted {
        schedule: "weekly".into(),
        fire: "2026-11-23T09:00:00".into()
    }));
}

/// Ticks every 10 minutes through `from..to` and returns the fires posted for `schedule`
/// with the UTC instant of the tick that posted each.
async fn run_through(
    app: &TestApp,
    schedule: &str,
    from: &str,
    to: &str,
) -> Vec<(String, DateTime<Utc>)> {
    let s = scheduler(app, "dst").await;
    let mut now = utc(from);
    let mut out = Vec::new();
    while now <= utc(to) {
        app.clock.set(now);
        for f in posted(&s.tick().await.unwrap(), schedule) {
            out.push((f, now));
        }
        now += Duration::minutes(10);
    }
    out
}

async fn daylight_saving_fires_once_or_at_the_next_valid_instant(app: TestApp) {
    // Berlin, spring: 02:30 does not exist on 29 March; it fires at 03:00 CEST (01:00 UTC).
    let f = run_through(
        &app,
        "nightly-berlin",
        "2026-03-28T22:00:00Z",
        "2026-03-29T06:00:00Z",
    )
    .await;
    assert_eq!(
        f,
        [("2026-03-29T02:30:00".into(), utc("2026-03-29T01:00:00Z"))]
    );
    // Berlin, autumn: 02:30 happens twice on 25 October; it fires once, the first time.
    let f = run_through(
        &app,
        "nightly-berlin",
        "2026-10-24T22:00:00Z",
        "2026-10-25T06:00:00Z",
    )
    .await;
    assert_eq!(
        f,
        [("2026-10-25T02:30:00".into(), utc("2026-10-25T00:30:00Z"))]
    );
    // New York, spring: 01:30 exists (EST); autumn: 01:30 happens twice, fires once.
    let f = run_through(
        &app,
        "nightly-ny",
        "2026-03-08T04:00:00Z",
        "2026-03-08T12:00:00Z",
    )
    .await;
    assert_eq!(
        f,
        [("2026-03-08T01:30:00".into(), utc("2026-03-08T06:30:00Z"))]
    );
    let f = run_through(
        &app,
        "nightly-ny",
        "2026-11-01T03:00:00Z",
        "2026-11-01T12:00:00Z",
    )
    .await;
    assert_eq!(
        f,
        [("2026-11-01T01:30:00".into(), utc("2026-11-01T05:30:00Z"))]
    );
}

async fn two_instances_on_one_database_post_a_fire_once(app: TestApp) {
    let config: Config = (*app.desk.config).clone();
    let other_desk = build_desk_with_store(
        config,
        app.second_store().await,
        Arc::new(app.clock.clone()),
    )
    .await
    .unwrap();
    let a = scheduler(&app, "instance-a").await;
    let b = Scheduler::new(
        other_desk,
        SchedulerSettings {
            owner: "instance-b".into(),
            tick: std::time::Duration::from_secs(1),
        },
    );
    app.clock.set(utc("2026-11-23T08:00:30Z"));
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let wins = posted(&ra, "weekly").len() + posted(&rb, "weekly").len();
    assert_eq!(wins, 1, "{ra:?} {rb:?}");
    let weekly_rows = app
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
                .unwrap_or("")
                .contains("`weekly`")
        })
        .count();
    assert_eq!(weekly_rows, 2, "one post per target, once");
}

async fn a_missed_fire_posts_once_within_the_grace_window_and_never_outside(app: TestApp) {
    // The bot comes up 50 minutes after Monday 09:00 Berlin (grace 1h): one post.
    app.clock.set(utc("2026-11-23T08:50:00Z"));
    let s = scheduler(&app, "late").await;
    assert_eq!(
        posted(&s.tick().await.unwrap(), "weekly"),
        ["2026-11-23T09:00:00"]
    );
    let n = outbox_posts(&app).await;
    // A bot down for the whole week comes up 70 minutes after the next fire: nothing, and
    // no backlog of older fires either.
    app.clock.set(utc("2026-11-30T09:10:00Z"));
    let s = scheduler(&app, "later").await;
    let out = s.tick().await.unwrap();
    assert!(posted(&out, "weekly").is_empty(), "{out:?}");
    assert!(out.contains(&FireOutcome::Missed {
        schedule: "weekly".into(),
        fire: "2026-11-30T09:00:00".into()
    }));
    assert_eq!(outbox_posts(&app).await, n);
}

/// A clock running at real speed from `at`, so the scheduler's own sleeps move it.
#[derive(Debug)]
struct RunningFrom {
    started: std::time::Instant,
    at: DateTime<Utc>,
}

impl switchboard::core::clock::Clock for RunningFrom {
    fn now(&self) -> DateTime<Utc> {
        self.at + Duration::from_std(self.started.elapsed()).unwrap()
    }
}

async fn weekly_rows(app: &TestApp) -> usize {
    app.desk
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
                .unwrap_or("")
                .contains("`weekly`")
        })
        .count()
}

async fn the_scheduler_wakes_for_a_digest_at_its_fire_not_at_the_next_tick(app: TestApp) {
    // 400 ms before Monday 09:00 Berlin, with a tick of a minute: only waking for the fire
    // itself posts it within the test's few seconds.
    let clock = RunningFrom {
        started: std::time::Instant::now(),
        at: utc("2026-11-23T07:59:59.600Z"),
    };
    let desk = build_desk_with_store(
        (*app.desk.config).clone(),
        app.second_store().await,
        Arc::new(clock),
    )
    .await
    .unwrap();
    let s = Scheduler::new(
        desk,
        SchedulerSettings {
            owner: "waker".into(),
            tick: std::time::Duration::from_secs(60),
        },
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(s.run(stopped));
    let started = std::time::Instant::now();
    while weekly_rows(&app).await == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the weekly digest was not posted at its fire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(300),
        "not before its fire"
    );
    stop.send(true).unwrap();
    running.await.unwrap();
}

async fn the_next_wake_is_the_next_fire_or_the_tick(app: TestApp) {
    let s = scheduler(&app, "w").await; // tick: 1 s
    app.clock.set(utc("2026-11-23T07:59:59.750Z"));
    assert_eq!(s.next_wake(), std::time::Duration::from_millis(250));
    app.clock.set(utc("2026-11-23T07:00:00Z"));
    assert_eq!(s.next_wake(), std::time::Duration::from_secs(1));
}

#[test]
fn a_digest_firing_more_than_once_a_minute_is_refused_with_why_and_an_example() {
    for (cron, times) in [("*/10 * * * * *", 6), ("0,30 0 9 * * MON", 2)] {
        let bad = DIGEST_CONFIG.replace("cron = \"0 9 * * 1\"", &format!("cron = \"{cron}\""));
        let err = Config::from_toml(&bad, "test", |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("digests[0].cron"), "{err}");
        assert!(
            err.contains(&format!("fires {times} times a minute")),
            "{err}"
        );
        assert!(err.contains("at most once a minute"), "{err}");
        assert!(err.contains("e.g. `0 9 * * MON`"), "{err}");
    }
    // Once a minute, or less often, with or without seconds: accepted.
    for cron in ["* * * * *", "30 * * * * *", "0 */5 * * * *"] {
        let ok = DIGEST_CONFIG.replace("cron = \"0 9 * * 1\"", &format!("cron = \"{cron}\""));
        Config::from_toml(&ok, "test", |_| None).unwrap_or_else(|e| panic!("{cron}: {e}"));
    }
}

/// Kudos belong to the period as everything else does, `(start, end]`: given exactly at a
/// period's start they were the period before's, so consecutive digests never show them twice.
async fn kudos_at_the_exact_start_belong_to_the_period_before(app: TestApp) {
    let store = &app.desk.store;
    let give = |at: &str, who: &str| switchboard::store::NewKudos {
        giver: switchboard::core::types::UserRef::new(
            switchboard::core::types::Platform::Slack,
            "UALICE",
        ),
        giver_key: "person:alice".into(),
        receiver: switchboard::core::types::UserRef::new(
            switchboard::core::types::Platform::Slack,
            who,
        ),
        receiver_key: format!("slack:{who}"),
        reason: "thanks".into(),
        ticket: None,
        at: utc(at),
    };
    // END is Monday 09:00 Berlin; the week before starts a week earlier.
    store
        .add_kudos(give("2026-03-02T08:00:00Z", "UATSTART"))
        .await
        .unwrap();
    store
        .add_kudos(give("2026-03-02T08:00:01Z", "UINSIDE"))
        .await
        .unwrap();
    store.add_kudos(give(END, "UATEND")).await.unwrap();
    let week = |at: &str| {
        let desk = app.desk.clone();
        let at = utc(at);
        async move {
            report(
                &desk,
                "weekly",
                chrono_tz::Europe::Berlin,
                Period::Week,
                &[],
                at,
            )
            .await
            .unwrap()
        }
    };
    let receivers = |r: &switchboard::core::digest::Report| {
        let mut v: Vec<String> = r
            .shout_outs
            .iter()
            .map(|s| s.receiver_key.clone())
            .collect();
        v.sort();
        v
    };
    let this = week(END).await;
    assert_eq!(receivers(&this), ["slack:UATEND", "slack:UINSIDE"]);
    let before = week("2026-03-02T08:00:00Z").await;
    assert_eq!(receivers(&before), ["slack:UATSTART"]);
}

/// Periods are calendar arithmetic in the schedule's zone: across Berlin's spring change a week
/// is 167 hours and the weeks either side of it tile exactly; a month is a calendar month,
/// clamped to its end.
async fn periods_tile_across_a_clock_change_and_months_are_calendar_months(app: TestApp) {
    let berlin = chrono_tz::Europe::Berlin;
    let at = |t: &str, period: Period| {
        let desk = app.desk.clone();
        let t = utc(t);
        async move {
            report(&desk, "weekly", berlin, period, &[], t)
                .await
                .unwrap()
        }
    };
    // Monday 09:00 in Berlin: 08:00Z before Sunday 29 March 2026, 07:00Z after.
    let before = at("2026-03-23T08:00:00Z", Period::Week).await;
    let across = at("2026-03-30T07:00:00Z", Period::Week).await;
    let after = at("2026-04-06T07:00:00Z", Period::Week).await;
    assert_eq!(
        across.window.from,
        utc("2026-03-23T08:00:00Z"),
        "Monday 09:00 CET"
    );
    assert_eq!(across.window.to - across.window.from, Duration::hours(167));
    assert_eq!(before.window.to, across.window.from, "no overlap, no gap");
    assert_eq!(across.window.to, after.window.from);
    assert_eq!(after.window.to - after.window.from, Duration::hours(168));
    assert_eq!(
        across.previous, before.window,
        "the period before is last week's digest"
    );
    // Months: from 31 March back to 28 February (clamped), then back to 28 January.
    let month = at("2026-03-31T07:00:00Z", Period::Month).await;
    assert_eq!(month.window.from, utc("2026-02-28T08:00:00Z"));
    assert_eq!(month.previous.from, utc("2026-01-28T08:00:00Z"));
    // A day across the change is 23 hours.
    let day = at("2026-03-30T07:00:00Z", Period::Day).await;
    assert_eq!(day.window.from, utc("2026-03-29T07:00:00Z"));
    let sunday = at("2026-03-29T07:00:00Z", Period::Day).await;
    assert_eq!(sunday.window.to - sunday.window.from, Duration::hours(23));
}

crate::on_both_backends_with!(
    DIGEST_CONFIG;
    periods_tile_across_a_clock_change_and_months_are_calendar_months,
    kudos_at_the_exact_start_belong_to_the_period_before,
    figures_match_the_hand_worked_history,
    the_stores_rows_give_the_same_figures_as_a_full_scan,
    monday_nine_fires_once_at_nine_local,
    daylight_saving_fires_once_or_at_the_next_valid_instant,
    two_instances_on_one_database_post_a_fire_once,
    a_missed_fire_posts_once_within_the_grace_window_and_never_outside,
    the_scheduler_wakes_for_a_digest_at_its_fire_not_at_the_next_tick,
    the_next_wake_is_the_next_fire_or_the_tick,
);

#[test]
fn a_malformed_cron_expression_is_a_config_error_with_an_example() {
    let bad = DIGEST_CONFIG.replace("cron = \"0 9 * * 1\"", "cron = \"0 9 * MON\"");
    let err = Config::from_toml(&bad, "test", |_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("digests[0].cron"), "{err}");
    assert!(err.contains("e.g. `0 9 * * MON`"), "{err}");
    let bad = DIGEST_CONFIG.replace("grace = \"2h\"", "grace = \"soon\"");
    let err = Config::from_toml(&bad, "test", |_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("digests[2].grace"), "{err}");
    let bad = DIGEST_CONFIG.replace("high = \"30m\"", "high = \"half an hour\"");
    let err = Config::from_toml(&bad, "test", |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("departments[0].sla.first_response.high"),
        "{err}"
    );
}

/// Earned shout-outs: the winner of each needs at least the minimum sample; a linked person's
/// accounts count as one.
#[test]
fn earned_shout_outs_need_a_minimum_sample() {
    use switchboard::core::digest::{earned, CsatSample};
    use switchboard::core::types::{Platform, UserRef};
    let w = Window::new(utc("2026-03-02T00:00:00Z"), utc("2026-03-09T00:00:00Z"));
    let bob_slack = UserRef::new(Platform::Slack, "UBOB");
    let bob_discord = UserRef::new(Platform::Discord, "1002");
    let alice = UserRef::new(Platform::Slack, "UALICE");
    let mut n = 0;
    let mut ticket = |who: &UserRef, first_min: i64, resolved: bool| {
        n += 1;
        let created = utc("2026-03-03T09:00:00Z") + Duration::hours(n);
        DigestTicket {
            id: TicketRef(n),
            title: "t".into(),
            department: "billing".into(),
            priority: Priority::Normal,
            tags: vec![],
            created_at: created,
            first_response_at: Some(created + Duration::minutes(first_min)),
            resolved_at: resolved.then(|| created + Duration::hours(2)),
            closed_at: None,
            waiting_since: None,
            sla_paused: Duration::zero(),
            assignee: Some(who.clone()),
            origin: switchboard::core::ticket::Origin::Flag,
            history: vec![],
        }
    };
    // Bob (on two linked accounts) resolves 3 and answers in 20m, 30m, 40m; Alice resolves 2,
    // answering in 1m and 2m, and has two perfect ratings: too few to win anything.
    let tickets = vec![
        ticket(&bob_slack, 20, true),
        ticket(&bob_discord, 30, true),
        ticket(&bob_slack, 40, true),
        ticket(&alice, 1, true),
        ticket(&alice, 2, true),
    ];
    let rating = |who: &UserRef, score: u8| CsatSample {
        ticket: TicketRef(0),
        department: "billing".into(),
        score,
        at: utc("2026-03-05T12:00:00Z"),
        assignee: Some(who.clone()),
    };
    let input = DigestInput {
        tickets,
        csat: vec![
            rating(&bob_slack, 5),
            rating(&bob_discord, 4),
            rating(&bob_slack, 5),
            rating(&alice, 5),
            rating(&alice, 5),
        ],
        ..DigestInput::default()
    };
    let people = |u: &UserRef| {
        if u.id == "UBOB" || u.id == "1002" {
            ("person:bob".to_string(), "Bob".to_string())
        } else {
            (u.to_string(), "Alice".to_string())
        }
    };
    let covered = vec!["billing".to_string()];
    let sla = switchboard::core::sla::SlaPolicy::default();
    let got: Vec<(String, String, String)> = earned(&input, &sla, &covered, w, 3, &people)
        .into_iter()
        .map(|e| (e.title, e.who, e.figure))
        .collect();
    assert_eq!(
        got,
        [
            (
                "Most tickets resolved".into(),
                "Bob".into(),
                "3 tickets".into()
            ),
            (
                "Best CSAT".into(),
                "Bob".into(),
                "4.7 from 3 answers".into()
            ),
            (
                "Fastest first response".into(),
                "Bob".into(),
                "median 30m over 3 tickets".into()
            ),
        ]
    );
    // With a minimum of 2 Alice's perfect ratings and quick answers win; with 4, nobody does.
    let got = earned(&input, &sla, &covered, w, 2, &people);
    assert_eq!(got[1].who, "Alice");
    assert_eq!(got[2].who, "Alice");
    assert!(earned(&input, &sla, &covered, w, 4, &people).is_empty());
}

/// The chart is a real PNG of the expected size, drawn with the bundled font, showing the
/// history's bars and backlog line.
async fn the_chart_is_a_png_with_bars_and_a_line(app: TestApp) {
    history(&app).await;
    let r = report(
        &app.desk,
        "weekly",
        chrono_tz::Europe::Berlin,
        Period::Week,
        &[],
        utc(END),
    )
    .await
    .unwrap();
    assert_eq!(
        r.days.len(),
        8,
        "Mon 09:00 to Mon 09:00 touches eight local days"
    );
    let opened: usize = r.days.iter().map(|d| d.opened).sum();
    assert_eq!(opened, r.overall.current.opened);
    assert_eq!(r.days.last().unwrap().backlog, r.overall.current.backlog);
    let png = switchboard::chart::png("weekly", &r.days).unwrap();
    if let Ok(path) = std::env::var("SWITCHBOARD_CHART_OUT") {
        std::fs::write(path, &png).unwrap();
    }
    let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8();
    assert_eq!(
        img.dimensions(),
        (switchboard::chart::WIDTH, switchboard::chart::HEIGHT)
    );
    let count = |c: [u8; 3]| img.pixels().filter(|p| p.0 == c).count();
    assert!(count([66, 133, 244]) > 500, "opened bars");
    assert!(count([52, 168, 83]) > 500, "resolved bars");
    assert!(count([234, 67, 53]) > 200, "backlog line");
    let dark = img
        .pixels()
        .filter(|p| p.0.iter().all(|v| *v < 100))
        .count();
    assert!(dark > 1000, "text and axes were drawn");
    assert!(switchboard::chart::png("weekly", &[]).is_err());
}

crate::on_both_backends_with!(
    DIGEST_CONFIG;the_chart_is_a_png_with_bars_and_a_line);

/// A digest too big for one Slack message keeps within Block Kit's limits (50 blocks, 3,000
/// characters a text) and ends with how many sections were left out and where to read
/// everything, rather than stopping mid-way.
#[test]
fn a_digest_past_slacks_limits_ends_with_and_n_more_and_a_pointer() {
    use switchboard::chat::slack::blocks;
    let covered: Vec<String> = (0..1000).map(|i| format!("team-{i:04}")).collect();
    let w = Window::new(utc("2026-03-02T08:00:00Z"), utc("2026-03-09T08:00:00Z"));
    let spec = digest::Spec {
        schedule: "weekly",
        timezone: chrono_tz::Europe::Berlin,
        covered: &covered,
        window: w,
        min_sample: 3,
    };
    let r = digest::compute(
        &spec,
        &DigestInput::default(),
        &switchboard::core::sla::SlaPolicy::default(),
        vec![],
        &|u| (u.to_string(), u.to_string()),
    );
    let msg = digest::render(&r, chrono_tz::Europe::Berlin);
    let (fallback, rendered) = blocks::render(&msg);
    let rendered = rendered.as_array().unwrap();
    assert_eq!(rendered.len(), blocks::MAX_BLOCKS);
    for b in rendered {
        for t in [&b["text"]["text"], &b["elements"][0]["text"]] {
            if let Some(t) = t.as_str() {
                assert!(t.chars().count() <= blocks::MAX_TEXT);
            }
        }
    }
    let last = rendered.last().unwrap()["elements"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        last.starts_with("…and ") && last.contains(" more not shown here"),
        "{last}"
    );
    assert!(
        last.contains("`/digest preview weekly`")
            && last
                .contains("switchboard digest preview --schedule weekly --at 2026-03-09T08:00:00Z"),
        "{last}"
    );
    assert!(fallback.chars().count() <= blocks::MAX_TEXT);

    // The same digest for Discord: at most 10 embeds and 6,000 characters across them, the
    // last one naming how many parts were left out and where to read everything.
    use switchboard::chat::discord::render;
    let body = render::render(&msg);
    let embeds = body["embeds"].as_array().unwrap();
    assert!(embeds.len() <= render::MAX_EMBEDS);
    let len = |v: &serde_json::Value| v.as_str().map_or(0, |s| s.chars().count());
    let total: usize = embeds
        .iter()
        .map(|e| {
            len(&e["title"])
                + len(&e["description"])
                + len(&e["footer"]["text"])
                + e["fields"].as_array().map_or(0, |f| {
                    f.iter().map(|f| len(&f["name"]) + len(&f["value"])).sum()
                })
        })
        .sum();
    assert!(total <= render::MAX_EMBED_TOTAL, "{total}");
    for e in embeds {
        assert!(e["fields"].as_array().map_or(0, Vec::len) <= render::MAX_FIELDS);
    }
    let footer = embeds.last().unwrap()["footer"]["text"].as_str().unwrap();
    assert!(
        footer.starts_with("…and ") && footer.contains(" more not shown here"),
        "{footer}"
    );
    assert!(footer.contains("`/digest preview weekly`"), "{footer}");
}
