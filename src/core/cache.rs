//! A small in-memory cache with a size and an age bound, for what the bot looks up from the
//! platforms (names, account kinds, DM channels) or remembers as a shortcut (escalations
//! already settled). Every entry can be refilled: nothing here is the only record of anything.
//!
//! Owns eviction: entries older than the age bound are never returned, and past the size bound
//! the oldest entries go first. Must not hold anything whose loss changes behaviour (claims
//! and dedupe keys live in the database).

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many people (names, account kinds, DM channels) each platform client keeps.
pub const PEOPLE_CACHED: usize = 10_000;
/// How long a person's cached name or kind is used: a renamed person shows their new name
/// within a day.
pub const PEOPLE_FOR: Duration = Duration::from_secs(24 * 3600);

/// A cache of at most `capacity` entries, each kept at most `max_age`.
#[derive(Debug)]
pub struct Bounded<K, V> {
    capacity: usize,
    max_age: Duration,
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    map: HashMap<K, (V, Instant)>,
    /// Keys in the order they were stored, with when: the front is the oldest. A key stored
    /// again appears twice; only the entry matching its current time evicts it.
    order: VecDeque<(K, Instant)>,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    /// An empty cache.
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            max_age,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The value stored for `k`, unless it is older than the age bound.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .map
            .get(k)
            .filter(|(_, at)| at.elapsed() < self.max_age)
            .map(|(v, _)| v.clone())
    }

    /// Whether `k` has a value young enough to be returned.
    pub fn contains<Q: Hash + Eq + ?Sized>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.get(k).is_some()
    }

    /// Stores `v` for `k`, evicting expired entries and, past the size bound, the oldest.
    pub fn insert(&self, k: K, v: V) {
        self.insert_at(k, v, Instant::now());
    }

    /// Stores `v` for `k` unless the value already stored (and young enough to be
    /// returned) is to be kept, as `keep(old)` decides; checked and stored under one lock, so
    /// two concurrent callers cannot both see the old value and the older one win.
    /// Returns whether `v` was stored.
    pub fn insert_unless(&self, k: K, v: V, keep: impl FnOnce(&V) -> bool) -> bool {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let kept = inner
            .map
            .get(&k)
            .filter(|(_, at)| now.saturating_duration_since(*at) < self.max_age)
            .is_some_and(|(old, _)| keep(old));
        if kept {
            return false;
        }
        self.store(&mut inner, k, v, now);
        true
    }

    fn insert_at(&self, k: K, v: V, now: Instant) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.store(&mut inner, k, v, now);
    }

    fn store(&self, inner: &mut Inner<K, V>, k: K, v: V, now: Instant) {
        inner.map.insert(k.clone(), (v, now));
        inner.order.push_back((k, now));
        while let Some(&(_, at)) = inner.order.front() {
            let over = inner.map.len() > self.capacity || inner.order.len() > 2 * self.capacity;
            let expired = now.saturating_duration_since(at) >= self.max_age;
            if !(over || expired) {
                break;
            }
            let Some((front, at)) = inner.order.pop_front() else {
                break;
            };
            // Only the newest storing of a key removes it.
            if inner.map.get(&front).is_some_and(|(_, t)| *t == at) {
                inner.map.remove(&front);
            }
        }
    }

    /// Forgets `k` (its place in the eviction order goes when it reaches the front).
    pub fn remove<Q: Hash + Eq + ?Sized>(&self, k: &Q)
    where
        K: Borrow<Q>,
    {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.map.remove(k);
    }

    /// How many entries it holds (expired ones not yet evicted included).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_version_wins_however_concurrent_stores_interleave() {
        let c = std::sync::Arc::new(Bounded::new(10, Duration::from_secs(3600)));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    // Each thread stores every version, in its own order.
                    for i in 0..2000u64 {
                        let version = if t % 2 == 0 { i } else { 1999 - i };
                        c.insert_unless("k", version, |old| *old > version);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(&"k"), Some(1999));
        assert!(!c.insert_unless("k", 5, |old| *old > 5));
        assert!(c.insert_unless("k", 3000, |old| *old > 3000));
    }

    #[test]
    fn the_oldest_entries_go_first_past_the_size_bound() {
        let c = Bounded::new(3, Duration::from_secs(3600));
        for i in 0..5 {
            c.insert(i, i * 10);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&0), None);
        assert_eq!(c.get(&1), None);
        assert_eq!(c.get(&4), Some(40));
    }

    #[test]
    fn a_key_stored_again_is_kept_as_new() {
        let c = Bounded::new(2, Duration::from_secs(3600));
        c.insert("a", 1);
        c.insert("b", 2);
        c.insert("a", 3);
        c.insert("c", 4);
        assert_eq!(
            c.get(&"a"),
            Some(3),
            "stored again after b, so b goes first"
        );
        assert_eq!(c.get(&"b"), None);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn entries_older_than_the_age_bound_are_not_returned_and_are_evicted() {
        let c = Bounded::new(100, Duration::from_secs(60));
        let start = Instant::now();
        c.insert_at("old", 1, start);
        assert_eq!(c.get(&"old"), Some(1));
        c.insert_at("new", 2, start + Duration::from_secs(61));
        assert_eq!(c.len(), 1, "the expired entry was evicted");
        let c = Bounded::new(100, Duration::ZERO);
        c.insert("x", 1);
        assert_eq!(c.get(&"x"), None);
    }
}
