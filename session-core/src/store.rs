//! The [`SessionStore`] trait, the [`Record`] it keeps, and the [`Changes`] it is asked to
//! write.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::expiry::{Expiry, Ttl};
use crate::id::Id;
use crate::meter::{Meters, Op};
use crate::state::{Changes, Data};
use crate::trace::traced;
use crate::user::SessionInfo;

/// A boxed error kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// How many ids [`SessionStore::create`] implementations in this family try before giving
/// up with [`StoreError::IdCollision`]. With 128 random bits, a second try is already
/// astronomically unlikely; more than one means something is wrong with the generator.
pub const CREATE_ATTEMPTS: u32 = 8;

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

/// The outcome of an update-only write ([`SessionStore::save`], [`SessionStore::touch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// The record existed and was updated.
    Applied,
    /// The record no longer exists (expired or deleted meanwhile) and was not brought back.
    Missing,
}

/// Why a store operation failed.
///
/// Adapters answer [`Unavailable`](StoreError::Unavailable) with `503 Service
/// Unavailable` and everything else with `500`; neither response carries this error's
/// text, which is logged instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached or is overloaded right now: connection refused or
    /// lost, a timeout, a busy key. Retrying later may succeed.
    #[error("the session store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The session is larger than the store accepts.
    #[error("the session is larger than the session store accepts")]
    TooLarge(#[source] BoxError),
    /// [`SessionStore::create`] found every id it tried taken.
    #[error("no free session id after {0} tries")]
    IdCollision(u32),
    /// A stored record could not be decoded. The engine treats the session as absent
    /// (and logs this); it is never an error page.
    #[error("a stored session record could not be decoded")]
    Decode(#[source] BoxError),
    /// A session could not be encoded for the store.
    #[error("the session could not be encoded for the store")]
    Encode(#[source] BoxError),
    /// Any other failure of the store.
    #[error("the session store failed")]
    Backend(#[source] BoxError),
    /// The store cannot do this at all: for example finding a user's sessions
    /// ([`SessionStore::user_sessions`]) on a store that keeps no index of them. Says
    /// what was asked.
    #[error("the session store cannot do this: {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// Whether this is a transient unavailability (the adapters answer 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// This error and its whole source chain, `: `-separated, for logs. Responses never
    /// carry it.
    pub fn report(&self) -> impl fmt::Display + '_ {
        Report(self)
    }

    /// The status code an adapter answers with: 503 when unavailable, 500 otherwise.
    pub fn status(&self) -> http::StatusCode {
        if self.is_unavailable() {
            http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            http::StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

struct Report<'a>(&'a StoreError);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
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

    /// Stores a new record that lives for `ttl`.
    ///
    /// Contract: never overwrites an existing, unexpired record. When `record.id` is
    /// taken, set `record.id` to a fresh [`Id::random`] and try again, at most
    /// [`CREATE_ATTEMPTS`] times in all, then fail with [`StoreError::IdCollision`]. On
    /// success `record.id` is the id the record is stored under.
    fn create(
        &self,
        record: &mut Record,
        ttl: Ttl,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

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
    /// at login): creates `record` as [`create`](Self::create) does (never overwriting;
    /// `record.id` may change), living for `ttl`, and deletes `old`, but only if `old`
    /// still exists and has not expired.
    ///
    /// Contract: when `old` is gone (a logout, a revocation or its expiry happened while
    /// the request was in flight), nothing is left created and the result is
    /// [`Update::Missing`]: a slower request must not bring a logged-out session back
    /// under a new id. A failure never loses the old session: the new record is created
    /// before the old one is deleted (a failure to delete the old one afterwards is
    /// logged, and the move still counts; the old record then ends by its TTL).
    ///
    /// The default implementation checks `old` with [`load`](Self::load) before and
    /// after creating the new record, then deletes `old`: a logout landing between the
    /// second check and the delete is missed. Stores that can decide it in one step
    /// override it (`MemoryStore` under its locks; the Aerospike store with a delete
    /// that reports whether the record was live).
    fn cycle(
        &self,
        old: &Id,
        record: &mut Record,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Update, StoreError>> + Send {
        async move {
            if self.load(old).await?.is_none() {
                return Ok(Update::Missing);
            }
            self.create(record, ttl).await?;
            if self.load(old).await?.is_none() {
                // Logged out meanwhile: the new record was never handed out.
                if let Err(e) = self.delete(&record.id).await {
                    tracing::warn!(id = %record.id, error = %e.report(), "could not remove the record of a cycle that lost a race with a logout; it ends by its TTL");
                }
                return Ok(Update::Missing);
            }
            if let Err(e) = self.delete(old).await {
                tracing::warn!(old = %old, new = %record.id, error = %e.report(), "session id cycled but the old record could not be deleted; it expires by its TTL");
            }
            Ok(Update::Applied)
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

    /// Deletes every live session bound to `user` except `keep`, and returns how many
    /// it deleted ("log out other devices" with `keep`, "log out everywhere" without).
    ///
    /// Contract: when it returns, no session of `user` but `keep` is live, including
    /// one that a request in flight moved to a new id meanwhile ([`cycle`](Self::cycle)
    /// at a login): implementations make further passes (at most
    /// [`END_PASSES`](crate::user::END_PASSES)) while the index still lists one. A
    /// request in flight that saves or touches a deleted session afterwards finds it
    /// missing (saves are update-only) and brings nothing back.
    ///
    /// The default answers [`StoreError::Unsupported`], as for
    /// [`user_sessions`](Self::user_sessions).
    fn end_user_sessions(
        &self,
        user: &str,
        keep: Option<&Id>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        let _ = (user, keep);
        async { Err(StoreError::Unsupported("ending a user's sessions")) }
    }
}

impl<S: SessionStore> SessionStore for Arc<S> {
    fn load(&self, id: &Id) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        (**self).load(id)
    }
    fn create(
        &self,
        record: &mut Record,
        ttl: Ttl,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
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
        record: &mut Record,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Update, StoreError>> + Send {
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
    fn end_user_sessions(
        &self,
        user: &str,
        keep: Option<&Id>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        (**self).end_user_sessions(user, keep)
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`SessionStore`] made object-safe, so the session handle is not generic; implemented
/// by [`Instrumented`], which traces and measures each call.
pub(crate) trait DynStore: fmt::Debug + Send + Sync {
    fn load<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;
    fn create<'a>(&'a self, r: &'a mut Record, ttl: Ttl) -> BoxFuture<'a, Result<(), StoreError>>;
    fn save<'a>(
        &'a self,
        r: &'a Record,
        c: &'a Changes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Update, StoreError>>;
    fn touch<'a>(
        &'a self,
        id: &'a Id,
        at: OffsetDateTime,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Update, StoreError>>;
    fn delete<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<(), StoreError>>;
    fn cycle<'a>(
        &'a self,
        old: &'a Id,
        r: &'a mut Record,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Update, StoreError>>;
    fn user_sessions<'a>(
        &'a self,
        user: &'a str,
        current: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, StoreError>>;
    fn end_user_sessions<'a>(
        &'a self,
        user: &'a str,
        keep: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<usize, StoreError>>;
}

/// A store with the engine's metric handles: every call in a span, counted and timed.
#[derive(Debug)]
pub(crate) struct Instrumented<S> {
    pub(crate) store: S,
    /// Shared with the engine, which measures its direct `MemoryStore` calls too.
    pub(crate) meters: Arc<Meters>,
}

impl<S: SessionStore> DynStore for Instrumented<S> {
    fn load<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        let m = &self.meters;
        Box::pin(traced(Op::Load, *id, m, self.store.load(id)))
    }
    fn create<'a>(&'a self, r: &'a mut Record, ttl: Ttl) -> BoxFuture<'a, Result<(), StoreError>> {
        let m = &self.meters;
        Box::pin(traced(Op::Create, r.id, m, self.store.create(r, ttl)))
    }
    fn save<'a>(
        &'a self,
        r: &'a Record,
        c: &'a Changes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Update, StoreError>> {
        let m = &self.meters;
        Box::pin(traced(Op::Save, r.id, m, self.store.save(r, c, ttl)))
    }
    fn touch<'a>(
        &'a self,
        id: &'a Id,
        at: OffsetDateTime,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Update, StoreError>> {
        let m = &self.meters;
        Box::pin(traced(Op::Touch, *id, m, self.store.touch(id, at, ttl)))
    }
    fn delete<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<(), StoreError>> {
        let m = &self.meters;
        Box::pin(traced(Op::Delete, *id, m, self.store.delete(id)))
    }
    fn cycle<'a>(
        &'a self,
        old: &'a Id,
        r: &'a mut Record,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Update, StoreError>> {
        let m = &self.meters;
        Box::pin(traced(Op::Cycle, *old, m, self.store.cycle(old, r, ttl)))
    }
    fn user_sessions<'a>(
        &'a self,
        user: &'a str,
        current: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, StoreError>> {
        Box::pin(self.store.user_sessions(user, current))
    }
    fn end_user_sessions<'a>(
        &'a self,
        user: &'a str,
        keep: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(self.store.end_user_sessions(user, keep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_separates_unavailable_from_other_failures() {
        let e = StoreError::Unavailable("down".into());
        assert!(e.is_unavailable());
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        let e = StoreError::Backend("broken".into());
        assert_eq!(e.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        // The source is kept, not copied into the message.
        assert_eq!(e.to_string(), "the session store failed");
        assert_eq!(e.source().unwrap().to_string(), "broken");
        assert_eq!(e.report().to_string(), "the session store failed: broken");
    }
}
