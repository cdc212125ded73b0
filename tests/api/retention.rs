//! Retention on both databases: what goes is exactly what the dry run listed, nothing in use
//! ever goes, two instances remove each row once, a late retry after its dedupe key went opens
//! no second ticket, and a year of traffic stays within a stated size (and backs up whole).

use chrono::Duration;
use switchboard::config::RetentionSettings;
use switchboard::core::message::{Message, OutKind, Outgoing, Target};
use switchboard::core::ticket::EventKind;
use switchboard::core::types::{Platform, TicketRef};
use switchboard::retention;
use switchboard::schedule::{Scheduler, SchedulerSettings};
use switchboard::store::{DynStore, InboxOutcome, Prunable, TicketFilter};

use crate::helpers::*;

/// Delivers every pending outbox row at the clock's time (each gets a message id).
async fn deliver_all(store: &DynStore, app: &TestApp) -> usize {
    let now = app.desk.now();
    let mut n = 0;
    loop {
        let rows = store
            .outbox_claim(
                "w",
                &[Platform::Slack, Platform::Discord],
                now,
                Duration::minutes(1),
                1000,
            )
            .await
            .unwrap();
        if rows.is_empty() {
            return n;
        }
        for r in rows {
            n += 1;
            assert!(store
                .outbox_sent(r.id, "w", Some(&format!("m{}", r.id)), now)
                .await
                .unwrap());
        }
    }
}

fn post(text: &str) -> Outgoing {
    Outgoing {
        kind: OutKind::Post,
        target: Target::Channel {
            channel: "slack:CLEADS".parse().unwrap(),
            thread: None,
        },
        ticket: None,
        message: Message::text(text),
    }
}

fn count(report: &[retention::Pruned], what: Prunable) -> u64 {
    report
        .iter()
        .find(|p| p.what == what)
        .map_or(0, |p| p.removed)
}

