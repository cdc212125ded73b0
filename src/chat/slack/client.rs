//! Slack's Web API through slack-morphism: the [`Delivery`] for Slack.
//!
//! Owns the client set-up (HTTPS with the system's roots for Slack itself; plain HTTP only for
//! a loopback base URL such as the sandbox), the timeout on every call it makes (slack-morphism
//! has none), the mapping of Slack's answers to retry, wait or dead-letter, and the calls that
//! post and edit. Rendering is `blocks`; decisions are the
//! outbox worker's.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::blocks;
use crate::chat::pace::{PaceStats, Pacer, Rate, Wait, DEFAULT_MAX_HOLD};
use crate::chat::{ChatError, Delivery};
use crate::config::{Secret, SlackLimits};
use crate::core::cache::{Bounded, PEOPLE_CACHED, PEOPLE_FOR};
use crate::core::message::{Attachment, Message, Target};
use crate::core::types::{ChannelRef, Platform, RoleRef};
use crate::desk::{AccountKind, AccountLookup, LookupError};

/// How long one Web API call (or a response-URL post, or one step of a file upload) may take
/// before it counts as a transient failure; slack-morphism's hyper connector has no timeout
/// of its own, so without this a Slack that never answers holds the row forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The connector type every Switchboard Slack client uses.
pub type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;

/// Slack error codes that will not go away by retrying.
const PERMANENT: &[&str] = &[
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "message_not_found",
    "cant_update_message",
    "msg_too_long",
    "no_text",
    "invalid_blocks",
    "restricted_action",
    "user_not_found",
    "users_list_not_supplied",
];

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No usable TLS roots (HTTPS base URL on a machine without CA certificates).
    #[error("cannot set up HTTPS for {url}: {source}")]
    Tls {
        /// The base URL.
        url: String,
        /// What failed.
        source: std::io::Error,
    },
}

fn https_connector(api_url: &str) -> Result<HttpsConnector<HttpConnector>, ClientError> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    if api_url.starts_with("http://") {
        // Only a loopback fake is reached over plain HTTP; no certificate is ever checked.
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls {
            url: api_url.into(),
            source: std::io::Error::other(e),
        })?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        return Ok(builder
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build());
    }
    Ok(builder
        .with_native_roots()
        .map_err(|source| ClientError::Tls {
            url: api_url.into(),
            source,
        })?
        .https_only()
        .enable_http1()
        .enable_http2()
        .build())
}

/// Maps a slack-morphism error to what the worker should do.
pub fn classify(e: SlackClientError) -> ChatError {
    match e {
        SlackClientError::RateLimitError(r) => {
            ChatError::RateLimited(r.retry_after.unwrap_or(Duration::from_secs(1)))
        }
        SlackClientError::ApiError(a) if a.code == "ratelimited" => {
            ChatError::RateLimited(Duration::from_secs(1))
        }
        SlackClientError::ApiError(a) if PERMANENT.contains(&a.code.as_str()) => {
            ChatError::Permanent(a.code)
        }
        SlackClientError::ApiError(a) => ChatError::Transient(a.code),
        SlackClientError::HttpError(h)
            if h.status_code.is_server_error() || h.status_code.as_u16() == 408 =>
        {
            ChatError::Transient(format!("HTTP {}", h.status_code))
        }
        SlackClientError::HttpError(h) => ChatError::Permanent(format!("HTTP {}", h.status_code)),
        // Our own timeout ([`SlackApi::timed`]) carries only its message.
        SlackClientError::SystemError(e) if e.cause.is_none() => {
            ChatError::Transient(e.message.unwrap_or_else(|| "Slack system error".into()))
        }
        other => ChatError::Transient(other.to_string()),
    }
}

/// A per-process cache keyed by Slack id.
type Cache<V> = Arc<std::sync::Mutex<std::collections::HashMap<String, V>>>;

