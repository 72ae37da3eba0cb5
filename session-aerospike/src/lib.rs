//! Aerospike storage for the session family: `AerospikeStore` will keep sessions in an
//! Aerospike cluster, the record's TTL taken from the cookie's `Max-Age`.
//!
//! Not implemented yet: this crate is a workspace member so the family builds together.
//! Until it lands, use [`session_core::MemoryStore`] or any tower-sessions store through
//! [`session_core::TowerStore`].
