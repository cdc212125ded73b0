//! The tickets API: other systems open tickets (`POST /api/tickets`), read them
//! (`GET /api/tickets/T-42`) and follow up on them (`POST /api/tickets/T-42/events`: a note,
//! a status change), and monitoring sends its alerts (`POST /api/alertmanager`,
//! `POST /api/grafana`), each with a token from `[[api.tokens]]`.
//!
//! Owns API authentication for every `/api/` endpoint (bearer tokens compared in constant
//! time, 401 without or with a wrong token, 403 for an endpoint or department the token does
//! not cover) and the tickets endpoints' JSON: input checked whole, every problem listed in
//! one 400. What a caller may do to tickets is the desk's (`desk::api`); this module must not
//! hold help-desk rules.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::Mac;
use serde_json::{json, Map, Value};

use crate::config::{ApiEndpoint, ApiToken, Secret};
use chrono::Datelike;

use crate::core::ticket::{Change, Link, Origin, Ticket};
use crate::core::types::{Priority, Status, TicketRef};
use crate::desk::{ApiOpened, ApiTicket, Desk, DeskError, MonitoringAlert, Notification};

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// Longest title accepted, in characters.
const MAX_TITLE: usize = 200;
/// Longest body or note accepted, in characters.
const MAX_TEXT: usize = 16_000;
/// Most tags, labels or links accepted on one ticket.
const MAX_ITEMS: usize = 50;
/// Longest external id, label, tag or link accepted, in characters.
const MAX_SHORT: usize = 500;

/// Fields `POST /api/tickets` accepts.
const TICKET_FIELDS: &[&str] = &[
    "title",
    "body",
    "department",
    "priority",
    "tags",
    "labels",
    "links",
    "external_id",
];

/// What the API endpoints need.
#[derive(Clone)]
pub struct ApiState {
    /// The desk (config, store, rules).
    pub desk: Desk,
    /// Every token: `[[api.tokens]]` and `SWITCHBOARD_API_TOKEN`.
    pub tokens: Arc<[ApiToken]>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

/// Why an API request was refused. Every kind but `Internal` is the caller's to fix and is
/// answered with what was wrong; `Internal` is logged with a reference the answer carries.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or one that matches none (401).
    #[error(
        "send an API token as `Authorization: Bearer <token>` (see [[api.tokens]] in the README)"
    )]
    Unauthorized,
    /// A token used outside its endpoints or departments (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such ticket (404).
    #[error("{0}")]
    NotFound(String),
    /// The request is wrong: what, and every problem found (400).
    #[error("{error}")]
    Invalid {
        /// What was refused.
        error: String,
        /// Each problem, `field: why`.
        details: Vec<String>,
    },
    /// The desk refused or failed (400, 403 or 500 by its kind).
    #[error(transparent)]
    Desk(Box<DeskError>),
}

impl From<DeskError> for ApiError {
    fn from(e: DeskError) -> Self {
        ApiError::Desk(Box::new(e))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        DeskError::from(e).into()
    }
}

impl ApiError {
    fn invalid(error: &str, details: Vec<String>) -> Self {
        ApiError::Invalid {
            error: error.to_string(),
            details,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({ "error": ApiError::Unauthorized.to_string() })),
            )
                .into_response(),
            ApiError::Forbidden(e) => problem(StatusCode::FORBIDDEN, &e, vec![]),
            ApiError::NotFound(e) => problem(StatusCode::NOT_FOUND, &e, vec![]),
            ApiError::Invalid { error, details } => {
                problem(StatusCode::BAD_REQUEST, &error, details)
            }
            ApiError::Desk(e) => match *e {
                DeskError::Access(a) => problem(StatusCode::FORBIDDEN, &a.to_string(), vec![]),
                // Alertmanager and Grafana send again after a 5xx; Retry-After says when.
                DeskError::Busy(why) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "1")],
                    Json(json!({ "error": why, "details": [] })),
                )
                    .into_response(),
                e if e.is_user_error() => problem(StatusCode::BAD_REQUEST, &e.to_string(), vec![]),
                e => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.chat_message(), vec![]),
            },
        }
    }
}

