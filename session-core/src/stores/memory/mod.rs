//! [`MemoryStore`]: the embedded default store.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

mod shard;
mod users;

use shard::{bound_user, instant, nanos, now, Cap, Full, Nanos, Shard, EVICT_PER_WRITE};
use users::Users;

use crate::expiry::Ttl;
use crate::id::Id;
use crate::state::json_len;
use crate::state::{Change, Changes};
use crate::store::{Created, Cycle, Record, SessionStore, StoreError, Update};
use crate::store::{EndPass, SessionInfo};
use crate::store::{Loaded, NowStore, Packed, Write};

/// A save whose record and change together stay within this many bytes is applied
/// under the shard's lock in one step; a larger one is built outside it.
const SMALL_WORK: usize = 1024;

/// Sessions in this process's memory: for development, tests, and single-instance apps.
///
/// * Compact: a session holding one small value costs about 175 bytes (see
///   `BENCHMARKS.md`). Each record is kept as one encoded allocation, not as a map of
///   values, and decoded when loaded.
/// * Sharded: many tasks use it at once without one global lock.
/// * Expired records never load, and are evicted a few at a time by the writes that come
///   after their expiry (from a per-shard queue ordered by expiry, never by scanning the
///   map), so memory stays flat under a stream of short-lived sessions.
///   [`evict_expired`](Self::evict_expired) sweeps everything that is due at once.
/// * `create` never overwrites; `save` writes only the changed keys, so concurrent
///   requests of one session that change different keys all survive.
/// * No lock is held across work that grows with a session: a shard's lock covers
///   pointer copies, map updates and saves of at most 1 KiB; decoding, and re-encoding
///   a larger record, happen outside it, and such a save installs its result only if
///   no other save replaced the record meanwhile (otherwise it starts again from the
///   newer record).
///
/// * Served without futures: its calls complete without waiting, and it offers them as a
///   [`NowStore`] (any store can), so the engine makes them at once (also behind an
///   `Arc`, as the adapters hold it), with no boxed future, and saves and creates from
///   the session's own values instead of a copy of them.
///
/// * Unbounded by default; [`with_max_sessions`](Self::with_max_sessions) caps how many
///   records it holds, so that a flood of new sessions cannot take the process's memory.
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
    cap: Option<Arc<Cap>>,
    users: Arc<Users>,
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
            .field("max_sessions", &self.max_sessions())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store with one shard per 4 ways of parallelism (at least 16), and no
    /// bound on how many sessions it holds.
    pub fn new() -> Self {
        Self::with_cap(None)
    }

    /// An empty store that holds at most `max` sessions.
    ///
    /// At the cap, creating a session first evicts every expired record; if none was
    /// due, the new session is refused with [`StoreError::Unavailable`] (the adapters
    /// answer 503, and the engine logs "the memory store holds its maximum of N live
    /// sessions"). Sessions already held keep working: loads, saves, touches, logouts,
    /// and logins (`cycle_id`, which moves a session to a new id without adding one).
    /// Refusing newcomers rather than evicting live sessions means a flood of new
    /// sessions cannot log anyone out; size the cap for the sessions a busy day holds
    /// (about 175 bytes each plus their values).
    ///
    /// # Panics
    ///
    /// When `max` is 0.
    ///
    /// ```
    /// let store = session_core::MemoryStore::with_max_sessions(100_000);
    /// assert_eq!(store.max_sessions(), Some(100_000));
    /// ```
    pub fn with_max_sessions(max: usize) -> Self {
        assert!(
            max > 0,
            "MemoryStore::with_max_sessions(0): a store must be able to hold a session"
        );
        Self::with_cap(Some(Arc::new(Cap::new(max))))
    }

    fn with_cap(cap: Option<Arc<Cap>>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (cpus * 4).next_power_of_two().max(16);
        let users = Arc::new(Users::default());
        MemoryStore {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        cap: cap.clone(),
                        users: users.clone(),
                        ..Shard::default()
                    })
                })
                .collect(),
            cap,
            users,
        }
    }

    /// The most sessions this store holds, if it was given a cap.
    pub fn max_sessions(&self) -> Option<usize> {
        self.cap.as_ref().map(|c| c.max)
    }

    /// Takes a place for a new record in a capped store: when none is free, after
    /// evicting whatever has expired.
    fn take_place(&self, now: Nanos) -> Result<(), StoreError> {
        let Some(cap) = &self.cap else {
            return Ok(());
        };
        if cap.take() {
            return Ok(());
        }
        self.evict_expired_now(now);
        if cap.take() {
            return Ok(());
        }
        Err(StoreError::Unavailable(Box::new(Full::of(cap))))
    }

    fn shard(&self, id: &Id) -> MutexGuard<'_, Shard> {
        self.lock(self.shard_of(id))
    }

    fn shard_of(&self, id: &Id) -> usize {
        (id.shard_bits() as usize) & (self.shards.len() - 1)
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard]
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
        self.evict_expired_now(now())
    }

    #[cfg(test)]
    pub(crate) fn evict_expired_at(&self, now: OffsetDateTime) -> usize {
        self.evict_expired_now(nanos(now))
    }

    fn evict_expired_now(&self, now: Nanos) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .evict(now, usize::MAX)
            })
            .sum()
    }

    #[cfg(test)]
    pub(crate) fn create_at(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Created, StoreError> {
        self.create_record(record, nanos(now))
    }

    /// [`SessionStore::create`] at `now`.
    fn create_record(&self, record: &Record, now: Nanos) -> Result<Created, StoreError> {
        self.create_in(&record.id, &Write::of(record), now)
    }

    /// Creates the record `write` under `id`, unless `id` names a live record.
    fn create_in(&self, id: &Id, write: &Write<'_>, now: Nanos) -> Result<Created, StoreError> {
        self.take_place(now)?;
        let mut shard = self.shard(id);
        shard.evict(now, EVICT_PER_WRITE);
        if shard.map.get(id).is_some_and(|e| e.expires_at > now) {
            drop(shard);
            if let Some(cap) = &self.cap {
                cap.give_back();
            }
            return Ok(Created::Taken);
        }
        let user = bound_user(write);
        shard.insert(
            *id,
            Packed::encode(write),
            nanos(write.expires_at()),
            user,
            now,
        );
        Ok(Created::Stored)
    }

    /// [`SessionStore::cycle`], decided under the locks of both records' shards (taken
    /// in shard order, so two cycles never wait on each other).
    fn cycle_now(&self, old: &Id, record: &Record, now: Nanos) -> Result<Cycle, StoreError> {
        let (a, b) = (self.shard_of(old), self.shard_of(&record.id));
        let mut first = self.lock(a.min(b));
        let mut second = (a != b).then(|| self.lock(a.max(b)));
        let (old_shard, new_shard) = match second.as_deref_mut() {
            None => (&mut *first, None),
            Some(other) if a < b => (&mut *first, Some(other)),
            Some(other) => (other, Some(&mut *first)),
        };
        old_shard.evict(now, EVICT_PER_WRITE);
        let live = old_shard.map.get(old).is_some_and(|e| e.expires_at > now);
        if !live {
            return Ok(Cycle::Ended);
        }
        let new_taken = |shard: &Shard| {
            shard
                .map
                .get(&record.id)
                .is_some_and(|e| e.expires_at > now)
        };
        if new_taken(new_shard.as_deref().unwrap_or(old_shard)) {
            return Ok(Cycle::Taken);
        }
        // The old record's place in a capped store passes to the new one.
        let removed = old_shard.map.remove(old);
        old_shard.unbind(old);
        let write = Write::of(record);
        let body = Packed::encode(&write);
        new_shard.unwrap_or(old_shard).insert(
            record.id,
            body,
            nanos(record.expires_at),
            bound_user(&write),
            now,
        );
        drop((first, second));
        drop(removed); // freed outside the locks
        Ok(Cycle::Moved)
    }

    #[cfg(test)]
    pub(crate) fn load_at(&self, id: &Id, now: OffsetDateTime) -> Option<Record> {
        self.load_record(id, nanos(now)).expect("bodies decode")
    }

    fn load_record(&self, id: &Id, now: Nanos) -> Result<Option<Record>, StoreError> {
        let Some(loaded) = self.load_in(id, now) else {
            return Ok(None);
        };
        Ok(Some(Record {
            id: *id,
            data: loaded.body.to_data()?,
            expiry: loaded.body.expiry()?,
            expires_at: loaded.expires_at,
        }))
    }

    /// The live record `id`, its values not parsed.
    fn load_in(&self, id: &Id, now: Nanos) -> Option<Loaded> {
        let shard = self.shard(id);
        let e = shard.map.get(id).filter(|e| e.expires_at > now)?;
        Some(Loaded {
            body: e.body.clone(),
            expires_at: instant(e.expires_at),
        })
    }

    #[cfg(test)]
    pub(crate) fn save_at(
        &self,
        record: &Record,
        changes: &Changes,
        now: OffsetDateTime,
    ) -> Update {
        let saved = self.save_in(&record.id, &Write::of(record), changes, nanos(now));
        match saved.expect("bodies decode") {
            Some(_) => Update::Applied,
            None => Update::Missing,
        }
    }

    /// Applies `changes` to the live record `id`, its other keys kept; the values set
    /// come from `write` (a change's keys only: the others are copied from the record).
    /// Returns the body now stored (which holds the keys of concurrent saves too), or
    /// `None` when the record was gone.
    fn save_in(
        &self,
        id: &Id,
        write: &Write<'_>,
        changes: &Changes,
        now: Nanos,
    ) -> Result<Option<Packed>, StoreError> {
        let expires_at = nanos(write.expires_at());
        // The bytes the change adds (8 per entry for the lengths): known from the
        // session's own accounting, or measured before taking the lock.
        let set_bytes = changes.set_bytes().unwrap_or_else(|| {
            changes
                .ops_in(write.values)
                .map(|op| match op {
                    Change::Set(k, v) => k.len() + json_len(v),
                    Change::Remove(_) => 0,
                })
                .sum()
        });
        let added = set_bytes + 8 * changes.len();
        let mut guard = self.shard(id);
        guard.evict(now, EVICT_PER_WRITE);
        let shard = &mut *guard;
        let Some(e) = shard.map.get_mut(id).filter(|e| e.expires_at > now) else {
            return Ok(None);
        };
        if e.body.len() + added <= SMALL_WORK {
            // A small record and change: bounded work, done under the lock at once.
            let body = e.body.apply(write, changes)?;
            let old = e.install(body.clone(), expires_at);
            shard.rebind(*id, write, changes, now);
            shard.requeue(*id);
            drop(guard);
            drop(old); // freed outside the lock
            return Ok(Some(body));
        }
        let mut before = e.body.clone();
        drop(guard);
        loop {
            // Outside the lock: the work that grows with the session.
            let body = before.apply(write, changes)?;
            let mut guard = self.shard(id);
            let shard = &mut *guard;
            let Some(e) = shard.map.get_mut(id).filter(|e| e.expires_at > now) else {
                return Ok(None);
            };
            if !Packed::ptr_eq(&e.body, &before) {
                // Another request of this session saved meanwhile: apply this change to
                // what it wrote, so its keys survive.
                before = e.body.clone();
                continue;
            }
            let old = e.install(body.clone(), expires_at);
            shard.rebind(*id, write, changes, now);
            shard.requeue(*id);
            drop(guard);
            drop((old, before)); // freed outside the lock
            return Ok(Some(body));
        }
    }

    #[cfg(test)]
    pub(crate) fn touch_at(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Update {
        self.touch_in(id, nanos(expires_at), nanos(now))
    }

    fn touch_in(&self, id: &Id, expires_at: Nanos, now: Nanos) -> Update {
        let mut shard = self.shard(id);
        shard.evict(now, EVICT_PER_WRITE);
        let Some(e) = shard.map.get_mut(id).filter(|e| e.expires_at > now) else {
            return Update::Missing;
        };
        e.expires_at = expires_at;
        shard.seen(id, now);
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

impl NowStore for MemoryStore {
    fn load_now(&self, id: &Id, now: OffsetDateTime) -> Result<Option<Loaded>, StoreError> {
        Ok(self.load_in(id, nanos(now)))
    }

    fn create_now(
        &self,
        id: &Id,
        write: Write<'_>,
        now: OffsetDateTime,
    ) -> Result<Created, StoreError> {
        self.create_in(id, &write, nanos(now))
    }

    fn save_now(
        &self,
        id: &Id,
        write: Write<'_>,
        changes: &Changes,
        now: OffsetDateTime,
    ) -> Result<Option<Packed>, StoreError> {
        self.save_in(id, &write, changes, nanos(now))
    }

    fn touch_now(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Update, StoreError> {
        Ok(self.touch_in(id, nanos(expires_at), nanos(now)))
    }
}

impl SessionStore for MemoryStore {
    fn label(&self) -> &'static str {
        "memory"
    }

    fn now(&self) -> Option<&dyn NowStore> {
        Some(self)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
        self.load_record(id, now())
    }

    async fn create(&self, record: &Record, _ttl: Ttl) -> Result<Created, StoreError> {
        self.create_record(record, now())
    }

    async fn save(
        &self,
        record: &Record,
        changes: &Changes,
        _ttl: Ttl,
    ) -> Result<Update, StoreError> {
        let saved = self.save_in(&record.id, &Write::of(record), changes, now())?;
        Ok(match saved {
            Some(_) => Update::Applied,
            None => Update::Missing,
        })
    }

    async fn touch(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        _ttl: Ttl,
    ) -> Result<Update, StoreError> {
        Ok(self.touch_in(id, nanos(expires_at), now()))
    }

    async fn delete(&self, id: &Id) -> Result<(), StoreError> {
        let removed = self.shard(id).remove(id);
        drop(removed); // freed outside the lock
        Ok(())
    }

    async fn cycle(&self, old: &Id, record: &Record, _ttl: Ttl) -> Result<Cycle, StoreError> {
        self.cycle_now(old, record, now())
    }
    async fn user_sessions(
        &self,
        user: &str,
        current: Option<&Id>,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        self.user_sessions_now(user, current)
    }

    async fn end_user_pass(&self, user: &str, keep: Option<&Id>) -> Result<EndPass, StoreError> {
        Ok(self.end_user_pass_now(user, keep))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::expiry::Expiry;
    use crate::state::{Binding, USER_KEY};
    use serde_json::json;
    use time::{Duration, UtcOffset};

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn record(secs: i64, now: OffsetDateTime) -> Record {
        Record {
            id: Id::random(),
            data: [("k".to_string(), json!("v"))].into_iter().collect(),
            expiry: None,
            expires_at: now + Duration::seconds(secs),
        }
    }

    #[test]
    fn instants_round_trip_through_nanos() {
        let far = OffsetDateTime::from_unix_timestamp(200_000_000_000).unwrap();
        assert_eq!(nanos(far), i64::MAX, "saturates past 2262");
        assert_eq!(nanos(far.replace_year(-9999).unwrap()), i64::MIN);
        let early = OffsetDateTime::from_unix_timestamp_nanos(-1_500_000_000).unwrap();
        assert_eq!(
            nanos(early),
            -1_500_000_000,
            "before 1970, to the nanosecond"
        );
        for n in [
            0,
            1,
            -1,
            999_999_999,
            -1_000_000_001,
            i64::MIN,
            i64::MAX,
            1_764_000_000_123_456_789,
        ] {
            assert_eq!(nanos(instant(n)), n, "{n}");
            assert_eq!(
                instant(n),
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).unwrap()
            );
        }
    }

    #[test]
    fn expired_records_never_load_and_cannot_be_updated() {
        let s = MemoryStore::new();
        let r = record(10, t0());
        s.create_at(&r, t0()).unwrap();
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
    fn concurrent_saves_of_a_large_record_keep_every_key() {
        let s = MemoryStore::new();
        let mut base = record(100, t0());
        base.data
            .insert("big".into(), json!("x".repeat(4 * SMALL_WORK)));
        s.create_at(&base, t0()).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (s, base) = (&s, &base);
                scope.spawn(move || {
                    for i in 0..50 {
                        let mut after = base.clone();
                        let key = format!("t{t}");
                        after.data.insert(key.clone(), json!(i));
                        let c = Changes::new(false, [key]);
                        assert_eq!(s.save_at(&after, &c, t0()), Update::Applied);
                    }
                });
            }
        });
        let back = s.load_at(&base.id, t0()).unwrap();
        for t in 0..8 {
            assert_eq!(back.data[&format!("t{t}")], json!(49), "t{t} was lost");
        }
        assert_eq!(back.data["big"], base.data["big"]);
    }

    #[test]
    fn cycle_never_overwrites_and_needs_a_live_old_record() {
        let s = MemoryStore::new();
        let old = record(100, t0());
        s.create_at(&old, t0()).unwrap();
        let other = record(100, t0());
        s.create_at(&other, t0()).unwrap();
        // The new id is taken: reported, and neither record is harmed.
        let mut moved = record(100, t0());
        moved.id = other.id;
        moved.data = [("user".to_string(), json!("ada"))].into_iter().collect();
        assert_eq!(
            s.cycle_now(&old.id, &moved, nanos(t0())).unwrap(),
            Cycle::Taken
        );
        assert_eq!(s.load_at(&other.id, t0()).unwrap().data, other.data);
        assert!(s.load_at(&old.id, t0()).is_some());
        // Under a free id the session moves.
        moved.id = Id::random();
        assert_eq!(
            s.cycle_now(&old.id, &moved, nanos(t0())).unwrap(),
            Cycle::Moved
        );
        assert_eq!(s.load_at(&other.id, t0()).unwrap().data, other.data);
        assert_eq!(s.load_at(&moved.id, t0()).unwrap().data, moved.data);
        assert!(s.load_at(&old.id, t0()).is_none());
        // Past its expiry the old record cannot be moved.
        let later = t0() + Duration::seconds(200);
        let late = record(100, later);
        assert_eq!(
            s.cycle_now(&moved.id, &late, nanos(later)).unwrap(),
            Cycle::Ended
        );
        assert!(s.load_at(&late.id, later).is_none());
    }

    #[test]
    fn create_never_overwrites_a_live_record() {
        let s = MemoryStore::new();
        let first = record(100, t0());
        s.create_at(&first, t0()).unwrap();
        let mut second = record(100, t0());
        second.id = first.id;
        second.data = [("other".to_string(), json!(1))].into_iter().collect();
        assert_eq!(s.create_at(&second, t0()).unwrap(), Created::Taken);
        assert_eq!(s.load_at(&first.id, t0()).unwrap().data, first.data);

        // An expired record's id may be reused.
        let later = t0() + Duration::seconds(200);
        let mut third = record(100, later);
        third.id = first.id;
        assert_eq!(s.create_at(&third, later).unwrap(), Created::Stored);
        assert_eq!(s.load_at(&first.id, later).unwrap().data, third.data);
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn places(s: &MemoryStore) -> usize {
        s.cap.as_ref().unwrap().held.load(Ordering::Acquire)
    }

    #[test]
    fn a_capped_store_refuses_newcomers_and_keeps_its_sessions() {
        let s = MemoryStore::with_max_sessions(3);
        let mut held: Vec<Record> = (0..3)
            .map(|_| {
                let r = record(100, t0());
                s.create_at(&r, t0()).unwrap();
                r
            })
            .collect();
        let extra = record(100, t0());
        let full = s.create_at(&extra, t0()).unwrap_err();
        assert!(full.is_unavailable(), "{full:?}");
        assert_eq!(
            full.report().to_string(),
            "the session store is unavailable: the memory store holds its maximum of 3 live sessions"
        );
        assert!(s.load_at(&extra.id, t0()).is_none());
        assert_eq!((s.len(), places(&s)), (3, 3));

        // The sessions it holds keep working, a login (cycle) included.
        let mut changes = Changes::default();
        changes.mark("k");
        held[0].data.insert("k".into(), json!("w"));
        assert_eq!(s.save_at(&held[0], &changes, t0()), Update::Applied);
        let old = held[1].id;
        held[1].id = Id::random();
        assert_eq!(
            s.cycle_now(&old, &held[1], nanos(t0())).unwrap(),
            Cycle::Moved
        );
        assert!(s.load_at(&held[1].id, t0()).is_some());
        assert_eq!((s.len(), places(&s)), (3, 3));

        // A logout frees a place.
        block_on(s.delete(&held[2].id)).unwrap();
        assert_eq!(places(&s), 2);
        s.create_at(&extra, t0()).unwrap();
        assert!(s.create_at(&record(100, t0()), t0()).is_err());

        // At the cap, expired records are evicted to make room, however many shards
        // they sit in.
        let later = t0() + Duration::seconds(101);
        for _ in 0..3 {
            s.create_at(&record(100, later), later).unwrap();
        }
        assert_eq!((s.len(), places(&s)), (3, 3));
        assert!(s.create_at(&record(100, later), later).is_err());
    }

    #[test]
    fn a_capped_store_never_holds_more_than_its_cap_under_contention() {
        let s = MemoryStore::with_max_sessions(100);
        let created = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for i in 0..200 {
                        let r = record(100, t0());
                        if s.create_at(&r, t0()).is_ok() {
                            created.fetch_add(1, Ordering::Relaxed);
                            if i % 3 == 0 {
                                block_on(s.delete(&r.id)).unwrap();
                                created.fetch_sub(1, Ordering::Relaxed);
                            }
                        }
                        // The places taken bound the records at every instant (`len`
                        // sums the shards one at a time, so it is no snapshot while
                        // other threads write).
                        assert!(places(&s) <= 100);
                    }
                });
            }
        });
        assert_eq!(s.len(), 100);
        assert_eq!(created.load(Ordering::Relaxed), 100);
        assert_eq!(places(&s), 100);
    }

    #[test]
    #[should_panic(expected = "with_max_sessions(0)")]
    fn a_cap_of_zero_is_refused() {
        let _ = MemoryStore::with_max_sessions(0);
    }

    #[test]
    fn touch_extends_and_eviction_follows_the_latest_expiry() {
        let s = MemoryStore::new();
        let r = record(10, t0());
        s.create_at(&r, t0()).unwrap();
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
        s.create_at(&r, t0()).unwrap();
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
                let r = record(2, now);
                s.create_at(&r, now).unwrap();
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
    fn every_expiry_and_value_survives_the_encoding() {
        let s = MemoryStore::new();
        let offset = UtcOffset::from_hms(5, 30, 0).unwrap();
        let expiries = [
            None,
            Some(Expiry::OnSessionEnd),
            Some(Expiry::OnInactivity(Duration::new(86_400, 123_456_789))),
            Some(Expiry::AtDateTime(
                (t0() + Duration::new(3_600, 987_654_321)).to_offset(offset),
            )),
        ];
        for expiry in expiries {
            let mut r = record(100, t0());
            r.expiry = expiry;
            r.data.insert(
                "nested".into(),
                json!({"a": [1, 2.5, null, "é"], "b": true}),
            );
            r.data.insert("big".into(), json!(u64::MAX));
            s.create_at(&r, t0()).unwrap();
            let back = s.load_at(&r.id, t0()).unwrap();
            assert_eq!(back, r);
            if let Some(Expiry::AtDateTime(t)) = back.expiry {
                assert_eq!(t.offset(), offset);
            }
            // An expiry-only save keeps the values.
            r.expiry = Some(Expiry::OnSessionEnd);
            assert_eq!(s.save_at(&r, &Changes::default(), t0()), Update::Applied);
            assert_eq!(s.load_at(&r.id, t0()).unwrap(), r);
        }
    }

    #[test]
    fn save_applies_only_the_changes() {
        let s = MemoryStore::new();
        let r = record(100, t0());
        s.create_at(&r, t0()).unwrap();
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

    fn bound(user: &str, secs: i64, now: OffsetDateTime) -> Record {
        let mut r = record(secs, now);
        let binding = Binding {
            user: user.to_owned(),
            since: now.unix_timestamp(),
            label: None,
        };
        r.data.insert(USER_KEY.to_owned(), binding.to_value());
        r
    }

    fn indexed(store: &MemoryStore) -> usize {
        store.users.lock().values().map(HashSet::len).sum()
    }

    #[test]
    fn the_user_index_follows_eviction() {
        let store = MemoryStore::default();
        let now = t0();
        for i in 0..50 {
            let user = if i % 2 == 0 { "ada" } else { "bob" };
            store.create_at(&bound(user, 10, now), now).unwrap();
        }
        store.create_at(&record(10, now), now).unwrap();
        assert_eq!(indexed(&store), 50, "bound sessions only");
        let later = now + Duration::seconds(11);
        assert_eq!(store.evict_expired_at(later), 51);
        assert_eq!(indexed(&store), 0, "evicted entries are unlisted");
        assert!(store.users.lock().is_empty(), "and empty users dropped");
    }

    #[test]
    fn the_user_index_follows_a_capped_store_and_writes_over_expired_ids() {
        let store = MemoryStore::with_max_sessions(2);
        let now = t0();
        let a = bound("ada", 5, now);
        store.create_at(&a, now).unwrap();
        store.create_at(&bound("ada", 5, now), now).unwrap();
        // Full: the next create first evicts what has expired, unlisting it.
        let later = now + Duration::seconds(6);
        let b = bound("bob", 60, later);
        store.create_at(&b, later).unwrap();
        assert_eq!(indexed(&store), 1);
        assert_eq!(
            store.users.lock().keys().map(|k| &**k).collect::<Vec<_>>(),
            ["bob"]
        );
        // A new record under the id of an expired one (not evicted yet) replaces its
        // listing.
        let store = MemoryStore::default();
        let old = bound("ada", 5, now);
        store.create_at(&old, now).unwrap();
        let mut reuse = bound("bob", 60, later);
        reuse.id = old.id;
        let shard = store.shard_of(&old.id);
        store.lock(shard).queue.clear(); // so the create cannot evict it first
        store.create_at(&reuse, later).unwrap();
        assert_eq!(reuse.id, old.id, "an expired record's id is free");
        assert_eq!(indexed(&store), 1);
        assert!(store.users.ids("ada").is_empty());
        assert_eq!(store.users.ids("bob"), vec![old.id]);
    }
}
