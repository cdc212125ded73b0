//! Store operations on SQLite that the desk tests do not reach: inbox dedupe, one CSAT per
//! ticket, schedule fires claimed once, people sync and a backup taken while writing.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use switchboard::core::directory::Person;
use switchboard::core::types::{PersonId, Platform, TicketRef, UserRef};
use switchboard::store::{self, Store, TicketFilter};

use crate::helpers::*;

async fn inbox_keys_are_unique(app: TestApp) {
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let payload = serde_json::json!({"event_id": "Ev1"});
    assert!(app
        .desk
        .store
        .inbox_insert("slack:Ev1", None, "slack", &payload, at)
        .await
        .unwrap());
    assert!(!app
        .desk
        .store
        .inbox_insert("slack:Ev1", None, "slack", &payload, at)
        .await
        .unwrap());
    assert!(app
        .desk
        .store
        .inbox_insert("slack:Ev2", None, "slack", &payload, at)
        .await
        .unwrap());
}

async fn csat_is_recorded_once_per_ticket_and_scores_are_checked(app: TestApp) {
    app.ok(&slack("UC"), "/ticket new refund").await;
    let at = app.desk.now();
    let who = UserRef::new(Platform::Slack, "UC");
    assert!(app
        .desk
        .store
        .record_csat(TicketRef(1), 5, Some("great"), &who, at)
        .await
        .unwrap());
    assert!(!app
        .desk
        .store
        .record_csat(TicketRef(1), 1, None, &who, at)
        .await
        .unwrap());
    app.ok(&slack("UC"), "/ticket new printer").await;
    assert!(
        app.desk
            .store
            .record_csat(TicketRef(2), 9, None, &who, at)
            .await
            .is_err(),
        "scores are 1-5"
    );
    assert!(
        app.desk
            .store
            .record_csat(TicketRef(3), 3, None, &who, at)
            .await
            .is_err(),
        "no such ticket"
    );
}

async fn a_schedule_fire_is_claimed_once_even_by_two_stores_on_one_file(app: TestApp) {
    let other = app.second_store().await;
    let at = app.desk.now();
    let first = app
        .desk
        .store
        .claim_fire("weekly", "2026-03-02T09:00", "a", at, vec![]);
    let second = other.claim_fire("weekly", "2026-03-02T09:00", "b", at, vec![]);
    let (a, b) = tokio::join!(first, second);
    assert_eq!(
        a.unwrap() as u8 + b.unwrap() as u8,
        1,
        "exactly one claim wins"
    );
    assert!(other
        .claim_fire("weekly", "2026-03-09T09:00", "b", at, vec![])
        .await
        .unwrap());
}

async fn people_sync_follows_the_config_even_when_accounts_move(app: TestApp) {
    let at = app.desk.now();
    let person = |id: &str, slack: &str| Person {
        id: PersonId(id.into()),
        name: id.into(),
        slack: Some(slack.into()),
        discord: None,
    };
    // UBOB moves from bob to robert: the unique account column must not collide.
    app.desk
        .store
        .sync_people(&[person("robert", "UBOB"), person("bob", "UBOB2")], at)
        .await
        .unwrap();
    app.desk
        .store
        .sync_people(&[person("bob", "UBOB")], at)
        .await
        .unwrap();
}

#[tokio::test]
async fn backup_is_a_consistent_readable_copy_taken_while_writing() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.ok(&slack("UC"), &format!("/ticket new printer {i}"))
            .await;
    }
    let desk = app.desk.clone();
    let writer = tokio::spawn(async move {
        for i in 0..20 {
            let inv = desk
                .commands
                .parse_text("ticket", &format!("new more {i}"))
                .unwrap()
                .unwrap();
            switchboard::cmd::try_run(&desk, &slack("UC"), None, &inv)
                .await
                .unwrap();
        }
    });
    let path = app.dir.path().join("backup.db");
    app.desk.store.backup(&path).await.unwrap();
    writer.await.unwrap();
    let copy: Arc<dyn Store> = store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let tickets = copy.list_tickets(&TicketFilter::default()).await.unwrap();
    assert!(
        tickets.len() >= 5,
        "the copy holds at least what was committed before it"
    );
    for t in &tickets {
        assert_eq!(
            copy.events(t.id).await.unwrap().len(),
            2,
            "each ticket came with its events (opened, and the knowledge base's suggestions)"
        );
    }
    let again = app.desk.store.backup(&path).await.unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
}

