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
//! Stores: [`storage::CookieSessionStore`] (the whole state in a private cookie, as in
//! actix-session); `storage::RedisSessionStore` with the `redis-session` feature
//! (actix-session's name for it), on tower-sessions-redis-store; and this crate's
//! (`MemoryStore`, the Aerospike store, `TowerStore` over any tower-sessions store).
//! actix-session's own `storage::SessionStore` trait is not taken, so a store written
//! for it does not port.
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
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::guard::GuardContext;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use serde::Serialize;
use session_core::Status;

use crate::middleware::{InnerSessionMiddleware, LocalBoxFuture, ResponseFuture};
use cookie::{CookieConfig, CookieService, CookieState};

pub mod config;
mod cookie;
#[cfg(feature = "redis-session")]
mod redis;

/// actix-session's `storage` module: the stores [`SessionMiddleware`] takes.
pub mod storage {
    use super::config::SessionMiddlewareBuilder;
    pub use super::cookie::CookieSessionStore;
    #[cfg(feature = "redis-session")]
    pub use super::redis::{RedisSessionStore, RedisSessionStoreBuilder};
    use super::SessionMiddleware;

    /// The stores [`SessionMiddleware`] takes: [`CookieSessionStore`], and every store
    /// of this crate ([`session_core::SessionStore`]: `MemoryStore`, the Aerospike
    /// store, `TowerStore` over any tower-sessions store).
    pub trait SessionStore: Sized + 'static {
        /// Builds the middleware over this store from the builder's settings.
        ///
        /// # Errors
        ///
        /// A [`ConfigError`](session_core::ConfigError) whose message says what to
        /// change.
        fn build_middleware(
            builder: SessionMiddlewareBuilder<Self>,
        ) -> Result<SessionMiddleware<Self>, session_core::ConfigError>;
    }

    impl<S: session_core::SessionStore> SessionStore for S {
        fn build_middleware(
            builder: SessionMiddlewareBuilder<Self>,
        ) -> Result<SessionMiddleware<Self>, session_core::ConfigError> {
            builder.build_engine()
        }
    }

    impl SessionStore for CookieSessionStore {
        fn build_middleware(
            builder: SessionMiddlewareBuilder<Self>,
        ) -> Result<SessionMiddleware<Self>, session_core::ConfigError> {
            builder.build_cookie()
        }
    }
}

/// actix-session's middleware: [`SessionMiddleware`](crate::SessionMiddleware) with
/// actix-session's defaults and constructor, or the cookie-state middleware of
/// [`CookieSessionStore`](storage::CookieSessionStore). The session is loaded before
/// routing, as actix-session does, so [`SessionExt::get_session`] works in guards and
/// middleware.
pub struct SessionMiddleware<Store> {
    backend: Backend,
    store: PhantomData<fn() -> Store>,
}

#[derive(Clone, Debug)]
enum Backend {
    Engine(crate::SessionMiddleware),
    Cookie(Arc<CookieConfig>),
}

impl<Store> SessionMiddleware<Store> {
    fn with(backend: Backend) -> Self {
        SessionMiddleware {
            backend,
            store: PhantomData,
        }
    }
}

impl<Store> Clone for SessionMiddleware<Store> {
    fn clone(&self) -> Self {
        SessionMiddleware::with(self.backend.clone())
    }
}

impl<Store> fmt::Debug for SessionMiddleware<Store> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SessionMiddleware")
            .field(&self.backend)
            .finish()
    }
}

impl<Store: storage::SessionStore> SessionMiddleware<Store> {
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
}

impl<Store> SessionMiddleware<Store> {
    fn engine(inner: crate::SessionMiddleware) -> Self {
        SessionMiddleware::with(Backend::Engine(inner))
    }

    fn cookie(config: CookieConfig) -> Self {
        SessionMiddleware::with(Backend::Cookie(Arc::new(config)))
    }
}

impl<Svc, B, Store> Transform<Svc, ServiceRequest> for SessionMiddleware<Store>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = CompatService<Svc>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(match &self.backend {
            Backend::Engine(m) => match m.new_transform(service).into_inner() {
                Ok(inner) => CompatService(ServiceKind::Engine(inner)),
                Err(()) => unreachable!("the session middleware's transform cannot fail"),
            },
            Backend::Cookie(config) => CompatService(ServiceKind::Cookie(CookieService {
                service: Rc::new(service),
                config: config.clone(),
            })),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an app or scope.
#[doc(hidden)]
pub struct CompatService<Svc>(ServiceKind<Svc>);

enum ServiceKind<Svc> {
    Engine(InnerSessionMiddleware<Svc>),
    Cookie(CookieService<Svc>),
}

impl<Svc> fmt::Debug for CompatService<Svc> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match &self.0 {
            ServiceKind::Engine(_) => "CompatService::Engine",
            ServiceKind::Cookie(_) => "CompatService::Cookie",
        })
    }
}

