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
//! # Expiry, exactly
//!
//! The server's TTL is whole seconds and it keeps a record up to about a second past
//! it, so the store does not rely on it alone: each record's `expires` bin holds the
//! session's end in Unix nanoseconds, `load` returns nothing once it has passed, and
//! `save` and `touch` carry a filter expression on it, so the server itself refuses to
//! extend a session that has ended, in the same operation as the write.
//!
//! # Coalescing
//!
//! The store keeps at most
//! [`max_in_flight`](AerospikeStoreBuilder::max_in_flight) commands in flight (default
//! 1). Operations of other requests that arrive meanwhile wait, and leave together as
//! one batch command when it returns, each row with its own policy (create-only,
//! update-only, the liveness filter) and its own outcome, so what this page promises
//! holds inside a batch too. Under load N requests cost one round trip and one send and
//! receive instead of N; at low load nothing waits (the operation yields to the runtime
//! once, then is sent alone as the plain single-record command). A command in flight
//! for more than 5 ms (a dead or hung node) stops holding its place, so it does not hold
//! everything else up for its timeout (the first operation waiting behind it keeps a
//! timer for this, so it holds without later traffic too), and an operation its batch could not get
//! answered (its node died, a connection broke, the client could not route the batch's
//! keys) is built anew and sent again alone with the store's retry policy, so the
//! failover settings below hold for coalesced operations too.
//! [`without_coalescing`](AerospikeStoreBuilder::without_coalescing)
//! sends every operation alone.
//!
//! # Failover
//!
//! On a cluster, a write to a partition whose master has died or hung waits until the
//! cluster notices and a replica takes over (about 1.5 s with Aerospike's default
//! heartbeat, then a rebalance). The store's defaults ride that out: a 6 s budget per
//! call, 500 ms per attempt, retries 100 ms apart ([`AerospikeStoreBuilder::timeout`]
//! and its neighbours). A rolling restart and a node frozen below the heartbeat timeout
//! cost no failed request; a request caught in a failover waits instead. When the whole
//! cluster is down, the first call spends its budget and the next answer
//! [`StoreError::Unavailable`](session_core::StoreError::Unavailable) at once, until the
//! client finds a node again.
//!
//! Reads consult every copy of a partition while it migrates (`ReadModeAp::All`), so a
//! node restarted empty never makes a session read as missing while it fills again.
//!
//! # Ended sessions
//!
//! Aerospike Community Edition keeps no trace of a delete: a node's copy from before it
//! (kept while the node was split from the cluster, or re-read from its storage at a
//! restart) comes back. So the store never deletes a session that ends: a logout, the
//! old id of a cycle, the ends of a user's sessions and [`AerospikeStore::clear`] write
//! an ended record, kept until the session's TTL would have run out, which wins over any
//! older copy. A node that returns from a split serves its old copies until it rejoins
//! (a few seconds): while the nodes disagree about which cluster they form, store calls
//! wait ([`AerospikeStoreBuilder::wait_out_splits`]). Every write carries the end of its
//! budget, and the server refuses it after that instant, so a write reported failed never
//! lands later. `docs/aerospike.md` in the repository has what each of these assumes,
//! and the measurements.
//!
//! # tower-sessions
//!
//! With the `tower-sessions` feature, `AerospikeStore` also implements
//! `tower_sessions_core::SessionStore` and `ExpiredDeletion`, so a plain tower-sessions
//! app can keep its sessions here (`SessionManagerLayer::new(store)`); the same records
//! serve this family's adapters.
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
//! | `tower-sessions` | `tower_sessions_core::SessionStore` for `AerospikeStore` |

mod admin;
mod bins;
mod builder;
/// The record codec, public for the fuzz targets only: not part of the API.
#[doc(hidden)]
pub mod codec;
mod discovery;
mod ended;
mod error;
mod filter;
mod key;
mod op;
mod pipeline;
mod store;
#[cfg(feature = "tower-sessions")]
mod tower;
mod users;
mod watch;

pub use bins::{BinNames, FORMAT_VERSION};
pub use builder::{
    AerospikeStoreBuilder, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_SPACING, DEFAULT_TIMEOUT,
};
pub use error::{store_error, Error};
pub use store::{AerospikeStore, TtlPolicy};

/// The Aerospike client this store is built on.
pub use aerospike;
