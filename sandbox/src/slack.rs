//! A loopback fake of Slack, for tests and `switchboard demo`.
//!
//! Serves the Web API methods the adapter uses (`auth.test`, `chat.postMessage` (a user id as
//! the channel posts to the app's DM), `chat.update`, `chat.getPermalink`,
//! `conversations.history`, `conversations.replies`, `conversations.info`, `users.info`,
//! `usergroups.users.list`, `views.open`, `files.getUploadURLExternal`,
//! `files.completeUploadExternal`, `apps.connections.open`) on `POST /api/{method}`,
//! JSON or form-encoded, with Slack's answers written by hand from its documentation: HTTP 200
//! with `ok: false` and an error code for API errors, bearer-token auth (`not_authed`,
//! `invalid_auth`), and on demand an HTTP 429 with `Retry-After` or a 5xx. Response URLs
//! (`/respond/{id}`, five uses) take interaction answers; upload URLs (`/upload/{id}`) take
//! a file's bytes, which must be as long as announced. Socket Mode runs over `/link`.
//! Commands and interactions are delivered to the app as Slack does: signed form posts in HTTP
//! mode, envelopes answered in the acknowledgement in Socket Mode, with trigger ids that expire
//! after three seconds. A control handle seeds channels and messages, injects faults and reads
//! what was posted. Must never be reachable from outside the machine: it binds 127.0.0.1 only.
//!
//! With [`FakeSlack::set_limits`] the Web API enforces Slack's published rate limits (the
//! model lives in [`crate::limits`]); they are checked after the modelled latency, after auth
//! and argument parsing (`chat.postMessage` is limited per channel, so the check needs the
//! arguments), and before the method runs. Off by default.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// A message as the fake stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    /// Channel id.
    pub channel: String,
    /// Message timestamp (its id).
    pub ts: String,
    /// Parent thread, for replies.
    pub thread_ts: Option<String>,
    /// Author (user id), or the bot.
    pub user: String,
    /// Text.
    pub text: String,
    /// Block Kit blocks, when the poster sent any.
    pub blocks: Option<Value>,
    /// How many times `chat.update` changed it.
    pub edits: u32,
}

/// A fault to answer with instead of the method's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After: seconds`.
    RateLimited(u64),
    /// An HTTP 5xx status.
    ServerError(u16),
}

/// What the control handle tells live Socket Mode connections.
#[derive(Debug, Clone)]
enum SocketCtl {
    /// Send this envelope.
    Envelope(Value),
    /// Send a `disconnect` frame, then close.
    Disconnect,
    /// Close at once, without a frame (a network drop).
    Drop,
}

#[derive(Debug, Default)]
struct FakeState {
    /// How long every API call waits before it is answered (0 in functional tests).
    latency: std::time::Duration,
    token: String,
    app_token: String,
    /// Socket Mode envelopes not yet acknowledged; one whose connection closed before its ack
    /// is sent again on another (or the next) connection, as Slack does.
    unacked: Vec<(String, Value)>,
    /// Which live connection each unacknowledged envelope was sent on.
    sent_on: HashMap<String, u64>,
    acked: Vec<String>,
    /// When each envelope was first pushed, until its ack; then how long the ack took.
    pushed_at: HashMap<String, std::time::Instant>,
    ack_latencies: Vec<std::time::Duration>,
    connections: u32,
    next_envelope: u64,
    /// Live Socket Mode connections, by number; each envelope goes to one of them in turn, as
    /// Slack spreads envelopes over an app's connections.
    sockets: Vec<(u64, tokio::sync::mpsc::UnboundedSender<SocketCtl>)>,
    next_socket: u64,
    turn: usize,
    ws_url: String,
    /// Channel id → (name, whether the bot is a member).
    channels: BTreeMap<String, (String, bool)>,
    /// User id → display name.
    users: BTreeMap<String, String>,
    /// User ids that are bot users (`is_bot: true`), besides the Switchboard bot itself.
    bots: std::collections::BTreeSet<String>,
    /// User group id → member user ids.
    groups: BTreeMap<String, Vec<String>>,
    messages: Vec<SlackMessage>,
    faults: HashMap<String, VecDeque<Fault>>,
    calls: Vec<String>,
    next_ts: u64,
    /// Base URL of the fake's own HTTP server (response URLs live there).
    base_url: String,
    /// Acknowledgement payloads of Socket Mode envelopes, by envelope id.
    ack_payloads: HashMap<String, Value>,
    /// Trigger ids handed out with interactions, and when.
    triggers: HashMap<String, (std::time::Instant, String)>,
    /// Modals opened with `views.open`, in order.
    views: Vec<OpenedView>,
    /// Response URL id → the user it answers, how many times it was used, and the message
    /// (channel, ts) an interaction came from, which `replace_original` replaces.
    response_urls: HashMap<String, ResponseUrl>,
    /// What the app sent to response URLs, in order.
    responses: Vec<InteractionResponse>,
    next_id: u64,
    /// Bot scopes granted at install (`None`: every scope).
    granted: Option<std::collections::BTreeSet<String>>,
    /// Scopes the app's calls and subscriptions needed so far.
    used: std::collections::BTreeSet<String>,
    /// Files announced with `files.getUploadURLExternal`: id → (name, length, bytes sent).
    pending_files: HashMap<String, (String, usize, Option<Vec<u8>>)>,
    /// Files shared with `files.completeUploadExternal`.
    files: Vec<SharedFile>,
    /// Rate limits being enforced (`None`: off, the default) and their buckets' state.
    limits: Option<crate::limits::SlackLimiter>,
    /// 429 answers the limits gave, by bucket name.
    rate_limited: BTreeMap<String, u32>,
}

/// A file the app shared in a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedFile {
    /// File id.
    pub id: String,
    /// Channel it was shared in.
    pub channel: String,
    /// Thread, if shared in one.
    pub thread_ts: Option<String>,
    /// File name.
    pub filename: String,
    /// Title.
    pub title: Option<String>,
    /// The bytes uploaded.
    pub bytes: Vec<u8>,
}

/// The bot scope a Web API method needs (Slack's method reference; public channels only,
/// since the fake's channels are public). `None` for methods that need none.
pub fn method_scope(method: &str) -> Option<&'static str> {
    Some(match method {
        "chat.postMessage" | "chat.update" => "chat:write",
        "conversations.history" | "conversations.replies" => "channels:history",
        "conversations.info" => "channels:read",
        "users.info" => "users:read",
        "usergroups.users.list" => "usergroups:read",
        "files.getUploadURLExternal" | "files.completeUploadExternal" => "files:write",
        _ => return None,
    })
}

