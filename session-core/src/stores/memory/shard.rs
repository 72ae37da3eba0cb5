//! The shards a [`MemoryStore`](super::MemoryStore) keeps its records in, their expiry
//! queues and cap, and the store's clock.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as Slot;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use time::{Duration, OffsetDateTime};

/// Expired entries removed per write, at most: enough to outpace creation, small enough
/// that no request pays for a sweep.
pub(super) const EVICT_PER_WRITE: usize = 4;

use super::users::Users;
use crate::id::Id;
use crate::state::Changes;
use crate::store::{Packed, Write};

/// The bound on how many records a store holds, shared by its shards: `held` counts
/// every record in the maps (expired ones not evicted yet included), and a record takes
/// its place before it is inserted, so `held` never passes `max`.
pub(super) struct Cap {
    pub(super) max: usize,
    pub(super) held: AtomicUsize,
}

impl Cap {
    /// Room for `max` records.
    pub(super) fn new(max: usize) -> Self {
        Cap {
            max,
            held: AtomicUsize::new(0),
        }
    }

    /// Takes a place for one more record, if one is free.
    pub(super) fn take(&self) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Frees the place of one record.
    pub(super) fn give_back(&self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a capped [`MemoryStore`] refused a new session (the source of the
/// [`StoreError::Unavailable`] it returns).
#[derive(Debug, thiserror::Error)]
#[error("the memory store holds its maximum of {0} live sessions")]
pub(super) struct Full(usize);

impl Full {
    /// The refusal of a store capped by `cap`.
    pub(super) fn of(cap: &Cap) -> Self {
        Full(cap.max)
    }
}

/// An instant as Unix nanoseconds: cheaper to take and compare than an `OffsetDateTime`.
/// Covers 1677 to 2262; instants outside (beyond any TTL) saturate.
pub(super) type Nanos = i64;

pub(super) fn nanos(t: OffsetDateTime) -> Nanos {
    // In i64: `unix_timestamp_nanos` works in i128, several times the cost.
    let secs = t.unix_timestamp();
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(i64::from(t.nanosecond())))
        .unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
}

pub(super) fn now() -> Nanos {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

pub(super) fn instant(n: Nanos) -> OffsetDateTime {
    // In i64: `from_unix_timestamp_nanos` divides an i128, several times the cost.
    let (secs, sub) = (n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000));
    OffsetDateTime::from_unix_timestamp(secs)
        .expect("every i64 of nanoseconds is a valid OffsetDateTime")
        + Duration::nanoseconds(sub)
}

#[derive(Default)]
pub(super) struct Shard {
    pub(super) map: HashMap<Id, Entry, IdHash>,
    /// Expiry queue: `(when, id)`. Each live entry has exactly one item, at `queued`, no
    /// later than its expiry; items of deleted entries are dropped when they come up.
    pub(super) queue: BinaryHeap<Reverse<(Nanos, QueuedId)>>,
    /// The store's cap, if it has one: every removal from `map` gives its place back.
    pub(super) cap: Option<Arc<Cap>>,
    /// The store's index of users: every bound entry inserted or removed updates it.
    pub(super) users: Arc<Users>,
    /// The bound entries of `map`: their user, and when they were last written. Kept
    /// beside the map, not in its entries, so that an unbound session (most of them)
    /// pays nothing for the feature.
    pub(super) bound: HashMap<Id, Bound, IdHash>,
}

/// An id in the queue: two halves, so an item is 24 bytes, not 32 (`u128` aligns to 16).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct QueuedId(u64, u64);

impl From<Id> for QueuedId {
    fn from(id: Id) -> Self {
        let v = id.as_u128();
        QueuedId((v >> 64) as u64, v as u64)
    }
}

impl From<QueuedId> for Id {
    fn from(q: QueuedId) -> Self {
        Id::from_u128((u128::from(q.0) << 64) | u128::from(q.1))
    }
}

/// Hashes an [`Id`] by its own random bits instead of SipHash. The map's keys are ids this
/// process generated (`create` never takes a client's id), so nobody outside can choose
/// keys that collide; a client can only choose what to look up, which probes one bucket
/// like any miss.
#[derive(Clone, Copy, Default)]
pub(super) struct IdHash;

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

#[derive(Default)]
pub(super) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Id`, which hashes through `write_u128`; kept correct regardless.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u128(&mut self, v: u128) {
        // The high half of an id: uniformly random, and not the bits that chose the shard.
        self.0 = (v >> 64) as u64;
    }
}

/// One record: 32 bytes beside its id, plus its encoded body.
pub(super) struct Entry {
    /// The handler's expiry, if any, then the values as a JSON object: see [`encode`].
    /// Shared, so a load or save copies a pointer under the shard's lock and does the
    /// work that grows with the session (decoding, re-encoding) after releasing it.
    pub(super) body: Packed,
    pub(super) expires_at: Nanos,
    pub(super) queued: Nanos,
}

// The per-session cost the docs promise rests on this; a field added here is paid by
// every session (see BENCHMARKS.md, "Memory").
const _: () = assert!(std::mem::size_of::<Entry>() == 32);

/// A bound entry's user, and when it was last written (its "last seen").
pub(super) struct Bound {
    pub(super) user: Arc<str>,
    pub(super) seen: Nanos,
}

/// The user of a session's values, as the index keeps it.
pub(super) fn bound_user(write: &Write<'_>) -> Option<Arc<str>> {
    write.user().map(Arc::from)
}

impl Entry {
    /// Takes its new `body` and expiry (the shard must then requeue it); returns the old
    /// body, for the caller to free after releasing the lock.
    pub(super) fn install(&mut self, body: Packed, expires_at: Nanos) -> Packed {
        self.expires_at = expires_at;
        std::mem::replace(&mut self.body, body)
    }
}

impl Shard {
    /// After a save of `id` applied `changes`: follows a change of its binding, and
    /// marks a bound entry seen `now`.
    pub(super) fn rebind(&mut self, id: Id, write: &Write<'_>, changes: &Changes, now: Nanos) {
        if changes.user_changed() {
            self.bind(id, bound_user(write), now);
        } else {
            self.seen(&id, now);
        }
    }

    /// Binds `id` to `user` (unbinds it for `None`), seen `now`, and lists it.
    pub(super) fn bind(&mut self, id: Id, user: Option<Arc<str>>, now: Nanos) {
        let Some(user) = user else {
            self.unbind(&id);
            return;
        };
        match self.bound.entry(id) {
            Slot::Occupied(mut held) => {
                let b = held.get_mut();
                if b.user != user {
                    self.users.remove(&b.user, &id);
                    self.users.add(&user, id);
                    b.user = user;
                }
                b.seen = now;
            }
            Slot::Vacant(free) => {
                self.users.add(&user, id);
                free.insert(Bound { user, seen: now });
            }
        }
    }

    /// Forgets `id`'s binding, if it has one, and unlists it.
    pub(super) fn unbind(&mut self, id: &Id) {
        if self.bound.is_empty() {
            return;
        }
        if let Some(b) = self.bound.remove(id) {
            self.users.remove(&b.user, id);
        }
    }

    /// Marks `id`, if bound, as written `now`.
    pub(super) fn seen(&mut self, id: &Id, now: Nanos) {
        if self.bound.is_empty() {
            return;
        }
        if let Some(b) = self.bound.get_mut(id) {
            b.seen = now;
        }
    }

    /// Inserts a new entry whose place (in a capped store) the caller has taken, and
    /// queues it. An expired entry of the same id it replaces gives its place back.
    /// A `user` is the session's binding, written `now`.
    pub(super) fn insert(
        &mut self,
        id: Id,
        body: Packed,
        expires_at: Nanos,
        user: Option<Arc<str>>,
        now: Nanos,
    ) {
        let entry = Entry {
            body,
            expires_at,
            queued: expires_at,
        };
        if self.map.insert(id, entry).is_some() {
            // An expired entry of the same id, not evicted yet.
            if let Some(cap) = &self.cap {
                cap.give_back();
            }
        }
        // Replaces (or drops) the binding of an entry it replaced.
        self.bind(id, user, now);
        self.queue.push(Reverse((expires_at, id.into())));
    }

    /// Removes an entry, giving its place back and unlisting its user.
    pub(super) fn remove(&mut self, id: &Id) -> Option<Entry> {
        let removed = self.map.remove(id);
        if let (Some(_), Some(cap)) = (&removed, &self.cap) {
            cap.give_back();
        }
        if removed.is_some() {
            self.unbind(id);
        }
        removed
    }

    /// Keeps the queue invariant after `id`'s expiry moved: an earlier expiry needs an
    /// earlier item; a later one is found when the current item comes up.
    pub(super) fn requeue(&mut self, id: Id) {
        let Some(e) = self.map.get_mut(&id) else {
            return;
        };
        if e.expires_at < e.queued {
            e.queued = e.expires_at;
            self.queue.push(Reverse((e.expires_at, id.into())));
        }
    }

    /// Removes up to `budget` expired entries whose queue items are due.
    pub(super) fn evict(&mut self, now: Nanos, budget: usize) -> usize {
        let mut removed = 0;
        let mut examined = 0;
        while removed < budget && examined < budget.saturating_mul(4) {
            let Some(Reverse((when, queued))) = self.queue.peek().copied() else {
                break;
            };
            if when > now {
                break;
            }
            self.queue.pop();
            examined += 1;
            let id = Id::from(queued);
            let Some(e) = self.map.get_mut(&id) else {
                continue;
            };
            if e.queued != when {
                continue; // a superseded item
            }
            if e.expires_at <= now {
                self.remove(&id);
                removed += 1;
            } else {
                e.queued = e.expires_at;
                self.queue.push(Reverse((e.expires_at, queued)));
            }
        }
        removed
    }
}
