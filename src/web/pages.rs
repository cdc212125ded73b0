//! The ticket pages: the list (filters, full-text search, pages of 50) and one ticket's
//! transcript with its claim, status and note forms.
//!
//! Owns reading the filters from the address and laying tickets out; must not decide who may
//! change what (the desk does, with the permission `commands/ticket.toml` gives each action).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Deserialize;

use crate::core::directory::Permission;
use crate::core::message::{neutralize_mentions, truncate};
use crate::core::ticket::{Change, EventKind, Origin, Ticket};
use crate::core::types::{Platform, Priority, Status, TicketRef};
use crate::store::TicketFilter;

use super::{html, see_other, CsrfForm, Nav, Viewer, WebError, WebForm, WebQuery, WebState};

/// Tickets per page.
const PAGE: i64 = 50;

/// Every origin, with the word the list's filter uses.
pub(crate) const ORIGINS: [(Origin, &str); 6] = [
    (Origin::Flag, "flag"),
    (Origin::Shortcut, "shortcut"),
    (Origin::Command, "command"),
    (Origin::Api, "api"),
    (Origin::Alertmanager, "alertmanager"),
    (Origin::Grafana, "grafana"),
];

/// The zone the pages show times in: the first digest schedule's, else UTC.
pub(crate) fn zone(s: &WebState) -> chrono_tz::Tz {
    s.desk
        .config
        .digests
        .first()
        .map_or(chrono_tz::UTC, |d| d.timezone)
}

/// A status or origin as the database and the addresses write it (`in_progress`).
pub(crate) fn wire<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// A moment as the pages show it.
pub(crate) fn when(s: &WebState, at: DateTime<Utc>) -> String {
    at.with_timezone(&zone(s))
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The list's filters as the address gives them; an empty field is no filter.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    department: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    before: String,
}

impl ListQuery {
    /// This query's address from the newest ticket on (`None`), or after `next`.
    fn page_after(&self, next: Option<TicketRef>) -> String {
        let pairs = [
            ("department", &self.department),
            ("status", &self.status),
            ("priority", &self.priority),
            ("assignee", &self.assignee),
            ("tag", &self.tag),
            ("origin", &self.origin),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ];
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            if !v.trim().is_empty() {
                url.append_pair(k, v.trim());
            }
        }
        if let Some(next) = next {
            url.append_pair("before", &next.0.to_string());
        }
        format!("/ui/tickets?{}", url.finish())
    }
}

/// One row of the list.
struct Row {
    id: String,
    href: String,
    title: String,
    department: String,
    status: String,
    priority: String,
    assignee: String,
    opened: String,
    origin: String,
}

/// A choice in a filter's menu.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices<'a>(
    current: &str,
    items: impl IntoIterator<Item = (String, String)> + 'a,
) -> Vec<Choice> {
    items
        .into_iter()
        .map(|(value, label)| Choice {
            selected: value == current.trim(),
            value,
            label,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "web/tickets.html")]
struct ListPage {
    nav: Nav,
    rows: Vec<Row>,
    departments: Vec<Choice>,
    statuses: Vec<Choice>,
    priorities: Vec<Choice>,
    assignees: Vec<Choice>,
    origins: Vec<Choice>,
    tag: String,
    from: String,
    to: String,
    q: String,
    older: Option<String>,
    /// The first page with the same filters, when this is a later one.
    newest: Option<String>,
}

/// A date typed in a filter, as the start of that day in the pages' zone.
pub(crate) fn day_start(
    s: &WebState,
    field: &str,
    text: &str,
) -> Result<Option<DateTime<Utc>>, WebError> {
    Ok(day(field, text)?.map(|d| local_midnight(s, d)))
}

/// A date typed in a filter (`2026-03-01`), between 1970 and 9999.
fn day(field: &str, text: &str) -> Result<Option<NaiveDate>, WebError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| (1970..=9999).contains(&d.year()))
        .map(Some)
        .ok_or_else(|| {
            WebError::BadRequest(format!(
                "`{text}` is not a date for `{field}`; write it as 2026-03-01 (years 1970 to 9999)."
            ))
        })
}