/// A Slack Web API client with its bot token.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackClient<Connector>>,
    token: SlackApiToken,
    /// Display names by user id, from `users.info`; names change rarely and the method is
    /// rate-limited, so each is asked once a day at most (bounded: [`PEOPLE_CACHED`]).
    names: Arc<Bounded<String, String>>,
    /// Person or bot by user id, from the same `users.info` answers (bounded likewise).
    kinds: Arc<Bounded<String, AccountKind>>,
    /// User group id → (members, when fetched), from `usergroups.users.list`.
    groups: Cache<(Vec<String>, std::time::Instant)>,
    /// Held while a user group is fetched, so flags completed at once ask Slack once.
    group_fetch: Arc<tokio::sync::Mutex<()>>,
    /// How permalinks are made: from the workspace URL `auth.test` gave, once one built that
    /// way matched Slack's own `chat.getPermalink`, saving a call per flag.
    permalinks: Arc<std::sync::Mutex<Permalinks>>,
    /// Messages this process received as `message` events, so a flag on one needs no
    /// `conversations.replies` call.
    recent: Arc<RecentMessages>,
    /// Paces every Web API call by Slack's published limits ([`SlackLimits`]).
    pacer: Arc<Pacer>,
    limits: SlackLimits,
    /// The Web API is on a loopback address (the sandbox): its response URLs are too.
    loopback_api: bool,
    /// How long one call may take ([`DEFAULT_TIMEOUT`]).
    timeout: Duration,
}

/// Slack's published tier (1 to 4) of each Web API method Switchboard calls; `None` for
/// `chat.postMessage`, which Slack limits per channel instead. Methods Slack calls "special"
/// (`auth.test`, `chat.getPermalink`) are generous; they are paced as Tier 4.
pub fn tier_of(method: &str) -> Option<usize> {
    Some(match method {
        "chat.postMessage" => return None,
        "apps.connections.open" => 1,
        "usergroups.users.list" => 2,
        "conversations.replies"
        | "conversations.history"
        | "conversations.info"
        | "conversations.open"
        | "chat.update"
        | "chat.delete"
        | "reactions.add" => 3,
        "users.info"
        | "auth.test"
        | "chat.getPermalink"
        | "views.open"
        | "views.update"
        | "chat.postEphemeral"
        | "files.getUploadURLExternal"
        | "files.completeUploadExternal" => 4,
        _ => 3,
    })
}

impl SlackLimits {
    /// The rate one process paces `method` to, across the workspace; `None` for
    /// `chat.postMessage` (see [`Self::post_rate`]).
    pub fn method_rate(&self, method: &str) -> Option<Rate> {
        let per_minute = self.tiers[tier_of(method)? - 1];
        Some(margin(
            Rate::per_minute(per_minute, (per_minute / 10).max(1)).shared_by(self.instances),
        ))
    }

    /// The rate one process posts to one channel at.
    pub fn post_rate(&self) -> Rate {
        margin(Rate::per_second(self.posts_per_second, self.post_burst).shared_by(self.instances))
    }
}

/// Slack counts calls as they arrive, and one sent on time can arrive after one sent later
/// (answers and tasks are not in lockstep): the bot keeps one call of each burst in hand.
fn margin(rate: Rate) -> Rate {
    Rate {
        burst: rate.burst.saturating_sub(1).max(1),
        ..rate
    }
}

/// The answer for a call the pacer did not make: a rate limit of our own, handled like Slack's.
fn paced_out(Wait(wait): Wait) -> SlackClientError {
    SlackClientError::RateLimitError(slack_morphism::errors::SlackRateLimitError {
        retry_after: Some(wait),
        code: Some("paced".into()),
        warnings: None,
        http_response_body: None,
    })
}

/// How many received messages are remembered at most.
pub const RECENT_MESSAGES: usize = 10_000;
/// How long a received message is remembered.
pub const RECENT_FOR: Duration = Duration::from_secs(600);

/// Messages received as events, bounded in number ([`RECENT_MESSAGES`], oldest forgotten
/// first) and in age ([`RECENT_FOR`]); edits update them and deletions forget them. A miss
/// (another instance received the message, or it is older) fetches it from Slack.
#[derive(Debug)]
pub struct RecentMessages {
    /// Each message with the `event_ts` of the event that last said what it is, so an older
    /// event handled after a newer one (envelopes are handled concurrently) changes nothing.
    by_key: Bounded<(String, String), (String, FetchedMessage)>,
}

impl Default for RecentMessages {
    fn default() -> Self {
        Self {
            by_key: Bounded::new(RECENT_MESSAGES, RECENT_FOR),
        }
    }
}

