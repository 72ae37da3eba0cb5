//! Aerospike test support: the protocol-level test server, and store factories that use a
//! real cluster when `AEROSPIKE_HOSTS` is set.

pub mod msgpack;
pub mod real;
pub mod server;

use std::io::Write as _;
use std::sync::{Arc, Once};

use session_aerospike::{AerospikeStore, AerospikeStoreBuilder};
use session_core::{Changes, Id, Record, SessionStore, StoreError, Ttl, Update};
use time::OffsetDateTime;

pub use real::RealCluster;
pub use server::AerospikeTestServer;

use crate::http_suite::get;
use crate::TestServer;

/// Checks `app` while its store is down, with `pair` a session cookie it issued: 503
/// where the session is needed, 200 where it is not, and a logout that never claims
/// success yet still removes the cookie.
pub async fn assert_store_down(app: &TestServer, pair: &str) {
    assert_eq!(get(app, "/get/a", Some(pair)).await.status, 503);
    assert_eq!(get(app, "/set/b/1", None).await.status, 503);
    let plain = get(app, "/plain", Some(pair)).await;
    assert_eq!((plain.status, plain.body.as_str()), (200, "plain"));
    let out = get(app, "/logout", Some(pair)).await;
    assert_eq!(out.status, 503);
    assert_eq!(out.cookie().max_age(), Some(time::Duration::ZERO));
}

/// The failover settings of README's Failover section, which the cluster soak, the
/// real-server fault tests and the `split` measurement ride a failover with.
pub mod failover {
    use std::time::Duration;

    use aerospike::BasePolicy;
    use session_aerospike::AerospikeStoreBuilder;

    /// The whole budget of one store call.
    pub const TIMEOUT: Duration = Duration::from_secs(6);
    /// One attempt's budget; then the next replica is tried.
    pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
    /// Retries within [`TIMEOUT`].
    pub const MAX_RETRIES: usize = 40;
    /// The pause between retries, spreading them over the failover.
    pub const RETRY_SPACING: Duration = Duration::from_millis(100);

    /// A store builder with these settings.
    pub fn builder() -> AerospikeStoreBuilder {
        session_aerospike::AerospikeStore::builder()
            .timeout(TIMEOUT)
            .attempt_timeout(ATTEMPT_TIMEOUT)
            .max_retries(MAX_RETRIES)
            .retry_spacing(RETRY_SPACING)
    }

    /// The same settings on a client policy of one's own, as the store sets them.
    pub fn apply(base: &mut BasePolicy) {
        let millis = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        base.total_timeout = millis(TIMEOUT);
        base.socket_timeout = millis(ATTEMPT_TIMEOUT);
        base.max_retries = MAX_RETRIES;
        base.sleep_between_retries = millis(RETRY_SPACING);
    }
}

static SAID: Once = Once::new();

/// The real cluster to test against, from `AEROSPIKE_HOSTS`; says once, on stderr and
/// past the test harness's capture, which kind of server the tests use.
pub fn real_hosts() -> Option<String> {
    let hosts = std::env::var("AEROSPIKE_HOSTS")
        .ok()
        .filter(|h| !h.trim().is_empty());
    SAID.call_once(|| {
        let line = match &hosts {
            Some(h) => format!("Aerospike tests: running against the real server at {h}\n"),
            None => "Aerospike tests: AEROSPIKE_HOSTS is not set, so the real-server tests were \
                     not run; these tests use the protocol test server in tests/ instead\n"
                .to_string(),
        };
        let _ = std::io::stderr().write_all(line.as_bytes());
    });
    hosts
}

/// An [`AerospikeStore`] together with the test server behind it (if any), which lives
/// as long as any clone of the store.
#[derive(Clone, Debug)]
pub struct Served {
    /// The store.
    pub store: AerospikeStore,
    /// The test server, when no real cluster was given.
    pub server: Option<Arc<tokio::sync::Mutex<AerospikeTestServer>>>,
}

impl Served {
    /// A store from `builder` on a real cluster (`AEROSPIKE_HOSTS`) or a fresh test server.
    pub async fn start(builder: AerospikeStoreBuilder) -> Served {
        if let Some(hosts) = real_hosts() {
            let store = builder
                .connect(&hosts)
                .await
                .expect("connect to AEROSPIKE_HOSTS");
            return Served {
                store,
                server: None,
            };
        }
        let server = AerospikeTestServer::start().await;
        let store = builder
            .connect(&server.hosts())
            .await
            .expect("connect to the test server");
        Served {
            store,
            server: Some(Arc::new(tokio::sync::Mutex::new(server))),
        }
    }

