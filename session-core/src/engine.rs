//! The request life cycle that adapters drive: [`SessionEngine`], [`LazySession`],
//! [`Finished`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError};
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use time::OffsetDateTime;

use crate::codec::{Candidates, Lookup};
use crate::config::{SessionConfig, TouchPolicy};
use crate::expiry::{Expiry, Lifetime, Ttl};
use crate::id::Id;
use crate::memory::{instant, nanos, update_of, MemoryStore, Parts};
use crate::request::{EngineInner, Shared};
use crate::session::Session;
use crate::state::Values;
use crate::state::{new_state_mutex, State, Status, Stored};
use crate::state::{Changes, Data};
use crate::store::meter::{Meters, Op, Start};
use crate::store::trace::traced_now;
use crate::store::{Instrumented, Record, SessionStore, StoreError, Update};

/// Counts of bad session ids an engine has seen: a brute-force signal worth exporting.
/// Both count requests that used their session (the ids of a request whose handlers
/// never extract it are not even read), not distinct ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Requests whose ids were all malformed, or failed signature or decryption checks.
    pub rejected_ids: u64,
    /// Requests with a well-formed, verified id that the store did not know (expired,
    /// logged out, or guessed). Counted when the session is loaded.
    pub unknown_ids: u64,
}

/// A store and a configuration: what an adapter holds, to start one [`LazySession`] per
/// request. Cheap to clone.
///
/// This is the interface for adapter authors; applications use an adapter
/// (`session_axum::SessionLayer`, `session_actix::SessionMiddleware`).
#[derive(Clone)]
pub struct SessionEngine {
    inner: Arc<EngineInner>,
}

impl fmt::Debug for SessionEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEngine")
            .field("store", &self.inner.store)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl SessionEngine {
    /// An engine over `store` with a validated `config`.
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Self {
        Self::for_adapter(store, config, "custom")
    }

    /// As [`new`](Self::new), for the adapter named `adapter` (the `adapter` label of
    /// the metrics, with the `metrics` feature: `axum`, `actix-web`).
    pub fn for_adapter(
        store: impl SessionStore,
        config: SessionConfig,
        adapter: &'static str,
    ) -> Self {
        let meters = Arc::new(Meters::new(store.label(), adapter));
        let any = &store as &dyn std::any::Any;
        let memory = any.downcast_ref::<MemoryStore>().cloned().or_else(|| {
            // As an adapter may hold it, to share it between its clones.
            any.downcast_ref::<Arc<MemoryStore>>()
                .map(|m| MemoryStore::clone(m))
        });
        SessionEngine {
            inner: Arc::new(EngineInner {
                store: Box::new(Instrumented {
                    store,
                    meters: meters.clone(),
                }),
                memory,
                config,
                rejected: AtomicU64::new(0),
                unknown: AtomicU64::new(0),
                meters,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The bad ids seen so far.
    pub fn metrics(&self) -> Metrics {
        Metrics {
            rejected_ids: self.inner.rejected.load(Ordering::Relaxed),
            unknown_ids: self.inner.unknown.load(Ordering::Relaxed),
        }
    }

    /// Starts a request and reads its ids now: give it every value of the request header
    /// named by [`SessionConfig::request_header`], in order. Costs no store call.
    pub fn start<'a, I>(&self, header_values: I) -> LazySession
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let lazy = self.start_deferred();
        lazy.identify(header_values);
        lazy
    }

    /// Starts a request without reading its ids, for adapters whose extractors see the
    /// request's headers: they call [`LazySession::identify`] before
    /// [`load`](LazySession::load) or [`flush`](LazySession::flush), so a request that
    /// never uses its session costs no parsing, verification or decryption at all.
    /// Until `identify` is called, the request presented no id.
    pub fn start_deferred(&self) -> LazySession {
        LazySession {
            shared: Arc::new(Shared {
                engine: self.inner.clone(),
                incoming: OnceLock::new(),
                loaded: tokio::sync::OnceCell::new(),
                flushed: AtomicBool::new(false),
                finished: AtomicBool::new(false),
                #[cfg(feature = "metrics")]
                rejected: AtomicBool::new(false),
                #[cfg(feature = "metrics")]
                counted: AtomicBool::new(false),
                state: new_state_mutex(),
            }),
        }
    }
}

/// What a request presented before [`LazySession::identify`] ran: nothing.
static NO_IDS: Candidates = Candidates::EMPTY;

/// One request's session before a handler asked for it. Adapters put it into the request
/// and call [`load`](Self::load) from their extractor and [`finish`](Self::finish) after
/// the handler. Cheap to clone.
#[derive(Clone)]
pub struct LazySession {
    shared: Arc<Shared>,
}

impl fmt::Debug for LazySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazySession")
            .field("incoming", &self.incoming().first().map(|i| i.id))
            .field("loaded", &self.is_loaded())
            .finish()
    }
}

/// What the adapter sends after the handler: at most one header, and an error that turns
/// the response into a 5xx (see [`StoreError::status`]).
///
/// Its `Debug` never shows the header's value, which carries the session id.
#[derive(Default)]
#[must_use]
pub struct Finished {
    header: Option<String>,
    error: Option<StoreError>,
}

impl fmt::Debug for Finished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finished")
            .field("header", &self.header.as_ref().map(|_| "REDACTED"))
            .field("error", &self.error)
            .finish()
    }
}