async fn prune_removes_exactly_what_the_dry_run_listed_and_nothing_in_use(app: TestApp) {
    let store = app.desk.store.clone();
    // Old: handled and failed events, a ticket whose alert was posted twice (re-posted), a
    // delivered post, a dead letter, a digest fire, and SLA claims of a done and an open ticket.
    inbox_rows(&app, "old", 3, InboxOutcome::Done).await;
    inbox_rows(&app, "bad", 1, InboxOutcome::Failed).await;
    let done = app
        .flag(&bob(), "ticket", source("slack:C1", "1.1", "help"))
        .await
        .unwrap()
        .ticket;
    let open = app
        .flag(&bob(), "ticket", source("slack:C1", "1.2", "more help"))
        .await
        .unwrap()
        .ticket;
    store
        .enqueue(vec![post("digest")], app.desk.now())
        .await
        .unwrap();
    deliver_all(&store, &app).await;
    app.clock.advance(Duration::minutes(5));
    // The alert is re-posted (a second `alert` row for the same channel): only the newest
    // is needed to edit it later.
    let alert = store.outbox(Some("sent"), 0).await.unwrap();
    let first_alert = alert
        .iter()
        .find(|r| r.outgoing.kind == OutKind::Alert && r.outgoing.ticket == Some(done.id))
        .unwrap()
        .outgoing
        .clone();
    store
        .enqueue(vec![first_alert.clone()], app.desk.now())
        .await
        .unwrap();
    deliver_all(&store, &app).await;
    let newest = store
        .alert_message_id(done.id, &first_alert.target)
        .await
        .unwrap()
        .unwrap();
    // Nudge claims, taken while both are open (a claim needs the ticket as the tick saw it).
    for t in [done.id, open.id] {
        let since = store.ticket(t).await.unwrap().unwrap().updated_at;
        let by = switchboard::core::types::UserRef::automation(Platform::Slack, "followups");
        assert!(store
            .claim_followup(
                t,
                "nudge",
                since,
                "w",
                &by,
                EventKind::Nudged { assignee: None },
                app.desk.now(),
                vec![]
            )
            .await
            .unwrap());
    }
    app.ok(&alice(), &format!("/ticket status {} resolved", done.id))
        .await;
    let now = app.desk.now();
    for t in [done.id, open.id] {
        assert!(store
            .claim_escalation(t, "first_response", "breach", "w", now, vec![])
            .await
            .unwrap());
    }
    assert!(store
        .claim_fire("weekly", "2026-03-02T09:00", "w", now, vec![])
        .await
        .unwrap());
    // A dead letter: a row the platform refused for good.
    store.enqueue(vec![post("refused")], now).await.unwrap();
    let row = store
        .outbox_claim("w", &[Platform::Slack], now, Duration::minutes(1), 10)
        .await
        .unwrap()
        .remove(0);
    assert!(store
        .outbox_dead(row.id, "w", "channel_not_found", now)
        .await
        .unwrap());
    // Still in use whatever their age: a pending event and a pending message.
    assert!(store
        .inbox_insert("waiting", None, "slack", &serde_json::json!({}), now)
        .await
        .unwrap());
    store.enqueue(vec![post("not yet")], now).await.unwrap();
    let resolved_alert_update = store.outbox(Some("pending"), 0).await.unwrap();

    app.clock.advance(Duration::days(100));
    let plan = retention::plan(&RetentionSettings::default(), app.desk.now());
    let dry = retention::run(&*store, &plan, 2, true, true).await.unwrap();
    let removed = retention::run(&*store, &plan, 2, false, true)
        .await
        .unwrap();
    for (d, r) in dry.iter().zip(&removed) {
        assert_eq!(
            d.removed, r.removed,
            "{:?}: the dry run listed what went",
            d.what
        );
        assert_eq!(d.oldest_kept, r.oldest_kept, "{:?}", d.what);
    }
    assert_eq!(count(&removed, Prunable::InboxDone), 3);
    // Both alerts' first posts, the second alert of the resolved ticket's re-post (older
    // one), the digest: everything sent but each ticket's newest alert per channel.
    let sent_before: Vec<_> = alert.iter().map(|r| r.id).collect();
    assert!(!sent_before.is_empty());
    assert_eq!(count(&removed, Prunable::Fires), 1);
    assert_eq!(
        count(&removed, Prunable::Claims),
        1,
        "only the done ticket's claim"
    );
    assert_eq!(
        store
            .prunable(Prunable::Claims, app.desk.now())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        count(&removed, Prunable::FollowupClaims),
        1,
        "only the done ticket's follow-up claim"
    );
    // What stays: the pending rows, the failed ones, the newest alerts.
    let inbox = store.inbox(None, 0).await.unwrap();
    let mut statuses: Vec<&str> = inbox.iter().map(|r| r.status.as_str()).collect();
    statuses.sort();
    assert_eq!(statuses, ["failed", "pending"]);
    assert_eq!(
        store
            .alert_message_id(done.id, &first_alert.target)
            .await
            .unwrap()
            .as_deref(),
        Some(newest.as_str()),
        "the alert can still be edited"
    );
    let outbox = store.outbox(None, 0).await.unwrap();
    let sent: Vec<_> = outbox.iter().filter(|r| r.status == "sent").collect();
    assert!(
        sent.iter().all(|r| r.outgoing.kind == OutKind::Alert),
        "only alerts stay sent: {sent:?}"
    );
    assert_eq!(sent.len(), 2, "one newest alert per ticket in its channel");
    assert_eq!(outbox.iter().filter(|r| r.status == "failed").count(), 1);
    assert_eq!(
        outbox.iter().filter(|r| r.status == "pending").count(),
        resolved_alert_update.len(),
        "pending messages stay"
    );
    // A second run finds nothing more.
    let again = retention::run(&*store, &plan, 2, false, false)
        .await
        .unwrap();
    assert!(again.iter().all(|p| p.removed == 0), "{again:?}");
    // Failed rows go only by hand, by when they failed.
    let by_hand = [
        (Prunable::InboxFailed, app.desk.now() - Duration::days(90)),
        (Prunable::OutboxFailed, app.desk.now() - Duration::days(90)),
    ];
    let purged = retention::run(&*store, &by_hand, 500, false, false)
        .await
        .unwrap();
    assert_eq!(purged.iter().map(|p| p.removed).sum::<u64>(), 2);
    // Every ticket is still there.
    assert_eq!(ticket_count(&store).await, 2);
}

async fn two_instances_pruning_at_once_remove_each_row_once(app: TestApp) {
    let other = app.second_store().await;
    inbox_rows(&app, "e", 600, InboxOutcome::Done).await;
    app.clock.advance(Duration::days(31));
    let plan = [(Prunable::InboxDone, app.desk.now() - Duration::days(30))];
    let (a, b) = tokio::join!(
        retention::run(&*app.desk.store, &plan, 50, false, false),
        retention::run(&*other, &plan, 50, false, false)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a[0].removed + b[0].removed, 600, "each row removed once");
    assert!(store_is_empty(&app).await);
    // The scheduled job: one instance per slot.
    let settings = RetentionSettings::default();
    let now = app.desk.now();
    let (a, b) = tokio::join!(
        retention::scheduled(&*app.desk.store, &settings, "a", now),
        retention::scheduled(&*other, &settings, "b", now)
    );
    assert_eq!(
        a.unwrap().is_some() as u8 + b.unwrap().is_some() as u8,
        1,
        "exactly one instance prunes a slot"
    );
}

