//! Digest figures as of a period's end: each SLA promise judged once, in the period its outcome
//! is decided; a deadline exactly at a period's end judged in the next; a past period's figures
//! unchanged by anything recorded later (waits, reopenings, resolutions, re-routing, priority,
//! late metric values); and two properties over generated histories across Berlin's spring
//! clock change — consecutive daily digests add up to the weekly one, and every digest
//! recomputed weeks later is identical to the one computed at its end.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;
use switchboard::cmd::digest::report;
use switchboard::config::Period;
use switchboard::core::digest::{Figures, Report, Step};
use switchboard::core::directory::Permission;
use switchboard::core::ticket::{Change, EventKind, Origin};
use switchboard::core::types::{Platform, Priority, Status, TicketRef, UserRef};
use switchboard::desk::{ApiOpened, ApiTicket, TicketOverrides};
use switchboard::store::{NewKudos, NewMetric};

use crate::helpers::*;

/// `billing` runs on wall-clock time; `it` keeps office hours in Berlin, where `1d` is one
/// working day.
const HISTORY_CONFIG: &str = r#"
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
members = ["person:alice", "person:bob"]
sla = { first_response = { high = "30m" } }

[[departments]]
name = "it"
channels = ["slack:CIT"]
members = ["person:alice", "person:bob"]
hours = { timezone = "Europe/Berlin", days = "MON-FRI", open = "09:00", close = "18:00" }

[sla]
first_response = { urgent = "15m", high = "1h", normal = "4h" }
resolution = { urgent = "4h", high = "1d", normal = "3d" }

[routing]
fallback = "billing"

[api]

[[api.tokens]]
name = "probe"
secret_env = "SWITCHBOARD_TEST_TOKEN_PROBE"
endpoints = ["tickets"]
"#;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn open(app: &TestApp, at: DateTime<Utc>, dept: &str, priority: Priority) -> TicketRef {
    app.clock.set(at);
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
                tags: vec!["tag".into()],
            },
        )
        .await
        .unwrap();
    t.ticket.id
}

/// The API token the generated history's other system uses.
fn probe(app: &TestApp) -> &switchboard::config::ApiToken {
    app.desk
        .config
        .api_tokens
        .iter()
        .find(|t| t.name == "probe")
        .unwrap()
}

/// Opens a ticket as another system does, through the tickets API's desk call.
async fn open_by_api(
    app: &TestApp,
    at: DateTime<Utc>,
    dept: &str,
    priority: Priority,
) -> TicketRef {
    app.clock.set(at);
    let token = probe(app);
    let req = ApiTicket {
        title: "probe failing".into(),
        body: "the checkout probe fails".into(),
        department: Some(dept.into()),
        priority: Some(priority),
        ..ApiTicket::default()
    };
    match app.desk.open_from_api(token, req).await.unwrap() {
        ApiOpened::New(t) | ApiOpened::Existing(t) => t.id,
    }
}

/// A change made by the system that opened the ticket (an automation, not a person).
async fn try_api_change(app: &TestApp, at: DateTime<Utc>, id: TicketRef, c: Change) -> bool {
    app.clock.set(at);
    let token = probe(app);
    let t = app.desk.ticket(id).await.unwrap();
    app.desk.change_from_api(token, &t, c).await.is_ok()
}

async fn try_change(app: &TestApp, at: DateTime<Utc>, id: TicketRef, c: Change) -> bool {
    app.clock.set(at);
    app.desk
        .change(&alice(), id, Permission::Admin, "test", c)
        .await
        .is_ok()
}

async fn change(app: &TestApp, at: DateTime<Utc>, id: TicketRef, c: Change) {
    assert!(try_change(app, at, id, c).await);
}

fn status(to: Status) -> Change {
    Change::SetStatus { to, reason: None }
}

async fn weekly(app: &TestApp, at: DateTime<Utc>) -> Report {
    report(
        &app.desk,
        "weekly",
        chrono_tz::Europe::Berlin,
        Period::Week,
        &[],
        at,
    )
    .await
    .unwrap()
}

fn sla(f: &Figures) -> [usize; 4] {
    [
        f.sla_first_response.met,
        f.sla_first_response.breached,
        f.sla_resolution.met,
        f.sla_resolution.breached,
    ]
}