/// The bot scope an Events API event needs to be delivered.
fn event_scope(event: &Value) -> Option<&'static str> {
    match event["type"].as_str()? {
        "reaction_added" | "reaction_removed" => Some("reactions:read"),
        "message" => Some("channels:history"),
        _ => None,
    }
}

/// A response URL the fake handed out.
#[derive(Debug, Clone)]
struct ResponseUrl {
    /// The user who acted.
    user: String,
    /// Posts so far.
    uses: u32,
    /// The message (channel, ts) the interaction came from.
    origin: Option<(String, String)>,
}

/// A modal the app opened.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedView {
    /// The view id the fake gave it.
    pub id: String,
    /// The user it was opened for.
    pub user: String,
    /// The view as the app sent it.
    pub view: Value,
}

/// A message the app sent to a response URL.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionResponse {
    /// The user who acted (and sees an ephemeral answer).
    pub user: String,
    /// The JSON body.
    pub body: Value,
}

/// How the fake delivers a command or interaction to the app.
#[derive(Debug, Clone)]
pub enum Via {
    /// Signed form posts to the app's HTTP endpoints under `base` (`/slack/commands`,
    /// `/slack/interactivity`), as Slack does with request URLs.
    Http {
        /// The app's base URL.
        base: String,
        /// The signing secret Slack signs with.
        secret: String,
        /// The Unix time to sign with; `None` for now (tests on a manual clock set it).
        timestamp: Option<i64>,
    },
    /// Envelopes over the Socket Mode connection, answered in the acknowledgement.
    Socket,
}

/// Slack's answer to a command or interaction, as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// HTTP status (200 for every Socket Mode acknowledgement).
    pub status: u16,
    /// The acknowledgement body, if any.
    pub body: Option<Value>,
    /// How long the app took to answer.
    pub took: std::time::Duration,
}

/// The running fake and its control handle.
#[derive(Debug, Clone)]
pub struct FakeSlack {
    /// Web API base URL, e.g. `http://127.0.0.1:40123/api`.
    pub api_url: String,
    state: Arc<Mutex<FakeState>>,
}

/// The bot's user id in the fake workspace.
pub const BOT_USER: &str = "U0SWITCHBD";

type Shared = Arc<Mutex<FakeState>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, FakeState> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeSlack {
    /// Starts the fake on a free loopback port; `token` is the bot token it accepts, and
    /// `xapp-` + the same is the app-level token for Socket Mode.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(FakeState {
            token: token.to_string(),
            app_token: app_token_for(token),
            next_ts: 1_772_450_000,
            ..FakeState::default()
        }));
        let app = Router::new()
            .route("/api/{method}", post(call).get(call))
            .route("/link", axum::routing::get(socket))
            .route("/respond/{id}", post(respond))
            .route("/upload/{id}", post(upload))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        lock(&state).ws_url = format!("ws://{addr}/link");
        lock(&state).base_url = format!("http://{addr}");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            api_url: format!("http://{addr}/api"),
            state,
        })
    }

    /// Makes every Web API call wait `latency` before it is answered, as the real Slack does
    /// from a cloud host (50-300 ms); 0, the default, answers at once.
    pub fn set_latency(&self, latency: std::time::Duration) {
        lock(&self.state).latency = latency;
    }

    /// Enforces Slack's rate limits as `limits` models them, or none with `None` (the
    /// default). Starts every bucket afresh; [`FakeSlack::rate_limited`] keeps counting.
    pub fn set_limits(&self, limits: Option<crate::limits::SlackLimits>) {
        lock(&self.state).limits = limits.map(crate::limits::SlackLimiter::new);
    }

    /// The 429 answers the rate limits gave, by bucket name (`chat.postMessage C123`,
    /// `conversations.replies`); injected faults are not counted here.
    pub fn rate_limited(&self) -> BTreeMap<String, u32> {
        lock(&self.state).rate_limited.clone()
    }

    /// How many times each Web API method was called, rejected and faulted calls included.
    pub fn calls_by_method(&self) -> BTreeMap<String, u32> {
        let mut by = BTreeMap::new();
        for m in &lock(&self.state).calls {
            *by.entry(m.clone()).or_insert(0) += 1;
        }
        by
    }

    /// Adds a channel; `bot_member` says whether the bot may post there.
    pub fn add_channel(&self, id: &str, name: &str, bot_member: bool) {
        lock(&self.state)
            .channels
            .insert(id.to_string(), (name.to_string(), bot_member));
    }

    /// Adds a user with a display name.
    pub fn add_user(&self, id: &str, name: &str) {
        lock(&self.state)
            .users
            .insert(id.to_string(), name.to_string());
    }

    /// Adds another app's bot user (`users.info` says `is_bot: true`).
    pub fn add_bot(&self, id: &str, name: &str) {
        let mut s = lock(&self.state);
        s.users.insert(id.to_string(), name.to_string());
        s.bots.insert(id.to_string());
    }

    /// Adds a user group (`S…`) with its members.
    pub fn add_group(&self, id: &str, members: &[&str]) {
        lock(&self.state).groups.insert(
            id.to_string(),
            members.iter().map(|m| m.to_string()).collect(),
        );
    }

    /// Seeds a message a person wrote.
    pub fn seed_message(
        &self,
        channel: &str,
        ts: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) {
        lock(&self.state).messages.push(SlackMessage {
            channel: channel.to_string(),
            ts: ts.to_string(),
            thread_ts: thread_ts.map(str::to_string),
            user: user.to_string(),
            text: text.to_string(),
            blocks: None,
            edits: 0,
        });
    }

    /// Makes the next `times` calls of `method` fail with `fault`.
    pub fn fail_next(&self, method: &str, fault: Fault, times: usize) {
        let mut s = lock(&self.state);
        let q = s.faults.entry(method.to_string()).or_default();
        q.extend(std::iter::repeat_n(fault, times));
    }

    /// Messages the bot posted among every message stored at index `from` or later, and the
    /// index to ask from next time: lets a benchmark watch arrivals without copying them all.
    pub fn bot_messages_since(&self, from: usize) -> (Vec<SlackMessage>, usize) {
        let s = lock(&self.state);
        let new = s
            .messages
            .iter()
            .skip(from)
            .filter(|m| m.user == BOT_USER)
            .cloned()
            .collect();
        (new, s.messages.len())
    }

    /// Messages the bot posted, in order.
    pub fn bot_messages(&self) -> Vec<SlackMessage> {
        lock(&self.state)
            .messages
            .iter()
            .filter(|m| m.user == BOT_USER)
            .cloned()
            .collect()
    }

    /// Delivers an Events API payload over Socket Mode, as an `events_api` envelope; it is
    /// resent on each new connection until acknowledged. Returns the envelope id.
    pub fn push_event(&self, payload: Value) -> String {
        self.note_event_scope(&payload);
        self.push_envelope("events_api", payload)
    }

    /// Grants only these bot scopes, as an install from a manifest would; methods needing
    /// another answer `missing_scope`.
    pub fn grant_only(&self, scopes: &[&str]) {
        lock(&self.state).granted = Some(scopes.iter().map(|s| s.to_string()).collect());
    }

    /// The bot scopes the app's calls, subscriptions, commands and shortcuts needed so far.
    pub fn scopes_used(&self) -> Vec<String> {
        lock(&self.state).used.iter().cloned().collect()
    }

    /// Records the scope an Events API payload is delivered under (call it when delivering an
    /// event over HTTP too).
    pub fn note_event_scope(&self, payload: &Value) {
        if let Some(scope) = event_scope(&payload["event"]) {
            lock(&self.state).used.insert(scope.to_string());
        }
    }

    /// Pushes an envelope of `kind` (`events_api`, `slash_commands`, `interactive`); commands
    /// and interactions accept a response payload in the acknowledgement, as Slack's do.
    fn push_envelope(&self, kind: &str, payload: Value) -> String {
        let mut s = lock(&self.state);
        s.next_envelope += 1;
        let id = format!("env-{}", s.next_envelope);
        let mut envelope = json!({
            "envelope_id": id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
        });
        if kind == "events_api" {
            envelope["retry_attempt"] = json!(0);
            envelope["retry_reason"] = json!("");
        }
        s.unacked.push((id.clone(), envelope.clone()));
        s.pushed_at.insert(id.clone(), std::time::Instant::now());
        s.send_to_one(&id, envelope);
        id
    }

    /// Envelope ids the app acknowledged, in order.
    pub fn acked(&self) -> Vec<String> {
        lock(&self.state).acked.clone()
    }

    /// For each acknowledged envelope, the time from its push to its ack.
    pub fn ack_latencies(&self) -> Vec<std::time::Duration> {
        lock(&self.state).ack_latencies.clone()
    }

    /// How many Socket Mode connections were opened so far.
    pub fn connections(&self) -> u32 {
        lock(&self.state).connections
    }

    /// Sends `disconnect` (reason `refresh_requested`) on every live connection, then closes it.
    pub fn disconnect_sockets(&self) {
        // From now on no envelope goes to these; they stay open for the app's last acks.
        for (_, tx) in std::mem::take(&mut lock(&self.state).sockets) {
            let _ = tx.send(SocketCtl::Disconnect);
        }
    }

    /// Drops every live connection without a word, as a network failure would.
    pub fn drop_sockets(&self) {
        for (_, tx) in &lock(&self.state).sockets {
            let _ = tx.send(SocketCtl::Drop);
        }
    }

    /// Every method called, in order (faulted calls included).
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }
}

