//! Digest figures: what leaders read about a period, per department and for the organisation,
//! next to the period before: volume, backlog, first-response and resolution times (median
//! and 90th percentile), SLA hit rates and breaches, CSAT, NPS, custom metrics, top tags, the
//! oldest open tickets and the period's shout-outs.
//!
//! Owns every definition (period boundaries, the percentile method, what counts as a first
//! response, when an SLA is met or breached) so they are applied identically whichever
//! database the rows came from, and the plain-text rendering. Pure computation over rows
//! already loaded; must not query storage or read the clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::message::{neutralize_mentions, truncate, Field, Message, Section as Part};
use super::sla::{self, SlaPolicy};
use super::ticket::Ticket;
use super::types::{Priority, TicketRef, UserRef};

/// The metric name whose samples are NPS survey answers (0-10).
pub const NPS_METRIC: &str = "nps";

/// How many breached and oldest-open tickets a section lists.
const LIST_LIMIT: usize = 5;

/// The parts of a ticket a digest needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestTicket {
    /// Reference.
    pub id: TicketRef,
    /// Title.
    pub title: String,
    /// Department.
    pub department: String,
    /// Priority.
    pub priority: Priority,
    /// Tags.
    pub tags: Vec<String>,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// First staff response the reporter could see.
    pub first_response_at: Option<DateTime<Utc>>,
    /// Resolved (cleared on reopen).
    pub resolved_at: Option<DateTime<Utc>>,
    /// Closed (cleared on reopen).
    pub closed_at: Option<DateTime<Utc>>,
    /// Waiting on the customer since (resolution clock paused).
    pub waiting_since: Option<DateTime<Utc>>,
    /// Clock time paused in finished waits.
    pub sla_paused: Duration,
    /// Who it is assigned to.
    pub assignee: Option<UserRef>,
}

impl DigestTicket {
    /// When the ticket stopped being active: resolved, else closed; `None` while active.
    pub fn done_at(&self) -> Option<DateTime<Utc>> {
        self.resolved_at.or(self.closed_at)
    }

    fn open_at(&self, t: DateTime<Utc>) -> bool {
        self.created_at <= t && self.done_at().is_none_or(|d| d > t)
    }
}

impl From<&Ticket> for DigestTicket {
    fn from(t: &Ticket) -> Self {
        Self {
            id: t.id,
            title: t.title.clone(),
            department: t.department.clone(),
            priority: t.priority,
            tags: t.tags.clone(),
            created_at: t.created_at,
            first_response_at: t.first_response_at,
            resolved_at: t.resolved_at,
            closed_at: t.closed_at,
            waiting_since: t.waiting_since,
            sla_paused: t.sla_paused,
            assignee: t.assignee.clone(),
        }
    }
}

/// A CSAT answer with its ticket's department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsatSample {
    /// The rated ticket's department.
    pub department: String,
    /// 1 to 5.
    pub score: u8,
    /// When it was given.
    pub at: DateTime<Utc>,
    /// Who the rated ticket is assigned to.
    pub assignee: Option<UserRef>,
}

/// A pushed metric value.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Metric name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Department, or `None` for the organisation.
    pub department: Option<String>,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// Everything a digest is computed from: tickets active in or created since the start of the
/// previous period, and CSAT answers and metric values recorded in both periods.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DigestInput {
    /// Tickets.
    pub tickets: Vec<DigestTicket>,
    /// CSAT answers.
    pub csat: Vec<CsatSample>,
    /// Metric values.
    pub metrics: Vec<MetricPoint>,
}

/// A period `(from, to]`: a moment belongs to the period that ends at or after it, so
/// consecutive periods never count anything twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Start (excluded).
    pub from: DateTime<Utc>,
    /// End (included).
    pub to: DateTime<Utc>,
    /// Start of the period before, which ends at `from`: a calendar period (a week across a
    /// clock change, a month) need not be as long as this one.
    #[serde(skip)]
    pub before: DateTime<Utc>,
}

impl Window {
    fn contains(&self, t: DateTime<Utc>) -> bool {
        t > self.from && t <= self.to
    }

    fn holds(&self, t: Option<DateTime<Utc>>) -> bool {
        t.is_some_and(|t| self.contains(t))
    }

