//! [`SessionMiddleware`], its builder, and the inner service.

use std::fmt;
use std::future::{Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use crate::SessionExt;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage, HttpResponse};
use pin_project_lite::pin_project;
use session_core::{
    AbandonGuard, ConfigError, Expiry, Finish, Finished, Key, SameSite, SessionConfig,
    SessionConfigBuilder, SessionEngine, SessionStore, TouchPolicy,
};

/// This adapter's name in the session metrics.
const ADAPTER: &str = "actix-web";

/// The actix-web middleware that gives every request a lazily loaded session.
///
/// ```no_run
/// use actix_web::{web, App, HttpServer};
/// use session_actix::{MemoryStore, Session, SessionMiddleware};
///
/// async fn count(session: Session) -> String {
///     session.update_or("n", 0u64, |n| *n += 1).unwrap();
///     session.get::<u64>("n").unwrap().unwrap_or(0).to_string()
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let store = MemoryStore::default();
/// HttpServer::new(move || {
///     App::new()
///         .wrap(SessionMiddleware::new(store.clone()))
///         .route("/", web::get().to(count))
/// })
/// .bind(("127.0.0.1", 8081))?
/// .run()
/// .await
/// # }
/// ```
///
/// Cloning is cheap; clones share the engine (and its store), so build the middleware
/// once outside `HttpServer::new` and clone it into each worker's `App`.
#[derive(Clone)]
pub struct SessionMiddleware {
    engine: SessionEngine,
    before_routing: bool,
}

impl fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("engine", &self.engine)
            .field("load_before_routing", &self.before_routing)
            .finish()
    }
}

impl SessionMiddleware {
    /// The middleware over `store` with the secure defaults of [`SessionConfig`].
    pub fn new(store: impl SessionStore) -> Self {
        SessionMiddleware {
            engine: SessionEngine::for_adapter(store, SessionConfig::default(), ADAPTER),
            before_routing: false,
        }
    }

    /// A builder with actix-session's setter names.
    pub fn builder<S: SessionStore>(store: S) -> SessionMiddlewareBuilder<S> {
        SessionMiddlewareBuilder {
            store,
            config: SessionConfig::builder(),
            before_routing: false,
        }
    }

    /// The engine, for code that drives sessions itself.
    pub fn engine(&self) -> &SessionEngine {
        &self.engine
    }
}

/// How the id in the cookie is protected (actix-session's name), with the key.
#[derive(Clone)]
pub enum CookieContentSecurity {
    /// HMAC-SHA256: the id is readable but cannot be forged.
    Signed(Key),
    /// AES-256-GCM: the id can be neither read nor forged.
    Private(Key),
}

impl fmt::Debug for CookieContentSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CookieContentSecurity::Signed(_) => "Signed(REDACTED)",
            CookieContentSecurity::Private(_) => "Private(REDACTED)",
        })
    }
}

/// Builder for [`SessionMiddleware`]; [`build`](Self::build) validates once.
#[derive(Debug)]
pub struct SessionMiddlewareBuilder<S> {
    store: S,
    config: SessionConfigBuilder,
    before_routing: bool,
}

impl<S: SessionStore> SessionMiddlewareBuilder<S> {
    fn with(mut self, f: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder) -> Self {
        self.config = f(self.config);
        self
    }

