//! Discord's REST API through serenity: the [`Delivery`] for Discord and the lookups the
//! adapter needs (the bot itself, channels, permissions, messages, DM channels).
//!
//! Owns how requests are sent and how failures are classified. Requests are built by
//! serenity (`Request` + `Route`) with bodies rendered by [`super::render`]. Against
//! `https://discord.com` serenity's own rate limiter sends them and waits out every 429.
//! With another base URL (a proxy, or the loopback fake) serenity's limiter would ignore the
//! base, so it is off and the request runs on our own reqwest client, which reads
//! `Retry-After` / `retry_after` from a 429 and hands the wait to the outbox. Never logs the
//! token. Must not decide content.

use std::sync::Arc;
use std::time::Duration;

use crate::core::cache::{Bounded, PEOPLE_CACHED, PEOPLE_FOR};

use async_trait::async_trait;
use serde_json::{json, Value};
use serenity::http::{
    Http, HttpBuilder, HttpError, LightMethod, Multipart, MultipartUpload, Request, Route,
};
use serenity::model::id::{ApplicationId, ChannelId, GuildId, InteractionId, MessageId, UserId};

use super::ratelimit::{Answer, LimitStats, Limits, RouteKey};
use super::render;
use crate::chat::pace::{PaceStats, Wait};
use crate::chat::{ChatError, Delivery};
use crate::config::{DiscordLimits, Secret};
use crate::core::message::{Message, Target};
use crate::core::types::{ChannelRef, Platform};
use crate::desk::{AccountKind, AccountLookup, LookupError};

/// Discord's own API host; any other base URL is a proxy.
pub const DISCORD_COM: &str = "https://discord.com";

/// The start of every path serenity builds.
const SERENITY_BASE: &str = "https://discord.com/api/v10";

/// How long one REST call may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// The bot's view of Discord's REST API.
#[derive(Clone)]
pub struct DiscordApi {
    http: Arc<Http>,
    token: Secret,
    client: reqwest::Client,
    /// The base URL when it is not discord.com (serenity's limiter is then off).
    proxy: Option<String>,
    /// DM channel id by user id; Discord returns the same channel every time (bounded:
    /// `PEOPLE_CACHED` entries for `PEOPLE_FOR`, as Slack's people).
    dms: Arc<Bounded<String, String>>,
    /// Person or bot by user id (bounded likewise).
    kinds: Arc<Bounded<String, AccountKind>>,
    /// Display names by user id, from the same answers (bounded likewise).
    names: Arc<Bounded<String, String>>,
    /// Buckets, the global pace and the invalid-request count.
    limits: Arc<Limits>,
}

impl std::fmt::Debug for DiscordApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordApi")
            .field("token", &"[redacted]")
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// A Discord snowflake from its string form.
pub fn snowflake(id: &str) -> Result<std::num::NonZeroU64, ChatError> {
    id.parse::<std::num::NonZeroU64>()
        .map_err(|_| ChatError::Permanent(format!("`{id}` is not a Discord id")))
}

/// The nonce for an outbox key: short enough for Discord (25 characters), the same for every
/// retry of one outbox row, so `enforce_nonce` turns a retried create into the first one.
pub fn nonce(key: &str) -> String {
    let digits: String = key
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if !digits.is_empty() && digits.len() <= 22 {
        return format!("sb{digits}");
    }
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))[..25].to_string()
}

impl DiscordApi {
    /// A client for the API at `api_url` (`https://discord.com`, or a proxy or fake base).
    pub fn new(api_url: &str, token: &Secret) -> Result<Self, ClientError> {
        let client = Self::client_builder()
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(Self::with_client(api_url, token, client))
    }

    /// The HTTP client settings the adapter uses (timeouts, user agent); tests add a resolver
    /// override and a root certificate to reach a fake `discord.com`. A connection that does
    /// not open within 5 s fails (a transient error, retried) instead of using up the whole
    /// call's 15 s on an unreachable address.
    pub fn client_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!(
                "DiscordBot (https://github.com/switchboard, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
    }

    /// A client for the API at `api_url` over a given HTTP client.
    pub fn with_client(api_url: &str, token: &Secret, client: reqwest::Client) -> Self {
        let base = api_url.trim_end_matches('/');
        let proxy = (base != DISCORD_COM).then(|| base.to_string());
        let http = Arc::new(build_http(token, &client, proxy.as_deref()));
        Self {
            http,
            token: token.clone(),
            client,
            proxy,
            dms: Arc::new(Bounded::new(PEOPLE_CACHED, PEOPLE_FOR)),
            kinds: Arc::new(Bounded::new(PEOPLE_CACHED, PEOPLE_FOR)),
            names: Arc::new(Bounded::new(PEOPLE_CACHED, PEOPLE_FOR)),
            limits: Arc::new(Limits::new(DiscordLimits::default())),
        }
    }

