//! Prometheus metrics for `/metrics`, and the health of each platform adapter part for
//! `/readyz`.
//!
//! Owns metric names and labels, and the rule for "down": a part is down when it has been
//! failing (no success since its first failure) for longer than the grace, so an idle bot,
//! which succeeds at nothing and fails at nothing, does not flap. Counters are bumped by the desk and workers; gauges that
//! reflect stored state (outbox backlog) are refreshed at scrape time by the HTTP layer.
//! Labels never carry user text, ids or secrets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a created ticket.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TicketLabels {
    /// flag, shortcut or command.
    pub origin: String,
    /// Department name (from the config, so bounded).
    pub department: String,
}

/// Labels of a handled command.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    /// `ticket claim`, `kudos give`, … (from the specs, so bounded).
    pub command: String,
    /// ok, user_error or internal_error.
    pub outcome: String,
}

/// Labels of the outbox backlog gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutboxLabels {
    /// pending, sent or failed.
    pub status: String,
}

/// Every metric Switchboard exports.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    /// Tickets created.
    pub tickets_created: Family<TicketLabels, Counter>,
    /// Commands handled.
    pub commands: Family<CommandLabels, Counter>,
    /// Outbox rows by status, refreshed at scrape.
    pub outbox_rows: Family<OutboxLabels, Gauge>,
    /// Messages delivered, by platform.
    pub outbox_sent: Family<PlatformLabels, Counter>,
    /// Deliveries recorded twice (two workers sent one row), by platform.
    pub outbox_duplicates: Family<PlatformLabels, Counter>,
    /// Rows taken over from an expired lease (possibly delivered once already), by platform.
    pub outbox_reclaimed: Family<PlatformLabels, Counter>,
    /// Rate-limit answers, by platform.
    pub outbox_rate_limited: Family<PlatformLabels, Counter>,
    /// Rows moved to the dead-letter state, by platform.
    pub outbox_dead: Family<PlatformLabels, Counter>,
    /// Inbound events processed, by platform and outcome.
    pub inbox_events: Family<InboxLabels, Counter>,
    /// Rows whose lease passed to another worker before this one recorded their outcome.
    pub leases_lost: Family<WorkerLabels, Counter>,
    /// Platform calls the clients' pacing delayed (waited for their slot), deferred (the row
    /// was rescheduled to its slot) or held back (Discord's invalid-request budget was spent).
    pub paced: Family<PacedLabels, Counter>,
    /// Rate-limit (429) answers the platforms gave, each pausing what it concerned.
    pub rate_limited: Family<PlatformLabels, Counter>,
    /// 401, 403 and 429 answers from Discord, which bans an address at 10,000 in ten minutes.
    pub discord_invalid_requests: Counter,
    /// Rows retention removed, by kind.
    pub pruned: Family<PrunedLabels, Counter>,
    /// 1 while an adapter part is up, 0 while down, refreshed when health is read.
    pub adapter_up: Family<AdapterLabels, Gauge>,
    /// Each adapter part's last success and current failure.
    health: std::sync::Mutex<std::collections::BTreeMap<(String, String), PartHealth>>,
}

/// Labels of the adapter health gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdapterLabels {
    /// slack or discord.
    pub platform: String,
    /// web_api, socket_mode, rest or gateway.
    pub part: String,
}

/// What is known of one adapter part.
#[derive(Debug, Clone, Default)]
struct PartHealth {
    last_success: Option<chrono::DateTime<chrono::Utc>>,
    /// Since when it fails, and the latest reason; cleared by a success.
    failing: Option<(chrono::DateTime<chrono::Utc>, String)>,
}

/// One adapter part's health as `/readyz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdapterHealth {
    /// slack or discord.
    pub platform: String,
    /// web_api, socket_mode, rest or gateway.
    pub part: String,
    /// `up`, or `down` when failing for longer than the grace.
    pub state: &'static str,
    /// When it last worked.
    pub last_success: Option<chrono::DateTime<chrono::Utc>>,
    /// Since when it has been failing, if it is.
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it fails, if it does.
    pub reason: Option<String>,
}

/// Labels of the pacing counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PacedLabels {
    /// slack or discord.
    pub platform: String,
    /// delayed, deferred or held_back.
    pub outcome: String,
}

