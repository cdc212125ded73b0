//! The web view under `/ui/` (`[web] enabled`): the ticket list and search, each ticket's
//! transcript, the dashboards and the SLA at-risk list, as server-rendered HTML (askama
//! templates in `templates/web/`, one stylesheet, charts as inline SVG, no JavaScript).
//!
//! Owns sign-in (a link from chat, used once, then a session in the database under the
//! SHA-256 of its id, carried by an HttpOnly, SameSite=Lax cookie, `Secure` unless the
//! public URL is plain HTTP on this machine), the CSRF token on every form, the pages' HTTP
//! answers and their security headers. Must not hold help-desk rules: who may see what is the
//! directory's (as in chat), and every change goes through [`Desk::change`], so it updates the
//! chat alert exactly as a button or a command would.

mod dashboard;
mod pages;
mod svg;

use askama::Template;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::config::WebSettings;
use crate::core::directory::{Actor, Permission};
use crate::desk::web::{random_token, token_hash};
use crate::desk::{Desk, DeskError};
use crate::store::{TicketScope, WebLink, WebSession};

/// Largest form accepted (a note is the largest thing posted).
const MAX_FORM: usize = 64 * 1024;
/// The session cookie's name; `__Host-` makes browsers refuse it unless it is `Secure`, for
/// `/` and without a domain, so no other site or sub-domain can plant one.
const COOKIE_SECURE: &str = "__Host-switchboard";
/// The session cookie's name where it cannot be `Secure` (plain HTTP on this machine).
const COOKIE_PLAIN: &str = "switchboard";
/// What every page may load: its own stylesheet and nothing else; forms post only here.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the pages need: the desk (config, store, rules) and the `[web]` settings.
#[derive(Clone)]
pub struct WebState {
    /// The desk.
    pub desk: Desk,
    /// `[web]`.
    pub settings: WebSettings,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("public_url", &self.settings.public_url)
            .finish_non_exhaustive()
    }
}

impl WebState {
    /// The web view of `desk`, when `[web]` is enabled.
    pub fn of(desk: &Desk) -> Option<Self> {
        desk.config.web.clone().map(|settings| Self {
            desk: desk.clone(),
            settings,
        })
    }

    fn cookie_name(&self) -> &'static str {
        if self.settings.secure_cookie {
            COOKIE_SECURE
        } else {
            COOKIE_PLAIN
        }
    }

    /// `r` setting the session cookie to `value` for `max_age` seconds (0 ends it).
    fn with_cookie(&self, mut r: Response, value: &str, max_age: i64) -> Response {
        let cookie = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            self.cookie_name(),
            if self.settings.secure_cookie {
                "; Secure"
            } else {
                ""
            }
        );
        // The value is our own base64url token: always a valid header.
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r
    }
}

/// Every `/ui/` route.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/style.css", get(style))
        .route("/ui/signin/{token}", get(signin_page))
        .route("/ui/signin", post(signin))
        .route("/ui/signout", post(signout))
        .route("/ui/tickets", get(pages::list))
        .route("/ui/tickets/{id}", get(pages::ticket))
        .route("/ui/tickets/{id}/claim", post(pages::claim))
        .route("/ui/tickets/{id}/status", post(pages::status))
        .route("/ui/tickets/{id}/note", post(pages::note))
        .route("/ui/dashboard", get(dashboard::dashboard))
        .route("/ui/at-risk", get(dashboard::at_risk))
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .with_state(state)
}

/// Why a page was refused. Every kind but a desk failure that is not the user's is shown as
/// is; those are logged and answered with an apology and a reference.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No session, or it ended (401); `next` is the page that was asked for.
    #[error(
        "Sign in first: run `/ticket web` in Slack or Discord and open the link it answers \
         with (it works once, for ten minutes)."
    )]
    SignIn,
    /// A sign-in link that cannot be used (410).
    #[error("{0}")]
    Link(&'static str),
    /// The viewer may not see or do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// A form without this session's CSRF token (403).
    #[error(
        "This form did not come from your signed-in page, or your session changed. Go back, \
         reload the page and try again."
    )]
    Csrf,
    /// No such page or ticket (404).
    #[error("{0}")]
    NotFound(String),
    /// A filter or form value that cannot be read (400).
    #[error("{0}")]
    BadRequest(String),
    /// The desk refused or failed.
    #[error(transparent)]
    Desk(Box<DeskError>),
}

