//! [`SessionService`] and its [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use session_core::{AbandonGuard, Finish, Finished, LazySession, SessionEngine};
use tower_service::Service;

/// The service [`SessionLayer`](crate::SessionLayer) wraps around an inner service.
#[derive(Clone)]
pub struct SessionService<Inner> {
    inner: Inner,
    engine: SessionEngine,
}

impl<Inner> fmt::Debug for SessionService<Inner> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl<Inner> SessionService<Inner> {
    pub(crate) fn new(inner: Inner, engine: SessionEngine) -> Self {
        SessionService { inner, engine }
    }
}

impl<Inner, ReqB, ResB> Service<Request<ReqB>> for SessionService<Inner>
where
    Inner: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    ResB: Default + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = Inner::Error;
    type Future = ResponseFuture<Inner::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        // The extractors read the ids, so a request that never uses its session costs no
        // parsing.
        let lazy = self.engine.start_deferred();
        req.extensions_mut().insert(lazy.clone());
        // Called at once, on the service `poll_ready` prepared: no clone of it (a clone
        // of axum's boxed `Route` is an allocation per request), as there would have to
        // be if it were called later, from the response future.
        ResponseFuture {
            state: State::Inner {
                fut: self.inner.call(req),
            },
            abandon: lazy.into_guard(),
        }
    }
}

type StoreCallFuture = Pin<Box<dyn Future<Output = Finished> + Send>>;

pin_project! {
    /// The response future of [`SessionService`]: the handler's response, then the
    /// session's one store action and header.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        // Armed until the response is ready (see `LazySession::guard`); it also holds
        // the request's session.
        abandon: AbandonGuard,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Inner {
            #[pin]
            fut: F,
        },
        Finishing {
            fut: StoreCallFuture,
            response: Option<Response<B>>,
        },
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            let next = match this.state.project() {
                StateProj::Inner { fut } => {
                    let response = ready!(fut.poll(cx))?;
                    let lazy = this.abandon.session().expect("polled after completion");
                    if lazy.is_untouched() {
                        // No handler asked for the session: nothing to write.
                        this.abandon.disarm();
                        return Poll::Ready(Ok(response));
                    }
                    match lazy.try_finish(response.status().as_u16()) {
                        Finish::Ready(finished) => {
                            // Nothing for the store: no future to build.
                            let response = apply(lazy, finished, response);
                            this.abandon.disarm();
                            return Poll::Ready(Ok(response));
                        }
                        Finish::Store(call) => State::Finishing {
                            fut: Box::pin(call.run()),
                            response: Some(response),
                        },
                    }
                }
                StateProj::Finishing { fut, response } => {
                    let finished = ready!(fut.as_mut().poll(cx));
                    let response = response.take().expect("polled after completion");
                    let lazy = this.abandon.session().expect("polled after completion");
                    let response = apply(lazy, finished, response);
                    this.abandon.disarm();
                    return Poll::Ready(Ok(response));
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}

/// Writes the session's header into the response, or replaces the response with an
/// opaque 5xx when the store failed (keeping the header: a failed logout still removes
/// the cookie).
fn apply<B: Default>(
    lazy: &LazySession,
    finished: Finished,
    mut response: Response<B>,
) -> Response<B> {
    let (header, error) = finished.into_parts();
    if let Some(e) = error {
        let status = e.status();
        tracing::error!(
            error = %e.report(),
            status = status.as_u16(),
            "session store failed after the handler; answering with an error"
        );
        response = Response::new(B::default());
        *response.status_mut() = status;
    }
    if let Some(value) = header {
        let config = lazy.config();
        match HeaderValue::try_from(value) {
            Ok(value) => {
                let name = config.response_header_name().clone();
                if name == http::header::SET_COOKIE {
                    response.headers_mut().append(name, value);
                } else {
                    response.headers_mut().insert(name, value);
                }
            }
            Err(e) => tracing::error!(error = %e, "session header value is not a valid header"),
        }
    }
    response
}
