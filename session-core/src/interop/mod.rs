//! tower-sessions interop, behind the `tower-sessions` feature (stores on
//! tower-sessions-core 0.15) and the `tower-sessions-014` feature (0.14): any
//! tower-sessions store behind this engine ([`TowerStore`], `TowerStore014`), and the
//! conversions between the two families' ids, expiries and records.

mod convert;
mod tower;

#[cfg(feature = "tower-sessions")]
pub use tower::TowerStore;
#[cfg(feature = "tower-sessions-014")]
pub use tower::TowerStore014;
