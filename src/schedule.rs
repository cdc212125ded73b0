//! Cron jobs: the digest schedules. Each tick finds every schedule's latest fire (on the
//! schedule's local wall clock, across daylight-saving changes), and if it happened within the
//! schedule's grace window, builds the digest for the period ending at the fire and claims the
//! fire in the store together with its posts, so any number of instances on one database post
//! each fire exactly once, and a bot that was down posts a missed fire once on start (never a
//! backlog of them).
//!
//! Owns when digests are posted; what they say is `cmd::digest`'s and delivery the outbox's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::cmd::digest;
use crate::core::cronexpr::latest_fire;
use crate::desk::{Desk, DeskError};
use crate::store::StoreError;

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

/// The digest scheduler.
#[derive(Debug)]
pub struct Scheduler {
    desk: Desk,
    settings: SchedulerSettings,
    /// Fires this process already settled, by schedule, so a tick does not rebuild a digest
    /// for a fire it knows is claimed.
    settled: Mutex<HashMap<String, String>>,
}

impl Scheduler {
    /// A scheduler for `desk`'s configured digests.
    pub fn new(desk: Desk, settings: SchedulerSettings) -> Self {
        Self {
            desk,
            settings,
            settled: Mutex::new(HashMap::new()),
        }
    }

    /// Runs ticks until `shutdown`.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let name = format!("scheduler {}", self.settings.owner);
        crate::worker::run_rounds(&name, self.settings.tick, shutdown, || async {
            self.tick().await.map(|_| 0)
        })
        .await;
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
            let message = crate::core::digest::render(&report, s.timezone);
            let posts = digest::posts(&s.targets, &message);
            let targets = posts.len();
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