async fn a_scheduled_run_removes_at_most_its_share_and_the_next_the_rest(app: TestApp) {
    let cap = retention::MAX_BATCHES_PER_RUN * 2;
    inbox_rows(&app, "e", cap + 50, InboxOutcome::Done).await;
    app.clock.advance(Duration::days(31));
    let settings = RetentionSettings {
        batch: 2,
        ..RetentionSettings::default()
    };
    let now = app.desk.now();
    let first = retention::scheduled(&*app.desk.store, &settings, "a", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count(&first, Prunable::InboxDone), cap as u64);
    let later = now + Duration::hours(1);
    let next = retention::scheduled(&*app.desk.store, &settings, "a", later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count(&next, Prunable::InboxDone), 50);
    assert!(store_is_empty(&app).await);
}

async fn store_is_empty(app: &TestApp) -> bool {
    app.desk.store.inbox(None, 0).await.unwrap().is_empty()
}

async fn ticket_count(store: &DynStore) -> usize {
    store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap()
        .len()
}

/// Bob flags the same customer message each time.
async fn flag_charged_twice(app: &TestApp) -> switchboard::desk::FlagOutcome {
    app.flag(
        &bob(),
        "ticket",
        source("slack:C1", "7.7", "my card was charged twice"),
    )
    .await
    .unwrap()
}

async fn a_late_retry_after_its_dedupe_key_was_pruned_opens_no_second_ticket(app: TestApp) {
    let store = &app.desk.store;
    let key = "slack:event:Ev0LATE";
    let now = app.desk.now();
    assert!(store
        .inbox_insert(key, None, "slack", &serde_json::json!({}), now)
        .await
        .unwrap());
    let first = flag_charged_twice(&app).await;
    let row = store
        .inbox_claim("w", &[Platform::Slack], now, Duration::minutes(1), 10)
        .await
        .unwrap()
        .remove(0);
    store
        .inbox_finish(row.id, "w", InboxOutcome::Done, "ticket", now)
        .await
        .unwrap();
    // Within the horizon the key turns the retry away.
    assert!(!store
        .inbox_insert(key, None, "slack", &serde_json::json!({}), now)
        .await
        .unwrap());
    app.clock.advance(Duration::days(31));
    let plan = retention::plan(&RetentionSettings::default(), app.desk.now());
    retention::run(&**store, &plan, 500, false, false)
        .await
        .unwrap();
    // Long after, the key is gone and the event is taken in again; the flagged message's own
    // uniqueness finds the ticket it already has.
    assert!(store
        .inbox_insert(key, None, "slack", &serde_json::json!({}), app.desk.now())
        .await
        .unwrap());
    let again = flag_charged_twice(&app).await;
    assert!(!again.created);
    assert_eq!(again.ticket.id, first.ticket.id);
    assert_eq!(ticket_count(store).await, 1);
}

/// The database's size in bytes: SQLite's pages, or the test schema's relations.
async fn size(app: &TestApp) -> i64 {
    match &app.schema {
        None => {
            let pool = sqlx::SqlitePool::connect(&app.url).await.unwrap();
            let (pages, page): (i64, i64) = sqlx::query_as(
                "SELECT page_count, page_size FROM pragma_page_count(), pragma_page_size()",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            pool.close().await;
            pages * page
        }
        Some(schema) => {
            let pool = sqlx::PgPool::connect(&app.url).await.unwrap();
            let n: i64 = sqlx::query_scalar(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relkind = 'r'",
            )
            .bind(schema)
            .fetch_one(&pool)
            .await
            .unwrap();
            pool.close().await;
            n
        }
    }
}

/// What PostgreSQL's autovacuum does between a real year's days (this test passes a day in
/// milliseconds, quicker than its one-minute nap): makes the space of removed rows reusable.
/// SQLite reuses freed pages on its own.
async fn autovacuum(app: &TestApp) {
    if let Some(schema) = &app.schema {
        let pool = sqlx::PgPool::connect(&app.url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "VACUUM {schema}.inbox, {schema}.outbox, {schema}.schedule_fires, \
             {schema}.sla_escalations"
        )))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
}

/// Size after a year of this traffic, with the default retention (both databases). The web
/// view is on, so every alert carries its "Open in browser" button: the test's alert rows, all
/// of one size, then pass half a SQLite page (about 2 KB) and take a page each (3.8 MB with
/// the web view off, 5.3 MB on); real alerts vary in size and pack between the two.
const YEAR_LIMIT: i64 = 6 * 1024 * 1024;

