//! Service-level targets: how soon a department promises a first response and a resolution,
//! per priority, and when a ticket's promise falls due.
//!
//! Owns the targets' shape, durations as people write them (`30m`, `4h`, `1d`, `1w`,
//! `1h 30m`), business hours and holidays (a department's SLA clocks run only while it is
//! open; wall-clock time when it sets no hours), and where a promise stands at a moment (met,
//! running, paused while waiting on the customer, breached). Must not read the clock or
//! storage.

use std::collections::BTreeMap;

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::cronexpr::instant;

use super::types::Priority;

/// A target as written: whole weeks and days kept apart from hours and minutes, because in a
/// department with business hours a day is one working day and a week the working days of
/// one week (see [`Calendar::span`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Weeks (`w`).
    pub weeks: i32,
    /// Days (`d`).
    pub days: i32,
    /// Hours and minutes.
    pub time: Duration,
}

impl Target {
    /// The target as wall-clock time: a day is 24 hours, a week 7 days.
    pub fn wall(&self) -> Duration {
        Duration::weeks(i64::from(self.weeks)) + Duration::days(i64::from(self.days)) + self.time
    }
}

/// Reads a target such as `45m`, `4h`, `1d`, `2w` or `1h 30m` (at least one minute).
pub fn parse_target(text: &str) -> Result<Target, String> {
    let bad = || {
        format!("`{text}` is not a duration; write a number and a unit (m, h, d or w), e.g. \"30m\", \"4h\", \"1d\" or \"1h 30m\"")
    };
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(bad());
    }
    let mut out = Target {
        weeks: 0,
        days: 0,
        time: Duration::zero(),
    };
    let mut number = String::new();
    for c in compact.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        if n > 100_000 {
            return Err(bad());
        }
        let n32 = i32::try_from(n).map_err(|_| bad())?;
        match c.to_ascii_lowercase() {
            'm' => out.time += Duration::minutes(n),
            'h' => out.time += Duration::hours(n),
            'd' => out.days += n32,
            'w' => out.weeks += n32,
            _ => return Err(bad()),
        }
    }
    if !number.is_empty() || out.wall() < Duration::minutes(1) {
        return Err(bad());
    }
    Ok(out)
}

/// Reads a duration such as `45m`, `4h`, `1d`, `2w` or `1h 30m` (at least one minute) as
/// wall-clock time.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_target(text).map(|t| t.wall())
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
    pub first_response: BTreeMap<Priority, Target>,
    /// Time to resolution.
    pub resolution: BTreeMap<Priority, Target>,
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

/// Every department's targets (the configured defaults merged with its own) and calendar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaPolicy {
    /// Targets for departments that set none of their own.
    pub default: Targets,
    /// Each department's merged targets.
    pub departments: BTreeMap<String, Targets>,
    /// Each department's business hours and holidays (wall-clock time when absent).
    pub calendars: BTreeMap<String, Calendar>,
    /// Departments that want a warning when 80% of a target is used.
    pub warn: BTreeSet<String>,
}

/// The calendar of departments without business hours.
static WALL_CLOCK: Calendar = Calendar {
    hours: None,
    holidays: BTreeSet::new(),
};

impl SlaPolicy {
    /// The calendar `department`'s clocks run on.
    pub fn calendar(&self, department: &str) -> &Calendar {
        self.calendars.get(department).unwrap_or(&WALL_CLOCK)
    }

    /// The targets that apply to `department`.
    pub fn targets(&self, department: &str) -> &Targets {
        self.departments.get(department).unwrap_or(&self.default)
    }

    /// The first-response target for a ticket of `priority` in `department`, as clock time on
    /// the department's calendar.
    pub fn first_response(&self, department: &str, priority: Priority) -> Option<Duration> {
        let t = self.targets(department).first_response.get(&priority)?;
        Some(self.calendar(department).span(t))
    }

    /// The resolution target for a ticket of `priority` in `department`, as clock time on the
    /// department's calendar.
    pub fn resolution(&self, department: &str, priority: Priority) -> Option<Duration> {
        let t = self.targets(department).resolution.get(&priority)?;
        Some(self.calendar(department).span(t))
    }
}

/// A department's opening hours: the days it works and the local hours it is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    /// The zone the hours are in.
    pub timezone: Tz,
    /// Working days, Monday first.
    pub days: [bool; 7],
    /// Opening time.
    pub open: NaiveTime,
    /// Closing time (after `open`).
    pub close: NaiveTime,
}

