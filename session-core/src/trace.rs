//! A `tracing` span around every store operation: `session_store`, at `DEBUG`, with the
//! operation (`op`), the session's short id (`id`, six characters: never the whole id),
//! and, when it ends, its `outcome` and duration in microseconds (`micros`).
//!
//! Nothing is built or timed unless a subscriber wants `DEBUG`: a process without one,
//! or filtering above it, pays one atomic load per operation.

use std::future::Future;
use std::time::Instant;

use tracing::field::Empty;
use tracing::level_filters::LevelFilter;
use tracing::{Instrument, Span};

use crate::id::Id;
use crate::store::{Record, StoreError, Update};

/// Whether a subscriber may want the spans: when none wants `DEBUG`, nothing is built.
/// A disabled span from the macro would cost about two hundred instructions (it keeps
/// its metadata for the `log` crate, which actix-web's dependencies turn on); this is one
/// atomic load.
#[inline(always)]
fn wanted() -> bool {
    LevelFilter::current() >= LevelFilter::DEBUG
}

/// The span of one store operation on `id`.
fn span(op: &'static str, id: &Id) -> Span {
    tracing::debug_span!(
        "session_store",
        op,
        id = %id.short(),
        outcome = Empty,
        micros = Empty
    )
}

/// What an operation's result is called in its span: `ok`, `found`, `not_found`,
/// `missing` (an update-only write found no record), or the error's class.
pub(crate) trait Outcome {
    fn outcome(&self) -> &'static str;
}

fn error_class(e: &StoreError) -> &'static str {
    match e {
        StoreError::Unavailable(_) => "unavailable",
        StoreError::TooLarge(_) => "too_large",
        StoreError::IdCollision(_) => "id_collision",
        StoreError::Decode(_) => "decode",
        StoreError::Encode(_) => "encode",
        StoreError::Backend(_) => "backend",
        StoreError::Unsupported(_) => "unsupported",
    }
}

impl Outcome for Result<Option<Record>, StoreError> {
    fn outcome(&self) -> &'static str {
        match self {
            Ok(Some(_)) => "found",
            Ok(None) => "not_found",
            Err(e) => error_class(e),
        }
    }
}

impl Outcome for Result<(), StoreError> {
    fn outcome(&self) -> &'static str {
        match self {
            Ok(()) => "ok",
            Err(e) => error_class(e),
        }
    }
}

impl Outcome for Result<Update, StoreError> {
    fn outcome(&self) -> &'static str {
        match self {
            Ok(Update::Applied) => "ok",
            Ok(Update::Missing) => "missing",
            Err(e) => error_class(e),
        }
    }
}

/// Records the end of `span`'s operation, begun at `start`.
fn close(span: &Span, start: Instant, outcome: &'static str) {
    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    span.record("outcome", outcome);
    span.record("micros", micros);
}

/// Runs `fut`, the store operation `op` on `id`, inside its span, recording its outcome
/// and duration.
pub(crate) async fn traced<T: Outcome>(
    op: &'static str,
    id: Id,
    fut: impl Future<Output = T>,
) -> T {
    if !wanted() {
        return fut.await;
    }
    let span = span(op, &id);
    if span.is_disabled() {
        return fut.await;
    }
    let start = Instant::now();
    let result = fut.instrument(span.clone()).await;
    close(&span, start, result.outcome());
    result
}

/// Runs `f`, the store operation `op` on `id` that completes without waiting, inside its
/// span, recording its outcome and duration.
#[inline(always)]
pub(crate) fn traced_now<T: Outcome>(op: &'static str, id: Id, f: impl FnOnce() -> T) -> T {
    if !wanted() {
        return f();
    }
    let span = span(op, &id);
    if span.is_disabled() {
        return f();
    }
    let start = Instant::now();
    let result = span.in_scope(f);
    close(&span, start, result.outcome());
    result
}
