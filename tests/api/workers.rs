//! The inbox and outbox workers against fake deliveries and event sources that fail,
//! rate-limit and die, on both databases.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use switchboard::chat::{ChatError, Completion, Delivery, EventSource};
use switchboard::core::message::{Message, Target};
use switchboard::core::ticket::Origin;
use switchboard::core::types::{ChannelRef, Platform, TicketRef, UserRef};
use switchboard::desk::{FlagRequest, TicketOverrides};
use switchboard::inbox::{InboxResult, InboxSettings, InboxWorker};
use switchboard::outbox::{OutboxSettings, OutboxWorker};
use switchboard::store::DynStore;

use crate::helpers::*;

/// What the fake platform does with the next call.
#[derive(Debug, Clone)]
enum Act {
    RateLimit(Duration),
    Transient,
    Permanent,
    /// Accepts the message, then never answers (the worker dies before recording it).
    AcceptThenHang,
}

/// A platform that records what it receives and misbehaves on cue.
struct FakeDelivery {
    platform: Platform,
    script: Mutex<VecDeque<Act>>,
    posts: Mutex<Vec<(String, String, String)>>,
    edits: Mutex<Vec<(String, String)>>,
    calls: AtomicU64,
    next_id: AtomicU64,
    delay: Duration,
}

impl FakeDelivery {
    fn new(platform: Platform) -> Arc<Self> {
        Arc::new(Self {
            platform,
            script: Mutex::new(VecDeque::new()),
            posts: Mutex::new(vec![]),
            edits: Mutex::new(vec![]),
            calls: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            delay: Duration::ZERO,
        })
    }

    fn then(&self, acts: impl IntoIterator<Item = Act>) {
        self.script.lock().unwrap().extend(acts);
    }

    fn posts(&self) -> Vec<(String, String, String)> {
        self.posts.lock().unwrap().clone()
    }

    fn edits(&self) -> Vec<(String, String)> {
        self.edits.lock().unwrap().clone()
    }

    async fn act(&self) -> Result<(), ChatError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let next = self.script.lock().unwrap().pop_front();
        match next {
            None | Some(Act::AcceptThenHang) => Ok(()),
            Some(Act::RateLimit(d)) => Err(ChatError::RateLimited(d)),
            Some(Act::Transient) => Err(ChatError::Transient("502 Bad Gateway".into())),
            Some(Act::Permanent) => Err(ChatError::Permanent("channel_not_found".into())),
        }
    }

    fn hangs_next(&self) -> bool {
        matches!(
            self.script.lock().unwrap().front(),
            Some(Act::AcceptThenHang)
        )
    }
}

#[async_trait]
impl Delivery for FakeDelivery {
    fn platform(&self) -> Platform {
        self.platform
    }

    async fn post(
        &self,
        target: &Target,
        message: &Message,
        key: &str,
    ) -> Result<String, ChatError> {
        let hang = self.hangs_next();
        self.act().await?;
        let id = format!("m{}", self.next_id.fetch_add(1, Ordering::SeqCst));
        let what = message
            .title
            .clone()
            .unwrap_or_else(|| message.text.clone());
        self.posts
            .lock()
            .unwrap()
            .push((key.to_string(), target.to_string(), what));
        if hang {
            std::future::pending::<()>().await;
        }
        Ok(id)
    }

    async fn edit(
        &self,
        _channel: &ChannelRef,
        message_id: &str,
        message: &Message,
    ) -> Result<(), ChatError> {
        self.act().await?;
        let status = message
            .fields
            .iter()
            .find(|f| f.name == "Status")
            .map(|f| f.value.clone())
            .unwrap_or_default();
        self.edits
            .lock()
            .unwrap()
            .push((message_id.to_string(), status));
        Ok(())
    }
}

fn settings(name: &str) -> OutboxSettings {
    OutboxSettings {
        owner: name.to_string(),
        lease: Duration::from_secs(60),
        batch: 50,
        concurrency: 8,
        idle: Duration::from_millis(5),
        backoff_base: Duration::from_secs(1),
        backoff_cap: Duration::from_secs(4),
        max_attempts: 3,
    }
}

fn worker(
    app: &TestApp,
    store: DynStore,
    name: &str,
    deliveries: Vec<Arc<FakeDelivery>>,
) -> OutboxWorker {
    OutboxWorker::new(
        store,
        deliveries
            .into_iter()
            .map(|d| d as Arc<dyn Delivery>)
            .collect(),
        Arc::new(app.clock.clone()),
        app.desk.telemetry.clone(),
        settings(name),
    )
}

