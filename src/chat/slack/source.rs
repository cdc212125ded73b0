//! Completes stored Slack events into flags: the [`EventSource`] for Slack.
//!
//! Owns reading `reaction_added` (flag emoji, flagger, the message's channel and ts) and
//! `message_changed` / `message_deleted` (recorded on the flagged message's ticket), thread
//! replies (a staff reply is a ticket's first response), submitted "Create ticket" forms, and
//! fetching what a flag lacks: the message's text, author and thread
//! (`conversations.replies`) and its permalink (`chat.getPermalink`). Rate limits and errors
//! come back as [`ChatError`] so the inbox worker retries without losing the event.

use async_trait::async_trait;
use serde_json::Value;

use super::client::SlackApi;
use super::views::CreateForm;
use crate::chat::{ChatError, Completion, EventSource};
use crate::core::directory::Actor;
use crate::core::routing::normalize_emoji;
use crate::core::ticket::{Origin, Source};
use crate::core::types::{ChannelRef, Platform, RoleRef, UserRef};
use crate::desk::{FlagRequest, ThreadMessage, TicketOverrides};

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
        self.api.roles_of(user, &self.groups).await
    }
}

/// The moment a Slack timestamp (`1772442000.000100`: seconds and microseconds) names.
pub fn ts_time(ts: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let (secs, micros) = ts.split_once('.').unwrap_or((ts, "0"));
    let micros: u32 = format!("{micros:0<6}").get(..6)?.parse().ok()?;
    chrono::DateTime::from_timestamp(secs.parse().ok()?, micros * 1000)
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
        if raw["type"].as_str() == Some(FORM_TYPE) {
            return self.submitted_form(raw).await;
        }
        let event = &raw["event"];
        match (event["type"].as_str(), event["subtype"].as_str()) {
            (Some("reaction_added"), _) => {}
            (Some("message"), None) => {
                let (Some(thread), Some(user)) = (thread_parent(event), event["user"].as_str())
                else {
                    return Ok(Completion::Ignore("not a reply in a thread".into()));
                };
                let reply = event["ts"].as_str().and_then(|ts| {
                    Some(ThreadMessage {
                        id: ts.to_string(),
                        text: event["text"].as_str().unwrap_or_default().to_string(),
                        at: ts_time(ts)?,
                    })
                });
                return Ok(Completion::Reply {
                    channel: ChannelRef::new(Platform::Slack, field(event, &["channel"])?),
                    message_id: thread.to_string(),
                    by: Actor {
                        user: slack_user(user)?,
                        roles: self.roles_of(user).await?,
                    },
                    reply,
                });
            }
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
        let permalink = self
            .api
            .permalink_of(channel, ts, message.thread_ts.as_deref())
            .await?;
        let author_name = self.api.user_name(&message.author).await?;
        let flagger_roles = self.roles_of(flagger).await?;
        let author_roles = self.roles_of(&message.author).await?;
        Ok(Completion::Flag(Box::new(FlagRequest {
            flagger: Actor {
                user: slack_user(flagger)?,
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
                author: slack_user(&message.author)?,
                author_name,
            },
            author_roles,
            overrides: TicketOverrides::default(),
            inbox_key: None,
        })))
    }
}

/// The inbox payload type of a submitted "Create ticket" form (see `interact`).
pub const FORM_TYPE: &str = "create_ticket_form";

/// The platform message a stored Slack event is about (`slack:CHANNEL:TS`), so the inbox
/// applies a flag and the message's edits and deletion, or a reply and its own edits and
/// deletion, in the order received: a reaction's item, a changed or deleted message, a reply
/// itself, a form's message.
pub fn order_key(raw: &Value) -> Option<String> {
    let event = &raw["event"];
    let (channel, ts) = match (event["type"].as_str(), event["subtype"].as_str()) {
        (Some("reaction_added"), _) => (
            event["item"]["channel"].as_str()?,
            event["item"]["ts"].as_str()?,
        ),
        (Some("message"), Some("message_changed")) => {
            (event["channel"].as_str()?, event["message"]["ts"].as_str()?)
        }
        (Some("message"), Some("message_deleted")) => {
            (event["channel"].as_str()?, event["deleted_ts"].as_str()?)
        }
        // A reply is kept only once its ticket exists, so it need not wait behind the flag;
        // keyed by its own `ts`, its edits and deletion come after it.
        (Some("message"), _) => (event["channel"].as_str()?, event["ts"].as_str()?),
        _ => return None,
    };
    Some(format!("slack:{channel}:{ts}"))
}

/// The parent of a thread reply: `thread_ts` when it differs from the message's own `ts`.
pub fn thread_parent(event: &Value) -> Option<&str> {
    let thread = event["thread_ts"].as_str()?;
    (event["ts"].as_str() != Some(thread)).then_some(thread)
}

fn slack_user(id: &str) -> Result<UserRef, ChatError> {
    format!("slack:{id}")
        .parse()
        .map_err(|_| ChatError::Permanent(format!("`{id}` is not a Slack user id")))
}

impl SlackEventSource {
    /// A "Create ticket" form, checked when it was submitted: fetch the message it was opened
    /// for and flag it with the values the person chose.
    async fn submitted_form(&self, raw: &Value) -> Result<Completion, ChatError> {
        let form: CreateForm = serde_json::from_value(raw["form"].clone())
            .map_err(|e| ChatError::Permanent(format!("stored form is unreadable: {e}")))?;
        let flagger = field(raw, &["user"])?;
        let channel = &form.message.channel;
        let ts = &form.message.ts;
        let Some(message) = self.api.message(channel, ts).await? else {
            return Err(ChatError::Permanent(format!(
                "message {ts} in {channel} no longer exists"
            )));
        };
        let permalink = self
            .api
            .permalink_of(channel, ts, message.thread_ts.as_deref())
            .await?;
        let author_name = self.api.user_name(&message.author).await?;
        Ok(Completion::Flag(Box::new(FlagRequest {
            flagger: Actor {
                user: slack_user(flagger)?,
                roles: self.roles_of(flagger).await?,
            },
            origin: Origin::Shortcut,
            emoji: None,
            source: Source {
                channel: ChannelRef::new(Platform::Slack, channel.clone()),
                message_id: message.ts,
                thread_id: message.thread_ts,
                permalink: Some(permalink),
                original_text: message.text,
                author: slack_user(&message.author)?,
                author_name,
            },
            author_roles: self.roles_of(&message.author).await?,
            overrides: TicketOverrides {
                title: Some(form.title),
                department: Some(form.department),
                priority: Some(form.priority),
                tags: form.tags,
            },
            inbox_key: None,
        })))
    }
}