fn ok(mut body: Value) -> Response {
    body["ok"] = json!(true);
    Json(body).into_response()
}

fn api_error(code: &str) -> Response {
    Json(json!({ "ok": false, "error": code })).into_response()
}

/// Reads arguments the way Slack does: a JSON body, a form body, or the query string.
fn arguments(
    headers: &HeaderMap,
    body: &Bytes,
    query: Option<&str>,
) -> Result<BTreeMap<String, Value>, &'static str> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut args = BTreeMap::new();
    if let Some(q) = query {
        for (k, v) in url_pairs(q) {
            args.insert(k, Value::String(v));
        }
    }
    if body.is_empty() {
        return Ok(args);
    }
    if ctype.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => args.extend(m),
            _ => return Err("invalid_json"),
        }
    } else {
        let text = std::str::from_utf8(body).map_err(|_| "invalid_form_data")?;
        for (k, v) in url_pairs(text) {
            args.insert(k, Value::String(v));
        }
    }
    Ok(args)
}

fn url_pairs(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes())
        .into_owned()
        .collect()
}

fn text_arg(args: &BTreeMap<String, Value>, key: &str) -> Option<String> {
    match args.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn call(
    State(state): State<Shared>,
    Path(method): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    // A real Web API answers a cloud host in 50-300 ms; benchmarks set this, tests leave 0.
    let latency = lock(&state).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut s = lock(&state);
    s.calls.push(method.clone());
    if let Some(fault) = s.faults.get_mut(&method).and_then(VecDeque::pop_front) {
        return match fault {
            Fault::RateLimited(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs.to_string())],
                Json(json!({ "ok": false, "error": "ratelimited" })),
            )
                .into_response(),
            Fault::ServerError(code) => (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "upstream error",
            )
                .into_response(),
        };
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // apps.connections.open takes the app-level token; every other method the bot token.
    let expected = if method == "apps.connections.open" {
        &s.app_token
    } else {
        &s.token
    };
    match token {
        None => return api_error("not_authed"),
        Some(t) if t != expected => return api_error("invalid_auth"),
        Some(_) => {}
    }
    let args = match arguments(&headers, &body, uri.query()) {
        Ok(a) => a,
        Err(code) => return api_error(code),
    };
    if let Some(limiter) = s.limits.as_mut() {
        let channel = text_arg(&args, "channel");
        let now = std::time::Instant::now();
        if let Err((bucket, wait)) = limiter.check(&method, channel.as_deref(), now) {
            *s.rate_limited.entry(bucket).or_insert(0) += 1;
            return crate::limits::slack_ratelimited(wait);
        }
    }
    if let Some(scope) = method_scope(&method) {
        if let Some(granted) = &s.granted {
            if !granted.contains(scope) {
                let provided = granted.iter().cloned().collect::<Vec<_>>().join(",");
                return Json(json!({ "ok": false, "error": "missing_scope", "needed": scope, "provided": provided }))
                    .into_response();
            }
        }
        s.used.insert(scope.to_string());
    }
    match method.as_str() {
        "auth.test" => ok(json!({
            "url": "https://sandbox.slack.com/",
            "team": "Switchboard Sandbox",
            "user": "switchboard",
            "team_id": "T0SANDBOX",
            "user_id": BOT_USER,
            "bot_id": "B0SWITCHBD",
            "is_enterprise_install": false
        })),
        "apps.connections.open" => ok(json!({ "url": s.ws_url })),
        "chat.postMessage" => post_message(&mut s, &args),
        "chat.update" => update(&mut s, &args),
        "chat.getPermalink" => {
            let (Some(channel), Some(ts)) =
                (text_arg(&args, "channel"), text_arg(&args, "message_ts"))
            else {
                return api_error("invalid_arguments");
            };
            let Some(found) = s
                .messages
                .iter()
                .find(|m| m.channel == channel && m.ts == ts)
            else {
                return api_error("message_not_found");
            };
            // As Slack does: a thread reply's link opens its thread.
            let mut link = format!(
                "https://sandbox.slack.com/archives/{channel}/p{}",
                ts.replace('.', "")
            );
            if let Some(parent) = found.thread_ts.as_ref().filter(|p| **p != ts) {
                link.push_str(&format!("?thread_ts={parent}&cid={channel}"));
            }
            ok(json!({ "channel": channel, "permalink": link }))
        }
        "conversations.history" | "conversations.replies" => history(&s, &method, &args),
        "conversations.info" => {
            let Some(id) = text_arg(&args, "channel") else {
                return api_error("channel_not_found");
            };
            match s.channels.get(&id) {
                Some((name, member)) => ok(json!({ "channel": {
                    "id": id, "name": name, "is_channel": true, "is_private": false,
                    "is_archived": false, "is_member": member, "created": 1_700_000_000
                }})),
                None => api_error("channel_not_found"),
            }
        }
        "views.open" => open_view(&mut s, &args),
        "files.getUploadURLExternal" => {
            let (Some(name), Some(length)) = (
                text_arg(&args, "filename"),
                text_arg(&args, "length").and_then(|l| l.parse::<usize>().ok()),
            ) else {
                return api_error("invalid_arguments");
            };
            if length == 0 {
                return api_error("invalid_arguments");
            }
            s.next_id += 1;
            let id = format!("F{:08}", s.next_id);
            s.pending_files.insert(id.clone(), (name, length, None));
            ok(json!({ "upload_url": format!("{}/upload/{id}", s.base_url), "file_id": id }))
        }
        "files.completeUploadExternal" => complete_upload(&mut s, &args),
        "usergroups.users.list" => {
            let Some(id) = text_arg(&args, "usergroup") else {
                return api_error("no_such_subteam");
            };
            match s.groups.get(&id) {
                Some(users) => ok(json!({ "users": users })),
                None => api_error("no_such_subteam"),
            }
        }
        "users.info" => {
            let Some(id) = text_arg(&args, "user") else {
                return api_error("user_not_found");
            };
            let name = if id == BOT_USER {
                Some("Switchboard")
            } else {
                s.users.get(&id).map(String::as_str)
            };
            match name {
                Some(name) => {
                    let is_bot = id == BOT_USER || s.bots.contains(&id);
                    ok(json!({ "user": {
                        "id": id, "team_id": "T0SANDBOX", "name": name.to_lowercase(), "deleted": false,
                        "real_name": name, "is_bot": is_bot, "is_app_user": false,
                        "profile": { "real_name": name, "display_name": name }
                    }}))
                }
                None => api_error("user_not_found"),
            }
        }
        _ => api_error("unknown_method"),
    }
}