/// Reads a list of weekdays such as `MON-FRI`, `MON,WED,FRI` or `SAT-SUN` (Monday first).
pub fn parse_days(text: &str) -> Result<[bool; 7], String> {
    const NAMES: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let bad =
        || format!("`{text}` is not a list of weekdays; write e.g. \"MON-FRI\" or \"MON,WED,FRI\"");
    let day = |s: &str| NAMES.iter().position(|n| n.eq_ignore_ascii_case(s.trim()));
    let mut days = [false; 7];
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a).ok_or_else(bad)?, day(b).ok_or_else(bad)?);
                if b < a {
                    return Err(bad());
                }
                for d in days.iter_mut().take(b + 1).skip(a) {
                    *d = true;
                }
            }
            None => days[day(part).ok_or_else(bad)?] = true,
        }
    }
    Ok(days)
}

/// When SLA clocks run: always (wall-clock time), or only in opening hours outside holidays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Opening hours; `None` counts every hour.
    pub hours: Option<BusinessHours>,
    /// Days closed all day, in the hours' zone.
    pub holidays: BTreeSet<NaiveDate>,
}

/// Longest search for opening hours: ten years of days.
const MAX_DAYS: i64 = 3660;

impl Calendar {
    /// The open intervals of each day from the one holding `from` on, in order.
    fn intervals(
        &self,
        hours: &BusinessHours,
        from: DateTime<Utc>,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let first = from.with_timezone(&hours.timezone).date_naive();
        let hours = hours.clone();
        (0..MAX_DAYS).filter_map(move |k| {
            let date = first + Duration::days(k);
            let weekday = date.weekday().num_days_from_monday() as usize;
            if !hours.days[weekday] || self.holidays.contains(&date) {
                return None;
            }
            let open = instant(date.and_time(hours.open), hours.timezone);
            let close = instant(date.and_time(hours.close), hours.timezone);
            (close > open).then_some((open, close))
        })
    }

    /// How much clock time `target` is on this calendar. Without business hours a day is 24
    /// hours and a week 7 days. With them a day is one working day's opening hours (9 hours
    /// for 09:00-18:00), so `1d` from Tuesday 10:00 is due Wednesday 10:00, and a week is the
    /// working days of one week (45 hours for MON-FRI 09:00-18:00).
    pub fn span(&self, target: &Target) -> Duration {
        let Some(hours) = &self.hours else {
            return target.wall();
        };
        let day = hours.close - hours.open;
        let working = hours.days.iter().filter(|d| **d).count() as i32;
        day * (target.days + target.weeks * working) + target.time
    }

    /// The moment `amount` of clock time has run after `start`.
    pub fn add(&self, start: DateTime<Utc>, amount: Duration) -> DateTime<Utc> {
        let Some(hours) = &self.hours else {
            return start + amount;
        };
        let mut left = amount;
        for (open, close) in self.intervals(hours, start) {
            let from = open.max(start);
            if from >= close {
                continue;
            }
            if close - from >= left {
                return from + left;
            }
            left -= close - from;
        }
        start + amount
    }

    /// Clock time that ran between `a` and `b` (zero when `b` is not after `a`).
    pub fn elapsed(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        if b <= a {
            return Duration::zero();
        }
        let Some(hours) = &self.hours else {
            return b - a;
        };
        let mut total = Duration::zero();
        for (open, close) in self.intervals(hours, a) {
            if open >= b {
                break;
            }
            let (from, to) = (open.max(a), close.min(b));
            if to > from {
                total += to - from;
            }
        }
        total
    }

    /// Whether the clock runs at `t`.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        self.elapsed(t, t + Duration::seconds(1)) > Duration::zero()
    }
}

/// Where one of a ticket's promises stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clock {
    /// Kept (answered or resolved in time).
    Met,
    /// Running; due at this moment.
    Running {
        /// When it falls due.
        due: DateTime<Utc>,
        /// Clock time left.
        left: Duration,
        /// Share of the target used, 0 to 1.
        used: f64,
    },
    /// Stopped while the ticket waits on the customer, with this much clock time left.
    Paused {
        /// Clock time left when it stopped.
        left: Duration,
    },
    /// Broken: due at `due`, late by `by` at the moment asked (or when it was kept late).
    Breached {
        /// When it fell due.
        due: DateTime<Utc>,
        /// How late.
        by: Duration,
    },
}

