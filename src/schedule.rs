//! Cron jobs: the digest schedules and the SLA check. Each tick finds every schedule's latest fire (on the
//! schedule's local wall clock, across daylight-saving changes), and if it happened within the
//! schedule's grace window, builds the digest for the period ending at the fire and claims the
//! fire in the store together with its posts, so any number of instances on one database post
//! each fire exactly once, and a bot that was down posts a missed fire once on start (never a
//! backlog of them).
//!
//! The SLA check runs on the same tick: every active ticket's clocks, with each breach (and
//! optional 80% warning) claimed in the store with its post, so it is escalated once. So do
//! the follow-ups (`crate::followups`: reminders, auto-close, nudges) and retention.
//!
//! Between ticks the scheduler sleeps until the next tick or the next digest fire, whichever
//! comes first, so a digest is posted at its time rather than up to a tick later. (Schedules
//! firing more than once a minute are refused by the configuration check.)
//!
//! Owns when digests and escalations are posted; what digests say is `cmd::digest`'s, the
//! clocks are `core::sla`'s, and delivery is the outbox's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::cmd::digest;
use crate::core::cache::Bounded;
use crate::core::cronexpr::{latest_fire, next_fire};
use crate::core::message::{escalation, Outgoing, SlaClockKind};
use crate::core::sla::{describe, Clock};
use crate::core::types::TicketRef;
use crate::desk::{Desk, DeskError};
use crate::retention;
use crate::store::{StoreError, TicketFilter};

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// This instance's name in fire claims.
    pub owner: String,
    /// Time between ticks.
    pub tick: Duration,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            owner: format!("scheduler-{}", uuid::Uuid::new_v4().simple()),
            tick: Duration::from_secs(15),
        }
    }
}

/// What a tick did with a schedule's latest fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireOutcome {
    /// This instance claimed the fire and queued the digest to this many targets.
    Posted {
        /// Schedule name.
        schedule: String,
        /// The fire's local wall-clock time.
        fire: String,
        /// Targets queued.
        targets: usize,
    },
    /// Another instance (or an earlier run) had already claimed it.
    AlreadyPosted {
        /// Schedule name.
        schedule: String,
        /// The fire's local wall-clock time.
        fire: String,
    },
    /// The fire is older than the grace window; it is skipped.
    Missed {
        /// Schedule name.
        schedule: String,
        /// The fire's local wall-clock time.
        fire: String,
    },
}

/// An SLA escalation a tick made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The ticket.
    pub ticket: TicketRef,
    /// `first_response` or `resolution`.
    pub clock: String,
    /// `warning` or `breach`.
    pub level: String,
    /// Whether this instance posted it (`false`: another had already).
    pub posted: bool,
}

/// How many settled escalations a scheduler remembers; one forgotten costs a claim that
/// finds it taken, never a second post.
pub const SETTLED_ESCALATIONS: usize = 100_000;

/// Share of a target after which a department that asks for it is warned.
pub const WARN_AT: f64 = 0.8;

/// The digest scheduler.
#[derive(Debug)]
pub struct Scheduler {
    desk: Desk,
    settings: SchedulerSettings,
    /// Fires this process already settled, by schedule, so a tick does not rebuild a digest
    /// for a fire it knows is claimed.
    settled: Mutex<HashMap<String, String>>,
    /// Escalations this process already settled (`ticket:clock:level`): a shortcut only (the
    /// store's claim is the record), so it is bounded ([`SETTLED_ESCALATIONS`] for a day).
    escalated: Bounded<String, ()>,
    /// Follow-ups this process already claimed (a shortcut, as `escalated`).
    followed: Bounded<String, ()>,
    /// When this process next looks at retention.
    next_prune: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

impl Scheduler {
    /// A scheduler for `desk`'s configured digests.
    pub fn new(desk: Desk, settings: SchedulerSettings) -> Self {
        Self {
            desk,
            settings,
            settled: Mutex::new(HashMap::new()),
            escalated: Bounded::new(SETTLED_ESCALATIONS, Duration::from_secs(24 * 3600)),
            followed: Bounded::new(SETTLED_ESCALATIONS, Duration::from_secs(24 * 3600)),
            next_prune: Mutex::new(None),
        }
    }

    /// Runs ticks until `shutdown`.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let name = format!("scheduler {}", self.settings.owner);
        // Ticks follow the clock; nothing else wakes the scheduler.
        let never = tokio::sync::Notify::new();
        crate::worker::run_rounds_with(
            &name,
            || self.next_wake(),
            shutdown,
            &never,
            || async {
                self.tick().await?;
                self.sla_tick().await?;
                // Follow-ups failing (logged per ticket inside) never hold up retention.
                if let Err(e) = self.followup_tick().await {
                    tracing::warn!(error = %e, "follow-ups failed; retried on the next tick");
                }
                self.retention_tick().await.map(|_| 0)
            },
        )
        .await;
    }

    /// How long to sleep before the next round: until the next digest fire when that comes
    /// before the next tick, else the tick (which also paces the SLA check).
    pub fn next_wake(&self) -> Duration {
        let now = self.desk.now();
        self.desk
            .config
            .digests
            .iter()
            .filter_map(|s| next_fire(&s.schedule, s.timezone, now))
            .filter_map(|f| (f.at - now).to_std().ok())
            .fold(self.settings.tick, Duration::min)
    }