/// Whether the bot may post in `channel` (DM channels, `D…`, always).
fn check_channel(s: &FakeState, channel: &str) -> Result<(), &'static str> {
    if channel.starts_with('D') {
        return Ok(());
    }
    match s.channels.get(channel) {
        None => Err("channel_not_found"),
        Some((_, false)) => Err("not_in_channel"),
        Some((_, true)) => Ok(()),
    }
}

fn post_message(s: &mut FakeState, args: &BTreeMap<String, Value>) -> Response {
    let Some(mut channel) = text_arg(args, "channel") else {
        return api_error("channel_not_found");
    };
    // A user id as the channel posts to the app's direct message with that user.
    if channel.starts_with(['U', 'W']) {
        if !s.users.contains_key(&channel) {
            return api_error("channel_not_found");
        }
        channel = format!("D{}", &channel[1..]);
    }
    if let Err(code) = check_channel(s, &channel) {
        return api_error(code);
    }
    let text = text_arg(args, "text").unwrap_or_default();
    let blocks = args.get("blocks").cloned().filter(|b| !b.is_null());
    if text.is_empty() && blocks.is_none() {
        return api_error("no_text");
    }
    s.next_ts += 1;
    let ts = format!("{}.000100", s.next_ts);
    let thread_ts = text_arg(args, "thread_ts");
    s.messages.push(SlackMessage {
        channel: channel.clone(),
        ts: ts.clone(),
        thread_ts: thread_ts.clone(),
        user: BOT_USER.to_string(),
        text: text.clone(),
        blocks: blocks.clone(),
        edits: 0,
    });
    let mut message = json!({ "type": "message", "user": BOT_USER, "bot_id": "B0SWITCHBD", "text": text, "ts": ts });
    // Absent fields are left out, as Slack does, never sent as null.
    if let Some(t) = thread_ts {
        message["thread_ts"] = json!(t);
    }
    if let Some(b) = blocks {
        message["blocks"] = b;
    }
    ok(json!({ "channel": channel, "ts": ts, "message": message }))
}

fn update(s: &mut FakeState, args: &BTreeMap<String, Value>) -> Response {
    let (Some(channel), Some(ts)) = (text_arg(args, "channel"), text_arg(args, "ts")) else {
        return api_error("message_not_found");
    };
    let text = text_arg(args, "text").unwrap_or_default();
    let blocks = args.get("blocks").cloned().filter(|b| !b.is_null());
    let Some(m) = s
        .messages
        .iter_mut()
        .find(|m| m.channel == channel && m.ts == ts)
    else {
        return api_error("message_not_found");
    };
    if m.user != BOT_USER {
        return api_error("cant_update_message");
    }
    m.text = text.clone();
    m.blocks = blocks.clone();
    m.edits += 1;
    let mut message =
        json!({ "type": "message", "user": BOT_USER, "bot_id": "B0SWITCHBD", "text": text });
    if let Some(b) = blocks {
        message["blocks"] = b;
    }
    ok(json!({ "channel": channel, "ts": ts, "text": text, "message": message }))
}

