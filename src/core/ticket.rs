//! Tickets, their life cycle and their audit log.
//!
//! Owns the ticket model, the legal status transitions and the event each change produces.
//! Pure rules: it never reads the clock itself (callers pass `now`) and never touches storage.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::types::{ChannelRef, Priority, Status, TicketRef, UserRef};

/// Why a change to a ticket was refused; every message is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The ticket is already in the requested status.
    #[error("{ticket} is already {status}.")]
    AlreadyInStatus {
        /// The ticket.
        ticket: TicketRef,
        /// Its current status.
        status: Status,
    },
    /// The ticket is resolved or closed and must be reopened before this change.
    #[error("{ticket} is {status}; reopen it first with `/ticket reopen {ticket}`.")]
    NotActive {
        /// The ticket.
        ticket: TicketRef,
        /// Its current status.
        status: Status,
    },
    /// A resolved ticket can only be closed or reopened.
    #[error("{ticket} cannot go from {from} to {to}. {hint}")]
    IllegalTransition {
        /// The ticket.
        ticket: TicketRef,
        /// Current status.
        from: Status,
        /// Requested status.
        to: Status,
        /// How to get there instead.
        hint: &'static str,
    },
    /// Reopen asked of a ticket that is still active.
    #[error("{ticket} is {status}, not resolved or closed, so there is nothing to reopen.")]
    NothingToReopen {
        /// The ticket.
        ticket: TicketRef,
        /// Its current status.
        status: Status,
    },
    /// The change would not change anything.
    #[error("{0}")]
    NoChange(String),
    /// A note with no text.
    #[error("A note needs some text, e.g. `/ticket note T-42 Called the customer back`.")]
    EmptyNote,
}

/// Where a flagged message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The channel holding the message.
    pub channel: ChannelRef,
    /// The platform's message id (Slack `ts`, Discord snowflake).
    pub message_id: String,
    /// The thread the message sits in, when it is a reply.
    pub thread_id: Option<String>,
    /// A link to the message.
    pub permalink: Option<String>,
    /// The message text as it was when flagged.
    pub original_text: String,
    /// Who wrote the message.
    pub author: UserRef,
    /// The author's name as the platform shows it, when known.
    #[serde(default)]
    pub author_name: Option<String>,
}

/// How a ticket came to be.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// An emoji reaction on a message.
    #[default]
    Flag,
    /// The "Create ticket" message action.
    Shortcut,
    /// `/ticket new`.
    Command,
    /// `POST /api/tickets`, by another system.
    Api,
    /// An Alertmanager notification.
    Alertmanager,
    /// A Grafana alerting notification.
    Grafana,
}

impl Origin {
    /// Opened by another system (the tickets API or monitoring), not from chat.
    pub fn is_automation(self) -> bool {
        matches!(self, Origin::Api | Origin::Alertmanager | Origin::Grafana)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Flag => "flag",
            Origin::Shortcut => "message action",
            Origin::Command => "command",
            Origin::Api => "api",
            Origin::Alertmanager => "alertmanager",
            Origin::Grafana => "grafana",
        })
    }
}

/// A duration as whole seconds in JSON.
mod seconds {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::seconds(i64::deserialize(d)?))
    }
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Short reference, `T-42`.
    pub id: TicketRef,
    /// Bumped on every change; writers use it to detect a concurrent update.
    pub version: i64,
    /// One-line summary.
    pub title: String,
    /// Full description.
    pub body: String,
    /// The flagged message, when the ticket came from one.
    pub source: Option<Source>,
    /// The customer: the flagged message's author, or whoever ran `/ticket new`.
    pub reporter: UserRef,
    /// Owning department's name.
    pub department: String,
    /// How urgent it is.
    pub priority: Priority,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Who is working it.
    pub assignee: Option<UserRef>,
    /// Where it is in its life.
    pub status: Status,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First staff action the reporter could see.
    pub first_response_at: Option<DateTime<Utc>>,
    /// When it was last resolved (cleared on reopen).
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was last closed (cleared on reopen).
    pub closed_at: Option<DateTime<Utc>>,
    /// Since when it has been waiting on the customer (the resolution clock is paused).
    pub waiting_since: Option<DateTime<Utc>>,
    /// Business time the resolution clock was paused in finished waits (seconds in JSON).
    #[serde(with = "seconds", default = "Duration::zero")]
    pub sla_paused: Duration,
    /// How it came to be: from chat, or opened by another system.
    #[serde(default)]
    pub origin: Origin,
    /// When staff last changed it (claimed, replied, moved it on); none since it was opened.
    /// Nudges measure idleness from here.
    #[serde(default)]
    pub staff_at: Option<DateTime<Utc>>,
}

