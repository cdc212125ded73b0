//! The help desk's use cases: flag a message, run a command, press a button.
//!
//! Owns the orchestration between the pure core (rules, permissions, routing) and the store:
//! check permission, apply the change, write ticket, events and outbox rows in one
//! transaction, retry on a concurrent update. Also owns the accounts port ([`AccountLookup`])
//! that adapters implement. Adapters and command handlers call this; it calls neither, and
//! must not know any platform's wire format.

use std::sync::Arc;

use chrono::{DateTime, Utc};

mod accounts;
mod alerts;
mod api;
mod limit;
pub mod web;

use crate::config::Config;
use crate::core::clock::Clock;
use crate::core::command::{CommandSet, UsageError};
use crate::core::directory::{AccessError, Actor, Department, Directory, Permission};
use crate::core::message::{self, ButtonAction, Message, OutKind, Outgoing, Reply, Target};
use crate::core::routing::{normalize_emoji, Decision, RouteInput};
use crate::core::ticket::{
    Change, ChangeActor, EventKind, NewTicket, Origin, Source, Ticket, TicketError,
};
use crate::core::types::{ChannelRef, Priority, RoleRef, Status, TicketRef, UserRef};
use crate::store::{CreateTicket, Created, DynStore, ExternalKey, StoreError};
use crate::telemetry::Telemetry;
pub use accounts::{AccountKind, AccountLookup, Accounts, LookupError};
pub use alerts::{AlertOutcome, MonitoringAlert, Notification};
pub use api::{out_of_scope, ApiOpened, ApiTicket};

/// The automation name of follow-ups (reminders, auto-close, nudges) in tickets' histories.
pub const FOLLOWUPS: &str = "followups";

/// Why a request failed. User kinds are shown in chat as they are; `Internal` is logged with
/// a reference and answered with a short apology.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// The input did not parse.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The actor may not do this.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The ticket rules refused the change.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// Something the user named does not exist or cannot be used; says how to fix it.
    #[error("{0}")]
    User(String),
    /// The person flagged as many messages as `[flagging] limit` allows in its window.
    #[error("You have flagged {flagged} in the last {window}; the limit is {limit} per {window}. Try again in {retry}.")]
    FlagLimit {
        /// How many they flagged in the window, e.g. "30 messages".
        flagged: String,
        /// The limit.
        limit: u32,
        /// The window, e.g. "10 minutes".
        window: String,
        /// When one of their flags leaves the window, e.g. "4 minutes".
        retry: String,
    },
    /// Another request is doing the same thing at this moment (opening the ticket of the
    /// same external id or alert); the same request a moment later will work.
    #[error("{0}")]
    Busy(String),
    /// A failure that is not the user's fault.
    #[error("internal error: {0}")]
    Internal(#[from] StoreError),
}

impl DeskError {
    /// Whether the user caused it (and can fix it).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, DeskError::Internal(_))
            && !matches!(self, DeskError::Usage(UsageError::NotInSpec(_)))
    }

    /// The text to show in chat. Internal failures are logged here with a reference the user
    /// can quote to the admin; their details never reach chat.
    pub fn chat_message(&self) -> String {
        if self.is_user_error() {
            return self.to_string();
        }
        let reference = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        tracing::error!(reference = %reference, error = %self, "request failed");
        format!("Sorry, something went wrong on our side. Please try again; if it keeps happening, give your admin this reference: {reference}.")
    }
}

/// A message being flagged, as an adapter saw it.
#[derive(Debug, Clone)]
pub struct FlagRequest {
    /// Who flagged it.
    pub flagger: Actor,
    /// Reaction, message action or command.
    pub origin: Origin,
    /// The reaction emoji, for `Origin::Flag`.
    pub emoji: Option<String>,
    /// The flagged message.
    pub source: Source,
    /// The author's groups or roles, for routing rules on reporter roles.
    pub author_roles: Vec<RoleRef>,
    /// Values the user chose in a message-action form, overriding the rules.
    pub overrides: TicketOverrides,
    /// The inbox row this completes, if it came through the inbox.
    pub inbox_key: Option<String>,
}

/// Values a person chose explicitly when opening a ticket.
#[derive(Debug, Clone, Default)]
pub struct TicketOverrides {
    /// Title instead of the message's first line.
    pub title: Option<String>,
    /// Department instead of the routing decision.
    pub department: Option<String>,
    /// Priority instead of the routing decision.
    pub priority: Option<Priority>,
    /// Extra tags.
    pub tags: Vec<String>,
}

/// The result of flagging.
#[derive(Debug, Clone)]
pub struct FlagOutcome {
    /// The ticket.
    pub ticket: Ticket,
    /// False when the message already had this ticket.
    pub created: bool,
    /// How it was routed (for a new ticket).
    pub decision: Decision,
}

/// A reply as written in a thread: its platform id, text and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadMessage {
    /// Its platform id (Slack `ts`, Discord message id).
    pub id: String,
    /// What it says.
    pub text: String,
    /// When it was written.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A ticket opened by command.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The ticket.
    pub ticket: Ticket,
    /// How it was routed.
    pub decision: Decision,
    /// The knowledge base's articles that passed the relevance rule, best first.
    pub suggested: Vec<Arc<crate::knowledge::Article>>,
}

