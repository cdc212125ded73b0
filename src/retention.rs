//! Retention: removes what only grows (handled inbox rows, delivered outbox rows, digest fire
//! claims, SLA claims of done tickets) once it is older than `[retention]` allows, in small
//! batches, and reports what it removed and the oldest row it kept.
//!
//! Owns how a pruning run goes: the cutoffs from the settings, the batches (one short
//! statement each, with a pause between them so SQLite's single writer keeps serving flags),
//! the per-table report, and the once-per-slot claim that lets several instances share the
//! job. Which rows qualify is the store's rule (`store::Prunable`); when the job runs is the
//! scheduler's. Must never remove tickets, their history, CSAT, metrics or kudos.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::RetentionSettings;
use crate::store::{Prunable, Store, StoreError};

/// The schedule name retention claims its slots under. Digest names cannot start with `@`.
pub const CLAIM: &str = "@retention";

/// How long a batch waits before the next, so other writes get the database in between.
const PAUSE: StdDuration = StdDuration::from_millis(5);

/// The most batches of each kind one scheduled run removes (100,000 rows at the default
/// `batch`): the first run on a large database does not hold up the digests and SLA checks
/// that share the scheduler's round; the rest goes in the next runs.
pub const MAX_BATCHES_PER_RUN: usize = 200;

/// What one kind of row's pruning removed (or, in a dry run, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Which rows.
    pub what: Prunable,
    /// Finished before this, they go.
    pub before: DateTime<Utc>,
    /// How many went (or would go).
    pub removed: u64,
    /// The oldest row kept in the table, when asked for.
    pub oldest_kept: Option<DateTime<Utc>>,
}

/// The cutoffs of every kind the job prunes, for a run at `now`.
pub fn plan(settings: &RetentionSettings, now: DateTime<Utc>) -> Vec<(Prunable, DateTime<Utc>)> {
    Prunable::SCHEDULED
        .into_iter()
        .map(|what| {
            let keep = match what {
                Prunable::InboxDone => settings.inbox_done,
                Prunable::OutboxSent => settings.outbox_sent,
                Prunable::Fires => settings.fires,
                _ => settings.claims,
            };
            (what, now - keep)
        })
        .collect()
}

/// Prunes (or with `dry_run` only counts) each `(kind, cutoff)` of `plan`, `batch` rows per
/// statement; with `oldest` it also finds the oldest row each table keeps (a scan: the
/// command asks for it, the scheduled job does not).
pub async fn run(
    store: &dyn Store,
    plan: &[(Prunable, DateTime<Utc>)],
    batch: usize,
    dry_run: bool,
    oldest: bool,
) -> Result<Vec<Pruned>, StoreError> {
    run_capped(store, plan, batch, dry_run, oldest, usize::MAX).await
}

/// [`run`], removing at most `max_batches` batches of each kind.
async fn run_capped(
    store: &dyn Store,
    plan: &[(Prunable, DateTime<Utc>)],
    batch: usize,
    dry_run: bool,
    oldest: bool,
    max_batches: usize,
) -> Result<Vec<Pruned>, StoreError> {
    let batch = i64::try_from(batch.max(1)).unwrap_or(500);
    let mut out = Vec::with_capacity(plan.len());
    for &(what, before) in plan {
        let removed = if dry_run {
            store.prunable(what, before).await?
        } else {
            let mut total = 0;
            for done in 1..=max_batches {
                let n = store.prune(what, before, batch).await?;
                total += n;
                if n < batch.unsigned_abs() || done == max_batches {
                    break;
                }
                tokio::time::sleep(PAUSE).await;
            }
            total
        };
        let oldest_kept = if oldest {
            store.oldest_kept(what, before).await?
        } else {
            None
        };
        out.push(Pruned {
            what,
            before,
            removed,
            oldest_kept,
        });
    }
    Ok(out)
}

/// The slot a run at `now` belongs to: runs `every` apart share none, so an instance claims
/// each slot once and the others skip it.
pub fn slot(now: DateTime<Utc>, every: Duration) -> String {
    let step = every.num_seconds().max(60);
    let start = now.timestamp().div_euclid(step) * step;
    let at = DateTime::<Utc>::from_timestamp(start, 0).unwrap_or(now);
    crate::store::ts(at)
}

/// The scheduled job at `now`: claims this slot for `owner` and, if no instance had, prunes
/// with `settings`, at most [`MAX_BATCHES_PER_RUN`] batches of each kind. `None` when another
/// instance has the slot.
pub async fn scheduled(
    store: &dyn Store,
    settings: &RetentionSettings,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Option<Vec<Pruned>>, StoreError> {
    let slot = slot(now, settings.every);
    if !store.claim_fire(CLAIM, &slot, owner, now, vec![]).await? {
        return Ok(None);
    }
    let done = run_capped(
        store,
        &plan(settings, now),
        settings.batch,
        false,
        false,
        MAX_BATCHES_PER_RUN,
    )
    .await?;
    Ok(Some(done))
}

/// The table `switchboard prune` prints: one line per kind with its count and oldest row kept.
pub fn render(report: &[Pruned], dry_run: bool) -> String {
    let mut out = format!(
        "{:<16} {:>10}  {:<24}  {}\n",
        "rows",
        if dry_run { "would go" } else { "removed" },
        "finished before",
        "oldest kept"
    );
    for p in report {
        out.push_str(&format!(
            "{:<16} {:>10}  {:<24}  {}\n",
            p.what.name(),
            p.removed,
            crate::store::ts(p.before),
            p.oldest_kept
                .map_or_else(|| "-".to_string(), crate::store::ts)
        ));
    }
    if dry_run {
        out.push_str("dry run: nothing was removed\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn runs_an_interval_apart_never_share_a_slot_and_runs_within_one_do() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 10, 17, 3).unwrap();
        let hour = Duration::hours(1);
        assert_eq!(slot(t, hour), "2026-12-01T10:00:00.000Z");
        assert_eq!(
            slot(t + Duration::minutes(40), hour),
            "2026-12-01T10:00:00.000Z"
        );
        assert_eq!(slot(t + hour, hour), "2026-12-01T11:00:00.000Z");
    }

    #[test]
    fn the_plan_keeps_each_kind_for_its_own_setting() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let s = RetentionSettings::default();
        let plan = plan(&s, now);
        assert_eq!(plan.len(), 5);
        assert_eq!(plan[0], (Prunable::InboxDone, now - Duration::days(30)));
        assert_eq!(plan[2], (Prunable::Fires, now - Duration::days(90)));
        assert_eq!(
            plan[4],
            (Prunable::FollowupClaims, now - Duration::days(90)),
            "follow-up claims keep as long as SLA claims"
        );
    }
}