/// Everything needed to open a ticket; the store assigns the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTicket {
    /// One-line summary.
    pub title: String,
    /// Full description.
    pub body: String,
    /// The flagged message, when there is one.
    pub source: Option<Source>,
    /// The customer.
    pub reporter: UserRef,
    /// Owning department.
    pub department: String,
    /// How urgent it is.
    pub priority: Priority,
    /// Labels.
    pub tags: Vec<String>,
    /// When it is opened.
    pub created_at: DateTime<Utc>,
    /// How it comes to be.
    pub origin: Origin,
}

impl NewTicket {
    /// The ticket this becomes once the store gives it a reference.
    pub fn into_ticket(self, id: TicketRef) -> Ticket {
        Ticket {
            id,
            version: 1,
            title: self.title,
            body: self.body,
            source: self.source,
            reporter: self.reporter,
            department: self.department,
            priority: self.priority,
            tags: self.tags,
            assignee: None,
            status: Status::Open,
            created_at: self.created_at,
            updated_at: self.created_at,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            waiting_since: None,
            sla_paused: Duration::zero(),
            origin: self.origin,
            staff_at: None,
        }
    }
}

/// One entry of a ticket's audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The ticket was opened.
    Created {
        /// Flag, message action or command.
        origin: Origin,
        /// Department it was routed to.
        department: String,
        /// The routing rule that matched, if any (else the fallback).
        rule: Option<String>,
        /// Why the rule matched (or why the fallback was used).
        #[serde(default)]
        reasons: Vec<String>,
        /// The flag emoji, when flagged by reaction.
        #[serde(default)]
        emoji: Option<String>,
    },
    /// Someone flagged the same message again.
    Reflagged,
    /// Assignee changed.
    Assigned {
        /// Previous assignee.
        from: Option<UserRef>,
        /// New assignee.
        to: Option<UserRef>,
    },
    /// Status changed.
    StatusChanged {
        /// Previous status.
        from: Status,
        /// New status.
        to: Status,
        /// Why, when given.
        reason: Option<String>,
    },
    /// Priority changed.
    PriorityChanged {
        /// Previous priority.
        from: Priority,
        /// New priority.
        to: Priority,
    },
    /// Moved to another department.
    Routed {
        /// Previous department.
        from: String,
        /// New department.
        to: String,
    },
    /// An internal note.
    Noted {
        /// The note.
        text: String,
    },
    /// Staff answered the reporter where they could see it (e.g. a thread reply).
    Responded,
    /// The reporter was reminded that the ticket waits on them (`[followups] remind_after`).
    Reminded,
    /// Nobody had changed the ticket for a while: its assignee (or, unassigned, its
    /// department) was nudged (`[followups] nudge_after`).
    Nudged {
        /// The assignee nudged; none: the department's channels.
        assignee: Option<UserRef>,
    },
    /// The knowledge base's articles suggested when it opened (empty: none passed the
    /// relevance rule), by name.
    KbSuggested {
        /// The suggested articles, best first.
        articles: Vec<String>,
    },
    /// A suggested article answered it ("This solved it").
    KbAnswered {
        /// The article's name.
        article: String,
    },
    /// The suggested articles were not what the reporter needed ("Not what I need").
    KbNotHelpful {
        /// The articles' names.
        articles: Vec<String>,
    },
    /// A saved reply was posted in the ticket's thread in the actor's name.
    SavedReplySent {
        /// The saved reply's name.
        name: String,
        /// What was posted, filled in.
        text: String,
    },
    /// The flagged message was edited on the platform.
    SourceEdited {
        /// Its new text (the ticket keeps the text as flagged).
        text: String,
    },
    /// The flagged message was deleted on the platform.
    SourceDeleted,
    /// Links another system gave with the ticket (a dashboard, a runbook, the alert's source).
    Linked {
        /// The links, in the order given.
        links: Vec<Link>,
    },
    /// The system that opened the ticket sent it again with a different body.
    Resent {
        /// The body as sent again (the ticket keeps the body it was opened with).
        body: String,
    },
}

/// The links a ticket's history holds ([`EventKind::Linked`]), in order.
pub fn links(events: &[TicketEvent]) -> impl Iterator<Item = &Link> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Linked { links } => Some(links.iter()),
            _ => None,
        })
        .flatten()
}

