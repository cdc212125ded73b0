//! Tickets that follow monitoring alerts (Alertmanager, Grafana): one ticket per alert while
//! it fires, by fingerprint; its resolution recorded (and, by config, the ticket resolved);
//! a new firing reopening the ticket within `reopen_within`, else opening a new one; a storm
//! of new alerts in one group rolled up into one ticket.
//!
//! Owns those rules over a neutral [`Notification`]; reading each tool's payload is the HTTP
//! layer's (`crate::api`). Must not know HTTP.

use chrono::{DateTime, Utc};

use super::api::{ApiOpened, ApiTicket, CLAIM_STALE};
use super::{Desk, DeskError};
use crate::config::ApiToken;
use crate::core::ticket::{Change, Link, Origin, Ticket};
use crate::core::types::{Priority, Status, TicketRef};
use crate::store::{ExternalClaim, ExternalTicket};

/// How many alerts a roll-up ticket lists by name.
const ROLLUP_LISTED: usize = 50;

/// One alert of a notification, as both tools send it.
#[derive(Debug, Clone, Default)]
pub struct MonitoringAlert {
    /// The tool's identity of the alert (same labels, same fingerprint).
    pub fingerprint: String,
    /// `resolved` rather than `firing`.
    pub resolved: bool,
    /// Its labels (routing input; `severity` gives the priority).
    pub labels: Vec<(String, String)>,
    /// Its annotations (`summary`, `description`, `runbook_url`, …).
    pub annotations: Vec<(String, String)>,
    /// When it started firing.
    pub starts_at: Option<DateTime<Utc>>,
    /// When it resolved (resolved alerts).
    pub ends_at: Option<DateTime<Utc>>,
    /// Links: where it comes from, its runbook, dashboard, panel.
    pub links: Vec<Link>,
}

impl MonitoringAlert {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    /// What people call it: the summary, else the alert's name, else its fingerprint.
    fn name(&self) -> String {
        self.annotation("summary")
            .or(self.label("alertname"))
            .unwrap_or(&self.fingerprint)
            .to_string()
    }

    fn key(&self) -> String {
        format!("alert:{}", self.fingerprint)
    }

    /// Its labels as `name=value, …`.
    fn label_list(&self) -> String {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A notification from a monitoring tool: a group of alerts.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Which tool sent it (the ticket's origin).
    pub origin: Origin,
    /// The tool's key for the group (`groupKey`): a storm rolls up under it.
    pub group_key: String,
    /// The alerts.
    pub alerts: Vec<MonitoringAlert>,
}

/// What became of one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertOutcome {
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// Its ticket, when it has one.
    pub ticket: Option<TicketRef>,
    /// `opened`, `rolled_up`, `firing` (a repeat), `reopened`, `resolved` or `ignored` (a
    /// resolution of an alert that never opened a ticket).
    pub outcome: &'static str,
}

impl Desk {
    /// The priority for an alert's `severity` label.
    fn severity_priority(&self, alert: &MonitoringAlert) -> Option<Priority> {
        let severity = alert.label("severity")?.to_ascii_lowercase();
        self.config
            .automation
            .severity
            .iter()
            .find(|(s, _)| *s == severity)
            .map(|(_, p)| *p)
    }

    /// Handles a notification for `token`: every alert's ticket opened, found, reopened or
    /// resolved, in the order given.
    pub async fn notify(
        &self,
        token: &ApiToken,
        n: Notification,
    ) -> Result<Vec<AlertOutcome>, DeskError> {
        let mut out = Vec::new();
        // Claim every new firing alert first, to see whether they are a storm.
        let mut fresh: Vec<&MonitoringAlert> = Vec::new();
        for alert in &n.alerts {
            if alert.resolved {
                out.push(self.alert_resolved(token, alert).await?);
                continue;
            }
            match self.claim_alert(token, alert).await? {
                None => fresh.push(alert),
                Some(known) => out.push(
                    self.alert_fires_again(token, n.origin, alert, known)
                        .await?,
                ),
            }
        }
        if fresh.len() > self.config.automation.max_tickets_per_group {
            out.extend(self.roll_up(token, &n, &fresh).await?);
        } else {
            for alert in fresh {
                out.push(self.open_for_alert(token, n.origin, alert).await?);
            }
        }
        Ok(out)
    }

