//! Follow-ups, so tickets do not rot: a reminder to a reporter who leaves a ticket waiting,
//! the ticket resolved "after no reply" when they stay silent, and a nudge to whoever holds a
//! ticket nobody has changed for a while (`[followups]`, per department `followups`).
//!
//! Runs on the scheduler's tick over the active tickets. Each reminder and nudge is claimed in
//! the store with its post and its history entry, once per wait or idle spell, so any number
//! of instances send it once; the auto-close is a ticket change whose version check lets one
//! instance make it. Durations run on the department's business hours when it has them.
//!
//! Owns when follow-ups are due and what they say; must not decide SLA clocks (`core::sla`)
//! or deliver anything itself (the outbox does).

use chrono::{DateTime, Utc};

use crate::config::Followups;
use crate::core::cache::Bounded;
use crate::core::message::{neutralize_mentions, truncate, Message, Outgoing, Target};
use crate::core::sla::{format_duration, Calendar, Target as Span};
use crate::core::ticket::{EventKind, Ticket};
use crate::core::types::{Mention, Status, TicketRef, UserRef};
use crate::desk::{thread_post, Desk, DeskError, FOLLOWUPS};
use crate::store::TicketFilter;

/// What a follow-up tick did about one ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// The ticket.
    pub ticket: TicketRef,
    /// `remind`, `close` or `nudge`.
    pub kind: &'static str,
    /// Whether this instance did it (`false`: another instance, or an earlier tick, had).
    pub done: bool,
}

/// Follows up every active ticket that is due, as `owner` in claims. `settled` remembers the
/// follow-ups this process already claimed (a shortcut only: the store's claim is the record).
pub async fn tick(
    desk: &Desk,
    owner: &str,
    settled: &Bounded<String, ()>,
) -> Result<Vec<FollowUp>, DeskError> {
    let settings = &desk.config.followups;
    if !settings.any() {
        return Ok(vec![]);
    }
    let now = desk.now();
    let active = desk.store.list_tickets(&TicketFilter::active()).await?;
    let mut out = Vec::new();
    for t in &active {
        // One ticket's failure (a database hiccup) leaves the others followed up; the next
        // tick tries it again.
        match follow(desk, t, owner, settled, now).await {
            Ok(Some(f)) => out.push(f),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(ticket = %t.id, error = %e, "follow-up failed; retried on the next tick")
            }
        }
    }
    Ok(out)
}

/// What is due for `t` now, done.
async fn follow(
    desk: &Desk,
    t: &Ticket,
    owner: &str,
    settled: &Bounded<String, ()>,
    now: DateTime<Utc>,
) -> Result<Option<FollowUp>, DeskError> {
    let f = desk.config.followups.of(&t.department);
    let cal = desk.config.sla.calendar(&t.department);
    let due = |span: Option<Span>, since: DateTime<Utc>| {
        span.map(|s| cal.add(since, cal.span(&s)))
            .filter(|at| *at <= now)
    };
    let (kind, since) = match (t.status, t.waiting_since) {
        // Another system has nobody to remind.
        (Status::WaitingOnCustomer, Some(since)) if t.reporter.is_person_account() => {
            if due(f.close_after, since).is_some() {
                let closed = desk.close_unanswered(t).await?;
                if closed.is_some() {
                    tracing::info!(ticket = %t.id, "resolved after no reply");
                }
                return Ok(Some(FollowUp {
                    ticket: t.id,
                    kind: "close",
                    done: closed.is_some(),
                }));
            }
            if due(f.remind_after, since).is_none() {
                return Ok(None);
            }
            ("remind", since)
        }
        (Status::Open | Status::InProgress, _) if due(f.nudge_after, idle_since(t)).is_some() => {
            ("nudge", idle_since(t))
        }
        _ => return Ok(None),
    };
    let key = format!("{}:{kind}:{since}", t.id.0);
    if settled.contains(&key) {
        return Ok(None);
    }
    let done = if kind == "remind" {
        remind(desk, t, f, cal, since, owner, now).await?
    } else {
        nudge(desk, t, f, owner, now).await?
    };
    settled.insert(key, ());
    Ok(Some(FollowUp {
        ticket: t.id,
        kind,
        done,
    }))
}

