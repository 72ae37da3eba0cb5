//! Counters and histograms through the [`metrics`](https://docs.rs/metrics) facade, with
//! the `metrics` feature: any exporter works (Prometheus, StatsD, OpenTelemetry).
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `session_requests_total` | counter | `store`, `adapter`, `outcome` | requests, by how their session began: `unused` (no handler used it), `new` (no id presented), `loaded`, `unknown_id` (a verified id the store did not know: expired, logged out or guessed), `rejected_id` (malformed, or failing its signature or decryption), `error` (the load failed) |
//! | `session_store_operations_total` | counter | `store`, `adapter`, `op`, `outcome` | store operations: `op` is `load`, `create`, `save`, `touch`, `delete` or `cycle`; `outcome` is `found` or `not_found` (loads), `ok`, `missing` (an update-only write found the session gone), or the error's class (`unavailable`, `too_large`, `id_collision`, `decode`, `encode`, `backend`, `unsupported`) |
//! | `session_store_duration_seconds` | histogram | `store`, `adapter`, `op` | each store operation's duration |
//!
//! `store` is the store's [`SessionStore::label`](crate::SessionStore::label) (`memory`,
//! `aerospike`, `tower-sessions`, ...), `adapter` the framework (`axum`, `actix-web`).
//! Handles are registered with the recorder at their first use, so install the
//! recorder before the first request. Without the feature none of this is compiled;
//! with it and no recorder, each store operation still reads the clock twice.

#[cfg(feature = "metrics")]
use std::sync::OnceLock;
use std::time::Duration;

/// A store operation, as spans and metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Load,
    Create,
    Save,
    Touch,
    Delete,
    Cycle,
}

impl Op {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Op::Load => "load",
            Op::Create => "create",
            Op::Save => "save",
            Op::Touch => "touch",
            Op::Delete => "delete",
            Op::Cycle => "cycle",
        }
    }
}

/// How a request's session began, or that it was never used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    Unused,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    New,
    Loaded,
    UnknownId,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    RejectedId,
    Error,
}

#[cfg(feature = "metrics")]
impl Start {
    const fn as_str(self) -> &'static str {
        match self {
            Start::Unused => "unused",
            Start::New => "new",
            Start::Loaded => "loaded",
            Start::UnknownId => "unknown_id",
            Start::RejectedId => "rejected_id",
            Start::Error => "error",
        }
    }
}

/// Every outcome a store operation reports, by the index `trace::Outcome` gives.
pub(crate) const OUTCOMES: [&str; 11] = [
    "found",
    "not_found",
    "ok",
    "missing",
    "unavailable",
    "too_large",
    "id_collision",
    "decode",
    "encode",
    "backend",
    "unsupported",
];

/// One engine's metric handles: its `store` and `adapter` labels, and each handle
/// registered with the recorder at its first use.
#[derive(Debug)]
pub(crate) struct Meters {
    #[cfg(feature = "metrics")]
    store: &'static str,
    #[cfg(feature = "metrics")]
    adapter: &'static str,
    #[cfg(feature = "metrics")]
    requests: [OnceLock<metrics::Counter>; 6],
    #[cfg(feature = "metrics")]
    operations: [[OnceLock<metrics::Counter>; OUTCOMES.len()]; 6],
    #[cfg(feature = "metrics")]
    durations: [OnceLock<metrics::Histogram>; 6],
}

impl Meters {
    /// Whether operations are measured at all (the `metrics` feature).
    #[inline(always)]
    pub(crate) const fn on() -> bool {
        cfg!(feature = "metrics")
    }

    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(store: &'static str, adapter: &'static str) -> Self {
        Meters {
            #[cfg(feature = "metrics")]
            store,
            #[cfg(feature = "metrics")]
            adapter,
            #[cfg(feature = "metrics")]
            requests: [const { OnceLock::new() }; 6],
            #[cfg(feature = "metrics")]
            operations: [const { [const { OnceLock::new() }; OUTCOMES.len()] }; 6],
            #[cfg(feature = "metrics")]
            durations: [const { OnceLock::new() }; 6],
        }
    }

    /// Counts a request by how its session began.
    #[inline(always)]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn request(&self, start: Start) {
        #[cfg(feature = "metrics")]
        {
            self.requests[start as usize]
                .get_or_init(|| {
                    describe();
                    metrics::counter!(
                        "session_requests_total",
                        "store" => self.store,
                        "adapter" => self.adapter,
                        "outcome" => start.as_str(),
                    )
                })
                .increment(1);
        }
    }

    /// Counts a store operation with its outcome, and records how long it took.
    #[inline(always)]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn operation(&self, op: Op, outcome: usize, took: Duration) {
        #[cfg(feature = "metrics")]
        {
            let (o, i) = (op as usize, outcome);
            self.operations[o][i]
                .get_or_init(|| {
                    describe();
                    metrics::counter!(
                        "session_store_operations_total",
                        "store" => self.store,
                        "adapter" => self.adapter,
                        "op" => op.as_str(),
                        "outcome" => OUTCOMES[i],
                    )
                })
                .increment(1);
            self.durations[o]
                .get_or_init(|| {
                    metrics::histogram!(
                        "session_store_duration_seconds",
                        "store" => self.store,
                        "adapter" => self.adapter,
                        "op" => op.as_str(),
                    )
                })
                .record(took.as_secs_f64());
        }
    }
}

/// Gives the recorder each metric's unit and help text, once.
#[cfg(feature = "metrics")]
fn describe() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            "session_requests_total",
            "Requests, by how their session began: unused, new, loaded, unknown_id, rejected_id, error."
        );
        metrics::describe_counter!(
            "session_store_operations_total",
            "Session store operations, by operation and outcome (found, not_found, ok, missing, or the error's class)."
        );
        metrics::describe_histogram!(
            "session_store_duration_seconds",
            metrics::Unit::Seconds,
            "How long each session store operation took."
        );
    });
}
