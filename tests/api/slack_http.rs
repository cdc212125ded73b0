//! Slack's Events API in HTTP mode over a real socket: signatures, limits, the URL
//! verification challenge, and the inbox commit before the acknowledgement.

use serde_json::{json, Value};
use switchboard::app::serve;
use switchboard::chat::slack::events::sign;
use switchboard::config::Secret;

use crate::helpers::*;

struct Server {
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(app: &TestApp) -> Server {
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
    Server {
        base,
        client: reqwest::Client::new(),
        stop: Some(stop),
    }
}

/// A `reaction_added` delivery shaped as Slack documents it.
fn reaction(event_id: &str) -> Value {
    json!({
        "token": "XXYYZZ",
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1_772_442_000,
        "authed_users": ["U0BOT"],
        "event": {
            "type": "reaction_added",
            "user": "UBOB",
            "reaction": "ticket",
            "item_user": "UCUSTOMER",
            "item": {"type": "message", "channel": "CHELP", "ts": "1772442000.000100"},
            "event_ts": "1772442001.000200"
        }
    })
}

impl Server {
    async fn post(
        &self,
        body: Vec<u8>,
        ts: &str,
        signature: Option<String>,
        retry: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/slack/events", self.base))
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", ts);
        if let Some(sig) = signature {
            req = req.header("x-slack-signature", sig);
        }
        if let Some(n) = retry {
            req = req
                .header("x-slack-retry-num", n)
                .header("x-slack-retry-reason", "http_timeout");
        }
        req.body(body).send().await.unwrap()
    }

    async fn signed(&self, app: &TestApp, body: &Value, retry: Option<&str>) -> reqwest::Response {
        let body = serde_json::to_vec(body).unwrap();
        let ts = app.desk.now().timestamp().to_string();
        let sig = sign(&Secret::new(TEST_SIGNING_SECRET), &ts, &body);
        self.post(body, &ts, Some(sig), retry).await
    }
}

#[test]
fn the_test_delivery_matches_slacks_event_wrapper_schema() {
    let schema: Value = serde_json::from_str(include_str!(
        "../fixtures/platform-specs/slack/event_wrapper.schema.json"
    ))
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(&reaction("Ev1"))
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

async fn url_verification_is_answered(app: TestApp) {
    let s = start(&app).await;
    let r = s.signed(&app, &json!({"token": "XXYYZZ", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}), None).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
}

async fn an_event_is_committed_before_the_ack_and_retries_add_nothing(app: TestApp) {
    let s = start(&app).await;
    let r = s.signed(&app, &reaction("Ev123"), None).await;
    assert_eq!(r.status(), 200);
    let rows = app.desk.store.inbox(None, 0).await.unwrap();
    assert_eq!(rows.len(), 1, "stored before the 200");
    assert_eq!(rows[0].key, "slack:event:Ev123");
    assert_eq!(rows[0].payload["event"]["item"]["ts"], "1772442000.000100");
    for n in ["1", "2", "3"] {
        assert_eq!(
            s.signed(&app, &reaction("Ev123"), Some(n)).await.status(),
            200
        );
    }
    assert_eq!(
        app.desk.store.inbox(None, 0).await.unwrap().len(),
        1,
        "Slack's retries create nothing"
    );
    // An event type the adapter does not act on is acknowledged and not stored.
    let mut other = reaction("Ev124");
    other["event"]["type"] = json!("app_home_opened");
    assert_eq!(s.signed(&app, &other, None).await.status(), 200);
    assert_eq!(app.desk.store.inbox(None, 0).await.unwrap().len(), 1);
}

async fn bad_signatures_stale_requests_oversize_and_malformed_bodies_are_refused(app: TestApp) {
    let s = start(&app).await;
    let secret = Secret::new(TEST_SIGNING_SECRET);
    let body = serde_json::to_vec(&reaction("Ev9")).unwrap();
    let now = app.desk.now().timestamp();
    let ts = now.to_string();

    let wrong = sign(&Secret::new("not-the-secret"), &ts, &body);
    assert_eq!(
        s.post(body.clone(), &ts, Some(wrong), None).await.status(),
        401,
        "wrong secret"
    );
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(
        s.post(tampered, &ts, Some(sign(&secret, &ts, &body)), None)
            .await
            .status(),
        401,
        "changed body"
    );
    let old = (now - 301).to_string();
    assert_eq!(
        s.post(body.clone(), &old, Some(sign(&secret, &old, &body)), None)
            .await
            .status(),
        401,
        "stale timestamp"
    );
    assert_eq!(
        s.post(body.clone(), &ts, None, None).await.status(),
        401,
        "no signature"
    );
    assert_eq!(
        s.post(body.clone(), &ts, Some("v0=nothex".into()), None)
            .await
            .status(),
        401,
        "garbage signature"
    );

    let mut big = reaction("Ev10");
    big["padding"] = json!("x".repeat(300 * 1024));
    let big = serde_json::to_vec(&big).unwrap();
    assert_eq!(
        s.post(big.clone(), &ts, Some(sign(&secret, &ts, &big)), None)
            .await
            .status(),
        413,
        "oversize body"
    );

    let junk = b"{not json".to_vec();
    assert_eq!(
        s.post(junk.clone(), &ts, Some(sign(&secret, &ts, &junk)), None)
            .await
            .status(),
        400,
        "malformed JSON"
    );
    let no_id =
        serde_json::to_vec(&json!({"type": "event_callback", "event": {"type": "reaction_added"}}))
            .unwrap();
    assert_eq!(
        s.post(no_id.clone(), &ts, Some(sign(&secret, &ts, &no_id)), None)
            .await
            .status(),
        400,
        "no event_id"
    );

    assert!(
        app.desk.store.inbox(None, 0).await.unwrap().is_empty(),
        "nothing refused was stored"
    );
}

crate::on_both_backends!(
    url_verification_is_answered,
    an_event_is_committed_before_the_ack_and_retries_add_nothing,
    bad_signatures_stale_requests_oversize_and_malformed_bodies_are_refused,
);