/// The first moment of `day` in the pages' zone: its midnight, or, where the clocks skip
/// midnight, the first hour that exists.
fn local_midnight(s: &WebState, day: NaiveDate) -> DateTime<Utc> {
    let tz = zone(s);
    (0..24)
        .filter_map(|h| day.and_hms_opt(h, 0, 0))
        .find_map(|t| tz.from_local_datetime(&t).earliest())
        .map_or_else(
            || day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

/// The end of the day typed in `field`: the first moment of the next local day.
pub(crate) fn day_end(
    s: &WebState,
    field: &str,
    text: &str,
) -> Result<Option<DateTime<Utc>>, WebError> {
    Ok(day(field, text)?.map(|d| local_midnight(s, d.succ_opt().unwrap_or(d))))
}

/// Reads the filters into a store filter, or says which one is wrong and how to write it.
fn filter(s: &WebState, v: &Viewer, q: &ListQuery) -> Result<TicketFilter, WebError> {
    let dir = &s.desk.config.directory;
    let mut f = TicketFilter {
        within: s.scope(v),
        limit: PAGE + 1,
        ..TicketFilter::default()
    };
    let department = q.department.trim();
    if !department.is_empty() {
        f.department = Some(s.desk.department(department)?.name.clone());
    }
    f.statuses = match q.status.trim() {
        "" | "active" => Status::ALL.into_iter().filter(|s| s.is_active()).collect(),
        "any" => vec![],
        other => vec![other
            .parse::<Status>()
            .map_err(|e| WebError::BadRequest(format!("Status `{other}` is unknown: {e}")))?],
    };
    if !q.priority.trim().is_empty() {
        let p = q.priority.trim();
        f.priorities = vec![p
            .parse::<Priority>()
            .map_err(|e| WebError::BadRequest(format!("Priority `{p}` is unknown: {e}")))?];
    }
    match q.assignee.trim() {
        "" => {}
        "me" => f.assignees = dir.accounts(&v.actor.user),
        "nobody" => f.unassigned = true,
        id => {
            let person = dir.people.iter().find(|p| p.id.0 == id).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "`{id}` is not a person under [[people]]; choose one from the list."
                ))
            })?;
            f.assignees = [Platform::Slack, Platform::Discord]
                .into_iter()
                .filter_map(|pl| person.account(pl))
                .collect();
            if f.assignees.is_empty() {
                return Err(WebError::BadRequest(format!(
                    "{} has no Slack or Discord account in the config, so no ticket can be \
                     assigned to them.",
                    person.name
                )));
            }
        }
    }
    let tag = q.tag.trim().to_lowercase();
    if !tag.is_empty() {
        f.tag = Some(tag);
    }
    if !q.origin.trim().is_empty() {
        let o = q.origin.trim();
        let (origin, _) = ORIGINS.iter().find(|(_, w)| *w == o).ok_or_else(|| {
            WebError::BadRequest(format!(
                "Origin `{o}` is unknown; use one of flag, shortcut, command, api, \
                 alertmanager, grafana."
            ))
        })?;
        f.origins = vec![*origin];
    }
    f.created_from = day_start(s, "from", &q.from)?;
    // "to" is the last day shown, so the filter ends where the next day starts.
    f.created_to = day_end(s, "to", &q.to)?;
    let text = q.q.trim();
    if !text.is_empty() {
        f.text = Some(truncate(text, 200));
    }
    let before = q.before.trim();
    if !before.is_empty() {
        f.before =
            Some(before.parse::<TicketRef>().map_err(|_| {
                WebError::BadRequest(format!("`{before}` is not a ticket number."))
            })?);
    }
    Ok(f)
}

