//! [`TowerStore`] (and `TowerStore014`): any tower-sessions store behind this engine.

use serde::{Deserialize, Serialize};

use crate::expiry::Expiry;
use crate::state::EXPIRY_KEY;

#[derive(Serialize, Deserialize)]
struct Meta {
    v: u32,
    expiry: Expiry,
}

/// Puts any [`tower_sessions_core::SessionStore`] (redis, sqlx, moka, ...) behind this
/// engine and both adapters.
///
/// ```
/// use session_core::TowerStore;
/// let store = TowerStore::new(tower_sessions_memory_store::MemoryStore::default());
/// # let _ = store;
/// ```
///
/// tower-sessions' trait can only write whole records, so this adapter promises less than
/// a native store:
///
/// * `save` and `touch` rewrite the whole record: two concurrent requests of one session
///   changing different keys are **last writer wins**.
/// * Both first load the record to check that it still exists, so a request finishing
///   after a logout does not bring the session back; between that load and the write the
///   tower store cannot refuse, so the window is narrowed, not closed. It costs one more
///   read per write.
/// * `create` relies on the tower store to avoid overwriting. Most store the record
///   under an id of their own when its id is taken: that record is removed again and
///   the id reported taken, so the engine, which chooses every id, tries a fresh one.
///   Some stores fail instead (`TowerStore014` says which).
/// * tower-sessions errors carry only text; they are kept as the source of
///   [`StoreError::Backend`](crate::StoreError::Backend) (or `Encode`/`Decode`).
#[cfg(feature = "tower-sessions")]
#[derive(Debug, Clone)]
pub struct TowerStore<S>(S);

#[cfg(feature = "tower-sessions")]
impl<S> TowerStore<S> {
    /// Wraps `store`.
    pub fn new(store: S) -> Self {
        TowerStore(store)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.0
    }
}

/// [`TowerStore`] for stores built on tower-sessions-core 0.14, such as
/// tower-sessions-redis-store 0.16 (Redis, on fred) and tower-sessions-sqlx-store 0.15
/// (PostgreSQL, MySQL, SQLite): everything said of [`TowerStore`] holds. Behind the
/// `tower-sessions-014` feature, of this crate and of both adapters.
///
/// tower-sessions-redis-store 0.16 on fred 10 never overwrites a session on `create`,
/// but it answers an id that is already taken with an error ("Could not convert to
/// bool": it reads the nil reply of Redis's `SET NX` as a bool) instead of picking
/// another id. With 128-bit random ids that is never met in practice; the conformance
/// suite checks for it. tower-sessions-sqlx-store picks a new id, as it should; the
/// conformance suites run it on SQLite.
///
/// ```ignore
/// use tower_sessions_redis_store::{fred::prelude::*, RedisStore};
///
/// let pool = Pool::new(Config::from_url("redis://127.0.0.1:6379")?, None, None, None, 6)?;
/// pool.init().await?;
/// let store = session_core::TowerStore014::new(RedisStore::new(pool));
///
/// // Or SQL, here SQLite (tower-sessions-sqlx-store, feature `sqlite`):
/// use tower_sessions_sqlx_store::{sqlx::SqlitePool, SqliteStore};
///
/// let store = SqliteStore::new(SqlitePool::connect("sqlite://sessions.db?mode=rwc").await?);
/// store.migrate().await?;
/// let store = session_core::TowerStore014::new(store);
/// ```
#[cfg(feature = "tower-sessions-014")]
#[derive(Debug, Clone)]
pub struct TowerStore014<S>(S);

#[cfg(feature = "tower-sessions-014")]
impl<S> TowerStore014<S> {
    /// Wraps `store`.
    pub fn new(store: S) -> Self {
        TowerStore014(store)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.0
    }
}

