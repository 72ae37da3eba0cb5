//! Carrying out a [`Decision`]: at once, under the state's lock, through a store's
//! [`NowStore`](crate::store::NowStore), or as a [`StoreCall`] whose future owns what it
//! writes. Both end in the same settling of the state and the same cookie rules.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use time::OffsetDateTime;

use super::finished::Finished;
use super::lazy::LazySession;
use super::plan::{CookieAction, Decision, StoreAction};
use crate::cookie::write;
use crate::cookie::SessionConfig;
use crate::expiry::Lifetime;
use crate::id::Id;
use crate::state::{Changes, State, Stored};
use crate::store::{create_now, create_with_retries, cycle_with_retries};
use crate::store::{Now, Record, StoreError, Update, Write};

/// Whether `decision`'s store action has a form that completes without waiting.
pub(super) fn has_now(decision: &Decision) -> bool {
    matches!(
        decision.store,
        StoreAction::Create(_) | StoreAction::Save { .. } | StoreAction::Touch { .. }
    )
}

/// Carries out a create, save or touch ([`has_now`]) through `store` at once, with the
/// values borrowed from `state` (no copy of them), and settles `state`.
pub(super) fn now(
    store: Now<'_>,
    config: &SessionConfig,
    state: &mut State,
    decision: &Decision,
    now: OffsetDateTime,
) -> Finished {
    match decision.store {
        StoreAction::Create(life) => {
            let mut id = Id::random();
            // A new session: every value it holds was set in this request.
            let write = Write {
                values: state.data.as_ref(),
                expiry: state.expiry,
                expires_at: life.expires_at,
                may_bind: state.changes.user_changed(),
            };
            match create_now(store, &mut id, write, now) {
                Ok(()) => created_in(config, state, id, life, decision.cookie),
                Err(e) => Finished::failed(None, e),
            }
        }
        StoreAction::Save { id, life } => {
            // `data` holds only the keys this request set when a loaded body is held:
            // the store copies the others from the record.
            let changes = std::mem::take(&mut state.changes);
            let write = Write {
                values: state.data.as_ref(),
                expiry: state.expiry,
                expires_at: life.expires_at,
                may_bind: true,
            };
            let saved = store
                .save(&id, write, &changes, now)
                .map(|body| match body {
                    Some(body) => {
                        if state.raw.is_some() {
                            // The values as they now stand, written keys included: `data`
                            // held only those, over the loaded body, and `changes` (now
                            // taken) said which keys the body no longer answers for.
                            state.raw = Some(body.into_raw());
                            drop(std::mem::take(&mut state.data));
                        }
                        Update::Applied
                    }
                    None => Update::Missing,
                });
            updated_in(config, state, saved, &id, life, decision.cookie)
        }
        StoreAction::Touch { id, life } => {
            let touched = store.touch(&id, life.expires_at, now);
            updated_in(config, state, touched, &id, life, decision.cookie)
        }
        StoreAction::None | StoreAction::Purge { .. } | StoreAction::Replace { .. } => {
            unreachable!("only creates, saves and touches run at once")
        }
    }
}

/// The client's answer when `decision` calls for no store action.
pub(super) fn without_store(config: &SessionConfig, decision: &Decision) -> Finished {
    answer(config, decision.cookie, None)
}

/// A store call to make, with what it writes owned: the state is not locked while it
/// runs.
pub(super) enum Call {
    /// Delete `delete` (if any), then create `create` (if any). For logout.
    Purge {
        delete: Option<Id>,
        create: Option<(Record, Lifetime)>,
        cookie: CookieAction,
    },
    /// Create `create` (if any), then delete `delete` (if any): a new session, or a
    /// cycled id; with nothing to create, deleting `delete` ends the session.
    Replace {
        create: Option<(Record, Lifetime)>,
        delete: Option<Id>,
        cookie: CookieAction,
    },
    /// Write the changes.
    Save {
        record: Record,
        changes: Changes,
        life: Lifetime,
        cookie: CookieAction,
    },
    Touch {
        id: Id,
        life: Lifetime,
        cookie: CookieAction,
    },
}

