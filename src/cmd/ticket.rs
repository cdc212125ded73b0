//! `/ticket`: open, show, list and work tickets.
//!
//! Owns the typed ticket subcommands and their replies. State changes go through
//! [`Desk::change`], which checks permission in the ticket's department first.

use crate::core::command::{Args, UsageError};
use crate::core::message::{neutralize_mentions, truncate, Field, Message, Reply};
use crate::core::routing::RouteInput;
use crate::core::ticket::{Change, EventKind, Ticket};
use crate::core::types::{Priority, Status, TicketRef, UserRef};
use crate::desk::{Desk, DeskError, TicketOverrides};
use crate::store::TicketFilter;

use super::Context;

/// Command name.
pub const NAME: &str = "ticket";
/// Implemented subcommands.
pub const SUBCOMMANDS: &[&str] = &[
    "new", "show", "list", "assign", "claim", "status", "priority", "route", "note", "close",
    "reopen", "explain", "web",
];

/// How many tickets `/ticket list` shows.
const LIST_LIMIT: i64 = 20;

/// A typed `/ticket` subcommand.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketCmd {
    /// Open a ticket.
    New {
        /// Title (and body).
        title: String,
        /// Department chosen instead of the rules.
        department: Option<String>,
        /// Priority chosen instead of the rules.
        priority: Option<Priority>,
        /// Extra tags.
        tags: Vec<String>,
    },
    /// Show one ticket and its history.
    Show(TicketRef),
    /// List tickets.
    List {
        /// Only this department.
        department: Option<String>,
        /// Only this status.
        status: Option<Status>,
        /// Only this assignee.
        assignee: Option<UserRef>,
    },
    /// Assign to someone.
    Assign(TicketRef, UserRef),
    /// Take it yourself.
    Claim(TicketRef),
    /// Change status.
    Status(TicketRef, Status),
    /// Change priority.
    Priority(TicketRef, Priority),
    /// Move to another department.
    Route(TicketRef, String),
    /// Add an internal note.
    Note(TicketRef, String),
    /// Close, with an optional reason.
    Close(TicketRef, Option<String>),
    /// Reopen, with an optional reason.
    Reopen(TicketRef, Option<String>),
    /// Explain routing.
    Explain(TicketRef),
    /// A personal sign-in link to the web view, opening a ticket when one is named.
    Web(Option<TicketRef>),
}

impl TicketCmd {
    /// Reads the typed subcommand from checked arguments.
    pub fn parse(a: &Args<'_>) -> Result<Self, UsageError> {
        Ok(match a.subcommand() {
            "new" => TicketCmd::New {
                title: a.text("title")?,
                department: a.opt_department("department")?,
                priority: a.opt_priority("priority")?,
                tags: a.tags("tags")?,
            },
            "show" => TicketCmd::Show(a.ticket("ticket")?),
            "list" => TicketCmd::List {
                department: a.opt_department("department")?,
                status: a.opt_status("status")?,
                assignee: a.opt_user("assignee")?,
            },
            "assign" => TicketCmd::Assign(a.ticket("ticket")?, a.user("user")?),
            "claim" => TicketCmd::Claim(a.ticket("ticket")?),
            "status" => TicketCmd::Status(a.ticket("ticket")?, a.status("status")?),
            "priority" => TicketCmd::Priority(a.ticket("ticket")?, a.priority("priority")?),
            "route" => TicketCmd::Route(a.ticket("ticket")?, a.department("department")?),
            "note" => TicketCmd::Note(a.ticket("ticket")?, a.text("text")?),
            "close" => TicketCmd::Close(a.ticket("ticket")?, a.opt_text("reason")?),
            "reopen" => TicketCmd::Reopen(a.ticket("ticket")?, a.opt_text("reason")?),
            "explain" => TicketCmd::Explain(a.ticket("ticket")?),
            "web" => TicketCmd::Web(a.opt_ticket("ticket")?),
            _ => return Err(super::unknown_sub(NAME, a)),
        })
    }

