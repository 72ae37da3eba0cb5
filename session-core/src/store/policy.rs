//! Policy every store would otherwise repeat, run once here: a fresh id when one is taken,
//! and the log lines of a cycle that leaves a record behind.

use time::OffsetDateTime;

use super::instrument::{DynStore, Now};
use super::now::Write;
use super::{Created, Cycle, EndPass, Record, SessionStore, StoreError, Update};
use crate::expiry::Ttl;
use crate::id::Id;

/// How many ids a new record is tried under before [`StoreError::IdCollision`]. With 128
/// random bits a second try is already astronomically unlikely; more than one means
/// something is wrong with the generator.
pub(crate) const CREATE_ATTEMPTS: u32 = 8;

/// `id` was taken: the next try goes under a fresh one.
fn taken(id: &mut Id) {
    tracing::warn!(id = %id, "session id collision; picking another");
    *id = Id::random();
}

/// Creates `record` in `store`, under a fresh id whenever its id is taken; on success
/// `record.id` is the id it is stored under. For stores that serve another interface
/// whose create picks its own ids (a tower-sessions `SessionStore`, say).
///
/// # Errors
///
/// The store's error, or [`StoreError::IdCollision`] when every id tried was taken.
pub async fn create_unique<S: SessionStore + ?Sized>(
    store: &S,
    record: &mut Record,
    ttl: Ttl,
) -> Result<(), StoreError> {
    for _ in 0..CREATE_ATTEMPTS {
        match store.create(record, ttl).await? {
            Created::Stored => return Ok(()),
            Created::Taken => taken(&mut record.id),
        }
    }
    Err(StoreError::IdCollision(CREATE_ATTEMPTS))
}

/// [`create_unique`] through the engine's instrumented store.
pub(crate) async fn create_with_retries(
    store: &dyn DynStore,
    record: &mut Record,
    ttl: Ttl,
) -> Result<(), StoreError> {
    for _ in 0..CREATE_ATTEMPTS {
        match store.create(record, ttl).await? {
            Created::Stored => return Ok(()),
            Created::Taken => taken(&mut record.id),
        }
    }
    Err(StoreError::IdCollision(CREATE_ATTEMPTS))
}

/// A cycle through the engine's instrumented store, under a fresh id whenever the new
/// id is taken: applied (the session moved to `record.id`) or missing (it had ended).
pub(crate) async fn cycle_with_retries(
    store: &dyn DynStore,
    old: &Id,
    record: &mut Record,
    ttl: Ttl,
) -> Result<Update, StoreError> {
    for _ in 0..CREATE_ATTEMPTS {
        match store.cycle(old, record, ttl).await? {
            Cycle::Moved => return Ok(Update::Applied),
            Cycle::Ended => return Ok(Update::Missing),
            Cycle::Taken => taken(&mut record.id),
        }
    }
    Err(StoreError::IdCollision(CREATE_ATTEMPTS))
}

/// A create through a [`NowStore`](super::NowStore), under a fresh id (written to `id`)
/// whenever the id is taken.
pub(crate) fn create_now(
    store: Now<'_>,
    id: &mut Id,
    write: Write<'_>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for _ in 0..CREATE_ATTEMPTS {
        match store.create(id, write, now)? {
            Created::Stored => return Ok(()),
            Created::Taken => taken(id),
        }
    }
    Err(StoreError::IdCollision(CREATE_ATTEMPTS))
}

/// A cycle's new record could not be removed after the old one turned out to have ended.
pub(crate) fn orphan_left(new: &Id, e: &StoreError) {
    tracing::warn!(id = %new, error = %e.report(), "could not remove the record of a cycle that lost a race with a logout; it ends by its TTL");
}

/// A cycle moved the session, but its old record could not be removed.
pub(crate) fn old_left(old: &Id, new: &Id, e: &StoreError) {
    tracing::warn!(old = %old, new = %new, error = %e.report(), "session id cycled but the old record could not be removed; it expires by its TTL");
}

/// How many passes of ending a user's sessions are made at most: each ends what the
/// index lists, and another pass catches a session that moved to a new id (a login's
/// `cycle_id`) while the one before ran.
pub(crate) const END_PASSES: usize = 4;

/// Ends every live session bound to `user` but `keep`, in passes of
/// [`SessionStore::end_user_pass`] until one lists nothing (at most four), and returns
/// how many it ended. When it returns, no session of `user` but `keep` is live,
/// including one a request in flight moved to a new id meanwhile.
///
/// # Errors
///
/// The store's error; [`StoreError::Unsupported`] from a store without an index.
pub async fn end_user_sessions<S: SessionStore + ?Sized>(
    store: &S,
    user: &str,
    keep: Option<&Id>,
) -> Result<usize, StoreError> {
    let mut ended = 0;
    for _ in 0..END_PASSES {
        let pass = store.end_user_pass(user, keep).await?;
        ended += pass.ended;
        if pass.listed == 0 {
            break;
        }
    }
    Ok(ended)
}

/// [`end_user_sessions`] through the engine's instrumented store.
pub(crate) async fn end_user_passes(
    store: &dyn DynStore,
    user: &str,
    keep: Option<&Id>,
) -> Result<usize, StoreError> {
    let mut ended = 0;
    for _ in 0..END_PASSES {
        let EndPass { listed, ended: now } = store.end_user_pass(user, keep).await?;
        ended += now;
        if listed == 0 {
            break;
        }
    }
    Ok(ended)
}
