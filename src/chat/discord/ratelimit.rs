//! Discord's rate limits as the REST client keeps them.
//!
//! Owns three things. **Buckets**: Discord announces each route's bucket in its answers
//! (`X-RateLimit-Bucket`, `-Limit`, `-Remaining`, `-Reset-After`); requests sharing a bucket
//! and a major parameter (channel, guild, webhook) share a fixed window. A route not seen yet
//! sends one request at a time until its first answer tells its bucket; after that its calls
//! go `limit` per window (the window a little longer than Discord's, so arrival jitter never
//! puts one more in a server's window), starting from Discord's own count of the window the
//! first answer reported, and a bucket whose answer says nothing remains waits for its reset.
//! **The global limit**: every request but interaction callbacks counts against Discord's 50 per
//! second for the bot, paced below that ([`crate::config::DiscordLimits`]). **Invalid
//! requests**: 401, 403 and 429 answers (but 429s of a shared resource, which Discord does not
//! count) are counted over ten minutes, and the client stops calling before Discord's ban
//! threshold. The scheduling itself is [`crate::chat::pace`]'s.
//!
//! Against `discord.com` serenity's own limiter keeps the buckets and retries 429s inside its
//! request; this module then adds the global pace and the invalid-request count only. Must not
//! send requests or decide what a failure means beyond waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;

use crate::chat::pace::{PaceStats, Pacer, Rate, Wait, DEFAULT_MAX_HOLD};
use crate::config::DiscordLimits;

/// Discord's window for invalid requests.
const INVALID_WINDOW: Duration = Duration::from_secs(600);

/// How often a request waiting for a new route's first answer looks again.
const DISCOVERY_POLL: Duration = Duration::from_millis(10);

/// Spacing margin over a bucket's window, so calls sent `limit` per window never arrive
/// `limit + 1` in one server window.
fn margin(per: Duration) -> Duration {
    (per / 10).max(Duration::from_millis(100))
}

/// A request's place in the limits, from its method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    /// Method and path with ids replaced (`POST /channels/{major}/messages`): what Discord maps
    /// to a bucket.
    pub route: String,
    /// The major parameter's value (channel, guild or webhook id), or empty.
    pub major: String,
    /// An interaction callback or follow-up, exempt from the global limit.
    pub interaction: bool,
}

impl RouteKey {
    /// The key of `method` on `path` (`/channels/123/messages/456`, no query).
    pub fn of(method: &str, path: &str) -> Self {
        let mut route = String::with_capacity(path.len() + 8);
        route.push_str(method);
        route.push(' ');
        let mut major = String::new();
        let mut previous = "";
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let interaction = matches!(segments.first(), Some(&"interactions"))
            || (segments.first() == Some(&"webhooks") && segments.len() >= 3);
        for seg in &segments {
            route.push('/');
            let id = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
            let token = seg.len() > 32 && !id;
            if id && major.is_empty() && matches!(previous, "channels" | "guilds" | "webhooks") {
                major.push_str(seg);
                route.push_str("{major}");
            } else if id {
                route.push_str("{id}");
            } else if token {
                route.push_str("{token}");
            } else if previous == "reactions" {
                route.push_str("{emoji}");
            } else {
                route.push_str(seg);
            }
            previous = seg;
        }
        Self {
            route,
            major,
            interaction,
        }
    }
}

