//! One session operation on one record ([`Op`]), sent alone as its single-record
//! command or as a row of a batch command, and what it comes back with ([`Outcome`]).

use aerospike::expressions::Expression;
use aerospike::operations::{self, Operation};
use aerospike::{
    BatchOperation, BatchReadPolicy, BatchWritePolicy, Bin, Bins, Error, Expiration, IndexMap, Key,
    Record, RecordExistsAction, ResultCode,
};

/// What an operation came back with: the record (bin-less for a write or delete), `None`
/// when the key does not exist, or the server's or the client's error for that key.
pub(crate) type Outcome = Result<Option<Record>, Error>;

/// One operation on one record, sent alone as its single-record command or as a row of
/// a batch command.
pub(crate) enum Op {
    /// Every bin of the record.
    Read(Key),
    /// Operations on the record, as one write.
    Write {
        key: Key,
        exists: RecordExistsAction,
        expiration: Expiration,
        /// Applied only while this holds of the record (else `FILTERED_OUT`).
        filter: Option<Expression>,
        ops: Vec<Operation>,
    },
    /// Writes whole bins, as `put` does.
    Put {
        key: Key,
        exists: RecordExistsAction,
        expiration: Expiration,
        /// Applied only while this holds of the record, if it exists (else
        /// `FILTERED_OUT`).
        filter: Option<Expression>,
        bins: Vec<Bin>,
    },
}

impl Op {
    pub(crate) fn into_row(self) -> BatchOperation {
        match self {
            Op::Read(key) => BatchOperation::read(&BatchReadPolicy::default(), key, Bins::All),
            Op::Write {
                key,
                exists,
                expiration,
                filter,
                ops,
            } => BatchOperation::write(&row_policy(exists, expiration, filter), key, ops),
            Op::Put {
                key,
                exists,
                expiration,
                filter,
                bins,
            } => {
                let puts: Vec<Operation> = bins.iter().map(operations::put).collect();
                BatchOperation::write(&row_policy(exists, expiration, filter), key, puts)
            }
        }
    }
}

/// A batch row's write policy.
pub(crate) fn row_policy(
    exists: RecordExistsAction,
    expiration: Expiration,
    filter: Option<Expression>,
) -> BatchWritePolicy {
    BatchWritePolicy {
        record_exists_action: exists,
        expiration,
        filter_expression: filter,
        ..BatchWritePolicy::default()
    }
}

/// The record a write or delete answers with: no bins, nothing to read.
pub(crate) fn bin_less() -> Record {
    Record::new(None, IndexMap::new(), None, 0, 0)
}

/// Whether a batch left `row` without the server's own answer for its key, so that it
/// must go again alone: no answer at all (the client lost the row: it routes a batch's
/// keys once, up front, and when it can route none of them, while a node leaves the
/// cluster, it fails the call and hands back empty rows), no server result code (a
/// broken connection, a timeout), a code that says the cluster could not answer this
/// time, or "not found". The last is confirmed alone too: while a cluster changes, the
/// cluster soak once read an acknowledged session as missing through a batch, never
/// alone. Misses are rare; a confirmation costs one more round trip for them only.
pub(crate) fn unanswered(row: &BatchOperation) -> bool {
    let row = row.batch_record();
    match row.error() {
        None => row.record.is_none(),
        Some(e) => {
            e.server_result_code().is_none()
                || crate::error::unavailable(e)
                || e.matches(&[ResultCode::KeyNotFoundError])
        }
    }
}

/// A missing key is an outcome, not an error.
pub(crate) fn absent(e: Error) -> Outcome {
    if e.matches(&[ResultCode::KeyNotFoundError]) {
        Ok(None)
    } else {
        Err(e)
    }
}

pub(crate) fn outcome(row: BatchOperation) -> Outcome {
    let row = row.into_batch_record();
    if let Some(e) = row.error() {
        return absent(e.clone());
    }
    // A row with neither went again alone (`unanswered`).
    Ok(row.record)
}
