//! [`AbandonGuard`]: a request's deletions carried out when its response future is
//! dropped.

use super::lazy::LazySession;

/// From [`LazySession::guard`]: carries out a request's pending deletions (a logout, the
/// old id of a `cycle_id`) if dropped before [`disarm`](Self::disarm), so a client that
/// goes away mid-request cannot keep a session alive that it logged out.
#[derive(Debug)]
#[must_use = "a guard does its work when dropped"]
pub struct AbandonGuard(pub(super) Option<LazySession>);

impl AbandonGuard {
    /// The session it guards, until [`disarm`](Self::disarm)ed: an adapter that holds
    /// the guard needs no other handle on the session.
    pub fn session(&self) -> Option<&LazySession> {
        self.0.as_ref()
    }

    /// The response is ready (and [`LazySession::finish`] ran, or was not needed):
    /// nothing is left to do.
    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        let Some(pending) = self.0.take().and_then(|lazy| lazy.abandoned()) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(pending)),
            Err(_) => tracing::error!(
                "a request that logged out was abandoned outside a tokio runtime; the session was not deleted"
            ),
        }
    }
}
