//! [`Data`]: a session's values by key.

use std::collections::hash_map;
use std::collections::HashMap;
use std::fmt;
use std::ops::Index;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The map inside [`Data`]: foldhash, seeded at random per map. A request hashes its
/// session's keys several times (loading, reading, writing), and SipHash, the standard
/// map's hasher, cost about 160 instructions per short key where this costs a fraction of
/// it. The keys are chosen by the application, not by its clients; the random seed keeps
/// them from being aimed at one bucket all the same.
type Map = HashMap<String, Value, foldhash::fast::RandomState>;

/// A session's values by key, as a [`Record`](crate::Record) holds them: a map from
/// `String` to [`serde_json::Value`], built like one (`collect`, `insert`, `extend`) and
/// read like one (`get`, `iter`, `data["key"]`). Its hasher is its own business. Its
/// `Debug` shows the keys, never the values. Serialized as a JSON object.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Data(Map);

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&String> = self.0.keys().collect();
        keys.sort();
        f.debug_set().entries(keys).finish()
    }
}

impl Data {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for `capacity` values.
    pub fn with_capacity(capacity: usize) -> Self {
        Data(Map::with_capacity_and_hasher(capacity, Default::default()))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The value of `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.get_mut(key)
    }

    /// The key as stored and its value.
    pub fn get_key_value(&self, key: &str) -> Option<(&String, &Value)> {
        self.0.get_key_value(key)
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.0.insert(key, value)
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// How many values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Keeps only the values `keep` says yes to.
    pub fn retain(&mut self, keep: impl FnMut(&String, &mut Value) -> bool) {
        self.0.retain(keep);
    }

    /// The keys, in no particular order.
    pub fn keys(&self) -> hash_map::Keys<'_, String, Value> {
        self.0.keys()
    }

    /// The values, in no particular order.
    pub fn values(&self) -> hash_map::Values<'_, String, Value> {
        self.0.values()
    }

    /// The keys and values, in no particular order.
    pub fn iter(&self) -> hash_map::Iter<'_, String, Value> {
        self.0.iter()
    }
}

impl Index<&str> for Data {
    type Output = Value;

    /// The value of `key`.
    ///
    /// # Panics
    ///
    /// When `key` has no value, as a map does.
    fn index(&self, key: &str) -> &Value {
        &self.0[key]
    }
}

impl FromIterator<(String, Value)> for Data {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Data(iter.into_iter().collect())
    }
}

impl Extend<(String, Value)> for Data {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for Data {
    type Item = (String, Value);
    type IntoIter = hash_map::IntoIter<String, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Data {
    type Item = (&'a String, &'a Value);
    type IntoIter = hash_map::Iter<'a, String, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_writes_and_serializes_as_a_json_object() {
        let mut data: Data = [("a".to_string(), json!(1))].into_iter().collect();
        data.insert("b".into(), json!({"c": true}));
        assert_eq!(data["a"], json!(1));
        assert_eq!(data.get("b"), Some(&json!({"c": true})));
        assert_eq!(data.len(), 2);
        let text = serde_json::to_string(&data).unwrap();
        let back: Data = serde_json::from_str(&text).unwrap();
        assert_eq!(back, data);
        assert_eq!(
            serde_json::to_value(&data).unwrap(),
            json!({"a": 1, "b": {"c": true}})
        );
        assert_eq!(data.remove("a"), Some(json!(1)));
        assert!(!data.contains_key("a"));
    }

    #[test]
    fn debug_shows_keys_never_values() {
        let data: Data = [("token".to_string(), json!("s3cret"))]
            .into_iter()
            .collect();
        let shown = format!("{data:?}");
        assert!(shown.contains("token"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
