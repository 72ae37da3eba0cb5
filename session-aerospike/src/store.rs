//! [`AerospikeStore`].

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aerospike::expressions::{cond, eq, int_bin, int_val, num_mul, Expression};
use aerospike::operations::cdt_context::{ctx_map_key, CdtContext};
use aerospike::operations::exp::{write_exp, ExpWriteFlags};
use aerospike::operations::{self, maps, Operation};
use aerospike::query::Filter;
use aerospike::{
    AdminPolicy, Bin, Bins, Client, ClientPolicy, CollectionIndexType, ErrorKind, Expiration,
    GenerationPolicy, IndexType, Key, MapPolicy, MapReturnType, PartitionFilter, QueryDuration,
    QueryPolicy, ReadModeAp, ReadPolicy, RecordExistsAction, Replica, ResultCode, Statement,
    Task as _, Value, WritePolicy,
};
use futures_util::StreamExt as _;
use session_core::user::END_PASSES;
use session_core::{
    Change, Changes, Id, Record, SessionInfo, SessionStore, StoreError, Ttl, Update,
    CREATE_ATTEMPTS, USER_KEY,
};
use time::OffsetDateTime;

use crate::codec;
use crate::discovery;
use crate::filter::{self, WriteFilter};
use crate::pipeline::{Op, Pipeline};
use crate::watch::{self, SplitWatch};

/// The stored format's version, written in every record's version bin.
///
/// * 2: `expires` holds Unix nanoseconds.
/// * 1: `expires` held whole Unix seconds, rounded up. Such records still load, and the
///   next save or touch rewrites them as version 2.
pub const FORMAT_VERSION: i64 = 2;

/// How long building the user index may take at its first use.
const INDEX_BUDGET: Duration = Duration::from_secs(30);

/// How long [`AerospikeStore::clear`] waits for every node to end every session.
const CLEAR_BUDGET: Duration = Duration::from_secs(10);

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

/// Writes to an ended session's record after the end itself, each raising its
/// generation by one (see [`AerospikeStore::lead`]).
const END_LEAD: usize = 2;

/// Aerospike's limit on bin names.
const MAX_BIN_NAME: usize = 15;

/// Why an [`AerospikeStore`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cluster could not be reached or refused the client.
    #[error("could not connect to the Aerospike cluster at {hosts}")]
    Connect {
        /// The hosts string given.
        hosts: String,
        /// The client's error.
        #[source]
        source: aerospike::Error,
    },
    /// The namespace refuses records with a TTL.
    #[error(
        "the Aerospike namespace `{namespace}` refuses records with a TTL (FAIL_FORBIDDEN): \
         set `nsup-period` on it (or `allow-ttl-without-nsup true`) so the database expires \
         sessions, or opt in to `without_server_ttl()` to write records without a TTL and \
         sweep them with `delete_expired()`"
    )]
    TtlForbidden {
        /// The namespace.
        namespace: String,
    },
    /// The start-up check could not write to the namespace.
    #[error("the Aerospike namespace `{namespace}` could not be written to")]
    Probe {
        /// The namespace.
        namespace: String,
        /// The client's error.
        #[source]
        source: aerospike::Error,
    },
    /// A namespace, set or bin name Aerospike cannot hold.
    #[error("invalid {what} {name:?}: {why}")]
    InvalidName {
        /// Which name.
        what: &'static str,
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// How long records live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlPolicy {
    /// The session's own TTL: its cookie's `Max-Age`, or the configured default store TTL
    /// for browser-session cookies (the default).
    FromSession,
    /// This TTL for every record, whatever the session's expiry.
    Fixed(Ttl),
}

/// The names of the bins a session record uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinNames {
    /// The session's values, a native map. Default: `data`.
    pub data: String,
    /// The absolute expiry, Unix nanoseconds. Default: `expires`.
    pub expires: String,
    /// The session's own expiry, when a handler set one (JSON text). Default: `expiry`.
    pub expiry: String,
    /// The stored format's version. Default: `v`.
    pub version: String,
    /// When the session was last written (created, saved or touched), Unix nanoseconds:
    /// its "last seen" in a user's list of sessions. Default: `seen`.
    pub seen: String,
    /// The session id's first six characters, for a user's list of sessions (the full
    /// id is never stored). Default: `sid`.
    pub short_id: String,
    /// Present only on an ended session's record (see [`AerospikeStore`], "Ended
    /// sessions"): until when it must be kept, Unix nanoseconds. Default: `ended`.
    pub ended: String,
}

impl Default for BinNames {
    fn default() -> Self {
        BinNames {
            data: "data".into(),
            expires: "expires".into(),
            expiry: "expiry".into(),
            version: "v".into(),
            seen: "seen".into(),
            short_id: "sid".into(),
            ended: "ended".into(),
        }
    }
}

/// Distinguishes stores (and their namespace and set) in [`DIGESTS`]: never reused.
static NEXT_STORE: AtomicU64 = AtomicU64::new(1);

/// Slots in each thread's [`DIGESTS`]: enough that, under load, a request's load and its
/// save or touch find the digest although other requests' operations ran in between
/// (the pipeline batches up to dozens of them).
const DIGEST_SLOTS: usize = 64;

/// A remembered digest: the store, the session, and its record's digest.
type Remembered = Option<(u64, Id, [u8; 20])>;

thread_local! {
    /// The record digests of keys this thread built lately, one slot per id's low bits
    /// (ids are random, so sessions spread evenly; two in one slot take turns).
    static DIGESTS: [Cell<Remembered>; DIGEST_SLOTS] =
        const { [const { Cell::new(None) }; DIGEST_SLOTS] };
}