/// `GET /ui/tickets`: the tickets the viewer may see, newest first, fifty a page.
pub(crate) async fn list(
    State(s): State<WebState>,
    headers: HeaderMap,
    WebQuery(q): WebQuery<ListQuery>,
) -> Result<Response, WebError> {
    let v = s.viewer(&headers).await?;
    // A ticket reference typed into the search (`T-42`, `#42`; not a bare number, which
    // may be an error code) opens that ticket.
    let typed = q.q.trim();
    if typed.starts_with(['T', 't', '#']) {
        if let Ok(id) = typed.parse::<TicketRef>() {
            return Ok(see_other(&format!("/ui/tickets/{}", id.0)));
        }
    }
    let f = filter(&s, &v, &q)?;
    let mut tickets = s.desk.store.list_tickets(&f).await?;
    let more = tickets.len() > PAGE as usize;
    tickets.truncate(PAGE as usize);
    let mut named: Vec<_> = tickets.iter().filter_map(|t| t.assignee.clone()).collect();
    named.dedup();
    s.desk.learn_names(named).await;
    let dir = &s.desk.config.directory;
    let rows = tickets
        .iter()
        .map(|t| Row {
            id: t.id.to_string(),
            href: format!("/ui/tickets/{}", t.id.0),
            title: truncate(&neutralize_mentions(&t.title), 120),
            department: t.department.clone(),
            status: t.status.label().to_string(),
            priority: t.priority.to_string(),
            assignee: t
                .assignee
                .as_ref()
                .map_or(String::new(), |a| dir.display_name(a)),
            opened: when(&s, t.created_at),
            origin: t.origin.to_string(),
        })
        .collect();
    let older = more
        .then(|| tickets.last().map(|t| q.page_after(Some(t.id))))
        .flatten();
    let page = ListPage {
        nav: s.nav(&v),
        rows,
        departments: choices(
            &q.department,
            dir.departments
                .iter()
                .map(|d| (d.name.clone(), d.name.clone())),
        ),
        statuses: choices(
            if q.status.trim().is_empty() {
                "active"
            } else {
                &q.status
            },
            [
                ("active".to_string(), "Active".to_string()),
                ("any".to_string(), "Any".to_string()),
            ]
            .into_iter()
            .chain(
                Status::ALL
                    .into_iter()
                    .map(|st| (wire(&st), st.label().to_string())),
            ),
        ),
        priorities: choices(
            &q.priority,
            Priority::ALL
                .into_iter()
                .map(|p| (p.to_string(), p.to_string())),
        ),
        assignees: choices(
            &q.assignee,
            [
                ("me".to_string(), "Me".to_string()),
                ("nobody".to_string(), "Nobody".to_string()),
            ]
            .into_iter()
            .chain(dir.people.iter().map(|p| (p.id.0.clone(), p.name.clone()))),
        ),
        origins: choices(
            &q.origin,
            ORIGINS.iter().map(|(o, w)| (w.to_string(), o.to_string())),
        ),
        tag: q.tag.trim().to_string(),
        from: q.from.trim().to_string(),
        to: q.to.trim().to_string(),
        q: q.q.trim().to_string(),
        older,
        newest: (!q.before.trim().is_empty()).then(|| q.page_after(None)),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// One line of a transcript.
struct Entry {
    at: String,
    who: String,
    /// `event`, `reply` or `note`: how the line looks.
    kind: &'static str,
    text: String,
    /// "edited …" or "deleted …", for replies.
    state: String,
}

/// A labelled value at the top of a transcript.
struct Fact {
    name: String,
    value: String,
}

/// A link the ticket carries (from monitoring, or back to chat).
struct LinkLine {
    title: String,
    url: String,
}

#[derive(Template)]
#[template(path = "web/ticket.html")]
struct TicketPage {
    nav: Nav,
    id: String,
    number: i64,
    title: String,
    body: String,
    facts: Vec<Fact>,
    links: Vec<LinkLine>,
    entries: Vec<Entry>,
    /// Whether the viewer works this ticket's department (sees the forms).
    staff: bool,
    may_claim: bool,
    statuses: Vec<Choice>,
    done: String,
}

/// What a finished action says at the top of the page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Done {
    #[serde(default)]
    done: String,
}

/// The ticket a page's address names (`/ui/tickets/42`), or 404.
fn ticket_in_path(number: &str) -> Result<TicketRef, WebError> {
    number
        .parse()
        .map_err(|_| WebError::NotFound(format!("`{number}` is not a ticket number.")))
}

/// Reads a ticket the viewer may see, or 404 / 403.
async fn visible(s: &WebState, v: &Viewer, number: &str) -> Result<Ticket, WebError> {
    let id = ticket_in_path(number)?;
    let t = s
        .desk
        .store
        .ticket(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("There is no ticket {id}.")))?;
    let dir = &s.desk.config.directory;
    if !s.is_member_of(v, &t.department) && !dir.same_person(&v.actor.user, &t.reporter) {
        return Err(WebError::Forbidden(format!(
            "{id} belongs to {}; only its members, its leads, admins and the person who \
             reported it can see it.",
            t.department
        )));
    }
    Ok(t)
}

