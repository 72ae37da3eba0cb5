//! [`Probe`]: a store wrapper that counts calls and fails on demand.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use session_core::store::EndPass;
use session_core::{Changes, Created, Cycle, Id, Record, SessionStore, StoreError, Ttl, Update};
use time::OffsetDateTime;

/// Which store call to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `load`
    Load,
    /// `create`
    Create,
    /// `save`
    Save,
    /// `touch`
    Touch,
    /// `delete`
    Delete,
}

/// How to fail it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// [`StoreError::Unavailable`]
    Unavailable,
    /// [`StoreError::Backend`]
    Backend,
}

/// The text every injected fault carries; responses must never show it.
pub const SECRET: &str = "db-password=hunter2 at 10.9.8.7";

#[derive(Debug, Default)]
struct Counts {
    calls: [AtomicUsize; 5],
    faults: Mutex<Vec<(Op, Fault)>>,
}

/// Wraps a store, counting each kind of call and failing the ones it is told to.
#[derive(Debug, Clone)]
pub struct Probe<S> {
    inner: S,
    counts: Arc<Counts>,
}

impl<S: SessionStore> Probe<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Probe {
            inner,
            counts: Arc::default(),
        }
    }

    /// The wrapped store, for reading records behind the engine's back.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// How many `op` calls were made.
    pub fn calls(&self, op: Op) -> usize {
        self.counts.calls[op as usize].load(Ordering::SeqCst)
    }

    /// How many writes (create, save, touch, delete) were made.
    pub fn writes(&self) -> usize {
        [Op::Create, Op::Save, Op::Touch, Op::Delete]
            .into_iter()
            .map(|op| self.calls(op))
            .sum()
    }

    /// Fails every later `op` with `fault`.
    pub fn fail(&self, op: Op, fault: Fault) {
        self.counts.faults.lock().unwrap().push((op, fault));
    }

    /// Stops failing.
    pub fn heal(&self) {
        self.counts.faults.lock().unwrap().clear();
    }

    /// The record of `id`, read directly from the wrapped store.
    pub async fn record(&self, id: &Id) -> Option<Record> {
        self.inner
            .load(id)
            .await
            .expect("the wrapped store answers")
    }

    fn enter(&self, op: Op) -> Result<(), StoreError> {
        self.counts.calls[op as usize].fetch_add(1, Ordering::SeqCst);
        let faults = self.counts.faults.lock().unwrap();
        match faults.iter().find(|(o, _)| *o == op) {
            None => Ok(()),
            Some((_, Fault::Unavailable)) => Err(StoreError::Unavailable(SECRET.into())),
            Some((_, Fault::Backend)) => Err(StoreError::Backend(SECRET.into())),
        }
    }
}

impl<S: SessionStore> SessionStore for Probe<S> {
    fn label(&self) -> &'static str {
        self.inner.label()
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
        self.enter(Op::Load)?;
        self.inner.load(id).await
    }
    async fn create(&self, record: &Record, ttl: Ttl) -> Result<Created, StoreError> {
        self.enter(Op::Create)?;
        self.inner.create(record, ttl).await
    }
    async fn save(
        &self,
        record: &Record,
        changes: &Changes,
        ttl: Ttl,
    ) -> Result<Update, StoreError> {
        self.enter(Op::Save)?;
        self.inner.save(record, changes, ttl).await
    }
    async fn touch(&self, id: &Id, at: OffsetDateTime, ttl: Ttl) -> Result<Update, StoreError> {
        self.enter(Op::Touch)?;
        self.inner.touch(id, at, ttl).await
    }
    async fn delete(&self, id: &Id) -> Result<(), StoreError> {
        self.enter(Op::Delete)?;
        self.inner.delete(id).await
    }
    /// Counted, and failed on demand, as a `create` (what it starts with).
    async fn cycle(&self, old: &Id, record: &Record, ttl: Ttl) -> Result<Cycle, StoreError> {
        self.enter(Op::Create)?;
        self.inner.cycle(old, record, ttl).await
    }
    async fn user_sessions(
        &self,
        user: &str,
        current: Option<&Id>,
    ) -> Result<Vec<session_core::SessionInfo>, StoreError> {
        self.inner.user_sessions(user, current).await
    }
    async fn end_user_pass(&self, user: &str, keep: Option<&Id>) -> Result<EndPass, StoreError> {
        self.inner.end_user_pass(user, keep).await
    }
}
