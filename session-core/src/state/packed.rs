//! The packed form of a session's values: one allocation holding the expiry and each
//! value's JSON text, read key by key without parsing the others. `MemoryStore` keeps
//! records this way, and a session loaded from it reads its values from the body
//! directly: a request that reads one key parses that key alone.
//!
//! A body: one tag byte for the expiry (0 none, 1 on session end, 2 on inactivity, 3 at
//! a date time) and its fields in little-endian, then one entry per value: the key's
//! length (u32, little-endian) and bytes, the value's length and its JSON text. A save
//! rewrites the changed entries and copies the others as bytes.

use std::sync::Arc;

use serde_json::Value;
use time::{Duration, OffsetDateTime, UtcOffset};

use super::{Change, Changes, Data, ValuesRef};
use crate::expiry::Expiry;

/// A body that is not this format: a bug in whoever wrote it, never input.
#[derive(Debug, thiserror::Error)]
#[error("corrupt packed session record")]
pub(crate) struct Corrupt(#[source] Option<serde_json::Error>);

/// A record's body: one tag byte for the expiry (0 none, 1 on session end, 2 on
/// inactivity, 3 at a date time) and its fields in little-endian, then one entry per
/// value: the key's length (u32, little-endian) and bytes, the value's length and its
/// JSON text. A save rewrites the changed entries and copies the others as bytes.
pub(crate) fn encode(expiry: Option<Expiry>, data: ValuesRef<'_>) -> Arc<[u8]> {
    let Ok(body) = build::<std::convert::Infallible>(|out| {
        push_expiry(out, expiry);
        for (k, v) in data.iter() {
            push_entry(out, k, v);
        }
        Ok(())
    });
    body
}

/// Scratch buffers larger than this are not kept for the next record.
const SCRATCH_KEEP: usize = 64 * 1024;

/// A body written by `write` into this thread's scratch buffer, then copied into one
/// exactly-sized shared allocation: one allocation per record, and no pass to measure
/// the values first.
fn build<E>(write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<Arc<[u8]>, E> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| {
        let mut out = scratch.take();
        out.clear();
        let written = write(&mut out);
        let body = written.map(|()| Arc::from(&out[..]));
        if out.capacity() <= SCRATCH_KEEP {
            scratch.replace(out);
        }
        body
    })
}

fn push_expiry(out: &mut Vec<u8>, expiry: Option<Expiry>) {
    match expiry {
        None => out.push(0),
        Some(Expiry::OnSessionEnd) => out.push(1),
        Some(Expiry::OnInactivity(d)) => {
            out.push(2);
            out.extend_from_slice(&d.whole_seconds().to_le_bytes());
            out.extend_from_slice(&d.subsec_nanoseconds().to_le_bytes());
        }
        Some(Expiry::AtDateTime(t)) => {
            out.push(3);
            out.extend_from_slice(&t.unix_timestamp_nanos().to_le_bytes());
            out.extend_from_slice(&t.offset().whole_seconds().to_le_bytes());
        }
    }
}

fn push_entry(out: &mut Vec<u8>, key: &str, value: &Value) {
    out.extend_from_slice(&len_bytes(key.len()));
    out.extend_from_slice(key.as_bytes());
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut *out, value).expect("JSON values always serialize");
    let len = out.len() - at - 4;
    out[at..at + 4].copy_from_slice(&len_bytes(len));
}

fn len_bytes(len: usize) -> [u8; 4] {
    // A session value of 4 GiB is beyond any cookie-sized use; refuse to wrap around.
    u32::try_from(len)
        .expect("session keys and values are under 4 GiB")
        .to_le_bytes()
}

fn corrupt() -> Corrupt {
    Corrupt(None)
}

/// Whether a body written by [`encode`] holds any entry: read from its length, without
/// parsing the expiry or an entry.
pub(crate) fn has_entries(body: &[u8]) -> bool {
    let header = match body.first() {
        Some(0 | 1) => 1,
        Some(2) => 13,
        Some(3) => 21,
        _ => return false,
    };
    body.len() > header
}

