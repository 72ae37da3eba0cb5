//! The HTTP conformance suite on actix-web, with every store available here.

use session_core::{MemoryStore, TowerStore};
use session_tests::{http_suite, Actix, Caps};

http_suite!(
    memory,
    Actix,
    async { MemoryStore::default() },
    Caps::NATIVE
);

// tower-sessions' trait writes whole records: last writer wins.
http_suite!(
    tower_memory,
    Actix,
    async { TowerStore::new(tower_sessions_memory_store::MemoryStore::default()) },
    Caps::WHOLE_RECORD
);

// tower-sessions-core 0.14 stores: tower-sessions-redis-store on a real Redis server when
// REDIS_URL is set (the README's test command starts one), else tower-sessions' 0.14
// memory store. Whole records, like any tower-sessions store.
http_suite!(
    tower_014,
    Actix,
    session_tests::redis::store(),
    Caps::TOWER_REDIS
);

// tower-sessions-sqlx-store (tower-sessions-core 0.14) on a SQLite file.
http_suite!(
    tower_014_sqlite,
    Actix,
    session_tests::sqlite::store(),
    Caps::WHOLE_RECORD
);

// Aerospike through the real client (AEROSPIKE_HOSTS, else the protocol test server).
http_suite!(
    aerospike,
    Actix,
    session_tests::aerospike::Served::default_store(),
    session_tests::aerospike::caps()
);
