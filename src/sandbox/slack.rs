//! A loopback fake of Slack's Web API, for tests and `switchboard demo`.
//!
//! Serves the methods the adapter uses (`auth.test`, `chat.postMessage`, `chat.update`,
//! `chat.getPermalink`, `conversations.history`, `conversations.replies`, `conversations.info`,
//! `conversations.open`, `users.info`) on `POST /api/{method}`, JSON or form-encoded, with
//! Slack's answers written by hand from its documentation: HTTP 200 with `ok: false` and an
//! error code for API errors, `401`-free bearer-token auth (`not_authed`, `invalid_auth`), and
//! on demand an HTTP 429 with `Retry-After` or a 5xx. A control handle seeds channels and
//! messages, injects faults and reads what was posted. Must never be reachable from outside
//! the machine: it binds 127.0.0.1 only.

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
    token: String,
    app_token: String,
    /// Socket Mode envelopes not yet acknowledged, resent on every new connection as Slack does.
    unacked: Vec<(String, Value)>,
    acked: Vec<String>,
    /// When each envelope was first pushed, until its ack; then how long the ack took.
    pushed_at: HashMap<String, std::time::Instant>,
    ack_latencies: Vec<std::time::Duration>,
    connections: u32,
    next_envelope: u64,
    sockets: Option<tokio::sync::broadcast::Sender<SocketCtl>>,
    ws_url: String,
    /// Channel id → (name, whether the bot is a member).
    channels: BTreeMap<String, (String, bool)>,
    /// User id → display name.
    users: BTreeMap<String, String>,
    /// User group id → member user ids.
    groups: BTreeMap<String, Vec<String>>,
    messages: Vec<SlackMessage>,
    faults: HashMap<String, VecDeque<Fault>>,
    calls: Vec<String>,
    next_ts: u64,
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
        let (sockets, _) = tokio::sync::broadcast::channel(1024);
        let state: Shared = Arc::new(Mutex::new(FakeState {
            token: token.to_string(),
            app_token: app_token_for(token),
            next_ts: 1_772_450_000,
            sockets: Some(sockets),
            ..FakeState::default()
        }));
        let app = Router::new()
            .route("/api/{method}", post(call).get(call))
            .route("/link", axum::routing::get(socket))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        lock(&state).ws_url = format!("ws://{addr}/link");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            api_url: format!("http://{addr}/api"),
            state,
        })
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
        let mut s = lock(&self.state);
        s.next_envelope += 1;
        let id = format!("env-{}", s.next_envelope);
        let envelope = json!({
            "envelope_id": id,
            "payload": payload,
            "type": "events_api",
            "accepts_response_payload": false,
            "retry_attempt": 0,
            "retry_reason": ""
        });
        s.unacked.push((id.clone(), envelope.clone()));
        s.pushed_at.insert(id.clone(), std::time::Instant::now());
        if let Some(tx) = &s.sockets {
            let _ = tx.send(SocketCtl::Envelope(envelope));
        }
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
        if let Some(tx) = &lock(&self.state).sockets {
            let _ = tx.send(SocketCtl::Disconnect);
        }
    }

    /// Drops every live connection without a word, as a network failure would.
    pub fn drop_sockets(&self) {
        if let Some(tx) = &lock(&self.state).sockets {
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
            if !s
                .messages
                .iter()
                .any(|m| m.channel == channel && m.ts == ts)
            {
                return api_error("message_not_found");
            }
            ok(json!({
                "channel": channel,
                "permalink": format!("https://sandbox.slack.com/archives/{channel}/p{}", ts.replace('.', ""))
            }))
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
        "conversations.open" => {
            let Some(users) = text_arg(&args, "users") else {
                return api_error("users_list_not_supplied");
            };
            ok(json!({ "channel": { "id": format!("D{}", users.trim_start_matches('U')) } }))
        }
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
            match s.users.get(&id) {
                Some(name) => ok(json!({ "user": {
                    "id": id, "team_id": "T0SANDBOX", "name": name.to_lowercase(), "deleted": false,
                    "real_name": name, "is_bot": false,
                    "profile": { "real_name": name, "display_name": name }
                }})),
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
    let Some(channel) = text_arg(args, "channel") else {
        return api_error("channel_not_found");
    };
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

/// One Socket Mode connection: `hello`, then every unacknowledged envelope, then live ones;
/// acknowledgements (`{"envelope_id": …}`) are recorded and stop the resending.
async fn serve_socket(state: Shared, mut socket: axum::extract::ws::WebSocket) {
    use axum::extract::ws::Message as Ws;
    let (mut control, backlog) = {
        let mut s = lock(&state);
        s.connections += 1;
        let Some(tx) = &s.sockets else { return };
        (
            tx.subscribe(),
            s.unacked.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
        )
    };
    let hello = json!({
        "type": "hello",
        "num_connections": 1,
        "debug_info": { "host": "applink-sandbox", "build_number": 1, "approximate_connection_time": 18060 },
        "connection_info": { "app_id": "A0SWITCHBD" }
    });
    if socket
        .send(Ws::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    for envelope in backlog {
        if socket
            .send(Ws::Text(envelope.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Ws::Text(text))) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&text) {
                        if let Some(id) = v["envelope_id"].as_str() {
                            let mut s = lock(&state);
                            s.unacked.retain(|(e, _)| e != id);
                            s.acked.push(id.to_string());
                            if let Some(at) = s.pushed_at.remove(id) {
                                s.ack_latencies.push(at.elapsed());
                            }
                        }
                    }
                }
                Some(Ok(Ws::Ping(p))) => { let _ = socket.send(Ws::Pong(p)).await; }
                Some(Ok(_)) => {}
                _ => return,
            },
            ctl = control.recv() => match ctl {
                Ok(SocketCtl::Envelope(e)) => {
                    if socket.send(Ws::Text(e.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Ok(SocketCtl::Disconnect) => {
                    let frame = json!({
                        "type": "disconnect",
                        "reason": "refresh_requested",
                        "debug_info": { "host": "applink-sandbox" }
                    });
                    let _ = socket.send(Ws::Text(frame.to_string().into())).await;
                    let _ = socket.send(Ws::Close(None)).await;
                    return;
                }
                Ok(SocketCtl::Drop) | Err(_) => return,
            },
        }
    }
}
