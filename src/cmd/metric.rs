//! `/metric`: record and list customer metrics (CSAT, NPS or any named figure).
//!
//! Owns the value rules of the well-known metrics (`csat` 1-5, `nps` -100 to 100) and the
//! listing. Departments named must exist in the config.

use chrono::Duration;

use crate::core::command::{Args, UsageError};
use crate::core::message::{neutralize_mentions, Message, Reply};
use crate::desk::{Desk, DeskError};
use crate::store::NewMetric;

use super::Context;

/// Command name.
pub const NAME: &str = "metric";
/// Implemented subcommands.
pub const SUBCOMMANDS: &[&str] = &["record", "list"];

const DEFAULT_DAYS: i64 = 30;

/// A typed `/metric` subcommand.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricCmd {
    /// Record a value.
    Record {
        /// Metric name.
        name: String,
        /// Value.
        value: f64,
        /// Department.
        department: Option<String>,
        /// Where it came from.
        note: Option<String>,
    },
    /// List recent values.
    List {
        /// Only this metric.
        name: Option<String>,
        /// Days back.
        days: Option<i64>,
    },
}

/// Checks the range of well-known metrics.
pub fn check_value(name: &str, value: f64) -> Result<(), String> {
    match name {
        "csat" if !(1.0..=5.0).contains(&value) => {
            Err(format!("csat is a 1-5 rating, not {value}"))
        }
        "nps" if !(0.0..=10.0).contains(&value) || value.fract() != 0.0 => Err(format!(
            "nps is one survey answer, a whole number from 0 to 10, not {value}; the digest turns answers into the NPS"
        )),
        _ => Ok(()),
    }
}

impl MetricCmd {
    /// Reads the typed subcommand from checked arguments.
    pub fn parse(a: &Args<'_>) -> Result<Self, UsageError> {
        Ok(match a.subcommand() {
            "record" => MetricCmd::Record {
                name: a.word("name")?,
                value: a.number("value")?,
                department: a.opt_department("department")?,
                note: a.opt_text("note")?,
            },
            "list" => MetricCmd::List {
                name: a.opt_word("name")?,
                days: a.opt_integer("days", 1..=365)?,
            },
            _ => return Err(super::unknown_sub(NAME, a)),
        })
    }

    /// Runs it.
    pub async fn run(self, desk: &Desk, ctx: &Context<'_>) -> Result<Reply, DeskError> {
        match self {
            MetricCmd::Record {
                name,
                value,
                department,
                note,
            } => {
                let dept = department
                    .as_deref()
                    .map(|d| desk.department(d))
                    .transpose()?;
                desk.authorize(ctx.actor, ctx.permission, dept, "record metrics")?;
                check_value(&name, value)
                    .map_err(|e| DeskError::User(format!("{e}. e.g. `/metric record {name} 4`")))?;
                let m = desk
                    .store
                    .add_metric(NewMetric {
                        name,
                        value,
                        department: dept.map(|d| d.name.clone()),
                        note,
                        recorded_by: Some(ctx.actor.user.clone()),
                        at: desk.now(),
                        received_at: desk.now(),
                    })
                    .await?;
                Ok(Reply::ephemeral(Message::text(format!(
                    "Recorded {} = {}{}.",
                    m.name,
                    m.value,
                    m.department.map_or(String::new(), |d| format!(" for {d}"))
                ))))
            }
            MetricCmd::List { name, days } => {
                desk.authorize(ctx.actor, ctx.permission, None, "list metrics")?;
                let days = days.unwrap_or(DEFAULT_DAYS);
                let samples = desk
                    .store
                    .list_metrics(name.as_deref(), desk.now() - Duration::days(days))
                    .await?;
                if samples.is_empty() {
                    return Ok(Reply::ephemeral(Message::text(format!(
                        "No metric values in the last {days} days. Record one with `/metric record nps 9`."
                    ))));
                }
                let lines: Vec<String> = samples
                    .iter()
                    .take(25)
                    .map(|m| {
                        format!(
                            "• {} {} = {}{}{}",
                            m.recorded_at.format("%Y-%m-%d"),
                            m.name,
                            m.value,
                            m.department
                                .as_ref()
                                .map_or(String::new(), |d| format!(" ({d})")),
                            m.note
                                .as_ref()
                                .map_or(String::new(), |n| format!(": {}", neutralize_mentions(n)))
                        )
                    })
                    .collect();
                Ok(Reply::ephemeral(Message {
                    title: Some(format!(
                        "Metric values, last {days} days ({})",
                        samples.len()
                    )),
                    text: lines.join("\n"),
                    ..Message::default()
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_metrics_have_ranges() {
        assert!(check_value("csat", 5.0).is_ok());
        assert!(check_value("csat", 6.0).is_err());
        assert!(check_value("nps", 0.0).is_ok());
        assert!(check_value("nps", 10.0).is_ok());
        assert!(check_value("nps", 11.0).is_err());
        assert!(check_value("nps", -1.0).is_err());
        assert!(check_value("nps", 7.5).is_err());
        assert!(check_value("churn", 1e6).is_ok());
    }
}
