//! Socket Mode: Slack pushes events over WebSockets the bot opens, so no public URL is needed.
//!
//! Owns the Socket Mode connections: opening each (`apps.connections.open` through
//! slack-morphism's client, then the WebSocket), reading envelopes, handling every envelope in
//! a task of its own and acknowledging it through the connection's writer when its work is
//! done, and reconnecting after drops, `disconnect` frames and missed pongs. A pushed event is
//! committed to the inbox before its envelope is acknowledged (a failed commit leaves it
//! unacknowledged, so Slack sends it again); slash commands and interactions are answered in
//! the acknowledgement, as in HTTP mode; an envelope that is not what Slack sends is
//! acknowledged, logged as a warning and dropped (a resend would fail the same way).
//!
//! Why not slack-morphism's own listener: it handles a connection's envelopes one after
//! another, so each acknowledgement waited for the inbox commits of every envelope before it
//! (a median of 90 ms at 32 senders where HTTP mode took 16 ms). What an envelope's payload
//! comes to is decided by the same code as in HTTP mode (`events::accept`, `interact`); this
//! module must not hold help-desk rules.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use slack_morphism::prelude::*;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::client::{classify, SlackApi};
use super::events::{self, EventError};
use super::interact::{Interactions, SlashCommand};
use crate::chat::ChatError;
use crate::config::Secret;
use crate::core::clock::Clock;
use crate::store::DynStore;

/// How often the bot pings Slack; three intervals without a word from Slack mean the
/// connection is dead, and it is replaced.
const PING_EVERY: Duration = Duration::from_secs(10);

/// Largest frame accepted; Slack's envelopes are a few kilobytes (HTTP mode's body limit,
/// with room for the envelope around the payload).
const MAX_FRAME: usize = 4 * events::MAX_BODY;

/// How long a refreshed connection stays open to send the acknowledgements of envelopes it
/// was still handling (Slack closes it about ten seconds after its `disconnect` frame).
const DRAIN: Duration = Duration::from_secs(3);

/// Timings of the Socket Mode connections.
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

/// One Socket Mode frame, as Slack sends it (`hello`, `disconnect`, `events_api`,
/// `slash_commands`, `interactive`).
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    envelope_id: Option<String>,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    accepts_response_payload: bool,
    reason: Option<String>,
}

/// The kinds of envelope that carry work and are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    Event,
    Command,
    Interaction,
}

impl Work {
    fn of(kind: &str) -> Option<Self> {
        match kind {
            "events_api" => Some(Work::Event),
            "slash_commands" => Some(Work::Command),
            "interactive" => Some(Work::Interaction),
            _ => None,
        }
    }
}

/// How a connection ended.
#[derive(Debug)]
enum Ended {
    /// The bot is shutting down.
    Shutdown,
    /// Slack asked for a new connection (`disconnect`); open one at once.
    Refresh,
    /// Dropped, refused or silent; wait before reconnecting.
    Failed(String),
}

/// What every connection shares.
struct Shared {
    api: SlackApi,
    token: SlackApiToken,
    store: DynStore,
    clock: Arc<dyn Clock>,
    interactions: Option<Interactions>,
    settings: SocketSettings,
    stop: CancellationToken,
    /// The envelopes being handled, so shutdown can let them finish.
    work: TaskTracker,
}

impl Shared {
    /// Records that Socket Mode works.
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

