//! Slash-command handlers: one module per file in `commands/`.
//!
//! Each module declares its command name and subcommands, parses checked [`Args`] into its own
//! typed enum and runs it against the [`Desk`]. Adding a command means a TOML spec, a module
//! here and one line in each of [`HANDLERS`], [`Command`] and [`parse`]. Handlers never see a
//! platform payload.

pub mod digest;
pub mod kudos;
pub mod metric;
pub mod ticket;

use crate::core::command::{Args, CommandSet, Invocation, UsageError};
use crate::core::directory::{Actor, Permission};
use crate::core::message::Reply;
use crate::core::types::ChannelRef;
use crate::desk::{Desk, DeskError};

/// Every handler's command name and the subcommands it implements; a test checks this
/// against `commands/` both ways.
pub const HANDLERS: &[(&str, &[&str])] = &[
    (ticket::NAME, ticket::SUBCOMMANDS),
    (kudos::NAME, kudos::SUBCOMMANDS),
    (digest::NAME, digest::SUBCOMMANDS),
    (metric::NAME, metric::SUBCOMMANDS),
];

/// Who runs a command, where, and the standing its spec requires.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The person running it.
    pub actor: &'a Actor,
    /// The channel it was run in, if any.
    pub channel: Option<&'a ChannelRef>,
    /// The subcommand's `permission` from its spec.
    pub permission: Permission,
}

/// A typed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `/ticket …`
    Ticket(ticket::TicketCmd),
    /// `/kudos …`
    Kudos(kudos::KudosCmd),
    /// `/digest …`
    Digest(digest::DigestCmd),
    /// `/metric …`
    Metric(metric::MetricCmd),
}

/// Parses a checked invocation into a typed command.
pub fn parse(set: &CommandSet, inv: &Invocation) -> Result<Command, UsageError> {
    parse_reporting_unread(set, inv).map(|(c, _)| c)
}

/// Like [`parse`], also returning the spec options the handler never read (tests use it to
/// prove handlers and specs agree).
pub fn parse_reporting_unread(
    set: &CommandSet,
    inv: &Invocation,
) -> Result<(Command, Vec<String>), UsageError> {
    let args = Args::new(set, inv)?;
    let cmd = match inv.command.as_str() {
        ticket::NAME => Command::Ticket(ticket::TicketCmd::parse(&args)?),
        kudos::NAME => Command::Kudos(kudos::KudosCmd::parse(&args)?),
        digest::NAME => Command::Digest(digest::DigestCmd::parse(&args)?),
        metric::NAME => Command::Metric(metric::MetricCmd::parse(&args)?),
        other => return Err(UsageError::UnknownCommand(other.to_string())),
    };
    Ok((cmd, args.unread()))
}

impl Command {
    /// Runs the command.
    pub async fn run(self, desk: &Desk, ctx: &Context<'_>) -> Result<Reply, DeskError> {
        match self {
            Command::Ticket(c) => c.run(desk, ctx).await,
            Command::Kudos(c) => c.run(desk, ctx).await,
            Command::Digest(c) => c.run(desk, ctx).await,
            Command::Metric(c) => c.run(desk, ctx).await,
        }
    }
}

/// The error for a subcommand a handler does not implement (caught by the agreement test).
fn unknown_sub(command: &str, args: &Args<'_>) -> UsageError {
    UsageError::UnknownSubcommand {
        command: command.to_string(),
        given: args.subcommand().to_string(),
        available: HANDLERS
            .iter()
            .find(|(n, _)| *n == command)
            .map(|(_, s)| s.join(", "))
            .unwrap_or_default(),
    }
}
