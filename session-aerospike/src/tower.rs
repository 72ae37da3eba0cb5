//! [`AerospikeStore`] as a tower-sessions store, for plain tower-sessions apps.

use async_trait::async_trait;
use session_core::{Record, SessionStore, StoreError, Ttl};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id as TowerId, Record as TowerRecord};
use tower_sessions_core::session_store::{Error as TowerError, ExpiredDeletion, Result};

use crate::AerospikeStore;

fn tower_error(e: StoreError) -> TowerError {
    let text = e.report().to_string();
    match e {
        StoreError::Decode(_) => TowerError::Decode(text),
        StoreError::Encode(_) => TowerError::Encode(text),
        _ => TowerError::Backend(text),
    }
}

/// The TTL until `at`, rounded up; `None` when it has passed.
fn ttl_until(at: OffsetDateTime) -> Option<Ttl> {
    let d = at - OffsetDateTime::now_utc();
    let secs = d.whole_seconds() + i64::from(d.subsec_nanoseconds() > 0);
    if secs <= 0 {
        return None;
    }
    Ttl::from_secs(
        u32::try_from(secs)
            .unwrap_or(u32::MAX)
            .min(Ttl::MAX.as_secs()),
    )
}

/// tower-sessions' trait, with its semantics: `save` creates or replaces the whole
/// record (so it is last-writer-wins, unlike this crate's own delta saves), and a record
/// whose `expiry_date` has passed is deleted rather than written.
#[async_trait]
impl tower_sessions_core::SessionStore for AerospikeStore {
    async fn create(&self, record: &mut TowerRecord) -> Result<()> {
        let mut ours = Record::from(record.clone());
        let ttl = ttl_until(ours.expires_at)
            .ok_or_else(|| TowerError::Backend("the session record has already expired".into()))?;
        // tower-sessions' contract: a taken id is replaced by the store.
        session_core::store::create_unique(self, &mut ours, ttl)
            .await
            .map_err(tower_error)?;
        record.id = ours.id.into();
        Ok(())
    }

    async fn save(&self, record: &TowerRecord) -> Result<()> {
        let ours = Record::from(record.clone());
        match ttl_until(ours.expires_at) {
            Some(ttl) => self.replace(&ours, ttl).await.map_err(tower_error),
            None => SessionStore::delete(self, &ours.id)
                .await
                .map_err(tower_error),
        }
    }

    async fn load(&self, id: &TowerId) -> Result<Option<TowerRecord>> {
        let found = SessionStore::load(self, &(*id).into())
            .await
            .map_err(tower_error)?;
        Ok(found.map(|r| TowerRecord::from(&r)))
    }

    async fn delete(&self, id: &TowerId) -> Result<()> {
        SessionStore::delete(self, &(*id).into())
            .await
            .map_err(tower_error)
    }
}

#[async_trait]
impl ExpiredDeletion for AerospikeStore {
    /// [`AerospikeStore::delete_expired`].
    async fn delete_expired(&self) -> Result<()> {
        AerospikeStore::delete_expired(self)
            .await
            .map(drop)
            .map_err(tower_error)
    }
}
