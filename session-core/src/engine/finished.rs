//! How a request ends: [`Finished`], and [`Finish`] for adapters that skip the future
//! when no store call is due.

use std::fmt;

use super::run::StoreCall;
use crate::store::StoreError;

/// What the adapter sends after the handler: at most one header, and an error that turns
/// the response into a 5xx (see [`StoreError::status`]).
///
/// Its `Debug` never shows the header's value, which carries the session id.
#[derive(Default)]
#[must_use]
pub struct Finished {
    header: Option<String>,
    error: Option<StoreError>,
}

impl fmt::Debug for Finished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finished")
            .field("header", &self.header.as_ref().map(|_| "REDACTED"))
            .field("error", &self.error)
            .finish()
    }
}

impl Finished {
    /// The value of the response header named by
    /// [`SessionConfig::response_header`](crate::SessionConfig::response_header) to add
    /// (for cookies, one `Set-Cookie` to append beside any the handler set).
    pub fn header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// The store failure that happened, if any. The adapter must then answer with
    /// [`StoreError::status`], keep [`header`](Self::header) (a logout whose delete failed
    /// still removes the cookie), and log the error, not send its text.
    pub fn error(&self) -> Option<&StoreError> {
        self.error.as_ref()
    }

    /// Both parts.
    pub fn into_parts(self) -> (Option<String>, Option<StoreError>) {
        (self.header, self.error)
    }

    pub(super) fn new(header: Option<String>) -> Self {
        Finished {
            header,
            error: None,
        }
    }

    pub(super) fn send(value: String) -> Self {
        Self::new(Some(value))
    }

    pub(super) fn failed(header: Option<String>, error: StoreError) -> Self {
        Finished {
            header,
            error: Some(error),
        }
    }
}

/// How a request ends, from [`LazySession::try_finish`](super::LazySession::try_finish).
#[derive(Debug)]
#[must_use]
// Moved once, into the future that runs it: boxing the store call would cost the
// allocation `try_finish` exists to avoid.
#[allow(clippy::large_enum_variant)]
pub enum Finish {
    /// No store call was due: the outcome.
    Ready(Finished),
    /// A store call is due: await [`StoreCall::run`].
    Store(StoreCall),
}
