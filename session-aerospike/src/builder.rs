//! [`AerospikeStoreBuilder`]: the store's settings, and connecting it to a cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aerospike::{
    Client, ClientPolicy, Expiration, Key, ReadModeAp, ReadPolicy, Replica, ResultCode, Value,
    WritePolicy,
};

use crate::bins::{BinNames, MAX_BIN_NAME};
use crate::discovery;
use crate::error::Error;
use crate::filter::WriteFilter;
use crate::key::NEXT_STORE;
use crate::pipeline::Pipeline;
use crate::store::{millis, AerospikeStore, Inner, TtlPolicy};
use crate::watch::{self, SplitWatch};

/// Commands in flight at once before further operations are coalesced into batches
/// (see [`AerospikeStoreBuilder::max_in_flight`]).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1;

/// The default total budget of a store call ([`AerospikeStoreBuilder::timeout`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(6);

/// The default budget of one attempt ([`AerospikeStoreBuilder::attempt_timeout`]).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// The default retries of a store call ([`AerospikeStoreBuilder::max_retries`]).
pub const DEFAULT_MAX_RETRIES: usize = 40;

/// The default pause between attempts ([`AerospikeStoreBuilder::retry_spacing`]).
pub const DEFAULT_RETRY_SPACING: Duration = Duration::from_millis(100);

/// Builder for [`AerospikeStore`].
#[derive(Debug, Clone)]
pub struct AerospikeStoreBuilder {
    namespace: String,
    set: String,
    bins: BinNames,
    ttl: TtlPolicy,
    server_ttl: bool,
    client_policy: ClientPolicy,
    timeout: Duration,
    attempt_timeout: Duration,
    retries: usize,
    retry_spacing: Duration,
    replica: Option<Replica>,
    max_in_flight: usize,
    wait_out_splits: bool,
}

impl Default for AerospikeStoreBuilder {
    fn default() -> Self {
        AerospikeStoreBuilder {
            namespace: "test".into(),
            set: "sessions".into(),
            bins: BinNames::default(),
            ttl: TtlPolicy::FromSession,
            server_ttl: true,
            client_policy: ClientPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            retries: DEFAULT_MAX_RETRIES,
            retry_spacing: DEFAULT_RETRY_SPACING,
            replica: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            wait_out_splits: true,
        }
    }
}

impl AerospikeStoreBuilder {
    /// The namespace. Default: `test`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The set. Default: `sessions`.
    pub fn set(mut self, set: impl Into<String>) -> Self {
        self.set = set.into();
        self
    }

    /// The bin names. Default: [`BinNames::default`]. Each at most 15 bytes.
    pub fn bin_names(mut self, bins: BinNames) -> Self {
        self.bins = bins;
        self
    }

    /// How long records live. Default: [`TtlPolicy::FromSession`].
    pub fn ttl_policy(mut self, ttl: TtlPolicy) -> Self {
        self.ttl = ttl;
        self
    }

    /// The client policy for [`connect`](Self::connect): user and password, TLS, tend
    /// interval, connection limits. Default: [`ClientPolicy::default`].
    pub fn client_policy(mut self, policy: ClientPolicy) -> Self {
        self.client_policy = policy;
        self
    }

    /// The total time budget of each store call, retries included. Default:
    /// [`DEFAULT_TIMEOUT`] (6 s), longer than a cluster takes to replace a node that died
    /// or hangs with Aerospike's default heartbeat (about 1.5 s to notice, then a
    /// rebalance), so a request caught in a failover waits instead of failing.
    ///
    /// It is also what a request waits before its 503 when the whole cluster is down:
    /// lower it where that matters more than riding out a failover.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = session_aerospike::AerospikeStore::builder().timeout(Duration::from_secs(2));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a store call is retried within its [`timeout`](Self::timeout).
    /// Default: [`DEFAULT_MAX_RETRIES`] (40: the budget, not the count, ends a call).
    ///
    /// ```
    /// let builder = session_aerospike::AerospikeStore::builder().max_retries(5);
    /// ```
    pub fn max_retries(mut self, retries: usize) -> Self {
        self.retries = retries;
        self
    }

