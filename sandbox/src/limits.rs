//! Models of Slack's and Discord's published rate limits, for the fakes to enforce on demand.
//!
//! Owns the limit tables ([`SlackLimits`], [`DiscordLimits`]: every number a pub field, with
//! the platforms' documented values as defaults), the bookkeeping that decides whether one
//! request passes (Slack: GCRA per method, and per channel for `chat.postMessage`; Discord:
//! fixed windows per route bucket and major parameter, plus the global window), and the exact
//! 429 answers and rate-limit headers each platform sends. Also the least time a run of posts
//! can take under a model (`lower_bound_for_posts`), which benchmarks compare against.
//!
//! Must not touch the fakes' data (messages, channels, faults): [`crate::slack`] and
//! [`crate::discord`] call in once per request and apply the verdict. Limits are off unless a
//! test or benchmark turns them on (`set_limits(Some(..))`), so a fake without them behaves
//! exactly as before. Time is real (`std::time::Instant`): tests that need short waits shrink
//! the intervals through the pub fields rather than pausing a clock. Nothing here panics on any
//! field value: arithmetic saturates, a zero limit rejects, a zero interval never limits.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A GCRA (generic cell rate algorithm) rate: one request per `interval` on average, with up
/// to `burst` requests at once.
///
/// The theoretical arrival time `tat` of a key starts at the first request. A request at `t`
/// is allowed iff `t >= max(tat, t) - (burst - 1) * interval`; an allowed request moves `tat`
/// to `max(tat, t) + interval`, a rejected one leaves it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// The emission interval: 60 s divided by the per-minute limit. Zero never limits.
    pub interval: Duration,
    /// Requests allowed back to back before the interval applies; 0 counts as 1.
    pub burst: u32,
}

impl Gcra {
    /// `limit` requests per minute with Slack's headroom for bursts as this model documents
    /// it: `burst = max(1, limit / 10)` (Slack publishes "occasional bursts" without a number).
    /// A limit of 0 yields one request per `u32::MAX` minutes, i.e. effectively none after the
    /// first.
    pub fn per_minute(limit: u32) -> Self {
        let interval = if limit == 0 {
            Duration::from_secs(60).saturating_mul(u32::MAX)
        } else {
            Duration::from_secs(60) / limit
        };
        Self {
            interval,
            burst: (limit / 10).max(1),
        }
    }

    /// The tolerance `(burst - 1) * interval`: how far ahead of now `tat` may run.
    fn tolerance(&self) -> Duration {
        self.interval.saturating_mul(self.burst.max(1) - 1)
    }
}

/// Slack's rate-limit tiers (Web API reference, "Rate limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlackTier {
    /// Tier 1: 1+ per minute.
    One,
    /// Tier 2: 20+ per minute.
    Two,
    /// Tier 3: 50+ per minute.
    Three,
    /// Tier 4: 100+ per minute.
    Four,
}

/// The tier of each Web API method the fake serves (and a few it may serve later), from each
/// method's page in Slack's reference. Methods Slack marks "Special" with a generous limit
/// (`auth.test`, `chat.getPermalink`) are modelled as Tier 4. `chat.postMessage` is absent on
/// purpose: it has no per-method limit, only [`SlackLimits::post_per_channel`].
pub const SLACK_METHOD_TIERS: &[(&str, SlackTier)] = &[
    ("apps.connections.open", SlackTier::One),
    ("auth.test", SlackTier::Four),
    ("chat.delete", SlackTier::Three),
    ("chat.getPermalink", SlackTier::Four),
    ("chat.postEphemeral", SlackTier::Four),
    ("chat.update", SlackTier::Three),
    ("conversations.history", SlackTier::Three),
    ("conversations.info", SlackTier::Three),
    ("conversations.open", SlackTier::Three),
    ("conversations.replies", SlackTier::Three),
    ("files.completeUploadExternal", SlackTier::Four),
    ("files.getUploadURLExternal", SlackTier::Four),
    ("reactions.add", SlackTier::Three),
    ("usergroups.users.list", SlackTier::Two),
    ("users.info", SlackTier::Four),
    ("views.open", SlackTier::Four),
    ("views.update", SlackTier::Four),
];

