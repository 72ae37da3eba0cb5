//! Why a store could not be built ([`Error`]), and how the client's errors become the engine's ([`store_error`]).

use aerospike::{ErrorKind, ResultCode};
use session_core::StoreError;

/// Why an [`AerospikeStore`](crate::AerospikeStore) could not be built.
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

/// The record's `expires` has passed (the write's filter said no). A record that is gone
/// altogether comes back from the pipeline as `Ok(None)`.
pub(crate) fn ended(e: &aerospike::Error) -> bool {
    e.matches(&[ResultCode::FilteredOut])
}
