//! Slack modals: the "Create ticket" form opened from the message shortcut and the CSAT
//! comment form, built as Block Kit views and read back from `view_submission` payloads.
//!
//! Owns the views' layout, their `callback_id`s and `private_metadata`, and turning submitted
//! values into checked input or Slack's per-field errors (`response_action: errors`). Must not
//! open views or create tickets; `interact` does that.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::blocks::escape;
use crate::core::form::check_create;
use crate::core::message::truncate;
use crate::core::types::{Priority, TicketRef};

/// `callback_id` of the create-ticket modal.
pub const CREATE_TICKET: &str = "create_ticket";
/// `callback_id` of the CSAT comment modal.
pub const CSAT_COMMENT: &str = "csat_comment";

/// Longest title a ticket keeps.
pub use crate::core::form::MAX_TITLE;
/// Slack's limit on options in a static select.
const MAX_OPTIONS: usize = 100;
/// Slack's limit on `private_metadata`.
const MAX_METADATA: usize = 3000;

/// The message a create-ticket modal was opened for, carried in its `private_metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlaggedMessage {
    /// Channel id.
    pub channel: String,
    /// The message's ts.
    pub ts: String,
}

/// What the form starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateDefaults {
    /// Title (the message's first line).
    pub title: String,
    /// The department the rules chose.
    pub department: String,
    /// The priority the rules chose.
    pub priority: Priority,
    /// The tags the rules chose.
    pub tags: Vec<String>,
    /// A preview of the message, shown above the form.
    pub preview: String,
}

/// What a valid create-ticket submission asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateForm {
    /// The flagged message.
    pub message: FlaggedMessage,
    /// Title.
    pub title: String,
    /// Department.
    pub department: String,
    /// Priority.
    pub priority: Priority,
    /// Tags.
    pub tags: Vec<String>,
}

fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": text })
}

fn option(label: &str, value: &str) -> Value {
    json!({ "text": plain(&truncate(label, 75)), "value": value })
}

fn select(options: &[(String, String)], initial: &str) -> Value {
    let opts: Vec<Value> = options.iter().map(|(l, v)| option(l, v)).collect();
    let mut el = json!({ "type": "static_select", "action_id": "value", "options": opts });
    if let Some((l, v)) = options.iter().find(|(_, v)| v == initial) {
        el["initial_option"] = option(l, v);
    }
    el
}

fn text_input(initial: &str, max: usize, multiline: bool) -> Value {
    let mut el = json!({
        "type": "plain_text_input", "action_id": "value", "max_length": max, "multiline": multiline
    });
    if !initial.is_empty() {
        el["initial_value"] = json!(truncate(initial, max));
    }
    el
}

fn input(block_id: &str, label: &str, element: Value, optional: bool, hint: Option<&str>) -> Value {
    let mut b = json!({
        "type": "input", "block_id": block_id, "label": plain(label),
        "element": element, "optional": optional
    });
    if let Some(h) = hint {
        b["hint"] = plain(h);
    }
    b
}

/// The create-ticket modal for `message`, prefilled with `defaults`; `departments` are the
/// configured department names.
pub fn create_ticket_modal(
    message: &FlaggedMessage,
    defaults: &CreateDefaults,
    departments: &[&str],
) -> Value {
    let department = if departments.len() <= MAX_OPTIONS {
        let opts: Vec<(String, String)> = departments
            .iter()
            .map(|d| (d.to_string(), d.to_string()))
            .collect();
        select(&opts, &defaults.department)
    } else {
        text_input(&defaults.department, 80, false)
    };
    let priorities: Vec<(String, String)> = Priority::ALL
        .iter()
        .map(|p| (p.as_str().to_string(), p.as_str().to_string()))
        .collect();
    let preview = truncate(&escape(&defaults.preview), 2900);
    json!({
        "type": "modal",
        "callback_id": CREATE_TICKET,
        "title": plain("Create ticket"),
        "submit": plain("Create"),
        "close": plain("Cancel"),
        "private_metadata": metadata(message),
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": if preview.trim().is_empty() { "_(the message has no text)_".to_string() } else { format!("> {}", preview.replace('\n', "\n> ")) } } },
            input("title", "Title", text_input(&defaults.title, MAX_TITLE, false), false, None),
            input("department", "Department", department, false, Some("Where the ticket goes; the routing rules chose this one.")),
            input("priority", "Priority", select(&priorities, defaults.priority.as_str()), false, None),
            input("tags", "Tags", text_input(&defaults.tags.join(", "), 300, false), true, Some("Comma-separated, e.g. billing, refund")),
        ]
    })
}

