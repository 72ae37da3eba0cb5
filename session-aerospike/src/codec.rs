//! Session values as native Aerospike values, and back, without loss.
//!
//! JSON null, booleans, integers, floats, strings, arrays and objects become Aerospike
//! nil, booleans, integers, floats, strings, lists and maps, so code reading the record
//! with any Aerospike client sees ordinary data. The one JSON value Aerospike has no type
//! for, an unsigned integer above `i64::MAX`, is kept as a 9-byte blob (`b'u'` and the
//! big-endian bytes).

use std::collections::HashMap;

use aerospike::Value;
use indexmap::IndexMap;
use serde_json::{Map, Number, Value as Json};
use session_core::{Expiry, Id, Record, StoreError};
use time::OffsetDateTime;

use crate::{BinNames, FORMAT_VERSION};

/// A stored record's bins as a session [`Record`], or `None` when its `expires` bin is
/// not after `now` (Unix nanoseconds) or the session has ended (an `ended` bin).
///
/// Reads every format version this crate has written: version 2 keeps `expires` in Unix
/// nanoseconds, version 1 kept it in whole seconds (rounded up).
///
/// # Errors
///
/// [`StoreError::Decode`] for anything that is not this crate's format: a missing or
/// unsupported version, a missing `expires`, a `data` bin that is not a map of
/// JSON-compatible values, an unreadable `expiry`.
pub fn decode_record(
    names: &BinNames,
    id: &Id,
    bins: &IndexMap<String, Value>,
    now: i64,
) -> Result<Option<Record>, StoreError> {
    let decode_err = |why: String| StoreError::Decode(why.into());
    if bins.contains_key(&names.ended) {
        // An ended session's record (its `expires` is 0 as well).
        return Ok(None);
    }
    let version = match bins.get(&names.version) {
        Some(Value::Int(v)) if (1..=FORMAT_VERSION).contains(v) => *v,
        other => return Err(decode_err(format!("unsupported format version {other:?}"))),
    };
    let expires = match bins.get(&names.expires) {
        Some(Value::Int(at)) => expires_nanos(version, *at),
        other => return Err(decode_err(format!("expires bin is {other:?}"))),
    };
    if expires <= now {
        return Ok(None);
    }
    // Straight into the record's map: no intermediate JSON object.
    let data: session_core::Data = match bins.get(&names.data) {
        Some(Value::HashMap(m)) => entries_to_json(m.iter()),
        Some(Value::OrderedMap(m)) => entries_to_json(m.iter()),
        Some(Value::SortedMap(m)) => entries_to_json(m.iter()),
        None => Ok(Default::default()),
        Some(other) => return Err(decode_err(format!("data bin is {other:?}"))),
    }
    .map_err(|e| StoreError::Decode(Box::new(e)))?;
    let expiry: Option<Expiry> = match bins.get(&names.expiry) {
        None | Some(Value::Nil) => None,
        Some(Value::String(s)) => {
            Some(serde_json::from_str(s).map_err(|e| StoreError::Decode(Box::new(e)))?)
        }
        Some(other) => return Err(decode_err(format!("expiry bin is {other:?}"))),
    };
    let expires_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires))
        .map_err(|e| StoreError::Decode(Box::new(e)))?;
    Ok(Some(Record {
        id: *id,
        data,
        expiry,
        expires_at,
    }))
}

/// The user binding in a `data` bin (`session_core::USER_KEY`'s value), if there is a
/// well-formed one.
pub fn binding(data: &Value) -> Option<session_core::user::Binding> {
    let key = Value::String(session_core::USER_KEY.to_owned());
    let value = match data {
        Value::HashMap(m) => m.get(&key),
        Value::OrderedMap(m) => m.iter().find(|(k, _)| **k == key).map(|(_, v)| v),
        Value::SortedMap(m) => m.get(&key),
        _ => None,
    }?;
    session_core::user::Binding::from_value(&to_json(value).ok()?)
}

/// The `expires` bin of a record of format `version`, in Unix nanoseconds.
pub fn expires_nanos(version: i64, stored: i64) -> i64 {
    if version == 1 {
        stored.saturating_mul(NANOS_PER_SEC)
    } else {
        stored
    }
}

/// `t` in Unix nanoseconds, saturated to `i64` (which holds the years 1678 to 2261).
pub fn unix_nanos(t: OffsetDateTime) -> i64 {
    let nanos = t.unix_timestamp_nanos();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Why a stored value is not session data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored session value is not JSON-compatible: {0}")]
pub struct DecodeError(pub(crate) String);

/// Why a session value cannot be stored as a native Aerospike value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session value cannot be stored in Aerospike: {0}")]
pub struct EncodeError(pub(crate) String);

/// A JSON value as an Aerospike value.
///
/// # Errors
///
/// A number that is neither a 64-bit integer nor a float (possible only with
/// serde_json's `arbitrary_precision` feature, for example `1e400`).
pub fn to_aerospike(v: &Json) -> Result<Value, EncodeError> {
    Ok(match v {
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
                match n.as_f64() {
                    Some(f) => Value::from(f),
                    None => return Err(EncodeError(format!("number {n}"))),
                }
            }
        }
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::List(a.iter().map(to_aerospike).collect::<Result<_, _>>()?),
        Json::Object(o) => Value::HashMap(map_to_aerospike(o.iter())?),
    })
}