/// Slack's Web API limits for one workspace (the fake has one).
///
/// Defaults: Tier 1 = 1/min (burst 1), Tier 2 = 20/min (burst 2), Tier 3 = 50/min (burst 5),
/// Tier 4 = 100/min (burst 10), methods as in [`SLACK_METHOD_TIERS`], unlisted methods Tier 3,
/// and `chat.postMessage` at 1 per second per channel with a burst of 3.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackLimits {
    /// Tier 1 rate, per method.
    pub tier1: Gcra,
    /// Tier 2 rate, per method.
    pub tier2: Gcra,
    /// Tier 3 rate, per method.
    pub tier3: Gcra,
    /// Tier 4 rate, per method.
    pub tier4: Gcra,
    /// Method → tier; starts as [`SLACK_METHOD_TIERS`].
    pub methods: BTreeMap<String, SlackTier>,
    /// The tier of a method not in `methods`.
    pub unlisted: SlackTier,
    /// `chat.postMessage`, per channel (Slack: "1 message per second per channel, short
    /// bursts allowed"), keyed by the `channel` argument as sent (a user id is its own key,
    /// not the DM it resolves to); no per-method limit applies to it.
    pub post_per_channel: Gcra,
}

impl Default for SlackLimits {
    fn default() -> Self {
        Self {
            tier1: Gcra::per_minute(1),
            tier2: Gcra::per_minute(20),
            tier3: Gcra::per_minute(50),
            tier4: Gcra::per_minute(100),
            methods: SLACK_METHOD_TIERS
                .iter()
                .map(|(m, t)| (m.to_string(), *t))
                .collect(),
            unlisted: SlackTier::Three,
            post_per_channel: Gcra {
                interval: Duration::from_secs(1),
                burst: 3,
            },
        }
    }
}

impl SlackLimits {
    /// The rate of a tier.
    pub fn rate(&self, tier: SlackTier) -> Gcra {
        match tier {
            SlackTier::One => self.tier1,
            SlackTier::Two => self.tier2,
            SlackTier::Three => self.tier3,
            SlackTier::Four => self.tier4,
        }
    }

    /// The tier `method` is limited under.
    pub fn tier_of(&self, method: &str) -> SlackTier {
        self.methods.get(method).copied().unwrap_or(self.unlisted)
    }