fn metadata(v: &impl Serialize) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if s.len() > MAX_METADATA {
        String::new()
    } else {
        s
    }
}

/// The comment modal for the rating of `ticket`; `response_url` lets the submission update
/// the direct message that was rated.
pub fn comment_modal(ticket: TicketRef, response_url: Option<&str>) -> Value {
    json!({
        "type": "modal",
        "callback_id": CSAT_COMMENT,
        "title": plain("Your feedback"),
        "submit": plain("Send"),
        "close": plain("Cancel"),
        "private_metadata": metadata(&CommentMeta { ticket: ticket.0, response_url: response_url.map(str::to_string) }),
        "blocks": [
            input("comment", &format!("Anything to add about {ticket}?"), text_input("", 2000, true), false, None),
        ]
    })
}

/// What a comment modal carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentMeta {
    /// The ticket number.
    pub ticket: i64,
    /// Where to update the rated direct message.
    pub response_url: Option<String>,
}

/// A submitted view: its callback id, id, metadata and values by block id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// `view.callback_id`.
    pub callback_id: String,
    /// `view.id`.
    pub view_id: String,
    /// `view.private_metadata`.
    pub metadata: String,
    /// Each input block's value: typed text or the selected option's value.
    pub values: BTreeMap<String, String>,
}