/// A link attached to a ticket by the system that opened it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// What it leads to (`Runbook`, `Dashboard`); the URL itself when none was given.
    pub title: String,
    /// An `http(s)://` URL.
    pub url: String,
}

impl EventKind {
    /// A one-line human description, naming accounts as they are (`slack:U123`).
    pub fn describe(&self) -> String {
        self.describe_with(&|u| u.to_string())
    }

    /// A one-line human description for `/ticket show`, naming accounts with `name`.
    pub fn describe_with(&self, name: &dyn Fn(&UserRef) -> String) -> String {
        let user = |u: &Option<UserRef>| u.as_ref().map_or("nobody".to_string(), name);
        match self {
            EventKind::Created {
                origin,
                department,
                rule,
                ..
            } => match rule {
                Some(r) => format!("opened by {origin}, routed to {department} by rule `{r}`"),
                None => format!("opened by {origin}, routed to {department} (fallback)"),
            },
            EventKind::Reflagged => "message flagged again".to_string(),
            EventKind::Assigned { from, to } => {
                format!("assignee {} → {}", user(from), user(to))
            }
            EventKind::StatusChanged { from, to, reason } => match reason {
                Some(r) => format!("status {from} → {to} ({r})"),
                None => format!("status {from} → {to}"),
            },
            EventKind::PriorityChanged { from, to } => format!("priority {from} → {to}"),
            EventKind::Routed { from, to } => format!("department {from} → {to}"),
            EventKind::Noted { text } => format!("note: {text}"),
            EventKind::Responded => "staff responded to the reporter".to_string(),
            EventKind::SourceEdited { text } => format!("the flagged message was edited: {text}"),
            EventKind::SourceDeleted => "the flagged message was deleted".to_string(),
            EventKind::Linked { links } => format!(
                "links: {}",
                links
                    .iter()
                    .map(|l| format!("{} <{}>", l.title, l.url))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            EventKind::Resent { body } => format!("sent again with a new body: {body}"),
            EventKind::Reminded => "the reporter was reminded that it waits on them".to_string(),
            EventKind::Nudged { assignee } => match assignee {
                Some(a) => format!(
                    "{} was nudged: no change for a while",
                    user(&Some(a.clone()))
                ),
                None => "the department was nudged: no change for a while".to_string(),
            },
            EventKind::SavedReplySent { name, text } => {
                format!("posted the saved reply `{name}`: {text}")
            }
            EventKind::KbSuggested { articles } if articles.is_empty() => {
                "no knowledge base article fitted".to_string()
            }
            EventKind::KbSuggested { articles } => {
                format!("the knowledge base suggested {}", articles.join(", "))
            }
            EventKind::KbAnswered { article } => format!("answered by the article {article}"),
            EventKind::KbNotHelpful { articles } => {
                format!("not what was needed: {}", articles.join(", "))
            }
        }
    }
}

/// A stored audit-log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// The ticket.
    pub ticket: TicketRef,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it; `None` for Switchboard itself.
    pub actor: Option<UserRef>,
    /// What happened.
    pub kind: EventKind,
}

/// A message someone wrote in a ticket's thread (on Slack in the flagged message's or the
/// alert's thread; on Discord a reply to either), kept for the ticket's transcript with its
/// edits and deletion. A deleted reply keeps its text: who may read it is the reader's call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadReply {
    /// The ticket.
    pub ticket: TicketRef,
    /// Where it was written.
    pub channel: ChannelRef,
    /// Its platform id (Slack `ts`, Discord message id).
    pub message_id: String,
    /// Who wrote it.
    pub author: UserRef,
    /// Its text, as last edited.
    pub text: String,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// When it was last edited, if ever.
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was deleted, if it was.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A requested change to a ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Give the ticket to someone, or to nobody.
    Assign(Option<UserRef>),
    /// The actor takes the ticket.
    Claim,
    /// Move to a status (not for reopening).
    SetStatus {
        /// Target status.
        to: Status,
        /// Why, when given.
        reason: Option<String>,
    },
    /// Bring a resolved or closed ticket back to open.
    Reopen {
        /// Why, when given.
        reason: Option<String>,
    },
    /// Change priority.
    SetPriority(Priority),
    /// Move to another department (already validated by the caller).
    Route(String),
    /// Add an internal note.
    Note(String),
    /// Staff answered the reporter somewhere the reporter can see.
    Responded,
    /// The flagged message changed on the platform: its new text, or `None` when deleted.
    SourceChanged(Option<String>),
    /// The system that opened the ticket sent it again with this body (recorded whatever the
    /// ticket's status).
    Resent(String),
    /// A suggested article answered it: resolved, as answered by the knowledge base.
    KbAnswered {
        /// The article's name.
        article: String,
        /// Its title, for the reason.
        title: String,
    },
    /// The suggested articles were not what the reporter needed.
    KbNotHelpful(Vec<String>),
    /// Post the saved reply `name`, already filled in as `text`, in the ticket's thread.
    SavedReply {
        /// The saved reply's name.
        name: String,
        /// The text to post.
        text: String,
    },
}