impl RecentMessages {
    /// Remembers `message` in `channel` as of the event at `version` (its `event_ts`),
    /// unless a copy from a later event is already remembered.
    pub fn remember(&self, channel: &str, message: FetchedMessage, version: &str) {
        let key = (channel.to_string(), message.ts.clone());
        // Slack timestamps compare as text (fixed-width seconds until the year 2286). The
        // check and the store are one step: two envelopes about one message are handled at
        // the same time, and the older must not overwrite the newer between the two.
        self.by_key
            .insert_unless(key, (version.to_string(), message), |(seen, _)| {
                seen.as_str() > version
            });
    }

    /// Forgets the message `ts` in `channel` (it was deleted).
    pub fn forget(&self, channel: &str, ts: &str) {
        self.by_key.remove(&(channel.to_string(), ts.to_string()));
    }

    /// The message `ts` in `channel`, if it was received within [`RECENT_FOR`].
    pub fn recall(&self, channel: &str, ts: &str) -> Option<FetchedMessage> {
        self.by_key
            .get(&(channel.to_string(), ts.to_string()))
            .map(|(_, m)| m)
    }

    /// Takes in a received event: a new message (top-level or a thread reply) is remembered,
    /// an edited one updated, a deleted one forgotten; anything else is ignored.
    pub fn observe(&self, payload: &Value) {
        let event = &payload["event"];
        if event["type"].as_str() != Some("message") {
            return;
        }
        let Some(channel) = event["channel"].as_str() else {
            return;
        };
        let message = match event["subtype"].as_str() {
            None => event,
            Some("message_changed") => &event["message"],
            Some("message_deleted") => {
                if let Some(ts) = event["deleted_ts"].as_str() {
                    self.forget(channel, ts);
                }
                return;
            }
            Some(_) => return,
        };
        let (Some(ts), Some(author)) = (
            message["ts"].as_str(),
            message["user"]
                .as_str()
                .or_else(|| message["bot_id"].as_str()),
        ) else {
            return;
        };
        let version = event["event_ts"]
            .as_str()
            .or_else(|| event["ts"].as_str())
            .unwrap_or(ts);
        self.remember(
            channel,
            FetchedMessage {
                ts: ts.to_string(),
                thread_ts: super::source::thread_parent(message).map(str::to_string),
                author: author.to_string(),
                text: message["text"].as_str().unwrap_or_default().to_string(),
            },
            version,
        );
    }
}

/// Where permalinks come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Permalinks {
    /// Ask `chat.getPermalink` (the workspace URL is not known yet).
    #[default]
    Ask,
    /// The workspace URL is known; the next permalink is asked and compared with the built one.
    Check(String),
    /// Build them from this workspace URL: one built link matched Slack's.
    Build(String),
}

/// A message's permalink as Slack forms it: the workspace URL, `archives/CHANNEL/p` and the ts
/// without its dot; a thread reply adds `?thread_ts=PARENT&cid=CHANNEL`.
pub fn build_permalink(workspace: &str, channel: &str, ts: &str, thread: Option<&str>) -> String {
    let base = workspace.trim_end_matches('/');
    let mut link = format!("{base}/archives/{channel}/p{}", ts.replace('.', ""));
    if let Some(parent) = thread.filter(|p| *p != ts) {
        link.push_str(&format!("?thread_ts={parent}&cid={channel}"));
    }
    link
}

