//! [`MemoryStore`]: the embedded default store.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use time::OffsetDateTime;

use crate::expiry::{Expiry, Ttl};
use crate::id::Id;
use crate::store::{Changes, Record, SessionStore, StoreError, Update, CREATE_ATTEMPTS};

/// Expired entries removed per write, at most: enough to outpace creation, small enough
/// that no request pays for a sweep.
const EVICT_PER_WRITE: usize = 4;

/// Sessions in this process's memory: for development, tests, and single-instance apps.
///
/// * Sharded: many tasks use it at once without one global lock.
/// * Expired records never load, and are evicted a few at a time by the writes that come
///   after their expiry (from a per-shard queue ordered by expiry, never by scanning the
///   map), so memory stays flat under a stream of short-lived sessions.
///   [`evict_expired`](Self::evict_expired) sweeps everything that is due at once.
/// * `create` never overwrites; `save` writes only the changed keys, so concurrent
///   requests of one session that change different keys all survive.
///
/// Cloning is cheap and shares the sessions, so one `MemoryStore` can serve an axum app
/// and an actix-web app together.
///
/// ```
/// let store = session_core::MemoryStore::default();
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    shards: Arc<[Mutex<Shard>]>,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Id, Entry>,
    /// Expiry queue: `(when, id)`. Each live entry has exactly one item, at `queued`, no
    /// later than its expiry; items of deleted entries are dropped when they come up.
    queue: BinaryHeap<Reverse<(OffsetDateTime, Id)>>,
}

struct Entry {
    data: HashMap<String, Value>,
    expiry: Option<Expiry>,
    expires_at: OffsetDateTime,
    queued: OffsetDateTime,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("len", &self.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store with one shard per 4 ways of parallelism (at least 16).
    pub fn new() -> Self {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (cpus * 4).next_power_of_two().max(16);
        MemoryStore {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    fn shard(&self, id: &Id) -> MutexGuard<'_, Shard> {
        let i = (id.shard_bits() as usize) & (self.shards.len() - 1);
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many records the store holds, counting expired ones not evicted yet.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len())
            .sum()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired record now; returns how many. Costs time in proportion to
    /// what is due, not to the size of the store.
    pub fn evict_expired(&self) -> usize {
        self.evict_expired_at(OffsetDateTime::now_utc())
    }

    pub(crate) fn evict_expired_at(&self, now: OffsetDateTime) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .evict(now, usize::MAX)
            })
            .sum()
    }

    pub(crate) fn create_at(
        &self,
        record: &mut Record,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        for _ in 0..CREATE_ATTEMPTS {
            let mut shard = self.shard(&record.id);
            shard.evict(now, EVICT_PER_WRITE);
            let taken = shard
                .map
                .get(&record.id)
                .is_some_and(|e| e.expires_at > now);
            if taken {
                drop(shard);
                record.id = Id::random();
                continue;
            }
            let entry = Entry {
                data: record.data.clone(),
                expiry: record.expiry,
                expires_at: record.expires_at,
                queued: record.expires_at,
            };
            shard.map.insert(record.id, entry);
            shard.queue.push(Reverse((record.expires_at, record.id)));
            return Ok(());
        }
        Err(StoreError::IdCollision(CREATE_ATTEMPTS))
    }

    pub(crate) fn load_at(&self, id: &Id, now: OffsetDateTime) -> Option<Record> {
        let shard = self.shard(id);
        let e = shard.map.get(id).filter(|e| e.expires_at > now)?;
        Some(Record {
            id: *id,
            data: e.data.clone(),
            expiry: e.expiry,
            expires_at: e.expires_at,
        })
    }

    pub(crate) fn save_at(
        &self,
        record: &Record,
        changes: &Changes,
        now: OffsetDateTime,
    ) -> Update {
        let mut shard = self.shard(&record.id);
        shard.evict(now, EVICT_PER_WRITE);
        let Some(e) = shard.map.get_mut(&record.id).filter(|e| e.expires_at > now) else {
            return Update::Missing;
        };
        changes.apply_to(&mut e.data, &record.data);
        e.expiry = record.expiry;
        e.expires_at = record.expires_at;
        shard.requeue(record.id);
        Update::Applied
    }

    pub(crate) fn touch_at(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Update {
        let mut shard = self.shard(id);
        shard.evict(now, EVICT_PER_WRITE);
        let Some(e) = shard.map.get_mut(id).filter(|e| e.expires_at > now) else {
            return Update::Missing;
        };
        e.expires_at = expires_at;
        shard.requeue(*id);
        Update::Applied
    }

    #[cfg(test)]
    pub(crate) fn queued_items(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().queue.len())
            .sum()
    }
}

