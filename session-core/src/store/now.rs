//! [`NowStore`]: the operations an in-process store completes without waiting, which
//! the engine calls in place of the [`SessionStore`](super::SessionStore) futures when
//! a store offers them ([`SessionStore::now`](super::SessionStore::now)).
//!
//! They trade in the core's packed record body ([`Packed`]): a session loaded this way
//! parses a value only when a handler reads it, and a save rewrites only the entries its
//! request changed. The engine's outcome for each is the same as for the async method of
//! the same name, and so are the contracts.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use super::{Created, Record, StoreError, Update};
use crate::expiry::Expiry;
use crate::id::Id;
use crate::state::packed::{self, Corrupt};
use crate::state::{Binding, Changes, Data, ValuesRef, USER_KEY};

/// Operations that complete without waiting, offered through
/// [`SessionStore::now`](super::SessionStore::now). Each keeps the contract of the
/// [`SessionStore`](super::SessionStore) method of the same name; `now` is the
/// engine's one clock reading for the request, which the store uses to tell live records
/// from expired ones.
pub trait NowStore: Send + Sync {
    /// [`SessionStore::load`](super::SessionStore::load): the live record of `id`, as
    /// its body and end.
    ///
    /// # Errors
    ///
    /// [`StoreError::Decode`] for a body that does not read back; the engine treats the
    /// record as absent.
    fn load_now(&self, id: &Id, now: OffsetDateTime) -> Result<Option<Loaded>, StoreError>;

    /// [`SessionStore::create`](super::SessionStore::create): stores `write` under `id`
    /// unless `id` names a record ([`Created::Taken`]: the engine tries a fresh id).
    ///
    /// # Errors
    ///
    /// The store's own refusal (a full store).
    fn create_now(
        &self,
        id: &Id,
        write: Write<'_>,
        now: OffsetDateTime,
    ) -> Result<Created, StoreError>;

    /// [`SessionStore::save`](super::SessionStore::save): applies `changes` to the live
    /// record `id` (the values set are read from `write`; the record's other keys stay),
    /// and returns the body now stored, or `None` when the record is gone.
    ///
    /// # Errors
    ///
    /// [`StoreError::Decode`] when the stored body does not read back.
    fn save_now(
        &self,
        id: &Id,
        write: Write<'_>,
        changes: &Changes,
        now: OffsetDateTime,
    ) -> Result<Option<Packed>, StoreError>;

    /// [`SessionStore::touch`](super::SessionStore::touch): moves the end of the live
    /// record `id` to `expires_at`.
    ///
    /// # Errors
    ///
    /// Whatever the store fails with; an in-process store usually cannot fail.
    fn touch_now(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Update, StoreError>;
}

/// A live record from [`NowStore::load_now`].
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The record's values and expiry.
    pub body: Packed,
    /// When the record stops being valid: after `now`, for a store keeping its contract.
    pub expires_at: OffsetDateTime,
}

/// A session's values and expiry in one shared allocation: the expiry, then each value's
/// key and JSON text. Values are parsed only when read, and [`apply`](Self::apply)
/// copies the entries a change leaves alone as bytes. Cheap to clone. Its `Debug` shows
/// the size, never the values.
#[derive(Clone)]
pub struct Packed(Arc<[u8]>);

impl fmt::Debug for Packed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packed")
            .field("bytes", &self.0.len())
            .finish()
    }
}

impl Packed {
    /// The body of a new record holding `write`.
    pub fn encode(write: &Write<'_>) -> Self {
        Packed(packed::encode(write.expiry, write.values))
    }

    /// This body with `changes` applied: the entries of the keys `changes` names are
    /// replaced by `write`'s values (or dropped), the others copied as they are; the
    /// expiry is `write`'s.
    ///
    /// # Errors
    ///
    /// [`StoreError::Decode`] when this body does not read back.
    pub fn apply(&self, write: &Write<'_>, changes: &Changes) -> Result<Self, StoreError> {
        packed::apply(&self.0, write.expiry, write.values, changes)
            .map(Packed)
            .map_err(decode_error)
    }

    /// The expiry a handler set, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Decode`] when the body does not read back.
    pub fn expiry(&self) -> Result<Option<Expiry>, StoreError> {
        packed::split(&self.0)
            .map(|(expiry, _)| expiry)
            .map_err(decode_error)
    }

    /// Every value, parsed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Decode`] when the body does not read back.
    pub fn to_data(&self) -> Result<Data, StoreError> {
        packed::values_of(&self.0).map_err(decode_error)
    }

    /// The user binding the session holds (set with
    /// [`Session::set_user`](crate::Session::set_user)), if any.
    pub fn binding(&self) -> Option<Binding> {
        let json = packed::json_of(&self.0, USER_KEY)?;
        serde_json::from_slice(json).ok()
    }

    /// The body's size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the body is empty; never, for a body this type built.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `a` and `b` are the same allocation: a store that applies a change outside
    /// its lock checks with this that nobody saved in between.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    pub(crate) fn into_raw(self) -> Arc<[u8]> {
        self.0
    }
}

/// What a create or save writes, borrowed from the session (no copy of its values), or
/// from a [`Record`] with [`of`](Self::of).
#[derive(Clone, Copy)]
pub struct Write<'a> {
    pub(crate) values: ValuesRef<'a>,
    pub(crate) expiry: Option<Expiry>,
    pub(crate) expires_at: OffsetDateTime,
    /// Whether `values` may hold a user binding: `false` when the engine knows its
    /// request set none, which spares a create the look.
    pub(crate) may_bind: bool,
}

impl fmt::Debug for Write<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Write")
            .field("expiry", &self.expiry)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl<'a> Write<'a> {
    /// The whole of `record`.
    pub fn of(record: &'a Record) -> Self {
        Write {
            values: ValuesRef::Map(&record.data),
            expiry: record.expiry,
            expires_at: record.expires_at,
            may_bind: true,
        }
    }

    /// The value of `key`, if the session holds it.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.values.get(key)
    }

    /// The expiry a handler set, if any.
    pub fn expiry(&self) -> Option<Expiry> {
        self.expiry
    }

    /// When the record stops being valid.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// The user the session is bound to, if it holds a binding.
    pub fn user(&self) -> Option<&'a str> {
        if !self.may_bind {
            return None;
        }
        self.values.get(USER_KEY).and_then(Binding::user_of)
    }
}

/// A body that does not read back: reported as undecodable.
fn decode_error(e: Corrupt) -> StoreError {
    StoreError::Decode(Box::new(e))
}