impl Call {
    /// The call `decision` makes, its record built from `state`: one copy of the values.
    pub(super) fn of(state: &mut State, decision: &Decision) -> Call {
        let cookie = decision.cookie;
        let mut record = |id: Id, life: Lifetime| {
            state.values_mut();
            let record = Record {
                id,
                data: state.data.to_data(),
                expiry: state.expiry,
                expires_at: life.expires_at,
            };
            (record, life)
        };
        match decision.store {
            StoreAction::Purge { delete, create } => Call::Purge {
                delete,
                create: create.map(|life| record(Id::random(), life)),
                cookie,
            },
            StoreAction::Create(life) => Call::Replace {
                create: Some(record(Id::random(), life)),
                delete: None,
                cookie,
            },
            StoreAction::Replace { create, delete } => Call::Replace {
                create: create.map(|life| record(Id::random(), life)),
                delete: Some(delete),
                cookie,
            },
            StoreAction::Save { id, life } => {
                let (record, life) = record(id, life);
                // Taken, not copied: `finish` runs once, and clears them after a save.
                let changes = std::mem::take(&mut state.changes);
                Call::Save {
                    record,
                    changes,
                    life,
                    cookie,
                }
            }
            StoreAction::Touch { id, life } => Call::Touch { id, life, cookie },
            StoreAction::None => unreachable!("no store call without a store action"),
        }
    }
}

/// The store call that ends a request, from [`LazySession::try_finish`]: await
/// [`run`](Self::run) for the outcome.
#[must_use = "the session's store call happens when `run` is awaited"]
pub struct StoreCall {
    pub(super) lazy: LazySession,
    pub(super) call: Call,
}

impl fmt::Debug for StoreCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreCall").finish_non_exhaustive()
    }
}

impl StoreCall {
    /// Makes the store call and returns the outcome.
    ///
    /// The future holds only the one step the call needs (about 600 bytes at most), so
    /// an adapter that boxes it stays within the allocator's fast size classes.
    pub fn run(self) -> impl Future<Output = Finished> + Send + 'static {
        let StoreCall { lazy, call } = self;
        let l = lazy.clone();
        let step = match call {
            Call::Purge {
                delete,
                create,
                cookie,
            } => Step::Purge {
                fut: purge(l, delete, create, cookie),
            },
            Call::Replace {
                create,
                delete,
                cookie,
            } => Step::Replace {
                fut: replace(l, create, delete, cookie),
            },
            Call::Save {
                record,
                changes,
                life,
                cookie,
            } => Step::Save {
                fut: save(l, record, changes, life, cookie),
            },
            Call::Touch { id, life, cookie } => Step::Touch {
                fut: touch(l, id, life, cookie),
            },
        };
        Run { lazy, step }
    }
}

pin_project! {
    /// [`StoreCall::run`]'s future: the call's one step, then the request marked finished.
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
        };
        this.lazy.shared.finished.store(true, Ordering::Release);
        Poll::Ready(finished)
    }
}

/// Logout: delete `delete` (and, after a logout without a read, every id the request
/// presented), then create `create` if the session lives on.
async fn purge(
    lazy: LazySession,
    delete: Option<Id>,
    create: Option<(Record, Lifetime)>,
    cookie: CookieAction,
) -> Finished {
    let engine = &lazy.shared.engine;
    let (cfg, store) = (&engine.config, &*engine.store);
    if let Some(old) = delete {
        if let Err(e) = store.delete(&old).await {
            return Finished::failed(Some(write::removal(cfg)), e);
        }
        tracing::debug!(id = %old, "session deleted");
    }
    if lazy.shared.flushed.load(Ordering::Relaxed) {
        // Logged out without a read: every id the request presented goes, whichever of
        // them named the user's session.
        let others = lazy.incoming().iter().filter(|c| Some(c.id) != delete);
        for other in others {
            if let Err(e) = store.delete(&other.id).await {
                return Finished::failed(Some(write::removal(cfg)), e);
            }
        }
    }
    match create {
        Some((mut record, life)) => match create_with_retries(store, &mut record, life.ttl).await {
            Ok(()) => created_in(cfg, &mut lazy.lock(), record.id, life, cookie),
            Err(e) => Finished::failed(Some(write::removal(cfg)), e),
        },
        None => answer(cfg, cookie, None),
    }
}

