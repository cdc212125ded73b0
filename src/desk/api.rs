//! Tickets other systems open and follow through the API: routing on title, body and labels,
//! the token's departments, idempotency on the caller's external id, notes and status changes.
//!
//! Owns what an API caller may do to tickets; the caller is already authenticated and its
//! input checked by the HTTP layer (`crate::api`). Must not know HTTP.

use chrono::Duration;

use super::{title_from, Desk, DeskError};
use crate::config::ApiToken;
use crate::core::directory::{AccessError, Actor};
use crate::core::routing::RouteInput;
use crate::core::ticket::{Change, ChangeActor, EventKind, Link, NewTicket, Origin, Ticket};
use crate::core::types::{Platform, Priority, UserRef};
use crate::store::{Created, ExternalClaim, ExternalKey, ExternalTicket};

/// How long a claimed external key may wait for its ticket before another request takes it
/// over (the first request's process died between the claim and the ticket).
pub(super) const CLAIM_STALE: Duration = Duration::seconds(30);

/// How many times a request whose external id another request is opening waits for it.
const BUSY_RETRIES: u32 = 40;

/// A ticket as another system asks for it (already checked for shape and sizes).
#[derive(Debug, Clone, Default)]
pub struct ApiTicket {
    /// One-line summary (the body's first line when empty).
    pub title: String,
    /// Full description.
    pub body: String,
    /// Department chosen by the caller; else the routing rules decide.
    pub department: Option<String>,
    /// Priority chosen by the caller; else the routing rules decide.
    pub priority: Option<Priority>,
    /// Extra tags.
    pub tags: Vec<String>,
    /// Labels (name, value): routing input.
    pub labels: Vec<(String, String)>,
    /// Links to keep with the ticket.
    pub links: Vec<Link>,
    /// The caller's own id for what the ticket is about: a repeat with the same id finds the
    /// ticket instead of opening another.
    pub external_id: Option<String>,
}

/// What became of an API request to open a ticket.
#[derive(Debug, Clone)]
pub enum ApiOpened {
    /// A new ticket.
    New(Ticket),
    /// The external id already had this ticket.
    Existing(Ticket),
}

impl ApiOpened {
    /// What the store's answer means to a caller of the API.
    fn from_created(c: Created) -> Result<ApiOpened, DeskError> {
        match c {
            Created::New(t) => Ok(ApiOpened::New(t)),
            Created::Existing(t) => Ok(ApiOpened::Existing(t)),
            Created::OverQuota(_) | Created::Taken => {
                Err(DeskError::Internal(crate::store::StoreError::Corrupt(
                    "an API ticket was refused by a flag quota or a key it does not have".into(),
                )))
            }
        }
    }
}

/// The refusal of a token outside its departments (answered 403).
pub fn out_of_scope(token: &ApiToken, department: &str, chosen: bool) -> AccessError {
    AccessError::Denied {
        needed: format!("a token allowed in {department}"),
        action: format!(
            "act on its tickets as `{}`{}",
            token.name,
            if chosen {
                ""
            } else {
                " (where the routing rules sent this one)"
            }
        ),
        fix: "Use a token whose `departments` include it, or add it to this token's in [[api.tokens]].",
    }
}

impl Desk {
    /// The reporter of the tickets `token` opens: its name, on the platform of the
    /// department's first channel.
    fn automation_reporter(&self, token: &ApiToken, department: &str) -> UserRef {
        self.automation_account(department, &token.name, Platform::Slack)
    }

    /// Opens a ticket for `token`, or finds the one its external id already has (recording a
    /// changed body on it).
    pub async fn open_from_api(
        &self,
        token: &ApiToken,
        req: ApiTicket,
    ) -> Result<ApiOpened, DeskError> {
        let Some(id) = &req.external_id else {
            let created = self.open_routed(token, Origin::Api, req, None).await?;
            return ApiOpened::from_created(created);
        };
        let key = format!("id:{id}");
        // The key is claimed with the ticket, in one write; a key taken meanwhile is waited
        // for (or taken over when its claim is stale) as alerts' keys are.
        let ext = ExternalKey::unclaimed(&token.name, &key);
        let found = match self
            .open_routed(token, Origin::Api, req.clone(), Some(ext))
            .await?
        {
            Created::New(t) => return Ok(ApiOpened::New(t)),
            Created::Existing(t) => t,
            Created::Taken => match self.claim_or_find(&token.name, &key).await? {
                Some(t) => t,
                None => {
                    let claimed = (token.name.clone(), key);
                    return self
                        .open_claimed(token, Origin::Api, req, Some(claimed))
                        .await;
                }
            },
            refused @ Created::OverQuota(_) => return ApiOpened::from_created(refused),
        };
        if found.body != req.body.trim() && !req.body.trim().is_empty() {
            self.record_resent(token, &found, req.body.trim()).await?;
        }
        Ok(ApiOpened::Existing(found))
    }

