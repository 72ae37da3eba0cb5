//! Ending a session: an ended record written over it, never a delete (see "Ended sessions" in the crate docs).

use std::time::{Duration, Instant};

use aerospike::expressions::{cond, eq, int_bin, int_val, num_mul};
use aerospike::operations::exp::{write_exp, ExpWriteFlags};
use aerospike::operations::{self, Operation};
use aerospike::{Bin, Expiration, Key, RecordExistsAction, ResultCode, Value, WritePolicy};
use session_core::StoreError;

use crate::error::{ended, store_error, unavailable};
use crate::filter::{self};
use crate::store::{nanos, now_nanos, AerospikeStore};

/// Writes to an ended session's record after the end itself, each raising its
/// generation by one (see [`AerospikeStore::lead`]).
pub(crate) const END_LEAD: usize = 2;

impl AerospikeStore {
    /// Ends the session of `key` only while it is live, and says whether it was.
    ///
    /// Not through the pipeline, and with the store's retries run here: an end whose
    /// answer was lost (its node died mid-command) may have ended the session, and the
    /// client's own retry would then find it ended and report it was not live, which a
    /// cycle reads as a logout that came first. The cluster soak caught that as a
    /// session lost during a node's shutdown. Here a retry after an attempt in doubt
    /// that finds the session ended or gone counts it as ours.
    pub(crate) async fn end_live(&self, key: Key) -> Result<bool, StoreError> {
        self.steady().await?;
        let ended = self.end_live_now(key).await;
        if let Err(e) = &ended {
            self.noted(unavailable(e));
        }
        ended.map_err(store_error)
    }

    pub(crate) async fn end_live_now(&self, key: Key) -> Result<bool, aerospike::Error> {
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
    pub(crate) fn end_policy(&self) -> WritePolicy {
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
    pub(crate) fn end_ops(&self) -> Vec<Operation> {
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
    pub(crate) async fn lead(&self, key: Key) {
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
}