    /// Replaces the whole configuration. Default: [`SessionConfig::default`].
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SessionConfig, SessionMiddleware};
    /// let config = SessionConfig::builder().name("sid").build().unwrap();
    /// let mw = SessionMiddleware::builder(MemoryStore::default()).config(config).build();
    /// ```
    pub fn config(self, config: SessionConfig) -> Self {
        self.with(|_| SessionConfigBuilder::from(&config))
    }

    /// The cookie name. Default: `id`.
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default()).cookie_name("sid").build();
    /// ```
    pub fn cookie_name(self, name: impl Into<String>) -> Self {
        self.with(|c| c.name(name))
    }

    /// Whether the cookie is `Secure`. Default: `true`.
    ///
    /// # Warning
    ///
    /// Turn it off only for plain-HTTP development: the id then crosses the network in
    /// clear text.
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default()).cookie_secure(false).build();
    /// ```
    pub fn cookie_secure(self, secure: bool) -> Self {
        self.with(|c| c.secure(secure))
    }

    /// The cookie's `SameSite`. Default: `Lax`.
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SameSite, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default())
    ///     .cookie_same_site(SameSite::Strict)
    ///     .build();
    /// ```
    pub fn cookie_same_site(self, same_site: SameSite) -> Self {
        self.with(|c| c.same_site(same_site))
    }

    /// The cookie `Path`. Default: `/`.
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default()).cookie_path("/app").build();
    /// ```
    pub fn cookie_path(self, path: impl Into<String>) -> Self {
        self.with(|c| c.path(path))
    }

    /// The cookie `Domain`. Default: none (host-only).
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default())
    ///     .cookie_domain("example.com")
    ///     .build();
    /// ```
    pub fn cookie_domain(self, domain: impl Into<String>) -> Self {
        self.with(|c| c.domain(domain))
    }

    /// Whether the cookie is `HttpOnly`. Default: `true`.
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default()).cookie_http_only(true).build();
    /// ```
    pub fn cookie_http_only(self, http_only: bool) -> Self {
        self.with(|c| c.http_only(http_only))
    }

    /// Whether the cookie is `Partitioned` (CHIPS). Default: `false`.
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default()).cookie_partitioned(true).build();
    /// ```
    pub fn cookie_partitioned(self, partitioned: bool) -> Self {
        self.with(|c| c.partitioned(partitioned))
    }

    /// Sign or encrypt the id with a key. Default: plain id.
    ///
    /// ```
    /// # use session_actix::{CookieContentSecurity, Key, MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default())
    ///     .cookie_content_security(CookieContentSecurity::Private(Key::generate()))
    ///     .build();
    /// ```
    pub fn cookie_content_security(self, security: CookieContentSecurity) -> Self {
        self.with(|c| match security {
            CookieContentSecurity::Signed(key) => c.signed(key),
            CookieContentSecurity::Private(key) => c.private(key),
        })
    }

    /// Keys that were current before: still accepted, and re-issued with the current key.
    /// Default: none.
    ///
    /// ```
    /// # use session_actix::{CookieContentSecurity, Key, MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default())
    ///     .cookie_content_security(CookieContentSecurity::Signed(Key::generate()))
    ///     .old_keys([Key::generate()])
    ///     .build();
    /// ```
    pub fn old_keys(self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.with(|c| c.old_keys(keys))
    }

    /// The expiry of new sessions. Default: [`Expiry::OnSessionEnd`] (actix-session's
    /// `BrowserSession`).
    ///
    /// ```
    /// # use session_actix::{Expiry, MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default())
    ///     .expiry(Expiry::OnInactivity(time::Duration::days(7)))
    ///     .build();
    /// ```
    pub fn expiry(self, expiry: Expiry) -> Self {
        self.with(|c| c.expiry(expiry))
    }

    /// Carry the id in this header (e.g. `x-session-id`) instead of a cookie. Default: a
    /// cookie.
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default())
    ///     .id_header("x-session-id")
    ///     .build();
    /// ```
    pub fn id_header(self, name: impl Into<String>) -> Self {
        self.with(|c| c.id_header(name))
    }

    /// When unchanged sessions get their expiry refreshed. Default:
    /// `Throttled { percent: 10 }`.
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SessionMiddleware, TouchPolicy};
    /// let mw = SessionMiddleware::builder(MemoryStore::default())
    ///     .touch_policy(TouchPolicy::OnEveryRequest)
    ///     .build();
    /// ```
    pub fn touch_policy(self, policy: TouchPolicy) -> Self {
        self.with(|c| c.touch_policy(policy))
    }

    /// Load the session before routing, for apps whose guards read it. Default: `false`:
    /// the session is loaded when a handler (or [`SessionHandle::load`]) asks, so routes
    /// that never use it cost no store read.
    ///
    /// actix-web runs guards while routing, synchronously, so a guard can only see a
    /// session that is already loaded ([`SessionHandle::loaded`]). With this on, every
    /// request that carries a valid id costs one store read before routing; a store
    /// failure then answers 503/500 before any handler runs. Requests without an id cost
    /// nothing either way.
    ///
    /// [`SessionHandle::load`]: crate::SessionHandle::load
    /// [`SessionHandle::loaded`]: crate::SessionHandle::loaded
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SessionMiddleware};
    /// let mw = SessionMiddleware::builder(MemoryStore::default())
    ///     .load_before_routing(true)
    ///     .build();
    /// ```
    pub fn load_before_routing(mut self, load: bool) -> Self {
        self.before_routing = load;
        self
    }

    /// Validates the configuration and returns the middleware, ready for `.wrap(...)`.
    ///
    /// # Panics
    ///
    /// On an invalid configuration, with a message naming the setting to change: at
    /// start-up, where the app is built, never on a request. [`try_build`](Self::try_build)
    /// returns the error instead.
    pub fn build(self) -> SessionMiddleware {
        match self.try_build() {
            Ok(middleware) => middleware,
            Err(e) => panic!("invalid session configuration for `SessionMiddleware`: {e}"),
        }
    }

    /// Validates the configuration and returns the middleware.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose message says what to change.
    ///
    /// ```
    /// # use session_actix::{MemoryStore, SameSite, SessionMiddleware};
    /// let bad = SessionMiddleware::builder(MemoryStore::default())
    ///     .cookie_same_site(SameSite::None)
    ///     .cookie_secure(false)
    ///     .try_build();
    /// assert!(bad.is_err());
    /// ```
    pub fn try_build(self) -> Result<SessionMiddleware, ConfigError> {
        Ok(SessionMiddleware {
            engine: SessionEngine::for_adapter(self.store, self.config.build()?, ADAPTER),
            before_routing: self.before_routing,
        })
    }
}

