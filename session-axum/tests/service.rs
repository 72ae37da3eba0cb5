//! The service on `tower::ServiceExt::oneshot`, without a socket.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header, Request, Response, StatusCode};
use session_axum::session_core::{Changes, Created, Record, Ttl, Update};
use session_axum::{Id, MemoryStore, SameSite, Session, SessionLayer, SessionStore, StoreError};
use time::OffsetDateTime;
use tower::{Layer, Service, ServiceExt};

async fn write(session: Session) -> &'static str {
    session.insert("k", 1).unwrap();
    "written"
}

async fn plain() -> &'static str {
    "plain"
}

async fn maybe(session: Option<Session>) -> String {
    format!("{}", session.is_some())
}

fn app(layer: SessionLayer<impl SessionStore>) -> Router {
    Router::new()
        .route("/write", get(write))
        .route("/plain", get(plain))
        .route("/maybe", get(maybe))
        .layer(layer)
}

async fn body(r: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_write_sets_the_cookie_and_a_plain_route_does_not() {
    let store = MemoryStore::default();
    let app = app(SessionLayer::new(store.clone()));
    let r = app.clone().oneshot(get_req("/write")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set = r
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set.starts_with("id="), "{set}");
    assert_eq!(store.len(), 1);

    let r = app.oneshot(get_req("/plain")).await.unwrap();
    assert!(r.headers().get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn handler_cookies_are_kept_beside_the_session_cookie() {
    async fn both(session: Session) -> ([(header::HeaderName, &'static str); 1], &'static str) {
        session.insert("k", 1).unwrap();
        ([(header::SET_COOKIE, "theme=dark")], "ok")
    }
    let app = Router::new()
        .route("/", get(both))
        .layer(SessionLayer::new(MemoryStore::default()));
    let r = app.oneshot(get_req("/")).await.unwrap();
    let cookies: Vec<_> = r.headers().get_all(header::SET_COOKIE).iter().collect();
    assert_eq!(cookies.len(), 2);
    assert_eq!(cookies[0], "theme=dark");
}

#[tokio::test]
async fn without_the_layer_the_extractor_is_a_500_that_says_why() {
    let app = Router::new()
        .route("/write", get(write))
        .route("/maybe", get(maybe));
    let r = app.clone().oneshot(get_req("/write")).await.unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body(r)
        .await
        .contains("is `SessionLayer` added to the router?"));
    let r = app.oneshot(get_req("/maybe")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await, "false");
}

#[tokio::test]
async fn option_session_is_some_under_the_layer() {
    let r = app(SessionLayer::new(MemoryStore::default()))
        .oneshot(get_req("/maybe"))
        .await
        .unwrap();
    assert_eq!(body(r).await, "true");
}

/// A store whose every call fails with a secret-looking message.
#[derive(Debug, Clone, Copy)]
struct Down(bool);

impl Down {
    fn err(self) -> StoreError {
        let msg = "connect 10.1.2.3:3000: password=hunter2";
        if self.0 {
            StoreError::Unavailable(msg.into())
        } else {
            StoreError::Backend(msg.into())
        }
    }
}

impl SessionStore for Down {
    async fn load(&self, _: &Id) -> Result<Option<Record>, StoreError> {
        Err(self.err())
    }
    async fn create(&self, _: &Record, _: Ttl) -> Result<Created, StoreError> {
        Err(self.err())
    }
    async fn save(&self, _: &Record, _: &Changes, _: Ttl) -> Result<Update, StoreError> {
        Err(self.err())
    }
    async fn touch(&self, _: &Id, _: OffsetDateTime, _: Ttl) -> Result<Update, StoreError> {
        Err(self.err())
    }
    async fn delete(&self, _: &Id) -> Result<(), StoreError> {
        Err(self.err())
    }
}

#[tokio::test]
async fn store_failures_are_opaque_503s_and_500s() {
    for (unavailable, status) in [
        (true, StatusCode::SERVICE_UNAVAILABLE),
        (false, StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let app = app(SessionLayer::new(Down(unavailable)));
        // No cookie: nothing to load, but the create after the handler fails.
        let r = app.clone().oneshot(get_req("/write")).await.unwrap();
        assert_eq!(r.status(), status);
        assert!(r.headers().get(header::SET_COOKIE).is_none());
        let text = body(r).await;
        assert!(
            !text.contains("hunter2") && !text.contains("10.1.2.3"),
            "{text}"
        );
        assert!(
            !text.contains("written"),
            "the handler's body claims success: {text}"
        );

        // With a cookie: the load fails.
        let cookie = format!("id={}", Id::random().encode().as_str());
        let req = Request::get("/write")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        let r = app.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), status);
        let text = body(r).await;
        assert!(!text.contains("hunter2"), "{text}");

        // A route that does not extract the session never waits on the store.
        let r = app.oneshot(get_req("/plain")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[test]
#[should_panic(expected = "`SameSite=None` cookies must be `Secure`")]
fn an_invalid_configuration_fails_when_the_layer_is_applied() {
    let layer = SessionLayer::new(MemoryStore::default())
        .with_same_site(SameSite::None)
        .with_secure(false);
    let _ = Router::<()>::new().route("/", get(plain)).layer(layer);
}

#[test]
fn validate_reports_the_error_instead() {
    let err = SessionLayer::new(MemoryStore::default())
        .with_name("__Host-id")
        .with_domain("example.com")
        .validate()
        .unwrap_err();
    assert!(
        err.to_string().contains("must not have a `Domain`"),
        "{err}"
    );
}

/// An inner service that must be polled ready before each call; clones start unready.
#[derive(Default)]
struct Strict {
    ready: bool,
}

impl Clone for Strict {
    fn clone(&self) -> Self {
        Strict { ready: false }
    }
}

impl Service<Request<Body>> for Strict {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        assert!(self.ready, "called a service that was not polled ready");
        self.ready = false;
        std::future::ready(Ok(Response::new(Body::empty())))
    }
}

#[tokio::test]
async fn the_ready_inner_service_is_the_one_called() {
    let mut svc = SessionLayer::new(MemoryStore::default()).layer(Strict::default());
    for _ in 0..3 {
        let r = svc.ready().await.unwrap().call(get_req("/")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Session>();
    check::<SessionLayer<MemoryStore>>();
    check::<session_axum::SessionService<Router>>();
}

#[tokio::test]
async fn composes_with_route_layer_nest_state_and_other_middleware() {
    #[derive(Clone)]
    struct AppState {
        greeting: &'static str,
    }
    async fn greet(
        axum::extract::State(state): axum::extract::State<AppState>,
        session: Session,
    ) -> String {
        session.update_or("n", 0u32, |n| *n += 1).unwrap();
        let n: u32 = session.get("n").unwrap().unwrap();
        format!("{} {n}", state.greeting)
    }
    let store = MemoryStore::default();
    let nested = Router::new()
        .route("/greet", get(greet))
        .route_layer(SessionLayer::new(store.clone()).with_name("nested"));
    let app = Router::new()
        .nest("/api", nested)
        .route("/plain", get(plain))
        .with_state(AppState { greeting: "hello" });
    // Under other tower middleware, built with ServiceBuilder.
    let app = tower::ServiceBuilder::new()
        .map_response(|mut r: Response<Body>| {
            r.headers_mut().insert("x-outer", "1".parse().unwrap());
            r
        })
        .service(app);

    let r = app.clone().oneshot(get_req("/api/greet")).await.unwrap();
    assert_eq!(r.headers()["x-outer"], "1");
    let set = r.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set.starts_with("nested="), "{set}");
    let pair = set.split(';').next().unwrap().to_owned();
    assert_eq!(body(r).await, "hello 1");
    let req = Request::get("/api/greet")
        .header(header::COOKIE, pair)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        body(app.clone().oneshot(req).await.unwrap()).await,
        "hello 2"
    );
    // route_layer does not wrap unrelated routes.
    let r = app.oneshot(get_req("/plain")).await.unwrap();
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(store.len(), 1);
}