fn history(s: &FakeState, method: &str, args: &BTreeMap<String, Value>) -> Response {
    let Some(channel) = text_arg(args, "channel") else {
        return api_error("channel_not_found");
    };
    if !s.channels.contains_key(&channel) {
        return api_error("channel_not_found");
    }
    let wanted = |m: &&SlackMessage| -> bool {
        if m.channel != channel {
            return false;
        }
        if method == "conversations.replies" {
            let ts = text_arg(args, "ts").unwrap_or_default();
            return m.ts == ts || m.thread_ts.as_deref() == Some(ts.as_str());
        }
        match (text_arg(args, "latest"), text_arg(args, "oldest")) {
            (Some(latest), _) if text_arg(args, "inclusive").as_deref() == Some("true") => {
                m.ts <= latest
            }
            (Some(latest), _) => m.ts < latest,
            (None, Some(oldest)) => m.ts > oldest,
            (None, None) => true,
        }
    };
    let mut found: Vec<&SlackMessage> = s.messages.iter().filter(wanted).collect();
    if method == "conversations.replies" && found.is_empty() {
        return api_error("thread_not_found");
    }
    // History is newest first; replies oldest first (the parent leads).
    if method == "conversations.history" {
        found.reverse();
    }
    let limit = text_arg(args, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100);
    let messages: Vec<Value> = found
        .into_iter()
        .take(limit)
        .map(|m| {
            let mut v = json!({ "type": "message", "user": m.user, "text": m.text, "ts": m.ts });
            if let Some(t) = &m.thread_ts {
                v["thread_ts"] = json!(t);
            }
            v
        })
        .collect();
    ok(
        json!({ "messages": messages, "has_more": false, "response_metadata": { "next_cursor": "" } }),
    )
}

/// The app-level token the fake accepts for Socket Mode, given its bot token.
pub fn app_token_for(bot_token: &str) -> String {
    format!("xapp-{}", bot_token.trim_start_matches("xoxb-"))
}

async fn socket(State(state): State<Shared>, ws: axum::extract::ws::WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_socket(state, socket))
}

impl FakeState {
    /// Sends an envelope on one live connection, taking turns; with none open it waits for
    /// the next connection.
    fn send_to_one(&mut self, id: &str, envelope: Value) {
        self.sockets.retain(|(_, tx)| !tx.is_closed());
        if self.sockets.is_empty() {
            return;
        }
        self.turn = (self.turn + 1) % self.sockets.len();
        let (conn, tx) = &self.sockets[self.turn];
        if tx.send(SocketCtl::Envelope(envelope)).is_ok() {
            self.sent_on.insert(id.to_string(), *conn);
        }
    }

    /// Sends again, elsewhere, the unacknowledged envelopes that were on connection `conn`
    /// (or on none) when it closed.
    fn resend_orphans(&mut self, conn: Option<u64>) {
        self.sockets
            .retain(|(c, tx)| Some(*c) != conn && !tx.is_closed());
        let orphans: Vec<(String, Value)> = self
            .unacked
            .iter()
            .filter(|(id, _)| match self.sent_on.get(id) {
                Some(on) => Some(*on) == conn,
                None => true,
            })
            .cloned()
            .collect();
        for (id, envelope) in orphans {
            self.sent_on.remove(&id);
            self.send_to_one(&id, envelope);
        }
    }
}

/// One Socket Mode connection: `hello`, then the envelopes it is given (each envelope goes to
/// one connection); acknowledgements (`{"envelope_id": …}`) are recorded and stop the
/// resending. Envelopes left unacknowledged when it closes go to another connection.
async fn serve_socket(state: Shared, mut socket: axum::extract::ws::WebSocket) {
    use axum::extract::ws::Message as Ws;
    let (tx, mut control) = tokio::sync::mpsc::unbounded_channel();
    let (conn, live) = {
        let mut s = lock(&state);
        s.connections += 1;
        s.next_socket += 1;
        let conn = s.next_socket;
        s.sockets.retain(|(_, tx)| !tx.is_closed());
        s.sockets.push((conn, tx));
        (conn, s.sockets.len())
    };
    let hello = json!({
        "type": "hello",
        "num_connections": live,
        "debug_info": { "host": "applink-sandbox", "build_number": 1, "approximate_connection_time": 18060 },
        "connection_info": { "app_id": "A0SWITCHBD" }
    });
    if socket
        .send(Ws::Text(hello.to_string().into()))
        .await
        .is_ok()
    {
        // Envelopes that waited for a connection (none was open) come first.
        lock(&state).resend_orphans(None);
        serve_frames(&state, &mut socket, &mut control).await;
    }
    lock(&state).resend_orphans(Some(conn));
}

/// Records an acknowledgement frame (`{"envelope_id": …, "payload": …}`).
fn record_ack(state: &Shared, text: &str) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Some(id) = v["envelope_id"].as_str() else {
        return;
    };
    let mut s = lock(state);
    if let Some(p) = v.get("payload") {
        s.ack_payloads.insert(id.to_string(), p.clone());
    }
    s.unacked.retain(|(e, _)| e != id);
    s.sent_on.remove(id);
    s.acked.push(id.to_string());
    if let Some(at) = s.pushed_at.remove(id) {
        s.ack_latencies.push(at.elapsed());
    }
}

async fn serve_frames(
    state: &Shared,
    socket: &mut axum::extract::ws::WebSocket,
    control: &mut tokio::sync::mpsc::UnboundedReceiver<SocketCtl>,
) {
    use axum::extract::ws::Message as Ws;
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Ws::Text(text))) => record_ack(state, &text),
                Some(Ok(Ws::Ping(p))) => { let _ = socket.send(Ws::Pong(p)).await; }
                Some(Ok(_)) => {}
                _ => return,
            },
            ctl = control.recv() => match ctl {
                Some(SocketCtl::Envelope(e)) => {
                    if socket.send(Ws::Text(e.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(SocketCtl::Disconnect) => {
                    let frame = json!({
                        "type": "disconnect",
                        "reason": "refresh_requested",
                        "debug_info": { "host": "applink-sandbox" }
                    });
                    let _ = socket.send(Ws::Text(frame.to_string().into())).await;
                    // Slack keeps a refreshed connection open for a while (about ten seconds)
                    // and still takes acknowledgements on it.
                    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
                    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until, socket.recv()).await {
                        if let Ws::Text(text) = frame {
                            record_ack(state, &text);
                        }
                    }
                    let _ = socket.send(Ws::Close(None)).await;
                    return;
                }
                Some(SocketCtl::Drop) | None => return,
            },
        }
    }
}

/// How long Slack accepts a trigger id for opening a modal.
const TRIGGER_TTL: std::time::Duration = std::time::Duration::from_secs(3);
/// How many times a response URL may be used.
const RESPONSE_URL_USES: u32 = 5;

