//! The [`Session`] extractor, [`SessionExt`] and [`SessionError`].

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::guard::GuardContext;
use actix_web::http::header::{HeaderMap, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use session_core::LazySession;

/// The session of the current request, as an actix-web extractor.
///
/// Extracting it loads the record (one store read, the first time in a request); the
/// accessors of [`session_core::Session`], reached through `Deref`, are synchronous.
///
/// ```
/// use session_actix::Session;
///
/// async fn cart(session: Session) -> String {
///     let items: Vec<String> = session.get("cart").unwrap().unwrap_or_default();
///     items.join(", ")
/// }
/// ```
#[derive(Clone)]
pub struct Session(session_core::Session);

impl Session {
    /// The framework-neutral handle, e.g. to pass to code shared with axum apps.
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

/// Why the session could not be had. Its response never carries a store's message; the
/// cause is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// No [`SessionMiddleware`](crate::SessionMiddleware) around this route: a 500.
    MissingMiddleware,
    /// The store is unavailable: a 503, worth retrying.
    StoreUnavailable,
    /// The store failed otherwise: a 500.
    StoreFailed,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionError::MissingMiddleware => {
                "no session in the request: is `SessionMiddleware` wrapped around the app?"
            }
            SessionError::StoreUnavailable => "the session store is unavailable",
            SessionError::StoreFailed => "the session store failed",
        })
    }
}

impl std::error::Error for SessionError {}

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        match self {
            SessionError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            SessionError::MissingMiddleware => {
                "Missing session: is `SessionMiddleware` wrapped around the app?"
            }
            SessionError::StoreUnavailable => "Service Unavailable",
            SessionError::StoreFailed => "Internal Server Error",
        };
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(body)
    }
}

/// The session of a request before a handler loaded it, as reached from guards and other
/// middleware through [`SessionExt::get_session`].
///
/// Loading is async (it may read the store); [`loaded`](Self::loaded) is the synchronous
/// view for code that runs after something loaded it, such as a guard behind a
/// middleware that called [`load`](Self::load).
#[derive(Clone)]
pub struct SessionHandle {
    lazy: Option<LazySession>,
    /// The request path, kept only when the middleware is missing, for the log line.
    missing_at: Option<String>,
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle")
            .field("lazy", &self.lazy)
            .finish()
    }
}

impl SessionHandle {
    fn missing(&self) -> SessionError {
        tracing::error!(
            path = self.missing_at.as_deref().unwrap_or_default(),
            "`Session` asked for but the request has none: is `SessionMiddleware` wrapped around the app?"
        );
        SessionError::MissingMiddleware
    }

    /// Loads the session (once per request; later calls cost nothing).
    ///
    /// # Errors
    ///
    /// [`SessionError`]: no middleware, or the store failed (logged).
    pub async fn load(&self) -> Result<Session, SessionError> {
        let Some(lazy) = &self.lazy else {
            return Err(self.missing());
        };
        lazy.load().await.map(Session).map_err(|e| {
            tracing::error!(error = %e.report(), "could not load the session");
            if e.is_unavailable() {
                SessionError::StoreUnavailable
            } else {
                SessionError::StoreFailed
            }
        })
    }

    /// The session, if something in this request loaded it already.
    pub fn loaded(&self) -> Option<Session> {
        self.lazy.as_ref()?.loaded().map(Session)
    }

    /// Ends the session (logout) without reading it: its record is deleted and its cookie
    /// removed when the request ends, so a logout still removes the cookie (and still
    /// reports the failure) when the store is down.
    ///
    /// # Errors
    ///
    /// [`SessionError::MissingMiddleware`] without the middleware (logged).
    pub fn flush(&self) -> Result<(), SessionError> {
        match &self.lazy {
            Some(lazy) => {
                lazy.flush();
                Ok(())
            }
            None => Err(self.missing()),
        }
    }
}

impl FromRequest for SessionHandle {
    type Error = SessionError;
    type Future = std::future::Ready<Result<SessionHandle, SessionError>>;

    /// The handle, loading nothing; a missing middleware shows when it is used.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(req.get_session()))
    }
}

/// Reach the session from anything that carries a request: `HttpRequest`,
/// `ServiceRequest`, `ServiceResponse`, and guards' `GuardContext`.
///
/// Guards run while actix-web routes, before any handler, and cannot wait for the store:
/// turn on [`load_before_routing`](crate::SessionMiddlewareBuilder::load_before_routing)
/// so the session is loaded by then.
///
/// ```
/// use actix_web::{guard, web, App};
/// use session_actix::{MemoryStore, SessionExt, SessionMiddleware};
///
/// let sessions = SessionMiddleware::builder(MemoryStore::default())
///     .load_before_routing(true)
///     .build();
/// // A resource only logged-in sessions reach.
/// let app = App::new()
///     .service(
///         web::resource("/admin")
///             .guard(guard::fn_guard(|ctx| {
///                 ctx.get_session().loaded().is_some_and(|s| s.contains_key("user"))
///             }))
///             .to(|| async { "welcome" }),
///     )
///     .wrap(sessions);
/// ```
pub trait SessionExt {
    /// The request's session handle.
    fn get_session(&self) -> SessionHandle;
}

/// The request's handle, its session's ids read from `headers` (the first time).
fn handle(lazy: Option<LazySession>, headers: &HeaderMap, path: &str) -> SessionHandle {
    if let Some(lazy) = &lazy {
        let name = lazy.config().request_header();
        // actix-web's header types are http 0.2's: find the standard name without parsing.
        let values = if name == "cookie" {
            headers.get_all(actix_web::http::header::COOKIE)
        } else {
            headers.get_all(name)
        };
        lazy.identify(values.map(HeaderValue::as_bytes));
    }
    SessionHandle {
        missing_at: lazy.is_none().then(|| path.to_owned()),
        lazy,
    }
}

impl SessionExt for HttpRequest {
    fn get_session(&self) -> SessionHandle {
        let lazy = self.extensions().get::<LazySession>().cloned();
        handle(lazy, self.headers(), self.path())
    }
}

impl SessionExt for ServiceRequest {
    fn get_session(&self) -> SessionHandle {
        let lazy = self.extensions().get::<LazySession>().cloned();
        handle(lazy, self.headers(), self.path())
    }
}

impl<B> SessionExt for ServiceResponse<B> {
    fn get_session(&self) -> SessionHandle {
        self.request().get_session()
    }
}

impl SessionExt for GuardContext<'_> {
    fn get_session(&self) -> SessionHandle {
        let lazy = self.req_data().get::<LazySession>().cloned();
        handle(lazy, &self.head().headers, self.head().uri.path())
    }
}

impl FromRequest for Session {
    type Error = SessionError;
    type Future = Pin<Box<dyn Future<Output = Result<Session, SessionError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let handle = req.get_session();
        Box::pin(async move { handle.load().await })
    }
}
