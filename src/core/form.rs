//! The "Create ticket" form: the values a person may change before a flagged message becomes a
//! ticket (title, department, priority, tags) and their checks, shared by Slack's modal and
//! Discord's.
//!
//! Owns what a valid form is and the words that say how to fix one; must not know how a
//! platform shows a form or its errors.

use std::collections::BTreeMap;

use super::command::parse_tags;
use super::message::truncate;
use super::types::Priority;

/// The longest title kept.
pub const MAX_TITLE: usize = 120;

/// A checked form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateValues {
    /// Title.
    pub title: String,
    /// A configured department's name, as configured.
    pub department: String,
    /// Priority.
    pub priority: Priority,
    /// Tags.
    pub tags: Vec<String>,
}

/// Checks what was typed against the configured `departments`; on failure, what to fix by
/// field name (`title`, `department`, `priority`, `tags`).
pub fn check_create(
    title: &str,
    department: &str,
    priority: &str,
    tags: &str,
    departments: &[&str],
) -> Result<CreateValues, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let title = title.trim();
    if title.is_empty() {
        errors.insert("title".into(), "Give the ticket a title.".into());
    } else if title.chars().count() > MAX_TITLE {
        errors.insert(
            "title".into(),
            format!("Keep the title to {MAX_TITLE} characters."),
        );
    }
    let known = departments
        .iter()
        .find(|d| d.eq_ignore_ascii_case(department.trim()));
    if known.is_none() {
        errors.insert(
            "department".into(),
            format!("Pick one of: {}.", truncate(&departments.join(", "), 150)),
        );
    }
    let priority = priority.trim().parse::<Priority>();
    if priority.is_err() {
        errors.insert(
            "priority".into(),
            "Pick low, normal, high or urgent.".into(),
        );
    }
    let tags = parse_tags(tags).unwrap_or_else(|e| {
        errors.insert("tags".into(), truncate(&e, 150));
        vec![]
    });
    match (known, priority) {
        (Some(d), Ok(priority)) if errors.is_empty() => Ok(CreateValues {
            title: title.to_string(),
            department: d.to_string(),
            priority,
            tags,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_form_passes_and_each_bad_field_says_how_to_fix_it() {
        let depts = ["billing", "it"];
        let ok = check_create(" Refund ", "Billing", "high", "money, vip", &depts).unwrap();
        assert_eq!(ok.department, "billing");
        assert_eq!(ok.tags, ["money", "vip"]);
        let errs = check_create("", "sales", "asap", "a/b", &depts).unwrap_err();
        assert_eq!(errs.len(), 4);
        assert!(errs["department"].contains("billing, it"));
        let long = "x".repeat(MAX_TITLE + 1);
        assert!(check_create(&long, "it", "low", "", &depts).unwrap_err()["title"].contains("120"));
    }
}