    /// A period whose previous one is as long as it is.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Window {
        Window {
            from,
            to,
            before: from - (to - from),
        }
    }

    /// The period just before this one (ending where this one starts).
    pub fn previous(&self) -> Window {
        Window::new(self.before, self.from)
    }
}

mod secs {
    use chrono::Duration;
    use serde::Serializer;

    pub fn opt<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.num_seconds()),
            None => s.serialize_none(),
        }
    }

    pub fn one<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }
}

/// Median and 90th percentile of a set of durations (in seconds in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Percentiles {
    /// How many durations.
    pub count: usize,
    /// 50th percentile.
    #[serde(serialize_with = "secs::opt")]
    pub median: Option<Duration>,
    /// 90th percentile.
    #[serde(serialize_with = "secs::opt")]
    pub p90: Option<Duration>,
}

/// The nearest-rank percentile: the smallest value with at least `p`% of the values at or
/// below it (rank ⌈p/100 · n⌉ in ascending order). Always an observed value, and the same on
/// every database because it is computed here.
pub fn percentile(sorted: &[Duration], p: u32) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = (usize::try_from(p).unwrap_or(100) * n).div_ceil(100).max(1);
    sorted.get(rank.min(n) - 1).copied()
}

fn percentiles(mut v: Vec<Duration>) -> Percentiles {
    v.sort();
    Percentiles {
        count: v.len(),
        median: percentile(&v, 50),
        p90: percentile(&v, 90),
    }
}

/// How many promises were kept and broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SlaRate {
    /// Kept.
    pub met: usize,
    /// Broken.
    pub breached: usize,
}

impl SlaRate {
    /// The share kept, 0 to 1; `None` without any promise due.
    pub fn rate(&self) -> Option<f64> {
        let n = self.met + self.breached;
        (n > 0).then(|| self.met as f64 / n as f64)
    }
}

/// CSAT answers in the period.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct CsatFigures {
    /// Answers.
    pub count: usize,
    /// Mean score.
    pub average: Option<f64>,
    /// Answers per score, 1 to 5.
    pub spread: [usize; 5],
}

/// NPS from survey answers 0-10 in the period.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct NpsFigures {
    /// Answers.
    pub count: usize,
    /// 9-10.
    pub promoters: usize,
    /// 7-8.
    pub passives: usize,
    /// 0-6.
    pub detractors: usize,
    /// % promoters − % detractors, -100 to 100.
    pub score: Option<f64>,
}

/// The figures of one scope over one period.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Figures {
    /// Tickets opened in the period.
    pub opened: usize,
    /// Tickets resolved in the period.
    pub resolved: usize,
    /// Tickets open at the period's end.
    pub backlog: usize,
    /// Time from opening to first response, for first responses in the period.
    pub first_response: Percentiles,
    /// Time from opening to resolution, for resolutions in the period.
    pub resolution: Percentiles,
    /// First-response promises of tickets opened in the period.
    pub sla_first_response: SlaRate,
    /// Resolution promises of tickets opened in the period.
    pub sla_resolution: SlaRate,
    /// CSAT.
    pub csat: CsatFigures,
    /// NPS.
    pub nps: NpsFigures,
}

/// A ticket named in a digest, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketLine {
    /// Reference.
    pub id: TicketRef,
    /// Title (neutralised, shortened).
    pub title: String,
    /// Department.
    pub department: String,
    /// Priority.
    pub priority: Priority,
    /// How late (breaches) or how old (open tickets), at the period's end.
    #[serde(serialize_with = "secs::one")]
    pub by: Duration,
    /// What was missed, for breaches: `first response` or `resolution`.
    pub what: Option<String>,
}

/// A custom metric's latest value in the period and in the one before.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricLine {
    /// Name.
    pub name: String,
    /// Latest value in the period.
    pub latest: f64,
    /// Latest value in the previous period.
    pub previous: Option<f64>,
}

/// The digest of one scope: a department, or the organisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// Department name, or `None` for all departments the digest covers.
    pub department: Option<String>,
    /// This period.
    pub current: Figures,
    /// The period before.
    pub previous: Figures,
    /// Promises broken in the period, most overdue first.
    pub breached: Vec<TicketLine>,
    /// The oldest tickets open at the period's end.
    pub oldest_open: Vec<TicketLine>,
    /// Most used tags on tickets opened in the period.
    pub top_tags: Vec<(String, usize)>,
    /// Custom metrics.
    pub metrics: Vec<MetricLine>,
}

