//! Aerospike test support: the protocol-level test server, and store factories that use a
//! real cluster when `AEROSPIKE_HOSTS` is set.

pub mod msgpack;
pub mod real;
pub mod server;

/// Sessions logged in and read back over HTTP, for the tests and measurements of ended
/// sessions on a real cluster.
pub mod ends {
    use std::time::{Duration, Instant};

    use futures_util::future::join_all;
    use serde_json::{json, Value};
    use session_core::Id;

    use super::RealCluster;
    use crate::http_suite::get;
    use crate::TestServer;

    /// A new session bound to `user` (the suite apps' `/bind`): its cookie pair.
    pub async fn logged_in(app: &TestServer, user: &str) -> String {
        let r = get(app, &format!("/bind/{user}/x"), None).await;
        assert_eq!(r.status, 200, "log in {user}: {}", r.body);
        r.cookie_pair()
    }

    /// Whom `cookie`'s session belongs to: a user, or null for no session.
    pub async fn whoami(app: &TestServer, cookie: &str) -> Value {
        let r = get(app, "/whoami", Some(cookie)).await;
        assert_eq!(r.status, 200, "whoami: {}", r.body);
        r.json()
    }

    /// The session id in a plain (unsigned) cookie pair.
    pub fn id_of(cookie: &str) -> Id {
        let value = cookie.split_once('=').map_or(cookie, |(_, v)| v);
        value.parse().expect("a plain session id")
    }

    /// The partition of `id`'s record under the store's defaults (namespace `test`, set
    /// `sessions`).
    pub fn partition_of(id: &Id) -> usize {
        let key = aerospike::Key::new(
            "test",
            "sessions",
            aerospike::Value::from(id.encode().as_str()),
        )
        .expect("a key");
        let digest = key.digest();
        usize::from(u16::from_le_bytes([digest[0], digest[1]])) & 4095
    }

    /// Sessions on node 3, and elsewhere, in each [`split_round`].
    pub const PER_SIDE: usize = 40;

    /// What one [`split_round`] saw.
    #[derive(Debug, Default)]
    pub struct Seen {
        /// Logouts acknowledged.
        pub acked: usize,
        /// Logouts acknowledged before node 3 returned.
        pub acked_before: usize,
        /// Requests made after their session's logout was acknowledged.
        pub reads: usize,
        /// Those that found the session live.
        pub live_reads: usize,
        /// When the last live read began, after node 3 returned.
        pub last_live: Option<f64>,
        /// Sessions live again once the cluster had settled.
        pub back: usize,
    }

    /// Sessions logged in until `PER_SIDE` of them have records node 3 masters and
    /// `PER_SIDE` have records another node masters.
    async fn sessions(app: &TestServer, cluster: &RealCluster, round: &str) -> Vec<String> {
        let masters = cluster.masters(3, "test").await;
        let (mut on_3, mut elsewhere) = (Vec::new(), Vec::new());
        let mut i = 0;
        while on_3.len() < PER_SIDE || elsewhere.len() < PER_SIDE {
            let cookie = logged_in(app, &format!("{round}u{i}")).await;
            i += 1;
            let side = if masters[partition_of(&id_of(&cookie))] {
                &mut on_3
            } else {
                &mut elsewhere
            };
            if side.len() < PER_SIDE {
                side.push(cookie);
            }
        }
        on_3.into_iter().chain(elsewhere).collect()
    }

    /// One round of the window after a split, on a real 3-node `cluster` served by `app`:
    /// see the `split` binary. `write` makes each read a write (`/set`) as well.
    pub async fn split_round(
        app: &TestServer,
        cluster: &RealCluster,
        delay: Duration,
        round: &str,
        write: bool,
    ) -> Seen {
        let cookies = sessions(app, cluster, round).await;
        cluster.pause(3);
        let frozen = Instant::now();
        let logouts = join_all(cookies.iter().map(|cookie| async move {
            let r = get(app, "/flush", Some(cookie)).await;
            (r.status == 200).then(Instant::now)
        }));
        let resume = async {
            tokio::time::sleep_until((frozen + delay).into()).await;
            cluster.resume(3);
            Instant::now()
        };
        let (acks, returned) = tokio::join!(logouts, resume);
        let mut seen = Seen {
            acked: acks.iter().flatten().count(),
            acked_before: acks.iter().flatten().filter(|at| **at < returned).count(),
            ..Seen::default()
        };
        while returned.elapsed() < Duration::from_secs(8) {
            for (cookie, acked) in cookies.iter().zip(&acks) {
                let Some(acked) = acked else { continue };
                let started = Instant::now();
                if started < *acked {
                    continue;
                }
                seen.reads += 1;
                let live = if write {
                    // A live session answers without a new cookie; an ended one gets a
                    // fresh session, and a new cookie.
                    let r = get(app, "/set/x/1", Some(cookie)).await;
                    r.status == 200 && r.set_cookies.is_empty()
                } else {
                    whoami(app, cookie).await != json!(null)
                };
                if live {
                    seen.live_reads += 1;
                    seen.last_live = Some((started - returned).as_secs_f64());
                }
            }
        }
        cluster.wait_migrations().await;
        for (cookie, acked) in cookies.iter().zip(&acks) {
            if acked.is_some() && whoami(app, cookie).await != json!(null) {
                seen.back += 1;
            }
        }
        seen
    }
}

use std::io::Write as _;
use std::sync::{Arc, Once};

use session_aerospike::{AerospikeStore, AerospikeStoreBuilder};
use session_core::store::EndPass;
use session_core::{Changes, Created, Cycle, Id, Record, SessionStore, StoreError, Ttl, Update};
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

/// The store's default timeouts and retries ([`AerospikeStore::builder`]'s) on a plain
/// client's policy, for measurements that use the client directly.
pub fn store_policy(base: &mut aerospike::BasePolicy) {
    let millis = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    base.total_timeout = millis(session_aerospike::DEFAULT_TIMEOUT);
    base.socket_timeout = millis(session_aerospike::DEFAULT_ATTEMPT_TIMEOUT);
    base.max_retries = session_aerospike::DEFAULT_MAX_RETRIES;
    base.sleep_between_retries = millis(session_aerospike::DEFAULT_RETRY_SPACING);
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
    async fn create(&self, record: &Record, ttl: Ttl) -> Result<Created, StoreError> {
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
    async fn cycle(&self, old: &Id, record: &Record, ttl: Ttl) -> Result<Cycle, StoreError> {
        self.store.cycle(old, record, ttl).await
    }
    async fn user_sessions(
        &self,
        user: &str,
        current: Option<&Id>,
    ) -> Result<Vec<session_core::SessionInfo>, StoreError> {
        self.store.user_sessions(user, current).await
    }
    async fn end_user_pass(&self, user: &str, keep: Option<&Id>) -> Result<EndPass, StoreError> {
        self.store.end_user_pass(user, keep).await
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
    async fn create(&self, record: &Record, ttl: Ttl) -> Result<Created, StoreError> {
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
    async fn cycle(&self, old: &Id, record: &Record, ttl: Ttl) -> Result<Cycle, StoreError> {
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
    async fn end_user_pass(&self, user: &str, keep: Option<&Id>) -> Result<EndPass, StoreError> {
        self.0.store.end_user_pass(user, keep).await
    }
}
