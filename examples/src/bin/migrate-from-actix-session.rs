//! An actix-session 0.11 app moved to this crate: the handlers, the middleware and its
//! settings keep actix-session's source; the `use` lines change. An app on
//! `CookieSessionStore`, or on `RedisSessionStore` (with the `redis-session` feature),
//! keeps its store too; this one runs on the in-memory store so that it needs no server.
//!
//! ```text
//! - use actix_session::{config::PersistentSession, Session, SessionMiddleware};
//! + use session_actix::compat::{config::PersistentSession, Session, SessionMiddleware};
//! ```
//!
//! and, in `Cargo.toml`, `actix-session` becomes
//! `session-actix = { version = "…", features = ["compat"] }`.
//!
//! MIGRATING.md has the rest, and the next step: the native API.
//!
//! `cargo run -p examples --bin migrate-from-actix-session`, then open
//! <http://127.0.0.1:3003/>, `/login/ada`, `/logout`.

use actix_web::cookie::{time::Duration, Key};
use actix_web::{web, App, Error, HttpServer, Responder};
use session_actix::compat::{config::PersistentSession, Session, SessionMiddleware};
use session_actix::MemoryStore;

async fn index(session: Session) -> Result<impl Responder, Error> {
    session.update_or("visits", 1, |n: u32| n + 1)?;
    let visits: u32 = session.get("visits")?.unwrap_or_default();
    let user: Option<String> = session.get("user")?;
    Ok(format!(
        "Visits: {visits} ({})",
        user.as_deref().unwrap_or("not logged in")
    ))
}

async fn login(session: Session, user: web::Path<String>) -> Result<impl Responder, Error> {
    // A new id at login, against session fixation.
    session.renew();
    session.insert("user", user.as_str())?;
    Ok(format!("Logged in as {user}"))
}

async fn logout(session: Session) -> impl Responder {
    session.purge();
    "Logged out"
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let key = Key::generate();
    let store = MemoryStore::default();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(
                SessionMiddleware::builder(store.clone(), key.clone())
                    // Plain http on localhost: turn `Secure` off for the example only.
                    .cookie_secure(false)
                    .session_lifecycle(PersistentSession::default().session_ttl(Duration::hours(1)))
                    .build(),
            )
            .route("/", web::get().to(index))
            .route("/login/{user}", web::get().to(login))
            .route("/logout", web::get().to(logout))
    })
    .bind(("127.0.0.1", 3003))?;
    println!("http://127.0.0.1:3003/");
    server.run().await
}
