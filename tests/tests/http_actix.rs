//! The HTTP conformance suite on actix-web, with every store available here.

use session_core::{MemoryStore, TowerStore};
use session_tests::{http_suite, Actix, Caps};

http_suite!(memory, Actix, MemoryStore::default(), Caps::NATIVE);

// tower-sessions' trait writes whole records: last writer wins.
http_suite!(
    tower_memory,
    Actix,
    TowerStore::new(tower_sessions_memory_store::MemoryStore::default()),
    Caps::WHOLE_RECORD
);
