//! Record keys, with each thread remembering the digests of the sessions it keyed lately.

use std::cell::Cell;
use std::sync::atomic::AtomicU64;

use aerospike::{Key, Value};
use session_core::{Id, StoreError};

/// Distinguishes stores (and their namespace and set) in [`DIGESTS`]: never reused.
pub(crate) static NEXT_STORE: AtomicU64 = AtomicU64::new(1);

/// Slots in each thread's [`DIGESTS`]: enough that, under load, a request's load and its
/// save or touch find the digest although other requests' operations ran in between
/// (the pipeline batches up to dozens of them).
const DIGEST_SLOTS: usize = 64;

/// A remembered digest: the store, the session, and its record's digest.
type Remembered = Option<(u64, Id, [u8; 20])>;

thread_local! {
    /// The record digests of keys this thread built lately, one slot per id's low bits
    /// (ids are random, so sessions spread evenly; two in one slot take turns).
    static DIGESTS: [Cell<Remembered>; DIGEST_SLOTS] =
        const { [const { Cell::new(None) }; DIGEST_SLOTS] };
}

/// `id`'s slot in [`DIGESTS`].
fn digest_slot(id: &Id) -> usize {
    usize::from(id.to_bytes()[0]) % DIGEST_SLOTS
}

/// The key of `id`'s record in the store numbered `store`.
///
/// A request's second operation on its session (a load, then a save or touch) usually
/// runs on the same thread: it reuses the digest (RIPEMD-160, the costliest part of a
/// key) this thread computed for the first. A key built that way carries no user key,
/// which the store never sends anyway.
pub(crate) fn session_key(
    store: u64,
    namespace: &str,
    set: &str,
    id: &Id,
) -> Result<Key, StoreError> {
    let slot = digest_slot(id);
    if let Some((was, last, digest)) = DIGESTS.with(|slots| slots[slot].get()) {
        if was == store && last == *id {
            return Ok(Key::with_digest(
                namespace.to_owned(),
                set.to_owned(),
                None,
                digest,
            ));
        }
    }
    let user_key = Value::String(id.encode().as_str().to_owned());
    let key = Key::new(namespace.to_owned(), set.to_owned(), user_key)
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    let digest = key.digest();
    DIGESTS.with(|slots| slots[slot].set(Some((store, *id, digest))));
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// `n` random ids, each in a digest slot of its own.
    fn in_distinct_slots(n: usize) -> Vec<Id> {
        let mut slots = HashSet::new();
        std::iter::repeat_with(Id::random)
            .filter(|id| slots.insert(digest_slot(id)))
            .take(n)
            .collect()
    }

    fn fresh_digest(namespace: &str, set: &str, id: &Id) -> [u8; 20] {
        let user_key = Value::String(id.encode().as_str().to_owned());
        Key::new(namespace.to_owned(), set.to_owned(), user_key)
            .expect("a string key")
            .digest()
    }

    #[test]
    fn a_sessions_digest_is_remembered_across_other_sessions_keys() {
        let ids = in_distinct_slots(DIGEST_SLOTS);
        for id in &ids {
            let key = session_key(1, "test", "sessions", id).unwrap();
            assert!(key.user_key().is_some(), "a first key is computed");
        }
        // Every other session's key was built since the first; each is still found.
        for id in &ids {
            let key = session_key(1, "test", "sessions", id).unwrap();
            assert!(key.user_key().is_none(), "the digest was not remembered");
            assert_eq!(key.digest(), fresh_digest("test", "sessions", id));
            assert_eq!((key.namespace(), key.set_name()), ("test", "sessions"));
        }
    }

    #[test]
    fn a_remembered_digest_serves_only_its_own_store_and_session() {
        let ids = in_distinct_slots(1);
        let id = ids[0];
        session_key(1, "test", "sessions", &id).unwrap();
        // Another store (another set): computed afresh, for its own set.
        let other = session_key(2, "test", "others", &id).unwrap();
        assert!(other.user_key().is_some());
        assert_eq!(other.digest(), fresh_digest("test", "others", &id));
        // Another session in the same slot: computed afresh, and it takes the slot.
        let neighbour = std::iter::repeat_with(Id::random)
            .find(|n| *n != id && digest_slot(n) == digest_slot(&id))
            .expect("random ids fill every slot");
        let key = session_key(2, "test", "others", &neighbour).unwrap();
        assert!(key.user_key().is_some());
        assert_eq!(key.digest(), fresh_digest("test", "others", &neighbour));
        let again = session_key(1, "test", "sessions", &id).unwrap();
        assert!(
            again.user_key().is_some(),
            "the slot was taken by the neighbour"
        );
        assert_eq!(again.digest(), fresh_digest("test", "sessions", &id));
    }
}
