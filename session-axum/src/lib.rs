//! tower/axum layer for the session family: `SessionLayer` and the `Session` extractor.
//!
//! Not implemented yet: this crate is a workspace member so the family builds together.
//! The engine it will drive is [`session_core::SessionEngine`].
