//! Discord rendering: a neutral [`Message`] as a create/edit message body (content, embeds,
//! buttons and `allowed_mentions`).
//!
//! Owns Discord's limits (2,000 characters of content; at most 10 embeds, 6,000 characters
//! across them, 256 in a title, 4,096 in a description, 25 fields of 256/1,024) and says when
//! something was left out ("…and N more not shown here" with where to read everything) rather
//! than cutting silently. Owns mention safety: every body carries `allowed_mentions` with
//! `parse: []`, naming only the users and roles the message means to ping, and re-posted text
//! is neutralised as well. Must not decide content.

use serde_json::{json, Value};

use crate::core::message::{
    neutralize_mentions, split_text, truncate, ButtonStyle, Field, Mention, Message,
};
use crate::core::types::Platform;

/// Re-posted text made harmless on Discord: no mention pings anyone
/// ([`neutralize_mentions`]), and no masked link (`[label](url)`, which shows `label` and
/// leads to `url`) stays live: the `]` before `(` is escaped, so the text shows as written.
pub fn neutral(text: &str) -> String {
    neutralize_mentions(text).replace("](", "\\](")
}

/// Discord's limit on message content.
pub const MAX_CONTENT: usize = 2000;
/// Discord's limit on embeds per message.
pub const MAX_EMBEDS: usize = 10;
/// Discord's limit on characters across all embeds of a message.
pub const MAX_EMBED_TOTAL: usize = 6000;
/// Discord's limit on fields per embed.
pub const MAX_FIELDS: usize = 25;
/// Discord's limit on an embed title.
const MAX_TITLE: usize = 256;
/// Discord's limit on an embed description.
const MAX_DESCRIPTION: usize = 4096;
/// Discord's limit on a field name.
const MAX_FIELD_NAME: usize = 256;
/// Discord's limit on a field value.
const MAX_FIELD_VALUE: usize = 1024;
/// Discord's limit on an embed footer.
const MAX_FOOTER: usize = 2048;
/// Characters kept free for the "…and N more" footer.
const FOOTER_RESERVE: usize = 400;
/// The accent colour of Switchboard's embeds.
const COLOUR: u32 = 0x3B82F6;

/// The message's intended pings in Discord's syntax, and the ids `allowed_mentions` lists.
fn mentions(msg: &Message) -> (String, Vec<String>, Vec<String>) {
    let ok = |id: &str| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit());
    let (mut users, mut roles, mut text) = (Vec::new(), Vec::new(), Vec::new());
    for m in &msg.mentions {
        match m {
            Mention::User(u) if u.platform == Platform::Discord && ok(&u.id) => {
                text.push(format!("<@{}>", u.id));
                users.push(u.id.clone());
            }
            Mention::Group(g) if g.platform == Platform::Discord && ok(&g.id) => {
                text.push(format!("<@&{}>", g.id));
                roles.push(g.id.clone());
            }
            _ => {}
        }
    }
    (text.join(" "), users, roles)
}

fn fields(group: &[Field], inline: bool) -> Vec<Value> {
    group
        .iter()
        .map(|f| {
            let name = truncate(&neutral(&f.name), MAX_FIELD_NAME);
            let value = truncate(&neutral(&f.value), MAX_FIELD_VALUE);
            json!({
                "name": if name.trim().is_empty() { "\u{200B}".to_string() } else { name },
                "value": if value.trim().is_empty() { "\u{200B}".to_string() } else { value },
                "inline": inline && f.value.chars().count() <= 40
            })
        })
        .collect()
}

/// Characters an embed counts toward the 6,000 limit.
fn embed_size(e: &Value) -> usize {
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    len(&e["title"])
        + len(&e["description"])
        + len(&e["footer"]["text"])
        + len(&e["author"]["name"])
        + e["fields"].as_array().map_or(0, |f| {
            f.iter().map(|f| len(&f["name"]) + len(&f["value"])).sum()
        })
}