async fn statuses(app: &TestApp) -> Vec<String> {
    app.desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect()
}

async fn outbox_delivers_in_order_and_edits_alerts_in_place(app: TestApp) {
    let sfake = FakeDelivery::new(Platform::Slack);
    let dfake = FakeDelivery::new(Platform::Discord);
    let w = worker(
        &app,
        app.desk.store.clone(),
        "w1",
        vec![sfake.clone(), dfake.clone()],
    );
    app.flag(
        &bob(),
        "ticket",
        source("slack:CHELP", "1.1", "refund please"),
    )
    .await
    .unwrap();
    app.ok(&bob(), "/ticket claim T-1").await;
    // Five rows: thread reply, two alerts, two alert edits. Each ticket's rows go out in order
    // per destination: each edit after its alert; the reply and the alerts, bound for three
    // different channels, go at once.
    assert_eq!(w.round().await.unwrap(), 3);
    assert!(sfake.edits().is_empty() && dfake.edits().is_empty());
    assert_eq!(w.round().await.unwrap(), 2);
    assert_eq!(dfake.edits().len(), 1);
    assert_eq!(w.round().await.unwrap(), 0);
    let slack_posts = sfake.posts();
    assert_eq!(slack_posts.len(), 2);
    assert_eq!(slack_posts[0].1, "slack:CHELP (thread 1.1)");
    assert_eq!(slack_posts[1].1, "slack:CBILLING");
    assert_eq!(
        sfake.edits(),
        vec![("m2".to_string(), "in progress".to_string())],
        "the alert's own id is edited"
    );
    assert_eq!(
        dfake.edits(),
        vec![("m1".to_string(), "in progress".to_string())]
    );
    let rows = app.desk.store.outbox(None, 0).await.unwrap();
    assert!(
        rows.iter()
            .all(|r| r.status == "sent" && r.platform_message_id.is_some()),
        "{rows:#?}"
    );
}

async fn a_rate_limit_reschedules_its_row_to_retry_after_without_an_attempt(app: TestApp) {
    // What a 429 concerns (a channel, a method, a bucket) is the client's to pause; the worker
    // puts the refused row back until Retry-After and does not count it as an attempt.
    let sfake = FakeDelivery::new(Platform::Slack);
    let dfake = FakeDelivery::new(Platform::Discord);
    let w = worker(
        &app,
        app.desk.store.clone(),
        "w1",
        vec![sfake.clone(), dfake.clone()],
    );
    app.ok(&slack("UC"), "/ticket new refund one").await;
    app.ok(&slack("UC"), "/ticket new refund two").await;
    sfake.then([Act::RateLimit(Duration::from_secs(30))]);
    w.round().await.unwrap();
    assert_eq!(sfake.calls.load(Ordering::SeqCst), 2);
    assert_eq!(sfake.posts().len(), 1, "one refused, one sent");
    assert_eq!(
        dfake.posts().len(),
        2,
        "Discord is not held up by Slack's limit"
    );
    let waiting: Vec<_> = app.desk.store.outbox(Some("pending"), 0).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].attempts, 0, "a rate limit is not an attempt");
    assert!(waiting[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("rate limited"));
    app.clock.advance(chrono::Duration::seconds(29));
    w.round().await.unwrap();
    assert_eq!(
        sfake.calls.load(Ordering::SeqCst),
        2,
        "Retry-After is honoured"
    );
    app.clock.advance(chrono::Duration::seconds(1));
    w.round().await.unwrap();
    assert_eq!(sfake.posts().len(), 2);
    assert!(statuses(&app).await.iter().all(|s| s == "sent"));
}

