//! For store authors: the [`SessionStore`] trait, the [`Record`] it keeps, the
//! [`Changes`] it is asked to write, and [`NowStore`], the capability through which an
//! in-process store serves the engine without futures.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::expiry::{Expiry, Ttl};
use crate::id::Id;
use crate::state::{Changes, Data};

mod instrument;
pub(crate) mod meter;
mod now;
mod outcome;
mod policy;
pub(crate) mod trace;
pub(crate) mod users;

pub(crate) use instrument::{DynStore, Instrumented, Now};
pub use now::{Loaded, NowStore, Packed, Write};
pub use outcome::{BoxError, Created, Cycle, StoreError, Update};
pub(crate) use policy::{create_now, create_with_retries, cycle_with_retries, end_user_passes};
pub use policy::{create_unique, end_user_sessions};
pub use users::{sort_sessions, EndPass, SessionInfo};

/// A session as a store keeps it. Its `Debug` shows the short id and the keys, never the
/// values.
#[derive(Clone, PartialEq)]
pub struct Record {
    /// The session id.
    pub id: Id,
    /// The session's values.
    pub data: Data,
    /// The expiry a handler set with [`Session::set_expiry`](crate::Session::set_expiry);
    /// `None` means "the configured default", so changing the configuration applies to
    /// existing sessions.
    pub expiry: Option<Expiry>,
    /// When the record stops being valid. A store never returns a record whose
    /// `expires_at` has passed.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&String> = self.data.keys().collect();
        keys.sort();
        f.debug_struct("Record")
            .field("id", &self.id)
            .field("keys", &keys)
            .field("expiry", &self.expiry)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where sessions are kept. Implement it for a database; [`MemoryStore`](crate::MemoryStore)
/// is the embedded default and [`TowerStore`](crate::TowerStore) puts any tower-sessions
/// store behind it.
///
/// The engine calls each method at most once per request, and only for sessions a handler
/// actually used. Implementations may write `async fn` for each method; the futures must
/// be `Send`.
pub trait SessionStore: fmt::Debug + Send + Sync + 'static {
    /// Loads the record of `id`.
    ///
    /// Contract: returns `Ok(None)` for an unknown id and for a record whose `expires_at`
    /// has passed (even if the database has not removed it yet). A record that exists but
    /// cannot be decoded is [`StoreError::Decode`], which the engine treats as absent.
    fn load(&self, id: &Id) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Stores a new record that lives for `ttl`, unless its id is taken.
    ///
    /// Contract: create-if-absent, in one step. A `record.id` that names a record (live,
    /// or one the store keeps as ended) is [`Created::Taken`], and nothing is written:
    /// the engine picks a fresh [`Id::random`] and calls again, eight times in all at
    /// most, then fails with [`StoreError::IdCollision`]. A store never picks another id
    /// itself.
    fn create(
        &self,
        record: &Record,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send;

    /// Writes `changes` (and the record's `expiry`/`expires_at`) to the existing record
    /// `record.id`, which then lives for `ttl`.
    ///
    /// `record` holds the complete state after the change, so a store may write just the
    /// changed keys or the whole record.
    ///
    /// Contract: update-only. If the record no longer exists (it expired or was deleted
    /// meanwhile), returns [`Update::Missing`] and writes nothing: a late save must not
    /// bring a logged-out session back. Stores that write only the changed keys keep
    /// concurrent changes of different keys of one session.
    fn save(
        &self,
        record: &Record,
        changes: &Changes,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Update, StoreError>> + Send;

    /// Extends the life of record `id` to `expires_at` (`ttl` from now) without rewriting
    /// its data.
    ///
    /// Contract: update-only, like [`save`](Self::save): a missing record is
    /// [`Update::Missing`] and stays missing.
    fn touch(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Update, StoreError>> + Send;

    /// Removes the record of `id`. Removing a missing record succeeds.
    fn delete(&self, id: &Id) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves a live session to a new id ([`Session::cycle_id`](crate::Session::cycle_id),
    /// at login): creates `record` as [`create`](Self::create) does (never overwriting:
    /// a taken `record.id` is [`Cycle::Taken`], and the engine tries a fresh id), living
    /// for `ttl`, and removes `old`, but only if `old` is still live.
    ///
    /// Contract: when `old` is gone (a logout, a revocation or its expiry happened while
    /// the request was in flight), nothing is left created and the result is
    /// [`Cycle::Ended`]: a slower request must not bring a logged-out session back under
    /// a new id. A failure never loses the old session: the new record is created before
    /// the old one is removed (a failure to remove the old one afterwards is logged, and
    /// the move still counts; the old record then ends by its TTL).
    ///
    /// The default implementation checks `old` with [`load`](Self::load) before and
    /// after creating the new record, then deletes `old`: a logout landing between the
    /// second check and the delete is missed. Stores that can decide it in one step
    /// override it (`MemoryStore` under its locks; the Aerospike store with a removal
    /// that reports whether the record was live).
    fn cycle(
        &self,
        old: &Id,
        record: &Record,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Cycle, StoreError>> + Send {
        async move {
            if self.load(old).await?.is_none() {
                return Ok(Cycle::Ended);
            }
            if self.create(record, ttl).await? == Created::Taken {
                return Ok(Cycle::Taken);
            }
            if self.load(old).await?.is_none() {
                // Logged out meanwhile: the new record was never handed out.
                if let Err(e) = self.delete(&record.id).await {
                    policy::orphan_left(&record.id, &e);
                }
                return Ok(Cycle::Ended);
            }
            if let Err(e) = self.delete(old).await {
                policy::old_left(old, &record.id, &e);
            }
            Ok(Cycle::Moved)
        }
    }

    /// The store's name in metrics (the `store` label, with the `metrics` feature):
    /// `memory`, `aerospike`, `tower-sessions`; `custom` unless a store says.
    fn label(&self) -> &'static str {
        "custom"
    }

    /// The live sessions bound to `user` ([`Session::set_user`](crate::Session::set_user)),
    /// in no particular order; the one whose id is `current` is marked.
    ///
    /// Stores that keep an index of bindings implement it (`MemoryStore`, the Aerospike
    /// store); the default answers [`StoreError::Unsupported`], as `TowerStore` does: a
    /// tower-sessions store has no way to find records by their values.
    fn user_sessions(
        &self,
        user: &str,
        current: Option<&Id>,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send {
        let _ = (user, current);
        async { Err(StoreError::Unsupported("finding a user's sessions")) }
    }

    /// One pass of ending `user`'s sessions: ends each session the index binds to `user`,
    /// but `keep`, that is still bound to `user` when it comes to it ("log out other
    /// devices" with `keep`, "log out everywhere" without). Returns how many the index
    /// listed and how many live ones it ended.
    ///
    /// The engine makes passes until one lists nothing (at most four): a session that a
    /// request in flight moved to a new id during a pass ([`cycle`](Self::cycle) at a
    /// login) is listed by the next. A request in flight that saves or touches an ended
    /// session afterwards finds it missing (saves are update-only) and brings nothing
    /// back.
    ///
    /// The default answers [`StoreError::Unsupported`], as for
    /// [`user_sessions`](Self::user_sessions).
    fn end_user_pass(
        &self,
        user: &str,
        keep: Option<&Id>,
    ) -> impl Future<Output = Result<EndPass, StoreError>> + Send {
        let _ = (user, keep);
        async { Err(StoreError::Unsupported("ending a user's sessions")) }
    }

    /// This store's operations that complete without waiting, if it has them: an
    /// in-process store offers them, and the engine then calls them in place of
    /// [`load`](Self::load), [`create`](Self::create), [`save`](Self::save) and
    /// [`touch`](Self::touch), with no future to build and no copy of the session's
    /// values. The default is `None`: every call goes through the futures.
    fn now(&self) -> Option<&dyn NowStore> {
        None
    }
}

impl<S: SessionStore> SessionStore for Arc<S> {
    fn load(&self, id: &Id) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        (**self).load(id)
    }
    fn create(
        &self,
        record: &Record,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send {
        (**self).create(record, ttl)
    }
    fn save(
        &self,
        record: &Record,
        changes: &Changes,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Update, StoreError>> + Send {
        (**self).save(record, changes, ttl)
    }
    fn touch(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Update, StoreError>> + Send {
        (**self).touch(id, expires_at, ttl)
    }
    fn delete(&self, id: &Id) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete(id)
    }
    fn cycle(
        &self,
        old: &Id,
        record: &Record,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Cycle, StoreError>> + Send {
        (**self).cycle(old, record, ttl)
    }
    fn label(&self) -> &'static str {
        (**self).label()
    }
    fn user_sessions(
        &self,
        user: &str,
        current: Option<&Id>,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send {
        (**self).user_sessions(user, current)
    }
    fn end_user_pass(
        &self,
        user: &str,
        keep: Option<&Id>,
    ) -> impl Future<Output = Result<EndPass, StoreError>> + Send {
        (**self).end_user_pass(user, keep)
    }
    fn now(&self) -> Option<&dyn NowStore> {
        (**self).now()
    }
}