/// The conversions and the [`SessionStore`](crate::SessionStore) implementation for one
/// release of tower-sessions-core: `$core` is its crate, `$Store` our wrapper of its
/// stores.
macro_rules! tower_store {
    ($core:ident, $Store:ident) => {
        use time::OffsetDateTime;

        use super::{Meta, $Store, EXPIRY_KEY};
        use crate::expiry::Ttl;
        use crate::id::Id;
        use crate::state::Changes;
        use crate::store::{Created, Record, SessionStore, StoreError, Update};

        fn error(e: $core::session_store::Error) -> StoreError {
            match e {
                $core::session_store::Error::Decode(m) => StoreError::Decode(m.into()),
                $core::session_store::Error::Encode(m) => StoreError::Encode(m.into()),
                $core::session_store::Error::Backend(m) => StoreError::Backend(m.into()),
            }
        }

        impl From<&Record> for $core::session::Record {
            /// The record as tower-sessions keeps it; a handler-set expiry goes under
            /// [`EXPIRY_KEY`].
            fn from(r: &Record) -> Self {
                // tower-sessions keeps the standard map: the values are copied across.
                let mut data: std::collections::HashMap<String, serde_json::Value> =
                    r.data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                if let Some(expiry) = r.expiry {
                    let meta =
                        serde_json::to_value(Meta { v: 1, expiry }).expect("an Expiry always serializes");
                    data.insert(EXPIRY_KEY.to_owned(), meta);
                }
                $core::session::Record {
                    id: r.id.into(),
                    data,
                    expiry_date: r.expires_at,
                }
            }
        }

        impl From<$core::session::Record> for Record {
            /// A tower-sessions record; [`EXPIRY_KEY`] becomes the record's expiry (an unreadable
            /// one is logged and ignored).
            fn from(mut r: $core::session::Record) -> Self {
                let expiry =
                    r.data
                        .remove(EXPIRY_KEY)
                        .and_then(|v| match serde_json::from_value::<Meta>(v) {
                            Ok(m) if m.v == 1 => Some(m.expiry),
                            _ => {
                                tracing::warn!(
                                    "ignoring an unreadable session expiry in a tower-sessions record"
                                );
                                None
                            }
                        });
                Record {
                    id: r.id.into(),
                    data: r.data.into_iter().collect(),
                    expiry,
                    expires_at: r.expiry_date,
                }
            }
        }

        impl<S: $core::SessionStore> $Store<S> {
            async fn live(&self, id: &Id) -> Result<Option<$core::session::Record>, StoreError> {
                let found = self.0.load(&(*id).into()).await.map_err(error)?;
                Ok(found.filter(|r| r.expiry_date > OffsetDateTime::now_utc()))
            }
        }

        impl<S: $core::SessionStore> SessionStore for $Store<S> {
            fn label(&self) -> &'static str {
                "tower-sessions"
            }

            async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
                Ok(self.live(id).await?.map(Record::from))
            }

            async fn create(&self, record: &Record, _ttl: Ttl) -> Result<Created, StoreError> {
                let mut tower = $core::session::Record::from(record);
                self.0.create(&mut tower).await.map_err(error)?;
                let stored: Id = tower.id.into();
                if stored == record.id {
                    return Ok(Created::Stored);
                }
                // The tower store found the id taken and stored the record under one of
                // its own choosing, which the engine cannot hand out: it is removed, and
                // the engine tries a fresh id.
                if let Err(e) = self.0.delete(&tower.id).await {
                    tracing::warn!(id = %stored, error = %e, "could not remove a record stored under an id the engine did not choose; it ends by its TTL");
                }
                Ok(Created::Taken)
            }

            async fn save(
                &self,
                record: &Record,
                _changes: &Changes,
                _ttl: Ttl,
            ) -> Result<Update, StoreError> {
                if self.live(&record.id).await?.is_none() {
                    return Ok(Update::Missing);
                }
                self.0
                    .save(&$core::session::Record::from(record))
                    .await
                    .map_err(error)?;
                Ok(Update::Applied)
            }

            async fn touch(
                &self,
                id: &Id,
                expires_at: OffsetDateTime,
                _ttl: Ttl,
            ) -> Result<Update, StoreError> {
                let Some(mut tower) = self.live(id).await? else {
                    return Ok(Update::Missing);
                };
                tower.expiry_date = expires_at;
                self.0.save(&tower).await.map_err(error)?;
                Ok(Update::Applied)
            }

            async fn delete(&self, id: &Id) -> Result<(), StoreError> {
                self.0.delete(&(*id).into()).await.map_err(error)
            }
        }

    };
}

#[cfg(feature = "tower-sessions")]
mod v015 {
    tower_store!(tower_sessions_core, TowerStore);
}

#[cfg(feature = "tower-sessions-014")]
mod v014 {
    tower_store!(tower_sessions_core_014, TowerStore014);
}
