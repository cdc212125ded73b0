//! Discord interactions: slash commands, the "Create ticket" message context menu and its
//! modal, buttons (Claim, Resolve, CSAT ratings and the comment form) and autocomplete, read
//! from Discord's interaction JSON whether it came over the gateway or the HTTP endpoint.
//!
//! Owns the first response, which Discord wants within 3 s: work that is done within the
//! budget is answered in that response; slower work is deferred and the answer follows by
//! editing the original response. Errors are ephemeral and say how to fix the input; answers
//! meant for everyone that come late are posted through the outbox. Must not decide
//! permissions or ticket rules (the desk does) and never pings anyone unasked.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};

use super::client::DiscordApi;
use super::render;
use super::source::{jump_link, FORM_TYPE};
use crate::core::command::OptionKind;
use crate::core::directory::Actor;
use crate::core::form::{check_create, MAX_TITLE};
use crate::core::message::{
    self, truncate, Button, ButtonAction, ButtonStyle, Field, Message, OutKind, Outgoing, Reply,
    Target, Visibility,
};
use crate::core::routing::RouteInput;
use crate::core::types::{ChannelRef, Platform, RoleRef, TicketRef, UserRef};
use crate::desk::{title_from, Desk, DeskError};

/// How long a handler works before deferring; Discord allows 3 s for the first response.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(2000);

/// Discord's interaction types.
mod kind {
    pub const PING: u64 = 1;
    pub const COMMAND: u64 = 2;
    pub const COMPONENT: u64 = 3;
    pub const AUTOCOMPLETE: u64 = 4;
    pub const MODAL_SUBMIT: u64 = 5;
}

/// Discord's interaction callback types.
mod callback {
    pub const PONG: u64 = 1;
    pub const MESSAGE: u64 = 4;
    pub const DEFERRED_MESSAGE: u64 = 5;
    pub const UPDATE_MESSAGE: u64 = 7;
    pub const AUTOCOMPLETE: u64 = 8;
    pub const MODAL: u64 = 9;
}

/// The EPHEMERAL message flag.
const EPHEMERAL: u64 = 1 << 6;

/// `custom_id` prefixes of the modals and the reopen button.
const CREATE_MODAL: &str = "create_ticket";
const COMMENT_MODAL: &str = "csat_comment";
const REOPEN_CREATE: &str = "reopen_create";

/// The most choices Discord takes in an autocomplete answer.
const MAX_CHOICES: usize = 25;

/// The longest choice name Discord takes, in characters.
const MAX_CHOICE_NAME: usize = 100;

