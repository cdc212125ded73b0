//! `/digest`: preview a digest privately or post it to its targets now.
//!
//! Owns choosing the schedule and period and gathering the rows and kudos for
//! [`crate::core::digest`]; the scheduler and `switchboard digest preview` build digests here
//! too. Posting goes through the outbox like every other delivery.

use chrono::{DateTime, Utc};

use crate::config::{DigestSchedule, Period};
use crate::core::command::{Args, UsageError};
use crate::core::digest::{self, Report, ShoutOut, Window};
use crate::core::message::{neutralize_mentions, Message, Outgoing, Reply};
use crate::core::types::ChannelRef;
use crate::desk::{Desk, DeskError};

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
                let (name, tz, period, mut depts) = match sched {
                    Some(s) => (s.name.clone(), s.timezone, s.period, s.departments.clone()),
                    None => ("weekly".to_string(), chrono_tz::UTC, Period::Week, vec![]),
                };
                if let Some(d) = dept {
                    depts = vec![d.name.clone()];
                }
                Ok(Reply::ephemeral(
                    build(desk, &name, tz, period, &depts).await?,
                ))
            }
            DigestCmd::Now { schedule } => {
                desk.authorize(ctx.actor, ctx.permission, None, "post digests")?;
                let Some(s) = find(desk, Some(&schedule))? else {
                    return Err(DeskError::User(
                        "No digests are configured; add a [[digests]] entry.".into(),
                    ));
                };
                let r = report(
                    desk,
                    &s.name,
                    s.timezone,
                    s.period,
                    &s.departments,
                    desk.now(),
                )
                .await?;
                let out = digest_posts(&r, s.timezone, &s.targets);
                let n = s.targets.len();
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

/// Reads a preview's end time: RFC 3339, or a wall-clock time (`2026-11-23 09:00`, seconds
/// optional) in the schedule's zone.
pub fn parse_at(text: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, f) {
            return Ok(crate::core::cronexpr::instant(naive, tz));
        }
    }
    Err(format!(
        "`{text}` is not a time; write 2026-11-23T09:00:00+01:00, or 2026-11-23 09:00 in the schedule's zone ({})",
        tz.name()
    ))
}

/// The departments a digest covers: those it names, else every configured one.
pub fn covered(desk: &Desk, named: &[String]) -> Vec<String> {
    if named.is_empty() {
        desk.config
            .directory
            .departments
            .iter()
            .map(|d| d.name.clone())
            .collect()
    } else {
        named.to_vec()
    }
}

/// Computes the digest for the period of `period` ending at `at`, over `departments` (all
/// when empty), reading only the rows the period and the one before need.
pub async fn report(
    desk: &Desk,
    name: &str,
    timezone: chrono_tz::Tz,
    period: Period,
    departments: &[String],
    at: DateTime<Utc>,
) -> Result<Report, DeskError> {
    let window = window_ending(period, at, timezone);
    report_window(desk, name, timezone, window, departments).await
}

/// The `period` ending at `at`, with the one before it: calendar arithmetic in `tz`, so
/// consecutive digests tile exactly, across clock changes and months of every length.
pub fn window_ending(period: Period, at: DateTime<Utc>, tz: chrono_tz::Tz) -> Window {
    let from = period.start_before(at, tz);
    Window {
        from,
        to: at,
        before: period.start_before(from, tz),
    }
}

/// Computes the digest for `window` over `departments` (all when empty): what [`report`]
/// does for a schedule's period, for any period (the web view's dashboards).
pub async fn report_window(
    desk: &Desk,
    name: &str,
    timezone: chrono_tz::Tz,
    window: Window,
    departments: &[String],
) -> Result<Report, DeskError> {
    let mut input = desk
        .store
        .digest_input(window.previous().from, window.to, departments)
        .await?;
    // The gaps are counted in the words the knowledge base's search would look for; only
    // this period's are listed, so only theirs are found.
    let mut keywords = crate::knowledge::Keywords::default();
    for e in &mut input.knowledge {
        if let Some(text) = e.text.as_deref().filter(|_| window.contains(e.at)) {
            e.words = keywords.of(text);
        }
    }
    // Shout-outs name people: by the names any instance learned from the platforms.
    desk.load_names().await?;
    let dir = &desk.config.directory;
    let shout_outs: Vec<ShoutOut> = desk
        .store
        .list_kudos(window.from, None)
        .await?
        .into_iter()
        // The period is (from, to], as for everything else: kudos at the exact start were
        // counted by the digest before.
        .filter(|k| k.created_at > window.from && k.created_at <= window.to)
        .map(|k| ShoutOut {
            receiver: dir.display_name(&k.receiver),
            giver: dir.display_name(&k.giver),
            reason: neutralize_mentions(&k.reason),
            ticket: k.ticket.map(|t| t.to_string()),
            receiver_key: k.receiver_key,
        })
        .collect();
    let covered = covered(desk, departments);
    let people = |u: &crate::core::types::UserRef| (dir.identity_key(u), dir.display_name(u));
    let spec = digest::Spec {
        schedule: name,
        timezone,
        covered: &covered,
        window,
        min_sample: EARNED_MIN_SAMPLE,
    };
    let report = digest::compute(&spec, &input, &desk.config.sla, shout_outs, &people);
    // A whole organisation's input is tens of thousands of small allocations: freed on a
    // blocking thread, so the digest is answered without waiting for that.
    tokio::task::spawn_blocking(move || drop(input));
    Ok(report)
}

/// The fewest tickets (or CSAT answers) that can earn a shout-out, so one lucky ticket does
/// not win.
pub const EARNED_MIN_SAMPLE: usize = 3;

/// The digest message for the period ending now.
pub async fn build(
    desk: &Desk,
    name: &str,
    timezone: chrono_tz::Tz,
    period: Period,
    departments: &[String],
) -> Result<Message, DeskError> {
    let r = report(desk, name, timezone, period, departments, desk.now()).await?;
    Ok(digest::render(&r, timezone))
}

/// The outbox rows that post `message` to each of `targets`.
pub fn posts(targets: &[ChannelRef], message: &Message) -> Vec<Outgoing> {
    Outgoing::posts(targets, None, message)
}

/// The outbox rows of a digest: its text, then its chart as a file, to each target. The chart
/// is its own row so a failed upload is retried without posting the text twice; a chart that
/// cannot be drawn is logged and left out.
pub fn digest_posts(report: &Report, tz: chrono_tz::Tz, targets: &[ChannelRef]) -> Vec<Outgoing> {
    let text = digest::render(report, tz);
    let mut out = posts(targets, &text);
    let title = format!(
        "{}: tickets opened, resolved and open per day",
        report.schedule
    );
    match crate::chart::png(&title, &report.days) {
        Ok(png) => {
            let chart = Message {
                text: title.clone(),
                attachment: Some(crate::core::message::Attachment {
                    filename: format!("digest-{}.png", report.schedule),
                    title,
                    content_type: "image/png".into(),
                    bytes: png,
                }),
                ..Message::default()
            };
            out.extend(posts(targets, &chart));
        }
        Err(e) => tracing::warn!(schedule = %report.schedule, error = %e, "digest chart left out"),
    }
    out
}