/// The tickets endpoints, with the body limit.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/tickets", post(create))
        .route("/api/tickets/{id}", get(show))
        .route("/api/tickets/{id}/events", post(follow_up))
        .route("/api/alertmanager", post(alertmanager))
        .route("/api/grafana", post(grafana))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Compares a token in constant time (an HMAC of each under a fixed key, so neither length
/// nor content leaks through timing).
fn same_token(given: &str, expected: &Secret) -> bool {
    let tag = |s: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"switchboard-api-token")
            .expect("HMAC takes any key length");
        mac.update(s.as_bytes());
        mac.finalize().into_bytes()
    };
    let (a, b) = (tag(given), tag(expected.expose()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The credentials of an `Authorization` header: `Bearer <token>`, or `Basic` with the
/// token's name as user and the token as password (Grafana's basic auth); scheme names are
/// case-insensitive (RFC 7235).
fn credentials(value: &str) -> Option<(Option<String>, String)> {
    use base64::Engine;
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some((None, rest.trim().to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some((Some(user.to_string()), password.to_string()));
    }
    None
}

/// Whether the request's `Authorization: Bearer` token is `expected`, compared in constant
/// time (for `/metrics` behind `SWITCHBOARD_METRICS_TOKEN`).
pub fn bearer_matches(headers: &HeaderMap, expected: &Secret) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(credentials)
        .is_some_and(|(user, token)| user.is_none() && same_token(&token, expected))
}

/// A JSON problem answer: `{"error": …, "details": […]}`.
pub fn problem(status: StatusCode, error: &str, details: Vec<String>) -> Response {
    (status, Json(json!({ "error": error, "details": details }))).into_response()
}

/// The token the request carries, if it may use `endpoint`: 401 without a token or with one
/// that matches none, 403 when it matches a token not allowed there. Every token is
/// compared, so the time taken does not say which one matched.
pub fn authenticate<'t>(
    tokens: &'t [ApiToken],
    headers: &HeaderMap,
    endpoint: ApiEndpoint,
) -> Result<&'t ApiToken, ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(credentials);
    let found = given.and_then(|(user, secret)| {
        tokens
            .iter()
            .fold(None, |hit, t| match same_token(&secret, &t.secret) {
                true => hit.or(Some(t)),
                false => hit,
            })
            // With basic auth, the user must be the token's name.
            .filter(|t| user.as_deref().is_none_or(|u| u == t.name))
    });
    match found {
        None => Err(ApiError::Unauthorized),
        Some(t) if !t.endpoints.contains(&endpoint) => Err(ApiError::Forbidden(format!(
            "the token `{}` may not use the {} endpoints; add \"{}\" to its `endpoints`",
            t.name,
            endpoint.as_str(),
            endpoint.as_str()
        ))),
        Some(t) => Ok(t),
    }
}

/// Reads the body as a JSON object, or answers 400.
fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::invalid("the body must be a JSON object", vec![])),
        Err(e) => Err(ApiError::invalid(
            "the body is not JSON",
            vec![e.to_string()],
        )),
    }
}

