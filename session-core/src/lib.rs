//! The framework-neutral session engine behind `session-axum` and `session-actix`.
//!
//! Applications normally use an adapter crate, which re-exports everything here that a
//! handler needs. This crate holds what both adapters share, so they behave identically:
//!
//! * [`Id`]: 128 random bits, tower-sessions' text form, strict parsing.
//! * [`Session`]: the handle handlers use, with synchronous accessors and per-key change
//!   tracking; [`Status`] says what happened to it.
//! * [`Expiry`] and [`Lifetime::of`]: one function gives the cookie's `Max-Age` and the
//!   store's TTL, so they are always the same number.
//! * [`SessionConfig`]: cookie attributes, id source (cookie or header), signing or
//!   encryption with key rotation, touch policy; validated once when built.
//! * [`SessionStore`]: the async store trait; [`MemoryStore`], the embedded default.
//!   Store authors find the rest in [`store`], with [`store::NowStore`], the operations
//!   an in-process store completes without waiting. `TowerStore` (feature
//!   `tower-sessions`) puts any tower-sessions store behind this engine (`TowerStore014`,
//!   feature `tower-sessions-014`, for stores built on tower-sessions-core 0.14).
//! * [`SessionEngine`] and [`LazySession`]: the request life cycle adapters drive.
//! * A user's sessions ([`user`]): [`Session::set_user`] binds a session at login;
//!   [`Session::user_sessions`] lists the user's sessions ([`SessionInfo`]),
//!   [`Session::end_other_sessions`] and [`Session::end_all_sessions`] log them out, on
//!   every store that keeps an index of bindings (`MemoryStore`, the Aerospike store);
//!   others answer [`StoreError::Unsupported`].
//!
//! # Quickstart (for adapter authors; applications see their adapter's docs)
//!
//! ```
//! use session_core::{MemoryStore, SessionConfig, SessionEngine};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let engine = SessionEngine::new(MemoryStore::default(), SessionConfig::default());
//!
//! // A request without a cookie; the handler writes a value.
//! let lazy = engine.start(std::iter::empty());
//! let session = lazy.load().await.expect("no store call was needed");
//! session.insert("user", "ada").unwrap();
//! let finished = lazy.finish(200).await;
//! let set_cookie = finished.header().expect("a new session sets its cookie");
//! assert!(set_cookie.starts_with("id="));
//!
//! // The next request presents the cookie and reads the value back.
//! let cookie = set_cookie.split(';').next().unwrap();
//! let lazy = engine.start([cookie.as_bytes()]);
//! let session = lazy.load().await.unwrap();
//! assert_eq!(session.get::<String>("user").unwrap().as_deref(), Some("ada"));
//! assert!(lazy.finish(200).await.header().is_none(), "nothing changed");
//! # });
//! ```
//!
//! # The request life cycle
//!
//! 1. The adapter hands the request's `Cookie` header values (or the id header) to
//!    [`SessionEngine::start`]. The id is found and verified (see
//!    [which cookie is ours](SessionConfig#which-cookie-is-ours)); anything malformed, tampered or unknown means "no
//!    session": never an error, never the client's id adopted.
//! 2. Nothing is read from the store until a handler asks: [`LazySession::load`] reads
//!    the record once, however many extractors ask.
//! 3. After the handler, [`LazySession::finish`] makes one decision from what happened:
//!    * nothing (the session was not used, or nothing changed and no touch is due);
//!    * create (a new session got its first value; an empty new session is never stored);
//!    * save only the changed keys;
//!    * touch (extend the TTL without rewriting data, per [`TouchPolicy`]);
//!    * cycle the id ([`Session::cycle_id`]: create the new record, then delete the old);
//!    * delete ([`Session::flush`], the last value removed, or an expiry already over),
//!      with a removal cookie.
//!
//!    A late save or touch of a session that expired or was deleted meanwhile does not
//!    bring it back. A server-error response (5xx) saves nothing by default.
//!
//! # Security notes
//!
//! * Ids come from the OS CSPRNG; `Debug` and `Display` show only a six-character
//!   prefix, and keys print as `REDACTED`.
//! * The defaults are `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`.
//! * Signed (HMAC-SHA256) or private (AES-256-GCM) cookies through the `cookie` crate,
//!   with [old keys](SessionConfigBuilder::old_keys) accepted and re-issued for rotation.
//! * Call [`Session::cycle_id`] whenever privileges change.
//!
//! # Features
//!
//! * `metrics`: counters and histograms of every request's session and every store
//!   operation through the `metrics` facade (the adapters' `metrics` feature turns it
//!   on). The list of metrics is in the README ("Metrics and traces"). Without it none
//!   of that code is compiled.
//! * `tower-sessions`: `TowerStore`, any store on tower-sessions-core 0.15 behind this
//!   engine, and `From` conversions of ids and expiries to and from tower-sessions'
//!   (the one way to build an `Id` but parsing and randomness). Off, this crate does not
//!   depend on tower-sessions-core.
//! * `tower-sessions-014`: `TowerStore014`, for stores built on tower-sessions-core 0.14.
//! * `axum`, `actix`: `?` on the accessors' errors in handlers (the adapters turn them on).

mod cookie;
mod engine;
mod expiry;
mod id;
#[cfg(any(feature = "tower-sessions", feature = "tower-sessions-014"))]
mod interop;
mod request;
#[cfg(any(feature = "axum", feature = "actix"))]
mod respond;
mod session;
mod state;
pub mod store;
mod stores;
pub mod user;

pub use cookie::{
    bind_to_name, ConfigError, IdSource, Key, Limits, SameSite, SessionConfig,
    SessionConfigBuilder, TouchPolicy,
};
pub use engine::{AbandonGuard, Finish, Finished, LazySession, Metrics, SessionEngine, StoreCall};
pub use expiry::{Expiry, Lifetime, Ttl};
pub use id::{EncodedId, Id, ParseIdError, ShortId, ID_LEN, SHORT_LEN};
#[cfg(feature = "tower-sessions")]
pub use interop::TowerStore;
#[cfg(feature = "tower-sessions-014")]
pub use interop::TowerStore014;
pub use session::Session;
pub use state::EXPIRY_KEY;
pub use state::{Change, Changes, Data};
pub use state::{Error, Status, MAX_DEPTH};
pub use store::{BoxError, Created, Cycle, Record, SessionStore, StoreError, Update};
pub use stores::MemoryStore;
pub use user::{SessionInfo, USER_KEY};

#[cfg(test)]
mod tests;
