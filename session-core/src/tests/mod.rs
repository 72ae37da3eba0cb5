//! The engine's behaviour, driven through `SessionEngine` with a store that records its
//! calls and fails on demand: one file per behaviour, the shared support here.

use std::sync::{Arc, Mutex};

use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::*;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Load,
    Create,
    Save { keys: Vec<String>, cleared: bool },
    Touch,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Load,
    Create,
    Save,
    Touch,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Unavailable,
    Backend,
    /// Every id is taken: creates and cycles answer `Taken`.
    Collision,
    Decode,
}

impl Fault {
    fn error(self) -> StoreError {
        match self {
            Fault::Unavailable => StoreError::Unavailable("connection refused".into()),
            Fault::Backend => StoreError::Backend("disk on fire".into()),
            Fault::Collision => unreachable!("a taken id is an answer, not an error"),
            Fault::Decode => StoreError::Decode("garbage".into()),
        }
    }
}

/// A `MemoryStore` that records each call and can be told to fail one kind of call.
#[derive(Clone, Debug, Default)]
struct Recorder {
    inner: MemoryStore,
    calls: Arc<Mutex<Vec<Call>>>,
    faults: Arc<Mutex<Vec<(Op, Fault)>>>,
    /// How many of the next creates and cycles find their new id taken.
    taken_next: Arc<Mutex<usize>>,
}

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
    fn fail(&self, op: Op, fault: Fault) {
        self.faults.lock().unwrap().push((op, fault));
    }
    fn heal(&self) {
        self.faults.lock().unwrap().clear();
    }
    fn check(&self, op: Op, call: Call) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push(call);
        let faults = self.faults.lock().unwrap();
        match faults
            .iter()
            .find(|(o, f)| *o == op && *f != Fault::Collision)
        {
            Some((_, f)) => Err(f.error()),
            None => Ok(()),
        }
    }
    /// The next `n` creates (or cycles) find their new id taken.
    fn take_next_ids(&self, n: usize) {
        *self.taken_next.lock().unwrap() = n;
    }
    /// Whether this create's (or cycle's) new id is taken.
    fn taken(&self, op: Op) -> bool {
        if self
            .faults
            .lock()
            .unwrap()
            .contains(&(op, Fault::Collision))
        {
            return true;
        }
        let mut next = self.taken_next.lock().unwrap();
        let taken = *next > 0;
        *next = next.saturating_sub(1);
        taken
    }
}

impl SessionStore for Recorder {
    async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
        self.check(Op::Load, Call::Load)?;
        self.inner.load(id).await
    }
    async fn create(&self, record: &Record, ttl: Ttl) -> Result<Created, StoreError> {
        self.check(Op::Create, Call::Create)?;
        if self.taken(Op::Create) {
            return Ok(Created::Taken);
        }
        self.inner.create(record, ttl).await
    }
    async fn save(
        &self,
        record: &Record,
        changes: &Changes,
        ttl: Ttl,
    ) -> Result<Update, StoreError> {
        let mut keys: Vec<String> = changes
            .ops(&record.data)
            .map(|c| match c {
                Change::Set(k, _) | Change::Remove(k) => k.to_owned(),
            })
            .collect();
        keys.sort();
        self.check(
            Op::Save,
            Call::Save {
                keys,
                cleared: changes.cleared(),
            },
        )?;
        self.inner.save(record, changes, ttl).await
    }
    async fn touch(&self, id: &Id, at: OffsetDateTime, ttl: Ttl) -> Result<Update, StoreError> {
        self.check(Op::Touch, Call::Touch)?;
        self.inner.touch(id, at, ttl).await
    }
    async fn delete(&self, id: &Id) -> Result<(), StoreError> {
        self.check(Op::Delete, Call::Delete)?;
        self.inner.delete(id).await
    }
    /// Recorded as the create and the delete it stands for; a delete fault only fails
    /// the old record's removal, which a cycle logs and survives.
    async fn cycle(&self, old: &Id, record: &Record, ttl: Ttl) -> Result<Cycle, StoreError> {
        self.check(Op::Create, Call::Create)?;
        if self.taken(Op::Create) {
            return Ok(Cycle::Taken);
        }
        let cycled = self.inner.cycle(old, record, ttl).await?;
        if cycled == Cycle::Moved {
            let _ = self.check(Op::Delete, Call::Delete);
        }
        Ok(cycled)
    }
}

struct Harness {
    store: Recorder,
    engine: SessionEngine,
}

fn harness(config: SessionConfig) -> Harness {
    let store = Recorder::default();
    let engine = SessionEngine::new(store.clone(), config);
    Harness { store, engine }
}

fn default_harness() -> Harness {
    harness(SessionConfig::default())
}

/// The `name=value` part of a `Set-Cookie` value, to send back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

fn max_age(set_cookie: &str) -> Option<i64> {
    ::cookie::Cookie::parse(set_cookie.to_owned())
        .unwrap()
        .max_age()
        .map(|d| d.whole_seconds())
}

impl Harness {
    fn start(&self, cookie: Option<&str>) -> LazySession {
        self.engine.start(cookie.map(str::as_bytes))
    }

    /// A request that stores `key = value` in a new session; returns the cookie pair.
    async fn new_session(&self, key: &str, value: serde_json::Value) -> String {
        let lazy = self.start(None);
        lazy.load().await.unwrap().insert_value(key, value).unwrap();
        let f = lazy.finish(200).await;
        assert!(f.error().is_none());
        self.store.calls();
        cookie_pair(f.header().unwrap())
    }
}

fn ready(f: Finish) -> Finished {
    match f {
        Finish::Ready(done) => done,
        Finish::Store(call) => panic!("a store call is due: {call:?}"),
    }
}

fn store(f: Finish) -> StoreCall {
    match f {
        Finish::Store(call) => call,
        Finish::Ready(done) => panic!("no store call is due: {done:?}"),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn memory_harness() -> (MemoryStore, SessionEngine) {
    let store = MemoryStore::default();
    let engine = SessionEngine::new(store.clone(), SessionConfig::default());
    (store, engine)
}

/// One request on `engine` with `cookie`, running `f` on its session; returns the
/// `Set-Cookie` pair, if any.
async fn request(
    engine: &SessionEngine,
    cookie: Option<&str>,
    f: impl FnOnce(&Session),
) -> Option<String> {
    let lazy = engine.start(cookie.map(str::as_bytes));
    f(&lazy.load().await.unwrap());
    let done = lazy.finish(200).await;
    assert!(done.error().is_none());
    done.header().map(cookie_pair)
}

// Each file is test-only, as this module is; said again per file for tools that read
// one file at a time (`shape.py`).
#[cfg(test)]
mod bad_input;
#[cfg(test)]
mod concurrency;
#[cfg(test)]
mod cycle_and_logout;
#[cfg(test)]
mod deferred;
#[cfg(test)]
mod expiry_and_touch;
#[cfg(test)]
mod interop;
#[cfg(test)]
mod lifecycle;
#[cfg(test)]
mod now_store;
#[cfg(test)]
mod packed_values;
#[cfg(test)]
mod users;