    /// Checks every active ticket's SLA clocks once: each breach (and, for departments that
    /// want it, each 80% warning) is claimed in the store with its post to the department's
    /// channels, pinging the department's leads and nobody else, so it is posted once however
    /// many instances check.
    pub async fn sla_tick(&self) -> Result<Vec<Escalation>, StoreError> {
        let desk = &self.desk;
        let policy = &desk.config.sla;
        if policy.default.is_empty() && policy.departments.values().all(|t| t.is_empty()) {
            return Ok(vec![]);
        }
        let now = desk.now();
        let active = desk.store.list_tickets(&TicketFilter::active()).await?;
        let mut out = Vec::new();
        for t in &active {
            let (first, resolution) = policy.clocks(
                &t.department,
                t.priority,
                &crate::cmd::ticket::times(t),
                now,
            );
            let tz = policy.zone(&t.department);
            for (kind, clock, kept) in [
                (SlaClockKind::FirstResponse, first, t.first_response_at),
                (SlaClockKind::Resolution, resolution, t.resolved_at),
            ] {
                let level = match clock {
                    Some(Clock::Breached { .. }) if kept.is_none() => "breach",
                    Some(Clock::Running { used, .. })
                        if used >= WARN_AT && policy.warn.contains(&t.department) =>
                    {
                        "warning"
                    }
                    _ => continue,
                };
                let Some(clock) = clock else { continue };
                let key = format!("{}:{}:{level}", t.id.0, kind.as_str());
                if self.escalated.contains(&key) {
                    continue;
                }
                let dir = &desk.config.directory;
                let Some(dept) = dir.department(&t.department) else {
                    continue;
                };
                let message = escalation(
                    t,
                    dir,
                    kind,
                    level == "breach",
                    &describe(&clock, tz),
                    dir.lead_mentions(dept),
                );
                let posts = Outgoing::posts(&dept.channels, Some(t.id), &message);
                let posted = desk
                    .store
                    .claim_escalation(t.id, kind.as_str(), level, &self.settings.owner, now, posts)
                    .await?;
                if posted {
                    tracing::info!(ticket = %t.id, clock = kind.as_str(), level, "SLA escalation posted");
                }
                self.escalated.insert(key, ());
                out.push(Escalation {
                    ticket: t.id,
                    clock: kind.as_str().to_string(),
                    level: level.to_string(),
                    posted,
                });
            }
        }
        Ok(out)
    }

    /// Sends the reminders and nudges that are due and closes tickets left waiting past
    /// `close_after` (see [`crate::followups`]).
    pub async fn followup_tick(&self) -> Result<Vec<crate::followups::FollowUp>, StoreError> {
        crate::followups::tick(&self.desk, &self.settings.owner, &self.followed)
            .await
            .map_err(|e| match e {
                DeskError::Internal(e) => e,
                other => StoreError::Unsupported(format!("follow-ups: {other}")),
            })
    }

    /// Prunes what `[retention]` allows, at most once per `every` across all instances (the
    /// slot is claimed in the store); `None` when it was not this process's turn.
    pub async fn retention_tick(&self) -> Result<Option<Vec<retention::Pruned>>, StoreError> {
        let settings = &self.desk.config.retention;
        let now = self.desk.now();
        if !settings.enabled {
            return Ok(None);
        }
        {
            let mut next = self.next_prune.lock().unwrap_or_else(|e| e.into_inner());
            if next.is_some_and(|n| now < n) {
                return Ok(None);
            }
            *next = Some(now + settings.every);
        }
        let Some(done) =
            retention::scheduled(&*self.desk.store, settings, &self.settings.owner, now).await?
        else {
            return Ok(None);
        };
        for p in &done {
            self.desk.telemetry.pruned(p.what.name(), p.removed);
            if p.removed > 0 {
                tracing::info!(
                    rows = p.what.name(),
                    removed = p.removed,
                    before = %p.before,
                    "retention pruned rows"
                );
            }
        }
        Ok(Some(done))
    }

    /// Looks at every schedule once.
    pub async fn tick(&self) -> Result<Vec<FireOutcome>, StoreError> {
        let now = self.desk.now();
        let mut out = Vec::new();
        for s in &self.desk.config.digests {
            let Some(fire) = latest_fire(&s.schedule, s.timezone, now) else {
                continue;
            };
            let key = fire.key();
            let known = self
                .settled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&s.name)
                == Some(&key);
            if known {
                continue;
            }
            let settle = |outcome: FireOutcome| {
                self.settled
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(s.name.clone(), key.clone());
                outcome
            };
            if now - fire.at > s.grace {
                tracing::info!(schedule = %s.name, fire = %key, "digest fire is older than its grace window; skipped");
                out.push(settle(FireOutcome::Missed {
                    schedule: s.name.clone(),
                    fire: key.clone(),
                }));
                continue;
            }
            // The period ends at the scheduled instant, even when the post is late.
            let report = match digest::report(
                &self.desk,
                &s.name,
                s.timezone,
                s.period,
                &s.departments,
                fire.at,
            )
            .await
            {
                Ok(r) => r,
                Err(DeskError::Internal(e)) => return Err(e),
                Err(e) => {
                    tracing::error!(schedule = %s.name, error = %e, "digest could not be built");
                    continue;
                }
            };
            let posts = digest::digest_posts(&report, s.timezone, &s.targets);
            let targets = s.targets.len();
            let claimed = self
                .desk
                .store
                .claim_fire(&s.name, &key, &self.settings.owner, now, posts)
                .await?;
            out.push(settle(if claimed {
                tracing::info!(schedule = %s.name, fire = %key, targets, "digest posted");
                FireOutcome::Posted {
                    schedule: s.name.clone(),
                    fire: key.clone(),
                    targets,
                }
            } else {
                FireOutcome::AlreadyPosted {
                    schedule: s.name.clone(),
                    fire: key.clone(),
                }
            }));
        }
        Ok(out)
    }
}