    /// The same client keeping `limits` instead of the defaults, counting into the given
    /// counters.
    pub fn with_limits(
        mut self,
        limits: DiscordLimits,
        pace: PaceStats,
        stats: LimitStats,
    ) -> Self {
        self.limits = Arc::new(Limits::with_stats(limits, pace, stats));
        self
    }

    /// What the limits did, for metrics.
    pub fn limits(&self) -> Arc<Limits> {
        self.limits.clone()
    }

    /// A new serenity HTTP client with the same token and base URL, for a gateway client
    /// (serenity's client builder takes its own).
    pub fn gateway_http(&self) -> Http {
        build_http(&self.token, &self.client, self.proxy.as_deref())
    }

    /// Sends one request and reads its JSON answer (`Null` for 204).
    async fn call(&self, req: Request<'_>) -> Result<Value, ChatError> {
        self.call_booked(req, None).await
    }

    /// Sends one request when Discord's limits allow it ([`super::ratelimit`]); `booking` (an
    /// outbox row's key) keeps the slot of a call deferred for a later attempt.
    async fn call_booked(
        &self,
        req: Request<'_>,
        booking: Option<&str>,
    ) -> Result<Value, ChatError> {
        let full = req.route_ref().path();
        let path = full.strip_prefix(SERENITY_BASE).unwrap_or(&full);
        let method = req.method_ref().reqwest_method();
        let what = format!("{method} {}", redacted(path));
        let key = RouteKey::of(method.as_str(), path);
        self.limits
            .before(&key, self.proxy.is_some(), booking)
            .await
            .map_err(|Wait(w)| ChatError::RateLimited(w))?;
        tracing::debug!(route = %key.route, major = %key.major, "sending to Discord");
        let response = match &self.proxy {
            None => match self.http.request(req).await {
                Ok(r) => {
                    self.limits.after(
                        &key,
                        &Answer::from_headers(r.status().as_u16(), r.headers()),
                    );
                    r
                }
                Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(e))) => {
                    let status = e.status_code.as_u16();
                    self.limits.after(
                        &key,
                        &Answer {
                            status,
                            ..Answer::default()
                        },
                    );
                    return Err(classify_status(
                        status,
                        None,
                        &format!("{} ({})", e.error.message, e.error.code),
                        &what,
                    ));
                }
                Err(e) => return Err(ChatError::Transient(format!("{what}: {}", without_url(e)))),
            },
            Some(proxy) => {
                let request = req
                    .build(&self.client, self.http.token(), Some(proxy))
                    .map_err(|e| {
                        ChatError::Permanent(format!("{what}: cannot build the request: {e}"))
                    })?
                    .build()
                    .map_err(|e| {
                        ChatError::Permanent(format!("{what}: cannot build the request: {e}"))
                    })?;
                let r =
                    self.client.execute(request).await.map_err(|e| {
                        ChatError::Transient(format!("{what}: {}", e.without_url()))
                    })?;
                let status = r.status().as_u16();
                let mut answer = Answer::from_headers(status, r.headers());
                if !r.status().is_success() {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    // The body's retry_after is more precise (fractions of a second).
                    if let Some(secs) = body["retry_after"].as_f64() {
                        answer.retry_after = Some(secs);
                    }
                    answer.global |= body["global"] == true;
                    self.limits.after(&key, &answer);
                    let message = format!(
                        "{} ({})",
                        body["message"].as_str().unwrap_or("no message"),
                        body["code"]
                    );
                    return Err(classify_status(status, answer.retry_after, &message, &what));
                }
                self.limits.after(&key, &answer);
                r
            }
        };
        if response.status().as_u16() == 204 {
            return Ok(Value::Null);
        }
        response.json::<Value>().await.map_err(|e| {
            ChatError::Transient(format!("{what}: unreadable answer: {}", e.without_url()))
        })
    }

    fn json_request<'a>(route: Route<'a>, method: LightMethod, body: &Value) -> Request<'a> {
        Request::new(route, method).body(Some(body.to_string().into_bytes()))
    }

    /// The bot's own user id and name (`GET /users/@me`), which also checks the token.
    pub async fn whoami(&self) -> Result<(String, String), ChatError> {
        let me = self
            .call(Request::new(Route::UserMe, LightMethod::Get))
            .await?;
        Ok((
            me["id"].as_str().unwrap_or_default().to_string(),
            me["username"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// A channel (`GET /channels/{id}`).
    pub async fn channel(&self, id: &str) -> Result<Value, ChatError> {
        let channel_id = ChannelId::from(snowflake(id)?);
        self.call(Request::new(
            Route::Channel { channel_id },
            LightMethod::Get,
        ))
        .await
    }

    /// A guild with its roles (`GET /guilds/{id}`).
    pub async fn guild(&self, id: &str) -> Result<Value, ChatError> {
        let guild_id = GuildId::from(snowflake(id)?);
        self.call(Request::new(Route::Guild { guild_id }, LightMethod::Get))
            .await
    }

    /// A guild member (`GET /guilds/{guild}/members/{user}`).
    pub async fn member(&self, guild: &str, user: &str) -> Result<Value, ChatError> {
        let guild_id = GuildId::from(snowflake(guild)?);
        let user_id = UserId::from(snowflake(user)?);
        self.call(Request::new(
            Route::GuildMember { guild_id, user_id },
            LightMethod::Get,
        ))
        .await
    }

    /// A message, or `None` when Discord says it does not exist (any more).
    pub async fn message(&self, channel: &str, id: &str) -> Result<Option<Value>, ChatError> {
        let channel_id = ChannelId::from(snowflake(channel)?);
        let message_id = MessageId::from(snowflake(id)?);
        match self
            .call(Request::new(
                Route::ChannelMessage {
                    channel_id,
                    message_id,
                },
                LightMethod::Get,
            ))
            .await
        {
            Ok(m) => Ok(Some(m)),
            Err(ChatError::Permanent(e)) if e.contains("(10008)") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The DM channel with `user` (`POST /users/@me/channels`, cached).
    pub async fn dm_channel(&self, user: &str) -> Result<String, ChatError> {
        if let Some(id) = self.dms.get(user) {
            return Ok(id);
        }
        let body = json!({ "recipient_id": user });
        let c = self
            .call(Self::json_request(
                Route::UserMeDmChannels,
                LightMethod::Post,
                &body,
            ))
            .await?;
        let id = c["id"]
            .as_str()
            .ok_or_else(|| ChatError::Transient("DM channel answer has no id".into()))?
            .to_string();
        self.dms.insert(user.to_string(), id.clone());
        Ok(id)
    }

    /// Creates a message with `body` in `channel`, returning its id; `booking` keeps a
    /// deferred create's place in the channel's pace.
    pub async fn create_message(
        &self,
        channel: &str,
        body: &Value,
        booking: Option<&str>,
    ) -> Result<String, ChatError> {
        let channel_id = ChannelId::from(snowflake(channel)?);
        let m = self
            .call_booked(
                Self::json_request(
                    Route::ChannelMessages { channel_id },
                    LightMethod::Post,
                    body,
                ),
                booking,
            )
            .await?;
        message_id(&m)
    }

    /// Creates a message carrying a file (multipart, the body as `payload_json`).
    pub async fn create_message_with_file(
        &self,
        channel: &str,
        body: &Value,
        filename: &str,
        bytes: &[u8],
        booking: Option<&str>,
    ) -> Result<String, ChatError> {
        let channel_id = ChannelId::from(snowflake(channel)?);
        let mut body = body.clone();
        body["attachments"] = json!([{ "id": "0", "filename": filename }]);
        let multipart = Multipart {
            upload: MultipartUpload::Attachments(vec![serenity::builder::CreateAttachment::bytes(
                bytes.to_vec(),
                filename.to_string(),
            )]),
            fields: vec![],
            payload_json: Some(body.to_string()),
        };
        let req = Request::new(Route::ChannelMessages { channel_id }, LightMethod::Post)
            .multipart(Some(multipart));
        let m = self.call_booked(req, booking).await?;
        message_id(&m)
    }

    /// Replaces message `id` in `channel` with `body`.
    pub async fn edit_message(
        &self,
        channel: &str,
        id: &str,
        body: &Value,
    ) -> Result<(), ChatError> {
        let channel_id = ChannelId::from(snowflake(channel)?);
        let message_id = MessageId::from(snowflake(id)?);
        self.call(Self::json_request(
            Route::ChannelMessage {
                channel_id,
                message_id,
            },
            LightMethod::Patch,
            body,
        ))
        .await?;
        Ok(())
    }

    /// The application's id (`GET /oauth2/applications/@me`), for commands and webhooks.
    pub async fn application_id(&self) -> Result<String, ChatError> {
        let app = self
            .call(Request::new(
                Route::Oauth2ApplicationCurrent,
                LightMethod::Get,
            ))
            .await?;
        app["id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| ChatError::Transient("application answer has no id".into()))
    }

    /// Replaces the application's commands (`PUT …/commands`), in one guild or globally.
    pub async fn register_commands(
        &self,
        application: &str,
        guild: Option<&str>,
        commands: &Value,
    ) -> Result<usize, ChatError> {
        let application_id = ApplicationId::from(snowflake(application)?);
        let route = match guild {
            Some(g) => Route::GuildCommands {
                application_id,
                guild_id: GuildId::from(snowflake(g)?),
            },
            None => Route::Commands { application_id },
        };
        let stored = self
            .call(Self::json_request(route, LightMethod::Put, commands))
            .await?;
        Ok(stored.as_array().map_or(0, Vec::len))
    }

    /// The first response to interaction `id` (`POST /interactions/{id}/{token}/callback`).
    pub async fn interaction_callback(
        &self,
        id: &str,
        token: &str,
        body: &Value,
    ) -> Result<(), ChatError> {
        let interaction_id = InteractionId::from(snowflake(id)?);
        self.call(Self::json_request(
            Route::InteractionResponse {
                interaction_id,
                token,
            },
            LightMethod::Post,
            body,
        ))
        .await?;
        Ok(())
    }

    /// Replaces the original response of an interaction (after a deferral).
    pub async fn edit_original(
        &self,
        application: &str,
        token: &str,
        body: &Value,
    ) -> Result<(), ChatError> {
        let application_id = ApplicationId::from(snowflake(application)?);
        self.call(Self::json_request(
            Route::WebhookOriginalInteractionResponse {
                application_id,
                token,
            },
            LightMethod::Patch,
            body,
        ))
        .await?;
        Ok(())
    }

    /// Whether user `id` is a person or a bot (`GET /users/{id}`, cached).
    pub async fn account_kind(&self, id: &str) -> Result<AccountKind, ChatError> {
        if let Some(k) = self.kinds.get(id) {
            return Ok(k);
        }
        Ok(self.user(id).await?.0)
    }

    /// The name Discord shows for user `id` (their display name, else their username;
    /// `GET /users/{id}`, cached); `None` for an unknown user.
    pub async fn user_name(&self, id: &str) -> Result<Option<String>, ChatError> {
        if let Some(name) = self.names.get(id) {
            return Ok(Some(name));
        }
        Ok(self.user(id).await?.1)
    }

    /// One `GET /users/{id}`, caching the kind and name it tells.
    async fn user(&self, id: &str) -> Result<(AccountKind, Option<String>), ChatError> {
        let user_id = UserId::from(snowflake(id)?);
        let (kind, name) = match self
            .call(Request::new(Route::User { user_id }, LightMethod::Get))
            .await
        {
            Ok(u) => {
                let kind = if u["bot"] == true {
                    AccountKind::Bot
                } else {
                    AccountKind::Person
                };
                let name = u["global_name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .or(u["username"].as_str())
                    .map(str::to_string);
                (kind, name)
            }
            Err(ChatError::Permanent(e)) if e.contains("(10013)") => (AccountKind::Unknown, None),
            Err(e) => return Err(e),
        };
        self.kinds.insert(id.to_string(), kind);
        if let Some(n) = &name {
            self.names.insert(id.to_string(), n.clone());
        }
        Ok((kind, name))
    }

    /// Remembers what a user is, from a payload that said (a reaction's member, a message's
    /// author), saving a lookup later.
    pub fn note_kind(&self, id: &str, bot: bool) {
        let kind = if bot {
            AccountKind::Bot
        } else {
            AccountKind::Person
        };
        self.kinds.insert(id.to_string(), kind);
    }

    /// Where a target's message goes: a channel (and the message it replies to), or the DM
    /// channel with a user.
    async fn channel_for(&self, target: &Target) -> Result<(String, Option<String>), ChatError> {
        match target {
            Target::Channel { channel, thread } => Ok((channel.id.clone(), thread.clone())),
            Target::User { user } => Ok((self.dm_channel(&user.id).await?, None)),
        }
    }
}

/// A serenity error's text without the request URL (which may hold a token).
fn without_url(e: serenity::Error) -> String {
    match e {
        serenity::Error::Http(HttpError::Request(r)) => r.without_url().to_string(),
        other => other.to_string(),
    }
}

/// A route's path with interaction and webhook tokens hidden, for errors and logs (a token
/// lets anyone answer as the bot for 15 minutes).
fn redacted(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.len() > 32 && !seg.chars().all(|c| c.is_ascii_digit()) {
                "[token]"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn build_http(token: &Secret, client: &reqwest::Client, proxy: Option<&str>) -> Http {
    let mut builder = HttpBuilder::new(token.expose()).client(client.clone());
    if let Some(p) = proxy {
        // serenity's limiter keys its buckets on discord.com URLs and ignores the proxy.
        builder = builder.proxy(p).ratelimiter_disabled(true);
    }
    builder.build()
}

fn message_id(m: &Value) -> Result<String, ChatError> {
    m["id"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| ChatError::Transient("message answer has no id".into()))
}

/// What a failed call means for the caller: wait, retry or give up.
fn classify_status(status: u16, retry_after: Option<f64>, message: &str, what: &str) -> ChatError {
    match status {
        429 => ChatError::RateLimited(Duration::from_secs_f64(
            retry_after
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(1.0)
                .min(3600.0),
        )),
        500..=599 | 408 => ChatError::Transient(format!("{what}: HTTP {status}: {message}")),
        _ => ChatError::Permanent(format!("{what}: HTTP {status}: {message}")),
    }
}

#[async_trait]
impl Delivery for DiscordApi {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    async fn post(
        &self,
        target: &Target,
        message: &Message,
        key: &str,
    ) -> Result<String, ChatError> {
        let (channel, reply_to) = self.channel_for(target).await?;
        let mut body = render::render(message);
        body["nonce"] = json!(nonce(key));
        body["enforce_nonce"] = json!(true);
        if let Some(id) = reply_to {
            // A reply to the flagged message; it still posts if that message is gone.
            body["message_reference"] =
                json!({ "message_id": id, "channel_id": channel, "fail_if_not_exists": false });
        }
        match &message.attachment {
            Some(file) => {
                self.create_message_with_file(
                    &channel,
                    &body,
                    &file.filename,
                    &file.bytes,
                    Some(key),
                )
                .await
            }
            None => self.create_message(&channel, &body, Some(key)).await,
        }
    }

    async fn edit(
        &self,
        channel: &ChannelRef,
        message_id: &str,
        message: &Message,
    ) -> Result<(), ChatError> {
        let body = render::render(message);
        self.edit_message(&channel.id, message_id, &body).await
    }
}

#[async_trait]
impl AccountLookup for DiscordApi {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    async fn kind(&self, id: &str) -> Result<AccountKind, LookupError> {
        if snowflake(id).is_err() {
            return Ok(AccountKind::Unknown);
        }
        self.account_kind(id)
            .await
            .map_err(|e| LookupError(e.to_string()))
    }

    async fn name(&self, id: &str) -> Result<Option<String>, LookupError> {
        if snowflake(id).is_err() {
            return Ok(None);
        }
        self.user_name(id)
            .await
            .map_err(|e| LookupError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_fit_discords_limit_and_follow_the_outbox_row() {
        assert_eq!(nonce("switchboard-outbox-42"), "sb42");
        assert_eq!(
            nonce("switchboard-outbox-9223372036854775807"),
            "sb9223372036854775807"
        );
        let odd = nonce("some-key-without-digits");
        assert_eq!(odd.len(), 25);
        assert_eq!(odd, nonce("some-key-without-digits"));
    }

    #[test]
    fn tokens_never_reach_error_text() {
        let p = "https://discord.com/api/v10/interactions/1234/aW50ZXJhY3Rpb246MTIzNDpzZWNyZXQtdG9rZW4/callback";
        assert_eq!(
            redacted(p),
            "https://discord.com/api/v10/interactions/1234/[token]/callback"
        );
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(
            classify_status(429, Some(1.5), "slow down", "x"),
            ChatError::RateLimited(Duration::from_millis(1500))
        );
        assert!(matches!(
            classify_status(502, None, "bad gateway", "x"),
            ChatError::Transient(_)
        ));
        assert!(matches!(
            classify_status(403, None, "Missing Permissions (50013)", "x"),
            ChatError::Permanent(_)
        ));
    }
}
