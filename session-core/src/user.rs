//! A session's user: the binding a handler makes at login
//! ([`Session::set_user`](crate::Session::set_user)), and what a store reports about a
//! user's sessions ([`SessionInfo`]).
//!
//! The binding is kept with the session's values, under the reserved key [`USER_KEY`],
//! so every store keeps it (and writes it as a per-key change, like any value) without
//! a format of its own; the accessors of [`Session`](crate::Session) never show it.
//! Stores that can find a user's sessions ([`MemoryStore`](crate::MemoryStore), the
//! Aerospike store) index it.

pub use crate::state::{Binding, MAX_LABEL_LEN, MAX_USER_LEN, USER_KEY};
pub use crate::store::{sort_sessions, EndPass, SessionInfo};