/// JSON object entries as an Aerospike map with string keys.
///
/// # Errors
///
/// As [`to_aerospike`].
pub fn map_to_aerospike<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Json)>,
) -> Result<HashMap<Value, Value>, EncodeError> {
    entries
        .map(|(k, v)| Ok((Value::String(k.clone()), to_aerospike(v)?)))
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
    entries_to_json(entries)
}

/// [`map_to_json`] into any map: a record's data goes straight into its `HashMap`.
fn entries_to_json<'a, C: FromIterator<(String, Json)>>(
    entries: impl Iterator<Item = (&'a Value, &'a Value)>,
) -> Result<C, DecodeError> {
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
        let back = to_json(&to_aerospike(&v).unwrap()).unwrap();
        assert_eq!(back, v);
        // 1.0 stays a float, 1 stays an integer.
        assert!(back["one"].is_f64());
        assert!(back["int"].is_i64());
    }

    fn bins(pairs: Vec<(&str, Value)>) -> IndexMap<String, Value> {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn records_decode_only_in_this_format() {
        const SEC: i64 = 1_000_000_000;
        let names = BinNames::default();
        let id = Id::random();
        let data = Value::HashMap([(Value::from("a"), Value::from(1))].into());
        // Expires 2 000.25 s after the epoch.
        let at = 2_000 * SEC + SEC / 4;
        let good = || {
            bins(vec![
                ("data", data.clone()),
                ("expires", Value::Int(at)),
                ("v", Value::Int(FORMAT_VERSION)),
            ])
        };
        let r = decode_record(&names, &id, &good(), 1_000 * SEC)
            .unwrap()
            .unwrap();
        assert_eq!(r.data["a"], json!(1));
        assert_eq!(r.expiry, None);
        assert_eq!(unix_nanos(r.expires_at), at, "to the nanosecond");
        // Expired by its bin, to the nanosecond, not to the second.
        assert!(decode_record(&names, &id, &good(), at - 1)
            .unwrap()
            .is_some());
        assert!(decode_record(&names, &id, &good(), at).unwrap().is_none());
        assert!(decode_record(&names, &id, &good(), 2_000 * SEC + SEC / 2)
            .unwrap()
            .is_none());
        // Version 1 kept whole seconds, and still reads.
        let mut v1 = good();
        v1.insert("v".into(), Value::Int(1));
        v1.insert("expires".into(), Value::Int(2_001));
        let r = decode_record(&names, &id, &v1, 2_000 * SEC + SEC / 2)
            .unwrap()
            .unwrap();
        assert_eq!(r.expires_at.unix_timestamp(), 2_001);
        assert!(decode_record(&names, &id, &v1, 2_001 * SEC)
            .unwrap()
            .is_none());
        // A handler's own expiry comes back.
        let mut b = good();
        b.insert("expiry".into(), Value::from(r#"{"OnInactivity":[60,0]}"#));
        let r = decode_record(&names, &id, &b, 1_000 * SEC)
            .unwrap()
            .unwrap();
        assert_eq!(
            r.expiry,
            Some(Expiry::OnInactivity(time::Duration::minutes(1)))
        );
        // An ended session's record is no session, whatever else it holds.
        let mut ended = good();
        ended.insert("ended".into(), Value::Int(at));
        assert!(decode_record(&names, &id, &ended, 1_000 * SEC)
            .unwrap()
            .is_none());
        // Garbage and other versions are decode errors.
        let cases: Vec<(&str, Option<Value>)> = vec![
            ("v", None),
            ("v", Some(Value::Int(0))),
            ("v", Some(Value::Int(FORMAT_VERSION + 1))),
            ("v", Some(Value::from("1"))),
            ("expires", None),
            ("expires", Some(Value::from(1.5))),
            ("data", Some(Value::from("not a map"))),
            (
                "data",
                Some(Value::HashMap([(Value::Bool(true), Value::Nil)].into())),
            ),
            ("expiry", Some(Value::from("{garbage"))),
            ("expiry", Some(Value::Int(3))),
        ];
        for (bin, value) in cases {
            let mut b = good();
            match value.clone() {
                Some(v) => {
                    b.insert(bin.into(), v);
                }
                None => {
                    b.shift_remove(bin);
                }
            }
            let err = decode_record(&names, &id, &b, 1_000 * SEC).unwrap_err();
            assert!(
                matches!(err, StoreError::Decode(_)),
                "{bin} = {value:?}: {err:?}"
            );
        }
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
            prop_assert_eq!(to_json(&to_aerospike(&v).unwrap()).unwrap(), v);
        }
    }
}
