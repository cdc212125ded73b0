//! The fakes enforce Slack's and Discord's rate limits when told to, answer rejected calls
//! exactly as the platforms do (status, headers, body), and behave as before when not told.
//!
//! Real time throughout (the fakes use `std::time::Instant`): tests that wait shrink the
//! model's intervals through its pub fields instead of waiting out the real ones.

use std::time::Duration;

use axum::http::HeaderMap;
use sandbox::discord::FakeDiscord;
use sandbox::limits::{DiscordLimits, Gcra, SlackLimits, Window};
use sandbox::slack::FakeSlack;
use serde_json::{json, Value};

const SLACK_TOKEN: &str = "xoxb-limits";
const DISCORD_TOKEN: &str = "limits-token";

/// One HTTP request over loopback; answers (status, headers, JSON body or `Null`).
async fn send(method: &str, url: &str, auth: &str, body: Value) -> (u16, HeaderMap, Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<axum::body::Body>();
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", auth);
    let body = if body.is_null() {
        axum::body::Body::empty()
    } else {
        req = req.header("content-type", "application/json");
        axum::body::Body::from(body.to_string())
    };
    let resp = client.request(req.body(body).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(axum::body::Body::new(resp.into_body()), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("header {name} in {h:?}"))
        .to_str()
        .unwrap()
}

fn num(h: &HeaderMap, name: &str) -> f64 {
    header(h, name).parse().unwrap()
}

async fn slack() -> FakeSlack {
    let fake = FakeSlack::start(SLACK_TOKEN).await.unwrap();
    fake.add_channel("C1", "one", true);
    fake.add_channel("C2", "two", true);
    fake.seed_message("C1", "1772440000.000100", "U1", "parent", None);
    fake
}

async fn slack_call(fake: &FakeSlack, method: &str, args: Value) -> (u16, HeaderMap, Value) {
    send(
        "POST",
        &format!("{}/{method}", fake.api_url),
        &format!("Bearer {SLACK_TOKEN}"),
        args,
    )
    .await
}

async fn post(fake: &FakeSlack, channel: &str) -> (u16, HeaderMap, Value) {
    slack_call(
        fake,
        "chat.postMessage",
        json!({ "channel": channel, "text": "hi" }),
    )
    .await
}

async fn replies(fake: &FakeSlack) -> (u16, HeaderMap, Value) {
    slack_call(
        fake,
        "conversations.replies",
        json!({ "channel": "C1", "ts": "1772440000.000100" }),
    )
    .await
}

/// Slack's 429: `Retry-After` of at least a second and `{"ok": false, "error": "ratelimited"}`.
fn assert_slack_429((status, headers, body): &(u16, HeaderMap, Value)) -> u64 {
    assert_eq!(*status, 429, "{body}");
    assert_eq!(*body, json!({ "ok": false, "error": "ratelimited" }));
    assert!(header(headers, "content-type").starts_with("application/json"));
    let retry: u64 = header(headers, "retry-after").parse().unwrap();
    assert!(retry >= 1);
    retry
}

#[tokio::test]
async fn slack_without_limits_never_answers_429() {
    let fake = slack().await;
    for _ in 0..20 {
        let (status, _, body) = post(&fake, "C1").await;
        assert_eq!((status, &body["ok"]), (200, &json!(true)));
        let (status, _, body) = replies(&fake).await;
        assert_eq!((status, &body["ok"]), (200, &json!(true)));
    }
    assert!(fake.rate_limited().is_empty());
    assert_eq!(fake.calls_by_method()["chat.postMessage"], 20);
    assert_eq!(fake.calls_by_method()["conversations.replies"], 20);
}

#[tokio::test]
async fn slack_posts_are_limited_per_channel_with_a_burst_of_three() {
    let fake = slack().await;
    fake.set_limits(Some(SlackLimits::default()));
    for _ in 0..3 {
        let (status, _, body) = post(&fake, "C1").await;
        assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
    }
    let retry = assert_slack_429(&post(&fake, "C1").await);
    assert_eq!(retry, 1, "one message per second per channel");
    // Another channel has its own allowance.
    let (status, _, body) = post(&fake, "C2").await;
    assert_eq!((status, &body["ok"]), (200, &json!(true)));
    assert_eq!(
        fake.rate_limited(),
        [("chat.postMessage C1".to_string(), 1)].into()
    );
    assert_eq!(fake.calls_by_method()["chat.postMessage"], 5);
    assert_eq!(
        fake.bot_messages().len(),
        4,
        "the rejected post was not stored"
    );
    // Turning the limits off again ends the rejections.
    fake.set_limits(None);
    assert_eq!(post(&fake, "C1").await.0, 200);
}

#[tokio::test]
async fn slack_posts_pass_again_after_the_interval() {
    let fake = slack().await;
    fake.set_limits(Some(SlackLimits {
        post_per_channel: Gcra {
            interval: Duration::from_millis(200),
            burst: 3,
        },
        ..SlackLimits::default()
    }));
    for _ in 0..3 {
        assert_eq!(post(&fake, "C1").await.0, 200);
    }
    assert_slack_429(&post(&fake, "C1").await);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(post(&fake, "C1").await.0, 200);
    assert_slack_429(&post(&fake, "C1").await);
    assert_eq!(fake.rate_limited()["chat.postMessage C1"], 2);
}

#[tokio::test]
async fn slack_tier_three_methods_are_limited_beyond_their_burst() {
    let fake = slack().await;
    fake.set_limits(Some(SlackLimits::default()));
    // Tier 3 by default: 50 per minute, burst 5.
    for _ in 0..5 {
        assert_eq!(replies(&fake).await.0, 200);
    }
    let retry = assert_slack_429(&replies(&fake).await);
    assert_eq!(retry, 2, "60 s / 50 = 1.2 s, rounded up");
    // The limit is per method: another Tier 3 method still passes.
    let (status, _, body) =
        slack_call(&fake, "conversations.info", json!({ "channel": "C1" })).await;
    assert_eq!((status, &body["ok"]), (200, &json!(true)));
    assert_eq!(
        fake.rate_limited(),
        [("conversations.replies".to_string(), 1)].into()
    );
}

#[tokio::test]
async fn slack_tier_limits_recover_after_the_interval() {
    let fake = slack().await;
    fake.set_limits(Some(SlackLimits {
        tier3: Gcra {
            interval: Duration::from_millis(200),
            burst: 2,
        },
        ..SlackLimits::default()
    }));
    assert_eq!(replies(&fake).await.0, 200);
    assert_eq!(replies(&fake).await.0, 200);
    assert_slack_429(&replies(&fake).await);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(replies(&fake).await.0, 200);
    assert_slack_429(&replies(&fake).await);
    assert_eq!(fake.calls_by_method()["conversations.replies"], 5);
}

async fn discord() -> FakeDiscord {
    let fake = FakeDiscord::start(DISCORD_TOKEN).await.unwrap();
    fake.add_channel("900000000000000001", "one");
    fake.add_channel("900000000000000002", "two");
    fake
}

async fn discord_call(fake: &FakeDiscord, method: &str, path: &str) -> (u16, HeaderMap, Value) {
    let body = if method == "POST" {
        json!({ "content": "hi" })
    } else {
        Value::Null
    };
    send(
        method,
        &format!("{}/api/v10/{path}", fake.base_url),
        &format!("Bot {DISCORD_TOKEN}"),
        body,
    )
    .await
}

async fn create(fake: &FakeDiscord, channel: &str) -> (u16, HeaderMap, Value) {
    discord_call(fake, "POST", &format!("channels/{channel}/messages")).await
}

/// The required fields of Discord's `RatelimitedResponse` (with those of `Error` it extends),
/// read from the platform's OpenAPI spec so the fake follows the spec, not our memory of it.
fn ratelimited_required() -> Vec<String> {
    let spec: Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/platform-specs/discord/openapi.json"
    ))
    .unwrap();
    let schemas = &spec["components"]["schemas"];
    let mut required = Vec::new();
    for part in schemas["RatelimitedResponse"]["allOf"].as_array().unwrap() {
        let part = match part["$ref"].as_str() {
            Some(r) => &schemas[r.trim_start_matches("#/components/schemas/")],
            None => part,
        };
        for f in part["required"].as_array().unwrap() {
            required.push(f.as_str().unwrap().to_string());
        }
    }
    required
}

