//! Interop with tower-sessions, both ways:
//!
//! * a tower-sessions store (here its `MemoryStore`; redis, sqlx, moka... alike) behind
//!   this family's `SessionLayer`, through `TowerStore`, on port 3006;
//! * with `AEROSPIKE_HOSTS` set, our `AerospikeStore` inside a plain tower-sessions app,
//!   on port 3007.
//!
//! `cargo run -p examples --bin tower-sessions-store`.

use axum::{routing::get, Router};
use session_axum::{SessionLayer, TowerStore};

async fn ours(session: session_axum::Session) -> String {
    session.update_or("n", 0u64, |n| *n += 1).unwrap();
    format!(
        "our layer, a tower-sessions store: {}",
        session.get::<u64>("n").unwrap().unwrap()
    )
}

async fn theirs(session: tower_sessions::Session) -> String {
    let n: u64 = session.get("n").await.unwrap().unwrap_or(0) + 1;
    session.insert("n", n).await.unwrap();
    format!("tower-sessions' layer, our AerospikeStore: {n}")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = TowerStore::new(tower_sessions_memory_store::MemoryStore::default());
    let app = Router::new()
        .route("/", get(ours))
        .layer(SessionLayer::new(store).with_secure(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3006").await?;
    println!("http://{}/", listener.local_addr()?);
    let first = tokio::spawn(async move { axum::serve(listener, app).await });

    if let Ok(hosts) = std::env::var("AEROSPIKE_HOSTS") {
        let store = session_aerospike::AerospikeStore::connect(&hosts).await?;
        let app = Router::new()
            .route("/", get(theirs))
            .layer(tower_sessions::SessionManagerLayer::new(store).with_secure(false));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:3007").await?;
        println!("http://{}/", listener.local_addr()?);
        axum::serve(listener, app).await?;
    } else {
        println!("(set AEROSPIKE_HOSTS to also serve a tower-sessions app on AerospikeStore)");
    }
    first.await??;
    Ok(())
}
