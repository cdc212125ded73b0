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
use super::sla::SlaPolicy;
use super::ticket::{Origin, Ticket};
use super::types::{Priority, Status, TicketRef, UserRef};

/// The metric name whose samples are NPS survey answers (0-10).
pub const NPS_METRIC: &str = "nps";

/// From this many tickets on, a digest's work is split across two threads (below it, starting
/// a thread costs more than it saves).
const PARALLEL_FROM: usize = 4_000;

/// How many breached and oldest-open tickets a section lists.
const LIST_LIMIT: usize = 5;

/// One change in a ticket's history that digest figures follow, read from its audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The status changed.
    Status {
        /// The new status.
        to: Status,
        /// Made by another system or a timer, not a person (e.g. resolved because the
        /// monitoring alert that opened it resolved).
        automated: bool,
    },
    /// Moved to another department.
    Department {
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// The priority changed.
    Priority {
        /// Before.
        from: Priority,
        /// After.
        to: Priority,
    },
    /// The assignee changed.
    Assignee {
        /// Before.
        from: Option<UserRef>,
        /// After.
        to: Option<UserRef>,
    },
}

/// The parts of a ticket a digest needs: its row as it is now and the history that says how
/// it stood at any earlier moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestTicket {
    /// Reference.
    pub id: TicketRef,
    /// Title.
    pub title: String,
    /// Department now.
    pub department: String,
    /// Priority now.
    pub priority: Priority,
    /// Tags (set when the ticket is opened).
    pub tags: Vec<String>,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// First staff response the reporter could see (set once).
    pub first_response_at: Option<DateTime<Utc>>,
    /// Resolved (cleared on reopen).
    pub resolved_at: Option<DateTime<Utc>>,
    /// Closed (cleared on reopen).
    pub closed_at: Option<DateTime<Utc>>,
    /// Waiting on the customer since (resolution clock paused).
    pub waiting_since: Option<DateTime<Utc>>,
    /// Clock time paused in finished waits.
    pub sla_paused: Duration,
    /// Who it is assigned to now.
    pub assignee: Option<UserRef>,
    /// How it came to be.
    pub origin: Origin,
    /// Its changes of status, department, priority and assignee, oldest first. A ticket
    /// without any recorded status change is read from its row's times instead.
    pub history: Vec<(DateTime<Utc>, Step)>,
}

impl DigestTicket {
    /// The status changes a ticket recorded without any (rows written by hand or by an
    /// import) is taken to have had, from its row's times.
    fn implied(&self) -> Vec<(DateTime<Utc>, Status)> {
        let mut implied: Vec<(DateTime<Utc>, Status)> = [
            self.waiting_since.map(|t| (t, Status::WaitingOnCustomer)),
            self.resolved_at.map(|t| (t, Status::Resolved)),
            self.closed_at.map(|t| (t, Status::Closed)),
        ]
        .into_iter()
        .flatten()
        .collect();
        implied.sort_by_key(|(t, s)| (*t, *s));
        implied
    }
}

impl From<&Ticket> for DigestTicket {
    /// The row alone, without history: figures read it from its times.
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
            origin: t.origin,
            history: vec![],
        }
    }
}

/// A CSAT answer with its ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsatSample {
    /// The rated ticket.
    pub ticket: TicketRef,
    /// The rated ticket's department now (its department at a period's end is taken from its
    /// history when the digest read it).
    pub department: String,
    /// 1 to 5.
    pub score: u8,
    /// When it was given.
    pub at: DateTime<Utc>,
    /// Who the rated ticket is assigned to now (likewise).
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
    /// When it was measured: the period it counts in.
    pub at: DateTime<Utc>,
    /// When it arrived: it counts in a period only if it had arrived by the period's end.
    pub received_at: DateTime<Utc>,
}

impl MetricPoint {
    /// Whether it counts in `w`: measured in it and arrived by its end, so a value sent late
    /// for a past period never changes what a digest of that period said.
    fn counts_in(&self, w: Window) -> bool {
        w.contains(self.at) && self.received_at <= w.to
    }
}

/// What the knowledge base did for a ticket, as its audit log recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KbWhat {
    /// Articles were suggested when it opened; none passed the relevance rule when empty.
    Suggested(Vec<String>),
    /// An article answered it ("This solved it").
    Answered(String),
    /// The suggested articles were not what was needed.
    NotHelpful(Vec<String>),
}

/// One knowledge-base entry of a ticket's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbEvent {
    /// The ticket.
    pub ticket: TicketRef,
    /// The ticket's department now (at the moment of the entry it is taken from the ticket's
    /// history when the digest read it).
    pub department: String,
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub what: KbWhat,
    /// For a suggestion where none passed, in the digest's own period: the words of the
    /// ticket's title and body a reader would call its topic, each once, as `(stem, word)`
    /// (filled by the caller, which owns the knowledge base's language rules; empty
    /// otherwise).
    pub words: Vec<(String, String)>,
    /// For a suggestion where none passed: the ticket's title and body, to take `words` from.
    pub text: Option<String>,
}

/// Everything a digest is computed from: tickets active in or created since the start of the
/// previous period (with their history), and CSAT answers, metric values and knowledge-base
/// entries of both periods that had arrived by the period's end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DigestInput {
    /// Tickets.
    pub tickets: Vec<DigestTicket>,
    /// CSAT answers.
    pub csat: Vec<CsatSample>,
    /// Metric values.
    pub metrics: Vec<MetricPoint>,
    /// The knowledge base's suggestions, answers and refusals.
    pub knowledge: Vec<KbEvent>,
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
    /// Whether `t` is in the period: after its start, up to and including its end.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t > self.from && t <= self.to
    }

    /// Whether an outcome decided at `at` falls in this period. A deadline passing is decided
    /// in the first instant after it (`after`): a response at the deadline is still in time,
    /// so a deadline exactly at the end breaks its promise in the next period.
    fn decides(&self, at: DateTime<Utc>, after: bool) -> bool {
        if after {
            at >= self.from && at < self.to
        } else {
            self.contains(at)
        }
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
    sorted.get(nearest_rank(sorted.len(), p)?).copied()
}