impl<Svc, B> Transform<Svc, ServiceRequest> for SessionMiddleware
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = InnerSessionMiddleware<Svc>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        let config = self.engine.config();
        // Parsed once per worker, not per request; the configuration validated it.
        let name = |n: &str| HeaderName::from_bytes(n.as_bytes()).expect("a valid header name");
        std::future::ready(Ok(InnerSessionMiddleware {
            service: Rc::new(service),
            engine: self.engine.clone(),
            before_routing: self.before_routing,
            response_header: Rc::new(name(config.response_header())),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an app or scope.
#[doc(hidden)]
pub struct InnerSessionMiddleware<Svc> {
    service: Rc<Svc>,
    engine: SessionEngine,
    before_routing: bool,
    /// Shared with each request's future as one pointer: the future, moved whole, stays
    /// small, and its clone is a plain count.
    response_header: Rc<HeaderName>,
}

impl<Svc> fmt::Debug for InnerSessionMiddleware<Svc> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InnerSessionMiddleware")
            .finish_non_exhaustive()
    }
}

/// The boxed, not `Send`, future of a middleware's response.
pub(crate) type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<Svc, B> Service<ServiceRequest> for InnerSessionMiddleware<Svc>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<Svc, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // `get_session` reads the ids, so a request that never uses its session costs
        // no parsing.
        let lazy = self.engine.start_deferred();
        req.extensions_mut().insert(lazy.clone());
        let state = if self.before_routing {
            // Loaded before the inner service is called: the handle is made now, while
            // the request is at hand, and the service called once the load is done.
            let handle = req.get_session();
            State::Loading {
                fut: Box::pin(async move { handle.load().await.map(drop) }),
                req: Some(req),
                service: Rc::clone(&self.service),
            }
        } else {
            // Called at once: no clone of the service and no boxed future, as an async
            // block that called it later would need (about 300 instructions a request,
            // BENCHMARKS.md).
            State::Inner {
                fut: self.service.call(req),
            }
        };
        ResponseFuture {
            state,
            // Armed until the response is ready (see `LazySession::guard`); it also holds
            // the request's session.
            abandon: lazy.into_guard(),
            response_header: Rc::clone(&self.response_header),
        }
    }
}

