//! [`Changes`]: what a request changed in a session, so a store can write only that.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;
use smallvec::SmallVec;

use super::reserved::USER_KEY;
use super::values::ValuesRef;
use super::Data;

/// What a request changed in a session, so a store can write only that.
///
/// Apply in order: when [`cleared`](Self::cleared), remove every value first; then set
/// or remove each key of [`ops`](Self::ops).
#[derive(Clone, Debug, Default)]
pub struct Changes {
    cleared: bool,
    /// Distinct keys, in the order they first changed. A request changes a handful of
    /// keys, so a list beats hashing every key again (the values' map hashes them once).
    /// The first is held inline: a request that changes one key (most that change any)
    /// allocates only its name.
    keys: SmallVec<[String; 1]>,
    /// The same keys, hashed, once there are more than [`SCAN_LIMIT`]: finding a key
    /// stays O(1) however many keys a request changes.
    /// Boxed: most requests never build it, and a small `Changes` keeps every
    /// request's session state small.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashSet<String>>>,
    /// At least the key and JSON bytes of every value set, when every key was marked
    /// with its size (`unsized` false): a store can bound a save's work without
    /// measuring the values again.
    set_bytes: usize,
    unsized_marks: bool,
    /// The user binding ([`USER_KEY`](super::USER_KEY)) is among the keys: a store that
    /// indexes bindings checks this flag instead of the list.
    user: bool,
}

/// Up to this many changed keys are found by scanning the list.
const SCAN_LIMIT: usize = 16;

impl PartialEq for Changes {
    /// The same keys in any order.
    fn eq(&self, other: &Self) -> bool {
        self.cleared == other.cleared
            && self.keys.len() == other.keys.len()
            && self.keys.iter().all(|k| other.contains(k))
    }
}

impl Eq for Changes {}

/// One key's change, from [`Changes::ops`]. Its `Debug` never shows the value.
#[derive(Clone, Copy, PartialEq)]
pub enum Change<'a> {
    /// The key now holds this value.
    Set(&'a str, &'a Value),
    /// The key no longer exists.
    Remove(&'a str),
}

impl fmt::Debug for Change<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Set(k, _) => f.debug_tuple("Set").field(k).field(&"REDACTED").finish(),
            Change::Remove(k) => f.debug_tuple("Remove").field(k).finish(),
        }
    }
}

impl Changes {
    /// A change set: every value removed first when `cleared`, then `keys` set or removed.
    pub fn new<K: Into<String>>(cleared: bool, keys: impl IntoIterator<Item = K>) -> Self {
        let mut changes = Changes {
            cleared,
            ..Changes::default()
        };
        for key in keys {
            changes.mark(&key.into());
        }
        changes
    }

    /// The change from `before` to `after`: the keys added, changed or removed.
    pub fn between(before: &Data, after: &Data) -> Self {
        let changed = after.iter().filter(|(k, v)| before.get(k) != Some(*v));
        let removed = before.keys().filter(|k| !after.contains_key(k));
        let keys = changed.map(|(k, _)| k.clone()).chain(removed.cloned());
        Changes::new(false, keys)
    }

    /// Whether every value was removed before the keys of [`ops`](Self::ops) were set.
    pub fn cleared(&self) -> bool {
        self.cleared
    }

    /// Whether the data did not change at all.
    pub fn is_empty(&self) -> bool {
        !self.cleared && self.keys.is_empty()
    }

    /// The changed keys with their new state, read from `data` (the record's values
    /// after the change).
    pub fn ops<'a>(&'a self, data: &'a Data) -> impl Iterator<Item = Change<'a>> {
        self.ops_in(ValuesRef::Map(data))
    }

    /// [`ops`](Self::ops) over the engine's values, inline or a map.
    pub(crate) fn ops_in<'a>(&'a self, data: ValuesRef<'a>) -> impl Iterator<Item = Change<'a>> {
        self.keys
            .iter()
            .map(move |k| match data.get_key_value(k.as_str()) {
                Some((k, v)) => Change::Set(k, v),
                None => Change::Remove(k),
            })
    }

    /// Applies these changes to `target`, given the values after the change.
    pub fn apply_to(&self, target: &mut Data, data: &Data) {
        if self.cleared {
            target.clear();
        }
        for op in self.ops(data) {
            match op {
                Change::Set(k, v) => {
                    target.insert(k.to_owned(), v.clone());
                }
                Change::Remove(k) => {
                    target.remove(k);
                }
            }
        }
    }

