//! A loopback fake of Discord: the REST routes the adapter uses under `/api/v10/…` and the
//! gateway WebSocket at `/gateway`.
//!
//! Payloads are written by hand from Discord's documentation (every field the docs mark as
//! required, snowflakes as strings, `application/json` bodies, Discord's status codes and error
//! bodies such as `{"message": "Missing Permissions", "code": 50013}`), never by serialising a
//! client library's types. The gateway speaks Discord's protocol over uncompressed text frames:
//! HELLO, IDENTIFY → READY and GUILD_CREATE, heartbeats and their ACKs, dispatches numbered per
//! session, RESUME → replay of what was missed and RESUMED, INVALID_SESSION, RECONNECT and close
//! codes (4004 for a bad token, 4014 when the message-content intent is not enabled for the
//! app). Faults (HTTP 429 with `Retry-After` and `retry_after`, or a 5xx) are injected per route,
//! and every request is recorded with its route template (as Discord's OpenAPI spec names it)
//! and body so tests can check bodies against the spec. Binds 127.0.0.1 only; must never be
//! reachable from outside the machine.
//!
//! With [`FakeDiscord::set_limits`] the REST routes enforce Discord's published rate limits
//! (per-route buckets per major parameter and the global limit, with Discord's headers and 429
//! bodies; the model lives in [`crate::limits`]). They are checked after the modelled latency
//! and before auth, faults and the route itself. Off by default, when every answer carries the
//! fixed bucket headers it always did.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The fake server's one guild.
pub const GUILD_ID: &str = "700000000000000001";
/// The bot's user id (also its application id, as for most bots).
pub const BOT_USER_ID: &str = "800000000000000001";
/// The application id.
pub const APPLICATION_ID: &str = "800000000000000001";
/// The owner of the guild.
const OWNER_ID: &str = "100000000000000001";

/// Discord's epoch (2015-01-01) in Unix milliseconds, for snowflakes.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Permission bits the fake and its tests use (Discord's values).
pub mod perms {
    /// ADMINISTRATOR.
    pub const ADMINISTRATOR: u64 = 1 << 3;
    /// VIEW_CHANNEL.
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    /// SEND_MESSAGES.
    pub const SEND_MESSAGES: u64 = 1 << 11;
    /// EMBED_LINKS.
    pub const EMBED_LINKS: u64 = 1 << 14;
    /// ATTACH_FILES.
    pub const ATTACH_FILES: u64 = 1 << 15;
    /// READ_MESSAGE_HISTORY.
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    /// MENTION_EVERYONE.
    pub const MENTION_EVERYONE: u64 = 1 << 17;
    /// ADD_REACTIONS.
    pub const ADD_REACTIONS: u64 = 1 << 6;
}

/// The MESSAGE_CONTENT gateway intent bit.
pub const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;

/// A fault to answer with instead of the route's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After` and a body whose `retry_after` is this many seconds.
    RateLimited(f64),
    /// An HTTP 5xx status.
    ServerError(u16),
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// The route as Discord's OpenAPI spec writes it, e.g. `/channels/{channel_id}/messages`.
    pub route: String,
    /// The concrete path after `/api/v10`.
    pub path: String,
    /// The JSON body (`Null` when there was none).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The status the fake answered.
    pub status: u16,
}

/// A message as the fake stores it.
#[derive(Debug, Clone)]
pub struct DiscordMessage {
    /// Message id.
    pub id: String,
    /// Channel id.
    pub channel_id: String,
    /// Author's user id.
    pub author_id: String,
    /// Text.
    pub content: String,
    /// Embeds as sent.
    pub embeds: Vec<Value>,
    /// Components as sent.
    pub components: Vec<Value>,
    /// The message it replies to.
    pub reply_to: Option<String>,
    /// `allowed_mentions` as sent (`None`: not sent, so Discord's defaults apply).
    pub allowed_mentions: Option<Value>,
    /// The nonce it was created with.
    pub nonce: Option<String>,
    /// Attachments' file names and bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// How many times it was edited.
    pub edits: u32,
    /// Deleted by its author.
    pub deleted: bool,
    /// Shown only to the person who used an interaction (flag 64).
    pub ephemeral: bool,
}

impl DiscordMessage {
    /// A new message by `author` in `channel`.
    fn new(id: String, channel: &str, author: &str, content: &str) -> Self {
        Self {
            id,
            channel_id: channel.to_string(),
            author_id: author.to_string(),
            content: content.to_string(),
            embeds: vec![],
            components: vec![],
            reply_to: None,
            allowed_mentions: None,
            nonce: None,
            files: vec![],
            edits: 0,
            deleted: false,
            ephemeral: false,
        }
    }

    /// A message the bot created with a create-message `body`, as Discord stores it.
    fn from_body(id: String, channel: &str, body: &Value) -> Self {
        Self {
            embeds: stored_embeds(&body["embeds"]),
            components: stored_components(&body["components"]),
            allowed_mentions: body
                .get("allowed_mentions")
                .filter(|v| !v.is_null())
                .cloned(),
            ephemeral: body["flags"].as_u64().is_some_and(|f| f & 64 != 0),
            ..Self::new(
                id,
                channel,
                BOT_USER_ID,
                body["content"].as_str().unwrap_or(""),
            )
        }
    }
}

#[derive(Debug, Clone)]
struct Role {
    name: String,
    permissions: u64,
    position: u32,
}

#[derive(Debug, Clone)]
struct Member {
    username: String,
    roles: Vec<String>,
    bot: bool,
}

#[derive(Debug, Clone)]
struct Channel {
    name: String,
    /// Overwrites: (id, type 0 role / 1 member, allow, deny).
    overwrites: Vec<(String, u8, u64, u64)>,
    /// A DM channel's recipient (then it is type 1 and not in the guild).
    dm_with: Option<String>,
}

/// What a live gateway connection is told to do.
#[derive(Debug, Clone)]
enum Ctl {
    /// Send this frame.
    Send(Value),
    /// Close with a code and reason.
    Close(u16, String),
    /// Drop the TCP connection without a close frame.
    Drop,
}

#[derive(Debug)]
struct Session {
    seq: u64,
    /// Dispatches sent in this session, for replay on RESUME.
    sent: Vec<(u64, Value)>,
    shard: (u64, u64),
    /// The connection carrying it, if any.
    conn: Option<u64>,
    valid: bool,
}

#[derive(Debug, Default)]
struct FakeState {
    /// How long every API call waits before it is answered (0 in functional tests).
    latency: std::time::Duration,
    token: String,
    base_url: String,
    roles: BTreeMap<String, Role>,
    members: BTreeMap<String, Member>,
    channels: BTreeMap<String, Channel>,
    messages: Vec<DiscordMessage>,
    /// (channel, nonce) → message id, for `enforce_nonce`.
    nonces: HashMap<(String, String), String>,
    faults: HashMap<String, VecDeque<Fault>>,
    requests: Vec<Recorded>,
    /// Whether the app may use the message-content intent (the portal's switch).
    message_content_allowed: bool,
    heartbeat_ms: u64,
    /// Shard count `/gateway/bot` recommends.
    shards: u64,
    sessions: HashMap<String, Session>,
    conns: HashMap<u64, mpsc::UnboundedSender<Ctl>>,
    next_conn: u64,
    next_id: u64,
    identifies: Vec<Value>,
    resumes: u32,
    /// Bulk-overwritten commands: scope (`global` or a guild id) → commands as stored.
    commands: BTreeMap<String, Vec<Value>>,
    /// Interactions handed to the app, by token.
    interactions: HashMap<String, Interaction>,
    /// Rate limits being enforced (`None`: off, the default) and their buckets' state.
    limits: Option<crate::limits::DiscordLimiter>,
    /// 429 answers the limits gave, by bucket name (or `global`).
    rate_limited: BTreeMap<String, u32>,
    /// 401, 403 and 429 answers given, which Discord bans for at 10,000 per 10 minutes.
    invalid_requests: u32,
}