/// The headers of an answer that matter here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `X-RateLimit-Bucket`.
    pub bucket: Option<String>,
    /// `X-RateLimit-Limit`.
    pub limit: Option<u32>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset-After`, seconds.
    pub reset_after: Option<f64>,
    /// `X-RateLimit-Scope` (`user`, `global`, `shared`).
    pub scope: Option<String>,
    /// A global 429 (`X-RateLimit-Global` or the body's `global`).
    pub global: bool,
    /// The wait a 429 asked for, seconds.
    pub retry_after: Option<f64>,
}

impl Answer {
    /// Reads the rate-limit headers of an answer.
    pub fn from_headers(status: u16, headers: &reqwest::header::HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Self {
            status,
            bucket: text("x-ratelimit-bucket"),
            limit: text("x-ratelimit-limit").and_then(|v| v.parse().ok()),
            remaining: text("x-ratelimit-remaining").and_then(|v| v.parse().ok()),
            reset_after: text("x-ratelimit-reset-after")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0),
            scope: text("x-ratelimit-scope"),
            global: text("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            retry_after: text("retry-after")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0),
        }
    }
}

/// What one bucket is known to allow.
#[derive(Debug, Clone, Copy)]
struct Learned {
    limit: u32,
    per: Duration,
}

/// Counters kept for metrics (clones share their counts).
#[derive(Debug, Clone, Default)]
pub struct LimitStats {
    /// 401, 403 and counted 429 answers.
    pub invalid: Counter,
    /// 429 answers.
    pub rate_limited: Counter,
    /// Calls refused here because the invalid-request budget was spent.
    pub held_back: Counter,
}

/// Discord's limits for one bot token in this process.
#[derive(Debug)]
pub struct Limits {
    pacer: Pacer,
    global: Rate,
    /// Bucket id by route, from answers.
    routes: Mutex<HashMap<String, String>>,
    /// Limit and window by bucket id.
    learned: Mutex<HashMap<String, Learned>>,
    /// Routes with a first request in flight.
    discovering: Mutex<HashMap<String, Instant>>,
    invalid: Mutex<VecDeque<Instant>>,
    invalid_budget: usize,
    /// Discord's ten minutes (shorter in tests).
    invalid_window: Duration,
    instances: u32,
    /// What happened, for metrics.
    pub stats: LimitStats,
}

impl Limits {
    /// Limits for `limits` (the global pace, the invalid-request budget, the instance share).
    pub fn new(limits: DiscordLimits) -> Self {
        Self::with_stats(limits, PaceStats::default(), LimitStats::default())
    }

    /// The same, counting into the given counters.
    pub fn with_stats(limits: DiscordLimits, pace: PaceStats, stats: LimitStats) -> Self {
        Self::build(limits, pace, stats, DEFAULT_MAX_HOLD)
    }

    fn build(
        limits: DiscordLimits,
        pace: PaceStats,
        stats: LimitStats,
        max_hold: Duration,
    ) -> Self {
        let g = limits.global_per_second.max(1);
        let global = Rate::spread((g * 4 / 5).max(1), Duration::from_secs(1), (g / 10).max(1))
            .shared_by(limits.instances);
        Self {
            pacer: Pacer::with_stats(max_hold, pace),
            global,
            routes: Mutex::default(),
            learned: Mutex::default(),
            discovering: Mutex::default(),
            invalid: Mutex::default(),
            invalid_window: INVALID_WINDOW,
            invalid_budget: (limits.invalid_per_10_minutes / limits.instances.max(1)).max(1)
                as usize,
            instances: limits.instances.max(1),
            stats,
        }
    }

    /// The scheduling counters (waits and deferrals).
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// Waits until `key` may be sent; with `buckets` false (serenity keeps them) only the
    /// global pace and the invalid-request budget apply. A wait longer than a moment is
    /// answered instead (the caller reschedules). `booking` keeps a deferred call's slot.
    pub async fn before(
        &self,
        key: &RouteKey,
        buckets: bool,
        booking: Option<&str>,
    ) -> Result<(), Wait> {
        self.check_invalid()?;
        // One discovery per route, whatever its major parameter: a first request to another
        // channel sent meanwhile would count in a window the answer does not describe.
        let state = key.route.clone();
        let mut waited = Duration::ZERO;
        loop {
            let bucket = if buckets { self.bucket_of(key) } else { None };
            match bucket {
                None if buckets => {
                    // A route not seen yet: one request at a time until an answer tells its bucket.
                    let free = {
                        let mut d = lock(&self.discovering);
                        let now = Instant::now();
                        match d.get(&state) {
                            Some(since) if now.duration_since(*since) < Duration::from_secs(30) => {
                                false
                            }
                            _ => {
                                d.insert(state.clone(), now);
                                true
                            }
                        }
                    };
                    if free {
                        let r = self.take(&[], key, booking).await;
                        if r.is_err() {
                            // Not sent after all: the next request may discover the bucket.
                            lock(&self.discovering).remove(&state);
                        }
                        return r;
                    }
                    if waited >= self.pacer.max_hold() {
                        return Err(Wait(Duration::from_secs(1)));
                    }
                    tokio::time::sleep(DISCOVERY_POLL).await;
                    waited += DISCOVERY_POLL;
                }
                None => return self.take(&[], key, booking).await,
                Some((id, rate)) => {
                    let name = bucket_name(&id, &key.major);
                    return self.take(&[(&name, rate)], key, booking).await;
                }
            }
        }
    }

    /// Takes the slots of `extra` and the global pace (unless exempt).
    async fn take(
        &self,
        extra: &[(&str, Rate)],
        key: &RouteKey,
        booking: Option<&str>,
    ) -> Result<(), Wait> {
        let mut buckets: Vec<(&str, Rate)> = extra.to_vec();
        if !key.interaction {
            buckets.push(("global", self.global));
        }
        self.pacer.acquire(&buckets, booking).await
    }

    /// The bucket a route is known to be in, with the rate its calls are spread at.
    fn bucket_of(&self, key: &RouteKey) -> Option<(String, Rate)> {
        let id = lock(&self.routes).get(&key.route)?.clone();
        let l = *lock(&self.learned).get(&id)?;
        let rate = Rate::windows(l.limit.max(1), l.per + margin(l.per)).shared_by(self.instances);
        Some((id, rate))
    }

    /// Learns from the answer to a request of `key`.
    pub fn after(&self, key: &RouteKey, answer: &Answer) {
        tracing::debug!(
            route = %key.route,
            major = %key.major,
            status = answer.status,
            remaining = ?answer.remaining,
            reset_after = ?answer.reset_after,
            "Discord answered"
        );
        lock(&self.discovering).remove(&key.route);
        if let (Some(id), Some(limit)) = (&answer.bucket, answer.limit) {
            let new = lock(&self.routes)
                .insert(key.route.clone(), id.clone())
                .is_none();
            let seen = Duration::from_secs_f64(answer.reset_after.unwrap_or(1.0).min(3600.0));
            let mut learned = lock(&self.learned);
            let l = learned
                .entry(id.clone())
                .or_insert(Learned { limit, per: seen });
            l.limit = limit;
            // The first answer of a window tells the whole window; later ones less.
            l.per = l.per.max(seen);
            drop(learned);
            if new {
                // Start from Discord's own count of the window the first request opened.
                if let Some((id, rate)) = self.bucket_of(key) {
                    let used = limit.saturating_sub(answer.remaining.unwrap_or(0));
                    self.pacer.seed_window(
                        &bucket_name(&id, &key.major),
                        rate,
                        used,
                        seen + margin(seen),
                    );
                }
            }
            if answer.remaining == Some(0) && answer.status != 429 {
                // Spent (perhaps by another process): nothing more until the reset.
                self.pacer.block(&bucket_name(id, &key.major), seen);
            }
        }
        match answer.status {
            429 => {
                self.stats.rate_limited.inc();
                tracing::info!(
                    route = %key.route,
                    major = %key.major,
                    bucket = ?answer.bucket,
                    retry_after = ?answer.retry_after,
                    scope = ?answer.scope,
                    "Discord answered 429"
                );
                let wait = Duration::from_secs_f64(
                    answer
                        .retry_after
                        .or(answer.reset_after)
                        .unwrap_or(1.0)
                        .min(3600.0),
                );
                if answer.global || answer.scope.as_deref() == Some("global") {
                    tracing::warn!(?wait, "Discord answered a global 429; every call waits");
                    self.pacer.block("global", wait);
                } else if let Some(id) = &answer.bucket {
                    self.pacer.block(&bucket_name(id, &key.major), wait);
                } else {
                    self.pacer.block(&bucket_name(&key.route, &key.major), wait);
                }
                if answer.scope.as_deref() != Some("shared") {
                    self.note_invalid();
                }
            }
            401 | 403 => self.note_invalid(),
            _ => {}
        }
    }

    fn note_invalid(&self) {
        self.stats.invalid.inc();
        let now = Instant::now();
        let mut q = lock(&self.invalid);
        q.push_back(now);
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.invalid_window)
        {
            q.pop_front();
        }
        if q.len() == self.invalid_budget {
            tracing::error!(
                count = q.len(),
                "Discord refused this many requests (401, 403, 429) in ten minutes; calls stop until the window has room, before Discord bans the bot's address"
            );
        }
    }

    /// Refuses calls while the last ten minutes hold the whole invalid-request budget.
    fn check_invalid(&self) -> Result<(), Wait> {
        let now = Instant::now();
        let mut q = lock(&self.invalid);
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.invalid_window)
        {
            q.pop_front();
        }
        if q.len() >= self.invalid_budget {
            self.stats.held_back.inc();
            let oldest = q.front().copied().unwrap_or(now);
            return Err(Wait(
                (oldest + self.invalid_window)
                    .saturating_duration_since(now)
                    .max(Duration::from_secs(1)),
            ));
        }
        Ok(())
    }
}

/// The pacer's name for a bucket (or, before its id is known, a route) with its major
/// parameter: the same name wherever a call is paced or a refusal blocks it.
fn bucket_name(id: &str, major: &str) -> String {
    format!("{id}|{major}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Limits whose calls wait at most 300 ms for a slot.
    fn limits() -> Limits {
        Limits::build(
            DiscordLimits::default(),
            PaceStats::default(),
            LimitStats::default(),
            Duration::from_millis(300),
        )
    }

    fn answer(bucket: &str, limit: u32, remaining: u32, reset_after: f64) -> Answer {
        Answer {
            status: 200,
            bucket: Some(bucket.into()),
            limit: Some(limit),
            remaining: Some(remaining),
            reset_after: Some(reset_after),
            ..Answer::default()
        }
    }

    fn waits_about(r: Result<(), Wait>, secs: u64) -> bool {
        matches!(r, Err(Wait(w)) if w <= Duration::from_secs(secs) && w > Duration::from_secs(secs) - Duration::from_millis(500))
    }

    #[test]
    fn routes_keep_their_major_parameter_and_hide_the_rest() {
        let k = RouteKey::of("POST", "/channels/123/messages");
        assert_eq!(k.route, "POST /channels/{major}/messages");
        assert_eq!(k.major, "123");
        let k = RouteKey::of("PATCH", "/channels/123/messages/456");
        assert_eq!(k.route, "PATCH /channels/{major}/messages/{id}");
        let k = RouteKey::of("GET", "/guilds/9/members/8");
        assert_eq!(
            (k.route.as_str(), k.major.as_str()),
            ("GET /guilds/{major}/members/{id}", "9")
        );
        let token = "a".repeat(60);
        let k = RouteKey::of("POST", &format!("/interactions/5/{token}/callback"));
        assert_eq!(k.route, "POST /interactions/{id}/{token}/callback");
        assert!(k.interaction);
        assert!(!RouteKey::of("GET", "/users/@me").interaction);
    }

    #[tokio::test]
    async fn a_new_route_sends_one_request_until_its_bucket_is_known() {
        let l = limits();
        let key = RouteKey::of("POST", "/channels/1/messages");
        l.before(&key, true, None).await.unwrap();
        // A second request waits for the first answer, and gives up after the hold.
        let start = Instant::now();
        assert!(l.before(&key, true, None).await.is_err());
        assert!(start.elapsed() >= Duration::from_millis(300));
        // 5 per 0.1 s, one used by the first request: four more at once, then the next
        // window (0.2 s: Discord's plus the least margin, 100 ms).
        l.after(&key, &answer("b1", 5, 4, 0.1));
        let start = Instant::now();
        for _ in 0..4 {
            l.before(&key, true, None).await.unwrap();
        }
        assert!(start.elapsed() < Duration::from_millis(100));
        l.before(&key, true, None).await.unwrap();
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(170) && took < Duration::from_millis(500),
            "{took:?}"
        );
        // Another channel has its own window of the same bucket.
        let other = RouteKey::of("POST", "/channels/2/messages");
        let start = Instant::now();
        l.before(&other, true, None).await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_429_blocks_its_bucket_or_everything_when_global() {
        let l = limits();
        let key = RouteKey::of("POST", "/channels/1/messages");
        l.after(&key, &answer("b1", 5, 4, 5.0));
        let mut refused = answer("b1", 5, 0, 3.0);
        refused.status = 429;
        refused.retry_after = Some(30.0);
        refused.scope = Some("user".into());
        l.after(&key, &refused);
        assert!(waits_about(l.before(&key, true, None).await, 30));
        let users = RouteKey::of("GET", "/users/5");
        assert!(l.before(&users, true, None).await.is_ok());
        let global = Answer {
            status: 429,
            global: true,
            retry_after: Some(20.0),
            ..Answer::default()
        };
        l.after(&users, &global);
        assert!(waits_about(l.before(&users, false, None).await, 20));
        // Interaction callbacks are not under the global limit.
        let cb = RouteKey::of(
            "POST",
            &format!("/interactions/5/{}/callback", "t".repeat(40)),
        );
        assert!(l.before(&cb, false, None).await.is_ok());
        assert_eq!(l.stats.invalid.get(), 2);
        assert_eq!(l.stats.rate_limited.get(), 2);
    }

    #[tokio::test]
    async fn calls_stop_before_the_invalid_request_ban() {
        let mut l = Limits::new(DiscordLimits {
            invalid_per_10_minutes: 3,
            ..DiscordLimits::default()
        });
        l.invalid_window = Duration::from_millis(300);
        let key = RouteKey::of("GET", "/channels/1");
        let forbidden = Answer {
            status: 403,
            ..Answer::default()
        };
        for _ in 0..3 {
            l.before(&key, false, None).await.unwrap();
            l.after(&key, &forbidden);
        }
        assert!(
            matches!(l.before(&key, false, None).await, Err(Wait(w)) if w >= Duration::from_secs(1)),
            "held back (told to come back in a second at the least)"
        );
        assert_eq!(l.stats.held_back.get(), 1);
        tokio::time::sleep(Duration::from_millis(310)).await;
        assert!(l.before(&key, false, None).await.is_ok());
        // A shared resource's 429 is not Discord's to count.
        let shared = Answer {
            status: 429,
            scope: Some("shared".into()),
            retry_after: Some(1.0),
            ..Answer::default()
        };
        l.after(&key, &shared);
        assert_eq!(l.stats.invalid.get(), 3);
    }
}
