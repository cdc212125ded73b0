//! `POST /discord/interactions`: Discord's HTTP interactions endpoint, the alternative to
//! receiving interactions over the gateway (an application uses one or the other: once its
//! Interactions Endpoint URL is set, Discord stops sending them over the gateway).
//!
//! Owns the Ed25519 check (`X-Signature-Ed25519` over `X-Signature-Timestamp` + body, with
//! `DISCORD_PUBLIC_KEY`, by ed25519-dalek's strict verification; a weak key is refused), refusing timestamps more than five minutes away and answering every
//! bad signature with 401 (Discord sends bad ones on purpose to check this). Never logs the
//! key. The answer itself is [`DiscordInteractions::respond`]'s.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use ed25519_dalek::{Signature, VerifyingKey};

use super::interact::{DiscordInteractions, InteractError};
use crate::config::Secret;
use crate::core::clock::Clock;

/// How far a request's timestamp may be from now.
const WINDOW_SECONDS: i64 = 300;

/// Why the endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// `DISCORD_PUBLIC_KEY` is not 64 hex digits of a valid Ed25519 key.
    #[error("DISCORD_PUBLIC_KEY is not an Ed25519 public key (64 hex digits, as the Developer Portal shows it under General Information)")]
    BadKey,
}

/// What the endpoint needs.
#[derive(Clone)]
pub struct EndpointState {
    interactions: DiscordInteractions,
    key: VerifyingKey,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EndpointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointState").finish_non_exhaustive()
    }
}

impl EndpointState {
    /// Checks `public_key` and builds the state.
    pub fn new(
        interactions: DiscordInteractions,
        public_key: &Secret,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, EndpointError> {
        let bytes: [u8; 32] = hex::decode(public_key.expose().trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(EndpointError::BadKey)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| EndpointError::BadKey)?;
        if key.is_weak() {
            // A small-order key verifies forged signatures; Discord never issues one.
            return Err(EndpointError::BadKey);
        }
        Ok(Self {
            interactions,
            key,
            clock,
        })
    }
}

/// The route, with its state.
pub fn router(state: EndpointState) -> Router {
    Router::new()
        .route("/discord/interactions", post(interaction))
        .with_state(state)
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the request is Discord's: a good signature over a recent timestamp.
fn verified(s: &EndpointState, headers: &HeaderMap, body: &[u8]) -> Result<(), &'static str> {
    let signature = header(headers, "x-signature-ed25519").ok_or("no signature")?;
    let timestamp = header(headers, "x-signature-timestamp").ok_or("no timestamp")?;
    let at: i64 = timestamp.parse().map_err(|_| "unreadable timestamp")?;
    // abs_diff cannot overflow, so a timestamp near i64::MIN cannot wrap into the window.
    if s.clock.now().timestamp().abs_diff(at) > WINDOW_SECONDS.unsigned_abs() {
        return Err("timestamp outside the five-minute window");
    }
    let signature: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("unreadable signature")?;
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    // The strict check also refuses non-canonical and small-order signature parts, which the
    // lenient one (serenity's `Verifier`) lets through.
    s.key
        .verify_strict(&signed, &Signature::from_bytes(&signature))
        .map_err(|_| "signature does not match")
}

async fn interaction(State(s): State<EndpointState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(why) = verified(&s, &headers, &body) {
        tracing::info!(
            reason = why,
            "refused a Discord interaction with a bad signature"
        );
        return (StatusCode::UNAUTHORIZED, "invalid request signature").into_response();
    }
    let payload: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, "the body is not JSON").into_response(),
    };
    match s.interactions.respond(&payload).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e @ InteractError::Malformed(_)) => {
            tracing::warn!(error = %e, "a Discord interaction was not understood");
            (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(e @ InteractError::Internal(_)) => {
            tracing::error!(error = %e, "a Discord interaction failed on our side");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
        }
    }
}