#[tokio::test]
async fn unsupported_urls_are_refused_clearly() {
    let err = store::open("mysql://localhost/x").await.unwrap_err();
    assert!(
        err.to_string().contains("sqlite:// or postgres://"),
        "{err}"
    );
}

async fn nul_characters_are_removed_once_so_both_databases_keep_the_same_text(app: TestApp) {
    // PostgreSQL refuses NUL in text and jsonb; SQLite would store it. The store removes it
    // from every bound value, so an event, a ticket and a metric are all kept, identically.
    let store = &app.desk.store;
    let at = app.desk.now();
    let payload =
        serde_json::json!({"event_id": "Ev\u{0}1", "event": {"text": "a\u{0}b", "k\u{0}": 1}});
    assert!(store
        .inbox_insert(
            "slack:Ev\u{0}1",
            Some("slack:C\u{0}:1"),
            "slack",
            &payload,
            at
        )
        .await
        .unwrap());
    let row = &store.inbox(None, 0).await.unwrap()[0];
    assert_eq!(row.key, "slack:Ev1");
    assert_eq!(
        row.payload,
        serde_json::json!({"event_id": "Ev1", "event": {"text": "ab", "k": 1}})
    );
    app.ok(&slack("UC"), "/ticket new print\u{0}er jam").await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.title, "printer jam");
    store
        .add_metric(store::NewMetric {
            name: "nps".into(),
            value: 9.0,
            department: None,
            note: Some("from\u{0} the survey".into()),
            recorded_by: None,
            at,
            received_at: at,
        })
        .await
        .unwrap();
    let m = &store.list_metrics(Some("nps"), at).await.unwrap()[0];
    assert_eq!(m.note.as_deref(), Some("from the survey"));
    // A backslash before `u0000` in the text is not a NUL and is kept as it is.
    let literal = serde_json::json!({"text": "C:\\u0000dir"});
    store
        .inbox_insert("slack:Ev2", None, "slack", &literal, at)
        .await
        .unwrap();
    let rows = store.inbox(None, 0).await.unwrap();
    assert_eq!(rows[1].payload, literal);
}

crate::on_both_backends!(
    nul_characters_are_removed_once_so_both_databases_keep_the_same_text,
    inbox_keys_are_unique,
    csat_is_recorded_once_per_ticket_and_scores_are_checked,
    a_schedule_fire_is_claimed_once_even_by_two_stores_on_one_file,
    people_sync_follows_the_config_even_when_accounts_move,
);

async fn one_bad_ticket_in_a_group_fails_alone(app: TestApp) {
    use switchboard::core::message::{Message, OutKind, Outgoing, Target};
    use switchboard::core::ticket::{EventKind, NewTicket, Origin};
    use switchboard::core::types::Priority;
    use switchboard::store::CreateTicket;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = app.desk.store.clone();
        let now = app.desk.now();
        tasks.push(tokio::spawn(async move {
            let req = CreateTicket {
                ticket: NewTicket {
                    title: format!("t{i}"),
                    body: "b".into(),
                    source: Some(source("slack:C1", &format!("9.{i}"), "x")),
                    reporter: customer(),
                    department: "support".into(),
                    priority: Priority::Normal,
                    tags: vec![],
                    created_at: now,
                    origin: Origin::Flag,
                },
                actor: customer(),
                events: vec![EventKind::Created {
                    origin: Origin::Flag,
                    department: "support".into(),
                    rule: None,
                    reasons: vec![],
                    emoji: None,
                }],
                // The fifth one's outbox row points at a ticket that does not exist.
                outbox: Box::new(move |t| {
                    vec![Outgoing {
                        kind: OutKind::Alert,
                        target: Target::Channel {
                            channel: "slack:CSUPPORT".parse().unwrap(),
                            thread: None,
                        },
                        ticket: Some(if i == 4 { TicketRef(999_999) } else { t.id }),
                        message: Message::text("alert"),
                    }]
                }),
                inbox_key: None,
                quota: None,
                external: None,
            };
            store.create_ticket(req).await
        }));
    }
    let mut ok = 0;
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    assert_eq!((ok, failed), (9, 1));
    assert_eq!(
        app.desk
            .store
            .list_tickets(&TicketFilter::default())
            .await
            .unwrap()
            .len(),
        9
    );
    assert_eq!(
        app.desk.store.outbox(None, 0).await.unwrap().len(),
        9,
        "the failed ticket left nothing behind"
    );
}

crate::on_both_backends!(one_bad_ticket_in_a_group_fails_alone);