/// The expiry and the entries of a body written by [`encode`].
pub(crate) fn split(body: &[u8]) -> Result<(Option<Expiry>, Entries<'_>), Corrupt> {
    let field = |at: usize, len: usize| body.get(at..at + len).ok_or_else(corrupt);
    let (expiry, rest) = match body.first() {
        Some(0) => (None, 1),
        Some(1) => (Some(Expiry::OnSessionEnd), 1),
        Some(2) => {
            let secs = i64::from_le_bytes(field(1, 8)?.try_into().expect("8 bytes"));
            let ns = i32::from_le_bytes(field(9, 4)?.try_into().expect("4 bytes"));
            (Some(Expiry::OnInactivity(Duration::new(secs, ns))), 13)
        }
        Some(3) => {
            let ns = i128::from_le_bytes(field(1, 16)?.try_into().expect("16 bytes"));
            let off = i32::from_le_bytes(field(17, 4)?.try_into().expect("4 bytes"));
            let offset = UtcOffset::from_whole_seconds(off).map_err(|_| corrupt())?;
            let t = OffsetDateTime::from_unix_timestamp_nanos(ns).map_err(|_| corrupt())?;
            (Some(Expiry::AtDateTime(t.to_offset(offset))), 21)
        }
        _ => return Err(corrupt()),
    };
    Ok((expiry, Entries(&body[rest..])))
}

/// The entries of a body: `(key, value JSON, the whole entry's bytes)`.
#[derive(Clone)]
pub(crate) struct Entries<'a>(&'a [u8]);

impl<'a> Entries<'a> {
    /// How many entries follow, counted by their lengths alone (a corrupt body stops
    /// the count early; decoding it then reports the error).
    fn count_hint(&self) -> usize {
        let (mut rest, mut count) = (self.0, 0);
        while let Some(len) = rest.get(..4) {
            let key = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            let Some(len) = rest.get(4 + key..8 + key) else {
                break;
            };
            let value = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            let Some(next) = rest.get(8 + key + value..) else {
                break;
            };
            rest = next;
            count += 1;
        }
        count
    }

    pub(crate) fn take(&mut self) -> Result<&'a [u8], Corrupt> {
        let len = self.0.get(..4).ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let field = self.0.get(4..4 + len).ok_or_else(corrupt)?;
        self.0 = &self.0[4 + len..];
        Ok(field)
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<(&'a str, &'a [u8], &'a [u8]), Corrupt>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let whole = self.0;
        let entry = (|| {
            let key = std::str::from_utf8(self.take()?).map_err(|_| corrupt())?;
            let value = self.take()?;
            let used = whole.len() - self.0.len();
            Ok((key, value, &whole[..used]))
        })();
        if entry.is_err() {
            self.0 = &[]; // stop after the first error
        }
        Some(entry)
    }
}

/// The values of a body as a map.
pub(crate) fn values_of(raw: &[u8]) -> Result<Data, Corrupt> {
    let (_, entries) = split(raw)?;
    decode_data(entries)
}

/// The keys of a body and their values' JSON text, up to any fault.
pub(crate) fn entries_of(raw: &[u8]) -> impl Iterator<Item = (&str, &[u8])> {
    let entries = split(raw).map(|(_, entries)| entries).ok();
    entries
        .into_iter()
        .flatten()
        .map_while(Result::ok)
        .map(|(key, json, _)| (key, json))
}

/// The JSON text of `key`'s value in a body, if it holds the key (up to any fault).
pub(crate) fn json_of<'b>(raw: &'b [u8], key: &str) -> Option<&'b [u8]> {
    let (_, mut entries) = split(raw).ok()?;
    // Keys compared as bytes: no UTF-8 check of the keys passed over.
    while !entries.0.is_empty() {
        let k = Entries::take(&mut entries).ok()?;
        let json = Entries::take(&mut entries).ok()?;
        if k == key.as_bytes() {
            return Some(json);
        }
    }
    None
}

