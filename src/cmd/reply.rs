//! `/reply`: saved replies, one good shared answer per common question.
//!
//! Owns the saved-reply rules: names (one word, never a subcommand word or a ticket
//! reference), the variables a text may use and how they are filled, who may add, remove,
//! list and send them, and which reply a name means for a ticket (its department's before the
//! global one). Posting goes through the desk as a ticket change, so the post, the history
//! entry and the first response are one write; never posts to a platform itself.

use crate::core::command::{Args, UsageError};
use crate::core::directory::{Actor, Directory, Permission};
use crate::core::message::{neutralize_mentions, reporter_name, truncate, Message, Reply};
use crate::core::ticket::{Change, Ticket};
use crate::core::types::TicketRef;
use crate::desk::{Desk, DeskError};
use crate::store::SavedReply;

use super::Context;

/// Command name.
pub const NAME: &str = "reply";
/// Implemented subcommands.
pub const SUBCOMMANDS: &[&str] = &["send", "add", "list", "remove"];

/// The longest saved text, so that with its attribution it fits one Discord message (2,000
/// characters) and one Slack text block (3,000).
pub const MAX_TEXT: usize = 1_500;

/// The variables a saved text may use.
pub const VARIABLES: &[&str] = &["reporter", "ticket", "department", "assignee"];

/// How many replies `/reply list` shows.
const LIST_LIMIT: usize = 50;

/// A typed `/reply` subcommand.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyCmd {
    /// Post a saved reply in a ticket's thread.
    Send {
        /// The ticket.
        ticket: TicketRef,
        /// The saved reply's name.
        name: String,
    },
    /// Save a reply (or replace the text of one).
    Add {
        /// Its name.
        name: String,
        /// Its text.
        text: String,
        /// Its department; none: every department's.
        department: Option<String>,
    },
    /// List the saved replies one may send.
    List {
        /// Only this department's (and the global ones).
        department: Option<String>,
    },
    /// Remove a saved reply.
    Remove {
        /// Its name.
        name: String,
        /// Its department; none: the global one.
        department: Option<String>,
    },
}

impl ReplyCmd {
    /// Reads the typed subcommand from checked arguments.
    pub fn parse(a: &Args<'_>) -> Result<Self, UsageError> {
        Ok(match a.subcommand() {
            "send" => ReplyCmd::Send {
                ticket: a.ticket("ticket")?,
                name: a.saved_reply("name")?,
            },
            "add" => ReplyCmd::Add {
                name: a.word("name")?,
                text: a.text("text")?,
                department: a.opt_department("department")?,
            },
            "list" => ReplyCmd::List {
                department: a.opt_department("department")?,
            },
            "remove" => ReplyCmd::Remove {
                name: a.saved_reply("name")?,
                department: a.opt_department("department")?,
            },
            _ => return Err(super::unknown_sub(NAME, a)),
        })
    }

    /// Runs it.
    pub async fn run(self, desk: &Desk, ctx: &Context<'_>) -> Result<Reply, DeskError> {
        match self {
            ReplyCmd::Send { ticket, name } => send(desk, ctx, ticket, &name).await,
            ReplyCmd::Add {
                name,
                text,
                department,
            } => add(desk, ctx, name, text, department).await,
            ReplyCmd::List { department } => list(desk, ctx, department).await,
            ReplyCmd::Remove { name, department } => remove(desk, ctx, &name, department).await,
        }
    }
}

