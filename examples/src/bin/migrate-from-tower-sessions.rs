//! A tower-sessions 0.15 app moved to this crate by changing one `use` line: the
//! handlers, the layer and the store keep tower-sessions' source as it was.
//!
//! ```text
//! - use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer};
//! + use session_axum::compat::{Expiry, MemoryStore, Session, SessionManagerLayer};
//! ```
//!
//! and, in `Cargo.toml`, `tower-sessions = "0.15"` becomes
//! `session-axum = { version = "…", features = ["compat"] }`.
//! MIGRATING.md has the next step, the native API without `.await` on each accessor.
//!
//! `cargo run -p examples --bin migrate-from-tower-sessions`, then open
//! <http://127.0.0.1:3002/>, `/login/ada`, `/logout`.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::{routing::get, Router};
use serde::{Deserialize, Serialize};
use session_axum::compat::cookie::time::Duration;
use session_axum::compat::{Expiry, MemoryStore, Session, SessionManagerLayer};

const COUNTER_KEY: &str = "counter";
const USER_KEY: &str = "user";

#[derive(Default, Deserialize, Serialize)]
struct Counter(usize);

fn internal(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn count(session: Session) -> Result<String, (StatusCode, String)> {
    let counter: Counter = session
        .get(COUNTER_KEY)
        .await
        .map_err(internal)?
        .unwrap_or_default();
    session
        .insert(COUNTER_KEY, counter.0 + 1)
        .await
        .map_err(internal)?;
    let user: Option<String> = session.get(USER_KEY).await.map_err(internal)?;
    Ok(format!(
        "Current count: {} ({})",
        counter.0,
        user.as_deref().unwrap_or("not logged in")
    ))
}

async fn login(session: Session, Path(user): Path<String>) -> Result<String, (StatusCode, String)> {
    // A new id at login, against session fixation.
    session.cycle_id().await.map_err(internal)?;
    session.insert(USER_KEY, &user).await.map_err(internal)?;
    Ok(format!("Logged in as {user}"))
}

async fn logout(session: Session) -> Result<&'static str, (StatusCode, String)> {
    session.flush().await.map_err(internal)?;
    Ok("Logged out")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let session_layer = SessionManagerLayer::new(MemoryStore::default())
        // Plain http on localhost: turn `Secure` off for the example only.
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(Duration::hours(1)));
    let app = Router::new()
        .route("/", get(count))
        .route("/login/{user}", get(login))
        .route("/logout", get(logout))
        .layer(session_layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    println!("http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await
}