fn assert_discord_429_body(body: &Value, global: bool) -> f64 {
    for field in ratelimited_required() {
        assert!(body.get(&field).is_some(), "{field} in {body}");
    }
    assert_eq!(body["message"], "You are being rate limited.");
    assert_eq!(body["code"], 0);
    assert_eq!(body["global"], global);
    let retry = body["retry_after"].as_f64().unwrap();
    assert!(retry > 0.0, "{body}");
    retry
}

#[tokio::test]
async fn discord_without_limits_answers_as_before() {
    let fake = discord().await;
    for _ in 0..20 {
        let (status, headers, _) = create(&fake, "900000000000000001").await;
        assert_eq!(status, 200);
        // The fixed headers the fake always sent.
        assert_eq!(header(&headers, "x-ratelimit-remaining"), "49");
        assert_eq!(header(&headers, "x-ratelimit-bucket"), "f4k3bucket");
    }
    assert!(fake.rate_limited().is_empty());
    assert_eq!(fake.invalid_requests(), 0);
}

#[tokio::test]
async fn discord_message_creates_are_limited_per_channel() {
    let fake = discord().await;
    fake.set_limits(Some(DiscordLimits::default()));
    let mut bucket = None;
    for expected in (0..5).rev() {
        let (status, h, body) = create(&fake, "900000000000000001").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&h, "x-ratelimit-limit"), "5");
        assert_eq!(header(&h, "x-ratelimit-remaining"), expected.to_string());
        let after = num(&h, "x-ratelimit-reset-after");
        assert!(after > 0.0 && after <= 5.0, "{after}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let reset = num(&h, "x-ratelimit-reset");
        assert!(
            (reset - (now + after)).abs() < 1.0,
            "{reset} vs {now} + {after}"
        );
        let b = header(&h, "x-ratelimit-bucket").to_string();
        assert_ne!(b, "f4k3bucket");
        assert_eq!(bucket.get_or_insert(b.clone()), &b, "one bucket per route");
    }
    let (status, h, body) = create(&fake, "900000000000000001").await;
    assert_eq!(status, 429, "{body}");
    let retry = assert_discord_429_body(&body, false);
    assert!(retry <= 5.0);
    assert_eq!(header(&h, "x-ratelimit-scope"), "user");
    assert_eq!(header(&h, "x-ratelimit-remaining"), "0");
    assert_eq!(header(&h, "x-ratelimit-limit"), "5");
    assert_eq!(Some(header(&h, "x-ratelimit-bucket")), bucket.as_deref());
    assert!(num(&h, "x-ratelimit-reset-after") <= 5.0);
    let whole: u64 = header(&h, "retry-after").parse().unwrap();
    assert_eq!(whole, retry.ceil() as u64);
    assert!(h.get("x-ratelimit-global").is_none());
    assert!(header(&h, "content-type").starts_with("application/json"));

    // Another channel is another bucket instance: a fresh window.
    let (status, h, _) = create(&fake, "900000000000000002").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-ratelimit-remaining"), "4");
    // Other routes on the channel are in the default bucket, not this one.
    let (status, h, _) = discord_call(&fake, "GET", "channels/900000000000000001/messages/1").await;
    assert_eq!(status, 404);
    assert_eq!(header(&h, "x-ratelimit-limit"), "50");

    assert_eq!(
        fake.rate_limited(),
        [(
            "POST /channels/{channel_id}/messages 900000000000000001".to_string(),
            1
        )]
        .into()
    );
    assert_eq!(fake.invalid_requests(), 1);
    assert_eq!(
        fake.calls_by_method()["POST /channels/{channel_id}/messages"],
        7
    );
    assert_eq!(fake.sent().len(), 6, "the rejected create was not stored");
}

