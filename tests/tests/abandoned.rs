//! A request that logs out and is then abandoned (the client goes away, the server drops
//! the response future before the handler ends) still deletes the session, on both
//! adapters. Driven in-process: dropping a response future mid-handler is exactly what a
//! server does when it notices a client gone, and is not something a real socket can be
//! made to trigger on demand.

use std::time::Duration;

use serde_json::json;
use session_core::{Id, MemoryStore, Record, SessionStore, Ttl};
use time::OffsetDateTime;

/// A stored session, and the cookie that presents it.
async fn stored(store: &MemoryStore) -> (Id, String) {
    let record = Record {
        id: Id::random(),
        data: [("user".to_string(), json!("ada"))].into_iter().collect(),
        expiry: None,
        expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(10),
    };
    store
        .create(&record, Ttl::from_secs(600).unwrap())
        .await
        .unwrap();
    let cookie = format!("id={}", record.id.encode().as_str());
    (record.id, cookie)
}

/// Lets `response` run until its handler waits (having logged out), drops it as a server
/// does when the client is gone, then waits (2 s at most) for the session `id` to be
/// deleted all the same.
async fn abandon<F: std::future::Future>(response: F, store: &MemoryStore, id: &Id) {
    let mut response = Box::pin(response);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut response)
            .await
            .is_err(),
        "the handler never answers"
    );
    assert!(store.load(id).await.unwrap().is_some(), "not deleted yet");
    drop(response);
    for _ in 0..200 {
        if store.load(id).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the logout was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_a_dropped_response_still_logs_out() {
    use axum::body::Body;
    use axum::http::{Request, Response};
    use tower_layer::Layer as _;
    use tower_service::Service as _;

    let store = MemoryStore::default();
    let (id, cookie) = stored(&store).await;
    let handler = tower_service_fn(|req: Request<Body>| async move {
        let lazy = req
            .extensions()
            .get::<session_core::LazySession>()
            .expect("the layer's session")
            .clone();
        // What the `Session` extractor does: read the ids, then load.
        let cookies = req.headers().get_all("cookie");
        lazy.identify(cookies.iter().map(|v| v.as_bytes()));
        let session = lazy.load().await.expect("memory");
        session.flush();
        std::future::pending::<()>().await;
        Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
    });
    let mut service = session_axum::SessionLayer::new(store.clone()).layer(handler);
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .unwrap();
    let request = Request::builder()
        .header("cookie", &cookie)
        .body(Body::empty())
        .unwrap();
    abandon(service.call(request), &store, &id).await;
}

#[actix_rt::test]
async fn actix_a_dropped_response_still_logs_out() {
    use actix_web::dev::Service as _;
    use actix_web::{test, web, App, HttpResponse};

    async fn logout_then_hang(session: session_actix::Session) -> HttpResponse {
        session.flush();
        std::future::pending::<()>().await;
        HttpResponse::Ok().finish()
    }

    let store = MemoryStore::default();
    let (id, cookie) = stored(&store).await;
    let app = test::init_service(
        App::new()
            .wrap(session_actix::SessionMiddleware::new(store.clone()))
            .route("/", web::get().to(logout_then_hang)),
    )
    .await;
    let request = test::TestRequest::get()
        .uri("/")
        .insert_header(("cookie", cookie.as_str()))
        .to_request();
    abandon(app.call(request), &store, &id).await;
}

/// `tower::service_fn` without the `tower` crate.
fn tower_service_fn<F, Fut, Req, Res, E>(f: F) -> ServiceFn<F>
where
    F: FnMut(Req) -> Fut,
    Fut: std::future::Future<Output = Result<Res, E>>,
{
    ServiceFn(f)
}

#[derive(Clone)]
struct ServiceFn<F>(F);

impl<F, Fut, Req, Res, E> tower_service::Service<Req> for ServiceFn<F>
where
    F: FnMut(Req) -> Fut,
    Fut: std::future::Future<Output = Result<Res, E>>,
{
    type Response = Res;
    type Error = E;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), E>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Fut {
        (self.0)(req)
    }
}
