//! A `tracing` span around every store operation: `session_store`, at `DEBUG`, with the
//! operation (`op`), the session's short id (`id`, six characters: never the whole id),
//! and, when it ends, its `outcome` and duration in microseconds (`micros`).
//!
//! Nothing is built unless a subscriber wants `DEBUG`: a process without one, or
//! filtering above it, pays one atomic load per operation. With the `metrics` feature
//! every operation is also counted and timed ([`super::meter`]), span or not.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;
use tracing::field::Empty;
use tracing::level_filters::LevelFilter;
use tracing::Span;

use super::meter::{Meters, Op, OUTCOMES};
use super::outcome::{Created, Cycle, StoreError, Update};
use crate::id::Id;

/// Whether a subscriber may want the spans: when none wants `DEBUG`, nothing is built.
/// A disabled span from the macro would cost about two hundred instructions (it keeps
/// its metadata for the `log` crate, which actix-web's dependencies turn on); this is one
/// atomic load.
#[inline(always)]
fn wanted() -> bool {
    LevelFilter::current() >= LevelFilter::DEBUG
}

/// The span of one store operation on `id`.
fn span(op: Op, id: &Id) -> Span {
    tracing::debug_span!(
        "session_store",
        op = op.as_str(),
        id = %id.short(),
        outcome = Empty,
        micros = Empty
    )
}

/// What an operation's result is called in its span and metrics, as an index into
/// [`OUTCOMES`]: `found`, `not_found`, `ok`, `missing` (an update-only write found no
/// record), or the error's class.
pub(crate) trait Outcome {
    fn outcome(&self) -> usize;
}

fn error_class(e: &StoreError) -> usize {
    match e {
        StoreError::Unavailable(_) => 4,
        StoreError::TooLarge(_) => 5,
        StoreError::IdCollision(_) => 6,
        StoreError::Decode(_) => 7,
        StoreError::Encode(_) => 8,
        StoreError::Backend(_) => 9,
        StoreError::Unsupported(_) => 10,
    }
}

impl<T> Outcome for Result<Option<T>, StoreError> {
    fn outcome(&self) -> usize {
        match self {
            Ok(Some(_)) => 0,
            Ok(None) => 1,
            Err(e) => error_class(e),
        }
    }
}

impl Outcome for Result<(), StoreError> {
    fn outcome(&self) -> usize {
        match self {
            Ok(()) => 2,
            Err(e) => error_class(e),
        }
    }
}

impl Outcome for Result<Created, StoreError> {
    fn outcome(&self) -> usize {
        match self {
            Ok(Created::Stored) => 2,
            Ok(Created::Taken) => 6,
            Err(e) => error_class(e),
        }
    }
}

impl Outcome for Result<Cycle, StoreError> {
    fn outcome(&self) -> usize {
        match self {
            Ok(Cycle::Moved) => 2,
            Ok(Cycle::Ended) => 3,
            Ok(Cycle::Taken) => 6,
            Err(e) => error_class(e),
        }
    }
}

impl Outcome for Result<Update, StoreError> {
    fn outcome(&self) -> usize {
        match self {
            Ok(Update::Applied) => 2,
            Ok(Update::Missing) => 3,
            Err(e) => error_class(e),
        }
    }
}

/// Records the end of the operation `op`, begun at `start`, in `meters` and in its span
/// when it has one.
fn record(op: Op, meters: &Meters, span: Option<&Span>, start: Instant, outcome: usize) {
    let elapsed = start.elapsed();
    meters.operation(op, outcome, elapsed);
    if let Some(span) = span {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        span.record("outcome", OUTCOMES[outcome]);
        span.record("micros", micros);
    }
}

/// The span of an operation, when a subscriber wants it.
#[inline(always)]
fn wanted_span(op: Op, id: &Id) -> Option<Span> {
    if !wanted() {
        return None;
    }
    Some(span(op, id)).filter(|s| !s.is_disabled())
}

/// Runs `fut`, the store operation `op` on `id`, inside its span, recording its outcome
/// and duration in the span and in `meters`.
///
/// A future of its own rather than an `async fn`: that would hold `fut` twice (once as
/// its argument, once where it is awaited), and a store's operation future is often
/// most of a kilobyte, which the adapters' boxing then copies whole.
pub(crate) fn traced<F>(op: Op, id: Id, meters: &Meters, fut: F) -> Traced<'_, F>
where
    F: Future,
    F::Output: Outcome,
{
    let span = wanted_span(op, &id);
    let start = (span.is_some() || Meters::on()).then(Instant::now);
    Traced {
        fut,
        op,
        meters,
        span,
        start,
    }
}

pin_project! {
    /// `fut`, polled inside `span` when there is one; see [`traced`].
    pub(crate) struct Traced<'m, F> {
        #[pin]
        fut: F,
        op: Op,
        meters: &'m Meters,
        span: Option<Span>,
        // Set when the outcome is to be recorded: a span, or metrics.
        start: Option<Instant>,
    }
}

impl<F> Future for Traced<'_, F>
where
    F: Future,
    F::Output: Outcome,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let polled = {
            let _entered = this.span.as_ref().map(Span::enter);
            this.fut.poll(cx)
        };
        let Poll::Ready(result) = polled else {
            return Poll::Pending;
        };
        if let Some(start) = *this.start {
            record(
                *this.op,
                this.meters,
                this.span.as_ref(),
                start,
                result.outcome(),
            );
        }
        Poll::Ready(result)
    }
}

/// Runs `f`, the store operation `op` on `id` that completes without waiting, as
/// [`traced`] runs a future.
#[inline(always)]
pub(crate) fn traced_now<T: Outcome>(op: Op, id: Id, meters: &Meters, f: impl FnOnce() -> T) -> T {
    let span = wanted_span(op, &id);
    if span.is_none() && !Meters::on() {
        return f();
    }
    let start = Instant::now();
    let result = match &span {
        Some(span) => span.in_scope(f),
        None => f(),
    };
    record(op, meters, span.as_ref(), start, result.outcome());
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `async fn` wrapper held the operation's future twice (as its argument and where
    /// it was awaited), and the engine's box copies the whole: a store operation's
    /// future costs its own size here, and a few words more.
    #[test]
    fn a_traced_future_holds_the_operations_future_once() {
        let meters = Meters::new("memory", "test");
        let big = [0u8; 4096];
        let op = async move {
            let kept = big;
            std::future::ready(()).await;
            Ok::<Option<u8>, StoreError>(Some(kept[0]))
        };
        let alone = std::mem::size_of_val(&op);
        let traced = traced(Op::Load, Id::random(), &meters, op);
        let size = std::mem::size_of_val(&traced);
        assert!(alone >= 4096, "{alone}");
        assert!(
            size <= alone + 128,
            "{size} bytes around a future of {alone}"
        );
    }
}
