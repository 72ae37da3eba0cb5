//! The store conformance suite, once per store.

use session_core::{MemoryStore, TowerStore};
use session_tests::{store_suite, Caps};

store_suite!(memory, async { MemoryStore::default() }, Caps::NATIVE);

// tower-sessions' trait writes whole records: last writer wins.
store_suite!(
    tower_memory,
    async { TowerStore::new(tower_sessions_memory_store::MemoryStore::default()) },
    Caps::WHOLE_RECORD
);

// tower-sessions-core 0.14 stores (Redis when REDIS_URL is set): whole records.
store_suite!(tower_014, session_tests::redis::store(), Caps::TOWER_REDIS);

// tower-sessions-sqlx-store (tower-sessions-core 0.14) on a SQLite file: whole records.
store_suite!(
    tower_014_sqlite,
    session_tests::sqlite::store(),
    Caps::WHOLE_RECORD
);

// Aerospike through the real client: a real cluster when AEROSPIKE_HOSTS is set, else the
// protocol test server. Saves are map operations on the changed keys only.
store_suite!(
    aerospike,
    session_tests::aerospike::Served::default_store(),
    session_tests::aerospike::caps()
);