/// Labels of the retention counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PrunedLabels {
    /// Which rows: inbox_done, outbox_sent, schedule_fires, sla_claims, followup_claims, inbox_failed or
    /// outbox_failed.
    pub rows: String,
}

/// Labels of per-worker counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    /// inbox or outbox.
    pub worker: String,
}

/// Labels of per-platform counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabels {
    /// slack or discord.
    pub platform: String,
}

/// Labels of the inbox counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InboxLabels {
    /// slack or discord.
    pub platform: String,
    /// ticket, existing, ignored, refused, retry or failed.
    pub outcome: String,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let tickets_created = Family::<TicketLabels, Counter>::default();
        registry.register(
            "tickets_created",
            "Tickets created",
            tickets_created.clone(),
        );
        let commands = Family::<CommandLabels, Counter>::default();
        registry.register("commands", "Commands handled, by outcome", commands.clone());
        let outbox_rows = Family::<OutboxLabels, Gauge>::default();
        registry.register(
            "outbox_rows",
            "Outbox rows by delivery status",
            outbox_rows.clone(),
        );
        let family = |registry: &mut Registry, name: &str, help: &str| {
            let f = Family::<PlatformLabels, Counter>::default();
            registry.register(name, help, f.clone());
            f
        };
        let outbox_sent = family(&mut registry, "outbox_sent", "Messages delivered");
        let outbox_duplicates = family(
            &mut registry,
            "outbox_duplicates",
            "Rows delivered by two workers",
        );
        let outbox_reclaimed = family(
            &mut registry,
            "outbox_reclaimed",
            "Rows taken over from an expired lease",
        );
        let outbox_rate_limited = family(
            &mut registry,
            "outbox_rate_limited",
            "Rate-limit answers from a platform",
        );
        let outbox_dead = family(
            &mut registry,
            "outbox_dead",
            "Rows moved to the dead-letter state",
        );
        let inbox_events = Family::<InboxLabels, Counter>::default();
        registry.register(
            "inbox_events",
            "Inbound events processed, by outcome",
            inbox_events.clone(),
        );
        let leases_lost = Family::<WorkerLabels, Counter>::default();
        registry.register(
            "leases_lost",
            "Rows whose lease passed to another worker before their outcome was recorded",
            leases_lost.clone(),
        );
        let paced = Family::<PacedLabels, Counter>::default();
        registry.register(
            "paced_calls",
            "Platform calls the client's pacing delayed, deferred or held back",
            paced.clone(),
        );
        let rate_limited = family(
            &mut registry,
            "rate_limited_answers",
            "429 answers from a platform, each pausing what it concerned",
        );
        let discord_invalid_requests = Counter::default();
        registry.register(
            "discord_invalid_requests",
            "401, 403 and 429 answers from Discord (it bans at 10,000 in ten minutes)",
            discord_invalid_requests.clone(),
        );
        let pruned = Family::<PrunedLabels, Counter>::default();
        registry.register(
            "pruned_rows",
            "Rows removed by retention, by kind",
            pruned.clone(),
        );
        let adapter_up = Family::<AdapterLabels, Gauge>::default();
        registry.register(
            "adapter_up",
            "1 while a platform adapter part works (or fails for less than the grace), else 0",
            adapter_up.clone(),
        );
        Self {
            registry,
            tickets_created,
            commands,
            outbox_rows,
            outbox_sent,
            outbox_duplicates,
            outbox_reclaimed,
            outbox_rate_limited,
            outbox_dead,
            inbox_events,
            leases_lost,
            paced,
            rate_limited,
            discord_invalid_requests,
            pruned,
            adapter_up,
            health: std::sync::Mutex::default(),
        }
    }
}