    /// The least time from the first post to the last that the model allows, given how many
    /// posts go to each channel: the max over channels of
    /// `max(0, n - burst) * post_per_channel.interval`.
    pub fn lower_bound_for_posts(&self, posts_per_channel: &[usize]) -> Duration {
        let rate = self.post_per_channel;
        let burst = rate.burst.max(1) as usize;
        posts_per_channel
            .iter()
            .map(|&n| {
                let waits = u32::try_from(n.saturating_sub(burst)).unwrap_or(u32::MAX);
                rate.interval.saturating_mul(waits)
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// The Slack fake's limiter: the model and each key's theoretical arrival time.
#[derive(Debug)]
pub(crate) struct SlackLimiter {
    limits: SlackLimits,
    /// Times are kept as offsets from `origin` so no `Instant` arithmetic can overflow.
    origin: Instant,
    tat: HashMap<String, Duration>,
}

impl SlackLimiter {
    pub(crate) fn new(limits: SlackLimits) -> Self {
        Self {
            limits,
            origin: Instant::now(),
            tat: HashMap::new(),
        }
    }

    /// Decides one call of `method` (with its `channel` argument, which only
    /// `chat.postMessage` uses) arriving `now`. On a rejection returns the bucket's name and
    /// how long until the call would pass (answer it with [`slack_ratelimited`]).
    pub(crate) fn check(
        &mut self,
        method: &str,
        channel: Option<&str>,
        now: Instant,
    ) -> Result<(), (String, Duration)> {
        let (key, rate) = if method == "chat.postMessage" {
            let key = match channel {
                Some(c) => format!("{method} {c}"),
                None => method.to_string(),
            };
            (key, self.limits.post_per_channel)
        } else {
            let tier = self.limits.tier_of(method);
            (method.to_string(), self.limits.rate(tier))
        };
        let t = now.saturating_duration_since(self.origin);
        gcra(&mut self.tat, &key, rate, t).map_err(|wait| (key, wait))
    }
}

/// One GCRA decision for `key` at offset `t`: `Err(wait)` until the request would pass.
fn gcra(
    tats: &mut HashMap<String, Duration>,
    key: &str,
    rate: Gcra,
    t: Duration,
) -> Result<(), Duration> {
    let tat = tats.get(key).copied().unwrap_or(t).max(t);
    let allowed_at = tat.saturating_sub(rate.tolerance());
    if t >= allowed_at {
        tats.insert(key.to_string(), tat.saturating_add(rate.interval));
        Ok(())
    } else {
        Err(allowed_at - t)
    }
}

/// Whole seconds, rounded up and at least 1: what a `Retry-After` header carries.
fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0));
    whole.max(1)
}

/// Slack's answer to a rate-limited call: HTTP 429, `Retry-After` in whole seconds and
/// `{"ok": false, "error": "ratelimited"}`.
pub(crate) fn slack_ratelimited(wait: Duration) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, retry_after_secs(wait).to_string())],
        axum::Json(json!({ "ok": false, "error": "ratelimited" })),
    )
        .into_response()
}

/// A Discord fixed window: up to `limit` requests in `per`, the window starting at the first
/// request after the previous one ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Requests allowed per window; 0 rejects every request.
    pub limit: u32,
    /// The window's length; zero never limits.
    pub per: Duration,
}

/// Discord's REST limits, as a small table of buckets.
///
/// Defaults: creating a message 5 per 5 s per channel; editing one 5 per 5 s per channel (its
/// own bucket); interaction callbacks (`/interactions/…`, exempt from the global limit) 50 per
/// second per interaction; every other route 50 per second per major parameter (channel,
/// guild or webhook in the path) and route; and globally 50 requests per second.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscordLimits {
    /// `POST /channels/{channel_id}/messages`, per channel.
    pub create_message: Window,
    /// `PATCH /channels/{channel_id}/messages/{message_id}`, per channel.
    pub edit_message: Window,
    /// `/interactions/{interaction_id}/{interaction_token}/callback`, per interaction; not
    /// counted in the global window, as Discord exempts interaction endpoints.
    pub interaction_callback: Window,
    /// Every other route, per route and major parameter.
    pub default_route: Window,
    /// Every request except interaction callbacks, across all routes.
    pub global: Window,
}

impl Default for DiscordLimits {
    fn default() -> Self {
        let per_second = Window {
            limit: 50,
            per: Duration::from_secs(1),
        };
        let five_per_five = Window {
            limit: 5,
            per: Duration::from_secs(5),
        };
        Self {
            create_message: five_per_five,
            edit_message: five_per_five,
            interaction_callback: per_second,
            default_route: per_second,
            global: per_second,
        }
    }
}

