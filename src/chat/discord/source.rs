//! Completes stored Discord events into flags: the [`EventSource`] for Discord.
//!
//! Owns reading what the gateway handler stored (reactions, replies to flagged messages,
//! edits and deletions) and fetching what a flag lacks: the message (text, author), the
//! author's roles and the jump link. Without the message-content intent Discord returns
//! messages with empty text; the ticket then carries the link in its place. Rate limits and
//! errors come back as [`ChatError`] so the inbox worker retries without losing the event.

use async_trait::async_trait;
use serde_json::Value;

use super::client::DiscordApi;
use crate::chat::{ChatError, Completion, EventSource};
use crate::core::directory::Actor;
use crate::core::routing::normalize_emoji;
use crate::core::ticket::{Origin, Source};
use crate::core::types::{ChannelRef, Platform, RoleRef, UserRef};
use crate::desk::{FlagRequest, ThreadMessage, TicketOverrides};

/// The inbox payload type of a submitted "Create ticket" form (see `interact`).
pub const FORM_TYPE: &str = "create_ticket_form";

/// Discord's side of the inbox worker.
#[derive(Debug, Clone)]
pub struct DiscordEventSource {
    api: DiscordApi,
    flag_emojis: Vec<String>,
}

impl DiscordEventSource {
    /// Completes events with `api`, treating `flag_emojis` as flags.
    pub fn new(api: DiscordApi, flag_emojis: Vec<String>) -> Self {
        Self { api, flag_emojis }
    }
}

fn field<'v>(v: &'v Value, key: &str) -> Result<&'v str, ChatError> {
    v[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ChatError::Permanent(format!("stored Discord event has no {key}")))
}

fn user(id: &str) -> UserRef {
    UserRef::new(Platform::Discord, id)
}

fn roles(v: &Value) -> Vec<RoleRef> {
    v["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|r| RoleRef::new(Platform::Discord, r))
                .collect()
        })
        .unwrap_or_default()
}

/// The link Discord's "Copy Message Link" gives.
pub fn jump_link(guild: Option<&str>, channel: &str, message: &str) -> String {
    format!(
        "https://discord.com/channels/{}/{channel}/{message}",
        guild.unwrap_or("@me")
    )
}

/// The platform message a stored Discord event is about (`discord:CHANNEL:MESSAGE`), so the
/// inbox applies a flag and the message's edits and deletion, or a reply and its own edits
/// and deletion, in the order received.
pub fn order_key(raw: &Value) -> Option<String> {
    // A reply is stored only once its ticket exists, so it need not wait behind the flag;
    // keyed by its own id, its edits and deletion come after it.
    let message = raw["reply_id"]
        .as_str()
        .or_else(|| raw["message_id"].as_str())?;
    Some(format!("discord:{}:{message}", raw["channel_id"].as_str()?))
}