/// How long a user group's member list is trusted before it is asked again.
const GROUP_TTL: Duration = Duration::from_secs(300);

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi")
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl SlackApi {
    /// A client for the Web API at `api_url` (e.g. `https://slack.com/api`) with `token`.
    pub fn new(api_url: &str, token: &Secret) -> Result<Self, ClientError> {
        let connector = SlackClientHyperConnector::with_connector(https_connector(api_url)?)
            .with_slack_api_url(api_url.trim_end_matches('/'));
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(SlackApiTokenValue(token.expose().to_string())),
            names: Arc::new(Bounded::new(PEOPLE_CACHED, PEOPLE_FOR)),
            kinds: Arc::new(Bounded::new(PEOPLE_CACHED, PEOPLE_FOR)),
            groups: Arc::default(),
            group_fetch: Arc::default(),
            permalinks: Arc::default(),
            recent: Arc::default(),
            pacer: Arc::default(),
            limits: SlackLimits::default(),
            loopback_api: crate::config::is_loopback_url(api_url),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client giving up on a call after `timeout` instead of [`DEFAULT_TIMEOUT`]
    /// (tests use a short one).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a call to Slack may take before the client gives up on it.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs one call to Slack (`what` names it in the error), giving up after the client's
    /// timeout with an error [`classify`] reads as transient, so the row is retried later.
    pub async fn timed<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, SlackClientError>>,
    ) -> Result<T, SlackClientError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(SlackClientError::SystemError(
                slack_morphism::errors::SlackClientSystemError {
                    message: Some(format!(
                        "{what}: Slack did not answer within {:?}",
                        self.timeout
                    )),
                    cause: None,
                },
            )),
        }
    }

    /// The same client pacing its calls by `limits` instead of the defaults, counting into
    /// `stats`.
    pub fn with_limits(mut self, limits: SlackLimits, stats: PaceStats) -> Self {
        self.limits = limits;
        self.pacer = Arc::new(Pacer::with_stats(DEFAULT_MAX_HOLD, stats));
        self
    }

    /// What the pacer did, for metrics.
    pub fn pace_stats(&self) -> &PaceStats {
        &self.pacer.stats
    }

    /// Makes one Web API call of `method` when Slack's limits allow it: in its method's bucket
    /// and, for a post, its channel's. A slot more than a moment away is not waited for: the
    /// call answers a rate limit with the wait, which the worker turns into a reschedule
    /// (`booking`, the outbox row's key, keeps the slot for when the row comes back). A 429
    /// blocks what it concerns (the channel for a post, else the method) for its Retry-After.
    async fn paced<T, F>(
        &self,
        method: &'static str,
        channel: Option<&str>,
        booking: Option<&str>,
        call: F,
    ) -> Result<T, SlackClientError>
    where
        F: std::future::Future<Output = Result<T, SlackClientError>>,
    {
        // A file shared into a channel is a message there too: one bucket per channel.
        let channel_bucket = channel.map(|c| format!("post {c}"));
        let mut buckets: Vec<(&str, Rate)> = Vec::with_capacity(2);
        if let Some(rate) = self.limits.method_rate(method) {
            buckets.push((method, rate));
        }
        if let Some(b) = &channel_bucket {
            buckets.push((b, self.limits.post_rate()));
        }
        self.pacer
            .acquire(&buckets, booking)
            .await
            .map_err(paced_out)?;
        // The timeout starts once the slot is ours: waiting for the pace is not Slack's delay.
        let r = self.timed(method, call).await;
        let refused = match &r {
            Err(SlackClientError::RateLimitError(e)) => {
                Some(e.retry_after.unwrap_or(Duration::from_secs(1)))
            }
            Err(SlackClientError::ApiError(a)) if a.code == "ratelimited" => {
                Some(Duration::from_secs(1))
            }
            _ => None,
        };
        if let Some(wait) = refused {
            let bucket = match &channel_bucket {
                Some(c) if method == "chat.postMessage" => c.as_str(),
                _ => method,
            };
            tracing::info!(
                method,
                ?wait,
                "Slack answered 429; pausing what it concerns"
            );
            self.pacer.block(bucket, wait);
        }
        r
    }

    /// The shared slack-morphism client (Socket Mode runs on it too).
    pub fn client(&self) -> Arc<SlackClient<Connector>> {
        self.client.clone()
    }

    fn session(&self) -> SlackClientSession<'_, Connector> {
        self.client.open_session(&self.token)
    }

    /// Checks the token (`auth.test`), returning the bot's user id; remembers the workspace
    /// URL for permalinks.
    pub async fn whoami(&self) -> Result<String, ChatError> {
        let r = self
            .paced("auth.test", None, None, self.session().auth_test())
            .await
            .map_err(classify)?;
        let url = r.url.0.to_string();
        if url.starts_with("https://") || url.starts_with("http://") {
            let mut p = self.permalinks.lock().unwrap_or_else(|e| e.into_inner());
            if *p == Permalinks::Ask {
                *p = Permalinks::Check(url);
            }
        }
        Ok(r.user_id.to_string())
    }

    fn content(message: &Message) -> Result<SlackMessageContent, ChatError> {
        let (text, blocks) = blocks::render(message);
        let blocks: Vec<SlackBlock> = serde_json::from_value(blocks).map_err(|e| {
            ChatError::Permanent(format!("message does not render as Block Kit: {e}"))
        })?;
        Ok(SlackMessageContent::new()
            .with_text(text)
            .with_blocks(blocks))
    }

    /// Where a target's message is posted. A direct message is posted with the user's id as
    /// the channel, which Slack documents as posting to the app's DM with that user (its
    /// Messages tab); that saves a rate-limited `conversations.open` per message.
    fn channel_for(target: &Target) -> (String, Option<String>) {
        match target {
            Target::Channel { channel, thread } => (channel.id.clone(), thread.clone()),
            Target::User { user } => (user.id.clone(), None),
        }
    }
}