fn user_info(id: &str, name: &str) -> Value {
    json!({ "id": id, "username": name.to_lowercase(), "name": name.to_lowercase(), "team_id": "T0SANDBOX" })
}

impl FakeSlack {
    fn next_id(&self, prefix: &str) -> String {
        let mut s = lock(&self.state);
        s.next_id += 1;
        format!("{prefix}{:08}", s.next_id)
    }

    /// A fresh trigger id for `user`, good for three seconds.
    fn trigger(&self, user: &str) -> String {
        let n = self.next_id("");
        let id = format!("{n}.1772440000.{:016x}", fastrand::u64(..));
        lock(&self.state)
            .triggers
            .insert(id.clone(), (std::time::Instant::now(), user.to_string()));
        id
    }

    /// Makes every trigger id handed out so far stale, as if three seconds had passed.
    pub fn expire_triggers(&self) {
        let past = std::time::Instant::now()
            .checked_sub(TRIGGER_TTL * 2)
            .unwrap_or_else(std::time::Instant::now);
        for t in lock(&self.state).triggers.values_mut() {
            t.0 = past;
        }
    }

    /// A fresh response URL answering `user`, about the message `origin` if any.
    fn response_url(&self, user: &str, origin: Option<(&str, &str)>) -> String {
        let id = self.next_id("R");
        let mut s = lock(&self.state);
        let origin = origin.map(|(c, t)| (c.to_string(), t.to_string()));
        s.response_urls.insert(
            id.clone(),
            ResponseUrl {
                user: user.to_string(),
                uses: 0,
                origin,
            },
        );
        format!("{}/respond/{id}", s.base_url)
    }

