//! What the workers need from a chat platform, as two traits: [`Delivery`] sends and edits
//! messages; [`EventSource`] completes a raw inbound event into a flag (fetching what the event
//! lacks, such as the message text).
//!
//! Owns the error kinds that decide retry, wait or dead-letter. Platform adapters implement
//! these traits; the workers never see a platform type.

pub mod discord;
pub mod pace;
pub mod slack;

use std::time::Duration;

use async_trait::async_trait;

use crate::core::directory::Actor;
use crate::core::message::{Message, Target};
use crate::core::types::{ChannelRef, Platform, UserRef};
use crate::desk::{FlagRequest, ThreadMessage};

/// How a platform call failed, which decides what the worker does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// The platform asked us to wait (HTTP 429 with Retry-After).
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Duration),
    /// Worth retrying later: timeouts, 5xx, connection errors.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Will never succeed as is: no access to the channel, unknown channel, deleted message.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Sends messages to one platform.
#[async_trait]
pub trait Delivery: Send + Sync {
    /// The platform this delivers to.
    fn platform(&self) -> Platform;

    /// Posts `message` to `target`, returning the platform's message id. `key` is unique per
    /// outbox row, for platforms that can deduplicate a retried create (Discord's nonce).
    async fn post(
        &self,
        target: &Target,
        message: &Message,
        key: &str,
    ) -> Result<String, ChatError>;

    /// Replaces the message `message_id` in `channel` with `message`.
    async fn edit(
        &self,
        channel: &ChannelRef,
        message_id: &str,
        message: &Message,
    ) -> Result<(), ChatError>;
}

/// What an inbound event turned out to be.
#[derive(Debug, Clone)]
pub enum Completion {
    /// A flag to turn into a ticket.
    Flag(Box<FlagRequest>),
    /// A message changed on the platform; recorded on its ticket if it has one.
    SourceChanged {
        /// Where the message is.
        channel: ChannelRef,
        /// The message's id.
        message_id: String,
        /// Who changed it, when the platform says.
        by: Option<UserRef>,
        /// Its new text, or `None` when it was deleted.
        text: Option<String>,
    },
    /// Someone replied in the thread of a message; a staff reply to a flagged message is the
    /// ticket's first response.
    Reply {
        /// Where the thread is.
        channel: ChannelRef,
        /// The thread's parent message id.
        message_id: String,
        /// Who replied.
        by: Actor,
        /// The reply itself, for the ticket's transcript (`None` from events stored before
        /// replies were kept).
        reply: Option<ThreadMessage>,
    },
    /// Nothing to do (not a flag emoji, a bot's reaction, …), with the reason for the record.
    Ignore(String),
}

/// Completes raw events from one platform.
#[async_trait]
pub trait EventSource: Send + Sync {
    /// The platform whose events this reads.
    fn platform(&self) -> Platform;

    /// Turns a raw event, as stored in the inbox, into a flag request or an ignore.
    async fn complete(&self, raw: &serde_json::Value) -> Result<Completion, ChatError>;
}

/// Exponential backoff with full jitter: a random wait up to `base · 2^(attempt-1)`, capped.
pub fn backoff(attempt: i64, base: Duration, cap: Duration) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 30) - 1).unwrap_or(0);
    let ceiling = base.saturating_mul(2u32.saturating_pow(exp)).min(cap);
    let millis = u64::try_from(ceiling.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(fastrand::u64(millis / 2..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        for _ in 0..100 {
            let first = backoff(1, base, cap);
            assert!(
                first >= Duration::from_millis(500) && first <= base,
                "{first:?}"
            );
            let fourth = backoff(4, base, cap);
            assert!(
                fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(8),
                "{fourth:?}"
            );
            assert!(backoff(20, base, cap) <= cap);
        }
    }
}