#[async_trait]
impl Delivery for SlackApi {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    async fn post(
        &self,
        target: &Target,
        message: &Message,
        key: &str,
    ) -> Result<String, ChatError> {
        // Slack has no idempotency key for chat.postMessage; the outbox records the ts instead.
        // The key books the row's place in the channel's pace.
        let (channel, thread) = Self::channel_for(target);
        if let Some(file) = &message.attachment {
            return self.upload(&channel, thread, file, key).await;
        }
        let mut req = SlackApiChatPostMessageRequest::new(
            SlackChannelId(channel.clone()),
            Self::content(message)?,
        )
        .with_unfurl_links(false)
        .with_unfurl_media(false);
        if let Some(ts) = thread {
            req = req.with_thread_ts(SlackTs(ts));
        }
        let r = self
            .paced(
                "chat.postMessage",
                Some(&channel),
                Some(key),
                self.session().chat_post_message(&req),
            )
            .await
            .map_err(classify)?;
        Ok(r.ts.to_string())
    }

    async fn edit(
        &self,
        channel: &ChannelRef,
        message_id: &str,
        message: &Message,
    ) -> Result<(), ChatError> {
        let req = SlackApiChatUpdateRequest::new(
            SlackChannelId(channel.id.clone()),
            Self::content(message)?,
            SlackTs(message_id.to_string()),
        );
        self.paced("chat.update", None, None, self.session().chat_update(&req))
            .await
            .map_err(classify)?;
        Ok(())
    }
}

impl SlackApi {
    /// Shares a file in `channel` through Slack's external upload flow: ask for an upload URL
    /// (`files.getUploadURLExternal`), send the bytes there, then complete the upload into the
    /// channel (`files.completeUploadExternal`). Returns the file id.
    async fn upload(
        &self,
        channel: &str,
        thread: Option<String>,
        file: &Attachment,
        key: &str,
    ) -> Result<String, ChatError> {
        let session = self.session();
        let ask =
            SlackApiFilesGetUploadUrlExternalRequest::new(file.filename.clone(), file.bytes.len())
                .with_alt_txt(file.title.clone());
        let url = self
            .paced(
                "files.getUploadURLExternal",
                None,
                None,
                session.get_upload_url_external(&ask),
            )
            .await
            .map_err(classify)?;
        // The bytes go to the upload URL, not a Web API method: no pace, but the same timeout.
        self.timed(
            "file upload",
            session.files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
                url.upload_url,
                file.bytes.clone(),
                file.content_type.clone(),
            )),
        )
        .await
        .map_err(classify)?;
        let mut done =
            SlackApiFilesCompleteUploadExternalRequest::new(vec![SlackApiFilesComplete::new(
                url.file_id.clone(),
            )
            .with_title(file.title.clone())])
            .with_channel_id(SlackChannelId(channel.to_string()));
        if let Some(ts) = thread {
            done = done.with_thread_ts(SlackTs(ts));
        }
        self.paced(
            "files.completeUploadExternal",
            Some(channel),
            Some(key),
            session.files_complete_upload_external(&done),
        )
        .await
        .map_err(classify)?;
        Ok(url.file_id.to_string())
    }
}

/// A message read back from Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    /// Its ts.
    pub ts: String,
    /// The thread it belongs to, when it is a reply.
    pub thread_ts: Option<String>,
    /// Author: a user id, or the bot id of an app's message.
    pub author: String,
    /// Text.
    pub text: String,
}

impl SlackApi {
    /// The messages this process received as events (shared by every clone).
    pub fn recent(&self) -> &RecentMessages {
        &self.recent
    }