    /// The changed keys, in the order they first changed.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    /// Whether `key` is among the changed keys.
    pub(crate) fn contains(&self, key: &str) -> bool {
        match &self.index {
            Some(index) => index.contains(key),
            None => self.keys.iter().any(|k| k == key),
        }
    }

    pub(crate) fn mark(&mut self, key: &str) {
        self.unsized_marks = true;
        self.mark_key(key);
    }

    /// Marks `key`, set to a value whose key and JSON take `bytes` (0 for a removal).
    pub(crate) fn mark_sized(&mut self, key: &str, bytes: usize) {
        self.set_bytes += bytes;
        self.mark_key(key);
    }

    /// How many keys changed.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// At least the key and JSON bytes of the values set, if known without measuring.
    pub(crate) fn set_bytes(&self) -> Option<usize> {
        (!self.unsized_marks).then_some(self.set_bytes)
    }

    /// Whether the user binding ([`USER_KEY`](super::USER_KEY)) changed, or every value
    /// was removed (the binding with them).
    pub fn user_changed(&self) -> bool {
        self.cleared || self.user
    }

    fn mark_key(&mut self, key: &str) {
        if self.contains(key) {
            return;
        }
        self.user |= key == USER_KEY;
        self.keys.push(key.to_owned());
        match &mut self.index {
            Some(index) => {
                index.insert(key.to_owned());
            }
            None if self.keys.len() > SCAN_LIMIT => {
                self.index = Some(Box::new(self.keys.iter().cloned().collect()));
            }
            None => {}
        }
    }

    pub(crate) fn clear(&mut self) {
        self.cleared = true;
        self.keys.clear();
        self.index = None;
        self.user = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_set_knows_its_size_only_when_every_key_was_sized() {
        let mut c = Changes::default();
        assert_eq!(c.set_bytes(), Some(0));
        c.mark_sized("a", 10);
        c.mark_sized("b", 0);
        c.mark_sized("a", 5); // set again: still at least what it holds now
        assert_eq!((c.set_bytes(), c.len()), (Some(15), 2));
        c.mark("c");
        assert_eq!(
            c.set_bytes(),
            None,
            "an unsized mark makes the size unknown"
        );
        assert_eq!(Changes::new(false, ["x"]).set_bytes(), None);
    }

    #[test]
    fn changes_apply_in_order() {
        let mut c = Changes::default();
        assert!(c.is_empty());
        c.clear();
        c.mark("a");
        c.mark("gone");
        let after: Data = [("a".to_string(), json!(1))].into_iter().collect();
        let mut target: Data = [
            ("old".to_string(), json!(0)),
            ("gone".to_string(), json!(2)),
        ]
        .into_iter()
        .collect();
        c.apply_to(&mut target, &after);
        assert_eq!(target, after);
        assert!(!c.is_empty());
        let mut ops: Vec<_> = c.ops(&after).collect();
        ops.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(
            ops,
            vec![Change::Remove("gone"), Change::Set("a", &json!(1))]
        );
    }

    #[test]
    fn many_keys_are_tracked_once_each() {
        let mut c = Changes::default();
        for round in 0..2 {
            for i in 0..1_000 {
                c.mark(&format!("k{i}"));
            }
            assert_eq!(c.keys.len(), 1_000, "round {round}: no key twice");
        }
        assert!(c.index.is_some(), "hashed past the scan limit");
        assert!(c.contains("k999") && c.contains("k0") && !c.contains("k1000"));
        assert_eq!(c.keys[0], "k0", "in the order they first changed");
        c.clear();
        assert!(c.index.is_none() && !c.contains("k0") && c.cleared());
        c.mark("k0");
        assert!(c.contains("k0"));
        let many = Changes::new(false, (0..100).chain(0..100).map(|i| i.to_string()));
        assert_eq!(
            many,
            Changes::new(false, (0..100).rev().map(|i| i.to_string()))
        );
    }

    #[test]
    fn between_finds_added_changed_and_removed_keys() {
        let before: Data = [
            ("same".to_string(), json!(1)),
            ("changed".to_string(), json!(1)),
            ("gone".to_string(), json!(1)),
        ]
        .into_iter()
        .collect();
        let after: Data = [
            ("same".to_string(), json!(1)),
            ("changed".to_string(), json!(2)),
            ("new".to_string(), json!(3)),
        ]
        .into_iter()
        .collect();
        let c = Changes::between(&before, &after);
        assert_eq!(c, Changes::new(false, ["changed", "gone", "new"]));
        assert!(Changes::between(&after, &after).is_empty());
    }
}
