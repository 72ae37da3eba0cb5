//! [`LazySession`]: one request's session, from the ids it presented to the store
//! action its end calls for.

use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use time::OffsetDateTime;

use super::finished::{Finish, Finished};
use super::guard::AbandonGuard;
use super::plan::{plan, Facts, StoreAction};
use super::run::{self, Call, StoreCall};
use crate::cookie::read::{self, Candidates, Lookup};
use crate::cookie::SessionConfig;
use crate::request::Shared;
use crate::session::Session;
use crate::state::{Data, State, Stored, Values};
use crate::store::meter::Start;
use crate::store::{Packed, StoreError};

/// A loaded session's values: packed, read key by key, or parsed.
enum Body {
    Packed(Packed),
    Map(Data),
}

/// What a request presented before [`LazySession::identify`] ran: nothing.
static NO_IDS: Candidates = Candidates::EMPTY;

/// One request's session before a handler asked for it. Adapters put it into the request
/// and call [`load`](Self::load) from their extractor and [`finish`](Self::finish) after
/// the handler. Cheap to clone.
#[derive(Clone)]
pub struct LazySession {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for LazySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazySession")
            .field("incoming", &self.incoming().first().map(|i| i.id))
            .field("loaded", &self.is_loaded())
            .finish()
    }
}

impl LazySession {
    /// The configuration of the engine that started this request.
    pub fn config(&self) -> &SessionConfig {
        &self.shared.engine.config
    }

    /// Reads the ids the request presented: every value of the request header named by
    /// [`SessionConfig::request_header`], in order. Only the first call reads; later ones
    /// (another extractor of the same request) change nothing. Requests started with
    /// [`SessionEngine::start`](super::SessionEngine::start) were identified then.
    pub fn identify<'a, I>(&self, header_values: I)
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        self.shared.incoming.get_or_init(|| {
            let engine = &self.shared.engine;
            match read::lookup(&engine.config, header_values) {
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
    pub(super) fn incoming(&self) -> &Candidates {
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
    /// [`SessionEngine::start_deferred`](super::SessionEngine::start_deferred) must be
    /// [`identify`](Self::identify)-ed first (debug builds panic otherwise; release builds
    /// see no id).
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
                    // A store with a `NowStore` hands over the record's body, its values
                    // parsed only when the request needs them; other stores, a record.
                    let found = match shared.engine.store.now() {
                        Some(store) => store.load(&incoming.id, now).and_then(|loaded| {
                            loaded
                                .map(|l| Ok((l.expires_at, l.body.expiry()?, Body::Packed(l.body))))
                                .transpose()
                        }),
                        None => shared.engine.store.load(&incoming.id).await.map(|record| {
                            record.map(|r| (r.expires_at, r.expiry, Body::Map(r.data)))
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
                                Body::Packed(body) => state.raw = Some(body.into_raw()),
                                Body::Map(data) => state.data = Values::Map(data),
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
        self.try_finish_with(self.deletions_only(status), OffsetDateTime::now_utc())
    }

    /// [`try_finish`](Self::try_finish), writing only deletions when `deletions_only`.
    fn try_finish_with(&self, deletions_only: bool, now: OffsetDateTime) -> Finish {
        let engine = &self.shared.engine;
        let done = if self.is_untouched() {
            Finished::default()
        } else {
            let mut state = self.lock();
            let facts = if self.is_loaded() {
                Facts::of(&state, &engine.config, !self.incoming().is_empty())
            } else {
                // Flushed without loading: delete what the request presented.
                let first = self.incoming().first().map(|i| i.id);
                Facts::flushed(first, &engine.config, now)
            };
            let decision = plan(&facts, &engine.config, deletions_only, now);
            let store = match decision.store {
                StoreAction::None => None,
                _ => engine.store.now().filter(|_| run::has_now(&decision)),
            };
            match store {
                Some(store) => run::now(store, &engine.config, &mut state, &decision, now),
                None if decision.store == StoreAction::None => {
                    run::without_store(&engine.config, &decision)
                }
                None => {
                    let call = Call::of(&mut state, &decision);
                    return Finish::Store(StoreCall {
                        lazy: self.clone(),
                        call,
                    });
                }
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
        match self.try_finish_with(deletions_only, now) {
            Finish::Ready(finished) => finished,
            Finish::Store(call) => call.run().await,
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
