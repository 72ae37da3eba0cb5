//! actix-session 0.11's names and shapes over this crate's engine: an app switches by
//! replacing `actix_session::` with `session_actix::compat::` (and the dependency in
//! `Cargo.toml`).
//!
//! ```
//! use actix_web::cookie::Key;
//! use actix_web::{web, App, Error};
//! use session_actix::compat::{Session, SessionMiddleware};
//! use session_actix::MemoryStore;
//!
//! async fn index(session: Session) -> Result<String, Error> {
//!     if let Some(count) = session.get::<i32>("counter")? {
//!         session.insert("counter", count + 1)?;
//!     } else {
//!         session.insert("counter", 1)?;
//!     }
//!     Ok(format!("Counter: {}", session.get::<i32>("counter")?.unwrap()))
//! }
//!
//! let key = Key::generate();
//! let app = App::new()
//!     .wrap(SessionMiddleware::new(MemoryStore::default(), key.clone()))
//!     .route("/", web::get().to(index));
//! ```
//!
//! It is a thin face over [`SessionMiddleware`](crate::SessionMiddleware): actix-session's
//! defaults (cookie `id`, private cookie content with the key given, `Secure`,
//! `HttpOnly`, `SameSite=Lax`, `Path=/`, a browser-session cookie whose state lives a
//! day), its builder and `config` types, actix-web's own `cookie::Key` and
//! `cookie::SameSite`, and a [`Session`] whose methods keep actix-session's meaning
//! (`update` and `update_or` take `FnOnce(T) -> T`; `remove` returns the JSON text). New
//! code should use the native [`Session`](crate::Session), which loads lazily, keeps
//! values as JSON values rather than text, and is the same handle as in axum.
//!
//! Stores: this crate's (`MemoryStore`, the Aerospike store, `TowerStore` over any
//! tower-sessions store). actix-session's `storage::SessionStore` trait and its stores
//! are not taken; `CookieSessionStore` (the whole state in the cookie) is not here yet.
//!
//! What differs from actix-session, and why (MIGRATING.md says more):
//!
//! * Only changed keys are written, and writing a value equal to the stored one is not
//!   a change: it leaves [`status`](Session::status) `Unchanged` and, with
//!   `TtlExtensionPolicy::OnStateChanges`, does not extend the session.
//! * Removing the last value ends the session (record deleted, cookie removed).
//! * A store failure answers an opaque 500 (503 when the store is unavailable); the
//!   cause is logged, never sent.
//! * A misconfiguration (for example `SameSite=None` without `Secure`) panics in
//!   [`build`](config::SessionMiddlewareBuilder::build), naming the setting;
//!   [`try_build`](config::SessionMiddlewareBuilder::try_build) returns it.

use std::cell::{Ref, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::{ready, Future, Ready};
use std::marker::PhantomData;
use std::pin::pin;
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::guard::GuardContext;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use session_core::{SessionConfig, SessionEngine, SessionStore, Status};

use crate::middleware::InnerSessionMiddleware;

pub mod config;

/// actix-session's middleware: [`SessionMiddleware`](crate::SessionMiddleware) with
/// actix-session's defaults and constructor. The session is loaded before routing, as
/// actix-session does, so [`SessionExt::get_session`] works in guards and middleware.
pub struct SessionMiddleware<Store> {
    inner: crate::SessionMiddleware,
    store: PhantomData<fn() -> Store>,
}

impl<Store> Clone for SessionMiddleware<Store> {
    fn clone(&self) -> Self {
        SessionMiddleware {
            inner: self.inner.clone(),
            store: PhantomData,
        }
    }
}

impl<Store> fmt::Debug for SessionMiddleware<Store> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SessionMiddleware")
            .field(&self.inner)
            .finish()
    }
}

impl<Store: SessionStore> SessionMiddleware<Store> {
    /// The middleware over `store` with actix-session's defaults: the cookie's content
    /// is encrypted with `key`.
    pub fn new(store: Store, key: actix_web::cookie::Key) -> Self {
        Self::builder(store, key).build()
    }

    /// A builder with actix-session's setters.
    pub fn builder(
        store: Store,
        key: actix_web::cookie::Key,
    ) -> config::SessionMiddlewareBuilder<Store> {
        config::SessionMiddlewareBuilder::new(store, key)
    }

    /// The native middleware underneath.
    pub fn into_native(self) -> crate::SessionMiddleware {
        self.inner
    }
}

