//! Arbitrary request headers through the id finder and decoder: plain, signed and private
//! cookies, and the id header. Nothing may panic, and a plain id is found only if the
//! input holds its exact text.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use session_core::{Id, Key, MemoryStore, SessionConfig, SessionEngine};

fn engines() -> &'static [SessionEngine] {
    static E: OnceLock<Vec<SessionEngine>> = OnceLock::new();
    E.get_or_init(|| {
        let key = Key::from(&[7u8; 64]);
        let old = Key::from(&[9u8; 64]);
        let b = SessionConfig::builder;
        [
            b().build(),
            b().signed(key.clone()).old_keys([old.clone()]).build(),
            b().private(key).old_keys([old]).build(),
            b().id_header("x-session-id").build(),
        ]
        .into_iter()
        .map(|c| SessionEngine::new(MemoryStore::default(), c.unwrap()))
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    for engine in engines() {
        let before = engine.metrics();
        let lazy = engine.start(values.iter().copied());
        let after = engine.metrics();
        assert!(after.rejected_ids - before.rejected_ids <= 1);
        drop(lazy);
    }
    let _ = Id::parse_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = text.parse::<Id>() {
            assert_eq!(id.encode().as_str(), text);
        }
    }
});