    /// Opens a ticket for `token` with `origin`, routed on title, body and labels (or in the
    /// department asked for), pointing `external` (already claimed by this call) at it. The
    /// claim is released when nothing is opened, so a retry can open it.
    pub(super) async fn open_claimed(
        &self,
        token: &ApiToken,
        origin: Origin,
        req: ApiTicket,
        external: Option<(String, String)>,
    ) -> Result<ApiOpened, DeskError> {
        let key = external.as_ref().map(|(source, key)| ExternalKey {
            source: source.clone(),
            key: key.clone(),
            claimed: true,
        });
        let opened = self
            .open_routed(token, origin, req, key)
            .await
            .and_then(ApiOpened::from_created);
        if opened.is_err() {
            if let Some((source, key)) = &external {
                if let Err(release) = self.store.external_release(source, key).await {
                    tracing::warn!(error = %release, "could not release an external key after a failed open");
                }
            }
        }
        opened
    }

    /// Opens a ticket for `token`: `Created::Taken` when an unclaimed `external` key is held
    /// by another request.
    async fn open_routed(
        &self,
        token: &ApiToken,
        origin: Origin,
        req: ApiTicket,
        external: Option<ExternalKey>,
    ) -> Result<Created, DeskError> {
        let text = format!("{}\n{}", req.title, req.body);
        let decision = self.config.router.route(&RouteInput {
            platform: Platform::Slack,
            channel: None,
            emoji: None,
            text: &text,
            reporter_roles: &[],
            labels: &req.labels,
        });
        let (department, chosen) = match &req.department {
            Some(d) => (self.department(d)?.name.clone(), true),
            None => (decision.department.clone(), false),
        };
        if !token.covers(&department) {
            return Err(out_of_scope(token, &department, chosen).into());
        }
        let reporter = self.automation_reporter(token, &department);
        let mut tags = decision.tags.clone();
        for t in &req.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let body = req.body.trim().to_string();
        let title = if req.title.trim().is_empty() {
            title_from(&body)
        } else {
            title_from(&req.title)
        };
        let new = NewTicket {
            title,
            body,
            source: None,
            reporter: reporter.clone(),
            department: department.clone(),
            priority: req.priority.unwrap_or(decision.priority),
            tags,
            created_at: self.now(),
            origin,
        };
        let mut events = vec![EventKind::Created {
            origin,
            department,
            rule: if chosen {
                None
            } else {
                decision.rule.as_ref().map(|(_, n)| n.clone())
            },
            reasons: if chosen {
                vec![format!("department chosen by {}", token.name)]
            } else {
                decision.reasons.clone()
            },
            emoji: None,
        }];
        if !req.links.is_empty() {
            events.push(EventKind::Linked { links: req.links });
        }
        let actor = Actor::user(reporter);
        self.open(new, &actor, events, None, None, external).await
    }

    /// Claims `(source, key)`: `None` when the caller is to open its ticket, else what the
    /// key already has. While another request is opening that ticket it waits a little,
    /// then answers `Busy` saying `busy`.
    pub(super) async fn claim_external(
        &self,
        source: &str,
        key: &str,
        busy: impl FnOnce() -> String,
    ) -> Result<Option<ExternalTicket>, DeskError> {
        for _ in 0..BUSY_RETRIES {
            let now = self.now();
            match self
                .store
                .external_claim(source, key, now, now - CLAIM_STALE)
                .await?
            {
                ExternalClaim::Claimed => return Ok(None),
                ExternalClaim::Ticket(t) => return Ok(Some(t)),
                ExternalClaim::Busy => {
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
            }
        }
        Err(DeskError::Busy(busy()))
    }

    /// Claims `(source, key)`; `None` when the caller should open the ticket, else the
    /// ticket it already has.
    async fn claim_or_find(&self, source: &str, key: &str) -> Result<Option<Ticket>, DeskError> {
        let busy = || {
            "another request with this external_id is still opening its ticket; send it again in a moment".to_string()
        };
        match self.claim_external(source, key, busy).await? {
            Some(t) => Ok(Some(self.ticket(t.id).await?)),
            None => Ok(None),
        }
    }

    /// Records on `ticket` that its source sent it again with a different body, whatever
    /// department the ticket is in now (the source opened it).
    async fn record_resent(
        &self,
        token: &ApiToken,
        ticket: &Ticket,
        body: &str,
    ) -> Result<(), DeskError> {
        let by = self.automation_reporter(token, &ticket.department);
        let who = |_: &Ticket| {
            Ok(ChangeActor {
                user: by.clone(),
                is_staff: false,
            })
        };
        self.apply_change(ticket.id, Some(&by), who, Change::Resent(body.to_string()))
            .await?;
        Ok(())
    }

    /// Applies `change` to `ticket` for `token`, which must cover its department, in the
    /// source's name. The source is the reporter, so nothing it does counts as the first
    /// response.
    pub async fn change_from_api(
        &self,
        token: &ApiToken,
        ticket: &Ticket,
        change: Change,
    ) -> Result<(Ticket, Vec<EventKind>), DeskError> {
        let who = |t: &Ticket| {
            if !token.covers(&t.department) {
                return Err(out_of_scope(token, &t.department, true).into());
            }
            // The source is the ticket's reporter: what it does is never a staff response.
            Ok(ChangeActor {
                user: self.automation_reporter(token, &t.department),
                is_staff: false,
            })
        };
        let by = self.automation_reporter(token, &ticket.department);
        self.apply_change(ticket.id, Some(&by), who, change).await
    }
}
