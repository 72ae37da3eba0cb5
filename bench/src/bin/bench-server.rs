//! One HTTP server per benchmark variant, serving the same three routes:
//!
//! * `GET /` reads the counter `n` from the session, adds 1 and writes it back;
//! * `GET /read` reads `n` only;
//! * `GET /plain` does not use the session.
//!
//! Bare variants answer the same routes without a session layer. Floor variants add the
//! least any cookie-session layer must do, and nothing of a session (see [`floor`]): what
//! they cost over bare is the framework's share of a session layer's count, which no
//! session engine can save. Every session variant
//! runs its library's defaults except `Secure`, off for plain http. `bench/run.sh` starts
//! one variant at a time, pinned to one core; `--list` prints the variant names.

use std::net::SocketAddr;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "A server for one benchmark variant (see bench/run.sh).")]
struct Args {
    /// The variant to serve; `--list` prints them.
    #[arg(default_value = "axum-bare")]
    variant: String,
    /// Print the variant names and exit.
    #[arg(long)]
    list: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Worker threads (1 for the pinned benchmark).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Redis for the Redis-backed peers.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Aerospike seed hosts for the Aerospike variants.
    #[arg(long, env = "AEROSPIKE_HOSTS")]
    aerospike_hosts: Option<String>,
    /// The AerospikeStore's commands in flight before it coalesces (its default if unset;
    /// 0 never coalesces).
    #[arg(long, env = "AEROSPIKE_MAX_IN_FLIGHT")]
    aerospike_max_in_flight: Option<usize>,
}

/// Every variant: (name, what it is).
const VARIANTS: &[(&str, &str)] = &[
    ("axum-bare", "axum, no session layer"),
    ("axum-ours", "axum + SessionLayer + MemoryStore"),
    (
        "axum-ours-aerospike",
        "axum + SessionLayer + AerospikeStore",
    ),
    (
        "axum-tower-sessions",
        "axum + tower-sessions 0.15 + MemoryStore",
    ),
    (
        "axum-tower-sessions-redis",
        "axum + tower-sessions 0.14 + RedisStore",
    ),
    (
        "axum-floor",
        "axum + a layer that only passes an extension and sets a fixed cookie",
    ),
    ("actix-bare", "actix-web, no session middleware"),
    (
        "actix-floor",
        "actix-web + a middleware that only passes an extension and sets a fixed cookie",
    ),
    ("actix-ours", "actix-web + SessionMiddleware + MemoryStore"),
    (
        "actix-ours-aerospike",
        "actix-web + SessionMiddleware + AerospikeStore",
    ),
    (
        "actix-session-cookie",
        "actix-web + actix-session 0.11 + CookieSessionStore",
    ),
    (
        "actix-session-redis",
        "actix-web + actix-session 0.11 + RedisSessionStore",
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.list {
        for (name, what) in VARIANTS {
            println!("{name}\t{what}");
        }
        return Ok(());
    }
    if !VARIANTS.iter().any(|(name, _)| *name == args.variant) {
        return Err(format!("unknown variant {:?}; see --list", args.variant).into());
    }
    if args.variant.starts_with("axum-") {
        let mut rt = if args.threads == 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(args.threads);
            b
        };
        rt.enable_all().build()?.block_on(axum_server::serve(args))
    } else {
        actix_web::rt::System::new().block_on(actix_server::serve(args))
    }
}

async fn aerospike_store(
    args: &Args,
) -> Result<session_aerospike::AerospikeStore, Box<dyn std::error::Error>> {
    let hosts = args
        .aerospike_hosts
        .as_deref()
        .ok_or("the Aerospike variants need AEROSPIKE_HOSTS")?;
    // A set of the benchmark's own, emptied at start: the `new` workload writes hundreds
    // of thousands of sessions a run, enough to fill a small namespace over a few runs.
    let builder = session_aerospike::AerospikeStore::builder().set("bench_sessions");
    let builder = match args.aerospike_max_in_flight {
        None => builder,
        Some(0) => builder.without_coalescing(),
        Some(n) => builder.max_in_flight(n),
    };
    let store = builder.connect(hosts).await?;
    store.clear().await?;
    Ok(store)
}

/// The bare routes: plain async functions, handlers in both frameworks.
async fn bare_count() -> String {
    1u64.to_string()
}

async fn bare_read() -> String {
    0u64.to_string()
}

