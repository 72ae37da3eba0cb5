//! tower-sessions' published stores built on tower-sessions-core 0.14, behind our engine
//! through [`TowerStore014`]: tower-sessions-redis-store against the real Redis server
//! at `REDIS_URL` (the README's test command starts one), else tower-sessions' own
//! 0.14 memory store, saying plainly which ran. With `REQUIRE_REDIS=1` (CI) a missing
//! `REDIS_URL` is a failure.

use std::io::Write as _;
use std::sync::Once;

use session_core::TowerStore014;
use tower_sessions_core_014::session::{Id, Record};
use tower_sessions_core_014::session_store::Result;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
use tower_sessions_redis_store::RedisStore;

/// A tower-sessions-core 0.14 store: Redis, or the memory store when no server is given.
#[derive(Debug, Clone)]
pub enum Store014 {
    /// tower-sessions-redis-store 0.16.
    Redis(RedisStore<Pool>),
    /// tower-sessions-memory-store 0.14.
    Memory(tower_sessions_memory_store_014::MemoryStore),
}

#[async_trait::async_trait]
impl tower_sessions_core_014::SessionStore for Store014 {
    async fn create(&self, record: &mut Record) -> Result<()> {
        match self {
            Store014::Redis(s) => s.create(record).await,
            Store014::Memory(s) => s.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> Result<()> {
        match self {
            Store014::Redis(s) => s.save(record).await,
            Store014::Memory(s) => s.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        match self {
            Store014::Redis(s) => s.load(id).await,
            Store014::Memory(s) => s.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        match self {
            Store014::Redis(s) => s.delete(id).await,
            Store014::Memory(s) => s.delete(id).await,
        }
    }
}

static SAID: Once = Once::new();

/// The Redis server to test against, from `REDIS_URL`; says once, on stderr, which
/// store the tests use.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    if url.is_none() && std::env::var("REQUIRE_REDIS").is_ok_and(|v| v == "1") {
        panic!("REQUIRE_REDIS=1 but REDIS_URL is not set: run the README's test command");
    }
    SAID.call_once(|| {
        let line = match &url {
            Some(u) => {
                format!("Redis tests: tower-sessions-redis-store against the real server at {u}\n")
            }
            None => "Redis tests: REDIS_URL is not set, so tower-sessions-redis-store was not \
                     run; these suites use tower-sessions-memory-store 0.14 behind \
                     TowerStore014 instead\n"
                .to_string(),
        };
        let _ = std::io::stderr().write_all(line.as_bytes());
    });
    url
}

/// A tower-sessions-core 0.14 store behind the engine: Redis when `REDIS_URL` is set.
pub async fn store() -> TowerStore014<Store014> {
    let Some(url) = redis_url() else {
        return TowerStore014::new(Store014::Memory(Default::default()));
    };
    let config = Config::from_url(&url).expect("a valid REDIS_URL");
    let pool = Pool::new(config, None, None, None, 2).expect("a Redis pool");
    pool.init()
        .await
        .expect("reach the Redis server at REDIS_URL");
    TowerStore014::new(Store014::Redis(RedisStore::new(pool)))
}
