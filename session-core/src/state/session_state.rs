//! The state of one request's session, behind the handle's lock: what it holds, what
//! changed, and what a handler may and may not write into it.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use time::OffsetDateTime;

use super::{is_reserved, json_len, packed, Binding, Changes, Data, Values, USER_KEY};
use crate::cookie::Limits;
use crate::expiry::Expiry;
use crate::id::Id;

/// What happened to a session during a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Nothing was changed.
    Unchanged,
    /// Values or the expiry changed.
    Changed,
    /// [`Session::cycle_id`](crate::Session::cycle_id) was called: the session gets a new id, keeping its data.
    Renewed,
    /// [`Session::flush`](crate::Session::flush) was called: the session is deleted.
    Purged,
}

/// Errors of the [`Session`](crate::Session) accessors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value could not be converted to or from JSON.
    #[error("session value for key {key:?} could not be converted")]
    Value {
        /// The key whose value failed.
        key: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The key is reserved for the engine's own use ([`EXPIRY_KEY`](super::EXPIRY_KEY),
    /// [`USER_KEY`](super::USER_KEY)); the session is left as it was.
    #[error("the session key {key:?} is reserved for the session engine; pick another name")]
    ReservedKey {
        /// The key.
        key: String,
    },
    /// The value nests arrays and objects deeper than [`MAX_DEPTH`] levels, more than
    /// every store can read back; the session is left as it was.
    #[error("session value for key {key:?} nests more than {limit} levels of arrays and objects")]
    TooDeep {
        /// The key.
        key: String,
        /// The limit, [`MAX_DEPTH`].
        limit: usize,
    },
    /// The change would take the session past one of its [`Limits`]; the session is
    /// left as it was.
    #[error(
        "session value for key {key:?} would take the session past its limit of {limit} {what}"
    )]
    Limit {
        /// The key whose insert was refused.
        key: String,
        /// Which limit: `"keys"` or `"bytes"`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A user binding was refused: an empty or too long user id or label
    /// ([`MAX_USER_LEN`](super::MAX_USER_LEN),
    /// [`MAX_LABEL_LEN`](super::MAX_LABEL_LEN)), or a label for a session with no
    /// user. The session is left as it was.
    #[error("session user binding refused: {0}")]
    User(&'static str),
}

#[derive(Debug)]
pub(crate) struct State {
    /// The id of the stored record, when there is one.
    pub(crate) stored: Option<Stored>,
    /// The values; while `raw` is held, only those this request set, over it.
    pub(crate) data: Values,
    /// The loaded record's body, its values not parsed yet (`MemoryStore` called
    /// directly). A key this request changed (in `changes`) is answered by `data`, or
    /// is gone; any other key by the body. Reads of single keys ([`lookup`]) and writes
    /// ([`set`], [`remove`]) parse only their key; anything that wants the values as a
    /// map ([`values_mut`](Self::values_mut)) parses them all into `data` first.
    ///
    /// [`lookup`]: Self::lookup
    /// [`set`]: Self::set
    /// [`remove`]: Self::remove
    pub(crate) raw: Option<Arc<[u8]>>,
    /// The expiry set by a handler (or loaded with the record); `None`: the configured one.
    pub(crate) expiry: Option<Expiry>,
    pub(crate) changes: Changes,
    pub(crate) expiry_changed: bool,
    pub(crate) renew: bool,
    pub(crate) purge: bool,
    /// The loaded session's id was verified with an old key: re-issue its cookie.
    pub(crate) stale_key: bool,
    /// The bytes `data` takes as JSON ([`entry_bytes`]); measured on the first insert
    /// of a request, then kept up to date, so requests that only read pay nothing.
    pub(crate) bytes: Option<usize>,
}

/// A value found by [`State::lookup`].
pub(crate) enum Found<'a> {
    Value(&'a Value),
    Json(&'a [u8]),
}

impl Found<'_> {
    /// The value, parsed if it is JSON text.
    pub(crate) fn to_value(&self) -> Option<Value> {
        match self {
            Found::Value(v) => Some((*v).clone()),
            Found::Json(j) => serde_json::from_slice(j).ok(),
        }
    }
}

/// A loaded value's JSON, parsed, with the bytes it takes ([`entry_bytes`]).
fn parsed(key: &str, json: &[u8]) -> Option<(Value, usize)> {
    let value = serde_json::from_slice(json).ok()?;
    Some((value, key.len() + json.len()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) id: Id,
    pub(crate) expires_at: OffsetDateTime,
}

impl State {
    pub(crate) fn empty() -> Self {
        State {
            stored: None,
            data: Values::default(),
            raw: None,
            expiry: None,
            changes: Changes::default(),
            expiry_changed: false,
            renew: false,
            purge: false,
            stale_key: false,
            bytes: None,
        }
    }

    pub(crate) fn status(&self) -> Status {
        if self.purge {
            Status::Purged
        } else if self.renew {
            Status::Renewed
        } else if !self.changes.is_empty() || self.expiry_changed {
            Status::Changed
        } else {
            Status::Unchanged
        }
    }

    /// The values as a map, parsed from `raw` first if they were not yet.
    pub(crate) fn values_mut(&mut self) -> &mut Data {
        if let Some(raw) = self.raw.take() {
            // `raw` is the store's own encoding of values it checked when they were
            // written: a fault here is a bug, not input.
            match packed::values_of(&raw) {
                Ok(mut loaded) => {
                    for key in self.changes.keys() {
                        loaded.remove(key);
                    }
                    match std::mem::take(&mut self.data) {
                        Values::Few(few) => loaded.extend(few),
                        Values::Map(map) => loaded.extend(map),
                    }
                    self.data = Values::Map(loaded);
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "undecodable in-memory session record: its values are dropped"
                ),
            }
        }
        self.data.map_mut()
    }

    /// `key`'s value, as parsed JSON or, from the loaded body, as its text.
    pub(crate) fn lookup(&self, key: &str) -> Option<Found<'_>> {
        if let Some(value) = self.data.get(key) {
            return Some(Found::Value(value));
        }
        self.loaded_json(key).map(Found::Json)
    }

    /// `key`'s JSON in the loaded body, unless this request changed the key.
    pub(crate) fn loaded_json(&self, key: &str) -> Option<&[u8]> {
        let raw = self.raw.as_ref()?;
        if self.changes.contains(key) {
            return None;
        }
        packed::json_of(raw, key)
    }

    /// `key`'s loaded value, parsed, and the bytes it takes ([`entry_bytes`]).
    pub(crate) fn loaded_value(&self, key: &str) -> Option<(Value, usize)> {
        parsed(key, self.loaded_json(key)?)
    }

    /// The loaded body's keys this request did not change, with their values' JSON.
    pub(crate) fn loaded_entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.raw
            .iter()
            .flat_map(|raw| packed::entries_of(raw))
            .filter(|(k, _)| !self.changes.contains(k))
    }

    /// One pass over the loaded values this request did not change: the bytes of those
    /// other than `key`, how many there are, and `key`'s JSON if it is among them.
    pub(crate) fn loaded_scan(&self, key: &str) -> (usize, usize, Option<&[u8]>) {
        let (mut bytes, mut count, mut found) = (0, 0, None);
        // Not `loaded_entries`: through its filter adapter, this loop costs about 70
        // instructions more per value (callgrind, `engine-count counter`).
        let entries = self.raw.iter().flat_map(|raw| packed::entries_of(raw));
        for (k, json) in entries {
            if self.changes.contains(k) {
                continue;
            }
            count += 1;
            if k == key {
                found = Some(json);
            } else {
                bytes += k.len() + json.len();
            }
        }
        (bytes, count, found)
    }

    /// Whether the session holds no value at all, the binding included.
    pub(crate) fn holds_nothing(&self) -> bool {
        if !self.data.is_empty() {
            return false;
        }
        match &self.raw {
            None => true,
            // Nothing changed: the body answers for every key it holds.
            Some(raw) if self.changes.is_empty() => !packed::has_entries(raw),
            Some(_) => self.loaded_entries().next().is_none(),
        }
    }

    pub(crate) fn set(
        &mut self,
        key: &str,
        value: Value,
        limits: Limits,
    ) -> Result<Option<Value>, Error> {
        if is_reserved(key) {
            return Err(Error::ReservedKey {
                key: key.to_owned(),
            });
        }
        self.set_unchecked(key, value, limits)
    }

    /// [`set`](Self::set) without refusing the reserved keys: for the engine's own.
    pub(crate) fn set_unchecked(
        &mut self,
        key: &str,
        value: Value,
        limits: Limits,
    ) -> Result<Option<Value>, Error> {
        if too_deep(&value, MAX_DEPTH) {
            return Err(Error::TooDeep {
                key: key.to_owned(),
                limit: MAX_DEPTH,
            });
        }
        let limit = |what, limit| Error::Limit {
            key: key.to_owned(),
            what,
            limit,
        };
        // The key's current value, if this request set it: replaced in place.
        let set = self
            .data
            .get(key)
            .map(|v| (*v == value, entry_bytes(key, v)));
        if let Some((true, _)) = set {
            return Ok(Some(value));
        }
        // The loaded body, when there is one and it is needed: one pass gives the
        // unchanged loaded values' bytes and count, and the key's loaded value.
        let scan = self.raw.is_some() && (self.bytes.is_none() || set.is_none());
        let (loaded_bytes, loaded_count, loaded) = if scan {
            let (bytes, count, json) = self.loaded_scan(key);
            (bytes, count, json.and_then(|j| parsed(key, j)))
        } else {
            (0, 0, None)
        };
        if let Some((old, _)) = &loaded {
            if *old == value {
                return Ok(Some(value));
            }
        }
        // On the request's first insert, the rest of the session is measured once.
        let measured = self.bytes.is_none().then(|| {
            let set: usize = (self.data.iter())
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| entry_bytes(k, v))
                .sum();
            set + loaded_bytes
        });
        let current = set
            .map(|(_, bytes)| bytes)
            .or(loaded.as_ref().map(|(_, b)| *b));
        let others = match current {
            Some(bytes) => measured.unwrap_or_else(|| self.bytes.unwrap_or(0) - bytes),
            None if self.data.len() + loaded_count >= limits.max_keys => {
                return Err(limit("keys", limits.max_keys))
            }
            None => measured.unwrap_or_else(|| self.bytes.unwrap_or(0)),
        };
        let added = entry_bytes(key, &value);
        let total = others + added;
        if total > limits.max_bytes {
            return Err(limit("bytes", limits.max_bytes));
        }
        self.bytes = Some(total);
        self.changes.mark_sized(key, added);
        Ok(match self.data.get_mut(key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.data.insert_new(key.to_owned(), value);
                loaded.map(|(old, _)| old)
            }
        })
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        let old = match self.data.remove(key) {
            Some(old) => old,
            None => self.loaded_value(key)?.0,
        };
        if let Some(total) = &mut self.bytes {
            *total -= entry_bytes(key, &old);
        }
        self.changes.mark_sized(key, 0);
        Some(old)
    }

    /// The number of application values (the binding not counted).
    pub(crate) fn values(&mut self) -> usize {
        let data = self.values_mut();
        data.len() - usize::from(data.contains_key(USER_KEY))
    }

    /// The user binding, if the session has one.
    pub(crate) fn user(&mut self) -> Option<&str> {
        Binding::user_of(self.values_mut().get(USER_KEY)?)
    }

    /// Empties the data (the caller records the change).
    pub(crate) fn clear_data(&mut self) {
        self.raw = None;
        self.data.clear();
        self.bytes = Some(0);
    }
}

