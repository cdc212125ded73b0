//! Cron expressions as people write them, translated for the `cron` crate.
//!
//! Owns the accepted forms: the 5-field crontab form (minute hour day month weekday) and the
//! 6-field form with seconds first. In both, weekday numbers mean 1 = Monday … 6 = Saturday and
//! 0 or 7 = Sunday, and names (MON, tue) work; the `cron` crate numbers 1 = Sunday, so weekday
//! fields are rewritten as explicit name lists. Also owns evaluating a schedule on local
//! wall-clock time in an IANA zone, across daylight-saving changes. Must not read the clock.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

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

/// Translates and checks an expression; returns the `cron` crate's schedule for it. When both
/// the day-of-month and weekday fields are restricted this is only the day-of-month half; use
/// [`CronSchedule`] for crontab's "either day matches" rule.
pub fn parse(expr: &str) -> Result<cron::Schedule, CronError> {
    Ok(CronSchedule::parse(expr)?.parts.remove(0))
}

/// A schedule as crontab reads it, evaluated on local wall-clock times.
///
/// When both the day-of-month and the weekday are restricted (`0 9 1 * MON`), crontab fires
/// when *either* matches; the `cron` crate requires both, so such an expression is held as two
/// schedules (one per day field) whose fire times are merged.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    parts: Vec<cron::Schedule>,
}

fn restricted(field: &str) -> bool {
    field != "*" && field != "?"
}