/// `GET /ui/tickets/{n}`: the ticket's whole story.
pub(crate) async fn ticket(
    State(s): State<WebState>,
    headers: HeaderMap,
    Path(number): Path<String>,
    WebQuery(done): WebQuery<Done>,
) -> Result<Response, WebError> {
    let v = s.viewer(&headers).await?;
    let t = visible(&s, &v, &number).await?;
    let staff = s.is_member_of(&v, &t.department);
    let store = &s.desk.store;
    let events = store.events(t.id).await?;
    let replies = store.thread_replies(t.id).await?;
    let csat = store.csat(t.id).await?;
    let mut named = vec![t.reporter.clone()];
    named.extend(t.assignee.clone());
    named.extend(events.iter().filter_map(|e| e.actor.clone()));
    named.extend(replies.iter().map(|r| r.author.clone()));
    s.desk.learn_names(named).await;
    let dir = &s.desk.config.directory;
    let name = |u: &crate::core::types::UserRef| dir.display_name(u);

    let mut facts = vec![
        Fact {
            name: "Status".into(),
            value: t.status.label().into(),
        },
        Fact {
            name: "Priority".into(),
            value: t.priority.to_string(),
        },
        Fact {
            name: "Department".into(),
            value: t.department.clone(),
        },
        Fact {
            name: "Reporter".into(),
            value: crate::core::message::reporter_name(&t, dir),
        },
        Fact {
            name: "Assignee".into(),
            value: t.assignee.as_ref().map_or("nobody".into(), name),
        },
        Fact {
            name: "Opened".into(),
            value: format!("{} ({})", when(&s, t.created_at), t.origin),
        },
    ];
    if !t.tags.is_empty() {
        facts.push(Fact {
            name: "Tags".into(),
            value: t.tags.join(", "),
        });
    }
    let sla = &s.desk.config.sla;
    let (first, resolution) = sla.clocks(
        &t.department,
        t.priority,
        &crate::cmd::ticket::times(&t),
        s.desk.now(),
    );
    let tz = sla.zone(&t.department);
    for (label, clock) in [
        ("First response SLA", first),
        ("Resolution SLA", resolution),
    ] {
        if let Some(c) = clock {
            facts.push(Fact {
                name: label.into(),
                value: crate::core::sla::describe(&c, tz),
            });
        }
    }
    if let Some(c) = &csat {
        facts.push(Fact {
            name: "Satisfaction".into(),
            value: match &c.comment {
                Some(comment) => format!("{}/5: {comment}", c.score),
                None => format!("{}/5", c.score),
            },
        });
    }
    let mut links: Vec<LinkLine> = crate::core::ticket::links(&events)
        .filter(|l| l.url.starts_with("https://") || l.url.starts_with("http://"))
        .map(|l| LinkLine {
            title: l.title.clone(),
            url: l.url.clone(),
        })
        .collect();
    if let Some(url) = t.source.as_ref().and_then(|src| src.permalink.clone()) {
        links.insert(
            0,
            LinkLine {
                title: "The flagged message, in chat".into(),
                url,
            },
        );
    }

    // Staff actions and the thread's replies, in the order they happened.
    let mut timeline: Vec<(DateTime<Utc>, usize, Entry)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let is_note = matches!(e.kind, EventKind::Noted { .. });
        // Internal notes are the department's, as in chat.
        if is_note && !staff {
            continue;
        }
        timeline.push((
            e.at,
            i,
            Entry {
                at: when(&s, e.at),
                who: e.actor.as_ref().map_or("Switchboard".into(), name),
                kind: if is_note { "note" } else { "event" },
                text: neutralize_mentions(&e.kind.describe_with(&|u| name(u))),
                state: String::new(),
            },
        ));
    }
    // A reporter reads the thread they can read in chat, the flagged message's: replies
    // under the department's alert are the department's.
    let replies: Vec<_> = replies
        .into_iter()
        .filter(|r| {
            staff
                || t.source
                    .as_ref()
                    .is_some_and(|src| src.channel == r.channel)
        })
        .collect();
    for (i, r) in replies.iter().enumerate() {
        let said = neutralize_mentions(&r.text);
        let (text, state) = match (r.deleted_at, r.edited_at) {
            (Some(at), _) if staff => (said, format!("deleted {}", when(&s, at))),
            (Some(at), _) => (
                "This reply was deleted.".to_string(),
                format!("deleted {}", when(&s, at)),
            ),
            (None, Some(at)) => (said, format!("edited {}", when(&s, at))),
            (None, None) => (said, String::new()),
        };
        timeline.push((
            r.at,
            events.len() + i,
            Entry {
                at: when(&s, r.at),
                who: name(&r.author),
                kind: "reply",
                text,
                state,
            },
        ));
    }
    timeline.sort_by_key(|(at, i, _)| (*at, *i));
    let mine = t
        .assignee
        .as_ref()
        .is_some_and(|a| dir.same_person(a, &v.actor.user));
    let page = TicketPage {
        nav: s.nav(&v),
        id: t.id.to_string(),
        number: t.id.0,
        // Chat's own mention syntax (`<!channel>`, `<@U1|bob>`) reads as the names it shows.
        title: neutralize_mentions(&t.title),
        body: neutralize_mentions(&t.body),
        facts,
        links,
        entries: timeline.into_iter().map(|(_, _, e)| e).collect(),
        staff,
        may_claim: staff && t.status.is_active() && !mine,
        statuses: choices(
            &wire(&t.status),
            Status::ALL
                .into_iter()
                .map(|st| (wire(&st), st.label().to_string())),
        ),
        // Only our own words: a link cannot put text of its choosing on the page.
        done: match done.done.trim() {
            "claim" => format!("You claimed {}. It is now {}.", t.id, t.status.label()),
            "status" => format!("{} is now {}.", t.id, t.status.label()),
            "note" => format!("Your note is on {}.", t.id),
            _ => String::new(),
        },
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// The permission `commands/ticket.toml` gives `/ticket sub`, so a page asks what chat does.
fn permission(s: &WebState, sub: &str) -> Permission {
    s.desk
        .commands
        .slash(crate::cmd::ticket::NAME)
        .and_then(|c| c.subcommand(sub))
        .map_or(Permission::Member, |spec| spec.permission)
}

/// Applies `change` as the viewer through the desk (which checks their standing and updates
/// the chat alert), then shows the ticket again with what happened.
async fn act(
    s: &WebState,
    v: &Viewer,
    number: &str,
    sub: &str,
    action: &str,
    change: Change,
) -> Result<Response, WebError> {
    let id = ticket_in_path(number)?;
    let (t, _) = s
        .desk
        .change(&v.actor, id, permission(s, sub), action, change)
        .await?;
    Ok(see_other(&format!("/ui/tickets/{}?done={sub}", t.id.0)))
}

/// `POST /ui/tickets/{n}/claim`.
pub(crate) async fn claim(
    State(s): State<WebState>,
    headers: HeaderMap,
    Path(number): Path<String>,
    WebForm(form): WebForm<CsrfForm>,
) -> Result<Response, WebError> {
    let v = s.poster(&headers, &form.csrf).await?;
    act(&s, &v, &number, "claim", "claimed", Change::Claim).await
}

/// The status form.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

/// `POST /ui/tickets/{n}/status`.
pub(crate) async fn status(
    State(s): State<WebState>,
    headers: HeaderMap,
    Path(number): Path<String>,
    WebForm(form): WebForm<StatusForm>,
) -> Result<Response, WebError> {
    let v = s.poster(&headers, &form.csrf).await?;
    let to: Status = form.status.trim().parse().map_err(|e| {
        WebError::BadRequest(format!("Status `{}` is unknown: {e}", form.status.trim()))
    })?;
    act(
        &s,
        &v,
        &number,
        "status",
        "status changed",
        Change::SetStatus { to, reason: None },
    )
    .await
}

/// The note form.
#[derive(Debug, Deserialize)]
pub(crate) struct NoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// `POST /ui/tickets/{n}/note`.
pub(crate) async fn note(
    State(s): State<WebState>,
    headers: HeaderMap,
    Path(number): Path<String>,
    WebForm(form): WebForm<NoteForm>,
) -> Result<Response, WebError> {
    let v = s.poster(&headers, &form.csrf).await?;
    let text = form.text.trim();
    if text.is_empty() {
        return Err(WebError::BadRequest(
            "The note is empty; write something before adding it.".into(),
        ));
    }
    act(
        &s,
        &v,
        &number,
        "note",
        "has your note",
        Change::Note(text.to_string()),
    )
    .await
}