/// Collects every problem of one request.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, field: &str, message: impl std::fmt::Display) {
        self.0.push(format!("{field}: {message}"));
    }

    /// An optional string of at most `max` characters.
    fn text(&mut self, o: &Map<String, Value>, field: &str, max: usize) -> Option<String> {
        match o.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() > max => {
                self.add(field, format!("longer than {max} characters"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.add(field, format!("must be a string, not {}", kind(other)));
                None
            }
        }
    }

    /// An optional list of strings, each at most [`MAX_SHORT`] characters.
    fn strings(&mut self, o: &Map<String, Value>, field: &str) -> Vec<String> {
        match o.get(field) {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(items)) if items.len() > MAX_ITEMS => {
                self.add(field, format!("more than {MAX_ITEMS} items"));
                vec![]
            }
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) if s.chars().count() <= MAX_SHORT => Some(s.clone()),
                    Value::String(_) => {
                        self.add(
                            &format!("{field}[{i}]"),
                            format!("longer than {MAX_SHORT} characters"),
                        );
                        None
                    }
                    other => {
                        self.add(
                            &format!("{field}[{i}]"),
                            format!("must be a string, not {}", kind(other)),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.add(field, format!("must be a list, not {}", kind(other)));
                vec![]
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `url` as an absolute http(s) URL, normalised (`<`, `>` and spaces percent-encoded, so
/// it cannot break out of chat link syntax); `None` for anything else.
fn web_url(url: &str) -> Option<String> {
    url::Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .map(|u| u.to_string())
}

/// Reads and checks a `POST /api/tickets` body, listing every problem.
fn ticket_request(desk: &Desk, o: &Map<String, Value>) -> Result<ApiTicket, Vec<String>> {
    let mut p = Problems::default();
    for k in o.keys() {
        if !TICKET_FIELDS.contains(&k.as_str()) {
            p.add(
                k,
                format!("unknown field; accepted: {}", TICKET_FIELDS.join(", ")),
            );
        }
    }
    let title = p.text(o, "title", MAX_TITLE).unwrap_or_default();
    let body = p.text(o, "body", MAX_TEXT).unwrap_or_default();
    if title.trim().is_empty() && body.trim().is_empty() && !o.contains_key("title") {
        p.add("title", "is required (or a body to take it from)");
    } else if title.trim().is_empty() && body.trim().is_empty() {
        p.add("title", "is empty, and so is the body");
    }
    let department = p.text(o, "department", MAX_SHORT).and_then(|d| {
        match desk.config.directory.department(&d.to_ascii_lowercase()) {
            Some(dept) => Some(dept.name.clone()),
            None => {
                p.add(
                    "department",
                    format!(
                        "there is no department `{d}`; known: {}",
                        desk.config
                            .directory
                            .departments
                            .iter()
                            .map(|d| d.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                None
            }
        }
    });
    let priority = p
        .text(o, "priority", MAX_SHORT)
        .and_then(|s| match s.parse::<Priority>() {
            Ok(pr) => Some(pr),
            Err(e) => {
                p.add("priority", e);
                None
            }
        });
    let mut tags = Vec::new();
    for (i, t) in p.strings(o, "tags").into_iter().enumerate() {
        let t = t.trim().to_ascii_lowercase();
        if t.is_empty()
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        {
            p.add(
                &format!("tags[{i}]"),
                "use letters, digits and - _ . / only",
            );
        } else if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let mut labels = Vec::new();
    match o.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) if m.len() > MAX_ITEMS => {
            p.add("labels", format!("more than {MAX_ITEMS} labels"));
        }
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v {
                    Value::String(s) if s.chars().count() <= MAX_SHORT && k.len() <= MAX_SHORT => {
                        labels.push((k.clone(), s.clone()));
                    }
                    Value::String(_) => p.add(
                        &format!("labels.{k}"),
                        format!("longer than {MAX_SHORT} characters"),
                    ),
                    other => p.add(
                        &format!("labels.{k}"),
                        format!("must be a string, not {}", kind(other)),
                    ),
                }
            }
        }
        Some(other) => p.add(
            "labels",
            format!(
                "must be an object of strings such as {{\"team\": \"payments\"}}, not {}",
                kind(other)
            ),
        ),
    }
    let mut links = Vec::new();
    match o.get("links") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.len() > MAX_ITEMS => {
            p.add("links", format!("more than {MAX_ITEMS} links"));
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("links[{i}]");
                let (title, url) = match item {
                    Value::String(u) => (u.clone(), u.clone()),
                    Value::Object(l) => match (l.get("url"), l.get("title")) {
                        (Some(Value::String(u)), Some(Value::String(t))) => (t.clone(), u.clone()),
                        (Some(Value::String(u)), None) => (u.clone(), u.clone()),
                        _ => {
                            p.add(
                                &field,
                                "must be {\"url\": \"https://…\", \"title\": \"…\"} with strings",
                            );
                            continue;
                        }
                    },
                    other => {
                        p.add(
                            &field,
                            format!("must be a URL or an object, not {}", kind(other)),
                        );
                        continue;
                    }
                };
                if url.chars().count() > MAX_SHORT || title.chars().count() > MAX_SHORT {
                    p.add(&field, format!("longer than {MAX_SHORT} characters"));
                } else {
                    match web_url(&url) {
                        Some(url) => links.push(Link {
                            title: title.trim().to_string(),
                            url,
                        }),
                        None => p.add(&field, format!("`{url}` is not an http(s) URL")),
                    }
                }
            }
        }
        Some(other) => p.add("links", format!("must be a list, not {}", kind(other))),
    }
    let external_id = p.text(o, "external_id", MAX_SHORT);
    if external_id.as_deref().is_some_and(|e| e.trim().is_empty()) {
        p.add("external_id", "must not be empty (leave it out instead)");
    }
    if !p.0.is_empty() {
        return Err(p.0);
    }
    Ok(ApiTicket {
        title,
        body,
        department,
        priority,
        tags,
        labels,
        links,
        external_id: external_id.map(|e| e.trim().to_string()),
    })
}

/// The address of a ticket in this API.
fn ticket_url(id: TicketRef) -> String {
    format!("/api/tickets/{id}")
}

/// A ticket as the API shows it, with its links and its history.
fn ticket_json(desk: &Desk, t: &Ticket, events: &[crate::core::ticket::TicketEvent]) -> Value {
    let links: Vec<&Link> = crate::core::ticket::links(events).collect();
    json!({
        "ticket": t.id.to_string(),
        "url": ticket_url(t.id),
        "title": t.title,
        "body": t.body,
        "status": t.status,
        "department": t.department,
        "priority": t.priority,
        "tags": t.tags,
        "reporter": crate::core::message::reporter_name(t, &desk.config.directory),
        "assignee": t.assignee.as_ref().map(|a| desk.config.directory.display_name(a)),
        "created_at": t.created_at,
        "first_response_at": t.first_response_at,
        "resolved_at": t.resolved_at,
        "closed_at": t.closed_at,
        "links": links,
        "events": events.iter().map(|e| json!({
            "at": e.at,
            "by": e.actor.as_ref().map(|a| match a.automation_source() {
                Some(s) => s.to_string(),
                None => desk.config.directory.display_name(a),
            }),
            "what": e.kind.describe_with(&|u| desk.config.directory.display_name(u)),
        })).collect::<Vec<_>>(),
    })
}

/// `POST /api/tickets`.
async fn create(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = authenticate(&s.tokens, &headers, ApiEndpoint::Tickets)?;
    let req = ticket_request(&s.desk, &object(&body)?).map_err(|problems| {
        ApiError::invalid(
            "no ticket was opened; fix these fields and send it again",
            problems,
        )
    })?;
    let (status, t) = match s.desk.open_from_api(token, req).await? {
        ApiOpened::New(t) => (StatusCode::CREATED, t),
        ApiOpened::Existing(t) => (StatusCode::OK, t),
    };
    Ok((
        status,
        [(header::LOCATION, ticket_url(t.id))],
        Json(json!({ "ticket": t.id.to_string(), "url": ticket_url(t.id), "department": t.department })),
    )
        .into_response())
}

/// Reads `T-42` from the path, or answers 404.
fn ticket_ref(id: &str) -> Result<TicketRef, ApiError> {
    id.parse::<TicketRef>()
        .map_err(|e| ApiError::NotFound(format!("no such ticket: {e}")))
}

/// The ticket, if `token` covers its department: 404 when there is none, 403 outside.
async fn visible(s: &ApiState, token: &ApiToken, id: TicketRef) -> Result<Ticket, ApiError> {
    let t = s
        .desk
        .store
        .ticket(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no ticket {id}")))?;
    if !token.covers(&t.department) {
        return Err(ApiError::Forbidden(
            crate::desk::out_of_scope(token, &t.department, true).to_string(),
        ));
    }
    Ok(t)
}

/// The ticket with its history, as the API shows it.
async fn answer(s: &ApiState, t: &Ticket) -> Result<Response, ApiError> {
    let events = s.desk.store.events(t.id).await?;
    Ok(Json(ticket_json(&s.desk, t, &events)).into_response())
}

/// `GET /api/tickets/T-42`.
async fn show(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let token = authenticate(&s.tokens, &headers, ApiEndpoint::Tickets)?;
    let id = ticket_ref(&id)?;
    let t = visible(&s, token, id).await?;
    answer(&s, &t).await
}

/// `POST /api/tickets/T-42/events`: `{"note": "…"}`, `{"status": "resolved", "reason": "…"}`
/// or both (the note first).
async fn follow_up(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = authenticate(&s.tokens, &headers, ApiEndpoint::Tickets)?;
    let id = ticket_ref(&id)?;
    let o = object(&body)?;
    let mut p = Problems::default();
    for k in o.keys() {
        if !["note", "status", "reason"].contains(&k.as_str()) {
            p.add(k, "unknown field; accepted: note, status, reason");
        }
    }
    let note = p
        .text(&o, "note", MAX_TEXT)
        .filter(|n| !n.trim().is_empty());
    let reason = p
        .text(&o, "reason", MAX_SHORT)
        .filter(|r| !r.trim().is_empty());
    let status = p
        .text(&o, "status", MAX_SHORT)
        .and_then(|s| match s.parse::<Status>() {
            Ok(st) => Some(st),
            Err(e) => {
                p.add("status", e);
                None
            }
        });
    if note.is_none() && status.is_none() && p.0.is_empty() {
        p.add("note", "send a note, a status, or both");
    }
    if !p.0.is_empty() {
        return Err(ApiError::invalid(
            "nothing was recorded; fix these fields and send it again",
            p.0,
        ));
    }
    let mut t = visible(&s, token, id).await?;
    let mut changes = Vec::new();
    if let Some(n) = note {
        changes.push(Change::Note(n.trim().to_string()));
    }
    if let Some(to) = status {
        let finished = matches!(t.status, Status::Resolved | Status::Closed);
        changes.push(if to == Status::Open && finished {
            Change::Reopen { reason }
        } else {
            Change::SetStatus { to, reason }
        });
    }
    for change in changes {
        t = s.desk.change_from_api(token, &t, change).await?.0;
    }
    answer(&s, &t).await
}

/// Most alerts read from one notification.
const MAX_ALERTS: usize = 1000;

/// The text values of a JSON object (labels, annotations); other values are problems.
fn string_map(p: &mut Problems, field: &str, v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        None | Some(Value::Null) => vec![],
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.clone(), s.clone())),
                other => {
                    p.add(
                        &format!("{field}.{k}"),
                        format!("must be a string, not {}", kind(other)),
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            p.add(field, format!("must be an object, not {}", kind(other)));
            vec![]
        }
    }
}

/// A time as both tools write it; Go's zero time (`0001-01-01T00:00:00Z`) means none.
fn alert_time(
    p: &mut Problems,
    field: &str,
    v: Option<&Value>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let s = match v {
        None | Some(Value::Null) => return None,
        Some(Value::String(s)) => s,
        Some(other) => {
            p.add(
                field,
                format!("must be an RFC 3339 time, not {}", kind(other)),
            );
            return None;
        }
    };
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) if t.year() <= 1 => None,
        Ok(t) => Some(t.with_timezone(&chrono::Utc)),
        Err(e) => {
            p.add(field, format!("`{s}` is not an RFC 3339 time ({e})"));
            None
        }
    }
}