impl Finished {
    /// The value of the response header named by [`SessionConfig::response_header`] to
    /// add (for cookies, one `Set-Cookie` to append beside any the handler set).
    pub fn header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// The store failure that happened, if any. The adapter must then answer with
    /// [`StoreError::status`], keep [`header`](Self::header) (a logout whose delete failed
    /// still removes the cookie), and log the error, not send its text.
    pub fn error(&self) -> Option<&StoreError> {
        self.error.as_ref()
    }

    /// Both parts.
    pub fn into_parts(self) -> (Option<String>, Option<StoreError>) {
        (self.header, self.error)
    }

    fn send(value: String) -> Self {
        Finished {
            header: Some(value),
            error: None,
        }
    }

    fn failed(header: Option<String>, error: StoreError) -> Self {
        Finished {
            header,
            error: Some(error),
        }
    }
}

/// How a request ends, from [`LazySession::try_finish`].
#[derive(Debug)]
#[must_use]
// Moved once, into the future that runs it: boxing the store call would cost the
// allocation `try_finish` exists to avoid.
#[allow(clippy::large_enum_variant)]
pub enum Finish {
    /// No store call was due: the outcome.
    Ready(Finished),
    /// A store call is due: await [`StoreCall::run`].
    Store(StoreCall),
}

/// The store call that ends a request, from [`LazySession::try_finish`]: await
/// [`run`](Self::run) for the outcome.
#[must_use = "the session's store call happens when `run` is awaited"]
pub struct StoreCall {
    lazy: LazySession,
    plan: Plan,
}

impl fmt::Debug for StoreCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreCall").finish_non_exhaustive()
    }
}

impl StoreCall {
    /// Makes the store call and returns the outcome.
    ///
    /// The future holds only the one step the plan needs (about 600 bytes at most), so
    /// an adapter that boxes it stays within the allocator's fast size classes.
    pub fn run(self) -> impl Future<Output = Finished> + Send + 'static {
        let StoreCall { lazy, plan } = self;
        let step = match plan {
            Plan::Purge {
                delete,
                create,
                forget,
            } => Step::Purge {
                fut: lazy.clone().purge(delete, create, forget),
            },
            Plan::Replace { create, delete } => Step::Replace {
                fut: lazy.clone().replace(create, delete),
            },
            Plan::Save(record, changes, life, stale) => Step::Save {
                fut: lazy.clone().save(record, changes, life, stale),
            },
            Plan::Touch(id, life, stale) => Step::Touch {
                fut: lazy.clone().touch(id, life, stale),
            },
            Plan::Nothing => Step::Done {
                done: Some(Finished::default()),
            },
            Plan::Reissue(id, life) => Step::Done {
                done: Some(Finished::send(lazy.config().issue_for(&id, &life))),
            },
            Plan::Done(done) => Step::Done { done: Some(done) },
        };
        Run { lazy, step }
    }
}

pin_project! {
    /// [`StoreCall::run`]'s future: the plan's one step, then the request marked finished.
    struct Run<P, R, S, T> {
        lazy: LazySession,
        #[pin]
        step: Step<P, R, S, T>,
    }
}

