//! Test support shared by the cross-crate suites. Never a dependency of a product crate.
//!
//! * [`store_suite!`]: the store-level conformance suite every [`SessionStore`] runs,
//!   parameterised by a factory and [`Caps`].
//!
//! [`SessionStore`]: session_core::SessionStore

pub mod store_suite;

pub use store_suite::Caps;