/// Where the `p`th nearest-rank percentile of `n` values is in ascending order (0-based), or
/// `None` for no values.
fn nearest_rank(n: usize, p: u32) -> Option<usize> {
    let rank = (usize::try_from(p).unwrap_or(100) * n).div_ceil(100).max(1);
    (n > 0).then(|| rank.min(n) - 1)
}

fn percentiles(mut v: Vec<Duration>) -> Percentiles {
    // Only two ranks are needed: each is selected in linear time rather than sorting every
    // duration (a whole organisation's period has tens of thousands).
    let n = v.len();
    let mut at = |p: u32| Some(*v.select_nth_unstable(nearest_rank(n, p)?).1);
    let median = at(50);
    let p90 = at(90);
    Percentiles {
        count: n,
        median,
        p90,
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
    /// Resolutions in the period (a ticket reopened and resolved again counts again).
    pub resolved: usize,
    /// Tickets open at the period's end.
    pub backlog: usize,
    /// Time from opening to first response, for first responses in the period.
    pub first_response: Percentiles,
    /// Time from opening to resolution, for resolutions in the period.
    pub resolution: Percentiles,
    /// First-response promises decided in the period: kept by a response in it, or broken by a
    /// deadline passing in it.
    pub sla_first_response: SlaRate,
    /// Resolution promises decided in the period, likewise.
    pub sla_resolution: SlaRate,
    /// CSAT.
    pub csat: CsatFigures,
    /// NPS.
    pub nps: NpsFigures,
    /// Tickets other systems opened and resolutions automation made.
    pub automation: AutomationFigures,
}

/// What other systems (the tickets API, Alertmanager, Grafana) and timers did in a period.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AutomationFigures {
    /// Tickets they opened in the period.
    pub opened: usize,
    /// The same by origin (`api`, `alertmanager`, `grafana`), each present one listed.
    pub by_origin: BTreeMap<Origin, usize>,
    /// Resolutions in the period made by automation rather than a person: a monitoring alert
    /// resolving with `resolve_when_source_resolves`, or an API client's status change.
    pub auto_resolved: usize,
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

/// What the knowledge base did in one period, for the covered departments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct KnowledgeFigures {
    /// Tickets opened with at least one article suggested.
    pub suggested: usize,
    /// Tickets opened for which no article passed the relevance rule.
    pub unmatched: usize,
    /// Tickets an article answered ("This solved it").
    pub answered: usize,
    /// Tickets whose suggestions were marked "Not what I need".
    pub not_helpful: usize,
}

/// How much one article was used in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArticleUse {
    /// The article's name.
    pub article: String,
    /// Tickets it answered.
    pub answered: usize,
    /// Tickets it was suggested for.
    pub suggested: usize,
}

/// The digest's knowledge part: what articles did, and what to write next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnowledgeReport {
    /// This period.
    pub current: KnowledgeFigures,
    /// The period before.
    pub previous: KnowledgeFigures,
    /// The most used articles: most tickets answered, then most suggested.
    pub most_used: Vec<ArticleUse>,
    /// Articles marked "Not what I need", with on how many tickets, most first.
    pub not_helpful: Vec<(String, usize)>,
    /// The most frequent words of the tickets no article passed the rule for, with in how
    /// many of them: the articles to write next.
    pub gaps: Vec<(String, usize)>,
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
    /// The knowledge base's part; none when it did nothing in either period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<KnowledgeReport>,
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
pub type People<'a> = &'a (dyn Fn(&UserRef) -> (String, String) + Sync);

/// Where a ticket stood from one moment on, as its history says.
#[derive(Debug, Clone)]
struct State<'a> {
    status: Status,
    department: &'a str,
    priority: Priority,
    assignee: Option<&'a UserRef>,
    /// The wait on the customer in progress, if any.
    waiting_since: Option<DateTime<Utc>>,
    /// Clock time paused in finished waits.
    paused: Duration,
}

/// Which promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Promised {
    FirstResponse,
    Resolution,
}

impl Promised {
    fn name(self) -> &'static str {
        match self {
            Promised::FirstResponse => "first response",
            Promised::Resolution => "resolution",
        }
    }
}

/// How a promise was decided: kept or broken, once, at one moment.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    promise: Promised,
    met: bool,
    /// When it was decided: the response (or resolution), or the deadline passing.
    at: DateTime<Utc>,
    /// Decided just after `at` (a deadline passing), not at it.
    after: bool,
    /// The deadline.
    due: DateTime<Utc>,
    /// When a broken promise stopped growing later: kept late, or the ticket done without it.
    ended: Option<DateTime<Utc>>,
}

impl Outcome {
    /// How late a broken promise was at `to`: from the deadline to the late response (or
    /// resolution, or the ticket's end), or to `to` while still missing.
    fn late_by(&self, to: DateTime<Utc>) -> Duration {
        self.ended.map_or(to, |e| e.min(to)) - self.due
    }
}

