//! [`TowerStore`]: any tower-sessions store behind this engine.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions_core::session::Record as TowerRecord;
use tower_sessions_core::session_store::Error as TowerError;

use crate::expiry::{Expiry, Ttl};
use crate::id::Id;
use crate::store::{Changes, Record, SessionStore, StoreError, Update};

/// The key under which a session's own expiry (set with
/// [`Session::set_expiry`](crate::Session::set_expiry)) is kept inside a tower-sessions
/// record, whose format has no place for it. Versioned: `{"v":1,"expiry":…}`.
pub const EXPIRY_KEY: &str = "__session_core";

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
/// * `create` relies on the tower store to avoid overwriting (tower-sessions 0.14+ stores
///   pick a new id on collision).
/// * tower-sessions errors carry only text; they are kept as the source of
///   [`StoreError::Backend`] (or `Encode`/`Decode`).
#[derive(Debug, Clone)]
pub struct TowerStore<S>(S);

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

fn error(e: TowerError) -> StoreError {
    match e {
        TowerError::Decode(m) => StoreError::Decode(m.into()),
        TowerError::Encode(m) => StoreError::Encode(m.into()),
        TowerError::Backend(m) => StoreError::Backend(m.into()),
    }
}

impl From<&Record> for TowerRecord {
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
        TowerRecord {
            id: r.id.into(),
            data,
            expiry_date: r.expires_at,
        }
    }
}

impl From<TowerRecord> for Record {
    /// A tower-sessions record; [`EXPIRY_KEY`] becomes the record's expiry (an unreadable
    /// one is logged and ignored).
    fn from(mut r: TowerRecord) -> Self {
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

impl<S: tower_sessions_core::SessionStore> TowerStore<S> {
    async fn live(&self, id: &Id) -> Result<Option<TowerRecord>, StoreError> {
        let found = self.0.load(&(*id).into()).await.map_err(error)?;
        Ok(found.filter(|r| r.expiry_date > OffsetDateTime::now_utc()))
    }
}

impl<S: tower_sessions_core::SessionStore> SessionStore for TowerStore<S> {
    async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
        Ok(self.live(id).await?.map(Record::from))
    }

    async fn create(&self, record: &mut Record, _ttl: Ttl) -> Result<(), StoreError> {
        let mut tower = TowerRecord::from(&*record);
        self.0.create(&mut tower).await.map_err(error)?;
        record.id = tower.id.into();
        Ok(())
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
            .save(&TowerRecord::from(record))
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
