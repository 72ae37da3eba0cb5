//! Session values as native Aerospike values, and back, without loss.
//!
//! JSON null, booleans, integers, floats, strings, arrays and objects become Aerospike
//! nil, booleans, integers, floats, strings, lists and maps, so code reading the record
//! with any Aerospike client sees ordinary data. The one JSON value Aerospike has no type
//! for, an unsigned integer above `i64::MAX`, is kept as a 9-byte blob (`b'u'` and the
//! big-endian bytes).

use std::collections::HashMap;

use aerospike::Value;
use serde_json::{Map, Number, Value as Json};

/// Why a stored value is not session data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored session value is not JSON-compatible: {0}")]
pub struct DecodeError(pub(crate) String);

/// A JSON value as an Aerospike value.
pub fn to_aerospike(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                let mut blob = vec![b'u'];
                blob.extend_from_slice(&u.to_be_bytes());
                Value::Blob(blob)
            } else {
                Value::from(n.as_f64().expect("a JSON number is i64, u64 or f64"))
            }
        }
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::List(a.iter().map(to_aerospike).collect()),
        Json::Object(o) => Value::HashMap(map_to_aerospike(o.iter())),
    }
}

/// JSON object entries as an Aerospike map with string keys.
pub fn map_to_aerospike<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Json)>,
) -> HashMap<Value, Value> {
    entries
        .map(|(k, v)| (Value::String(k.clone()), to_aerospike(v)))
        .collect()
}

/// An Aerospike value as JSON.
///
/// # Errors
///
/// A value JSON cannot hold: a float that is not finite, a map key that is not a string
/// or an integer, or a type sessions never write (GeoJSON, HyperLogLog, ...).
pub fn to_json(v: &Value) -> Result<Json, DecodeError> {
    Ok(match v {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::Float(f) => {
            let f = f64::from(f);
            Json::Number(Number::from_f64(f).ok_or_else(|| DecodeError(format!("float {f}")))?)
        }
        Value::String(s) => Json::String(s.clone()),
        Value::Blob(b) if b.len() == 9 && b[0] == b'u' => {
            let bytes: [u8; 8] = b[1..].try_into().expect("8 bytes");
            Json::Number(u64::from_be_bytes(bytes).into())
        }
        Value::List(l) => Json::Array(l.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::HashMap(m) => Json::Object(map_to_json(m.iter())?),
        Value::OrderedMap(m) => Json::Object(map_to_json(m.iter())?),
        Value::SortedMap(m) => Json::Object(map_to_json(m.iter())?),
        other => return Err(DecodeError(format!("unsupported value {other:?}"))),
    })
}

/// Aerospike map entries as a JSON object.
///
/// # Errors
///
/// As [`to_json`].
pub fn map_to_json<'a>(
    entries: impl Iterator<Item = (&'a Value, &'a Value)>,
) -> Result<Map<String, Json>, DecodeError> {
    entries
        .map(|(k, v)| {
            let key = match k {
                Value::String(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                other => return Err(DecodeError(format!("map key {other:?}"))),
            };
            Ok((key, to_json(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_json_value_round_trips() {
        let v = json!({
            "null": null, "t": true, "f": false, "int": -42, "big": u64::MAX,
            "max": i64::MAX, "min": i64::MIN, "float": 1.5, "one": 1.0, "tiny": 1e-300,
            "s": "héllo", "empty": "", "list": [1, "two", null, [3.5], {"k": "v"}],
            "nested": {"a": {"b": {"c": [true]}}}, "emptyobj": {}, "emptylist": []
        });
        let back = to_json(&to_aerospike(&v)).unwrap();
        assert_eq!(back, v);
        // 1.0 stays a float, 1 stays an integer.
        assert!(back["one"].is_f64());
        assert!(back["int"].is_i64());
    }

    #[test]
    fn foreign_values_are_errors_not_panics() {
        assert!(to_json(&Value::GeoJson("{}".into())).is_err());
        let mut m = HashMap::new();
        m.insert(Value::Bool(true), Value::Nil);
        assert!(to_json(&Value::HashMap(m)).is_err());
        assert!(to_json(&Value::from(f64::NAN)).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(|i| Json::Number(i.into())),
            any::<u64>().prop_map(|u| Json::Number(u.into())),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| Json::Number(Number::from_f64(f).unwrap())),
            ".*".prop_map(Json::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Json::Array),
                proptest::collection::btree_map(".*", inner, 0..8)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn any_json_value_round_trips(v in json()) {
            prop_assert_eq!(to_json(&to_aerospike(&v)).unwrap(), v);
        }
    }
}