    /// The message `ts` in `channel`, top-level or a thread reply: as received, when this
    /// process received it recently; else asked of Slack (`conversations.replies` accepts any
    /// message of a thread); `None` when it no longer exists.
    pub async fn message(
        &self,
        channel: &str,
        ts: &str,
    ) -> Result<Option<FetchedMessage>, ChatError> {
        if let Some(m) = self.recent.recall(channel, ts) {
            return Ok(Some(m));
        }
        let req = SlackApiConversationsRepliesRequest::new(
            SlackChannelId(channel.to_string()),
            SlackTs(ts.to_string()),
        )
        .with_limit(200);
        let r = match self
            .paced(
                "conversations.replies",
                None,
                // The message is the booking: an event rescheduled for this fetch keeps its slot.
                Some(&format!("replies {channel} {ts}")),
                self.session().conversations_replies(&req),
            )
            .await
        {
            Ok(r) => r,
            Err(SlackClientError::ApiError(a))
                if a.code == "thread_not_found" || a.code == "message_not_found" =>
            {
                return Ok(None)
            }
            Err(e) => return Err(classify(e)),
        };
        Ok(r.messages
            .into_iter()
            .find(|m| m.origin.ts.0 == ts)
            .map(|m| FetchedMessage {
                ts: m.origin.ts.0.clone(),
                thread_ts: m.origin.thread_ts.map(|t| t.0).filter(|t| t != ts),
                author: m
                    .sender
                    .user
                    .map(|u| u.0)
                    .or(m.sender.bot_id.map(|b| b.0))
                    .unwrap_or_else(|| "USLACKBOT".to_string()),
                text: m.content.text.unwrap_or_default(),
            }))
    }

    /// A link to the message `ts` in `channel` (a reply in the thread of `thread`). Built from
    /// the workspace URL once a link built that way has matched Slack's own answer; otherwise
    /// (before `auth.test`, or where links differ, as on Enterprise Grid) `chat.getPermalink`.
    pub async fn permalink_of(
        &self,
        channel: &str,
        ts: &str,
        thread: Option<&str>,
    ) -> Result<String, ChatError> {
        let how = self
            .permalinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match how {
            Permalinks::Build(url) => Ok(build_permalink(&url, channel, ts, thread)),
            Permalinks::Ask => self.permalink(channel, ts).await,
            Permalinks::Check(url) => {
                let asked = self.permalink(channel, ts).await?;
                let built = build_permalink(&url, channel, ts, thread);
                let mut p = self.permalinks.lock().unwrap_or_else(|e| e.into_inner());
                if built == asked {
                    *p = Permalinks::Build(url);
                } else {
                    tracing::info!(
                        asked = %asked.escape_debug(),
                        built = %built.escape_debug(),
                        "Slack's permalinks differ from the workspace URL's; asking chat.getPermalink for each"
                    );
                    *p = Permalinks::Ask;
                }
                Ok(asked)
            }
        }
    }

    /// A link to the message `ts` in `channel`, asked of Slack (`chat.getPermalink`).
    pub async fn permalink(&self, channel: &str, ts: &str) -> Result<String, ChatError> {
        let req = SlackApiChatGetPermalinkRequest::new(
            SlackChannelId(channel.to_string()),
            SlackTs(ts.to_string()),
        );
        let r = self
            .paced(
                "chat.getPermalink",
                None,
                None,
                self.session().chat_get_permalink(&req),
            )
            .await
            .map_err(classify)?;
        Ok(r.permalink.to_string())
    }

    /// The display name of user `id` (`users.info`, cached); `None` for an unknown user or
    /// an app's bot id.
    pub async fn user_name(&self, id: &str) -> Result<Option<String>, ChatError> {
        if let Some(name) = self.names.get(id) {
            return Ok(Some(name));
        }
        if !id.starts_with(['U', 'W']) {
            return Ok(None);
        }
        Ok(self.user_info(id).await?.and_then(|(name, _)| name))
    }

