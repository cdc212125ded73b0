//! Slack interactions, whichever way they arrive (HTTP form posts or Socket Mode envelopes):
//! slash commands, the "Create ticket" message shortcut and its modal, the Claim / Resolve
//! buttons on alerts, and the CSAT rating buttons and comment modal.
//!
//! Owns the three-second rule: each handler answers with the acknowledgement body Slack
//! expects (a command's reply, a modal's field errors, or nothing) within [`Interactions`]'
//! budget; work that takes longer goes on after the acknowledgement and answers through the
//! interaction's `response_url`. Modals are opened here while the trigger id is fresh. Must not
//! hold help-desk rules (the desk decides) or transport details (signatures are `events`',
//! envelopes `socket`'s).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::blocks;
use super::client::SlackApi;
use super::source::FORM_TYPE;
use super::views::{self, CreateDefaults, FlaggedMessage, Submission};
use crate::chat::ChatError;
use crate::core::directory::Actor;
use crate::core::message::{
    self, ButtonAction, Message, OutKind, Outgoing, Reply, Target, Visibility,
};
use crate::core::routing::RouteInput;
use crate::core::types::{ChannelRef, Platform, TicketRef, UserRef};
use crate::desk::{title_from, Desk, DeskError};
use crate::store::StoreError;

/// How long a handler works before acknowledging; Slack gives up after three seconds.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(2000);

/// Why an interaction could not be acknowledged; nothing was half-done. The two kinds are
/// answered differently because only one of them can succeed when tried again.
#[derive(Debug, thiserror::Error)]
pub enum InteractError {
    /// The payload is not what Slack sends (a field Slack always sends is missing or has the
    /// wrong shape). Sending it again cannot help: HTTP mode answers 400 and Socket Mode
    /// acknowledges and drops it, both logging a warning.
    #[error("malformed Slack payload: {0}")]
    Malformed(String),
    /// Our own failure (the database did not answer): HTTP mode answers 500 so Slack may try
    /// again, Socket Mode leaves the envelope unacknowledged, both logging an error.
    #[error("internal error: {0}")]
    Internal(#[from] StoreError),
}

impl InteractError {
    /// Whether the sender is at fault (the payload), not us.
    pub fn is_malformed(&self) -> bool {
        matches!(self, InteractError::Malformed(_))
    }
}

/// A slash command as Slack posts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    /// Who ran it.
    pub user_id: String,
    /// Where.
    pub channel_id: String,
    /// `/ticket`.
    pub command: String,
    /// Everything after the command, with mentions escaped (`<@U123|name>`).
    pub text: String,
    /// Where late answers go.
    pub response_url: String,
    /// For opening a modal.
    pub trigger_id: String,
}

impl SlashCommand {
    /// Reads Slack's form-encoded command post.
    pub fn from_form(body: &[u8]) -> Result<Self, InteractError> {
        let pairs: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let get = |k: &str| -> Result<String, InteractError> {
            pairs
                .get(k)
                .cloned()
                .ok_or_else(|| InteractError::Malformed(format!("command without {k}")))
        };
        Ok(Self {
            user_id: get("user_id")?,
            channel_id: get("channel_id")?,
            command: get("command")?,
            text: pairs.get("text").cloned().unwrap_or_default(),
            response_url: get("response_url")?,
            trigger_id: pairs.get("trigger_id").cloned().unwrap_or_default(),
        })
    }

    /// Reads a command from a Socket Mode envelope's payload (the same fields as the form,
    /// as JSON strings).
    pub fn from_json(payload: &Value) -> Result<Self, InteractError> {
        let get = |k: &str| -> Result<String, InteractError> {
            payload[k]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| InteractError::Malformed(format!("command without {k}")))
        };
        let optional = |k: &str| payload[k].as_str().unwrap_or_default().to_string();
        Ok(Self {
            user_id: get("user_id")?,
            channel_id: get("channel_id")?,
            command: get("command")?,
            text: optional("text"),
            response_url: get("response_url")?,
            trigger_id: optional("trigger_id"),
        })
    }
}

/// Slack's acknowledgement body for a command reply.
pub fn reply_body(reply: &Reply) -> Value {
    let (text, blocks) = blocks::render(&reply.message);
    json!({
        "response_type": match reply.visibility {
            Visibility::Ephemeral => "ephemeral",
            Visibility::InChannel => "in_channel",
        },
        "text": text,
        "blocks": blocks,
    })
}

/// Handles Slack interactions for one workspace.
#[derive(Clone)]
pub struct Interactions {
    desk: Desk,
    api: SlackApi,
    groups: Arc<Vec<String>>,
    budget: Duration,
}

