//! `switchboard tickets list|show|export`: read tickets from the store on the command line.
//!
//! Owns the CLI's text, CSV and JSON formats. Read-only: never changes a ticket. CSV cells
//! that a spreadsheet would run as a formula are prefixed with `'`.

use std::io::Write;

use serde_json::json;

use crate::core::ticket::{ThreadReply, Ticket, TicketEvent};
use crate::store::{DynStore, StoreError, TicketFilter};

/// Why a tickets command failed.
#[derive(Debug, thiserror::Error)]
pub enum TicketsCliError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// CSV encoding failed.
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    /// No such ticket.
    #[error("there is no ticket {0}")]
    NotFound(String),
}

/// One line per ticket.
pub fn write_list(out: &mut impl Write, tickets: &[Ticket]) -> std::io::Result<()> {
    if tickets.is_empty() {
        writeln!(out, "no tickets match")?;
    }
    for t in tickets {
        writeln!(
            out,
            "{:<7} {:<8} {:<20} {:<14} {}",
            t.id.to_string(),
            t.priority.as_str(),
            t.status.label(),
            t.department,
            t.title
        )?;
    }
    Ok(())
}

/// A ticket with its audit log and the replies in its thread (the admin's view: a deleted
/// reply is marked and keeps its text).
pub fn write_show(
    out: &mut impl Write,
    t: &Ticket,
    events: &[TicketEvent],
    replies: &[ThreadReply],
) -> std::io::Result<()> {
    writeln!(out, "{} {}", t.id, t.title)?;
    writeln!(out, "  status:     {}", t.status.label())?;
    writeln!(out, "  priority:   {}", t.priority)?;
    writeln!(out, "  department: {}", t.department)?;
    writeln!(out, "  reporter:   {}", t.reporter)?;
    writeln!(
        out,
        "  assignee:   {}",
        t.assignee.as_ref().map_or("-".into(), |a| a.to_string())
    )?;
    writeln!(out, "  tags:       {}", t.tags.join(", "))?;
    writeln!(out, "  created:    {}", t.created_at.to_rfc3339())?;
    if let Some(s) = &t.source {
        writeln!(out, "  source:     {} message {}", s.channel, s.message_id)?;
        if let Some(p) = &s.permalink {
            writeln!(out, "  link:       {p}")?;
        }
    }
    writeln!(out, "  body:\n    {}", t.body.replace('\n', "\n    "))?;
    writeln!(out, "  history:")?;
    for e in events {
        writeln!(
            out,
            "    {} {}: {}",
            e.at.to_rfc3339(),
            e.actor
                .as_ref()
                .map_or("switchboard".into(), |a| a.to_string()),
            e.kind.describe()
        )?;
    }
    if !replies.is_empty() {
        writeln!(out, "  replies:")?;
    }
    for r in replies {
        let mut marks = Vec::new();
        if let Some(at) = r.edited_at {
            marks.push(format!("edited {}", at.to_rfc3339()));
        }
        if let Some(at) = r.deleted_at {
            marks.push(format!("deleted {}", at.to_rfc3339()));
        }
        let marks = if marks.is_empty() {
            String::new()
        } else {
            format!(" [{}]", marks.join(", "))
        };
        writeln!(
            out,
            "    {} {} in {}{marks}:\n      {}",
            r.at.to_rfc3339(),
            r.author,
            r.channel,
            // Line by line: the breaks stay, and a terminal escape or bidirectional control a
            // sender hid in a reply is shown escaped, as in the logs.
            r.text
                .lines()
                .map(crate::logs::escape)
                .collect::<Vec<_>>()
                .join("\n      ")
        )?;
    }
    Ok(())
}

/// Makes a cell safe to open in a spreadsheet.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// Every ticket as CSV, one row each.
pub fn write_csv(out: impl Write, tickets: &[Ticket]) -> Result<(), TicketsCliError> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "ref",
        "title",
        "status",
        "priority",
        "department",
        "reporter",
        "assignee",
        "tags",
        "created_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "source_channel",
        "permalink",
    ])?;
    let ts = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or(String::new(), |t| t.to_rfc3339());
    for t in tickets {
        w.write_record([
            t.id.to_string(),
            cell(&t.title),
            t.status.as_str().to_string(),
            t.priority.as_str().to_string(),
            t.department.clone(),
            t.reporter.to_string(),
            t.assignee.as_ref().map_or(String::new(), |a| a.to_string()),
            cell(&t.tags.join(",")),
            t.created_at.to_rfc3339(),
            ts(t.first_response_at),
            ts(t.resolved_at),
            ts(t.closed_at),
            t.source
                .as_ref()
                .map_or(String::new(), |s| s.channel.to_string()),
            t.source
                .as_ref()
                .and_then(|s| s.permalink.clone())
                .unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Every ticket with its history and the replies in its thread (deleted ones with their
/// text and `deleted_at`: the export is the admin's) as a JSON array.
pub async fn write_json(
    out: &mut impl Write,
    store: &DynStore,
    tickets: &[Ticket],
) -> Result<(), TicketsCliError> {
    let mut all = Vec::with_capacity(tickets.len());
    for t in tickets {
        let events = store.events(t.id).await?;
        let replies = store.thread_replies(t.id).await?;
        all.push(json!({
            "ref": t.id.to_string(),
            "ticket": t,
            "events": events,
            "replies": replies,
        }));
    }
    serde_json::to_writer_pretty(&mut *out, &all).map_err(std::io::Error::other)?;
    writeln!(out)?;
    Ok(())
}

/// Every ticket, oldest first.
pub async fn all_tickets(store: &DynStore) -> Result<Vec<Ticket>, StoreError> {
    let mut t = store.list_tickets(&TicketFilter::default()).await?;
    t.reverse();
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_are_defused() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("Printer broken"), "Printer broken");
    }
}
