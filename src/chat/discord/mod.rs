//! The Discord adapter, built on serenity: the gateway (reactions, edits, deletions and
//! replies into the inbox), completing those events into flags, delivering and editing
//! messages through the outbox, and the start-up check of configured channels.
//!
//! Owns everything Discord-shaped; the workers and the desk see only the neutral traits in
//! [`crate::chat`]. Must not decide routing, permissions or ticket state.

pub mod client;
pub mod endpoint;
pub mod gateway;
pub mod interact;
pub mod ratelimit;
pub mod render;
pub mod source;

use serde_json::Value;

use crate::chat::ChatError;
use crate::config::Config;
use crate::core::types::Platform;
use client::DiscordApi;

/// Discord permission bits the bot needs in a channel it posts alerts and digests in.
pub mod perms {
    /// ADMINISTRATOR (implies everything).
    pub const ADMINISTRATOR: u64 = 1 << 3;
    /// VIEW_CHANNEL.
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    /// SEND_MESSAGES.
    pub const SEND_MESSAGES: u64 = 1 << 11;
    /// EMBED_LINKS.
    pub const EMBED_LINKS: u64 = 1 << 14;
    /// ATTACH_FILES.
    pub const ATTACH_FILES: u64 = 1 << 15;
    /// READ_MESSAGE_HISTORY.
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    /// What posting alerts and digests needs, with a name for each bit.
    pub const NEEDED: &[(u64, &str)] = &[
        (VIEW_CHANNEL, "View Channel"),
        (SEND_MESSAGES, "Send Messages"),
        (EMBED_LINKS, "Embed Links"),
        (ATTACH_FILES, "Attach Files"),
        (READ_MESSAGE_HISTORY, "Read Message History"),
    ];
}

fn bits(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or(v.as_u64())
        .unwrap_or(0)
}

/// The permissions a member with `member_roles` has in `channel`, computed as Discord does:
/// @everyone and the member's roles, ADMINISTRATOR short-cuts, then the channel's @everyone
/// overwrite, the role overwrites together, and the member's own overwrite.
pub fn channel_permissions(
    guild: &Value,
    member_id: &str,
    member_roles: &[String],
    channel: &Value,
) -> u64 {
    let guild_id = guild["id"].as_str().unwrap_or_default();
    if guild["owner_id"].as_str() == Some(member_id) {
        return u64::MAX;
    }
    let roles = guild["roles"].as_array().cloned().unwrap_or_default();
    let role_bits = |id: &str| {
        roles
            .iter()
            .find(|r| r["id"].as_str() == Some(id))
            .map_or(0, |r| bits(&r["permissions"]))
    };
    let mut p = role_bits(guild_id);
    for r in member_roles {
        p |= role_bits(r);
    }
    if p & perms::ADMINISTRATOR != 0 {
        return u64::MAX;
    }
    let overwrites = channel["permission_overwrites"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let apply = |p: u64, o: &Value| (p & !bits(&o["deny"])) | bits(&o["allow"]);
    if let Some(o) = overwrites
        .iter()
        .find(|o| o["id"].as_str() == Some(guild_id))
    {
        p = apply(p, o);
    }
    let (mut allow, mut deny) = (0, 0);
    for o in overwrites.iter().filter(|o| {
        o["type"] == 0
            && o["id"]
                .as_str()
                .is_some_and(|id| member_roles.iter().any(|r| r == id))
    }) {
        allow |= bits(&o["allow"]);
        deny |= bits(&o["deny"]);
    }
    p = (p & !deny) | allow;
    if let Some(o) = overwrites
        .iter()
        .find(|o| o["type"] == 1 && o["id"].as_str() == Some(member_id))
    {
        p = apply(p, o);
    }
    p
}

/// One line per configured Discord channel the bot cannot use, saying what is missing and
/// how to fix it.
pub async fn channel_problems(api: &DiscordApi, config: &Config, bot_user: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, used_by) in config.channels_on(Platform::Discord) {
        if let Err(e) = check_channel(api, &id, bot_user).await {
            problems.push(format!("cannot post in discord:{id} ({used_by}): {e}"));
        }
    }
    problems
}

async fn check_channel(api: &DiscordApi, id: &str, bot_user: &str) -> Result<(), String> {
    let channel = match api.channel(id).await {
        Ok(c) => c,
        Err(ChatError::Permanent(e)) if e.contains("(50001)") => {
            return Err("the bot cannot see this channel; give its role View Channel there".into())
        }
        Err(ChatError::Permanent(e)) if e.contains("(10003)") => {
            return Err(
                "Discord knows no such channel; check the id (Developer Mode → Copy Channel ID)"
                    .into(),
            )
        }
        Err(e) => return Err(e.to_string()),
    };
    let Some(guild_id) = channel["guild_id"].as_str() else {
        return Ok(());
    };
    let guild = api.guild(guild_id).await.map_err(|e| e.to_string())?;
    let member = api
        .member(guild_id, bot_user)
        .await
        .map_err(|e| e.to_string())?;
    let roles: Vec<String> = member["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let have = channel_permissions(&guild, bot_user, &roles, &channel);
    let missing: Vec<&str> = perms::NEEDED
        .iter()
        .filter(|(bit, _)| have & bit == 0)
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the bot lacks {} there; allow them for its role in the channel's settings (Permissions)",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn permissions_follow_discords_order() {
        let all = perms::VIEW_CHANNEL | perms::SEND_MESSAGES;
        let guild = json!({
            "id": "1", "owner_id": "9",
            "roles": [
                { "id": "1", "permissions": all.to_string() },
                { "id": "5", "permissions": (perms::EMBED_LINKS).to_string() },
                { "id": "6", "permissions": (perms::ADMINISTRATOR).to_string() }
            ]
        });
        let open = json!({ "permission_overwrites": [] });
        assert_eq!(
            channel_permissions(&guild, "2", &["5".into()], &open),
            all | perms::EMBED_LINKS
        );
        let muted = json!({ "permission_overwrites": [
            { "id": "1", "type": 0, "allow": "0", "deny": perms::SEND_MESSAGES.to_string() },
            { "id": "5", "type": 0, "allow": perms::SEND_MESSAGES.to_string(), "deny": "0" }
        ]});
        assert_ne!(
            channel_permissions(&guild, "2", &["5".into()], &muted) & perms::SEND_MESSAGES,
            0,
            "role allow beats @everyone deny"
        );
        assert_eq!(
            channel_permissions(&guild, "2", &[], &muted) & perms::SEND_MESSAGES,
            0
        );
        let member_deny = json!({ "permission_overwrites": [
            { "id": "2", "type": 1, "allow": "0", "deny": perms::VIEW_CHANNEL.to_string() }
        ]});
        assert_eq!(
            channel_permissions(&guild, "2", &["5".into()], &member_deny) & perms::VIEW_CHANNEL,
            0
        );
        assert_eq!(
            channel_permissions(&guild, "2", &["6".into()], &member_deny),
            u64::MAX,
            "administrator"
        );
        assert_eq!(
            channel_permissions(&guild, "9", &[], &member_deny),
            u64::MAX,
            "owner"
        );
    }
}