/// Who is making a change, as far as ticket rules care.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeActor {
    /// The acting account.
    pub user: UserRef,
    /// Whether the actor is staff (a department member or an admin) and not the reporter.
    pub is_staff: bool,
}

impl Ticket {
    /// Applies `change` at `now`, returning the audit events it produced.
    ///
    /// On error the ticket is left untouched.
    pub fn apply(
        &mut self,
        change: Change,
        actor: &ChangeActor,
        now: DateTime<Utc>,
    ) -> Result<Vec<EventKind>, TicketError> {
        let mut events = Vec::new();
        let mut visible_to_reporter = false;
        match change {
            Change::Assign(to) => {
                self.require_active()?;
                if self.assignee == to {
                    return Err(TicketError::NoChange(match &to {
                        Some(u) => format!("{} is already assigned to {u}.", self.id),
                        None => format!("{} is not assigned to anyone.", self.id),
                    }));
                }
                events.push(EventKind::Assigned {
                    from: self.assignee.clone(),
                    to: to.clone(),
                });
                self.assignee = to;
            }
            Change::Claim => {
                self.require_active()?;
                if self.assignee.as_ref() == Some(&actor.user) {
                    return Err(TicketError::NoChange(format!(
                        "{} is already yours.",
                        self.id
                    )));
                }
                events.push(EventKind::Assigned {
                    from: self.assignee.clone(),
                    to: Some(actor.user.clone()),
                });
                self.assignee = Some(actor.user.clone());
                if self.status == Status::Open {
                    events.push(self.move_to(Status::InProgress, None, now));
                }
                visible_to_reporter = true;
            }
            Change::SetStatus { to, reason } => {
                self.check_transition(to)?;
                events.push(self.move_to(to, reason, now));
                visible_to_reporter = true;
            }
            Change::Reopen { reason } => {
                if self.status.is_active() {
                    return Err(TicketError::NothingToReopen {
                        ticket: self.id,
                        status: self.status,
                    });
                }
                events.push(self.move_to(Status::Open, reason, now));
                visible_to_reporter = true;
            }
            Change::SetPriority(p) => {
                self.require_active()?;
                if self.priority == p {
                    return Err(TicketError::NoChange(format!(
                        "{} is already {p} priority.",
                        self.id
                    )));
                }
                events.push(EventKind::PriorityChanged {
                    from: self.priority,
                    to: p,
                });
                self.priority = p;
            }
            Change::Route(dept) => {
                self.require_active()?;
                if self.department == dept {
                    return Err(TicketError::NoChange(format!(
                        "{} is already with {dept}.",
                        self.id
                    )));
                }
                events.push(EventKind::Routed {
                    from: std::mem::replace(&mut self.department, dept.clone()),
                    to: dept,
                });
            }
            Change::Note(text) => {
                let text = text.trim();
                if text.is_empty() {
                    return Err(TicketError::EmptyNote);
                }
                events.push(EventKind::Noted {
                    text: text.to_string(),
                });
            }
            Change::SourceChanged(text) => {
                if self.source.is_none() {
                    return Err(TicketError::NoChange(format!(
                        "{} was not made from a message.",
                        self.id
                    )));
                }
                events.push(match text {
                    Some(text) => EventKind::SourceEdited { text },
                    None => EventKind::SourceDeleted,
                });
            }
            Change::Resent(body) => events.push(EventKind::Resent { body }),
            Change::KbAnswered { article, title } => {
                self.check_transition(Status::Resolved)?;
                events.push(EventKind::KbAnswered { article });
                events.push(self.move_to(
                    Status::Resolved,
                    Some(format!("answered by the knowledge base: {title}")),
                    now,
                ));
                visible_to_reporter = true;
            }
            Change::KbNotHelpful(articles) => events.push(EventKind::KbNotHelpful { articles }),
            Change::SavedReply { name, text } => {
                if text.trim().is_empty() {
                    return Err(TicketError::EmptyNote);
                }
                events.push(EventKind::SavedReplySent { name, text });
                visible_to_reporter = true;
            }
            Change::Responded => {
                if self.first_response_at.is_some() || !actor.is_staff {
                    return Err(TicketError::NoChange(format!(
                        "{} already has a first response.",
                        self.id
                    )));
                }
                events.push(EventKind::Responded);
                visible_to_reporter = true;
            }
        }
        if visible_to_reporter && actor.is_staff && self.first_response_at.is_none() {
            self.first_response_at = Some(now);
        }
        if actor.is_staff {
            self.staff_at = Some(now);
        }
        self.updated_at = now;
        self.version += 1;
        Ok(events)
    }

