//! Settings: the TOML file, then environment overrides, then secrets from the environment.
//!
//! Owns reading and checking the configuration, reporting every problem with its key path
//! (never stopping at the first, never panicking), and keeping secrets out of Debug and logs.
//! Must not open connections or touch the database; it only describes them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use regex::Regex;
use toml::{Table, Value};

use crate::core::cronexpr::CronSchedule;
use crate::core::directory::{Department, Directory, FlagPolicy, MemberRef, Person};
use crate::core::routing::{normalize_emoji, Router, Rule};
use crate::core::sla::{self, BusinessHours, Calendar, SlaPolicy, Targets};
use crate::core::types::{ChannelRef, PersonId, Platform, Priority, RoleRef};

/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://switchboard.db";
/// The default address of the health, metrics and webhook server.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Slack's Web API base URL.
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";
/// Discord's base URL (serenity appends `/api/v10`).
pub const DEFAULT_DISCORD_API_URL: &str = "https://discord.com";
/// The config file read when none is named.
pub const DEFAULT_CONFIG_FILE: &str = "switchboard.toml";

/// Environment variables that override file settings.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("SWITCHBOARD_DATABASE_URL", "database.url"),
    ("SWITCHBOARD_LISTEN", "server.listen"),
    ("SWITCHBOARD_METRICS_LISTEN", "server.metrics_listen"),
    ("SWITCHBOARD_SLACK_API_URL", "slack.api_url"),
    ("SWITCHBOARD_DISCORD_API_URL", "discord.api_url"),
];

/// Environment variables holding secrets; never read from the file.
pub const SECRET_VARS: &[&str] = &[
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "DISCORD_BOT_TOKEN",
    "DISCORD_PUBLIC_KEY",
    "SWITCHBOARD_API_TOKEN",
    "SWITCHBOARD_METRICS_TOKEN",
];

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `departments[1].channels[0]`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Every problem found, each with its key.
    #[error("{} problem(s) in {}:\n{}", .problems.len(), .source_name, .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// File name or "environment".
        source_name: String,
        /// The problems.
        problems: Vec<Problem>,
    },
}

/// A secret value: shown as `[redacted]` in Debug and Display.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; call only where it is sent to its platform.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Tokens and keys, read only from the environment.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// `SLACK_BOT_TOKEN` (xoxb-…).
    pub slack_bot_token: Option<Secret>,
    /// `SLACK_APP_TOKEN` (xapp-…), for Socket Mode.
    pub slack_app_token: Option<Secret>,
    /// `SLACK_SIGNING_SECRET`, for HTTP mode.
    pub slack_signing_secret: Option<Secret>,
    /// `DISCORD_BOT_TOKEN`.
    pub discord_bot_token: Option<Secret>,
    /// `DISCORD_PUBLIC_KEY`, for the HTTP interactions endpoint.
    pub discord_public_key: Option<Secret>,
    /// `SWITCHBOARD_API_TOKEN`, for the metrics push API.
    pub api_token: Option<Secret>,
    /// `SWITCHBOARD_METRICS_TOKEN`: when set, `/metrics` asks for it as a bearer token.
    pub metrics_token: Option<Secret>,
}

impl Secrets {
    /// Reads every secret through `get` (the process environment in production).
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Self {
        let read = |k: &str| get(k).filter(|v| !v.trim().is_empty()).map(Secret::new);
        Self {
            slack_bot_token: read("SLACK_BOT_TOKEN"),
            slack_app_token: read("SLACK_APP_TOKEN"),
            slack_signing_secret: read("SLACK_SIGNING_SECRET"),
            discord_bot_token: read("DISCORD_BOT_TOKEN"),
            discord_public_key: read("DISCORD_PUBLIC_KEY"),
            api_token: read("SWITCHBOARD_API_TOKEN"),
            metrics_token: read("SWITCHBOARD_METRICS_TOKEN"),
        }
    }
}

/// How far back a digest looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// From the same local time the day before.
    Day,
    /// From the same local time seven days before.
    Week,
    /// From the same local time and day one calendar month before (the month's last day when
    /// it has no such day).
    Month,
}

impl Period {
    /// When the period ending at `end` starts: the same wall-clock time in `tz` a day, seven
    /// days or a calendar month earlier, so consecutive periods tile exactly across clock
    /// changes. A local time that does not exist or happens twice is resolved as schedule
    /// fires are ([`crate::core::cronexpr::instant`]).
    pub fn start_before(
        self,
        end: chrono::DateTime<chrono::Utc>,
        tz: Tz,
    ) -> chrono::DateTime<chrono::Utc> {
        let local = end.with_timezone(&tz).naive_local();
        let start = match self {
            Period::Day => local.checked_sub_days(chrono::Days::new(1)),
            Period::Week => local.checked_sub_days(chrono::Days::new(7)),
            Period::Month => local.checked_sub_months(chrono::Months::new(1)),
        };
        start.map_or(end, |s| crate::core::cronexpr::instant(s, tz))
    }
}

/// A digest schedule.
#[derive(Debug, Clone)]
pub struct DigestSchedule {
    /// Unique name (`/digest now weekly`).
    pub name: String,
    /// The expression as written.
    pub cron: String,
    /// The translated schedule.
    pub schedule: CronSchedule,
    /// Time zone the expression is read in.
    pub timezone: Tz,
    /// Channels to post to.
    pub targets: Vec<ChannelRef>,
    /// Departments covered; empty means all.
    pub departments: Vec<String>,
    /// How far back it looks.
    pub period: Period,
    /// How late a missed fire may still be posted (after downtime); older fires are skipped.
    pub grace: chrono::Duration,
}

/// Slack connection settings (tokens live in [`Secrets`]).
#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// Web API base URL.
    pub api_url: String,
    /// `allow_insecure_api_url`: plain `http://` to a host other than this machine is
    /// accepted (the bot token then crosses the network in clear).
    pub allow_insecure_api_url: bool,
    /// How calls are paced (`[slack.limits]`).
    pub limits: SlackLimits,
}

/// Slack's rate limits as Switchboard paces its calls (`[slack.limits]`). Slack publishes them
/// as tiers of calls per minute per method per workspace, and about one message per second per
/// channel for `chat.postMessage`; it answers 429 with only `Retry-After`, so the bot paces
/// from this model instead of from headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlackLimits {
    /// Calls per minute of each tier's methods (Tier 1 to Tier 4); bursts of a tenth of that.
    pub tiers: [u32; 4],
    /// `chat.postMessage` messages per second per channel.
    pub posts_per_second: u32,
    /// Messages one channel takes at once before the per-second pace applies.
    pub post_burst: u32,
    /// Switchboard processes sharing the bot token; each paces to its share of every limit.
    pub instances: u32,
}

impl Default for SlackLimits {
    fn default() -> Self {
        Self {
            tiers: [1, 20, 50, 100],
            posts_per_second: 1,
            post_burst: 3,
            instances: 1,
        }
    }
}

/// Discord connection settings (tokens live in [`Secrets`]).
#[derive(Debug, Clone)]
pub struct DiscordSettings {
    /// Base URL.
    pub api_url: String,
    /// `allow_insecure_api_url`: plain `http://` to a host other than this machine is
    /// accepted (a proxy on a private network; the bot token then crosses it in clear).
    pub allow_insecure_api_url: bool,
    /// Guilds to register commands in; empty means global commands.
    pub guild_ids: Vec<String>,
    /// The shards this instance runs, when several instances split one bot.
    pub shards: Option<ShardRange>,
    /// How REST calls are paced (`[discord.limits]`).
    pub limits: DiscordLimits,
}

/// Discord's limits beyond the per-route buckets, which Discord announces in headers
/// (`[discord.limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscordLimits {
    /// Requests per second across all routes (Discord's global limit); the bot paces to four
    /// fifths of it with bursts of a tenth, so a second never holds more than nine tenths.
    pub global_per_second: u32,
    /// 401, 403 and 429 answers in ten minutes after which the bot stops calling until the
    /// window has room again (Discord bans an IP for a while at 10,000).
    pub invalid_per_10_minutes: u32,
    /// Switchboard processes sharing the bot token; each paces to its share.
    pub instances: u32,
}

impl Default for DiscordLimits {
    fn default() -> Self {
        Self {
            global_per_second: 50,
            invalid_per_10_minutes: 5_000,
            instances: 1,
        }
    }
}

/// Shards `first` through `last` (inclusive, as serenity counts) of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRange {
    /// First shard this instance runs.
    pub first: u32,
    /// Last shard this instance runs (inclusive).
    pub last: u32,
    /// Shards of the whole bot.
    pub total: u32,
}

impl std::str::FromStr for ShardRange {
    type Err = String;

