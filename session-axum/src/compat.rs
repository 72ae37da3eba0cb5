//! tower-sessions 0.15's names and shapes over this crate's engine: an app switches by
//! replacing `tower_sessions::` with `session_axum::compat::` (and the dependency in
//! `Cargo.toml`), nothing else.
//!
//! ```
//! use axum::{routing::get, Router};
//! use session_axum::compat::{Expiry, MemoryStore, Session, SessionManagerLayer};
//! use time::Duration;
//!
//! async fn count(session: Session) -> String {
//!     let n: usize = session.get("n").await.unwrap().unwrap_or_default();
//!     session.insert("n", n + 1).await.unwrap();
//!     format!("count {n}")
//! }
//!
//! let layer = SessionManagerLayer::new(MemoryStore::default())
//!     .with_secure(false)
//!     .with_expiry(Expiry::OnInactivity(Duration::seconds(10)));
//! let app: Router = Router::new().route("/", get(count)).layer(layer);
//! ```
//!
//! It is a thin face: the layer is a [`SessionLayer`] configured
//! with tower-sessions' defaults, and [`Session`] wraps the native
//! [`Session`](crate::Session). New code should use the native API, whose accessors are
//! synchronous (the record is loaded once, when the handler extracts the session): no
//! `.await` and no store error on every call, and the same handle works in actix-web.
//!
//! Stores: every tower-sessions 0.15 store ([`SessionStore`]) works as it is, through
//! [`TowerStore`]; [`MemoryStore`] here is this crate's own, with
//! per-key delta saves and no resurrection after a logout. The Aerospike store
//! implements tower-sessions' trait too, so it is taken here, but through that trait
//! (whole records); its delta saves need the native [`SessionLayer`].
//!
//! What differs from tower-sessions, and why (MIGRATING.md says more):
//!
//! * The session is loaded when the handler extracts it, not at its first access: a
//!   store failure is still reported by the first accessor (as
//!   [`session::Error::Store`], with a generic message; the cause is logged), but a
//!   handler that extracts `Session` and never uses it costs one store read.
//! * Writes happen once, after the handler, as the layer decides from what changed (only
//!   the changed keys, on stores that can). [`Session::save`], [`Session::delete`] and
//!   [`Session::cycle_id`] ask for that write instead of making it at once, so
//!   [`Session::id`] stays `None` for a new session until its response has gone out.
//! * Nothing to migrate: ids have tower-sessions' form, and signed and private cookies
//!   the same format, so over the same tower-sessions store the sessions of a running
//!   tower-sessions app carry over to this layer.
//! * [`Session::delete`] also clears the data held for this request, as
//!   [`Session::flush`] does.

use std::fmt;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use axum_core::extract::FromRequestParts;
use http::request::Parts;
use http::{Request, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use session_core::{SameSite, SessionStore as NativeStore, Status, TowerStore};
use time::{Duration, OffsetDateTime};
use tower_layer::Layer;
use tower_service::Service;

use crate::extract::{lazy_of, load};
use crate::{SessionLayer, SessionService};

pub use cookie;
pub use tower_sessions_core::session_store;
pub use tower_sessions_core::session_store::{CachingSessionStore, ExpiredDeletion, SessionStore};
pub use tower_sessions_core::Expiry;

/// tower-sessions' `session` module: the [`Session`] handle and the types its stores
/// use.
pub mod session {
    pub use super::Session;
    pub use tower_sessions_core::session::{Error, Expiry, Id, Record};

    /// The accessors' result.
    pub type Result<T> = std::result::Result<T, Error>;
}

/// tower-sessions' `service` module: the layer, its service, and the cookie markers.
pub mod service {
    pub use super::{
        CookieController, PlaintextCookie, PrivateCookie, SessionManager, SessionManagerLayer,
        SignedCookie,
    };
}

/// This crate's in-memory store under tower-sessions' name: `MemoryStore::default()`.
///
/// It is [`session_core::MemoryStore`], with per-key delta saves and bounded memory, not
/// tower-sessions-memory-store; it serves [`SessionManagerLayer`] only (it is not a
/// [`SessionStore`], so it cannot be the cache of a [`CachingSessionStore`]).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore(session_core::MemoryStore);

impl From<session_core::MemoryStore> for MemoryStore {
    /// Takes a configured native store (capacity, limits).
    fn from(store: session_core::MemoryStore) -> Self {
        MemoryStore(store)
    }
}

/// The stores [`SessionManagerLayer::new`] takes: every tower-sessions 0.15
/// [`SessionStore`], and [`MemoryStore`].
pub trait CompatStore: Send + Sync + 'static {
    /// The engine store this one becomes.
    type Native: NativeStore;

    /// Converts it.
    fn into_native(self) -> Self::Native;
}