pin_project! {
    #[project = StepProj]
    enum Step<P, R, S, T> {
        Purge { #[pin] fut: P },
        Replace { #[pin] fut: R },
        Save { #[pin] fut: S },
        Touch { #[pin] fut: T },
        Done { done: Option<Finished> },
    }
}

impl<P, R, S, T> Future for Run<P, R, S, T>
where
    P: Future<Output = Finished>,
    R: Future<Output = Finished>,
    S: Future<Output = Finished>,
    T: Future<Output = Finished>,
{
    type Output = Finished;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Finished> {
        let this = self.project();
        let finished = match this.step.project() {
            StepProj::Purge { fut } => ready!(fut.poll(cx)),
            StepProj::Replace { fut } => ready!(fut.poll(cx)),
            StepProj::Save { fut } => ready!(fut.poll(cx)),
            StepProj::Touch { fut } => ready!(fut.poll(cx)),
            StepProj::Done { done } => done.take().expect("polled after completion"),
        };
        this.lazy.shared.finished.store(true, Ordering::Release);
        Poll::Ready(finished)
    }
}

/// From [`LazySession::guard`]: carries out a request's pending deletions (a logout, the
/// old id of a `cycle_id`) if dropped before [`disarm`](Self::disarm), so a client that
/// goes away mid-request cannot keep a session alive that it logged out.
#[derive(Debug)]
#[must_use = "a guard does its work when dropped"]
pub struct AbandonGuard(Option<LazySession>);

impl AbandonGuard {
    /// The session it guards, until [`disarm`](Self::disarm)ed: an adapter that holds
    /// the guard needs no other handle on the session.
    pub fn session(&self) -> Option<&LazySession> {
        self.0.as_ref()
    }

    /// The response is ready (and [`LazySession::finish`] ran, or was not needed):
    /// nothing is left to do.
    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        let Some(pending) = self.0.take().and_then(|lazy| lazy.abandoned()) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(pending)),
            Err(_) => tracing::error!(
                "a request that logged out was abandoned outside a tokio runtime; the session was not deleted"
            ),
        }
    }
}

/// A loaded session's values: parsed, or the body of a `MemoryStore` record.
enum Loaded {
    Map(Data),
    Raw(Arc<[u8]>),
}

/// What to do after the handler, decided under the lock and done without it.
enum Plan {
    Nothing,
    /// Delete `delete` (if any), then create `create` (if any). For logout.
    Purge {
        delete: Option<Id>,
        create: Option<(Record, Lifetime)>,
        forget: bool,
    },
    /// Create `create` (if any), then delete `delete` (if any). For new sessions and
    /// `cycle_id`; with nothing to create, deleting `delete` empties the session.
    Replace {
        create: Option<(Record, Lifetime)>,
        delete: Option<Id>,
    },
    /// Write the changes; `bool`: the cookie was verified with an old key.
    Save(Record, Changes, Lifetime, bool),
    Touch(Id, Lifetime, bool),
    Reissue(Id, Lifetime),
    /// Done while deciding: the store completes its calls without waiting.
    Done(Finished),
}

impl LazySession {
    /// The configuration of the engine that started this request.
    pub fn config(&self) -> &SessionConfig {
        &self.shared.engine.config
    }

    /// Reads the ids the request presented: every value of the request header named by
    /// [`SessionConfig::request_header`], in order. Only the first call reads; later ones
    /// (another extractor of the same request) change nothing. Requests started with
    /// [`SessionEngine::start`] were identified then.
    pub fn identify<'a, I>(&self, header_values: I)
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        self.shared.incoming.get_or_init(|| {
            let engine = &self.shared.engine;
            match engine.config.lookup(header_values) {
                Lookup::Found(found) => found,
                Lookup::Absent => Candidates::EMPTY,
                Lookup::Rejected => {
                    engine.rejected.fetch_add(1, Ordering::Relaxed);
                    #[cfg(feature = "metrics")]
                    self.shared.rejected.store(true, Ordering::Relaxed);
                    Candidates::EMPTY
                }
            }
        });
    }

    /// The ids the request presented, or none before [`identify`](Self::identify).
    fn incoming(&self) -> &Candidates {
        self.shared.incoming.get().unwrap_or(&NO_IDS)
    }

    /// Whether a handler asked for the session.
    pub fn is_loaded(&self) -> bool {
        self.shared.loaded.initialized()
    }

    /// Whether nothing used the session in this request (not loaded, not flushed): the
    /// adapter can skip [`finish`](Self::finish) entirely.
    pub fn is_untouched(&self) -> bool {
        !self.is_loaded() && !self.shared.flushed.load(Ordering::Relaxed)
    }

    /// Ends the session (logout) without reading it: the record of the id the request
    /// presented is deleted and the cookie removed when the request ends. Unlike
    /// [`Session::flush`](crate::Session::flush) this needs no store read, so a logout
    /// still removes the cookie, and still reports the failure, when the store is down.
    pub fn flush(&self) {
        debug_assert!(
            self.shared.incoming.get().is_some(),
            "LazySession::flush before identify: the request's ids were never read"
        );
        match self.loaded() {
            Some(session) => session.flush(),
            None => self.shared.flushed.store(true, Ordering::Relaxed),
        }
    }

    /// The session, if it was loaded already.
    pub fn loaded(&self) -> Option<Session> {
        self.is_loaded().then(|| Session {
            shared: self.shared.clone(),
        })
    }

    /// Loads the session: one store read the first time (none when the request carried no
    /// valid id), none afterwards. A session started with
    /// [`SessionEngine::start_deferred`] must be [`identify`](Self::identify)-ed first
    /// (debug builds panic otherwise; release builds see no id).
    ///
    /// An unknown, expired or undecodable record is a fresh, empty session (an undecodable
    /// one is logged).
    ///
    /// # Errors
    ///
    /// The store's error; a later call tries again.
    pub async fn load(&self) -> Result<Session, StoreError> {
        self.load_at(OffsetDateTime::now_utc()).await
    }

    pub(crate) async fn load_at(&self, now: OffsetDateTime) -> Result<Session, StoreError> {
        let shared = &self.shared;
        debug_assert!(
            shared.incoming.get().is_some(),
            "LazySession::load before identify: the request's ids were never read"
        );
        shared
            .loaded
            .get_or_try_init(|| async {
                if shared.flushed.load(Ordering::Relaxed) {
                    // Being logged out: nothing to read.
                    let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.purge = true;
                    // The presented ids are deleted at the end, existing or not.
                    state.stored = self.incoming().first().map(|i| Stored {
                        id: i.id,
                        expires_at: now,
                    });
                    return Ok(());
                }
                let meters = &shared.engine.meters;
                #[cfg(feature = "metrics")]
                shared.counted.store(true, Ordering::Relaxed);
                if self.incoming().is_empty() {
                    #[cfg(feature = "metrics")]
                    meters.request(if shared.rejected.load(Ordering::Relaxed) {
                        Start::RejectedId
                    } else {
                        Start::New
                    });
                    return Ok(());
                }
                // The first presented id that names a live session: a cookie planted
                // beside the user's own cannot hide it.
                for incoming in self.incoming().iter() {
                    // `MemoryStore` hands over the record's body, its values parsed only
                    // when the request needs them; other stores, a decoded record.
                    let found = match &shared.engine.memory {
                        Some(memory) => traced_now(Op::Load, incoming.id, &shared.engine.meters, || {
                            memory.load_body_now(&incoming.id, nanos(now))
                        })
                        .map(|body| {
                            body.map(|b| (instant(b.expires_at), b.expiry, Loaded::Raw(b.raw)))
                        }),
                        None => shared.engine.store.load(&incoming.id).await.map(|record| {
                            record.map(|r| (r.expires_at, r.expiry, Loaded::Map(r.data)))
                        }),
                    };
                    match found {
                        Ok(Some((expires_at, expiry, values))) if expires_at > now => {
                            let mut state =
                                shared.state.lock().unwrap_or_else(PoisonError::into_inner);
                            state.stored = Some(Stored {
                                id: incoming.id,
                                expires_at,
                            });
                            state.stale_key = incoming.stale_key;
                            match values {
                                Loaded::Raw(raw) => state.raw = Some(raw),
                                Loaded::Map(data) => state.data = Values::Map(data),
                            }
                            state.expiry = expiry;
                            meters.request(Start::Loaded);
                            return Ok(());
                        }
                        Ok(_) => {
                            tracing::debug!(id = %incoming.id, "unknown or expired session id");
                        }
                        Err(StoreError::Decode(e)) => {
                            tracing::warn!(id = %incoming.id, error = %e, "undecodable session record: ignoring it");
                        }
                        Err(e) => {
                            meters.request(Start::Error);
                            return Err(e);
                        }
                    }
                }
                meters.request(Start::UnknownId);
                shared.engine.unknown.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("no presented session id is live: starting a fresh session");
                Ok(())
            })
            .await?;
        Ok(Session {
            shared: shared.clone(),
        })
    }

    /// Ends the request: given the response status, does the one store action the
    /// session's fate calls for (nothing, create, save the change, touch, cycle the id, or
    /// delete) and returns the header to send.
    ///
    /// A session no handler loaded costs nothing. When the status is a server error (5xx)
    /// and [`save_on_server_error`](crate::SessionConfigBuilder::save_on_server_error) is
    /// off, no change is written, but deletions still are: a logout (`flush`) deletes
    /// the session and removes the cookie, and a `cycle_id` deletes the old id (the
    /// session ends, since its new record is not written).
    pub async fn finish(&self, status: u16) -> Finished {
        match self.try_finish(status) {
            Finish::Ready(finished) => finished,
            Finish::Store(call) => call.run().await,
        }
    }

    /// [`finish`](Self::finish) in two steps: decides at once what the request's end
    /// calls for, and when that needs no store call (nothing to write, or only a cookie
    /// to send again) gives the outcome; otherwise the [`StoreCall`] to await. Lets an
    /// adapter skip building (and boxing) a future for the many requests that only
    /// read their session.
    pub fn try_finish(&self, status: u16) -> Finish {
        let done = match self.decide(self.deletions_only(status), OffsetDateTime::now_utc()) {
            Plan::Nothing => Finished::default(),
            Plan::Reissue(id, life) => {
                Finished::send(self.shared.engine.config.issue_for(&id, &life))
            }
            Plan::Done(done) => done,
            plan => {
                return Finish::Store(StoreCall {
                    lazy: self.clone(),
                    plan,
                })
            }
        };
        self.shared.finished.store(true, Ordering::Release);
        Finish::Ready(done)
    }

    /// For a request abandoned before [`finish`](Self::finish) ended (the client went
    /// away and the adapter's response future was dropped): the deletions the request
    /// asked for, as a future the adapter spawns, so a logout is never lost. `None` when
    /// there is nothing to delete or `finish` ran to its end.
    pub fn abandoned(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        if self.shared.finished.load(Ordering::Acquire) || !self.wants_deletion() {
            return None;
        }
        let lazy = self.clone();
        Some(async move {
            let done = lazy.finish_with(true, OffsetDateTime::now_utc()).await;
            if let Some(e) = done.error() {
                tracing::error!(error = %e.report(), "could not delete the session of an abandoned request");
            }
        })
    }

    /// A guard for adapters to hold until the response is ready: dropped while armed
    /// (the response future was dropped, the client went away), it spawns
    /// [`abandoned`](Self::abandoned)'s deletions on the current tokio runtime.
    pub fn guard(&self) -> AbandonGuard {
        AbandonGuard(Some(self.clone()))
    }

    /// [`guard`](Self::guard), taking this handle instead of cloning it.
    pub fn into_guard(self) -> AbandonGuard {
        AbandonGuard(Some(self))
    }

    /// Whether the request logged out or cycled the id of a session it presented.
    fn wants_deletion(&self) -> bool {
        if !self.is_loaded() {
            return self.shared.flushed.load(Ordering::Relaxed) && !self.incoming().is_empty();
        }
        let state = self.lock();
        (state.purge || state.renew) && state.stored.is_some()
    }

    #[cfg(test)]
    pub(crate) async fn finish_at(&self, status: u16, now: OffsetDateTime) -> Finished {
        self.finish_with(self.deletions_only(status), now).await
    }

    /// Whether a response with `status` may write only deletions: a server error, unless
    /// the configuration saves on those too.
    fn deletions_only(&self, status: u16) -> bool {
        status >= 500 && !self.shared.engine.config.save_on_server_error
    }

    /// `finish`, writing only deletions when `deletions_only`.
    async fn finish_with(&self, deletions_only: bool, now: OffsetDateTime) -> Finished {
        let plan = self.decide(deletions_only, now);
        StoreCall {
            lazy: self.clone(),
            plan,
        }
        .run()
        .await
    }

    /// What the session's fate calls for, decided without a store call.
    fn decide(&self, deletions_only: bool, now: OffsetDateTime) -> Plan {
        if self.is_untouched() {
            return Plan::Nothing;
        }
        if self.is_loaded() {
            self.plan(now, deletions_only)
        } else {
            // Flushed without loading: delete what the request presented.
            let id = self.incoming().first().map(|i| i.id);
            Plan::Purge {
                delete: id,
                create: None,
                forget: id.is_some(),
            }
        }
    }

    /// Logout: delete `delete` (and, after a logout without a read, every id the
    /// request presented), then create `create` if the session lives on.
    async fn purge(
        self,
        delete: Option<Id>,
        create: Option<(Record, Lifetime)>,
        forget: bool,
    ) -> Finished {
        let engine = &self.shared.engine;
        let (cfg, store) = (&engine.config, &*engine.store);
        if let Some(old) = delete {
            if let Err(e) = store.delete(&old).await {
                return Finished::failed(Some(cfg.removal()), e);
            }
            tracing::debug!(id = %old, "session deleted");
        }
        if self.shared.flushed.load(Ordering::Relaxed) {
            // Logged out without a read: every id the request presented goes,
            // whichever of them named the user's session.
            let others = self.incoming().iter().filter(|c| Some(c.id) != delete);
            for other in others {
                if let Err(e) = store.delete(&other.id).await {
                    return Finished::failed(Some(cfg.removal()), e);
                }
            }
        }
        match create {
            Some((mut record, life)) => match store.create(&mut record, life.ttl).await {
                Ok(()) => self.created(record, life),
                Err(e) => Finished::failed(Some(cfg.removal()), e),
            },
            None if forget => Finished::send(cfg.removal()),
            None => Finished::default(),
        }
    }

    /// A new session, or a cycled id: create `create`, then delete `delete`.
    async fn replace(self, create: Option<(Record, Lifetime)>, delete: Option<Id>) -> Finished {
        let engine = &self.shared.engine;
        let (cfg, store) = (&engine.config, &*engine.store);
        let Some((mut record, life)) = create else {
            // Nothing left to keep: the session ends.
            let Some(old) = delete else {
                return Finished::default();
            };
            if let Err(e) = store.delete(&old).await {
                return Finished::failed(Some(cfg.removal()), e);
            }
            self.forget_stored();
            return Finished::send(cfg.removal());
        };
        let Some(old) = delete else {
            return match store.create(&mut record, life.ttl).await {
                Ok(()) => self.created(record, life),
                Err(e) => Finished::failed(None, e),
            };
        };
        // Only while the old record lives: a logout, revocation or expiry that
        // happened while this request was in flight stands.
        match store.cycle(&old, &mut record, life.ttl).await {
            Ok(Update::Applied) => {
                tracing::debug!(old = %old, new = %record.id, "session id cycled");
                self.created(record, life)
            }
            Ok(Update::Missing) => {
                tracing::debug!(id = %old, "session ended before its id was cycled; not bringing it back");
                self.forget_stored();
                Finished::send(cfg.removal())
            }
            Err(e) => Finished::failed(None, e),
        }
    }

    async fn save(self, record: Record, changes: Changes, life: Lifetime, stale: bool) -> Finished {
        let saved = self
            .shared
            .engine
            .store
            .save(&record, &changes, life.ttl)
            .await;
        self.updated_in(&mut self.lock(), saved, &record.id, life, stale)
    }

    async fn touch(self, id: Id, life: Lifetime, stale: bool) -> Finished {
        let engine = &self.shared.engine;
        let touched = engine.store.touch(&id, life.expires_at, life.ttl).await;
        self.updated_in(&mut self.lock(), touched, &id, life, stale)
    }

    fn plan(&self, now: OffsetDateTime, deletions_only: bool) -> Plan {
        let engine = &self.shared.engine;
        let cfg = &engine.config;
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let expiry = state.expiry.unwrap_or(cfg.expiry);
        let status = state.status();
        // A change that left no value at all: the session ends.
        let emptied = status == Status::Changed && state.holds_nothing();
        // Writes take the values as a map, but for a save of a loaded `MemoryStore`
        // record, which takes only the keys this request set (the rest are in the
        // stored body already).
        let needs_map = match status {
            Status::Unchanged => false,
            Status::Changed => engine.memory.is_none() || emptied,
            Status::Purged | Status::Renewed => true,
        };
        if needs_map {
            state.values_mut();
        }
        let life = Lifetime::of(&expiry, now, cfg.default_ttl, cfg.max_ttl);
        let old = state.stored.map(|s| s.id);
        // The record to write, built only when something is written.
        let record = |id: Id, life: Lifetime| Record {
            id,
            data: state.data.to_data(),
            expiry: state.expiry,
            expires_at: life.expires_at,
        };
        // A new record holding the data, if the session lives on and has any.
        let keep = || match life {
            Some(life) if !state.data.is_empty() => Some((record(Id::random(), life), life)),
            _ => None,
        };

        if deletions_only {
            // A server error: no change is written, but a logout or the old id of a
            // cycle is still deleted, and the client told to forget it.
            return match status {
                Status::Purged | Status::Renewed if old.is_some() => Plan::Purge {
                    delete: old,
                    create: None,
                    forget: true,
                },
                Status::Purged if !self.incoming().is_empty() => Plan::Purge {
                    delete: None,
                    create: None,
                    forget: true,
                },
                _ => Plan::Nothing,
            };
        }
        if status == Status::Purged {
            return Plan::Purge {
                delete: old,
                create: keep(),
                forget: old.is_some() || !self.incoming().is_empty(),
            };
        }
        let Some(stored) = state.stored else {
            if let (Some(memory), Some(life)) = (&engine.memory, life) {
                if !state.data.is_empty() {
                    let mut id = Id::random();
                    // A new session: every value it holds was set in this request.
                    let parts = Parts {
                        data: state.data.as_ref(),
                        expiry: state.expiry,
                        expires_at: nanos(life.expires_at),
                        bound: state.changes.user_changed(),
                    };
                    let created = traced_now(Op::Create, id, &engine.meters, || {
                        memory.create_now(&mut id, &parts, nanos(now))
                    });
                    return Plan::Done(match created {
                        Ok(()) => {
                            Self::created_in(&mut state, id, &life);
                            self.issued(&id, &life)
                        }
                        Err(e) => Finished::failed(None, e),
                    });
                }
            }
            return match keep() {
                Some(create) => Plan::Replace {
                    create: Some(create),
                    delete: None,
                },
                None => Plan::Nothing,
            };
        };
        let Some(life) = life.filter(|_| status != Status::Renewed && !emptied) else {
            // A new id, an expiry already over, or no value left.
            return Plan::Replace {
                create: keep(),
                delete: old,
            };
        };
        let stale = state.stale_key;
        if status == Status::Changed {
            if let Some(memory) = &engine.memory {
                let changes = std::mem::take(&mut state.changes);
                let parts = Parts {
                    data: state.data.as_ref(),
                    expiry: state.expiry,
                    expires_at: nanos(life.expires_at),
                    bound: true,
                };
                let mut stored_body = None;
                let saved = traced_now(Op::Save, stored.id, &engine.meters, || {
                    let saved = memory.save_now(&stored.id, &parts, &changes, nanos(now));
                    saved.map(|body| {
                        let update = update_of(body.as_ref());
                        stored_body = body;
                        update
                    })
                });
                if let (Some(body), Some(_)) = (stored_body, &state.raw) {
                    // The values as they now stand, written keys included: `data` held
                    // only those, over the loaded body, and `changes` (now taken) said
                    // which keys the body no longer answers for.
                    state.raw = Some(body);
                    drop(std::mem::take(&mut state.data));
                }
                return Plan::Done(self.updated_in(&mut state, saved, &stored.id, life, stale));
            }
            let record = record(stored.id, life);
            // Taken, not copied: `finish` runs once, and clears them after a save anyway.
            let changes = std::mem::take(&mut state.changes);
            return Plan::Save(record, changes, life, stale);
        }
        if should_touch(cfg.touch, &expiry, stored.expires_at, &life) {
            if let Some(memory) = &engine.memory {
                let at = nanos(life.expires_at);
                let touched = traced_now(Op::Touch, stored.id, &engine.meters, || {
                    Ok(memory.touch_now(&stored.id, at, nanos(now)))
                });
                return Plan::Done(self.updated_in(&mut state, touched, &stored.id, life, stale));
            }
            return Plan::Touch(stored.id, life, stale);
        }
        if stale {
            if let Some(left) = Lifetime::remaining(&expiry, stored.expires_at, now, cfg.max_ttl) {
                return Plan::Reissue(stored.id, left);
            }
        }
        Plan::Nothing
    }

    fn created(&self, record: Record, life: Lifetime) -> Finished {
        Self::created_in(&mut self.lock(), record.id, &life);
        self.issued(&record.id, &life)
    }

    /// Records in `state` that the session now lives under `id`, as created.
    fn created_in(state: &mut State, id: Id, life: &Lifetime) {
        state.stored = Some(Stored {
            id,
            expires_at: life.expires_at,
        });
        state.renew = false;
        state.purge = false;
        state.expiry_changed = false;
        state.changes = Changes::default();
        tracing::debug!(id = %id, "session created");
    }

    /// The header that hands the client `id`.
    fn issued(&self, id: &Id, life: &Lifetime) -> Finished {
        let header = self.shared.engine.config.issue_for(id, life);
        Finished::send(header)
    }

    /// After a save or touch of the stored record: the new expiry is recorded.
    fn refreshed_in(state: &mut State, life: &Lifetime) {
        if let Some(s) = &mut state.stored {
            s.expires_at = life.expires_at;
        }
        state.changes = Changes::default();
        state.expiry_changed = false;
    }

    /// A save's or touch's outcome for the stored record `id`, `state` updated to match:
    /// applied, the new expiry is recorded and the cookie sent again if the client needs
    /// it ([`reissued`](Self::reissued)); the record gone, the session is not brought
    /// back and the cookie is removed.
    fn updated_in(
        &self,
        state: &mut State,
        update: Result<Update, StoreError>,
        id: &Id,
        life: Lifetime,
        stale: bool,
    ) -> Finished {
        match update {
            Ok(Update::Applied) => {
                // A handler's new expiry changes the cookie's lifetime as well: a
                // browser-session cookie replaces a persistent one only if it is sent.
                let resend = stale || state.expiry_changed;
                Self::refreshed_in(state, &life);
                self.reissued(id, life, resend)
            }
            Ok(Update::Missing) => {
                tracing::debug!(id = %id, "session ended before it was saved or touched; not bringing it back");
                state.stored = None;
                Finished::send(self.shared.engine.config.removal())
            }
            Err(e) => Finished::failed(None, e),
        }
    }

    /// The cookie after a save or touch: sent only if the client needs it. The client
    /// holds this id already, so a browser-session cookie (no Max-Age) is sent again only
    /// to replace one under an old key, or one whose lifetime the handler changed
    /// (`resend`).
    fn reissued(&self, id: &Id, life: Lifetime, resend: bool) -> Finished {
        if life.max_age.is_some() || resend {
            Finished::send(self.shared.engine.config.issue_for(id, &life))
        } else {
            Finished::default()
        }
    }

    fn forget_stored(&self) {
        self.lock().stored = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether an unchanged session gets its life extended now.
fn should_touch(
    policy: TouchPolicy,
    expiry: &Expiry,
    stored_until: OffsetDateTime,
    fresh: &Lifetime,
) -> bool {
    if matches!(expiry, Expiry::AtDateTime(_)) {
        // A fixed end: refreshing cannot move it.
        return false;
    }
    let gained = fresh.expires_at - stored_until;
    match policy {
        TouchPolicy::OnStateChanges => false,
        TouchPolicy::OnEveryRequest => true,
        TouchPolicy::Throttled { percent } => {
            let window = fresh.ttl.as_duration();
            gained * 100 >= window * i32::from(percent)
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<SessionEngine>();
    check::<LazySession>();
    check::<Session>();
    check::<Finished>();
    check::<Ttl>();
}
