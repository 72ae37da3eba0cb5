//! The demo: an axum app and an actix-web app sharing one session store.
//!
//! `cargo run -p examples --bin demo` (see `--help`).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use session_core::{Key, MemoryStore, SessionConfig, SessionStore};

/// An axum app and an actix-web app sharing one session store: move between them and
/// the session comes along.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address both apps listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port of the axum app.
    #[arg(long, default_value_t = 8080)]
    axum_port: u16,
    /// Port of the actix-web app.
    #[arg(long, default_value_t = 8081)]
    actix_port: u16,
    /// Where sessions are kept.
    #[arg(long, value_enum, default_value_t = Store::Memory)]
    store: Store,
    /// Aerospike hosts for `--store aerospike`, e.g. `127.0.0.1:3000`.
    #[arg(long)]
    hosts: Option<String>,
    /// A secret of at least 32 bytes to sign cookies with, so they survive restarts
    /// (default: a random key per run).
    #[arg(long, env = "DEMO_COOKIE_KEY")]
    key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Store {
    /// The embedded in-memory store.
    Memory,
    /// An Aerospike cluster (`--hosts`).
    Aerospike,
}

fn config(key: Key) -> SessionConfig {
    SessionConfig::builder()
        // Plain http on 127.0.0.1: the page says so. The library default stays `Secure`.
        .secure(false)
        .signed(key)
        .build()
        .expect("the demo configuration is valid")
}

mod axum_app {
    use axum::extract::Form;
    use axum::response::{Html, Redirect};
    use axum::routing::{get, post};
    use axum::Router;
    use examples::demo::{self, Field};
    use session_axum::{Session, SessionLayer};
    use session_core::{SessionConfig, SessionStore};

    pub(crate) fn router<S: SessionStore>(
        store: S,
        config: SessionConfig,
        other: String,
    ) -> Router {
        let secure = config.secure();
        let index = move |session: Session| {
            let other = other.clone();
            async move {
                demo::visit(&session);
                Html(demo::page("axum", ("actix-web", &other), secure, &session))
            }
        };
        Router::new()
            .route("/", get(index))
            .route(
                "/cart",
                post(|s: Session, Form(f): Form<Field>| async move {
                    demo::add_to_cart(&s, &f.value);
                    Redirect::to("/")
                }),
            )
            .route(
                "/login",
                post(|s: Session, Form(f): Form<Field>| async move {
                    demo::login(&s, &f.value);
                    Redirect::to("/")
                }),
            )
            .route(
                "/logout",
                post(|s: Session| async move {
                    demo::logout(&s);
                    Redirect::to("/")
                }),
            )
            .route(
                "/remember",
                post(|s: Session| async move {
                    demo::remember(&s);
                    Redirect::to("/")
                }),
            )
            .layer(SessionLayer::new(store).with_config(config))
    }
}

mod actix_app {
    use actix_web::http::header;
    use actix_web::{web, HttpResponse};
    use examples::demo::{self, Field};
    use session_actix::Session;

    fn back() -> HttpResponse {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/"))
            .finish()
    }

    async fn index(session: Session, other: web::Data<(String, bool)>) -> HttpResponse {
        demo::visit(&session);
        let page = demo::page("actix-web", ("axum", &other.0), other.1, &session);
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(page)
    }

    async fn cart(session: Session, f: web::Form<Field>) -> HttpResponse {
        demo::add_to_cart(&session, &f.value);
        back()
    }

    async fn login(session: Session, f: web::Form<Field>) -> HttpResponse {
        demo::login(&session, &f.value);
        back()
    }

    async fn logout(session: Session) -> HttpResponse {
        demo::logout(&session);
        back()
    }

    async fn remember(session: Session) -> HttpResponse {
        demo::remember(&session);
        back()
    }

    pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route("/", web::get().to(index))
            .route("/cart", web::post().to(cart))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/remember", web::post().to(remember));
    }
}

async fn serve<S: SessionStore + Clone>(
    args: &Args,
    store: S,
    config: SessionConfig,
) -> Result<(), String> {
    let axum_addr = SocketAddr::new(args.host, args.axum_port);
    let actix_addr = SocketAddr::new(args.host, args.actix_port);
    let axum_url = format!("http://{axum_addr}/");
    let actix_url = format!("http://{actix_addr}/");

    let listener = tokio::net::TcpListener::bind(axum_addr).await.map_err(|e| {
        format!("cannot listen on {axum_addr} for the axum app ({e}): is the port taken? Pick another with --axum-port.")
    })?;
    let secure = config.secure();
    let middleware = session_actix::SessionMiddleware::builder(store.clone())
        .config(config.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let data = actix_web::web::Data::new((axum_url.clone(), secure));
    let actix = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .wrap(middleware.clone())
            .configure(actix_app::routes)
    })
    .workers(2)
    .bind(actix_addr)
    .map_err(|e| {
        format!("cannot listen on {actix_addr} for the actix-web app ({e}): is the port taken? Pick another with --actix-port.")
    })?
    .run();

    let app = axum_app::router(store, config, actix_url.clone());
    let axum = tokio::spawn(async move { axum::serve(listener, app).await });

    println!(
        "session demo: one {:?} store behind two frameworks",
        args.store
    );
    println!("  axum       {axum_url}");
    println!("  actix-web  {actix_url}");
    println!("Press Ctrl-C to stop.");

    tokio::select! {
        r = actix => r.map_err(|e| format!("the actix-web app stopped: {e}")),
        r = axum => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the axum app stopped: {e}")),
            Err(e) => Err(format!("the axum app panicked: {e}")),
        },
    }
}

async fn aerospike_store(args: &Args) -> Result<session_aerospike::AerospikeStore, String> {
    let Some(hosts) = args.hosts.as_deref() else {
        return Err("--store aerospike needs --hosts HOST:PORT[,HOST:PORT...]".into());
    };
    let policy = session_aerospike::aerospike::ClientPolicy {
        timeout: 3_000,
        ..Default::default()
    };
    session_aerospike::AerospikeStore::builder()
        .client_policy(policy)
        .connect(hosts)
        .await
        .map_err(|e| {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            msg
        })
}

#[actix_web::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let key = match &args.key {
        None => Key::generate(),
        Some(secret) if secret.len() >= 32 => Key::derive_from(secret.as_bytes()),
        Some(_) => {
            eprintln!("demo: --key must be at least 32 bytes long");
            return ExitCode::from(2);
        }
    };
    let result = match args.store {
        Store::Memory => serve(&args, MemoryStore::default(), config(key)).await,
        Store::Aerospike => match aerospike_store(&args).await {
            Ok(store) => serve(&args, store, config(key)).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        let a = Args::try_parse_from(["demo", "--axum-port", "9000", "--store", "memory"]).unwrap();
        assert_eq!(a.axum_port, 9000);
        assert_eq!(a.actix_port, 8081);
        assert!(Args::try_parse_from(["demo", "--store", "redis"]).is_err());
    }
}
