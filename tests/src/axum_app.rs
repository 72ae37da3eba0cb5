//! The suite's app on axum.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};
use session_axum::{Expiry, Session, SessionConfig, SessionLayer, SessionStore};

use crate::server::{parse_value, Framework, TestServer};

/// [`Framework`] for `session-axum`.
#[derive(Debug)]
pub struct Axum;

async fn plain() -> &'static str {
    "plain"
}

async fn get_key(session: Session, Path(key): Path<String>) -> Json<Value> {
    Json(session.get_value(&key).unwrap_or(Value::Null))
}

async fn all(session: Session) -> Json<Value> {
    let map: Map<String, Value> = session
        .keys()
        .into_iter()
        .filter_map(|k| session.get_value(&k).map(|v| (k, v)))
        .collect();
    Json(Value::Object(map))
}

/// A refused insert: 413 with the error's text.
type Refused = (StatusCode, String);

fn refused(e: session_core::Error) -> Refused {
    (StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
}

async fn set(
    session: Session,
    Path((key, value)): Path<(String, String)>,
) -> Result<&'static str, Refused> {
    session
        .insert_value(&key, parse_value(&value))
        .map_err(refused)?;
    Ok("ok")
}

/// `?` on a session accessor's error: it answers for itself, an opaque 500.
async fn try_set(
    session: Session,
    Path((key, value)): Path<(String, String)>,
) -> Result<&'static str, session_core::Error> {
    session.insert_value(&key, parse_value(&value))?;
    Ok("ok")
}

async fn fill(session: Session, Path(n): Path<usize>) -> Result<&'static str, Refused> {
    for i in 0..n {
        session.insert(&format!("f{i}"), i).map_err(refused)?;
    }
    Ok("ok")
}

async fn remove(session: Session, Path(key): Path<String>) -> &'static str {
    session.remove_value(&key);
    "ok"
}

async fn login(session: Session, Path(user): Path<String>) -> &'static str {
    session.insert("user", user).unwrap();
    session.cycle_id();
    "ok"
}

async fn failflush(session: Session) -> StatusCode {
    session.flush();
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn flush(session: Session) -> &'static str {
    session.flush();
    "ok"
}

async fn logout(handle: session_axum::SessionHandle) -> &'static str {
    handle.flush();
    "ok"
}

async fn fail(session: Session, Path((key, value)): Path<(String, String)>) -> StatusCode {
    session.insert_value(&key, parse_value(&value)).unwrap();
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn remember(session: Session, Path(secs): Path<i64>) -> &'static str {
    session.set_expiry(Some(Expiry::OnInactivity(time::Duration::seconds(secs))));
    "ok"
}

/// How long the slow routes hold a loaded session before acting.
pub const SLOW: std::time::Duration = std::time::Duration::from_millis(100);

async fn slowset(session: Session, Path((key, value)): Path<(String, String)>) -> &'static str {
    tokio::time::sleep(SLOW).await;
    session.insert_value(&key, parse_value(&value)).unwrap();
    "ok"
}

/// Loads the session, waits at the gate `gate` (see [`crate::gate`]), then reads a value.
async fn gatedget(session: Session, Path((gate, key)): Path<(String, String)>) -> Json<Value> {
    crate::gate::pass(&gate).await;
    Json(session.get_value(&key).unwrap_or(Value::Null))
}

/// Loads the session, waits at the gate `gate`, then logs in as `/login` does.
async fn gatedlogin(session: Session, Path((gate, user)): Path<(String, String)>) -> &'static str {
    crate::gate::pass(&gate).await;
    session.insert("user", user).unwrap();
    session.cycle_id();
    "ok"
}

/// Loads the session, waits at the gate `gate`, then sets a value.
async fn gatedset(
    session: Session,
    Path((gate, key, value)): Path<(String, String, String)>,
) -> &'static str {
    crate::gate::pass(&gate).await;
    session.insert_value(&key, parse_value(&value)).unwrap();
    "ok"
}

/// Login with a user binding: `cycle_id`, `set_user`, `set_label`.
async fn bind(
    session: Session,
    Path((user, label)): Path<(String, String)>,
) -> Result<&'static str, Refused> {
    log_in(&session, user, label)
}