impl DiscordLimits {
    /// The bucket of a route (`method` and OpenAPI template), and whether the global limit
    /// applies to it.
    pub fn window_for(&self, method: &str, route: &str) -> (Window, bool) {
        match (method, route) {
            ("POST", "/channels/{channel_id}/messages") => (self.create_message, true),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}") => (self.edit_message, true),
            _ if route.starts_with("/interactions/") => (self.interaction_callback, false),
            _ => (self.default_route, true),
        }
    }

    /// The least time from the first message create to the last that the model allows, given
    /// how many go to each channel: the max of, per channel, the full windows the posts need
    /// before the last one (`(n - 1) / limit * per`), and the same for the global window over
    /// all posts. `Duration::MAX` when a needed limit is 0.
    pub fn lower_bound_for_posts(&self, posts_per_channel: &[usize]) -> Duration {
        fn windows(n: usize, w: Window) -> Duration {
            if n <= 1 {
                return Duration::ZERO;
            }
            if w.limit == 0 {
                return Duration::MAX;
            }
            let full = (n - 1) / w.limit as usize;
            w.per
                .saturating_mul(u32::try_from(full).unwrap_or(u32::MAX))
        }
        let per_channel = posts_per_channel
            .iter()
            .map(|&n| windows(n, self.create_message))
            .max()
            .unwrap_or(Duration::ZERO);
        let total = posts_per_channel
            .iter()
            .fold(0usize, |a, &n| a.saturating_add(n));
        per_channel.max(windows(total, self.global))
    }
}

/// A stable, opaque bucket id for a route key (`METHOD /template`), as Discord's
/// `X-RateLimit-Bucket` is: hex of the first 16 bytes of its SHA-256.
pub fn bucket_hash(route_key: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(route_key.as_bytes())[..16])
}

/// The major parameter in a concrete path (after `/api/v10`): the channel id, the webhook or
/// interaction id with its token, or the guild id; empty when the route has none.
pub fn major_parameter(path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["channels", id, ..] => (*id).to_string(),
        ["webhooks" | "interactions", id, token, ..] => format!("{id}/{token}"),
        ["webhooks", id] => (*id).to_string(),
        _ => parts
            .windows(2)
            .find(|w| w[0] == "guilds")
            .map(|w| w[1].to_string())
            .unwrap_or_default(),
    }
}

/// A fixed window in progress: when it started (an offset from the limiter's origin) and how
/// many requests it has admitted.
#[derive(Debug, Clone, Copy)]
struct Open {
    start: Duration,
    count: u32,
}

impl Open {
    /// The window live at `t` (a fresh one when none is, or the last has ended).
    fn current(last: Option<Open>, per: Duration, t: Duration) -> Open {
        match last {
            Some(o) if t.saturating_sub(o.start) < per => o,
            _ => Open { start: t, count: 0 },
        }
    }

    fn reset_after(&self, per: Duration, t: Duration) -> Duration {
        per.saturating_sub(t.saturating_sub(self.start))
    }
}

/// What the Discord limiter decided about one request.
#[derive(Debug)]
pub(crate) enum DiscordVerdict {
    /// Passed; set these bucket headers on the route's answer.
    Pass(Vec<(HeaderName, HeaderValue)>),
    /// Rejected: the bucket's name (`global` for the global limit) and the 429 to send.
    Limited(String, Response),
}

/// The Discord fake's limiter: the model and each bucket's window.
#[derive(Debug)]
pub(crate) struct DiscordLimiter {
    limits: DiscordLimits,
    origin: Instant,
    /// Bucket name (`METHOD /template major`) → its window.
    buckets: HashMap<String, Open>,
    global: Option<Open>,
}

impl DiscordLimiter {
    pub(crate) fn new(limits: DiscordLimits) -> Self {
        Self {
            limits,
            origin: Instant::now(),
            buckets: HashMap::new(),
            global: None,
        }
    }