/// An interaction the fake sent, and what the app answered.
#[derive(Debug, Clone)]
pub struct Interaction {
    /// Interaction id.
    pub id: String,
    /// Its token (also the webhook token for follow-ups).
    pub token: String,
    /// The channel it happened in.
    pub channel_id: String,
    /// When it was sent; the first answer must come within 3 s, follow-ups within 15 min.
    pub sent: Instant,
    /// The initial response (`type` and `data`), once given.
    pub response: Option<Value>,
    /// The message holding the original response, once there is one.
    pub original: Option<String>,
    /// Follow-up message ids.
    pub followups: Vec<String>,
    /// The message a component interaction came from (an UPDATE_MESSAGE answer edits it).
    pub message: Option<String>,
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, FakeState> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running fake and its control handle.
#[derive(Debug, Clone)]
pub struct FakeDiscord {
    /// Base URL to give the adapter in place of `https://discord.com`.
    pub base_url: String,
    /// Where the REST routes are also served over TLS, when started with a certificate
    /// (tests point `discord.com` here to exercise serenity's own rate limiter).
    pub tls_addr: Option<std::net::SocketAddr>,
    state: Shared,
}

impl FakeDiscord {
    /// Starts the fake on a free loopback port; `token` is the bot token it accepts. The guild
    /// has an `@everyone` role that may view, send, embed, attach and read history, and the bot
    /// as a member.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(FakeState {
            token: token.to_string(),
            message_content_allowed: true,
            heartbeat_ms: 41_250,
            shards: 1,
            next_id: 0,
            ..FakeState::default()
        }));
        {
            let mut s = lock(&state);
            s.roles.insert(
                GUILD_ID.to_string(),
                Role {
                    name: "@everyone".into(),
                    permissions: perms::VIEW_CHANNEL
                        | perms::SEND_MESSAGES
                        | perms::EMBED_LINKS
                        | perms::ATTACH_FILES
                        | perms::READ_MESSAGE_HISTORY
                        | perms::ADD_REACTIONS,
                    position: 0,
                },
            );
            s.members.insert(
                BOT_USER_ID.to_string(),
                Member {
                    username: "Switchboard".into(),
                    roles: vec![],
                    bot: true,
                },
            );
        }
        let app = router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        lock(&state).base_url = format!("http://{addr}");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            tls_addr: None,
            state,
        })
    }

    /// Like [`FakeDiscord::start`], and also serves the REST routes over TLS with the given
    /// certificate chain and key (DER), e.g. a self-signed certificate for `discord.com`; the
    /// gateway stays on plain WebSocket (its URL comes from `GET /gateway`).
    pub async fn start_tls(
        token: &str,
        cert_chain: Vec<Vec<u8>>,
        key: Vec<u8>,
    ) -> std::io::Result<Self> {
        use tokio_rustls::rustls;
        let mut fake = Self::start(token).await?;
        let certs = cert_chain
            .into_iter()
            .map(rustls::pki_types::CertificateDer::from)
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(std::io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        fake.tls_addr = Some(listener.local_addr()?);
        let app = router(fake.state.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(fake)
    }

    /// Sets the heartbeat interval HELLO announces (Discord's is about 41 s; tests use less
    /// so a dropped connection is noticed quickly).
    pub fn set_heartbeat_ms(&self, ms: u64) {
        lock(&self.state).heartbeat_ms = ms;
    }

    /// Sets the shard count `/gateway/bot` recommends.
    pub fn set_recommended_shards(&self, n: u64) {
        lock(&self.state).shards = n.max(1);
    }

    /// Whether the message-content intent is enabled for the app in the developer portal;
    /// when it is not, an IDENTIFY asking for it is closed with 4014 and REST message
    /// fetches return empty content.
    pub fn set_message_content_allowed(&self, allowed: bool) {
        lock(&self.state).message_content_allowed = allowed;
    }

    /// Adds a role with a permission bit set.
    pub fn add_role(&self, id: &str, name: &str, permissions: u64) {
        let mut s = lock(&self.state);
        let position = u32::try_from(s.roles.len()).unwrap_or(u32::MAX);
        s.roles.insert(
            id.to_string(),
            Role {
                name: name.to_string(),
                permissions,
                position,
            },
        );
    }

    /// Adds a guild member (a person) with roles.
    pub fn add_member(&self, id: &str, username: &str, roles: &[&str]) {
        lock(&self.state).members.insert(
            id.to_string(),
            Member {
                username: username.to_string(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                bot: false,
            },
        );
    }

    /// Adds another app's bot as a guild member.
    pub fn add_bot_member(&self, id: &str, username: &str) {
        lock(&self.state).members.insert(
            id.to_string(),
            Member {
                username: username.to_string(),
                roles: vec![],
                bot: true,
            },
        );
    }

    /// Adds a text channel everyone (the bot included) may use.
    pub fn add_channel(&self, id: &str, name: &str) {
        lock(&self.state).channels.insert(
            id.to_string(),
            Channel {
                name: name.to_string(),
                overwrites: vec![],
                dm_with: None,
            },
        );
    }

    /// Denies the bot `permissions` in `channel` with a member overwrite.
    pub fn deny_bot(&self, channel: &str, permissions: u64) {
        if let Some(c) = lock(&self.state).channels.get_mut(channel) {
            c.overwrites
                .push((BOT_USER_ID.to_string(), 1, 0, permissions));
        }
    }

    /// Posts a message by `author` (a member) in `channel`, as if typed in Discord, and
    /// dispatches MESSAGE_CREATE. Returns its id.
    pub fn say(&self, channel: &str, author: &str, content: &str) -> String {
        let mut s = lock(&self.state);
        let id = s.snowflake();
        s.messages
            .push(DiscordMessage::new(id.clone(), channel, author, content));
        let m = s.message_json(s.messages.len() - 1, true);
        s.dispatch("MESSAGE_CREATE", m);
        id
    }

    /// `author` replies to message `to` in `channel` (a message with a `message_reference`),
    /// dispatched as MESSAGE_CREATE. Returns the reply's id.
    pub fn reply(&self, channel: &str, author: &str, to: &str, content: &str) -> String {
        let mut s = lock(&self.state);
        let id = s.snowflake();
        s.messages.push(DiscordMessage {
            reply_to: Some(to.to_string()),
            ..DiscordMessage::new(id.clone(), channel, author, content)
        });
        let m = s.message_json(s.messages.len() - 1, true);
        s.dispatch("MESSAGE_CREATE", m);
        id
    }

    /// The author edits message `id`: stored and dispatched as MESSAGE_UPDATE.
    pub fn edit(&self, id: &str, content: &str) {
        let mut s = lock(&self.state);
        let Some(i) = s.messages.iter().position(|m| m.id == id) else {
            return;
        };
        s.messages[i].content = content.to_string();
        s.messages[i].edits += 1;
        let m = s.message_json(i, true);
        s.dispatch("MESSAGE_UPDATE", m);
    }

    /// The author deletes message `id`: dispatched as MESSAGE_DELETE.
    pub fn delete(&self, id: &str) {
        let mut s = lock(&self.state);
        let Some(i) = s.messages.iter().position(|m| m.id == id) else {
            return;
        };
        s.messages[i].deleted = true;
        let d = json!({
            "id": id, "channel_id": s.messages[i].channel_id, "guild_id": GUILD_ID
        });
        s.dispatch("MESSAGE_DELETE", d);
    }

    /// `user` reacts to message `message` in `channel` with a unicode `emoji` (or a custom
    /// one written `name:id`): dispatched as MESSAGE_REACTION_ADD with the member's roles.
    pub fn react(&self, channel: &str, message: &str, user: &str, emoji: &str) {
        let mut s = lock(&self.state);
        let d = s.reaction_json(channel, message, user, emoji);
        s.dispatch("MESSAGE_REACTION_ADD", d);
    }

    /// Sends a dispatch as it is, to the session of the guild's shard.
    pub fn dispatch(&self, event: &str, data: Value) {
        lock(&self.state).dispatch(event, data);
    }

    /// Drops every gateway connection without a close frame (a network failure).
    pub fn drop_connections(&self) {
        self.tell_all(Ctl::Drop);
    }

    /// Closes every gateway connection with `code`.
    pub fn close_connections(&self, code: u16, reason: &str) {
        self.tell_all(Ctl::Close(code, reason.to_string()));
    }

    /// Sends INVALID_SESSION; when not resumable, the sessions end and the client must
    /// identify again.
    pub fn invalidate_sessions(&self, resumable: bool) {
        let mut s = lock(&self.state);
        if !resumable {
            for session in s.sessions.values_mut() {
                session.valid = false;
            }
        }
        for tx in s.conns.values() {
            let _ = tx.send(Ctl::Send(
                json!({ "op": 9, "d": resumable, "s": null, "t": null }),
            ));
        }
    }

    fn tell_all(&self, ctl: Ctl) {
        for tx in lock(&self.state).conns.values() {
            let _ = tx.send(ctl.clone());
        }
    }

    /// Makes every REST call wait `latency` before it is answered, as the real Discord does
    /// from a cloud host (50-300 ms); 0, the default, answers at once.
    pub fn set_latency(&self, latency: std::time::Duration) {
        lock(&self.state).latency = latency;
    }

    /// Enforces Discord's rate limits as `limits` models them, or none with `None` (the
    /// default). Starts every bucket afresh; the counters keep counting.
    pub fn set_limits(&self, limits: Option<crate::limits::DiscordLimits>) {
        lock(&self.state).limits = limits.map(crate::limits::DiscordLimiter::new);
    }

    /// The 429 answers the rate limits gave, by bucket name
    /// (`POST /channels/{channel_id}/messages 1234`, or `global`); injected faults are not
    /// counted here.
    pub fn rate_limited(&self) -> BTreeMap<String, u32> {
        lock(&self.state).rate_limited.clone()
    }

    /// How many REST requests each route (`METHOD /route/template`) received, rejected ones
    /// included.
    pub fn calls_by_method(&self) -> BTreeMap<String, u32> {
        let mut by = BTreeMap::new();
        for r in &lock(&self.state).requests {
            *by.entry(format!("{} {}", r.method, r.route)).or_insert(0) += 1;
        }
        by
    }

    /// How many 401, 403 and 429 answers the fake gave (injected faults included): Discord
    /// bans an IP that reaches 10,000 of them in 10 minutes.
    pub fn invalid_requests(&self) -> u32 {
        lock(&self.state).invalid_requests
    }

    /// Makes the next requests to `route` (method and OpenAPI template, e.g.
    /// `POST /channels/{channel_id}/messages`) fail with these faults, in order.
    pub fn fail(&self, route: &str, faults: &[Fault]) {
        lock(&self.state)
            .faults
            .entry(route.to_string())
            .or_default()
            .extend(faults.iter().copied());
    }

    /// A channel's name (`#name` in Discord), or its id when unknown.
    pub fn channel_name(&self, id: &str) -> String {
        lock(&self.state)
            .channels
            .get(id)
            .map_or_else(|| id.to_string(), |c| c.name.clone())
    }

    /// Every REST request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }

    /// Messages the bot posted (not deleted), in order.
    pub fn sent(&self) -> Vec<DiscordMessage> {
        lock(&self.state)
            .messages
            .iter()
            .filter(|m| m.author_id == BOT_USER_ID && !m.deleted)
            .cloned()
            .collect()
    }

    /// Messages the bot sent among every message stored at index `from` or later, and the
    /// index to ask from next time: lets a benchmark watch arrivals without copying them all.
    pub fn sent_since(&self, from: usize) -> (Vec<DiscordMessage>, usize) {
        let s = lock(&self.state);
        let new = s
            .messages
            .iter()
            .skip(from)
            .filter(|m| m.author_id == BOT_USER_ID && !m.deleted)
            .cloned()
            .collect();
        (new, s.messages.len())
    }

    /// The IDENTIFY payloads received (tokens removed).
    pub fn identifies(&self) -> Vec<Value> {
        lock(&self.state).identifies.clone()
    }

    /// How many RESUMEs were accepted.
    pub fn resumes(&self) -> u32 {
        lock(&self.state).resumes
    }

    /// Live gateway connections with a session.
    pub fn live_sessions(&self) -> usize {
        lock(&self.state)
            .sessions
            .values()
            .filter(|s| s.valid && s.conn.is_some())
            .count()
    }

    /// Registers an interaction the app may answer (id and token), as if Discord had just sent
    /// it; returns its token. Delivering the INTERACTION_CREATE itself is up to the caller.
    pub fn open_interaction(&self, channel: &str) -> (String, String) {
        let mut s = lock(&self.state);
        let id = s.snowflake();
        let token = format!("aW50ZXJhY3Rpb246{id}{:016x}", fastrand::u64(..));
        s.interactions.insert(
            token.clone(),
            Interaction {
                id: id.clone(),
                token: token.clone(),
                channel_id: channel.to_string(),
                sent: Instant::now(),
                response: None,
                original: None,
                followups: vec![],
                message: None,
            },
        );
        (id, token)
    }

    /// A full interaction payload as Discord sends it (over the gateway or to the endpoint),
    /// by guild member `user` in `channel`, registered so the app may answer it. `kind` is
    /// Discord's interaction type (2 command, 3 component, 4 autocomplete, 5 modal submit);
    /// `message` is the message a component sits on. Returns the payload and its token.
    pub fn interaction_payload(
        &self,
        kind: u64,
        user: &str,
        channel: &str,
        data: Value,
        message: Option<&str>,
    ) -> (Value, String) {
        let (id, token) = self.open_interaction(channel);
        let mut s = lock(&self.state);
        if let Some(i) = s.interactions.get_mut(&token) {
            i.message = message.map(String::from);
        }
        let permissions = "2248473465835073";
        let mut member = s.member_json(user, true);
        member["permissions"] = json!(permissions);
        let dm = s.channels.get(channel).is_some_and(|c| c.dm_with.is_some());
        let mut p = json!({
            "id": id, "application_id": APPLICATION_ID, "type": kind, "data": data,
            "channel_id": channel,
            "channel": { "id": channel, "type": if dm { 1 } else { 0 },
                          "name": s.channels.get(channel).map(|c| c.name.clone()).unwrap_or_default(),
                          "flags": 0, "permissions": permissions },
            "token": token, "version": 1, "app_permissions": permissions, "locale": "en-US",
            "entitlements": [], "attachment_size_limit": 10_485_760,
            "context": if dm { 1 } else { 0 }
        });
        if dm {
            p["user"] = s.user_json(user);
            p["authorizing_integration_owners"] = json!({ "0": GUILD_ID });
        } else {
            p["guild_id"] = json!(GUILD_ID);
            p["guild"] = json!({ "id": GUILD_ID, "locale": "en-US", "features": [] });
            p["guild_locale"] = json!("en-US");
            p["member"] = member;
            p["authorizing_integration_owners"] = json!({ "0": GUILD_ID });
        }
        if let Some(m) = message.and_then(|m| s.messages.iter().position(|x| x.id == m)) {
            p["message"] = s.message_json(m, false);
        }
        (p, token)
    }

    /// Sends an interaction to the app over the gateway (INTERACTION_CREATE); returns its
    /// token, to read the answer with [`FakeDiscord::interaction`].
    pub fn interact(
        &self,
        kind: u64,
        user: &str,
        channel: &str,
        data: Value,
        message: Option<&str>,
    ) -> String {
        let (payload, token) = self.interaction_payload(kind, user, channel, data, message);
        lock(&self.state).dispatch("INTERACTION_CREATE", payload);
        token
    }

    /// The id of a registered command called `name` (any scope), for command payloads.
    pub fn command_id(&self, name: &str) -> String {
        let s = lock(&self.state);
        s.commands
            .values()
            .flatten()
            .find(|c| c["name"] == name)
            .and_then(|c| c["id"].as_str().map(String::from))
            .unwrap_or_else(|| "900000000000000001".to_string())
    }

    /// The public key of the fake application (hex), for `DISCORD_PUBLIC_KEY`.
    pub fn public_key(&self) -> String {
        hex::encode(signing_key().verifying_key().to_bytes())
    }

    /// Signs `body` as Discord signs requests to an interactions endpoint: Ed25519 over the
    /// timestamp followed by the body. Returns the hex signature.
    pub fn sign(timestamp: &str, body: &[u8]) -> String {
        use ed25519_dalek::Signer;
        let message = [timestamp.as_bytes(), body].concat();
        hex::encode(signing_key().sign(&message).to_bytes())
    }

    /// Waits up to 5 s for the app's first answer to the interaction with `token`.
    pub async fn answer(&self, token: &str) -> Option<Value> {
        for _ in 0..500 {
            if let Some(r) = self.interaction(token).and_then(|i| i.response) {
                return Some(r);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        None
    }

    /// The token of the interaction that was answered with `answer`.
    pub fn answered_token(&self, answer: &Value) -> Option<String> {
        lock(&self.state)
            .interactions
            .values()
            .find(|i| i.response.as_ref() == Some(answer))
            .map(|i| i.token.clone())
    }

    /// The interaction with `token`, with what the app answered.
    pub fn interaction(&self, token: &str) -> Option<Interaction> {
        lock(&self.state).interactions.get(token).cloned()
    }

    /// Commands as last bulk-overwritten, by scope (`global` or a guild id).
    pub fn commands(&self) -> BTreeMap<String, Vec<Value>> {
        lock(&self.state).commands.clone()
    }

    /// Who `message` (posted by the bot) would actually ping, as Discord decides from its
    /// content and `allowed_mentions`: `everyone`, `user:ID` and `role:ID` entries.
    pub fn pinged(message: &DiscordMessage) -> Vec<String> {
        let am = message.allowed_mentions.clone().unwrap_or_else(
            // Without allowed_mentions Discord parses every kind.
            || json!({ "parse": ["everyone", "users", "roles"] }),
        );
        let parse: Vec<&str> = am["parse"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let listed = |key: &str| -> Vec<String> {
            am[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        let text = &message.content;
        if parse.contains(&"everyone") && (text.contains("@everyone") || text.contains("@here")) {
            out.push("everyone".to_string());
        }
        for (prefix, kind, key) in [("<@&", "roles", "roles"), ("<@", "users", "users")] {
            let mut rest = text.as_str();
            while let Some(i) = rest.find(prefix) {
                let after = &rest[i + prefix.len()..];
                let after = if prefix == "<@" {
                    after.trim_start_matches('!')
                } else {
                    after
                };
                let id: String = after.chars().take_while(char::is_ascii_digit).collect();
                rest = &rest[i + prefix.len()..];
                if id.is_empty() || (prefix == "<@" && rest.starts_with('&')) {
                    continue;
                }
                if parse.contains(&kind) || listed(key).contains(&id) {
                    let entry = format!("{}:{id}", &kind[..kind.len() - 1]);
                    if !out.contains(&entry) {
                        out.push(entry);
                    }
                }
            }
        }
        out
    }
}

impl FakeState {
    /// A snowflake for now: milliseconds since Discord's epoch, shifted, plus a counter.
    fn snowflake(&mut self) -> String {
        self.next_id += 1;
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
        (((ms.saturating_sub(DISCORD_EPOCH_MS)) << 22) | (self.next_id & 0x3F_FFFF)).to_string()
    }

    fn user_json(&self, id: &str) -> Value {
        let (name, bot) = self
            .members
            .get(id)
            .map_or(("unknown".to_string(), false), |m| {
                (m.username.clone(), m.bot)
            });
        json!({
            "id": id, "username": name.to_lowercase(), "discriminator": "0",
            "global_name": name, "avatar": null, "bot": bot, "public_flags": 0, "flags": 0,
            "primary_guild": null
        })
    }

    fn member_json(&self, id: &str, with_user: bool) -> Value {
        let roles = self
            .members
            .get(id)
            .map(|m| m.roles.clone())
            .unwrap_or_default();
        let mut m = json!({
            "nick": null, "avatar": null, "banner": null, "roles": roles,
            "joined_at": "2025-01-06T10:00:00.000000+00:00", "premium_since": null,
            "deaf": false, "mute": false, "flags": 0, "pending": false,
            "communication_disabled_until": null
        });
        if with_user {
            m["user"] = self.user_json(id);
        }
        m
    }

    fn channel_json(&self, id: &str) -> Option<Value> {
        let c = self.channels.get(id)?;
        if let Some(user) = &c.dm_with {
            return Some(json!({
                "id": id, "type": 1, "last_message_id": null, "flags": 0,
                "recipients": [self.user_json(user)]
            }));
        }
        let overwrites: Vec<Value> = c
            .overwrites
            .iter()
            .map(|(oid, kind, allow, deny)| {
                json!({ "id": oid, "type": kind, "allow": allow.to_string(), "deny": deny.to_string() })
            })
            .collect();
        Some(json!({
            "id": id, "type": 0, "guild_id": GUILD_ID, "name": c.name, "position": 0,
            "permission_overwrites": overwrites, "topic": null, "nsfw": false,
            "last_message_id": null, "rate_limit_per_user": 0, "parent_id": null,
            "flags": 0
        }))
    }

    fn role_json(&self, id: &str, r: &Role) -> Value {
        json!({
            "id": id, "name": r.name, "color": 0, "colors": { "primary_color": 0, "secondary_color": null, "tertiary_color": null },
            "hoist": false, "icon": null, "unicode_emoji": null, "position": r.position,
            "permissions": r.permissions.to_string(), "managed": false, "mentionable": true,
            "flags": 0
        })
    }

    fn guild_json(&self) -> Value {
        let roles: Vec<Value> = self
            .roles
            .iter()
            .map(|(id, r)| self.role_json(id, r))
            .collect();
        json!({
            "id": GUILD_ID, "name": "Sandbox Co", "icon": null, "icon_hash": null, "splash": null,
            "discovery_splash": null, "owner_id": OWNER_ID, "afk_channel_id": null,
            "afk_timeout": 300, "widget_enabled": false, "widget_channel_id": null,
            "verification_level": 1, "default_message_notifications": 1,
            "explicit_content_filter": 2, "roles": roles, "emojis": [], "features": [],
            "mfa_level": 0, "application_id": null, "system_channel_id": null,
            "system_channel_flags": 0, "rules_channel_id": null, "max_presences": null,
            "max_members": 500000, "vanity_url_code": null, "description": null, "banner": null,
            "premium_tier": 0, "premium_subscription_count": 0, "preferred_locale": "en-US",
            "public_updates_channel_id": null, "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50, "nsfw_level": 0, "stickers": [],
            "premium_progress_bar_enabled": false, "safety_alerts_channel_id": null,
            "incidents_data": null, "home_header": null, "region": "deprecated", "nsfw": false
        })
    }

    /// GUILD_CREATE: the guild with the extra fields the gateway adds.
    fn guild_create_json(&self) -> Value {
        let mut g = self.guild_json();
        let channels: Vec<Value> = self
            .channels
            .iter()
            .filter(|(_, c)| c.dm_with.is_none())
            .filter_map(|(id, _)| self.channel_json(id))
            .collect();
        let members: Vec<Value> = self
            .members
            .keys()
            .map(|id| self.member_json(id, true))
            .collect();
        g["joined_at"] = json!("2025-01-06T10:00:00.000000+00:00");
        g["large"] = json!(false);
        g["unavailable"] = json!(false);
        g["member_count"] = json!(self.members.len());
        g["voice_states"] = json!([]);
        g["members"] = json!(members);
        g["channels"] = json!(channels);
        g["threads"] = json!([]);
        g["presences"] = json!([]);
        g["stage_instances"] = json!([]);
        g["guild_scheduled_events"] = json!([]);
        g["soundboard_sounds"] = json!([]);
        g
    }

    /// The message object; `content` is empty unless `with_content` (the message-content
    /// intent) or the bot wrote it.
    fn message_json(&self, i: usize, gateway: bool) -> Value {
        let m = &self.messages[i];
        let content_visible = self.message_content_allowed || m.author_id == BOT_USER_ID;
        let mut v = json!({
            "id": m.id, "channel_id": m.channel_id, "author": self.user_json(&m.author_id),
            "content": if content_visible { m.content.clone() } else { String::new() },
            "timestamp": timestamp_of(&m.id),
            "edited_timestamp": if m.edits > 0 { json!(timestamp_of(&m.id)) } else { Value::Null },
            "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
            "attachments": m.files.iter().enumerate().map(|(n, (name, bytes))| json!({
                "id": format!("{}{n}", m.id), "filename": name, "size": bytes.len(),
                "url": format!("{}/attachments/{}/{name}", self.base_url, m.id),
                "proxy_url": format!("{}/attachments/{}/{name}", self.base_url, m.id),
                "content_type": "image/png"
            })).collect::<Vec<_>>(),
            "embeds": if content_visible { json!(m.embeds) } else { json!([]) },
            "components": if content_visible { json!(m.components) } else { json!([]) },
            "pinned": false, "type": if m.reply_to.is_some() { 19 } else { 0 }, "flags": 0
        });
        if let Some(nonce) = &m.nonce {
            v["nonce"] = json!(nonce);
        }
        if let Some(r) = &m.reply_to {
            v["message_reference"] = json!({ "type": 0, "message_id": r, "channel_id": m.channel_id, "guild_id": GUILD_ID });
        }
        if gateway
            && self
                .channels
                .get(&m.channel_id)
                .is_some_and(|c| c.dm_with.is_none())
        {
            v["guild_id"] = json!(GUILD_ID);
            v["member"] = self.member_json(&m.author_id, false);
        }
        v
    }

    fn reaction_json(&self, channel: &str, message: &str, user: &str, emoji: &str) -> Value {
        let emoji = match emoji.split_once(':') {
            Some((name, id)) => json!({ "id": id, "name": name, "animated": false }),
            None => json!({ "id": null, "name": emoji }),
        };
        let author = self
            .messages
            .iter()
            .find(|m| m.id == message)
            .map(|m| m.author_id.clone());
        let mut d = json!({
            "type": 0, "user_id": user, "channel_id": channel, "message_id": message,
            "guild_id": GUILD_ID, "member": self.member_json(user, true), "emoji": emoji,
            "burst": false, "burst_colors": []
        });
        if let Some(a) = author {
            d["message_author_id"] = json!(a);
        }
        d
    }

    /// Numbers and sends a dispatch on the session of the guild's shard; kept for replay when
    /// that session's connection is down.
    fn dispatch(&mut self, event: &str, data: Value) {
        let guild: u64 = data["guild_id"]
            .as_str()
            .unwrap_or(GUILD_ID)
            .parse()
            .unwrap_or(0);
        let Some(session) = self
            .sessions
            .values_mut()
            .find(|s| s.valid && (guild >> 22) % s.shard.1.max(1) == s.shard.0)
        else {
            return;
        };
        session.seq += 1;
        let frame = json!({ "op": 0, "s": session.seq, "t": event, "d": data });
        session.sent.push((session.seq, frame.clone()));
        if let Some(tx) = session.conn.and_then(|c| self.conns.get(&c)) {
            let _ = tx.send(Ctl::Send(frame));
        }
    }

    /// The bot's permissions in a guild channel: roles, then overwrites (Discord's order:
    /// @everyone overwrite, role overwrites together, then the member's own).
    fn bot_permissions(&self, channel: &str) -> u64 {
        let Some(c) = self.channels.get(channel) else {
            return 0;
        };
        if c.dm_with.is_some() {
            return perms::VIEW_CHANNEL
                | perms::SEND_MESSAGES
                | perms::EMBED_LINKS
                | perms::ATTACH_FILES;
        }
        let bot_roles = self
            .members
            .get(BOT_USER_ID)
            .map(|m| m.roles.clone())
            .unwrap_or_default();
        let mut p = self.roles.get(GUILD_ID).map_or(0, |r| r.permissions);
        for r in &bot_roles {
            p |= self.roles.get(r).map_or(0, |r| r.permissions);
        }
        if p & perms::ADMINISTRATOR != 0 {
            return u64::MAX;
        }
        let apply = |p: u64, allow: u64, deny: u64| (p & !deny) | allow;
        for (id, _, allow, deny) in c.overwrites.iter().filter(|o| o.0 == GUILD_ID) {
            let _ = id;
            p = apply(p, *allow, *deny);
        }
        let (mut ra, mut rd) = (0, 0);
        for (_, _, allow, deny) in c
            .overwrites
            .iter()
            .filter(|o| o.1 == 0 && bot_roles.contains(&o.0))
        {
            ra |= allow;
            rd |= deny;
        }
        p = apply(p, ra, rd);
        for (_, _, allow, deny) in c
            .overwrites
            .iter()
            .filter(|o| o.1 == 1 && o.0 == BOT_USER_ID)
        {
            p = apply(p, *allow, *deny);
        }
        p
    }
}

/// The fake application's signing key (fixed, so its public key is stable across runs).
fn signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/v10/{*path}", any(rest))
        .route("/gateway", get(gateway))
        .with_state(state)
}

/// The ISO 8601 time a snowflake encodes.
fn timestamp_of(id: &str) -> String {
    let ms = id
        .parse::<u64>()
        .map_or(0, |v| (v >> 22) + DISCORD_EPOCH_MS);
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0))
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

fn reply(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    let h = r.headers_mut();
    // Discord sends its bucket headers with every answer.
    h.insert("x-ratelimit-limit", "50".parse().expect("static header"));
    h.insert(
        "x-ratelimit-remaining",
        "49".parse().expect("static header"),
    );
    h.insert(
        "x-ratelimit-reset-after",
        "1.000".parse().expect("static header"),
    );
    h.insert(
        "x-ratelimit-bucket",
        "f4k3bucket".parse().expect("static header"),
    );
    r
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    reply(status, json!({ "message": message, "code": code }))
}

/// Discord's "Invalid Form Body" with per-field errors.
fn form_error(errors: &[(String, &str, String)]) -> Response {
    let mut tree = json!({});
    for (path, code, message) in errors {
        let mut cur = &mut tree;
        for part in path.split('.') {
            cur = &mut cur[part];
        }
        cur["_errors"] = json!([{ "code": code, "message": message }]);
    }
    reply(
        StatusCode::BAD_REQUEST,
        json!({ "message": "Invalid Form Body", "code": 50035, "errors": tree }),
    )
}

/// Maps a concrete path to the route template Discord's OpenAPI spec uses.
fn route_of(path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let names: &[(&[&str], &str)] = &[
        (
            &["channels", "*", "messages", "*", "reactions", "*", "@me"],
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me",
        ),
        (
            &["channels", "*", "messages", "*"],
            "/channels/{channel_id}/messages/{message_id}",
        ),
        (
            &["channels", "*", "messages"],
            "/channels/{channel_id}/messages",
        ),
        (&["channels", "*"], "/channels/{channel_id}"),
        (
            &["guilds", "*", "members", "*"],
            "/guilds/{guild_id}/members/{user_id}",
        ),
        (&["guilds", "*"], "/guilds/{guild_id}"),
        (&["users", "@me", "channels"], "/users/@me/channels"),
        (&["users", "@me"], "/users/@me"),
        (&["users", "*"], "/users/{user_id}"),
        (&["gateway", "bot"], "/gateway/bot"),
        (&["gateway"], "/gateway"),
        (&["applications", "@me"], "/applications/@me"),
        (
            &["oauth2", "applications", "@me"],
            "/oauth2/applications/@me",
        ),
        (
            &["applications", "*", "guilds", "*", "commands"],
            "/applications/{application_id}/guilds/{guild_id}/commands",
        ),
        (
            &["applications", "*", "commands"],
            "/applications/{application_id}/commands",
        ),
        (
            &["interactions", "*", "*", "callback"],
            "/interactions/{interaction_id}/{interaction_token}/callback",
        ),
        (
            &["webhooks", "*", "*", "messages", "@original"],
            "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
        ),
        (
            &["webhooks", "*", "*", "messages", "*"],
            "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
        ),
        (
            &["webhooks", "*", "*"],
            "/webhooks/{webhook_id}/{webhook_token}",
        ),
    ];
    for (pattern, name) in names {
        if pattern.len() == parts.len()
            && pattern.iter().zip(&parts).all(|(p, a)| *p == "*" || p == a)
        {
            return (*name).to_string();
        }
    }
    format!("/{}", parts.join("/"))
}

async fn rest(
    State(state): State<Shared>,
    method: Method,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Real REST calls take 50-300 ms from a cloud host; benchmarks set this, tests leave 0.
    let latency = lock(&state).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let route = route_of(&path);
    let key = format!("{method} {route}");
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else if headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
    {
        multipart_json(&headers, &body).unwrap_or(Value::Null)
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    50109,
                    "The request body contains invalid JSON.",
                )
            }
        }
    };
    let mut s = lock(&state);
    let now = Instant::now();
    let verdict = s
        .limits
        .as_mut()
        .map(|l| l.check(method.as_str(), &route, &path, now));
    let response = match verdict {
        None => answer(
            &mut s, &method, &path, &route, &key, &headers, &json_body, &body,
        ),
        Some(crate::limits::DiscordVerdict::Pass(bucket_headers)) => {
            let mut r = answer(
                &mut s, &method, &path, &route, &key, &headers, &json_body, &body,
            );
            crate::limits::apply_headers(&mut r, bucket_headers);
            r
        }
        Some(crate::limits::DiscordVerdict::Limited(bucket, r)) => {
            *s.rate_limited.entry(bucket).or_insert(0) += 1;
            r
        }
    };
    if matches!(response.status().as_u16(), 401 | 403 | 429) {
        s.invalid_requests += 1;
    }
    s.requests.push(Recorded {
        method: method.to_string(),
        route,
        path,
        body: json_body,
        at: Instant::now(),
        status: response.status().as_u16(),
    });
    response
}

/// The JSON part (`payload_json`) of a multipart body, with the files' names and bytes
/// recorded beside it under `_files` (for attachments).
fn multipart_json(headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    let ct = headers.get("content-type")?.to_str().ok()?;
    let boundary = ct.split("boundary=").nth(1)?.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut payload = Value::Null;
    let mut files = Vec::new();
    let mut start = 0;
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    while let Some(i) = find(text, delimiter.as_bytes(), start) {
        let part_start = i + delimiter.len();
        let Some(next) = find(text, delimiter.as_bytes(), part_start) else {
            break;
        };
        let part = &text[part_start..next];
        if let Some(h_end) = find(part, b"\r\n\r\n", 0) {
            let head = String::from_utf8_lossy(&part[..h_end]).to_string();
            let mut content = &part[h_end + 4..];
            if content.ends_with(b"\r\n") {
                content = &content[..content.len() - 2];
            }
            let name = head
                .split("name=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_string();
            if name == "payload_json" {
                payload = serde_json::from_slice(content).ok()?;
            } else {
                let filename = head
                    .split("filename=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("file")
                    .to_string();
                files.push(json!({ "field": name, "filename": filename, "bytes": base64::engine::general_purpose::STANDARD.encode(content) }));
            }
        }
        start = next;
    }
    if payload.is_null() {
        payload = json!({});
    }
    payload["_files"] = json!(files);
    Some(payload)
}

#[allow(clippy::too_many_arguments)]
fn answer(
    s: &mut FakeState,
    method: &Method,
    path: &str,
    route: &str,
    key: &str,
    headers: &HeaderMap,
    body: &Value,
    raw: &[u8],
) -> Response {
    let _ = raw;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let webhook = route.starts_with("/webhooks/") || route.starts_with("/interactions/");
    if !webhook && auth != format!("Bot {}", s.token) {
        return error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
    }
    if let Some(fault) = s.faults.get_mut(key).and_then(VecDeque::pop_front) {
        return match fault {
            Fault::RateLimited(secs) => {
                let mut r = reply(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({ "message": "You are being rate limited.", "retry_after": secs, "global": false, "code": 0 }),
                );
                let h = r.headers_mut();
                h.insert(
                    "retry-after",
                    format!("{}", secs.ceil() as u64).parse().expect("number"),
                );
                h.insert("x-ratelimit-remaining", "0".parse().expect("static header"));
                h.insert(
                    "x-ratelimit-reset-after",
                    format!("{secs:.3}").parse().expect("number"),
                );
                h.insert("x-ratelimit-scope", "user".parse().expect("static header"));
                r
            }
            Fault::ServerError(code) => reply(
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY),
                json!({ "message": "500: Internal Server Error", "code": 0 }),
            ),
        };
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), route) {
        ("GET", "/gateway") => reply(StatusCode::OK, json!({ "url": ws_url(&s.base_url) })),
        ("GET", "/gateway/bot") => reply(
            StatusCode::OK,
            json!({
                "url": ws_url(&s.base_url), "shards": s.shards,
                "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1 }
            }),
        ),
        ("GET", "/users/@me") => {
            let mut u = s.user_json(BOT_USER_ID);
            u["bot"] = json!(true);
            u["verified"] = json!(true);
            u["mfa_enabled"] = json!(false);
            u["locale"] = json!("en-US");
            reply(StatusCode::OK, u)
        }
        ("GET", "/applications/@me") | ("GET", "/oauth2/applications/@me") => reply(
            StatusCode::OK,
            json!({
                "id": APPLICATION_ID, "name": "Switchboard", "icon": null, "description": "",
                "bot_public": false, "bot_require_code_grant": false, "verify_key": "0".repeat(64),
                "flags": if s.message_content_allowed { 1 << 19 } else { 0 },
                "bot": s.user_json(BOT_USER_ID)
            }),
        ),
        ("GET", "/channels/{channel_id}") => {
            let id = parts[1];
            match s.channel_json(id) {
                None => error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"),
                Some(_) if s.bot_permissions(id) & perms::VIEW_CHANNEL == 0 => {
                    error(StatusCode::FORBIDDEN, 50001, "Missing Access")
                }
                Some(c) => reply(StatusCode::OK, c),
            }
        }
        ("GET", "/users/{user_id}") => {
            if !s.members.contains_key(parts[1]) {
                return error(StatusCode::NOT_FOUND, 10013, "Unknown User");
            }
            reply(StatusCode::OK, s.user_json(parts[1]))
        }
        ("GET", "/guilds/{guild_id}") => {
            if parts[1] != GUILD_ID {
                return error(StatusCode::NOT_FOUND, 10004, "Unknown Guild");
            }
            reply(StatusCode::OK, s.guild_json())
        }
        ("GET", "/guilds/{guild_id}/members/{user_id}") => {
            if parts[1] != GUILD_ID {
                return error(StatusCode::NOT_FOUND, 10004, "Unknown Guild");
            }
            if !s.members.contains_key(parts[3]) {
                return error(StatusCode::NOT_FOUND, 10007, "Unknown Member");
            }
            reply(StatusCode::OK, s.member_json(parts[3], true))
        }
        ("GET", "/channels/{channel_id}/messages/{message_id}") => {
            let (channel, id) = (parts[1], parts[3]);
            if s.bot_permissions(channel) & perms::VIEW_CHANNEL == 0 {
                return error(StatusCode::FORBIDDEN, 50001, "Missing Access");
            }
            match s
                .messages
                .iter()
                .position(|m| m.id == id && m.channel_id == channel && !m.deleted)
            {
                Some(i) => reply(StatusCode::OK, s.message_json(i, false)),
                None => error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
            }
        }
        ("POST", "/channels/{channel_id}/messages") => create_message(s, parts[1], body),
        ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me") => {
            let (channel, id) = (parts[1], parts[3]);
            if s.bot_permissions(channel) & perms::ADD_REACTIONS == 0 {
                return error(StatusCode::FORBIDDEN, 50013, "Missing Permissions");
            }
            if !s
                .messages
                .iter()
                .any(|m| m.id == id && m.channel_id == channel && !m.deleted)
            {
                return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
            }
            let emoji = percent_decode(parts[5]);
            let d = s.reaction_json(channel, id, BOT_USER_ID, &emoji);
            s.dispatch("MESSAGE_REACTION_ADD", d);
            (StatusCode::NO_CONTENT, ()).into_response()
        }
        ("PATCH", "/channels/{channel_id}/messages/{message_id}") => {
            edit_message(s, parts[1], parts[3], body)
        }
        ("POST", "/users/@me/channels") => {
            let Some(user) = body["recipient_id"].as_str().map(String::from) else {
                return form_error(&[(
                    "recipient_id".into(),
                    "BASE_TYPE_REQUIRED",
                    "This field is required".into(),
                )]);
            };
            if !s.members.contains_key(&user) {
                return error(
                    StatusCode::BAD_REQUEST,
                    50007,
                    "Cannot send messages to this user",
                );
            }
            let existing = s
                .channels
                .iter()
                .find(|(_, c)| c.dm_with.as_deref() == Some(user.as_str()))
                .map(|(id, _)| id.clone());
            let id = match existing {
                Some(id) => id,
                None => {
                    let id = s.snowflake();
                    s.channels.insert(
                        id.clone(),
                        Channel {
                            name: String::new(),
                            overwrites: vec![],
                            dm_with: Some(user),
                        },
                    );
                    id
                }
            };
            reply(StatusCode::OK, s.channel_json(&id).unwrap_or(Value::Null))
        }
        ("PUT", "/applications/{application_id}/commands")
        | ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands") => {
            let scope = if parts.len() > 3 && parts[2] == "guilds" {
                parts[3].to_string()
            } else {
                "global".to_string()
            };
            let Some(cmds) = body.as_array() else {
                return form_error(&[(
                    "_root".into(),
                    "BASE_TYPE_ARRAY",
                    "Must be an array".into(),
                )]);
            };
            let mut stored = Vec::new();
            for c in cmds {
                let mut c = c.clone();
                c["id"] = json!(s.snowflake());
                c["application_id"] = json!(APPLICATION_ID);
                c["version"] = json!(s.snowflake());
                if scope != "global" {
                    c["guild_id"] = json!(scope);
                }
                c["type"] = c.get("type").cloned().unwrap_or(json!(1));
                if c.get("default_member_permissions").is_none() {
                    c["default_member_permissions"] = Value::Null;
                }
                if c.get("description").is_none() {
                    c["description"] = json!("");
                }
                stored.push(c);
            }
            s.commands.insert(scope, stored.clone());
            reply(StatusCode::OK, json!(stored))
        }
        ("POST", "/interactions/{interaction_id}/{interaction_token}/callback") => {
            interaction_callback(s, parts[1], parts[2], body)
        }
        ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original") => {
            let token = parts[2];
            let Some(i) = s.interactions.get(token).cloned() else {
                return error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
            };
            if parts[1] != APPLICATION_ID
                || i.sent.elapsed() > std::time::Duration::from_secs(15 * 60)
            {
                return error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
            }
            let Some(original) = i.original.clone() else {
                return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
            };
            edit_message(s, &i.channel_id, &original, body)
        }
        ("POST", "/webhooks/{webhook_id}/{webhook_token}") => {
            let token = parts[2];
            let Some(i) = s.interactions.get(token).cloned() else {
                return error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
            };
            if parts[1] != APPLICATION_ID || i.response.is_none() {
                return error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
            }
            let r = post_as_bot(s, &i.channel_id, body);
            if r.status().is_success() {
                let id = s.messages.last().map(|m| m.id.clone()).unwrap_or_default();
                if let Some(x) = s.interactions.get_mut(token) {
                    x.followups.push(id);
                }
            }
            r
        }
        _ => error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

/// The first answer to an interaction: within 3 s, once. Types 4 and 7 (a message now, or
/// an update of the clicked message) and 5 and 6 (deferred) make or keep the original
/// response; 8 answers autocomplete; 9 opens a modal.
fn interaction_callback(s: &mut FakeState, id: &str, token: &str, body: &Value) -> Response {
    let Some(i) = s.interactions.get(token).cloned().filter(|i| i.id == id) else {
        return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    };
    if i.sent.elapsed() > std::time::Duration::from_secs(3) {
        return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    }
    if i.response.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            40060,
            "Interaction has already been acknowledged.",
        );
    }
    let kind = body["type"].as_u64().unwrap_or(0);
    if !(4..=9).contains(&kind) && kind != 10 {
        return form_error(&[(
            "type".into(),
            "BASE_TYPE_CHOICES",
            format!("Value must be one of (1, 4, 5, 6, 7, 8, 9, 10), not {kind}."),
        )]);
    }
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let original = match kind {
        4 | 5 => {
            let mut msg = data.clone();
            if kind == 5 {
                msg = json!({ "content": "", "flags": data["flags"] });
            }
            if kind == 4 {
                let errs = check_message(&msg);
                if !errs.is_empty() {
                    return form_error(
                        &errs
                            .into_iter()
                            .map(|(p, c, m)| (format!("data.{p}"), c, m))
                            .collect::<Vec<_>>(),
                    );
                }
            }
            let mid = s.snowflake();
            s.messages
                .push(DiscordMessage::from_body(mid.clone(), &i.channel_id, &msg));
            Some(mid)
        }
        _ => None,
    };
    if kind == 7 {
        // UPDATE_MESSAGE edits the message the component is on.
        let Some(m) = i
            .message
            .as_ref()
            .and_then(|m| s.messages.iter().position(|x| &x.id == m))
        else {
            return form_error(&[(
                "type".into(),
                "INTERACTION_UPDATE_MESSAGE_NO_MESSAGE",
                "Only a component interaction can update its message.".into(),
            )]);
        };
        let errs = check_message(&data);
        if !errs.is_empty() {
            return form_error(&errs);
        }
        let msg = &mut s.messages[m];
        if let Some(c) = data["content"].as_str() {
            msg.content = c.to_string();
        }
        if data["embeds"].is_array() {
            msg.embeds = stored_embeds(&data["embeds"]);
        }
        if data["components"].is_array() {
            msg.components = stored_components(&data["components"]);
        }
        msg.edits += 1;
    }
    if kind == 8 {
        // Discord refuses an autocomplete answer beyond its documented limits.
        let errs = check_choices(&data);
        if !errs.is_empty() {
            return form_error(&errs);
        }
    }
    if kind == 9
        && data["custom_id"]
            .as_str()
            .is_none_or(|c| c.is_empty() || c.len() > 100)
    {
        return form_error(&[(
            "data.custom_id".into(),
            "BASE_TYPE_REQUIRED",
            "A modal needs a custom_id of 1 to 100 characters.".into(),
        )]);
    }
    if let Some(x) = s.interactions.get_mut(token) {
        x.response = Some(body.clone());
        x.original = original;
    }
    (StatusCode::NO_CONTENT, ()).into_response()
}