async fn plain() -> &'static str {
    "plain"
}

/// Our `GET /` and `GET /read`, written once: both adapters' `Session` extractors
/// dereference to [`session_core::Session`].
fn ours_count(session: &session_core::Session) -> String {
    let n = session.get::<u64>("n").ok().flatten().unwrap_or(0) + 1;
    session.insert("n", n).expect("a number serializes");
    n.to_string()
}

fn ours_read(session: &session_core::Session) -> String {
    let n = session.get::<u64>("n").ok().flatten();
    n.unwrap_or(0).to_string()
}

/// The floor under any cookie-session layer: what a request costs the framework when a
/// layer is in front of the routes, the handler takes an extractor, the client sends a
/// `Cookie` header, and a response without one gets a `Set-Cookie`, with no session
/// behind any of it (no id, no store, no state: the extension is a unit struct).
///
/// A session layer pays all of this before its engine does any work, so `bench/count.py`
/// over the floor variants shows how much of our count the frameworks take.
mod floor {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};

    /// What the floor's layer hands the handler.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Present;

    /// The cookie a response gets when its request had none.
    const COOKIE: &str = "id=floor; Path=/; HttpOnly";

    pin_project_lite::pin_project! {
        /// The inner response, with the cookie appended when `set`.
        pub(super) struct Respond<F> {
            #[pin]
            inner: F,
            set: bool,
        }
    }

    impl<F> Respond<F> {
        pub(super) fn new(inner: F, set: bool) -> Self {
            Respond { inner, set }
        }
    }

    /// A response the floor can append its cookie to.
    pub(super) trait SetCookie {
        fn set_cookie(&mut self);
    }

    impl<F, R, E> Future for Respond<F>
    where
        F: Future<Output = Result<R, E>>,
        R: SetCookie,
    {
        type Output = Result<R, E>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let mut response = ready!(this.inner.poll(cx))?;
            if *this.set {
                response.set_cookie();
            }
            Poll::Ready(Ok(response))
        }
    }

    pub(super) mod axum {
        use std::task::{Context, Poll};

        use axum::extract::FromRequestParts;
        use http::header::{COOKIE, SET_COOKIE};
        use http::request::Parts;
        use http::{HeaderValue, Request, Response, StatusCode};

        use super::{Present, Respond, SetCookie};

        #[derive(Clone, Copy)]
        pub(crate) struct Layer;

        impl<S> tower_layer::Layer<S> for Layer {
            type Service = Service<S>;

            fn layer(&self, inner: S) -> Service<S> {
                Service(inner)
            }
        }

        #[derive(Clone)]
        pub(crate) struct Service<S>(S);

        impl<B> SetCookie for Response<B> {
            fn set_cookie(&mut self) {
                let value = HeaderValue::from_static(super::COOKIE);
                self.headers_mut().append(SET_COOKIE, value);
            }
        }

        impl<S, B, R> tower_service::Service<Request<B>> for Service<S>
        where
            S: tower_service::Service<Request<B>, Response = Response<R>>,
        {
            type Response = Response<R>;
            type Error = S::Error;
            type Future = Respond<S::Future>;

            fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                self.0.poll_ready(cx)
            }

            fn call(&mut self, mut request: Request<B>) -> Self::Future {
                let set = !request.headers().contains_key(COOKIE);
                request.extensions_mut().insert(Present);
                Respond::new(self.0.call(request), set)
            }
        }

        impl<S: Send + Sync> FromRequestParts<S> for Present {
            type Rejection = StatusCode;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, StatusCode> {
                let present = parts.extensions.get::<Present>().copied();
                present.ok_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    pub(super) mod actix {
        use std::future::{ready, Ready};

        use actix_web::dev::{
            forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform,
        };
        use actix_web::http::header::{HeaderValue, COOKIE, SET_COOKIE};
        use actix_web::{Error, FromRequest, HttpMessage, HttpRequest};

        use super::{Present, Respond, SetCookie};

        pub(crate) struct Middleware;

        impl<S, B> Transform<S, ServiceRequest> for Middleware
        where
            S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
        {
            type Response = ServiceResponse<B>;
            type Error = Error;
            type Transform = Wrapped<S>;
            type InitError = ();
            type Future = Ready<Result<Wrapped<S>, ()>>;

            fn new_transform(&self, service: S) -> Self::Future {
                ready(Ok(Wrapped { service }))
            }
        }

        pub(crate) struct Wrapped<S> {
            service: S,
        }

        impl<B> SetCookie for ServiceResponse<B> {
            fn set_cookie(&mut self) {
                let value = HeaderValue::from_static(super::COOKIE);
                self.headers_mut().append(SET_COOKIE, value);
            }
        }

        impl<S, B> Service<ServiceRequest> for Wrapped<S>
        where
            S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
        {
            type Response = ServiceResponse<B>;
            type Error = Error;
            type Future = Respond<S::Future>;

            forward_ready!(service);

            fn call(&self, request: ServiceRequest) -> Self::Future {
                let set = !request.headers().contains_key(COOKIE);
                request.extensions_mut().insert(Present);
                Respond::new(self.service.call(request), set)
            }
        }

        impl FromRequest for Present {
            type Error = Error;
            type Future = Ready<Result<Self, Error>>;

            fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
                let present = request.extensions().get::<Present>().copied();
                ready(present.ok_or_else(|| {
                    actix_web::error::ErrorInternalServerError("no floor middleware")
                }))
            }
        }
    }
}

