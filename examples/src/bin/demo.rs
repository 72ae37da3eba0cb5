//! The demo: an axum app and an actix-web app sharing one session store.
//!
//! `cargo run -p examples --bin demo` (see `--help`).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use examples::demo;
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
        .build();
    let data = demo::ActixInfo::new(axum_url.clone(), secure);
    let actix = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .wrap(middleware.clone())
            .configure(demo::actix_routes)
    })
    .workers(2)
    .bind(actix_addr)
    .map_err(|e| {
        format!("cannot listen on {actix_addr} for the actix-web app ({e}): is the port taken? Pick another with --actix-port.")
    })?
    .run();

    let app = demo::axum_app(store, config, actix_url.clone());
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
        // Capped, as a public app's in-memory store should be: a flood of new sessions
        // gets 503s instead of the process's memory.
        Store::Memory => {
            let store = MemoryStore::with_max_sessions(100_000);
            serve(&args, store, demo::config(key)).await
        }
        Store::Aerospike => match aerospike_store(&args).await {
            Ok(store) => serve(&args, store, demo::config(key)).await,
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