/// Week one is (Mon 2 Mar 09:00, Mon 9 Mar 09:00] in Berlin, week two the one after.
const W1: &str = "2026-03-09T08:00:00Z";
const W2: &str = "2026-03-16T08:00:00Z";

/// A broken promise stays broken in the week its deadline passed, whatever comes later: the
/// issue's own case (a 1-day resolution target exceeded by 6 hours at the week's end, then 40
/// hours waiting on the customer, then resolved), a ticket re-routed and re-prioritised the next
/// week, and a late NPS answer for the past week. Week one computed at its end and again after
/// all of that is the same, and week two shows last week's figures as week one did.
async fn a_past_week_never_changes(app: TestApp) {
    // X: billing, high: answered in 10 minutes, resolution due Mon 9 Mar 02:00Z.
    let x = open(&app, utc("2026-03-08T02:00:00Z"), "billing", Priority::High).await;
    change(&app, utc("2026-03-08T02:10:00Z"), x, Change::Claim).await;
    // Y: billing, normal, opened and answered in week one, its resolution due in week two.
    let y = open(
        &app,
        utc("2026-03-08T10:00:00Z"),
        "billing",
        Priority::Normal,
    )
    .await;
    change(&app, utc("2026-03-08T10:30:00Z"), y, Change::Claim).await;
    let store = &app.desk.store;
    store
        .add_metric(nps(9.0, "2026-03-04T10:00:00Z", "2026-03-04T10:00:00Z"))
        .await
        .unwrap();

    let before = weekly(&app, utc(W1)).await;
    let o = &before.overall.current;
    assert_eq!(sla(o), [2, 0, 0, 1], "X and Y answered in time; X late");
    assert_eq!(before.overall.breached[0].id, x);
    assert_eq!(before.overall.breached[0].by, Duration::hours(6));
    assert_eq!((o.opened, o.backlog, o.nps.count), (2, 2, 1));

    // Week two: X waits on the customer for 40 hours, then is resolved; Y moves to IT and
    // becomes urgent, is resolved, reopened and resolved again; an NPS answer for week one
    // arrives late.
    change(
        &app,
        utc("2026-03-09T09:00:00Z"),
        x,
        status(Status::WaitingOnCustomer),
    )
    .await;
    change(
        &app,
        utc("2026-03-10T09:00:00Z"),
        y,
        Change::Route("it".into()),
    )
    .await;
    change(
        &app,
        utc("2026-03-10T09:01:00Z"),
        y,
        Change::SetPriority(Priority::Urgent),
    )
    .await;
    change(
        &app,
        utc("2026-03-10T10:00:00Z"),
        y,
        status(Status::Resolved),
    )
    .await;
    change(
        &app,
        utc("2026-03-10T11:00:00Z"),
        y,
        Change::Reopen { reason: None },
    )
    .await;
    change(
        &app,
        utc("2026-03-10T12:00:00Z"),
        y,
        status(Status::Resolved),
    )
    .await;
    change(
        &app,
        utc("2026-03-11T01:00:00Z"),
        x,
        status(Status::InProgress),
    )
    .await;
    change(
        &app,
        utc("2026-03-11T02:00:00Z"),
        x,
        status(Status::Resolved),
    )
    .await;
    store
        .add_metric(nps(0.0, "2026-03-05T10:00:00Z", "2026-03-12T10:00:00Z"))
        .await
        .unwrap();

    let after = weekly(&app, utc(W1)).await;
    assert_eq!(
        serde_json::to_value(&before).unwrap(),
        serde_json::to_value(&after).unwrap(),
        "week one recomputed after week two"
    );
    let billing = after
        .departments
        .iter()
        .find(|d| d.department.as_deref() == Some("billing"));
    assert_eq!(
        billing.unwrap().current.opened,
        2,
        "Y was billing's at the end"
    );
    let two = weekly(&app, utc(W2)).await;
    assert_eq!(
        serde_json::to_value(&two.overall.previous).unwrap(),
        serde_json::to_value(&before.overall.current).unwrap(),
        "week two's 'before' is week one as posted"
    );
    let t = &two.overall.current;
    // Y's resolution promise broke when it became urgent in IT: due 4 working hours after
    // opening (Monday 12:00 Berlin), long past by Tuesday 10:01.
    assert_eq!(
        sla(t),
        [0, 0, 0, 1],
        "X decided in week one; Y's broke in week two"
    );
    assert_eq!(t.resolved, 3, "X once, Y twice");
    assert_eq!(
        t.nps.count, 0,
        "the late answer belongs to week one, after it was posted"
    );
    let it = two
        .departments
        .iter()
        .find(|d| d.department.as_deref() == Some("it"));
    assert_eq!(it.unwrap().current.resolved, 2);
}

