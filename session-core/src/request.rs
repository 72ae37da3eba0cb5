//! What one request shares between its session handle and the engine: [`Shared`], and
//! the engine's own context ([`EngineInner`]) it points to. Data only: the engine
//! (`engine/`) and the handle (`session.rs`) add the behaviour, and neither names the
//! other through it.

#[cfg(feature = "metrics")]
use std::sync::atomic::Ordering;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};

use crate::cookie::read::Candidates;
use crate::cookie::SessionConfig;
use crate::state::State;
use crate::store::meter::Meters;
#[cfg(feature = "metrics")]
use crate::store::meter::Start;
use crate::store::DynStore;

/// The engine's context: its store, its configuration, its counters.
pub(crate) struct EngineInner {
    pub(crate) store: Box<dyn DynStore>,
    pub(crate) config: SessionConfig,
    pub(crate) rejected: AtomicU64,
    pub(crate) unknown: AtomicU64,
    /// The metric handles (with the `metrics` feature; empty without it).
    pub(crate) meters: Arc<Meters>,
}

pub(crate) struct Shared {
    pub(crate) engine: Arc<EngineInner>,
    /// The verified ids the request presented, in order, once read.
    pub(crate) incoming: OnceLock<Candidates>,
    pub(crate) loaded: tokio::sync::OnceCell<()>,
    /// [`LazySession::flush`] was called: end the session without reading it.
    pub(crate) flushed: AtomicBool,
    /// [`LazySession::finish`] ran to its end.
    pub(crate) finished: AtomicBool,
    /// Every id the request presented was malformed or failed verification.
    #[cfg(feature = "metrics")]
    pub(crate) rejected: AtomicBool,
    /// The request was counted by how its session began (`session_requests_total`).
    #[cfg(feature = "metrics")]
    pub(crate) counted: AtomicBool,
    pub(crate) state: Mutex<State>,
}

/// A request whose session nothing used is counted when its state goes.
#[cfg(feature = "metrics")]
impl Drop for Shared {
    fn drop(&mut self) {
        let used = self.loaded.initialized() || self.flushed.load(Ordering::Relaxed);
        if !used && !self.counted.load(Ordering::Relaxed) {
            self.engine.meters.request(Start::Unused);
        }
    }
}
