//! The session handle of the actix-session face, and `SessionExt`.

use std::cell::{Ref, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::{ready, Ready};
use std::rc::Rc;

use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::guard::GuardContext;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use session_core::Status;

use super::cookie::CookieState;
use super::SessionStatus;

/// actix-session's session handle: synchronous accessors over the session the middleware
/// loaded, values handled as JSON text where actix-session does.
///
/// `Session::default()` is a session of its own, outside any request: its values live
/// as long as it does and are never stored (for testing code that takes a `Session`).
#[derive(Clone)]
pub struct Session(Inner);

#[derive(Clone)]
pub(super) enum Inner {
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
    /// ([`CookieSessionStore`](super::storage::CookieSessionStore)) or outside any request.
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
    /// limits, or (with [`CookieSessionStore`](super::storage::CookieSessionStore)) a state that
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
    /// [`CookieSessionStore`](super::storage::CookieSessionStore)), keeping its values: call it
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