/// Decodes `%XX` escapes (an emoji in a reaction route).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ws_url(base: &str) -> String {
    format!("{}/gateway", base.replacen("http://", "ws://", 1))
}

/// Embeds as Discord stores them: `type` set (`rich` unless given), fields' `inline` set.
fn stored_embeds(v: &Value) -> Vec<Value> {
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut e| {
            if e.get("type").is_none_or(Value::is_null) {
                e["type"] = json!("rich");
            }
            // `get_mut`, not indexing: indexing would add `"fields": null`.
            if let Some(fields) = e.get_mut("fields").and_then(Value::as_array_mut) {
                for f in fields {
                    if f.get("inline").is_none_or(Value::is_null) {
                        f["inline"] = json!(false);
                    }
                }
            }
            e
        })
        .collect()
}

/// Components as Discord stores them: every component numbered with an `id`, in order.
fn stored_components(v: &Value) -> Vec<Value> {
    fn number(c: &mut Value, next: &mut u64) {
        if c.get("id").is_none_or(Value::is_null) {
            c["id"] = json!(*next);
        }
        *next += 1;
        if let Some(children) = c.get_mut("components").and_then(Value::as_array_mut) {
            for child in children {
                number(child, next);
            }
        }
    }
    let mut next = 1;
    let mut out = v.as_array().cloned().unwrap_or_default();
    for c in &mut out {
        number(c, &mut next);
    }
    out
}

