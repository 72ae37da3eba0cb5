//! [`AerospikeStore`]: the store, and its session operations.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aerospike::expressions::Expression;
use aerospike::operations::{self, maps, Operation};
use aerospike::{
    Bin, Bins, Client, Expiration, Key, MapPolicy, MapReturnType, RecordExistsAction, ResultCode,
    Value, WritePolicy,
};
use session_core::store::EndPass;
use session_core::{
    Change, Changes, Created, Cycle, Id, Record, SessionInfo, SessionStore, StoreError, Ttl, Update,
};
use time::OffsetDateTime;

use crate::bins::{BinNames, FORMAT_VERSION};
use crate::codec;
use crate::error::{ended, store_error, unavailable};
use crate::filter::{self, WriteFilter};
use crate::key::session_key;
use crate::op::Op;
use crate::pipeline::Pipeline;
use crate::watch::SplitWatch;

/// How long records live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlPolicy {
    /// The session's own TTL: its cookie's `Max-Age`, or the configured default store TTL
    /// for browser-session cookies (the default).
    FromSession,
    /// This TTL for every record, whatever the session's expiry.
    Fixed(Ttl),
}

pub(crate) struct Inner {
    /// From [`NEXT_STORE`].
    pub(crate) uid: u64,
    pub(crate) client: Arc<Client>,
    pub(crate) namespace: String,
    pub(crate) set: String,
    pub(crate) bins: BinNames,
    pub(crate) ttl: TtlPolicy,
    pub(crate) server_ttl: bool,
    pub(crate) write: WritePolicy,
    /// Every session operation goes through it: sent at once, or coalesced into a batch.
    pub(crate) pipeline: Arc<Pipeline>,
    /// The filter of writes to a live session, packed once.
    pub(crate) write_filter: Option<WriteFilter>,
    /// Set when a call failed because no node of the cluster could be reached and the
    /// client knows none any more; see [`AerospikeStore::reachable`].
    pub(crate) down: AtomicBool,
    /// Whether the cluster's nodes agree (see [`crate::watch`]); `None` when the store
    /// was built [`without waiting out splits`](AerospikeStoreBuilder::wait_out_splits).
    pub(crate) splits: Option<Arc<SplitWatch>>,
    /// The secondary index on sessions' user bindings, created at the first call that
    /// needs it (`user_sessions`, `end_user_pass`).
    pub(crate) user_index: tokio::sync::OnceCell<()>,
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
/// A user's sessions ([`SessionStore::user_sessions`], [`SessionStore::end_user_pass`])
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
    pub(crate) inner: Arc<Inner>,
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

/// `d` in nanoseconds, saturated.
pub(crate) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

pub(crate) fn millis(d: Duration) -> u32 {
    d.as_millis().try_into().unwrap_or(u32::MAX)
}

pub(crate) fn now_nanos() -> i64 {
    codec::unix_nanos(OffsetDateTime::now_utc())
}

impl AerospikeStore {
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
    pub(crate) fn reachable(&self) -> Result<(), StoreError> {
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
    pub(crate) async fn steady(&self) -> Result<(), StoreError> {
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
    pub(crate) fn noted(&self, unreachable: bool) {
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
    pub(crate) fn failed(&self, e: aerospike::Error) -> StoreError {
        self.noted(unavailable(&e));
        store_error(e)
    }

    pub(crate) fn key(&self, id: &Id) -> Result<Key, StoreError> {
        let inner = &self.inner;
        session_key(inner.uid, &inner.namespace, &inner.set, id)
    }

    pub(crate) fn expiration(&self, ttl: Ttl) -> Expiration {
        if !self.inner.server_ttl {
            return Expiration::Never;
        }
        match self.inner.ttl {
            TtlPolicy::FromSession => Expiration::Seconds(ttl.as_secs()),
            TtlPolicy::Fixed(fixed) => Expiration::Seconds(fixed.as_secs()),
        }
    }

    /// The `expiry` bin's value: the session's own expiry, or nil (no bin) when it has none.
    pub(crate) fn expiry_value(&self, record: &Record) -> Result<Value, StoreError> {
        Ok(match record.expiry {
            None => Value::Nil,
            Some(e) => Value::String(
                serde_json::to_string(&e).map_err(|e| StoreError::Encode(Box::new(e)))?,
            ),
        })
    }

    pub(crate) fn expires_bin(&self, at: OffsetDateTime) -> Bin {
        Bin::new(
            self.inner.bins.expires.clone(),
            Value::Int(codec::unix_nanos(at)),
        )
    }

    pub(crate) fn version_bin(&self) -> Bin {
        Bin::new(self.inner.bins.version.clone(), Value::Int(FORMAT_VERSION))
    }

    /// The `seen` bin: written now.
    pub(crate) fn seen_bin(&self) -> Bin {
        Bin::new(self.inner.bins.seen.clone(), Value::Int(now_nanos()))
    }

    /// What a save and a touch both write: `expires`, the format version, and `seen`.
    pub(crate) fn stamp_ops(&self, expires_at: OffsetDateTime) -> [Operation; 3] {
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
    pub(crate) async fn update(
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

    /// The filter of a write to a live session that starts now: see [`crate::filter`].
    pub(crate) fn write_filter(&self) -> Expression {
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

    /// Runs `attempt` again while it fails with [`StoreError::Unavailable`], within the
    /// store's budget, retries and spacing: for a query, which the client fails as a
    /// whole when one node of its view hangs (a node frozen and not yet dropped from the
    /// client's view), where a single-record command would have gone to a replica.
    pub(crate) async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
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

    /// Writes the whole record, creating or replacing it (tower-sessions' `save`), unless
    /// the session has ended: then nothing is written, as a save of this crate's own
    /// after a logout writes nothing.
    #[cfg(feature = "tower-sessions")]
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
    pub(crate) fn put(
        &self,
        exists: RecordExistsAction,
        ttl: Ttl,
        record: &Record,
    ) -> Result<Op, StoreError> {
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

    async fn create(&self, record: &Record, ttl: Ttl) -> Result<Created, StoreError> {
        let put = || self.put(RecordExistsAction::CreateOnly, ttl, record);
        self.steady().await?;
        match self.inner.pipeline.run(put()?, || put().ok()).await {
            Ok(_) => Ok(Created::Stored),
            // A live record, or an ended one kept until its TTL: never written over.
            Err(e) if e.matches(&[ResultCode::KeyExistsError]) => Ok(Created::Taken),
            Err(e) => Err(self.failed(e)),
        }
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
    async fn cycle(&self, old: &Id, record: &Record, ttl: Ttl) -> Result<Cycle, StoreError> {
        if SessionStore::create(self, record, ttl).await? == Created::Taken {
            return Ok(Cycle::Taken);
        }
        let gone = match self.end_live(self.key(old)?).await {
            Ok(live) => !live,
            Err(e) => {
                tracing::warn!(old = %old, new = %record.id, error = %e.report(), "session id cycled but the old record could not be ended; it expires by its TTL");
                false
            }
        };
        if !gone {
            return Ok(Cycle::Moved);
        }
        if let Err(e) = SessionStore::delete(self, &record.id).await {
            tracing::warn!(id = %record.id, error = %e.report(), "could not remove the record of a cycle that lost a race with a logout; it ends by its TTL");
        }
        Ok(Cycle::Ended)
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

    /// One secondary-index query for the user's records, then each one ended while it
    /// is live and still bound to the user (a filter in the same write).
    async fn end_user_pass(&self, user: &str, keep: Option<&Id>) -> Result<EndPass, StoreError> {
        let keep = keep.map(|id| self.key(id)).transpose()?.map(|k| k.digest());
        let found = self.query_user(user, Bins::None, false).await?;
        let keys: Vec<Key> = found
            .into_iter()
            .filter_map(|r| r.key)
            .filter(|k| Some(k.digest()) != keep)
            .collect();
        let mut pass = EndPass {
            listed: keys.len(),
            ended: 0,
        };
        for key in keys {
            if self.end_live(key).await? {
                pass.ended += 1;
            }
        }
        Ok(pass)
    }
}