/// `text` as an autocomplete choice name Discord accepts and shows on one line: control
/// characters and line or paragraph separators become spaces, bidirectional overrides and
/// marks (which could make a title read backwards) go, spaces are squeezed, and the result is
/// 1 to 100 characters.
fn choice_name(text: &str) -> String {
    let spaced: String = text
        .chars()
        .filter(|c| {
            !matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let name = truncate(
        &spaced.split_whitespace().collect::<Vec<_>>().join(" "),
        MAX_CHOICE_NAME,
    );
    if name.is_empty() {
        "…".to_string()
    } else {
        name
    }
}

/// Why an interaction could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum InteractError {
    /// The payload lacks something Discord always sends: the sender's fault (400).
    #[error("malformed interaction: {0}")]
    Malformed(String),
    /// Our own failure (the database): worth Discord's retry, never the sender's fault (500).
    #[error("could not answer the interaction: {0}")]
    Internal(String),
}

/// Answers Discord interactions for one desk.
#[derive(Debug, Clone)]
pub struct DiscordInteractions {
    desk: Desk,
    api: DiscordApi,
    budget: Duration,
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// Who acted: the member in a server (with roles), the user in a DM.
fn actor(payload: &Value) -> Result<Actor, InteractError> {
    let id = str_at(payload, &["member", "user", "id"])
        .or_else(|| str_at(payload, &["user", "id"]))
        .ok_or_else(|| InteractError::Malformed("no user".into()))?;
    let roles = payload["member"]["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|r| RoleRef::new(Platform::Discord, r))
                .collect()
        })
        .unwrap_or_default();
    Ok(Actor {
        user: UserRef::new(Platform::Discord, id),
        roles,
    })
}

/// The callback that shows `message`, privately or to the channel.
fn message_body(message: &Message, ephemeral: bool) -> Value {
    let mut data = render::render(message);
    if ephemeral {
        data["flags"] = json!(EPHEMERAL);
    }
    json!({ "type": callback::MESSAGE, "data": data })
}

/// The callback for a command's reply.
pub fn reply_body(reply: &Reply) -> Value {
    message_body(&reply.message, reply.visibility == Visibility::Ephemeral)
}

fn private(text: impl Into<String>) -> Value {
    message_body(&Message::text(text), true)
}

fn apology() -> Value {
    private("Sorry, something went wrong on our side; it has been logged. Please try again in a moment.")
}

/// A text input (type 4) in its own action row.
fn text_input(
    id: &str,
    label: &str,
    value: &str,
    max: usize,
    required: bool,
    paragraph: bool,
) -> Value {
    let mut input = json!({
        "type": 4, "custom_id": id, "label": label,
        "style": if paragraph { 2 } else { 1 },
        "max_length": max, "required": required
    });
    if !value.is_empty() {
        input["value"] = json!(truncate(value, max));
    }
    json!({ "type": 1, "components": [input] })
}

/// The create-ticket modal for message `message` in `channel`, prefilled.
fn create_modal(channel: &str, message: &str, values: &BTreeMap<String, String>) -> Value {
    let v = |k: &str| values.get(k).map(String::as_str).unwrap_or("");
    json!({
        "type": callback::MODAL,
        "data": {
            "custom_id": format!("{CREATE_MODAL}:{channel}:{message}"),
            "title": "Create ticket",
            "components": [
                text_input("title", "Title", v("title"), MAX_TITLE, true, false),
                text_input("department", "Department", v("department"), 100, true, false),
                text_input("priority", "Priority (low, normal, high, urgent)", v("priority"), 10, true, false),
                text_input("tags", "Tags (comma-separated)", v("tags"), 200, false, false),
            ]
        }
    })
}

/// The values of a submitted modal, by input `custom_id`.
fn modal_values(payload: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for row in payload["data"]["components"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for c in row["components"].as_array().into_iter().flatten() {
            if let (Some(id), Some(v)) = (c["custom_id"].as_str(), c["value"].as_str()) {
                out.insert(id.to_string(), v.to_string());
            }
        }
    }
    out
}

/// The options of a chat-input command as `(subcommand, values)`; a user option becomes
/// `discord:ID`.
fn command_values(data: &Value) -> (String, BTreeMap<String, String>) {
    let sub = data["options"]
        .as_array()
        .and_then(|o| o.first())
        .cloned()
        .unwrap_or(Value::Null);
    let mut values = BTreeMap::new();
    for o in sub["options"].as_array().into_iter().flatten() {
        let Some(name) = o["name"].as_str() else {
            continue;
        };
        let value = match (&o["value"], o["type"].as_u64()) {
            (Value::String(s), Some(6)) => format!("discord:{s}"),
            (Value::String(s), _) => s.clone(),
            (Value::Null, _) => continue,
            (other, _) => other.to_string(),
        };
        values.insert(name.to_string(), value);
    }
    (sub["name"].as_str().unwrap_or_default().to_string(), values)
}

impl DiscordInteractions {
    /// Interactions on `desk`, answering through `api`.
    pub fn new(desk: Desk, api: DiscordApi) -> Self {
        Self {
            desk,
            api,
            budget: DEFAULT_BUDGET,
        }
    }

    /// Changes how long a handler works before deferring (tests use zero for the late path).
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The first response to an interaction (Discord's JSON), as the callback body.
    pub async fn respond(&self, payload: &Value) -> Result<Value, InteractError> {
        match payload["type"].as_u64() {
            Some(kind::PING) => Ok(json!({ "type": callback::PONG })),
            Some(kind::COMMAND) if payload["data"]["type"].as_u64() == Some(3) => {
                self.context_menu(payload).await
            }
            Some(kind::COMMAND) => self.command(payload).await,
            Some(kind::COMPONENT) => self.component(payload).await,
            Some(kind::AUTOCOMPLETE) => self.autocomplete(payload).await,
            Some(kind::MODAL_SUBMIT) => self.modal(payload).await,
            other => Err(InteractError::Malformed(format!(
                "unknown interaction type {other:?}"
            ))),
        }
    }

    /// Runs `work` for up to the budget: its reply is the first response when it is ready in
    /// time; otherwise the interaction is deferred (privately) and the reply edits the
    /// original response later, an answer for everyone being posted through the outbox.
    async fn timed<F>(&self, payload: &Value, work: F) -> Value
    where
        F: Future<Output = Reply> + Send + 'static,
    {
        let mut task = self.desk.tasks.spawn(work);
        let ready = if self.budget.is_zero() {
            None
        } else {
            tokio::time::timeout(self.budget, &mut task).await.ok()
        };
        match ready {
            Some(Ok(reply)) => reply_body(&reply),
            Some(Err(e)) => {
                tracing::error!(error = %e, "a Discord interaction handler panicked");
                apology()
            }
            None => {
                let this = self.clone();
                let app = payload["application_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let token = payload["token"].as_str().unwrap_or_default().to_string();
                let channel = payload["channel_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                self.desk.tasks.spawn(async move {
                    match task.await {
                        Ok(reply) => this.late(&app, &token, &channel, reply).await,
                        Err(e) => {
                            tracing::error!(error = %e, "a Discord interaction handler panicked")
                        }
                    }
                });
                json!({ "type": callback::DEFERRED_MESSAGE, "data": { "flags": EPHEMERAL } })
            }
        }
    }

    async fn late(&self, app: &str, token: &str, channel: &str, reply: Reply) {
        let private = match reply.visibility {
            Visibility::Ephemeral => reply.message,
            Visibility::InChannel => {
                // The deferred response is private; the answer for everyone is a post.
                let queued = self
                    .desk
                    .store
                    .enqueue(
                        vec![Outgoing {
                            kind: OutKind::Post,
                            target: Target::Channel {
                                channel: ChannelRef::new(Platform::Discord, channel),
                                thread: None,
                            },
                            ticket: None,
                            message: reply.message,
                        }],
                        self.desk.now(),
                    )
                    .await;
                match queued {
                    Ok(()) => Message::text("Done; the answer is posted in the channel."),
                    Err(e) => {
                        tracing::error!(error = %e, "could not queue a late Discord answer");
                        Message::text("Sorry, the answer could not be posted; please try again.")
                    }
                }
            }
        };
        if let Err(e) = self
            .api
            .edit_original(app, token, &render::render(&private))
            .await
        {
            tracing::error!(error = %e, "could not send a late Discord interaction answer");
        }
    }

    async fn command(&self, payload: &Value) -> Result<Value, InteractError> {
        let actor = actor(payload)?;
        let data = &payload["data"];
        let name = data["name"]
            .as_str()
            .ok_or_else(|| InteractError::Malformed("command without a name".into()))?
            .to_string();
        let (sub, values) = command_values(data);
        let inv = match self.desk.commands.invocation(&name, &sub, values) {
            Ok(inv) => inv,
            Err(e) => {
                self.desk.telemetry.command(&name, "user_error");
                return Ok(private(DeskError::from(e).chat_message()));
            }
        };
        let channel =
            str_at(payload, &["channel_id"]).map(|c| ChannelRef::new(Platform::Discord, c));
        let desk = self.desk.clone();
        Ok(self
            .timed(payload, async move {
                crate::cmd::run(&desk, &actor, channel.as_ref(), &inv).await
            })
            .await)
    }

    async fn component(&self, payload: &Value) -> Result<Value, InteractError> {
        let actor = actor(payload)?;
        let id = str_at(payload, &["data", "custom_id"])
            .ok_or_else(|| InteractError::Malformed("component without a custom_id".into()))?;
        if let Some(rest) = id.strip_prefix(&format!("{REOPEN_CREATE}:")) {
            // Reopen the form with what was typed, read back from the error message.
            let (channel, message) = rest.split_once(':').unwrap_or((rest, ""));
            let mut values = BTreeMap::new();
            for f in payload["message"]["embeds"][0]["fields"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let (Some(k), Some(v)) = (f["name"].as_str(), f["value"].as_str()) {
                    let v = if v == "\u{200B}" { "" } else { v };
                    values.insert(k.to_lowercase(), v.to_string());
                }
            }
            return Ok(create_modal(channel, message, &values));
        }
        let Some((action, ticket)) = ButtonAction::parse(id) else {
            return Ok(private(
                "That button is no longer supported; use `/ticket` commands instead.",
            ));
        };
        match action {
            ButtonAction::Comment => Ok(json!({
                "type": callback::MODAL,
                "data": {
                    "custom_id": format!("{COMMENT_MODAL}:{}", ticket.0),
                    "title": format!("Comment on {ticket}"),
                    "components": [text_input("comment", "What should we know?", "", 1000, true, true)]
                }
            })),
            ButtonAction::Rate(score) => match self.desk.rate(&actor, ticket, score).await {
                // The question is replaced by the thanks (with the comment button).
                Ok(o) if o.recorded => Ok(json!({
                    "type": callback::UPDATE_MESSAGE,
                    "data": render::render(&message::csat_thanks(ticket, score, None))
                })),
                Ok(o) => Ok(private(format!(
                    "Your rating of {ticket} was already recorded ({}/5); thanks!",
                    o.csat.score
                ))),
                Err(e) => Ok(private(e.chat_message())),
            },
            ButtonAction::Claim
            | ButtonAction::Resolve
            | ButtonAction::KbSolved(_)
            | ButtonAction::KbNotHelpful
            | ButtonAction::Web => {
                // The alert itself is edited through the outbox; the presser hears privately.
                let desk = self.desk.clone();
                let id = id.to_string();
                Ok(self
                    .timed(payload, async move {
                        match desk.press(&actor, &id).await {
                            Ok(r) => Reply::ephemeral(r.message),
                            Err(e) => Reply::ephemeral(Message::text(e.chat_message())),
                        }
                    })
                    .await)
            }
        }
    }

    async fn context_menu(&self, payload: &Value) -> Result<Value, InteractError> {
        let actor = actor(payload)?;
        let desk = &self.desk;
        if !desk.config.directory.may_flag(&actor) {
            return Ok(private(
                "You are not allowed to turn messages into tickets. Ask a Switchboard admin to add you (or your role) under [flagging] in the configuration.",
            ));
        }
        let target = str_at(payload, &["data", "target_id"])
            .ok_or_else(|| InteractError::Malformed("context menu without a target".into()))?;
        let channel = str_at(payload, &["channel_id"])
            .ok_or_else(|| InteractError::Malformed("context menu without a channel".into()))?;
        let channel_ref = ChannelRef::new(Platform::Discord, channel);
        if let Some(t) = desk
            .store
            .ticket_by_source(&channel_ref, target)
            .await
            .map_err(|e| InteractError::Internal(e.to_string()))?
        {
            return Ok(private(format!(
                "This message is already {} ({}, {}); `/ticket show {}` has its history.",
                t.id, t.status, t.department, t.id
            )));
        }
        // Asked before the form opens, so nobody fills one in for nothing.
        if let Err(e) = desk.check_flag_limit(&actor, None).await {
            return Ok(private(e.chat_message()));
        }
        let text = str_at(
            payload,
            &["data", "resolved", "messages", target, "content"],
        )
        .unwrap_or("");
        let decision = desk.config.router.route(&RouteInput {
            platform: Platform::Discord,
            channel: Some(&channel_ref),
            emoji: None,
            text,
            reporter_roles: &[],
            labels: &[],
        });
        let values = BTreeMap::from([
            ("title".to_string(), title_from(text)),
            ("department".to_string(), decision.department),
            ("priority".to_string(), decision.priority.to_string()),
            ("tags".to_string(), decision.tags.join(", ")),
        ]);
        Ok(create_modal(channel, target, &values))
    }

    async fn modal(&self, payload: &Value) -> Result<Value, InteractError> {
        let actor = actor(payload)?;
        let id = str_at(payload, &["data", "custom_id"])
            .ok_or_else(|| InteractError::Malformed("modal without a custom_id".into()))?;
        let values = modal_values(payload);
        if let Some(ticket) = id.strip_prefix(&format!("{COMMENT_MODAL}:")) {
            let ticket =
                TicketRef(ticket.parse().map_err(|_| {
                    InteractError::Malformed(format!("comment form for `{ticket}`"))
                })?);
            let comment = values.get("comment").cloned().unwrap_or_default();
            return Ok(
                match self.desk.comment_rating(&actor, ticket, &comment).await {
                    Ok(csat) => json!({
                        "type": callback::UPDATE_MESSAGE,
                        "data": render::render(&message::csat_thanks(ticket, csat.score, csat.comment.as_deref()))
                    }),
                    Err(e) => private(e.chat_message()),
                },
            );
        }
        let Some(rest) = id.strip_prefix(&format!("{CREATE_MODAL}:")) else {
            return Ok(private(
                "That form is no longer supported; use the Create ticket menu again.",
            ));
        };
        let (channel, message_id) = rest
            .split_once(':')
            .ok_or_else(|| InteractError::Malformed(format!("create form `{id}`")))?;
        if !self.desk.config.directory.may_flag(&actor) {
            return Ok(private(
                "You are not allowed to turn messages into tickets; ask a Switchboard admin.",
            ));
        }
        let v = |k: &str| values.get(k).map(String::as_str).unwrap_or("");
        let departments = self.desk.config.directory.department_names();
        match check_create(
            v("title"),
            v("department"),
            v("priority"),
            v("tags"),
            &departments,
        ) {
            Err(errors) => {
                // Discord shows no errors inside a modal: say what to fix, keep what was
                // typed, and offer to reopen the form with it.
                let fix: Vec<String> = errors.iter().map(|(k, e)| format!("• {k}: {e}")).collect();
                let typed = ["title", "department", "priority", "tags"]
                    .iter()
                    .map(|k| Field {
                        name: k[..1].to_uppercase() + &k[1..],
                        value: v(k).to_string(),
                    })
                    .collect();
                let msg = Message {
                    title: Some("The ticket was not created yet".into()),
                    text: format!("Please fix:\n{}", fix.join("\n")),
                    fields: typed,
                    buttons: vec![Button {
                        action_id: format!("{REOPEN_CREATE}:{channel}:{message_id}"),
                        label: "Edit and resubmit".into(),
                        style: ButtonStyle::Primary,
                    }],
                    ..Message::default()
                };
                Ok(message_body(&msg, true))
            }
            Ok(form) => {
                let channel_ref = ChannelRef::new(Platform::Discord, channel);
                if let Err(e) = self
                    .desk
                    .check_flag_limit(&actor, Some((&channel_ref, message_id)))
                    .await
                {
                    return Ok(private(e.chat_message()));
                }
                // Stored first; the inbox worker fetches the message and makes the ticket,
                // retrying through rate limits, and a repeated submission adds nothing.
                let interaction = str_at(payload, &["id"]).unwrap_or_default();
                let row = json!({
                    "type": FORM_TYPE,
                    "user_id": actor.user.id,
                    "roles": actor.roles.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
                    "guild_id": payload["guild_id"],
                    "channel_id": channel,
                    "message_id": message_id,
                    "title": form.title,
                    "department": form.department,
                    "priority": form.priority.as_str(),
                    "tags": form.tags,
                });
                self.desk
                    .store
                    .inbox_insert(
                        &format!("discord:modal:{interaction}"),
                        super::source::order_key(&row).as_deref(),
                        Platform::Discord.as_str(),
                        &row,
                        self.desk.now(),
                    )
                    .await
                    .map_err(|e| InteractError::Internal(e.to_string()))?;
                let link = jump_link(payload["guild_id"].as_str(), channel, message_id);
                Ok(private(format!(
                    "Creating a {} ticket for {} from {link}; the reply under that message will name it.",
                    form.priority, form.department
                )))
            }
        }
    }

    async fn autocomplete(&self, payload: &Value) -> Result<Value, InteractError> {
        let data = &payload["data"];
        let sub = data["options"]
            .as_array()
            .and_then(|o| o.first())
            .cloned()
            .unwrap_or(Value::Null);
        let focused = sub["options"]
            .as_array()
            .and_then(|o| o.iter().find(|x| x["focused"] == true))
            .cloned()
            .unwrap_or(Value::Null);
        let typed = focused["value"].as_str().unwrap_or("").to_string();
        let name = focused["name"].as_str().unwrap_or("");
        let command = data["name"].as_str().unwrap_or("");
        let kind = self
            .desk
            .commands
            .slash(command)
            .and_then(|c| c.subcommand(sub["name"].as_str().unwrap_or("")))
            .and_then(|s| s.option(name))
            .map(|o| o.kind);
        let choices: Vec<Value> = match kind {
            Some(OptionKind::Department) => self
                .desk
                .config
                .directory
                .department_names()
                .into_iter()
                .filter(|d| d.to_lowercase().contains(&typed.to_lowercase()))
                .take(MAX_CHOICES)
                .map(|d| json!({ "name": d, "value": d }))
                .collect(),
            Some(OptionKind::Ticket) => {
                // Offered as the command itself would allow: only tickets this person may see
                // and act on with this subcommand, searched by the store over every ticket.
                let actor = actor(payload)?;
                let tickets = crate::cmd::ticket_choices(
                    &self.desk,
                    &actor,
                    command,
                    sub["name"].as_str().unwrap_or(""),
                    &typed,
                    MAX_CHOICES as i64,
                )
                .await;
                let tickets = match tickets {
                    Ok(t) => t,
                    Err(e) => {
                        // Autocomplete has no way to show an error; the list stays empty.
                        tracing::error!(error = %e, "could not search tickets for autocomplete");
                        vec![]
                    }
                };
                tickets
                    .iter()
                    .map(|t| {
                        json!({
                            "name": choice_name(&format!("{} {} ({})", t.id, message::neutralize_mentions(&t.title), t.department)),
                            "value": t.id.to_string()
                        })
                    })
                    .collect()
            }
            Some(OptionKind::SavedReply) => {
                // The replies of the ticket already chosen (its department's and the global
                // ones), else of every department this person may send in.
                let actor = actor(payload)?;
                let ticket = sub["options"]
                    .as_array()
                    .and_then(|o| o.iter().find(|x| x["name"] == "ticket"))
                    .and_then(|x| x["value"].as_str())
                    .and_then(|v| v.parse().ok());
                let replies =
                    crate::cmd::reply::choices(&self.desk, &actor, ticket, &typed, MAX_CHOICES)
                        .await;
                match replies {
                    Ok(replies) => replies
                        .iter()
                        .map(|r| {
                            let scope = r.department.as_deref().unwrap_or("all");
                            let text = message::neutralize_mentions(&r.text);
                            json!({
                                "name": choice_name(&format!("{} ({scope}): {text}", r.name)),
                                "value": r.name
                            })
                        })
                        .collect(),
                    Err(e) => {
                        tracing::error!(error = %e, "could not read saved replies for autocomplete");
                        vec![]
                    }
                }
            }
            _ => vec![],
        };
        Ok(json!({ "type": callback::AUTOCOMPLETE, "data": { "choices": choices } }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_names_are_one_clean_line_of_1_to_100_characters() {
        assert_eq!(
            choice_name("T-1 Bad\u{7}\u{1b}[31m title\r\nsecond\u{2028}line\t(billing)"),
            "T-1 Bad [31m title second line (billing)"
        );
        // A right-to-left override would make the rest of the name read backwards.
        assert_eq!(
            choice_name("T-2 \u{202E}gnp.exe\u{202C} (it)"),
            "T-2 gnp.exe (it)"
        );
        let long = choice_name(&format!("T-3 {} (support)", "é".repeat(200)));
        assert_eq!(long.chars().count(), MAX_CHOICE_NAME);
        assert_eq!(choice_name("\u{0}\n\u{202E}"), "…");
    }
}