/// One shout-out line: who received kudos and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShoutOut {
    /// Receiver's display name.
    pub receiver: String,
    /// Giver's display name.
    pub giver: String,
    /// The reason (already neutralised).
    pub reason: String,
    /// The ticket it was for, e.g. `T-42`.
    pub ticket: Option<String>,
    /// The receiver's identity key: a person linked across platforms has one.
    pub receiver_key: String,
}

/// A whole digest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Schedule name.
    pub schedule: String,
    /// The period.
    pub window: Window,
    /// The period before, for comparison.
    pub previous: Window,
    /// The time zone dates are shown in.
    pub timezone: String,
    /// All covered departments together.
    pub overall: Section,
    /// Each covered department.
    pub departments: Vec<Section>,
    /// Kudos given in the period.
    pub shout_outs: Vec<ShoutOut>,
    /// Shout-outs earned from the figures.
    pub earned: Vec<Earned>,
    /// The period day by day, for the chart.
    pub days: Vec<Day>,
}

/// A shout-out earned from the data rather than given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Earned {
    /// What it is for: `Most tickets resolved`, `Best CSAT`, `Fastest first response`.
    pub title: String,
    /// Who earned it.
    pub who: String,
    /// The figure, as a person would say it.
    pub figure: String,
}

/// Who counts as one person: a stable key and a display name for an account (a person linked
/// across platforms has one key).
pub type People<'a> = &'a dyn Fn(&UserRef) -> (String, String);

/// Shout-outs earned in `w` by the people tickets of the `covered` departments are assigned
/// to: most resolved, best average CSAT and fastest median first response, each needing at
/// least `min_sample` tickets (or answers) so one lucky ticket does not win. Ties go to the
/// name first in alphabetical order.
pub fn earned(
    input: &DigestInput,
    covered: &[String],
    w: Window,
    min_sample: usize,
    people: People<'_>,
) -> Vec<Earned> {
    let mine = |d: &str| covered.iter().any(|c| c == d);
    let mut resolved: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut first: BTreeMap<String, (String, Vec<Duration>)> = BTreeMap::new();
    for t in input.tickets.iter().filter(|t| mine(&t.department)) {
        let Some(a) = &t.assignee else { continue };
        let (key, name) = people(a);
        if w.holds(t.resolved_at) {
            resolved.entry(key.clone()).or_insert((name.clone(), 0)).1 += 1;
        }
        if let Some(r) = t.first_response_at.filter(|r| w.contains(*r)) {
            first
                .entry(key)
                .or_insert((name, vec![]))
                .1
                .push(r - t.created_at);
        }
    }
    let mut csat: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    for c in input
        .csat
        .iter()
        .filter(|c| mine(&c.department) && w.contains(c.at))
    {
        let Some(a) = &c.assignee else { continue };
        let (key, name) = people(a);
        csat.entry(key).or_insert((name, vec![])).1.push(c.score);
    }
    let mut out = Vec::new();
    let best = resolved
        .values()
        .filter(|(_, n)| *n >= min_sample)
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
    if let Some((name, n)) = best {
        out.push(Earned {
            title: "Most tickets resolved".into(),
            who: name.clone(),
            figure: format!("{n} tickets"),
        });
    }
    let best = csat
        .values()
        .filter(|(_, v)| v.len() >= min_sample)
        .map(|(name, v)| {
            let avg = v.iter().map(|s| f64::from(*s)).sum::<f64>() / v.len() as f64;
            (name, avg, v.len())
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(a.0)));
    if let Some((name, avg, n)) = best {
        out.push(Earned {
            title: "Best CSAT".into(),
            who: name.clone(),
            figure: format!("{avg:.1} from {n} answers"),
        });
    }
    let best = first
        .values()
        .filter(|(_, v)| v.len() >= min_sample)
        .filter_map(|(name, v)| {
            let mut v = v.clone();
            v.sort();
            Some((name, percentile(&v, 50)?, v.len()))
        })
        .min_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
    if let Some((name, median, n)) = best {
        out.push(Earned {
            title: "Fastest first response".into(),
            who: name.clone(),
            figure: format!("median {} over {n} tickets", human_duration(Some(median))),
        });
    }
    out
}

