//! The workers under concurrency, on both databases: many tickets in flight keep each
//! ticket's order, rows queued together keep theirs, a stuck channel holds back only itself,
//! events about one message apply in order, and a worker that lost its lease cannot overwrite
//! the outcome of the worker that took over. Order is proved by causality (what the fake
//! platform saw, and when), never by timing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use switchboard::chat::{ChatError, Delivery};
use switchboard::core::message::{Message, OutKind, Outgoing, Target};
use switchboard::core::types::{ChannelRef, Platform};
use switchboard::outbox::{OutboxSettings, OutboxWorker};
use tokio::sync::{watch, Notify};

use crate::helpers::*;

/// One call the fake platform saw, in the order it finished.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Post {
        channel: String,
        id: String,
        what: String,
    },
    Edit {
        channel: String,
        id: String,
    },
}

/// A platform that answers after a small varying delay, can hold every call to one channel
/// until released, and records what it saw in the order it finished.
#[derive(Default)]
struct Platformish {
    seen: Mutex<Vec<Seen>>,
    next: Mutex<u64>,
    /// Calls to this channel wait until `release` is notified.
    held: Mutex<Option<String>>,
    release: Notify,
    /// How many calls are waiting on the held channel right now.
    waiting: Mutex<u32>,
}

impl Platformish {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn pace(&self, channel: &str, n: u64) {
        if self.held.lock().unwrap().as_deref() == Some(channel) {
            *self.waiting.lock().unwrap() += 1;
            self.release.notified().await;
            *self.waiting.lock().unwrap() -= 1;
        }
        // Answers come back in a different order from the calls.
        tokio::time::sleep(Duration::from_millis(n * 7 % 5)).await;
    }
}

struct Fake(Arc<Platformish>);

#[async_trait]
impl Delivery for Fake {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    async fn post(
        &self,
        target: &Target,
        message: &Message,
        _key: &str,
    ) -> Result<String, ChatError> {
        let n = {
            let mut next = self.0.next.lock().unwrap();
            *next += 1;
            *next
        };
        let channel = target.destination();
        self.0.pace(&channel, n).await;
        let id = format!("m{n}");
        self.0.seen.lock().unwrap().push(Seen::Post {
            channel,
            id: id.clone(),
            what: message
                .title
                .clone()
                .unwrap_or_else(|| message.text.clone()),
        });
        Ok(id)
    }

    async fn edit(
        &self,
        channel: &ChannelRef,
        message_id: &str,
        _message: &Message,
    ) -> Result<(), ChatError> {
        let n = {
            let mut next = self.0.next.lock().unwrap();
            *next += 1;
            *next
        };
        self.0.pace(&channel.to_string(), n).await;
        self.0.seen.lock().unwrap().push(Seen::Edit {
            channel: channel.to_string(),
            id: message_id.to_string(),
        });
        Ok(())
    }
}

fn worker(app: &TestApp, fake: &Arc<Platformish>, concurrency: usize) -> OutboxWorker {
    OutboxWorker::new(
        app.desk.store.clone(),
        vec![Arc::new(Fake(fake.clone())) as Arc<dyn Delivery>],
        Arc::new(app.clock.clone()),
        app.desk.telemetry.clone(),
        OutboxSettings {
            owner: "concurrent".into(),
            batch: 64,
            concurrency,
            idle: Duration::from_millis(5),
            ..OutboxSettings::default()
        },
    )
}

/// Runs `w` in the background until the returned sender says stop.
fn start(w: OutboxWorker) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = watch::channel(false);
    (stop, tokio::spawn(w.run(stopped)))
}

