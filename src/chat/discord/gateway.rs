//! Discord's gateway through serenity: the long-lived WebSocket that delivers reactions,
//! message edits and deletions and replies, written to the inbox as they arrive.
//!
//! Owns the intents (guilds, guild messages, guild message reactions, message content), the
//! shard range, the fallback when Discord refuses the message-content intent (close 4014: a
//! new client without it, one log line telling the admin where to enable it) and turning
//! dispatches into inbox rows with keys that make a repeated dispatch a no-op. Heartbeats,
//! RESUME and reconnects are serenity's. Must not decide anything about tickets beyond "is
//! this reply under a flagged message?", which keeps ordinary chatter out of the inbox.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use serenity::all::{
    ChannelId, Context, EventHandler, GatewayIntents, GuildId, Interaction,
    Message as DiscordMessage, MessageId, MessageUpdateEvent, Reaction, ReactionType, Ready,
    ResumedEvent,
};
use serenity::gateway::ShardManager;
use tokio::sync::watch;

use super::client::DiscordApi;
use super::interact::DiscordInteractions;
use crate::config::ShardRange;
use crate::core::clock::Clock;
use crate::core::types::{ChannelRef, Platform};
use crate::store::DynStore;
use crate::telemetry::Telemetry;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// serenity could not build the client.
    #[error("cannot start the Discord gateway client: {0}")]
    Client(String),
}

/// The intents the bot asks for; MESSAGE_CONTENT is dropped when Discord refuses it.
pub fn intents(message_content: bool) -> GatewayIntents {
    let base = GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::GUILD_MESSAGE_REACTIONS;
    if message_content {
        base | GatewayIntents::MESSAGE_CONTENT
    } else {
        base
    }
}

/// What the running gateway reports.
#[derive(Debug, Default)]
struct Status {
    /// Whether the client runs with the message-content intent.
    message_content: AtomicBool,
    /// Set at shutdown, so the retry loop stops instead of connecting again.
    stopping: AtomicBool,
    /// Wakes the retry loop from its backoff at shutdown.
    stop: tokio::sync::Notify,
}

/// A running gateway connection (all its shards).
pub struct Gateway {
    status: Arc<Status>,
    ready: watch::Receiver<u32>,
    managers: watch::Receiver<Option<Arc<ShardManager>>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("message_content", &self.message_content())
            .finish_non_exhaustive()
    }
}

/// What the handler needs to write events down.
struct Handler {
    store: DynStore,
    clock: Arc<dyn Clock>,
    api: DiscordApi,
    bot_user: String,
    ready: watch::Sender<u32>,
    interactions: Option<DiscordInteractions>,
    telemetry: Option<Arc<Telemetry>>,
}

impl Handler {
    /// Records that the gateway session works.
    fn connected(&self) {
        if let Some(t) = &self.telemetry {
            t.adapter_ok("discord", "gateway", self.clock.now());
        }
    }

