//! The request life cycle that adapters drive: [`SessionEngine`], [`LazySession`],
//! [`Finished`].
//!
//! A request's end is decided by a pure function of its session's state ([`plan`]) and
//! carried out apart from the deciding ([`run`]): at once through a store's
//! [`NowStore`](crate::store::NowStore), or as one [`StoreCall`]. The engine never names
//! a concrete store.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

mod finished;
mod guard;
mod lazy;
mod plan;
mod run;

pub use finished::{Finish, Finished};
pub use guard::AbandonGuard;
pub use lazy::LazySession;
pub use run::StoreCall;

use crate::cookie::SessionConfig;
use crate::expiry::Ttl;
use crate::request::{EngineInner, Shared};
use crate::session::Session;
use crate::state::new_state_mutex;
use crate::store::meter::Meters;
use crate::store::{Instrumented, SessionStore};

/// Counts of bad session ids an engine has seen: a brute-force signal worth exporting.
/// Both count requests that used their session (the ids of a request whose handlers
/// never extract it are not even read), not distinct ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Requests whose ids were all malformed, or failed signature or decryption checks.
    pub rejected_ids: u64,
    /// Requests with a well-formed, verified id that the store did not know (expired,
    /// logged out, or guessed). Counted when the session is loaded.
    pub unknown_ids: u64,
}

/// A store and a configuration: what an adapter holds, to start one [`LazySession`] per
/// request. Cheap to clone.
///
/// This is the interface for adapter authors; applications use an adapter
/// (`session_axum::SessionLayer`, `session_actix::SessionMiddleware`).
#[derive(Clone)]
pub struct SessionEngine {
    inner: Arc<EngineInner>,
}

impl fmt::Debug for SessionEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEngine")
            .field("store", &self.inner.store)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl SessionEngine {
    /// An engine over `store` with a validated `config`.
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Self {
        Self::for_adapter(store, config, "custom")
    }

    /// As [`new`](Self::new), for the adapter named `adapter` (the `adapter` label of
    /// the metrics, with the `metrics` feature: `axum`, `actix-web`).
    pub fn for_adapter(
        store: impl SessionStore,
        config: SessionConfig,
        adapter: &'static str,
    ) -> Self {
        let meters = Arc::new(Meters::new(store.label(), adapter));
        SessionEngine {
            inner: Arc::new(EngineInner {
                store: Box::new(Instrumented {
                    store,
                    meters: meters.clone(),
                }),
                config,
                rejected: AtomicU64::new(0),
                unknown: AtomicU64::new(0),
                meters,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The bad ids seen so far.
    pub fn metrics(&self) -> Metrics {
        Metrics {
            rejected_ids: self.inner.rejected.load(Ordering::Relaxed),
            unknown_ids: self.inner.unknown.load(Ordering::Relaxed),
        }
    }

    /// Starts a request and reads its ids now: give it every value of the request header
    /// named by [`SessionConfig::request_header`], in order. Costs no store call.
    pub fn start<'a, I>(&self, header_values: I) -> LazySession
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let lazy = self.start_deferred();
        lazy.identify(header_values);
        lazy
    }

    /// Starts a request without reading its ids, for adapters whose extractors see the
    /// request's headers: they call [`LazySession::identify`] before
    /// [`load`](LazySession::load) or [`flush`](LazySession::flush), so a request that
    /// never uses its session costs no parsing, verification or decryption at all.
    /// Until `identify` is called, the request presented no id.
    pub fn start_deferred(&self) -> LazySession {
        LazySession {
            shared: Arc::new(Shared {
                engine: self.inner.clone(),
                incoming: OnceLock::new(),
                loaded: tokio::sync::OnceCell::new(),
                flushed: AtomicBool::new(false),
                finished: AtomicBool::new(false),
                #[cfg(feature = "metrics")]
                rejected: AtomicBool::new(false),
                #[cfg(feature = "metrics")]
                counted: AtomicBool::new(false),
                state: new_state_mutex(),
            }),
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<SessionEngine>();
    check::<LazySession>();
    check::<Session>();
    check::<Finished>();
    check::<Ttl>();
}