    /// Reads `first-last/total`, e.g. `0-1/4`, or `n/total` for one shard.
    fn from_str(v: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{v}` is not a shard range; write first-last/total, e.g. \"0-1/4\" (inclusive, counting from 0)")
        };
        let (range, total) = v.split_once('/').ok_or_else(bad)?;
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let num = |x: &str| x.trim().parse::<u32>().map_err(|_| bad());
        let r = ShardRange {
            first: num(first)?,
            last: num(last)?,
            total: num(total)?,
        };
        if r.total == 0 || r.first > r.last || r.last >= r.total {
            return Err(format!(
                "`{v}`: shards count from 0, so first ≤ last < total (e.g. \"0-1/4\" runs shards 0 and 1 of 4)"
            ));
        }
        Ok(r)
    }
}

/// A database URL. Debug and Display hide its password (`postgres://bob:[redacted]@db/x`, and
/// a `password=` query parameter), so it can be logged; `&*url` is the real one.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for DatabaseUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// `url` with the password of its user part and any `password=` query value replaced by
/// `[redacted]`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(start) = url.find("://").map(|i| i + 3) {
        let authority_end = url[start..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |i| start + i);
        if let Some(at) = url[start..authority_end].rfind('@').map(|i| start + i) {
            if let Some(colon) = url[start..at].find(':').map(|i| start + i) {
                out = format!("{}[redacted]{}", &url[..=colon], &url[at..]);
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// The whole, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database URL: `sqlite://…` or `postgres://…` (shown with its password hidden).
    pub database_url: DatabaseUrl,
    /// Address of the HTTP server.
    pub listen: SocketAddr,
    /// How long an adapter part may fail before `/readyz` calls it down (`server.adapter_grace`).
    pub adapter_grace: chrono::Duration,
    /// Where `/metrics` is served instead of `listen` (`server.metrics_listen`), so a server
    /// facing people need not show it; `None`: on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// People, departments, admins, flag policy.
    pub directory: Directory,
    /// Routing rules and fallback.
    pub router: Router,
    /// Emojis that flag a message (normalised: no colons).
    pub flag_emojis: Vec<String>,
    /// How many messages one person may flag in a window (`None`: no limit).
    pub flag_limit: Option<FlagLimit>,
    /// Digest schedules.
    pub digests: Vec<DigestSchedule>,
    /// First-response and resolution targets.
    pub sla: SlaPolicy,
    /// Slack settings.
    pub slack: SlackSettings,
    /// Discord settings.
    pub discord: DiscordSettings,
    /// How much work the inbox and outbox workers do at once.
    pub workers: WorkerSettings,
    /// What is pruned, after how long (`[retention]`).
    pub retention: RetentionSettings,
    /// API tokens (`[[api.tokens]]`, plus `SWITCHBOARD_API_TOKEN` as a metrics-only token).
    pub api_tokens: Vec<ApiToken>,
    /// How tickets from monitoring follow their alerts (`[automation]`).
    pub automation: AutomationSettings,
    /// Reminders, auto-close and nudges (`[followups]`, per department `followups`).
    pub followups: FollowupSettings,
    /// The knowledge base's folder of Markdown articles (`[knowledge] dir`; none: no
    /// knowledge base). A relative path is read from the working directory.
    pub knowledge_dir: Option<std::path::PathBuf>,
    /// The web view under `/ui/` (`[web]`; `None` unless `enabled = true`).
    pub web: Option<WebSettings>,
    /// Secrets from the environment.
    pub secrets: Secrets,
}

/// The web view (`[web]`): where people reach it, and how long a sign-in lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    /// The address people open, without a trailing `/` (`public_url`), e.g.
    /// `https://desk.example.com`: links in chat point under it, and its scheme decides the
    /// session cookie's `Secure` flag.
    pub public_url: String,
    /// Whether the session cookie is marked `Secure`: always, unless `public_url` is plain
    /// HTTP on this machine (a browser will not send a `Secure` cookie there).
    pub secure_cookie: bool,
    /// How long a session lasts after sign-in (`session_lifetime`, default 12 hours).
    pub session_lifetime: chrono::Duration,
}

impl WebSettings {
    /// How long a sign-in link from chat may be used: ten minutes, once.
    pub const LINK_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

    /// The address of a page under `/ui/`, e.g. `page("tickets/42")`.
    pub fn page(&self, path: &str) -> String {
        format!("{}/ui/{path}", self.public_url)
    }
}

/// An endpoint group of the HTTP API a token may be allowed to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiEndpoint {
    /// `POST /api/tickets`, `GET /api/tickets/T-n`, `POST /api/tickets/T-n/events`.
    Tickets,
    /// `POST /api/metrics`.
    Metrics,
    /// `POST /api/alertmanager`.
    Alertmanager,
    /// `POST /api/grafana`.
    Grafana,
}

impl ApiEndpoint {
    /// Every endpoint group, in the order the README lists them.
    pub const ALL: [ApiEndpoint; 4] = [
        ApiEndpoint::Tickets,
        ApiEndpoint::Metrics,
        ApiEndpoint::Alertmanager,
        ApiEndpoint::Grafana,
    ];

    /// The name used in `endpoints = [...]`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiEndpoint::Tickets => "tickets",
            ApiEndpoint::Metrics => "metrics",
            ApiEndpoint::Alertmanager => "alertmanager",
            ApiEndpoint::Grafana => "grafana",
        }
    }
}

/// When waiting and idle tickets are followed up: one department's settings (see
/// [`FollowupSettings`]). Durations are SLA targets (`2d`, `4h`): on the department's business
/// hours when it has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Followups {
    /// Waiting on the customer this long → one reminder in the ticket's thread, mentioning
    /// the reporter (`remind_after`; none: never).
    pub remind_after: Option<sla::Target>,
    /// Waiting on the customer this long, counted from the start of the wait → resolved
    /// "after no reply" (`close_after`; none: never).
    pub close_after: Option<sla::Target>,
    /// Open or in progress with no staff action this long → a nudge to the assignee, or to the
    /// department's channels when unassigned, once per idle spell (`nudge_after`; none:
    /// never).
    pub nudge_after: Option<sla::Target>,
    /// Whether a ticket resolved after no reply asks its reporter for a rating (`ask_csat`,
    /// default false).
    pub ask_csat: bool,
}

/// `[followups]` and each department's `followups = { … }` over it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FollowupSettings {
    /// `[followups]`.
    pub default: Followups,
    /// Departments that override some of it, with the result.
    pub departments: BTreeMap<String, Followups>,
}

impl FollowupSettings {
    /// The follow-ups of `department`.
    pub fn of(&self, department: &str) -> &Followups {
        self.departments.get(department).unwrap_or(&self.default)
    }

    /// Whether any department follows anything up.
    pub fn any(&self) -> bool {
        std::iter::once(&self.default)
            .chain(self.departments.values())
            .any(|f| f.remind_after.is_some() || f.close_after.is_some() || f.nudge_after.is_some())
    }
}

/// What a `followups` table sets; unset keys keep the defaults under it.
#[derive(Debug, Clone, Copy, Default)]
struct FollowupsOver {
    remind_after: Option<Option<sla::Target>>,
    close_after: Option<Option<sla::Target>>,
    nudge_after: Option<Option<sla::Target>>,
    ask_csat: Option<bool>,
}

impl FollowupsOver {
    fn over(&self, base: &Followups) -> Followups {
        Followups {
            remind_after: self.remind_after.unwrap_or(base.remind_after),
            close_after: self.close_after.unwrap_or(base.close_after),
            nudge_after: self.nudge_after.unwrap_or(base.nudge_after),
            ask_csat: self.ask_csat.unwrap_or(base.ask_csat),
        }
    }
}

/// How tickets opened by monitoring (Alertmanager, Grafana) follow their alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomationSettings {
    /// Resolve the ticket when its alert resolves (`resolve_when_source_resolves`, default
    /// false: the resolution is only recorded on the ticket).
    pub resolve_when_source_resolves: bool,
    /// An alert firing again within this long after it resolved reopens its ticket; later, it
    /// opens a new one (`reopen_within`, default 24 hours).
    pub reopen_within: chrono::Duration,
    /// More new alerts than this in one notification group roll up into one ticket listing
    /// them (`max_tickets_per_group`, default 20).
    pub max_tickets_per_group: usize,
    /// The priority of each `severity` label value (`[automation.severity]`, default
    /// critical → urgent, error → high, warning → high, info → low; others normal).
    pub severity: Vec<(String, Priority)>,
}

impl Default for AutomationSettings {
    fn default() -> Self {
        Self {
            resolve_when_source_resolves: false,
            reopen_within: chrono::Duration::hours(24),
            max_tickets_per_group: 20,
            severity: vec![
                ("critical".into(), Priority::Urgent),
                ("error".into(), Priority::High),
                ("warning".into(), Priority::High),
                ("info".into(), Priority::Low),
            ],
        }
    }
}

/// One API token (`[[api.tokens]]`): who is calling, with which secret, for what.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// The caller's name: shown as the reporter of the tickets it opens (`name`).
    pub name: String,
    /// The bearer token, read from the environment variable named by `secret_env`.
    pub secret: Secret,
    /// The endpoint groups it may use (`endpoints`).
    pub endpoints: Vec<ApiEndpoint>,
    /// The departments it may open and follow tickets in (`departments`; `None`: all).
    pub departments: Option<Vec<String>>,
}

impl ApiToken {
    /// Whether it may act on tickets of `department`.
    pub fn covers(&self, department: &str) -> bool {
        self.departments
            .as_ref()
            .is_none_or(|d| d.iter().any(|x| x == department))
    }
}

/// At most `count` messages flagged per person in any `window` (`[flagging] limit` and
/// `limit_window`), so one account cannot flood the departments with tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagLimit {
    /// Flags that open a ticket, per person.
    pub count: u32,
    /// The sliding window they are counted in.
    pub window: chrono::Duration,
}

impl Default for FlagLimit {
    fn default() -> Self {
        Self {
            count: 30,
            window: chrono::Duration::minutes(10),
        }
    }
}

/// How much the background workers do at once (`[inbox]` and `[outbox]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Events the inbox completes at once (`inbox.concurrency`).
    pub inbox_concurrency: usize,
    /// Messages the outbox delivers at once (`outbox.concurrency`).
    pub outbox_concurrency: usize,
}

/// What retention prunes and when (`[retention]`). Tickets, their history, CSAT answers,
/// metric values and kudos are never pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Whether the scheduler prunes on its own (`enabled`, default true); `switchboard prune`
    /// works either way.
    pub enabled: bool,
    /// Handled inbox rows, and their dedupe keys, after this (`inbox_done`, default 30 days).
    pub inbox_done: chrono::Duration,
    /// Delivered outbox rows after this (`outbox_sent`, default 30 days).
    pub outbox_sent: chrono::Duration,
    /// Digest fire claims after this (`fires`, default 90 days).
    pub fires: chrono::Duration,
    /// SLA escalation claims of done tickets after this (`claims`, default 90 days).
    pub claims: chrono::Duration,
    /// How often the scheduler prunes (`every`, default 1 hour).
    pub every: chrono::Duration,
    /// Rows removed per statement (`batch`, default 500).
    pub batch: usize,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            inbox_done: chrono::Duration::days(30),
            outbox_sent: chrono::Duration::days(30),
            fires: chrono::Duration::days(90),
            claims: chrono::Duration::days(90),
            every: chrono::Duration::hours(1),
            batch: 500,
        }
    }
}

/// The shortest `retention.inbox_done`: a platform's retry of an event must still find its
/// dedupe key. Slack retries a delivery three times within about five minutes; Discord
/// replays missed gateway events only on a resume within minutes; a day is far beyond both.
pub const MIN_DEDUPE_HORIZON: chrono::Duration = chrono::Duration::days(1);

/// Default of `inbox.concurrency`: a burst of flags costs about one round trip to the platform,
/// and reaches the SQLite group commit as a group.
pub const DEFAULT_INBOX_CONCURRENCY: usize = 256;
/// Default of `outbox.concurrency`.
pub const DEFAULT_OUTBOX_CONCURRENCY: usize = 256;
/// The most either worker may do at once.
const MAX_CONCURRENCY: i64 = 1024;

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            inbox_concurrency: DEFAULT_INBOX_CONCURRENCY,
            outbox_concurrency: DEFAULT_OUTBOX_CONCURRENCY,
        }
    }
}