    /// The time limit of one attempt of a store call: when a node does not answer
    /// within it, the call is retried (on the next replica, for reads and writes alike)
    /// while the [`timeout`](Self::timeout) and [`max_retries`](Self::max_retries)
    /// allow. Default: [`DEFAULT_ATTEMPT_TIMEOUT`] (500 ms), so a hung node costs a
    /// read half a second before its replica answers.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = session_aerospike::AerospikeStore::builder()
    ///     .attempt_timeout(Duration::from_millis(200));
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The pause between two attempts of a store call, so retries spread over a
    /// cluster's failover instead of all failing in its first milliseconds. Default:
    /// [`DEFAULT_RETRY_SPACING`] (100 ms).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = session_aerospike::AerospikeStore::builder()
    ///     .retry_spacing(Duration::from_millis(50));
    /// ```
    pub fn retry_spacing(mut self, spacing: Duration) -> Self {
        self.retry_spacing = spacing;
        self
    }

    /// Which node a call goes to first, and which next on a retry. Default: the
    /// client's, [`Replica::Sequence`] (the master, then the replicas).
    pub fn replica(mut self, replica: Replica) -> Self {
        self.replica = Some(replica);
        self
    }

    /// How many commands the store keeps in flight at once (default
    /// [`DEFAULT_MAX_IN_FLIGHT`], at least 1). Session operations that arrive while that
    /// many are in flight wait, and leave together as one batch command as soon as one
    /// of those returns: under load, N concurrent requests cost one round trip and one
    /// send and receive on the socket instead of N. At low load nothing waits: an
    /// operation that finds a place free yields to the runtime once (so operations of
    /// requests ready at the same moment join it) and is sent at once, alone as the
    /// plain single-record command. Inside a batch every operation keeps its own
    /// policy (update-only saves, create-only creates, the liveness filter) and its own
    /// outcome.
    ///
    /// A command in flight for more than 5 ms (a node died or hangs) stops counting, so
    /// the operations behind it are sent without waiting out its timeout.
    ///
    /// The default suits an app and a cluster on one network: on this machine's
    /// benchmark (`BENCHMARKS.md`), 1 gave the most requests per second on both
    /// adapters. Raise it when each round trip is long and the app's CPU is not the
    /// limit.
    pub fn max_in_flight(mut self, commands: usize) -> Self {
        self.max_in_flight = commands.max(1);
        self
    }

    /// Sends every operation at once as its own command, never in a batch (for a proxy or
    /// a server without batch commands).
    pub fn without_coalescing(self) -> Self {
        self.max_in_flight(usize::MAX)
    }

    /// Whether store calls wait while the cluster's nodes disagree about which cluster
    /// they form (a node that was split from the cluster has returned and not rejoined
    /// yet, a few seconds). Default: on.
    ///
    /// Such a node serves its old copies of the partitions it mastered until it rejoins:
    /// without the wait, a read can find a logged-out session live, and a write to such
    /// a session brings it back for good (measured on a real cluster; see
    /// `docs/aerospike.md`). The store asks every node for its cluster key every 50 ms
    /// (a `statistics` info call each) while it knows two nodes or more; while they
    /// differ, each call waits for them to agree, for its [`timeout`](Self::timeout) at
    /// most, and then answers [`StoreError::Unavailable`](session_core::StoreError::Unavailable).
    /// A node just started that has no cluster yet is left out, and so is a node that
    /// has not answered for 500 ms (one that missed fewer polls counts with the key it
    /// last reported), so neither a node's death nor a rolling restart holds calls up
    /// for more than half a second.
    ///
    /// ```
    /// let builder = session_aerospike::AerospikeStore::builder().wait_out_splits(false);
    /// ```
    pub fn wait_out_splits(mut self, wait: bool) -> Self {
        self.wait_out_splits = wait;
        self
    }

