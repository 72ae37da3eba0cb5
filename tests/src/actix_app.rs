//! The suite's app on actix-web.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{Map, Value};
use session_actix::{Expiry, Session, SessionConfig, SessionMiddleware, SessionStore};

use crate::server::{parse_value, Framework, TestServer};

/// [`Framework`] for `session-actix`.
#[derive(Debug)]
pub struct Actix;

async fn plain() -> &'static str {
    "plain"
}

async fn get_key(session: Session, key: web::Path<String>) -> web::Json<Value> {
    web::Json(session.get_value(&key).unwrap_or(Value::Null))
}

async fn all(session: Session) -> web::Json<Value> {
    let map: Map<String, Value> = session
        .keys()
        .into_iter()
        .filter_map(|k| session.get_value(&k).map(|v| (k, v)))
        .collect();
    web::Json(Value::Object(map))
}

/// A refused insert: 413 with the error's text.
fn refused(e: session_core::Error) -> HttpResponse {
    HttpResponse::PayloadTooLarge().body(e.to_string())
}

async fn set(session: Session, path: web::Path<(String, String)>) -> HttpResponse {
    let (key, value) = path.into_inner();
    match session.insert_value(&key, parse_value(&value)) {
        Ok(_) => HttpResponse::Ok().body("ok"),
        Err(e) => refused(e),
    }
}

/// `?` on a session accessor's error: it answers for itself, an opaque 500.
async fn try_set(
    session: Session,
    path: web::Path<(String, String)>,
) -> actix_web::Result<&'static str> {
    let (key, value) = path.into_inner();
    session.insert_value(&key, parse_value(&value))?;
    Ok("ok")
}

async fn fill(session: Session, n: web::Path<usize>) -> HttpResponse {
    for i in 0..n.into_inner() {
        if let Err(e) = session.insert(&format!("f{i}"), i) {
            return refused(e);
        }
    }
    HttpResponse::Ok().body("ok")
}

async fn remove(session: Session, key: web::Path<String>) -> &'static str {
    session.remove_value(&key);
    "ok"
}

async fn login(session: Session, user: web::Path<String>) -> &'static str {
    session.insert("user", user.into_inner()).unwrap();
    session.cycle_id();
    "ok"
}

async fn failflush(session: Session) -> HttpResponse {
    session.flush();
    HttpResponse::InternalServerError().finish()
}

async fn flush(session: Session) -> &'static str {
    session.flush();
    "ok"
}

async fn logout(
    handle: session_actix::SessionHandle,
) -> Result<&'static str, session_actix::SessionError> {
    handle.flush()?;
    Ok("ok")
}

async fn fail(session: Session, path: web::Path<(String, String)>) -> HttpResponse {
    let (key, value) = path.into_inner();
    session.insert_value(&key, parse_value(&value)).unwrap();
    HttpResponse::InternalServerError().finish()
}

async fn remember(session: Session, secs: web::Path<i64>) -> &'static str {
    let secs = secs.into_inner();
    session.set_expiry(Some(Expiry::OnInactivity(time::Duration::seconds(secs))));
    "ok"
}

/// Loads the session, waits at the gate `gate` (see [`crate::gate`]), then reads a value.
async fn gatedget(session: Session, path: web::Path<(String, String)>) -> web::Json<Value> {
    let (gate, key) = path.into_inner();
    crate::gate::pass(&gate).await;
    web::Json(session.get_value(&key).unwrap_or(Value::Null))
}

/// Loads the session, waits at the gate `gate`, then logs in as `/login` does.
async fn gatedlogin(session: Session, path: web::Path<(String, String)>) -> &'static str {
    let (gate, user) = path.into_inner();
    crate::gate::pass(&gate).await;
    session.insert("user", user).unwrap();
    session.cycle_id();
    "ok"
}

/// Loads the session, waits at the gate `gate` (see [`crate::gate`]), then sets a value.
async fn gatedset(session: Session, path: web::Path<(String, String, String)>) -> &'static str {
    let (gate, key, value) = path.into_inner();
    crate::gate::pass(&gate).await;
    session.insert_value(&key, parse_value(&value)).unwrap();
    "ok"
}

async fn slowset(session: Session, path: web::Path<(String, String)>) -> &'static str {
    tokio::time::sleep(crate::axum_app::SLOW).await;
    let (key, value) = path.into_inner();
    session.insert_value(&key, parse_value(&value)).unwrap();
    "ok"
}

/// Login with a user binding: `cycle_id`, `set_user`, `set_label`.
async fn bind(session: Session, path: web::Path<(String, String)>) -> HttpResponse {
    let (user, label) = path.into_inner();
    log_in(&session, user, label)
}