impl Config {
    /// The configured channels on `platform` (departments' channels and digest targets), each
    /// with what uses it, e.g. `("C123", "department billing")`, for start-up checks.
    pub fn channels_on(&self, platform: Platform) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for d in &self.directory.departments {
            for c in d.channels.iter().filter(|c| c.platform == platform) {
                out.push((c.id.clone(), format!("department {}", d.name)));
            }
        }
        for s in &self.digests {
            for c in s.targets.iter().filter(|c| c.platform == platform) {
                out.push((c.id.clone(), format!("digest {}", s.name)));
            }
        }
        out
    }

    /// The Slack user group ids the configuration mentions (members, leads, admins, who may
    /// flag, routing rules), whose membership the Slack adapter looks up.
    pub fn slack_groups(&self) -> Vec<String> {
        let dir = &self.directory;
        let mut refs: Vec<&MemberRef> = dir.admins.iter().collect();
        for d in &dir.departments {
            refs.extend(d.members.iter().chain(&d.leads));
        }
        if let FlagPolicy::Listed(list) = &dir.flag_policy {
            refs.extend(list);
        }
        let mut groups: Vec<String> = refs
            .into_iter()
            .filter_map(|m| match m {
                MemberRef::Role(r) if r.platform == Platform::Slack => Some(r.id.clone()),
                _ => None,
            })
            .collect();
        for rule in &self.router.rules {
            groups.extend(
                rule.reporter_roles
                    .iter()
                    .filter(|r| r.platform == Platform::Slack)
                    .map(|r| r.id.clone()),
            );
        }
        groups.sort();
        groups.dedup();
        groups
    }

    /// What is allowed but deserves a warning at start: a platform API reached over plain
    /// HTTP on another machine (`allow_insecure_api_url = true`), which sends the bot token in
    /// clear. `run` logs each; `check-config` prints them.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (table, url) in [
            ("slack", &self.slack.api_url),
            ("discord", &self.discord.api_url),
        ] {
            if is_insecure_url(url) {
                out.push(format!(
                    "{table}.api_url `{url}` is plain HTTP to another machine \
                     ({table}.allow_insecure_api_url = true): the bot token travels in clear; \
                     use https:// unless this network is trusted"
                ));
            }
        }
        out
    }

    /// Loads `path` (or `switchboard.toml` when it exists, else built-in defaults), applies
    /// environment overrides and secrets from the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (name, text) = read_file(path)?;
        Self::from_toml(&text, &name, |k| std::env::var(k).ok())
    }

    /// Parses and checks configuration text; `env` supplies overrides and secrets.
    pub fn from_toml(
        text: &str,
        source_name: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            source_name: source_name.to_string(),
            problems,
        };
        let mut table: Table = text.parse().map_err(|e: toml::de::Error| {
            invalid(vec![Problem {
                key: "(file)".into(),
                message: format!("not valid TOML: {}", e.message()),
            }])
        })?;
        apply_env_overrides(&mut table, &env);
        let mut p = Problems::default();
        let cfg = build(&table, &mut p, Secrets::from_env_with(&env), &env);
        if p.0.is_empty() {
            Ok(cfg)
        } else {
            Err(invalid(p.0))
        }
    }
}

/// Only the database URL (file, then `SWITCHBOARD_DATABASE_URL`), for commands that need
/// nothing else (`migrate`, `tickets`, `backup`), so they work even while the rest is broken.
pub fn database_url(path: Option<&Path>) -> Result<String, ConfigError> {
    if let Some(url) = std::env::var("SWITCHBOARD_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return Ok(url);
    }
    let (name, text) = read_file(path)?;
    let table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Invalid {
            source_name: name.clone(),
            problems: vec![Problem {
                key: "(file)".into(),
                message: format!("not valid TOML: {}", e.message()),
            }],
        })?;
    Ok(table
        .get("database")
        .and_then(|d| d.get("url"))
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_DATABASE_URL)
        .to_string())
}

/// The `[retention]` settings alone (checked against the digests' `grace`), for `switchboard
/// prune`, which like `migrate` works while the rest of the config is incomplete.
pub fn retention_settings(path: Option<&Path>) -> Result<RetentionSettings, ConfigError> {
    let (name, text) = read_file(path)?;
    let invalid = |problems| ConfigError::Invalid {
        source_name: name.clone(),
        problems,
    };
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        invalid(vec![Problem {
            key: "(file)".into(),
            message: format!("not valid TOML: {}", e.message()),
        }])
    })?;
    let mut graces = Vec::new();
    if let Some(Value::Array(digests)) = table.get("digests") {
        for d in digests.iter().filter_map(Value::as_table) {
            let name = d.get("name").and_then(Value::as_str).unwrap_or("?");
            let grace = match d.get("grace").and_then(Value::as_str) {
                Some(g) => sla::parse_duration(g).unwrap_or(chrono::Duration::hours(1)),
                None => chrono::Duration::hours(1),
            };
            graces.push((name.to_string(), grace));
        }
    }
    let mut p = Problems::default();
    let mut root = Node::new("", &table);
    let out = build_retention(&mut root, &mut p, &graces);
    if p.0.is_empty() {
        Ok(out)
    } else {
        Err(invalid(p.0))
    }
}

fn read_file(path: Option<&Path>) -> Result<(String, String), ConfigError> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None if Path::new(DEFAULT_CONFIG_FILE).exists() => PathBuf::from(DEFAULT_CONFIG_FILE),
        None => return Ok(("built-in defaults".into(), String::new())),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    Ok((path.display().to_string(), text))
}

