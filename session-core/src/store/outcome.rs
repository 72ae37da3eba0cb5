//! What a store operation comes to: [`Created`] for a create-if-absent, [`Cycle`] for a
//! move to a new id, [`Update`] for update-only writes, [`StoreError`] when it fails.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The outcome of an update-only write ([`SessionStore::save`](super::SessionStore::save), [`SessionStore::touch`](super::SessionStore::touch)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// The record existed and was updated.
    Applied,
    /// The record no longer exists (expired or deleted meanwhile) and was not brought back.
    Missing,
}

/// The outcome of a create-if-absent ([`SessionStore::create`](super::SessionStore::create)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// The record is stored under its id.
    Stored,
    /// The id names a record already (live, or one the store keeps as ended): nothing
    /// was written. The engine tries again under a fresh id.
    Taken,
}

/// The outcome of a move to a new id ([`SessionStore::cycle`](super::SessionStore::cycle)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cycle {
    /// The session lives under the new id now; the old one is gone.
    Moved,
    /// The old record had ended (a logout, a revocation, its expiry): nothing is left
    /// created, and the session is not brought back.
    Ended,
    /// The new id names a record already: nothing changed. The engine tries again under
    /// a fresh id.
    Taken,
}

/// Why a store operation failed.
///
/// Adapters answer [`Unavailable`](StoreError::Unavailable) with `503 Service
/// Unavailable` and everything else with `500`; neither response carries this error's
/// text, which is logged instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached or is overloaded right now: connection refused or
    /// lost, a timeout, a busy key. Retrying later may succeed.
    #[error("the session store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The session is larger than the store accepts.
    #[error("the session is larger than the session store accepts")]
    TooLarge(#[source] BoxError),
    /// Every id the engine tried for a new record was taken
    /// ([`Created::Taken`], [`Cycle::Taken`]).
    #[error("no free session id after {0} tries")]
    IdCollision(u32),
    /// A stored record could not be decoded. The engine treats the session as absent
    /// (and logs this); it is never an error page.
    #[error("a stored session record could not be decoded")]
    Decode(#[source] BoxError),
    /// A session could not be encoded for the store.
    #[error("the session could not be encoded for the store")]
    Encode(#[source] BoxError),
    /// Any other failure of the store.
    #[error("the session store failed")]
    Backend(#[source] BoxError),
    /// The store cannot do this at all: for example finding a user's sessions
    /// ([`SessionStore::user_sessions`](super::SessionStore::user_sessions)) on a store that keeps no index of them. Says
    /// what was asked.
    #[error("the session store cannot do this: {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// Whether this is a transient unavailability (the adapters answer 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// This error and its whole source chain, `: `-separated, for logs. Responses never
    /// carry it.
    pub fn report(&self) -> impl fmt::Display + '_ {
        Report(self)
    }

    /// The status code an adapter answers with: 503 when unavailable, 500 otherwise.
    pub fn status(&self) -> http::StatusCode {
        if self.is_unavailable() {
            http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            http::StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

struct Report<'a>(&'a StoreError);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_separates_unavailable_from_other_failures() {
        let e = StoreError::Unavailable("down".into());
        assert!(e.is_unavailable());
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        let e = StoreError::Backend("broken".into());
        assert_eq!(e.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        // The source is kept, not copied into the message.
        assert_eq!(e.to_string(), "the session store failed");
        assert_eq!(e.source().unwrap().to_string(), "broken");
        assert_eq!(e.report().to_string(), "the session store failed: broken");
    }
}
