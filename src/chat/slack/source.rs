//! Completes stored Slack events into flags: the [`EventSource`] for Slack.
//!
//! Owns reading `reaction_added` (flag emoji, flagger, the message's channel and ts) and
//! `message_changed` / `message_deleted` (recorded on the flagged message's ticket), and
//! fetching what a flag lacks: the message's text, author and thread
//! (`conversations.replies`) and its permalink (`chat.getPermalink`). Rate limits and errors
//! come back as [`ChatError`] so the inbox worker retries without losing the event.

use async_trait::async_trait;
use serde_json::Value;

use super::client::SlackApi;
use crate::chat::{ChatError, Completion, EventSource};
use crate::core::directory::Actor;
use crate::core::routing::normalize_emoji;
use crate::core::ticket::{Origin, Source};
use crate::core::types::{ChannelRef, Platform, RoleRef, UserRef};
use crate::desk::{FlagRequest, TicketOverrides};

/// Slack's side of the inbox worker.
#[derive(Debug, Clone)]
pub struct SlackEventSource {
    api: SlackApi,
    flag_emojis: Vec<String>,
    bot_user: Option<String>,
    /// The Slack user groups the config mentions; a flagger's or author's membership in
    /// these is looked up so `slack-group:` permissions and routing rules work.
    groups: Vec<String>,
}

impl SlackEventSource {
    /// Completes events with `api`, treating `flag_emojis` as flags and ignoring reactions by
    /// `bot_user` (the bot itself).
    pub fn new(api: SlackApi, flag_emojis: Vec<String>, bot_user: Option<String>) -> Self {
        Self {
            api,
            flag_emojis,
            bot_user,
            groups: vec![],
        }
    }

    /// Also looks up membership of these Slack user group ids for flaggers and authors.
    pub fn with_groups(mut self, groups: Vec<String>) -> Self {
        self.groups = groups;
        self
    }

    async fn roles_of(&self, user: &str) -> Result<Vec<RoleRef>, ChatError> {
        let mut roles = Vec::new();
        for g in &self.groups {
            if self.api.group_members(g).await?.iter().any(|m| m == user) {
                roles.push(RoleRef::new(Platform::Slack, g.clone()));
            }
        }
        Ok(roles)
    }
}

fn field<'v>(v: &'v Value, path: &[&str]) -> Result<&'v str, ChatError> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ChatError::Permanent(format!("event has no {}", path.join("."))))
}

#[async_trait]
impl EventSource for SlackEventSource {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    async fn complete(&self, raw: &Value) -> Result<Completion, ChatError> {
        let event = &raw["event"];
        match (event["type"].as_str(), event["subtype"].as_str()) {
            (Some("reaction_added"), _) => {}
            (Some("message"), Some("message_changed")) => {
                let changed = &event["message"];
                return Ok(Completion::SourceChanged {
                    channel: ChannelRef::new(Platform::Slack, field(event, &["channel"])?),
                    message_id: field(changed, &["ts"])?.to_string(),
                    by: changed["user"]
                        .as_str()
                        .and_then(|u| format!("slack:{u}").parse().ok()),
                    text: Some(changed["text"].as_str().unwrap_or_default().to_string()),
                });
            }
            (Some("message"), Some("message_deleted")) => {
                return Ok(Completion::SourceChanged {
                    channel: ChannelRef::new(Platform::Slack, field(event, &["channel"])?),
                    message_id: field(event, &["deleted_ts"])?.to_string(),
                    by: None,
                    text: None,
                });
            }
            (other, _) => {
                return Ok(Completion::Ignore(format!(
                    "{} events are not flags",
                    other.unwrap_or("untyped")
                )))
            }
        }
        if event["item"]["type"].as_str() != Some("message") {
            return Ok(Completion::Ignore(
                "the reaction is not on a message".into(),
            ));
        }
        let emoji = normalize_emoji(field(event, &["reaction"])?);
        if !self.flag_emojis.contains(&emoji) {
            return Ok(Completion::Ignore(format!(":{emoji}: is not a flag emoji")));
        }
        let flagger = field(event, &["user"])?;
        if self.bot_user.as_deref() == Some(flagger) {
            return Ok(Completion::Ignore("the bot's own reaction".into()));
        }
        let channel = field(event, &["item", "channel"])?;
        let ts = field(event, &["item", "ts"])?;
        let Some(message) = self.api.message(channel, ts).await? else {
            return Err(ChatError::Permanent(format!(
                "message {ts} in {channel} no longer exists"
            )));
        };
        let permalink = self.api.permalink(channel, ts).await?;
        let author_name = self.api.user_name(&message.author).await?;
        let flagger_roles = self.roles_of(flagger).await?;
        let author_roles = self.roles_of(&message.author).await?;
        let user = |id: &str| -> Result<UserRef, ChatError> {
            format!("slack:{id}")
                .parse()
                .map_err(|_| ChatError::Permanent(format!("`{id}` is not a Slack user id")))
        };
        Ok(Completion::Flag(Box::new(FlagRequest {
            flagger: Actor {
                user: user(flagger)?,
                roles: flagger_roles,
            },
            origin: Origin::Flag,
            emoji: Some(emoji),
            source: Source {
                channel: ChannelRef::new(Platform::Slack, channel),
                message_id: message.ts,
                thread_id: message.thread_ts,
                permalink: Some(permalink),
                original_text: message.text,
                author: user(&message.author)?,
                author_name,
            },
            author_roles,
            overrides: TicketOverrides::default(),
            inbox_key: None,
        })))
    }
}
