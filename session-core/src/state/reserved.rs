//! The keys the core reserves in a session's values: the user binding.
//!
//! The binding is kept with the session's values, under [`USER_KEY`], so every store keeps
//! it (and writes it as a per-key change, like any value) without a format of its own;
//! the accessors of [`Session`](crate::Session) never show it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::Data;

/// The key under which a session keeps its user binding. Reserved: the accessors of
/// [`Session`](crate::Session) refuse to write it and never return it.
pub const USER_KEY: &str = "__session_user";

/// The key under which a session's own expiry (set with
/// [`Session::set_expiry`](crate::Session::set_expiry)) is kept inside a tower-sessions
/// record, whose format has no place for it. Versioned: `{"v":1,"expiry":…}`. Reserved
/// like [`USER_KEY`].
pub const EXPIRY_KEY: &str = "__session_core";

/// Whether `key` is one of the keys the core reserves.
pub(crate) fn is_reserved(key: &str) -> bool {
    key == USER_KEY || key == EXPIRY_KEY
}

/// The longest user id [`Session::set_user`](crate::Session::set_user) accepts, in bytes.
pub const MAX_USER_LEN: usize = 256;

/// The longest label [`Session::set_label`](crate::Session::set_label) accepts, in bytes.
pub const MAX_LABEL_LEN: usize = 256;

/// A session's user binding, as kept under [`USER_KEY`]: `{"user": .., "since": ..,
/// "label": ..}`, `since` in Unix seconds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The application's user id.
    pub user: String,
    /// When the session was bound to the user (its sign-in), Unix seconds.
    pub since: i64,
    /// The application's label for the session (a device name, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl fmt::Debug for Binding {
    /// Never shows the user id, which may be personal data: only its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding")
            .field("user", &format_args!("<{} bytes>", self.user.len()))
            .field("since", &self.since)
            .field("label", &self.label.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Binding {
    /// The binding a session's values hold, if any (and if it is well-formed).
    pub fn of(data: &Data) -> Option<Binding> {
        Binding::from_value(data.get(USER_KEY)?)
    }

    /// The binding `value` (the value under [`USER_KEY`]) holds.
    pub fn from_value(value: &Value) -> Option<Binding> {
        Binding::deserialize(value).ok()
    }

    /// The value to keep under [`USER_KEY`].
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a binding always serializes")
    }

    /// Only the user id of the binding `value` holds, without copying the rest.
    pub fn user_of(value: &Value) -> Option<&str> {
        value.get("user")?.as_str()
    }

    /// When the session was bound.
    pub fn since_time(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.since).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