/// Adds `fields` to `current`, starting new embeds so none holds more than 25 fields or
/// more than the per-message budget; pushes the finished embeds to `out`.
fn add_fields(out: &mut Vec<Value>, mut current: Value, group: &[Field], inline: bool) {
    let budget = MAX_EMBED_TOTAL - FOOTER_RESERVE;
    let mut list: Vec<Value> = Vec::new();
    for f in fields(group, inline) {
        let size = embed_size(&json!({ "fields": [f.clone()] }));
        let current_size = embed_size(&current) + embed_size(&json!({ "fields": list }));
        if !list.is_empty() && (list.len() == MAX_FIELDS || current_size + size > budget) {
            current["fields"] = json!(std::mem::take(&mut list));
            out.push(std::mem::replace(
                &mut current,
                json!({ "type": "rich", "color": COLOUR }),
            ));
        }
        list.push(f);
    }
    if !list.is_empty() {
        current["fields"] = json!(list);
    }
    out.push(current);
}

/// Every embed the message would need without limits, in reading order.
fn all_embeds(msg: &Message) -> Vec<Value> {
    let mut out = Vec::new();
    let mut first = json!({ "type": "rich", "color": COLOUR });
    if let Some(title) = &msg.title {
        first["title"] = json!(truncate(&neutral(title), MAX_TITLE));
        if let Some(link) = msg
            .link
            .as_deref()
            .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
        {
            first["url"] = json!(link);
        }
    }
    let text = neutral(&msg.text);
    let mut descriptions = split_text(&text, MAX_DESCRIPTION).into_iter();
    if let Some(d) = descriptions.next() {
        first["description"] = json!(d);
    }
    let rest: Vec<String> = descriptions.collect();
    if rest.is_empty() {
        add_fields(&mut out, first, &msg.fields, true);
    } else {
        out.push(first);
        for d in rest {
            out.push(json!({ "type": "rich", "color": COLOUR, "description": d }));
        }
        add_fields(
            &mut out,
            json!({ "type": "rich", "color": COLOUR }),
            &msg.fields,
            true,
        );
        if out.last().is_some_and(|e| embed_size(e) == 0) {
            out.pop();
        }
    }
    for sec in &msg.sections {
        let mut e = json!({
            "type": "rich", "color": COLOUR,
            "title": truncate(&neutral(&sec.heading), MAX_TITLE)
        });
        let text = neutral(&sec.text);
        let mut descriptions = split_text(&text, MAX_DESCRIPTION).into_iter();
        if let Some(d) = descriptions.next() {
            e["description"] = json!(d);
        }
        add_fields(&mut out, e, &sec.fields, false);
        for d in descriptions {
            out.push(json!({ "type": "rich", "color": COLOUR, "description": d }));
        }
    }
    out
}

/// Keeps as many embeds as Discord allows (10, 6,000 characters in all, with room for the
/// note); the last kept one says how many were left out and where to read everything.
fn fit(mut embeds: Vec<Value>, full_view: Option<&str>) -> Vec<Value> {
    let total: usize = embeds.iter().map(embed_size).sum();
    if embeds.len() <= MAX_EMBEDS && total <= MAX_EMBED_TOTAL {
        return embeds;
    }
    let budget = MAX_EMBED_TOTAL - FOOTER_RESERVE;
    let mut kept = Vec::new();
    let mut used = 0;
    let mut rest = embeds.drain(..);
    for e in rest.by_ref() {
        let size = embed_size(&e);
        if kept.len() >= MAX_EMBEDS || used + size > budget {
            // Keep a first embed even when it alone is too big: shorten its description.
            if kept.is_empty() {
                let mut e = e;
                let room = budget.saturating_sub(
                    size - e["description"].as_str().map_or(0, |d| d.chars().count()),
                );
                let d = e["description"].as_str().unwrap_or("").to_string();
                e["description"] = json!(truncate(&d, room.max(1)));
                used += embed_size(&e);
                kept.push(e);
                continue;
            }
            let left = 1 + rest.len();
            let note = format!(
                "…and {left} more not shown here (Discord shows at most {MAX_EMBED_TOTAL} characters in {MAX_EMBEDS} embeds). {}",
                full_view.map_or_else(|| "`/ticket show` has the full text.".to_string(), neutral)
            );
            if let Some(last) = kept.last_mut() {
                last["footer"] = json!({ "text": truncate(&note, MAX_FOOTER.min(FOOTER_RESERVE)) });
            }
            return kept;
        }
        used += size;
        kept.push(e);
    }
    kept
}