/// `id`'s slot in [`DIGESTS`].
fn digest_slot(id: &Id) -> usize {
    usize::from(id.to_bytes()[0]) % DIGEST_SLOTS
}

/// The key of `id`'s record in the store numbered `store`.
///
/// A request's second operation on its session (a load, then a save or touch) usually
/// runs on the same thread: it reuses the digest (RIPEMD-160, the costliest part of a
/// key) this thread computed for the first. A key built that way carries no user key,
/// which the store never sends anyway.
fn session_key(store: u64, namespace: &str, set: &str, id: &Id) -> Result<Key, StoreError> {
    let slot = digest_slot(id);
    if let Some((was, last, digest)) = DIGESTS.with(|slots| slots[slot].get()) {
        if was == store && last == *id {
            return Ok(Key::with_digest(
                namespace.to_owned(),
                set.to_owned(),
                None,
                digest,
            ));
        }
    }
    let user_key = Value::String(id.encode().as_str().to_owned());
    let key = Key::new(namespace.to_owned(), set.to_owned(), user_key)
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    let digest = key.digest();
    DIGESTS.with(|slots| slots[slot].set(Some((store, *id, digest))));
    Ok(key)
}

struct Inner {
    /// From [`NEXT_STORE`].
    uid: u64,
    client: Arc<Client>,
    namespace: String,
    set: String,
    bins: BinNames,
    ttl: TtlPolicy,
    server_ttl: bool,
    write: WritePolicy,
    /// Every session operation goes through it: sent at once, or coalesced into a batch.
    pipeline: Arc<Pipeline>,
    /// The filter of writes to a live session, packed once.
    write_filter: Option<WriteFilter>,
    /// Set when a call failed because no node of the cluster could be reached and the
    /// client knows none any more; see [`AerospikeStore::reachable`].
    down: AtomicBool,
    /// Whether the cluster's nodes agree (see [`crate::watch`]); `None` when the store
    /// was built [`without waiting out splits`](AerospikeStoreBuilder::wait_out_splits).
    splits: Option<Arc<SplitWatch>>,
    /// The secondary index on sessions' user bindings, created at the first call that
    /// needs it (`user_sessions`, `end_user_sessions`).
    user_index: tokio::sync::OnceCell<()>,
}

/// Sessions in an Aerospike cluster, shared by every app instance, expiring by TTL.
///
/// One record per session, keyed by the session id (only its digest is stored):
///
/// | bin | holds |
/// |---|---|
/// | `data` | the values, as a native Aerospike map (strings, integers, floats, booleans, nil, lists, maps) |
/// | `expires` | when the session ends, Unix nanoseconds |
/// | `expiry` | the session's own expiry, when a handler set one |
/// | `v` | the format version ([`FORMAT_VERSION`]) |
/// | `seen` | the last create, save or touch, Unix nanoseconds (a user's list of sessions) |
/// | `sid` | the id's first six characters (the same list) |
///
/// A user's sessions ([`SessionStore::user_sessions`], [`SessionStore::end_user_sessions`])
/// are found through a secondary index on the user of the binding inside `data`
/// (`session_core::USER_KEY`), named `SET_data_user` and created at the first call
/// that needs it (Community Edition has no access control to stop it). Listing costs
/// one query (about 1 ms on one node); ending, a query per pass and a delete per
/// session. The hot path gains no round trip: the server keeps the index with each
/// write.
///
/// * `create` writes with `CreateOnly` and picks a new id if the id is taken.
/// * `save` writes only the change, as map operations (clear, put the changed keys,
///   remove the removed keys) with the new TTL in one `operate`, update-only: concurrent
///   requests of one session changing different keys both survive, and a session
///   deleted or expired meanwhile is not brought back.
/// * `touch` is a touch with the new TTL plus the `expires` bin: no data rewrite.
/// * `load` never returns a session past its `expires`, to the nanosecond, though the
///   server keeps a record up to about a second past its TTL; and `save` and `touch` are
///   filtered on the server by `expires`, in the same operation, so a late write never
///   extends a session that has already ended.
/// * The record's TTL is the cookie's `Max-Age` (the same number, from
///   [`session_core::Lifetime`]); never 0 ("namespace default") or a sentinel by accident.
///
/// Cloning is cheap and shares the client.
#[derive(Clone)]
pub struct AerospikeStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for AerospikeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AerospikeStore")
            .field("namespace", &self.inner.namespace)
            .field("set", &self.inner.set)
            .field("bins", &self.inner.bins)
            .field("ttl", &self.inner.ttl)
            .field("server_ttl", &self.inner.server_ttl)
            .finish_non_exhaustive()
    }
}

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
    /// most, and then answers [`StoreError::Unavailable`]. A node that does not answer
    /// and a node just started that has no cluster yet are left out, so neither a
    /// node's death nor a rolling restart holds calls up.
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

/// `d` in nanoseconds, saturated.
fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn millis(d: Duration) -> u32 {
    d.as_millis().try_into().unwrap_or(u32::MAX)
}

fn now_nanos() -> i64 {
    codec::unix_nanos(OffsetDateTime::now_utc())
}

/// Sorts a client error into the engine's kinds, keeping it as the source.
pub fn store_error(e: aerospike::Error) -> StoreError {
    if unavailable(&e) {
        StoreError::Unavailable(Box::new(e))
    } else if e.matches(&[ResultCode::RecordTooBig]) {
        StoreError::TooLarge(Box::new(e))
    } else {
        StoreError::Backend(Box::new(e))
    }
}

