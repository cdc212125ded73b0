//! The dashboards (the digest's figures for the organisation or one department, for a week,
//! a month or chosen dates, with their charts) and the SLA at-risk list.
//!
//! Owns choosing the period and laying the figures out; the figures are the digest's own
//! (`cmd::digest::report_window`), so a dashboard and a posted digest never disagree. Must not
//! compute a figure itself.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::cmd::digest::window_ending;
use crate::config::Period;
use crate::core::digest::Window;
use crate::core::sla::Clock;
use crate::core::ticket::Ticket;
use crate::store::TicketFilter;

use super::pages::{when, zone};
use super::{html, Nav, WebError, WebQuery, WebState};

/// The dashboard's choices, from the address.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DashboardQuery {
    #[serde(default)]
    department: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The periods a dashboard offers: (value, label).
const PERIODS: [(&str, &str); 5] = [
    ("week", "Last 7 days"),
    ("previous-week", "The 7 days before"),
    ("month", "Last month"),
    ("previous-month", "The month before"),
    ("range", "Chosen dates"),
];

/// A labelled figure.
struct Figure {
    name: String,
    value: String,
}

/// A titled part of the digest (a department, the shout-outs).
struct Part {
    heading: String,
    figures: Vec<Figure>,
    text: String,
}

/// A choice in a menu.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "web/dashboard.html")]
struct DashboardPage {
    nav: Nav,
    heading: String,
    span: String,
    departments: Vec<Choice>,
    periods: Vec<Choice>,
    from: String,
    to: String,
    figures: Vec<Figure>,
    parts: Vec<Part>,
    chart_days: String,
    chart_backlog: String,
}

/// The period a dashboard shows, ending `now` unless dates were chosen.
fn window(s: &WebState, q: &DashboardQuery, now: DateTime<Utc>) -> Result<Window, WebError> {
    let tz = zone(s);
    let ending = |period: Period, at: DateTime<Utc>| window_ending(period, at, tz);
    Ok(match q.period.trim() {
        "" | "week" => ending(Period::Week, now),
        "previous-week" => ending(Period::Week, Period::Week.start_before(now, tz)),
        "month" => ending(Period::Month, now),
        "previous-month" => ending(Period::Month, Period::Month.start_before(now, tz)),
        "range" => {
            let day = |field: &str, text: &str| {
                super::pages::day_start(s, field, text)?.ok_or_else(|| {
                    WebError::BadRequest(format!(
                        "Chosen dates need both `from` and `to`, e.g. 2026-03-01; `{field}` is empty."
                    ))
                })
            };
            let from = day("from", &q.from)?;
            let to = super::pages::day_end(s, "to", &q.to)?.ok_or_else(|| {
                WebError::BadRequest(
                    "Chosen dates need both `from` and `to`, e.g. 2026-03-01; `to` is empty."
                        .into(),
                )
            })?;
            if to <= from {
                return Err(WebError::BadRequest(
                    "`to` must be the same day as `from` or later.".into(),
                ));
            }
            if to - from > chrono::Duration::days(366) {
                return Err(WebError::BadRequest(
                    "Choose at most a year at a time.".into(),
                ));
            }
            // A range reaching past now ends now, and is compared with as long a one before.
            let to = to.min(now);
            if to <= from {
                return Err(WebError::BadRequest(
                    "`from` is in the future; choose dates up to today.".into(),
                ));
            }
            Window {
                from,
                to,
                before: from - (to - from),
            }
        }
        other => {
            return Err(WebError::BadRequest(format!(
                "Period `{other}` is unknown; use week, previous-week, month, previous-month \
                 or range."
            )))
        }
    })
}