    /// Stores one event under `key`, retrying briefly: the gateway has no acknowledgement, so
    /// a dispatch that cannot be written is lost (and logged).
    async fn keep(&self, key: String, payload: Value) {
        let order = super::source::order_key(&payload);
        for attempt in 1..=3 {
            match self
                .store
                .inbox_insert(
                    &key,
                    order.as_deref(),
                    Platform::Discord.as_str(),
                    &payload,
                    self.clock.now(),
                )
                .await
            {
                Ok(new) => {
                    if !new {
                        tracing::debug!(key, "repeated Discord dispatch ignored");
                    }
                    return;
                }
                Err(e) if attempt < 3 => {
                    tracing::warn!(error = %e, key, attempt, "could not store a Discord event; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, key, "could not store a Discord event; it is lost")
                }
            }
        }
    }
}

fn emoji_json(e: &ReactionType) -> Value {
    match e {
        ReactionType::Unicode(s) => json!({ "id": null, "name": s }),
        ReactionType::Custom { id, name, .. } => json!({ "id": id.to_string(), "name": name }),
        _ => json!({ "id": null, "name": null }),
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(
            user = %ready.user.name,
            shard = ?ready.shard.map(|s| (s.id.0, s.total)),
            guilds = ready.guilds.len(),
            "Discord gateway ready"
        );
        self.connected();
        self.ready.send_modify(|n| *n += 1);
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        tracing::info!("Discord gateway session resumed");
        self.connected();
        self.ready.send_modify(|n| *n += 1);
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let Some(handler) = &self.interactions else {
            return;
        };
        let mut payload = match serde_json::to_value(&interaction) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "could not read a Discord interaction");
                return;
            }
        };
        // serenity keeps the interaction's type in its enum, not in the struct it writes out.
        payload["type"] = json!(match &interaction {
            Interaction::Ping(_) => 1,
            Interaction::Command(_) => 2,
            Interaction::Component(_) => 3,
            Interaction::Autocomplete(_) => 4,
            Interaction::Modal(_) => 5,
            _ => 0,
        });
        let body = match handler.respond(&payload).await {
            Ok(b) => b,
            Err(e @ super::interact::InteractError::Malformed(_)) => {
                tracing::warn!(error = %e, "a Discord interaction was not understood");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "a Discord interaction failed on our side");
                return;
            }
        };
        let id = interaction.id().to_string();
        let token = payload["token"].as_str().unwrap_or_default();
        tracing::debug!(interaction = %id, kind = %payload["type"], answer = %body["type"], "answering a Discord interaction");
        if let Err(e) = self.api.interaction_callback(&id, token, &body).await {
            tracing::warn!(error = %e, "could not answer a Discord interaction");
        }
    }

    async fn reaction_add(&self, _ctx: Context, r: Reaction) {
        let Some(user) = r.user_id else { return };
        if user.to_string() == self.bot_user {
            return;
        }
        let member = r.member.as_ref();
        if let Some(m) = member {
            self.api.note_kind(&user.to_string(), m.user.bot);
        }
        let emoji = emoji_json(&r.emoji);
        let key = format!(
            "discord:reaction:{}:{}:{}:{}",
            r.channel_id,
            r.message_id,
            user,
            emoji["id"]
                .as_str()
                .or(emoji["name"].as_str())
                .unwrap_or("?")
        );
        let payload = json!({
            "type": "reaction_add",
            "guild_id": r.guild_id.map(|g| g.to_string()),
            "channel_id": r.channel_id.to_string(),
            "message_id": r.message_id.to_string(),
            "user_id": user.to_string(),
            "user_bot": member.is_some_and(|m| m.user.bot),
            "roles": member.map(|m| m.roles.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap_or_default(),
            "emoji": emoji,
        });
        self.keep(key, payload).await;
    }

    async fn message(&self, _ctx: Context, m: DiscordMessage) {
        // Only a person's reply about a ticket matters (the first response, or the reporter
        // answering while it waits on them).
        let Some(parent) = m.message_reference.as_ref().and_then(|r| r.message_id) else {
            return;
        };
        if m.author.bot || m.author.id.to_string() == self.bot_user {
            return;
        }
        let channel = ChannelRef::new(Platform::Discord, m.channel_id.to_string());
        // A reply to a flagged message, or to one of the bot's posts about a ticket (its
        // alert, a reminder, a saved reply).
        match self
            .store
            .ticket_of_thread(&channel, &parent.to_string())
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not check whether a Discord reply is under a ticket");
                return;
            }
        }
        let payload = json!({
            "type": "reply",
            "guild_id": m.guild_id.map(|g| g.to_string()),
            "channel_id": m.channel_id.to_string(),
            "message_id": parent.to_string(),
            "user_id": m.author.id.to_string(),
            "roles": m.member.as_ref().map(|mm| mm.roles.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap_or_default(),
            // The reply itself, for the ticket's transcript.
            "reply_id": m.id.to_string(),
            "content": m.content,
            "at": m.timestamp.to_string(),
        });
        self.keep(format!("discord:reply:{}", m.id), payload).await;
    }

    async fn message_update(
        &self,
        _ctx: Context,
        _old: Option<DiscordMessage>,
        _new: Option<DiscordMessage>,
        event: MessageUpdateEvent,
    ) {
        if event
            .author
            .as_ref()
            .is_some_and(|a| a.id.to_string() == self.bot_user || a.bot)
        {
            return;
        }
        // Updates without content are embeds unfolding, not edits.
        let Some(content) = event.content else { return };
        let stamp = event.edited_timestamp.map_or_else(
            || content.len().to_string(),
            |t| t.unix_timestamp().to_string(),
        );
        let payload = json!({
            "type": "message_update",
            "channel_id": event.channel_id.to_string(),
            "message_id": event.id.to_string(),
            "user_id": event.author.as_ref().map(|a| a.id.to_string()),
            "content": content,
        });
        self.keep(format!("discord:update:{}:{stamp}", event.id), payload)
            .await;
    }

    async fn message_delete(
        &self,
        _ctx: Context,
        channel: ChannelId,
        message: MessageId,
        _guild: Option<GuildId>,
    ) {
        let payload = json!({
            "type": "message_delete",
            "channel_id": channel.to_string(),
            "message_id": message.to_string(),
        });
        self.keep(format!("discord:delete:{message}"), payload)
            .await;
    }
}

/// Settings of the gateway connection.
#[derive(Debug, Clone, Default)]
pub struct GatewaySettings {
    /// The shards this instance runs; `None` runs every shard Discord recommends.
    pub shards: Option<ShardRange>,
    /// Who answers interactions arriving over the gateway; `None` when they come to the HTTP
    /// endpoint instead (Discord sends them to one or the other).
    pub interactions: Option<DiscordInteractions>,
    /// First wait before connecting again after the gateway could not start or stopped (it
    /// doubles up to a minute); `None` means one second.
    pub retry_base: Option<Duration>,
    /// Where the gateway's health is recorded (`/readyz`, `switchboard_adapter_up`).
    pub telemetry: Option<Arc<Telemetry>>,
}