impl<Svc, B, Store> Transform<Svc, ServiceRequest> for SessionMiddleware<Store>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = InnerSessionMiddleware<Svc>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        self.inner.new_transform(service)
    }
}

/// What happened to a [`Session`] in this request (actix-session's `SessionStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SessionStatus {
    /// Values changed: they are written when the request ends.
    Changed,
    /// [`purge`](Session::purge) was called: the session is deleted and its cookie
    /// removed; later changes in this request are ignored.
    Purged,
    /// [`renew`](Session::renew) was called: the session moves to a new id.
    Renewed,
    /// Nothing changed.
    #[default]
    Unchanged,
}

/// actix-session's session handle: synchronous accessors over the session the middleware
/// loaded, values handled as JSON text where actix-session does.
///
/// `Session::default()` is a session of its own, outside any request: its values live
/// as long as it does and are never stored (for testing code that takes a `Session`).
#[derive(Clone)]
pub struct Session {
    inner: session_core::Session,
    entries: Rc<RefCell<HashMap<String, String>>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::from_native(detached())
    }
}

/// A session that belongs to no request: loaded from an engine over an empty
/// `MemoryStore` and never finished, so nothing it holds reaches a store.
fn detached() -> session_core::Session {
    static ENGINE: OnceLock<SessionEngine> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        SessionEngine::new(
            session_core::MemoryStore::default(),
            SessionConfig::default(),
        )
    });
    let lazy = engine.start_deferred();
    lazy.identify(std::iter::empty());
    // Without an id there is nothing to read: the load is ready at its first poll.
    let mut load = pin!(lazy.load());
    match load.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(session)) => session,
        Poll::Ready(Err(e)) => unreachable!("a session without an id reads nothing: {e}"),
        Poll::Pending => unreachable!("a session without an id is ready at once"),
    }
}

fn json<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_string(value).ok()
}

impl Session {
    /// The compat face of a native session.
    pub fn from_native(inner: session_core::Session) -> Self {
        Session {
            inner,
            entries: Rc::default(),
        }
    }

    /// The native handle.
    pub fn native(&self) -> &session_core::Session {
        &self.inner
    }

    fn purged(&self) -> bool {
        self.inner.status() == Status::Purged
    }

    /// The value under `key`.
    ///
    /// # Errors
    ///
    /// When the value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionGetError> {
        self.inner.get(key).map_err(SessionGetError)
    }

    /// Whether `key` holds a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.inner.contains_key(key)
    }

    /// Every key with its value as JSON text, as of this call.
    ///
    /// # Panics
    ///
    /// If a `Ref` from an earlier call on this handle is still held, as actix-session's
    /// `RefCell` would.
    pub fn entries(&self) -> Ref<'_, HashMap<String, String>> {
        let snapshot = self
            .inner
            .keys()
            .into_iter()
            .filter_map(|k| {
                let v = self.inner.get_value(&k)?;
                Some((k, json(&v)?))
            })
            .collect();
        *self.entries.borrow_mut() = snapshot;
        self.entries.borrow()
    }

    /// What happened to the session so far in this request.
    pub fn status(&self) -> SessionStatus {
        match self.inner.status() {
            Status::Unchanged => SessionStatus::Unchanged,
            Status::Changed => SessionStatus::Changed,
            Status::Renewed => SessionStatus::Renewed,
            Status::Purged => SessionStatus::Purged,
        }
    }

    /// Stores `value` under `key`; ignored after [`purge`](Self::purge).
    ///
    /// # Errors
    ///
    /// When the value does not serialize, or is refused (reserved key, size limits).
    pub fn insert<T: Serialize>(
        &self,
        key: impl Into<String>,
        value: T,
    ) -> Result<(), SessionInsertError> {
        if self.purged() {
            return Ok(());
        }
        self.inner
            .insert(&key.into(), value)
            .map_err(SessionInsertError)
    }

    /// Replaces the value under `key` with `updater(value)`; nothing when `key` holds no
    /// value.
    ///
    /// # Errors
    ///
    /// When the value is not a `T`, or the new one is refused.
    pub fn update<T: Serialize + DeserializeOwned, F>(
        &self,
        key: impl Into<String>,
        updater: F,
    ) -> Result<(), SessionUpdateError>
    where
        F: FnOnce(T) -> T,
    {
        let key = key.into();
        let Some(value) = self.inner.get::<T>(&key).map_err(SessionUpdateError)? else {
            return Ok(());
        };
        if self.purged() {
            return Ok(());
        }
        self.inner
            .insert(&key, updater(value))
            .map_err(SessionUpdateError)
    }

    /// [`update`](Self::update) when `key` holds a value; otherwise stores
    /// `default_value` as it is (the updater is not applied to it).
    ///
    /// # Errors
    ///
    /// As [`update`](Self::update) and [`insert`](Self::insert).
    pub fn update_or<T: Serialize + DeserializeOwned, F>(
        &self,
        key: &str,
        default_value: T,
        updater: F,
    ) -> Result<(), SessionUpdateError>
    where
        F: FnOnce(T) -> T,
    {
        if self.contains_key(key) {
            self.update(key, updater)
        } else {
            self.insert(key, default_value)
                .map_err(|e| SessionUpdateError(e.0))
        }
    }

    /// Removes the value under `key`, returning it as JSON text; `None` after
    /// [`purge`](Self::purge).
    pub fn remove(&self, key: &str) -> Option<String> {
        if self.purged() {
            return None;
        }
        json(&self.inner.remove_value(key)?)
    }

    /// Removes the value under `key`: `Ok(value)` when it is a `T`, `Err(json_text)`
    /// otherwise, `None` when there was none.
    pub fn remove_as<T: DeserializeOwned>(&self, key: &str) -> Option<Result<T, String>> {
        let text = self.remove(key)?;
        Some(serde_json::from_str(&text).map_err(|_| text))
    }

    /// Removes every value; ignored after [`purge`](Self::purge).
    pub fn clear(&self) {
        if !self.purged() {
            self.inner.clear();
        }
    }

    /// Ends the session: its record is deleted and its cookie removed.
    pub fn purge(&self) {
        self.inner.flush();
    }

    /// Moves the session to a new id, keeping its values (call it at login); ignored
    /// after [`purge`](Self::purge).
    pub fn renew(&self) {
        if !self.purged() {
            self.inner.cycle_id();
        }
    }
}

