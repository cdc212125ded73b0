//! Block Kit rendering: a neutral [`Message`] as Slack blocks plus the `text` fallback.
//!
//! Owns Slack's text rules: mrkdwn escaping (`&`, `<`, `>`), so no re-posted text can form a
//! mention, link or `<!here>`; Slack's limits (3,000 characters per text object, 10 fields per
//! section, 50 blocks, 150 characters in a header) with an explicit "…" rather than a silent
//! cut. Must not decide content.

use serde_json::{json, Value};

use crate::core::message::{
    neutralize_mentions, split_text, truncate, ButtonStyle, Field, Mention, Message,
};
use crate::core::types::Platform;

/// Slack's limit on one text object.
pub const MAX_TEXT: usize = 3000;
/// Slack's limit on blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on fields in one section.
const MAX_FIELDS: usize = 10;

/// Escapes the three characters Slack's mrkdwn treats as control characters, after turning
/// mentions into plain names: the result can neither ping nor link.
pub fn escape(text: &str) -> String {
    neutralize_mentions(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn mrkdwn(text: &str) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

/// Splits escaped text into pieces of at most [`MAX_TEXT`] characters, on line breaks where it
/// can.
fn chunks(text: &str) -> Vec<String> {
    split_text(text, MAX_TEXT)
}

/// Labelled values as a section's `fields`: the label bold, each at most 2,000 characters.
fn fields(group: &[Field]) -> Vec<Value> {
    group
        .iter()
        .map(|f| {
            mrkdwn(&truncate(
                &format!("*{}*\n{}", escape(&f.name), escape(&f.value)),
                2000,
            ))
        })
        .collect()
}

/// The message's intended mentions in Slack's syntax (`<@U123>`, `<!subteam^S123>`): Slack
/// accounts and user groups only, each id checked to be plain letters and digits.
fn mentions(msg: &Message) -> String {
    let ok = |id: &str| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
    msg.mentions
        .iter()
        .filter_map(|m| match m {
            Mention::User(u) if u.platform == Platform::Slack && ok(&u.id) => {
                Some(format!("<@{}>", u.id))
            }
            Mention::Group(g) if g.platform == Platform::Slack && ok(&g.id) => {
                Some(format!("<!subteam^{}>", g.id))
            }
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `text` fallback and `blocks` of a message.
pub fn render(msg: &Message) -> (String, Value) {
    let mut blocks: Vec<Value> = Vec::new();
    let pings = mentions(msg);
    if let Some(title) = &msg.title {
        let title = escape(title);
        let heading = match &msg.link {
            Some(link) => format!(
                "*<{}|{}>*",
                link.replace(['<', '>', '|'], ""),
                truncate(&title, 2000)
            ),
            None => format!("*{}*", truncate(&title, 2000)),
        };
        blocks.push(json!({ "type": "section", "text": mrkdwn(&heading) }));
    }
    if !pings.is_empty() {
        // Built from ids, never from text: the only mentions in the message.
        blocks.push(json!({ "type": "section", "text": mrkdwn(&pings) }));
    }
    for piece in chunks(&escape(&msg.text)) {
        blocks.push(json!({ "type": "section", "text": mrkdwn(&piece) }));
    }
    for group in msg.fields.chunks(MAX_FIELDS) {
        blocks.push(json!({ "type": "section", "fields": fields(group) }));
    }
    // Each titled part: a divider, its heading with its first ten fields, then its text.
    for sec in &msg.sections {
        blocks.push(json!({ "type": "divider" }));
        let heading = mrkdwn(&format!("*{}*", truncate(&escape(&sec.heading), 2000)));
        let mut groups = sec.fields.chunks(MAX_FIELDS);
        match groups.next() {
            Some(first) => {
                blocks.push(json!({ "type": "section", "text": heading, "fields": fields(first) }))
            }
            None => blocks.push(json!({ "type": "section", "text": heading })),
        }
        for group in groups {
            blocks.push(json!({ "type": "section", "fields": fields(group) }));
        }
        for piece in chunks(&escape(&sec.text)) {
            blocks.push(json!({ "type": "section", "text": mrkdwn(&piece) }));
        }
    }
    if !msg.buttons.is_empty() {
        let elements: Vec<Value> = msg
            .buttons
            .iter()
            .map(|b| {
                let mut button = json!({
                    "type": "button",
                    "text": { "type": "plain_text", "text": truncate(&b.label, 75) },
                    "action_id": b.action_id,
                    "value": b.action_id,
                });
                match b.style {
                    ButtonStyle::Primary => button["style"] = json!("primary"),
                    ButtonStyle::Danger => button["style"] = json!("danger"),
                    ButtonStyle::Secondary => {}
                }
                button
            })
            .collect();
        blocks.push(json!({ "type": "actions", "elements": elements }));
    }
    if blocks.len() > MAX_BLOCKS {
        let dropped = blocks.len() - (MAX_BLOCKS - 1);
        blocks.truncate(MAX_BLOCKS - 1);
        blocks.push(json!({
            "type": "context",
            "elements": [mrkdwn(&format!(
                "…and {dropped} more not shown here (Slack shows at most {MAX_BLOCKS} blocks). {}",
                msg.full_view.as_deref().map_or("`/ticket show` or the CLI has the full text.".to_string(), escape)
            ))]
        }));
    }
    let fallback = if pings.is_empty() {
        truncate(&escape(&msg.plain()), MAX_TEXT)
    } else {
        truncate(&format!("{pings} {}", escape(&msg.plain())), MAX_TEXT)
    };
    (fallback, Value::Array(blocks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::message::{ButtonAction, Section};
    use crate::core::types::TicketRef;

    fn all_text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(a) => a.iter().map(all_text).collect::<Vec<_>>().join(" "),
            Value::Object(o) => o.values().map(all_text).collect::<Vec<_>>().join(" "),
            _ => String::new(),
        }
    }

    #[test]
    fn reposted_text_pings_nobody_in_blocks_or_fallback() {
        let msg = Message {
            title: Some("<!channel> help".into()),
            text:
                "cc <!here> <!everyone> <!subteam^S1|@oncall> <@U123|bob> and <https://evil|click>"
                    .into(),
            fields: vec![Field {
                name: "Reporter".into(),
                value: "<@U9>".into(),
            }],
            ..Message::default()
        };
        let (text, blocks) = render(&msg);
        for rendered in [text, all_text(&blocks)] {
            for bad in ["<!", "<@", "<http", "|click>"] {
                assert!(!rendered.contains(bad), "`{bad}` survived in {rendered}");
            }
            assert!(
                rendered.contains("@bob") && rendered.contains("@oncall"),
                "{rendered}"
            );
        }
    }

    #[test]
    fn alerts_get_a_linked_title_fields_and_buttons() {
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
            link: Some("https://example.slack.com/archives/C1/p1".into()),
            mentions: vec![],
            attachment: None,
            full_view: None,
            sections: vec![],
        };
        let (text, blocks) = render(&msg);
        assert!(text.starts_with("T-7 Refund"));
        assert_eq!(
            blocks[0]["text"]["text"],
            "*<https://example.slack.com/archives/C1/p1|T-7 Refund>*"
        );
        assert_eq!(blocks[2]["fields"][0]["text"], "*Status*\nopen");
        let actions = &blocks[3]["elements"];
        assert_eq!(actions[0]["action_id"], "claim:7");
        assert_eq!(actions[0]["style"], "primary");
        assert_eq!(actions[1]["style"], "danger");
    }

    #[test]
    fn sections_get_a_divider_a_heading_with_fields_and_their_text() {
        let field = |i: usize| Field {
            name: format!("F{i}"),
            value: format!("<@U{i}> v{i}"),
        };
        let msg = Message {
            title: Some("Digest".into()),
            sections: vec![
                Section {
                    heading: "billing <!here>".into(),
                    fields: (0..12).map(field).collect(),
                    text: "Top tags: money 2".into(),
                },
                Section {
                    heading: "Shout-outs".into(),
                    fields: vec![],
                    text: "• Bob (from Alice): the fix".into(),
                },
            ],
            ..Message::default()
        };
        let (text, blocks) = render(&msg);
        let b = blocks.as_array().unwrap();
        let kinds: Vec<&str> = b.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "section", "divider", "section", "section", "section", "divider", "section",
                "section"
            ]
        );
        assert_eq!(b[2]["text"]["text"], "*billing @\u{200B}here*");
        assert_eq!(b[2]["fields"].as_array().unwrap().len(), MAX_FIELDS);
        assert_eq!(
            b[3]["fields"].as_array().unwrap().len(),
            2,
            "fields 11 and 12 follow"
        );
        assert_eq!(b[2]["fields"][0]["text"], "*F0*\n@U0 v0");
        assert_eq!(b[4]["text"]["text"], "Top tags: money 2");
        assert_eq!(b[6]["text"]["text"], "*Shout-outs*");
        assert!(
            text.contains("F11: @U11 v11") && text.contains("*Shout-outs*"),
            "{text}"
        );
        assert!(!all_text(&blocks).contains("<@"), "no field pings anyone");
    }

    #[test]
    fn long_text_is_split_within_limits_and_block_overflow_is_said() {
        let long = "line of text\n".repeat(2000);
        let (text, blocks) = render(&Message::text(long));
        assert!(text.chars().count() <= MAX_TEXT);
        let blocks = blocks.as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS);
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= MAX_TEXT);
            }
        }
        let huge = "x".repeat(MAX_TEXT * 60);
        let (_, blocks) = render(&Message::text(huge));
        let blocks = blocks.as_array().unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let last = blocks.last().unwrap()["elements"][0]["text"]
            .as_str()
            .unwrap();
        assert!(last.starts_with("…and 11 more not shown here"), "{last}");
        assert!(last.contains("`/ticket show`"), "{last}");
    }

    #[test]
    fn exactly_at_the_limit_nothing_is_cut_and_past_it_the_full_view_is_named() {
        // 50 text blocks of exactly 3,000 characters: all shown.
        let at = "y".repeat(MAX_TEXT * MAX_BLOCKS);
        let (_, blocks) = render(&Message::text(at));
        let blocks = blocks.as_array().unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        assert!(blocks.iter().all(|b| b["type"] == "section"));
        assert!(blocks
            .iter()
            .all(|b| b["text"]["text"].as_str().unwrap().chars().count() == MAX_TEXT));
        // One character more: 49 blocks, then "and 2 more" with where to read everything.
        let past = Message {
            full_view: Some("Everything: `/digest preview weekly`.".into()),
            ..Message::text("y".repeat(MAX_TEXT * MAX_BLOCKS + 1))
        };
        let (_, blocks) = render(&past);
        let blocks = blocks.as_array().unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let last = blocks.last().unwrap()["elements"][0]["text"]
            .as_str()
            .unwrap();
        assert!(last.starts_with("…and 2 more not shown here"), "{last}");
        assert!(
            last.ends_with("Everything: `/digest preview weekly`."),
            "{last}"
        );
    }
}
