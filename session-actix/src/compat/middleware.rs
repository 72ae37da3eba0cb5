//! The middleware of the actix-session face: the engine's, or the cookie-state one.

use std::fmt;
use std::future::{ready, Future, Ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use pin_project_lite::pin_project;

use super::cookie::{CookieConfig, CookieService};
use super::{config, storage};
use crate::middleware::{InnerSessionMiddleware, LocalBoxFuture, ResponseFuture};

/// actix-session's middleware: [`SessionMiddleware`](crate::SessionMiddleware) with
/// actix-session's defaults and constructor, or the cookie-state middleware of
/// [`CookieSessionStore`](storage::CookieSessionStore). The session is loaded before
/// routing, as actix-session does, so
/// [`SessionExt::get_session`](super::SessionExt::get_session) works in guards and
/// middleware.
pub struct SessionMiddleware<Store> {
    backend: Backend,
    store: PhantomData<fn() -> Store>,
}

#[derive(Clone, Debug)]
enum Backend {
    Engine(crate::SessionMiddleware),
    Cookie(Arc<CookieConfig>),
}

impl<Store> SessionMiddleware<Store> {
    fn with(backend: Backend) -> Self {
        SessionMiddleware {
            backend,
            store: PhantomData,
        }
    }
}

impl<Store> Clone for SessionMiddleware<Store> {
    fn clone(&self) -> Self {
        SessionMiddleware::with(self.backend.clone())
    }
}

impl<Store> fmt::Debug for SessionMiddleware<Store> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SessionMiddleware")
            .field(&self.backend)
            .finish()
    }
}

impl<Store: storage::SessionStore> SessionMiddleware<Store> {
    /// The middleware over `store` with actix-session's defaults: the cookie's content
    /// is encrypted with `key`.
    pub fn new(store: Store, key: actix_web::cookie::Key) -> Self {
        Self::builder(store, key).build()
    }

    /// A builder with actix-session's setters.
    pub fn builder(
        store: Store,
        key: actix_web::cookie::Key,
    ) -> config::SessionMiddlewareBuilder<Store> {
        config::SessionMiddlewareBuilder::new(store, key)
    }
}

impl<Store> SessionMiddleware<Store> {
    pub(super) fn engine(inner: crate::SessionMiddleware) -> Self {
        SessionMiddleware::with(Backend::Engine(inner))
    }

    pub(super) fn cookie(config: CookieConfig) -> Self {
        SessionMiddleware::with(Backend::Cookie(Arc::new(config)))
    }
}

impl<Svc, B, Store> Transform<Svc, ServiceRequest> for SessionMiddleware<Store>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = CompatService<Svc>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(match &self.backend {
            Backend::Engine(m) => match m.new_transform(service).into_inner() {
                Ok(inner) => CompatService(ServiceKind::Engine(inner)),
                Err(()) => unreachable!("the session middleware's transform cannot fail"),
            },
            Backend::Cookie(config) => CompatService(ServiceKind::Cookie(CookieService {
                service: Rc::new(service),
                config: config.clone(),
            })),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an app or scope.
#[doc(hidden)]
pub struct CompatService<Svc>(ServiceKind<Svc>);

enum ServiceKind<Svc> {
    Engine(InnerSessionMiddleware<Svc>),
    Cookie(CookieService<Svc>),
}

impl<Svc> fmt::Debug for CompatService<Svc> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match &self.0 {
            ServiceKind::Engine(_) => "CompatService::Engine",
            ServiceKind::Cookie(_) => "CompatService::Cookie",
        })
    }
}

impl<Svc, B> Service<ServiceRequest> for CompatService<Svc>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = CompatFuture<Svc, B>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &self.0 {
            ServiceKind::Engine(s) => s.poll_ready(cx),
            ServiceKind::Cookie(s) => s.service.poll_ready(cx),
        }
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        match &self.0 {
            ServiceKind::Engine(s) => CompatFuture::Engine { fut: s.call(req) },
            ServiceKind::Cookie(s) => CompatFuture::Cookie { fut: s.call(req) },
        }
    }
}

pin_project! {
    /// The response future of [`CompatService`]: the engine's, unboxed, or the cookie
    /// backend's.
    #[doc(hidden)]
    #[project = CompatFutureProj]
    pub enum CompatFuture<Svc: Service<ServiceRequest>, B> {
        Engine {
            #[pin]
            fut: ResponseFuture<Svc, B>,
        },
        Cookie {
            fut: LocalBoxFuture<Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>,
        },
    }
}

impl<Svc, B> Future for CompatFuture<Svc, B>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CompatFutureProj::Engine { fut } => fut.poll(cx),
            CompatFutureProj::Cookie { fut } => fut.as_mut().poll(cx),
        }
    }
}
