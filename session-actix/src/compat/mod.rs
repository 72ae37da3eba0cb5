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

pub mod config;
mod cookie;
mod middleware;
#[cfg(feature = "redis-session")]
mod redis;
mod session;

pub use middleware::{CompatFuture, CompatService, SessionMiddleware};
pub use session::{Session, SessionExt, SessionGetError, SessionInsertError, SessionUpdateError};

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