/// Waits (polling the store) until no outbox row is pending.
async fn drained(app: &TestApp) {
    for _ in 0..2000 {
        let rows = app.desk.store.outbox(Some("pending"), 0).await.unwrap();
        if rows.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the outbox never drained");
}

async fn many_tickets_in_flight_keep_each_tickets_order(app: TestApp) {
    // Thirty tickets for support (one Slack channel), each claimed at once: thirty alerts and
    // thirty edits of them, all queued before the worker starts.
    for i in 0..30 {
        app.ok(
            &bob(),
            &format!("/ticket new printer {i} department:support"),
        )
        .await;
    }
    for i in 1..=30 {
        app.ok(&alice(), &format!("/ticket claim T-{i}")).await;
    }
    let fake = Arc::new(Platformish::default());
    let (stop, task) = start(worker(&app, &fake, 16));
    drained(&app).await;
    let _ = stop.send(true);
    task.await.unwrap();
    let seen = fake.seen();
    // Every edit came after the post of the alert it edits, on the same channel.
    let mut posted: HashMap<String, usize> = HashMap::new();
    let mut edits = 0;
    for (i, s) in seen.iter().enumerate() {
        match s {
            Seen::Post { id, .. } => {
                posted.insert(id.clone(), i);
            }
            Seen::Edit { id, channel } => {
                edits += 1;
                assert!(
                    posted.get(id).is_some_and(|&p| p < i),
                    "edit of {id} in {channel} before its alert: {seen:#?}"
                );
            }
        }
    }
    assert_eq!(edits, 30, "{seen:#?}");
    let failed = app.desk.store.outbox(Some("failed"), 0).await.unwrap();
    assert!(failed.is_empty(), "{failed:#?}");
}

async fn rows_queued_together_keep_their_order(app: TestApp) {
    // A digest's text and its chart are queued together without a ticket; the chart must
    // never overtake the text, even with the text held back.
    let post = |what: &str| Outgoing {
        kind: OutKind::Post,
        target: Target::Channel {
            channel: "slack:CLEADS".parse().unwrap(),
            thread: None,
        },
        ticket: None,
        message: Message::text(what),
    };
    app.desk
        .store
        .enqueue(
            vec![post("digest text"), post("digest chart")],
            app.desk.now(),
        )
        .await
        .unwrap();
    let fake = Arc::new(Platformish::default());
    *fake.held.lock().unwrap() = Some("slack:CLEADS".into());
    let (stop, task) = start(worker(&app, &fake, 8));
    // The text is in flight and held; the chart must not be claimed meanwhile.
    wait_for(|| *fake.waiting.lock().unwrap() == 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        *fake.waiting.lock().unwrap(),
        1,
        "only the text is in flight"
    );
    assert!(fake.seen().is_empty());
    *fake.held.lock().unwrap() = None;
    fake.release.notify_waiters();
    drained(&app).await;
    let _ = stop.send(true);
    task.await.unwrap();
    let whats: Vec<String> = fake
        .seen()
        .into_iter()
        .map(|s| match s {
            Seen::Post { what, .. } => what,
            Seen::Edit { .. } => "edit".into(),
        })
        .collect();
    assert_eq!(whats, ["digest text", "digest chart"]);
}

async fn a_stuck_channel_holds_back_only_itself(app: TestApp) {
    // Billing's Slack channel hangs; support's alert still arrives while billing's waits.
    let fake = Arc::new(Platformish::default());
    *fake.held.lock().unwrap() = Some("slack:CBILLING".into());
    app.ok(&bob(), "/ticket new refund department:billing")
        .await;
    app.ok(&bob(), "/ticket new printer department:support")
        .await;
    let (stop, task) = start(worker(&app, &fake, 4));
    // Causality: support's alert is seen while billing's call is still held.
    wait_for(|| {
        fake.seen()
            .iter()
            .any(|s| matches!(s, Seen::Post { channel, .. } if channel == "slack:CSUPPORT"))
    })
    .await;
    assert_eq!(*fake.waiting.lock().unwrap(), 1, "billing is still held");
    assert!(!fake
        .seen()
        .iter()
        .any(|s| matches!(s, Seen::Post { channel, .. } if channel == "slack:CBILLING")));
    *fake.held.lock().unwrap() = None;
    fake.release.notify_waiters();
    let _ = stop.send(true);
    task.await.unwrap();
    assert!(fake
        .seen()
        .iter()
        .any(|s| matches!(s, Seen::Post { channel, .. } if channel == "slack:CBILLING")));
}

/// Polls `done` until it holds (a safety net of ten seconds turns a hang into a failure).
async fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the awaited state never came");
}

