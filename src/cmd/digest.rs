//! `/digest`: preview a digest privately or post it to its targets now.
//!
//! Owns choosing the schedule and period and gathering tickets and kudos for
//! [`crate::core::digest`]. Posting goes through the outbox like every other delivery.

use crate::config::{DigestSchedule, Period};
use crate::core::command::{Args, UsageError};
use crate::core::digest::{self, ShoutOut};
use crate::core::message::{neutralize_mentions, Message, OutKind, Outgoing, Reply, Target};
use crate::desk::{Desk, DeskError};
use crate::store::TicketFilter;

use super::Context;

/// Command name.
pub const NAME: &str = "digest";
/// Implemented subcommands.
pub const SUBCOMMANDS: &[&str] = &["preview", "now"];

/// A typed `/digest` subcommand.
#[derive(Debug, Clone, PartialEq)]
pub enum DigestCmd {
    /// Show a digest to the invoker only.
    Preview {
        /// Which schedule (default: the first).
        schedule: Option<String>,
        /// Only this department.
        department: Option<String>,
    },
    /// Post a digest to its targets now.
    Now {
        /// Which schedule.
        schedule: String,
    },
}

impl DigestCmd {
    /// Reads the typed subcommand from checked arguments.
    pub fn parse(a: &Args<'_>) -> Result<Self, UsageError> {
        Ok(match a.subcommand() {
            "preview" => DigestCmd::Preview {
                schedule: a.opt_word("schedule")?,
                department: a.opt_department("department")?,
            },
            "now" => DigestCmd::Now {
                schedule: a.word("schedule")?,
            },
            _ => return Err(super::unknown_sub(NAME, a)),
        })
    }

    /// Runs it.
    pub async fn run(self, desk: &Desk, ctx: &Context<'_>) -> Result<Reply, DeskError> {
        match self {
            DigestCmd::Preview {
                schedule,
                department,
            } => {
                let dept = department
                    .as_deref()
                    .map(|d| desk.department(d))
                    .transpose()?;
                desk.authorize(ctx.actor, ctx.permission, dept, "preview digests")?;
                let sched = find(desk, schedule.as_deref())?;
                let (name, period, mut depts) = match sched {
                    Some(s) => (s.name.clone(), s.period, s.departments.clone()),
                    None => ("weekly".to_string(), Period::Week, vec![]),
                };
                if let Some(d) = dept {
                    depts = vec![d.name.clone()];
                }
                Ok(Reply::ephemeral(build(desk, &name, period, &depts).await?))
            }
            DigestCmd::Now { schedule } => {
                desk.authorize(ctx.actor, ctx.permission, None, "post digests")?;
                let Some(s) = find(desk, Some(&schedule))? else {
                    return Err(DeskError::User(
                        "No digests are configured; add a [[digests]] entry.".into(),
                    ));
                };
                let msg = build(desk, &s.name, s.period, &s.departments).await?;
                let out: Vec<Outgoing> = s
                    .targets
                    .iter()
                    .map(|c| Outgoing {
                        kind: OutKind::Post,
                        target: Target::Channel {
                            channel: c.clone(),
                            thread: None,
                        },
                        ticket: None,
                        message: msg.clone(),
                    })
                    .collect();
                let n = out.len();
                desk.store.enqueue(out, desk.now()).await?;
                Ok(Reply::ephemeral(Message::text(format!(
                    "Digest `{}` is on its way to {n} channel(s).",
                    s.name
                ))))
            }
        }
    }
}

fn find<'a>(desk: &'a Desk, name: Option<&str>) -> Result<Option<&'a DigestSchedule>, DeskError> {
    let all = &desk.config.digests;
    match name {
        None => Ok(all.first()),
        Some(n) => all
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(n))
            .map(Some)
            .ok_or_else(|| {
                DeskError::User(format!(
                    "There is no digest called `{n}`. Configured: {}.",
                    if all.is_empty() {
                        "none".to_string()
                    } else {
                        all.iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ))
            }),
    }
}

/// Builds the digest message for the period ending now.
pub async fn build(
    desk: &Desk,
    name: &str,
    period: Period,
    departments: &[String],
) -> Result<Message, DeskError> {
    let to = desk.now();
    let from = to - period.duration();
    let tickets = desk
        .store
        .list_tickets(&TicketFilter {
            active_or_since: Some(from),
            ..TicketFilter::default()
        })
        .await?;
    let overall = digest::figures(&tickets, departments, from, to);
    let dir = &desk.config.directory;
    let per_department: Vec<(String, digest::Figures)> = dir
        .departments
        .iter()
        .filter(|d| departments.is_empty() || departments.contains(&d.name))
        .map(|d| {
            (
                d.name.clone(),
                digest::figures(&tickets, std::slice::from_ref(&d.name), from, to),
            )
        })
        .collect();
    let shout_outs: Vec<ShoutOut> = desk
        .store
        .list_kudos(from, None)
        .await?
        .into_iter()
        .map(|k| ShoutOut {
            receiver: dir.display_name(&k.receiver),
            giver: dir.display_name(&k.giver),
            reason: neutralize_mentions(&k.reason),
        })
        .collect();
    Ok(digest::render(
        name,
        from,
        to,
        &overall,
        &per_department,
        &shout_outs,
    ))
}