/// The result of a rating.
#[derive(Debug, Clone)]
pub struct RateOutcome {
    /// False when the ticket already had a rating (the stored one is in `csat`).
    pub recorded: bool,
    /// The rating that stands.
    pub csat: crate::store::Csat,
}

/// The help desk: config, store, clock and command specs.
#[derive(Debug, Clone)]
pub struct Desk {
    /// Configuration.
    pub config: Arc<Config>,
    /// Storage.
    pub store: DynStore,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Command specs.
    pub commands: Arc<CommandSet>,
    /// Metrics.
    pub telemetry: Arc<Telemetry>,
    /// What the connected platforms say about accounts (bots), filled in by the adapters.
    pub accounts: Arc<Accounts>,
    /// The knowledge base (`[knowledge]`), reloaded when its folder changes.
    pub knowledge: Arc<crate::knowledge::KnowledgeBase>,
    /// Work an interaction started and answers later (a slow command's reply, a button's
    /// effect): tracked so a shutdown lets it finish, for a bounded time, before exiting.
    pub tasks: tokio_util::task::TaskTracker,
}

/// How long a change waits for a platform to name an account it has no name for.
const NAME_WAIT: std::time::Duration = std::time::Duration::from_millis(800);

/// How many times a change is retried when another writer got there first. Each retry waits
/// a random few milliseconds so competing writers spread out instead of colliding again.
const CONFLICT_RETRIES: usize = 30;

/// The first line of `text`, shortened, for a ticket title.
pub fn title_from(text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no text)");
    message::truncate(first, 120)
}

impl Desk {
    /// Now, from the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The department called `name`, or a user error listing the known ones.
    pub fn department(&self, name: &str) -> Result<&Department, DeskError> {
        let dir = &self.config.directory;
        dir.department(name).ok_or_else(|| {
            DeskError::User(format!(
                "There is no department called `{name}`. Known departments: {}.",
                dir.department_names().join(", ")
            ))
        })
    }

    /// Refuses unless `actor` has `needed` standing for `dept`.
    pub fn authorize(
        &self,
        actor: &Actor,
        needed: Permission,
        dept: Option<&Department>,
        action: &str,
    ) -> Result<(), DeskError> {
        Ok(self.config.directory.check(actor, needed, dept, action)?)
    }

    /// A stored ticket, or a user error saying how to find one.
    pub async fn ticket(&self, id: TicketRef) -> Result<Ticket, DeskError> {
        self.store.ticket(id).await?.ok_or_else(|| {
            DeskError::User(format!(
                "There is no ticket {id}. `/ticket list` shows the open ones."
            ))
        })
    }

    /// Whether the actor is staff and not the ticket's reporter (their visible actions count as
    /// the first response).
    fn change_actor(&self, actor: &Actor, ticket: &Ticket) -> ChangeActor {
        let dir = &self.config.directory;
        ChangeActor {
            user: actor.user.clone(),
            is_staff: dir.is_staff(actor) && !dir.same_person(&actor.user, &ticket.reporter),
        }
    }

    /// Learns the names their platforms show for `users` that have none yet, or not from the
    /// last day (not configured people, not automations), asking the connected adapters
    /// (which cache them) and storing what they said for the other instances and the next
    /// start. A platform that cannot answer now (or within [`NAME_WAIT`]) leaves the account
    /// shown by its reference; nothing fails for it.
    pub async fn learn_names(&self, mut users: Vec<UserRef>) {
        let dir = &self.config.directory;
        users.retain(|u| dir.wants_name(u));
        users.sort();
        users.dedup();
        let mut learned = Vec::new();
        for user in users {
            // A slow or rate-limited platform never holds a change up for long.
            let asked = tokio::time::timeout(NAME_WAIT, self.accounts.name(&user)).await;
            match asked {
                Ok(Ok(Some(name))) => {
                    if dir.names.learn(&user, &name) {
                        learned.push((user, name));
                    }
                }
                Ok(Ok(None)) => dir.names.missed(&user),
                Ok(Err(e)) => {
                    tracing::debug!(account = %user, error = %e, "no name for an account yet")
                }
                Err(_) => {
                    tracing::debug!(account = %user, "the platform was slow to name an account")
                }
            }
        }
        if learned.is_empty() {
            return;
        }
        if let Err(e) = self.store.remember_names(&learned, self.now()).await {
            tracing::warn!(error = %e, "could not store learned account names");
        }
    }

    /// Loads the account names stored by any instance (see [`Desk::learn_names`]).
    pub async fn load_names(&self) -> Result<usize, DeskError> {
        let names = self.store.account_names().await?;
        for (user, name) in &names {
            self.config.directory.names.learn(user, name);
        }
        Ok(names.len())
    }

