//! Runnable examples of the session family. The binaries live in `src/bin/`; this library
//! holds what the demo's axum and actix-web apps share, so each app stays a thin adapter.

pub mod demo;