pin_project! {
    /// The response future of [`InnerSessionMiddleware`]: the handler's response, then
    /// the session's one store action and header.
    #[doc(hidden)]
    pub struct ResponseFuture<Svc: Service<ServiceRequest>, B> {
        #[pin]
        state: State<Svc, B>,
        abandon: AbandonGuard,
        response_header: Rc<HeaderName>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Svc: Service<ServiceRequest>, B> {
        /// Loading the session before routing ([`SessionMiddlewareBuilder::load_before_routing`]).
        Loading {
            fut: LocalBoxFuture<Result<(), crate::SessionError>>,
            req: Option<ServiceRequest>,
            service: Rc<Svc>,
        },
        Inner {
            #[pin]
            fut: Svc::Future,
        },
        /// The store call, with the response it ends: one box, which keeps the
        /// response out of this future (each request's future is moved whole, and
        /// requests that make no store call never build this).
        Finishing {
            fut: LocalBoxFuture<(Finished, ServiceResponse<B>)>,
        },
    }
}

impl<Svc: Service<ServiceRequest>, B> fmt::Debug for ResponseFuture<Svc, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<Svc, B> Future for ResponseFuture<Svc, B>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            let next = match this.state.project() {
                StateProj::Loading { fut, req, service } => {
                    let loaded = ready!(fut.as_mut().poll(cx));
                    let req = req.take().expect("polled after completion");
                    if let Err(e) = loaded {
                        return Poll::Ready(Ok(req.error_response(e).map_into_right_body()));
                    }
                    State::Inner {
                        fut: service.call(req),
                    }
                }
                StateProj::Inner { fut } => {
                    let res = ready!(fut.poll(cx))?;
                    let lazy = this.abandon.session().expect("polled after completion");
                    if lazy.is_untouched() {
                        // No handler asked for the session: nothing to write.
                        this.abandon.disarm();
                        return Poll::Ready(Ok(res.map_into_left_body()));
                    }
                    match lazy.try_finish(res.status().as_u16()) {
                        Finish::Ready(finished) => {
                            // Nothing for the store, or `MemoryStore`'s call made at once.
                            this.abandon.disarm();
                            return Poll::Ready(Ok(apply(this.response_header, finished, res)));
                        }
                        Finish::Store(call) => {
                            let call = call.run();
                            State::Finishing {
                                fut: Box::pin(async move { (call.await, res) }),
                            }
                        }
                    }
                }
                StateProj::Finishing { fut } => {
                    let (finished, res) = ready!(fut.as_mut().poll(cx));
                    this.abandon.disarm();
                    return Poll::Ready(Ok(apply(this.response_header, finished, res)));
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}

/// Writes the session's header, or replaces the response with an opaque 5xx when the
/// store failed (keeping the header: a failed logout still removes the cookie).
fn apply<B>(
    name: &HeaderName,
    finished: Finished,
    res: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B>> {
    let (header, error) = finished.into_parts();
    let mut res = match error {
        None => res.map_into_left_body(),
        Some(e) => {
            let status = actix_web::http::StatusCode::from_u16(e.status().as_u16())
                .expect("503 and 500 are status codes");
            tracing::error!(
                error = %e.report(),
                status = status.as_u16(),
                "session store failed after the handler; answering with an error"
            );
            res.into_response(HttpResponse::new(status))
                .map_into_right_body()
        }
    };
    if let Some(value) = header {
        match HeaderValue::try_from(value) {
            Ok(value) => {
                let headers = res.headers_mut();
                // Cloned only here, for a response that gets the header.
                if *name == actix_web::http::header::SET_COOKIE {
                    headers.append(name.clone(), value);
                } else {
                    headers.insert(name.clone(), value);
                }
            }
            _ => tracing::error!("session header is not a valid header"),
        }
    }
    res
}
