//! Aerospike storage for the session family: [`AerospikeStore`] keeps sessions in an
//! Aerospike cluster, shared by every app instance, each record's TTL the session
//! cookie's `Max-Age`.
//!
//! # Quickstart
//!
//! ```no_run
//! use session_aerospike::AerospikeStore;
//!
//! # async fn run() -> Result<(), session_aerospike::Error> {
//! let store = AerospikeStore::builder()
//!     .namespace("test")
//!     .set("sessions")
//!     .connect("127.0.0.1:3000")
//!     .await?;
//! // axum:  Router::new().layer(session_axum::SessionLayer::new(store.clone()))
//! // actix: App::new().wrap(session_actix::SessionMiddleware::new(store.clone()))
//! # Ok(()) }
//! ```
//!
//! # The namespace
//!
//! A record with a TTL needs a namespace whose `nsup-period` is set (or that has
//! `allow-ttl-without-nsup true`); otherwise Aerospike answers `FAIL_FORBIDDEN` to every
//! write. [`AerospikeStoreBuilder::connect`] checks this once at start-up and fails with
//! an [`Error::TtlForbidden`] that names those settings. To use such a namespace anyway,
//! [`AerospikeStoreBuilder::without_server_ttl`] writes records without a TTL (the
//! expiry is still enforced when loading).
//!
//! # tower-sessions
//!
//! `AerospikeStore` also implements `tower_sessions_core::SessionStore` and
//! `ExpiredDeletion`, so a plain tower-sessions app can keep its sessions here
//! (`SessionManagerLayer::new(store)`); the same records serve this family's adapters.
//!
//! # Errors
//!
//! Store calls classify the client's errors with `Error::kind()` and `matches(..)`:
//! unreachable or overloaded clusters, timeouts and busy keys are
//! [`StoreError::Unavailable`](session_core::StoreError::Unavailable) (the adapters
//! answer 503), `RECORD_TOO_BIG` is
//! [`StoreError::TooLarge`](session_core::StoreError::TooLarge), anything else
//! [`StoreError::Backend`](session_core::StoreError::Backend); the client's error is kept
//! as the source.
//!
//! # Features
//!
//! | feature | enables |
//! |---|---|
//! | `tls` | TLS connections to the cluster (the client's `tls`) |

pub mod codec;
mod store;
mod tower;

pub use store::{
    store_error, AerospikeStore, AerospikeStoreBuilder, BinNames, Error, TtlPolicy, FORMAT_VERSION,
};

/// The Aerospike client this store is built on.
pub use aerospike;