impl<S: SessionStore> CompatStore for S {
    type Native = TowerStore<S>;

    fn into_native(self) -> TowerStore<S> {
        TowerStore::new(self)
    }
}

impl CompatStore for MemoryStore {
    type Native = session_core::MemoryStore;

    fn into_native(self) -> session_core::MemoryStore {
        self.0
    }
}

/// Marks how the cookie carries the id: [`PlaintextCookie`], [`SignedCookie`] or
/// [`PrivateCookie`], as in tower-sessions.
pub trait CookieController: Clone + Send + Sync + 'static {}

/// The id travels as it is (tower-sessions' default).
#[derive(Clone, Copy, Debug, Default)]
pub struct PlaintextCookie;
/// The id is signed (HMAC-SHA256): [`SessionManagerLayer::with_signed`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SignedCookie;
/// The id is encrypted (AES-256-GCM): [`SessionManagerLayer::with_private`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PrivateCookie;

impl CookieController for PlaintextCookie {}
impl CookieController for SignedCookie {}
impl CookieController for PrivateCookie {}

/// tower-sessions' layer: a [`SessionLayer`] with tower-sessions' defaults (cookie
/// `id`, `SameSite=Strict`, `Secure`, `HttpOnly`, `Path=/`, a browser-session cookie,
/// saves only when something changed).
pub struct SessionManagerLayer<Store: CompatStore, C: CookieController = PlaintextCookie> {
    layer: SessionLayer<Store::Native>,
    cookie: PhantomData<fn() -> C>,
}

impl<Store: CompatStore, C: CookieController> Clone for SessionManagerLayer<Store, C> {
    fn clone(&self) -> Self {
        SessionManagerLayer {
            layer: self.layer.clone(),
            cookie: PhantomData,
        }
    }
}

impl<Store: CompatStore, C: CookieController> fmt::Debug for SessionManagerLayer<Store, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManagerLayer")
            .field("layer", &self.layer)
            .finish()
    }
}

impl<Store: CompatStore> SessionManagerLayer<Store> {
    /// A layer over `store` with tower-sessions' defaults.
    pub fn new(store: Store) -> Self {
        SessionManagerLayer {
            layer: SessionLayer::new(store.into_native()).with_same_site(SameSite::Strict),
            cookie: PhantomData,
        }
    }
}

impl<Store: CompatStore, C: CookieController> SessionManagerLayer<Store, C> {
    fn map<D: CookieController>(
        self,
        f: impl FnOnce(SessionLayer<Store::Native>) -> SessionLayer<Store::Native>,
    ) -> SessionManagerLayer<Store, D> {
        SessionManagerLayer {
            layer: f(self.layer),
            cookie: PhantomData,
        }
    }

    /// The cookie's name (default `id`).
    pub fn with_name<N: Into<std::borrow::Cow<'static, str>>>(self, name: N) -> Self {
        self.map(|l| l.with_name(name.into().into_owned()))
    }

    /// The cookie's `HttpOnly` (default on).
    pub fn with_http_only(self, http_only: bool) -> Self {
        self.map(|l| l.with_http_only(http_only))
    }

    /// The cookie's `SameSite` (default `Strict`).
    pub fn with_same_site(self, same_site: SameSite) -> Self {
        self.map(|l| l.with_same_site(same_site))
    }

    /// Every session's expiry, unless a handler sets its own (default: a browser-session
    /// cookie).
    pub fn with_expiry(self, expiry: Expiry) -> Self {
        self.map(|l| l.with_expiry(expiry.into()))
    }

    /// The cookie's `Secure` (default on).
    pub fn with_secure(self, secure: bool) -> Self {
        self.map(|l| l.with_secure(secure))
    }

    /// The cookie's `Path` (default `/`).
    pub fn with_path<P: Into<std::borrow::Cow<'static, str>>>(self, path: P) -> Self {
        self.map(|l| l.with_path(path.into().into_owned()))
    }

    /// The cookie's `Domain` (default none).
    pub fn with_domain<D: Into<std::borrow::Cow<'static, str>>>(self, domain: D) -> Self {
        self.map(|l| l.with_domain(domain.into().into_owned()))
    }

    /// Whether every request refreshes the session's expiry, changed or not (default
    /// off). A refresh without changes extends the store's TTL without rewriting the
    /// data.
    pub fn with_always_save(self, always_save: bool) -> Self {
        self.map(|l| l.with_always_save(always_save))
    }

    /// Signs the cookie with `key` (HMAC-SHA256).
    pub fn with_signed(self, key: cookie::Key) -> SessionManagerLayer<Store, SignedCookie> {
        self.map(|l| l.with_signed(key))
    }

    /// Encrypts the cookie with `key` (AES-256-GCM).
    pub fn with_private(self, key: cookie::Key) -> SessionManagerLayer<Store, PrivateCookie> {
        self.map(|l| l.with_private(key))
    }

    /// The native layer underneath, for the settings tower-sessions does not have (key
    /// rotation, id headers, touch policies).
    pub fn into_native(self) -> SessionLayer<Store::Native> {
        self.layer
    }
}