/// The first-response promise of a ticket opened at `created` and answered at `answered`, at
/// moment `now`.
pub fn first_response_clock(
    calendar: &Calendar,
    target: Duration,
    created: DateTime<Utc>,
    answered: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Clock {
    let due = calendar.add(created, target);
    match answered.filter(|a| *a <= now) {
        Some(a) if a <= due => Clock::Met,
        Some(a) => Clock::Breached { due, by: a - due },
        None => running(calendar, target, created, due, now, Duration::zero()),
    }
}

/// The resolution promise of a ticket opened at `created`, resolved at `resolved`, whose
/// clock was paused for `paused` of clock time in finished waits and is paused now if
/// `waiting_since` is set, at moment `now`.
pub fn resolution_clock(
    calendar: &Calendar,
    target: Duration,
    created: DateTime<Utc>,
    resolved: Option<DateTime<Utc>>,
    paused: Duration,
    waiting_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Clock {
    let due = calendar.add(created, target + paused);
    match resolved.filter(|r| *r <= now) {
        Some(r) if r <= due => Clock::Met,
        Some(r) => Clock::Breached { due, by: r - due },
        None => match waiting_since.filter(|w| *w <= now) {
            Some(w) => {
                let used = calendar.elapsed(created, w) - paused;
                // A promise is broken only once its deadline has passed: the deadline itself is
                // still in time.
                if used > target {
                    Clock::Breached { due, by: w - due }
                } else {
                    Clock::Paused {
                        left: target - used,
                    }
                }
            }
            None => running(calendar, target, created, due, now, paused),
        },
    }
}

/// What the clocks need to know about a ticket.
#[derive(Debug, Clone, Copy)]
pub struct TicketTimes {
    /// Opened.
    pub created: DateTime<Utc>,
    /// First response.
    pub answered: Option<DateTime<Utc>>,
    /// Resolved.
    pub resolved: Option<DateTime<Utc>>,
    /// Paused clock time in finished waits.
    pub paused: Duration,
    /// Waiting on the customer since.
    pub waiting_since: Option<DateTime<Utc>>,
}

impl SlaPolicy {
    /// The first-response and resolution clocks of a ticket of `priority` in `department` at
    /// `now`; `None` where the department promises nothing for that priority.
    pub fn clocks(
        &self,
        department: &str,
        priority: Priority,
        t: &TicketTimes,
        now: DateTime<Utc>,
    ) -> (Option<Clock>, Option<Clock>) {
        let calendar = self.calendar(department);
        (
            self.first_response(department, priority)
                .map(|target| first_response_clock(calendar, target, t.created, t.answered, now)),
            self.resolution(department, priority).map(|target| {
                resolution_clock(
                    calendar,
                    target,
                    t.created,
                    t.resolved,
                    t.paused,
                    t.waiting_since,
                    now,
                )
            }),
        )
    }

    /// The clock time a wait on the customer from `since` to `end` paused, counted on the
    /// calendar of the department the ticket is in when the wait ends. The desk adds it to the
    /// ticket's paused total; digests replaying the history add the same.
    pub fn wait_paused(
        &self,
        department: &str,
        since: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Duration {
        self.calendar(department).elapsed(since, end)
    }

    /// The zone `department`'s deadlines are shown in.
    pub fn zone(&self, department: &str) -> Tz {
        self.calendar(department)
            .hours
            .as_ref()
            .map_or(chrono_tz::UTC, |h| h.timezone)
    }
}

/// A clock as a person would say it: `due in 1h 20m (Mon 23 Nov 10:55 Europe/Berlin)`.
pub fn describe(clock: &Clock, tz: Tz) -> String {
    let at = |t: DateTime<Utc>| {
        format!(
            "{} {}",
            t.with_timezone(&tz).format("%a %d %b %H:%M"),
            tz.name()
        )
    };
    match clock {
        Clock::Met => "met".into(),
        Clock::Running { due, left, .. } => {
            format!("due in {} ({})", format_duration(*left), at(*due))
        }
        Clock::Paused { left } => format!(
            "paused while waiting on the customer; {} left",
            format_duration(*left)
        ),
        Clock::Breached { due, by } => {
            format!(
                "breached by {} (was due {})",
                format_duration(*by),
                at(*due)
            )
        }
    }
}

fn running(
    calendar: &Calendar,
    target: Duration,
    created: DateTime<Utc>,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    paused: Duration,
) -> Clock {
    // The deadline itself is still in time: a response at `due` meets the promise.
    if now > due {
        return Clock::Breached { due, by: now - due };
    }
    let used = calendar.elapsed(created, now) - paused;
    let secs = target.num_seconds().max(1) as f64;
    Clock::Running {
        due,
        left: target - used,
        used: (used.num_seconds() as f64 / secs).clamp(0.0, 1.0),
    }
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

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn office(days: &str, open: &str, close: &str, holidays: &[&str]) -> Calendar {
        Calendar {
            hours: Some(BusinessHours {
                timezone: chrono_tz::Europe::Berlin,
                days: parse_days(days).unwrap(),
                open: NaiveTime::parse_from_str(open, "%H:%M").unwrap(),
                close: NaiveTime::parse_from_str(close, "%H:%M").unwrap(),
            }),
            holidays: holidays
                .iter()
                .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap())
                .collect(),
        }
    }

    #[test]
    fn friday_evening_plus_two_business_hours_is_monday_morning() {
        let cal = office("MON-FRI", "09:00", "18:00", &[]);
        // Friday 20 Nov 2026 17:55 in Berlin (CET, UTC+1).
        let due = cal.add(utc("2026-11-20T16:55:00Z"), Duration::hours(2));
        assert_eq!(due, utc("2026-11-23T09:55:00Z"), "Monday 10:55 in Berlin");
        assert_eq!(
            cal.elapsed(utc("2026-11-20T16:55:00Z"), due),
            Duration::hours(2)
        );
        assert!(!cal.is_open(utc("2026-11-21T12:00:00Z")), "Saturday");
        // A holiday on the Monday moves it to Tuesday.
        let cal = office("MON-FRI", "09:00", "18:00", &["2026-11-23"]);
        let due = cal.add(utc("2026-11-20T16:55:00Z"), Duration::hours(2));
        assert_eq!(due, utc("2026-11-24T09:55:00Z"), "Tuesday 10:55");
        // Wall-clock time without hours.
        assert_eq!(
            Calendar::default().add(utc("2026-11-20T16:55:00Z"), Duration::hours(2)),
            utc("2026-11-20T18:55:00Z")
        );
        assert_eq!(
            parse_days("SAT-SUN").unwrap(),
            [false, false, false, false, false, true, true]
        );
        assert!(parse_days("FRI-MON").is_err());
        assert!(parse_days("weekdays").is_err());
    }

    #[test]
    fn a_day_of_a_target_is_a_working_day_where_there_are_business_hours() {
        let cal = office("MON-FRI", "09:00", "18:00", &["2026-11-26"]);
        let t = |s: &str| parse_target(s).unwrap();
        assert_eq!(cal.span(&t("1d")), Duration::hours(9));
        assert_eq!(cal.span(&t("1w")), Duration::hours(45), "five working days");
        assert_eq!(cal.span(&t("1d 2h")), Duration::hours(11));
        // Tuesday 24 Nov 10:00 in Berlin + one working day: Wednesday 10:00.
        let tue = utc("2026-11-24T09:00:00Z");
        assert_eq!(
            cal.add(tue, cal.span(&t("1d"))),
            utc("2026-11-25T09:00:00Z")
        );
        // Two working days skip Thursday's holiday: Friday 10:00.
        assert_eq!(
            cal.add(tue, cal.span(&t("2d"))),
            utc("2026-11-27T09:00:00Z")
        );
        // A week of working days: next Tuesday 10:00, plus the holiday's day: Wednesday.
        assert_eq!(
            cal.add(tue, cal.span(&t("1w"))),
            utc("2026-12-02T09:00:00Z")
        );
        // Opened after hours, one working day runs the whole next working day.
        let evening = utc("2026-11-24T19:00:00Z");
        assert_eq!(
            cal.add(evening, cal.span(&t("1d"))),
            utc("2026-11-25T17:00:00Z")
        );
        // Without business hours a day is 24 hours and a week 7 days.
        let wall = Calendar::default();
        assert_eq!(wall.span(&t("1d")), Duration::hours(24));
        assert_eq!(wall.span(&t("1w 1h")), Duration::hours(169));
    }

    #[test]
    fn the_deadline_itself_is_in_time_and_the_next_instant_is_late() {
        let cal = Calendar::default();
        let created = utc("2026-11-23T08:00:00Z");
        let target = Duration::hours(1);
        let due = utc("2026-11-23T09:00:00Z");
        let ms = Duration::milliseconds(1);
        assert!(matches!(
            first_response_clock(&cal, target, created, None, due),
            Clock::Running { .. }
        ));
        assert_eq!(
            first_response_clock(&cal, target, created, None, due + ms),
            Clock::Breached { due, by: ms }
        );
        assert_eq!(
            first_response_clock(&cal, target, created, Some(due), due + ms),
            Clock::Met
        );
        assert!(matches!(
            resolution_clock(&cal, target, created, None, Duration::zero(), None, due),
            Clock::Running { .. }
        ));
        // A wait that starts exactly at the deadline pauses a promise still kept.
        assert!(matches!(
            resolution_clock(
                &cal,
                target,
                created,
                None,
                Duration::zero(),
                Some(due),
                due + target
            ),
            Clock::Paused { .. }
        ));
        assert!(matches!(
            resolution_clock(
                &cal,
                target,
                created,
                None,
                Duration::zero(),
                Some(due + ms),
                due + target
            ),
            Clock::Breached { .. }
        ));
    }

    #[test]
    fn business_hours_across_daylight_saving_count_real_time() {
        // Open 01:00-04:00 every day. Berlin springs forward on 29 March at 02:00: that day is
        // open for 2 real hours (01:00 CET = 00:00Z to 04:00 CEST = 02:00Z).
        let cal = office("MON-SUN", "01:00", "04:00", &[]);
        let start = utc("2026-03-28T02:00:00Z"); // Saturday 03:00 CET: one hour left that day
        assert_eq!(
            cal.add(start, Duration::hours(3)),
            utc("2026-03-29T02:00:00Z")
        );
        assert_eq!(
            cal.elapsed(utc("2026-03-29T00:00:00Z"), utc("2026-03-29T12:00:00Z")),
            Duration::hours(2)
        );
        // It falls back on 25 October at 03:00: that day is open 4 real hours.
        assert_eq!(
            cal.elapsed(utc("2026-10-24T22:00:00Z"), utc("2026-10-25T12:00:00Z")),
            Duration::hours(4)
        );
    }

    #[test]
    fn waiting_on_the_customer_pauses_only_the_resolution_clock() {
        let cal = office("MON-FRI", "09:00", "18:00", &[]);
        let created = utc("2026-11-23T08:00:00Z"); // Monday 09:00
        let waiting = utc("2026-11-23T09:00:00Z"); // 10:00: 1h used
        let target = Duration::hours(4);
        match resolution_clock(
            &cal,
            target,
            created,
            None,
            Duration::zero(),
            Some(waiting),
            utc("2026-11-24T07:00:00Z"),
        ) {
            Clock::Paused { left } => assert_eq!(left, Duration::hours(3)),
            other => panic!("{other:?}"),
        }
        // The customer answers on Tuesday 09:00: 8 business hours were paused.
        let resumed = utc("2026-11-24T08:00:00Z");
        let paused = cal.elapsed(waiting, resumed);
        assert_eq!(paused, Duration::hours(8));
        match resolution_clock(&cal, target, created, None, paused, None, resumed) {
            Clock::Running { due, left, .. } => {
                assert_eq!(due, utc("2026-11-24T11:00:00Z"), "Tuesday 12:00");
                assert_eq!(left, Duration::hours(3));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            resolution_clock(
                &cal,
                target,
                created,
                None,
                paused,
                None,
                utc("2026-11-24T11:00:01Z")
            ),
            Clock::Breached { .. }
        ));
        // The first-response clock is not paused by waiting.
        assert_eq!(
            first_response_clock(&cal, Duration::hours(1), created, Some(waiting), resumed),
            Clock::Met
        );
    }

    #[test]
    fn a_departments_targets_override_the_defaults_per_priority() {
        let mut default = Targets::default();
        let t = |s: &str| parse_target(s).unwrap();
        default.first_response.insert(Priority::High, t("2h"));
        default.first_response.insert(Priority::Low, t("1d"));
        let mut own = Targets::default();
        own.first_response.insert(Priority::High, t("30m"));
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