/// Posts the saved reply `name` in `id`'s thread in the sender's name.
async fn send(
    desk: &Desk,
    ctx: &Context<'_>,
    id: TicketRef,
    name: &str,
) -> Result<Reply, DeskError> {
    let dir = &desk.config.directory;
    let ticket = desk.ticket(id).await?;
    desk.authorize(
        ctx.actor,
        ctx.permission,
        dir.department(&ticket.department),
        &format!("send saved replies on {id}"),
    )?;
    let replies = desk.store.saved_replies().await?;
    let Some(reply) = for_department(&replies, name, &ticket.department) else {
        let offered: Vec<&str> = replies
            .iter()
            .filter(|r| {
                r.department
                    .as_deref()
                    .is_none_or(|d| d == ticket.department)
            })
            .map(|r| r.name.as_str())
            .take(20)
            .collect();
        return Err(DeskError::User(if offered.is_empty() {
            format!(
                "There is no saved reply `{name}`, and none for {} yet. A lead can add one: `/reply add {name} <text> department:{}`.",
                ticket.department, ticket.department
            )
        } else {
            format!(
                "There is no saved reply `{name}` for {}. Saved replies there: {}. `/reply list` shows them with their text.",
                ticket.department,
                offered.join(", ")
            )
        }));
    };
    let named = ticket
        .assignee
        .iter()
        .chain([&ctx.actor.user, &ticket.reporter])
        .cloned();
    desk.learn_names(named.collect()).await;
    let text = fill(&reply.text, &ticket, dir);
    let change = Change::SavedReply {
        name: reply.name.clone(),
        text,
    };
    desk.change(
        ctx.actor,
        id,
        ctx.permission,
        &format!("send saved replies on {id}"),
        change,
    )
    .await?;
    Ok(Reply::ephemeral(Message::text(format!(
        "Posted the saved reply `{}` in {id}'s thread.",
        reply.name
    ))))
}

/// Saves a reply after checking its name, text and variables.
async fn add(
    desk: &Desk,
    ctx: &Context<'_>,
    name: String,
    text: String,
    department: Option<String>,
) -> Result<Reply, DeskError> {
    let dir = &desk.config.directory;
    let dept = department
        .as_deref()
        .map(|d| desk.department(d))
        .transpose()?;
    desk.authorize(
        ctx.actor,
        ctx.permission,
        dept,
        &match dept {
            Some(d) => format!("save replies for {}", d.name),
            None => "save replies for every department".to_string(),
        },
    )?;
    check_name(&name)?;
    let text = text.trim().to_string();
    check_text(&text)?;
    let reply = SavedReply {
        name,
        department: dept.map(|d| d.name.clone()),
        text,
        updated_by: ctx.actor.user.clone(),
        updated_at: desk.now(),
    };
    let replaced = desk.store.put_saved_reply(&reply).await?;
    let scope = scope_name(reply.department.as_deref());
    tracing::info!(name = %reply.name, scope = %scope, by = %dir.identity_key(&ctx.actor.user), "saved reply stored");
    Ok(Reply::ephemeral(Message::text(format!(
        "{} `{}` for {scope}. Send it with `/reply T-42 {}`.",
        if replaced {
            "Replaced the text of the saved reply"
        } else {
            "Saved the reply"
        },
        reply.name,
        reply.name
    ))))
}

/// Lists the replies the actor may send: the global ones and their departments'.
async fn list(
    desk: &Desk,
    ctx: &Context<'_>,
    department: Option<String>,
) -> Result<Reply, DeskError> {
    let dir = &desk.config.directory;
    let dept = department
        .as_deref()
        .map(|d| desk.department(d))
        .transpose()?;
    desk.authorize(ctx.actor, ctx.permission, dept, "list saved replies")?;
    let replies: Vec<SavedReply> = desk
        .store
        .saved_replies()
        .await?
        .into_iter()
        .filter(|r| match (&r.department, dept) {
            (None, _) => true,
            (Some(d), Some(only)) => *d == only.name,
            (Some(d), None) => may_send_in(dir, ctx.actor, d),
        })
        .collect();
    if replies.is_empty() {
        return Ok(Reply::ephemeral(Message::text(format!(
            "No saved replies{} yet. A lead adds one with `/reply add refund-policy Hi {{reporter}}, refunds take 5 days.`",
            dept.map(|d| format!(" for {}", d.name)).unwrap_or_default()
        ))));
    }
    let mut lines: Vec<String> = replies
        .iter()
        .take(LIST_LIMIT)
        .map(|r| {
            format!(
                "• `{}` ({}): {}",
                r.name,
                scope_name(r.department.as_deref()),
                truncate(&neutralize_mentions(&r.text).replace('\n', " "), 120)
            )
        })
        .collect();
    if replies.len() > LIST_LIMIT {
        lines.push(format!(
            "…and {} more; `/reply list department:NAME` narrows it.",
            replies.len() - LIST_LIMIT
        ));
    }
    Ok(Reply::ephemeral(Message {
        title: Some(format!("Saved replies ({})", replies.len())),
        text: lines.join("\n"),
        ..Message::default()
    }))
}