    /// Decides one request (`method`, its route template and concrete path) arriving `now`.
    /// A rejected request counts in neither its bucket nor the global window.
    pub(crate) fn check(
        &mut self,
        method: &str,
        route: &str,
        path: &str,
        now: Instant,
    ) -> DiscordVerdict {
        let t = now.saturating_duration_since(self.origin);
        let route_key = format!("{method} {route}");
        let major = major_parameter(path);
        let name = if major.is_empty() {
            route_key.clone()
        } else {
            format!("{route_key} {major}")
        };
        let (window, global_applies) = self.limits.window_for(method, route);
        let mut open = Open::current(self.buckets.get(&name).copied(), window.per, t);
        let reset_after = open.reset_after(window.per, t);
        let mut headers = vec![
            ("x-ratelimit-limit", window.limit.to_string()),
            ("x-ratelimit-reset", reset_at(reset_after)),
            ("x-ratelimit-reset-after", secs3(reset_after)),
            ("x-ratelimit-bucket", bucket_hash(&route_key)),
        ];
        // A zero-length window never limits.
        if !window.per.is_zero() && open.count >= window.limit {
            headers.push(("x-ratelimit-remaining", "0".into()));
            headers.push(("x-ratelimit-scope", "user".into()));
            headers.push(("retry-after", retry_after_secs(reset_after).to_string()));
            let body = json!({
                "message": "You are being rate limited.",
                "retry_after": millis(reset_after),
                "global": false,
                "code": 0
            });
            return DiscordVerdict::Limited(name, discord_429(body, headers));
        }
        if global_applies && !self.limits.global.per.is_zero() {
            let g = self.limits.global;
            let mut gopen = Open::current(self.global, g.per, t);
            if gopen.count >= g.limit {
                let wait = gopen.reset_after(g.per, t);
                // Discord's global 429 carries no bucket headers, only these.
                let headers = vec![
                    ("x-ratelimit-global", "true".to_string()),
                    ("x-ratelimit-scope", "global".to_string()),
                    ("retry-after", retry_after_secs(wait).to_string()),
                ];
                let body = json!({
                    "message": "You are being rate limited.",
                    "retry_after": millis(wait),
                    "global": true,
                    "code": 0
                });
                return DiscordVerdict::Limited("global".into(), discord_429(body, headers));
            }
            gopen.count += 1;
            self.global = Some(gopen);
        }
        open.count = open.count.saturating_add(1);
        self.buckets.insert(name, open);
        headers.push((
            "x-ratelimit-remaining",
            window.limit.saturating_sub(open.count).to_string(),
        ));
        DiscordVerdict::Pass(to_header_pairs(headers))
    }
}

/// Sets the limiter's bucket headers on a route's answer, replacing any already there.
pub(crate) fn apply_headers(response: &mut Response, headers: Vec<(HeaderName, HeaderValue)>) {
    let h = response.headers_mut();
    for (name, value) in headers {
        h.insert(name, value);
    }
}