/// `GET /ui/dashboard`: the digest's figures for a period, for leads and admins.
pub(crate) async fn dashboard(
    State(s): State<WebState>,
    headers: HeaderMap,
    WebQuery(q): WebQuery<DashboardQuery>,
) -> Result<Response, WebError> {
    let v = s.viewer(&headers).await?;
    let nav = s.nav(&v);
    if !nav.dashboards {
        return Err(WebError::Forbidden(
            "Dashboards are for department leads and admins, who read the digests.".into(),
        ));
    }
    let departments: Vec<String> = match q.department.trim() {
        "" => vec![],
        d => vec![s.desk.department(d)?.name.clone()],
    };
    let tz = zone(&s);
    let w = window(&s, &q, s.desk.now())?;
    let name = departments.first().map_or("organisation", |d| d.as_str());
    let report = crate::cmd::digest::report_window(&s.desk, name, tz, w, &departments).await?;
    let message = crate::core::digest::render(&report, tz);
    let figures = message
        .fields
        .iter()
        .map(|f| Figure {
            name: f.name.clone(),
            value: f.value.clone(),
        })
        .collect();
    let parts = message
        .sections
        .iter()
        .map(|p| Part {
            heading: p.heading.clone(),
            figures: p
                .fields
                .iter()
                .map(|f| Figure {
                    name: f.name.clone(),
                    value: f.value.clone(),
                })
                .collect(),
            text: p.text.clone(),
        })
        .collect();
    let dir = &s.desk.config.directory;
    let page = DashboardPage {
        heading: match departments.first() {
            Some(d) => format!("Dashboard: {d}"),
            None => "Dashboard: the whole organisation".into(),
        },
        span: format!(
            "{} to {} ({}), compared with the period before",
            when(&s, w.from),
            when(&s, w.to),
            tz.name()
        ),
        departments: std::iter::once((String::new(), "Whole organisation".to_string()))
            .chain(
                dir.departments
                    .iter()
                    .map(|d| (d.name.clone(), d.name.clone())),
            )
            .map(|(value, label)| Choice {
                selected: value == q.department.trim(),
                value,
                label,
            })
            .collect(),
        periods: PERIODS
            .iter()
            .map(|(value, label)| Choice {
                selected: *value == q.period.trim()
                    || (q.period.trim().is_empty() && *value == "week"),
                value: value.to_string(),
                label: label.to_string(),
            })
            .collect(),
        from: q.from.trim().to_string(),
        to: q.to.trim().to_string(),
        figures,
        parts,
        chart_days: super::svg::opened_resolved(&report.days),
        chart_backlog: super::svg::backlog(&report.days),
        nav,
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// One ticket whose promise is close to breaking or broken.
struct AtRisk {
    id: String,
    href: String,
    title: String,
    department: String,
    priority: String,
    assignee: String,
    promise: &'static str,
    state: String,
    breached: bool,
}

#[derive(Template)]
#[template(path = "web/at_risk.html")]
struct AtRiskPage {
    nav: Nav,
    rows: Vec<AtRisk>,
    warn_percent: u32,
}

/// `GET /ui/at-risk`: active tickets of the viewer's departments whose first response or
/// resolution has used 80% of its target or is breached, the most urgent first.
pub(crate) async fn at_risk(
    State(s): State<WebState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let v = s.viewer(&headers).await?;
    let nav = s.nav(&v);
    if !nav.staff {
        return Err(WebError::Forbidden(
            "The at-risk list is for department members, leads and admins.".into(),
        ));
    }
    let mut filter = TicketFilter::active();
    filter.within = s.scope(&v).map(|mut scope| {
        // Staff see their departments' tickets here, not the ones they reported elsewhere.
        scope.reporters.clear();
        scope
    });
    let tickets = s.desk.store.list_tickets(&filter).await?;
    let now = s.desk.now();
    let sla = &s.desk.config.sla;
    // Each promise at risk, with its ticket (named once the names are learned).
    let mut found: Vec<(bool, DateTime<Utc>, &Ticket, AtRisk)> = Vec::new();
    let mut named = Vec::new();
    for t in &tickets {
        let (first, resolution) = sla.clocks(
            &t.department,
            t.priority,
            &crate::cmd::ticket::times(t),
            now,
        );
        for (promise, clock) in [("first response", first), ("resolution", resolution)] {
            let Some(clock) = clock else { continue };
            let (breached, due) = match clock {
                Clock::Breached { due, .. } => (true, due),
                Clock::Running { due, used, .. } if used >= crate::schedule::WARN_AT => {
                    (false, due)
                }
                _ => continue,
            };
            named.extend(t.assignee.clone());
            found.push((
                !breached,
                due,
                t,
                AtRisk {
                    id: t.id.to_string(),
                    href: format!("/ui/tickets/{}", t.id.0),
                    title: crate::core::message::truncate(
                        &crate::core::message::neutralize_mentions(&t.title),
                        100,
                    ),
                    department: t.department.clone(),
                    priority: t.priority.to_string(),
                    assignee: String::new(),
                    promise,
                    state: crate::core::sla::describe(&clock, sla.zone(&t.department)),
                    breached,
                },
            ));
        }
    }
    s.desk.learn_names(named).await;
    let dir = &s.desk.config.directory;
    // Broken promises first, then the soonest due.
    found.sort_by_key(|(running, due, _, _)| (*running, *due));
    let rows = found
        .into_iter()
        .map(|(_, _, t, row)| AtRisk {
            assignee: t
                .assignee
                .as_ref()
                .map_or("nobody".into(), |a| dir.display_name(a)),
            ..row
        })
        .collect();
    let page = AtRiskPage {
        nav,
        rows,
        warn_percent: (crate::schedule::WARN_AT * 100.0).round() as u32,
    };
    Ok(html(StatusCode::OK, page.render()))
}