/// How many levels of arrays and objects a session value may nest. serde_json reads at
/// most 127 in one document, and stores that keep a session as one document (several
/// tower-sessions stores) put values a few levels down: 100 leaves room for all of them.
pub const MAX_DEPTH: usize = 100;

/// Whether `value` nests more than `limit` levels of arrays and objects.
fn too_deep(value: &Value, limit: usize) -> bool {
    match value {
        Value::Array(items) => limit == 0 || items.iter().any(|v| too_deep(v, limit - 1)),
        Value::Object(map) => limit == 0 || map.values().any(|v| too_deep(v, limit - 1)),
        _ => false,
    }
}

/// What one value counts against [`Limits::max_bytes`]: its key and its JSON text.
fn entry_bytes(key: &str, value: &Value) -> usize {
    key.len() + json_len(value)
}

pub(crate) fn value_error(key: &str, source: serde_json::Error) -> Error {
    Error::Value {
        key: key.to_owned(),
        source,
    }
}

pub(crate) fn new_state_mutex() -> Mutex<State> {
    Mutex::new(State::empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn depth_is_counted_in_containers() {
        let nest = |d: usize| -> serde_json::Value {
            serde_json::from_str(&("[".repeat(d) + &"]".repeat(d))).unwrap()
        };
        assert!(!super::too_deep(&json!(1), 0));
        assert!(!super::too_deep(&nest(100), 100));
        assert!(super::too_deep(&nest(101), 100));
        assert!(super::too_deep(&json!({"a": {"b": [[1]]}}), 3));
        assert!(!super::too_deep(&json!({"a": {"b": [[1]]}}), 4));
        // What is accepted reads back through JSON text with room to spare.
        let text = serde_json::to_string(&json!({"record": {"data": nest(super::MAX_DEPTH)}}));
        assert!(serde_json::from_str::<serde_json::Value>(&text.unwrap()).is_ok());
    }
}
