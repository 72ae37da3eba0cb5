//! A session's values and what a request changed in them, whatever keeps them: the
//! [`Data`] map, the few values a request sets (kept inline), the [`Changes`] set, and
//! the keys the core reserves.

mod changes;
mod data;
pub(crate) mod packed;
mod reserved;
mod session_state;
mod size;
mod values;

pub use changes::{Change, Changes};
pub use data::Data;
pub(crate) use reserved::is_reserved;
pub use reserved::{Binding, EXPIRY_KEY, MAX_LABEL_LEN, MAX_USER_LEN, USER_KEY};
pub(crate) use session_state::{new_state_mutex, value_error, Found, State, Stored};
pub use session_state::{Error, Status, MAX_DEPTH};
pub(crate) use size::json_len;
pub(crate) use values::{Values, ValuesRef};