/// A new session, or a cycled id: create `create`, then delete `delete`.
async fn replace(
    lazy: LazySession,
    create: Option<(Record, Lifetime)>,
    delete: Option<Id>,
    cookie: CookieAction,
) -> Finished {
    let engine = &lazy.shared.engine;
    let (cfg, store) = (&engine.config, &*engine.store);
    let Some((mut record, life)) = create else {
        // Nothing left to keep: the session ends.
        let Some(old) = delete else {
            return Finished::default();
        };
        if let Err(e) = store.delete(&old).await {
            return Finished::failed(Some(write::removal(cfg)), e);
        }
        lazy.lock().stored = None;
        return answer(cfg, cookie, None);
    };
    let Some(old) = delete else {
        return match create_with_retries(store, &mut record, life.ttl).await {
            Ok(()) => created_in(cfg, &mut lazy.lock(), record.id, life, cookie),
            Err(e) => Finished::failed(None, e),
        };
    };
    // Only while the old record lives: a logout, revocation or expiry that happened
    // while this request was in flight stands.
    match cycle_with_retries(store, &old, &mut record, life.ttl).await {
        Ok(Update::Applied) => {
            tracing::debug!(old = %old, new = %record.id, "session id cycled");
            created_in(cfg, &mut lazy.lock(), record.id, life, cookie)
        }
        Ok(Update::Missing) => {
            tracing::debug!(id = %old, "session ended before its id was cycled; not bringing it back");
            lazy.lock().stored = None;
            Finished::send(write::removal(cfg))
        }
        Err(e) => Finished::failed(None, e),
    }
}

async fn save(
    lazy: LazySession,
    record: Record,
    changes: Changes,
    life: Lifetime,
    cookie: CookieAction,
) -> Finished {
    let engine = &lazy.shared.engine;
    let saved = engine.store.save(&record, &changes, life.ttl).await;
    updated_in(
        &engine.config,
        &mut lazy.lock(),
        saved,
        &record.id,
        life,
        cookie,
    )
}

async fn touch(lazy: LazySession, id: Id, life: Lifetime, cookie: CookieAction) -> Finished {
    let engine = &lazy.shared.engine;
    let touched = engine.store.touch(&id, life.expires_at, life.ttl).await;
    updated_in(&engine.config, &mut lazy.lock(), touched, &id, life, cookie)
}

/// The session now lives under the new record `id`: `state` records it, and the client
/// is answered.
fn created_in(
    config: &SessionConfig,
    state: &mut State,
    id: Id,
    life: Lifetime,
    cookie: CookieAction,
) -> Finished {
    state.stored = Some(Stored {
        id,
        expires_at: life.expires_at,
    });
    state.renew = false;
    state.purge = false;
    state.expiry_changed = false;
    state.changes = Changes::default();
    tracing::debug!(id = %id, "session created");
    answer(config, cookie, Some((&id, &life)))
}

/// A save's or touch's outcome for the stored record `id`, `state` updated to match:
/// applied, the new expiry is recorded and the client answered; the record gone, the
/// session is not brought back and the cookie is removed.
fn updated_in(
    config: &SessionConfig,
    state: &mut State,
    update: Result<Update, StoreError>,
    id: &Id,
    life: Lifetime,
    cookie: CookieAction,
) -> Finished {
    match update {
        Ok(Update::Applied) => {
            if let Some(s) = &mut state.stored {
                s.expires_at = life.expires_at;
            }
            state.changes = Changes::default();
            state.expiry_changed = false;
            answer(config, cookie, Some((id, &life)))
        }
        Ok(Update::Missing) => {
            tracing::debug!(id = %id, "session ended before it was saved or touched; not bringing it back");
            state.stored = None;
            Finished::send(write::removal(config))
        }
        Err(e) => Finished::failed(None, e),
    }
}

/// What the client is sent after the store action succeeded; `written`, the record it
/// wrote and how long that lives.
fn answer(
    config: &SessionConfig,
    cookie: CookieAction,
    written: Option<(&Id, &Lifetime)>,
) -> Finished {
    let header = match (cookie, written) {
        (CookieAction::Keep, _) => None,
        (CookieAction::Remove, _) => Some(write::removal(config)),
        (CookieAction::Resend(id, life), _) => Some(write::issue_for(config, &id, &life)),
        (CookieAction::Issue, Some((id, life))) => Some(write::issue_for(config, id, life)),
        // The client holds this id already, so a browser-session cookie (no Max-Age) is
        // sent again only to replace one under an old key, or one whose lifetime the
        // handler changed: a browser-session cookie replaces a persistent one only if
        // it is sent.
        (CookieAction::Refresh { resend }, Some((id, life))) => {
            (life.max_age.is_some() || resend).then(|| write::issue_for(config, id, life))
        }
        (CookieAction::Issue | CookieAction::Refresh { .. }, None) => None,
    };
    Finished::new(header)
}