impl<S, Store: CompatStore, C: CookieController> Layer<S> for SessionManagerLayer<Store, C> {
    type Service = SessionManager<S, Store, C>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionManager {
            service: self.layer.layer(inner),
            marker: PhantomData,
        }
    }
}

/// tower-sessions' service: the [`SessionService`] the layer wraps around a route.
pub struct SessionManager<S, Store, C = PlaintextCookie> {
    service: SessionService<S>,
    marker: PhantomData<fn() -> (Store, C)>,
}

impl<S: Clone, Store, C> Clone for SessionManager<S, Store, C> {
    fn clone(&self) -> Self {
        SessionManager {
            service: self.service.clone(),
            marker: PhantomData,
        }
    }
}

impl<S, Store, C> fmt::Debug for SessionManager<S, Store, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("service", &self.service)
            .finish()
    }
}

impl<S, Store, C, ReqB> Service<Request<ReqB>> for SessionManager<S, Store, C>
where
    SessionService<S>: Service<Request<ReqB>>,
{
    type Response = <SessionService<S> as Service<Request<ReqB>>>::Response;
    type Error = <SessionService<S> as Service<Request<ReqB>>>::Error;
    type Future = <SessionService<S> as Service<Request<ReqB>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        self.service.call(req)
    }
}

/// tower-sessions' session handle: async accessors returning [`session::Result`].
///
/// Each accessor works on the record the extractor loaded; none waits on the store. If
/// that load failed, every fallible accessor returns [`session::Error::Store`] (its
/// message says only that the store failed; the cause was logged) and nothing is saved.
#[derive(Clone)]
pub struct Session(Result<session_core::Session, StoreFailed>);

/// A load that failed, for the accessors to report.
#[derive(Clone, Copy, Debug)]
struct StoreFailed;

fn store_error() -> session::Error {
    session::Error::Store(session_store::Error::Backend(
        "the session store failed; the cause is logged".to_owned(),
    ))
}

fn value_error(e: session_core::Error) -> session::Error {
    match e {
        session_core::Error::Value { source, .. } => session::Error::SerdeJson(source),
        other => session::Error::Store(session_store::Error::Encode(other.to_string())),
    }
}

impl Session {
    fn loaded(&self) -> session::Result<&session_core::Session> {
        self.0.as_ref().map_err(|_| store_error())
    }

    /// Inserts `value` under `key`.
    ///
    /// # Errors
    ///
    /// [`session::Error::SerdeJson`] when the value does not serialize;
    /// [`session::Error::Store`] when the session could not be loaded, or the key or size
    /// is refused (see [`session_core::Error`]).
    pub async fn insert(&self, key: &str, value: impl Serialize) -> session::Result<()> {
        self.loaded()?.insert(key, value).map_err(value_error)
    }

    /// Inserts a JSON value, returning the one it replaces.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert).
    pub async fn insert_value(&self, key: &str, value: Value) -> session::Result<Option<Value>> {
        self.loaded()?.insert_value(key, value).map_err(value_error)
    }