    /// Runs it.
    pub async fn run(self, desk: &Desk, ctx: &Context<'_>) -> Result<Reply, DeskError> {
        let perm = ctx.permission;
        let actor = ctx.actor;
        let changed = |t: &Ticket, what: String| {
            Ok(Reply::ephemeral(Message::text(format!(
                "{} {what}. It is now {}.",
                t.id, t.status
            ))))
        };
        match self {
            TicketCmd::New {
                title,
                department,
                priority,
                tags,
            } => {
                let dept = department
                    .as_deref()
                    .map(|d| desk.department(d))
                    .transpose()?;
                desk.authorize(actor, perm, dept, "open tickets")?;
                let overrides = TicketOverrides {
                    title: None,
                    department,
                    priority,
                    tags,
                };
                let crate::desk::Opened {
                    ticket: t,
                    decision,
                    suggested,
                } = desk
                    .open_from_command(actor, ctx.channel, &title, overrides)
                    .await?;
                let how = match &decision.rule {
                    Some((_, name)) if t.department == decision.department => {
                        format!("rule `{name}`")
                    }
                    _ if t.department != decision.department => "your choice".to_string(),
                    _ => "the fallback".to_string(),
                };
                // The suggestions and their buttons come with the reply, seen by the
                // reporter only; "This solved it" resolves the ticket as for a flag.
                Ok(Reply::ephemeral(crate::desk::with_suggestions(
                    format!(
                        "Opened {} for {} ({how}), priority {}. `/ticket show {}` follows it.",
                        t.id, t.department, t.priority, t.id
                    ),
                    &t,
                    &suggested,
                )))
            }
            TicketCmd::Show(id) => {
                let t = desk.ticket(id).await?;
                if !desk.config.directory.same_person(&actor.user, &t.reporter) {
                    let dept = desk.config.directory.department(&t.department);
                    desk.authorize(actor, perm, dept, &format!("see {id}"))?;
                }
                let events = desk.store.events(id).await?;
                // Everyone the ticket names, by the names their platforms show.
                let mut named: Vec<UserRef> = vec![t.reporter.clone()];
                named.extend(t.assignee.clone());
                for e in &events {
                    named.extend(e.actor.clone());
                    if let EventKind::Assigned { from, to } = &e.kind {
                        named.extend(from.iter().chain(to).cloned());
                    }
                }
                desk.learn_names(named).await;
                let mut message = show(desk, &t, &events);
                // The answer is the asker's alone, so it may carry their own sign-in link.
                if desk.config.web.is_some() {
                    let next = format!("tickets/{}", t.id.0);
                    message.fields.push(Field {
                        name: "Open in browser".into(),
                        value: format!(
                            "{} (your own link: works once, for 10 minutes)",
                            desk.web_link(actor, Some(&next)).await?
                        ),
                    });
                }
                Ok(Reply::ephemeral(message))
            }
            TicketCmd::List {
                department,
                status,
                assignee,
            } => {
                let dept = department
                    .as_deref()
                    .map(|d| desk.department(d))
                    .transpose()?;
                desk.authorize(actor, perm, dept, "list tickets")?;
                let assignees = assignee
                    .as_ref()
                    .map_or(vec![], |u| desk.config.directory.accounts(u));
                let filter = TicketFilter {
                    department: dept.map(|d| d.name.clone()),
                    statuses: status.map_or_else(
                        || vec![Status::Open, Status::InProgress, Status::WaitingOnCustomer],
                        |s| vec![s],
                    ),
                    assignees,
                    limit: LIST_LIMIT + 1,
                    ..TicketFilter::default()
                };
                let tickets = desk.store.list_tickets(&filter).await?;
                Ok(Reply::ephemeral(list(desk, &tickets)))
            }
            TicketCmd::Assign(id, user) => {
                let name = desk.config.directory.display_name(&user);
                let (t, _) = desk
                    .change(
                        actor,
                        id,
                        perm,
                        &format!("assign {id}"),
                        Change::Assign(Some(user)),
                    )
                    .await?;
                changed(&t, format!("is assigned to {name}"))
            }
            TicketCmd::Claim(id) => {
                let (t, _) = desk
                    .change(actor, id, perm, &format!("claim {id}"), Change::Claim)
                    .await?;
                changed(&t, "is yours".into())
            }
            TicketCmd::Status(id, to) => {
                let (t, _) = desk
                    .change(
                        actor,
                        id,
                        perm,
                        &format!("change the status of {id}"),
                        Change::SetStatus { to, reason: None },
                    )
                    .await?;
                changed(&t, "status changed".into())
            }
            TicketCmd::Priority(id, p) => {
                let (t, _) = desk
                    .change(
                        actor,
                        id,
                        perm,
                        &format!("change the priority of {id}"),
                        Change::SetPriority(p),
                    )
                    .await?;
                changed(&t, format!("is now {p} priority"))
            }
            TicketCmd::Route(id, dept) => {
                let dept = desk.department(&dept)?.name.clone();
                let (t, _) = desk
                    .change(
                        actor,
                        id,
                        perm,
                        &format!("reroute {id}"),
                        Change::Route(dept),
                    )
                    .await?;
                changed(&t, format!("moved to {}", t.department))
            }
            TicketCmd::Note(id, text) => {
                let (t, _) = desk
                    .change(
                        actor,
                        id,
                        perm,
                        &format!("add notes to {id}"),
                        Change::Note(text),
                    )
                    .await?;
                changed(&t, "has your note".into())
            }
            TicketCmd::Close(id, reason) => {
                let (t, _) = desk
                    .change(
                        actor,
                        id,
                        perm,
                        &format!("close {id}"),
                        Change::SetStatus {
                            to: Status::Closed,
                            reason,
                        },
                    )
                    .await?;
                changed(&t, "is closed".into())
            }
            TicketCmd::Reopen(id, reason) => {
                let (t, _) = desk
                    .change(
                        actor,
                        id,
                        perm,
                        &format!("reopen {id}"),
                        Change::Reopen { reason },
                    )
                    .await?;
                changed(&t, "is reopened".into())
            }
            TicketCmd::Web(ticket) => {
                let next = ticket.map(|id| format!("tickets/{}", id.0));
                let link = desk.web_link(actor, next.as_deref()).await?;
                Ok(Reply::ephemeral(Message::text(format!(
                    "Your sign-in link to the web view: {link}\nIt is yours alone: it works \
                     once, for 10 minutes. Do not share it."
                ))))
            }
            TicketCmd::Explain(id) => {
                let t = desk.ticket(id).await?;
                let dept = desk.config.directory.department(&t.department);
                desk.authorize(actor, perm, dept, &format!("see how {id} was routed"))?;
                let events = desk.store.events(id).await?;
                Ok(Reply::ephemeral(Message::text(explain(desk, &t, &events))))
            }
        }
    }
}