async fn a_year_of_traffic_stays_within_its_size(app: TestApp) {
    let store = app.desk.store.clone();
    let scheduler = Scheduler::new(
        app.desk.clone(),
        SchedulerSettings {
            owner: "a".into(),
            tick: std::time::Duration::from_secs(15),
        },
    );
    // A chart-sized digest (the PNG is stored base64 in the outbox row).
    let chart = "x".repeat(60_000);
    let mut tickets = 0;
    let mut quarter = 0;
    for day in 0..365 {
        for i in 0..4 {
            let t = app
                .flag(
                    &bob(),
                    "ticket",
                    source("slack:C1", &format!("{day}.{i}"), "help"),
                )
                .await
                .unwrap()
                .ticket;
            tickets += 1;
            let now = app.desk.now();
            store
                .claim_escalation(t.id, "first_response", "breach", "a", now, vec![])
                .await
                .unwrap();
            if i % 2 == 0 {
                app.ok(&alice(), &format!("/ticket status {} resolved", t.id))
                    .await;
            }
        }
        inbox_rows(&app, &format!("d{day}"), 4, InboxOutcome::Done).await;
        if day % 7 == 0 {
            store
                .claim_fire(
                    "weekly",
                    &format!("day-{day}"),
                    "a",
                    app.desk.now(),
                    vec![post(&chart)],
                )
                .await
                .unwrap();
        }
        deliver_all(&store, &app).await;
        app.clock.advance(Duration::days(1));
        let pruned = scheduler.retention_tick().await.unwrap();
        assert!(pruned.is_some(), "a day apart, each run has its own slot");
        if day % 7 == 6 {
            autovacuum(&app).await;
        }
        if day == 90 {
            quarter = size(&app).await;
        }
    }
    let end = size(&app).await;
    eprintln!("database size: {quarter} bytes after 90 days, {end} bytes after a year");
    assert!(
        end <= YEAR_LIMIT,
        "{} bytes after a year, over the stated {YEAR_LIMIT}",
        end
    );
    // What is kept is a month of rows (plus each ticket's newest alert), not a year.
    assert!(store.inbox(None, 0).await.unwrap().len() <= 31 * 8);
    let sent = store.outbox(Some("sent"), 0).await.unwrap();
    assert!(
        sent.iter()
            .filter(|r| r.outgoing.kind != OutKind::Alert)
            .count()
            <= 31 * 8,
        "only a month of other deliveries"
    );
    let all = store.list_tickets(&TicketFilter::default()).await.unwrap();
    assert_eq!(all.len(), tickets, "no ticket is ever pruned");
    // The first ticket's alert can still be edited a year on.
    let first = all.iter().find(|t| t.id == TicketRef(1)).unwrap();
    assert_eq!(first.id, TicketRef(1));
    let targets: Vec<Target> = sent
        .iter()
        .filter(|r| r.outgoing.ticket == Some(TicketRef(1)))
        .map(|r| r.outgoing.target.clone())
        .collect();
    assert!(!targets.is_empty());
    assert!(store
        .alert_message_id(TicketRef(1), &targets[0])
        .await
        .unwrap()
        .is_some());
    // The backup restores every ticket as it was: SQLite's into a new file, PostgreSQL's
    // into its schema after the schema is dropped.
    let file = app.dir.path().join("backup.dump");
    store.backup(&file).await.unwrap();
    assert!(
        store.backup(&file).await.is_err(),
        "a backup never overwrites"
    );
    let restored: DynStore = match &app.schema {
        None => {
            let url = format!("sqlite://{}", app.dir.path().join("restored.db").display());
            switchboard::store::restore(&url, &file, false)
                .await
                .unwrap();
            assert!(
                switchboard::store::restore(&url, &file, false)
                    .await
                    .is_err(),
                "an existing database is replaced only when forced"
            );
            std::sync::Arc::new(switchboard::store::SqliteStore::open(&url).await.unwrap())
        }
        Some(schema) => {
            let pool = sqlx::PgPool::connect(&app.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            switchboard::store::restore(&app.url, &file, false)
                .await
                .unwrap();
            std::sync::Arc::new(
                switchboard::store::PgStore::open_in_schema(&app.url, schema)
                    .await
                    .unwrap(),
            )
        }
    };
    let back = restored
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap();
    assert_eq!(back, all, "every ticket round-trips through the backup");
    assert_eq!(
        restored.inbox(None, 0).await.unwrap().len(),
        store.inbox(None, 0).await.unwrap().len()
    );
}

crate::on_both_backends!(
    prune_removes_exactly_what_the_dry_run_listed_and_nothing_in_use,
    two_instances_pruning_at_once_remove_each_row_once,
    a_scheduled_run_removes_at_most_its_share_and_the_next_the_rest,
    a_late_retry_after_its_dedupe_key_was_pruned_opens_no_second_ticket,
    a_year_of_traffic_stays_within_its_size,
);