/// Removes a saved reply.
async fn remove(
    desk: &Desk,
    ctx: &Context<'_>,
    name: &str,
    department: Option<String>,
) -> Result<Reply, DeskError> {
    let dept = department
        .as_deref()
        .map(|d| desk.department(d))
        .transpose()?;
    let scope = scope_name(dept.map(|d| d.name.as_str()));
    desk.authorize(
        ctx.actor,
        ctx.permission,
        dept,
        &format!("remove saved replies for {scope}"),
    )?;
    if desk
        .store
        .remove_saved_reply(name, dept.map(|d| d.name.as_str()))
        .await?
    {
        Ok(Reply::ephemeral(Message::text(format!(
            "Removed the saved reply `{name}` for {scope}."
        ))))
    } else {
        Err(DeskError::User(format!(
            "There is no saved reply `{name}` for {scope}. `/reply list` shows them (a department's reply is removed with `department:NAME`)."
        )))
    }
}

/// The reply `name` means on a ticket of `department`: the department's own, else the
/// global one.
pub fn for_department<'a>(
    replies: &'a [SavedReply],
    name: &str,
    department: &str,
) -> Option<&'a SavedReply> {
    let named = || replies.iter().filter(|r| r.name == name);
    named()
        .find(|r| r.department.as_deref() == Some(department))
        .or_else(|| named().find(|r| r.department.is_none()))
}

/// Refuses a name that would read as something else in `/reply NAME…` or `/reply T-42 NAME`.
fn check_name(name: &str) -> Result<(), DeskError> {
    if SUBCOMMANDS.contains(&name) || name == "help" {
        return Err(DeskError::User(format!(
            "`{name}` is one of /reply's own words ({}, help); pick another name, e.g. `{name}-answer`.",
            SUBCOMMANDS.join(", ")
        )));
    }
    if name.parse::<TicketRef>().is_ok() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(DeskError::User(format!(
            "`{name}` would read as a ticket reference or number; a saved reply's name starts with a letter, e.g. `refund-policy`."
        )));
    }
    Ok(())
}

