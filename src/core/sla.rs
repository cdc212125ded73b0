//! Service-level targets: how soon a department promises a first response and a resolution,
//! per priority, and when a ticket's promise falls due.
//!
//! Owns the targets' shape, durations as people write them (`30m`, `4h`, `1d`, `1w`,
//! `1h 30m`) and the deadline rule (wall-clock time for now; business hours come with the SLA
//! issue). Must not read the clock or storage.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::types::Priority;

/// Reads a duration such as `45m`, `4h`, `1d`, `2w` or `1h 30m` (at least one minute).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("`{text}` is not a duration; write a number and a unit (m, h, d or w), e.g. \"30m\", \"4h\", \"1d\" or \"1h 30m\"")
    };
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::zero();
    let mut number = String::new();
    for c in compact.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit = match c.to_ascii_lowercase() {
            'm' => Duration::minutes(1),
            'h' => Duration::hours(1),
            'd' => Duration::days(1),
            'w' => Duration::weeks(1),
            _ => return Err(bad()),
        };
        if n > 100_000 {
            return Err(bad());
        }
        total += unit * i32::try_from(n).map_err(|_| bad())?;
    }
    if !number.is_empty() || total < Duration::minutes(1) {
        return Err(bad());
    }
    Ok(total)
}

/// A duration written back the way [`parse_duration`] reads it (`1d 4h`, `30m`).
pub fn format_duration(d: Duration) -> String {
    let mut mins = d.num_minutes();
    let mut parts = Vec::new();
    for (unit, size) in [("w", 7 * 24 * 60), ("d", 24 * 60), ("h", 60), ("m", 1)] {
        if mins >= size {
            parts.push(format!("{}{unit}", mins / size));
            mins %= size;
        }
    }
    if parts.is_empty() {
        "0m".into()
    } else {
        parts.join(" ")
    }
}

/// A department's promises, by priority; a priority without a target has no promise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Time to first response.
    pub first_response: BTreeMap<Priority, Duration>,
    /// Time to resolution.
    pub resolution: BTreeMap<Priority, Duration>,
}

impl Targets {
    /// These targets with `over`'s entries replacing theirs.
    pub fn overridden_by(&self, over: &Targets) -> Targets {
        let mut out = self.clone();
        out.first_response.extend(over.first_response.clone());
        out.resolution.extend(over.resolution.clone());
        out
    }

    /// Whether any target is set.
    pub fn is_empty(&self) -> bool {
        self.first_response.is_empty() && self.resolution.is_empty()
    }
}

/// Every department's targets (the configured defaults merged with its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaPolicy {
    /// Targets for departments that set none of their own.
    pub default: Targets,
    /// Each department's merged targets.
    pub departments: BTreeMap<String, Targets>,
}

impl SlaPolicy {
    /// The targets that apply to `department`.
    pub fn targets(&self, department: &str) -> &Targets {
        self.departments.get(department).unwrap_or(&self.default)
    }

    /// The first-response target for a ticket of `priority` in `department`.
    pub fn first_response(&self, department: &str, priority: Priority) -> Option<Duration> {
        self.targets(department)
            .first_response
            .get(&priority)
            .copied()
    }

    /// The resolution target for a ticket of `priority` in `department`.
    pub fn resolution(&self, department: &str, priority: Priority) -> Option<Duration> {
        self.targets(department).resolution.get(&priority).copied()
    }
}

/// When a promise of `target` made at `start` falls due (wall-clock time).
pub fn deadline(start: DateTime<Utc>, target: Duration) -> DateTime<Utc> {
    start + target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("30m"), Ok(Duration::minutes(30)));
        assert_eq!(parse_duration("4h"), Ok(Duration::hours(4)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("2D"), Ok(Duration::days(2)));
        assert_eq!(parse_duration("1w"), Ok(Duration::weeks(1)));
        for bad in ["", "30", "h", "5 minutes", "0m", "-3h", "1y"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("e.g."), "{bad}: {e}");
        }
        assert_eq!(format_duration(Duration::minutes(90)), "1h 30m");
        assert_eq!(format_duration(Duration::days(8)), "1w 1d");
    }

    #[test]
    fn a_departments_targets_override_the_defaults_per_priority() {
        let mut default = Targets::default();
        default
            .first_response
            .insert(Priority::High, Duration::hours(2));
        default
            .first_response
            .insert(Priority::Low, Duration::days(1));
        let mut own = Targets::default();
        own.first_response
            .insert(Priority::High, Duration::minutes(30));
        let mut policy = SlaPolicy {
            default: default.clone(),
            ..SlaPolicy::default()
        };
        policy
            .departments
            .insert("billing".into(), default.overridden_by(&own));
        assert_eq!(
            policy.first_response("billing", Priority::High),
            Some(Duration::minutes(30))
        );
        assert_eq!(
            policy.first_response("billing", Priority::Low),
            Some(Duration::days(1))
        );
        assert_eq!(
            policy.first_response("it", Priority::High),
            Some(Duration::hours(2))
        );
        assert_eq!(policy.resolution("it", Priority::High), None);
    }
}
