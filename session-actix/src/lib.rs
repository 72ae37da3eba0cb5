//! Server-side sessions for actix-web: [`SessionMiddleware`], the [`Session`] extractor and
//! [`SessionExt`].
//!
//! # Quickstart
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//! use session_actix::{MemoryStore, Session, SessionMiddleware};
//!
//! async fn count(session: Session) -> String {
//!     session.update_or("visits", 0u64, |n| *n += 1).unwrap();
//!     let n: u64 = session.get("visits").unwrap().unwrap_or(0);
//!     format!("visit {n}")
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let sessions = SessionMiddleware::new(MemoryStore::default());
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(sessions.clone())
//!             .route("/", web::get().to(count))
//!     })
//!     .bind(("127.0.0.1", 8081))?
//!     .run()
//!     .await
//! }
//! ```
//!
//! Everything a handler needs is re-exported here, so one `use session_actix::...`
//! suffices.
//!
//! # Concepts
//!
//! * **Lazy.** The middleware reads and verifies the id from the request but touches no
//!   store; the store is read when a handler extracts [`Session`] (or calls
//!   [`SessionHandle::load`]), once per request.
//! * **One decision per request**, made by the same engine as `session-axum`'s, so both
//!   adapters behave identically and share stores: a session created by an axum app is
//!   read and changed by an actix-web app with the same cookie.
//! * **Setter names** follow actix-session (`cookie_name`, `cookie_secure`,
//!   `cookie_content_security`, ...) on [`SessionMiddleware::builder`].
//!
//! # Errors
//!
//! A malformed, tampered or unknown id is a fresh session, never an error. A store that is
//! unavailable makes the request a `503`, any other store failure a `500`; neither body
//! carries the store's message, which is logged with `tracing`. A handler's `5xx` response
//! saves nothing by default.
//!
//! `?` works on the accessors' [`Error`](session_core::Error) in a handler that returns
//! `actix_web::Result`: it is a `ResponseError` that answers an opaque `500` and logs the
//! cause.
//!
//! ```
//! use session_actix::Session;
//!
//! async fn remember(session: Session) -> actix_web::Result<&'static str> {
//!     session.insert("seen", true)?;
//!     Ok("noted")
//! }
//! ```
//!
//! # Coming from actix-session
//!
//! `compat` (feature `compat`) has actix-session 0.11's names, defaults and method
//! meanings over the same engine: turn the feature on, replace `actix_session::` with
//! `session_actix::compat::` and use one of this crate's stores. The native API above is
//! the recommended next step (MIGRATING.md in the repository).
//!
//! # Features
//!
//! * `compat`: the actix-session face (above), with its cookie-state store;
//!   `redis-session`: its `RedisSessionStore` too.
//! * `tower-sessions`: `TowerStore`, any store on tower-sessions-core 0.15 behind this
//!   engine; `tower-sessions-014`: `TowerStore014`, for stores on 0.14 (Redis, SQL).
//!   Off, the crate does not depend on tower-sessions-core.
//! * `metrics`: the session metrics (the README's "Metrics and traces").
//!
//! # Security
//!
//! Defaults: `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`. Sign or encrypt
//! the id with [`CookieContentSecurity`], rotate keys with
//! [`SessionMiddlewareBuilder::old_keys`], and call
//! [`cycle_id`](session_core::Session::cycle_id) at login.

#[cfg(feature = "compat")]
pub mod compat;
mod extract;
mod middleware;

pub use extract::{Session, SessionError, SessionExt, SessionHandle};
pub use middleware::{CookieContentSecurity, SessionMiddleware, SessionMiddlewareBuilder};

#[doc(inline)]
pub use session_core::{
    ConfigError, Expiry, Id, IdSource, Key, MemoryStore, SameSite, SessionConfig,
    SessionConfigBuilder, SessionStore, Status, StoreError, TouchPolicy,
};

#[doc(inline)]
#[cfg(feature = "tower-sessions")]
pub use session_core::TowerStore;

#[doc(inline)]
#[cfg(feature = "tower-sessions-014")]
pub use session_core::TowerStore014;

/// The framework-neutral engine, for what this crate does not re-export.
pub use session_core;