/// Loads the session, waits at the gate `gate`, then logs in as [`bind`] does.
async fn gatedbind(
    session: Session,
    Path((gate, user, label)): Path<(String, String, String)>,
) -> Result<&'static str, Refused> {
    crate::gate::pass(&gate).await;
    log_in(&session, user, label)
}

fn log_in(session: &Session, user: String, label: String) -> Result<&'static str, Refused> {
    session.cycle_id();
    session.set_user(user).map_err(refused)?;
    session.set_label(label).map_err(refused)?;
    Ok("ok")
}

async fn whoami(session: Session) -> Json<Value> {
    Json(session.user().map_or(Value::Null, Value::String))
}

/// A store error as the suite's apps answer it (`crate::server::user_error`).
type Failed = (StatusCode, String);

fn failed(e: session_core::StoreError) -> Failed {
    let (status, body) = crate::server::user_error(&e);
    (StatusCode::from_u16(status).unwrap(), body)
}

async fn sessions(session: Session) -> Result<Json<Value>, Failed> {
    let list = session.user_sessions().await.map_err(failed)?;
    Ok(Json(crate::server::sessions_json(&list)))
}

async fn end_others(session: Session) -> Result<String, Failed> {
    Ok(session
        .end_other_sessions()
        .await
        .map_err(failed)?
        .to_string())
}

async fn end_all(session: Session) -> Result<String, Failed> {
    Ok(session
        .end_all_sessions()
        .await
        .map_err(failed)?
        .to_string())
}

async fn nolayer(_session: Session) -> &'static str {
    "unreachable without a layer"
}

/// The rejection taken with `?` into tower-sessions' rejection shape.
async fn nolayer_tuple(
    session: Result<Session, session_axum::SessionRejection>,
) -> Result<String, (axum::http::StatusCode, &'static str)> {
    Ok(session?.len().to_string())
}

/// The suite's routes behind `SessionLayer`, plus `/nolayer` outside it.
pub fn router<S: SessionStore>(store: S, config: SessionConfig) -> Router {
    router_with(SessionLayer::new(store).with_config(config))
}

/// The suite's routes behind `layer`, plus `/nolayer` outside it.
pub fn router_with<S: SessionStore>(layer: SessionLayer<S>) -> Router {
    Router::new()
        .route("/plain", get(plain))
        .route("/get/{key}", get(get_key))
        .route("/all", get(all))
        .route("/set/{key}/{value}", get(set))
        .route("/try/{key}/{value}", get(try_set))
        .route("/fill/{n}", get(fill))
        .route("/remove/{key}", get(remove))
        .route("/login/{user}", get(login))
        .route("/flush", get(flush))
        .route("/failflush", get(failflush))
        .route("/logout", get(logout))
        .route("/fail/{key}/{value}", get(fail))
        .route("/remember/{secs}", get(remember))
        .route("/slowset/{key}/{value}", get(slowset))
        .route("/gatedset/{gate}/{key}/{value}", get(gatedset))
        .route("/gatedget/{gate}/{key}", get(gatedget))
        .route("/gatedlogin/{gate}/{user}", get(gatedlogin))
        .route("/bind/{user}/{label}", get(bind))
        .route("/gatedbind/{gate}/{user}/{label}", get(gatedbind))
        .route("/whoami", get(whoami))
        .route("/sessions", get(sessions))
        .route("/end-others", get(end_others))
        .route("/end-all", get(end_all))
        .layer(layer)
        .route("/nolayer", get(nolayer))
        .route("/nolayer-tuple", get(nolayer_tuple))
}

impl Framework for Axum {
    const NAME: &'static str = "axum";
    const MISSING_LAYER_HINT: &'static str = "is `SessionLayer` added to the router?";

    async fn serve<S: SessionStore + Clone>(store: S, config: SessionConfig) -> TestServer {
        let layer = SessionLayer::new(store).with_config(config);
        let engine = layer.engine().clone();
        serve_router(router_with(layer)).await.with_engine(engine)
    }
}

/// Serves `app` on `127.0.0.1:<free port>` until the returned server is dropped.
pub async fn serve_router(app: Router) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .expect("the axum test server runs");
    });
    TestServer::new(addr, move || {
        let _ = tx.send(());
    })
}