/// Checks a message body against Discord's documented limits; the errors say which field.
/// The documented limits of an autocomplete answer: at most 25 choices, each with a name of
/// 1 to 100 characters and a string value of at most 100 characters (or a number).
fn check_choices(data: &Value) -> Vec<(String, &'static str, String)> {
    let mut errs = Vec::new();
    let Some(choices) = data["choices"].as_array() else {
        return vec![(
            "data.choices".into(),
            "BASE_TYPE_REQUIRED",
            "This field is required".into(),
        )];
    };
    if choices.len() > 25 {
        errs.push((
            "data.choices".into(),
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.".into(),
        ));
    }
    for (i, c) in choices.iter().enumerate() {
        let name = c["name"].as_str().map_or(0, |n| n.chars().count());
        if !(1..=100).contains(&name) {
            errs.push((
                format!("data.choices.{i}.name"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.".into(),
            ));
        }
        let value_ok = match &c["value"] {
            Value::String(v) => v.chars().count() <= 100,
            Value::Number(_) => true,
            _ => false,
        };
        if !value_ok {
            errs.push((
                format!("data.choices.{i}.value"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be a string of 100 or fewer in length, or a number.".into(),
            ));
        }
    }
    errs
}

fn check_message(body: &Value) -> Vec<(String, &'static str, String)> {
    let mut errs = Vec::new();
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    if len(&body["content"]) > 2000 {
        errs.push((
            "content".into(),
            "BASE_TYPE_MAX_LENGTH",
            "Must be 2000 or fewer in length.".into(),
        ));
    }
    if let Some(nonce) = body["nonce"].as_str() {
        if nonce.chars().count() > 25 {
            errs.push((
                "nonce".into(),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.".into(),
            ));
        }
    }
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    if embeds.len() > 10 {
        errs.push((
            "embeds".into(),
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.".into(),
        ));
    }
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        for (field, max) in [("title", 256), ("description", 4096)] {
            let n = len(&e[field]);
            total += n;
            if n > max {
                errs.push((
                    format!("embeds.{i}.{field}"),
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {max} or fewer in length."),
                ));
            }
        }
        for (field, max) in [("footer", 2048), ("author", 256)] {
            let key = if field == "footer" { "text" } else { "name" };
            let n = len(&e[field][key]);
            total += n;
            if n > max {
                errs.push((
                    format!("embeds.{i}.{field}.{key}"),
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {max} or fewer in length."),
                ));
            }
        }
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > 25 {
            errs.push((
                format!("embeds.{i}.fields"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.".into(),
            ));
        }
        for (j, f) in fields.iter().enumerate() {
            for (key, max) in [("name", 256), ("value", 1024)] {
                let n = len(&f[key]);
                total += n;
                if n == 0 {
                    errs.push((
                        format!("embeds.{i}.fields.{j}.{key}"),
                        "BASE_TYPE_REQUIRED",
                        "This field is required".into(),
                    ));
                }
                if n > max {
                    errs.push((
                        format!("embeds.{i}.fields.{j}.{key}"),
                        "BASE_TYPE_MAX_LENGTH",
                        format!("Must be {max} or fewer in length."),
                    ));
                }
            }
        }
    }
    if total > 6000 {
        errs.push((
            "embeds".into(),
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000".into(),
        ));
    }
    let rows = body["components"].as_array().cloned().unwrap_or_default();
    if rows.len() > 5 {
        errs.push((
            "components".into(),
            "BASE_TYPE_MAX_LENGTH",
            "Must be 5 or fewer in length.".into(),
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        let items = row["components"].as_array().cloned().unwrap_or_default();
        if row["type"] != 1 || items.is_empty() || items.len() > 5 {
            errs.push((
                format!("components.{i}"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "An action row holds 1 to 5 buttons.".into(),
            ));
        }
        for (j, b) in items.iter().enumerate() {
            if b["type"] == 2 && len(&b["custom_id"]) == 0 && b["style"] != 5 {
                errs.push((
                    format!("components.{i}.components.{j}.custom_id"),
                    "BASE_TYPE_REQUIRED",
                    "This field is required".into(),
                ));
            }
            if len(&b["custom_id"]) > 100 || len(&b["label"]) > 80 {
                errs.push((
                    format!("components.{i}.components.{j}"),
                    "BASE_TYPE_MAX_LENGTH",
                    "custom_id at most 100, label at most 80.".into(),
                ));
            }
        }
    }
    if let Some(am) = body.get("allowed_mentions").filter(|v| !v.is_null()) {
        let parse: Vec<&str> = am["parse"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if parse
            .iter()
            .any(|p| !["roles", "users", "everyone"].contains(p))
        {
            errs.push((
                "allowed_mentions.parse".into(),
                "BASE_TYPE_CHOICES",
                "Value must be one of {'roles', 'users', 'everyone'}.".into(),
            ));
        }
        for (kind, key) in [("users", "users"), ("roles", "roles")] {
            if parse.contains(&kind) && am[key].as_array().is_some_and(|a| !a.is_empty()) {
                errs.push((
                    "allowed_mentions".into(),
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    format!("parse:[\"{kind}\"] and {key}: [ids] are mutually exclusive."),
                ));
            }
        }
    }
    errs
}

/// A follow-up message through an interaction webhook: no channel permissions are needed.
fn post_as_bot(s: &mut FakeState, channel: &str, body: &Value) -> Response {
    let errs = check_message(body);
    if !errs.is_empty() {
        return form_error(&errs);
    }
    let id = s.snowflake();
    s.messages
        .push(DiscordMessage::from_body(id, channel, body));
    let i = s.messages.len() - 1;
    reply(StatusCode::OK, s.message_json(i, false))
}

fn create_message(s: &mut FakeState, channel: &str, body: &Value) -> Response {
    if !s.channels.contains_key(channel) {
        return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    let p = s.bot_permissions(channel);
    if p & perms::VIEW_CHANNEL == 0 {
        return error(StatusCode::FORBIDDEN, 50001, "Missing Access");
    }
    if p & perms::SEND_MESSAGES == 0 {
        return error(StatusCode::FORBIDDEN, 50013, "Missing Permissions");
    }
    let errs = check_message(body);
    if !errs.is_empty() {
        return form_error(&errs);
    }
    let files: Vec<(String, Vec<u8>)> = body["_files"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["filename"].as_str().unwrap_or("file").to_string(),
                        base64::engine::general_purpose::STANDARD
                            .decode(f["bytes"].as_str().unwrap_or(""))
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let content = body["content"].as_str().unwrap_or("").to_string();
    let embeds = stored_embeds(&body["embeds"]);
    let components = stored_components(&body["components"]);
    if content.is_empty() && embeds.is_empty() && components.is_empty() && files.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        );
    }
    let nonce = match &body["nonce"] {
        Value::String(n) => Some(n.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if body["enforce_nonce"] == true {
        if let Some(n) = &nonce {
            if let Some(id) = s.nonces.get(&(channel.to_string(), n.clone())).cloned() {
                // Discord returns the message the nonce already created.
                let i = s.messages.iter().position(|m| m.id == id).unwrap_or(0);
                return reply(StatusCode::OK, s.message_json(i, false));
            }
        }
    }
    let reply_to = body["message_reference"]["message_id"]
        .as_str()
        .map(String::from);
    if let Some(r) = &reply_to {
        if !s
            .messages
            .iter()
            .any(|m| &m.id == r && m.channel_id == channel)
        {
            return form_error(&[(
                "message_reference".into(),
                "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                "Unknown message".into(),
            )]);
        }
    }
    let id = s.snowflake();
    if let Some(n) = &nonce {
        s.nonces
            .insert((channel.to_string(), n.clone()), id.clone());
    }
    s.messages.push(DiscordMessage {
        reply_to,
        nonce,
        files,
        ..DiscordMessage::from_body(id, channel, body)
    });
    let i = s.messages.len() - 1;
    let m = s.message_json(i, true);
    s.dispatch("MESSAGE_CREATE", m);
    reply(StatusCode::OK, s.message_json(i, false))
}

fn edit_message(s: &mut FakeState, channel: &str, id: &str, body: &Value) -> Response {
    let Some(i) = s
        .messages
        .iter()
        .position(|m| m.id == id && m.channel_id == channel && !m.deleted)
    else {
        return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    };
    if s.messages[i].author_id != BOT_USER_ID {
        return error(
            StatusCode::FORBIDDEN,
            50005,
            "Cannot edit a message authored by another user",
        );
    }
    let errs = check_message(body);
    if !errs.is_empty() {
        return form_error(&errs);
    }
    let m = &mut s.messages[i];
    if let Some(c) = body["content"].as_str() {
        m.content = c.to_string();
    }
    if body["embeds"].is_array() {
        m.embeds = stored_embeds(&body["embeds"]);
    }
    if body["components"].is_array() {
        m.components = stored_components(&body["components"]);
    }
    if let Some(am) = body.get("allowed_mentions").filter(|v| !v.is_null()) {
        m.allowed_mentions = Some(am.clone());
    }
    m.edits += 1;
    let v = s.message_json(i, true);
    s.dispatch("MESSAGE_UPDATE", v);
    reply(StatusCode::OK, s.message_json(i, false))
}

async fn gateway(State(state): State<Shared>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| connection(state, socket))
}

async fn send(socket: &mut WebSocket, frame: &Value) -> bool {
    socket
        .send(WsMessage::Text(frame.to_string().into()))
        .await
        .is_ok()
}

/// One gateway connection: HELLO, then IDENTIFY or RESUME, heartbeats and control.
async fn connection(state: Shared, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (conn, heartbeat) = {
        let mut s = lock(&state);
        s.next_conn += 1;
        let id = s.next_conn;
        s.conns.insert(id, tx);
        (id, s.heartbeat_ms)
    };
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": heartbeat }, "s": null, "t": null });
    if send(&mut socket, &hello).await {
        loop {
            tokio::select! {
                incoming = socket.recv() => {
                    let Some(Ok(msg)) = incoming else { break };
                    let text = match msg {
                        WsMessage::Text(t) => t.to_string(),
                        WsMessage::Close(_) => {
                            // Reading on lets the WebSocket send its reply to the close
                            // handshake, as Discord answers a bot logging off.
                            while let Some(Ok(_)) = socket.recv().await {}
                            break;
                        }
                        _ => continue,
                    };
                    let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                        let _ = socket.send(WsMessage::Close(Some(CloseFrame { code: 4002, reason: "Error while decoding payload.".into() }))).await;
                        break;
                    };
                    let replies = handle_op(&state, conn, &frame);
                    let mut closed = false;
                    for r in replies {
                        match r {
                            Ctl::Send(v) => { if !send(&mut socket, &v).await { closed = true; } }
                            Ctl::Close(code, reason) => {
                                let _ = socket.send(WsMessage::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                                closed = true;
                            }
                            Ctl::Drop => closed = true,
                        }
                    }
                    if closed { break; }
                }
                ctl = rx.recv() => {
                    match ctl {
                        Some(Ctl::Send(v)) => { if !send(&mut socket, &v).await { break; } }
                        Some(Ctl::Close(code, reason)) => {
                            let _ = socket.send(WsMessage::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                            break;
                        }
                        Some(Ctl::Drop) | None => break,
                    }
                }
            }
        }
    }
    let mut s = lock(&state);
    s.conns.remove(&conn);
    for session in s.sessions.values_mut() {
        if session.conn == Some(conn) {
            session.conn = None;
        }
    }
}

/// Answers one client frame; returns what to send (or close with) on this connection.
fn handle_op(state: &Shared, conn: u64, frame: &Value) -> Vec<Ctl> {
    let mut s = lock(state);
    match frame["op"].as_u64() {
        Some(1) => vec![Ctl::Send(
            json!({ "op": 11, "d": null, "s": null, "t": null }),
        )],
        Some(2) => {
            let d = &frame["d"];
            let token = d["token"].as_str().unwrap_or("");
            if token.trim_start_matches("Bot ") != s.token {
                return vec![Ctl::Close(4004, "Authentication failed.".into())];
            }
            let intents = d["intents"].as_u64().unwrap_or(0);
            let mut logged = d.clone();
            logged["token"] = json!("[redacted]");
            s.identifies.push(logged);
            if intents & INTENT_MESSAGE_CONTENT != 0 && !s.message_content_allowed {
                return vec![Ctl::Close(4014, "Disallowed intent(s).".into())];
            }
            let shard = (
                d["shard"][0].as_u64().unwrap_or(0),
                d["shard"][1].as_u64().unwrap_or(1).max(1),
            );
            if shard.0 >= shard.1 {
                return vec![Ctl::Close(4010, "Invalid shard.".into())];
            }
            // A new session replaces any earlier one of the same shard.
            for old in s.sessions.values_mut().filter(|o| o.shard == shard) {
                old.valid = false;
            }
            let session_id = format!("{:032x}", fastrand::u128(..));
            let ready = json!({
                "v": 10, "user": {
                    "id": BOT_USER_ID, "username": "switchboard", "discriminator": "0",
                    "global_name": "Switchboard", "avatar": null, "bot": true,
                    "verified": true, "mfa_enabled": false, "flags": 0, "email": null
                },
                "guilds": [{ "id": GUILD_ID, "unavailable": true }],
                "session_id": session_id,
                "resume_gateway_url": ws_url(&s.base_url),
                "shard": [shard.0, shard.1],
                "application": { "id": APPLICATION_ID, "flags": if s.message_content_allowed { 1 << 19 } else { 0 } },
                "private_channels": [], "relationships": [], "presences": [], "guild_join_requests": [],
                "geo_ordered_rtc_regions": [], "user_settings": {}, "session_type": "normal"
            });
            s.sessions.insert(
                session_id.clone(),
                Session {
                    seq: 0,
                    sent: vec![],
                    shard,
                    conn: Some(conn),
                    valid: true,
                },
            );
            let guild_shard = (GUILD_ID.parse::<u64>().unwrap_or(0) >> 22) % shard.1;
            let mut frames = Vec::new();
            let ready_frame = next_frame(&mut s, &session_id, "READY", ready);
            frames.push(Ctl::Send(ready_frame));
            if guild_shard == shard.0 {
                let g = s.guild_create_json();
                let gc = next_frame(&mut s, &session_id, "GUILD_CREATE", g);
                frames.push(Ctl::Send(gc));
            }
            frames
        }
        Some(6) => {
            let d = &frame["d"];
            let token = d["token"].as_str().unwrap_or("");
            if token.trim_start_matches("Bot ") != s.token {
                return vec![Ctl::Close(4004, "Authentication failed.".into())];
            }
            let id = d["session_id"].as_str().unwrap_or("").to_string();
            let seq = d["seq"].as_u64().unwrap_or(0);
            let Some(session) = s.sessions.get_mut(&id).filter(|x| x.valid) else {
                return vec![Ctl::Send(
                    json!({ "op": 9, "d": false, "s": null, "t": null }),
                )];
            };
            session.conn = Some(conn);
            let mut out: Vec<Ctl> = session
                .sent
                .iter()
                .filter(|(n, _)| *n > seq)
                .map(|(_, f)| Ctl::Send(f.clone()))
                .collect();
            s.resumes += 1;
            let resumed = next_frame(&mut s, &id, "RESUMED", json!({}));
            out.push(Ctl::Send(resumed));
            out
        }
        // Presence updates, member requests and the like need no answer here.
        _ => vec![],
    }
}

fn next_frame(s: &mut FakeState, session: &str, event: &str, data: Value) -> Value {
    let Some(sess) = s.sessions.get_mut(session) else {
        return Value::Null;
    };
    sess.seq += 1;
    let frame = json!({ "op": 0, "s": sess.seq, "t": event, "d": data });
    sess.sent.push((sess.seq, frame.clone()));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_named_as_discords_spec_names_them() {
        assert_eq!(
            route_of("channels/1/messages"),
            "/channels/{channel_id}/messages"
        );
        assert_eq!(
            route_of("channels/1/messages/2"),
            "/channels/{channel_id}/messages/{message_id}"
        );
        assert_eq!(
            route_of("applications/9/guilds/7/commands"),
            "/applications/{application_id}/guilds/{guild_id}/commands"
        );
        assert_eq!(
            route_of("webhooks/9/tok/messages/@original"),
            "/webhooks/{webhook_id}/{webhook_token}/messages/@original"
        );
    }

    #[test]
    fn limits_are_checked_like_discord() {
        assert!(check_message(&json!({ "content": "x".repeat(2000) })).is_empty());
        assert_eq!(
            check_message(&json!({ "content": "x".repeat(2001) }))[0].0,
            "content"
        );
        let fields: Vec<Value> = (0..26)
            .map(|i| json!({ "name": format!("f{i}"), "value": "v" }))
            .collect();
        let errs = check_message(&json!({ "embeds": [{ "title": "t", "fields": fields }] }));
        assert!(errs.iter().any(|e| e.0 == "embeds.0.fields"), "{errs:?}");
        let big = json!({ "embeds": [{ "description": "d".repeat(4000) }, { "description": "d".repeat(2001) }] });
        assert!(check_message(&big)
            .iter()
            .any(|e| e.1 == "MAX_EMBED_SIZE_EXCEEDED"));
        let am =
            json!({ "content": "x", "allowed_mentions": { "parse": ["users"], "users": ["1"] } });
        assert_eq!(check_message(&am).len(), 1);
    }

    #[test]
    fn pings_follow_allowed_mentions() {
        let m = |content: &str, am: Option<Value>| DiscordMessage {
            id: "1".into(),
            channel_id: "2".into(),
            author_id: BOT_USER_ID.into(),
            content: content.into(),
            embeds: vec![],
            components: vec![],
            reply_to: None,
            allowed_mentions: am,
            nonce: None,
            files: vec![],
            edits: 0,
            deleted: false,
            ephemeral: false,
        };
        let text = "@everyone <@&55> <@66> <@!77>";
        assert_eq!(
            FakeDiscord::pinged(&m(text, None)),
            ["everyone", "role:55", "user:66", "user:77"]
        );
        assert!(FakeDiscord::pinged(&m(text, Some(json!({ "parse": [] })))).is_empty());
        assert_eq!(
            FakeDiscord::pinged(&m(text, Some(json!({ "parse": [], "users": ["66"] })))),
            ["user:66"]
        );
    }
}