/// What one change sets.
#[derive(Debug, Clone, Copy)]
enum Set<'a> {
    /// The new status, and whether a person made the change (false) or automation (true).
    Status(Status, bool),
    Department(&'a str),
    Priority(Priority),
    Assignee(Option<&'a UserRef>),
}

/// One ticket's life: its states in order, its resolutions, and its promises' outcomes.
struct Life<'a> {
    t: &'a DigestTicket,
    /// Each state with the moment it began, oldest first; the first begins at opening.
    states: Vec<(DateTime<Utc>, State<'a>)>,
    /// Every moment it was resolved (a reopened ticket can be resolved again).
    resolutions: Vec<DateTime<Utc>>,
    /// The resolutions another system or a timer made (a subset of `resolutions`).
    auto_resolutions: Vec<DateTime<Utc>>,
    /// Its promises' outcomes (first response, resolution), each decided once.
    outcomes: [Option<Outcome>; 2],
    /// The moments every figure asks about most (the period's end and start) with the index
    /// of the state at each, found once instead of in every pass.
    ends: [(DateTime<Utc>, usize); 2],
}

impl<'a> Life<'a> {
    fn new(t: &'a DigestTicket, sla: &SlaPolicy, w: Window) -> Life<'a> {
        let first_dept = t.history.iter().find_map(|(_, s)| match s {
            Step::Department { from, .. } => Some(from.as_str()),
            _ => None,
        });
        let first_prio = t.history.iter().find_map(|(_, s)| match s {
            Step::Priority { from, .. } => Some(*from),
            _ => None,
        });
        let first_assignee = t.history.iter().find_map(|(_, s)| match s {
            Step::Assignee { from, .. } => Some(from.as_ref()),
            _ => None,
        });
        let mut start = State {
            status: Status::Open,
            department: first_dept.unwrap_or(&t.department),
            priority: first_prio.unwrap_or(t.priority),
            assignee: first_assignee.unwrap_or(t.assignee.as_ref()),
            waiting_since: None,
            paused: Duration::zero(),
        };
        // Every change as what it sets, in time order (the log's order, which is time order
        // unless a clock went back). A ticket recorded without status changes is read from
        // its row's times; without recorded waits only their total is known.
        let recorded = t
            .history
            .iter()
            .any(|(_, s)| matches!(s, Step::Status { .. }));
        let mut changes: Vec<(DateTime<Utc>, Set<'a>)> = t
            .history
            .iter()
            .map(|(at, s)| {
                let set = match s {
                    Step::Status { to, automated } => Set::Status(*to, *automated),
                    Step::Department { to, .. } => Set::Department(to),
                    Step::Priority { to, .. } => Set::Priority(*to),
                    Step::Assignee { to, .. } => Set::Assignee(to.as_ref()),
                };
                (*at, set)
            })
            .collect();
        if !recorded {
            start.paused = t.sla_paused;
            changes.extend(
                t.implied()
                    .into_iter()
                    .map(|(at, to)| (at, Set::Status(to, false))),
            );
        }
        if !changes.is_sorted_by_key(|(at, _)| *at) {
            changes.sort_by_key(|(at, _)| *at);
        }
        let mut states = Vec::with_capacity(changes.len() + 1);
        states.push((t.created_at, start));
        let mut resolutions = Vec::new();
        let mut auto_resolutions = Vec::new();
        for (at, set) in changes {
            let Some((_, prev)) = states.last() else {
                break;
            };
            let mut next = prev.clone();
            match set {
                Set::Department(to) => next.department = to,
                Set::Priority(to) => next.priority = to,
                Set::Assignee(to) => next.assignee = to,
                Set::Status(to, automated) => {
                    // A finished wait adds its clock time, as the desk adds it.
                    if let (Some(since), false) =
                        (prev.waiting_since, to == Status::WaitingOnCustomer)
                    {
                        next.paused += sla.wait_paused(prev.department, since, at);
                        next.waiting_since = None;
                    }
                    if to == Status::WaitingOnCustomer && prev.waiting_since.is_none() {
                        next.waiting_since = Some(at);
                    }
                    if to == Status::Resolved {
                        resolutions.push(at);
                        if automated {
                            auto_resolutions.push(at);
                        }
                    }
                    next.status = to;
                }
            }
            states.push((at.max(t.created_at), next));
        }
        let ends = [
            (w.to, state_index(&states, w.to)),
            (w.from, state_index(&states, w.from)),
        ];
        let mut life = Life {
            t,
            states,
            resolutions,
            auto_resolutions,
            outcomes: [None, None],
            ends,
        };
        life.outcomes = [
            life.decide(Promised::FirstResponse, sla),
            life.decide(Promised::Resolution, sla),
        ];
        life
    }

    /// The state at `when` (after every change up to and at it); the first state before the
    /// ticket existed.
    fn at(&self, when: DateTime<Utc>) -> &State<'a> {
        let i = match self.ends.iter().find(|(t, _)| *t == when) {
            Some((_, i)) => *i,
            None => state_index(&self.states, when),
        };
        &self.states[i].1
    }

    fn department_at(&self, when: DateTime<Utc>) -> &'a str {
        self.at(when).department
    }

    fn open_at(&self, when: DateTime<Utc>) -> bool {
        self.t.created_at <= when && self.at(when).status.is_active()
    }

    /// Decides a promise from the history, state by state, the way the live clock would have
    /// seen it at each moment: kept when the response (resolution) came by the deadline of the
    /// state it came in; broken in the first instant after a deadline passed while the clock
    /// ran (it does not run once the ticket is done, nor, for resolution, while it waits on the
    /// customer); nothing when the ticket was done without it before any deadline passed or
    /// no target applied when it came. Later changes never revisit an outcome.
    fn decide(&self, promise: Promised, sla: &SlaPolicy) -> Option<Outcome> {
        let created = self.t.created_at;
        let kept = match promise {
            Promised::FirstResponse => self.t.first_response_at,
            Promised::Resolution => self.resolutions.first().copied(),
        };
        for (i, (start, st)) in self.states.iter().enumerate() {
            let end = self.states.get(i + 1).map(|(at, _)| *at);
            let kept_here = kept.filter(|k| end.is_none_or(|e| *k < e));
            let calendar = sla.calendar(st.department);
            let due = match promise {
                Promised::FirstResponse => sla
                    .first_response(st.department, st.priority)
                    .map(|target| calendar.add(created, target)),
                Promised::Resolution => sla
                    .resolution(st.department, st.priority)
                    .map(|target| calendar.add(created, target + st.paused)),
            };
            let done = !st.status.is_active();
            let waiting = st.status == Status::WaitingOnCustomer;
            let runs = !(done || promise == Promised::Resolution && waiting);
            if let Some(due) = due {
                let limit = kept_here.or(end);
                if runs && limit.is_none_or(|l| due < l) {
                    let (at, after) = if due >= *start {
                        (due, true)
                    } else {
                        (*start, false)
                    };
                    let ended = kept.or_else(|| {
                        self.states
                            .iter()
                            .find(|(s, st)| *s >= at && !st.status.is_active())
                            .map(|(s, _)| *s)
                    });
                    return Some(Outcome {
                        promise,
                        met: false,
                        at,
                        after,
                        due,
                        ended,
                    });
                }
            }
            if let Some(k) = kept_here {
                return due.map(|due| Outcome {
                    promise,
                    met: k <= due,
                    at: k,
                    after: false,
                    due,
                    ended: Some(k),
                });
            }
            if done {
                return None;
            }
        }
        None
    }
}

/// Where in `states` (oldest first) the state at `when` is: the last that began at or before
/// it, or the first when none had.
fn state_index(states: &[(DateTime<Utc>, State<'_>)], when: DateTime<Utc>) -> usize {
    states
        .partition_point(|(s, _)| *s <= when)
        .saturating_sub(1)
}

/// Every ticket's life, and where to find one by reference.
struct Lives<'a> {
    all: Vec<Life<'a>>,
    by_id: std::collections::HashMap<TicketRef, usize>,
}

impl<'a> Lives<'a> {
    /// Every ticket's life; with `split`, half of them are built on another thread.
    fn new(input: &'a DigestInput, sla: &SlaPolicy, w: Window, split: bool) -> Lives<'a> {
        let build = |tickets: &'a [DigestTicket]| -> Vec<Life<'a>> {
            tickets.iter().map(|t| Life::new(t, sla, w)).collect()
        };
        let all: Vec<Life<'a>> = if !split {
            build(&input.tickets)
        } else {
            // A whole organisation's history: half on another core.
            let (a, b) = input.tickets.split_at(input.tickets.len() / 2);
            std::thread::scope(|s| {
                let second = s.spawn(|| build(b));
                let mut all = build(a);
                all.extend(joined(second));
                all
            })
        };
        let by_id = all.iter().enumerate().map(|(i, l)| (l.t.id, i)).collect();
        Lives { all, by_id }
    }

    /// A CSAT answer's department and assignee at `when`: from its ticket's history when the
    /// digest read it, else its row (a ticket the digest did not read has not changed since
    /// before the previous period began: it was done by then and never reopened).
    fn rated(&self, c: &'a CsatSample, when: DateTime<Utc>) -> (&'a str, Option<&'a UserRef>) {
        match self.by_id.get(&c.ticket).and_then(|i| self.all.get(*i)) {
            Some(l) => {
                let st = l.at(when);
                (st.department, st.assignee)
            }
            None => (&c.department, c.assignee.as_ref()),
        }
    }
}

/// Shout-outs earned in `w` by the people tickets of the `covered` departments are assigned
/// to: most resolved, best average CSAT and fastest median first response, each needing at
/// least `min_sample` tickets (or answers) so one lucky ticket does not win. Ties go to the
/// name first in alphabetical order. Department and assignee are as they stood at the end.
pub fn earned(
    input: &DigestInput,
    sla: &SlaPolicy,
    covered: &[String],
    w: Window,
    min_sample: usize,
    people: People<'_>,
) -> Vec<Earned> {
    earned_from(
        &Lives::new(input, sla, w, false),
        &input.csat,
        covered,
        w,
        min_sample,
        people,
    )
}

fn earned_from(
    lives: &Lives<'_>,
    csat_in: &[CsatSample],
    covered: &[String],
    w: Window,
    min_sample: usize,
    people: People<'_>,
) -> Vec<Earned> {
    let mine = |d: &str| covered.iter().any(|c| c == d);
    // A few people work many tickets: each account is looked up once.
    let mut known: std::collections::HashMap<&UserRef, (String, String)> =
        std::collections::HashMap::new();
    let mut person = |a| known.entry(a).or_insert_with(|| people(a)).clone();
    let mut resolved: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut first: BTreeMap<String, (String, Vec<Duration>)> = BTreeMap::new();
    for l in &lives.all {
        let st = l.at(w.to);
        if !mine(st.department) {
            continue;
        }
        let Some(a) = st.assignee else { continue };
        let n = l.resolutions.iter().filter(|r| w.contains(**r)).count();
        let answered = l.t.first_response_at.filter(|r| w.contains(*r));
        if n == 0 && answered.is_none() {
            continue;
        }
        let (key, name) = person(a);
        if n > 0 {
            resolved.entry(key.clone()).or_insert((name.clone(), 0)).1 += n;
        }
        if let Some(r) = answered {
            first
                .entry(key)
                .or_insert((name, vec![]))
                .1
                .push(r - l.t.created_at);
        }
    }
    let mut csat: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    for c in csat_in.iter().filter(|c| w.contains(c.at)) {
        let (dept, assignee) = lives.rated(c, w.to);
        if !mine(dept) {
            continue;
        }
        let Some(a) = assignee else { continue };
        let (key, name) = person(a);
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

/// Which departments a section counts.
#[derive(Clone, Copy)]
enum Scope<'a> {
    One(&'a str),
    All(&'a [String]),
}

impl Scope<'_> {
    fn holds(&self, d: &str) -> bool {
        match self {
            Scope::One(one) => *one == d,
            Scope::All(all) => all.iter().any(|c| c == d),
        }
    }
}

/// The tickets of each department as they stood at one moment.
type Groups<'l, 'a> = std::collections::HashMap<&'a str, Vec<&'l Life<'a>>>;

fn by_department<'l, 'a>(lives: &'l Lives<'a>, at: DateTime<Utc>) -> Groups<'l, 'a> {
    let mut out: Groups<'l, 'a> = std::collections::HashMap::new();
    for l in &lives.all {
        out.entry(l.department_at(at)).or_default().push(l);
    }
    out
}

/// The tickets of `scope`'s departments in `groups`.
fn members<'l, 'a>(groups: &Groups<'l, 'a>, scope: Scope<'_>) -> Vec<&'l Life<'a>> {
    let mut out = Vec::new();
    let mut take = |d: &str| {
        if let Some(g) = groups.get(d) {
            out.extend(g.iter().copied());
        }
    };
    match scope {
        Scope::One(d) => take(d),
        Scope::All(all) => all.iter().for_each(|d| take(d)),
    }
    out
}

/// The figures of `members` (the scope's tickets as they stood at `w`'s end) over `w`, and,
/// when `list` is set, the breaches to list.
fn figures(
    members: &[&Life<'_>],
    csat: &[(&str, &CsatSample)],
    nps: &[&MetricPoint],
    scope: Scope<'_>,
    w: Window,
    list: bool,
) -> (Figures, Vec<TicketLine>) {
    let mut f = Figures::default();
    // Lines are made only for the breaches listed, not for every one counted.
    let mut breaches: Vec<(Duration, &Life<'_>, &'static str)> = Vec::new();
    let mut first = Vec::new();
    let mut resolution = Vec::new();
    for l in members {
        let t = l.t;
        if w.contains(t.created_at) {
            f.opened += 1;
            if t.origin.is_automation() {
                f.automation.opened += 1;
                *f.automation.by_origin.entry(t.origin).or_default() += 1;
            }
        }
        for r in l.resolutions.iter().filter(|r| w.contains(**r)) {
            f.resolved += 1;
            resolution.push(*r - t.created_at);
        }
        f.automation.auto_resolved += l
            .auto_resolutions
            .iter()
            .filter(|r| w.contains(**r))
            .count();
        if l.open_at(w.to) {
            f.backlog += 1;
        }
        if let Some(r) = t.first_response_at.filter(|r| w.contains(*r)) {
            first.push(r - t.created_at);
        }
        for o in l
            .outcomes
            .iter()
            .flatten()
            .filter(|o| w.decides(o.at, o.after))
        {
            let rate = match o.promise {
                Promised::FirstResponse => &mut f.sla_first_response,
                Promised::Resolution => &mut f.sla_resolution,
            };
            if o.met {
                rate.met += 1;
            } else {
                rate.breached += 1;
                if list {
                    breaches.push((o.late_by(w.to), l, o.promise.name()));
                }
            }
        }
    }
    f.first_response = percentiles(first);
    f.resolution = percentiles(resolution);
    let scores: Vec<u8> = csat
        .iter()
        .filter(|(dept, _)| scope.holds(dept))
        .map(|(_, c)| c.score)
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
    for p in nps.iter().filter(|p| p.counts_in(w)) {
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
    // Most overdue first; equal lateness by ticket number, first response before resolution.
    top(&mut breaches, LIST_LIMIT * 2, |a, b| {
        b.0.cmp(&a.0)
            .then(a.1.t.id.0.cmp(&b.1.t.id.0))
            .then(a.2.cmp(b.2))
    });
    let listed = breaches
        .iter()
        .take(LIST_LIMIT * 2)
        .map(|(by, l, what)| line(l, w.to, *by, Some(what)))
        .collect();
    (f, listed)
}

/// Puts the first `k` of `v` in `order` at its front, sorted; the rest stay behind them in no
/// order. Only the few listed are sorted, not every ticket counted (`order` must be total, so
/// the listed ones do not depend on where they were).
fn top<T>(v: &mut [T], k: usize, mut order: impl FnMut(&T, &T) -> std::cmp::Ordering) {
    if v.len() > k && k > 0 {
        v.select_nth_unstable_by(k - 1, &mut order);
    }
    let k = k.min(v.len());
    v[..k].sort_by(order);
}

/// A ticket as it stood at `when`.
fn line(l: &Life<'_>, when: DateTime<Utc>, by: Duration, what: Option<&str>) -> TicketLine {
    let st = l.at(when);
    TicketLine {
        id: l.t.id,
        title: truncate(&neutralize_mentions(&l.t.title), 80),
        department: st.department.to_string(),
        priority: st.priority,
        by,
        what: what.map(str::to_string),
    }
}

/// The tickets of every department at the end of a period and of the one before, and each
/// period's CSAT answers with their ticket's department then.
struct Ends<'l, 'a> {
    now: Groups<'l, 'a>,
    before: Groups<'l, 'a>,
    csat_now: Vec<(&'a str, &'a CsatSample)>,
    csat_before: Vec<(&'a str, &'a CsatSample)>,
}

impl<'l, 'a> Ends<'l, 'a> {
    /// Both ends' groups; with `split`, the start's are found on another thread meanwhile.
    fn new(lives: &'l Lives<'a>, csat: &'a [CsatSample], w: Window, split: bool) -> Ends<'l, 'a> {
        let answers = |w: Window| {
            csat.iter()
                .filter(|c| w.contains(c.at))
                .map(|c| (lives.rated(c, w.to).0, c))
                .collect()
        };
        let (now, before) = if split {
            std::thread::scope(|s| {
                let before = s.spawn(|| by_department(lives, w.from));
                let now = by_department(lives, w.to);
                (now, joined(before))
            })
        } else {
            (by_department(lives, w.to), by_department(lives, w.from))
        };
        Ends {
            now,
            before,
            csat_now: answers(w),
            csat_before: answers(w.previous()),
        }
    }
}

/// What a scoped thread returned; its panic is the caller's.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn section(
    department: Option<&str>,
    covered: &[String],
    input: &DigestInput,
    ends: &Ends<'_, '_>,
    w: Window,
) -> Section {
    let scope = match department {
        Some(one) => Scope::One(one),
        None => Scope::All(covered),
    };
    // NPS answers: a department's own, or every answer for the organisation.
    let nps: Vec<&MetricPoint> = input
        .metrics
        .iter()
        .filter(|m| m.name == NPS_METRIC)
        .filter(|m| department.is_none() || m.department.as_deref() == department)
        .collect();
    let mine = members(&ends.now, scope);
    let (current, breached) = figures(&mine, &ends.csat_now, &nps, scope, w, true);
    let before = members(&ends.before, scope);
    let prev = w.previous();
    let (previous, _) = figures(&before, &ends.csat_before, &nps, scope, prev, false);
    let mut open: Vec<&&Life<'_>> = mine.iter().filter(|l| l.open_at(w.to)).collect();
    // Oldest first; tickets opened at the same moment by number.
    top(&mut open, LIST_LIMIT, |a, b| {
        (a.t.created_at, a.t.id.0).cmp(&(b.t.created_at, b.t.id.0))
    });
    let oldest_open = open
        .iter()
        .take(LIST_LIMIT)
        .map(|l| line(l, w.to, w.to - l.t.created_at, None))
        .collect();
    let mut tags: BTreeMap<&str, usize> = BTreeMap::new();
    for l in mine.iter().filter(|l| w.contains(l.t.created_at)) {
        for tag in &l.t.tags {
            *tags.entry(tag).or_default() += 1;
        }
    }
    let mut top_tags: Vec<(String, usize)> =
        tags.into_iter().map(|(t, n)| (t.to_string(), n)).collect();
    // Most used first; equal counts in alphabetical order.
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

/// Each custom metric's latest value in the period (by the time it was measured) and in the
/// one before; a department's section shows that department's values, the organisation's
/// shows values recorded without a department.
fn metric_lines(points: &[MetricPoint], department: Option<&str>, w: Window) -> Vec<MetricLine> {
    let prev = w.previous();
    let mut latest: BTreeMap<&str, (Option<&MetricPoint>, Option<&MetricPoint>)> = BTreeMap::new();
    for p in points
        .iter()
        .filter(|p| p.name != NPS_METRIC && p.department.as_deref() == department)
    {
        let slot = latest.entry(&p.name).or_default();
        let newer = |old: Option<&MetricPoint>| old.is_none_or(|o| p.at >= o.at);
        if p.counts_in(w) && newer(slot.0) {
            slot.0 = Some(p);
        } else if p.counts_in(prev) && newer(slot.1) {
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

/// What a digest covers and how it is shown.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// Schedule name.
    pub schedule: &'a str,
    /// The zone its periods and chart days are in.
    pub timezone: chrono_tz::Tz,
    /// The departments it covers.
    pub covered: &'a [String],
    /// The period.
    pub window: Window,
    /// The fewest tickets (or answers) that can earn a shout-out.
    pub min_sample: usize,
}

/// Computes the digest of `spec` from `input`: each covered department and all of them
/// together, next to the period before, with the shout-outs earned and the chart's days.
/// Every figure of a period is taken as things stood at its end, from the tickets' history.
pub fn compute(
    spec: &Spec<'_>,
    input: &DigestInput,
    sla: &SlaPolicy,
    shout_outs: Vec<ShoutOut>,
    people: People<'_>,
) -> Report {
    let split = input.tickets.len() >= PARALLEL_FROM;
    compute_on(spec, input, sla, shout_outs, people, split)
}

/// [`compute`], on two threads when `split` (the figures are the same either way).
fn compute_on(
    spec: &Spec<'_>,
    input: &DigestInput,
    sla: &SlaPolicy,
    shout_outs: Vec<ShoutOut>,
    people: People<'_>,
    split: bool,
) -> Report {
    let w = spec.window;
    let lives = Lives::new(input, sla, w, split);
    let ends = Ends::new(&lives, &input.csat, w, split);
    let overall = || {
        let section = section(None, spec.covered, input, &ends, w);
        let earned = earned_from(
            &lives,
            &input.csat,
            spec.covered,
            w,
            spec.min_sample,
            people,
        );
        (section, earned)
    };
    let rest = || {
        let departments: Vec<Section> = spec
            .covered
            .iter()
            .map(|d| section(Some(d), spec.covered, input, &ends, w))
            .collect();
        let days = daily(&lives, spec.covered, w, spec.timezone);
        let knowledge = knowledge(&lives, &input.knowledge, spec.covered, w);
        (departments, days, knowledge)
    };
    // The organisation's section reads what every department's does: with many tickets it is
    // computed on another core meanwhile, with the shout-outs earned (another pass over every
    // ticket) behind it, as the chart's days are behind the departments here.
    let ((overall, earned), (departments, days, knowledge)) = if !split {
        (overall(), rest())
    } else {
        std::thread::scope(|s| {
            let o = s.spawn(overall);
            let r = rest();
            (joined(o), r)
        })
    };
    Report {
        schedule: spec.schedule.to_string(),
        window: w,
        previous: w.previous(),
        timezone: spec.timezone.name().to_string(),
        overall,
        departments,
        shout_outs,
        earned,
        days,
        knowledge,
    }
}

/// How many articles (and gap words) the knowledge part lists.
const KNOWLEDGE_LIMIT: usize = 5;

/// Gap words shown: the most frequent, each in at least this many unmatched tickets (one
/// ticket's words say nothing about what is missing).
const GAP_MIN_TICKETS: usize = 2;

/// The knowledge part of a digest over `covered`, from the entries in `w` and in the period
/// before; each entry counts under its ticket's department at the moment it was made.
fn knowledge<'a>(
    lives: &Lives<'a>,
    events: &'a [KbEvent],
    covered: &[String],
    w: Window,
) -> Option<KnowledgeReport> {
    let department = |e: &'a KbEvent| -> &'a str {
        match lives.by_id.get(&e.ticket).and_then(|i| lives.all.get(*i)) {
            Some(l) => l.department_at(e.at),
            None => &e.department,
        }
    };
    let mine: Vec<&KbEvent> = events
        .iter()
        .filter(|e| covered.iter().any(|c| *c == department(e)))
        .collect();
    let count = |w: Window| {
        use std::collections::HashSet;
        let mut sets: [HashSet<TicketRef>; 4] = Default::default();
        for e in mine.iter().filter(|e| w.contains(e.at)) {
            let i = match &e.what {
                KbWhat::Suggested(a) if a.is_empty() => 1,
                KbWhat::Suggested(_) => 0,
                KbWhat::Answered(_) => 2,
                KbWhat::NotHelpful(_) => 3,
            };
            sets[i].insert(e.ticket);
        }
        KnowledgeFigures {
            suggested: sets[0].len(),
            unmatched: sets[1].len(),
            answered: sets[2].len(),
            not_helpful: sets[3].len(),
        }
    };
    let current = count(w);
    let previous = count(w.previous());
    if current == KnowledgeFigures::default() && previous == KnowledgeFigures::default() {
        return None;
    }
    // Each ticket counts once per article, however many times an entry names it.
    let mut answered: BTreeMap<&str, std::collections::BTreeSet<TicketRef>> = BTreeMap::new();
    let mut suggested: BTreeMap<&str, std::collections::BTreeSet<TicketRef>> = BTreeMap::new();
    let mut refused: BTreeMap<&str, std::collections::BTreeSet<TicketRef>> = BTreeMap::new();
    let mut words: BTreeMap<&str, (std::collections::BTreeSet<TicketRef>, BTreeMap<&str, usize>)> =
        BTreeMap::new();
    for e in mine.iter().filter(|e| w.contains(e.at)) {
        match &e.what {
            KbWhat::Suggested(a) if a.is_empty() => {
                for (stem, word) in &e.words {
                    let (tickets, forms) = words.entry(stem).or_default();
                    tickets.insert(e.ticket);
                    *forms.entry(word).or_default() += 1;
                }
            }
            KbWhat::Suggested(a) => {
                for id in a {
                    suggested.entry(id).or_default().insert(e.ticket);
                }
            }
            KbWhat::Answered(id) => {
                answered.entry(id).or_default().insert(e.ticket);
            }
            KbWhat::NotHelpful(a) => {
                for id in a {
                    refused.entry(id).or_default().insert(e.ticket);
                }
            }
        }
    }
    let mut most_used: Vec<ArticleUse> = answered
        .keys()
        .chain(suggested.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|id| ArticleUse {
            article: id.to_string(),
            answered: answered.get(id).map_or(0, |t| t.len()),
            suggested: suggested.get(id).map_or(0, |t| t.len()),
        })
        .collect();
    // Most answered first, then most suggested; equal ones by name (the map's order).
    most_used.sort_by_key(|a| std::cmp::Reverse((a.answered, a.suggested)));
    most_used.truncate(KNOWLEDGE_LIMIT);
    let mut not_helpful: Vec<(String, usize)> = refused
        .into_iter()
        .map(|(id, t)| (id.to_string(), t.len()))
        .collect();
    not_helpful.sort_by_key(|a| std::cmp::Reverse(a.1));
    not_helpful.truncate(KNOWLEDGE_LIMIT);
    let mut gaps: Vec<(String, usize)> = words
        .into_iter()
        .filter(|(_, (t, _))| t.len() >= GAP_MIN_TICKETS)
        .map(|(_, (t, forms))| {
            // The form people wrote most ("invoices" over "invoice"), equal ones by name.
            let mut forms: Vec<(&str, usize)> = forms.into_iter().collect();
            forms.sort_by_key(|a| std::cmp::Reverse(a.1));
            (forms[0].0.to_string(), t.len())
        })
        .collect();
    gaps.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    gaps.truncate(2 * KNOWLEDGE_LIMIT);
    Some(KnowledgeReport {
        current,
        previous,
        most_used,
        not_helpful,
        gaps,
    })
}

/// The knowledge part as a post's part: answered tickets next to the period before, the most
/// used articles, those not helpful, and the gaps.
fn knowledge_part(k: &KnowledgeReport) -> Part {
    let c = &k.current;
    let p = &k.previous;
    let mut out = format!(
        "Answered by an article: {} ({}, from {})\nSuggestions on {} of {} new tickets; {} marked not what was needed\n",
        tickets(c.answered),
        change(c.answered as f64, p.answered as f64),
        p.answered,
        c.suggested,
        c.suggested + c.unmatched,
        c.not_helpful
    );
    if !k.most_used.is_empty() {
        let parts: Vec<String> = k
            .most_used
            .iter()
            .map(|a| {
                format!(
                    "{} ({} answered, {} suggested)",
                    a.article, a.answered, a.suggested
                )
            })
            .collect();
        out.push_str(&format!("Most used: {}\n", parts.join(" · ")));
    }
    if !k.not_helpful.is_empty() {
        let parts: Vec<String> = k
            .not_helpful
            .iter()
            .map(|(a, n)| format!("{a} ({n})"))
            .collect();
        out.push_str(&format!("Not what was needed: {}\n", parts.join(" · ")));
    }
    if c.unmatched > 0 {
        if k.gaps.is_empty() {
            out.push_str(&format!(
                "No article matched {}; no word came up in more than one of them\n",
                tickets(c.unmatched)
            ));
        } else {
            let parts: Vec<String> = k.gaps.iter().map(|(w, n)| format!("{w} ({n})")).collect();
            out.push_str(&format!(
                "No article matched {}; their most frequent words: {}\n",
                tickets(c.unmatched),
                parts.join(" · ")
            ));
        }
    }
    Part {
        heading: "Knowledge base".into(),
        fields: vec![],
        text: neutralize_mentions(out.trim_end()),
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
/// the `covered` departments as they stood at the period's end: what the chart draws.
fn daily(lives: &Lives<'_>, covered: &[String], w: Window, tz: chrono_tz::Tz) -> Vec<Day> {
    let first = w.from.with_timezone(&tz).date_naive();
    let last = w.to.with_timezone(&tz).date_naive();
    let mut out = Vec::new();
    // Each day's end; the days follow one another, so a day is (the one before's end, its end].
    let mut ends = Vec::new();
    let mut date = first;
    while date <= last && out.len() < 400 {
        let start = super::cronexpr::instant(date.and_time(chrono::NaiveTime::MIN), tz).max(w.from);
        let next = date + Duration::days(1);
        let end = super::cronexpr::instant(next.and_time(chrono::NaiveTime::MIN), tz).min(w.to);
        if end > start {
            out.push(Day {
                date,
                opened: 0,
                resolved: 0,
                backlog: 0,
            });
            ends.push(end);
        }
        date = next;
    }
    let day_of = |t: DateTime<Utc>| {
        let i = ends.partition_point(|e| *e < t);
        (w.contains(t) && i < ends.len()).then_some(i)
    };
    // One pass over the tickets, each walking its states beside the days' ends.
    let scope = Scope::All(covered);
    for l in lives
        .all
        .iter()
        .filter(|l| scope.holds(l.department_at(w.to)))
    {
        if let Some(i) = day_of(l.t.created_at) {
            out[i].opened += 1;
        }
        for i in l.resolutions.iter().filter_map(|r| day_of(*r)) {
            out[i].resolved += 1;
        }
        let mut state = 0;
        for (day, end) in out.iter_mut().zip(&ends) {
            if l.t.created_at > *end {
                continue;
            }
            // The state at `end` (as `Life::at`): the last that began at or before it.
            while l.states.get(state + 1).is_some_and(|(s, _)| s <= end) {
                state += 1;
            }
            if l.states[state].1.status.is_active() {
                day.backlog += 1;
            }
        }
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

/// What other systems opened and automation resolved, e.g. `12 (alertmanager 9 · api 3), 3
/// auto-resolved; before 5`; nothing when neither period had any.
fn automation_line(c: &AutomationFigures, p: &AutomationFigures) -> Option<String> {
    if c.opened + c.auto_resolved + p.opened + p.auto_resolved == 0 {
        return None;
    }
    let mut line = c.opened.to_string();
    if !c.by_origin.is_empty() {
        let parts: Vec<String> = c
            .by_origin
            .iter()
            .map(|(o, n)| format!("{o} {n}"))
            .collect();
        line.push_str(&format!(" ({})", parts.join(" · ")));
    }
    line.push_str(&format!(
        ", {} auto-resolved; before {}",
        c.auto_resolved, p.opened
    ));
    Some(line)
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
    let mut fields = vec![
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
    if let Some(line) = automation_line(&c.automation, &p.automation) {
        fields.insert(3, field("From monitoring and the API", line));
    }
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
        // The report keeps a few more lines than it shows; the count is of every breach.
        let all = c.sla_first_response.breached + c.sla_resolution.breached;
        let shown = s.breached.len().min(LIST_LIMIT);
        if all > shown {
            out.push_str(&format!("…and {} more\n", all - shown));
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
    if let Some(k) = &r.knowledge {
        sections.push(knowledge_part(k));
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
    fn two_threads_compute_the_same_digest_as_one() {
        use crate::core::sla::parse_target;
        use chrono::TimeZone;
        let to = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap();
        let w = Window::new(to - Duration::days(7), to);
        let depts: Vec<String> = ["billing", "it", "support"].map(String::from).to_vec();
        let mut rng = 7u64;
        let mut next = |n: u64| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) % n
        };
        let agent = |i: u64| {
            Some(UserRef::new(
                crate::core::types::Platform::Slack,
                format!("U{i}"),
            ))
        };
        let tickets: Vec<DigestTicket> = (0..900)
            .map(|i| {
                let created =
                    w.before + Duration::minutes(i64::try_from(next(20_000)).unwrap_or(0));
                let first = created + Duration::minutes(30 + i64::try_from(next(600)).unwrap_or(0));
                let resolved = (next(3) > 0)
                    .then(|| created + Duration::hours(1 + i64::try_from(next(200)).unwrap_or(0)));
                let department = depts[usize::try_from(next(3)).unwrap_or(0)].clone();
                let mut history = vec![(
                    first,
                    Step::Status {
                        to: Status::InProgress,
                        automated: false,
                    },
                )];
                if next(4) == 0 {
                    history.push((
                        created + Duration::minutes(10),
                        Step::Department {
                            from: depts[0].clone(),
                            to: department.clone(),
                        },
                    ));
                }
                if let Some(r) = resolved {
                    history.push((
                        r,
                        Step::Status {
                            to: Status::Resolved,
                            automated: false,
                        },
                    ));
                }
                history.sort_by_key(|(at, _)| *at);
                DigestTicket {
                    id: TicketRef(i64::from(i)),
                    title: format!("ticket {i}"),
                    department,
                    priority: if next(2) == 0 {
                        Priority::High
                    } else {
                        Priority::Normal
                    },
                    tags: vec!["tag".into()],
                    created_at: created,
                    first_response_at: Some(first),
                    resolved_at: resolved,
                    closed_at: None,
                    waiting_since: None,
                    sla_paused: Duration::zero(),
                    assignee: agent(next(4)),
                    origin: Origin::Flag,
                    history,
                }
            })
            .collect();
        let input = DigestInput {
            tickets,
            ..DigestInput::default()
        };
        let mut sla = SlaPolicy::default();
        for (p, t) in [(Priority::High, "2h"), (Priority::Normal, "8h")] {
            sla.default
                .first_response
                .insert(p, parse_target(t).unwrap());
            sla.default
                .resolution
                .insert(p, parse_target("1d").unwrap());
        }
        let spec = Spec {
            schedule: "weekly",
            timezone: chrono_tz::Europe::Berlin,
            covered: &depts,
            window: w,
            min_sample: 3,
        };
        let people = |u: &UserRef| (u.to_string(), u.to_string());
        let one = compute_on(&spec, &input, &sla, vec![], &people, false);
        let two = compute_on(&spec, &input, &sla, vec![], &people, true);
        assert!(one.overall.current.opened > 0 && one.overall.current.sla_first_response.met > 0);
        assert_eq!(one, two);
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