impl Gateway {
    /// Connects (in the background) with the message-content intent; when Discord refuses
    /// it (4014), logs where to enable it and connects again without.
    pub async fn start(
        api: DiscordApi,
        bot_user: String,
        store: DynStore,
        clock: Arc<dyn Clock>,
        settings: GatewaySettings,
    ) -> Result<Gateway, GatewayError> {
        let status = Arc::new(Status::default());
        let health_clock = clock.clone();
        let health = settings.telemetry.clone();
        let (ready_tx, ready) = watch::channel(0u32);
        let (managers_tx, managers) = watch::channel(None);
        let make = {
            let api = api.clone();
            move |message_content: bool| {
                let handler = Handler {
                    store: store.clone(),
                    clock: clock.clone(),
                    api: api.clone(),
                    bot_user: bot_user.clone(),
                    ready: ready_tx.clone(),
                    interactions: settings.interactions.clone(),
                    telemetry: settings.telemetry.clone(),
                };
                serenity::client::ClientBuilder::new_with_http(
                    api.gateway_http(),
                    intents(message_content),
                )
                .event_handler(handler)
            }
        };
        // Build the first client now so a broken setup is reported at start.
        let first = make(true)
            .await
            .map_err(|e| GatewayError::Client(e.to_string()))?;
        status.message_content.store(true, Ordering::SeqCst);
        let task_status = status.clone();
        let base = settings.retry_base.unwrap_or(Duration::from_secs(1));

        let task = tokio::spawn(async move {
            let mut client = first;
            let mut message_content = true;
            let mut failures: u32 = 0;
            let mut last_reason = String::new();
            loop {
                let _ = managers_tx.send(Some(client.shard_manager.clone()));
                let result = match settings.shards {
                    Some(r) => client.start_shard_range(r.first..r.last, r.total).await,
                    None => client.start_autosharded().await,
                };
                match result {
                    Err(serenity::Error::Gateway(
                        serenity::gateway::GatewayError::DisallowedGatewayIntents,
                    )) if message_content => {
                        tracing::warn!(
                            "Discord refused the Message Content intent (close 4014): enable it under Bot → Privileged Gateway Intents → Message Content Intent in the Developer Portal. Until then flagged tickets carry a link to the message instead of its text."
                        );
                        message_content = false;
                        task_status.message_content.store(false, Ordering::SeqCst);
                    }
                    Err(e) => {
                        // Discord (or the proxy) unreachable, or the session lost for good:
                        // connect again with backoff for as long as the process runs, logging
                        // each new reason once.
                        let reason = e.to_string();
                        if let Some(t) = &health {
                            t.adapter_failed("discord", "gateway", health_clock.now(), &reason);
                        }
                        if reason != last_reason {
                            tracing::error!(error = %reason, "the Discord gateway stopped; connecting again with backoff");
                            last_reason = reason;
                        }
                        failures = failures.saturating_add(1);
                    }
                    Ok(()) => return,
                }
                if task_status.stopping.load(Ordering::SeqCst) {
                    return;
                }
                // Rebuild the client (the old one is spent), retrying that too.
                loop {
                    if failures > 0 {
                        let wait = crate::chat::backoff(
                            i64::from(failures),
                            base,
                            Duration::from_secs(60),
                        );
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = task_status.stop.notified() => {}
                        }
                    }
                    if task_status.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    match make(message_content).await {
                        Ok(c) => {
                            client = c;
                            break;
                        }
                        Err(e) => {
                            let reason = e.to_string();
                            if reason != last_reason {
                                tracing::error!(error = %reason, "could not rebuild the Discord gateway client; trying again with backoff");
                                last_reason = reason;
                            }
                            failures = failures.saturating_add(1);
                        }
                    }
                }
            }
        });
        Ok(Gateway {
            status,
            ready,
            managers,
            task,
        })
    }

    /// Whether the gateway runs with the message-content intent.
    pub fn message_content(&self) -> bool {
        self.status.message_content.load(Ordering::SeqCst)
    }

    /// How many READY and RESUMED events have arrived so far.
    pub fn sessions(&self) -> u32 {
        *self.ready.borrow()
    }

    /// Waits until more than `seen` READY/RESUMED events arrived, or `timeout` passed;
    /// returns the count then.
    pub async fn wait_sessions(&self, seen: u32, timeout: Duration) -> u32 {
        let mut rx = self.ready.clone();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|n| *n > seen)).await;
        let n = *rx.borrow();
        n
    }

    /// Closes every shard and waits for the client to end.
    pub async fn shutdown(self) {
        self.status.stopping.store(true, Ordering::SeqCst);
        self.status.stop.notify_waiters();
        let manager = self.managers.borrow().clone();
        if let Some(m) = manager {
            m.shutdown_all().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}
