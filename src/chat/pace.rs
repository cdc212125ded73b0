//! Pacing of platform calls before the platform has to refuse them.
//!
//! Owns two models of a bucket. Spread ([`Rate::spread`], the generic cell rate algorithm,
//! "virtual scheduling"): `burst` calls at once and then one per `per / limit`, for platforms
//! that meter calls continuously (Slack). Windows ([`Rate::windows`]): `limit` calls in a window
//! of `per` that starts with its first call, for platforms that reset a count (Discord's
//! buckets). A call may
//! count against several buckets (a Slack post: its method and its channel); it goes at the
//! first moment every one of them allows, and that moment is booked in all of them, so calls
//! made at once are spread out instead of racing for the same slot. A platform's 429 blocks
//! the bucket it concerns for its `Retry-After` ([`Pacer::block`]).
//!
//! A call whose slot is near (within [`Pacer::max_hold`]) waits for it here; one further out
//! is not made: the caller gets the wait ([`Wait`]) and reschedules its work (an outbox or
//! inbox row) instead of holding a worker's place while it sleeps. In spread buckets a caller
//! that names a booking key (the outbox row's key) keeps the slot it was given, so a
//! rescheduled row goes at its slot when it comes back instead of queueing again behind
//! everything booked since; windows buckets book nothing ahead (see [`Pacer::acquire`]). A
//! call refused without a booking is told a later moment than the one refused before it, at
//! the bucket's pace, so a queue comes back a little at a time instead of all at once.
//!
//! Knows nothing of any platform: the adapters choose the buckets and their rates. Must not
//! make calls itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;

/// How many calls a bucket allows: `limit` per `per`, up to `burst` of them at once (spread),
/// or `limit` in each window of `per` (windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Calls per period.
    pub limit: u32,
    /// The period.
    pub per: Duration,
    /// Calls allowed at once (at least 1); spread buckets only.
    pub burst: u32,
    /// Fixed windows instead of a spread.
    pub windows: bool,
}

impl Rate {
    /// `limit` calls per minute, `burst` at once.
    pub const fn per_minute(limit: u32, burst: u32) -> Self {
        Self::spread(limit, Duration::from_secs(60), burst)
    }

    /// `limit` calls per second, `burst` at once.
    pub const fn per_second(limit: u32, burst: u32) -> Self {
        Self::spread(limit, Duration::from_secs(1), burst)
    }

    /// `limit` calls per `per`, `burst` at once, the rest spread evenly.
    pub const fn spread(limit: u32, per: Duration, burst: u32) -> Self {
        Self {
            limit,
            per,
            burst,
            windows: false,
        }
    }

    /// `limit` calls in each window of `per`, a window starting with the first call after the
    /// last one ended.
    pub const fn windows(limit: u32, per: Duration) -> Self {
        Self {
            limit,
            per,
            burst: limit,
            windows: true,
        }
    }

    /// The share of this rate one of `instances` processes sharing a token may use: the same
    /// period with `limit` and `burst` divided (at least one call per period and at once).
    pub fn shared_by(self, instances: u32) -> Self {
        let n = instances.max(1);
        Self {
            limit: (self.limit / n).max(1),
            burst: (self.burst / n).max(1),
            ..self
        }
    }

    /// Time between two calls at the sustained rate.
    pub fn interval(self) -> Duration {
        self.per / self.limit.max(1)
    }

    /// How far ahead of its sustained schedule a bucket may run (the burst).
    fn tolerance(self) -> Duration {
        self.interval() * self.burst.max(1).saturating_sub(1)
    }
}

/// A call was not made: its slot is this far away (or the platform said to wait this long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Duration);

