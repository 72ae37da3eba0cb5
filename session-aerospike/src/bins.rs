//! The record's bins: their names ([`BinNames`]) and the format's version.

/// The stored format's version, written in every record's version bin.
///
/// * 2: `expires` holds Unix nanoseconds.
/// * 1: `expires` held whole Unix seconds, rounded up. Such records still load, and the
///   next save or touch rewrites them as version 2.
pub const FORMAT_VERSION: i64 = 2;

/// Aerospike's limit on bin names.
pub(crate) const MAX_BIN_NAME: usize = 15;

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
    /// Present only on an ended session's record (see [`AerospikeStore`](crate::AerospikeStore), "Ended
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