/// What one ticket's promise came to by a moment.
enum Promise {
    Met,
    Breached(Duration),
    /// Not due yet, or no promise to judge.
    Open,
}

/// What a promise came to by `to`, given where its clock stands then. A ticket closed
/// without the promised response or resolution before it fell due promised nothing; closed
/// after, it was late by the time it was closed.
fn judge(
    clock: sla::Clock,
    kept: Option<DateTime<Utc>>,
    done_at: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
) -> Promise {
    let closed_without = kept.is_none_or(|k| k > to);
    match clock {
        sla::Clock::Met => Promise::Met,
        sla::Clock::Breached { due, by } => match done_at.filter(|d| closed_without && *d <= to) {
            Some(d) if d <= due => Promise::Open,
            Some(d) => Promise::Breached(d - due),
            None => Promise::Breached(by),
        },
        sla::Clock::Running { .. } | sla::Clock::Paused { .. } => Promise::Open,
    }
}

fn figures(
    tickets: &[&DigestTicket],
    csat: &[&CsatSample],
    nps: &[&MetricPoint],
    sla: &SlaPolicy,
    w: Window,
) -> (Figures, Vec<TicketLine>) {
    let mut f = Figures::default();
    // Lines are made only for the breaches listed, not for every one counted.
    let mut breaches: Vec<(Duration, &DigestTicket, &'static str)> = Vec::new();
    let mut first = Vec::new();
    let mut resolution = Vec::new();
    for t in tickets {
        let opened = w.contains(t.created_at);
        if opened {
            f.opened += 1;
        }
        if w.holds(t.resolved_at) {
            f.resolved += 1;
            if let Some(r) = t.resolved_at {
                resolution.push(r - t.created_at);
            }
        }
        if t.open_at(w.to) {
            f.backlog += 1;
        }
        if w.holds(t.first_response_at) {
            if let Some(r) = t.first_response_at {
                first.push(r - t.created_at);
            }
        }
        if !opened {
            continue;
        }
        let calendar = sla.calendar(&t.department);
        if let Some(target) = sla.first_response(&t.department, t.priority) {
            let clock = sla::first_response_clock(
                calendar,
                target,
                t.created_at,
                t.first_response_at,
                w.to,
            );
            match judge(clock, t.first_response_at, t.done_at(), w.to) {
                Promise::Met => f.sla_first_response.met += 1,
                Promise::Breached(by) => {
                    f.sla_first_response.breached += 1;
                    breaches.push((by, t, "first response"));
                }
                Promise::Open => {}
            }
        }
        if let Some(target) = sla.resolution(&t.department, t.priority) {
            let clock = sla::resolution_clock(
                calendar,
                target,
                t.created_at,
                t.resolved_at,
                t.sla_paused,
                t.waiting_since.filter(|s| *s <= w.to),
                w.to,
            );
            match judge(clock, t.resolved_at, t.done_at(), w.to) {
                Promise::Met => f.sla_resolution.met += 1,
                Promise::Breached(by) => {
                    f.sla_resolution.breached += 1;
                    breaches.push((by, t, "resolution"));
                }
                Promise::Open => {}
            }
        }
    }
    f.first_response = percentiles(first);
    f.resolution = percentiles(resolution);
    let scores: Vec<u8> = csat
        .iter()
        .filter(|c| w.contains(c.at))
        .map(|c| c.score)
        .collect();
    f.csat.count = scores.len();
    for s in &scores {
        if (1..=5).contains(s) {
            f.csat.spread[usize::from(*s) - 1] += 1;
        }
    }
    if !scores.is_empty() {
        f.csat.average =
            Some(scores.iter().map(|s| f64::from(*s)).sum::<f64>() / scores.len() as f64);
    }
    for p in nps.iter().filter(|p| w.contains(p.at)) {
        f.nps.count += 1;
        match p.value {
            v if v >= 9.0 => f.nps.promoters += 1,
            v if v >= 7.0 => f.nps.passives += 1,
            _ => f.nps.detractors += 1,
        }
    }
    if f.nps.count > 0 {
        let n = f.nps.count as f64;
        f.nps.score = Some(
            ((f.nps.promoters as f64 - f.nps.detractors as f64) / n * 100.0 * 10.0).round() / 10.0,
        );
    }
    breaches.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.0.cmp(&b.1.id.0)));
    let listed = breaches
        .iter()
        .take(LIST_LIMIT * 2)
        .map(|(by, t, what)| line(t, *by, Some(what)))
        .collect();
    (f, listed)
}