    /// The value under `key`.
    ///
    /// # Errors
    ///
    /// [`session::Error::SerdeJson`] when it is not a `T`; [`session::Error::Store`] when
    /// the session could not be loaded.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> session::Result<Option<T>> {
        self.loaded()?.get(key).map_err(value_error)
    }

    /// The JSON value under `key`.
    ///
    /// # Errors
    ///
    /// [`session::Error::Store`] when the session could not be loaded.
    pub async fn get_value(&self, key: &str) -> session::Result<Option<Value>> {
        Ok(self.loaded()?.get_value(key))
    }

    /// Removes the value under `key`, returning it.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); the value is removed even when it is not a `T`.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> session::Result<Option<T>> {
        self.loaded()?.remove(key).map_err(value_error)
    }

    /// Removes the JSON value under `key`, returning it.
    ///
    /// # Errors
    ///
    /// [`session::Error::Store`] when the session could not be loaded.
    pub async fn remove_value(&self, key: &str) -> session::Result<Option<Value>> {
        Ok(self.loaded()?.remove_value(key))
    }

    /// Removes every value; the session keeps its id.
    pub async fn clear(&self) {
        if let Ok(s) = &self.0 {
            s.clear();
        }
    }

    /// Whether the session holds no value (also when it could not be loaded).
    pub async fn is_empty(&self) -> bool {
        self.0
            .as_ref()
            .map_or(true, session_core::Session::is_empty)
    }

    /// The id of the stored session: `None` for a session not stored yet.
    pub fn id(&self) -> Option<session::Id> {
        self.native()?.id().map(Into::into)
    }

    /// The session's expiry; `None` for a browser-session cookie.
    pub fn expiry(&self) -> Option<Expiry> {
        match self.native()?.expiry() {
            session_core::Expiry::OnSessionEnd => None,
            e => Some(e.into()),
        }
    }

    /// Sets the session's expiry; `None` makes it a browser-session cookie.
    pub fn set_expiry(&self, expiry: Option<Expiry>) {
        if let Ok(s) = &self.0 {
            let e = expiry.map_or(session_core::Expiry::OnSessionEnd, Into::into);
            s.set_expiry(Some(e));
        }
    }

    /// When the session will end if it is refreshed now.
    pub fn expiry_date(&self) -> OffsetDateTime {
        self.0.as_ref().map_or_else(
            |_| OffsetDateTime::now_utc(),
            session_core::Session::expiry_date,
        )
    }

    /// How long until [`expiry_date`](Self::expiry_date), never negative.
    pub fn expiry_age(&self) -> Duration {
        (self.expiry_date() - OffsetDateTime::now_utc()).max(Duration::ZERO)
    }

    /// Whether this request changed the session (values, expiry, id, or ended it).
    pub fn is_modified(&self) -> bool {
        self.0
            .as_ref()
            .is_ok_and(|s| s.status() != Status::Unchanged)
    }

    /// Confirms the session will be written: the layer writes it after the handler, with
    /// the changes made until then.
    ///
    /// # Errors
    ///
    /// [`session::Error::Store`] when the session could not be loaded.
    pub async fn save(&self) -> session::Result<()> {
        self.loaded().map(drop)
    }

    /// Confirms the session is loaded (the extractor loaded it).
    ///
    /// # Errors
    ///
    /// [`session::Error::Store`] when that load failed.
    pub async fn load(&self) -> session::Result<()> {
        self.loaded().map(drop)
    }

    /// Deletes the session's record and removes its cookie when the request ends.
    ///
    /// # Errors
    ///
    /// [`session::Error::Store`] when the session could not be loaded.
    pub async fn delete(&self) -> session::Result<()> {
        self.loaded()?.flush();
        Ok(())
    }

    /// Clears the session and deletes it (logout).
    ///
    /// # Errors
    ///
    /// [`session::Error::Store`] when the session could not be loaded.
    pub async fn flush(&self) -> session::Result<()> {
        self.delete().await
    }

    /// Gives the session a new id when the request ends, keeping its data (at login).
    ///
    /// # Errors
    ///
    /// [`session::Error::Store`] when the session could not be loaded.
    pub async fn cycle_id(&self) -> session::Result<()> {
        self.loaded()?.cycle_id();
        Ok(())
    }

    /// The native handle, whose accessors are synchronous; `None` when the load failed.
    pub fn native(&self) -> Option<&session_core::Session> {
        self.0.as_ref().ok()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Ok(s) => s.fmt(f),
            Err(_) => f.write_str("Session(store failed)"),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(lazy) = lazy_of(parts) else {
            tracing::error!(
                path = parts.uri.path(),
                "`Session` extracted but the request has none: is `SessionManagerLayer` added to the router?"
            );
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "Missing session: is `SessionManagerLayer` added to the router?",
            ));
        };
        // A failed load (logged there) is reported by the accessors, as tower-sessions
        // reports it.
        Ok(Session(
            load(lazy)
                .await
                .map(crate::Session::into_inner)
                .map_err(|_| StoreFailed),
        ))
    }
}