/// The statuses of the tickets a subcommand can act on, by the ticket rules
/// ([`Ticket::apply`]); empty for any status. Autocomplete offers only these.
pub fn acts_on(sub: &str) -> &'static [Status] {
    const ACTIVE: &[Status] = &[Status::Open, Status::InProgress, Status::WaitingOnCustomer];
    match sub {
        // Assigning, claiming, reprioritising and rerouting need an active ticket.
        "assign" | "claim" | "priority" | "route" => ACTIVE,
        // A resolved ticket may still be closed.
        "status" | "close" => &[
            Status::Open,
            Status::InProgress,
            Status::WaitingOnCustomer,
            Status::Resolved,
        ],
        "reopen" => &[Status::Resolved, Status::Closed],
        // show, explain and note work on any ticket.
        _ => &[],
    }
}

/// Whether a ticket's reporter may run the subcommand on their own ticket whatever its
/// permission says (they may always see it).
pub fn reporter_may(sub: &str) -> bool {
    sub == "show"
}

/// What the SLA clocks need from a ticket.
pub fn times(t: &Ticket) -> crate::core::sla::TicketTimes {
    crate::core::sla::TicketTimes {
        created: t.created_at,
        answered: t.first_response_at,
        resolved: t.resolved_at,
        paused: t.sla_paused,
        waiting_since: t.waiting_since,
    }
}