impl Submission {
    /// Reads a `view_submission` payload; an error names what it lacks (a view, its
    /// `callback_id` or its `id`, all of which Slack always sends).
    pub fn read(payload: &Value) -> Result<Self, String> {
        let view = &payload["view"];
        if !view.is_object() {
            return Err("no view".into());
        }
        // A view opened without a callback id comes back with an empty one (an unknown form,
        // ignored); a view always has an id.
        let callback_id = view["callback_id"]
            .as_str()
            .ok_or("the view has no callback_id")?;
        let view_id = view["id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or("the view has no id")?;
        let mut values = BTreeMap::new();
        if let Some(blocks) = view["state"]["values"].as_object() {
            for (block, actions) in blocks {
                let Some(actions) = actions.as_object() else {
                    continue;
                };
                for state in actions.values() {
                    let v = state["value"]
                        .as_str()
                        .or(state["selected_option"]["value"].as_str());
                    if let Some(v) = v {
                        values.insert(block.clone(), v.to_string());
                    }
                }
            }
        }
        Ok(Self {
            callback_id: callback_id.to_string(),
            view_id: view_id.to_string(),
            metadata: view["private_metadata"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            values,
        })
    }

    fn value(&self, block: &str) -> &str {
        self.values.get(block).map_or("", |v| v.trim())
    }

    /// Checks a create-ticket submission against `departments`, giving Slack's per-block
    /// errors when something must be fixed.
    pub fn create_form(
        &self,
        departments: &[&str],
    ) -> Result<CreateForm, BTreeMap<String, String>> {
        let message: Option<FlaggedMessage> = serde_json::from_str(&self.metadata).ok();
        let checked = check_create(
            self.value("title"),
            self.value("department"),
            self.value("priority"),
            self.value("tags"),
            departments,
        );
        match (message, checked) {
            (Some(message), Ok(v)) => Ok(CreateForm {
                message,
                title: v.title,
                department: v.department,
                priority: v.priority,
                tags: v.tags,
            }),
            (None, Ok(_)) => Err(BTreeMap::from([(
                "title".to_string(),
                "This form lost track of its message; close it and use the shortcut again."
                    .to_string(),
            )])),
            (_, Err(errors)) => Err(errors),
        }
    }
}

/// Slack's answer to a submission with errors: shown under each named block.
pub fn errors_response(errors: &BTreeMap<String, String>) -> Value {
    json!({ "response_action": "errors", "errors": errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(values: &[(&str, &str)], meta: &str) -> Submission {
        Submission {
            callback_id: CREATE_TICKET.into(),
            view_id: "V1".into(),
            metadata: meta.into(),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const META: &str = r#"{"channel":"C1","ts":"1.2"}"#;

    #[test]
    fn a_submission_without_its_view_or_view_id_is_not_read() {
        let ok = json!({ "view": { "id": "V1", "callback_id": CREATE_TICKET, "private_metadata": META } });
        let s = Submission::read(&ok).unwrap();
        assert_eq!((s.view_id.as_str(), s.metadata.as_str()), ("V1", META));
        // The view id is the submission's dedupe key: without it every such submission would
        // share one key, so it is refused rather than read as empty.
        for (bad, why) in [
            (json!({}), "no view"),
            (json!({ "view": "V1" }), "no view"),
            (json!({ "view": { "callback_id": CREATE_TICKET } }), "no id"),
            (
                json!({ "view": { "id": "", "callback_id": CREATE_TICKET } }),
                "no id",
            ),
            (
                json!({ "view": { "id": 7, "callback_id": CREATE_TICKET } }),
                "no id",
            ),
            (json!({ "view": { "id": "V1" } }), "no callback_id"),
        ] {
            let e = Submission::read(&bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_valid_form_is_read_with_the_departments_spelling() {
        let s = submission(
            &[
                ("title", " Refund please "),
                ("department", "Billing"),
                ("priority", "high"),
                ("tags", "#Money, vip"),
            ],
            META,
        );
        let f = s.create_form(&["billing", "it"]).unwrap();
        assert_eq!(f.title, "Refund please");
        assert_eq!(f.department, "billing");
        assert_eq!(f.priority, Priority::High);
        assert_eq!(f.tags, ["money", "vip"]);
        assert_eq!(f.message.ts, "1.2");
    }

    #[test]
    fn every_bad_field_gets_its_own_error() {
        let s = submission(
            &[
                ("title", "   "),
                ("department", "nope"),
                ("priority", "asap"),
                ("tags", "ok, not ok!"),
            ],
            META,
        );
        let e = s.create_form(&["billing"]).unwrap_err();
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            ["department", "priority", "tags", "title"]
        );
        assert!(e["department"].contains("billing"));
        let v = errors_response(&e);
        assert_eq!(v["response_action"], "errors");
    }

    #[test]
    fn the_modal_prefills_and_fits_slacks_limits() {
        let m = create_ticket_modal(
            &FlaggedMessage {
                channel: "C1".into(),
                ts: "1.2".into(),
            },
            &CreateDefaults {
                title: "x".repeat(500),
                department: "it".into(),
                priority: Priority::Urgent,
                tags: vec!["outage".into()],
                preview: "<!channel> down".into(),
            },
            &["billing", "it"],
        );
        assert_eq!(m["callback_id"], CREATE_TICKET);
        let blocks = m["blocks"].as_array().unwrap();
        assert_eq!(
            blocks[1]["element"]["initial_value"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            MAX_TITLE
        );
        assert_eq!(blocks[2]["element"]["initial_option"]["value"], "it");
        assert_eq!(blocks[3]["element"]["initial_option"]["value"], "urgent");
        assert!(!blocks[0].to_string().contains("<!channel>"));
        assert!(m["title"]["text"].as_str().unwrap().len() <= 24);
    }
}