impl From<DeskError> for WebError {
    fn from(e: DeskError) -> Self {
        WebError::Desk(Box::new(e))
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        DeskError::from(e).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, heading) = match &self {
            WebError::SignIn => (StatusCode::UNAUTHORIZED, "Sign in"),
            WebError::Link(_) => (StatusCode::GONE, "This link cannot be used"),
            WebError::Forbidden(_) | WebError::Csrf => (StatusCode::FORBIDDEN, "Not allowed"),
            WebError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            WebError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Check what you entered"),
            WebError::Desk(e) => match **e {
                DeskError::Access(_) => (StatusCode::FORBIDDEN, "Not allowed"),
                DeskError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "Busy"),
                ref e if e.is_user_error() => (StatusCode::BAD_REQUEST, "That did not work"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
            },
        };
        let text = match &self {
            WebError::Desk(e) => e.chat_message(),
            other => other.to_string(),
        };
        let page = Notice {
            nav: Nav::default(),
            heading,
            text: &text,
        };
        html(status, page.render())
    }
}

/// A signed-in viewer: who, and this session's CSRF token.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// The person, as chat saw them at sign-in.
    pub actor: Actor,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// The SHA-256 of the session id (to end it).
    id_hash: String,
}

impl WebState {
    /// The viewer of this request, or [`WebError::SignIn`].
    pub(crate) async fn viewer(&self, headers: &HeaderMap) -> Result<Viewer, WebError> {
        let id = cookie(headers, self.cookie_name()).ok_or(WebError::SignIn)?;
        let id_hash = token_hash(id);
        let session = self
            .desk
            .store
            .web_session(&id_hash, self.desk.now())
            .await?
            .ok_or(WebError::SignIn)?;
        Ok(Viewer {
            actor: Actor {
                user: session.grant.user,
                roles: session.grant.roles,
            },
            csrf: session.csrf,
            id_hash,
        })
    }

    /// The viewer, who must have sent this session's CSRF token with the form, from a page
    /// of this site.
    pub(crate) async fn poster(&self, headers: &HeaderMap, csrf: &str) -> Result<Viewer, WebError> {
        same_site(headers)?;
        let v = self.viewer(headers).await?;
        if !same_secret(&v.csrf, csrf) {
            return Err(WebError::Csrf);
        }
        Ok(v)
    }

    /// The navigation bar for `v`.
    pub(crate) fn nav(&self, v: &Viewer) -> Nav {
        let dir = &self.desk.config.directory;
        Nav {
            name: dir.display_name(&v.actor.user),
            csrf: v.csrf.clone(),
            signed_in: true,
            dashboards: may_see_dashboards(&self.desk, &v.actor),
            staff: dir.is_staff(&v.actor),
        }
    }

    /// The tickets `v` may see: `None` for every ticket (admins), else their departments'
    /// and their own.
    pub(crate) fn scope(&self, v: &Viewer) -> Option<TicketScope> {
        let dir = &self.desk.config.directory;
        if dir.is_admin(&v.actor) {
            return None;
        }
        Some(TicketScope {
            departments: dir
                .departments
                .iter()
                .filter(|d| dir.is_member(&v.actor, d))
                .map(|d| d.name.clone())
                .collect(),
            reporters: dir.accounts(&v.actor.user),
        })
    }

    /// Whether `v` is staff of `department` (its members and leads, and admins): they see
    /// its internal notes and the text of deleted replies, and may work its tickets.
    pub(crate) fn is_member_of(&self, v: &Viewer, department: &str) -> bool {
        let dir = &self.desk.config.directory;
        dir.is_admin(&v.actor)
            || dir
                .department(department)
                .is_some_and(|d| dir.is_member(&v.actor, d))
    }
}

/// Leads (of any department) and admins see the dashboards, as they read the digests.
fn may_see_dashboards(desk: &Desk, actor: &Actor) -> bool {
    desk.config
        .directory
        .check(actor, Permission::Lead, None, "see dashboards")
        .is_ok()
}

/// Refuses a form another site made the browser post (browsers say so in `Sec-Fetch-Site`).
/// Sign-in has no session and so no CSRF token yet: without this, another site could sign a
/// visitor in as someone else with a link of its own.
fn same_site(headers: &HeaderMap) -> Result<(), WebError> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("cross-site" | "same-site") => Err(WebError::Csrf),
        _ => Ok(()),
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in the request, if sent.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// An HTML answer with the headers every page carries: no caching (pages show private
/// tickets), no referrer (a sign-in page's address holds its token), the content policy.
pub(crate) fn html(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let reference = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
            tracing::error!(reference = %reference, error = %e, "a web page failed to render");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Sorry, this page failed. Give your admin this reference: {reference}."),
            )
                .into_response();
        }
    };
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    r
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
}

/// A redirect after a form (303: the browser follows with GET).
pub(crate) fn see_other(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    secure_headers(r.headers_mut());
    r
}