fn decode_data(entries: Entries<'_>) -> Result<Data, Corrupt> {
    // Sized up front: growing a map from empty goes through its slower resizing path.
    let mut data = Data::with_capacity(entries.count_hint());
    for entry in entries {
        let (key, json, _) = entry?;
        let value = serde_json::from_slice(json).map_err(|e| Corrupt(Some(e)))?;
        data.insert(key.to_owned(), value);
    }
    Ok(data)
}

/// `body` with `changes` applied: the changed keys rewritten from `data`, the other
/// entries copied as bytes, so keys stored meanwhile by concurrent requests of the same
/// session survive.
pub(crate) fn apply(
    body: &[u8],
    expiry: Option<Expiry>,
    data: ValuesRef<'_>,
    changes: &Changes,
) -> Result<Arc<[u8]>, Corrupt> {
    let (_, entries) = split(body)?;
    build(|out| {
        push_expiry(out, expiry);
        for entry in entries {
            let (key, _, whole) = entry?;
            if !(changes.cleared() || changes.contains(key)) {
                out.extend_from_slice(whole);
            }
        }
        for op in changes.ops_in(data) {
            if let Change::Set(key, value) = op {
                push_entry(out, key, value);
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn data(pairs: &[(&str, Value)]) -> Data {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn a_body_reads_back_whole_and_key_by_key() {
        let values = data(&[("a", json!(1)), ("b", json!({"c": [true, null]}))]);
        let expiry = Some(Expiry::OnInactivity(Duration::minutes(5)));
        let body = encode(expiry, ValuesRef::Map(&values));
        assert_eq!(split(&body).unwrap().0, expiry);
        assert_eq!(values_of(&body).unwrap(), values);
        assert_eq!(json_of(&body, "b"), Some(&br#"{"c":[true,null]}"#[..]));
        assert_eq!(json_of(&body, "nope"), None);
        let mut keys: Vec<&str> = entries_of(&body).map(|(k, _)| k).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn apply_rewrites_the_changed_keys_and_copies_the_rest() {
        let stored = data(&[("a", json!(1)), ("b", json!(2)), ("gone", json!(3))]);
        let body = encode(None, ValuesRef::Map(&stored));
        let now = data(&[("b", json!(20)), ("new", json!("x"))]);
        let changes = Changes::new(false, ["b", "new", "gone"]);
        let applied = apply(&body, None, ValuesRef::Map(&now), &changes).unwrap();
        assert_eq!(
            values_of(&applied).unwrap(),
            data(&[("a", json!(1)), ("b", json!(20)), ("new", json!("x"))])
        );
        let cleared = apply(
            &body,
            None,
            ValuesRef::Map(&now),
            &Changes::new(true, ["b"]),
        )
        .unwrap();
        assert_eq!(values_of(&cleared).unwrap(), data(&[("b", json!(20))]));
    }

    #[test]
    fn a_corrupt_body_is_an_error_never_a_panic() {
        let body = encode(None, ValuesRef::Map(&data(&[("a", json!(1))])));
        for cut in 0..body.len() {
            let short = &body[..cut];
            let _ = values_of(short);
            let _ = json_of(short, "a");
            let _ = entries_of(short).count();
        }
        assert!(values_of(&[9]).is_err(), "an unknown expiry tag");
        assert!(values_of(&[]).is_err());
    }

    #[test]
    fn a_body_holds_entries_exactly_when_it_has_values() {
        let one = data(&[("a", json!(1))]);
        let date = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for expiry in [
            None,
            Some(Expiry::OnSessionEnd),
            Some(Expiry::OnInactivity(Duration::minutes(5))),
            Some(Expiry::AtDateTime(date)),
        ] {
            let empty = encode(expiry, ValuesRef::Map(&Data::default()));
            assert!(!has_entries(&empty), "{expiry:?}");
            assert_eq!(entries_of(&empty).count(), 0);
            assert!(
                has_entries(&encode(expiry, ValuesRef::Map(&one))),
                "{expiry:?}"
            );
        }
        assert!(!has_entries(&[]));
        assert!(!has_entries(&[9, 0, 0, 0, 0]), "an unknown expiry tag");
    }
}