    /// Whether `id` is a person, a bot (an app's bot user, Slackbot, a `B…` bot id) or
    /// unknown to Slack (`users.info`, cached).
    pub async fn account_kind(&self, id: &str) -> Result<AccountKind, ChatError> {
        if id == "USLACKBOT" || id.starts_with('B') {
            // Slack reports Slackbot with `is_bot: false`; `B…` ids are bots, not users.
            return Ok(AccountKind::Bot);
        }
        if let Some(kind) = self.kinds.get(id) {
            return Ok(kind);
        }
        if !id.starts_with(['U', 'W']) {
            return Ok(AccountKind::Unknown);
        }
        Ok(self
            .user_info(id)
            .await?
            .map_or(AccountKind::Unknown, |(_, kind)| kind))
    }

    /// One `users.info` call, caching the name and kind it tells; `None` for an unknown user.
    async fn user_info(
        &self,
        id: &str,
    ) -> Result<Option<(Option<String>, AccountKind)>, ChatError> {
        let req = SlackApiUsersInfoRequest::new(SlackUserId(id.to_string()));
        let user = match self
            .paced("users.info", None, None, self.session().users_info(&req))
            .await
        {
            Ok(r) => r.user,
            Err(SlackClientError::ApiError(a)) if a.code == "user_not_found" => return Ok(None),
            Err(e) => return Err(classify(e)),
        };
        let name = user
            .profile
            .as_ref()
            .and_then(|p| {
                p.display_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .or(p.real_name.clone())
            })
            .or(user.real_name.clone())
            .or(user.name.clone())
            .filter(|n| !n.is_empty());
        let kind = if user.flags.is_bot == Some(true) || user.flags.is_app_user == Some(true) {
            AccountKind::Bot
        } else {
            AccountKind::Person
        };
        if let Some(n) = &name {
            self.names.insert(id.to_string(), n.clone());
        }
        self.kinds.insert(id.to_string(), kind);
        Ok(Some((name, kind)))
    }

    /// The members of user group `group` (`usergroups.users.list`, cached for five minutes);
    /// empty for a group Slack does not know.
    pub async fn group_members(&self, group: &str) -> Result<Vec<String>, ChatError> {
        let cached = || {
            self.groups
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(group)
                .filter(|(_, at)| at.elapsed() < GROUP_TTL)
                .map(|(members, _)| members.clone())
        };
        if let Some(members) = cached() {
            return Ok(members);
        }
        // One fetch at a time: whoever waited finds the list the first one stored.
        let _fetching = self.group_fetch.lock().await;
        if let Some(members) = cached() {
            return Ok(members);
        }
        let req = SlackApiUserGroupsUsersListRequest::new(SlackUserGroupId(group.to_string()));
        let members: Vec<String> = match self
            .paced(
                "usergroups.users.list",
                None,
                None,
                self.session().usergroups_users_list(&req),
            )
            .await
        {
            Ok(r) => r.users.into_iter().map(|u| u.0).collect(),
            Err(SlackClientError::ApiError(a)) if a.code == "no_such_subteam" => vec![],
            Err(e) => return Err(classify(e)),
        };
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                group.to_string(),
                (members.clone(), std::time::Instant::now()),
            );
        Ok(members)
    }

    /// The configured user groups (of `groups`) that `user` belongs to, as roles.
    pub async fn roles_of(&self, user: &str, groups: &[String]) -> Result<Vec<RoleRef>, ChatError> {
        let mut roles = Vec::new();
        for g in groups {
            if self.group_members(g).await?.iter().any(|m| m == user) {
                roles.push(RoleRef::new(Platform::Slack, g.clone()));
            }
        }
        Ok(roles)
    }

    /// Opens a modal (`views.open`) for the interaction that gave `trigger_id`; Slack accepts
    /// a trigger id for three seconds after the interaction.
    pub async fn open_view(&self, trigger_id: &str, view: Value) -> Result<(), ChatError> {
        let view: SlackView = serde_json::from_value(view)
            .map_err(|e| ChatError::Permanent(format!("the modal is not a valid view: {e}")))?;
        let req = SlackApiViewsOpenRequest::new(SlackTriggerId(trigger_id.to_string()), view);
        self.paced("views.open", None, None, self.session().views_open(&req))
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Answers an interaction through its `response_url`: by default a message only the
    /// person who acted sees; with `replace_original`, in place of the message they acted on.
    pub async fn respond(
        &self,
        response_url: &str,
        message: &Message,
        replace_original: bool,
    ) -> Result<(), ChatError> {
        let url = url::Url::parse(response_url)
            .map_err(|e| ChatError::Permanent(format!("response_url is not a URL: {e}")))?;
        if !self.response_url_allowed(&url) {
            // A response_url comes in the request body; following one elsewhere would post
            // (and leak what we answer) wherever a forged or replayed payload points.
            return Err(ChatError::Permanent(format!(
                "response_url host `{}` is not Slack's; not followed",
                url.host_str().unwrap_or_default().escape_debug()
            )));
        }
        let req = SlackApiPostWebhookMessageRequest::new(Self::content(message)?)
            .with_replace_original(replace_original);
        self.timed(
            "response_url post",
            self.client.respond_to_event(&SlackResponseUrl(url), &req),
        )
        .await
        .map_err(classify)?;
        Ok(())
    }

    /// Whether `url` is one of Slack's response URLs: HTTPS on `hooks.slack.com` (or
    /// `hooks.slack-gov.com` for GovSlack), or any loopback address when the Web API itself is
    /// on loopback (the sandbox).
    pub fn response_url_allowed(&self, url: &url::Url) -> bool {
        match url.host() {
            Some(url::Host::Domain(d)) if url.scheme() == "https" => {
                d.eq_ignore_ascii_case("hooks.slack.com")
                    || d.eq_ignore_ascii_case("hooks.slack-gov.com")
            }
            _ => self.loopback_api && crate::config::is_loopback_url(url.as_str()),
        }
    }

    /// Whether the bot can post in `channel` (`conversations.info` reports membership).
    pub async fn can_post(&self, channel: &str) -> Result<bool, ChatError> {
        let req = SlackApiConversationsInfoRequest::new(SlackChannelId(channel.to_string()));
        let r = self
            .paced(
                "conversations.info",
                None,
                None,
                self.session().conversations_info(&req),
            )
            .await
            .map_err(classify)?;
        Ok(r.channel.flags.is_member.unwrap_or(false))
    }
}

