//! [`Values`]: a request's session values, kept inline while they are few.

use serde_json::Value;
use smallvec::SmallVec;

use super::Data;

/// How many values [`Values`] keeps inline before it moves them into a [`Data`] map.
const FEW: usize = 2;

/// The values a request's session holds: those it set over a loaded `MemoryStore`
/// body, a new session's, or (once a store or a caller wants them all) the whole map.
///
/// A request sets a key or two. Kept inline, those cost no table to allocate, hash
/// into and free; past [`FEW`] values, and whenever the values come or go as a map,
/// they are one. Inline room is kept small: it is part of every request's state, which
/// is moved into its allocation whole.
#[derive(Debug)]
pub(crate) enum Values {
    Few(SmallVec<[(String, Value); FEW]>),
    Map(Data),
}

impl Default for Values {
    fn default() -> Self {
        Values::Few(SmallVec::new())
    }
}

impl Values {
    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.as_ref().get(key)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Values::Few(few) => few.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            Values::Map(map) => map.get_mut(key),
        }
    }

    /// Sets `key`, which the caller found absent ([`get_mut`](Self::get_mut)).
    pub(crate) fn insert_new(&mut self, key: String, value: Value) {
        match self {
            Values::Few(few) if few.len() < FEW => few.push((key, value)),
            _ => {
                self.map_mut().insert(key, value);
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        match self {
            Values::Few(few) => {
                let at = few.iter().position(|(k, _)| k == key)?;
                Some(few.swap_remove(at).1)
            }
            Values::Map(map) => map.remove(key),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Values::Few(few) => few.len(),
            Values::Map(map) => map.len(),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn clear(&mut self) {
        *self = Values::default();
    }

    #[inline]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.as_ref().iter()
    }

    /// The values as a map, moved into one first if they were inline.
    pub(crate) fn map_mut(&mut self) -> &mut Data {
        if let Values::Few(few) = self {
            let mut map = Data::with_capacity(few.len() + 1);
            map.extend(few.drain(..));
            *self = Values::Map(map);
        }
        match self {
            Values::Map(map) => map,
            Values::Few(_) => unreachable!("moved into a map above"),
        }
    }

    /// A copy of the values, as a map.
    pub(crate) fn to_data(&self) -> Data {
        match self {
            Values::Map(map) => map.clone(),
            Values::Few(few) => few.iter().cloned().collect(),
        }
    }

    #[inline]
    pub(crate) fn as_ref(&self) -> ValuesRef<'_> {
        match self {
            Values::Few(few) => ValuesRef::Few(few),
            Values::Map(map) => ValuesRef::Map(map),
        }
    }
}

/// Borrowed values, as a save or create reads them: the engine's [`Values`], or a
/// [`Record`](crate::Record)'s map.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ValuesRef<'a> {
    Few(&'a [(String, Value)]),
    Map(&'a Data),
}

impl<'a> ValuesRef<'a> {
    #[inline]
    pub(crate) fn get(self, key: &str) -> Option<&'a Value> {
        self.get_key_value(key).map(|(_, v)| v)
    }

    #[inline]
    pub(crate) fn get_key_value(self, key: &str) -> Option<(&'a str, &'a Value)> {
        match self {
            ValuesRef::Few(few) => few
                .iter()
                .find(|(k, _)| k == key)
                .map(|(k, v)| (k.as_str(), v)),
            ValuesRef::Map(map) => map.get_key_value(key).map(|(k, v)| (k.as_str(), v)),
        }
    }

    #[inline]
    pub(crate) fn iter(self) -> impl Iterator<Item = (&'a str, &'a Value)> {
        let (few, map): (&[(String, Value)], _) = match self {
            ValuesRef::Few(few) => (few, None),
            ValuesRef::Map(map) => (&[], Some(map)),
        };
        let few = few.iter().map(|(k, v)| (k.as_str(), v));
        few.chain(map.into_iter().flatten().map(|(k, v)| (k.as_str(), v)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Values, FEW};

    /// The same operations on `Values` and on a plain map, past the inline limit and
    /// back, agree at every step.
    #[test]
    fn agrees_with_a_map_inline_and_past_it() {
        let mut values = Values::default();
        let mut map = std::collections::HashMap::new();
        let keys: Vec<String> = (0..FEW + 3).map(|i| format!("k{i}")).collect();
        for (i, key) in keys.iter().enumerate() {
            assert!(values.get_mut(key).is_none());
            values.insert_new(key.clone(), json!(i));
            map.insert(key.clone(), json!(i));
            assert_eq!(
                matches!(values, Values::Few(_)),
                i < FEW,
                "after {} keys",
                i + 1
            );
            *values.get_mut(&keys[0]).expect("the first key") = json!(i * 10);
            map.insert(keys[0].clone(), json!(i * 10));
            assert_eq!(values.len(), map.len());
            assert_eq!(
                values
                    .to_data()
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
                map
            );
        }
        assert_eq!(values.remove("k1"), map.remove("k1"));
        assert_eq!(values.remove("k1"), None);
        let mut seen: Vec<(String, serde_json::Value)> = values
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want: Vec<_> = map.clone().into_iter().collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(seen, want);
        assert_eq!(values.as_ref().get("k2"), map.get("k2"));
        values.clear();
        assert!(values.is_empty() && matches!(values, Values::Few(_)));
    }

    #[test]
    fn inline_values_remove_and_move_into_a_map() {
        let mut values = Values::default();
        values.insert_new("a".into(), json!(1));
        values.insert_new("b".into(), json!(2));
        assert_eq!(values.remove("a"), Some(json!(1)));
        assert_eq!(values.as_ref().get_key_value("b"), Some(("b", &json!(2))));
        let map = values.map_mut();
        assert_eq!(map.len(), 1);
        map.insert("c".into(), json!(3));
        assert!(matches!(values, Values::Map(_)));
        let mut all: Vec<_> = values.to_data().into_iter().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(all, vec![("b".into(), json!(2)), ("c".into(), json!(3))]);
    }
}