impl Interactions {
    /// The desk it works for.
    pub fn desk(&self) -> &Desk {
        &self.desk
    }

    /// The Web API client it answers with (and whose received-message cache events fill).
    pub fn api(&self) -> &SlackApi {
        &self.api
    }
}

impl std::fmt::Debug for Interactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interactions")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Interactions {
    /// Interactions answered by `desk`, calling Slack through `api`; people's membership of
    /// the configured Slack user groups counts in permission checks.
    pub fn new(desk: Desk, api: SlackApi) -> Self {
        let groups = desk.config.slack_groups();
        Self {
            desk,
            api,
            groups: Arc::new(groups),
            budget: DEFAULT_BUDGET,
        }
    }

    /// Changes how long a handler works before acknowledging (tests use zero to take the
    /// late-answer path every time).
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    async fn actor(&self, user_id: &str) -> Result<Actor, DeskError> {
        let user: UserRef = format!("slack:{user_id}")
            .parse()
            .map_err(|_| DeskError::User(format!("`{user_id}` is not a Slack user id.")))?;
        let roles = self
            .api
            .roles_of(user_id, &self.groups)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "could not look up Slack user groups");
                DeskError::User(
                    "Slack is busy and could not tell us your user groups; please try again in a few seconds."
                        .into(),
                )
            })?;
        Ok(Actor { user, roles })
    }

    /// Answers a slash command: the reply itself when it is ready within the budget, else a
    /// short "working on it" while the reply follows through `response_url` (or, for a reply
    /// meant for the channel, as a post through the outbox).
    pub async fn command(&self, cmd: SlashCommand) -> Value {
        let this = self.clone();
        let run = cmd.clone();
        let mut task = self
            .desk
            .tasks
            .spawn(async move { this.run_command(&run).await });
        // A zero budget always takes the late path (a timeout polls its future once first).
        let ready = if self.budget.is_zero() {
            None
        } else {
            tokio::time::timeout(self.budget, &mut task).await.ok()
        };
        match ready {
            Some(Ok(reply)) => reply_body(&reply),
            Some(Err(e)) => {
                tracing::error!(error = %e, "a slash command handler panicked");
                reply_body(&apology())
            }
            None => {
                let this = self.clone();
                self.desk.tasks.spawn(async move {
                    match task.await {
                        Ok(reply) => this.late_reply(&cmd, reply).await,
                        Err(e) => tracing::error!(error = %e, "a slash command handler panicked"),
                    }
                });
                reply_body(&Reply::ephemeral(Message::text(
                    "Working on it; the answer will appear here in a moment.",
                )))
            }
        }
    }

    async fn run_command(&self, cmd: &SlashCommand) -> Reply {
        let actor = match self.actor(&cmd.user_id).await {
            Ok(a) => a,
            Err(e) => return Reply::ephemeral(Message::text(e.chat_message())),
        };
        let channel = ChannelRef::new(Platform::Slack, cmd.channel_id.clone());
        let name = cmd.command.trim_start_matches('/');
        crate::cmd::run_text(
            &self.desk,
            &actor,
            Some(&channel),
            name,
            &unescape(&cmd.text),
        )
        .await
    }

    async fn late_reply(&self, cmd: &SlashCommand, reply: Reply) {
        let sent = match reply.visibility {
            Visibility::Ephemeral => self
                .api
                .respond(&cmd.response_url, &reply.message, false)
                .await
                .map_err(|e| e.to_string()),
            // A late answer for everyone is an ordinary post, delivered (and retried) by the
            // outbox like every other.
            Visibility::InChannel => self
                .desk
                .store
                .enqueue(
                    vec![Outgoing {
                        kind: OutKind::Post,
                        target: Target::Channel {
                            channel: ChannelRef::new(Platform::Slack, cmd.channel_id.clone()),
                            thread: None,
                        },
                        ticket: None,
                        message: reply.message,
                    }],
                    self.desk.now(),
                )
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = sent {
            tracing::error!(error = %e, command = %cmd.command, "could not send a late command reply");
        }
    }

    /// Handles an interaction payload (`block_actions`, `message_action`,
    /// `view_submission`, …), returning the acknowledgement body, if any.
    pub async fn interaction(&self, payload: &Value) -> Result<Option<Value>, InteractError> {
        match payload["type"].as_str() {
            Some("block_actions") => {
                self.button(payload).await?;
                Ok(None)
            }
            Some("message_action") => {
                self.shortcut(payload).await?;
                Ok(None)
            }
            Some("view_submission") => self.submission(payload).await,
            Some(other) => {
                tracing::debug!(kind = other, "Slack interaction not handled");
                Ok(None)
            }
            None => Err(InteractError::Malformed(format!(
                "interaction without a type name (type is {})",
                json_kind(&payload["type"])
            ))),
        }
    }

    /// Sends `message` through `response_url` in the background, logging a failure.
    fn answer(&self, response_url: Option<&str>, message: Message, replace_original: bool) {
        let Some(url) = response_url.map(str::to_string) else {
            return;
        };
        let api = self.api.clone();
        self.desk.tasks.spawn(async move {
            if let Err(e) = api.respond(&url, &message, replace_original).await {
                tracing::warn!(error = %e, "could not answer a Slack interaction");
            }
        });
    }

    async fn button(&self, payload: &Value) -> Result<(), InteractError> {
        let user = str_at(payload, &["user", "id"])?;
        let action_id = payload["actions"][0]["action_id"]
            .as_str()
            .ok_or_else(|| InteractError::Malformed("block_actions without an action".into()))?;
        let response_url = payload["response_url"].as_str();
        let Some((action, ticket)) = ButtonAction::parse(action_id) else {
            self.answer(
                response_url,
                Message::text(
                    "That button is no longer supported; use `/ticket` commands instead.",
                ),
                false,
            );
            return Ok(());
        };
        if action == ButtonAction::Comment {
            // Opened first: the trigger id is good for three seconds only.
            let trigger = str_at(payload, &["trigger_id"])?;
            if let Err(e) = self
                .api
                .open_view(trigger, views::comment_modal(ticket, response_url))
                .await
            {
                tracing::warn!(error = %e, "could not open the comment form");
                self.answer(
                    response_url,
                    Message::text(format!(
                        "Sorry, the comment form could not open ({e}); please try again."
                    )),
                    false,
                );
            }
            return Ok(());
        }
        let this = self.clone();
        let user = user.to_string();
        let url = response_url.map(str::to_string);
        let task = self.desk.tasks.spawn(async move {
            let (message, replace) = this.press(&user, action, ticket).await;
            this.answer(url.as_deref(), message, replace);
        });
        // The change is usually committed before the acknowledgement; if not, it finishes after.
        let _ = tokio::time::timeout(self.budget, task).await;
        Ok(())
    }

    async fn press(&self, user: &str, action: ButtonAction, ticket: TicketRef) -> (Message, bool) {
        let actor = match self.actor(user).await {
            Ok(a) => a,
            Err(e) => return (Message::text(e.chat_message()), false),
        };
        match action {
            ButtonAction::Rate(score) => match self.desk.rate(&actor, ticket, score).await {
                Ok(o) if o.recorded => (message::csat_thanks(ticket, score, None), true),
                Ok(o) => (
                    Message::text(format!(
                        "Your rating of {ticket} was already recorded ({}/5); thanks!",
                        o.csat.score
                    )),
                    false,
                ),
                Err(e) => (Message::text(e.chat_message()), false),
            },
            _ => {
                let id = action.button(ticket).action_id;
                match self.desk.press(&actor, &id).await {
                    Ok(reply) => (reply.message, false),
                    Err(e) => (Message::text(e.chat_message()), false),
                }
            }
        }
    }

    async fn shortcut(&self, payload: &Value) -> Result<(), InteractError> {
        let user = str_at(payload, &["user", "id"])?;
        let trigger = str_at(payload, &["trigger_id"])?;
        let channel = str_at(payload, &["channel", "id"])?;
        let ts = str_at(payload, &["message", "ts"])?;
        let text = payload["message"]["text"].as_str().unwrap_or_default();
        let response_url = payload["response_url"].as_str();
        let refuse = |e: DeskError| {
            self.answer(response_url, Message::text(e.chat_message()), false);
            Ok(())
        };
        let actor = match self.actor(user).await {
            Ok(a) => a,
            Err(e) => return refuse(e),
        };
        let desk = &self.desk;
        if !desk.config.directory.may_flag(&actor) {
            return refuse(DeskError::User(
                "You are not allowed to turn messages into tickets. Ask a Switchboard admin to add you (or your group) under [flagging] in the configuration.".into(),
            ));
        }
        let channel_ref = ChannelRef::new(Platform::Slack, channel);
        if let Some(t) = desk.store.ticket_by_source(&channel_ref, ts).await? {
            return refuse(DeskError::User(format!(
                "This message is already {} ({}, {}); `/ticket show {}` has its history.",
                t.id, t.status, t.department, t.id
            )));
        }
        // Asked before the form opens, so nobody fills one in for nothing.
        match desk.check_flag_limit(&actor, None).await {
            Ok(()) => {}
            Err(DeskError::Internal(e)) => return Err(e.into()),
            Err(e) => return refuse(e),
        }
        let decision = desk.config.router.route(&RouteInput {
            platform: Platform::Slack,
            channel: Some(&channel_ref),
            emoji: None,
            text,
            reporter_roles: &[],
            labels: &[],
        });
        let defaults = CreateDefaults {
            title: title_from(text),
            department: decision.department,
            priority: decision.priority,
            tags: decision.tags,
            preview: text.to_string(),
        };
        let modal = views::create_ticket_modal(
            &FlaggedMessage {
                channel: channel.to_string(),
                ts: ts.to_string(),
            },
            &defaults,
            &desk.config.directory.department_names(),
        );
        if let Err(e) = self.api.open_view(trigger, modal).await {
            tracing::warn!(error = %e, "could not open the create-ticket form");
            let hint = match e {
                ChatError::Permanent(_) => "the form took too long to open",
                _ => "Slack is busy",
            };
            return refuse(DeskError::User(format!(
                "Sorry, {hint}; please use the shortcut again."
            )));
        }
        Ok(())
    }

    async fn submission(&self, payload: &Value) -> Result<Option<Value>, InteractError> {
        let user = str_at(payload, &["user", "id"])?;
        // Slack always sends the view with its id; the id is the submission's dedupe key, so a
        // view without one must not be stored under a key every such submission would share.
        let sub = Submission::read(payload)
            .map_err(|e| InteractError::Malformed(format!("view_submission: {e}")))?;
        match sub.callback_id.as_str() {
            views::CREATE_TICKET => {
                let actor = match self.actor(user).await {
                    Ok(a) => a,
                    Err(e) => return Ok(Some(field_error("title", &e.chat_message()))),
                };
                if !self.desk.config.directory.may_flag(&actor) {
                    return Ok(Some(field_error(
                        "title",
                        "You are not allowed to turn messages into tickets; ask a Switchboard admin.",
                    )));
                }
                let form = match sub.create_form(&self.desk.config.directory.department_names()) {
                    Ok(f) => f,
                    Err(errors) => return Ok(Some(views::errors_response(&errors))),
                };
                let channel = ChannelRef::new(Platform::Slack, form.message.channel.clone());
                match self
                    .desk
                    .check_flag_limit(&actor, Some((&channel, &form.message.ts)))
                    .await
                {
                    Ok(()) => {}
                    Err(DeskError::Internal(e)) => return Err(e.into()),
                    Err(e) => return Ok(Some(field_error("title", &e.chat_message()))),
                }
                // Stored before the modal closes; the inbox worker fetches the message and
                // makes the ticket, retrying through rate limits, and a resubmission of the
                // same view finds the row already there.
                let key = format!("slack:view:{}", sub.view_id);
                let row = json!({ "type": FORM_TYPE, "user": user, "form": form });
                self.desk
                    .store
                    .inbox_insert(&key, None, "slack", &row, self.desk.now())
                    .await?;
                Ok(None)
            }
            views::CSAT_COMMENT => {
                let meta: views::CommentMeta = serde_json::from_str(&sub.metadata)
                    .map_err(|e| InteractError::Malformed(format!("comment form metadata: {e}")))?;
                let ticket = TicketRef(meta.ticket);
                let comment = sub.values.get("comment").cloned().unwrap_or_default();
                let actor = match self.actor(user).await {
                    Ok(a) => a,
                    Err(e) => return Ok(Some(field_error("comment", &e.chat_message()))),
                };
                match self.desk.comment_rating(&actor, ticket, &comment).await {
                    Ok(csat) => {
                        self.answer(
                            meta.response_url.as_deref(),
                            message::csat_thanks(ticket, csat.score, csat.comment.as_deref()),
                            true,
                        );
                        Ok(None)
                    }
                    Err(e) => Ok(Some(field_error("comment", &e.chat_message()))),
                }
            }
            other => {
                tracing::debug!(callback_id = other, "submission of an unknown view");
                Ok(None)
            }
        }
    }
}

/// What a person typed: Slack sends `&`, `<` and `>` in command text as `&amp;`, `&lt;` and
/// `&gt;` (mentions keep their real brackets).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn field_error(block: &str, text: &str) -> Value {
    let mut errors = std::collections::BTreeMap::new();
    errors.insert(block.to_string(), message::truncate(text, 150));
    views::errors_response(&errors)
}

fn apology() -> Reply {
    Reply::ephemeral(Message::text(
        "Sorry, something went wrong on our side. Please try again.",
    ))
}

/// What a JSON value is, for a message about a payload of the wrong shape (never its content).
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "missing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Result<&'v str, InteractError> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| InteractError::Malformed(format!("payload has no {}", path.join("."))))
}