/// The cluster could not answer this time: unreachable, overloaded, timed out, busy.
pub(crate) fn unavailable(e: &aerospike::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Timeout
            | ErrorKind::Connection
            | ErrorKind::ConnectionPoolEmpty
            | ErrorKind::NoMoreConnections
            | ErrorKind::MaxErrorRate
            | ErrorKind::InvalidNode
            | ErrorKind::InvalidNamespace
            | ErrorKind::Io(_)
    ) || e.matches(&[
        ResultCode::Timeout,
        ResultCode::KeyBusy,
        ResultCode::DeviceOverload,
        ResultCode::PartitionUnavailable,
        ResultCode::XdrKeyBusy,
    ])
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

    /// The client, to share with the application.
    pub fn client(&self) -> &Arc<Client> {
        &self.inner.client
    }

    /// Fails at once, without sending anything, while the whole cluster is known to be
    /// out of reach: once a call has failed with no node left in the client's view, every
    /// call answers [`StoreError::Unavailable`] at once instead of spending its whole
    /// budget, until the client finds a node again (it goes back to the seed addresses
    /// every tend, a second by default). A cluster that is only failing over never gets
    /// here: the client keeps its nodes while any of them answers.
    fn reachable(&self) -> Result<(), StoreError> {
        if !self.inner.down.load(Ordering::Relaxed) {
            return Ok(());
        }
        if self.inner.client.nodes().is_empty() {
            return Err(StoreError::Unavailable(
                "no node of the Aerospike cluster is reachable".into(),
            ));
        }
        self.inner.down.store(false, Ordering::Relaxed);
        tracing::info!("the Aerospike cluster is reachable again");
        Ok(())
    }

    /// [`reachable`](Self::reachable), then waits while the cluster's nodes disagree (see
    /// [`AerospikeStoreBuilder::wait_out_splits`]), the store's budget at most.
    async fn steady(&self) -> Result<(), StoreError> {
        self.reachable()?;
        match &self.inner.splits {
            Some(splits) if !splits.settled() => {
                let budget =
                    Duration::from_millis(self.inner.write.base_policy.total_timeout.into());
                // Boxed: only calls made during a split pay for the wait's state.
                if Box::pin(splits.wait(budget)).await {
                    Ok(())
                } else {
                    Err(StoreError::Unavailable(
                        "the Aerospike cluster's nodes disagree about which cluster they form \
                         (a node returned from a split and has not rejoined)"
                            .into(),
                    ))
                }
            }
            _ => Ok(()),
        }
    }

    /// Notes an error: a call that could not reach the cluster while the client knows no
    /// node any more puts the store in the fail-fast state of [`reachable`](Self::reachable).
    fn noted(&self, unreachable: bool) {
        if unreachable
            && self.inner.client.nodes().is_empty()
            && !self.inner.down.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "no node of the Aerospike cluster is reachable: session store calls fail at \
                 once until one is"
            );
        }
    }

    /// [`store_error`], after noting whether the whole cluster is out of reach (see
    /// [`reachable`](Self::reachable)).
    fn failed(&self, e: aerospike::Error) -> StoreError {
        self.noted(unavailable(&e));
        store_error(e)
    }

    fn key(&self, id: &Id) -> Result<Key, StoreError> {
        let inner = &self.inner;
        session_key(inner.uid, &inner.namespace, &inner.set, id)
    }

    fn expiration(&self, ttl: Ttl) -> Expiration {
        if !self.inner.server_ttl {
            return Expiration::Never;
        }
        match self.inner.ttl {
            TtlPolicy::FromSession => Expiration::Seconds(ttl.as_secs()),
            TtlPolicy::Fixed(fixed) => Expiration::Seconds(fixed.as_secs()),
        }
    }

    /// The `expiry` bin's value: the session's own expiry, or nil (no bin) when it has none.
    fn expiry_value(&self, record: &Record) -> Result<Value, StoreError> {
        Ok(match record.expiry {
            None => Value::Nil,
            Some(e) => Value::String(
                serde_json::to_string(&e).map_err(|e| StoreError::Encode(Box::new(e)))?,
            ),
        })
    }

    fn expires_bin(&self, at: OffsetDateTime) -> Bin {
        Bin::new(
            self.inner.bins.expires.clone(),
            Value::Int(codec::unix_nanos(at)),
        )
    }

    fn version_bin(&self) -> Bin {
        Bin::new(self.inner.bins.version.clone(), Value::Int(FORMAT_VERSION))
    }

    /// The `seen` bin: written now.
    fn seen_bin(&self) -> Bin {
        Bin::new(self.inner.bins.seen.clone(), Value::Int(now_nanos()))
    }

    /// What a save and a touch both write: `expires`, the format version, and `seen`.
    fn stamp_ops(&self, expires_at: OffsetDateTime) -> [Operation; 3] {
        [
            operations::put(&self.expires_bin(expires_at)),
            operations::put(&self.version_bin()),
            operations::put(&self.seen_bin()),
        ]
    }

    /// Applies `ops` to a live session's record: update-only, and let through only
    /// while the record's `expires` is after now, decided by the server in the write
    /// itself (it answers `FILTERED_OUT` otherwise), so no read can go stale between the
    /// check and the write.
    ///
    /// `ops` builds the operations; it runs once more only if a batch could not answer
    /// the write and it goes again alone.
    async fn update(
        &self,
        id: &Id,
        ttl: Ttl,
        ops: impl Fn() -> Result<Vec<Operation>, StoreError>,
    ) -> Result<Update, StoreError> {
        let write = |key| {
            Ok::<_, StoreError>(Op::Write {
                key,
                exists: RecordExistsAction::UpdateOnly,
                expiration: self.expiration(ttl),
                filter: Some(self.write_filter()),
                ops: ops()?,
            })
        };
        let again = || self.key(id).ok().and_then(|key| write(key).ok());
        self.steady().await?;
        // Built in a statement of its own: a temporary of the `match` would stay in this
        // future across the wait (see `an_operations_future_is_small_enough_to_box_cheaply`).
        let sent = self.inner.pipeline.run(write(self.key(id)?)?, again);
        match sent.await {
            Ok(Some(_)) => Ok(Update::Applied),
            Ok(None) => Ok(Update::Missing),
            Err(e) if ended(&e) => Ok(Update::Missing),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Ends the session of `key` only while it is live, and says whether it was.
    ///
    /// Not through the pipeline, and with the store's retries run here: an end whose
    /// answer was lost (its node died mid-command) may have ended the session, and the
    /// client's own retry would then find it ended and report it was not live, which a
    /// cycle reads as a logout that came first. The cluster soak caught that as a
    /// session lost during a node's shutdown. Here a retry after an attempt in doubt
    /// that finds the session ended or gone counts it as ours.
    async fn end_live(&self, key: Key) -> Result<bool, StoreError> {
        self.steady().await?;
        let ended = self.end_live_now(key).await;
        if let Err(e) = &ended {
            self.noted(unavailable(e));
        }
        ended.map_err(store_error)
    }

    async fn end_live_now(&self, key: Key) -> Result<bool, aerospike::Error> {
        let base = &self.inner.write.base_policy;
        let started = Instant::now();
        let budget = Duration::from_millis(base.total_timeout.into());
        let deadline = now_nanos().saturating_add(nanos(budget));
        let mut policy = self.end_policy();
        policy.base_policy.max_retries = 0;
        let ops = self.end_ops();
        let (mut attempts, mut in_doubt) = (0, false);
        loop {
            policy.base_policy.filter_expression = Some(filter::write_expression(
                &self.inner.bins,
                now_nanos(),
                deadline,
            ));
            match self.inner.client.operate(&policy, &key, &ops).await {
                Ok(_) => {
                    Box::pin(self.lead(key)).await;
                    return Ok(true);
                }
                Err(e) if e.matches(&[ResultCode::KeyNotFoundError]) || ended(&e) => {
                    return Ok(in_doubt)
                }
                Err(e)
                    if unavailable(&e)
                        && attempts < base.max_retries
                        && (budget.is_zero() || started.elapsed() < budget) =>
                {
                    in_doubt |= e.in_doubt();
                    attempts += 1;
                    let pause = Duration::from_millis(base.sleep_between_retries.into());
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The write policy of ending a session: update-only, and the record's TTL kept, so
    /// the ended record lasts exactly as long as the session would have.
    fn end_policy(&self) -> WritePolicy {
        let mut policy = self.inner.write.clone();
        policy.record_exists_action = RecordExistsAction::UpdateOnly;
        policy.expiration = if self.inner.server_ttl {
            Expiration::DontUpdate
        } else {
            Expiration::Never
        };
        policy.send_key = false;
        policy
    }

    /// What ending a session writes: `ended` takes the session's end (so the record is
    /// kept until then where the database does not expire it), `expires` becomes 0 (no
    /// reader, this version's or an older one's, takes the record for live, whatever its
    /// clock), and the values, the handler's expiry and the short id are removed (which
    /// also takes it out of the user index). A bin written nil is removed.
    fn end_ops(&self) -> Vec<Operation> {
        let b = &self.inner.bins;
        let expires = || int_bin(b.expires.clone());
        // Format 1 kept whole seconds.
        let end = cond(vec![
            eq(int_bin(b.version.clone()), int_val(1)),
            num_mul(vec![expires(), int_val(1_000_000_000)]),
            expires(),
        ]);
        let removed = |name: &String| operations::put(&Bin::new(name.clone(), Value::Nil));
        vec![
            write_exp(b.ended.clone(), end, ExpWriteFlags::default()),
            operations::put(&Bin::new(b.expires.clone(), Value::Int(0))),
            operations::put(&self.version_bin()),
            operations::put(&self.seen_bin()),
            removed(&b.data),
            removed(&b.expiry),
            removed(&b.short_id),
        ]
    }

    /// Raises an ended record's generation [`END_LEAD`] more times. Aerospike resolves
    /// the copies of a record by generation: a copy from before the end, kept by a node
    /// that was split from the cluster, wins over the ended record only if it took more
    /// writes than the ended record's lead. The split watch holds calls while such a node
    /// is back and has not rejoined, but a write can reach it in the moment before the
    /// watch notices, or wait on it from before: the lead outweighs those. Failures are
    /// only logged: the session has ended either way.
    async fn lead(&self, key: Key) {
        let mut policy = self.end_policy();
        let seen = [operations::put(&self.seen_bin())];
        for _ in 0..END_LEAD {
            let budget = Duration::from_millis(policy.base_policy.total_timeout.into());
            let deadline = now_nanos().saturating_add(nanos(budget));
            policy.base_policy.filter_expression =
                Some(filter::ended_only(&self.inner.bins, deadline));
            if let Err(e) = self.inner.client.operate(&policy, &key, &seen).await {
                tracing::debug!(error = %e, "could not raise an ended session's lead");
                return;
            }
        }
    }

    /// The filter of a write to a live session that starts now: see [`crate::filter`].
    fn write_filter(&self) -> Expression {
        let now = now_nanos();
        let budget = Duration::from_millis(self.inner.write.base_policy.total_timeout.into());
        let deadline = now.saturating_add(nanos(budget));
        let packed = self
            .inner
            .write_filter
            .as_ref()
            .and_then(|f| f.at(now, deadline));
        packed.unwrap_or_else(|| filter::write_expression(&self.inner.bins, now, deadline))
    }

    /// Checks the namespace accepts writes with a TTL (or warns once that it will not
    /// expire sessions, with [`without_server_ttl`](AerospikeStoreBuilder::without_server_ttl)).
    async fn probe(&self) -> Result<(), Error> {
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

    /// Deletes the records whose time has passed: sessions past their `expires`, and
    /// ended sessions past the end they would have had; returns how many. For namespaces
    /// written [`without_server_ttl`](AerospikeStoreBuilder::without_server_ttl), where
    /// the database never removes them; elsewhere such records are already gone.
    ///
    /// Scans the set reading only those bins, and deletes each record only if its
    /// generation is unchanged, so a session refreshed during the sweep survives. Costs
    /// a read of every record: run it periodically, off the request path.
    ///
    /// # Errors
    ///
    /// The store's error when the scan or a delete fails.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        let b = &self.inner.bins;
        let statement = Statement::new(
            self.inner.namespace.clone(),
            self.inner.set.clone(),
            Bins::Some(vec![b.expires.clone(), b.version.clone(), b.ended.clone()]),
        );
        let records = self
            .inner
            .client
            .query(&self.scan_policy(), PartitionFilter::default(), statement)
            .await
            .map_err(store_error)?;
        let mut stream = records.into_stream();
        let now = now_nanos();
        let mut deleted = 0;
        while let Some(record) = stream.next().await {
            let record = record.map_err(store_error)?;
            let bin = |name: &String| match record.bins.get(name) {
                Some(Value::Int(v)) => Some(*v),
                _ => None,
            };
            let end = match (bin(&b.ended), bin(&b.version), bin(&b.expires)) {
                (Some(until), _, _) => Some(until),
                (None, Some(v), Some(at)) => Some(codec::expires_nanos(v, at)),
                _ => None,
            };
            let Some(key) = record.key.filter(|_| end.is_some_and(|end| end <= now)) else {
                continue;
            };
            let mut policy = self.inner.write.clone();
            policy.generation_policy = GenerationPolicy::ExpectGenEqual;
            policy.generation = record.generation;
            match self.inner.client.delete(&policy, &key).await {
                Ok(true) => deleted += 1,
                Ok(false) => {}
                Err(e)
                    if e.matches(&[ResultCode::GenerationError, ResultCode::KeyNotFoundError]) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        Ok(deleted)
    }

    /// A scan or query policy with the store's budget (a query's own default has none).
    fn scan_policy(&self) -> QueryPolicy {
        let mut policy = QueryPolicy::default();
        let base = &self.inner.write.base_policy;
        policy.base_policy.total_timeout = base.total_timeout;
        policy.base_policy.socket_timeout = base.socket_timeout;
        policy.base_policy.max_retries = base.max_retries;
        policy.base_policy.sleep_between_retries = base.sleep_between_retries;
        policy
    }

    /// Writes the whole record, creating or replacing it (tower-sessions' `save`), unless
    /// the session has ended: then nothing is written, as a save of this crate's own
    /// after a logout writes nothing.
    pub(crate) async fn replace(&self, record: &Record, ttl: Ttl) -> Result<(), StoreError> {
        let deadline = now_nanos().saturating_add(nanos(Duration::from_millis(
            self.inner.write.base_policy.total_timeout.into(),
        )));
        let put = || {
            let mut op = self.put(RecordExistsAction::Replace, ttl, record)?;
            if let Op::Put { filter, .. } = &mut op {
                *filter = Some(filter::not_ended(&self.inner.bins, deadline));
            }
            Ok::<_, StoreError>(op)
        };
        self.steady().await?;
        let sent = self.inner.pipeline.run(put()?, || put().ok());
        match sent.await {
            Ok(_) => Ok(()),
            Err(e) if ended(&e) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// A write of the whole record, its TTL from `ttl`.
    fn put(&self, exists: RecordExistsAction, ttl: Ttl, record: &Record) -> Result<Op, StoreError> {
        let b = &self.inner.bins;
        let data = codec::map_to_aerospike(record.data.iter())
            .map_err(|e| StoreError::Encode(Box::new(e)))?;
        let data = Value::HashMap(data);
        let expiry = self.expiry_value(record)?;
        let short = Value::String(record.id.short().as_str().to_owned());
        let mut bins = vec![
            Bin::new(b.data.clone(), data),
            self.expires_bin(record.expires_at),
            self.version_bin(),
            self.seen_bin(),
            Bin::new(b.short_id.clone(), short),
        ];
        if !expiry.is_nil() {
            bins.push(Bin::new(b.expiry.clone(), expiry));
        }
        Ok(Op::Put {
            key: self.key(&record.id)?,
            exists,
            expiration: self.expiration(ttl),
            filter: None,
            bins,
        })
    }

    /// How many live sessions the set holds: records whose `expires` is after now (so
    /// neither ended sessions nor expired records the database has yet to remove). An
    /// admin operation: a scan of the set, reading no bins (the server filters, and
    /// sends each live record's digest).
    ///
    /// # Errors
    ///
    /// The store's error when the scan fails.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let mut policy = self.scan_policy();
        policy.base_policy.filter_expression =
            Some(filter::live_expression(&self.inner.bins, now_nanos()));
        let statement = Statement::new(
            self.inner.namespace.clone(),
            self.inner.set.clone(),
            Bins::None,
        );
        self.with_retries(|| async {
            let records = self
                .inner
                .client
                .query(&policy, PartitionFilter::default(), statement.clone())
                .await
                .map_err(store_error)?;
            let mut stream = records.into_stream();
            let mut live = 0;
            while let Some(record) = stream.next().await {
                record.map_err(store_error)?;
                live += 1;
            }
            Ok(live)
        })
        .await
    }

    /// Ends every session of the set: everyone is logged out. An admin operation.
    ///
    /// What it guarantees: every session whose last write was acknowledged before
    /// `clear` was called has ended when it returns, and stays ended through a node's
    /// return and a node's restart from its storage. Sessions written while `clear`
    /// runs may or may not survive.
    ///
    /// How: a background query, run by every node over the records it masters, applies
    /// to each live record the same write that ends one session (the record stays, ended,
    /// until its TTL runs out); `clear` waits for every node to finish. Not a truncate:
    /// in Aerospike Community Edition a truncate, like a delete, is undone when a node
    /// restarts from its storage or returns from a split.
    ///
    /// # Errors
    ///
    /// The store's error when a node refuses the query or does not finish it within
    /// 10 s.
    pub async fn clear(&self) -> Result<(), StoreError> {
        let mut policy = self.end_policy();
        policy.base_policy.filter_expression =
            Some(filter::live_expression(&self.inner.bins, now_nanos()));
        let mut statement = Statement::new(
            self.inner.namespace.clone(),
            self.inner.set.clone(),
            Bins::None,
        );
        statement.operations = Some(self.end_ops());
        self.with_retries(|| async {
            let task = self
                .inner
                .client
                .query_operate(&policy, statement.clone())
                .await
                .map_err(store_error)?;
            task.wait_for_progress(Some(CLEAR_BUDGET), Duration::from_millis(10))
                .await
                .map(drop)
                .map_err(store_error)
        })
        .await
    }
}

/// The record's `expires` has passed (the write's filter said no). A record that is gone
/// altogether comes back from the pipeline as `Ok(None)`.
fn ended(e: &aerospike::Error) -> bool {
    e.matches(&[ResultCode::FilteredOut])
}

impl SessionStore for AerospikeStore {
    fn label(&self) -> &'static str {
        "aerospike"
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
        let again = || self.key(id).ok().map(Op::Read);
        self.steady().await?;
        match self
            .inner
            .pipeline
            .run(Op::Read(self.key(id)?), again)
            .await
        {
            Ok(Some(record)) => {
                codec::decode_record(&self.inner.bins, id, &record.bins, now_nanos())
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.failed(e)),
        }
    }

    async fn create(&self, record: &mut Record, ttl: Ttl) -> Result<(), StoreError> {
        for _ in 0..CREATE_ATTEMPTS {
            let put = || self.put(RecordExistsAction::CreateOnly, ttl, record);
            self.steady().await?;
            let created = self.inner.pipeline.run(put()?, || put().ok()).await;
            match created {
                Ok(_) => return Ok(()),
                Err(e) if e.matches(&[ResultCode::KeyExistsError]) => {
                    tracing::warn!(id = %record.id, "session id collision; picking another");
                    record.id = Id::random();
                }
                Err(e) => return Err(self.failed(e)),
            }
        }
        Err(StoreError::IdCollision(CREATE_ATTEMPTS))
    }

    async fn save(
        &self,
        record: &Record,
        changes: &Changes,
        ttl: Ttl,
    ) -> Result<Update, StoreError> {
        // Only the expiry is computed up front, since it can fail: the future holds it
        // across the write, and the other bins are built with the operations. Holding all
        // four bins made the future too large for the allocator's per-thread cache
        // (1,032 bytes), which the engine's box of it then missed on every save.
        let expiry = self.expiry_value(record)?;
        let ops = || {
            let bins = &self.inner.bins;
            let bin = &bins.data;
            let mut set = std::collections::HashMap::new();
            let mut removed = Vec::new();
            for op in changes.ops(&record.data) {
                match op {
                    Change::Set(k, v) => {
                        let v =
                            codec::to_aerospike(v).map_err(|e| StoreError::Encode(Box::new(e)))?;
                        set.insert(Value::String(k.to_owned()), v);
                    }
                    Change::Remove(k) => removed.push(Value::String(k.to_owned())),
                }
            }
            // At most: clear, put items, remove keys, the expiry and the three stamps.
            let mut ops = Vec::with_capacity(7);
            if changes.cleared() {
                ops.push(maps::clear(bin.clone()));
            }
            if !set.is_empty() {
                ops.push(maps::put_items(&MapPolicy::default(), bin.clone(), set));
            }
            if !removed.is_empty() {
                ops.push(maps::remove_by_key_list(
                    bin.clone(),
                    removed,
                    MapReturnType::NONE,
                ));
            }
            ops.push(operations::put(&Bin::new(
                bins.expiry.clone(),
                expiry.clone(),
            )));
            ops.extend(self.stamp_ops(record.expires_at));
            Ok(ops)
        };
        self.update(&record.id, ttl, ops).await
    }

    async fn touch(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        ttl: Ttl,
    ) -> Result<Update, StoreError> {
        let ops = || {
            let mut ops = Vec::with_capacity(4);
            ops.push(operations::touch());
            ops.extend(self.stamp_ops(expires_at));
            Ok(ops)
        };
        self.update(id, ttl, ops).await
    }

    /// Ends the session: its record stays, ended, until the session's own TTL runs out,
    /// so that no copy from before the end can come back (see "Ended sessions").
    async fn delete(&self, id: &Id) -> Result<(), StoreError> {
        let end = |key| Op::Write {
            key,
            exists: RecordExistsAction::UpdateOnly,
            expiration: self.end_policy().expiration,
            filter: Some(self.write_filter()),
            ops: self.end_ops(),
        };
        let again = || self.key(id).ok().map(end);
        self.steady().await?;
        let sent = self.inner.pipeline.run(end(self.key(id)?), again);
        match sent.await {
            Ok(Some(_)) => {
                // Boxed: a client command's future is kilobytes, and this one's box is
                // kept small (see `Pipeline::run`).
                let lead = Box::pin(self.lead(self.key(id)?));
                lead.await;
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) if ended(&e) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Creates the new record, then ends the old one only while it is live (a filter on
    /// `expires`, in the same write): when it had ended, the new record, never handed
    /// out, is ended again.
    async fn cycle(&self, old: &Id, record: &mut Record, ttl: Ttl) -> Result<Update, StoreError> {
        SessionStore::create(self, record, ttl).await?;
        let gone = match self.end_live(self.key(old)?).await {
            Ok(live) => !live,
            Err(e) => {
                tracing::warn!(old = %old, new = %record.id, error = %e.report(), "session id cycled but the old record could not be ended; it expires by its TTL");
                false
            }
        };
        if !gone {
            return Ok(Update::Applied);
        }
        if let Err(e) = SessionStore::delete(self, &record.id).await {
            tracing::warn!(id = %record.id, error = %e.report(), "could not remove the record of a cycle that lost a race with a logout; it ends by its TTL");
        }
        Ok(Update::Missing)
    }

    /// A secondary-index query on the binding's user (inside the `data` map), then the
    /// live records' `seen`, `expires`, `sid` and binding.
    async fn user_sessions(
        &self,
        user: &str,
        current: Option<&Id>,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let b = &self.inner.bins;
        let bins = [&b.data, &b.expires, &b.version, &b.seen, &b.short_id];
        let bins = Bins::Some(bins.map(String::clone).to_vec());
        let records = self.query_user(user, bins, true).await?;
        let current = current
            .map(|id| self.key(id))
            .transpose()?
            .map(|k| k.digest());
        let now = now_nanos();
        let mut list = Vec::new();
        for record in records {
            let Some(info) = self.session_info(user, &record, current, now) else {
                continue;
            };
            list.push(info);
        }
        Ok(list)
    }

    /// Query passes (at most [`END_PASSES`]) that end each live session of the user
    /// but `keep`, while the index still lists one: a session moved to a new id by a
    /// login in flight shows up in the next pass.
    async fn end_user_sessions(&self, user: &str, keep: Option<&Id>) -> Result<usize, StoreError> {
        let keep = keep.map(|id| self.key(id)).transpose()?.map(|k| k.digest());
        let mut ended = 0;
        for _ in 0..END_PASSES {
            let found = self.query_user(user, Bins::None, false).await?;
            let keys: Vec<Key> = found
                .into_iter()
                .filter_map(|r| r.key)
                .filter(|k| Some(k.digest()) != keep)
                .collect();
            if keys.is_empty() {
                break;
            }
            for key in keys {
                if self.end_live(key).await? {
                    ended += 1;
                }
            }
        }
        Ok(ended)
    }
}

impl AerospikeStore {
    fn user_index_name(&self) -> String {
        format!("{}_{}_user", self.inner.set, self.inner.bins.data)
    }

    /// The context of the binding's user inside the `data` map.
    fn user_context() -> Vec<CdtContext> {
        vec![
            ctx_map_key(Value::String(USER_KEY.to_owned())),
            ctx_map_key(Value::String("user".to_owned())),
        ]
    }

    /// Creates the secondary index on the binding's user once per store (an index that
    /// exists already is fine), and waits until the server has built it.
    async fn ensure_user_index(&self) -> Result<(), StoreError> {
        self.inner
            .user_index
            .get_or_try_init(|| {
                // Creating the index and waiting for it ask every node of the client's
                // view: a node that hangs and has not been dropped yet fails them, until
                // it has.
                self.with_retries(|| async {
                    let inner = &self.inner;
                    let created = inner
                        .client
                        .create_index_on_bin(
                            &AdminPolicy::default(),
                            &inner.namespace,
                            &inner.set,
                            &inner.bins.data,
                            &self.user_index_name(),
                            IndexType::String,
                            CollectionIndexType::Default,
                            Some(&Self::user_context()),
                        )
                        .await;
                    match created {
                        Ok(task) => {
                            task.wait_till_complete(Some(INDEX_BUDGET))
                                .await
                                .map_err(store_error)?;
                        }
                        Err(e) if e.matches(&[ResultCode::IndexFound]) => {}
                        Err(e) => return Err(store_error(e)),
                    }
                    Ok(())
                })
            })
            .await
            .map(drop)
    }

    /// The records whose binding names `user`, with `bins`, within the store's timeout
    /// (a query's own default has none).
    ///
    /// A `short` query (a listing) lets the server answer from its service thread, with
    /// AP reads relaxed during migrations; ending sessions asks the long way, so that
    /// no copy of a record is skipped.
    async fn query_user(
        &self,
        user: &str,
        bins: Bins,
        short: bool,
    ) -> Result<Vec<aerospike::Record>, StoreError> {
        self.ensure_user_index().await?;
        let inner = &self.inner;
        let mut policy = self.scan_policy();
        if short {
            policy.expected_duration = QueryDuration::Short;
        }
        let mut statement = Statement::new(inner.namespace.clone(), inner.set.clone(), bins);
        statement
            .set_filter(Filter::equal(inner.bins.data.clone(), user).context(Self::user_context()));
        self.with_retries(|| async {
            let records = inner
                .client
                .query(&policy, PartitionFilter::default(), statement.clone())
                .await
                .map_err(store_error)?;
            let mut stream = records.into_stream();
            let mut found = Vec::new();
            while let Some(record) = stream.next().await {
                found.push(record.map_err(store_error)?);
            }
            Ok(found)
        })
        .await
    }

    /// Runs `attempt` again while it fails with [`StoreError::Unavailable`], within the
    /// store's budget, retries and spacing: for a query, which the client fails as a
    /// whole when one node of its view hangs (a node frozen and not yet dropped from the
    /// client's view), where a single-record command would have gone to a replica.
    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        self.steady().await?;
        let base = &self.inner.write.base_policy;
        let budget = Duration::from_millis(base.total_timeout.into());
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            match attempt().await {
                Err(e)
                    if e.is_unavailable()
                        && attempts < base.max_retries
                        && (budget.is_zero() || started.elapsed() < budget) =>
                {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(base.sleep_between_retries.into()))
                        .await;
                }
                done => {
                    if let Err(e) = &done {
                        self.noted(e.is_unavailable());
                    }
                    return done;
                }
            }
        }
    }

    /// One listed record as a [`SessionInfo`]; `None` when it has expired or its
    /// binding (read again: the index may lag a rebinding) is not `user`'s.
    fn session_info(
        &self,
        user: &str,
        record: &aerospike::Record,
        current: Option<[u8; 20]>,
        now: i64,
    ) -> Option<SessionInfo> {
        let b = &self.inner.bins;
        let int = |name: &String| match record.bins.get(name) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        };
        let expires = codec::expires_nanos(int(&b.version)?, int(&b.expires)?);
        if expires <= now {
            return None;
        }
        let binding = match record.bins.get(&b.data) {
            Some(data) => codec::binding(data)?,
            None => return None,
        };
        if binding.user != user {
            return None;
        }
        let short_id = match record.bins.get(&b.short_id) {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let instant = |n: i64| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok();
        let seen = int(&b.seen)
            .and_then(instant)
            .unwrap_or_else(|| binding.since_time());
        let is_current = record
            .key
            .as_ref()
            .map(Key::digest)
            .is_some_and(|d| Some(d) == current);
        Some(SessionInfo::with_short_id(
            short_id,
            binding,
            seen,
            instant(expires)?,
            is_current,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// `n` random ids, each in a digest slot of its own.
    fn in_distinct_slots(n: usize) -> Vec<Id> {
        let mut slots = HashSet::new();
        std::iter::repeat_with(Id::random)
            .filter(|id| slots.insert(digest_slot(id)))
            .take(n)
            .collect()
    }

    fn fresh_digest(namespace: &str, set: &str, id: &Id) -> [u8; 20] {
        let user_key = Value::String(id.encode().as_str().to_owned());
        Key::new(namespace.to_owned(), set.to_owned(), user_key)
            .expect("a string key")
            .digest()
    }

    #[test]
    fn a_sessions_digest_is_remembered_across_other_sessions_keys() {
        let ids = in_distinct_slots(DIGEST_SLOTS);
        for id in &ids {
            let key = session_key(1, "test", "sessions", id).unwrap();
            assert!(key.user_key().is_some(), "a first key is computed");
        }
        // Every other session's key was built since the first; each is still found.
        for id in &ids {
            let key = session_key(1, "test", "sessions", id).unwrap();
            assert!(key.user_key().is_none(), "the digest was not remembered");
            assert_eq!(key.digest(), fresh_digest("test", "sessions", id));
            assert_eq!((key.namespace(), key.set_name()), ("test", "sessions"));
        }
    }

    #[test]
    fn a_remembered_digest_serves_only_its_own_store_and_session() {
        let ids = in_distinct_slots(1);
        let id = ids[0];
        session_key(1, "test", "sessions", &id).unwrap();
        // Another store (another set): computed afresh, for its own set.
        let other = session_key(2, "test", "others", &id).unwrap();
        assert!(other.user_key().is_some());
        assert_eq!(other.digest(), fresh_digest("test", "others", &id));
        // Another session in the same slot: computed afresh, and it takes the slot.
        let neighbour = std::iter::repeat_with(Id::random)
            .find(|n| *n != id && digest_slot(n) == digest_slot(&id))
            .expect("random ids fill every slot");
        let key = session_key(2, "test", "others", &neighbour).unwrap();
        assert!(key.user_key().is_some());
        assert_eq!(key.digest(), fresh_digest("test", "others", &neighbour));
        let again = session_key(1, "test", "sessions", &id).unwrap();
        assert!(
            again.user_key().is_some(),
            "the slot was taken by the neighbour"
        );
        assert_eq!(again.digest(), fresh_digest("test", "sessions", &id));
    }
}