/// Since when nobody on staff has acted on `t`: its last staff change, else its opening.
fn idle_since(t: &Ticket) -> DateTime<Utc> {
    t.staff_at.unwrap_or(t.created_at)
}

/// The follow-ups' account in a ticket's history, on the platform of its department's first
/// channel.
fn automation(desk: &Desk, t: &Ticket) -> UserRef {
    desk.automation_account(&t.department, FOLLOWUPS, t.reporter.platform)
}

/// Reminds `t`'s reporter, in its thread, that it waits on them (and when it will be closed).
async fn remind(
    desk: &Desk,
    t: &Ticket,
    f: &Followups,
    cal: &Calendar,
    since: DateTime<Utc>,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<bool, DeskError> {
    let dir = &desk.config.directory;
    let tz = desk.config.sla.zone(&t.department);
    let closing = match f.close_after {
        Some(c) => format!(
            " If we don't hear from you by {}, we'll close it; a reply here keeps it open.",
            cal.add(since, cal.span(&c))
                .with_timezone(&tz)
                .format("%a %d %b %H:%M %Z")
        ),
        None => " A reply here keeps it moving.".to_string(),
    };
    let message = Message {
        text: format!(
            "{} \"{}\" is waiting for your reply.{closing}",
            t.id,
            truncate(&neutralize_mentions(&t.title), 120)
        ),
        // The reporter, and nobody else, is pinged.
        mentions: vec![Mention::User(t.reporter.clone())],
        ..Message::default()
    };
    let Some(post) = thread_post(dir, t, message) else {
        return Ok(false);
    };
    let claimed = desk
        .store
        .claim_followup(
            t.id,
            "remind",
            since,
            owner,
            &automation(desk, t),
            EventKind::Reminded,
            now,
            vec![post],
        )
        .await?;
    if claimed {
        tracing::info!(ticket = %t.id, "reporter reminded");
    }
    Ok(claimed)
}

/// Nudges `t`'s assignee by direct message, or its department's channels when unassigned.
async fn nudge(
    desk: &Desk,
    t: &Ticket,
    f: &Followups,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<bool, DeskError> {
    let dir = &desk.config.directory;
    let idle = f.nudge_after.map(span_text).unwrap_or_default();
    let title = truncate(&neutralize_mentions(&t.title), 120);
    let posts = match &t.assignee {
        Some(a) => vec![Outgoing {
            kind: crate::core::message::OutKind::Post,
            target: Target::User { user: a.clone() },
            ticket: Some(t.id),
            message: Message::text(format!(
                "⏰ {} \"{title}\" ({}) is yours and nobody on staff has acted on it for {idle}. Reply to the customer, update its status or hand it on: `/ticket show {}`.",
                t.id, t.department, t.id
            )),
        }],
        None => match dir.department(&t.department) {
            Some(d) => Outgoing::posts(
                &d.channels,
                Some(t.id),
                &Message::text(format!(
                    "⏰ {} \"{title}\" has waited {idle} and nobody has claimed it: `/ticket claim {}`.",
                    t.id, t.id
                )),
            ),
            None => vec![],
        },
    };
    if posts.is_empty() {
        return Ok(false);
    }
    let claimed = desk
        .store
        .claim_followup(
            t.id,
            "nudge",
            idle_since(t),
            owner,
            &automation(desk, t),
            EventKind::Nudged {
                assignee: t.assignee.clone(),
            },
            now,
            posts,
        )
        .await?;
    if claimed {
        tracing::info!(ticket = %t.id, "idle ticket nudged");
    }
    Ok(claimed)
}

/// A configured duration as written (`1d`, `2w 4h`): days and weeks are working days on
/// business hours, so they are not turned into hours.
fn span_text(s: Span) -> String {
    let mut parts = Vec::new();
    if s.weeks > 0 {
        parts.push(format!("{}w", s.weeks));
    }
    if s.days > 0 {
        parts.push(format!("{}d", s.days));
    }
    if s.time > chrono::Duration::zero() {
        parts.push(format_duration(s.time));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_written() {
        let t = |s: &str| span_text(crate::core::sla::parse_target(s).unwrap());
        assert_eq!(t("1d"), "1d");
        assert_eq!(t("2w 4h"), "2w 4h");
        assert_eq!(t("90m"), "1h 30m");
    }
}