impl CronSchedule {
    /// Translates and checks an expression (5 fields, or 6 with seconds first).
    pub fn parse(expr: &str) -> Result<Self, CronError> {
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
        let variants: Vec<Vec<String>> = if restricted(&six[3]) && restricted(&six[5]) {
            let mut by_day = six.clone();
            by_day[5] = "*".into();
            let mut by_weekday = six.clone();
            by_weekday[3] = "*".into();
            vec![by_day, by_weekday]
        } else {
            vec![six]
        };
        let parts = variants
            .iter()
            .map(|v| {
                cron::Schedule::from_str(&v.join(" "))
                    .map_err(|e| CronError::Invalid(expr.to_string(), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { parts })
    }

    /// How many times the schedule fires in a minute in which it fires at all: the number of
    /// seconds its seconds field lists (1 for every 5-field expression).
    pub fn fires_per_minute(&self) -> u32 {
        use cron::TimeUnitSpec;
        self.parts
            .iter()
            .map(|p| p.seconds().count())
            .max()
            .unwrap_or(0)
    }

    /// The first fire strictly after the wall-clock time `t`.
    pub fn next_after(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        // The cron crate works on zoned times; UTC has no gaps or overlaps, so it stands in for
        // the naive wall clock exactly.
        let at = Utc.from_utc_datetime(&t);
        self.parts
            .iter()
            .filter_map(|p| p.after(&at).next())
            .min()
            .map(|d| d.naive_utc())
    }

    /// The last fire at or before the wall-clock time `t`.
    pub fn last_at_or_before(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let at = Utc.from_utc_datetime(&(t + Duration::seconds(1)));
        self.parts
            .iter()
            .filter_map(|p| p.after(&at).next_back())
            .max()
            .map(|d| d.naive_utc())
    }
}

/// One fire of a schedule: the local wall-clock time it was written for (which names the
/// fire, so an hour that happens twice still fires once) and the instant it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fire {
    /// The scheduled wall-clock time in the schedule's zone.
    pub local: NaiveDateTime,
    /// When it fires.
    pub at: DateTime<Utc>,
}

impl Fire {
    /// The claim key: the wall-clock time, without offset (`2026-03-29T02:30:00`).
    pub fn key(&self) -> String {
        self.local.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

/// When the wall-clock time `local` happens in `tz`: the first of two instants when the clocks
/// go back, and when it does not exist (clocks go forward) the first valid minute after it, as
/// cron daemons run a job whose time was skipped.
pub fn instant(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let mut t = local;
    // Gaps are at most a few hours; a day of minutes bounds the search.
    for _ in 0..24 * 60 {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(d) => return d.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => {
                t = (t + Duration::minutes(1))
                    .with_second(0)
                    .unwrap_or(t + Duration::minutes(1));
            }
        }
    }
    Utc.from_utc_datetime(&local)
}

/// The latest fire of `schedule` in `tz` that has happened by `now`.
pub fn latest_fire(schedule: &CronSchedule, tz: Tz, now: DateTime<Utc>) -> Option<Fire> {
    let mut local = now.with_timezone(&tz).naive_local();
    // A wall-clock time at or before now's can still lie ahead in real time when the clocks
    // went back; step back until one has happened.
    for _ in 0..8 {
        let candidate = schedule.last_at_or_before(local)?;
        let at = instant(candidate, tz);
        if at <= now {
            return Some(Fire {
                local: candidate,
                at,
            });
        }
        local = candidate - Duration::seconds(1);
    }
    None
}

/// The next fire of `schedule` in `tz` after `now`.
pub fn next_fire(schedule: &CronSchedule, tz: Tz, now: DateTime<Utc>) -> Option<Fire> {
    let mut local = now.with_timezone(&tz).naive_local() - Duration::hours(3);
    for _ in 0..64 {
        let candidate = schedule.next_after(local)?;
        let at = instant(candidate, tz);
        if at > now {
            return Some(Fire {
                local: candidate,
                at,
            });
        }
        local = candidate;
    }
    None
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

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn fires(expr: &str, tz: Tz, from: &str, n: usize) -> Vec<(String, String)> {
        let s = CronSchedule::parse(expr).unwrap();
        let mut now = utc(from);
        let mut out = Vec::new();
        for _ in 0..n {
            let f = next_fire(&s, tz, now).unwrap();
            out.push((f.key(), f.at.to_rfc3339()));
            now = f.at;
        }
        out
    }

    #[test]
    fn monday_nine_fires_at_nine_local() {
        let f = fires(
            "0 9 * * 1",
            chrono_tz::Europe::Berlin,
            "2026-11-18T12:00:00Z",
            2,
        );
        assert_eq!(
            f[0],
            (
                "2026-11-23T09:00:00".into(),
                "2026-11-23T08:00:00+00:00".into()
            )
        );
        assert_eq!(f[1].0, "2026-11-30T09:00:00");
        let s = CronSchedule::parse("0 9 * * 1").unwrap();
        let latest =
            latest_fire(&s, chrono_tz::Europe::Berlin, utc("2026-11-23T08:00:00Z")).unwrap();
        assert_eq!(
            latest.key(),
            "2026-11-23T09:00:00",
            "a fire counts from its instant on"
        );
        let before =
            latest_fire(&s, chrono_tz::Europe::Berlin, utc("2026-11-23T07:59:59Z")).unwrap();
        assert_eq!(before.key(), "2026-11-16T09:00:00");
    }

    #[test]
    fn daylight_saving_changes_fire_once_or_at_the_next_valid_instant() {
        use chrono_tz::{America::New_York, Europe::Berlin};
        // Berlin springs forward on 2026-03-29 02:00 → 03:00: 02:30 does not exist.
        let f = fires("30 2 * * *", Berlin, "2026-03-28T12:00:00Z", 2);
        assert_eq!(
            f[0],
            (
                "2026-03-29T02:30:00".into(),
                "2026-03-29T01:00:00+00:00".into()
            ),
            "03:00 CEST"
        );
        assert_eq!(
            f[1],
            (
                "2026-03-30T02:30:00".into(),
                "2026-03-30T00:30:00+00:00".into()
            )
        );
        // 01:30 exists once that night.
        let f = fires("30 1 * * *", Berlin, "2026-03-28T12:00:00Z", 1);
        assert_eq!(f[0].1, "2026-03-29T00:30:00+00:00");
        // Berlin falls back on 2026-10-25 03:00 → 02:00: 02:30 happens twice, fires once.
        let f = fires("30 2 * * *", Berlin, "2026-10-24T12:00:00Z", 2);
        assert_eq!(
            f[0],
            (
                "2026-10-25T02:30:00".into(),
                "2026-10-25T00:30:00+00:00".into()
            )
        );
        assert_eq!(f[1].0, "2026-10-26T02:30:00", "not again at 02:30 CET");
        let f = fires("30 1 * * *", Berlin, "2026-10-24T12:00:00Z", 2);
        assert_eq!(f[0].1, "2026-10-24T23:30:00+00:00");
        assert_eq!(f[1].0, "2026-10-26T01:30:00");
        // New York springs forward 2026-03-08 02:00 → 03:00, falls back 2026-11-01 02:00 → 01:00.
        let f = fires("30 2 * * *", New_York, "2026-03-07T12:00:00Z", 1);
        assert_eq!(
            f[0],
            (
                "2026-03-08T02:30:00".into(),
                "2026-03-08T07:00:00+00:00".into()
            ),
            "03:00 EDT"
        );
        let f = fires("30 1 * * *", New_York, "2026-10-31T12:00:00Z", 2);
        assert_eq!(
            f[0],
            (
                "2026-11-01T01:30:00".into(),
                "2026-11-01T05:30:00+00:00".into()
            ),
            "01:30 EDT"
        );
        assert_eq!(f[1].0, "2026-11-02T01:30:00", "not again at 01:30 EST");
        let f = fires("30 2 * * *", New_York, "2026-10-31T12:00:00Z", 1);
        assert_eq!(f[0].1, "2026-11-01T07:30:00+00:00", "02:30 EST, once");
        // During the repeated hour the latest fire is still the one that happened first.
        let s = CronSchedule::parse("30 1 * * *").unwrap();
        let l = latest_fire(&s, New_York, utc("2026-11-01T06:45:00Z")).unwrap();
        assert_eq!(l.key(), "2026-11-01T01:30:00");
        assert_eq!(l.at, utc("2026-11-01T05:30:00Z"));
    }

    #[test]
    fn day_of_month_and_weekday_both_given_means_either() {
        // 09:00 on the 1st of the month and on every Monday.
        let f = fires("0 9 1 * MON", chrono_tz::UTC, "2026-05-28T00:00:00Z", 4);
        let days: Vec<&str> = f.iter().map(|(k, _)| &k[..10]).collect();
        assert_eq!(
            days,
            ["2026-06-01", "2026-06-08", "2026-06-15", "2026-06-22"]
        );
        let f = fires("0 9 3 * FRI", chrono_tz::UTC, "2026-05-31T00:00:00Z", 3);
        let days: Vec<&str> = f.iter().map(|(k, _)| &k[..10]).collect();
        assert_eq!(days, ["2026-06-03", "2026-06-05", "2026-06-12"]);
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

    #[test]
    fn fires_per_minute_counts_the_seconds_field() {
        let n = |e: &str| CronSchedule::parse(e).unwrap().fires_per_minute();
        assert_eq!(n("0 9 * * MON"), 1);
        assert_eq!(n("* * * * *"), 1, "every minute, at second 0");
        assert_eq!(n("30 0 9 * * *"), 1);
        assert_eq!(n("0,30 * * * * *"), 2);
        assert_eq!(n("*/10 * * * * *"), 6);
        assert_eq!(n("* * * * * *"), 60);
        assert_eq!(
            n("0,15 0 9 1 * MON"),
            2,
            "both halves of an either-day rule"
        );
    }
}
