//! [`Session`]: the handle handlers use.

use std::fmt;
use std::sync::{Arc, MutexGuard, PoisonError};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::expiry::{Expiry, Lifetime};
use crate::id::Id;
use crate::request::Shared;
use crate::state::{
    value_error, Binding, Changes, Error, Found, State, Status, MAX_LABEL_LEN, MAX_USER_LEN,
    USER_KEY,
};
use crate::store::{end_user_passes, sort_sessions, SessionInfo, StoreError};

/// A session, as a handler sees it: a cheap `Clone`, `Send + Sync` handle whose accessors
/// are synchronous (the record was loaded when the handle was handed out).
///
/// Values are anything `Serialize`/`DeserializeOwned`, kept as [`serde_json::Value`].
/// Every change is recorded per key, so the store writes only what changed; writing a
/// value equal to the one stored is not a change.
///
/// ```
/// # async fn handler(session: session_core::Session) -> Result<(), session_core::Error> {
/// let visits: u64 = session.get("visits")?.unwrap_or(0);
/// session.insert("visits", visits + 1)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    pub(crate) shared: Arc<Shared>,
}

impl Session {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in another holder cannot leave `State` half-updated in a way that
        // matters more than losing the request, so carry on with it.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key`, deserialized as `T`; `None` if absent.
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if the stored value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let state = self.state();
        match state.lookup(key).filter(|_| key != USER_KEY) {
            None => Ok(None),
            Some(Found::Value(v)) => T::deserialize(v).map(Some).map_err(|e| value_error(key, e)),
            Some(Found::Json(j)) => serde_json::from_slice(j)
                .map(Some)
                .map_err(|e| value_error(key, e)),
        }
    }

    /// The raw value of `key`.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        if key == USER_KEY {
            return None;
        }
        self.state().lookup(key)?.to_value()
    }

    /// Sets `key` to `value`. Setting a value equal to the current one changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if `value` cannot be serialized to JSON; [`Error::Limit`] if it
    /// would take the session past its [`Limits`](crate::Limits); [`Error::TooDeep`] past
    /// [`MAX_DEPTH`](crate::MAX_DEPTH); [`Error::ReservedKey`] for the engine's own key. Either way the
    /// session is left as it was.
    pub fn insert(&self, key: &str, value: impl Serialize) -> Result<(), Error> {
        let value = serde_json::to_value(value).map_err(|e| value_error(key, e))?;
        self.insert_value(key, value).map(drop)
    }

    /// Sets `key` to the raw `value`, returning the previous one.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert), without [`Error::Value`].
    pub fn insert_value(&self, key: &str, value: Value) -> Result<Option<Value>, Error> {
        let limits = self.shared.engine.config.limits;
        self.state().set(key, value, limits)
    }

    /// Removes `key`, returning its value deserialized as `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if the removed value is not a `T` (it is removed all the same).
    pub fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.remove_value(key) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| value_error(key, e)),
        }
    }

    /// Removes `key`, returning its raw value.
    pub fn remove_value(&self, key: &str) -> Option<Value> {
        if key == USER_KEY {
            return None;
        }
        self.state().remove(key)
    }

    /// Changes the value of `key` in place, if present; returns whether it was.
    ///
    /// Atomic with respect to other users of this handle: `f` runs without the session
    /// locked (so it may use the session), and is run again if the value changed
    /// meanwhile. A result equal to the old value is not a change.
    ///
    /// ```
    /// # fn demo(session: &session_core::Session) -> Result<(), session_core::Error> {
    /// session.update("cart", |cart: &mut Vec<String>| cart.push("apple".into()))?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if the value is not a `T` or the result cannot be serialized;
    /// [`Error::Limit`] if the result would take the session past its [`Limits`](crate::Limits).
    pub fn update<T, F>(&self, key: &str, f: F) -> Result<bool, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T),
    {
        self.update_inner(key, None::<fn() -> T>, f)
    }

    /// Like [`update`](Self::update), starting from `default` when `key` is absent.
    ///
    /// ```
    /// # fn demo(session: &session_core::Session) -> Result<(), session_core::Error> {
    /// session.update_or("visits", 0u64, |n| *n += 1)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if the value is not a `T` or the result cannot be serialized;
    /// [`Error::Limit`] if the result would take the session past its [`Limits`](crate::Limits).
    pub fn update_or<T, F>(&self, key: &str, default: T, f: F) -> Result<(), Error>
    where
        T: Serialize + DeserializeOwned + Clone,
        F: FnMut(&mut T),
    {
        self.update_inner(key, Some(|| default.clone()), f)
            .map(|_| ())
    }

    fn update_inner<T, D, F>(&self, key: &str, default: Option<D>, mut f: F) -> Result<bool, Error>
    where
        T: Serialize + DeserializeOwned,
        D: Fn() -> T,
        F: FnMut(&mut T),
    {
        loop {
            let before = self.get_value(key);
            let mut value: T = match (&before, &default) {
                (Some(v), _) => T::deserialize(v).map_err(|e| value_error(key, e))?,
                (None, Some(d)) => d(),
                (None, None) => return Ok(false),
            };
            f(&mut value);
            let after = serde_json::to_value(&value).map_err(|e| value_error(key, e))?;
            let mut state = self.state();
            if state.lookup(key).and_then(|found| found.to_value()) == before {
                state.set(key, after, self.shared.engine.config.limits)?;
                return Ok(true);
            }
        }
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        key != USER_KEY && self.state().lookup(key).is_some()
    }

    /// The keys, in no particular order.
    pub fn keys(&self) -> Vec<String> {
        let mut state = self.state();
        let keys = state.values_mut().keys().filter(|k| k.as_str() != USER_KEY);
        keys.cloned().collect()
    }

    /// How many values the session holds.
    pub fn len(&self) -> usize {
        self.state().values()
    }

    /// Whether the session holds no value.
    pub fn is_empty(&self) -> bool {
        self.state().values() == 0
    }

    /// Removes every value, and the user binding ([`set_user`](Self::set_user)). A stored
    /// session left empty is deleted and its cookie removed when the request ends.
    pub fn clear(&self) {
        let mut state = self.state();
        if state.raw.is_some() || !state.data.is_empty() || state.stored.is_some() {
            state.clear_data();
            state.changes.clear();
        }
    }

    /// Gives the session a new id when the request ends, keeping its data: call it when
    /// privileges change (login) against session fixation. The new record is created
    /// before the old one is deleted, so a failure never logs the user out nor leaves the
    /// old id with the new privileges. The move happens only while the old record lives
    /// ([`SessionStore::cycle`](crate::SessionStore::cycle)): if the session was logged
    /// out or expired while this request ran, nothing is created and the cookie is
    /// removed.
    pub fn cycle_id(&self) {
        self.state().renew = true;
    }

    /// Deletes the session (logout): its data is cleared now, its record deleted and the
    /// cookie removed when the request ends. Values inserted afterwards start a new
    /// session with a new id.
    pub fn flush(&self) {
        let mut state = self.state();
        state.purge = true;
        state.clear_data();
        state.changes = Changes::default();
    }

    /// The id of the stored session; `None` for a session not stored yet (it gets an id
    /// when the request that first gives it a value ends).
    pub fn id(&self) -> Option<Id> {
        self.state().stored.map(|s| s.id)
    }

    /// The session's expiry: the one set by [`set_expiry`](Self::set_expiry), or the
    /// configured default.
    pub fn expiry(&self) -> Expiry {
        self.state()
            .expiry
            .unwrap_or(self.shared.engine.config.expiry)
    }

    /// Sets this session's expiry (`None`: back to the configured default). It is stored
    /// with the session and applies to its later requests too, so a "remember me" switch
    /// is one call. An expiry already over ends the session like [`flush`](Self::flush).
    pub fn set_expiry(&self, expiry: Option<Expiry>) {
        let mut state = self.state();
        if state.expiry != expiry {
            state.expiry = expiry;
            state.expiry_changed = true;
        }
    }

    /// When the session will end if it is refreshed now: `now + d` for `OnInactivity(d)`,
    /// `t` for `AtDateTime(t)`, now plus the default store TTL for `OnSessionEnd`, clamped
    /// to the maximum TTL.
    pub fn expiry_date(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        let c = &self.shared.engine.config;
        Lifetime::of(&self.expiry(), now, c.default_ttl, c.max_ttl).map_or(now, |l| l.expires_at)
    }

    /// What happened to the session so far in this request.
    pub fn status(&self) -> Status {
        self.state().status()
    }

    /// Binds the session to a user: call it at login, with the application's user id
    /// (any string of 1 to [`MAX_USER_LEN`] bytes), beside [`cycle_id`](Self::cycle_id).
    /// The binding is stored with the session, survives `cycle_id`, and ends with
    /// [`flush`](Self::flush) or [`clear`](Self::clear). It lets the user's sessions be
    /// listed ([`user_sessions`](Self::user_sessions)) and ended
    /// ([`end_other_sessions`](Self::end_other_sessions),
    /// [`end_all_sessions`](Self::end_all_sessions)). Binding to the user it is already
    /// bound to changes nothing; binding to another user starts a new binding.
    ///
    /// The user id is never logged by this crate.
    ///
    /// ```
    /// # fn login(session: &session_core::Session) -> Result<(), session_core::Error> {
    /// session.cycle_id();
    /// session.set_user("42")?;
    /// session.set_label("Firefox on Linux")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::User`] for an empty id or one longer than [`MAX_USER_LEN`] bytes;
    /// [`Error::Limit`] if the binding would take the session past its [`Limits`](crate::Limits).
    pub fn set_user(&self, user: impl Into<String>) -> Result<(), Error> {
        let user = user.into();
        if user.is_empty() {
            return Err(Error::User("the user id is empty"));
        }
        if user.len() > MAX_USER_LEN {
            return Err(Error::User("the user id is longer than MAX_USER_LEN bytes"));
        }
        let mut state = self.state();
        if state.user() == Some(user.as_str()) {
            return Ok(());
        }
        let binding = Binding {
            user,
            since: OffsetDateTime::now_utc().unix_timestamp(),
            label: None,
        };
        let limits = self.shared.engine.config.limits;
        state.set_unchecked(USER_KEY, binding.to_value(), limits)?;
        Ok(())
    }

    /// The user the session is bound to ([`set_user`](Self::set_user)), if any.
    pub fn user(&self) -> Option<String> {
        self.state().user().map(str::to_owned)
    }

    /// Sets the label shown for this session in its user's list of sessions, for
    /// example a device name taken from the `User-Agent` (1 to [`MAX_LABEL_LEN`] bytes).
    ///
    /// # Errors
    ///
    /// [`Error::User`] when the session has no user yet, or for an empty or too long
    /// label; [`Error::Limit`] past the session's [`Limits`](crate::Limits).
    pub fn set_label(&self, label: impl Into<String>) -> Result<(), Error> {
        let label = label.into();
        if label.is_empty() {
            return Err(Error::User("the label is empty"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(Error::User("the label is longer than MAX_LABEL_LEN bytes"));
        }
        let mut state = self.state();
        let binding = state.values_mut().get(USER_KEY);
        let Some(mut binding) = binding.and_then(Binding::from_value) else {
            return Err(Error::User("set_user must come before set_label"));
        };
        if binding.label.as_deref() == Some(label.as_str()) {
            return Ok(());
        }
        binding.label = Some(label);
        let limits = self.shared.engine.config.limits;
        state.set_unchecked(USER_KEY, binding.to_value(), limits)?;
        Ok(())
    }

    /// The live sessions of this session's user, the current one first, then the most
    /// recently seen; empty when the session has no user. Each entry has the session's
    /// short id, its label, when it signed in, when it was last seen, when it expires,
    /// and whether it is this one. A binding made in this same request is stored when
    /// the request ends, so this session is listed from the next request on.
    ///
    /// # Errors
    ///
    /// The store's error; [`StoreError::Unsupported`] from a store that cannot find a
    /// user's sessions (`TowerStore`).
    pub async fn user_sessions(&self) -> Result<Vec<SessionInfo>, StoreError> {
        let (user, current) = self.user_and_id();
        let Some(user) = user else {
            return Ok(Vec::new());
        };
        let mut list = self
            .shared
            .engine
            .store
            .user_sessions(&user, current.as_ref())
            .await?;
        sort_sessions(&mut list);
        Ok(list)
    }

    /// Logs this session's user out of every other session ("log out other devices"),
    /// now, for every app instance sharing the store; returns how many sessions ended.
    /// A request of an ended session still in flight cannot bring it back: its save
    /// finds the record gone. Does nothing for a session with no user.
    ///
    /// # Errors
    ///
    /// As [`user_sessions`](Self::user_sessions).
    pub async fn end_other_sessions(&self) -> Result<usize, StoreError> {
        let (user, current) = self.user_and_id();
        let Some(user) = user else {
            return Ok(0);
        };
        let store = &*self.shared.engine.store;
        end_user_passes(store, &user, current.as_ref()).await
    }

    /// Logs this session's user out everywhere, this session included (after a password
    /// change or an account recovery): every session of the user is deleted now, and
    /// this one's cookie is removed when the request ends, as by [`flush`](Self::flush).
    /// Returns how many stored sessions ended. Does nothing but the `flush` for a
    /// session with no user.
    ///
    /// # Errors
    ///
    /// As [`user_sessions`](Self::user_sessions); the session is flushed only when the
    /// store succeeded.
    pub async fn end_all_sessions(&self) -> Result<usize, StoreError> {
        let (user, _) = self.user_and_id();
        let ended = match user {
            Some(user) => end_user_passes(&*self.shared.engine.store, &user, None).await?,
            None => 0,
        };
        self.flush();
        Ok(ended)
    }

    fn user_and_id(&self) -> (Option<String>, Option<Id>) {
        let mut state = self.state();
        (state.user().map(str::to_owned), state.stored.map(|s| s.id))
    }
}

impl fmt::Debug for Session {
    /// Shows the status, the short id and the keys, never the values or the full id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut state = self.state();
        state.values_mut();
        let keys = state.data.iter().map(|(k, _)| k).filter(|k| *k != USER_KEY);
        let mut keys: Vec<&str> = keys.collect();
        keys.sort();
        f.debug_struct("Session")
            .field("id", &state.stored.map(|s| s.id))
            .field("status", &state.status())
            .field("keys", &keys)
            .finish()
    }
}
