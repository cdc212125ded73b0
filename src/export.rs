//! Command exports: the `commands/` specs as Discord application-command JSON and as the
//! command part of a Slack app manifest.
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
        OptionKind::Ticket | OptionKind::Department => v["autocomplete"] = json!(true),
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

/// The command part of a Slack app manifest: slash commands and the message shortcut, inside
/// a minimal manifest (display information and bot user) that Slack's schema accepts.
pub fn slack_manifest(set: &CommandSet) -> Value {
    let commands: Vec<Value> = set
        .slash_commands()
        .map(|c| {
            json!({
                "command": format!("/{}", c.name),
                "description": c.description,
                "usage_hint": slack_usage_hint(c),
                // Mentions arrive as <@U123|name>, so users are resolved by id, not by name.
                "should_escape": true,
            })
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
    json!({
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "Switchboard",
            "description": "Flag a message, get a routed ticket.",
        },
        "features": {
            "bot_user": {"display_name": "Switchboard", "always_online": true},
            "slash_commands": commands,
            "shortcuts": shortcuts,
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
            ["ticket", "kudos", "digest", "metric", "Create ticket"]
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
        let v = slack_manifest(&set);
        let cmds = v["features"]["slash_commands"].as_array().unwrap();
        assert!(cmds.iter().all(|c| c["should_escape"] == true));
        assert_eq!(
            v["features"]["shortcuts"][0]["callback_id"],
            "create_ticket"
        );
    }
}