fn apply_env_overrides(table: &mut Table, env: &impl Fn(&str) -> Option<String>) {
    for (var, key) in ENV_OVERRIDES {
        let Some(value) = env(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        let (section, field) = key.split_once('.').unwrap_or(("", key));
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(t) = entry {
            t.insert(field.to_string(), Value::String(value));
        }
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

/// A table being read: records which keys were used so unknown ones are reported.
struct Node<'a> {
    path: String,
    table: &'a Table,
    used: BTreeSet<&'static str>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

impl<'a> Node<'a> {
    fn new(path: impl Into<String>, table: &'a Table) -> Self {
        Self {
            path: path.into(),
            table,
            used: BTreeSet::new(),
        }
    }

    fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    fn get(&mut self, k: &'static str) -> Option<&'a Value> {
        self.used.insert(k);
        self.table.get(k)
    }

    fn string(&mut self, p: &mut Problems, k: &'static str) -> Option<String> {
        match self.get(k)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::String(_) => {
                p.add(self.key(k), "must not be empty");
                None
            }
            other => {
                p.add(
                    self.key(k),
                    format!("must be a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    fn count(&mut self, p: &mut Problems, k: &'static str, min: i64, max: i64) -> Option<usize> {
        match self.get(k)? {
            Value::Integer(n) if (min..=max).contains(n) => usize::try_from(*n).ok(),
            Value::Integer(n) => {
                p.add(
                    self.key(k),
                    format!("{n} is out of range; use a number from {min} to {max}"),
                );
                None
            }
            other => {
                p.add(
                    self.key(k),
                    format!("must be a whole number, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// Sets `target` from a whole number in `1..=max`, leaving it as it is when absent or
    /// wrong (which is reported).
    fn set_u32(&mut self, p: &mut Problems, k: &'static str, max: u32, target: &mut u32) {
        if let Some(n) = self.count(p, k, 1, i64::from(max)) {
            *target = u32::try_from(n).unwrap_or(max);
        }
    }

    fn required_string(
        &mut self,
        p: &mut Problems,
        k: &'static str,
        example: &str,
    ) -> Option<String> {
        if self.table.get(k).is_none() {
            self.used.insert(k);
            p.add(self.key(k), format!("is required, e.g. {k} = {example}"));
            return None;
        }
        self.string(p, k)
    }

    /// A list of strings, each passed with its key path to `each`.
    fn strings(&mut self, p: &mut Problems, k: &'static str) -> Vec<(String, String)> {
        let key = self.key(k);
        match self.get(k) {
            None => vec![],
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) => Some((format!("{key}[{i}]"), s.trim().to_string())),
                    other => {
                        p.add(
                            format!("{key}[{i}]"),
                            format!("must be a string, found {}", type_name(other)),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                p.add(
                    key,
                    format!("must be a list of strings, found {}", type_name(other)),
                );
                vec![]
            }
        }
    }

    fn table(&mut self, p: &mut Problems, k: &'static str) -> Option<Node<'a>> {
        let key = self.key(k);
        match self.get(k)? {
            Value::Table(t) => Some(Node::new(key, t)),
            other => {
                p.add(
                    key,
                    format!("must be a table ([{k}]), found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn tables(&mut self, p: &mut Problems, k: &'static str) -> Vec<Node<'a>> {
        let key = self.key(k);
        match self.get(k) {
            None => vec![],
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Table(t) => Some(Node::new(format!("{key}[{i}]"), t)),
                    other => {
                        p.add(
                            format!("{key}[{i}]"),
                            format!("must be a table ([[{k}]]), found {}", type_name(other)),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                p.add(
                    key,
                    format!(
                        "must be a list of tables ([[{k}]]), found {}",
                        type_name(other)
                    ),
                );
                vec![]
            }
        }
    }

    fn finish(self, p: &mut Problems) {
        for k in self.table.keys() {
            if !self.used.contains(k.as_str()) {
                let hint = if SECRET_VARS.iter().any(|s| s.eq_ignore_ascii_case(k))
                    || k.contains("token")
                    || k.contains("secret")
                {
                    "secrets are read only from the environment (see the README)".to_string()
                } else {
                    format!(
                        "unknown key; allowed here: {}",
                        self.used.iter().copied().collect::<Vec<_>>().join(", ")
                    )
                };
                p.add(self.key(k), hint);
            }
        }
    }
}

impl Node<'_> {
    /// A list of strings, each parsed; failures are reported with their key.
    fn parsed_list<T, E: fmt::Display>(
        &mut self,
        p: &mut Problems,
        k: &'static str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Vec<T> {
        self.strings(p, k)
            .into_iter()
            .filter_map(|(key, s)| match parse(&s) {
                Ok(v) => Some(v),
                Err(e) => {
                    p.add(key, e.to_string());
                    None
                }
            })
            .collect()
    }
}

/// Whether `url` names this machine: 127.0.0.0/8, `::1` or `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    })
}

/// Whether `url` is plain HTTP to another machine, which carries the bot token in clear.
fn is_insecure_url(url: &str) -> bool {
    url.starts_with("http://") && !is_loopback_url(url)
}

/// Reads the base URL `k` of an API the bot sends its token to. HTTPS always; plain HTTP to
/// this machine (a test server, the sandbox); plain HTTP elsewhere only when the table also
/// says `allow_insecure_api_url = true`, because the token would cross the network in clear.
/// Returns the URL and that opt-in.
fn api_url(
    p: &mut Problems,
    node: &mut Node<'_>,
    k: &'static str,
    default: &str,
) -> (String, bool) {
    let key = node.key(k);
    let allow_key = node.key("allow_insecure_api_url");
    let allow_insecure = match node.get("allow_insecure_api_url") {
        None => false,
        Some(Value::Boolean(b)) => *b,
        Some(other) => {
            p.add(
                allow_key.clone(),
                format!("must be true or false, found {}", type_name(other)),
            );
            false
        }
    };
    let v = node.string(p, k).unwrap_or_else(|| default.to_string());
    if !(v.starts_with("https://") || v.starts_with("http://")) {
        p.add(
            key,
            format!("`{v}` must start with https:// (or http:// for a server on this machine)"),
        );
    } else if url::Url::parse(&v).map_or(true, |u| u.host().is_none()) {
        p.add(
            key,
            format!("`{v}` is not a URL with a host, e.g. {default}"),
        );
    } else if is_insecure_url(&v) && !allow_insecure {
        p.add(
            key,
            format!(
                "`{v}` is plain HTTP to another machine, so the bot token would travel in clear; \
                 use https://, or http:// only to this machine (127.0.0.1, ::1, localhost), or, \
                 for a proxy on a private network you trust, add `allow_insecure_api_url = true` \
                 to this table ({allow_key})"
            ),
        );
    }
    (v.trim_end_matches('/').to_string(), allow_insecure)
}

fn build(
    root: &Table,
    p: &mut Problems,
    secrets: Secrets,
    env: &dyn Fn(&str) -> Option<String>,
) -> Config {
    let mut root = Node::new("", root);
    if secrets.discord_public_key.is_some() && secrets.discord_bot_token.is_none() {
        // The endpoint could verify interactions, but nothing could be delivered or registered.
        p.add(
            "DISCORD_PUBLIC_KEY",
            "is set but DISCORD_BOT_TOKEN is not: Discord interactions need the bot token too \
             (to register commands and answer); set DISCORD_BOT_TOKEN, or unset DISCORD_PUBLIC_KEY",
        );
    }

    let mut database_url = DEFAULT_DATABASE_URL.to_string();
    if let Some(mut db) = root.table(p, "database") {
        if let Some(u) = db.string(p, "url") {
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                p.add(
                    db.key("url"),
                    format!("`{u}` must start with sqlite:// or postgres://"),
                );
            }
            database_url = u;
        }
        db.finish(p);
    }

    let mut listen: SocketAddr = DEFAULT_LISTEN
        .parse()
        .expect("default listen address parses");
    let mut adapter_grace = chrono::Duration::seconds(60);
    let mut metrics_listen = None;
    if let Some(mut server) = root.table(p, "server") {
        let key = server.key("listen");
        if let Some(l) = server.string(p, "listen") {
            match l.parse() {
                Ok(a) => listen = a,
                Err(_) => p.add(
                    key,
                    format!("`{l}` is not an address such as 127.0.0.1:8080"),
                ),
            }
        }
        if let Some(g) = server.string(p, "adapter_grace") {
            match sla::parse_duration(&g) {
                Ok(d) => adapter_grace = d,
                Err(e) => p.add(server.key("adapter_grace"), e),
            }
        }
        if let Some(l) = server.string(p, "metrics_listen") {
            match l.parse::<SocketAddr>() {
                Ok(a) if a == listen => p.add(
                    server.key("metrics_listen"),
                    format!("`{l}` is `listen` itself; name another address, or leave it out to serve /metrics there"),
                ),
                Ok(a) => metrics_listen = Some(a),
                Err(_) => p.add(
                    server.key("metrics_listen"),
                    format!("`{l}` is not an address such as 127.0.0.1:9100"),
                ),
            }
        }
        server.finish(p);
    }

    let mut slack = SlackSettings {
        api_url: DEFAULT_SLACK_API_URL.into(),
        allow_insecure_api_url: false,
        limits: SlackLimits::default(),
    };
    if let Some(mut s) = root.table(p, "slack") {
        (slack.api_url, slack.allow_insecure_api_url) =
            api_url(p, &mut s, "api_url", DEFAULT_SLACK_API_URL);
        if let Some(mut l) = s.table(p, "limits") {
            let lim = &mut slack.limits;
            for (i, k) in ["tier1", "tier2", "tier3", "tier4"].into_iter().enumerate() {
                l.set_u32(p, k, 100_000, &mut lim.tiers[i]);
            }
            l.set_u32(p, "posts_per_second", 1_000, &mut lim.posts_per_second);
            l.set_u32(p, "post_burst", 1_000, &mut lim.post_burst);
            l.set_u32(p, "instances", 1_000, &mut lim.instances);
            l.finish(p);
        }
        s.finish(p);
    }
    let mut discord = DiscordSettings {
        api_url: DEFAULT_DISCORD_API_URL.into(),
        allow_insecure_api_url: false,
        guild_ids: vec![],
        shards: None,
        limits: DiscordLimits::default(),
    };
    if let Some(mut d) = root.table(p, "discord") {
        (discord.api_url, discord.allow_insecure_api_url) =
            api_url(p, &mut d, "api_url", DEFAULT_DISCORD_API_URL);
        if let Some(mut l) = d.table(p, "limits") {
            let lim = &mut discord.limits;
            l.set_u32(p, "global_per_second", 100_000, &mut lim.global_per_second);
            l.set_u32(
                p,
                "invalid_per_10_minutes",
                10_000,
                &mut lim.invalid_per_10_minutes,
            );
            l.set_u32(p, "instances", 1_000, &mut lim.instances);
            l.finish(p);
        }
        for (key, g) in d.strings(p, "guild_ids") {
            if g.is_empty() || !g.chars().all(|c| c.is_ascii_digit()) {
                p.add(key, format!("`{g}` is not a guild id (digits only)"));
            } else {
                discord.guild_ids.push(g);
            }
        }
        if let Some(v) = d.string(p, "shards") {
            match v.parse::<ShardRange>() {
                Ok(r) => discord.shards = Some(r),
                Err(e) => p.add(d.key("shards"), e),
            }
        }
        d.finish(p);
    }

    let mut workers = WorkerSettings::default();
    if let Some(mut t) = root.table(p, "inbox") {
        if let Some(n) = t.count(p, "concurrency", 1, MAX_CONCURRENCY) {
            workers.inbox_concurrency = n;
        }
        t.finish(p);
    }
    if let Some(mut t) = root.table(p, "outbox") {
        if let Some(n) = t.count(p, "concurrency", 1, MAX_CONCURRENCY) {
            workers.outbox_concurrency = n;
        }
        t.finish(p);
    }

    let people = build_people(&mut root, p);
    let person_ids: BTreeSet<String> = people.iter().map(|x| x.id.0.clone()).collect();
    let check_people = |p: &mut Problems, items: Vec<(String, String)>| -> Vec<MemberRef> {
        items
            .into_iter()
            .filter_map(|(key, s)| match s.parse::<MemberRef>() {
                Ok(MemberRef::Person(id)) if !person_ids.contains(&id.0) => {
                    p.add(
                        key,
                        format!("no person with id `{id}`; add a [[people]] entry or fix the id"),
                    );
                    None
                }
                Ok(m) => Some(m),
                Err(e) => {
                    p.add(key, e.to_string());
                    None
                }
            })
            .collect()
    };

    let admins_raw = root.strings(p, "admins");
    let admins = check_people(p, admins_raw);

    let mut departments: Vec<Department> = Vec::new();
    let mut dept_sla: BTreeMap<String, Targets> = BTreeMap::new();
    let mut dept_warn: BTreeSet<String> = BTreeSet::new();
    let mut dept_followups: BTreeMap<String, FollowupsOver> = BTreeMap::new();
    let mut dept_hours: BTreeMap<String, (BusinessHours, BTreeSet<chrono::NaiveDate>)> =
        BTreeMap::new();
    for mut d in root.tables(p, "departments") {
        let name_key = d.key("name");
        let name = d
            .required_string(p, "name", "\"billing\"")
            .map(|n| n.to_ascii_lowercase());
        if let Some(n) = &name {
            if !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                p.add(name_key.clone(), format!("`{n}` must be one word (letters, digits, - or _) so it can be typed in commands"));
            } else if departments.iter().any(|x| &x.name == n) {
                p.add(
                    name_key.clone(),
                    format!("department `{n}` is defined twice"),
                );
            }
        }
        let channels = d.parsed_list(p, "channels", str::parse::<ChannelRef>);
        if channels.is_empty() && !d.table.contains_key("channels") {
            p.add(
                d.key("channels"),
                "is required: where its alerts go, e.g. channels = [\"slack:C0123ABC\"]",
            );
        }
        let members_raw = d.strings(p, "members");
        let members = check_people(p, members_raw);
        let leads_raw = d.strings(p, "leads");
        let leads = check_people(p, leads_raw);
        let own_sla = d.table(p, "sla").map(|t| read_targets(p, t));
        if let (Some(n), Some((t, warn))) = (&name, own_sla) {
            dept_sla.insert(n.clone(), t);
            if warn {
                dept_warn.insert(n.clone());
            }
        }
        let hours = d.table(p, "hours").and_then(|t| read_hours(p, t));
        let own_holidays = read_dates(p, &mut d, "holidays");
        let own_followups = d.table(p, "followups").map(|t| read_followups(p, t));
        if let (Some(n), Some(f)) = (&name, own_followups) {
            dept_followups.insert(n.clone(), f);
        }
        if let (Some(n), Some(h)) = (&name, hours) {
            dept_hours.insert(n.clone(), (h, own_holidays));
        }
        d.finish(p);
        if let Some(name) = name {
            departments.push(Department {
                name,
                channels,
                members,
                leads,
            });
        }
    }
    let dept_names: BTreeSet<String> = departments.iter().map(|d| d.name.clone()).collect();
    let check_dept = |p: &mut Problems, key: String, name: &str| -> Option<String> {
        let n = name.to_ascii_lowercase();
        if dept_names.contains(&n) {
            Some(n)
        } else {
            p.add(
                key,
                format!(
                    "no department named `{name}`; known: {}",
                    dept_names.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
            None
        }
    };
    if departments.is_empty() {
        p.add(
            "departments",
            "at least one [[departments]] entry is needed to receive tickets",
        );
    }

    let mut flag_emojis = vec!["ticket".to_string()];
    let mut flag_policy = FlagPolicy::Anyone;
    let mut flag_limit = Some(FlagLimit::default());
    if let Some(mut f) = root.table(p, "flagging") {
        let count = f.count(p, "limit", 0, 100_000);
        let window_key = f.key("limit_window");
        let window = f.string(p, "limit_window").and_then(|w| {
            sla::parse_duration(&w)
                .map_err(|e| p.add(window_key, e))
                .ok()
        });
        flag_limit = match count {
            // 0 turns the limit off.
            Some(0) => None,
            count => Some(FlagLimit {
                count: count
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(FlagLimit::default().count),
                window: window.unwrap_or(FlagLimit::default().window),
            }),
        };
        let emojis: Vec<String> = f
            .strings(p, "emojis")
            .into_iter()
            .map(|(_, e)| normalize_emoji(&e))
            .filter(|e| !e.is_empty())
            .collect();
        if f.table.contains_key("emojis") && emojis.is_empty() {
            p.add(
                f.key("emojis"),
                "must list at least one emoji, e.g. emojis = [\"ticket\", \"🎫\"]",
            );
        }
        if !emojis.is_empty() {
            flag_emojis = emojis;
        }
        let who_key = f.key("who");
        let who = f.string(p, "who").unwrap_or_else(|| "anyone".into());
        let allowed_raw = f.strings(p, "allowed");
        let allowed = check_people(p, allowed_raw);
        flag_policy = match who.as_str() {
            "anyone" => FlagPolicy::Anyone,
            "members" => FlagPolicy::Members,
            "listed" => {
                if allowed.is_empty() {
                    p.add(f.key("allowed"), "who = \"listed\" needs allowed = [\"discord-role:…\", \"slack-group:…\", \"person:…\"]");
                }
                FlagPolicy::Listed(allowed)
            }
            other => {
                p.add(
                    who_key,
                    format!("`{other}` must be \"anyone\", \"members\" or \"listed\""),
                );
                FlagPolicy::Anyone
            }
        };
        f.finish(p);
    }

    let mut rules = Vec::new();
    let mut fallback = departments
        .first()
        .map(|d| d.name.clone())
        .unwrap_or_default();
    if let Some(mut r) = root.table(p, "routing") {
        if let Some(fb) = r.string(p, "fallback") {
            let key = r.key("fallback");
            if let Some(fb) = check_dept(p, key, &fb) {
                fallback = fb;
            }
        }
        for mut rule in r.tables(p, "rules") {
            let name = rule
                .required_string(p, "name", "\"refunds\"")
                .unwrap_or_default();
            let dept_key = rule.key("department");
            let department = rule
                .required_string(p, "department", "\"billing\"")
                .and_then(|d| check_dept(p, dept_key, &d));
            let mut built = Rule::new(name, department.clone().unwrap_or_default());
            built.emojis = rule
                .strings(p, "emojis")
                .into_iter()
                .map(|(_, e)| e)
                .collect();
            built.keywords = rule
                .strings(p, "keywords")
                .into_iter()
                .map(|(_, k)| k)
                .filter(|k| !k.is_empty())
                .collect();
            let regex_key = rule.key("regex");
            if let Some(re) = rule.string(p, "regex") {
                match Regex::new(&re) {
                    Ok(re) => built.regex = Some(re),
                    Err(e) => p.add(regex_key, format!("not a valid regular expression: {e}")),
                }
            }
            built.channels = rule.parsed_list(p, "channels", str::parse::<ChannelRef>);
            let platform_key = rule.key("platform");
            if let Some(pl) = rule.string(p, "platform") {
                match pl.parse::<Platform>() {
                    Ok(pl) => built.platform = Some(pl),
                    Err(e) => p.add(platform_key, e.to_string()),
                }
            }
            built.reporter_roles = rule.parsed_list(p, "reporter_roles", |s| match s.parse::<MemberRef>() {
                Ok(MemberRef::Role(r)) => Ok::<RoleRef, String>(r),
                _ => Err(format!("`{s}` must be a group or role: `slack-group:S0123ABC` or `discord-role:1234`")),
            });
            built.labels = rule_labels(p, &mut rule);
            let prio_key = rule.key("priority");
            if let Some(pr) = rule.string(p, "priority") {
                match pr.parse::<Priority>() {
                    Ok(pr) => built.priority = Some(pr),
                    Err(e) => p.add(prio_key, e.to_string()),
                }
            }
            built.tags = rule
                .strings(p, "tags")
                .into_iter()
                .map(|(_, t)| t.to_ascii_lowercase())
                .collect();
            rule.finish(p);
            if department.is_some() {
                rules.push(built.prepared());
            }
        }
        r.finish(p);
    }

    let api_tokens = build_api(&mut root, p, &check_dept, &secrets, env);
    let automation = build_automation(&mut root, p);
    let web = build_web(&mut root, p);
    let knowledge_dir = root.table(p, "knowledge").and_then(|mut t| {
        let key = t.key("dir");
        let dir = t.string(p, "dir").map(std::path::PathBuf::from);
        t.finish(p);
        match dir {
            Some(d) if !d.is_dir() => {
                p.add(
                    key,
                    format!(
                        "no folder at `{}`: create it with your Markdown articles, or remove [knowledge]",
                        d.display()
                    ),
                );
                None
            }
            Some(d) => Some(d),
            None => {
                p.add(key, "is required in [knowledge]: the folder of articles, e.g. dir = \"kb\"".to_string());
                None
            }
        }
    });
    let followups = {
        let default = root
            .table(p, "followups")
            .map(|t| read_followups(p, t))
            .unwrap_or_default()
            .over(&Followups::default());
        let mut out = FollowupSettings {
            default,
            departments: BTreeMap::new(),
        };
        for (name, over) in dept_followups {
            out.departments.insert(name, over.over(&default));
        }
        for (scope, f) in std::iter::once(("[followups]".to_string(), &out.default)).chain(
            out.departments
                .iter()
                .map(|(d, f)| (format!("department `{d}`'s followups"), f)),
        ) {
            if let (Some(r), Some(c)) = (f.remind_after, f.close_after) {
                if c.wall() <= r.wall() {
                    p.add(
                        scope,
                        "close_after must be longer than remind_after: both count from the start of the wait, and the reminder comes first".to_string(),
                    );
                }
            }
        }
        out
    };
    let digests = build_digests(&mut root, p, &check_dept);
    let graces: Vec<(String, chrono::Duration)> =
        digests.iter().map(|d| (d.name.clone(), d.grace)).collect();
    let retention = build_retention(&mut root, p, &graces);
    let (default_sla, warn_all) = root
        .table(p, "sla")
        .map(|t| read_targets(p, t))
        .unwrap_or_default();
    let holidays = read_dates(p, &mut root, "holidays");
    let sla = SlaPolicy {
        departments: dept_sla
            .iter()
            .map(|(n, t)| (n.clone(), default_sla.overridden_by(t)))
            .collect(),
        default: default_sla,
        calendars: dept_hours
            .into_iter()
            .map(|(n, (hours, own))| {
                let mut all = holidays.clone();
                all.extend(own);
                (
                    n,
                    Calendar {
                        hours: Some(hours),
                        holidays: all,
                    },
                )
            })
            .collect(),
        warn: if warn_all {
            departments.iter().map(|d| d.name.clone()).collect()
        } else {
            dept_warn
        },
    };
    root.finish(p);

    Config {
        database_url: DatabaseUrl::new(database_url),
        listen,
        adapter_grace,
        metrics_listen,
        directory: Directory {
            people,
            departments,
            admins,
            flag_policy,
            names: Default::default(),
        },
        router: Router { rules, fallback },
        flag_emojis,
        flag_limit,
        digests,
        sla,
        slack,
        discord,
        workers,
        retention,
        api_tokens,
        automation,
        followups,
        knowledge_dir,
        web,
        secrets,
    }
}

/// Reads `[web]`: `None` unless `enabled = true`, which needs a `public_url` that is HTTPS
/// (or plain HTTP on this machine, for trying it out), since sessions travel in its cookie.
fn build_web(root: &mut Node<'_>, p: &mut Problems) -> Option<WebSettings> {
    let mut t = root.table(p, "web")?;
    let enabled = match t.get("enabled") {
        None => false,
        Some(Value::Boolean(b)) => *b,
        Some(other) => {
            p.add(
                t.key("enabled"),
                format!("must be true or false, found {}", type_name(other)),
            );
            false
        }
    };
    let key = t.key("public_url");
    let url = if enabled {
        t.required_string(p, "public_url", "\"https://desk.example.com\"")
    } else {
        t.string(p, "public_url")
    };
    let mut lifetime = chrono::Duration::hours(12);
    if let Some(v) = t.string(p, "session_lifetime") {
        match sla::parse_duration(&v) {
            Ok(d) if d >= chrono::Duration::minutes(5) && d <= chrono::Duration::days(30) => {
                lifetime = d;
            }
            Ok(_) => p.add(
                t.key("session_lifetime"),
                format!("`{v}` is out of range; use 5m to 30d, e.g. \"12h\""),
            ),
            Err(e) => p.add(t.key("session_lifetime"), e),
        }
    }
    t.finish(p);
    let url = url?.trim_end_matches('/').to_string();
    let parsed = url::Url::parse(&url).ok().filter(|u| u.host().is_some());
    let problem = match &parsed {
        None => Some(format!(
            "`{url}` is not a URL with a host, e.g. \"https://desk.example.com\""
        )),
        Some(u) if u.query().is_some() || u.fragment().is_some() => {
            Some(format!("`{url}` must not have a query or a fragment"))
        }
        Some(u) if u.scheme() == "https" => None,
        Some(u) if u.scheme() == "http" && is_loopback_url(&url) => None,
        Some(_) => Some(format!(
            "`{url}` must start with https:// (the session cookie must not travel in clear); \
             plain http:// only for this machine (127.0.0.1, ::1, localhost). Behind a TLS \
             proxy, give the address people open"
        )),
    };
    if let Some(why) = problem {
        p.add(key, why);
        return None;
    }
    enabled.then(|| WebSettings {
        secure_cookie: !url.starts_with("http://"),
        public_url: url,
        session_lifetime: lifetime,
    })
}

/// Reads a `followups` table: durations, or "off" to follow nothing up that way.
fn read_followups(p: &mut Problems, mut t: Node<'_>) -> FollowupsOver {
    let mut out = FollowupsOver::default();
    for key in ["remind_after", "close_after", "nudge_after"] {
        let Some(v) = t.string(p, key) else { continue };
        let parsed = if v.trim().eq_ignore_ascii_case("off") {
            Some(None)
        } else {
            match sla::parse_target(&v) {
                Ok(d) => Some(Some(d)),
                Err(e) => {
                    p.add(t.key(key), format!("{e}, or \"off\""));
                    None
                }
            }
        };
        match key {
            "remind_after" => out.remind_after = parsed,
            "close_after" => out.close_after = parsed,
            _ => out.nudge_after = parsed,
        }
    }
    match t.get("ask_csat") {
        None => {}
        Some(Value::Boolean(b)) => out.ask_csat = Some(*b),
        Some(other) => p.add(
            t.key("ask_csat"),
            format!("must be true or false, found {}", type_name(other)),
        ),
    }
    t.finish(p);
    out
}

/// Reads `[automation]`.
fn build_automation(root: &mut Node<'_>, p: &mut Problems) -> AutomationSettings {
    let mut out = AutomationSettings::default();
    let Some(mut t) = root.table(p, "automation") else {
        return out;
    };
    match t.get("resolve_when_source_resolves") {
        None => {}
        Some(Value::Boolean(b)) => out.resolve_when_source_resolves = *b,
        Some(other) => p.add(
            t.key("resolve_when_source_resolves"),
            format!("must be true or false, found {}", type_name(other)),
        ),
    }
    if let Some(v) = t.string(p, "reopen_within") {
        match sla::parse_duration(&v) {
            Ok(d) => out.reopen_within = d,
            Err(e) => p.add(t.key("reopen_within"), e),
        }
    }
    if let Some(n) = t.count(p, "max_tickets_per_group", 1, 10_000) {
        out.max_tickets_per_group = n;
    }
    if let Some(sev) = t.table(p, "severity") {
        let key = sev.key("");
        for (name, v) in sev.table {
            let k = format!("{key}{name}");
            match v {
                Value::String(s) => match s.parse::<Priority>() {
                    Ok(pr) => {
                        let name = name.to_ascii_lowercase();
                        out.severity.retain(|(n, _)| *n != name);
                        out.severity.push((name, pr));
                    }
                    Err(e) => p.add(k, e.to_string()),
                },
                other => p.add(
                    k,
                    format!(
                        "must be a priority (low, normal, high, urgent), found {}",
                        type_name(other)
                    ),
                ),
            }
        }
    }
    t.finish(p);
    out
}

/// Reads `[[api.tokens]]`, each secret from the environment variable it names, and adds
/// `SWITCHBOARD_API_TOKEN` as the short form of a token for the metrics API alone.
fn build_api(
    root: &mut Node<'_>,
    p: &mut Problems,
    check_dept: &dyn Fn(&mut Problems, String, &str) -> Option<String>,
    secrets: &Secrets,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<ApiToken> {
    let mut out: Vec<ApiToken> = Vec::new();
    if let Some(mut api) = root.table(p, "api") {
        for mut t in api.tables(p, "tokens") {
            let name_key = t.key("name");
            let name = t.required_string(p, "name", "\"alertmanager\"");
            if let Some(n) = &name {
                if !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    p.add(
                        name_key.clone(),
                        format!("`{n}` may hold only letters, digits, - and _"),
                    );
                } else if out.iter().any(|o| &o.name == n) || n == METRICS_TOKEN_NAME {
                    p.add(name_key.clone(), format!("`{n}` is used by another token"));
                }
            }
            let env_key = t.key("secret_env");
            let secret = t
                .required_string(p, "secret_env", "\"SWITCHBOARD_TOKEN_ALERTMANAGER\"")
                .and_then(|var| match env(&var).filter(|v| !v.trim().is_empty()) {
                    Some(v) if v.trim().len() >= MIN_API_TOKEN_LEN => Some(Secret::new(v.trim())),
                    Some(_) => {
                        p.add(
                            env_key.clone(),
                            format!(
                                "{var} holds fewer than {MIN_API_TOKEN_LEN} characters; use a \
                                 long random token (e.g. `openssl rand -hex 32`)"
                            ),
                        );
                        None
                    }
                    None => {
                        p.add(
                            env_key.clone(),
                            format!("the environment variable {var} is not set (it holds this token's secret)"),
                        );
                        None
                    }
                });
            let endpoint_key = t.key("endpoints");
            let listed = t.strings(p, "endpoints");
            let mut endpoints = Vec::new();
            if listed.is_empty() {
                p.add(
                    endpoint_key,
                    format!(
                        "is required: the endpoints this token may use, from {}",
                        ApiEndpoint::ALL
                            .map(|e| format!("\"{}\"", e.as_str()))
                            .join(", ")
                    ),
                );
            }
            for (key, e) in listed {
                match ApiEndpoint::ALL.iter().find(|x| x.as_str() == e) {
                    Some(x) if !endpoints.contains(x) => endpoints.push(*x),
                    Some(_) => {}
                    None => p.add(
                        key,
                        format!(
                            "`{e}` is not an endpoint; use one of {}",
                            ApiEndpoint::ALL.map(|e| e.as_str()).join(", ")
                        ),
                    ),
                }
            }
            let departments = if t.get("departments").is_some() {
                Some(
                    t.strings(p, "departments")
                        .into_iter()
                        .filter_map(|(k, d)| check_dept(p, k, &d))
                        .collect(),
                )
            } else {
                None
            };
            t.finish(p);
            if let (Some(name), Some(secret)) = (name, secret) {
                out.push(ApiToken {
                    name,
                    secret,
                    endpoints,
                    departments,
                });
            }
        }
        api.finish(p);
    }
    if let Some(secret) = &secrets.api_token {
        out.push(ApiToken {
            name: METRICS_TOKEN_NAME.into(),
            secret: secret.clone(),
            endpoints: vec![ApiEndpoint::Metrics],
            departments: None,
        });
    }
    out
}

/// A routing rule's `labels = { severity = "critical" }`: each value a string.
fn rule_labels(p: &mut Problems, rule: &mut Node<'_>) -> Vec<(String, String)> {
    let key = rule.key("labels");
    match rule.get("labels") {
        None => vec![],
        Some(Value::Table(t)) => t
            .iter()
            .filter_map(|(name, v)| match v {
                Value::String(s) => Some((name.clone(), s.clone())),
                other => {
                    p.add(
                        format!("{key}.{name}"),
                        format!("must be a string, found {}", type_name(other)),
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            p.add(
                key,
                format!(
                    "must be a table of label values, e.g. labels = {{ team = \"payments\" }}; found {}",
                    type_name(other)
                ),
            );
            vec![]
        }
    }
}

/// The name `SWITCHBOARD_API_TOKEN` goes by among the API tokens.
pub const METRICS_TOKEN_NAME: &str = "metrics";

/// The shortest API token secret accepted.
const MIN_API_TOKEN_LEN: usize = 16;

/// Reads `[retention]`: durations as elsewhere (`30d`, `12h`), checked against what they
/// must outlast.
fn build_retention(
    root: &mut Node<'_>,
    p: &mut Problems,
    graces: &[(String, chrono::Duration)],
) -> RetentionSettings {
    let mut out = RetentionSettings::default();
    let Some(mut t) = root.table(p, "retention") else {
        return out;
    };
    match t.get("enabled") {
        None => {}
        Some(Value::Boolean(b)) => out.enabled = *b,
        Some(other) => p.add(
            t.key("enabled"),
            format!("must be true or false, found {}", type_name(other)),
        ),
    }
    let duration =
        |t: &mut Node<'_>, p: &mut Problems, k: &'static str, target: &mut chrono::Duration| {
            if let Some(v) = t.string(p, k) {
                match sla::parse_duration(&v) {
                    Ok(d) => *target = d,
                    Err(e) => p.add(t.key(k), e),
                }
            }
        };
    duration(&mut t, p, "inbox_done", &mut out.inbox_done);
    duration(&mut t, p, "outbox_sent", &mut out.outbox_sent);
    duration(&mut t, p, "fires", &mut out.fires);
    duration(&mut t, p, "claims", &mut out.claims);
    duration(&mut t, p, "every", &mut out.every);
    if let Some(n) = t.count(p, "batch", 1, 100_000) {
        out.batch = n;
    }
    if out.inbox_done < MIN_DEDUPE_HORIZON {
        p.add(
            t.key("inbox_done"),
            format!(
                "must be at least {}: a platform's late retry of an event must still find its \
                 dedupe key",
                sla::format_duration(MIN_DEDUPE_HORIZON)
            ),
        );
    }
    // A fire is claimed for as long as its digest could still be sent late; a claim pruned
    // sooner would let the fire go out twice.
    if let Some((name, grace)) = graces
        .iter()
        .filter(|(_, g)| *g >= out.fires)
        .max_by_key(|(_, g)| *g)
    {
        p.add(
            t.key("fires"),
            format!(
                "must be longer than the grace of digest `{name}` ({}), or its late fire \
                 could be sent twice",
                sla::format_duration(*grace)
            ),
        );
    }
    t.finish(p);
    out
}

/// Reads `first_response` and `resolution` tables of priority = duration, and `warn` (a
/// warning at 80% of a target).
fn read_targets(p: &mut Problems, mut node: Node<'_>) -> (Targets, bool) {
    let mut out = Targets::default();
    let warn_key = node.key("warn");
    let warn = match node.get("warn") {
        None => false,
        Some(Value::Boolean(b)) => *b,
        Some(other) => {
            p.add(
                warn_key,
                format!("must be true or false, found {}", type_name(other)),
            );
            false
        }
    };
    for kind in ["first_response", "resolution"] {
        let Some(mut t) = node.table(p, kind) else {
            continue;
        };
        let map = if kind == "first_response" {
            &mut out.first_response
        } else {
            &mut out.resolution
        };
        for prio in Priority::ALL {
            if let Some(d) = t.string(p, prio.as_str()) {
                match sla::parse_target(&d) {
                    Ok(d) => {
                        map.insert(prio, d);
                    }
                    Err(e) => p.add(t.key(prio.as_str()), e),
                }
            }
        }
        t.finish(p);
    }
    node.finish(p);
    (out, warn)
}

/// Reads `hours = { timezone, days, open, close }`.
fn read_hours(p: &mut Problems, mut t: Node<'_>) -> Option<BusinessHours> {
    let tz_key = t.key("timezone");
    let timezone = match t.required_string(p, "timezone", "\"Europe/Berlin\"") {
        Some(z) => match z.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                p.add(
                    tz_key,
                    format!("`{z}` is not an IANA time zone such as Europe/Berlin"),
                );
                None
            }
        },
        None => None,
    };
    let days_key = t.key("days");
    let days = match t.string(p, "days") {
        None => Some([true, true, true, true, true, false, false]),
        Some(d) => match sla::parse_days(&d) {
            Ok(d) => Some(d),
            Err(e) => {
                p.add(days_key, e);
                None
            }
        },
    };
    let mut time = |k: &'static str, example: &str| -> Option<chrono::NaiveTime> {
        let key = t.key(k);
        let v = t.required_string(p, k, example)?;
        match chrono::NaiveTime::parse_from_str(&v, "%H:%M") {
            Ok(v) => Some(v),
            Err(_) => {
                p.add(
                    key,
                    format!("`{v}` is not a time; write 24-hour HH:MM, e.g. {example}"),
                );
                None
            }
        }
    };
    let open = time("open", "\"09:00\"");
    let close = time("close", "\"18:00\"");
    if let (Some(o), Some(c)) = (open, close) {
        if c <= o {
            p.add(
                t.key("close"),
                "must be after `open` (hours that cross midnight are not supported)",
            );
            t.finish(p);
            return None;
        }
    }
    t.finish(p);
    Some(BusinessHours {
        timezone: timezone?,
        days: days?,
        open: open?,
        close: close?,
    })
}

/// Reads a list of `YYYY-MM-DD` dates.
fn read_dates(
    p: &mut Problems,
    node: &mut Node<'_>,
    k: &'static str,
) -> BTreeSet<chrono::NaiveDate> {
    node.strings(p, k)
        .into_iter()
        .filter_map(
            |(key, v)| match chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    p.add(
                        key,
                        format!("`{v}` is not a date; write YYYY-MM-DD, e.g. \"2026-12-25\""),
                    );
                    None
                }
            },
        )
        .collect()
}

fn build_people(root: &mut Node<'_>, p: &mut Problems) -> Vec<Person> {
    let mut people: Vec<Person> = Vec::new();
    let mut accounts: BTreeMap<String, String> = BTreeMap::new();
    for mut n in root.tables(p, "people") {
        let id_key = n.key("id");
        let id = n.required_string(p, "id", "\"alice\"");
        let name = n.string(p, "name");
        let mut account = |n: &mut Node<'_>,
                           p: &mut Problems,
                           k: &'static str,
                           platform: Platform|
         -> Option<String> {
            let key = n.key(k);
            let v = n.string(p, k)?;
            let user = format!("{platform}:{v}");
            if user.parse::<crate::core::types::UserRef>().is_err() {
                p.add(key, format!("`{v}` is not a {platform} user id"));
                return None;
            }
            if let Some(other) = accounts.insert(user.clone(), id.clone().unwrap_or_default()) {
                p.add(key, format!("{user} is already linked to person `{other}`"));
            }
            Some(v)
        };
        let slack = account(&mut n, p, "slack", Platform::Slack);
        let discord = account(&mut n, p, "discord", Platform::Discord);
        n.finish(p);
        let Some(id) = id else { continue };
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            p.add(id_key, format!("`{id}` must be letters, digits, ., - or _"));
            continue;
        }
        if people.iter().any(|x| x.id.0 == id) {
            p.add(id_key, format!("person `{id}` is defined twice"));
            continue;
        }
        people.push(Person {
            name: name.unwrap_or_else(|| id.clone()),
            id: PersonId(id),
            slack,
            discord,
        });
    }
    people
}

fn build_digests(
    root: &mut Node<'_>,
    p: &mut Problems,
    check_dept: &dyn Fn(&mut Problems, String, &str) -> Option<String>,
) -> Vec<DigestSchedule> {
    let mut out: Vec<DigestSchedule> = Vec::new();
    for mut d in root.tables(p, "digests") {
        let name_key = d.key("name");
        let name = d.required_string(p, "name", "\"weekly\"");
        if let Some(n) = &name {
            if out.iter().any(|x| &x.name == n) {
                p.add(name_key.clone(), format!("digest `{n}` is defined twice"));
            }
            // `@` names are the bot's own jobs' claims (`@retention`).
            if n.starts_with('@') {
                p.add(
                    name_key,
                    format!("`{n}`: a digest name may not start with @"),
                );
            }
        }
        let cron_key = d.key("cron");
        let cron_text = d.required_string(p, "cron", "\"0 9 * * MON\"");
        let schedule = cron_text
            .as_deref()
            .and_then(|c| match CronSchedule::parse(c) {
                // The scheduler looks at most once a minute's worth of fires: a schedule
                // finer than that would be thinned out without a word, and would flood its
                // channels anyway.
                Ok(s) if s.fires_per_minute() > 1 => {
                    p.add(
                        cron_key,
                        format!(
                            "`{c}` fires {} times a minute; a digest may fire at most once a \
                             minute (a finer schedule would be thinned out silently and flood \
                             its channels): give one value in the seconds field, or use the \
                             5-field form, e.g. `0 9 * * MON` for Mondays at 09:00 or \
                             `*/15 * * * *` for every 15 minutes",
                            s.fires_per_minute()
                        ),
                    );
                    None
                }
                Ok(s) => Some(s),
                Err(e) => {
                    p.add(cron_key, e.to_string());
                    None
                }
            });
        let tz_key = d.key("timezone");
        let timezone = match d.string(p, "timezone") {
            None => Some(Tz::UTC),
            Some(t) => match t.parse::<Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    p.add(tz_key, format!("`{t}` is not an IANA time zone such as Europe/Berlin or America/New_York"));
                    None
                }
            },
        };
        let targets = d.parsed_list(p, "targets", str::parse::<ChannelRef>);
        if targets.is_empty() && !d.table.contains_key("targets") {
            p.add(
                d.key("targets"),
                "is required: where to post, e.g. targets = [\"slack:C0123ABC\"]",
            );
        }
        let departments = d
            .strings(p, "departments")
            .into_iter()
            .filter_map(|(key, n)| check_dept(p, key, &n))
            .collect();
        let period_key = d.key("period");
        let period = match d.string(p, "period").as_deref() {
            None | Some("week") => Period::Week,
            Some("day") => Period::Day,
            Some("month") => Period::Month,
            Some(other) => {
                p.add(
                    period_key,
                    format!("`{other}` must be \"day\" (from the same local time the day before), \"week\" (seven days before) or \"month\" (one calendar month before)"),
                );
                Period::Week
            }
        };
        let grace_key = d.key("grace");
        let grace = match d.string(p, "grace") {
            None => chrono::Duration::hours(1),
            Some(g) => sla::parse_duration(&g).unwrap_or_else(|e| {
                p.add(grace_key, e);
                chrono::Duration::hours(1)
            }),
        };
        d.finish(p);
        if let (Some(name), Some(cron), Some(schedule), Some(timezone)) =
            (name, cron_text, schedule, timezone)
        {
            out.push(DigestSchedule {
                name,
                cron,
                schedule,
                timezone,
                targets,
                departments,
                period,
                grace,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
admins = ["person:alice"]
[database]
url = "sqlite://test.db"
[[people]]
id = "alice"
name = "Alice"
slack = "UALICE"
discord = "100"
[[departments]]
name = "Billing"
channels = ["slack:CBILL", "discord:900"]
members = ["slack-group:SBILL"]
leads = ["person:alice"]
[[departments]]
name = "support"
channels = ["discord:901"]
[flagging]
emojis = [":ticket:", "🎫"]
who = "members"
[routing]
fallback = "support"
[[routing.rules]]
name = "refunds"
keywords = ["refund"]
department = "billing"
priority = "high"
[[digests]]
name = "weekly"
cron = "0 9 * * MON"
timezone = "Europe/Berlin"
targets = ["slack:CLEADS"]
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_good_file_loads_with_defaults_filled_in() {
        let c = Config::from_toml(GOOD, "good.toml", no_env).unwrap();
        assert_eq!(c.database_url, "sqlite://test.db");
        assert_eq!(c.directory.departments[0].name, "billing");
        assert_eq!(c.router.fallback, "support");
        assert_eq!(c.flag_emojis, vec!["ticket", "🎫"]);
        assert_eq!(c.digests[0].timezone, chrono_tz::Europe::Berlin);
        assert_eq!(c.slack.api_url, DEFAULT_SLACK_API_URL);
        assert_eq!(c.discord.api_url, DEFAULT_DISCORD_API_URL);
        assert_eq!(c.flag_emojis.len(), 2);
    }

    #[test]
    fn environment_overrides_the_file_and_supplies_secrets_that_never_print() {
        let env = |k: &str| match k {
            "SWITCHBOARD_DATABASE_URL" => Some("postgres://db/x".to_string()),
            "SWITCHBOARD_SLACK_API_URL" => Some("http://127.0.0.1:9/api/".to_string()),
            "SLACK_BOT_TOKEN" => Some("xoxb-very-secret".to_string()),
            _ => None,
        };
        let c = Config::from_toml(GOOD, "good.toml", env).unwrap();
        assert_eq!(c.database_url, "postgres://db/x");
        assert_eq!(c.slack.api_url, "http://127.0.0.1:9/api");
        assert_eq!(
            c.secrets.slack_bot_token.as_ref().unwrap().expose(),
            "xoxb-very-secret"
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("very-secret"), "Debug leaks a secret");
        assert!(debug.contains("[redacted]"));
    }

    #[test]
    fn the_web_view_needs_an_address_people_can_open_safely() {
        let with = |web: &str| format!("{GOOD}\n[web]\n{web}\n");
        let parse = |web: &str| Config::from_toml(&with(web), "t.toml", no_env);
        let c = parse("enabled = true\npublic_url = \"https://desk.example.com/\"").unwrap();
        let web = c.web.unwrap();
        assert_eq!(web.public_url, "https://desk.example.com");
        assert!(web.secure_cookie);
        assert_eq!(web.session_lifetime, chrono::Duration::hours(12));
        assert_eq!(
            web.page("tickets/4"),
            "https://desk.example.com/ui/tickets/4"
        );
        let local = parse(
            "enabled = true\npublic_url = \"http://127.0.0.1:8080\"\nsession_lifetime = \"1h\"",
        )
        .unwrap()
        .web
        .unwrap();
        assert!(
            !local.secure_cookie,
            "a Secure cookie never comes back over plain HTTP"
        );
        assert_eq!(local.session_lifetime, chrono::Duration::hours(1));
        assert_eq!(parse("enabled = false").unwrap().web, None);
        assert!(!GOOD.contains("[web]"));
        for (web, key, why) in [
            ("enabled = true", "web.public_url", "is required"),
            (
                "enabled = true\npublic_url = \"http://desk.example.com\"",
                "web.public_url",
                "must start with https://",
            ),
            (
                "enabled = true\npublic_url = \"https://desk.example.com/?a=1\"",
                "web.public_url",
                "query",
            ),
            ("enabled = \"yes\"", "web.enabled", "true or false"),
            (
                "enabled = true\npublic_url = \"https://d.example\"\nsession_lifetime = \"2m\"",
                "web.session_lifetime",
                "5m to 30d",
            ),
            (
                "enabled = true\npublic_url = \"https://d.example\"\nsecret = \"x\"",
                "web.secret",
                "environment",
            ),
        ] {
            let err = parse(web).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(why), "{web}: {err}");
        }
    }

    #[test]
    fn metrics_can_move_to_another_address_but_not_onto_listen() {
        let with = |server: &str| format!("{GOOD}\n[server]\n{server}\n");
        let c = Config::from_toml(
            &with("listen = \"0.0.0.0:8080\"\nmetrics_listen = \"127.0.0.1:9100\""),
            "t.toml",
            no_env,
        )
        .unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        let same = Config::from_toml(
            &with("listen = \"127.0.0.1:8080\"\nmetrics_listen = \"127.0.0.1:8080\""),
            "t.toml",
            no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(
            same.contains("server.metrics_listen") && same.contains("is `listen` itself"),
            "{same}"
        );
        let c = Config::from_toml(GOOD, "t.toml", |k| {
            (k == "SWITCHBOARD_METRICS_TOKEN").then(|| "m-token".to_string())
        })
        .unwrap();
        assert_eq!(c.metrics_listen, None);
        assert_eq!(
            c.secrets.metrics_token.as_ref().map(|s| s.expose()),
            Some("m-token")
        );
    }

    #[test]
    fn plain_http_api_urls_are_refused_off_this_machine_unless_allowed() {
        let with = |table: &str, extra: &str, url: &str| {
            format!("{GOOD}\n[{table}]\napi_url = \"{url}\"\n{extra}")
        };
        for table in ["slack", "discord"] {
            // Loopback over plain HTTP (the sandbox, a local test server) is fine, no warning.
            for url in [
                "http://127.0.0.1:9/api",
                "http://127.8.0.1:9",
                "http://[::1]:9/api",
                "http://localhost:9",
                "https://proxy.example",
            ] {
                let c = Config::from_toml(&with(table, "", url), "t.toml", no_env)
                    .unwrap_or_else(|e| panic!("{url}: {e}"));
                assert!(c.warnings().is_empty(), "{url}: {:?}", c.warnings());
            }
            // Another host over plain HTTP: refused, saying how to fix it.
            for url in [
                "http://10.0.0.5:8080",
                "http://discord-proxy.internal",
                "http://127.0.0.1.evil.example/api",
                "http://[::2]:9",
            ] {
                let err = Config::from_toml(&with(table, "", url), "t.toml", no_env)
                    .unwrap_err()
                    .to_string();
                assert!(err.contains(&format!("{table}.api_url")), "{err}");
                assert!(err.contains("in clear"), "{err}");
                assert!(err.contains("https://"), "{err}");
                assert!(
                    err.contains(&format!("{table}.allow_insecure_api_url")),
                    "{err}"
                );
            }
            // The same through the environment override.
            let env = |k: &str| {
                (k == format!("SWITCHBOARD_{}_API_URL", table.to_uppercase()))
                    .then(|| "http://10.0.0.5:8080".to_string())
            };
            assert!(Config::from_toml(GOOD, "t.toml", env).is_err());
            // With the explicit opt-in it loads, and says so at start.
            let c = Config::from_toml(
                &with(
                    table,
                    "allow_insecure_api_url = true",
                    "http://10.0.0.5:8080",
                ),
                "t.toml",
                no_env,
            )
            .unwrap();
            let w = c.warnings();
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(w[0].contains(&format!("{table}.api_url")) && w[0].contains("in clear"));
            let err = Config::from_toml(
                &with(table, "allow_insecure_api_url = \"yes\"", "http://10.0.0.5"),
                "t.toml",
                no_env,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("must be true or false"), "{err}");
        }
        assert!(is_loopback_url("http://LOCALHOST:1"));
        assert!(!is_loopback_url("http://localhost.example:1"));
    }

    #[test]
    fn shard_ranges_are_inclusive_and_checked() {
        assert_eq!(
            "0-1/4".parse::<ShardRange>(),
            Ok(ShardRange {
                first: 0,
                last: 1,
                total: 4
            })
        );
        assert_eq!(
            "3/4".parse::<ShardRange>(),
            Ok(ShardRange {
                first: 3,
                last: 3,
                total: 4
            })
        );
        for bad in ["1-4/4", "2-1/4", "0-0/0", "a-b/c", "0-1"] {
            assert!(bad.parse::<ShardRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn automation_settings_have_defaults_and_are_checked() {
        let base = "[[departments]]\nname = \"ops\"\nchannels = [\"slack:C1\"]\n";
        let cfg = Config::from_toml(base, "t.toml", no_env).unwrap();
        assert_eq!(cfg.automation, AutomationSettings::default());
        let file = format!(
            "{base}[automation]\nresolve_when_source_resolves = true\nreopen_within = \"2h\"\n\
             max_tickets_per_group = 5\n[automation.severity]\npage = \"urgent\"\ninfo = \"normal\"\n"
        );
        let a = Config::from_toml(&file, "t.toml", no_env)
            .unwrap()
            .automation;
        assert!(a.resolve_when_source_resolves);
        assert_eq!(a.reopen_within, chrono::Duration::hours(2));
        assert_eq!(a.max_tickets_per_group, 5);
        assert!(a.severity.contains(&("page".into(), Priority::Urgent)));
        assert!(a.severity.contains(&("info".into(), Priority::Normal)));
        assert!(a.severity.contains(&("critical".into(), Priority::Urgent)));
        let bad = format!(
            "{base}[automation]\nresolve_when_source_resolves = \"yes\"\nreopen_within = \"soon\"\n\
             max_tickets_per_group = 0\nmystery = 1\n[automation.severity]\npage = \"asap\"\n"
        );
        let text = Config::from_toml(&bad, "t.toml", no_env)
            .unwrap_err()
            .to_string();
        for key in [
            "automation.resolve_when_source_resolves",
            "automation.reopen_within",
            "automation.max_tickets_per_group",
            "automation.mystery",
            "automation.severity.page",
        ] {
            assert!(text.contains(key), "{key} missing from:\n{text}");
        }
    }

    #[test]
    fn api_tokens_read_their_secrets_from_the_environment_and_are_checked() {
        let file = r#"
[[departments]]
name = "support"
channels = ["slack:C1"]

[[routing.rules]]
name = "payments"
labels = { team = "payments" }
department = "support"

[api]
[[api.tokens]]
name = "monitoring"
secret_env = "TOKEN_MONITORING"
endpoints = ["tickets"]
departments = ["support"]

[[api.tokens]]
name = "monitoring"
secret_env = "TOKEN_SHORT"
endpoints = ["tickets", "alerts"]
departments = ["nowhere"]

[[api.tokens]]
name = "bad name!"
secret_env = "TOKEN_MISSING"
"#;
        let env = |k: &str| match k {
            "TOKEN_MONITORING" => Some("m".repeat(32)),
            "TOKEN_SHORT" => Some("short".into()),
            _ => None,
        };
        let text = Config::from_toml(file, "test.toml", env)
            .unwrap_err()
            .to_string();
        for expected in [
            "api.tokens[1].name: `monitoring` is used by another token",
            "api.tokens[1].secret_env: TOKEN_SHORT holds fewer than 16 characters",
            "api.tokens[1].endpoints[1]: `alerts` is not an endpoint",
            "api.tokens[1].departments[0]: no department named `nowhere`",
            "api.tokens[2].name: `bad name!` may hold only letters",
            "api.tokens[2].secret_env: the environment variable TOKEN_MISSING is not set",
            "api.tokens[2].endpoints: is required",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        // The secret never shows.
        assert!(!text.contains(&"m".repeat(32)) && !text.contains("short\""));
        let good = file
            .split("[[api.tokens]]\nname = \"monitoring\"\nsecret_env = \"TOKEN_SHORT\"")
            .next()
            .unwrap();
        let env = |k: &str| match k {
            "TOKEN_MONITORING" => Some("m".repeat(32)),
            "SWITCHBOARD_API_TOKEN" => Some("metrics-token".into()),
            _ => None,
        };
        let cfg = Config::from_toml(good, "test.toml", env).unwrap();
        let names: Vec<&str> = cfg.api_tokens.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["monitoring", METRICS_TOKEN_NAME]);
        assert!(cfg.api_tokens[0].covers("support") && !cfg.api_tokens[0].covers("billing"));
        assert_eq!(cfg.api_tokens[1].endpoints, [ApiEndpoint::Metrics]);
        assert_eq!(
            cfg.router.rules[0].labels,
            [("team".to_string(), "payments".to_string())]
        );
        assert!(format!("{:?}", cfg.api_tokens).contains("[redacted]"));
    }

    #[test]
    fn a_discord_public_key_without_the_bot_token_is_refused() {
        let file = "[[departments]]\nname = \"support\"\nchannels = [\"discord:1\"]\n";
        let env = |k: &str| (k == "DISCORD_PUBLIC_KEY").then(|| "ab".repeat(32));
        let err = Config::from_toml(file, "test.toml", env).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("DISCORD_PUBLIC_KEY") && text.contains("DISCORD_BOT_TOKEN"),
            "{text}"
        );
        let both = |k: &str| match k {
            "DISCORD_PUBLIC_KEY" => Some("ab".repeat(32)),
            "DISCORD_BOT_TOKEN" => Some("token".into()),
            _ => None,
        };
        assert!(Config::from_toml(file, "test.toml", both).is_ok());
    }

    #[test]
    fn database_passwords_never_show() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db.example:5432/x?sslmode=require&password=p2"),
            "postgres://bob:[redacted]@db.example:5432/x?sslmode=require&password=[redacted]"
        );
        assert_eq!(redact_url("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(
            redact_url("sqlite://switchboard.db"),
            "sqlite://switchboard.db"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@db/x"),
            "postgres://u:[redacted]@db/x",
            "the last @ ends the user part"
        );
        let c = Config::from_toml(
            "[database]\nurl = \"postgres://bob:s3cret@db/x\"\n\n[[departments]]\nname = \"it\"\nchannels = [\"slack:C1\"]\n",
            "t.toml",
            no_env,
        )
        .unwrap();
        let shown = format!("{c:?} {}", c.database_url);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(&*c.database_url, "postgres://bob:s3cret@db/x");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let bad = r#"
admins = ["person:nobody", "boss"]
slack_bot_token = "xoxb-in-the-file"
[discord]
shards = "2-1/4"
[database]
url = "mysql://x"
[server]
listen = "everywhere"
metrics_listen = "port nine"
[inbox]
concurrency = 0
[outbox]
concurrency = "lots"
[[people]]
id = "alice"
slack = "U1"
[[people]]
id = "alice2"
slack = "U1"
[[departments]]
name = "billing"
channels = ["C123", "discord:abc"]
members = ["person:ghost"]
[flagging]
who = "vips"
[routing]
fallback = "nowhere"
[[routing.rules]]
name = "r"
department = "sales"
regex = "(unclosed"
priority = "asap"
platform = "teams"
[[digests]]
name = "weekly"
cron = "0 9 * *"
timezone = "Mars/Olympus"
targets = ["slack:C1"]
period = "fortnight"
departments = ["legal"]
"#;
        let err = Config::from_toml(bad, "bad.toml", no_env).unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("{err}")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for want in [
            "database.url",
            "server.listen",
            "server.metrics_listen",
            "inbox.concurrency",
            "outbox.concurrency",
            "people[1].slack",
            "admins[0]",
            "admins[1]",
            "departments[0].channels[0]",
            "departments[0].channels[1]",
            "departments[0].members[0]",
            "flagging.who",
            "routing.fallback",
            "routing.rules[0].department",
            "routing.rules[0].regex",
            "routing.rules[0].priority",
            "routing.rules[0].platform",
            "digests[0].cron",
            "digests[0].timezone",
            "digests[0].period",
            "digests[0].departments[0]",
            "slack_bot_token",
            "discord.shards",
        ] {
            assert!(keys.contains(&want), "missing {want} in {problems:#?}");
        }
        let secret = problems
            .iter()
            .find(|p| p.key == "slack_bot_token")
            .unwrap();
        assert!(secret.message.contains("environment"));
    }

    #[test]
    fn wrong_types_and_syntax_errors_do_not_panic() {
        for text in [
            "[database]\nurl = 5",
            "departments = 3",
            "[[departments]]\nname = [1]",
            "not toml = = =",
        ] {
            let err = Config::from_toml(text, "x.toml", no_env).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { .. }), "{text}");
        }
    }

    #[test]
    fn an_empty_file_asks_for_a_department() {
        let err = Config::from_toml("", "x.toml", no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("departments: at least one"), "{err}");
    }
}