fn to_header_pairs(headers: Vec<(&'static str, String)>) -> Vec<(HeaderName, HeaderValue)> {
    // Every value here is digits, hex or a fixed word; one that somehow is not a valid header
    // value is left out rather than panicking.
    headers
        .into_iter()
        .filter_map(|(n, v)| Some((HeaderName::from_static(n), HeaderValue::from_str(&v).ok()?)))
        .collect()
}

fn discord_429(body: serde_json::Value, headers: Vec<(&'static str, String)>) -> Response {
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let h: &mut HeaderMap = r.headers_mut();
    for (name, value) in to_header_pairs(headers) {
        h.insert(name, value);
    }
    r
}

/// Seconds with three decimals, as Discord writes `X-RateLimit-Reset-After`.
fn secs3(d: Duration) -> String {
    format!("{:.3}", millis(d))
}

/// Seconds rounded to the millisecond, as Discord's `retry_after`.
fn millis(d: Duration) -> f64 {
    (d.as_millis() as f64) / 1000.0
}

/// The Unix time (seconds with fraction) `after` from now, as `X-RateLimit-Reset`.
fn reset_at(after: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    secs3(now.saturating_add(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn gcra_allows_the_burst_then_one_per_interval() {
        let rate = Gcra {
            interval: ms(1000),
            burst: 3,
        };
        let mut tats = HashMap::new();
        for _ in 0..3 {
            assert_eq!(gcra(&mut tats, "k", rate, ms(0)), Ok(()));
        }
        assert_eq!(gcra(&mut tats, "k", rate, ms(0)), Err(ms(1000)));
        // A rejection does not push the next allowed time further out.
        assert_eq!(gcra(&mut tats, "k", rate, ms(400)), Err(ms(600)));
        assert_eq!(gcra(&mut tats, "k", rate, ms(1000)), Ok(()));
        assert_eq!(gcra(&mut tats, "k", rate, ms(1000)), Err(ms(1000)));
        // Another key is independent.
        assert_eq!(gcra(&mut tats, "other", rate, ms(1000)), Ok(()));
        // After a long quiet spell the whole burst is back, no more.
        for _ in 0..3 {
            assert_eq!(gcra(&mut tats, "k", rate, ms(60_000)), Ok(()));
        }
        assert!(gcra(&mut tats, "k", rate, ms(60_000)).is_err());
    }

    #[test]
    fn gcra_survives_extreme_fields() {
        let mut tats = HashMap::new();
        let never = Gcra {
            interval: Duration::ZERO,
            burst: 0,
        };
        for _ in 0..100 {
            assert_eq!(gcra(&mut tats, "z", never, ms(5)), Ok(()));
        }
        let huge = Gcra {
            interval: Duration::MAX,
            burst: u32::MAX,
        };
        assert_eq!(gcra(&mut tats, "h", huge, ms(5)), Ok(()));
        let zero_limit = Gcra::per_minute(0);
        assert_eq!(gcra(&mut tats, "o", zero_limit, ms(5)), Ok(()));
        assert!(gcra(&mut tats, "o", zero_limit, ms(6)).is_err());
    }

    #[test]
    fn slack_defaults_follow_the_documented_tiers() {
        let l = SlackLimits::default();
        assert_eq!(
            l.tier1,
            Gcra {
                interval: ms(60_000),
                burst: 1
            }
        );
        assert_eq!(
            l.tier2,
            Gcra {
                interval: ms(3_000),
                burst: 2
            }
        );
        assert_eq!(
            l.tier3,
            Gcra {
                interval: ms(1_200),
                burst: 5
            }
        );
        assert_eq!(
            l.tier4,
            Gcra {
                interval: ms(600),
                burst: 10
            }
        );
        assert_eq!(l.tier_of("conversations.replies"), SlackTier::Three);
        assert_eq!(l.tier_of("usergroups.users.list"), SlackTier::Two);
        assert_eq!(l.tier_of("apps.connections.open"), SlackTier::One);
        assert_eq!(l.tier_of("users.info"), SlackTier::Four);
        assert_eq!(l.tier_of("no.such.method"), SlackTier::Three);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(ms(200)), 1);
        assert_eq!(retry_after_secs(ms(1000)), 1);
        assert_eq!(retry_after_secs(ms(1001)), 2);
        assert_eq!(retry_after_secs(ms(47_000)), 47);
    }

    #[test]
    fn major_parameters_are_read_from_the_path() {
        assert_eq!(major_parameter("channels/12/messages/34"), "12");
        assert_eq!(major_parameter("guilds/7/members/9"), "7");
        assert_eq!(major_parameter("applications/9/guilds/7/commands"), "7");
        assert_eq!(
            major_parameter("webhooks/9/tok/messages/@original"),
            "9/tok"
        );
        assert_eq!(major_parameter("interactions/5/tok/callback"), "5/tok");
        assert_eq!(major_parameter("users/@me"), "");
        assert_eq!(major_parameter(""), "");
    }

    #[test]
    fn bucket_hashes_are_stable_and_distinct() {
        let a = bucket_hash("POST /channels/{channel_id}/messages");
        assert_eq!(a, bucket_hash("POST /channels/{channel_id}/messages"));
        assert_eq!(a.len(), 32);
        assert_ne!(
            a,
            bucket_hash("PATCH /channels/{channel_id}/messages/{message_id}")
        );
    }

    #[test]
    fn discord_windows_fill_then_reset() {
        let mut l = DiscordLimiter::new(DiscordLimits::default());
        let t0 = l.origin;
        let route = "/channels/{channel_id}/messages";
        for _ in 0..5 {
            assert!(matches!(
                l.check("POST", route, "channels/1/messages", t0),
                DiscordVerdict::Pass(_)
            ));
        }
        match l.check("POST", route, "channels/1/messages", t0 + ms(1000)) {
            DiscordVerdict::Limited(name, r) => {
                assert_eq!(name, "POST /channels/{channel_id}/messages 1");
                assert_eq!(r.headers()["retry-after"], "4");
                assert_eq!(r.headers()["x-ratelimit-reset-after"], "4.000");
            }
            other => panic!("expected a 429, got {other:?}"),
        }
        // The window ends 5 s after its first request; the next starts at the next request.
        assert!(matches!(
            l.check("POST", route, "channels/1/messages", t0 + ms(5000)),
            DiscordVerdict::Pass(_)
        ));
        // Interaction callbacks are not in the global window, whatever its size.
        let mut l = DiscordLimiter::new(DiscordLimits {
            global: Window {
                limit: 1,
                per: ms(1000),
            },
            ..DiscordLimits::default()
        });
        let cb = "/interactions/{interaction_id}/{interaction_token}/callback";
        for i in 0..3 {
            let path = format!("interactions/{i}/tok/callback");
            assert!(matches!(
                l.check("POST", cb, &path, t0),
                DiscordVerdict::Pass(_)
            ));
        }
        assert!(matches!(
            l.check("GET", "/users/@me", "users/@me", t0),
            DiscordVerdict::Pass(_)
        ));
        assert!(matches!(
            l.check("GET", "/users/@me", "users/@me", t0),
            DiscordVerdict::Limited(ref n, _) if n == "global"
        ));
    }

    #[test]
    fn discord_zero_fields_do_not_panic() {
        let mut l = DiscordLimiter::new(DiscordLimits {
            create_message: Window {
                limit: 0,
                per: ms(100),
            },
            default_route: Window {
                limit: 0,
                per: Duration::ZERO,
            },
            global: Window {
                limit: 0,
                per: Duration::MAX,
            },
            ..DiscordLimits::default()
        });
        let now = Instant::now();
        assert!(matches!(
            l.check("POST", "/channels/{channel_id}/messages", "channels/1/messages", now),
            DiscordVerdict::Limited(ref n, _) if n != "global"
        ));
        assert!(matches!(
            l.check("GET", "/users/@me", "users/@me", now),
            DiscordVerdict::Limited(ref n, _) if n == "global"
        ));
        assert_eq!(l.limits.lower_bound_for_posts(&[2]), Duration::MAX);
    }

    #[test]
    fn lower_bounds_on_simple_inputs() {
        let s = SlackLimits::default();
        assert_eq!(s.lower_bound_for_posts(&[]), Duration::ZERO);
        assert_eq!(s.lower_bound_for_posts(&[3]), Duration::ZERO);
        assert_eq!(s.lower_bound_for_posts(&[50]), Duration::from_secs(47));
        assert_eq!(
            s.lower_bound_for_posts(&[50, 10, 0]),
            Duration::from_secs(47)
        );
        let d = DiscordLimits::default();
        assert_eq!(d.lower_bound_for_posts(&[]), Duration::ZERO);
        assert_eq!(d.lower_bound_for_posts(&[1]), Duration::ZERO);
        assert_eq!(d.lower_bound_for_posts(&[5]), Duration::ZERO);
        assert_eq!(d.lower_bound_for_posts(&[6]), Duration::from_secs(5));
        assert_eq!(d.lower_bound_for_posts(&[50, 3]), Duration::from_secs(45));
        // 100 channels of 2 posts: each channel needs no wait, but 200 posts need 3 more
        // global windows after the first.
        assert_eq!(d.lower_bound_for_posts(&[2; 100]), Duration::from_secs(3));
    }
}