/// One bucket's schedule.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Spread: theoretical arrival time, when the bucket would be back to "no burst used".
    /// Windows: when the last window booked starts.
    tat: Instant,
    /// Windows: calls booked in the window starting at `tat`.
    used: u32,
    /// Nothing goes before this (a platform's 429).
    blocked_until: Instant,
    /// The latest moment handed to calls refused here, and how many of them were told to come
    /// back then (see [`State::queue_behind`]).
    queue_start: Instant,
    queue_used: u32,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            tat: now,
            used: 0,
            blocked_until: now,
            queue_start: now,
            queue_used: 0,
        }
    }

    /// The earliest a call may go at `now` by this bucket alone.
    fn earliest(&self, rate: Rate, now: Instant) -> Instant {
        if !rate.windows {
            return self.tat.checked_sub(rate.tolerance()).unwrap_or(now);
        }
        let end = self.tat + rate.per;
        if end <= now {
            now
        } else if self.used < rate.limit.max(1) {
            self.tat.max(now)
        } else {
            end
        }
    }

    /// Books a call at `at` (no earlier than [`Self::earliest`]).
    fn book(&mut self, rate: Rate, at: Instant) {
        if !rate.windows {
            self.tat = self.tat.max(at) + rate.interval();
        } else if at >= self.tat + rate.per || self.used == 0 {
            self.tat = at;
            self.used = 1;
        } else {
            self.used += 1;
        }
    }
}

/// Counters a pacer keeps, for metrics (clones share their counts, so the telemetry's
/// registered counters can be handed in).
#[derive(Debug, Clone, Default)]
pub struct PaceStats {
    /// Calls that waited for their slot here.
    pub delayed: Counter,
    /// Calls not made because their slot was too far (the caller rescheduled them).
    pub deferred: Counter,
    /// Buckets blocked by a platform's rate-limit answer.
    pub blocked: Counter,
}

/// Bookings kept at most (rows rescheduled and not yet back); older ones are dropped first.
const MAX_BOOKINGS: usize = 100_000;

/// Buckets kept at most; ones idle long enough to be back at full burst are dropped first.
const MAX_BUCKETS: usize = 100_000;

/// A set of buckets by name, shared by every call of one platform client.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
    max_hold: Duration,
    /// What the pacer did, for metrics.
    pub stats: PaceStats,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<String, Bucket>,
    /// Slots given to calls that were rescheduled, by their booking key.
    bookings: HashMap<String, Instant>,
}

impl State {
    /// The bucket `name`, created if new. Past [`MAX_BUCKETS`] the buckets idle for an hour
    /// (and not blocked) go first: windows end a period after `tat`, and an hour covers every
    /// limit the platforms use, so an idle bucket starts afresh exactly as it would have.
    fn bucket(&mut self, name: &str, now: Instant) -> &mut Bucket {
        if !self.buckets.contains_key(name) && self.buckets.len() >= MAX_BUCKETS {
            let idle = Duration::from_secs(3600);
            self.buckets
                .retain(|_, b| b.tat + idle > now || b.blocked_until > now || b.queue_start > now);
        }
        self.buckets
            .entry(name.to_string())
            .or_insert_with(|| Bucket::new(now))
    }

    /// For a call refused because it could not go before `at` (and not booked): when to come
    /// back. Without this every refused call would be told the same moment, all would come
    /// back at once, a few would go and the rest be refused again, round after round: work
    /// growing with the square of the queue. Instead refused calls are told later moments in
    /// turn, at each bucket's own pace (a window's `limit` to each window, one call to each
    /// interval of a spread), from `at` on, so each comes back about when its place is free.
    /// Nothing is booked: a call that comes back takes what is free then like any other.
    fn queue_behind(&mut self, buckets: &[(&str, Rate)], at: Instant, now: Instant) -> Instant {
        let mut back = at;
        for (name, rate) in buckets {
            let (room, step) = if rate.windows {
                (rate.limit.max(1), rate.per)
            } else {
                (1, rate.interval())
            };
            let b = self.bucket(name, now);
            // Only the buckets that hold the call back queue it: another bucket it counts in
            // has room, and its own refused calls must not wait behind this one.
            if b.earliest(*rate, now).max(b.blocked_until) < at {
                continue;
            }
            if b.queue_start < at {
                b.queue_start = at;
                b.queue_used = 0;
            } else if b.queue_used >= room {
                b.queue_start += step;
                b.queue_used = 0;
            }
            b.queue_used += 1;
            back = back.max(b.queue_start);
        }
        back
    }

    /// The latest block among `buckets`, or `otherwise` when none is blocked.
    fn blocked_until(&self, buckets: &[(&str, Rate)], otherwise: Instant) -> Instant {
        buckets
            .iter()
            .filter_map(|(name, _)| self.buckets.get(*name))
            .map(|b| b.blocked_until)
            .max()
            .unwrap_or(otherwise)
    }
}

/// The longest a call waits here for its slot by default; longer waits are the caller's to
/// reschedule.
pub const DEFAULT_MAX_HOLD: Duration = Duration::from_secs(2);

