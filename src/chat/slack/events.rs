//! Slack's HTTP endpoints: the Events API (`POST /slack/events`: verify, store, acknowledge),
//! slash commands (`POST /slack/commands`) and interactivity (`POST /slack/interactivity`),
//! all signed the same way; the latter two are answered by `interact`.
//!
//! Owns Slack's request signing (`v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`, five-minute
//! window, constant-time comparison) and the answers Slack expects: 401 for any signature
//! failure, 413 for an oversize body, 400 for malformed JSON or a signed payload that is not
//! what Slack sends (500 only for our own failures), the `url_verification` challenge,
//! and 200 only once the event is committed to the inbox (so a crash after the ack loses
//! nothing, and Slack's retries of the same `event_id` create nothing). Never logs the secret
//! or the signature. What an Events API payload comes to (`accept`) is decided here for both
//! connection modes, so Socket Mode stores exactly what HTTP mode would.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::interact::{Interactions, SlashCommand};
use super::source::thread_parent;
use crate::config::Secret;
use crate::core::clock::Clock;
use crate::core::types::{ChannelRef, Platform};
use crate::store::{DynStore, StoreError};

/// Largest request body accepted; Slack's event payloads are a few kilobytes.
pub const MAX_BODY: usize = 256 * 1024;

/// How old a signed request may be before it is refused as a possible replay.
pub const MAX_AGE_SECONDS: i64 = 300;

/// Why a request's signature was refused (all answered with 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A header is missing.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// The timestamp is not a number.
    #[error("timestamp is not a number")]
    BadTimestamp,
    /// The timestamp is more than five minutes away from now.
    #[error("timestamp is {0} s away from now")]
    Stale(i64),
    /// The signature is not `v0=` and hex.
    #[error("signature is malformed")]
    Malformed,
    /// The signature does not match.
    #[error("signature does not match")]
    Mismatch,
}

/// Checks Slack's `X-Slack-Signature` for `body` sent at `timestamp`.
pub fn verify(
    secret: &Secret,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    // abs_diff cannot overflow: a timestamp near i64::MIN must be refused, not wrap into the
    // window (nor panic a debug build) before the signature is even checked.
    if now.timestamp().abs_diff(ts) > MAX_AGE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale(now.timestamp().saturating_sub(ts)));
    }
    let hex_sig = signature
        .strip_prefix("v0=")
        .ok_or(SignatureError::Malformed)?;
    let given = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

/// The signature Slack would send for `body` at `timestamp` (for the sandbox and tests).
pub fn sign(secret: &Secret, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// What the endpoint needs.
#[derive(Clone)]
pub struct EventsState {
    /// Where events are committed.
    pub store: DynStore,
    /// Time, for the replay window.
    pub clock: Arc<dyn Clock>,
    /// `SLACK_SIGNING_SECRET`.
    pub secret: Secret,
    /// Slash commands and interactivity, when the bot token is set too.
    pub interactions: Option<Interactions>,
}

impl std::fmt::Debug for EventsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsState")
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

/// `POST /slack/events`, `/slack/commands` and `/slack/interactivity`, with the body limit.
pub fn router(state: EventsState) -> Router {
    Router::new()
        .route("/slack/events", post(events))
        .route("/slack/commands", post(commands))
        .route("/slack/interactivity", post(interactivity))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, SignatureError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(SignatureError::Missing(name))
}

/// Event types the adapter acts on; others are acknowledged and dropped on purpose.
const HANDLED: &[&str] = &["reaction_added"];

/// `message` events kept: edits and deletions, recorded on the flagged message's ticket.
const MESSAGE_SUBTYPES: &[&str] = &["message_changed", "message_deleted"];

/// Whether an Events API payload is one the adapter acts on (in either connection mode):
/// flags, edits and deletions always; a person's thread reply only when the thread's parent
/// has a ticket (it may be the first response), so ordinary chatter never fills the inbox.
pub async fn keep(store: &DynStore, payload: &serde_json::Value) -> Result<bool, StoreError> {
    let event = &payload["event"];
    let kind = event["type"].as_str().unwrap_or_default();
    let subtype = event["subtype"].as_str();
    if HANDLED.contains(&kind) {
        return Ok(true);
    }
    if kind != "message" {
        return Ok(false);
    }
    if let Some(sub) = subtype {
        return Ok(MESSAGE_SUBTYPES.contains(&sub));
    }
    let (Some(channel), Some(parent)) = (event["channel"].as_str(), thread_parent(event)) else {
        return Ok(false);
    };
    if event["bot_id"].is_string() || event["user"].as_str().is_none() {
        return Ok(false);
    }
    let channel = ChannelRef::new(Platform::Slack, channel);
    Ok(store.ticket_of_thread(&channel, parent).await?.is_some())
}

/// Checks a request's signature, logging why one is refused (never the secret).
fn verified(s: &EventsState, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let checked = header(headers, "x-slack-request-timestamp").and_then(|ts| {
        let sig = header(headers, "x-slack-signature")?;
        verify(&s.secret, ts, body, sig, s.clock.now())
    });
    if let Err(e) = &checked {
        tracing::info!(reason = %e, "refused a Slack request with a bad signature");
    }
    checked
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "invalid signature").into_response()
}