fn nps(value: f64, at: &str, received: &str) -> NewMetric {
    NewMetric {
        name: "nps".into(),
        value,
        department: None,
        note: None,
        recorded_by: None,
        at: utc(at),
        received_at: utc(received),
    }
}

/// A deadline exactly at a period's end is judged in the next period (an answer at the
/// deadline is still in time), as is one a millisecond later; an answer exactly at the deadline
/// keeps the promise; a promise due after its opening period is judged in the period it falls
/// due; and a working day in IT's office hours is due the next working day.
async fn deadlines_are_judged_in_the_period_they_pass(app: TestApp) {
    let end = utc(W1);
    let ms = Duration::milliseconds(1);
    // Billing, high: first response due 30 minutes after opening.
    let at_end = open(&app, end - Duration::minutes(30), "billing", Priority::High).await;
    let after_end = open(
        &app,
        end - Duration::minutes(30) + ms,
        "billing",
        Priority::High,
    )
    .await;
    let exact = open(&app, utc("2026-03-04T10:00:00Z"), "billing", Priority::High).await;
    change(&app, utc("2026-03-04T10:30:00Z"), exact, Change::Claim).await;
    // IT, high: resolution in one working day. Opened Friday 6 Mar 17:00 Berlin (16:00Z), it
    // falls due Monday 9 Mar 17:00 Berlin, in week two.
    let friday = open(&app, utc("2026-03-06T16:00:00Z"), "it", Priority::High).await;
    let one = weekly(&app, end).await;
    // `exact` answered in time and its resolution (1 day) late; `friday`'s first response (1
    // working hour) was due Friday 18:00. The other deadlines are in week two.
    assert_eq!(sla(&one.overall.current), [1, 1, 0, 1]);
    app.clock.set(utc("2026-03-12T00:00:00Z"));
    let two = weekly(&app, utc(W2)).await;
    assert_eq!(sla(&two.overall.current), [0, 2, 0, 3]);
    let late: Vec<(TicketRef, &str, Duration)> = two
        .overall
        .breached
        .iter()
        .map(|b| (b.id, b.what.as_deref().unwrap(), b.by))
        .collect();
    let week = Duration::days(7);
    assert!(late.contains(&(at_end, "first response", week)), "{late:?}");
    assert!(
        late.contains(&(after_end, "first response", week - ms)),
        "{late:?}"
    );
    // Friday 17:00-18:00 and Monday 09:00-17:00 Berlin: due Monday 16:00Z.
    let due = utc("2026-03-09T16:00:00Z");
    assert!(
        late.contains(&(friday, "resolution", utc(W2) - due)),
        "{late:?}"
    );
    // Escalation agrees: at the deadline the clock still runs, a millisecond later it broke.
    let t = app.desk.store.ticket(at_end).await.unwrap().unwrap();
    let times = switchboard::core::sla::TicketTimes {
        created: t.created_at,
        answered: None,
        resolved: None,
        paused: Duration::zero(),
        waiting_since: None,
    };
    let policy = &app.desk.config.sla;
    let (first, _) = policy.clocks("billing", Priority::High, &times, end);
    assert!(matches!(
        first,
        Some(switchboard::core::sla::Clock::Running { .. })
    ));
    let (first, _) = policy.clocks("billing", Priority::High, &times, end + ms);
    assert!(matches!(
        first,
        Some(switchboard::core::sla::Clock::Breached { .. })
    ));
}