    fn user_name(&self, id: &str) -> String {
        lock(&self.state)
            .users
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    fn channel_name(&self, id: &str) -> String {
        lock(&self.state)
            .channels
            .get(id)
            .map_or_else(|| "directmessage".to_string(), |(n, _)| n.clone())
    }

    /// The form fields Slack posts for `/command text` run by `user` in `channel`.
    pub fn slash_command(&self, user: &str, channel: &str, command: &str, text: &str) -> Value {
        json!({
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": "T0SANDBOX",
            "team_domain": "sandbox",
            "channel_id": channel,
            "channel_name": self.channel_name(channel),
            "user_id": user,
            "user_name": self.user_name(user).to_lowercase(),
            "command": command,
            "text": text,
            "api_app_id": "A0SWITCHBD",
            "is_enterprise_install": "false",
            "response_url": self.response_url(user, None),
            "trigger_id": self.trigger(user),
        })
    }

    /// The `block_actions` payload for `user` pressing the button `action_id` on the message
    /// `ts` in `channel`; `None` when that message has no such button.
    pub fn click(&self, user: &str, channel: &str, ts: &str, action_id: &str) -> Option<Value> {
        let message = lock(&self.state)
            .messages
            .iter()
            .find(|m| m.channel == channel && m.ts == ts)
            .cloned()?;
        let blocks = message.blocks.clone().unwrap_or(json!([]));
        let (block_id, button) = blocks.as_array()?.iter().enumerate().find_map(|(i, b)| {
            let el = b["elements"]
                .as_array()?
                .iter()
                .find(|e| e["action_id"] == action_id)?
                .clone();
            Some((
                b["block_id"]
                    .as_str()
                    .map_or_else(|| format!("b{i}"), str::to_string),
                el,
            ))
        })?;
        let mut action = json!({
            "action_id": action_id,
            "block_id": block_id,
            "text": button["text"],
            "type": "button",
            "action_ts": "1772442200.000100",
        });
        if let Some(v) = button.get("value") {
            action["value"] = v.clone();
        }
        if let Some(st) = button.get("style") {
            action["style"] = st.clone();
        }
        Some(json!({
            "type": "block_actions",
            "user": user_info(user, &self.user_name(user)),
            "api_app_id": "A0SWITCHBD",
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "container": { "type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false },
            "trigger_id": self.trigger(user),
            "team": { "id": "T0SANDBOX", "domain": "sandbox" },
            "is_enterprise_install": false,
            "channel": { "id": channel, "name": self.channel_name(channel) },
            "message": { "type": "message", "user": message.user, "bot_id": "B0SWITCHBD", "text": message.text, "ts": message.ts, "blocks": blocks },
            "state": { "values": {} },
            "response_url": self.response_url(user, Some((channel, ts))),
            "actions": [action],
        }))
    }

    /// The `message_action` payload for `user` choosing the shortcut `callback_id` on the
    /// message `ts` in `channel`; `None` when there is no such message.
    pub fn message_shortcut(
        &self,
        user: &str,
        channel: &str,
        ts: &str,
        callback_id: &str,
    ) -> Option<Value> {
        let m = lock(&self.state)
            .messages
            .iter()
            .find(|m| m.channel == channel && m.ts == ts)
            .cloned()?;
        let mut message = json!({ "type": "message", "user": m.user, "ts": m.ts, "text": m.text });
        if let Some(t) = &m.thread_ts {
            message["thread_ts"] = json!(t);
        }
        Some(json!({
            "type": "message_action",
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "action_ts": "1772442300.000100",
            "team": { "id": "T0SANDBOX", "domain": "sandbox" },
            "user": user_info(user, &self.user_name(user)),
            "channel": { "id": channel, "name": self.channel_name(channel) },
            "is_enterprise_install": false,
            "callback_id": callback_id,
            "trigger_id": self.trigger(user),
            "response_url": self.response_url(user, None),
            "message_ts": ts,
            "message": message,
        }))
    }

    /// Modals the app opened, in order.
    pub fn views(&self) -> Vec<OpenedView> {
        lock(&self.state).views.clone()
    }

    /// The `view_submission` payload for the opened view `view_id`: every input keeps its
    /// initial value unless `values` (block id → typed text or chosen option value) says
    /// otherwise; `None` when no such view was opened.
    pub fn submit_view(&self, view_id: &str, values: &[(&str, &str)]) -> Option<Value> {
        let opened = lock(&self.state)
            .views
            .iter()
            .find(|v| v.id == view_id)
            .cloned()?;
        let mut state = serde_json::Map::new();
        for block in opened.view["blocks"].as_array()? {
            if block["type"] != "input" {
                continue;
            }
            let block_id = block["block_id"].as_str()?;
            let el = &block["element"];
            let action_id = el["action_id"].as_str()?;
            let given = values.iter().find(|(b, _)| *b == block_id).map(|(_, v)| *v);
            let value = match el["type"].as_str()? {
                "static_select" => {
                    let chosen = match given {
                        Some(v) => el["options"]
                            .as_array()?
                            .iter()
                            .find(|o| o["value"] == v)
                            .cloned(),
                        None => el.get("initial_option").cloned(),
                    };
                    json!({ "type": "static_select", "selected_option": chosen.map(|o| json!({ "text": o["text"], "value": o["value"] })) })
                }
                kind => {
                    let text = given
                        .map(str::to_string)
                        .or_else(|| el["initial_value"].as_str().map(str::to_string))
                        .filter(|t| !t.is_empty());
                    json!({ "type": kind, "value": text })
                }
            };
            state.insert(block_id.to_string(), json!({ action_id: value }));
        }
        let mut view = opened.view.clone();
        view["state"] = json!({ "values": state });
        Some(json!({
            "type": "view_submission",
            "team": { "id": "T0SANDBOX", "domain": "sandbox" },
            "user": user_info(&opened.user, &self.user_name(&opened.user)),
            "api_app_id": "A0SWITCHBD",
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "trigger_id": self.trigger(&opened.user),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": false,
        }))
    }

    /// Everything the app sent to response URLs, in order.
    pub fn responses(&self) -> Vec<InteractionResponse> {
        lock(&self.state).responses.clone()
    }

    /// Delivers a slash command (fields from [`FakeSlack::slash_command`]) the way `via` says
    /// and returns the app's acknowledgement.
    pub async fn send_command(&self, via: &Via, fields: &Value) -> Ack {
        lock(&self.state).used.insert("commands".into());
        match via {
            Via::Http {
                base,
                secret,
                timestamp,
            } => {
                let form: String =
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(
                            fields.as_object().into_iter().flatten().map(|(k, v)| {
                                (k.clone(), v.as_str().unwrap_or_default().to_string())
                            }),
                        )
                        .finish();
                signed_post(&format!("{base}/slack/commands"), secret, *timestamp, form).await
            }
            Via::Socket => self.over_socket("slash_commands", fields.clone()).await,
        }
    }

    /// Delivers an interaction payload the way `via` says and returns the acknowledgement.
    pub async fn send_interaction(&self, via: &Via, payload: &Value) -> Ack {
        if payload["type"] == "message_action" {
            lock(&self.state).used.insert("commands".into());
        }
        match via {
            Via::Http {
                base,
                secret,
                timestamp,
            } => {
                let form: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("payload", &payload.to_string())
                    .finish();
                signed_post(
                    &format!("{base}/slack/interactivity"),
                    secret,
                    *timestamp,
                    form,
                )
                .await
            }
            Via::Socket => self.over_socket("interactive", payload.clone()).await,
        }
    }

    async fn over_socket(&self, kind: &str, payload: Value) -> Ack {
        let start = std::time::Instant::now();
        let id = self.push_envelope(kind, payload);
        // Slack waits three seconds for the acknowledgement; the fake waits a little longer
        // so a slow app shows up as a slow ack rather than a missing one.
        while start.elapsed() < std::time::Duration::from_secs(10) {
            {
                let s = lock(&self.state);
                if s.acked.contains(&id) {
                    return Ack {
                        status: 200,
                        body: s.ack_payloads.get(&id).cloned(),
                        took: start.elapsed(),
                    };
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        Ack {
            status: 0,
            body: None,
            took: start.elapsed(),
        }
    }
}

/// Posts a form signed as Slack signs requests (`v0=` HMAC-SHA256 of `v0:{ts}:{body}`).
async fn signed_post(url: &str, secret: &str, timestamp: Option<i64>, form: String) -> Ack {
    use hmac::{Hmac, Mac};
    let start = std::time::Instant::now();
    let ts = timestamp
        .unwrap_or_else(|| chrono::Utc::now().timestamp())
        .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{ts}:{form}").as_bytes());
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<axum::body::Body>();
    let req = axum::http::Request::post(url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .body(axum::body::Body::from(form));
    let Ok(req) = req else {
        return Ack {
            status: 0,
            body: None,
            took: start.elapsed(),
        };
    };
    match client.request(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(axum::body::Body::new(resp.into_body()), 1 << 20)
                .await
                .unwrap_or_default();
            Ack {
                status,
                body: serde_json::from_slice(&bytes).ok(),
                took: start.elapsed(),
            }
        }
        Err(_) => Ack {
            status: 0,
            body: None,
            took: start.elapsed(),
        },
    }
}

/// `views.open`: checks the trigger id (known, unused, under three seconds old) and the view
/// against Slack's documented limits, then records it.
fn open_view(s: &mut FakeState, args: &BTreeMap<String, Value>) -> Response {
    let Some(trigger) = text_arg(args, "trigger_id") else {
        return api_error("invalid_trigger_id");
    };
    let Some((at, user)) = s.triggers.remove(&trigger) else {
        return api_error("invalid_trigger_id");
    };
    if at.elapsed() > TRIGGER_TTL {
        return api_error("expired_trigger_id");
    }
    let view = match args.get("view") {
        Some(Value::String(text)) => serde_json::from_str::<Value>(text).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    if let Err(why) = check_view(&view) {
        return Json(json!({ "ok": false, "error": "invalid_arguments", "response_metadata": { "messages": [why] } }))
            .into_response();
    }
    s.next_id += 1;
    let id = format!("V{:08}", s.next_id);
    let mut stored = view.clone();
    stored["id"] = json!(id);
    stored["team_id"] = json!("T0SANDBOX");
    stored["state"] = json!({ "values": {} });
    stored["hash"] = json!(format!("1772442400.{:08x}", s.next_id));
    stored["root_view_id"] = json!(id);
    stored["app_id"] = json!("A0SWITCHBD");
    stored["bot_id"] = json!("B0SWITCHBD");
    for key in ["private_metadata", "callback_id", "external_id"] {
        if stored.get(key).is_none() {
            stored[key] = json!("");
        }
    }
    s.views.push(OpenedView {
        id,
        user,
        view: stored.clone(),
    });
    ok(json!({ "view": stored }))
}

fn check_view(view: &Value) -> Result<(), String> {
    let text_len = |v: &Value| v["text"].as_str().map(|t| t.chars().count());
    if view["type"] != "modal" {
        return Err("[ERROR] must be a modal [json-pointer:/view/type]".into());
    }
    match text_len(&view["title"]) {
        Some(1..=24) if view["title"]["type"] == "plain_text" => {}
        _ => {
            return Err(
                "[ERROR] title must be plain_text of 1 to 24 characters [json-pointer:/view/title]"
                    .into(),
            )
        }
    }
    for key in ["submit", "close"] {
        if let Some(b) = view.get(key) {
            if b["type"] != "plain_text" || !matches!(text_len(b), Some(1..=24)) {
                return Err(format!("[ERROR] {key} must be plain_text of 1 to 24 characters [json-pointer:/view/{key}]"));
            }
        }
    }
    let blocks = view["blocks"]
        .as_array()
        .ok_or("[ERROR] blocks is required")?;
    if blocks.len() > 100 {
        return Err("[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]".into());
    }
    let has_input = blocks.iter().any(|b| b["type"] == "input");
    if has_input && view.get("submit").is_none() {
        return Err(
            "[ERROR] a view with input blocks needs submit [json-pointer:/view/submit]".into(),
        );
    }
    if view["callback_id"].as_str().is_some_and(|c| c.len() > 255) {
        return Err(
            "[ERROR] callback_id is longer than 255 [json-pointer:/view/callback_id]".into(),
        );
    }
    if view["private_metadata"]
        .as_str()
        .is_some_and(|m| m.len() > 3000)
    {
        return Err(
            "[ERROR] private_metadata is longer than 3000 [json-pointer:/view/private_metadata]"
                .into(),
        );
    }
    let mut ids = std::collections::HashSet::new();
    for (i, b) in blocks.iter().enumerate() {
        if let Some(id) = b["block_id"].as_str() {
            if !ids.insert(id.to_string()) || id.len() > 255 {
                return Err(format!(
                    "[ERROR] duplicate or long block_id [json-pointer:/view/blocks/{i}/block_id]"
                ));
            }
        }
        if b["type"] == "input" {
            if !matches!(text_len(&b["label"]), Some(1..=2000)) {
                return Err(format!(
                    "[ERROR] input needs a label [json-pointer:/view/blocks/{i}/label]"
                ));
            }
            let el = &b["element"];
            if el["action_id"].as_str().is_none() {
                return Err(format!("[ERROR] input element needs an action_id [json-pointer:/view/blocks/{i}/element]"));
            }
            if el["type"] == "static_select" {
                let opts = el["options"].as_array().map_or(0, Vec::len);
                if !(1..=100).contains(&opts) {
                    return Err(format!(
                        "[ERROR] 1 to 100 options [json-pointer:/view/blocks/{i}/element/options]"
                    ));
                }
            }
            if let (Some(v), Some(max)) = (el["initial_value"].as_str(), el["max_length"].as_u64())
            {
                if v.chars().count() as u64 > max {
                    return Err(format!("[ERROR] initial_value is longer than max_length [json-pointer:/view/blocks/{i}/element/initial_value]"));
                }
            }
        }
    }
    Ok(())
}

/// A response URL: up to five JSON posts within its life; answered `{"ok": true}`. With
/// `replace_original: true` the message the interaction came from is replaced.
async fn respond(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = lock(&state);
    let Some(ResponseUrl { user, uses, origin }) = s.response_urls.get_mut(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "ok": false, "error": "expired_url" })),
        )
            .into_response();
    };
    if *uses >= RESPONSE_URL_USES {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "ok": false, "error": "used_url" })),
        )
            .into_response();
    }
    *uses += 1;
    let user = user.clone();
    let origin = origin.clone();
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let Some(body) = json_body
        .then(|| serde_json::from_slice::<Value>(&body).ok())
        .flatten()
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "ok": false, "error": "invalid_payload" })),
        )
            .into_response();
    };
    if body["text"].as_str().is_none_or(str::is_empty) && body.get("blocks").is_none() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "ok": false, "error": "no_text" })),
        )
            .into_response();
    }
    if body["replace_original"] == true {
        if let Some((channel, ts)) = origin {
            if let Some(m) = s
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts)
            {
                m.text = body["text"].as_str().unwrap_or_default().to_string();
                m.blocks = body.get("blocks").cloned();
                m.edits += 1;
            }
        }
    }
    s.responses.push(InteractionResponse { user, body });
    Json(json!({ "ok": true })).into_response()
}

