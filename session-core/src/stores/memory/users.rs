//! The index of each user's sessions, and the store's operations over it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::shard::{instant, now, IdHash};
use super::MemoryStore;
use crate::id::Id;
use crate::store::{EndPass, SessionInfo, StoreError};

/// The sessions of each user ([`Session::set_user`](crate::Session::set_user)): kept by
/// the shards, under their lock, whenever a bound entry is inserted, rebound or removed
/// (eviction included), so it lists exactly the bound entries the maps hold. Lock
/// order: a shard, then this; never the other way round.
#[derive(Default)]
pub(super) struct Users(Mutex<HashMap<Arc<str>, HashSet<Id, IdHash>>>);

impl Users {
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, HashSet<Id, IdHash>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn add(&self, user: &Arc<str>, id: Id) {
        self.lock().entry(user.clone()).or_default().insert(id);
    }

    pub(super) fn remove(&self, user: &str, id: &Id) {
        let mut users = self.lock();
        if let Some(ids) = users.get_mut(user) {
            ids.remove(id);
            if ids.is_empty() {
                users.remove(user);
            }
        }
    }

    /// The ids listed for `user`.
    pub(super) fn ids(&self, user: &str) -> Vec<Id> {
        self.lock()
            .get(user)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }
}

impl MemoryStore {
    pub(super) fn user_sessions_now(
        &self,
        user: &str,
        current: Option<&Id>,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let now = now();
        let mut list = Vec::new();
        for id in self.users.ids(user) {
            let (body, expires_at, seen) = {
                let shard = self.shard(&id);
                let Some(e) = shard.map.get(&id).filter(|e| e.expires_at > now) else {
                    continue;
                };
                let Some(b) = shard.bound.get(&id).filter(|b| &*b.user == user) else {
                    continue;
                };
                (e.body.clone(), e.expires_at, b.seen)
            };
            let binding = body.binding();
            if let Some(binding) = binding {
                let current = current == Some(&id);
                list.push(SessionInfo::new(
                    &id,
                    binding,
                    instant(seen),
                    instant(expires_at),
                    current,
                ));
            }
        }
        Ok(list)
    }

    /// One pass: ends each session the index lists for `user` (but `keep`) that is still
    /// bound to `user` under its shard's lock.
    pub(super) fn end_user_pass_now(&self, user: &str, keep: Option<&Id>) -> EndPass {
        let ids: Vec<Id> = self
            .users
            .ids(user)
            .into_iter()
            .filter(|id| Some(id) != keep)
            .collect();
        let now = now();
        let mut ended = 0;
        for id in &ids {
            let removed = {
                let mut shard = self.shard(id);
                if shard.bound.get(id).is_some_and(|b| &*b.user == user) {
                    shard.remove(id)
                } else {
                    None
                }
            };
            // An expired entry not evicted yet was not a live session.
            ended += usize::from(removed.is_some_and(|e| e.expires_at > now));
        }
        EndPass {
            listed: ids.len(),
            ended,
        }
    }
}
