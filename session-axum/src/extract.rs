//! The axum extractor [`Session`] and its rejection.

use std::fmt;
use std::ops::Deref;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::HeaderValue;
use http::StatusCode;
use session_core::LazySession;

/// The session of the current request, as an axum extractor.
///
/// Extracting it loads the record (one store read, the first time in a request); the
/// accessors of [`session_core::Session`], reached through `Deref`, are synchronous.
/// `Option<Session>` is `None` when no [`SessionLayer`](crate::SessionLayer) is in front
/// of the route.
///
/// ```
/// use session_axum::Session;
///
/// async fn cart(session: Session) -> String {
///     let items: Vec<String> = session.get("cart").unwrap().unwrap_or_default();
///     items.join(", ")
/// }
/// ```
#[derive(Clone)]
pub struct Session(session_core::Session);

impl Session {
    /// The framework-neutral handle, e.g. to pass to code shared with actix-web apps.
    pub fn into_inner(self) -> session_core::Session {
        self.0
    }
}

impl Deref for Session {
    type Target = session_core::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a [`Session`] could not be extracted. The response never carries a store's
/// message; the cause is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionRejection {
    /// No [`SessionLayer`](crate::SessionLayer) in front of this route: a 500.
    MissingLayer,
    /// The store is unavailable: a 503, worth retrying.
    StoreUnavailable,
    /// The store failed otherwise: a 500.
    StoreFailed,
}

/// The status and body the rejection answers with: the shape of tower-sessions'
/// rejection, so handlers that map it with `?` into `(StatusCode, &'static str)` port
/// unchanged.
impl From<SessionRejection> for (StatusCode, &'static str) {
    fn from(rejection: SessionRejection) -> Self {
        match rejection {
            SessionRejection::MissingLayer => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Missing session: is `SessionLayer` added to the router?",
            ),
            SessionRejection::StoreUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
            }
            SessionRejection::StoreFailed => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        <(StatusCode, &'static str)>::from(self).into_response()
    }
}

impl fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionRejection::MissingLayer => {
                "no session in the request: is `SessionLayer` added to the router?"
            }
            SessionRejection::StoreUnavailable => "the session store is unavailable",
            SessionRejection::StoreFailed => "the session store failed",
        })
    }
}

impl std::error::Error for SessionRejection {}

/// The request's session, its ids read from the request's headers (the first time).
pub(crate) fn lazy_of(parts: &Parts) -> Option<&LazySession> {
    let lazy = parts.extensions.get::<LazySession>()?;
    let name = lazy.config().request_header_name();
    lazy.identify(
        parts
            .headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    Some(lazy)
}

/// Loads the request's session; a store failure is logged and becomes the rejection.
pub(crate) async fn load(lazy: &LazySession) -> Result<Session, SessionRejection> {
    match lazy.load().await {
        Ok(s) => Ok(Session(s)),
        Err(e) => {
            tracing::error!(error = %e.report(), "could not load the session");
            Err(if e.is_unavailable() {
                SessionRejection::StoreUnavailable
            } else {
                SessionRejection::StoreFailed
            })
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(lazy) = lazy_of(parts) else {
            tracing::error!(
                path = parts.uri.path(),
                "`Session` extracted but the request has none: is `SessionLayer` added to the router?"
            );
            return Err(SessionRejection::MissingLayer);
        };
        load(lazy).await
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match lazy_of(parts) {
            None => Ok(None),
            Some(lazy) => load(lazy).await.map(Some),
        }
    }
}

/// The request's session before loading: extract it to log out without reading the
/// session ([`flush`](Self::flush)), or to load it only on some paths.
///
/// ```
/// use session_axum::SessionHandle;
///
/// // Logout needs no store read, so it still works (and removes the cookie) when the
/// // store is slow or down; a store failure is still reported as 503/500.
/// async fn logout(session: SessionHandle) -> &'static str {
///     session.flush();
///     "bye"
/// }
/// ```
#[derive(Clone, Debug)]
pub struct SessionHandle(LazySession);

impl SessionHandle {
    /// Ends the session when the request ends: its record is deleted and its cookie
    /// removed, without reading it first.
    pub fn flush(&self) {
        self.0.flush();
    }

    /// Loads the session (once per request).
    ///
    /// # Errors
    ///
    /// A [`SessionRejection`] when the store fails (logged).
    pub async fn load(&self) -> Result<Session, SessionRejection> {
        load(&self.0).await
    }

    /// The session, if something in this request loaded it already.
    pub fn loaded(&self) -> Option<Session> {
        self.0.loaded().map(Session)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SessionHandle {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match lazy_of(parts) {
            Some(lazy) => Ok(SessionHandle(lazy.clone())),
            None => {
                tracing::error!(
                    path = parts.uri.path(),
                    "`SessionHandle` extracted but the request has none: is `SessionLayer` added to the router?"
                );
                Err(SessionRejection::MissingLayer)
            }
        }
    }
}