/// The floor's `GET /` and `GET /read`: the bare answers, behind the extractor.
async fn floor_count(_: floor::Present) -> String {
    bare_count().await
}

async fn floor_read(_: floor::Present) -> String {
    bare_read().await
}

mod axum_server {
    use axum::routing::get;
    use axum::Router;

    use super::{bare_count, bare_read, plain, Args};

    async fn ours_count(session: session_axum::Session) -> String {
        super::ours_count(&session)
    }

    async fn ours_read(session: session_axum::Session) -> String {
        super::ours_read(&session)
    }

    /// The same two handlers for both tower-sessions releases.
    macro_rules! tower_sessions_handlers {
        ($module:ident, $krate:ident) => {
            mod $module {
                pub(super) async fn count(session: $krate::Session) -> String {
                    let n = session.get::<u64>("n").await.ok().flatten().unwrap_or(0) + 1;
                    session.insert("n", n).await.expect("a number serializes");
                    n.to_string()
                }

                pub(super) async fn read(session: $krate::Session) -> String {
                    let n = session.get::<u64>("n").await.ok().flatten();
                    n.unwrap_or(0).to_string()
                }
            }
        };
    }
    tower_sessions_handlers!(ts, tower_sessions);
    tower_sessions_handlers!(ts014, tower_sessions_014);

    pub(super) async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
        let bare = || {
            Router::new()
                .route("/", get(bare_count))
                .route("/read", get(bare_read))
                .route("/plain", get(plain))
        };
        let ours = || {
            Router::new()
                .route("/", get(ours_count))
                .route("/read", get(ours_read))
                .route("/plain", get(plain))
        };
        let app = match args.variant.as_str() {
            "axum-bare" => bare(),
            "axum-floor" => Router::new()
                .route("/", get(super::floor_count))
                .route("/read", get(super::floor_read))
                .route("/plain", get(plain))
                .layer(super::floor::axum::Layer),
            "axum-ours" => ours().layer(
                session_axum::SessionLayer::new(session_axum::MemoryStore::default())
                    .with_secure(false),
            ),
            "axum-ours-aerospike" => {
                let store = super::aerospike_store(&args).await?;
                ours().layer(session_axum::SessionLayer::new(store).with_secure(false))
            }
            "axum-tower-sessions" => {
                let store = tower_sessions_memory_store::MemoryStore::default();
                Router::new()
                    .route("/", get(ts::count))
                    .route("/read", get(ts::read))
                    .route("/plain", get(plain))
                    .layer(tower_sessions::SessionManagerLayer::new(store).with_secure(false))
            }
            "axum-tower-sessions-redis" => {
                use tower_sessions_redis_store::fred::prelude::*;
                let config = Config::from_url(&args.redis)?;
                let pool = Pool::new(config, None, None, None, 1)?;
                pool.init().await?;
                let store = tower_sessions_redis_store::RedisStore::new(pool);
                Router::new()
                    .route("/", get(ts014::count))
                    .route("/read", get(ts014::read))
                    .route("/plain", get(plain))
                    .layer(tower_sessions_014::SessionManagerLayer::new(store).with_secure(false))
            }
            other => unreachable!("{other} is not an axum variant"),
        };
        let listener = tokio::net::TcpListener::bind(args.addr).await?;
        println!(
            "{} listening on http://{}",
            args.variant,
            listener.local_addr()?
        );
        axum::serve(listener, app).await?;
        Ok(())
    }
}