    /// Write records without a TTL, for namespaces that refuse TTLs (no `nsup-period`),
    /// as Aerospike's own session recipe does. Expiry is still enforced on load from the
    /// `expires` bin. Default: off, and such a namespace is an error at start-up.
    ///
    /// # Warning
    ///
    /// The database will not remove expired sessions: sweep them yourself.
    pub fn without_server_ttl(mut self) -> Self {
        self.server_ttl = false;
        self
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |what, name: &str, why| {
            Err(Error::InvalidName {
                what,
                name: name.to_owned(),
                why,
            })
        };
        if self.namespace.is_empty() || self.namespace.len() > 31 {
            return bad("namespace", &self.namespace, "1 to 31 bytes");
        }
        if self.set.len() > 63 {
            return bad("set", &self.set, "at most 63 bytes");
        }
        let b = &self.bins;
        let mut names = [
            &b.data,
            &b.expires,
            &b.expiry,
            &b.version,
            &b.seen,
            &b.short_id,
            &b.ended,
        ];
        for name in names {
            if name.is_empty() || name.len() > MAX_BIN_NAME {
                return bad("bin name", name, "1 to 15 bytes");
            }
        }
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return bad("bin name", &b.data, "the bin names must differ");
        }
        Ok(())
    }

    /// Connects to `hosts` (`"10.0.0.1:3000,10.0.0.2:3000"`), then checks that the
    /// namespace accepts records with a TTL.
    ///
    /// It also asks each node which address it advertises to its peers (its
    /// `access-address`). The client finds nodes through those addresses, and comes back
    /// to the ones given here only when it knows no node at all: a node that advertises
    /// an address this machine cannot reach would be lost to the client for good the
    /// first time it restarts. When such a node is reachable at the same port under the
    /// host given here, the store connects again with the client's
    /// [`ip_map`](ClientPolicy::ip_map) rewriting the one host to the other, and logs a
    /// warning; the lasting fix is each node's `access-address`. Entries of an `ip_map`
    /// the application set win.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] when the cluster cannot be reached, [`Error::TtlForbidden`]
    /// when the namespace refuses TTLs (see [`without_server_ttl`](Self::without_server_ttl)),
    /// [`Error::InvalidName`] for a name Aerospike cannot hold.
    pub async fn connect(self, hosts: &str) -> Result<AerospikeStore, Error> {
        self.check()?;
        let connect = |policy: ClientPolicy| async move {
            Client::new(&policy, &hosts.to_owned())
                .await
                .map_err(|source| Error::Connect {
                    hosts: hosts.to_owned(),
                    source,
                })
        };
        let mut client = connect(self.client_policy.clone()).await?;
        let found = discovery::check(&client, &self.client_policy).await;
        if !found.is_empty() {
            match discovery::ip_map(&found, self.client_policy.ip_map.as_ref()) {
                Some(map) => {
                    tracing::warn!(
                        nodes = %discovery::describe(&found),
                        "Aerospike nodes advertise addresses this machine cannot reach; \
                         the store maps them to the addresses it was given (ClientPolicy::ip_map) \
                         so that a restarted node is found again. Set each node's access-address \
                         to an address clients can reach"
                    );
                    let _ = client.close().await;
                    let mut policy = self.client_policy.clone();
                    policy.ip_map = Some(map);
                    client = connect(policy).await?;
                }
                None => warn_unreachable(&found),
            }
        }
        self.build(Arc::new(client)).await
    }

    /// Uses an application's client (never closed by the store), then checks the
    /// namespace like [`connect`](Self::connect).
    ///
    /// The check of advertised addresses that [`connect`](Self::connect) makes only
    /// logs a warning here: the client is the application's, and its `ip_map` too.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), without [`Error::Connect`].
    pub async fn from_client(self, client: Arc<Client>) -> Result<AerospikeStore, Error> {
        self.check()?;
        let found = discovery::check(&client, &self.client_policy).await;
        if !found.is_empty() {
            warn_unreachable(&found);
        }
        self.build(client).await
    }

    async fn build(self, client: Arc<Client>) -> Result<AerospikeStore, Error> {
        let mut read = ReadPolicy::default();
        // While a partition migrates (a node left or came back), its master may hold an
        // old copy or none: consult every copy, so a session is never read stale or
        // missing. Costs one more round trip between nodes for such reads only.
        read.base_policy.read_mode_ap = ReadModeAp::All;
        let mut write = WritePolicy::default();
        for base in [&mut read.base_policy, &mut write.base_policy] {
            base.total_timeout = millis(self.timeout);
            base.socket_timeout = millis(self.attempt_timeout);
            base.max_retries = self.retries;
            base.sleep_between_retries = millis(self.retry_spacing);
            if let Some(r) = self.replica {
                base.replica = r;
            }
        }
        let store = AerospikeStore {
            inner: Arc::new(Inner {
                uid: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
                write_filter: WriteFilter::new(&self.bins),
                pipeline: Arc::new(Pipeline::new(
                    client.clone(),
                    read,
                    write.clone(),
                    self.max_in_flight,
                )),
                client,
                namespace: self.namespace,
                set: self.set,
                bins: self.bins,
                ttl: self.ttl,
                server_ttl: self.server_ttl,
                write,
                down: AtomicBool::new(false),
                splits: self.wait_out_splits.then(|| Arc::new(SplitWatch::new())),
                user_index: tokio::sync::OnceCell::new(),
            }),
        };
        if let Some(splits) = &store.inner.splits {
            tokio::spawn(watch::run(
                Arc::downgrade(&store.inner),
                Arc::downgrade(&store.inner.client),
                Arc::downgrade(splits),
            ));
        }
        store.probe().await?;
        Ok(store)
    }
}

