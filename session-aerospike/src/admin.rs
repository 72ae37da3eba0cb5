//! Admin operations: counting, ending and sweeping every session of the set.

use std::time::Duration;

use aerospike::{
    Bins, GenerationPolicy, PartitionFilter, QueryPolicy, ResultCode, Statement, Value,
};
use futures_util::StreamExt as _;
use session_core::StoreError;

use crate::codec;
use crate::error::store_error;
use crate::filter::{self};
use crate::store::{now_nanos, AerospikeStore};

/// How long [`AerospikeStore::clear`] waits for every node to end every session.
const CLEAR_BUDGET: Duration = Duration::from_secs(10);

impl AerospikeStore {
    /// Deletes the records whose time has passed: sessions past their `expires`, and
    /// ended sessions past the end they would have had; returns how many. For namespaces
    /// written [`without_server_ttl`](crate::AerospikeStoreBuilder::without_server_ttl), where
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
    pub(crate) fn scan_policy(&self) -> QueryPolicy {
        let mut policy = QueryPolicy::default();
        let base = &self.inner.write.base_policy;
        policy.base_policy.total_timeout = base.total_timeout;
        policy.base_policy.socket_timeout = base.socket_timeout;
        policy.base_policy.max_retries = base.max_retries;
        policy.base_policy.sleep_between_retries = base.sleep_between_retries;
        policy
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
