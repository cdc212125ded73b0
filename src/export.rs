//! Command exports: the `commands/` specs as Discord application-command JSON and as a
//! complete Slack app manifest for either connection mode.
//!
//! Owns the mapping from neutral option kinds to each platform's command schema. Must stay in
//! step with Discord's `ApplicationCommandUpdateRequest` and Slack's manifest schema (tests
//! validate both against the published schemas).

use serde_json::{json, Value};

use crate::core::command::{CommandSet, OptionKind, OptionSpec};
use crate::core::types::{Priority, Status};

/// Discord's option type numbers.
mod discord_type {
    pub const SUB_COMMAND: u8 = 1;
    pub const STRING: u8 = 3;
    pub const INTEGER: u8 = 4;
    pub const USER: u8 = 6;
    pub const NUMBER: u8 = 10;
    pub const CHAT_INPUT: u8 = 1;
    pub const MESSAGE: u8 = 3;
}

fn discord_option(o: &OptionSpec) -> Value {
    let kind = match o.kind {
        OptionKind::User => discord_type::USER,
        OptionKind::Integer => discord_type::INTEGER,
        OptionKind::Number => discord_type::NUMBER,
        _ => discord_type::STRING,
    };
    let mut v = json!({
        "type": kind,
        "name": o.name,
        "description": o.description,
        "required": o.required,
    });
    let choices = |names: Vec<(&str, &str)>| -> Value {
        names
            .into_iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect()
    };
    match o.kind {
        OptionKind::Priority => {
            v["choices"] = choices(
                Priority::ALL
                    .iter()
                    .map(|p| (p.as_str(), p.as_str()))
                    .collect(),
            );
        }
        OptionKind::Status => {
            v["choices"] = choices(
                Status::ALL
                    .iter()
                    .map(|s| (s.label(), s.as_str()))
                    .collect(),
            );
        }
        OptionKind::Ticket | OptionKind::Department | OptionKind::SavedReply => {
            v["autocomplete"] = json!(true)
        }
        OptionKind::Text => v["max_length"] = json!(4000),
        OptionKind::Word | OptionKind::Tags => v["max_length"] = json!(200),
        OptionKind::Integer => {
            v["min_value"] = json!(1);
            v["max_value"] = json!(365);
        }
        OptionKind::User | OptionKind::Number => {}
    }
    v
}