fn show(desk: &Desk, t: &Ticket, events: &[crate::core::ticket::TicketEvent]) -> Message {
    let dir = &desk.config.directory;
    let mut fields = vec![
        Field {
            name: "Status".into(),
            value: t.status.label().into(),
        },
        Field {
            name: "Priority".into(),
            value: t.priority.to_string(),
        },
        Field {
            name: "Department".into(),
            value: t.department.clone(),
        },
        Field {
            name: "Reporter".into(),
            value: crate::core::message::reporter_name(t, &desk.config.directory),
        },
        Field {
            name: "Assignee".into(),
            value: t
                .assignee
                .as_ref()
                .map_or("nobody".into(), |a| dir.display_name(a)),
        },
        Field {
            name: "Opened".into(),
            value: t.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        },
    ];
    if !t.tags.is_empty() {
        fields.push(Field {
            name: "Tags".into(),
            value: t.tags.join(", "),
        });
    }
    let links: Vec<String> = crate::core::ticket::links(events)
        .map(|l| format!("{} <{}>", neutralize_mentions(&l.title), l.url))
        .collect();
    if !links.is_empty() {
        fields.push(Field {
            name: "Links".into(),
            value: truncate(&links.join("\n"), 1000),
        });
    }
    let sla = &desk.config.sla;
    let (first, resolution) = sla.clocks(&t.department, t.priority, &times(t), desk.now());
    let tz = sla.zone(&t.department);
    for (name, clock) in [
        ("First response SLA", first),
        ("Resolution SLA", resolution),
    ] {
        if let Some(c) = clock {
            fields.push(Field {
                name: name.into(),
                value: crate::core::sla::describe(&c, tz),
            });
        }
    }
    let mut text = truncate(&neutralize_mentions(&t.body), 1500);
    text.push_str("\n\nHistory:");
    for e in events
        .iter()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let who = e
            .actor
            .as_ref()
            .map_or("Switchboard".into(), |a| dir.display_name(a));
        text.push_str(&format!(
            "\n• {} {who}: {}",
            e.at.format("%m-%d %H:%M"),
            neutralize_mentions(&e.kind.describe_with(&|u| dir.display_name(u)))
        ));
    }
    Message {
        title: Some(format!("{} {}", t.id, neutralize_mentions(&t.title))),
        text,
        fields,
        buttons: vec![],
        link: t.source.as_ref().and_then(|s| s.permalink.clone()),
        mentions: vec![],
        attachment: None,
        full_view: None,
        sections: vec![],
    }
}

fn list(desk: &Desk, tickets: &[Ticket]) -> Message {
    if tickets.is_empty() {
        return Message::text(
            "No tickets match. Try another status, e.g. `/ticket list status:resolved`.",
        );
    }
    let dir = &desk.config.directory;
    let mut lines: Vec<String> = tickets
        .iter()
        .take(LIST_LIMIT as usize)
        .map(|t| {
            format!(
                "• {} [{}] {} · {} · {}{}",
                t.id,
                t.priority,
                t.status,
                t.department,
                truncate(&neutralize_mentions(&t.title), 80),
                t.assignee
                    .as_ref()
                    .map_or(String::new(), |a| format!(" ({})", dir.display_name(a)))
            )
        })
        .collect();
    if tickets.len() > LIST_LIMIT as usize {
        lines.push(format!(
            "…showing the newest {LIST_LIMIT}; narrow it with department: or status:"
        ));
    }
    Message::text(lines.join("\n"))
}