/// The answer when a command or interaction arrives without the bot token to act on it.
fn not_connected() -> Response {
    Json(not_connected_reply()).into_response()
}

/// The reply to a command or interaction that arrives without the bot token to act on it
/// (in either connection mode), logging why.
pub fn not_connected_reply() -> serde_json::Value {
    tracing::warn!("a Slack command or interaction arrived, but SLACK_BOT_TOKEN is not set");
    serde_json::json!({
        "response_type": "ephemeral",
        "text": "Switchboard is not connected to Slack's Web API yet (SLACK_BOT_TOKEN is missing); ask your admin."
    })
}

/// `POST /slack/commands`: a signed, form-encoded slash command.
async fn commands(State(s): State<EventsState>, headers: HeaderMap, body: Bytes) -> Response {
    if verified(&s, &headers, &body).is_err() {
        return unauthorized();
    }
    let Some(handler) = &s.interactions else {
        return not_connected();
    };
    match SlashCommand::from_form(&body) {
        Ok(cmd) => Json(handler.command(cmd).await).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

/// `POST /slack/interactivity`: a signed form whose `payload` field is the interaction JSON.
async fn interactivity(State(s): State<EventsState>, headers: HeaderMap, body: Bytes) -> Response {
    if verified(&s, &headers, &body).is_err() {
        return unauthorized();
    }
    let Some(handler) = &s.interactions else {
        return not_connected();
    };
    let payload = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| serde_json::from_str::<serde_json::Value>(&v).ok());
    let Some(payload) = payload else {
        tracing::warn!("refused a signed Slack interaction whose form has no JSON payload");
        return (StatusCode::BAD_REQUEST, "form has no JSON payload").into_response();
    };
    match handler.interaction(&payload).await {
        Ok(Some(body)) => Json(body).into_response(),
        Ok(None) => StatusCode::OK.into_response(),
        // Signed but not what Slack sends: the sender's fault, and retrying cannot help.
        Err(e) if e.is_malformed() => {
            tracing::warn!(error = %e, "refused a malformed Slack interaction");
            (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "could not handle a Slack interaction");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
        }
    }
}

/// Why an Events API payload was not committed; the two kinds are answered differently
/// because only one of them can succeed when Slack sends it again.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Not what Slack sends: HTTP mode answers 400, Socket Mode acknowledges and drops it.
    #[error("{0}")]
    Malformed(&'static str),
    /// Our own failure: HTTP mode answers 500 and Socket Mode does not acknowledge, so Slack
    /// sends the event again and nothing is lost.
    #[error("could not store a Slack event: {0}")]
    Internal(#[from] StoreError),
}

/// What became of an Events API payload that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// A `url_verification` request: answer with this challenge.
    Challenge(String),
    /// Committed to the inbox.
    Stored,
    /// Already in the inbox (Slack's retry of an event we have).
    Duplicate,
    /// Nothing the adapter acts on; acknowledged and dropped on purpose.
    Ignored,
}

/// Accepts an Events API payload in either connection mode: answers `url_verification`,
/// commits an `event_callback` the adapter acts on to the inbox, ignores the rest.
pub async fn accept(
    store: &DynStore,
    clock: &dyn Clock,
    interactions: Option<&Interactions>,
    payload: &serde_json::Value,
) -> Result<Accepted, EventError> {
    match payload["type"].as_str() {
        Some("url_verification") => match payload["challenge"].as_str() {
            Some(c) => Ok(Accepted::Challenge(c.to_string())),
            None => Err(EventError::Malformed(
                "url_verification without a challenge",
            )),
        },
        Some("event_callback") => {
            let Some(event_id) = payload["event_id"].as_str() else {
                return Err(EventError::Malformed("event_callback without an event_id"));
            };
            if let Some(i) = interactions {
                i.api().recent().observe(payload);
            }
            if !keep(store, payload).await? {
                return Ok(Accepted::Ignored);
            }
            let fresh = store
                .inbox_insert(
                    &format!("slack:event:{event_id}"),
                    super::source::order_key(payload).as_deref(),
                    "slack",
                    payload,
                    clock.now(),
                )
                .await?;
            Ok(if fresh {
                Accepted::Stored
            } else {
                Accepted::Duplicate
            })
        }
        Some(_) => Ok(Accepted::Ignored),
        None => Err(EventError::Malformed("payload has no type")),
    }
}

async fn events(State(s): State<EventsState>, headers: HeaderMap, body: Bytes) -> Response {
    if verified(&s, &headers, &body).is_err() {
        return unauthorized();
    }
    let payload: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, "body is not JSON").into_response(),
    };
    match accept(&s.store, &*s.clock, s.interactions.as_ref(), &payload).await {
        Ok(Accepted::Challenge(c)) => Json(serde_json::json!({ "challenge": c })).into_response(),
        Ok(Accepted::Duplicate) => {
            let retry = headers
                .get("x-slack-retry-num")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("0");
            tracing::debug!(
                event_id = payload["event_id"].as_str(),
                retry,
                "Slack redelivered an event we already have"
            );
            StatusCode::OK.into_response()
        }
        Ok(Accepted::Stored | Accepted::Ignored) => StatusCode::OK.into_response(),
        Err(EventError::Malformed(why)) => (StatusCode::BAD_REQUEST, why).into_response(),
        Err(e @ EventError::Internal(_)) => {
            // Not acknowledged: Slack retries, and the event is not lost.
            tracing::error!(error = %e, event_id = payload["event_id"].as_str(), "could not accept a Slack event");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_531_420_618, 0).unwrap()
    }

    #[test]
    fn slacks_documented_example_verifies() {
        // The example from Slack's "Verifying requests from Slack" guide.
        let secret = Secret::new("8f742231b10e8888abcd99yyyzzz85a5");
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(verify(&secret, "1531420618", body, sig, now()), Ok(()));
        assert_eq!(sign(&secret, "1531420618", body), sig);
    }

    #[test]
    fn timestamps_at_the_ends_of_i64_are_stale_not_wrapped() {
        let secret = Secret::new("s3cret");
        let body = br#"{"type":"event_callback"}"#;
        // Validly signed, 2^63 seconds before now: `now - ts` overflows i64.
        let far = (now().timestamp() as i128 - (1i128 << 63)) as i64;
        let sig = sign(&secret, &far.to_string(), body);
        assert!(matches!(
            verify(&secret, &far.to_string(), body, &sig, now()),
            Err(SignatureError::Stale(_))
        ));
        for ts in [i64::MIN, i64::MAX] {
            let ts = ts.to_string();
            assert!(matches!(
                verify(&secret, &ts, body, "v0=00", now()),
                Err(SignatureError::Stale(_))
            ));
        }
    }

    #[test]
    fn tampering_staleness_and_garbage_are_refused() {
        let secret = Secret::new("s3cret");
        let body = br#"{"type":"event_callback"}"#;
        let sig = sign(&secret, "1531420618", body);
        assert_eq!(
            verify(&secret, "1531420618", b"{}", &sig, now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&Secret::new("other"), "1531420618", body, &sig, now()),
            Err(SignatureError::Mismatch)
        );
        let old = sign(&secret, "1531420000", body);
        assert_eq!(
            verify(&secret, "1531420000", body, &old, now()),
            Err(SignatureError::Stale(618))
        );
        assert_eq!(
            verify(&secret, "soon", body, &sig, now()),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            verify(&secret, "1531420618", body, "v1=abc", now()),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&secret, "1531420618", body, "v0=zz", now()),
            Err(SignatureError::Malformed)
        );
    }
}