/// The request's session. Never fails: without the middleware it is a session of its
/// own, as in actix-session, and the mistake is logged.
impl FromRequest for Session {
    type Error = actix_web::Error;
    type Future = Ready<Result<Session, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(SessionExt::get_session(req)))
    }
}

/// Reach the session from anything that carries a request (actix-session's
/// `SessionExt`): `HttpRequest`, `ServiceRequest`, `ServiceResponse`, `GuardContext`.
pub trait SessionExt {
    /// The request's session.
    fn get_session(&self) -> Session;
}

fn compat_of(handle: crate::SessionHandle) -> Session {
    match handle.loaded() {
        Some(s) => Session::from_native(s.into_inner()),
        None => {
            tracing::error!(
                "the session is not loaded: wrap the app in `session_actix::compat::SessionMiddleware`; \
                 this request's session is kept nowhere"
            );
            Session::default()
        }
    }
}

impl SessionExt for HttpRequest {
    fn get_session(&self) -> Session {
        compat_of(crate::SessionExt::get_session(self))
    }
}

impl SessionExt for ServiceRequest {
    fn get_session(&self) -> Session {
        compat_of(crate::SessionExt::get_session(self))
    }
}

impl<B> SessionExt for ServiceResponse<B> {
    fn get_session(&self) -> Session {
        SessionExt::get_session(self.request())
    }
}

impl SessionExt for GuardContext<'_> {
    fn get_session(&self) -> Session {
        compat_of(crate::SessionExt::get_session(self))
    }
}

macro_rules! accessor_error {
    ($(#[$doc:meta])* $Name:ident) => {
        $(#[$doc])*
        ///
        /// As a `ResponseError` it answers an opaque 500 and logs the cause.
        #[derive(Debug)]
        pub struct $Name(session_core::Error);

        impl $Name {
            /// The native error.
            pub fn into_inner(self) -> session_core::Error {
                self.0
            }
        }

        impl fmt::Display for $Name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::error::Error for $Name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }

        impl ResponseError for $Name {
            fn error_response(&self) -> HttpResponse {
                self.0.error_response()
            }
        }
    };
}

accessor_error!(
    /// [`Session::get`] failed: the value is not of the type asked for.
    SessionGetError
);
accessor_error!(
    /// [`Session::insert`] failed: the value does not serialize, or is refused.
    SessionInsertError
);
accessor_error!(
    /// [`Session::update`] or [`Session::update_or`] failed.
    SessionUpdateError
);
