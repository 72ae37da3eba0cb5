//! Login and logout: `cycle_id` at login against session fixation, `flush` at logout, and
//! an extractor that only admits logged-in sessions.
//!
//! `cargo run -p examples --bin axum-login`, then:
//! `curl -c jar -b jar -d name=ada localhost:3002/login; curl -b jar localhost:3002/me`

use axum::extract::{Form, FromRequestParts};
use axum::http::{request::Parts, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use session_axum::{MemoryStore, Session, SessionLayer};

/// A logged-in user; rejects with 401 otherwise.
struct User(String);

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "sessions unavailable"))?;
        match session.get::<String>("user") {
            Ok(Some(name)) => Ok(User(name)),
            _ => Err((StatusCode::UNAUTHORIZED, "log in first")),
        }
    }
}

#[derive(Deserialize)]
struct Login {
    name: String,
}

async fn login(session: Session, Form(form): Form<Login>) -> &'static str {
    // A real app checks a password here.
    session.insert("user", form.name).unwrap();
    session.cycle_id(); // new id, same data: a fixated id is now worthless
    "logged in"
}

async fn logout(session: Session) -> &'static str {
    session.flush(); // record deleted, cookie removed
    "logged out"
}

async fn me(User(name): User) -> String {
    format!("hello, {name}")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .layer(SessionLayer::new(MemoryStore::default()).with_secure(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    println!("http://{}/me", listener.local_addr()?);
    axum::serve(listener, app).await
}