    fn require_active(&self) -> Result<(), TicketError> {
        if self.status.is_active() {
            Ok(())
        } else {
            Err(TicketError::NotActive {
                ticket: self.id,
                status: self.status,
            })
        }
    }

    fn check_transition(&self, to: Status) -> Result<(), TicketError> {
        let from = self.status;
        if from == to {
            return Err(TicketError::AlreadyInStatus {
                ticket: self.id,
                status: from,
            });
        }
        let illegal = |hint| {
            Err(TicketError::IllegalTransition {
                ticket: self.id,
                from,
                to,
                hint,
            })
        };
        match (from, to) {
            (Status::Resolved | Status::Closed, Status::Open) => {
                illegal("Use `/ticket reopen` so the reopening is recorded with its reason.")
            }
            (Status::Resolved, Status::Closed) => Ok(()),
            (Status::Resolved, _) => illegal("A resolved ticket can only be closed or reopened."),
            (Status::Closed, _) => Err(TicketError::NotActive {
                ticket: self.id,
                status: from,
            }),
            _ => Ok(()),
        }
    }

    fn move_to(&mut self, to: Status, reason: Option<String>, now: DateTime<Utc>) -> EventKind {
        let from = std::mem::replace(&mut self.status, to);
        // The resolution clock stops while the ticket waits on the customer; the desk adds the
        // paused business time to `sla_paused` when the wait ends (it knows the calendar).
        match (
            from == Status::WaitingOnCustomer,
            to == Status::WaitingOnCustomer,
        ) {
            (false, true) => self.waiting_since = Some(now),
            (true, false) => self.waiting_since = None,
            _ => {}
        }
        match to {
            Status::Resolved => self.resolved_at = Some(now),
            Status::Closed => self.closed_at = Some(now),
            Status::Open if !from.is_active() => {
                self.resolved_at = None;
                self.closed_at = None;
            }
            _ => {}
        }
        EventKind::StatusChanged { from, to, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::Platform;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::minutes(min)
    }

    fn ticket() -> Ticket {
        NewTicket {
            title: "Printer on fire".into(),
            body: "It is really on fire".into(),
            source: None,
            reporter: UserRef::new(Platform::Slack, "UCUST"),
            department: "it".into(),
            priority: Priority::Normal,
            tags: vec![],
            created_at: at(0),
            origin: Origin::Command,
        }
        .into_ticket(TicketRef(42))
    }

    fn staff() -> ChangeActor {
        ChangeActor {
            user: UserRef::new(Platform::Slack, "USTAFF"),
            is_staff: true,
        }
    }

    fn status(to: Status) -> Change {
        Change::SetStatus { to, reason: None }
    }

    #[test]
    fn only_staff_changes_count_as_staff_activity() {
        let mut t = ticket();
        assert_eq!(t.staff_at, None);
        let reporter = ChangeActor {
            user: t.reporter.clone(),
            is_staff: false,
        };
        t.apply(Change::SourceChanged(None), &reporter, at(5)).ok();
        t.apply(Change::Resent("again".into()), &reporter, at(6))
            .unwrap();
        assert_eq!(
            t.staff_at, None,
            "the reporter's changes are not staff activity"
        );
        t.apply(Change::Claim, &staff(), at(10)).unwrap();
        assert_eq!(t.staff_at, Some(at(10)));
    }

    #[test]
    fn claim_assigns_moves_to_in_progress_and_sets_first_response() {
        let mut t = ticket();
        let events = t.apply(Change::Claim, &staff(), at(5)).unwrap();
        assert_eq!(t.assignee, Some(staff().user));
        assert_eq!(t.status, Status::InProgress);
        assert_eq!(t.first_response_at, Some(at(5)));
        assert_eq!(events.len(), 2);
        assert_eq!(t.version, 2);
        let err = t.apply(Change::Claim, &staff(), at(6)).unwrap_err();
        assert_eq!(err.to_string(), "T-42 is already yours.");
        assert_eq!(t.version, 2, "a refused change leaves the ticket as it was");
    }

    #[test]
    fn notes_and_priority_are_not_a_first_response() {
        let mut t = ticket();
        t.apply(Change::Note("looked at logs".into()), &staff(), at(1))
            .unwrap();
        t.apply(Change::SetPriority(Priority::High), &staff(), at(2))
            .unwrap();
        assert_eq!(t.first_response_at, None);
        t.apply(status(Status::WaitingOnCustomer), &staff(), at(3))
            .unwrap();
        assert_eq!(t.first_response_at, Some(at(3)));
    }

    #[test]
    fn the_reporter_acting_is_not_a_first_response() {
        let mut t = ticket();
        let reporter = ChangeActor {
            user: t.reporter.clone(),
            is_staff: false,
        };
        t.apply(status(Status::Resolved), &reporter, at(1)).unwrap();
        assert_eq!(t.first_response_at, None);
    }

    #[test]
    fn every_legal_transition_is_allowed_and_the_rest_refused_with_a_hint() {
        use Status::*;
        for from in Status::ALL {
            for to in Status::ALL {
                let mut t = ticket();
                t.status = from;
                let result = t.apply(status(to), &staff(), at(1));
                let legal = from != to
                    && match from {
                        Open | InProgress | WaitingOnCustomer => true,
                        Resolved => to == Closed,
                        Closed => false,
                    };
                assert_eq!(result.is_ok(), legal, "{from:?} -> {to:?}: {result:?}");
                if let Err(e) = result {
                    let msg = e.to_string();
                    assert!(msg.contains("T-42"), "{msg}");
                }
            }
        }
    }

    #[test]
    fn reopen_only_from_resolved_or_closed_and_clears_end_times() {
        let mut t = ticket();
        let err = t
            .apply(Change::Reopen { reason: None }, &staff(), at(1))
            .unwrap_err();
        assert!(matches!(err, TicketError::NothingToReopen { .. }));
        t.apply(status(Status::Resolved), &staff(), at(2)).unwrap();
        assert_eq!(t.resolved_at, Some(at(2)));
        t.apply(status(Status::Closed), &staff(), at(3)).unwrap();
        assert_eq!(t.closed_at, Some(at(3)));
        let events = t
            .apply(
                Change::Reopen {
                    reason: Some("still broken".into()),
                },
                &staff(),
                at(4),
            )
            .unwrap();
        assert_eq!(t.status, Status::Open);
        assert_eq!((t.resolved_at, t.closed_at), (None, None));
        assert_eq!(
            events,
            vec![EventKind::StatusChanged {
                from: Status::Closed,
                to: Status::Open,
                reason: Some("still broken".into())
            }]
        );
        let err = t.apply(status(Status::Open), &staff(), at(5)).unwrap_err();
        assert!(matches!(err, TicketError::AlreadyInStatus { .. }));
    }

    #[test]
    fn closed_tickets_refuse_work_but_take_notes() {
        let mut t = ticket();
        t.apply(status(Status::Closed), &staff(), at(1)).unwrap();
        for change in [
            Change::Claim,
            Change::SetPriority(Priority::Urgent),
            Change::Route("billing".into()),
            Change::Assign(None),
        ] {
            let err = t.apply(change, &staff(), at(2)).unwrap_err();
            assert!(err.to_string().contains("/ticket reopen T-42"), "{err}");
        }
        t.apply(Change::Note("customer happy".into()), &staff(), at(3))
            .unwrap();
        let err = t
            .apply(Change::Note("  ".into()), &staff(), at(3))
            .unwrap_err();
        assert_eq!(err, TicketError::EmptyNote);
    }

    #[test]
    fn route_records_both_departments() {
        let mut t = ticket();
        let events = t
            .apply(Change::Route("billing".into()), &staff(), at(1))
            .unwrap();
        assert_eq!(
            events,
            vec![EventKind::Routed {
                from: "it".into(),
                to: "billing".into()
            }]
        );
        assert!(t
            .apply(Change::Route("billing".into()), &staff(), at(2))
            .is_err());
    }
}