impl<Svc, B> Service<ServiceRequest> for CompatService<Svc>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = CompatFuture<Svc, B>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &self.0 {
            ServiceKind::Engine(s) => s.poll_ready(cx),
            ServiceKind::Cookie(s) => s.service.poll_ready(cx),
        }
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        match &self.0 {
            ServiceKind::Engine(s) => CompatFuture::Engine { fut: s.call(req) },
            ServiceKind::Cookie(s) => CompatFuture::Cookie { fut: s.call(req) },
        }
    }
}

pin_project! {
    /// The response future of [`CompatService`]: the engine's, unboxed, or the cookie
    /// backend's.
    #[doc(hidden)]
    #[project = CompatFutureProj]
    pub enum CompatFuture<Svc: Service<ServiceRequest>, B> {
        Engine {
            #[pin]
            fut: ResponseFuture<Svc, B>,
        },
        Cookie {
            fut: LocalBoxFuture<Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>,
        },
    }
}

impl<Svc, B> Future for CompatFuture<Svc, B>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CompatFutureProj::Engine { fut } => fut.poll(cx),
            CompatFutureProj::Cookie { fut } => fut.as_mut().poll(cx),
        }
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
pub struct Session(Inner);

#[derive(Clone)]
enum Inner {
    /// A session of the engine (this crate's stores).
    Engine {
        session: session_core::Session,
        entries: Rc<RefCell<HashMap<String, String>>>,
    },
    /// A state kept in the cookie, or one outside any request.
    Cookie(Rc<RefCell<CookieState>>),
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Engine { session, .. } => session.fmt(f),
            Inner::Cookie(state) => {
                let state = state.borrow();
                let mut keys: Vec<&String> = state.data.keys().collect();
                keys.sort();
                f.debug_struct("Session")
                    .field("status", &state.status)
                    .field("keys", &keys)
                    .finish()
            }
        }
    }
}

impl Default for Session {
    fn default() -> Self {
        Session(Inner::Cookie(Rc::new(
            RefCell::new(CookieState::detached()),
        )))
    }
}

fn json<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_string(value).ok()
}

/// A value that failed to convert, as the engine reports it.
fn value_error(key: &str, source: serde_json::Error) -> session_core::Error {
    session_core::Error::Value {
        key: key.to_owned(),
        source,
    }
}

impl Session {
    /// The compat face of a native session.
    pub fn from_native(session: session_core::Session) -> Self {
        Session(Inner::Engine {
            session,
            entries: Rc::default(),
        })
    }

    /// The native handle; `None` for a session kept in the cookie
    /// ([`CookieSessionStore`](storage::CookieSessionStore)) or outside any request.
    pub fn native(&self) -> Option<&session_core::Session> {
        match &self.0 {
            Inner::Engine { session, .. } => Some(session),
            Inner::Cookie(_) => None,
        }
    }