/// Full-text search of tickets by the database's own index: every word must be in the title
/// or the body in some form ("refunds" finds "refunded"); query syntax is read as plain
/// words; it combines with the other filters.
async fn tickets_are_found_by_the_words_of_their_title_and_body(app: TestApp) {
    for line in [
        "/ticket new Refunds not received for March",
        "/ticket new Printer jams on the second floor department:it",
        "/ticket new Card was refunded twice, please check",
        "/ticket new Cannot log in since the update",
    ] {
        app.ok(&slack("UC"), line).await;
    }
    let found = |text: &str, department: Option<&str>| {
        let store = app.desk.store.clone();
        let filter = TicketFilter {
            text: Some(text.to_string()),
            department: department.map(str::to_string),
            ..TicketFilter::default()
        };
        async move {
            store
                .list_tickets(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.id)
                .collect::<Vec<TicketRef>>()
        }
    };
    assert_eq!(found("refund", None).await, [TicketRef(3), TicketRef(1)]);
    assert_eq!(found("REFUNDS march", None).await, [TicketRef(1)]);
    assert_eq!(found("printer", Some("billing")).await, []);
    assert_eq!(found("printers", Some("it")).await, [TicketRef(2)]);
    assert_eq!(found("coffee", None).await, []);
    // FTS5 and tsquery syntax is just words here: no error, no operator.
    assert_eq!(found("refund* \"(card", None).await, [TicketRef(3)]);
    assert_eq!(found("title:printer", None).await, []);
    // English stop words are left out on both databases alike.
    assert_eq!(found("the printer", None).await, [TicketRef(2)]);
    assert_eq!(
        found("was it refunded", None).await,
        [TicketRef(3), TicketRef(1)]
    );
    // Only punctuation: no words, no filter.
    assert_eq!(found("?!", None).await.len(), 4);
}

crate::on_both_backends!(tickets_are_found_by_the_words_of_their_title_and_body);

/// Writes `n` tickets straight into the database: ticket `i` (from 1) says "refund" when
/// `i % 3 == 0` and "chargeback" when `i % 1000 == 7`.
async fn many_tickets(app: &TestApp, n: i64) {
    let title = "CASE WHEN i % 1000 = 7 THEN 'chargeback dispute' \
                 WHEN i % 3 = 0 THEN 'refund please' ELSE 'printer jam' END";
    match &app.schema {
        None => {
            let pool = sqlx::SqlitePool::connect(&app.url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
                 INSERT INTO tickets (version, title, body, reporter, department, priority, tags, \
                   status, created_at, updated_at) \
                 SELECT 1, {title}, 'details', 'slack:UC', 'billing', 'normal', '[]', 'open', \
                   '2026-03-02T09:00:00.000Z', '2026-03-02T09:00:00.000Z' FROM n"
            )))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        Some(schema) => {
            let pool = sqlx::PgPool::connect(&app.url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {schema}.tickets (version, title, body, reporter, department, \
                   priority, tags, status, created_at, updated_at) \
                 SELECT 1, {title}, 'details', 'slack:UC', 'billing', 'normal', '[]', 'open', \
                   now(), now() FROM generate_series(1, {n}) i"
            )))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
    }
}

async fn a_page_of_search_results_is_the_newest_matches_however_rare(app: TestApp) {
    // More tickets than PostgreSQL's first search windows, so every path is taken: a page
    // found in the newest window, one found only in a larger one, and the whole history.
    many_tickets(&app, 110_000).await;
    let page = |text: &str, before: Option<i64>| {
        let store = app.desk.store.clone();
        let filter = TicketFilter {
            text: Some(text.to_string()),
            before: before.map(TicketRef),
            limit: 51,
            ..TicketFilter::default()
        };
        async move {
            store
                .list_tickets(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.id.0)
                .collect::<Vec<i64>>()
        }
    };
    let common: Vec<i64> = (1..=110_000)
        .rev()
        .filter(|i| i % 3 == 0 && i % 1000 != 7)
        .take(51)
        .collect();
    assert_eq!(page("refunds", None).await, common);
    let rare: Vec<i64> = (1..=110_000)
        .rev()
        .filter(|i| i % 1000 == 7)
        .take(51)
        .collect();
    assert_eq!(
        page("chargeback", None).await,
        rare,
        "found beyond the windows"
    );
    let after: Vec<i64> = (1..60_000)
        .rev()
        .filter(|i| i % 1000 == 7)
        .take(51)
        .collect();
    assert_eq!(page("chargebacks", Some(60_000)).await, after);
    assert_eq!(page("coffee", None).await, Vec::<i64>::new());
}

crate::on_both_backends!(a_page_of_search_results_is_the_newest_matches_however_rare);
