//! tower-sessions interop: any tower-sessions store behind this engine
//! ([`TowerStore`]), and the conversions between the two families' ids, expiries and
//! records.

mod tower;

#[cfg(feature = "tower-sessions-014")]
pub use tower::TowerStore014;
pub use tower::{TowerStore, EXPIRY_KEY};