    /// Turns a message into a ticket (or points to the one it already has).
    pub async fn flag(&self, req: FlagRequest) -> Result<FlagOutcome, DeskError> {
        let dir = &self.config.directory;
        // The platform named the author with the message: remembered here (in memory only;
        // the ticket keeps it for its reporter) for everything else that names them.
        if let Some(name) = &req.source.author_name {
            dir.names.learn(&req.source.author, name);
        }
        if req.origin == Origin::Flag {
            let emoji = req
                .emoji
                .as_deref()
                .map(normalize_emoji)
                .unwrap_or_default();
            if !self.config.flag_emojis.contains(&emoji) {
                return Err(DeskError::User(format!(
                    ":{emoji}: is not a flag emoji; use one of {}.",
                    self.config
                        .flag_emojis
                        .iter()
                        .map(|e| format!(":{e}:"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        if !dir.may_flag(&req.flagger) {
            return Err(AccessError::Denied {
                needed: "allowed to flag messages".into(),
                action: "turn messages into tickets".into(),
                fix: "Ask a Switchboard admin to add you (or your group or role) under [flagging] in the configuration.",
            }
            .into());
        }
        // A message flagged before is found by the store inside the same transaction that
        // would create its ticket, so two flags racing on one message still make one ticket.
        let decision = self.config.router.route(&RouteInput {
            platform: req.source.channel.platform,
            channel: Some(&req.source.channel),
            emoji: req.emoji.as_deref(),
            text: &req.source.original_text,
            reporter_roles: &req.author_roles,
            labels: &[],
        });
        let o = &req.overrides;
        let department = match &o.department {
            Some(d) => self.department(d)?.name.clone(),
            None => decision.department.clone(),
        };
        let mut tags = decision.tags.clone();
        for t in &o.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let text = req.source.original_text.trim();
        let new = NewTicket {
            title: o
                .title
                .clone()
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| title_from(text)),
            body: if text.is_empty() {
                req.source.permalink.clone().unwrap_or_default()
            } else {
                text.to_string()
            },
            source: Some(req.source.clone()),
            reporter: req.source.author.clone(),
            department: department.clone(),
            priority: o.priority.unwrap_or(decision.priority),
            tags,
            created_at: self.now(),
            origin: req.origin,
        };
        let created_event = EventKind::Created {
            origin: req.origin,
            department: department.clone(),
            rule: if o.department.is_some() {
                None
            } else {
                decision.rule.as_ref().map(|(_, n)| n.clone())
            },
            reasons: if o.department.is_some() {
                vec!["department chosen by the person who flagged it".into()]
            } else {
                decision.reasons.clone()
            },
            emoji: req.emoji.as_deref().map(normalize_emoji),
        };
        let quota = self.flag_quota(&req.flagger);
        let outcome = self
            .open(
                new,
                &req.flagger,
                vec![created_event],
                req.inbox_key.clone(),
                quota,
                None,
            )
            .await?;
        match outcome {
            Created::New(ticket) => Ok(FlagOutcome {
                ticket,
                created: true,
                decision,
            }),
            Created::Existing(ticket) => Ok(FlagOutcome {
                ticket,
                created: false,
                decision,
            }),
            Created::Taken => Err(DeskError::Internal(StoreError::Corrupt(
                "a flag's ticket was refused for an external key it does not have".into(),
            ))),
            Created::OverQuota(counted) => {
                let refusal = self.over_limit(&counted);
                tracing::info!(
                    flagger = %dir.identity_key(&req.flagger.user),
                    flags = counted.len(),
                    "flag refused: the flag limit is reached"
                );
                Err(refusal)
            }
        }
    }

    /// Opens a ticket with its alert(s) and, for a flagged message, a confirmation in its thread.
    async fn open(
        &self,
        new: NewTicket,
        actor: &Actor,
        events: Vec<EventKind>,
        inbox_key: Option<String>,
        quota: Option<crate::store::FlagQuota>,
        external: Option<ExternalKey>,
    ) -> Result<Created, DeskError> {
        let mut events = events;
        let origin = match events.first() {
            Some(EventKind::Created { origin, .. }) => origin.to_string(),
            _ => "unknown".into(),
        };
        let department = new.department.clone();
        // A flagged message's thread gets the knowledge base's suggestions with the
        // confirmation (a command's reply gets them from `open_from_command`, which records
        // them first); which passed, or that none did, is kept on the ticket for digests.
        let suggested = if new.source.is_some()
            && !events
                .iter()
                .any(|e| matches!(e, EventKind::KbSuggested { .. }))
        {
            self.suggest(&new, &mut events)
        } else {
            vec![]
        };
        // The store calls this inside its transaction: it renders from the configuration
        // alone and calls nothing back.
        let config = self.config.clone();
        let outbox = Box::new(move |t: &Ticket| {
            let mut out = Vec::new();
            if let Some(src) = &t.source {
                out.push(Outgoing {
                    kind: OutKind::Post,
                    target: Target::Channel {
                        channel: src.channel.clone(),
                        thread: Some(
                            src.thread_id
                                .clone()
                                .unwrap_or_else(|| src.message_id.clone()),
                        ),
                    },
                    ticket: Some(t.id),
                    message: confirmation(t, &suggested),
                });
            }
            out.extend(alerts(&config, OutKind::Alert, t, &t.department));
            out
        });
        let result = self
            .store
            .create_ticket(CreateTicket {
                ticket: new,
                actor: actor.user.clone(),
                events,
                outbox,
                inbox_key,
                quota,
                external,
            })
            .await?;
        if let Created::New(t) = &result {
            self.telemetry
                .tickets_created
                .get_or_create(&crate::telemetry::TicketLabels { origin, department })
                .inc();
            tracing::info!(ticket = %t.id, department = %t.department, "ticket opened");
        }
        Ok(result)
    }

    /// The knowledge base's articles that pass the relevance rule for `new`, recorded in
    /// `events` (none passing is recorded too); nothing without a knowledge base.
    fn suggest(
        &self,
        new: &NewTicket,
        events: &mut Vec<EventKind>,
    ) -> Vec<Arc<crate::knowledge::Article>> {
        let index = self.knowledge.index();
        if index.is_empty() {
            return vec![];
        }
        let found: Vec<_> = index
            .suggest(&format!("{}\n{}", new.title, new.body), &new.department)
            .into_iter()
            .map(|h| h.article)
            .collect();
        events.push(EventKind::KbSuggested {
            articles: found.iter().map(|a| a.id.clone()).collect(),
        });
        found
    }

    /// Opens a ticket from `/ticket new`, with the knowledge base's suggestions for the reply.
    pub async fn open_from_command(
        &self,
        actor: &Actor,
        channel: Option<&ChannelRef>,
        title: &str,
        overrides: TicketOverrides,
    ) -> Result<Opened, DeskError> {
        // The alert names the reporter: by their platform's name.
        self.learn_names(vec![actor.user.clone()]).await;
        let decision = self.config.router.route(&RouteInput {
            platform: actor.user.platform,
            channel,
            emoji: None,
            text: title,
            reporter_roles: &actor.roles,
            labels: &[],
        });
        let department = match &overrides.department {
            Some(d) => self.department(d)?.name.clone(),
            None => decision.department.clone(),
        };
        let mut tags = decision.tags.clone();
        tags.extend(
            overrides
                .tags
                .iter()
                .filter(|t| !decision.tags.contains(t))
                .cloned(),
        );
        let new = NewTicket {
            title: title_from(title),
            body: title.trim().to_string(),
            source: None,
            reporter: actor.user.clone(),
            department: department.clone(),
            priority: overrides.priority.unwrap_or(decision.priority),
            tags,
            created_at: self.now(),
            origin: Origin::Command,
        };
        let event = EventKind::Created {
            origin: Origin::Command,
            department,
            rule: if overrides.department.is_some() {
                None
            } else {
                decision.rule.as_ref().map(|(_, n)| n.clone())
            },
            reasons: if overrides.department.is_some() {
                vec!["department chosen by the reporter".into()]
            } else {
                decision.reasons.clone()
            },
            emoji: None,
        };
        let mut events = vec![event];
        let suggested = self.suggest(&new, &mut events);
        // Not counted against the flag limit (see `limit`): no quota.
        match self.open(new, actor, events, None, None, None).await? {
            Created::New(ticket) | Created::Existing(ticket) => Ok(Opened {
                ticket,
                decision,
                suggested,
            }),
            Created::OverQuota(_) | Created::Taken => {
                Err(DeskError::Internal(StoreError::Corrupt(
                    "a command's ticket was refused by a flag quota or key it does not have".into(),
                )))
            }
        }
    }

    /// Applies a change to a ticket after checking `needed` standing in its department,
    /// retrying when another writer changed it first. Returns the saved ticket.
    pub async fn change(
        &self,
        actor: &Actor,
        id: TicketRef,
        needed: Permission,
        action: &str,
        change: Change,
    ) -> Result<(Ticket, Vec<EventKind>), DeskError> {
        if let Change::Route(to) = &change {
            self.department(to)?;
        }
        let who = |t: &Ticket| {
            let dept = self.config.directory.department(&t.department);
            self.authorize(actor, needed, dept, action)?;
            Ok(self.change_actor(actor, t))
        };
        self.apply_change(id, Some(&actor.user), who, change).await
    }

    /// Records that a flagged message, or a reply kept from a ticket's thread, was edited
    /// (`Some(new text)`) or deleted (`None`) on its platform, by `by` when known. `Ok(None)`
    /// when the message is neither.
    pub async fn record_source_change(
        &self,
        channel: &ChannelRef,
        message_id: &str,
        by: Option<&UserRef>,
        text: Option<String>,
    ) -> Result<Option<Ticket>, DeskError> {
        let Some(ticket) = self.store.ticket_by_source(channel, message_id).await? else {
            // A reply in a ticket's thread: its transcript keeps the edit or the deletion.
            return match self
                .store
                .change_thread_reply(channel, message_id, text.as_deref(), self.now())
                .await?
            {
                Some(id) => Ok(Some(self.ticket(id).await?)),
                None => Ok(None),
            };
        };
        let who = |t: &Ticket| {
            Ok(ChangeActor {
                user: by.cloned().unwrap_or_else(|| t.reporter.clone()),
                is_staff: false,
            })
        };
        let (ticket, _) = self
            .apply_change(ticket.id, by, who, Change::SourceChanged(text))
            .await?;
        Ok(Some(ticket))
    }

    /// Loads, changes and saves a ticket with its events and alert updates, retrying with a
    /// fresh copy when another writer got there first. `who` checks permission on the loaded
    /// ticket and says who is acting.
    async fn apply_change(
        &self,
        id: TicketRef,
        by: Option<&UserRef>,
        who: impl Fn(&Ticket) -> Result<ChangeActor, DeskError>,
        change: Change,
    ) -> Result<(Ticket, Vec<EventKind>), DeskError> {
        let given_to = match &change {
            Change::Assign(to) => to.clone(),
            _ => None,
        };
        for attempt in 0..CONFLICT_RETRIES {
            let mut ticket = self.ticket(id).await?;
            if attempt == 0 {
                // Everyone the alert and the history name (who acts, the reporter, the
                // assignee before and after) by the names their platforms show.
                let named = by
                    .cloned()
                    .into_iter()
                    .chain(given_to.clone())
                    .chain([ticket.reporter.clone()])
                    .chain(ticket.assignee.clone());
                self.learn_names(named.collect()).await;
            }
            let actor = who(&ticket)?;
            let before = ticket.clone();
            let version = ticket.version;
            let events = ticket.apply(change.clone(), &actor, self.now())?;
            // A finished wait on the customer adds its clock time to the paused total.
            if let (Some(since), None) = (before.waiting_since, ticket.waiting_since) {
                ticket.sla_paused +=
                    self.config
                        .sla
                        .wait_paused(&before.department, since, self.now());
            }
            // Notes, first responses and source edits are not on the alert; everything else is.
            let alert_changed = events.iter().any(|e| {
                !matches!(
                    e,
                    EventKind::Noted { .. }
                        | EventKind::Responded
                        | EventKind::SourceEdited { .. }
                        | EventKind::SourceDeleted
                        | EventKind::Linked { .. }
                        | EventKind::Resent { .. }
                        | EventKind::SavedReplySent { .. }
                        | EventKind::KbSuggested { .. }
                        | EventKind::KbNotHelpful { .. }
                )
            });
            let mut outbox = if alert_changed {
                alerts(
                    &self.config,
                    OutKind::AlertUpdate,
                    &ticket,
                    &before.department,
                )
            } else {
                vec![]
            };
            if ticket.department != before.department {
                outbox.extend(alerts(
                    &self.config,
                    OutKind::Alert,
                    &ticket,
                    &ticket.department,
                ));
            }
            if let Some(ask) = self.csat_request(&ticket, &actor, &events).await? {
                outbox.push(ask);
            }
            outbox.extend(self.thread_posts(&ticket, &actor, &events));
            match self
                .store
                .update_ticket(&ticket, version, by, events.clone(), outbox)
                .await
            {
                Ok(()) => return Ok((ticket, events)),
                Err(StoreError::Conflict(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(1..=15)))
                        .await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(DeskError::Busy(format!(
            "{id} is being changed by several people at once; please try again."
        )))
    }

    /// The posts in the ticket's thread that `events` call for: a saved reply, in its
    /// sender's name.
    fn thread_posts(
        &self,
        ticket: &Ticket,
        actor: &ChangeActor,
        events: &[EventKind],
    ) -> Vec<Outgoing> {
        let dir = &self.config.directory;
        events
            .iter()
            .filter_map(|e| match e {
                EventKind::SavedReplySent { name, text } => {
                    let sender = message::neutralize_mentions(&dir.display_name(&actor.user));
                    let msg =
                        Message::text(format!("{sender}, from the saved reply {name}:\n{text}"));
                    thread_post(dir, ticket, msg)
                }
                _ => None,
            })
            .collect()
    }

    /// The CSAT question for the reporter when `events` resolve the ticket: asked once per
    /// ticket (not again after an answer), only of a person's account, and not when the
    /// reporter resolved it themselves.
    async fn csat_request(
        &self,
        ticket: &Ticket,
        actor: &ChangeActor,
        events: &[EventKind],
    ) -> Result<Option<Outgoing>, DeskError> {
        let resolved = events.iter().any(|e| {
            matches!(
                e,
                EventKind::StatusChanged {
                    to: Status::Resolved,
                    ..
                }
            )
        });
        // A ticket closed after no reply asks only where the department wants it to.
        let unanswered = actor.user.automation_source() == Some(FOLLOWUPS)
            && !self.config.followups.of(&ticket.department).ask_csat;
        if !resolved
            || unanswered
            || !ticket.reporter.is_person_account()
            || self
                .config
                .directory
                .same_person(&actor.user, &ticket.reporter)
            || self.store.csat(ticket.id).await?.is_some()
        {
            return Ok(None);
        }
        Ok(Some(Outgoing {
            kind: OutKind::Post,
            target: Target::User {
                user: ticket.reporter.clone(),
            },
            ticket: Some(ticket.id),
            message: message::csat_prompt(ticket),
        }))
    }

    /// Records the reporter's 1-5 rating of a resolved ticket. Only the reporter (or the same
    /// person on another platform) may rate; a ticket is rated once, and a second answer is
    /// told the first one stands.
    pub async fn rate(
        &self,
        actor: &Actor,
        id: TicketRef,
        score: u8,
    ) -> Result<RateOutcome, DeskError> {
        if !(1..=5).contains(&score) {
            return Err(DeskError::User(format!(
                "A rating is a whole number from 1 to 5, not {score}."
            )));
        }
        let ticket = self.ticket(id).await?;
        if !self
            .config
            .directory
            .same_person(&actor.user, &ticket.reporter)
        {
            return Err(DeskError::User(format!(
                "Only the person who reported {id} can rate it."
            )));
        }
        let recorded = self
            .store
            .record_csat(id, score, None, &actor.user, self.now())
            .await?;
        let csat = self.store.csat(id).await?.ok_or_else(|| {
            DeskError::Internal(StoreError::Corrupt(format!(
                "the rating of {id} vanished after it was recorded"
            )))
        })?;
        if recorded {
            tracing::info!(ticket = %id, score, "CSAT recorded");
        }
        Ok(RateOutcome { recorded, csat })
    }

    /// Adds the reporter's optional comment to their rating; refused when there is no rating
    /// yet or it already has a comment.
    pub async fn comment_rating(
        &self,
        actor: &Actor,
        id: TicketRef,
        comment: &str,
    ) -> Result<crate::store::Csat, DeskError> {
        let comment = comment.trim();
        if comment.is_empty() {
            return Err(DeskError::User(
                "The comment is empty; type a few words or close the form.".into(),
            ));
        }
        let Some(existing) = self.store.csat(id).await? else {
            return Err(DeskError::User(format!(
                "{id} has no rating yet; pick 1 to 5 first."
            )));
        };
        if !self
            .config
            .directory
            .same_person(&actor.user, &existing.responder)
        {
            return Err(DeskError::User(format!(
                "Only the person who rated {id} can comment on the rating."
            )));
        }
        if !self
            .store
            .csat_comment(id, &existing.responder, &message::truncate(comment, 2000))
            .await?
        {
            return Err(DeskError::User(format!(
                "Your comment on {id} was already recorded; thanks!"
            )));
        }
        Ok(self.store.csat(id).await?.unwrap_or(existing))
    }

    /// Records that `by` replied in the thread of message `message_id` in `channel`, a
    /// ticket's flagged message or (for a ticket without one) its alert: the reporter replying
    /// to a ticket waiting on them ends the wait (and so its follow-ups), and a staff reply
    /// under the flagged message, where the reporter sees it, is the first response.
    /// `Ok(None)` when the message has no ticket or the reply changes nothing.
    pub async fn record_reply(
        &self,
        channel: &ChannelRef,
        message_id: &str,
        by: &Actor,
        reply: Option<&ThreadMessage>,
    ) -> Result<Option<Ticket>, DeskError> {
        let dir = &self.config.directory;
        // What the reply answers: a flagged message, the thread a message was flagged in (the
        // reporter's own ticket there, else the first), or one of the bot's posts (an alert,
        // a reminder). Only under the flagged message does the reporter see a staff reply.
        let (ticket, reporter_sees) = match self.store.ticket_by_source(channel, message_id).await?
        {
            Some(t) => (t, true),
            None => {
                let mut in_thread = self.store.tickets_in_thread(channel, message_id).await?;
                let own = in_thread
                    .iter()
                    .position(|t| dir.same_person(&by.user, &t.reporter))
                    .unwrap_or(0);
                if in_thread.is_empty() {
                    match self
                        .store
                        .ticket_by_bot_message(channel, message_id)
                        .await?
                    {
                        Some(t) => (t, false),
                        None => return Ok(None),
                    }
                } else {
                    (in_thread.swap_remove(own), true)
                }
            }
        };
        // Kept for the transcript first: a redelivered reply is kept once, and what it changes
        // below is decided from the ticket as it is.
        if let Some(r) = reply {
            self.store
                .add_thread_reply(&crate::core::ticket::ThreadReply {
                    ticket: ticket.id,
                    channel: channel.clone(),
                    message_id: r.id.clone(),
                    author: by.user.clone(),
                    text: r.text.clone(),
                    at: r.at,
                    edited_at: None,
                    deleted_at: None,
                })
                .await?;
        }
        // The customer answering a question ends the wait and restarts the resolution clock.
        if dir.same_person(&by.user, &ticket.reporter) && ticket.status == Status::WaitingOnCustomer
        {
            let reporter = |t: &Ticket| {
                Ok(ChangeActor {
                    user: t.reporter.clone(),
                    is_staff: false,
                })
            };
            let change = Change::SetStatus {
                to: Status::InProgress,
                reason: Some("the customer replied".into()),
            };
            return match self
                .apply_change(ticket.id, Some(&by.user), reporter, change)
                .await
            {
                Ok((t, _)) => Ok(Some(t)),
                Err(DeskError::Ticket(_)) => Ok(None),
                Err(e) => Err(e),
            };
        }
        // Staff talking under the department's alert is not an answer the reporter sees.
        if !reporter_sees
            || ticket.first_response_at.is_some()
            || !self.change_actor(by, &ticket).is_staff
        {
            return Ok(None);
        }
        let who = |t: &Ticket| Ok(self.change_actor(by, t));
        match self
            .apply_change(ticket.id, Some(&by.user), who, Change::Responded)
            .await
        {
            Ok((t, _)) => Ok(Some(t)),
            // Another reply got there first; nothing is lost.
            Err(DeskError::Ticket(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The account automation `source` acts as on tickets of `department`: on the platform
    /// of the department's first channel, or `fallback` when it has none.
    pub fn automation_account(
        &self,
        department: &str,
        source: &str,
        fallback: crate::core::types::Platform,
    ) -> UserRef {
        let platform = self
            .config
            .directory
            .department(department)
            .and_then(|d| d.channels.first())
            .map_or(fallback, |c| c.platform);
        UserRef::automation(platform, source)
    }

    /// Resolves the ticket `seen` (as the follow-ups' check read it) after its reporter left
    /// it waiting past its department's `close_after`, in the name of the follow-ups'
    /// automation (so it counts as auto-resolved and is no staff response). `Ok(None)` when it
    /// no longer waits as it did then: the customer replied, someone changed it, or another
    /// instance closed it first.
    pub async fn close_unanswered(&self, seen: &Ticket) -> Result<Option<Ticket>, DeskError> {
        let id = seen.id;
        let by = self.automation_account(&seen.department, FOLLOWUPS, seen.reporter.platform);
        let who = |t: &Ticket| {
            if t.status != Status::WaitingOnCustomer || t.waiting_since != seen.waiting_since {
                return Err(DeskError::Ticket(
                    crate::core::ticket::TicketError::NoChange(format!(
                        "{} no longer waits on its reporter",
                        t.id
                    )),
                ));
            }
            Ok(ChangeActor {
                user: self.automation_account(&t.department, FOLLOWUPS, t.reporter.platform),
                is_staff: false,
            })
        };
        let change = Change::SetStatus {
            to: Status::Resolved,
            reason: Some("resolved after no reply".into()),
        };
        match self.apply_change(id, Some(&by), who, change).await {
            Ok((t, _)) => Ok(Some(t)),
            Err(DeskError::Ticket(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Handles a knowledge base suggestion's button: the article `n` solved it, or none was
    /// what was needed. The reporter or a member of the ticket's department may press it.
    async fn kb_answer(
        &self,
        actor: &Actor,
        id: TicketRef,
        solved: Option<u8>,
    ) -> Result<Reply, DeskError> {
        let dir = &self.config.directory;
        let events = self.store.events(id).await?;
        let suggested = events
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                EventKind::KbSuggested { articles } => Some(articles.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let change = match solved {
            Some(n) => {
                let Some(article) = suggested.get(usize::from(n)).cloned() else {
                    return Err(DeskError::User(format!(
                        "{id} has no suggestion {}; `/kb search` finds articles.",
                        u16::from(n) + 1
                    )));
                };
                let title = self
                    .knowledge
                    .index()
                    .article(&article)
                    .map_or_else(|| article.clone(), |a| a.title.clone());
                Change::KbAnswered { article, title }
            }
            None => Change::KbNotHelpful(suggested),
        };
        let who = |t: &Ticket| {
            if dir.same_person(&actor.user, &t.reporter) {
                return Ok(ChangeActor {
                    user: actor.user.clone(),
                    is_staff: false,
                });
            }
            self.authorize(
                actor,
                Permission::Member,
                dir.department(&t.department),
                &format!("answer {id}'s suggestions"),
            )?;
            Ok(self.change_actor(actor, t))
        };
        let (ticket, _) = self
            .apply_change(id, Some(&actor.user), who, change)
            .await?;
        Ok(Reply::ephemeral(Message::text(match solved {
            Some(_) => format!(
                "Glad it helped: {} is resolved, answered by the knowledge base.",
                ticket.id
            ),
            None => format!(
                "Noted: those articles were not it. Someone from {} will follow up on {}.",
                ticket.department, ticket.id
            ),
        })))
    }

    /// Handles a Claim or Resolve button on an alert, a rating button in a CSAT question, or
    /// a knowledge base suggestion's button.
    pub async fn press(&self, actor: &Actor, action_id: &str) -> Result<Reply, DeskError> {
        let (action, id) = ButtonAction::parse(action_id).ok_or_else(|| {
            DeskError::User(
                "That button is no longer supported; use `/ticket` commands instead.".into(),
            )
        })?;
        let (change, verb) = match action {
            ButtonAction::KbSolved(n) => return self.kb_answer(actor, id, Some(n)).await,
            ButtonAction::KbNotHelpful => return self.kb_answer(actor, id, None).await,
            // The alert is the department's; the link is the presser's alone.
            ButtonAction::Web => {
                let link = self
                    .web_link(actor, Some(&format!("tickets/{}", id.0)))
                    .await?;
                return Ok(Reply::ephemeral(Message::text(format!(
                    "Your sign-in link to {id} in the web view: {link}\nIt is yours alone: it \
                     works once, for 10 minutes."
                ))));
            }
            ButtonAction::Claim => (Change::Claim, "claim"),
            ButtonAction::Resolve => (
                Change::SetStatus {
                    to: Status::Resolved,
                    reason: None,
                },
                "resolve",
            ),
            ButtonAction::Rate(score) => {
                let o = self.rate(actor, id, score).await?;
                return Ok(Reply::ephemeral(if o.recorded {
                    message::csat_thanks(id, score, None)
                } else {
                    Message::text(format!(
                        "Your rating of {id} was already recorded ({}/5); thanks!",
                        o.csat.score
                    ))
                }));
            }
            // The comment form is the adapter's (a modal); there is nothing to change here.
            ButtonAction::Comment => {
                return Err(DeskError::User(
                    "Use the \"Add a comment\" button in the message to open the comment form."
                        .into(),
                ))
            }
        };
        let (ticket, _) = self
            .change(
                actor,
                id,
                Permission::Member,
                &format!("{verb} {id}"),
                change,
            )
            .await?;
        Ok(Reply::ephemeral(Message::text(format!(
            "{} is now {}.",
            ticket.id, ticket.status
        ))))
    }
}

/// The reply under a flagged message that confirms its ticket, with the knowledge base's
/// suggestions and their buttons when any passed the relevance rule.
pub fn confirmation(
    t: &Ticket,
    suggested: &[std::sync::Arc<crate::knowledge::Article>],
) -> Message {
    with_suggestions(
        format!(
            "Thanks! This is now ticket {} with {}; we'll follow up here.",
            t.id, t.department
        ),
        t,
        suggested,
    )
}

/// `text` about ticket `t`, followed by the knowledge base's suggestions for it with a "This
/// solved it" button each and "Not what I need" (just `text` when there are none).
pub fn with_suggestions(
    mut text: String,
    t: &Ticket,
    suggested: &[std::sync::Arc<crate::knowledge::Article>],
) -> Message {
    if suggested.is_empty() {
        return Message::text(text);
    }
    text.push_str("\nWhile you wait, one of these may already answer it:");
    let mut buttons = Vec::new();
    for (i, a) in suggested.iter().enumerate().take(3) {
        let link = a
            .url
            .as_ref()
            .map_or_else(|| format!(" (`/kb show {}`)", a.id), |u| format!(" <{u}>"));
        text.push_str(&format!(
            "\n{}. {}{link}",
            i + 1,
            message::truncate(&message::neutralize_mentions(&a.title), 100)
        ));
        buttons.push(ButtonAction::KbSolved(u8::try_from(i).unwrap_or(0)).button(t.id));
    }
    buttons.push(ButtonAction::KbNotHelpful.button(t.id));
    Message {
        text,
        buttons,
        ..Message::default()
    }
}

/// A post in the ticket's thread: under the flagged message (in its thread, if it was in one),
/// else under the ticket's alert in its department's first channel. `None` for a department
/// without channels.
pub fn thread_post(dir: &Directory, ticket: &Ticket, message: Message) -> Option<Outgoing> {
    let (kind, target) = match &ticket.source {
        Some(src) => (
            OutKind::Post,
            Target::Channel {
                channel: src.channel.clone(),
                thread: Some(
                    src.thread_id
                        .clone()
                        .unwrap_or_else(|| src.message_id.clone()),
                ),
            },
        ),
        None => (
            OutKind::AlertReply,
            Target::Channel {
                channel: dir
                    .department(&ticket.department)?
                    .channels
                    .first()?
                    .clone(),
                thread: None,
            },
        ),
    };
    Some(Outgoing {
        kind,
        target,
        ticket: Some(ticket.id),
        message,
    })
}

/// The alert for every channel of `dept`, with an "Open in browser" button when the web
/// view is on.
fn alerts(config: &Config, kind: OutKind, ticket: &Ticket, dept: &str) -> Vec<Outgoing> {
    let dir = &config.directory;
    let Some(d) = dir.department(dept) else {
        return vec![];
    };
    let mut msg = message::alert(ticket, dir);
    if config.web.is_some() {
        // A button, not a link: the page needs a sign-in, and the press answers the presser
        // alone with a link of their own.
        msg.buttons.push(ButtonAction::Web.button(ticket.id));
    }
    d.channels
        .iter()
        .map(|c| Outgoing {
            kind,
            target: Target::Channel {
                channel: c.clone(),
                thread: None,
            },
            ticket: Some(ticket.id),
            message: msg.clone(),
        })
        .collect()
}
