//! A session's values and what a request changed in them, whatever keeps them: the
//! [`Data`] map, the few values a request sets (kept inline), the [`Changes`] set, and
//! the keys the core reserves.

use std::collections::HashMap;

use serde_json::Value;

mod changes;
pub(crate) mod packed;
mod reserved;
mod session_state;
mod size;
mod values;

pub use changes::{Change, Changes};
pub(crate) use reserved::is_reserved;
pub use reserved::{Binding, EXPIRY_KEY, MAX_LABEL_LEN, MAX_USER_LEN, USER_KEY};
pub(crate) use session_state::{new_state_mutex, value_error, Found, State, Stored};
pub use session_state::{Error, Status, MAX_DEPTH};
pub(crate) use size::json_len;
pub(crate) use values::{Values, ValuesRef};

/// A session's values by key.
///
/// Hashed with foldhash, seeded at random per map: a request hashes its session's keys
/// several times (loading, reading, writing), and SipHash, the standard map's hasher,
/// cost about 160 instructions per short key where this costs a fraction of it. The keys
/// are chosen by the application, not by its clients; the random seed keeps them from
/// being aimed at one bucket all the same.
pub type Data = HashMap<String, Value, foldhash::fast::RandomState>;