    /// Claims an alert's key: `None` when this call is to open its ticket.
    async fn claim_alert(
        &self,
        token: &ApiToken,
        alert: &MonitoringAlert,
    ) -> Result<Option<ExternalTicket>, DeskError> {
        let busy = || {
            format!(
                "another notification is still opening the ticket of alert {}; send it again in a moment",
                alert.fingerprint
            )
        };
        self.claim_external(&token.name, &alert.key(), busy).await
    }

    /// The ticket request for one alert.
    fn alert_ticket(&self, alert: &MonitoringAlert) -> ApiTicket {
        let mut body = alert
            .annotation("description")
            .unwrap_or_default()
            .to_string();
        if !alert.labels.is_empty() {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(&format!("Labels: {}", alert.label_list()));
        }
        if let Some(at) = alert.starts_at {
            body.push_str(&format!(
                "\nFiring since {}",
                at.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        ApiTicket {
            title: alert.name(),
            body,
            department: None,
            priority: self.severity_priority(alert),
            tags: vec!["alert".into()],
            labels: alert.labels.clone(),
            links: alert.links.clone(),
            external_id: None,
        }
    }

    /// Opens the ticket of a newly firing alert whose key this call claimed.
    async fn open_for_alert(
        &self,
        token: &ApiToken,
        origin: Origin,
        alert: &MonitoringAlert,
    ) -> Result<AlertOutcome, DeskError> {
        let key = (token.name.clone(), alert.key());
        let t = match self
            .open_claimed(token, origin, self.alert_ticket(alert), Some(key))
            .await?
        {
            ApiOpened::New(t) | ApiOpened::Existing(t) => t,
        };
        self.store
            .external_state(&token.name, &[alert.key()], None, false, self.now())
            .await?;
        Ok(AlertOutcome {
            fingerprint: alert.fingerprint.clone(),
            ticket: Some(t.id),
            outcome: "opened",
        })
    }

    /// An alert that already has a ticket fires: a repeat adds nothing; after its resolution,
    /// it reopens the ticket within `reopen_within`, else opens a new one.
    async fn alert_fires_again(
        &self,
        token: &ApiToken,
        origin: Origin,
        alert: &MonitoringAlert,
        known: ExternalTicket,
    ) -> Result<AlertOutcome, DeskError> {
        let outcome = |ticket, outcome| AlertOutcome {
            fingerprint: alert.fingerprint.clone(),
            ticket: Some(ticket),
            outcome,
        };
        if known.resolved != Some(true) {
            return Ok(outcome(known.id, "firing"));
        }
        let now = self.now();
        let recent = known
            .state_at
            .is_some_and(|at| now - at <= self.config.automation.reopen_within);
        if !recent {
            if self
                .store
                .external_reclaim(&token.name, &alert.key(), known.id, now)
                .await?
            {
                return self.open_for_alert(token, origin, alert).await;
            }
            // Another notification reclaimed it first and is opening the new ticket.
            return Ok(outcome(known.id, "firing"));
        }
        let t = self.ticket(known.id).await?;
        if matches!(t.status, Status::Resolved | Status::Closed) {
            self.change_from_api(
                token,
                &t,
                Change::Reopen {
                    reason: Some(format!("the alert {} fired again", alert.name())),
                },
            )
            .await?;
        } else {
            self.change_from_api(
                token,
                &t,
                Change::Note(format!("The alert {} fired again.", alert.name())),
            )
            .await?;
        }
        self.store
            .external_state(&token.name, &[alert.key()], None, false, now)
            .await?;
        Ok(outcome(t.id, "reopened"))
    }

    /// An alert resolved: recorded on its ticket, which is resolved too when configured.
    async fn alert_resolved(
        &self,
        token: &ApiToken,
        alert: &MonitoringAlert,
    ) -> Result<AlertOutcome, DeskError> {
        let now = self.now();
        let known = match self
            .store
            .external_claim(
                &token.name,
                &alert.key(),
                now,
                now - CLAIM_STALE,
            )
            .await?
        {
            ExternalClaim::Ticket(t) => t,
            ExternalClaim::Claimed => {
                // Never seen firing: nothing to follow.
                self.store
                    .external_release(&token.name, &alert.key())
                    .await?;
                return Ok(AlertOutcome {
                    fingerprint: alert.fingerprint.clone(),
                    ticket: None,
                    outcome: "ignored",
                });
            }
            ExternalClaim::Busy => {
                return Err(DeskError::Busy(format!(
                    "the ticket of alert {} is still being opened; send the resolution again in a moment",
                    alert.fingerprint
                )))
            }
        };
        let done = |outcome| AlertOutcome {
            fingerprint: alert.fingerprint.clone(),
            ticket: Some(known.id),
            outcome,
        };
        if known.resolved == Some(true) {
            return Ok(done("resolved"));
        }
        let when = alert
            .ends_at
            .unwrap_or(now)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string();
        let t = self.ticket(known.id).await?;
        let open = !matches!(t.status, Status::Resolved | Status::Closed);
        let change = if open && self.config.automation.resolve_when_source_resolves {
            Change::SetStatus {
                to: Status::Resolved,
                reason: Some(format!("the alert {} resolved at {when}", alert.name())),
            }
        } else {
            Change::Note(format!("The alert {} resolved at {when}.", alert.name()))
        };
        self.change_from_api(token, &t, change).await?;
        self.store
            .external_state(&token.name, &[alert.key()], None, true, now)
            .await?;
        Ok(done("resolved"))
    }

    /// A storm: one ticket for the group lists the new alerts, and each of their keys points
    /// at it (a later notification for any of them finds it).
    async fn roll_up(
        &self,
        token: &ApiToken,
        n: &Notification,
        fresh: &[&MonitoringAlert],
    ) -> Result<Vec<AlertOutcome>, DeskError> {
        let group = (token.name.clone(), format!("group:{}", n.group_key));
        let mut lines: Vec<String> = fresh
            .iter()
            .take(ROLLUP_LISTED)
            .map(|a| format!("• {} ({})", a.name(), a.label_list()))
            .collect();
        if fresh.len() > ROLLUP_LISTED {
            lines.push(format!("…and {} more", fresh.len() - ROLLUP_LISTED));
        }
        // The group's common labels route it; the highest severity sets the priority.
        let common: Vec<(String, String)> = fresh[0]
            .labels
            .iter()
            .filter(|l| fresh.iter().all(|a| a.labels.contains(l)))
            .cloned()
            .collect();
        let priority = fresh.iter().filter_map(|a| self.severity_priority(a)).max();
        let request = ApiTicket {
            title: format!(
                "{} alerts firing in group {}",
                fresh.len(),
                n.group_key.chars().take(80).collect::<String>()
            ),
            body: lines.join("\n"),
            department: None,
            priority,
            tags: vec!["alert".into(), "storm".into()],
            labels: common,
            links: fresh
                .iter()
                .flat_map(|a| a.links.iter().take(1).cloned())
                .take(10)
                .collect(),
            external_id: None,
        };
        let ticket = match self.claim_group(&group).await? {
            Some(t) => {
                self.change_from_api(
                    token,
                    &t,
                    Change::Note(format!(
                        "{} more alerts fired:\n{}",
                        fresh.len(),
                        lines.join("\n")
                    )),
                )
                .await?;
                t
            }
            None => match self
                .open_claimed(token, n.origin, request, Some(group))
                .await?
            {
                ApiOpened::New(t) | ApiOpened::Existing(t) => t,
            },
        };
        let keys: Vec<String> = fresh.iter().map(|a| a.key()).collect();
        self.store
            .external_state(&token.name, &keys, Some(ticket.id), false, self.now())
            .await?;
        Ok(fresh
            .iter()
            .map(|a| AlertOutcome {
                fingerprint: a.fingerprint.clone(),
                ticket: Some(ticket.id),
                outcome: "rolled_up",
            })
            .collect())
    }

    /// Claims a storm group's key: `None` when this call is to open its ticket.
    async fn claim_group(
        &self,
        (source, key): &(String, String),
    ) -> Result<Option<Ticket>, DeskError> {
        let now = self.now();
        match self
            .store
            .external_claim(source, key, now, now - CLAIM_STALE)
            .await?
        {
            ExternalClaim::Claimed => Ok(None),
            ExternalClaim::Ticket(t) => Ok(Some(self.ticket(t.id).await?)),
            ExternalClaim::Busy => Err(DeskError::Busy(
                "another notification is opening this group's ticket; send it again in a moment"
                    .into(),
            )),
        }
    }
}