/// The fingerprint of an alert sent without one: its sorted labels identify it.
fn labels_fingerprint(labels: &[(String, String)]) -> String {
    let mut sorted = labels.to_vec();
    sorted.sort();
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(b"alert").expect("HMAC takes any key length");
    for (k, v) in &sorted {
        mac.update(k.as_bytes());
        mac.update(&[0]);
        mac.update(v.as_bytes());
        mac.update(&[0]);
    }
    hex::encode(&mac.finalize().into_bytes()[..8])
}

/// Reads a notification (Alertmanager's webhook payload, version 4, or Grafana's webhook
/// contact point payload, which carries the same alert fields and a few more), listing every
/// problem.
fn notification(origin: Origin, o: &Map<String, Value>) -> Result<Notification, Vec<String>> {
    let mut p = Problems::default();
    if origin == Origin::Alertmanager {
        match o.get("version") {
            Some(Value::String(v)) if v == "4" => {}
            Some(v) => p.add(
                "version",
                format!("{v} is not supported; Alertmanager's webhook payload version 4 is"),
            ),
            None => p.add("version", "is required (Alertmanager sends \"4\")"),
        }
    }
    let group_key = match o.get("groupKey") {
        Some(Value::String(g)) => g.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => {
            p.add("groupKey", format!("must be a string, not {}", kind(other)));
            String::new()
        }
    };
    let items: &[Value] = match o.get("alerts") {
        Some(Value::Array(a)) if a.len() > MAX_ALERTS => {
            p.add("alerts", format!("more than {MAX_ALERTS} alerts"));
            &[]
        }
        Some(Value::Array(a)) => a,
        _ => {
            p.add("alerts", "is required: the list of alerts");
            &[]
        }
    };
    let mut alerts = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = |f: &str| format!("alerts[{i}].{f}");
        let Value::Object(a) = item else {
            p.add(&format!("alerts[{i}]"), "must be an object");
            continue;
        };
        let resolved = match a.get("status").and_then(Value::as_str) {
            Some("firing") => false,
            Some("resolved") => true,
            _ => {
                p.add(&field("status"), "must be \"firing\" or \"resolved\"");
                continue;
            }
        };
        let labels = string_map(&mut p, &field("labels"), a.get("labels"));
        let annotations = string_map(&mut p, &field("annotations"), a.get("annotations"));
        let fingerprint = match a.get("fingerprint") {
            Some(Value::String(f)) if !f.trim().is_empty() && f.len() <= MAX_SHORT => {
                f.trim().to_string()
            }
            None | Some(Value::Null) if !labels.is_empty() => labels_fingerprint(&labels),
            _ => {
                p.add(
                    &field("fingerprint"),
                    "is required (or labels to derive it from)",
                );
                continue;
            }
        };
        let starts_at = alert_time(&mut p, &field("startsAt"), a.get("startsAt"));
        let ends_at = alert_time(&mut p, &field("endsAt"), a.get("endsAt"));
        let text = |k: &str| a.get(k).and_then(Value::as_str);
        let note = |k: &str| {
            annotations
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let mut links: Vec<Link> = Vec::new();
        for (title, url) in [
            ("Source", text("generatorURL")),
            ("Runbook", note("runbook_url").or(note("runbook"))),
            (
                "Dashboard",
                text("dashboardURL")
                    .or(note("dashboard_url"))
                    .or(note("dashboard")),
            ),
            ("Panel", text("panelURL")),
            ("Silence", text("silenceURL")),
        ] {
            if let Some(url) = url.and_then(web_url) {
                if !links.iter().any(|l| l.url == url) {
                    links.push(Link {
                        title: title.to_string(),
                        url,
                    });
                }
            }
        }
        alerts.push(MonitoringAlert {
            fingerprint,
            resolved,
            labels,
            annotations,
            starts_at,
            ends_at,
            links,
        });
    }
    if !p.0.is_empty() {
        return Err(p.0);
    }
    Ok(Notification {
        origin,
        group_key,
        alerts,
    })
}

/// Reads and handles a monitoring notification for the token's endpoint.
async fn monitoring(
    s: ApiState,
    headers: HeaderMap,
    body: Bytes,
    endpoint: ApiEndpoint,
    origin: Origin,
) -> Result<Response, ApiError> {
    let token = authenticate(&s.tokens, &headers, endpoint)?;
    let n = notification(origin, &object(&body)?).map_err(|problems| {
        ApiError::invalid(
            "nothing was recorded; the notification is not what the tool sends",
            problems,
        )
    })?;
    let outcomes = s.desk.notify(token, n).await?;
    Ok(Json(json!({
        "alerts": outcomes.iter().map(|o| json!({
            "fingerprint": o.fingerprint,
            "ticket": o.ticket.map(|t| t.to_string()),
            "outcome": o.outcome,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `POST /api/alertmanager`: Alertmanager's webhook receiver.
async fn alertmanager(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    monitoring(
        s,
        headers,
        body,
        ApiEndpoint::Alertmanager,
        Origin::Alertmanager,
    )
    .await
}

/// `POST /api/grafana`: Grafana alerting's webhook contact point.
async fn grafana(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    monitoring(s, headers, body, ApiEndpoint::Grafana, Origin::Grafana).await
}