async fn temporary_failures_back_off_then_dead_letter_and_can_be_requeued(app: TestApp) {
    let sfake = FakeDelivery::new(Platform::Slack);
    let w = worker(&app, app.desk.store.clone(), "w1", vec![sfake.clone()]);
    app.ok(&slack("UC"), "/ticket new printer department:support")
        .await;
    sfake.then([Act::Transient, Act::Transient, Act::Transient]);
    w.round().await.unwrap();
    let row = &app.desk.store.outbox(None, 0).await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert_eq!(row.last_error.as_deref(), Some("502 Bad Gateway"));
    w.round().await.unwrap();
    assert_eq!(
        sfake.calls.load(Ordering::SeqCst),
        1,
        "backing off, not hammering"
    );
    app.clock.advance(chrono::Duration::seconds(5));
    w.round().await.unwrap();
    app.clock.advance(chrono::Duration::seconds(5));
    w.round().await.unwrap();
    let failed = app.desk.store.outbox(Some("failed"), 0).await.unwrap();
    assert_eq!(
        failed.len(),
        1,
        "dead-lettered after max attempts, never dropped"
    );
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("gave up after 3 attempts"),
        "{failed:?}"
    );
    assert_eq!(
        app.desk
            .store
            .outbox_requeue(&[], app.desk.now())
            .await
            .unwrap(),
        1
    );
    w.round().await.unwrap();
    assert_eq!(statuses(&app).await, ["sent"]);
    assert_eq!(sfake.posts().len(), 1);
}

async fn permanent_failures_dead_letter_at_once_and_their_edits_follow(app: TestApp) {
    let sfake = FakeDelivery::new(Platform::Slack);
    let w = worker(&app, app.desk.store.clone(), "w1", vec![sfake.clone()]);
    app.ok(&slack("UC"), "/ticket new printer department:support")
        .await;
    app.ok(&alice(), "/ticket claim T-1").await;
    sfake.then([Act::Permanent]);
    w.round().await.unwrap();
    w.round().await.unwrap();
    let rows = app.desk.store.outbox(None, 0).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ["failed", "failed"]
    );
    assert!(rows[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("channel_not_found"));
    assert!(rows[1]
        .last_error
        .as_deref()
        .unwrap()
        .contains("never posted"));
    assert_eq!(sfake.calls.load(Ordering::SeqCst), 1);
}

async fn a_worker_killed_after_the_platform_accepted_redelivers_once_its_lease_expires(
    app: TestApp,
) {
    let sfake = FakeDelivery::new(Platform::Slack);
    app.ok(&slack("UC"), "/ticket new printer department:support")
        .await;
    sfake.then([Act::AcceptThenHang]);
    let doomed = worker(&app, app.desk.store.clone(), "doomed", vec![sfake.clone()]);
    let task = tokio::spawn(async move { doomed.round().await });
    while sfake.posts().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    let _ = task.await;
    let survivor = worker(
        &app,
        app.second_store().await,
        "survivor",
        vec![sfake.clone()],
    );
    assert_eq!(survivor.round().await.unwrap(), 0, "the lease still holds");
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        survivor.round().await.unwrap(),
        1,
        "the expired lease is taken over"
    );
    let posts = sfake.posts();
    assert_eq!(posts.len(), 2, "at least once: the platform saw it twice");
    assert_eq!(
        posts[0].0, posts[1].0,
        "both carry the row's key, for platforms that dedupe"
    );
    assert_eq!(statuses(&app).await, ["sent"]);
    let metrics = app.desk.telemetry.render();
    assert!(
        metrics.contains(r#"switchboard_outbox_reclaimed_total{platform="slack"} 1"#),
        "{metrics}"
    );
}