#[async_trait]
impl EventSource for DiscordEventSource {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    async fn complete(&self, raw: &Value) -> Result<Completion, ChatError> {
        let channel = ChannelRef::new(Platform::Discord, field(raw, "channel_id")?);
        match raw["type"].as_str() {
            Some("reaction_add") => {}
            Some(FORM_TYPE) => return self.submitted_form(raw, channel).await,
            Some("reply") => {
                // Replies stored before transcripts were kept carry no id, text or time.
                let reply = match (raw["reply_id"].as_str(), raw["at"].as_str()) {
                    (Some(id), Some(at)) => Some(ThreadMessage {
                        id: id.to_string(),
                        text: raw["content"].as_str().unwrap_or_default().to_string(),
                        at: chrono::DateTime::parse_from_rfc3339(at)
                            .map_err(|e| ChatError::Permanent(format!("reply time {at}: {e}")))?
                            .with_timezone(&chrono::Utc),
                    }),
                    _ => None,
                };
                return Ok(Completion::Reply {
                    channel,
                    message_id: field(raw, "message_id")?.to_string(),
                    by: Actor {
                        user: user(field(raw, "user_id")?),
                        roles: roles(raw),
                    },
                    reply,
                });
            }
            Some("message_update") => {
                return Ok(Completion::SourceChanged {
                    channel,
                    message_id: field(raw, "message_id")?.to_string(),
                    by: raw["user_id"].as_str().map(user),
                    text: Some(raw["content"].as_str().unwrap_or_default().to_string()),
                })
            }
            Some("message_delete") => {
                return Ok(Completion::SourceChanged {
                    channel,
                    message_id: field(raw, "message_id")?.to_string(),
                    by: None,
                    text: None,
                })
            }
            other => {
                return Ok(Completion::Ignore(format!(
                    "{} events are not flags",
                    other.unwrap_or("untyped")
                )))
            }
        }
        let name = raw["emoji"]["name"].as_str().unwrap_or_default();
        let emoji = normalize_emoji(name);
        if !self.flag_emojis.contains(&emoji) {
            return Ok(Completion::Ignore(format!("{name} is not a flag emoji")));
        }
        if raw["user_bot"] == true {
            return Ok(Completion::Ignore("a bot's reaction".into()));
        }
        let flagger = Actor {
            user: user(field(raw, "user_id")?),
            roles: roles(raw),
        };
        self.flag(
            raw,
            channel,
            flagger,
            Origin::Flag,
            Some(emoji),
            TicketOverrides::default(),
        )
        .await
    }
}

impl DiscordEventSource {
    /// A "Create ticket" form, checked when it was submitted: the message it was opened for,
    /// flagged with the values the person chose.
    async fn submitted_form(
        &self,
        raw: &Value,
        channel: ChannelRef,
    ) -> Result<Completion, ChatError> {
        let flagger = Actor {
            user: user(field(raw, "user_id")?),
            roles: roles(raw),
        };
        let overrides = TicketOverrides {
            title: raw["title"].as_str().map(String::from),
            department: raw["department"].as_str().map(String::from),
            priority: raw["priority"].as_str().and_then(|p| p.parse().ok()),
            tags: raw["tags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        };
        self.flag(raw, channel, flagger, Origin::Shortcut, None, overrides)
            .await
    }

    /// Fetches the message `raw` names and makes the flag request.
    async fn flag(
        &self,
        raw: &Value,
        channel: ChannelRef,
        flagger: Actor,
        origin: Origin,
        emoji: Option<String>,
        overrides: TicketOverrides,
    ) -> Result<Completion, ChatError> {
        let message_id = field(raw, "message_id")?;
        let guild = raw["guild_id"].as_str();
        let Some(message) = self.api.message(&channel.id, message_id).await? else {
            return Err(ChatError::Permanent(format!(
                "message {message_id} in {} no longer exists",
                channel.id
            )));
        };
        let author = message["author"]["id"]
            .as_str()
            .ok_or_else(|| ChatError::Transient("message has no author".into()))?;
        self.api.note_kind(author, message["author"]["bot"] == true);
        let author_name = message["author"]["global_name"]
            .as_str()
            .or(message["author"]["username"].as_str())
            .map(String::from);
        let author_roles = match guild {
            Some(g) => match self.api.member(g, author).await {
                Ok(m) => roles(&m),
                // The author left the server: no roles to route on.
                Err(ChatError::Permanent(_)) => vec![],
                Err(e) => return Err(e),
            },
            None => vec![],
        };
        let link = jump_link(guild, &channel.id, message_id);
        let content = message["content"].as_str().unwrap_or_default();
        let text = if content.trim().is_empty() {
            // Discord sends no text without the message-content intent (or for a message
            // that is only an attachment): the link stands in for it.
            format!("(message text not available to the bot; read it at {link})")
        } else {
            content.to_string()
        };
        Ok(Completion::Flag(Box::new(FlagRequest {
            flagger,
            origin,
            emoji,
            source: Source {
                channel,
                message_id: message_id.to_string(),
                thread_id: None,
                permalink: Some(link),
                original_text: text,
                author: user(author),
                author_name,
            },
            author_roles,
            overrides,
            inbox_key: None,
        })))
    }
}