fn components(msg: &Message) -> Vec<Value> {
    msg.buttons
        .chunks(5)
        .take(5)
        .map(|row| {
            let buttons: Vec<Value> = row
                .iter()
                .map(|b| {
                    json!({
                        "type": 2,
                        "style": match b.style {
                            ButtonStyle::Primary => 1,
                            ButtonStyle::Secondary => 2,
                            ButtonStyle::Danger => 4,
                        },
                        "label": truncate(&b.label, 80),
                        "custom_id": truncate(&b.action_id, 100)
                    })
                })
                .collect();
            json!({ "type": 1, "components": buttons })
        })
        .collect()
}

/// The body of a create or edit: a plain message (text only) goes in `content`; anything
/// with a title, fields, sections or buttons becomes embeds. Intended pings lead the content
/// and are the only ones `allowed_mentions` permits.
pub fn render(msg: &Message) -> Value {
    let (pings, users, roles) = mentions(msg);
    let plain = msg.title.is_none()
        && msg.fields.is_empty()
        && msg.sections.is_empty()
        && msg.buttons.is_empty()
        && msg.text.chars().count() + pings.chars().count() < MAX_CONTENT;
    let mut body = json!({
        "allowed_mentions": { "parse": [], "users": users, "roles": roles, "replied_user": false }
    });
    if plain {
        let text = neutral(&msg.text);
        body["content"] = json!(if pings.is_empty() {
            text
        } else {
            format!("{pings} {text}")
        });
        body["embeds"] = json!([]);
    } else {
        body["content"] = json!(pings);
        body["embeds"] = json!(fit(all_embeds(msg), msg.full_view.as_deref()));
    }
    body["components"] = json!(components(msg));
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::message::{ButtonAction, Section};
    use crate::core::types::{RoleRef, TicketRef, UserRef};

    fn total(body: &Value) -> usize {
        body["embeds"]
            .as_array()
            .unwrap()
            .iter()
            .map(embed_size)
            .sum()
    }

    #[test]
    fn plain_text_is_content_and_pings_nobody() {
        let body = render(&Message::text(
            "Thanks! This is now T-1. cc @everyone <@&55> <@66>",
        ));
        let content = body["content"].as_str().unwrap();
        assert!(content.starts_with("Thanks!"));
        assert!(
            !content.contains("@everyone") && !content.contains("<@"),
            "{content}"
        );
        assert_eq!(body["allowed_mentions"]["parse"], json!([]));
        assert_eq!(body["allowed_mentions"]["users"], json!([]));
    }

    #[test]
    fn masked_links_in_quoted_text_are_shown_as_written_not_followed() {
        let hostile = "Please [click here](https://evil.example/login) or [x](<https://e.example>)";
        let msg = Message {
            title: Some("T-3 [Log in](https://evil.example/login)".into()),
            fields: vec![Field {
                name: "Quote".into(),
                value: hostile.into(),
            }],
            ..Message::text(hostile)
        };
        let body = render(&msg);
        // Every string Discord would render: no unescaped `](` anywhere.
        fn strings(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
                Value::Object(o) => o.values().for_each(|x| strings(x, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        strings(&body, &mut all);
        for s in &all {
            assert!(!s.replace("\\](", "").contains("]("), "{s}");
        }
        // The text still reads the same, with the link's address in plain sight.
        assert!(
            all.iter()
                .any(|s| s.contains(r"[click here\](https://evil.example/login)")),
            "{all:?}"
        );
    }

    #[test]
    fn intended_mentions_are_the_only_ones_allowed() {
        let msg = Message {
            mentions: vec![
                Mention::User(UserRef::new(Platform::Discord, "42")),
                Mention::Group(RoleRef::new(Platform::Discord, "77")),
                Mention::User(UserRef::new(Platform::Slack, "UALICE")),
            ],
            ..Message::text("T-1 is waiting")
        };
        let body = render(&msg);
        assert_eq!(body["content"], "<@42> <@&77> T-1 is waiting");
        assert_eq!(body["allowed_mentions"]["users"], json!(["42"]));
        assert_eq!(body["allowed_mentions"]["roles"], json!(["77"]));
    }

    #[test]
    fn an_alert_is_an_embed_with_buttons() {
        let msg = Message {
            title: Some("T-7 Refund".into()),
            text: "charged twice".into(),
            fields: vec![Field {
                name: "Status".into(),
                value: "open".into(),
            }],
            buttons: vec![
                ButtonAction::Claim.button(TicketRef(7)),
                ButtonAction::Resolve.button(TicketRef(7)),
            ],
            link: Some("https://discord.com/channels/1/2/3".into()),
            ..Message::default()
        };
        let body = render(&msg);
        let e = &body["embeds"][0];
        assert_eq!(e["title"], "T-7 Refund");
        assert_eq!(e["url"], "https://discord.com/channels/1/2/3");
        assert_eq!(e["fields"][0]["name"], "Status");
        let row = &body["components"][0];
        assert_eq!(row["type"], 1);
        assert_eq!(row["components"][0]["custom_id"], "claim:7");
        assert_eq!(row["components"][0]["style"], 1);
        assert_eq!(row["components"][1]["style"], 4);
    }

    #[test]
    fn long_text_becomes_an_embed_within_limits_with_the_ticket_reference_first() {
        let msg = Message {
            title: Some(format!("T-9 {}", "very long title ".repeat(40))),
            text: "word ".repeat(3000),
            full_view: Some("Everything: `/ticket show T-9`.".into()),
            ..Message::default()
        };
        let body = render(&msg);
        assert!(body["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("T-9 "));
        assert!(body["embeds"][0]["title"].as_str().unwrap().chars().count() <= MAX_TITLE);
        assert!(total(&body) <= MAX_EMBED_TOTAL, "{}", total(&body));
        let footer = body["embeds"].as_array().unwrap().last().unwrap()["footer"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            footer.starts_with("…and 3 more not shown here") && footer.contains("/ticket show T-9"),
            "{footer}"
        );
    }

    #[test]
    fn at_the_limits_nothing_is_cut_and_past_them_the_rest_is_named() {
        // 25 fields of 20 + 200 characters, a 256-character title and 244 of text: 6,000
        // exactly, all shown.
        let at = Message {
            title: Some("t".repeat(256)),
            text: "d".repeat(244),
            fields: (0..25)
                .map(|i| Field {
                    name: format!("{i:0>20}"),
                    value: "v".repeat(200),
                })
                .collect(),
            ..Message::default()
        };
        let body = render(&at);
        let embeds = body["embeds"].as_array().unwrap();
        let shown: usize = embeds
            .iter()
            .map(|e| e["fields"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(shown, 25);
        assert!(embeds.iter().all(|e| e.get("footer").is_none()));
        assert_eq!(total(&body), MAX_EMBED_TOTAL);
        // One character more no longer fits: the rest is named, not silently cut.
        let past = Message {
            text: "d".repeat(245),
            ..at
        };
        let body = render(&past);
        assert!(total(&body) <= MAX_EMBED_TOTAL);
        let footer = body["embeds"].as_array().unwrap().last().unwrap()["footer"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(footer.contains("more not shown here"), "{footer}");
        // A digest of 40 departments: at most 10 embeds and 6,000 characters, ending with the note.
        let sections: Vec<Section> = (0..40)
            .map(|i| Section {
                heading: format!("team-{i}"),
                fields: (0..8)
                    .map(|j| Field {
                        name: format!("F{j}"),
                        value: "x".repeat(30),
                    })
                    .collect(),
                text: "Top tags: a 1".into(),
            })
            .collect();
        let digest = Message {
            title: Some("Digest".into()),
            sections,
            full_view: Some("Everything: `/digest preview weekly`.".into()),
            ..Message::default()
        };
        let body = render(&digest);
        let embeds = body["embeds"].as_array().unwrap();
        assert!(embeds.len() <= MAX_EMBEDS);
        assert!(total(&body) <= MAX_EMBED_TOTAL);
        let footer = embeds.last().unwrap()["footer"]["text"].as_str().unwrap();
        assert!(
            footer.contains(" more not shown here") && footer.contains("/digest preview weekly"),
            "{footer}"
        );
        let shown = embeds.len() - 1;
        assert!(
            footer.starts_with(&format!("…and {} more", 41 - shown - 1)),
            "{footer}"
        );
    }
}
