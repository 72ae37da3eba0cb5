//! Server-side sessions for axum (and any tower service): [`SessionLayer`] and the
//! [`Session`] extractor.
//!
//! # Quickstart
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use session_axum::{MemoryStore, Session, SessionLayer};
//!
//! async fn count(session: Session) -> String {
//!     session.update_or("visits", 0u64, |n| *n += 1).unwrap();
//!     let n: u64 = session.get("visits").unwrap().unwrap_or(0);
//!     format!("visit {n}")
//! }
//!
//! # async fn run() {
//! let app = Router::new()
//!     .route("/", get(count))
//!     .layer(SessionLayer::new(MemoryStore::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! Everything a handler needs is re-exported here, so one `use session_axum::...`
//! suffices.
//!
//! # Concepts
//!
//! * **Lazy.** The layer reads and verifies the id from the request but touches no store;
//!   the store is read when a handler extracts [`Session`], once per request. Routes that
//!   never extract it cost no store round-trip, and never wait on a slow store.
//! * **One decision per request.** After the handler: nothing, create, save only the
//!   changed keys, touch (extend the TTL without rewriting data), cycle the id, or
//!   delete, and the matching `Set-Cookie` (or id header). See [`session_core`] for the
//!   whole life cycle.
//! * **Same number twice.** The cookie's `Max-Age` and the store's TTL are computed by one
//!   function from the session's [`Expiry`].
//! * **Shared stores.** Stores are cheap to clone and can serve an actix-web app through
//!   `session-actix` at the same time; any tower-sessions store works through
//!   `TowerStore` (feature `tower-sessions`).
//!
//! # Errors
//!
//! A malformed, tampered or unknown id is a fresh session, never an error. A store that is
//! unavailable makes the request a `503`, any other store failure a `500`; neither body
//! carries the store's message, which is logged with `tracing`. A handler's `5xx` response
//! saves nothing by default.
//!
//! `?` works on the accessors' [`Error`](session_core::Error) in a handler that returns
//! `Result<_, session_core::Error>` (or an error type built from it): it answers an
//! opaque `500` and logs the cause. [`SessionRejection`] converts into
//! `(StatusCode, &'static str)`, the rejection shape of tower-sessions' extractor.
//!
//! ```
//! use session_axum::Session;
//!
//! async fn remember(session: Session) -> Result<&'static str, session_core::Error> {
//!     session.insert("seen", true)?;
//!     Ok("noted")
//! }
//! ```
//!
//! # Coming from tower-sessions
//!
//! `compat` (feature `compat`) has tower-sessions 0.15's names and async accessors over
//! the same engine: turn the feature on, replace `tower_sessions::` with
//! `session_axum::compat::`, and the app runs. The native API above is the recommended
//! next step (MIGRATING.md in the repository).
//!
//! # Features
//!
//! * `compat`: the tower-sessions face (above).
//! * `tower-sessions`: `TowerStore`, any store on tower-sessions-core 0.15 behind this
//!   engine; `tower-sessions-014`: `TowerStore014`, for stores on 0.14 (Redis, SQL).
//!   Off, the crate does not depend on tower-sessions-core.
//! * `metrics`: the session metrics (the README's "Metrics and traces").
//!
//! # Security
//!
//! Defaults: `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`. Sign
//! ([`SessionLayer::with_signed`]) or encrypt ([`SessionLayer::with_private`]) the id,
//! rotate keys with [`SessionLayer::with_old_keys`], and call
//! [`cycle_id`](session_core::Session::cycle_id) at login.

#[cfg(feature = "compat")]
pub mod compat;
mod extract;
mod layer;
mod service;

pub use extract::{Session, SessionHandle, SessionRejection};
pub use layer::SessionLayer;
pub use service::{ResponseFuture, SessionService};

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