mod actix_server {
    use actix_web::{web, App, HttpServer};

    use super::{bare_count, bare_read, plain, Args};

    async fn ours_count(session: session_actix::Session) -> String {
        super::ours_count(&session)
    }

    async fn ours_read(session: session_actix::Session) -> String {
        super::ours_read(&session)
    }

    async fn peer_count(session: actix_session::Session) -> String {
        let n = session.get::<u64>("n").ok().flatten().unwrap_or(0) + 1;
        session.insert("n", n).expect("a number serializes");
        n.to_string()
    }

    async fn peer_read(session: actix_session::Session) -> String {
        session
            .get::<u64>("n")
            .ok()
            .flatten()
            .unwrap_or(0)
            .to_string()
    }

    /// Whose handlers answer `GET /` and `GET /read`.
    #[derive(Clone, Copy)]
    enum Handlers {
        Bare,
        Floor,
        Ours,
        Peer,
    }

    fn routes(cfg: &mut web::ServiceConfig, handlers: Handlers) {
        let cfg = cfg.route("/plain", web::get().to(plain));
        match handlers {
            Handlers::Bare => cfg
                .route("/", web::get().to(bare_count))
                .route("/read", web::get().to(bare_read)),
            Handlers::Floor => cfg
                .route("/", web::get().to(super::floor_count))
                .route("/read", web::get().to(super::floor_read)),
            Handlers::Ours => cfg
                .route("/", web::get().to(ours_count))
                .route("/read", web::get().to(ours_read)),
            Handlers::Peer => cfg
                .route("/", web::get().to(peer_count))
                .route("/read", web::get().to(peer_read)),
        };
    }

    /// Our middleware on `store`, with the library defaults but `Secure`.
    fn ours(
        store: impl session_actix::SessionStore,
    ) -> Result<session_actix::SessionMiddleware, session_actix::ConfigError> {
        session_actix::SessionMiddleware::builder(store)
            .cookie_secure(false)
            .try_build()
    }

    pub(super) async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
        use actix_session::storage::{CookieSessionStore, RedisSessionStore};
        let key = actix_web::cookie::Key::generate();
        let variant = args.variant.clone();
        // Each arm builds its factory; the servers differ only in the middleware.
        let server = match variant.as_str() {
            "actix-bare" => HttpServer::new(|| App::new().configure(|c| routes(c, Handlers::Bare)))
                .workers(args.threads)
                .bind(args.addr)?
                .run(),
            "actix-floor" => HttpServer::new(|| {
                App::new()
                    .wrap(super::floor::actix::Middleware)
                    .configure(|c| routes(c, Handlers::Floor))
            })
            .workers(args.threads)
            .bind(args.addr)?
            .run(),
            "actix-ours" | "actix-ours-aerospike" => {
                let mw = if variant == "actix-ours" {
                    ours(session_actix::MemoryStore::default())?
                } else {
                    ours(super::aerospike_store(&args).await?)?
                };
                HttpServer::new(move || {
                    App::new()
                        .wrap(mw.clone())
                        .configure(|c| routes(c, Handlers::Ours))
                })
                .workers(args.threads)
                .bind(args.addr)?
                .run()
            }
            "actix-session-cookie" => HttpServer::new(move || {
                let mw = actix_session::SessionMiddleware::builder(
                    CookieSessionStore::default(),
                    key.clone(),
                )
                .cookie_secure(false)
                .build();
                App::new().wrap(mw).configure(|c| routes(c, Handlers::Peer))
            })
            .workers(args.threads)
            .bind(args.addr)?
            .run(),
            "actix-session-redis" => {
                let store = RedisSessionStore::new(args.redis.clone()).await?;
                HttpServer::new(move || {
                    let mw = actix_session::SessionMiddleware::builder(store.clone(), key.clone())
                        .cookie_secure(false)
                        .build();
                    App::new().wrap(mw).configure(|c| routes(c, Handlers::Peer))
                })
                .workers(args.threads)
                .bind(args.addr)?
                .run()
            }
            other => unreachable!("{other} is not an actix variant"),
        };
        println!("{variant} listening on http://{}", args.addr);
        server.await?;
        Ok(())
    }
}
