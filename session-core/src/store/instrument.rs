//! The engine's view of a store: [`DynStore`], [`SessionStore`] made object-safe, and
//! [`Instrumented`], which traces and measures each call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use time::OffsetDateTime;

use super::meter::{Meters, Op};
use super::now::{Loaded, NowStore, Packed, Write};
use super::trace::{traced, traced_now};
use super::{Created, Cycle, EndPass, Record, SessionInfo, SessionStore, StoreError, Update};
use crate::expiry::Ttl;
use crate::id::Id;
use crate::state::Changes;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`SessionStore`] made object-safe, so the session handle is not generic; implemented
/// by [`Instrumented`], which traces and measures each call.
pub(crate) trait DynStore: fmt::Debug + Send + Sync {
    fn load<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;
    fn create<'a>(&'a self, r: &'a Record, ttl: Ttl) -> BoxFuture<'a, Result<Created, StoreError>>;
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
        r: &'a Record,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Cycle, StoreError>>;
    fn user_sessions<'a>(
        &'a self,
        user: &'a str,
        current: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, StoreError>>;
    fn end_user_pass<'a>(
        &'a self,
        user: &'a str,
        keep: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<EndPass, StoreError>>;
    /// The store's [`NowStore`], traced and measured as the futures are.
    fn now(&self) -> Option<Now<'_>>;
}

/// A store's [`NowStore`] with the engine's metric handles.
#[derive(Clone, Copy)]
pub(crate) struct Now<'a> {
    store: &'a dyn NowStore,
    meters: &'a Meters,
}

impl Now<'_> {
    pub(crate) fn load(&self, id: &Id, now: OffsetDateTime) -> Result<Option<Loaded>, StoreError> {
        traced_now(Op::Load, *id, self.meters, || self.store.load_now(id, now))
    }
    pub(crate) fn create(
        &self,
        id: &Id,
        write: Write<'_>,
        now: OffsetDateTime,
    ) -> Result<Created, StoreError> {
        traced_now(Op::Create, *id, self.meters, || {
            self.store.create_now(id, write, now)
        })
    }
    pub(crate) fn save(
        &self,
        id: &Id,
        write: Write<'_>,
        changes: &Changes,
        now: OffsetDateTime,
    ) -> Result<Option<Packed>, StoreError> {
        // Measured as a save's outcome: applied, or the record missing.
        let mut stored = None;
        let update = traced_now(Op::Save, *id, self.meters, || {
            let saved = self.store.save_now(id, write, changes, now)?;
            let update = match saved {
                Some(_) => Update::Applied,
                None => Update::Missing,
            };
            stored = saved;
            Ok(update)
        });
        update.map(|_| stored)
    }
    pub(crate) fn touch(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Update, StoreError> {
        traced_now(Op::Touch, *id, self.meters, || {
            self.store.touch_now(id, expires_at, now)
        })
    }
}

/// A store with the engine's metric handles: every call in a span, counted and timed.
#[derive(Debug)]
pub(crate) struct Instrumented<S> {
    pub(crate) store: S,
    /// Shared with the engine, which counts requests by how they started.
    pub(crate) meters: Arc<Meters>,
}

impl<S: SessionStore> DynStore for Instrumented<S> {
    fn load<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        let m = &self.meters;
        Box::pin(traced(Op::Load, *id, m, self.store.load(id)))
    }
    fn create<'a>(&'a self, r: &'a Record, ttl: Ttl) -> BoxFuture<'a, Result<Created, StoreError>> {
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
        r: &'a Record,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Cycle, StoreError>> {
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
    fn end_user_pass<'a>(
        &'a self,
        user: &'a str,
        keep: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<EndPass, StoreError>> {
        Box::pin(self.store.end_user_pass(user, keep))
    }
    fn now(&self) -> Option<Now<'_>> {
        let store = self.store.now()?;
        Some(Now {
            store,
            meters: &self.meters,
        })
    }
}
