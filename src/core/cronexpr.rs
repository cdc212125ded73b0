//! Cron expressions as people write them, translated for the `cron` crate.
//!
//! Owns the accepted forms: the 5-field crontab form (minute hour day month weekday) and the
//! 6-field form with seconds first. In both, weekday numbers mean 1 = Monday … 6 = Saturday and
//! 0 or 7 = Sunday, and names (MON, tue) work; the `cron` crate numbers 1 = Sunday, so weekday
//! fields are rewritten as explicit name lists. Must not evaluate schedules or read the clock.

use std::str::FromStr;

/// Why an expression was refused; the message includes a working example.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Wrong number of fields.
    #[error("`{0}` has {1} fields; write 5 (minute hour day month weekday), e.g. `0 9 * * MON` for Mondays at 09:00, or 6 with seconds first")]
    FieldCount(String, usize),
    /// A weekday field that does not parse.
    #[error("weekday `{0}` is not valid; use 0-7 (0 and 7 are Sunday, 1 is Monday), names like MON-FRI, ranges and lists, e.g. `0 9 * * 1-5`")]
    Weekday(String),
    /// The `cron` crate refused the translated expression.
    #[error("`{0}` is not a valid schedule ({1}); e.g. `30 8 * * MON-FRI` for weekdays at 08:30")]
    Invalid(String, String),
}

const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn day_number(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return (n <= 7).then_some(n % 7);
    }
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|p| p as u32)
}

/// Rewrites a crontab weekday field as a list of names the `cron` crate reads unambiguously.
fn translate_weekday(field: &str) -> Result<String, CronError> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let bad = || CronError::Weekday(field.to_string());
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(bad)?),
            None => (item, 1),
        };
        let (start, end) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = day_number(a).ok_or_else(bad)?;
            // `5-7` means Friday to Sunday: 7 counts as the end of the week here.
            let b = if b == "7" {
                7
            } else {
                day_number(b).ok_or_else(bad)?
            };
            if b < a {
                return Err(bad());
            }
            (a, b)
        } else {
            let a = day_number(range).ok_or_else(bad)?;
            (a, if step > 1 { 6 } else { a })
        };
        let mut d = start;
        while d <= end {
            days[(d % 7) as usize] = true;
            d += step;
        }
    }
    Ok(days
        .iter()
        .enumerate()
        .filter(|(_, on)| **on)
        .map(|(i, _)| NAMES[i])
        .collect::<Vec<_>>()
        .join(","))
}

/// Translates and checks an expression; returns the `cron` crate's schedule.
pub fn parse(expr: &str) -> Result<cron::Schedule, CronError> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let mut six: Vec<String> = match fields.len() {
        5 => std::iter::once("0")
            .chain(fields.iter().copied())
            .map(str::to_string)
            .collect(),
        6 => fields.iter().map(|s| s.to_string()).collect(),
        n => return Err(CronError::FieldCount(expr.to_string(), n)),
    };
    six[5] = translate_weekday(&six[5])?;
    let translated = six.join(" ");
    cron::Schedule::from_str(&translated)
        .map_err(|e| CronError::Invalid(expr.to_string(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Utc, Weekday};

    fn next_days(expr: &str, n: usize) -> Vec<Weekday> {
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap(); // a Monday, midnight
        parse(expr)
            .unwrap()
            .after(&start)
            .take(n)
            .map(|t| t.weekday())
            .collect()
    }

    #[test]
    fn crontab_weekday_numbers_mean_monday_first() {
        use Weekday::*;
        assert_eq!(next_days("0 9 * * 1", 2), [Mon, Mon]);
        assert_eq!(next_days("0 9 * * 0", 1), [Sun]);
        assert_eq!(next_days("0 9 * * 7", 1), [Sun]);
        assert_eq!(next_days("0 9 * * 1-5", 6), [Mon, Tue, Wed, Thu, Fri, Mon]);
        assert_eq!(next_days("0 9 * * 5-7", 3), [Fri, Sat, Sun]);
        assert_eq!(next_days("0 9 * * MON,fri", 2), [Mon, Fri]);
        assert_eq!(next_days("0 9 * * */2", 4), [Tue, Thu, Sat, Sun]);
        assert_eq!(
            next_days("30 0 9 * * 6", 1),
            [Sat],
            "6 fields, seconds first"
        );
    }

    #[test]
    fn the_fire_time_is_the_written_wall_clock_time() {
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        let next = parse("15 9 * * MON").unwrap().after(&start).next().unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 3, 2, 9, 15, 0).unwrap());
    }

    #[test]
    fn malformed_expressions_explain_with_an_example() {
        for bad in [
            "0 9 * *",
            "0 9 * * 8",
            "0 9 * * 5-1",
            "61 9 * * 1",
            "0 9 * * FUNDAY",
        ] {
            let msg = parse(bad).unwrap_err().to_string();
            assert!(msg.contains("e.g."), "{bad}: {msg}");
        }
    }
}