    /// A store with the defaults (namespace `test`, set `sessions`).
    pub async fn default_store() -> Served {
        Served::start(AerospikeStore::builder()).await
    }
}

impl SessionStore for Served {
    fn label(&self) -> &'static str {
        self.store.label()
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
        self.store.load(id).await
    }
    async fn create(&self, record: &mut Record, ttl: Ttl) -> Result<(), StoreError> {
        self.store.create(record, ttl).await
    }
    async fn save(
        &self,
        record: &Record,
        changes: &Changes,
        ttl: Ttl,
    ) -> Result<Update, StoreError> {
        self.store.save(record, changes, ttl).await
    }
    async fn touch(&self, id: &Id, at: OffsetDateTime, ttl: Ttl) -> Result<Update, StoreError> {
        self.store.touch(id, at, ttl).await
    }
    async fn delete(&self, id: &Id) -> Result<(), StoreError> {
        self.store.delete(id).await
    }
    async fn cycle(&self, old: &Id, record: &mut Record, ttl: Ttl) -> Result<Update, StoreError> {
        self.store.cycle(old, record, ttl).await
    }
    async fn user_sessions(
        &self,
        user: &str,
        current: Option<&Id>,
    ) -> Result<Vec<session_core::SessionInfo>, StoreError> {
        self.store.user_sessions(user, current).await
    }
    async fn end_user_sessions(&self, user: &str, keep: Option<&Id>) -> Result<usize, StoreError> {
        self.store.end_user_sessions(user, keep).await
    }
}

/// The store suite's capabilities of an Aerospike store in this run: a user's sessions
/// need a secondary index, which only the real server has.
pub fn caps() -> crate::Caps {
    let users = if real_hosts().is_some() {
        crate::UserSessions::Supported
    } else {
        crate::UserSessions::NotShownHere
    };
    crate::Caps::NATIVE.with_user_sessions(users)
}

/// An [`AerospikeStore`] (one command in flight) whose every operation travels inside
/// a batch command: each runs beside two loads of unknown ids, polled in order, so the
/// first load takes the only place and yields, and the operation and the second load
/// join its batch. What the conformance suite checks through it, it checks of rows of
/// a real batch command.
#[derive(Clone, Debug)]
pub struct Batched(pub Served);

impl Batched {
    /// A store with one command in flight, on a real cluster or a fresh test server.
    pub async fn start() -> Batched {
        Batched(Served::start(AerospikeStore::builder().max_in_flight(1)).await)
    }

    /// Runs `op` inside a batch of three.
    pub async fn around<T>(&self, op: impl std::future::Future<Output = T>) -> T {
        let (first, out, last) = futures_util::future::join3(
            self.0.store.load(&Id::random()),
            op,
            self.0.store.load(&Id::random()),
        )
        .await;
        assert!(
            matches!((&first, &last), (Ok(None), Ok(None))),
            "unknown ids load as nothing: {first:?} {last:?}"
        );
        out
    }
}

impl SessionStore for Batched {
    async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
        self.around(self.0.store.load(id)).await
    }
    async fn create(&self, record: &mut Record, ttl: Ttl) -> Result<(), StoreError> {
        let store = self.0.store.clone();
        self.around(store.create(record, ttl)).await
    }
    async fn save(
        &self,
        record: &Record,
        changes: &Changes,
        ttl: Ttl,
    ) -> Result<Update, StoreError> {
        self.around(self.0.store.save(record, changes, ttl)).await
    }
    async fn touch(&self, id: &Id, at: OffsetDateTime, ttl: Ttl) -> Result<Update, StoreError> {
        self.around(self.0.store.touch(id, at, ttl)).await
    }
    async fn delete(&self, id: &Id) -> Result<(), StoreError> {
        self.around(self.0.store.delete(id)).await
    }
    async fn cycle(&self, old: &Id, record: &mut Record, ttl: Ttl) -> Result<Update, StoreError> {
        let store = self.0.store.clone();
        self.around(store.cycle(old, record, ttl)).await
    }
    async fn user_sessions(
        &self,
        user: &str,
        current: Option<&Id>,
    ) -> Result<Vec<session_core::SessionInfo>, StoreError> {
        self.0.store.user_sessions(user, current).await
    }
    async fn end_user_sessions(&self, user: &str, keep: Option<&Id>) -> Result<usize, StoreError> {
        self.0.store.end_user_sessions(user, keep).await
    }
}