impl Default for Pacer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_HOLD)
    }
}

impl Pacer {
    /// A pacer whose calls wait at most `max_hold` for a slot.
    pub fn new(max_hold: Duration) -> Self {
        Self::with_stats(max_hold, PaceStats::default())
    }

    /// A pacer counting into `stats`.
    pub fn with_stats(max_hold: Duration, stats: PaceStats) -> Self {
        Self {
            state: Mutex::default(),
            max_hold,
            stats,
        }
    }

    /// The longest a call waits here for its slot.
    pub fn max_hold(&self) -> Duration {
        self.max_hold
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot in every one of `buckets` and takes it. When the slot is more than
    /// [`Self::max_hold`] away the call must not be made: the answer is how long until its
    /// slot. With a `booking` key that slot is kept for the same key's next attempt (the caller
    /// reschedules to it); without one nothing is taken.
    pub async fn acquire(
        &self,
        buckets: &[(&str, Rate)],
        booking: Option<&str>,
    ) -> Result<(), Wait> {
        let at = self.take(buckets, booking, Instant::now())?;
        let now = Instant::now();
        if at > now {
            self.stats.delayed.inc();
            tokio::time::sleep_until(at).await;
        }
        // A refusal (or an answer saying nothing remains) may have come in while this call
        // waited: its slot was booked before the platform said so.
        let blocked = self.blocked_until(buckets);
        let now = Instant::now();
        if blocked > now + self.max_hold {
            self.stats.deferred.inc();
            let back = self.lock().queue_behind(buckets, blocked, now);
            return Err(Wait(back - now));
        }
        if blocked > now {
            tokio::time::sleep_until(blocked).await;
        }
        Ok(())
    }

    /// The latest block among `buckets` (a past instant when none is blocked).
    fn blocked_until(&self, buckets: &[(&str, Rate)]) -> Instant {
        self.lock().blocked_until(buckets, Instant::now())
    }

    /// The scheduling behind [`Self::acquire`], at `now`: the moment the call may go.
    fn take(
        &self,
        buckets: &[(&str, Rate)],
        booking: Option<&str>,
        now: Instant,
    ) -> Result<Instant, Wait> {
        let mut s = self.lock();
        let blocked = s.blocked_until(buckets, now);
        // A windows bucket books no slot ahead: a platform's window starts when its first call
        // arrives, and a booked call that comes back late would open it late and overlap the
        // next one. Calls for a later window come back when it opens and take its places then.
        let booking = booking.filter(|_| buckets.iter().all(|(_, r)| !r.windows));
        if let Some(key) = booking {
            if let Some(at) = s.bookings.remove(key) {
                // A slot given before: kept unless a 429 since then blocks it, or the call comes
                // back so late that its window may have passed (a late call in a window
                // bucket would land in the next window, on top of that window's own).
                if at >= blocked && at + self.max_hold >= now {
                    return self.hold_or_defer(&mut s, at, now, None);
                }
            }
        }
        let mut at = now.max(blocked);
        for (name, rate) in buckets {
            if let Some(b) = s.buckets.get(*name) {
                at = at.max(b.earliest(*rate, now));
            }
        }
        if at > now + self.max_hold && booking.is_none() {
            self.stats.deferred.inc();
            let back = s.queue_behind(buckets, at, now);
            return Err(Wait(back - now));
        }
        for (name, rate) in buckets {
            s.bucket(name, now).book(*rate, at);
        }
        self.hold_or_defer(&mut s, at, now, booking)
    }

    /// Goes at `at` if it is near; otherwise keeps it under `booking` and answers the wait.
    fn hold_or_defer(
        &self,
        s: &mut State,
        at: Instant,
        now: Instant,
        booking: Option<&str>,
    ) -> Result<Instant, Wait> {
        if at <= now + self.max_hold {
            return Ok(at);
        }
        self.stats.deferred.inc();
        if let Some(key) = booking {
            if s.bookings.len() >= MAX_BOOKINGS {
                // Forget slots long past (their rows went elsewhere); if that frees nothing,
                // forget them all: a lost booking only costs a later slot.
                s.bookings
                    .retain(|_, at| *at + Duration::from_secs(600) > now);
                if s.bookings.len() >= MAX_BOOKINGS {
                    s.bookings.clear();
                }
            }
            s.bookings.insert(key.to_string(), at);
            // Back a little before its slot, so that claiming it again is not what makes it
            // late; it then waits here for the rest.
            return Err(Wait((at - now).saturating_sub(self.max_hold / 2)));
        }
        Err(Wait(at - now))
    }

    /// Sets a windows bucket to what the platform reported: `used` calls counted in a window
    /// that ends in `ends_in` (the reset), as the platform counted them.
    pub fn seed_window(&self, bucket: &str, rate: Rate, used: u32, ends_in: Duration) {
        let now = Instant::now();
        let start = (now + ends_in).checked_sub(rate.per).unwrap_or(now);
        let mut s = self.lock();
        let b = s.bucket(bucket, now);
        b.tat = start;
        b.used = used;
    }

    /// Records the platform's refusal: nothing in `bucket` goes for `wait`.
    pub fn block(&self, bucket: &str, wait: Duration) {
        self.block_at(bucket, wait, Instant::now());
    }

    fn block_at(&self, bucket: &str, wait: Duration, now: Instant) {
        let until = now + wait;
        self.stats.blocked.inc();
        let mut s = self.lock();
        let b = s.bucket(bucket, now);
        b.blocked_until = b.blocked_until.max(until);
        // What was booked in the blocked time goes after it. A window booked ahead keeps its
        // count (its calls are waiting and go when the block ends); one already under way is
        // spent, and the block's end starts a fresh one.
        if b.tat < until {
            if b.tat <= now {
                b.used = 0;
            }
            b.tat = until;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POST: Rate = Rate::per_second(1, 3);

    fn pacer() -> Pacer {
        Pacer::new(Duration::from_secs(2))
    }

    #[test]
    fn a_burst_goes_at_once_then_one_per_interval() {
        let p = pacer();
        let now = Instant::now();
        let at: Vec<Duration> = (0..5)
            .map(|_| p.take(&[("c1", POST)], None, now).unwrap() - now)
            .collect();
        assert_eq!(
            at,
            [0, 0, 0, 1, 2].map(Duration::from_secs).to_vec(),
            "three at once (the burst), then one a second"
        );
        // The next is 3 s away, beyond the 2 s hold: not made, not booked; the calls refused
        // after it are told the slots after, one an interval.
        assert_eq!(
            p.take(&[("c1", POST)], None, now),
            Err(Wait(Duration::from_secs(3)))
        );
        assert_eq!(
            p.take(&[("c1", POST)], None, now),
            Err(Wait(Duration::from_secs(4))),
        );
        // A refused call takes nothing: the slot at 3 s is still free when it is near.
        let later = now + Duration::from_millis(1500);
        assert_eq!(
            p.take(&[("c1", POST)], None, later),
            Ok(now + Duration::from_secs(3))
        );
        // Another bucket is not affected.
        assert_eq!(p.take(&[("c2", POST)], None, now), Ok(now));
    }

    #[test]
    fn a_call_goes_when_all_its_buckets_allow_and_books_all_of_them() {
        let p = pacer();
        let now = Instant::now();
        let method = Rate::per_second(10, 1);
        for _ in 0..3 {
            p.take(&[("c1", POST)], None, now).unwrap();
        }
        let at = p
            .take(&[("method", method), ("c1", POST)], None, now)
            .unwrap();
        assert_eq!(at - now, Duration::from_secs(1), "the channel decides");
        // The method bucket was booked at that slot too.
        let next = p.take(&[("method", method)], None, now).unwrap();
        assert_eq!(next - now, Duration::from_millis(1100));
    }

    #[test]
    fn a_booked_slot_is_kept_for_the_same_key() {
        let p = pacer();
        let now = Instant::now();
        for _ in 0..5 {
            p.take(&[("c1", POST)], None, now).unwrap();
        }
        // Told to come back a second (half the hold) before its slot at 3 s.
        let wait = p.take(&[("c1", POST)], Some("row-9"), now).unwrap_err();
        assert_eq!(wait, Wait(Duration::from_secs(2)));
        // Others queue behind the booking.
        let other = p.take(&[("c1", POST)], Some("row-10"), now).unwrap_err();
        assert_eq!(other, Wait(Duration::from_secs(3)));
        // Row 9 comes back when its slot is near and goes at its slot, without a new one.
        let later = now + Duration::from_millis(2500);
        assert_eq!(
            p.take(&[("c1", POST)], Some("row-9"), later),
            Ok(now + Duration::from_secs(3))
        );
        let after = p.take(&[("c1", POST)], None, later).unwrap_err();
        assert_eq!(after, Wait(Duration::from_millis(2500)), "slot 5 s is next");
    }

    #[test]
    fn a_platform_refusal_blocks_the_bucket_for_its_wait() {
        let p = pacer();
        let now = Instant::now();
        p.block_at("c1", Duration::from_secs(10), now);
        assert_eq!(
            p.take(&[("c1", POST)], None, now),
            Err(Wait(Duration::from_secs(10)))
        );
        assert!(p.take(&[("c2", POST)], None, now).is_ok());
        // A slot booked before the refusal is not used while it lasts.
        let p = pacer();
        for _ in 0..5 {
            p.take(&[("c1", POST)], None, now).unwrap();
        }
        assert!(p.take(&[("c1", POST)], Some("k"), now).is_err());
        p.block_at("c1", Duration::from_secs(30), now);
        assert_eq!(
            p.take(&[("c1", POST)], Some("k"), now + Duration::from_secs(3)),
            Err(Wait(Duration::from_secs(26))),
            "booked again after the block (and told to come back a second early)"
        );
    }

    #[tokio::test]
    async fn acquire_sleeps_until_a_near_slot() {
        let p = pacer();
        let fast = Rate::per_second(10, 3);
        let start = Instant::now();
        for _ in 0..4 {
            p.acquire(&[("c1", fast)], None).await.unwrap();
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_secs(1),
            "{took:?}"
        );
        assert_eq!(p.stats.delayed.get(), 1);
    }

    #[test]
    fn windows_let_their_limit_through_then_wait_for_the_next_window() {
        let p = pacer();
        let now = Instant::now();
        let w = Rate::windows(3, Duration::from_millis(1500));
        let at: Vec<Duration> = (0..5)
            .map(|_| p.take(&[("b", w)], None, now).unwrap() - now)
            .collect();
        assert_eq!(
            at,
            [0, 0, 0, 1500, 1500].map(Duration::from_millis).to_vec(),
            "three in the first window, the next two when it ends"
        );
        // A call for a window beyond the hold is told when it opens and books nothing; the
        // calls refused after it are told the windows after, one window's limit each.
        let far = Rate::windows(2, Duration::from_secs(10));
        assert!(p.take(&[("f", far)], Some("row"), now).is_ok());
        assert!(p.take(&[("f", far)], Some("row"), now).is_ok());
        let back: Vec<Duration> = (0..5)
            .map(|_| p.take(&[("f", far)], Some("row"), now).unwrap_err().0)
            .collect();
        assert_eq!(back, [10, 10, 20, 20, 30].map(Duration::from_secs).to_vec());
        assert!(
            p.lock().bookings.is_empty(),
            "no slot kept for a windows bucket"
        );
        // A call coming back when its window opens goes at once.
        let opened = now + Duration::from_secs(10);
        assert_eq!(p.take(&[("f", far)], None, opened), Ok(opened));
        // Once the queue's windows are past, a refused call is told the next window again.
        let much_later = now + Duration::from_secs(100);
        p.take(&[("f", far)], None, much_later).unwrap();
        p.take(&[("f", far)], None, much_later).unwrap();
        assert_eq!(
            p.take(&[("f", far)], None, much_later),
            Err(Wait(Duration::from_secs(10)))
        );
        // A window that ended long ago starts afresh at the call.
        let later = now + Duration::from_secs(10);
        assert_eq!(p.take(&[("b", w)], None, later), Ok(later));
        // Seeded from the platform's count: two used, the window ends in a second.
        p.seed_window("s", w, 2, Duration::from_secs(1));
        let n = Instant::now();
        assert!(p.take(&[("s", w)], None, n).unwrap() <= n + Duration::from_millis(5));
        let third = p.take(&[("s", w)], None, n).unwrap();
        assert!(third >= n + Duration::from_millis(990), "{:?}", third - n);
    }

    #[test]
    fn a_shared_rate_is_divided_but_never_zero() {
        assert_eq!(
            Rate::per_minute(50, 5).shared_by(2),
            Rate::per_minute(25, 2)
        );
        assert_eq!(Rate::per_second(1, 3).shared_by(4), Rate::per_second(1, 1));
    }
}