/// The body of Discord's bulk overwrite (`PUT /applications/{id}/commands`): every slash
/// command with its subcommands, and every message action as a message command.
pub fn discord_commands(set: &CommandSet) -> Value {
    let mut out: Vec<Value> = set
        .slash_commands()
        .map(|c| {
            json!({
                "type": discord_type::CHAT_INPUT,
                "name": c.name,
                "description": c.description,
                "contexts": [0],
                "options": c.subcommands.iter().map(|s| json!({
                    "type": discord_type::SUB_COMMAND,
                    "name": s.name,
                    "description": s.description,
                    "options": s.options.iter().map(discord_option).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    out.extend(set.message_actions().map(|a| {
        json!({
            "type": discord_type::MESSAGE,
            "name": a.name,
            // Discord requires an empty description for message commands.
            "description": "",
            "contexts": [0],
        })
    }));
    Value::Array(out)
}

/// A one-line hint Slack shows while typing: `new <title> | show <ticket> | …`.
fn slack_usage_hint(c: &crate::core::command::CommandSpec) -> String {
    let hint = c
        .subcommands
        .iter()
        .map(|s| {
            let req: Vec<String> = s
                .options
                .iter()
                .filter(|o| o.required)
                .map(|o| format!("<{}>", o.name))
                .collect();
            if req.is_empty() {
                s.name.clone()
            } else {
                format!("{} {}", s.name, req.join(" "))
            }
        })
        .collect::<Vec<_>>()
        .join(" | ");
    crate::core::message::truncate(&hint, 1000)
}

/// How the Slack app talks to Switchboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackMode {
    /// Socket Mode: Switchboard opens a WebSocket to Slack (no public URL; needs an
    /// app-level token with `connections:write`).
    Socket,
    /// HTTP: Slack posts to Switchboard's public HTTPS endpoints under this base URL.
    Http {
        /// e.g. `https://switchboard.example.com`.
        base_url: String,
    },
}

/// Why a manifest could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The base URL is not an http(s) URL.
    #[error("`{0}` is not a URL Slack can reach; give the public base URL, e.g. --url https://switchboard.example.com")]
    BadUrl(String),
}

impl SlackMode {
    /// Socket Mode, or HTTP mode at `url` (checked).
    pub fn http(url: &str) -> Result<Self, ExportError> {
        let base = url.trim().trim_end_matches('/');
        let parsed = url::Url::parse(base).map_err(|_| ExportError::BadUrl(url.into()))?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(ExportError::BadUrl(url.into()));
        }
        Ok(SlackMode::Http {
            base_url: base.to_string(),
        })
    }

    fn url(&self, path: &str) -> Option<String> {
        match self {
            SlackMode::Socket => None,
            SlackMode::Http { base_url } => Some(format!("{base_url}{path}")),
        }
    }
}

/// The bot scopes the Slack adapter needs, each with why: exactly what its Web API calls and
/// event subscriptions require (the fake Slack refuses a method whose scope was not granted).
pub const SLACK_BOT_SCOPES: &[(&str, &str)] = &[
    ("channels:history", "read a flagged message and its thread in public channels (conversations.replies); message.channels events"),
    ("channels:read", "check the bot can post in configured public channels (conversations.info)"),
    ("chat:write", "thread replies, alerts and their updates, digests, CSAT direct messages"),
    ("commands", "the slash commands and the Create ticket shortcut"),
    ("files:write", "the digest's chart (files.getUploadURLExternal, files.completeUploadExternal)"),
    ("groups:history", "the same in private channels the bot was invited to; message.groups events"),
    ("groups:read", "check the bot can post in configured private channels"),
    ("reactions:read", "reaction_added events (flag emojis)"),
    ("usergroups:read", "who is in the user groups the configuration names (usergroups.users.list)"),
    ("users:read", "people's display names on tickets (users.info)"),
];

/// The events the Slack adapter subscribes to.
pub const SLACK_BOT_EVENTS: &[&str] = &["message.channels", "message.groups", "reaction_added"];

/// A complete Slack app manifest for `mode`: the slash commands and the message shortcut from
/// `commands/`, the bot scopes and events the adapter uses, interactivity, and the App Home
/// messages tab the CSAT direct messages appear in.
pub fn slack_manifest(set: &CommandSet, mode: &SlackMode) -> Value {
    let commands: Vec<Value> = set
        .slash_commands()
        .map(|c| {
            let mut cmd = json!({
                "command": format!("/{}", c.name),
                "description": c.description,
                "usage_hint": slack_usage_hint(c),
                // Mentions arrive as <@U123|name>, so users are resolved by id, not by name.
                "should_escape": true,
            });
            if let Some(url) = mode.url("/slack/commands") {
                cmd["url"] = json!(url);
            }
            cmd
        })
        .collect();
    let shortcuts: Vec<Value> = set
        .message_actions()
        .map(|a| {
            json!({
                "name": a.name,
                "type": "message",
                "callback_id": a.callback_id,
                "description": a.description,
            })
        })
        .collect();
    let mut events = json!({ "bot_events": SLACK_BOT_EVENTS });
    let mut interactivity = json!({ "is_enabled": true });
    if let Some(url) = mode.url("/slack/events") {
        events["request_url"] = json!(url);
    }
    if let Some(url) = mode.url("/slack/interactivity") {
        interactivity["request_url"] = json!(url);
    }
    json!({
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "Switchboard",
            "description": "Flag a message, get a routed ticket.",
            "long_description": "Switchboard turns flagged messages and /ticket commands into tickets, routes them to the right department channel with Claim and Resolve buttons, asks reporters how it went, and posts weekly digests of customer metrics for leaders. Self-hosted: your tickets stay in your database.",
            "background_color": "#1d3557",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": false,
                "messages_tab_enabled": true,
                "messages_tab_read_only_enabled": true,
            },
            "bot_user": {"display_name": "Switchboard", "always_online": true},
            "slash_commands": commands,
            "shortcuts": shortcuts,
        },
        "oauth_config": {
            "scopes": {
                "bot": SLACK_BOT_SCOPES.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            },
        },
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": false,
            "socket_mode_enabled": *mode == SlackMode::Socket,
            "token_rotation_enabled": false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discord_export_has_every_command_and_the_message_action() {
        let set = CommandSet::builtin().unwrap();
        let v = discord_commands(&set);
        let names: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ticket",
                "kudos",
                "digest",
                "metric",
                "reply",
                "kb",
                "Create ticket"
            ]
        );
        let ticket = &v[0];
        let assign = ticket["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "assign")
            .unwrap();
        assert_eq!(assign["options"][1]["type"], 6, "user option");
        assert_eq!(
            assign["options"][0]["autocomplete"], true,
            "ticket autocompletes"
        );
    }

    #[test]
    fn slack_export_escapes_mentions_and_lists_the_shortcut() {
        let set = CommandSet::builtin().unwrap();
        let v = slack_manifest(&set, &SlackMode::Socket);
        let cmds = v["features"]["slash_commands"].as_array().unwrap();
        assert!(cmds.iter().all(|c| c["should_escape"] == true));
        assert_eq!(
            v["features"]["shortcuts"][0]["callback_id"],
            "create_ticket"
        );
        assert_eq!(v["settings"]["socket_mode_enabled"], true);
        assert!(v["settings"]["event_subscriptions"]
            .get("request_url")
            .is_none());
    }

    #[test]
    fn http_mode_points_every_request_url_at_the_base() {
        let set = CommandSet::builtin().unwrap();
        let mode = SlackMode::http("https://desk.example.com/").unwrap();
        let v = slack_manifest(&set, &mode);
        assert_eq!(v["settings"]["socket_mode_enabled"], false);
        assert_eq!(
            v["settings"]["event_subscriptions"]["request_url"],
            "https://desk.example.com/slack/events"
        );
        assert_eq!(
            v["settings"]["interactivity"]["request_url"],
            "https://desk.example.com/slack/interactivity"
        );
        for c in v["features"]["slash_commands"].as_array().unwrap() {
            assert_eq!(c["url"], "https://desk.example.com/slack/commands");
        }
        assert!(SlackMode::http("desk.example.com").is_err());
        assert!(SlackMode::http("ftp://desk.example.com").is_err());
    }
}
