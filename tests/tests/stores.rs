//! The store conformance suite, once per store.

use session_core::{MemoryStore, TowerStore};
use session_tests::{store_suite, Caps};

store_suite!(memory, MemoryStore::default(), Caps::NATIVE);

// tower-sessions' trait writes whole records: last writer wins.
store_suite!(
    tower_memory,
    TowerStore::new(tower_sessions_memory_store::MemoryStore::default()),
    Caps::WHOLE_RECORD
);