/// The upload URL: takes the announced file's bytes (their length must match).
async fn upload(State(state): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let mut s = lock(&state);
    let Some((_, length, bytes)) = s.pending_files.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, "unknown upload").into_response();
    };
    if body.len() != *length {
        return (
            StatusCode::BAD_REQUEST,
            format!("expected {length} bytes, got {}", body.len()),
        )
            .into_response();
    }
    *bytes = Some(body.to_vec());
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("OK - {}", body.len()),
    )
        .into_response()
}

/// `files.completeUploadExternal`: every file must have been uploaded; shares them in
/// `channel_id` (the bot must be able to post there).
fn complete_upload(s: &mut FakeState, args: &BTreeMap<String, Value>) -> Response {
    let files = match args.get("files") {
        Some(Value::String(text)) => serde_json::from_str::<Value>(text).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    let Some(files) = files.as_array().filter(|f| !f.is_empty()) else {
        return api_error("invalid_arguments");
    };
    let channel = text_arg(args, "channel_id");
    if let Some(c) = &channel {
        if let Err(code) = check_channel(s, c) {
            return api_error(code);
        }
    }
    let mut shared = Vec::new();
    for f in files {
        let Some(id) = f["id"].as_str() else {
            return api_error("invalid_arguments");
        };
        match s.pending_files.get(id) {
            Some((name, _, Some(bytes))) => shared.push(SharedFile {
                id: id.to_string(),
                channel: channel.clone().unwrap_or_default(),
                thread_ts: text_arg(args, "thread_ts"),
                filename: name.clone(),
                title: f["title"].as_str().map(str::to_string),
                bytes: bytes.clone(),
            }),
            _ => return api_error("file_not_found"),
        }
    }
    let answer: Vec<Value> = shared
        .iter()
        .map(|f| {
            let mut v = json!({
                "id": f.id, "created": 1_772_450_000, "timestamp": 1_772_450_000,
                "name": f.filename, "mimetype": "image/png", "filetype": "png",
                "pretty_type": "PNG", "user": BOT_USER, "size": f.bytes.len(),
                "is_external": false, "is_public": true
            });
            if let Some(t) = &f.title {
                v["title"] = json!(t);
            }
            v
        })
        .collect();
    for f in &shared {
        s.pending_files.remove(&f.id);
    }
    s.files.extend(shared);
    ok(json!({ "files": answer }))
}

impl FakeSlack {
    /// Files the app shared, in order.
    pub fn files(&self) -> Vec<SharedFile> {
        lock(&self.state).files.clone()
    }
}
