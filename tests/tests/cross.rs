//! One store behind an axum app and an actix-web app at once: a session moves freely
//! between them with the same cookie.

use serde_json::json;
use session_core::{Key, MemoryStore, SessionConfig, SessionStore, TowerStore};
use session_tests::http_suite::get;
use session_tests::{Actix, Axum, Framework};

async fn shared_session<S: SessionStore + Clone>(store: S) {
    shared_session_between(store.clone(), store).await;
}

/// The same, with each app holding a store of its own over one database (as two
/// processes would).
async fn shared_session_between<A: SessionStore + Clone, B: SessionStore + Clone>(
    for_axum: A,
    for_actix: B,
) {
    let config = SessionConfig::builder()
        .signed(Key::from(&[7u8; 64]))
        .build()
        .unwrap();
    let axum = Axum::serve(for_axum, config.clone()).await;
    let actix = Actix::serve(for_actix, config).await;

    // Created on axum, read and changed on actix...
    let pair = get(&axum, "/set/cart/[\"apple\"]", None)
        .await
        .cookie_pair();
    assert_eq!(
        get(&actix, "/get/cart", Some(&pair)).await.json(),
        json!(["apple"])
    );
    let r = get(&actix, "/set/theme/\"dark\"", Some(&pair)).await;
    assert!(
        r.set_cookies.is_empty(),
        "the same session: the browser's cookie stands, nothing is re-sent: {:?}",
        r.set_cookies
    );
    // ...and back.
    assert_eq!(
        get(&axum, "/all", Some(&pair)).await.json(),
        json!({"cart": ["apple"], "theme": "dark"})
    );

    // Login on actix cycles the id; axum follows the new cookie, not the old one.
    let after = get(&actix, "/login/ada", Some(&pair)).await.cookie_pair();
    assert_ne!(after, pair);
    assert_eq!(
        get(&axum, "/get/user", Some(&after)).await.json(),
        json!("ada")
    );
    assert_eq!(get(&axum, "/all", Some(&pair)).await.json(), json!({}));

    // Logout on axum is logout on actix.
    let r = get(&axum, "/flush", Some(&after)).await;
    assert_eq!(r.cookie().max_age(), Some(time::Duration::ZERO));
    assert_eq!(get(&actix, "/all", Some(&after)).await.json(), json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_memory_store_serves_both_frameworks() {
    shared_session(MemoryStore::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tower_sessions_store_serves_both_frameworks() {
    shared_session(TowerStore::new(
        tower_sessions_memory_store::MemoryStore::default(),
    ))
    .await;
}

/// Two apps, each with its own client, on one Aerospike cluster (AEROSPIKE_HOSTS, else
/// the protocol test server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_aerospike_cluster_serves_both_frameworks() {
    let served = session_tests::aerospike::Served::default_store().await;
    let hosts = match &served.server {
        Some(server) => server.lock().await.hosts(),
        None => session_tests::aerospike::real_hosts().expect("a real cluster"),
    };
    let second = session_aerospike::AerospikeStore::connect(&hosts)
        .await
        .unwrap();
    shared_session_between(served, second).await;
}
