//! The demo's two apps over one `MemoryStore`, with the session metrics served in the
//! Prometheus text format at `/metrics` on the axum app.
//!
//! `cargo run -p examples --bin metrics`, use the demo at <http://127.0.0.1:8080/> and
//! <http://127.0.0.1:8081/>, then read <http://127.0.0.1:8080/metrics>. The adapters'
//! `metrics` feature (on here) sends the counters and histograms to whatever recorder
//! the process installs; this one is `metrics-exporter-prometheus`'s.

use axum::routing::get;
use examples::demo;
use metrics_exporter_prometheus::PrometheusBuilder;
use session_core::{Key, MemoryStore};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    // Install the recorder before the first request: the sessions register their
    // metrics with whatever recorder is installed when they are first used.
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("no other metrics recorder is installed");

    let store = MemoryStore::default();
    let config = demo::config(Key::generate());
    let (axum_url, actix_url) = ("http://127.0.0.1:8080/", "http://127.0.0.1:8081/");

    let middleware = session_actix::SessionMiddleware::builder(store.clone())
        .config(config.clone())
        .build();
    let data = demo::ActixInfo::new(axum_url.to_owned(), config.secure());
    let actix = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .wrap(middleware.clone())
            .configure(demo::actix_routes)
    })
    .workers(1)
    .bind("127.0.0.1:8081")
    .expect("listen on 127.0.0.1:8081")
    .run();

    let app = demo::axum_app(store, config, actix_url.to_owned())
        .route("/metrics", get(move || async move { prometheus.render() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080")
        .await
        .expect("listen on 127.0.0.1:8080");
    println!("session demo with metrics: {axum_url} and {actix_url}; metrics at {axum_url}metrics");
    tokio::select! {
        r = actix => r.expect("the actix-web app runs"),
        r = axum::serve(listener, app) => r.expect("the axum app runs"),
    }
}