/// Loads the session, waits at the gate `gate`, then logs in as [`bind`] does.
async fn gatedbind(session: Session, path: web::Path<(String, String, String)>) -> HttpResponse {
    let (gate, user, label) = path.into_inner();
    crate::gate::pass(&gate).await;
    log_in(&session, user, label)
}

fn log_in(session: &Session, user: String, label: String) -> HttpResponse {
    session.cycle_id();
    match session
        .set_user(user)
        .and_then(|()| session.set_label(label))
    {
        Ok(()) => HttpResponse::Ok().body("ok"),
        Err(e) => HttpResponse::PayloadTooLarge().body(e.to_string()),
    }
}

async fn whoami(session: Session) -> web::Json<Value> {
    web::Json(session.user().map_or(Value::Null, Value::String))
}

fn failed(e: &session_core::StoreError) -> HttpResponse {
    let (status, body) = crate::server::user_error(e);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).body(body)
}

async fn sessions(session: Session) -> HttpResponse {
    match session.user_sessions().await {
        Ok(list) => HttpResponse::Ok().json(crate::server::sessions_json(&list)),
        Err(e) => failed(&e),
    }
}

async fn end_others(session: Session) -> HttpResponse {
    match session.end_other_sessions().await {
        Ok(n) => HttpResponse::Ok().body(n.to_string()),
        Err(e) => failed(&e),
    }
}

async fn end_all(session: Session) -> HttpResponse {
    match session.end_all_sessions().await {
        Ok(n) => HttpResponse::Ok().body(n.to_string()),
        Err(e) => failed(&e),
    }
}

async fn nolayer(_session: Session) -> &'static str {
    "unreachable without a middleware"
}

/// Configures the suite's routes: `/nolayer` first and bare, the rest in a scope wrapped
/// by `middleware` (so `Scope::wrap` is what the suite exercises).
pub fn routes(cfg: &mut web::ServiceConfig, middleware: SessionMiddleware) {
    cfg.route("/nolayer", web::get().to(nolayer)).service(
        web::scope("")
            .wrap(middleware)
            .route("/plain", web::get().to(plain))
            .route("/get/{key}", web::get().to(get_key))
            .route("/all", web::get().to(all))
            .route("/set/{key}/{value}", web::get().to(set))
            .route("/try/{key}/{value}", web::get().to(try_set))
            .route("/fill/{n}", web::get().to(fill))
            .route("/remove/{key}", web::get().to(remove))
            .route("/login/{user}", web::get().to(login))
            .route("/flush", web::get().to(flush))
            .route("/failflush", web::get().to(failflush))
            .route("/logout", web::get().to(logout))
            .route("/fail/{key}/{value}", web::get().to(fail))
            .route("/remember/{secs}", web::get().to(remember))
            .route("/slowset/{key}/{value}", web::get().to(slowset))
            .route("/gatedset/{gate}/{key}/{value}", web::get().to(gatedset))
            .route("/gatedget/{gate}/{key}", web::get().to(gatedget))
            .route("/gatedlogin/{gate}/{user}", web::get().to(gatedlogin))
            .route("/bind/{user}/{label}", web::get().to(bind))
            .route("/gatedbind/{gate}/{user}/{label}", web::get().to(gatedbind))
            .route("/whoami", web::get().to(whoami))
            .route("/sessions", web::get().to(sessions))
            .route("/end-others", web::get().to(end_others))
            .route("/end-all", web::get().to(end_all)),
    );
}

/// Starts `configure` on an actix-web server on 127.0.0.1, in its own actix system thread.
pub async fn serve_actix<F>(configure: F) -> TestServer
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = HttpServer::new(move || App::new().configure(configure.clone()))
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("bind 127.0.0.1:0");
            let addr = server.addrs()[0];
            let server = server.run();
            let _ = tx.send((addr, server.handle()));
            server.await.expect("the actix test server runs");
        });
    });
    let (addr, handle) = rx.await.expect("the actix server started");
    TestServer::new(addr, move || {
        // The stop command is sent by this call; its future only waits for completion.
        drop(handle.stop(false));
    })
}

impl Framework for Actix {
    const NAME: &'static str = "actix-web";
    const MISSING_LAYER_HINT: &'static str = "is `SessionMiddleware` wrapped around the app?";

    async fn serve<S: SessionStore + Clone>(store: S, config: SessionConfig) -> TestServer {
        let middleware = SessionMiddleware::builder(store).config(config).build();
        let engine = middleware.engine().clone();
        serve_actix(move |cfg| routes(cfg, middleware.clone()))
            .await
            .with_engine(engine)
    }
}
