//! Slash-command handlers: one module per file in `commands/`.
//!
//! Runs a command from an adapter ([`run_text`] for Slack's one-line form, [`run`] for a
//! checked invocation). Each module declares its command name and subcommands, parses checked
//! [`Args`] into its own typed enum and runs it against the [`Desk`]. Adding a command means a TOML spec, a module
//! here and one line in each of [`HANDLERS`], [`Command`] and [`parse`]. Handlers never see a
//! platform payload.

pub mod digest;
pub mod kb;
pub mod kudos;
pub mod metric;
pub mod reply;
pub mod ticket;

use crate::core::command::{Args, CommandSet, Invocation, UsageError};
use crate::core::directory::{Actor, Permission};
use crate::core::message::{Message, Reply};
use crate::core::types::ChannelRef;
use crate::desk::{Desk, DeskError};

/// Every handler's command name and the subcommands it implements; a test checks this
/// against `commands/` both ways.
pub const HANDLERS: &[(&str, &[&str])] = &[
    (ticket::NAME, ticket::SUBCOMMANDS),
    (kudos::NAME, kudos::SUBCOMMANDS),
    (digest::NAME, digest::SUBCOMMANDS),
    (metric::NAME, metric::SUBCOMMANDS),
    (reply::NAME, reply::SUBCOMMANDS),
    (kb::NAME, kb::SUBCOMMANDS),
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
    /// `/reply …`
    Reply(reply::ReplyCmd),
    /// `/kb …`
    Kb(kb::KbCmd),
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
        reply::NAME => Command::Reply(reply::ReplyCmd::parse(&args)?),
        kb::NAME => Command::Kb(kb::KbCmd::parse(&args)?),
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
            Command::Reply(c) => c.run(desk, ctx).await,
            Command::Kb(c) => c.run(desk, ctx).await,
        }
    }
}

/// Runs a slash command given in Slack's one-line form (`/ticket claim T-42`).
pub async fn run_text(
    desk: &Desk,
    actor: &Actor,
    channel: Option<&ChannelRef>,
    command: &str,
    text: &str,
) -> Reply {
    match desk.commands.parse_text(command, text) {
        Ok(Some(inv)) => run(desk, actor, channel, &inv).await,
        Ok(None) => Reply::ephemeral(Message::text(desk.commands.help(Some(command)))),
        Err(e) => {
            desk.telemetry
                .command(command.trim_start_matches('/'), "user_error");
            Reply::ephemeral(Message::text(DeskError::from(e).chat_message()))
        }
    }
}

/// Runs a checked invocation; errors become an ephemeral reply saying what to fix.
pub async fn run(
    desk: &Desk,
    actor: &Actor,
    channel: Option<&ChannelRef>,
    inv: &Invocation,
) -> Reply {
    let name = format!("{} {}", inv.command, inv.subcommand);
    let result = try_run(desk, actor, channel, inv).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) if e.is_user_error() => "user_error",
        Err(_) => "internal_error",
    };
    desk.telemetry.command(&name, outcome);
    result.unwrap_or_else(|e| Reply::ephemeral(Message::text(e.chat_message())))
}

/// Like [`run`] but returns the error, for callers (and tests) that need the kind.
pub async fn try_run(
    desk: &Desk,
    actor: &Actor,
    channel: Option<&ChannelRef>,
    inv: &Invocation,
) -> Result<Reply, DeskError> {
    let sub = desk
        .commands
        .subcommand_of(inv)
        .ok_or_else(|| UsageError::UnknownCommand(inv.command.clone()))?;
    let command = parse(&desk.commands, inv)?;
    let ctx = Context {
        actor,
        channel,
        permission: sub.permission,
    };
    command.run(desk, &ctx).await
}

/// The tickets a ticket option of `/command sub` offers `actor` while they type `typed`
/// (autocomplete), newest first, at most `limit`: only tickets they may see (a member of the
/// ticket's department, an admin, or its reporter) and may run the subcommand on (its spec's
/// permission in the ticket's department; a reporter on their own ticket where the command
/// allows it), in a status the subcommand acts on, matching what they typed. The store
/// filters, so every ticket is searched, not only the newest.
pub async fn ticket_choices(
    desk: &Desk,
    actor: &Actor,
    command: &str,
    sub: &str,
    typed: &str,
    limit: i64,
) -> Result<Vec<crate::core::ticket::Ticket>, DeskError> {
    let Some(spec) = desk.commands.slash(command).and_then(|c| c.subcommand(sub)) else {
        return Ok(vec![]);
    };
    let dir = &desk.config.directory;
    let (statuses, reporter_may) = match command {
        ticket::NAME => (ticket::acts_on(sub).to_vec(), ticket::reporter_may(sub)),
        _ => (vec![], false),
    };
    let within = if dir.is_admin(actor) {
        None
    } else {
        let departments = dir
            .departments
            .iter()
            .filter(|d| {
                dir.is_member(actor, d) && dir.check(actor, spec.permission, Some(d), "").is_ok()
            })
            .map(|d| d.name.clone())
            .collect();
        // A reporter may see their own tickets; they are offered where they may also run the
        // subcommand on them.
        let own = reporter_may || spec.permission == Permission::Anyone;
        Some(crate::store::TicketScope {
            departments,
            reporters: if own {
                dir.accounts(&actor.user)
            } else {
                vec![]
            },
        })
    };
    Ok(desk
        .store
        .list_tickets(&crate::store::TicketFilter {
            statuses,
            within,
            search: Some(typed.to_string()),
            limit,
            ..crate::store::TicketFilter::default()
        })
        .await?)
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
