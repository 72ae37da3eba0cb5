//! The smallest axum app with sessions: a per-visitor counter.
//!
//! `cargo run -p examples --bin axum-counter`, then open <http://127.0.0.1:3000/>.

use axum::{routing::get, Router};
use session_axum::{MemoryStore, Session, SessionLayer};

async fn count(session: Session) -> String {
    session
        .update_or("visits", 0u64, |n| *n += 1)
        .expect("visits is a number");
    let n: u64 = session.get("visits").unwrap().unwrap_or(0);
    format!("You have visited {n} time(s).")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route("/", get(count)).layer(
        // Plain http on localhost: turn `Secure` off for the demo only.
        SessionLayer::new(MemoryStore::default()).with_secure(false),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await
}
