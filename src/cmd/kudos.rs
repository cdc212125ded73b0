//! `/kudos`: thank a colleague; the period's shout-outs appear in digests.
//!
//! Owns the kudos rules: not to yourself (on any of your linked accounts), not to a bot (as
//! the receiver's platform says), a reason is required and a named ticket must exist. Stores
//! through the desk's store; never pings anyone when announcing.

use chrono::Duration;

use crate::core::command::{Args, UsageError};
use crate::core::message::{neutralize_mentions, truncate, Message, Reply};
use crate::core::types::{TicketRef, UserRef};
use crate::desk::AccountKind;
use crate::desk::{Desk, DeskError};
use crate::store::NewKudos;

use super::Context;

/// Command name.
pub const NAME: &str = "kudos";
/// Implemented subcommands.
pub const SUBCOMMANDS: &[&str] = &["give", "list"];

/// How far `/kudos list` looks back unless told.
const DEFAULT_DAYS: i64 = 7;
/// The longest reason kept.
const MAX_REASON: usize = 500;

/// A typed `/kudos` subcommand.
#[derive(Debug, Clone, PartialEq)]
pub enum KudosCmd {
    /// Thank someone.
    Give {
        /// Who.
        user: UserRef,
        /// Why.
        reason: String,
        /// The ticket they helped with.
        ticket: Option<TicketRef>,
    },
    /// Recent kudos.
    List {
        /// Only kudos this person received.
        user: Option<UserRef>,
        /// Days back.
        days: Option<i64>,
    },
}

impl KudosCmd {
    /// Reads the typed subcommand from checked arguments.
    pub fn parse(a: &Args<'_>) -> Result<Self, UsageError> {
        Ok(match a.subcommand() {
            "give" => KudosCmd::Give {
                user: a.user("user")?,
                reason: a.text("why")?,
                ticket: a.opt_ticket("ticket")?,
            },
            "list" => KudosCmd::List {
                user: a.opt_user("user")?,
                days: a.opt_integer("days", 1..=365)?,
            },
            _ => return Err(super::unknown_sub(NAME, a)),
        })
    }

    /// Runs it.
    pub async fn run(self, desk: &Desk, ctx: &Context<'_>) -> Result<Reply, DeskError> {
        let dir = &desk.config.directory;
        desk.authorize(ctx.actor, ctx.permission, None, "give or list kudos")?;
        match self {
            KudosCmd::Give {
                user,
                reason,
                ticket,
            } => {
                if dir.same_person(&ctx.actor.user, &user) {
                    return Err(DeskError::User(
                        "Kudos are for thanking someone else. Try `/kudos @colleague what they did`.".into(),
                    ));
                }
                let reason = truncate(reason.trim().trim_start_matches("for ").trim(), MAX_REASON);
                if reason.is_empty() {
                    return Err(DeskError::User(
                        "Say what they did, e.g. `/kudos @bob for fixing the export`.".into(),
                    ));
                }
                check_receiver(desk, &user).await?;
                if let Some(t) = ticket {
                    // Refuses an unknown ticket with a message naming it.
                    desk.ticket(t).await?;
                }
                let k = desk
                    .store
                    .add_kudos(NewKudos {
                        giver_key: dir.identity_key(&ctx.actor.user),
                        giver: ctx.actor.user.clone(),
                        receiver_key: dir.identity_key(&user),
                        receiver: user,
                        reason,
                        ticket,
                        at: desk.now(),
                    })
                    .await?;
                let about = k.ticket.map(|t| format!(" ({t})")).unwrap_or_default();
                Ok(Reply::in_channel(Message::text(format!(
                    "🎉 {} thanked {}: {}{about}",
                    dir.display_name(&k.giver),
                    dir.display_name(&k.receiver),
                    neutralize_mentions(&k.reason)
                ))))
            }
            KudosCmd::List { user, days } => {
                let days = days.unwrap_or(DEFAULT_DAYS);
                let key = user.as_ref().map(|u| dir.identity_key(u));
                let kudos = desk
                    .store
                    .list_kudos(desk.now() - Duration::days(days), key.as_deref())
                    .await?;
                if kudos.is_empty() {
                    return Ok(Reply::ephemeral(Message::text(format!(
                        "No kudos in the last {days} days. Start with `/kudos @colleague what they did`."
                    ))));
                }
                let mut lines: Vec<String> = kudos
                    .iter()
                    .take(20)
                    .map(|k| {
                        format!(
                            "• {} → {}: {}{}",
                            dir.display_name(&k.giver),
                            dir.display_name(&k.receiver),
                            truncate(&neutralize_mentions(&k.reason), 200),
                            k.ticket.map(|t| format!(" ({t})")).unwrap_or_default()
                        )
                    })
                    .collect();
                if kudos.len() > 20 {
                    lines.push(format!("…and {} more.", kudos.len() - 20));
                }
                Ok(Reply::ephemeral(Message {
                    title: Some(format!("Kudos in the last {days} days ({})", kudos.len())),
                    text: lines.join("\n"),
                    ..Message::default()
                }))
            }
        }
    }
}

/// Refuses kudos to a bot or to an account its platform does not know. A person listed in
/// the directory is a person; otherwise the receiver's platform is asked, when connected.
async fn check_receiver(desk: &Desk, user: &UserRef) -> Result<(), DeskError> {
    if desk.config.directory.person_of(user).is_some() {
        return Ok(());
    }
    match desk.accounts.kind(user).await {
        Ok(Some(AccountKind::Bot)) => Err(DeskError::User(
            "That's a bot, and kudos are for people. Thank the colleague who helped: `/kudos @colleague what they did`.".into(),
        )),
        Ok(Some(AccountKind::Unknown)) => Err(DeskError::User(format!(
            "I can't find the user `{}`. Pick them from the mention list: `/kudos @colleague what they did`.",
            user.id
        ))),
        Ok(Some(AccountKind::Person) | None) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "could not ask the platform whether a kudos receiver is a bot");
            Err(DeskError::User(
                "The chat platform is busy and could not tell me who that is; please try again in a few seconds.".into(),
            ))
        }
    }
}