fn explain(desk: &Desk, t: &Ticket, events: &[crate::core::ticket::TicketEvent]) -> String {
    let mut out = String::new();
    let mut emoji = None;
    for e in events {
        match &e.kind {
            EventKind::Created {
                origin,
                department,
                rule,
                reasons,
                emoji: em,
            } => {
                emoji = em.clone();
                out.push_str(&match rule {
                    Some(r) => format!(
                        "{} was opened by {origin} and routed to {department} by rule `{r}`",
                        t.id
                    ),
                    None => format!(
                        "{} was opened by {origin} and routed to {department} without a rule",
                        t.id
                    ),
                });
                if !reasons.is_empty() {
                    out.push_str(&format!(" because {}", reasons.join("; ")));
                }
                out.push('.');
            }
            EventKind::Routed { from, to } => {
                let who = e.actor.as_ref().map_or("Switchboard".into(), |a| {
                    desk.config.directory.display_name(a)
                });
                out.push_str(&format!("\nThen {who} moved it from {from} to {to}."));
            }
            _ => {}
        }
    }
    let text = t
        .source
        .as_ref()
        .map_or(t.body.as_str(), |s| s.original_text.as_str());
    let decision = desk.config.router.route(&RouteInput {
        platform: t
            .source
            .as_ref()
            .map_or(t.reporter.platform, |s| s.channel.platform),
        channel: t.source.as_ref().map(|s| &s.channel),
        emoji: emoji.as_deref(),
        text,
        reporter_roles: &[],
        labels: &[],
    });
    out.push_str("\nWith today's rules it would go: ");
    out.push_str(&decision.explain());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ticket::{ChangeActor, NewTicket};
    use crate::core::types::Platform;

    /// Autocomplete offers a subcommand the statuses its change can apply to, so `acts_on`
    /// must agree with the ticket rules themselves.
    #[test]
    fn acts_on_agrees_with_the_ticket_rules() {
        let now = chrono::Utc::now();
        let staff = ChangeActor {
            user: UserRef::new(Platform::Slack, "USTAFF"),
            is_staff: true,
        };
        let other = UserRef::new(Platform::Slack, "UOTHER");
        let changes = |sub: &str| -> Vec<Change> {
            match sub {
                "assign" => vec![Change::Assign(Some(other.clone()))],
                "claim" => vec![Change::Claim],
                "status" => Status::ALL
                    .into_iter()
                    .map(|to| Change::SetStatus { to, reason: None })
                    .collect(),
                "priority" => vec![Change::SetPriority(Priority::Urgent)],
                "route" => vec![Change::Route("elsewhere".into())],
                "note" => vec![Change::Note("n".into())],
                "close" => vec![Change::SetStatus {
                    to: Status::Closed,
                    reason: None,
                }],
                "reopen" => vec![Change::Reopen { reason: None }],
                other => panic!("no change for {other}"),
            }
        };
        for sub in [
            "assign", "claim", "status", "priority", "route", "note", "close", "reopen",
        ] {
            for status in Status::ALL {
                let mut t = NewTicket {
                    title: "t".into(),
                    body: "b".into(),
                    source: None,
                    reporter: UserRef::new(Platform::Slack, "UREPORTER"),
                    department: "billing".into(),
                    priority: Priority::Normal,
                    tags: vec![],
                    created_at: now,
                    origin: crate::core::ticket::Origin::Command,
                }
                .into_ticket(TicketRef(1));
                t.status = status;
                let applies = changes(sub)
                    .into_iter()
                    .any(|c| t.clone().apply(c, &staff, now).is_ok());
                let offered = acts_on(sub).is_empty() || acts_on(sub).contains(&status);
                assert_eq!(offered, applies, "/ticket {sub} on a {status} ticket");
            }
        }
        for sub in ["show", "explain"] {
            assert!(acts_on(sub).is_empty(), "{sub} reads any ticket");
        }
        assert!(SUBCOMMANDS.iter().all(|s| *s == "show" || !reporter_may(s)));
    }
}