/// The keys of the inbox rows `owner` can claim now.
async fn inbox_keys(app: &TestApp, owner: &str) -> Vec<String> {
    app.desk
        .store
        .inbox_claim(
            owner,
            &[Platform::Slack],
            app.desk.now(),
            chrono::Duration::seconds(60),
            10,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect()
}

/// The outbox rows `owner` can claim now.
async fn outbox_rows(app: &TestApp, owner: &str) -> Vec<switchboard::store::OutboxRow> {
    app.desk
        .store
        .outbox_claim(
            owner,
            &[Platform::Slack],
            app.desk.now(),
            chrono::Duration::seconds(60),
            10,
        )
        .await
        .unwrap()
}

async fn events_about_one_message_are_claimed_one_at_a_time(app: TestApp) {
    let store = &app.desk.store;
    let now = app.desk.now();
    let event = |n: u32| serde_json::json!({ "n": n });
    store
        .inbox_insert("slack:Ev1", Some("slack:C1:1.1"), "slack", &event(1), now)
        .await
        .unwrap();
    store
        .inbox_insert("slack:Ev2", Some("slack:C1:1.1"), "slack", &event(2), now)
        .await
        .unwrap();
    store
        .inbox_insert("slack:Ev3", Some("slack:C1:2.2"), "slack", &event(3), now)
        .await
        .unwrap();
    assert_eq!(inbox_keys(&app, "w1").await, ["slack:Ev1", "slack:Ev3"]);
    assert!(inbox_keys(&app, "w2").await.is_empty(), "Ev2 waits for Ev1");
    let rows = store.inbox(Some("pending"), 0).await.unwrap();
    let ev1 = rows.iter().find(|r| r.key == "slack:Ev1").unwrap().id;
    assert!(store
        .inbox_finish(ev1, "w1", switchboard::store::InboxOutcome::Done, "ok", now)
        .await
        .unwrap());
    assert_eq!(inbox_keys(&app, "w2").await, ["slack:Ev2"]);
}

async fn a_worker_that_lost_its_lease_cannot_overwrite_the_outcome(app: TestApp) {
    let store = &app.desk.store;
    app.ok(&bob(), "/ticket new printer department:support")
        .await;
    let lease = chrono::Duration::seconds(60);
    let stalled = outbox_rows(&app, "w1").await;
    assert_eq!(stalled.len(), 1);
    let id = stalled[0].id;
    // w1 stalls past its lease; w2 takes the row over and gives it back for a retry.
    app.clock.advance(chrono::Duration::seconds(61));
    let taken = outbox_rows(&app, "w2").await;
    assert_eq!(taken.len(), 1);
    assert!(taken[0].reclaimed);
    let later = app.desk.now() + chrono::Duration::seconds(30);
    assert!(store
        .outbox_retry(id, "w2", later, "502 Bad Gateway")
        .await
        .unwrap());
    // w1 wakes up and tries to record its outcomes: each is refused and changes nothing.
    let now = app.desk.now();
    assert!(!store
        .outbox_sent(id, "w1", Some("m-stale"), now)
        .await
        .unwrap());
    assert!(!store.outbox_dead(id, "w1", "gave up", now).await.unwrap());
    assert!(!store.outbox_retry(id, "w1", now, "stale").await.unwrap());
    let row = store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap();
    assert_eq!(
        (
            row.status.as_str(),
            row.last_error.as_deref(),
            row.platform_message_id
        ),
        ("pending", Some("502 Bad Gateway"), None)
    );
    // The same for the inbox.
    store
        .inbox_insert("slack:EvL", None, "slack", &serde_json::json!({}), now)
        .await
        .unwrap();
    let first = store
        .inbox_claim("i1", &[Platform::Slack], now, lease, 10)
        .await
        .unwrap();
    app.clock.advance(chrono::Duration::seconds(61));
    let now = app.desk.now();
    let again = store
        .inbox_claim("i2", &[Platform::Slack], now, lease, 10)
        .await
        .unwrap();
    assert_eq!(first[0].id, again[0].id);
    assert!(store
        .inbox_finish(
            first[0].id,
            "i2",
            switchboard::store::InboxOutcome::Done,
            "ticket T-9",
            now
        )
        .await
        .unwrap());
    assert!(!store
        .inbox_finish(
            first[0].id,
            "i1",
            switchboard::store::InboxOutcome::Failed,
            "stale",
            now
        )
        .await
        .unwrap());
    assert!(!store
        .inbox_retry(first[0].id, "i1", now, "stale")
        .await
        .unwrap());
    let row = &store.inbox(None, 0).await.unwrap()[0];
    assert_eq!(
        (row.status.as_str(), row.last_error.as_deref()),
        ("done", Some("ticket T-9"))
    );
}

crate::on_both_backends!(
    many_tickets_in_flight_keep_each_tickets_order,
    rows_queued_together_keep_their_order,
    a_stuck_channel_holds_back_only_itself,
    events_about_one_message_are_claimed_one_at_a_time,
    a_worker_that_lost_its_lease_cannot_overwrite_the_outcome,
);
