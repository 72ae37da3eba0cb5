//! Arbitrary request headers through the id finder and decoder: plain, signed and private
//! cookies, a `__Host-` name, and the id header. Besides the raw input, a `Cookie` header
//! is built from it with several cookies of the same name, of prefixed and look-alike
//! names, and valid, signed and junk values, so duplicates and prefixes are exercised.
//! Nothing may panic, and a plain id is found only if the input holds its exact text.
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
            b().name("__Host-id").build(),
        ]
        .into_iter()
        .map(|c| SessionEngine::new(MemoryStore::default(), c.unwrap()))
        .collect()
    })
}

/// A `Cookie` header built from `data`: each 6-byte chunk picks a name (ours, prefixed,
/// look-alikes) and a value (a valid id, one signed under our key, or the chunk's bytes).
fn cookie_header(data: &[u8]) -> Vec<u8> {
    const NAMES: [&str; 7] = [
        "id",
        "__Host-id",
        "__Secure-id",
        "__Host-Http-id",
        "ID",
        "id ",
        "xid",
    ];
    let signed = SessionConfig::builder()
        .signed(Key::from(&[7u8; 64]))
        .build()
        .unwrap();
    let mut out = Vec::new();
    for chunk in data.chunks(6) {
        let name = NAMES[usize::from(chunk[0]) % NAMES.len()];
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        match chunk.get(1).map(|b| b % 3) {
            Some(0) => out.extend_from_slice(Id::random().encode().as_str().as_bytes()),
            Some(1) => {
                let issued = signed.issue(&Id::random(), None);
                let pair = issued.split(';').next().unwrap_or_default();
                out.extend_from_slice(pair.split_once('=').map_or("", |p| p.1).as_bytes());
            }
            _ => out.extend_from_slice(chunk.get(2..).unwrap_or_default()),
        }
        out.extend_from_slice(b"; ");
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let built = cookie_header(data);
    for engine in engines() {
        for input in [&values[..], &[&built[..]][..]] {
            let before = engine.metrics();
            let lazy = engine.start(input.iter().copied());
            let after = engine.metrics();
            assert!(after.rejected_ids - before.rejected_ids <= 1);
            drop(lazy);
        }
    }
    let _ = Id::parse_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = text.parse::<Id>() {
            assert_eq!(id.encode().as_str(), text);
        }
    }
});
