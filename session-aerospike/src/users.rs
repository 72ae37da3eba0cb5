//! A user's sessions, found through a secondary index on the binding's user.

use std::time::Duration;

use aerospike::operations::cdt_context::{ctx_map_key, CdtContext};
use aerospike::query::Filter;
use aerospike::{
    AdminPolicy, Bins, CollectionIndexType, IndexType, Key, PartitionFilter, QueryDuration,
    ResultCode, Statement, Task as _, Value,
};
use futures_util::StreamExt as _;
use session_core::{SessionInfo, StoreError, USER_KEY};
use time::OffsetDateTime;

use crate::codec;
use crate::error::store_error;
use crate::store::AerospikeStore;

/// How long building the user index may take at its first use.
const INDEX_BUDGET: Duration = Duration::from_secs(30);

impl AerospikeStore {
    pub(crate) fn user_index_name(&self) -> String {
        format!("{}_{}_user", self.inner.set, self.inner.bins.data)
    }

    /// The context of the binding's user inside the `data` map.
    pub(crate) fn user_context() -> Vec<CdtContext> {
        vec![
            ctx_map_key(Value::String(USER_KEY.to_owned())),
            ctx_map_key(Value::String("user".to_owned())),
        ]
    }

    /// Creates the secondary index on the binding's user once per store (an index that
    /// exists already is fine), and waits until the server has built it.
    pub(crate) async fn ensure_user_index(&self) -> Result<(), StoreError> {
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
    pub(crate) async fn query_user(
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

    /// One listed record as a [`SessionInfo`]; `None` when it has expired or its
    /// binding (read again: the index may lag a rebinding) is not `user`'s.
    pub(crate) fn session_info(
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