async fn two_live_workers_with_separate_pools_never_send_a_row_twice(app: TestApp) {
    for i in 0..30 {
        app.ok(
            &slack("UC"),
            &format!("/ticket new printer {i} department:support"),
        )
        .await;
    }
    let sfake = Arc::new(FakeDelivery {
        delay: Duration::from_millis(2),
        ..Arc::try_unwrap(FakeDelivery::new(Platform::Slack))
            .ok()
            .unwrap()
    });
    let a = worker(&app, app.desk.store.clone(), "a", vec![sfake.clone()]);
    let b = worker(&app, app.second_store().await, "b", vec![sfake.clone()]);
    let run = |w: OutboxWorker| async move {
        let mut handled = 0;
        for _ in 0..200 {
            let n = w.round().await.unwrap();
            handled += n;
            if n == 0 {
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }
        handled
    };
    let (ha, hb) = tokio::join!(tokio::spawn(run(a)), tokio::spawn(run(b)));
    let (ha, hb) = (ha.unwrap(), hb.unwrap());
    let posts = sfake.posts();
    let keys: HashSet<&String> = posts.iter().map(|p| &p.0).collect();
    assert_eq!(posts.len(), 30, "a: {ha}, b: {hb}");
    assert_eq!(keys.len(), 30, "no row was sent twice");
    assert_eq!(ha + hb, 30);
    assert!(statuses(&app).await.iter().all(|s| s == "sent"));
}

/// Completes events of the form `{"channel": "slack:C1", "ts": "1.1", "text": "…", "emoji": "ticket",
/// "flagger": "UBOB"}`, failing on cue.
struct FakeSource {
    script: Mutex<VecDeque<ChatError>>,
    calls: AtomicU64,
}

impl FakeSource {
    fn new(fail: impl IntoIterator<Item = ChatError>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(fail.into_iter().collect()),
            calls: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl EventSource for FakeSource {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    async fn complete(&self, raw: &serde_json::Value) -> Result<Completion, ChatError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = self.script.lock().unwrap().pop_front() {
            return Err(e);
        }
        if raw["emoji"] == "thumbsup" {
            return Ok(Completion::Ignore("not a flag emoji".into()));
        }
        let mut src = source(
            raw["channel"].as_str().unwrap(),
            raw["ts"].as_str().unwrap(),
            raw["text"].as_str().unwrap(),
        );
        src.author = UserRef::new(Platform::Slack, "UCUSTOMER");
        Ok(Completion::Flag(Box::new(FlagRequest {
            flagger: slack(raw["flagger"].as_str().unwrap()),
            origin: Origin::Flag,
            emoji: Some(raw["emoji"].as_str().unwrap().to_string()),
            source: src,
            author_roles: vec![],
            overrides: TicketOverrides::default(),
            inbox_key: None,
        })))
    }
}

fn inbox_worker(app: &TestApp, source: Arc<FakeSource>) -> InboxWorker {
    InboxWorker::new(
        app.desk.clone(),
        vec![source as Arc<dyn EventSource>],
        InboxSettings {
            owner: "inbox-test".into(),
            lease: Duration::from_secs(60),
            batch: 10,
            concurrency: 8,
            idle: Duration::from_millis(5),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
        },
    )
}

fn event(ts: &str, emoji: &str, flagger: &str) -> serde_json::Value {
    json!({"channel": "slack:CHELP", "ts": ts, "text": "I was charged twice", "emoji": emoji, "flagger": flagger})
}

async fn an_inbox_event_becomes_a_ticket_and_its_row_is_done_with_it(app: TestApp) {
    let store = &app.desk.store;
    let now = app.desk.now();
    assert!(store
        .inbox_insert(
            "slack:Ev1",
            None,
            "slack",
            &event("1.1", "ticket", "UBOB"),
            now
        )
        .await
        .unwrap());
    assert!(
        !store
            .inbox_insert(
                "slack:Ev1",
                None,
                "slack",
                &event("1.1", "ticket", "UBOB"),
                now
            )
            .await
            .unwrap(),
        "a repeated delivery is refused by its key"
    );
    let w = inbox_worker(&app, FakeSource::new([]));
    assert_eq!(w.round().await.unwrap(), 1);
    assert_eq!(ticket_count(&app).await, 1);
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.department, "billing");
    let rows = store.inbox(None, 0).await.unwrap();
    assert_eq!(rows[0].status, "done");
    // The same message flagged again (a new event id) points to the same ticket.
    store
        .inbox_insert(
            "slack:Ev2",
            None,
            "slack",
            &event("1.1", "🎫", "UALICE"),
            now,
        )
        .await
        .unwrap();
    w.round().await.unwrap();
    assert_eq!(ticket_count(&app).await, 1);
    assert_eq!(store.inbox(Some("done"), 0).await.unwrap().len(), 2);
}

async fn rate_limited_and_failing_fetches_are_retried_never_lost(app: TestApp) {
    let store = &app.desk.store;
    store
        .inbox_insert(
            "slack:Ev1",
            None,
            "slack",
            &event("1.1", "ticket", "UBOB"),
            app.desk.now(),
        )
        .await
        .unwrap();
    let source = FakeSource::new([
        ChatError::RateLimited(Duration::from_secs(20)),
        ChatError::Transient("timeout".into()),
    ]);
    let w = inbox_worker(&app, source.clone());
    assert_eq!(w.round().await.unwrap(), 1);
    assert_eq!(ticket_count(&app).await, 0);
    assert_eq!(
        w.round().await.unwrap(),
        0,
        "waits the platform's Retry-After"
    );
    app.clock.advance(chrono::Duration::seconds(20));
    w.round().await.unwrap();
    let row = &store.inbox(None, 0).await.unwrap()[0];
    assert_eq!(
        (row.status.as_str(), row.last_error.as_deref()),
        ("pending", Some("timeout"))
    );
    app.clock.advance(chrono::Duration::seconds(2));
    w.round().await.unwrap();
    assert_eq!(ticket_count(&app).await, 1);
    assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    assert_eq!(store.inbox(None, 0).await.unwrap()[0].status, "done");
}

async fn refused_ignored_and_impossible_events_end_with_their_reason(app: TestApp) {
    let store = &app.desk.store;
    let now = app.desk.now();
    store
        .inbox_insert(
            "slack:Ev1",
            None,
            "slack",
            &event("1.1", "ticket", "USTRANGER"),
            now,
        )
        .await
        .unwrap();
    store
        .inbox_insert(
            "slack:Ev2",
            None,
            "slack",
            &event("1.2", "thumbsup", "UBOB"),
            now,
        )
        .await
        .unwrap();
    store
        .inbox_insert(
            "slack:Ev3",
            None,
            "slack",
            &event("1.3", "ticket", "UBOB"),
            now,
        )
        .await
        .unwrap();
    let w = inbox_worker(&app, FakeSource::new([]));
    // Claimed under the worker's own name: a worker records outcomes only for rows it holds.
    let rows = store
        .inbox_claim(
            "inbox-test",
            &[Platform::Slack],
            now,
            chrono::Duration::seconds(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        matches!(w.process(&rows[0]).await.unwrap(), InboxResult::Ignored(why) if why.contains("allowed to flag"))
    );
    assert!(
        matches!(w.process(&rows[1]).await.unwrap(), InboxResult::Ignored(why) if why == "not a flag emoji")
    );
    let failing = inbox_worker(
        &app,
        FakeSource::new([ChatError::Permanent("message_not_found".into())]),
    );
    assert!(matches!(
        failing.process(&rows[2]).await.unwrap(),
        InboxResult::Failed(_)
    ));
    let rows = store.inbox(None, 0).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ["done", "done", "failed"]
    );
    assert_eq!(rows[2].last_error.as_deref(), Some("message_not_found"));
    assert_eq!(ticket_count(&app).await, 0);
}

/// Idle workers sleep an hour between empty rounds here, yet new rows stored in this process
/// are handled at once: the store wakes its local workers after each commit.
async fn new_work_wakes_idle_workers(app: TestApp) {
    let mut inbox_settings = InboxSettings {
        idle: Duration::from_secs(3600),
        ..InboxSettings::default()
    };
    inbox_settings.owner = "sleepy-inbox".into();
    let inbox = InboxWorker::new(
        app.desk.clone(),
        vec![FakeSource::new([]) as Arc<dyn EventSource>],
        inbox_settings,
    );
    let delivery = FakeDelivery::new(Platform::Slack);
    let outbox = OutboxWorker::new(
        app.desk.store.clone(),
        vec![delivery.clone() as Arc<dyn Delivery>],
        Arc::new(app.clock.clone()),
        app.desk.telemetry.clone(),
        OutboxSettings {
            idle: Duration::from_secs(3600),
            ..settings("sleepy-outbox")
        },
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let a = tokio::spawn(inbox.run(stopped.clone()));
    let b = tokio::spawn(outbox.run(stopped));
    // Both have run their first, empty round and sleep now.
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.desk
        .store
        .inbox_insert(
            "slack:EvWake",
            None,
            "slack",
            &event("9.9", "ticket", "UBOB"),
            app.desk.now(),
        )
        .await
        .unwrap();
    let mut delivered = false;
    for _ in 0..500 {
        if delivery.posts.lock().unwrap().len() >= 2 {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    let _ = tokio::join!(a, b);
    assert!(delivered, "the flag became a ticket and its reply and alert were sent without waiting out the idle hour");
}

crate::on_both_backends!(
    new_work_wakes_idle_workers,
    outbox_delivers_in_order_and_edits_alerts_in_place,
    a_rate_limit_reschedules_its_row_to_retry_after_without_an_attempt,
    temporary_failures_back_off_then_dead_letter_and_can_be_requeued,
    permanent_failures_dead_letter_at_once_and_their_edits_follow,
    a_worker_killed_after_the_platform_accepted_redelivers_once_its_lease_expires,
    two_live_workers_with_separate_pools_never_send_a_row_twice,
    an_inbox_event_becomes_a_ticket_and_its_row_is_done_with_it,
    rate_limited_and_failing_fetches_are_retried_never_lost,
    refused_ignored_and_impossible_events_end_with_their_reason,
);