impl Telemetry {
    /// Counts a handled command.
    pub fn command(&self, command: &str, outcome: &str) {
        self.commands
            .get_or_create(&CommandLabels {
                command: command.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts one event in a per-platform family.
    pub fn counter(&self, family: &Family<PlatformLabels, Counter>, platform: &str) {
        family
            .get_or_create(&PlatformLabels {
                platform: platform.to_string(),
            })
            .inc();
    }

    /// Counts one processed inbound event.
    pub fn inbox(&self, platform: &str, outcome: &str) {
        self.inbox_events
            .get_or_create(&InboxLabels {
                platform: platform.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts rows removed by retention.
    pub fn pruned(&self, rows: &str, n: u64) {
        self.pruned
            .get_or_create(&PrunedLabels {
                rows: rows.to_string(),
            })
            .inc_by(n);
    }

    /// The pacing counter for `platform` and `outcome`, to hand to a client.
    pub fn paced_counter(&self, platform: &str, outcome: &str) -> Counter {
        self.paced
            .get_or_create(&PacedLabels {
                platform: platform.to_string(),
                outcome: outcome.to_string(),
            })
            .clone()
    }

    /// The 429 counter for `platform`, to hand to a client.
    pub fn rate_limited_counter(&self, platform: &str) -> Counter {
        self.rate_limited
            .get_or_create(&PlatformLabels {
                platform: platform.to_string(),
            })
            .clone()
    }

    /// Records that `part` of `platform`'s adapter worked at `at` (a probe answered, a
    /// connection opened, an event arrived).
    pub fn adapter_ok(&self, platform: &str, part: &str, at: chrono::DateTime<chrono::Utc>) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let p = h
            .entry((platform.to_string(), part.to_string()))
            .or_default();
        p.last_success = Some(p.last_success.map_or(at, |t| t.max(at)));
        p.failing = None;
    }

    /// Records that `part` of `platform`'s adapter failed at `at`, and why.
    pub fn adapter_failed(
        &self,
        platform: &str,
        part: &str,
        at: chrono::DateTime<chrono::Utc>,
        reason: &str,
    ) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let p = h
            .entry((platform.to_string(), part.to_string()))
            .or_default();
        let since = p.failing.as_ref().map_or(at, |(s, _)| *s);
        p.failing = Some((since, reason.to_string()));
    }

    /// Every adapter part's health at `now`: down when failing for longer than `grace`. Also
    /// refreshes `switchboard_adapter_up`.
    pub fn adapters(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        grace: chrono::Duration,
    ) -> Vec<AdapterHealth> {
        let h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.iter()
            .map(|((platform, part), p)| {
                let down = p
                    .failing
                    .as_ref()
                    .is_some_and(|(since, _)| now - *since > grace);
                self.adapter_up
                    .get_or_create(&AdapterLabels {
                        platform: platform.clone(),
                        part: part.clone(),
                    })
                    .set(i64::from(!down));
                AdapterHealth {
                    platform: platform.clone(),
                    part: part.clone(),
                    state: if down { "down" } else { "up" },
                    last_success: p.last_success,
                    failing_since: p.failing.as_ref().map(|(s, _)| *s),
                    reason: p.failing.as_ref().map(|(_, r)| r.clone()),
                }
            })
            .collect()
    }

    /// Counts a lease lost by a worker (`inbox` or `outbox`).
    pub fn lease_lost(&self, worker: &str) {
        self.leases_lost
            .get_or_create(&WorkerLabels {
                worker: worker.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_prometheus_text_format() {
        let t = Telemetry::default();
        t.command("ticket claim", "ok");
        t.command("ticket claim", "ok");
        let text = t.render();
        assert!(
            text.contains(r#"switchboard_commands_total{command="ticket claim",outcome="ok"} 2"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_part_is_down_only_after_failing_for_longer_than_the_grace() {
        let t = Telemetry::default();
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-30T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let grace = chrono::Duration::seconds(60);
        let s = chrono::Duration::seconds;
        t.adapter_ok("slack", "socket_mode", t0);
        assert_eq!(
            t.adapters(t0 + s(3600), grace)[0].state,
            "up",
            "idle is not down"
        );
        t.adapter_failed("slack", "socket_mode", t0 + s(10), "connection reset");
        t.adapter_failed("slack", "socket_mode", t0 + s(40), "connection refused");
        let h = &t.adapters(t0 + s(60), grace)[0];
        assert_eq!(h.state, "up", "within the grace");
        assert_eq!(h.reason.as_deref(), Some("connection refused"));
        let h = &t.adapters(t0 + s(71), grace)[0];
        assert_eq!((h.state, h.failing_since), ("down", Some(t0 + s(10))));
        assert!(t
            .render()
            .contains(r#"switchboard_adapter_up{platform="slack",part="socket_mode"} 0"#));
        t.adapter_ok("slack", "socket_mode", t0 + s(80));
        let h = &t.adapters(t0 + s(81), grace)[0];
        assert_eq!((h.state, h.last_success), ("up", Some(t0 + s(80))));
    }
}