#[tokio::test]
async fn discord_windows_restart_after_per() {
    let fake = discord().await;
    fake.set_limits(Some(DiscordLimits {
        create_message: Window {
            limit: 2,
            per: Duration::from_millis(300),
        },
        ..DiscordLimits::default()
    }));
    let ch = "900000000000000001";
    assert_eq!(create(&fake, ch).await.0, 200);
    assert_eq!(create(&fake, ch).await.0, 200);
    let (status, _, body) = create(&fake, ch).await;
    assert_eq!(status, 429);
    assert!(assert_discord_429_body(&body, false) <= 0.3);
    tokio::time::sleep(Duration::from_millis(320)).await;
    let (status, h, _) = create(&fake, ch).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-ratelimit-remaining"), "1");
}

#[tokio::test]
async fn discord_global_limit_answers_a_global_429() {
    let fake = discord().await;
    fake.set_limits(Some(DiscordLimits {
        global: Window {
            limit: 3,
            per: Duration::from_secs(1),
        },
        ..DiscordLimits::default()
    }));
    for _ in 0..3 {
        assert_eq!(discord_call(&fake, "GET", "users/@me").await.0, 200);
    }
    let (status, h, body) = create(&fake, "900000000000000001").await;
    assert_eq!(status, 429, "{body}");
    assert_discord_429_body(&body, true);
    assert_eq!(header(&h, "x-ratelimit-global"), "true");
    assert_eq!(header(&h, "x-ratelimit-scope"), "global");
    assert!(header(&h, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(fake.rate_limited(), [("global".to_string(), 1)].into());
    assert_eq!(fake.invalid_requests(), 1);
    // The rejected create counted in no bucket: once the global window has passed, the
    // channel still has its whole allowance.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let (status, h, _) = create(&fake, "900000000000000001").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-ratelimit-remaining"), "4");
}

#[tokio::test]
async fn discord_counts_invalid_requests() {
    let fake = discord().await;
    let (status, _, _) = send(
        "GET",
        &format!("{}/api/v10/users/@me", fake.base_url),
        "Bot wrong",
        Value::Null,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(fake.invalid_requests(), 1);
    assert_eq!(fake.calls_by_method()["GET /users/@me"], 1);
}

#[test]
fn lower_bounds_follow_the_models() {
    let slack = SlackLimits::default();
    assert_eq!(slack.lower_bound_for_posts(&[50]), Duration::from_secs(47));
    assert_eq!(slack.lower_bound_for_posts(&[2, 3]), Duration::ZERO);
    assert_eq!(
        slack.lower_bound_for_posts(&[4, 10]),
        Duration::from_secs(7)
    );
    let discord = DiscordLimits::default();
    assert_eq!(discord.lower_bound_for_posts(&[5]), Duration::ZERO);
    assert_eq!(
        discord.lower_bound_for_posts(&[11]),
        Duration::from_secs(10)
    );
    assert_eq!(
        discord.lower_bound_for_posts(&[1; 51]),
        Duration::from_secs(1),
        "51 channels of one post each wait for the global window"
    );
}