/// Logs nodes whose advertised addresses do not answer, where the store cannot map them.
fn warn_unreachable(found: &[discovery::Unreachable]) {
    tracing::warn!(
        nodes = %discovery::describe(found),
        "Aerospike nodes advertise addresses this machine cannot reach: a node that leaves \
         the client's view (a restart) will not be found again until the application \
         restarts. Set each node's access-address to an address clients can reach, or \
         the client's ClientPolicy::ip_map"
    );
}

impl AerospikeStore {
    /// A builder with the defaults: namespace `test`, set `sessions`.
    pub fn builder() -> AerospikeStoreBuilder {
        AerospikeStoreBuilder::default()
    }

    /// Connects to `hosts` with the defaults; see [`AerospikeStoreBuilder::connect`].
    ///
    /// # Errors
    ///
    /// As [`AerospikeStoreBuilder::connect`].
    pub async fn connect(hosts: &str) -> Result<AerospikeStore, Error> {
        Self::builder().connect(hosts).await
    }

    /// Uses an application's client with the defaults (never closed by the store); see
    /// [`AerospikeStoreBuilder::from_client`].
    ///
    /// # Errors
    ///
    /// As [`AerospikeStoreBuilder::from_client`].
    pub async fn from_client(client: Arc<Client>) -> Result<AerospikeStore, Error> {
        Self::builder().from_client(client).await
    }

    /// Checks the namespace accepts writes with a TTL (or warns once that it will not
    /// expire sessions, with [`without_server_ttl`](AerospikeStoreBuilder::without_server_ttl)).
    pub(crate) async fn probe(&self) -> Result<(), Error> {
        let ns = &self.inner.namespace;
        if !self.inner.server_ttl {
            tracing::warn!(
                namespace = %ns,
                "session records are written without a TTL: the database will not expire them; \
                 call AerospikeStore::delete_expired() periodically"
            );
            return Ok(());
        }
        let key = Key::new(
            ns.clone(),
            self.inner.set.clone(),
            Value::from("__session_ttl_probe__"),
        )
        .map_err(|source| Error::Probe {
            namespace: ns.clone(),
            source,
        })?;
        let mut policy = self.inner.write.clone();
        policy.expiration = Expiration::Seconds(1);
        let bins = [self.version_bin()];
        match self.inner.client.put(&policy, &key, &bins).await {
            Ok(()) => {
                let _ = self.inner.client.delete(&self.inner.write, &key).await;
                Ok(())
            }
            Err(e) if e.matches(&[ResultCode::FailForbidden]) => Err(Error::TtlForbidden {
                namespace: ns.clone(),
            }),
            Err(source) => Err(Error::Probe {
                namespace: ns.clone(),
                source,
            }),
        }
    }
}
