//! The smallest actix-web app with sessions: a per-visitor counter.
//!
//! `cargo run -p examples --bin actix-counter`, then open <http://127.0.0.1:3001/>.

use actix_web::{web, App, HttpServer};
use session_actix::{MemoryStore, Session, SessionMiddleware};

async fn count(session: Session) -> String {
    session
        .update_or("visits", 0u64, |n| *n += 1)
        .expect("visits is a number");
    let n: u64 = session.get("visits").unwrap().unwrap_or(0);
    format!("You have visited {n} time(s).")
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    // Build once, clone into each worker: every worker shares the store.
    let sessions = SessionMiddleware::builder(MemoryStore::default())
        .cookie_secure(false) // plain http on localhost only
        .build();
    println!("http://127.0.0.1:3001/");
    HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/", web::get().to(count))
    })
    .bind(("127.0.0.1", 3001))?
    .run()
    .await
}