impl Shard {
    /// Keeps the queue invariant after `id`'s expiry moved: an earlier expiry needs an
    /// earlier item; a later one is found when the current item comes up.
    fn requeue(&mut self, id: Id) {
        let Some(e) = self.map.get_mut(&id) else {
            return;
        };
        if e.expires_at < e.queued {
            e.queued = e.expires_at;
            self.queue.push(Reverse((e.expires_at, id)));
        }
    }

    /// Removes up to `budget` expired entries whose queue items are due.
    fn evict(&mut self, now: OffsetDateTime, budget: usize) -> usize {
        let mut removed = 0;
        let mut examined = 0;
        while removed < budget && examined < budget.saturating_mul(4) {
            let Some(Reverse((when, id))) = self.queue.peek().copied() else {
                break;
            };
            if when > now {
                break;
            }
            self.queue.pop();
            examined += 1;
            let Some(e) = self.map.get_mut(&id) else {
                continue;
            };
            if e.queued != when {
                continue; // a superseded item
            }
            if e.expires_at <= now {
                self.map.remove(&id);
                removed += 1;
            } else {
                e.queued = e.expires_at;
                self.queue.push(Reverse((e.expires_at, id)));
            }
        }
        removed
    }
}

impl SessionStore for MemoryStore {
    async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
        Ok(self.load_at(id, OffsetDateTime::now_utc()))
    }

    async fn create(&self, record: &mut Record, _ttl: Ttl) -> Result<(), StoreError> {
        self.create_at(record, OffsetDateTime::now_utc())
    }

    async fn save(
        &self,
        record: &Record,
        changes: &Changes,
        _ttl: Ttl,
    ) -> Result<Update, StoreError> {
        Ok(self.save_at(record, changes, OffsetDateTime::now_utc()))
    }

    async fn touch(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        _ttl: Ttl,
    ) -> Result<Update, StoreError> {
        Ok(self.touch_at(id, expires_at, OffsetDateTime::now_utc()))
    }

    async fn delete(&self, id: &Id) -> Result<(), StoreError> {
        self.shard(id).map.remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::Duration;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn record(secs: i64, now: OffsetDateTime) -> Record {
        Record {
            id: Id::random(),
            data: [("k".to_string(), json!("v"))].into(),
            expiry: None,
            expires_at: now + Duration::seconds(secs),
        }
    }

    #[test]
    fn expired_records_never_load_and_cannot_be_updated() {
        let s = MemoryStore::new();
        let mut r = record(10, t0());
        s.create_at(&mut r, t0()).unwrap();
        assert!(s.load_at(&r.id, t0() + Duration::seconds(9)).is_some());
        let later = t0() + Duration::seconds(10);
        assert!(s.load_at(&r.id, later).is_none());
        assert_eq!(s.save_at(&r, &Changes::default(), later), Update::Missing);
        assert_eq!(
            s.touch_at(&r.id, later + Duration::HOUR, later),
            Update::Missing
        );
        assert!(s.load_at(&r.id, later).is_none());
    }

    #[test]
    fn create_never_overwrites_a_live_record() {
        let s = MemoryStore::new();
        let mut first = record(100, t0());
        s.create_at(&mut first, t0()).unwrap();
        let mut second = record(100, t0());
        second.id = first.id;
        second.data = [("other".to_string(), json!(1))].into();
        s.create_at(&mut second, t0()).unwrap();
        assert_ne!(second.id, first.id, "a taken id must be replaced");
        assert_eq!(s.load_at(&first.id, t0()).unwrap().data, first.data);
        assert_eq!(s.load_at(&second.id, t0()).unwrap().data, second.data);

        // An expired record's id may be reused.
        let later = t0() + Duration::seconds(200);
        let mut third = record(100, later);
        third.id = first.id;
        s.create_at(&mut third, later).unwrap();
        assert_eq!(third.id, first.id);
    }

    #[test]
    fn touch_extends_and_eviction_follows_the_latest_expiry() {
        let s = MemoryStore::new();
        let mut r = record(10, t0());
        s.create_at(&mut r, t0()).unwrap();
        let t5 = t0() + Duration::seconds(5);
        assert_eq!(
            s.touch_at(&r.id, t5 + Duration::seconds(10), t5),
            Update::Applied
        );
        // Its first queue item comes due at t0+10 but the record lives until t0+15.
        assert_eq!(s.evict_expired_at(t0() + Duration::seconds(11)), 0);
        assert!(s.load_at(&r.id, t0() + Duration::seconds(14)).is_some());
        assert_eq!(s.evict_expired_at(t0() + Duration::seconds(15)), 1);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_shortened_expiry_is_evicted_on_time() {
        let s = MemoryStore::new();
        let mut r = record(100, t0());
        s.create_at(&mut r, t0()).unwrap();
        r.expires_at = t0() + Duration::seconds(5);
        assert_eq!(s.save_at(&r, &Changes::default(), t0()), Update::Applied);
        assert_eq!(s.evict_expired_at(t0() + Duration::seconds(6)), 1);
        assert_eq!(
            s.queued_items(),
            1,
            "the superseded item waits for its time"
        );
        assert_eq!(s.evict_expired_at(t0() + Duration::seconds(101)), 0);
        assert_eq!(s.queued_items(), 0);
    }

    #[test]
    fn memory_stays_bounded_under_a_stream_of_short_sessions() {
        let s = MemoryStore::new();
        let mut now = t0();
        let mut peak = 0;
        // 200 000 sessions living 2 s each, 1 000 created per simulated second, with no
        // explicit sweep: only the writes themselves evict.
        for _ in 0..200 {
            for _ in 0..1_000 {
                let mut r = record(2, now);
                s.create_at(&mut r, now).unwrap();
            }
            now += Duration::SECOND;
            peak = peak.max(s.len());
        }
        // About 2-3 s worth of sessions are alive or just expired; never the 200 000.
        assert!(peak <= 4_000, "peak {peak} records");
        assert!(
            s.queued_items() <= 4_000,
            "{} queue items",
            s.queued_items()
        );
    }

    #[test]
    fn save_applies_only_the_changes() {
        let s = MemoryStore::new();
        let mut r = record(100, t0());
        s.create_at(&mut r, t0()).unwrap();
        // Another request added "b" meanwhile.
        let mut other = r.clone();
        other.data.insert("b".into(), json!(2));
        let mut c = Changes::default();
        c.mark("b");
        s.save_at(&other, &c, t0());
        // This request only changed "a"; its view of "b" is stale and must not win.
        let mut mine = r.clone();
        mine.data.insert("a".into(), json!(1));
        let mut c = Changes::default();
        c.mark("a");
        s.save_at(&mine, &c, t0());
        let data = s.load_at(&r.id, t0()).unwrap().data;
        assert_eq!(data.get("a"), Some(&json!(1)));
        assert_eq!(data.get("b"), Some(&json!(2)));
        assert_eq!(data.get("k"), Some(&json!("v")));
    }
}