/// 09:00 in Berlin `days` after the morning of `start` (`YYYY-MM-DD`): the daily digests' ends.
fn nine(start: &str, days: i64) -> DateTime<Utc> {
    let local = chrono::NaiveDate::parse_from_str(start, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap()
        + Duration::days(days);
    chrono_tz::Europe::Berlin
        .from_local_datetime(&local)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// One generated history: tickets opened, answered, waiting, resolved, reopened, closed,
/// re-routed and re-prioritised, CSAT answers, kudos and NPS answers (some arriving late), on
/// a 15-minute grid so many land exactly on a period's end. Calls `at_end` for each day's end
/// (09:00 Berlin) once everything up to and at it is recorded.
async fn generate(app: &TestApp, seed: u64, start: &str, days: i64, ends: &mut Vec<Snapshot>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let store = &app.desk.store;
    let mut tickets: Vec<TicketRef> = Vec::new();
    let mut t = nine(start, 0);
    let stop = nine(start, days);
    let mut next_end = nine(start, 1);
    let depts = ["billing", "it"];
    let prios = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];
    while t < stop {
        t += Duration::minutes(15 * rng.i64(1..12));
        while next_end < t && next_end <= stop {
            ends.push(Snapshot::take(app, next_end).await);
            next_end = nine_after(next_end);
        }
        if t > stop {
            break;
        }
        let pick = |rng: &mut fastrand::Rng, v: &[TicketRef]| v[rng.usize(0..v.len())];
        match rng.u32(0..100) {
            0..=24 => {
                let d = depts[rng.usize(0..2)];
                let p = prios[rng.usize(0..4)];
                if rng.u32(0..4) == 0 {
                    tickets.push(open_by_api(app, t, d, p).await);
                } else {
                    tickets.push(open(app, t, d, p).await);
                }
            }
            _ if tickets.is_empty() => {}
            25..=39 => {
                try_change(app, t, pick(&mut rng, &tickets), Change::Claim).await;
            }
            40..=47 => {
                let c = status(Status::WaitingOnCustomer);
                try_change(app, t, pick(&mut rng, &tickets), c).await;
            }
            48..=55 => {
                let c = status(Status::InProgress);
                try_change(app, t, pick(&mut rng, &tickets), c).await;
            }
            56..=67 => {
                let c = status(Status::Resolved);
                let id = pick(&mut rng, &tickets);
                let reporter = store.ticket(id).await.unwrap().unwrap().reporter;
                // Half of what other systems opened, they resolve themselves.
                if reporter.automation_source().is_some() && rng.bool() {
                    try_api_change(app, t, id, c).await;
                } else {
                    try_change(app, t, id, c).await;
                }
            }
            68..=70 => {
                let c = status(Status::Closed);
                try_change(app, t, pick(&mut rng, &tickets), c).await;
            }
            71..=75 => {
                let c = Change::Reopen { reason: None };
                try_change(app, t, pick(&mut rng, &tickets), c).await;
            }
            76..=80 => {
                let c = Change::Route(depts[rng.usize(0..2)].into());
                try_change(app, t, pick(&mut rng, &tickets), c).await;
            }
            81..=85 => {
                let c = Change::SetPriority(prios[rng.usize(0..4)]);
                try_change(app, t, pick(&mut rng, &tickets), c).await;
            }
            86..=90 => {
                let id = pick(&mut rng, &tickets);
                let done = store.ticket(id).await.unwrap().unwrap().status == Status::Resolved;
                if done {
                    let score = rng.u8(1..6);
                    store
                        .record_csat(id, score, None, &customer(), t)
                        .await
                        .unwrap();
                }
            }
            91..=95 => {
                let who = ["UALICE", "UBOB"][rng.usize(0..2)];
                store
                    .add_kudos(NewKudos {
                        giver: UserRef::new(Platform::Slack, "UCAROL"),
                        giver_key: "slack:UCAROL".into(),
                        receiver: UserRef::new(Platform::Slack, who),
                        receiver_key: format!("slack:{who}"),
                        reason: "thanks".into(),
                        ticket: None,
                        at: t,
                    })
                    .await
                    .unwrap();
            }
            _ => {
                // Measured up to two days before it arrives.
                let measured = t - Duration::minutes(15 * rng.i64(0..192));
                store
                    .add_metric(NewMetric {
                        name: "nps".into(),
                        value: f64::from(rng.u8(0..11)),
                        department: None,
                        note: None,
                        recorded_by: None,
                        at: measured,
                        received_at: t,
                    })
                    .await
                    .unwrap();
            }
        }
    }
    while next_end <= stop {
        ends.push(Snapshot::take(app, next_end).await);
        next_end = nine_after(next_end);
    }
}

fn nine_after(t: DateTime<Utc>) -> DateTime<Utc> {
    let local = t.with_timezone(&chrono_tz::Europe::Berlin).naive_local() + Duration::days(1);
    chrono_tz::Europe::Berlin
        .from_local_datetime(&local)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// A day's digest (and, on Mondays, the week's) as computed at its end.
struct Snapshot {
    end: DateTime<Utc>,
    day: Value,
    week: Option<Value>,
}

impl Snapshot {
    async fn take(app: &TestApp, end: DateTime<Utc>) -> Snapshot {
        let monday = end
            .with_timezone(&chrono_tz::Europe::Berlin)
            .format("%a")
            .to_string()
            == "Mon";
        Snapshot {
            end,
            day: day_json(app, end).await,
            week: if monday {
                Some(serde_json::to_value(weekly(app, end).await).unwrap())
            } else {
                None
            },
        }
    }
}

async fn day_json(app: &TestApp, end: DateTime<Utc>) -> Value {
    let r = report(
        &app.desk,
        "daily",
        chrono_tz::Europe::Berlin,
        Period::Day,
        &[],
        end,
    )
    .await
    .unwrap();
    serde_json::to_value(r).unwrap()
}

/// The figures that add up over consecutive periods.
fn additive(r: &Value) -> Vec<(String, f64)> {
    let c = &r["overall"]["current"];
    let n = |v: &Value| v.as_f64().unwrap_or(0.0);
    let csat_sum = n(&c["csat"]["average"]) * n(&c["csat"]["count"]);
    vec![
        ("opened".into(), n(&c["opened"])),
        ("resolved".into(), n(&c["resolved"])),
        ("first responses".into(), n(&c["first_response"]["count"])),
        ("resolutions timed".into(), n(&c["resolution"]["count"])),
        (
            "first response met".into(),
            n(&c["sla_first_response"]["met"]),
        ),
        (
            "first response breached".into(),
            n(&c["sla_first_response"]["breached"]),
        ),
        ("resolution met".into(), n(&c["sla_resolution"]["met"])),
        (
            "resolution breached".into(),
            n(&c["sla_resolution"]["breached"]),
        ),
        ("from other systems".into(), n(&c["automation"]["opened"])),
        (
            "opened by the api".into(),
            n(&c["automation"]["by_origin"]["api"]),
        ),
        ("auto-resolved".into(), n(&c["automation"]["auto_resolved"])),
        ("csat answers".into(), n(&c["csat"]["count"])),
        ("csat points".into(), (csat_sum * 1000.0).round() / 1000.0),
        (
            "kudos".into(),
            r["shout_outs"].as_array().map_or(0, Vec::len) as f64,
        ),
    ]
}

/// Generated histories over five weeks across each of Berlin's clock changes (spring, Sunday
/// 29 March; autumn, Sunday 25 October): the seven daily digests of each week add up to the
/// weekly digest (a week of 167 or 169 hours across a change), nothing counted twice or lost;
/// and every digest recomputed after the last week is identical to the one computed at its
/// end, though tickets were since answered, resolved, reopened, re-routed and re-prioritised,
/// and NPS answers for past periods arrived late.
async fn consecutive_digests_partition_and_replay_identically(app: TestApp) {
    for (seed, start, across, hours) in [
        (7919_u64, "2026-03-16", "2026-03-30T07:00:00Z", 167),
        (104_729, "2026-10-12", "2026-10-26T08:00:00Z", 169),
    ] {
        let mut ends = Vec::new();
        generate(&app, seed, start, 35, &mut ends).await;
        assert_eq!(ends.len(), 35);
        let mut weeks = 0;
        for (i, s) in ends.iter().enumerate() {
            assert_eq!(
                s.day,
                day_json(&app, s.end).await,
                "seed {seed}: day ending {}",
                s.end
            );
            let Some(week) = &s.week else { continue };
            let again = serde_json::to_value(weekly(&app, s.end).await).unwrap();
            assert_eq!(week, &again, "seed {seed}: week ending {}", s.end);
            weeks += 1;
            let mut sum: Vec<(String, f64)> = additive(&ends[i - 6].day);
            for d in &ends[i - 5..=i] {
                for (acc, (_, v)) in sum.iter_mut().zip(additive(&d.day)) {
                    acc.1 = ((acc.1 + v) * 1000.0).round() / 1000.0;
                }
            }
            assert_eq!(sum, additive(week), "seed {seed}: week ending {}", s.end);
            if s.end == utc(across) {
                let from = utc(week["window"]["from"].as_str().unwrap());
                assert_eq!(
                    (s.end - from).num_hours(),
                    hours,
                    "the week across the change"
                );
            }
        }
        assert_eq!(weeks, 5, "seed {seed}");
        // The generated history exercised what it is for.
        let month = report(
            &app.desk,
            "m",
            chrono_tz::Europe::Berlin,
            Period::Month,
            &[],
            nine(start, 35),
        )
        .await
        .unwrap();
        for (name, v) in additive(&serde_json::to_value(month).unwrap()) {
            assert!(v > 0.0, "seed {seed}: no {name} in the month");
        }
    }
}

/// The history a digest reads is the audit log's: after a generated week, every ticket's
/// followed steps equal its audit-log entries of those kinds, in order; and the migration that
/// fills the history of tickets from before it existed gives the same from the audit log.
async fn the_history_digests_read_is_the_audit_logs(app: TestApp) {
    let mut ends = Vec::new();
    generate(&app, 31, "2026-03-16", 7, &mut ends).await;
    let read = |app: &TestApp| {
        let store = app.desk.store.clone();
        async move {
            let mut t = store
                .digest_input(
                    utc("2020-01-01T00:00:00Z"),
                    utc("2027-01-01T00:00:00Z"),
                    &[],
                )
                .await
                .unwrap()
                .tickets;
            t.sort_by_key(|t| t.id);
            t
        }
    };
    let tickets = read(&app).await;
    assert!(tickets.len() > 20);
    let mut steps = 0;
    for t in &tickets {
        let logged: Vec<(DateTime<Utc>, Step)> = app
            .desk
            .store
            .events(t.id)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| {
                let step = match e.kind {
                    EventKind::StatusChanged { to, .. } => Step::Status {
                        to,
                        automated: e
                            .actor
                            .as_ref()
                            .is_some_and(|a| a.automation_source().is_some()),
                    },
                    EventKind::Routed { from, to } => Step::Department { from, to },
                    EventKind::PriorityChanged { from, to } => Step::Priority { from, to },
                    EventKind::Assigned { from, to } => Step::Assignee { from, to },
                    _ => return None,
                };
                Some((e.at, step))
            })
            .collect();
        assert_eq!(t.history, logged, "{}", t.id);
        steps += logged.len();
    }
    assert!(steps > tickets.len(), "the week changed tickets");
    assert!(
        tickets.iter().any(|t| t.origin != Origin::Flag),
        "the week has tickets of more than one origin"
    );
    assert!(
        tickets
            .iter()
            .any(|t| t.history.iter().any(|(_, s)| matches!(
                s,
                Step::Status {
                    automated: true,
                    ..
                }
            ))),
        "the week has status changes another system made"
    );
    // Empty every ticket's history and origin and fill them as the migrations do (the later
    // one marking the status changes other systems made).
    let (history, origin) = match &app.schema {
        None => (
            include_str!("../../migrations/sqlite/20261202000002_ticket_history.sql"),
            include_str!("../../migrations/sqlite/20261205000001_ticket_origin.sql"),
        ),
        Some(_) => (
            include_str!("../../migrations/postgres/20261202000002_ticket_history.sql"),
            include_str!("../../migrations/postgres/20261205000001_ticket_origin.sql"),
        ),
    };
    let clear = "UPDATE tickets SET history = '', origin = 'flag'";
    let fill = format!(
        "{}; {}",
        &history[history.find("UPDATE tickets").unwrap()..],
        &origin[origin.find("UPDATE tickets").unwrap()..]
    );
    match &app.schema {
        None => {
            let pool = sqlx::SqlitePool::connect(&app.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("{clear}; {fill}")))
                .execute(&pool)
                .await
                .unwrap();
        }
        Some(schema) => {
            let pool = sqlx::PgPool::connect(&app.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SET search_path TO {schema}; {clear}; {fill}"
            )))
            .execute(&pool)
            .await
            .unwrap();
        }
    }
    assert_eq!(read(&app).await, tickets);
}

crate::on_both_backends_with!(
    HISTORY_CONFIG;
    the_history_digests_read_is_the_audit_logs,
    a_past_week_never_changes,
    deadlines_are_judged_in_the_period_they_pass,
    consecutive_digests_partition_and_replay_identically,
);