    /// The value under `key`.
    ///
    /// # Errors
    ///
    /// When the value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionGetError> {
        match &self.0 {
            Inner::Engine { session, .. } => session.get(key).map_err(SessionGetError),
            Inner::Cookie(state) => match state.borrow().data.get(key) {
                None => Ok(None),
                Some(text) => serde_json::from_str(text)
                    .map(Some)
                    .map_err(|e| SessionGetError(value_error(key, e))),
            },
        }
    }

    /// Whether `key` holds a value.
    pub fn contains_key(&self, key: &str) -> bool {
        match &self.0 {
            Inner::Engine { session, .. } => session.contains_key(key),
            Inner::Cookie(state) => state.borrow().data.contains_key(key),
        }
    }

    /// Every key with its value as JSON text.
    ///
    /// # Panics
    ///
    /// If the session is changed while the `Ref` is held, as actix-session's `RefCell`
    /// would.
    pub fn entries(&self) -> Ref<'_, HashMap<String, String>> {
        match &self.0 {
            Inner::Engine { session, entries } => {
                let snapshot = session
                    .keys()
                    .into_iter()
                    .filter_map(|k| {
                        let v = session.get_value(&k)?;
                        Some((k, json(&v)?))
                    })
                    .collect();
                *entries.borrow_mut() = snapshot;
                entries.borrow()
            }
            Inner::Cookie(state) => Ref::map(state.borrow(), |s| &s.data),
        }
    }

    /// What happened to the session so far in this request.
    pub fn status(&self) -> SessionStatus {
        match &self.0 {
            Inner::Engine { session, .. } => match session.status() {
                Status::Unchanged => SessionStatus::Unchanged,
                Status::Changed => SessionStatus::Changed,
                Status::Renewed => SessionStatus::Renewed,
                Status::Purged => SessionStatus::Purged,
            },
            Inner::Cookie(state) => state.borrow().status.clone(),
        }
    }

    fn purged(&self) -> bool {
        self.status() == SessionStatus::Purged
    }

    /// Stores `value` under `key`; ignored after [`purge`](Self::purge).
    ///
    /// # Errors
    ///
    /// When the value does not serialize, or is refused: a reserved key, the size
    /// limits, or (with [`CookieSessionStore`](storage::CookieSessionStore)) a state that
    /// would not fit in the cookie.
    pub fn insert<T: Serialize>(
        &self,
        key: impl Into<String>,
        value: T,
    ) -> Result<(), SessionInsertError> {
        if self.purged() {
            return Ok(());
        }
        let key = key.into();
        match &self.0 {
            Inner::Engine { session, .. } => session.insert(&key, value),
            Inner::Cookie(state) => match serde_json::to_string(&value) {
                Ok(text) => state.borrow_mut().set(key, text),
                Err(e) => Err(value_error(&key, e)),
            },
        }
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
        let Some(value) = self.get::<T>(&key).map_err(|e| SessionUpdateError(e.0))? else {
            return Ok(());
        };
        self.insert(key, updater(value))
            .map_err(|e| SessionUpdateError(e.0))
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
        match &self.0 {
            Inner::Engine { session, .. } => json(&session.remove_value(key)?),
            Inner::Cookie(state) => {
                let mut state = state.borrow_mut();
                state.changed();
                state.data.remove(key)
            }
        }
    }

    /// Removes the value under `key`: `Ok(value)` when it is a `T`, `Err(json_text)`
    /// otherwise, `None` when there was none.
    pub fn remove_as<T: DeserializeOwned>(&self, key: &str) -> Option<Result<T, String>> {
        let text = self.remove(key)?;
        Some(serde_json::from_str(&text).map_err(|_| text))
    }

    /// Removes every value; ignored after [`purge`](Self::purge).
    pub fn clear(&self) {
        if self.purged() {
            return;
        }
        match &self.0 {
            Inner::Engine { session, .. } => session.clear(),
            Inner::Cookie(state) => {
                let mut state = state.borrow_mut();
                state.changed();
                state.data.clear();
            }
        }
    }

    /// Ends the session: its record is deleted (if it has one) and its cookie removed.
    pub fn purge(&self) {
        match &self.0 {
            Inner::Engine { session, .. } => session.flush(),
            Inner::Cookie(state) => {
                let mut state = state.borrow_mut();
                state.status = SessionStatus::Purged;
                state.data.clear();
            }
        }
    }

    /// Moves the session to a new id (a fresh cookie with
    /// [`CookieSessionStore`](storage::CookieSessionStore)), keeping its values: call it
    /// at login. Ignored after [`purge`](Self::purge).
    pub fn renew(&self) {
        if self.purged() {
            return;
        }
        match &self.0 {
            Inner::Engine { session, .. } => session.cycle_id(),
            Inner::Cookie(state) => state.borrow_mut().status = SessionStatus::Renewed,
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

/// The request's session: the cookie-state one, else the engine's (loaded before
/// routing), else one kept nowhere, logged.
fn compat_of(
    extensions: &actix_web::dev::Extensions,
    handle: impl FnOnce() -> crate::SessionHandle,
) -> Session {
    if let Some(state) = extensions.get::<Rc<RefCell<CookieState>>>() {
        return Session(Inner::Cookie(state.clone()));
    }
    match handle().loaded() {
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
        compat_of(&self.extensions(), || crate::SessionExt::get_session(self))
    }
}

impl SessionExt for ServiceRequest {
    fn get_session(&self) -> Session {
        compat_of(&self.extensions(), || crate::SessionExt::get_session(self))
    }
}

impl<B> SessionExt for ServiceResponse<B> {
    fn get_session(&self) -> Session {
        SessionExt::get_session(self.request())
    }
}

impl SessionExt for GuardContext<'_> {
    fn get_session(&self) -> Session {
        compat_of(&self.req_data(), || crate::SessionExt::get_session(self))
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