fn line(t: &DigestTicket, by: Duration, what: Option<&str>) -> TicketLine {
    TicketLine {
        id: t.id,
        title: truncate(&neutralize_mentions(&t.title), 80),
        department: t.department.clone(),
        priority: t.priority,
        by,
        what: what.map(str::to_string),
    }
}

fn section(
    department: Option<&str>,
    covered: &[String],
    input: &DigestInput,
    sla: &SlaPolicy,
    w: Window,
) -> Section {
    let in_scope = |d: &str| match department {
        Some(one) => d == one,
        None => covered.iter().any(|c| c == d),
    };
    let tickets: Vec<&DigestTicket> = input
        .tickets
        .iter()
        .filter(|t| in_scope(&t.department))
        .collect();
    let csat: Vec<&CsatSample> = input
        .csat
        .iter()
        .filter(|c| in_scope(&c.department))
        .collect();
    // NPS answers: a department's own, or every answer for the organisation.
    let nps: Vec<&MetricPoint> = input
        .metrics
        .iter()
        .filter(|m| m.name == NPS_METRIC)
        .filter(|m| department.is_none() || m.department.as_deref() == department)
        .collect();
    let (current, breached) = figures(&tickets, &csat, &nps, sla, w);
    let (previous, _) = figures(&tickets, &csat, &nps, sla, w.previous());
    let mut open: Vec<&&DigestTicket> = tickets.iter().filter(|t| t.open_at(w.to)).collect();
    open.sort_by_key(|t| (t.created_at, t.id.0));
    let oldest_open = open
        .iter()
        .take(LIST_LIMIT)
        .map(|t| line(t, w.to - t.created_at, None))
        .collect();
    let mut tags: BTreeMap<&str, usize> = BTreeMap::new();
    for t in tickets.iter().filter(|t| w.contains(t.created_at)) {
        for tag in &t.tags {
            *tags.entry(tag).or_default() += 1;
        }
    }
    let mut top_tags: Vec<(String, usize)> =
        tags.into_iter().map(|(t, n)| (t.to_string(), n)).collect();
    top_tags.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top_tags.truncate(LIST_LIMIT);
    Section {
        department: department.map(str::to_string),
        current,
        previous,
        breached,
        oldest_open,
        top_tags,
        metrics: metric_lines(&input.metrics, department, w),
    }
}

/// Each custom metric's latest value in the period (by recording time) and in the one
/// before; a department's section shows that department's values, the organisation's shows
/// values recorded without a department.
fn metric_lines(points: &[MetricPoint], department: Option<&str>, w: Window) -> Vec<MetricLine> {
    let prev = w.previous();
    let mut latest: BTreeMap<&str, (Option<&MetricPoint>, Option<&MetricPoint>)> = BTreeMap::new();
    for p in points
        .iter()
        .filter(|p| p.name != NPS_METRIC && p.department.as_deref() == department)
    {
        let slot = latest.entry(&p.name).or_default();
        let newer = |old: Option<&MetricPoint>| old.is_none_or(|o| p.at >= o.at);
        if w.contains(p.at) && newer(slot.0) {
            slot.0 = Some(p);
        } else if prev.contains(p.at) && newer(slot.1) {
            slot.1 = Some(p);
        }
    }
    latest
        .into_iter()
        .filter_map(|(name, (now, before))| {
            Some(MetricLine {
                name: name.to_string(),
                latest: now?.value,
                previous: before.map(|b| b.value),
            })
        })
        .collect()
}

/// Computes the digest for `w` over the `covered` departments, each next to the period before.
pub fn compute(
    schedule: &str,
    timezone: &str,
    covered: &[String],
    input: &DigestInput,
    sla: &SlaPolicy,
    w: Window,
    shout_outs: Vec<ShoutOut>,
) -> Report {
    Report {
        schedule: schedule.to_string(),
        window: w,
        previous: w.previous(),
        timezone: timezone.to_string(),
        overall: section(None, covered, input, sla, w),
        departments: covered
            .iter()
            .map(|d| section(Some(d), covered, input, sla, w))
            .collect(),
        shout_outs,
        earned: vec![],
        days: vec![],
    }
}

