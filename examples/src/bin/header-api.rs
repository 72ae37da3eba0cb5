//! Sessions for a JSON API whose clients keep no cookies: the id travels in the
//! `x-session-id` header both ways.
//!
//! `cargo run -p examples --bin header-api`, then:
//! `curl -i -X POST localhost:3004/notes -d 'hello'` and send the `x-session-id` you get
//! back: `curl -H 'x-session-id: ...' localhost:3004/notes`.

use axum::routing::get;
use axum::{Json, Router};
use session_axum::{MemoryStore, Session, SessionLayer};

async fn list(session: Session) -> Json<Vec<String>> {
    Json(session.get("notes").unwrap().unwrap_or_default())
}

async fn add(session: Session, body: String) -> Json<Vec<String>> {
    session
        .update_or("notes", Vec::<String>::new(), |notes| {
            notes.push(body.clone())
        })
        .unwrap();
    Json(session.get("notes").unwrap().unwrap_or_default())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/notes", get(list).post(add))
        .layer(SessionLayer::new(MemoryStore::default()).with_id_header("x-session-id"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3004").await?;
    println!(
        "http://{}/notes (send x-session-id)",
        listener.local_addr()?
    );
    axum::serve(listener, app).await
}
