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

// Aerospike through the real client (AEROSPIKE_HOSTS, else the protocol test server).
http_suite!(
    aerospike,
    Axum,
    session_tests::aerospike::Served::default_store(),
    Caps::NATIVE
);
