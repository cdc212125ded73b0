//! Outgoing calls that never answer: each platform client gives up after its timeout with a
//! transient error (which the outbox retries), instead of holding the row forever.

use std::time::{Duration, Instant};

use sandbox::discord::FakeDiscord;
use sandbox::slack::FakeSlack;
use switchboard::chat::discord::client::DiscordApi;
use switchboard::chat::slack::client::SlackApi;
use switchboard::chat::{ChatError, Delivery};
use switchboard::config::Secret;
use switchboard::core::message::{Message, Target};
use switchboard::core::types::ChannelRef;

const SLACK_TOKEN: &str = "xoxb-sandbox-token";
const DISCORD_TOKEN: &str = "discord-sandbox-token";

fn target(channel: &str) -> Target {
    Target::Channel {
        channel: channel.parse::<ChannelRef>().unwrap(),
        thread: None,
    }
}

#[tokio::test]
async fn a_slack_call_that_never_answers_is_a_transient_error_after_the_timeout() {
    let fake = FakeSlack::start(SLACK_TOKEN).await.unwrap();
    fake.add_channel("CHELP", "help", true);
    fake.set_latency(Duration::from_secs(30));
    let api = SlackApi::new(&fake.api_url, &Secret::new(SLACK_TOKEN))
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let r = api
        .post(&target("slack:CHELP"), &Message::text("hello"), "outbox:1")
        .await;
    let took = started.elapsed();
    match r {
        Err(ChatError::Transient(why)) => {
            assert!(why.contains("chat.postMessage"), "{why}");
            assert!(why.contains("did not answer"), "{why}");
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Once Slack answers in time again, the same client works.
    fake.set_latency(Duration::ZERO);
    assert!(api.whoami().await.is_ok());
}

#[tokio::test]
async fn a_discord_call_that_never_answers_is_a_transient_error_after_the_timeout() {
    let fake = FakeDiscord::start(DISCORD_TOKEN).await.unwrap();
    fake.set_latency(Duration::from_secs(30));
    let client = DiscordApi::client_builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let api = DiscordApi::with_client(&fake.base_url, &Secret::new(DISCORD_TOKEN), client);
    let started = Instant::now();
    let r = api.whoami().await;
    let took = started.elapsed();
    assert!(matches!(r, Err(ChatError::Transient(_))), "{r:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connection to it
/// never opens (as with an address that does not answer), without leaving loopback.
async fn a_port_that_never_accepts() -> (tokio::net::TcpListener, Vec<std::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    (listener, held)
}

#[tokio::test]
async fn a_discord_connection_that_never_opens_fails_after_the_connect_timeout() {
    let (listener, _held) = a_port_that_never_accepts().await;
    let addr = listener.local_addr().unwrap();
    let client = DiscordApi::client_builder().build().unwrap();
    let api = DiscordApi::with_client(&format!("http://{addr}"), &Secret::new("t"), client);
    let started = Instant::now();
    let r = api.whoami().await;
    let took = started.elapsed();
    assert!(matches!(r, Err(ChatError::Transient(_))), "{r:?}");
    // The connect timeout (5 s), not the whole call's 15 s.
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(10),
        "took {took:?}"
    );
}