/// Refuses an empty or too long text, or one using a variable that does not exist.
fn check_text(text: &str) -> Result<(), DeskError> {
    if text.is_empty() {
        return Err(DeskError::User(
            "A saved reply needs its text: `/reply add refund-policy Hi {reporter}, refunds take 5 days.`".into(),
        ));
    }
    let len = text.chars().count();
    if len > MAX_TEXT {
        return Err(DeskError::User(format!(
            "That text is {len} characters; a saved reply holds at most {MAX_TEXT} so it fits one chat message. Link to a longer article instead."
        )));
    }
    let unknown: Vec<String> = variables(text)
        .into_iter()
        .filter(|v| !VARIABLES.contains(&v.as_str()))
        .map(|v| format!("{{{v}}}"))
        .collect();
    if !unknown.is_empty() {
        return Err(DeskError::User(format!(
            "{} {} not a variable saved replies know. Use {}.",
            unknown.join(", "),
            if unknown.len() == 1 { "is" } else { "are" },
            VARIABLES
                .iter()
                .map(|v| format!("{{{v}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// The `{name}` placeholders in `text` (a word of letters and `_` between braces).
fn variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('}') else { break };
        let name = &rest[..close];
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
            // As written: `{Reporter}` is not `{reporter}`, and would be posted as typed.
            out.push(name.to_string());
            rest = &rest[close + 1..];
        }
    }
    out
}

/// `text` with its variables filled in for `ticket`, mentions neutralised (names are
/// written out, never pinged).
pub fn fill(text: &str, ticket: &Ticket, dir: &Directory) -> String {
    let assignee = ticket
        .assignee
        .as_ref()
        .map_or_else(|| "the team".to_string(), |a| dir.display_name(a));
    let filled = text
        .replace("{reporter}", &reporter_name(ticket, dir))
        .replace("{ticket}", &ticket.id.to_string())
        .replace("{department}", &ticket.department)
        .replace("{assignee}", &assignee);
    neutralize_mentions(&filled)
}

/// "billing" or "every department".
fn scope_name(department: Option<&str>) -> String {
    department.map_or_else(|| "every department".to_string(), str::to_string)
}

/// Whether `actor` may send replies of `department` (a member, or an admin).
fn may_send_in(dir: &Directory, actor: &Actor, department: &str) -> bool {
    dir.department(department)
        .is_some_and(|d| dir.check(actor, Permission::Member, Some(d), "").is_ok())
}

/// The names autocomplete offers `actor` while they type `typed`: the saved replies of
/// `ticket`'s department and the global ones (with no ticket chosen yet, those of every
/// department they may send in), at most `limit`.
pub async fn choices(
    desk: &Desk,
    actor: &Actor,
    ticket: Option<TicketRef>,
    typed: &str,
    limit: usize,
) -> Result<Vec<SavedReply>, DeskError> {
    let dir = &desk.config.directory;
    // Saved replies are staff tools: offered to those who may list them.
    if !dir.is_staff(actor) {
        return Ok(vec![]);
    }
    let department = match ticket {
        Some(id) => desk.store.ticket(id).await?.map(|t| t.department),
        None => None,
    };
    let typed = typed.trim().to_ascii_lowercase();
    Ok(desk
        .store
        .saved_replies()
        .await?
        .into_iter()
        .filter(|r| match (&r.department, &department) {
            (None, _) => true,
            (Some(d), Some(only)) => d == only && may_send_in(dir, actor, d),
            (Some(d), None) => may_send_in(dir, actor, d),
        })
        .filter(|r| r.name.contains(&typed))
        .take(limit)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_found_and_unknown_ones_refused() {
        assert_eq!(
            variables("Hi {reporter}, {ticket} is with {Department}. {} {not closed"),
            ["reporter", "ticket", "Department"]
        );
        assert!(check_text("Hi {reporter}").is_ok());
        let err = check_text("Hi {customer} and {agent}").unwrap_err();
        assert!(
            err.chat_message()
                .contains("{customer}, {agent} are not a variable"),
            "{}",
            err.chat_message()
        );
        assert!(check_text(&"x".repeat(MAX_TEXT + 1)).is_err());
        assert!(check_text("").is_err());
    }

    #[test]
    fn names_never_read_as_subcommands_or_tickets() {
        for bad in ["send", "add", "list", "remove", "help", "t-42", "42", "-x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("refund-policy").is_ok());
    }

    #[test]
    fn a_departments_reply_comes_before_the_global_one() {
        let at = chrono::Utc::now();
        let by = crate::core::types::UserRef::new(crate::core::types::Platform::Slack, "U1");
        let reply = |dept: Option<&str>, text: &str| SavedReply {
            name: "refund".into(),
            department: dept.map(str::to_string),
            text: text.into(),
            updated_by: by.clone(),
            updated_at: at,
        };
        let all = vec![
            reply(Some("billing"), "billing's"),
            reply(None, "everyone's"),
        ];
        assert_eq!(
            for_department(&all, "refund", "billing").unwrap().text,
            "billing's"
        );
        assert_eq!(
            for_department(&all, "refund", "it").unwrap().text,
            "everyone's"
        );
        assert!(for_department(&all, "other", "it").is_none());
    }
}
