//! actix-session's `RedisSessionStore`, on tower-sessions-redis-store (fred) behind the
//! engine. Behind the `redis-session` feature, actix-session's own name for it.

use std::fmt;

use session_core::{
    Changes, Created, Cycle, Id, Record, SessionStore, StoreError, TowerStore014, Ttl, Update,
};
use time::OffsetDateTime;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
use tower_sessions_redis_store::RedisStore;

/// Connections each store keeps to Redis.
const POOL_SIZE: usize = 4;

/// Sessions in Redis: actix-session's `RedisSessionStore` constructors over
/// tower-sessions-redis-store 0.16 (fred), through
/// [`TowerStore014`](session_core::TowerStore014), whose notes hold: whole-record
/// writes (last writer wins between concurrent requests of one session), and a check
/// before each write so that a late request does not bring a deleted session back.
///
/// Records are tower-sessions' (MessagePack under the session id), not actix-session's:
/// sessions stored by actix-session are not read, so users log in once after the switch.
/// actix-session's `cache_keygen` (a key prefix) and `builder_pooled` (a deadpool
/// pool) are not here.
///
/// ```no_run
/// # async fn run() -> Result<(), session_core::StoreError> {
/// use actix_web::cookie::Key;
/// use session_actix::compat::storage::RedisSessionStore;
/// use session_actix::compat::SessionMiddleware;
///
/// let store = RedisSessionStore::new("redis://127.0.0.1:6379").await?;
/// let middleware = SessionMiddleware::new(store, Key::generate());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisSessionStore(TowerStore014<RedisStore<Pool>>);

impl fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedisSessionStore")
    }
}

/// Builds a [`RedisSessionStore`] (actix-session's builder).
#[derive(Debug)]
pub struct RedisSessionStoreBuilder {
    url: String,
}

impl RedisSessionStoreBuilder {
    /// Connects.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for a URL fred cannot read, [`StoreError::Unavailable`]
    /// when Redis cannot be reached.
    pub async fn build(self) -> Result<RedisSessionStore, StoreError> {
        let config = Config::from_url(&self.url).map_err(|e| StoreError::Backend(e.into()))?;
        let pool = Pool::new(config, None, None, None, POOL_SIZE)
            .map_err(|e| StoreError::Backend(e.into()))?;
        pool.init()
            .await
            .map_err(|e| StoreError::Unavailable(e.into()))?;
        Ok(RedisSessionStore(TowerStore014::new(RedisStore::new(pool))))
    }
}

impl RedisSessionStore {
    /// A builder for the Redis server at `connection_string` (`redis://host:port`).
    pub fn builder(connection_string: impl Into<String>) -> RedisSessionStoreBuilder {
        RedisSessionStoreBuilder {
            url: connection_string.into(),
        }
    }

    /// Connects to the Redis server at `connection_string`.
    ///
    /// # Errors
    ///
    /// As [`RedisSessionStoreBuilder::build`].
    pub async fn new(connection_string: impl Into<String>) -> Result<Self, StoreError> {
        Self::builder(connection_string).build().await
    }
}

impl SessionStore for RedisSessionStore {
    fn label(&self) -> &'static str {
        "redis"
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
        self.0.load(id).await
    }

    async fn create(&self, record: &Record, ttl: Ttl) -> Result<Created, StoreError> {
        self.0.create(record, ttl).await
    }

    async fn save(
        &self,
        record: &Record,
        changes: &Changes,
        ttl: Ttl,
    ) -> Result<Update, StoreError> {
        self.0.save(record, changes, ttl).await
    }

    async fn touch(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        ttl: Ttl,
    ) -> Result<Update, StoreError> {
        self.0.touch(id, expires_at, ttl).await
    }

    async fn delete(&self, id: &Id) -> Result<(), StoreError> {
        self.0.delete(id).await
    }

    async fn cycle(&self, old: &Id, record: &Record, ttl: Ttl) -> Result<Cycle, StoreError> {
        self.0.cycle(old, record, ttl).await
    }
}