#[async_trait]
impl AccountLookup for SlackApi {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    async fn kind(&self, id: &str) -> Result<AccountKind, LookupError> {
        self.account_kind(id)
            .await
            .map_err(|e| LookupError(e.to_string()))
    }

    async fn name(&self, id: &str) -> Result<Option<String>, LookupError> {
        self.user_name(id)
            .await
            .map_err(|e| LookupError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_handled_before_its_message_keeps_the_edited_text() {
        let recent = RecentMessages::default();
        let original = serde_json::json!({"event": {"type": "message", "channel": "C1",
            "user": "U1", "text": "refund please", "ts": "1772442000.000100",
            "event_ts": "1772442000.000100"}});
        let edit = serde_json::json!({"event": {"type": "message", "subtype": "message_changed",
            "channel": "C1", "message": {"user": "U1", "text": "refund please, order 42",
            "ts": "1772442000.000100"}, "ts": "1772442101.000100",
            "event_ts": "1772442101.000100"}});
        recent.observe(&edit);
        recent.observe(&original);
        assert_eq!(
            recent.recall("C1", "1772442000.000100").unwrap().text,
            "refund please, order 42"
        );
    }

    #[test]
    fn only_slacks_response_urls_are_followed() {
        let real = SlackApi::new("https://slack.com/api", &Secret::new("xoxb-t")).unwrap();
        let ok = |api: &SlackApi, u: &str| api.response_url_allowed(&url::Url::parse(u).unwrap());
        assert!(ok(&real, "https://hooks.slack.com/commands/T1/2/abc"));
        assert!(ok(&real, "https://hooks.slack-gov.com/actions/T1/2/abc"));
        assert!(
            !ok(&real, "http://hooks.slack.com/commands/T1/2/abc"),
            "not over HTTP"
        );
        assert!(!ok(&real, "https://evil.example/hooks.slack.com"));
        assert!(!ok(&real, "https://hooks.slack.com.evil.example/x"));
        assert!(
            !ok(&real, "http://127.0.0.1:9/x"),
            "loopback only for a loopback API"
        );
        assert!(!ok(&real, "http://169.254.169.254/latest/meta-data"));
        let sandbox = SlackApi::new("http://127.0.0.1:4000/api", &Secret::new("xoxb-t")).unwrap();
        assert!(ok(&sandbox, "http://127.0.0.1:4000/respond/1"));
        assert!(!ok(&sandbox, "http://10.0.0.8/respond/1"));
    }
}