    /// A fresh WebSocket URL (`apps.connections.open`).
    async fn open(&self) -> Result<String, ChatError> {
        let open = self
            .api
            .timed(
                "apps.connections.open",
                self.api
                    .client()
                    .open_session(&self.token)
                    .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new()),
            )
            .await
            .map_err(classify)?;
        Ok(open.url.0.to_string())
    }

    /// Waits `wait`, or less if the bot shuts down; true when it does.
    async fn pause(&self, wait: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => true,
            _ = tokio::time::sleep(wait) => false,
        }
    }

    /// Keeps connection number `n` open until shutdown, starting with `url` when given.
    async fn keep_open(self: Arc<Self>, n: u32, mut url: Option<String>) {
        let stagger = Duration::from_secs(self.settings.stagger_seconds * u64::from(n));
        if !stagger.is_zero() && self.pause(stagger).await {
            return;
        }
        let reconnect = Duration::from_secs(self.settings.reconnect_seconds);
        loop {
            let ended = match url.take() {
                Some(u) => self.connect(&u).await,
                None => match self.open().await {
                    Ok(u) => self.connect(&u).await,
                    Err(e) => Ended::Failed(format!("apps.connections.open: {e}")),
                },
            };
            match ended {
                Ended::Shutdown => return,
                Ended::Refresh => {
                    tracing::debug!(
                        connection = n,
                        "Slack asked for a new Socket Mode connection"
                    );
                }
                Ended::Failed(reason) => {
                    tracing::warn!(connection = n, %reason, "Socket Mode connection trouble; reconnecting");
                    self.failing(&reason);
                    if self.pause(reconnect).await {
                        return;
                    }
                }
            }
            if self.stop.is_cancelled() {
                return;
            }
        }
    }

    async fn connect(self: &Arc<Self>, url: &str) -> Ended {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME))
            .max_frame_size(Some(MAX_FRAME));
        // Nagle off: acknowledgements are small frames that must leave at once.
        let connecting = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let timeout = self.api.timeout();
        match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok((ws, _))) => self.serve(ws).await,
            Ok(Err(e)) => Ended::Failed(format!("WebSocket: {e}")),
            Err(_) => Ended::Failed(format!("WebSocket: no answer in {timeout:?}")),
        }
    }

    /// Reads one connection until it ends; each envelope's work runs in its own task and
    /// sends its acknowledgement back here to be written.
    async fn serve(self: &Arc<Self>, ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Ended {
        let (mut sink, mut stream) = ws.split();
        let (acks, mut outgoing) = mpsc::unbounded_channel::<String>();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => {
                    let _ = sink.close().await;
                    return Ended::Shutdown;
                }
                Some(frame) = outgoing.recv() => {
                    if let Err(e) = sink.send(Frame::text(frame)).await {
                        return Ended::Failed(format!("sending an acknowledgement: {e}"));
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() > PING_EVERY * 3 {
                        return Ended::Failed("no word from Slack for three ping intervals".into());
                    }
                    if let Err(e) = sink.send(Frame::Ping(Default::default())).await {
                        return Ended::Failed(format!("ping: {e}"));
                    }
                }
                read = stream.next() => {
                    heard = tokio::time::Instant::now();
                    match read {
                        Some(Ok(Frame::Text(text))) => {
                            if self.envelope(text.as_str(), &acks) {
                                // Acknowledge what is still being handled, then let it go.
                                drop(acks);
                                tokio::spawn(drain(sink, outgoing));
                                return Ended::Refresh;
                            }
                        }
                        Some(Ok(Frame::Close(_))) | None => {
                            return Ended::Failed("closed by Slack".into());
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Ended::Failed(format!("reading: {e}")),
                    }
                }
            }
        }
    }

    /// Dispatches one frame; true when Slack asked for a new connection.
    fn envelope(self: &Arc<Self>, text: &str, acks: &mpsc::UnboundedSender<String>) -> bool {
        // Only the JSON error is logged, never the frame, which holds people's messages.
        let envelope: Envelope = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "dropped a Socket Mode frame that is not what Slack sends");
                return false;
            }
        };
        match (envelope.kind.as_str(), Work::of(&envelope.kind)) {
            ("hello", _) => {
                self.healthy();
                false
            }
            ("disconnect", _) => {
                tracing::debug!(
                    reason = envelope.reason.as_deref(),
                    "Socket Mode disconnect frame"
                );
                true
            }
            (_, Some(work)) => {
                let Some(id) = envelope.envelope_id.clone() else {
                    tracing::warn!(kind = %envelope.kind, "dropped a Socket Mode envelope without an envelope_id");
                    return false;
                };
                let this = self.clone();
                let acks = acks.clone();
                self.work.spawn(async move {
                    if let Some(frame) = this.handle(work, &id, envelope).await {
                        // A closed connection loses the ack; Slack sends the envelope again.
                        let _ = acks.send(frame);
                    }
                });
                false
            }
            (other, None) => {
                tracing::warn!(
                    kind = other,
                    "ignored a Socket Mode frame of a kind Slack does not send"
                );
                if let Some(id) = &envelope.envelope_id {
                    let _ = acks.send(json!({ "envelope_id": id }).to_string());
                }
                false
            }
        }
    }

    /// Does an envelope's work; returns its acknowledgement frame, or `None` to leave it
    /// unacknowledged (our own failure: Slack sends it again).
    async fn handle(&self, work: Work, id: &str, envelope: Envelope) -> Option<String> {
        self.healthy();
        let payload = &envelope.payload;
        let answer = match work {
            Work::Event => {
                match events::accept(
                    &self.store,
                    &*self.clock,
                    self.interactions.as_ref(),
                    payload,
                )
                .await
                {
                    // Stored, already stored, or nothing to act on (a challenge never comes
                    // over Socket Mode): acknowledged either way.
                    Ok(_) => None,
                    Err(EventError::Malformed(why)) => {
                        tracing::warn!(why, "dropped a Socket Mode event that is not what Slack sends (acknowledged)");
                        None
                    }
                    Err(e @ EventError::Internal(_)) => {
                        tracing::error!(error = %e, "a Socket Mode event could not be stored; it is not acknowledged and Slack will resend it");
                        return None;
                    }
                }
            }
            Work::Command => match (&self.interactions, SlashCommand::from_json(payload)) {
                (None, _) => Some(events::not_connected_reply()),
                (Some(h), Ok(cmd)) => Some(h.command(cmd).await),
                (Some(_), Err(e)) => {
                    tracing::warn!(error = %e, "dropped a malformed Slack command (acknowledged)");
                    None
                }
            },
            Work::Interaction => {
                let Some(h) = &self.interactions else {
                    return Some(ack(id, Some(events::not_connected_reply()), true));
                };
                match h.interaction(payload).await {
                    Ok(body) => body,
                    Err(e) if e.is_malformed() => {
                        tracing::warn!(error = %e, "dropped a malformed Slack interaction (acknowledged)");
                        None
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "a Slack interaction failed; it is not acknowledged and Slack will resend it");
                        return None;
                    }
                }
            }
        };
        Some(ack(id, answer, envelope.accepts_response_payload))
    }
}

