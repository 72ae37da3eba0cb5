//! Test support shared by the cross-crate suites. Never a dependency of a product crate.
//!
//! * [`store_suite!`](macro@store_suite): the store-level conformance suite every [`SessionStore`] runs,
//!   parameterised by a factory and [`Caps`].
//! * [`http_suite!`](macro@http_suite): the HTTP conformance suite every adapter runs with every store,
//!   over a real socket on 127.0.0.1 with a real client; adapters plug in through
//!   [`Framework`].
//! * [`Probe`]: a store wrapper that counts calls and injects faults; [`logs`] captures
//!   `tracing` output.
//!
//! [`SessionStore`]: session_core::SessionStore

pub mod actix_app;
pub mod aerospike;
pub mod axum_app;
pub mod gate;
pub mod http_suite;
pub mod logs;
pub mod probe;
pub mod redis;
pub mod server;
pub mod sqlite;
pub mod store_suite;

pub use actix_app::Actix;
pub use axum_app::Axum;
pub use http_suite::ConfigExt;
pub use probe::{Fault, Op, Probe};
pub use server::{Framework, TestServer};
pub use store_suite::{Caps, UserSessions};

/// Instantiates each generic test `async fn name<F: Framework>()` named in the list once
/// per adapter, as `axum::name` and `actix::name` (multi-threaded tokio tests).
#[macro_export]
macro_rules! per_adapter {
    ($($test:ident),* $(,)?) => {
        mod axum {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test::<$crate::Axum>().await; })*
        }
        mod actix {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test::<$crate::Actix>().await; })*
        }
    };
}
