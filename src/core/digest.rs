//! Digest figures: what leaders read about a period (volume, response and resolution times,
//! backlog, per department) and the period's shout-outs, rendered as a neutral message.
//!
//! Pure computation over tickets already loaded; the caller picks the period and the
//! departments. Must not query storage or read the clock.

use chrono::{DateTime, Duration, Utc};

use super::message::{Field, Message};
use super::ticket::Ticket;

/// Counts and times for one set of tickets over one period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Figures {
    /// Tickets opened in the period.
    pub opened: usize,
    /// Tickets resolved in the period.
    pub resolved: usize,
    /// Tickets still active at the end of the period.
    pub backlog: usize,
    /// Median time to first response of tickets opened in the period that got one.
    pub median_first_response: Option<Duration>,
    /// Median time to resolution of tickets resolved in the period.
    pub median_resolution: Option<Duration>,
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    })
}

/// Computes figures for tickets in `departments` (all when empty) over `(from, to]`: the period
/// ends at the moment the digest is made, and consecutive periods never count a ticket twice.
pub fn figures(
    tickets: &[Ticket],
    departments: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Figures {
    let within = |t: &DateTime<Utc>| *t > from && *t <= to;
    let mine: Vec<&Ticket> = tickets
        .iter()
        .filter(|t| departments.is_empty() || departments.contains(&t.department))
        .collect();
    let opened: Vec<&&Ticket> = mine.iter().filter(|t| within(&t.created_at)).collect();
    let resolved: Vec<&&Ticket> = mine
        .iter()
        .filter(|t| t.resolved_at.as_ref().is_some_and(within))
        .collect();
    Figures {
        opened: opened.len(),
        resolved: resolved.len(),
        backlog: mine
            .iter()
            .filter(|t| t.created_at <= to && t.status.is_active())
            .count(),
        median_first_response: median(
            opened
                .iter()
                .filter_map(|t| t.first_response_at.map(|r| r - t.created_at))
                .collect(),
        ),
        median_resolution: median(
            resolved
                .iter()
                .filter_map(|t| t.resolved_at.map(|r| r - t.created_at))
                .collect(),
        ),
    }
}

/// A duration as a person would write it: `45m`, `3h 12m`, `2d 4h`; `n/a` when absent.
pub fn human_duration(d: Option<Duration>) -> String {
    let Some(d) = d else {
        return "n/a".to_string();
    };
    let mins = d.num_minutes().max(0);
    match mins {
        0 => "under 1m".to_string(),
        m if m < 60 => format!("{m}m"),
        m if m < 24 * 60 => format!("{}h {}m", m / 60, m % 60),
        m => format!("{}d {}h", m / (24 * 60), (m % (24 * 60)) / 60),
    }
}

/// One shout-out line: who received kudos and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShoutOut {
    /// Receiver's display name.
    pub receiver: String,
    /// Giver's display name.
    pub giver: String,
    /// The reason (already neutralised).
    pub reason: String,
}

/// Renders a digest: overall figures, one line per department, and shout-outs.
pub fn render(
    name: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    overall: &Figures,
    per_department: &[(String, Figures)],
    shout_outs: &[ShoutOut],
) -> Message {
    let fields = vec![
        Field {
            name: "Opened".into(),
            value: overall.opened.to_string(),
        },
        Field {
            name: "Resolved".into(),
            value: overall.resolved.to_string(),
        },
        Field {
            name: "Backlog".into(),
            value: overall.backlog.to_string(),
        },
        Field {
            name: "Median first response".into(),
            value: human_duration(overall.median_first_response),
        },
        Field {
            name: "Median resolution".into(),
            value: human_duration(overall.median_resolution),
        },
    ];
    let mut text = String::new();
    for (dept, f) in per_department {
        text.push_str(&format!(
            "• {dept}: {} opened, {} resolved, {} open; first response {}, resolution {}\n",
            f.opened,
            f.resolved,
            f.backlog,
            human_duration(f.median_first_response),
            human_duration(f.median_resolution)
        ));
    }
    if shout_outs.is_empty() {
        text.push_str("No shout-outs this period. Thank someone with `/kudos give @name why`.");
    } else {
        text.push_str("Shout-outs:\n");
        for s in shout_outs.iter().take(10) {
            text.push_str(&format!(
                "• {} (from {}): {}\n",
                s.receiver, s.giver, s.reason
            ));
        }
        if shout_outs.len() > 10 {
            text.push_str(&format!("…and {} more.", shout_outs.len() - 10));
        }
    }
    Message {
        title: Some(format!(
            "Digest `{name}`: {} to {}",
            from.format("%Y-%m-%d %H:%M UTC"),
            to.format("%Y-%m-%d %H:%M UTC")
        )),
        text: text.trim_end().to_string(),
        fields,
        buttons: vec![],
        link: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ticket::NewTicket;
    use crate::core::types::{Platform, Priority, Status, TicketRef, UserRef};

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::hours(h)
    }

    fn t(id: i64, dept: &str, created: i64, first: Option<i64>, resolved: Option<i64>) -> Ticket {
        let mut t = NewTicket {
            title: "x".into(),
            body: "x".into(),
            source: None,
            reporter: UserRef::new(Platform::Slack, "U1"),
            department: dept.into(),
            priority: Priority::Normal,
            tags: vec![],
            created_at: at(created),
        }
        .into_ticket(TicketRef(id));
        t.first_response_at = first.map(at);
        if let Some(r) = resolved {
            t.resolved_at = Some(at(r));
            t.status = Status::Resolved;
        }
        t
    }

    #[test]
    fn figures_count_the_period_and_take_medians() {
        let tickets = vec![
            t(1, "billing", -5, Some(-4), Some(2)), // opened before, resolved within
            t(2, "billing", 1, Some(2), Some(5)),
            t(3, "billing", 2, Some(5), None),
            t(4, "it", 3, None, None),
            t(5, "it", 30, None, None), // after the period
        ];
        let f = figures(&tickets, &[], at(0), at(24));
        assert_eq!((f.opened, f.resolved, f.backlog), (3, 2, 2));
        assert_eq!(
            f.median_first_response,
            Some(Duration::hours(2)),
            "1h and 3h"
        );
        assert_eq!(
            f.median_resolution,
            Some(Duration::minutes(330)),
            "mean of 4h and 7h"
        );
        let b = figures(&tickets, &["it".into()], at(0), at(24));
        assert_eq!((b.opened, b.resolved, b.backlog), (1, 0, 1));
        assert_eq!(b.median_first_response, None);
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(None), "n/a");
        assert_eq!(human_duration(Some(Duration::seconds(20))), "under 1m");
        assert_eq!(human_duration(Some(Duration::minutes(45))), "45m");
        assert_eq!(human_duration(Some(Duration::minutes(192))), "3h 12m");
        assert_eq!(human_duration(Some(Duration::hours(52))), "2d 4h");
    }
}