/// One local day of a period: tickets opened and resolved that day, and open at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    /// The day, in the digest's zone.
    pub date: chrono::NaiveDate,
    /// Opened that day.
    pub opened: usize,
    /// Resolved that day.
    pub resolved: usize,
    /// Open at the end of the day (or of the period, for its last day).
    pub backlog: usize,
}

/// The period day by day in `tz` (the first and last days cut at the period's edges), over
/// the `covered` departments: what the chart draws.
pub fn daily(input: &DigestInput, covered: &[String], w: Window, tz: chrono_tz::Tz) -> Vec<Day> {
    let tickets: Vec<&DigestTicket> = input
        .tickets
        .iter()
        .filter(|t| covered.contains(&t.department))
        .collect();
    let first = w.from.with_timezone(&tz).date_naive();
    let last = w.to.with_timezone(&tz).date_naive();
    let mut out = Vec::new();
    let mut date = first;
    while date <= last && out.len() < 400 {
        let start = super::cronexpr::instant(date.and_time(chrono::NaiveTime::MIN), tz).max(w.from);
        let next = date + Duration::days(1);
        let end = super::cronexpr::instant(next.and_time(chrono::NaiveTime::MIN), tz).min(w.to);
        if end > start {
            let day = Window::new(start, end);
            out.push(Day {
                date,
                opened: tickets
                    .iter()
                    .filter(|t| day.contains(t.created_at))
                    .count(),
                resolved: tickets.iter().filter(|t| day.holds(t.resolved_at)).count(),
                backlog: tickets.iter().filter(|t| t.open_at(end)).count(),
            });
        }
        date = next;
    }
    out
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

/// The change from `before` to `now` as `▲ 12%`, `▼ 5%`, `no change` or `new`.
pub fn change(now: f64, before: f64) -> String {
    if (now - before).abs() < f64::EPSILON {
        return "no change".into();
    }
    if before == 0.0 {
        return "new".into();
    }
    let pct = (now - before) / before.abs() * 100.0;
    let arrow = if pct > 0.0 { "▲" } else { "▼" };
    format!("{arrow} {:.0}%", pct.abs())
}

fn count_with_change(now: usize, before: usize) -> String {
    format!(
        "{now} ({}, from {before})",
        change(now as f64, before as f64)
    )
}

fn tickets(n: usize) -> String {
    if n == 1 {
        "1 ticket".into()
    } else {
        format!("{n} tickets")
    }
}

fn pct(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{:.0}%", r * 100.0))
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `1 answer`, `3 answers`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "median 45m, p90 1h 0m (3 tickets; before: median 20m)".
fn timing(now: &Percentiles, before: &Percentiles) -> String {
    format!(
        "median {}, p90 {} ({}; before: median {})",
        human_duration(now.median),
        human_duration(now.p90),
        tickets(now.count),
        human_duration(before.median)
    )
}

fn field(name: &str, value: String) -> Field {
    Field {
        name: name.into(),
        value,
    }
}

/// One department (or the whole organisation) as a titled part: the headline figures as
/// fields, then custom metrics, tags, breached and oldest tickets as text.
fn section_part(s: &Section, title: &str) -> Part {
    let c = &s.current;
    let p = &s.previous;
    let sla = |r: &SlaRate| {
        if r.met + r.breached == 0 {
            "n/a".to_string()
        } else {
            format!("{} ({} of {})", pct(r.rate()), r.met, r.met + r.breached)
        }
    };
    let fields = vec![
        field("Opened", count_with_change(c.opened, p.opened)),
        field("Resolved", count_with_change(c.resolved, p.resolved)),
        field("Open at the end", count_with_change(c.backlog, p.backlog)),
        field(
            "First response",
            timing(&c.first_response, &p.first_response),
        ),
        field("Resolution", timing(&c.resolution, &p.resolution)),
        field(
            "SLA met",
            format!(
                "first response {}, resolution {}",
                sla(&c.sla_first_response),
                sla(&c.sla_resolution)
            ),
        ),
        field(
            "CSAT",
            match c.csat.average {
                Some(avg) => format!(
                    "{avg:.1} from {} (1★ {} · 2★ {} · 3★ {} · 4★ {} · 5★ {}); before {}",
                    plural(c.csat.count, "answer", "answers"),
                    c.csat.spread[0],
                    c.csat.spread[1],
                    c.csat.spread[2],
                    c.csat.spread[3],
                    c.csat.spread[4],
                    p.csat.average.map_or("n/a".into(), |a| format!("{a:.1}"))
                ),
                None => "n/a (no answers)".into(),
            },
        ),
        field(
            "NPS",
            match c.nps.score {
                Some(score) => format!(
                    "{score:+.0} from {} ({}, {}, {}); before {}",
                    plural(c.nps.count, "answer", "answers"),
                    plural(c.nps.promoters, "promoter", "promoters"),
                    plural(c.nps.passives, "passive", "passives"),
                    plural(c.nps.detractors, "detractor", "detractors"),
                    p.nps.score.map_or("n/a".into(), |s| format!("{s:+.0}"))
                ),
                None => "n/a (no survey answers)".into(),
            },
        ),
    ];
    let mut out = String::new();
    if !s.metrics.is_empty() {
        let m: Vec<String> = s
            .metrics
            .iter()
            .map(|m| match m.previous {
                Some(b) => format!(
                    "{} {} ({}, from {})",
                    m.name,
                    number(m.latest),
                    change(m.latest, b),
                    number(b)
                ),
                None => format!("{} {}", m.name, number(m.latest)),
            })
            .collect();
        out.push_str(&format!("Metrics: {}\n", m.join(" · ")));
    }
    if !s.top_tags.is_empty() {
        let t: Vec<String> = s.top_tags.iter().map(|(t, n)| format!("{t} {n}")).collect();
        out.push_str(&format!("Top tags: {}\n", t.join(" · ")));
    }
    if !s.breached.is_empty() {
        out.push_str("Breached:\n");
        for b in s.breached.iter().take(LIST_LIMIT) {
            out.push_str(&format!(
                "• {} {} ({}, {}): {} {} late\n",
                b.id,
                b.title,
                b.department,
                b.priority,
                b.what.as_deref().unwrap_or("promise"),
                human_duration(Some(b.by))
            ));
        }
        if s.breached.len() > LIST_LIMIT {
            out.push_str(&format!("…and {} more\n", s.breached.len() - LIST_LIMIT));
        }
    }
    if !s.oldest_open.is_empty() {
        out.push_str("Oldest open:\n");
        for o in &s.oldest_open {
            out.push_str(&format!(
                "• {} {} ({}, {}): open {}\n",
                o.id,
                o.title,
                o.department,
                o.priority,
                human_duration(Some(o.by))
            ));
        }
    }
    Part {
        heading: title.to_string(),
        fields,
        text: out.trim_end().to_string(),
    }
}

/// "Most thanked: Bob (3)" when someone was thanked more than once; accounts linked to one
/// person count together.
fn most_thanked(shout_outs: &[ShoutOut]) -> Option<String> {
    let mut counts: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for s in shout_outs {
        counts.entry(&s.receiver_key).or_insert((0, &s.receiver)).0 += 1;
    }
    let top = counts.values().map(|(n, _)| *n).max().filter(|n| *n > 1)?;
    let names: Vec<&str> = counts
        .values()
        .filter(|(n, _)| *n == top)
        .map(|(_, name)| *name)
        .collect();
    let each = if names.len() > 1 { " each" } else { "" };
    Some(format!("Most thanked: {} ({top}{each})", names.join(", ")))
}

/// Renders a report as a neutral message: headline numbers as fields, every section and the
/// shout-outs as text, with dates in the schedule's time zone.
pub fn render(r: &Report, tz: chrono_tz::Tz) -> Message {
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%a %d %b %Y %H:%M");
    let c = &r.overall.current;
    let p = &r.overall.previous;
    let fields = vec![
        Field {
            name: "Opened".into(),
            value: count_with_change(c.opened, p.opened),
        },
        Field {
            name: "Resolved".into(),
            value: count_with_change(c.resolved, p.resolved),
        },
        Field {
            name: "Open at the end".into(),
            value: count_with_change(c.backlog, p.backlog),
        },
        Field {
            name: "Median first response".into(),
            value: human_duration(c.first_response.median),
        },
        Field {
            name: "Median resolution".into(),
            value: human_duration(c.resolution.median),
        },
        Field {
            name: "SLA met (first response)".into(),
            value: pct(c.sla_first_response.rate()),
        },
        Field {
            name: "CSAT".into(),
            value: c.csat.average.map_or("n/a".into(), |a| format!("{a:.1}")),
        },
        Field {
            name: "NPS".into(),
            value: c.nps.score.map_or("n/a".into(), |s| format!("{s:+.0}")),
        },
    ];
    let mut sections = Vec::new();
    if r.departments.len() > 1 {
        sections.push(section_part(&r.overall, "All departments"));
    }
    for d in &r.departments {
        sections.push(section_part(d, d.department.as_deref().unwrap_or("all")));
    }
    if !r.earned.is_empty() {
        let lines: Vec<String> = r
            .earned
            .iter()
            .map(|e| format!("• {}: {} ({})", e.title, e.who, e.figure))
            .collect();
        sections.push(Part {
            heading: "Earned this period".into(),
            fields: vec![],
            text: lines.join("\n"),
        });
    }
    let mut thanks = String::new();
    if r.shout_outs.is_empty() {
        thanks.push_str("None this period. Thank someone with `/kudos @name why`.");
    } else {
        for s in r.shout_outs.iter().take(10) {
            let about = s
                .ticket
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            thanks.push_str(&format!(
                "• {} (from {}): {}{about}\n",
                s.receiver, s.giver, s.reason
            ));
        }
        if r.shout_outs.len() > 10 {
            thanks.push_str(&format!("…and {} more.\n", r.shout_outs.len() - 10));
        }
        if let Some(line) = most_thanked(&r.shout_outs) {
            thanks.push_str(&line);
        }
    }
    sections.push(Part {
        heading: "Shout-outs".into(),
        fields: vec![],
        text: thanks.trim_end().to_string(),
    });
    Message {
        title: Some(format!(
            "Digest `{}`: {} to {} ({}), compared with the period before",
            r.schedule,
            local(r.window.from),
            local(r.window.to),
            r.timezone
        )),
        full_view: Some(format!(
            "Everything: `/digest preview {name}` in chat, or `switchboard digest preview --schedule {name} --at {at}`.",
            name = r.schedule,
            at = r.window.to.format("%Y-%m-%dT%H:%M:%SZ")
        )),
        text: String::new(),
        fields,
        sections,
        buttons: vec![],
        link: None,
        mentions: vec![],
        attachment: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_thanked_counts_a_linked_person_once_and_needs_two() {
        let k = |name: &str, key: &str| ShoutOut {
            receiver: name.into(),
            giver: "Alice".into(),
            reason: "help".into(),
            ticket: None,
            receiver_key: key.into(),
        };
        // Bob's Slack and Discord accounts share one identity key.
        let two = [
            k("Bob", "person:bob"),
            k("Bob", "person:bob"),
            k("Carol", "slack:UC"),
        ];
        assert_eq!(most_thanked(&two).as_deref(), Some("Most thanked: Bob (2)"));
        assert_eq!(most_thanked(&two[1..]), None, "once each is no standout");
        let tie = [
            k("Bob", "person:bob"),
            k("Bob", "person:bob"),
            k("Carol", "slack:UC"),
            k("Carol", "slack:UC"),
        ];
        assert_eq!(
            most_thanked(&tie).as_deref(),
            Some("Most thanked: Bob, Carol (2 each)")
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=10).map(Duration::minutes).collect();
        assert_eq!(percentile(&v, 50), Some(Duration::minutes(5)));
        assert_eq!(percentile(&v, 90), Some(Duration::minutes(9)));
        assert_eq!(percentile(&v[..1], 90), Some(Duration::minutes(1)));
        assert_eq!(percentile(&v[..3], 50), Some(Duration::minutes(2)));
        assert_eq!(
            percentile(&v[..4], 50),
            Some(Duration::minutes(2)),
            "lower middle"
        );
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn changes_read_like_a_person_wrote_them() {
        assert_eq!(change(112.0, 100.0), "▲ 12%");
        assert_eq!(change(95.0, 100.0), "▼ 5%");
        assert_eq!(change(3.0, 3.0), "no change");
        assert_eq!(change(3.0, 0.0), "new");
        assert_eq!(human_duration(None), "n/a");
        assert_eq!(human_duration(Some(Duration::seconds(20))), "under 1m");
        assert_eq!(human_duration(Some(Duration::minutes(192))), "3h 12m");
        assert_eq!(human_duration(Some(Duration::hours(52))), "2d 4h");
    }
}
