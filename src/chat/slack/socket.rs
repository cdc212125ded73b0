//! Socket Mode: Slack pushes events over a WebSocket the bot opens, so no public URL is needed.
//!
//! Owns the slack-morphism Socket Mode listener: each pushed event the adapter acts on is
//! committed to the inbox before the envelope is acknowledged (a failed commit leaves it
//! unacknowledged, so Slack sends it again); slash commands and interactions are answered in
//! the envelope's acknowledgement, as in HTTP mode; an envelope or interaction that is not what
//! Slack sends is acknowledged, logged as a warning and dropped (a resend would fail the same
//! way); reconnection after drops and `disconnect`
//! frames is slack-morphism's, with our timings.

use std::sync::Arc;

use slack_morphism::errors::{SlackClientError, SlackClientProtocolError};
use slack_morphism::prelude::*;

use super::client::{classify, Connector, SlackApi};
use super::events::keep;
use super::interact::{Interactions, SlashCommand};
use crate::chat::ChatError;
use crate::config::Secret;
use crate::core::clock::Clock;
use crate::store::DynStore;

/// What the push callback needs; slack-morphism hands it over as user state.
struct Inbox {
    store: DynStore,
    clock: Arc<dyn Clock>,
    interactions: Option<Interactions>,
}

impl Inbox {
    /// Records that Socket Mode works (an envelope arrived and was handled).
    fn healthy(&self) {
        if let Some(i) = &self.interactions {
            i.desk()
                .telemetry
                .adapter_ok("slack", "socket_mode", self.clock.now());
        }
    }

    /// Records Socket Mode's connection trouble.
    fn failing(&self, reason: &str) {
        if let Some(i) = &self.interactions {
            i.desk()
                .telemetry
                .adapter_failed("slack", "socket_mode", self.clock.now(), reason);
        }
    }
}

/// Records that Socket Mode works, from a callback's state.
fn healthy(states: &SlackClientEventsUserStateStorage) {
    if let Some(inbox) = states.get_user_state::<Inbox>() {
        inbox.healthy();
    }
}

fn interactions_of(states: &SlackClientEventsUserStateStorage) -> Result<Interactions, String> {
    states
        .get_user_state::<Inbox>()
        .and_then(|i| i.interactions.clone())
        .ok_or_else(|| "Socket Mode has no interaction handler".to_string())
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let handler = interactions_of(&*states.read().await)?;
    healthy(&*states.read().await);
    let cmd = SlashCommand {
        user_id: event.user_id.to_string(),
        channel_id: event.channel_id.to_string(),
        command: event.command.to_string(),
        text: event.text.unwrap_or_default(),
        response_url: event.response_url.0.to_string(),
        trigger_id: event.trigger_id.to_string(),
    };
    // The same acknowledgement body as in HTTP mode, read into slack-morphism's type.
    Ok(serde_json::from_value(handler.command(cmd).await)?)
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackInteractionResponse> {
    let handler = interactions_of(&*states.read().await)?;
    healthy(&*states.read().await);
    let payload = serde_json::to_value(&event)?;
    match handler.interaction(&payload).await {
        Ok(None) => Ok(SlackInteractionResponse::Empty),
        Ok(Some(body)) => Ok(SlackInteractionResponse::ViewSubmission(
            serde_json::from_value(body)?,
        )),
        // Slack would send the same envelope again and it would fail the same way.
        Err(e) if e.is_malformed() => {
            tracing::warn!(error = %e, "dropped a malformed Slack interaction (acknowledged)");
            Ok(SlackInteractionResponse::Empty)
        }
        Err(e) => Err(e.into()),
    }
}

/// Timings of the Socket Mode connection.
#[derive(Debug, Clone, Copy)]
pub struct SocketSettings {
    /// Connections kept open (Slack allows up to 10; two survive a refresh without a gap).
    pub connections: u32,
    /// Seconds before reconnecting after a drop.
    pub reconnect_seconds: u64,
    /// Seconds before opening the second and later connections.
    pub stagger_seconds: u64,
}

impl Default for SocketSettings {
    fn default() -> Self {
        Self {
            connections: 2,
            reconnect_seconds: 5,
            stagger_seconds: 5,
        }
    }
}

/// Why a pushed event was not acknowledged: the error handler tells it from the connection's
/// own trouble, which involves no event.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The event could not be committed to the inbox (Slack resends it).
    #[error("the event could not be stored: {0}")]
    NotStored(String),
}

async fn on_push(
    event: SlackPushEventCallback,
    client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    store_push(event, client, states)
        .await
        .map_err(|e| SocketError::NotStored(e.to_string()).into())
}

