//! [`SessionConfig`], and reading the id from a request and writing it into a response,
//! framework-neutrally.

//! Which cookie a request's id is read from: [`SessionConfig`'s
//! docs](SessionConfig#which-cookie-is-ours).

mod builder;
mod config;
mod error;
pub(crate) mod read;
pub(crate) mod write;

pub use builder::{Limits, SessionConfigBuilder};
pub use config::{bind_to_name, IdSource, Key, SameSite, SessionConfig, TouchPolicy};
pub use error::ConfigError;

#[cfg(test)]
mod tests;
