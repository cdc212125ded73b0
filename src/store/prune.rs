//! What retention may remove from each table that only grows, as SQL written once for both
//! databases: which rows are finished and old enough, and how they are deleted in batches.
//!
//! Owns the rule that no row still in use is ever a candidate: a pending inbox or outbox row,
//! the newest sent alert of a ticket in a channel (edits of the alert find it), the SLA and
//! follow-up claims of a ticket not done. Must not decide when or how often to prune (the retention job and the
//! `prune` command do) and never touches tickets, their history, CSAT, metrics or kudos.

use serde::Serialize;

/// A kind of row retention removes. Each names its table and its rule; `$1` in the rules is
/// the cutoff (rows finished before it go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prunable {
    /// Inbox rows handled (`done`), by when they were done: their dedupe keys go with them.
    InboxDone,
    /// Outbox rows delivered (`sent`), by when they were sent; each ticket's newest alert in
    /// each channel stays, since later edits of that alert look it up.
    OutboxSent,
    /// Digest fire claims, by when they were claimed.
    Fires,
    /// SLA escalation claims of tickets resolved or closed, by when they were claimed and
    /// only once the ticket has not changed since the cutoff either.
    Claims,
    /// Follow-up claims (reminders, nudges) of tickets resolved or closed, by the same rule
    /// as [`Prunable::Claims`] (`claims` in `[retention]`).
    FollowupClaims,
    /// Inbox rows that failed, by when they failed: removed only by hand.
    InboxFailed,
    /// Outbox dead letters, by when they failed: removed only by hand.
    OutboxFailed,
}

impl Prunable {
    /// The kinds the retention job prunes on its own, in the order it does.
    pub const SCHEDULED: [Prunable; 5] = [
        Prunable::InboxDone,
        Prunable::OutboxSent,
        Prunable::Fires,
        Prunable::Claims,
        Prunable::FollowupClaims,
    ];

    /// The table it is in.
    pub fn table(self) -> &'static str {
        match self {
            Prunable::InboxDone | Prunable::InboxFailed => "inbox",
            Prunable::OutboxSent | Prunable::OutboxFailed => "outbox",
            Prunable::Fires => "schedule_fires",
            Prunable::Claims => "sla_escalations",
            Prunable::FollowupClaims => "followup_claims",
        }
    }

    /// A short name for reports and metrics: `inbox_done`, `outbox_sent`, ….
    pub fn name(self) -> &'static str {
        match self {
            Prunable::InboxDone => "inbox_done",
            Prunable::OutboxSent => "outbox_sent",
            Prunable::Fires => "schedule_fires",
            Prunable::Claims => "sla_claims",
            Prunable::FollowupClaims => "followup_claims",
            Prunable::InboxFailed => "inbox_failed",
            Prunable::OutboxFailed => "outbox_failed",
        }
    }

    /// Which rows of the table (aliased `r`) go, for a cutoff bound at `$1`.
    pub(crate) fn rule(self) -> &'static str {
        match self {
            Prunable::InboxDone => "r.status = 'done' AND r.done_at < $1",
            Prunable::InboxFailed => "r.status = 'failed' AND r.done_at < $1",
            Prunable::OutboxSent => {
                "r.status = 'sent' AND r.sent_at < $1 AND (r.kind <> 'alert' \
                 OR r.ticket_id IS NULL OR EXISTS (SELECT 1 FROM outbox n \
                 WHERE n.ticket_id = r.ticket_id AND n.kind = 'alert' AND n.status = 'sent' \
                 AND n.target = r.target AND n.id > r.id))"
            }
            Prunable::OutboxFailed => {
                "r.status = 'failed' AND COALESCE(r.failed_at, r.created_at) < $1"
            }
            Prunable::Fires => "r.claimed_at < $1",
            Prunable::Claims | Prunable::FollowupClaims => {
                "r.claimed_at < $1 AND EXISTS (SELECT 1 FROM tickets t \
                 WHERE t.id = r.ticket_id AND t.status IN ('resolved', 'closed') \
                 AND t.updated_at < $1)"
            }
        }
    }

    /// The columns that identify one row.
    fn key(self) -> &'static str {
        match self.table() {
            "schedule_fires" => "schedule, fire_local",
            "sla_escalations" => "ticket_id, clock, level",
            "followup_claims" => "ticket_id, kind, since",
            _ => "id",
        }
    }

    /// The column that says how old a kept row is, for "oldest row kept".
    fn age(self) -> &'static str {
        match self.table() {
            "inbox" => "received_at",
            "outbox" => "created_at",
            _ => "claimed_at",
        }
    }

    /// Counts the rows that would go (`$1` the cutoff).
    pub(crate) fn count_sql(self) -> String {
        format!(
            "SELECT COUNT(*) AS n FROM {} r WHERE {}",
            self.table(),
            self.rule()
        )
    }

    /// Deletes at most `$2` of them (`$1` the cutoff). Each batch is one short statement, so
    /// SQLite's single writer is held for a moment at a time.
    pub(crate) fn delete_sql(self) -> String {
        let (table, key) = (self.table(), self.key());
        let keys = key
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "DELETE FROM {table} WHERE ({key}) IN \
             (SELECT {keys} FROM {table} r WHERE {} LIMIT $2)",
            self.rule()
        )
    }

    /// The oldest row the rule keeps (`$1` the cutoff), as `t`.
    pub(crate) fn oldest_kept_sql(self) -> String {
        format!(
            "SELECT MIN(r.{}) AS t FROM {} r WHERE NOT COALESCE(({}), FALSE)",
            self.age(),
            self.table(),
            self.rule()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_deletes_by_its_own_key_and_rule() {
        let fires = Prunable::Fires.delete_sql();
        assert!(
            fires.starts_with("DELETE FROM schedule_fires WHERE (schedule, fire_local) IN"),
            "{fires}"
        );
        assert!(fires.contains("SELECT r.schedule, r.fire_local FROM schedule_fires r"));
        let sent = Prunable::OutboxSent.delete_sql();
        assert!(sent.contains("LIMIT $2"), "{sent}");
        assert!(sent.contains("r.status = 'sent'"), "{sent}");
        for p in Prunable::SCHEDULED {
            assert!(
                !p.rule().contains("pending"),
                "{p:?} never selects work in progress"
            );
        }
    }
}