/// The navigation bar's facts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Nav {
    /// The viewer's name.
    pub name: String,
    /// The session's CSRF token (for the sign-out form).
    pub csrf: String,
    /// Whether anyone is signed in.
    pub signed_in: bool,
    /// Whether the viewer sees the dashboards.
    pub dashboards: bool,
    /// Whether the viewer is staff (sees the at-risk list).
    pub staff: bool,
}

/// A page with a heading and one paragraph: errors and notices.
#[derive(Template)]
#[template(path = "web/notice.html")]
struct Notice<'a> {
    nav: Nav,
    heading: &'a str,
    text: &'a str,
}

/// The sign-in page a link from chat opens: one button, so link previews and prefetching
/// (which follow links but do not post forms) cannot use the link up.
#[derive(Template)]
#[template(path = "web/signin.html")]
struct SignInPage<'a> {
    nav: Nav,
    token: &'a str,
}

async fn home(State(s): State<WebState>, headers: HeaderMap) -> Response {
    match s.viewer(&headers).await {
        Ok(_) => see_other("/ui/tickets"),
        Err(e) => e.into_response(),
    }
}

async fn style() -> Response {
    let mut r = include_str!("style.css").into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn signin_page(Path(token): Path<String>) -> Response {
    let page = SignInPage {
        nav: Nav::default(),
        token: &token,
    };
    html(StatusCode::OK, page.render())
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
struct SignInForm {
    token: String,
}

async fn signin(
    State(s): State<WebState>,
    headers: HeaderMap,
    WebForm(form): WebForm<SignInForm>,
) -> Result<Response, WebError> {
    same_site(&headers)?;
    let now = s.desk.now();
    let (grant, next) =
        match s
            .desk
            .store
            .take_web_link(&token_hash(form.token.trim()), now)
            .await?
        {
            WebLink::Valid { grant, next } => (grant, next),
            WebLink::Used => {
                return Err(WebError::Link(
                    "This sign-in link was used already; each works once. Run `/ticket web` in \
                 chat for a new one.",
                ))
            }
            WebLink::Expired => return Err(WebError::Link(
                "This sign-in link has expired (links work for ten minutes). Run `/ticket web` \
                 in chat for a new one.",
            )),
            WebLink::Unknown => return Err(WebError::Link(
                "This is not a sign-in link Switchboard gave. Run `/ticket web` in chat for one.",
            )),
        };
    let id = random_token()?;
    let session = WebSession {
        grant,
        csrf: random_token()?,
        expires_at: now + s.settings.session_lifetime,
    };
    s.desk
        .store
        .add_web_session(&token_hash(&id), &session, now)
        .await?;
    // Only a path of our own: a stored `next` is ours, but never send a browser elsewhere.
    let to = next
        .filter(|n| !n.starts_with('/') && !n.contains("//") && !n.contains('\\'))
        .map_or("/ui/tickets".to_string(), |n| format!("/ui/{n}"));
    Ok(s.with_cookie(
        see_other(&to),
        &id,
        s.settings.session_lifetime.num_seconds(),
    ))
}

/// A posted form, read as axum's `Form` reads it; one it cannot read (a missing field, a body
/// that is not a form) answers with the notice page and what was wrong, as every other
/// mistake does.
pub(crate) struct WebForm<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for WebForm<T> {
    type Rejection = WebError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, WebError> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(v)) => Ok(WebForm(v)),
            Err(e) => Err(WebError::BadRequest(format!(
                "This form could not be read ({}). Go back, reload the page and try again.",
                e.body_text()
            ))),
        }
    }
}

/// A page's filters from its address, read as axum's `Query` reads them; an address it cannot
/// read answers with the notice page.
pub(crate) struct WebQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for WebQuery<T>
{
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, WebError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(WebQuery(v)),
            Err(e) => Err(WebError::BadRequest(format!(
                "This address could not be read ({}). Start again from the ticket list.",
                e.body_text()
            ))),
        }
    }
}

/// A form that carries only the CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    /// This session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

async fn signout(
    State(s): State<WebState>,
    headers: HeaderMap,
    WebForm(form): WebForm<CsrfForm>,
) -> Result<Response, WebError> {
    let v = s.poster(&headers, &form.csrf).await?;
    s.desk.store.end_web_session(&v.id_hash).await?;
    Ok(s.with_cookie(see_other("/ui/"), "", 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; switchboardx=2; switchboard=3"),
        );
        assert_eq!(cookie(&h, "switchboard"), Some("3"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn forms_from_other_sites_are_refused() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("sec-fetch-site", HeaderValue::from_static(v));
            h
        };
        assert!(same_site(&with("same-origin")).is_ok());
        assert!(same_site(&with("none")).is_ok());
        assert!(
            same_site(&HeaderMap::new()).is_ok(),
            "older browsers send none"
        );
        assert!(same_site(&with("cross-site")).is_err());
        assert!(same_site(&with("same-site")).is_err());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}
