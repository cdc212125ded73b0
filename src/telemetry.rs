//! Prometheus metrics for `/metrics`.
//!
//! Owns metric names and labels. Counters are bumped by the desk and workers; gauges that
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
        Self {
            registry,
            tickets_created,
            commands,
            outbox_rows,
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
}