async fn store_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let states = states.read().await;
    let inbox = states
        .get_user_state::<Inbox>()
        .ok_or("the Socket Mode listener has no inbox")?;
    inbox.healthy();
    let mut payload = serde_json::to_value(&event)?;
    payload["type"] = serde_json::json!("event_callback");
    if let Some(i) = &inbox.interactions {
        i.api().recent().observe(&payload);
    }
    if !keep(&inbox.store, &payload).await? {
        return Ok(());
    }
    let key = format!("slack:event:{}", event.event_id);
    // An error here returns before the acknowledgement: Slack will deliver the envelope again.
    inbox
        .store
        .inbox_insert(
            &key,
            super::source::order_key(&payload).as_deref(),
            "slack",
            &payload,
            inbox.clock.now(),
        )
        .await?;
    Ok(())
}

/// The JSON error of an envelope slack-morphism could not read into its types (boxed either
/// as itself or inside `SlackClientError`).
fn unreadable<'e>(
    err: &'e (dyn std::error::Error + Send + Sync + 'static),
) -> Option<&'e serde_json::Error> {
    if let Some(e) = err.downcast_ref::<SlackClientProtocolError>() {
        return Some(&e.json_error);
    }
    match err.downcast_ref::<SlackClientError>() {
        Some(SlackClientError::ProtocolError(e)) => Some(&e.json_error),
        _ => None,
    }
}

fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> HttpStatusCode {
    // An envelope that does not parse is the sender's fault: slack-morphism acknowledges it
    // (it would never parse on a resend). Only the JSON error is logged, not the body, which
    // holds people's messages.
    if let Some(json) = unreadable(&*err) {
        tracing::warn!(error = %json, "dropped a Socket Mode envelope that is not what Slack sends (acknowledged)");
        return HttpStatusCode::OK;
    }
    if err.downcast_ref::<SocketError>().is_some() {
        tracing::error!(error = %err, "a Socket Mode event could not be stored; it is not acknowledged and Slack will resend it");
    } else {
        // Everything else reaching this handler is the connection's (a dropped or refused
        // WebSocket); slack-morphism reconnects by itself, and no event was involved.
        tracing::warn!(error = %err, "Socket Mode connection trouble; reconnecting");
        // This handler is not async; if the state is busy, the next failure records it.
        if let Ok(s) = states.try_read() {
            if let Some(inbox) = s.get_user_state::<Inbox>() {
                inbox.failing(&err.to_string());
            }
        }
    }
    HttpStatusCode::INTERNAL_SERVER_ERROR
}

/// A running Socket Mode connection.
pub struct SocketMode {
    listener: SlackClientSocketModeListener<Connector>,
}

impl std::fmt::Debug for SocketMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketMode").finish_non_exhaustive()
    }
}

impl SocketMode {
    /// Opens Socket Mode with the app-level token (`apps.connections.open`) and starts
    /// committing pushed events to `store`'s inbox and answering slash commands and
    /// interactions through `interactions`.
    pub async fn start(
        api: &SlackApi,
        app_token: &Secret,
        store: DynStore,
        clock: Arc<dyn Clock>,
        interactions: Option<Interactions>,
        settings: SocketSettings,
    ) -> Result<Self, ChatError> {
        let interactions_for_health = interactions.clone();
        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(api.client())
                .with_error_handler(on_error)
                .with_user_state(Inbox {
                    store,
                    clock,
                    interactions,
                }),
        );
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_push_events(on_push)
            .with_command_events(on_command)
            .with_interaction_events(on_interaction);
        let config = SlackClientSocketModeConfig::new()
            .with_max_connections_count(settings.connections)
            .with_reconnect_timeout_in_seconds(settings.reconnect_seconds)
            .with_initial_backoff_in_seconds(settings.stagger_seconds);
        let listener = SlackClientSocketModeListener::new(&config, environment, callbacks);
        let token = SlackApiToken::new(SlackApiTokenValue(app_token.expose().to_string()));
        // The listener opens its connections in the background, where a refused token would
        // only be logged; ask once here so a wrong SLACK_APP_TOKEN stops the start instead.
        api.timed(
            "apps.connections.open",
            api.client()
                .open_session(&token)
                .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new()),
        )
        .await
        .map_err(classify)?;
        listener.listen_for(&token).await.map_err(classify)?;
        listener.start().await;
        if let Some(i) = &interactions_for_health {
            i.desk()
                .telemetry
                .adapter_ok("slack", "socket_mode", i.desk().now());
        }
        Ok(Self { listener })
    }

    /// Closes every connection.
    pub async fn shutdown(&self) {
        self.listener.shutdown().await;
    }
}
