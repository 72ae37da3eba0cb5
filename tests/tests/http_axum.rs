//! The HTTP conformance suite on axum, with every store available here.

use session_core::{MemoryStore, TowerStore};
use session_tests::{http_suite, Axum, Caps};

http_suite!(memory, Axum, MemoryStore::default(), Caps::NATIVE);

// tower-sessions' trait writes whole records: last writer wins.
http_suite!(
    tower_memory,
    Axum,
    TowerStore::new(tower_sessions_memory_store::MemoryStore::default()),
    Caps::WHOLE_RECORD
);