/// An acknowledgement frame, carrying `answer` when the envelope accepts one.
fn ack(id: &str, answer: Option<Value>, accepted: bool) -> String {
    match answer {
        Some(payload) if accepted => json!({ "envelope_id": id, "payload": payload }),
        Some(_) => {
            tracing::warn!(
                envelope = id,
                "dropped an answer to an envelope that does not accept one"
            );
            json!({ "envelope_id": id })
        }
        None => json!({ "envelope_id": id }),
    }
    .to_string()
}

/// Writes the acknowledgements of a refreshed connection's last envelopes, then closes it.
async fn drain(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Frame>,
    mut outgoing: mpsc::UnboundedReceiver<String>,
) {
    let until = tokio::time::Instant::now() + DRAIN;
    while let Ok(Some(frame)) = tokio::time::timeout_at(until, outgoing.recv()).await {
        if sink.send(Frame::text(frame)).await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// Running Socket Mode connections.
pub struct SocketMode {
    stop: CancellationToken,
    connections: TaskTracker,
    work: TaskTracker,
}

impl std::fmt::Debug for SocketMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketMode").finish_non_exhaustive()
    }
}

impl SocketMode {
    /// Opens Socket Mode with the app-level token and starts committing pushed events to
    /// `store`'s inbox and answering slash commands and interactions through `interactions`.
    /// A token Slack refuses stops the start (the first `apps.connections.open` is made here).
    pub async fn start(
        api: &SlackApi,
        app_token: &Secret,
        store: DynStore,
        clock: Arc<dyn Clock>,
        interactions: Option<Interactions>,
        settings: SocketSettings,
    ) -> Result<Self, ChatError> {
        let shared = Arc::new(Shared {
            api: api.clone(),
            token: SlackApiToken::new(SlackApiTokenValue(app_token.expose().to_string())),
            store,
            clock,
            interactions,
            settings,
            stop: CancellationToken::new(),
            work: TaskTracker::new(),
        });
        let first = shared.open().await?;
        let connections = TaskTracker::new();
        let mut first = Some(first);
        for n in 0..settings.connections.max(1) {
            connections.spawn(shared.clone().keep_open(n, first.take()));
        }
        connections.close();
        shared.healthy();
        Ok(Self {
            stop: shared.stop.clone(),
            connections,
            work: shared.work.clone(),
        })
    }

    /// Closes every connection and waits (a few seconds at most) for the envelopes being
    /// handled.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.connections.wait().await;
        self.work.close();
        let _ = tokio::time::timeout(DRAIN, self.work.wait()).await;
    }
}
