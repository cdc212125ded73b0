//! The flag limit: at most `[flagging] limit` messages flagged per person in any
//! `limit_window`, so one account cannot flood the departments with tickets.
//!
//! Owns who counts as one flagger (every linked account of a person, else the lone account,
//! on both platforms and by every kind of flag: reaction, Slack message shortcut, Discord
//! context menu), the quota a flag hands to the store, the explanation shown in chat, and the
//! early check the create-ticket forms make so nobody fills one in for nothing. The store
//! does the counting, from the tickets already written, inside the transaction that would
//! write the new one: several instances agree, and a burst of one person's flags handled at
//! once cannot all pass a count taken before any of them was written. A flag of a message
//! that already has a ticket only points to it: it neither counts nor is refused.
//!
//! `/ticket new` does not count. A flag makes a ticket out of someone else's message (its
//! author is the reporter) and posts into that message's thread as well as to the
//! department, for one click that a script can repeat over a channel's whole history; a
//! command opens a ticket the person reports themselves, under their own name, with a title
//! they typed. The flood this limit is for is the first kind.

use chrono::{DateTime, Duration, Utc};

use super::{Desk, DeskError};
use crate::core::directory::Actor;
use crate::core::types::ChannelRef;
use crate::store::FlagQuota;

impl Desk {
    /// The quota of a flag `flagger` makes now, when the limit is on.
    pub(super) fn flag_quota(&self, flagger: &Actor) -> Option<FlagQuota> {
        let limit = self.config.flag_limit?;
        let dir = &self.config.directory;
        Some(FlagQuota {
            person: dir.identity_key(&flagger.user),
            accounts: dir.accounts(&flagger.user),
            since: self.now() - limit.window,
            max: limit.count,
        })
    }

    /// The refusal of a flag when the person's flags in the window were made at `counted`
    /// (oldest first): how many, the limit, and when the oldest that matters leaves the
    /// window.
    pub(super) fn over_limit(&self, counted: &[DateTime<Utc>]) -> DeskError {
        let limit = self.config.flag_limit.unwrap_or_default();
        // Below the limit again once all but `count - 1` of them have left the window.
        let freeing = counted
            .len()
            .checked_sub(limit.count as usize)
            .and_then(|i| counted.get(i))
            .map_or(self.now(), |at| *at + limit.window);
        let retry = (freeing - self.now()).max(Duration::zero());
        let n = counted.len();
        DeskError::FlagLimit {
            flagged: format!("{n} message{}", if n == 1 { "" } else { "s" }),
            limit: limit.count,
            window: spoken(limit.window),
            retry: spoken(round_up_to_minutes(retry)),
        }
    }

    /// Refuses, with the same explanation a refused flag gets, when `flagger` has used up the
    /// flag limit; fine when `message` (channel and id) already has a ticket, which a flag
    /// would only point to. The forms ask before they open and again when submitted; the
    /// store's count when the ticket is written is the one that holds.
    pub async fn check_flag_limit(
        &self,
        flagger: &Actor,
        message: Option<(&ChannelRef, &str)>,
    ) -> Result<(), DeskError> {
        let Some(q) = self.flag_quota(flagger) else {
            return Ok(());
        };
        let counted = self.store.recent_flags(&q.accounts, q.since).await?;
        if counted.len() < q.max as usize {
            return Ok(());
        }
        if let Some((channel, id)) = message {
            if self.store.ticket_by_source(channel, id).await?.is_some() {
                return Ok(());
            }
        }
        Err(self.over_limit(&counted))
    }
}

/// `d` rounded up to whole minutes, at least one: a wait said in minutes is never too short.
fn round_up_to_minutes(d: Duration) -> Duration {
    let secs = d.num_seconds().max(1);
    Duration::minutes((secs + 59) / 60)
}

/// A duration of whole minutes as people say it: `10 minutes`, `1 hour 30 minutes`, `2 days`.
fn spoken(d: Duration) -> String {
    let mut minutes = d.num_minutes().max(0);
    let mut parts = Vec::new();
    for (unit, size) in [("day", 24 * 60), ("hour", 60), ("minute", 1)] {
        let n = minutes / size;
        minutes %= size;
        if n > 0 {
            parts.push(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
        }
    }
    if parts.is_empty() {
        "less than a minute".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_said_in_words_and_waits_round_up() {
        assert_eq!(spoken(Duration::minutes(10)), "10 minutes");
        assert_eq!(spoken(Duration::minutes(61)), "1 hour 1 minute");
        assert_eq!(spoken(Duration::days(2)), "2 days");
        assert_eq!(spoken(Duration::zero()), "less than a minute");
        assert_eq!(
            round_up_to_minutes(Duration::seconds(61)),
            Duration::minutes(2)
        );
        assert_eq!(round_up_to_minutes(Duration::zero()), Duration::minutes(1));
        assert_eq!(
            round_up_to_minutes(Duration::minutes(4)),
            Duration::minutes(4)
        );
    }
}
