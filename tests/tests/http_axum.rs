//! The HTTP conformance suite on axum, with every store available here.

use session_core::{MemoryStore, TowerStore};
use session_tests::{http_suite, Axum, Caps};

http_suite!(memory, Axum, async { MemoryStore::default() }, Caps::NATIVE);

// tower-sessions' trait writes whole records: last writer wins.
http_suite!(
    tower_memory,
    Axum,
    async { TowerStore::new(tower_sessions_memory_store::MemoryStore::default()) },
    Caps::WHOLE_RECORD
);

// tower-sessions-core 0.14 stores: tower-sessions-redis-store on a real Redis server when
// REDIS_URL is set (the README's test command starts one), else tower-sessions' 0.14
// memory store. Whole records, like any tower-sessions store.
http_suite!(
    tower_014,
    Axum,
    session_tests::redis::store(),
    Caps::TOWER_REDIS
);

// tower-sessions-sqlx-store (tower-sessions-core 0.14) on a SQLite file.
http_suite!(
    tower_014_sqlite,
    Axum,
    session_tests::sqlite::store(),
    Caps::WHOLE_RECORD
);

// Aerospike through the real client (AEROSPIKE_HOSTS, else the protocol test server).
http_suite!(
    aerospike,
    Axum,
    session_tests::aerospike::Served::default_store(),
    session_tests::aerospike::caps()
);

/// tower-sessions' extractor rejects with `(StatusCode, &'static str)`; ours converts
/// into it, so a handler written for that shape ports with `?` unchanged.
#[tokio::test]
async fn the_rejection_converts_to_tower_sessions_shape() {
    use session_tests::{http_suite::get, Framework};
    let server = Axum::serve(
        MemoryStore::default(),
        session_core::SessionConfig::default(),
    )
    .await;
    let r = get(&server, "/nolayer-tuple", None).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.body,
        "Missing session: is `SessionLayer` added to the router?"
    );
    let (status, body): (axum::http::StatusCode, &str) =
        session_axum::SessionRejection::StoreUnavailable.into();
    assert_eq!((status.as_u16(), body), (503, "Service Unavailable"));
}
