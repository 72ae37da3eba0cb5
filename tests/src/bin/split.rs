//! The window after a split: what reads see of ended sessions when a frozen node returns.
//!
//! `cargo run -p session-tests --bin split -- [--write] [RUNS] [DELAY...]` (needs
//! `AEROSPIKE_SERVER_DIR`; defaults: 2 runs, delays 1.8 2.2 2.6 3.0 4.0 s) starts a real
//! 3-node cluster (replication factor 2, heartbeat 150 ms × 10) and an axum app on an
//! `AerospikeStore` with its defaults. For each delay and run: 40 sessions whose records
//! node 3 masters and 40 mastered by the others are logged in; node 3 is frozen
//! (SIGSTOP); every session is logged out at once, each logout's acknowledgement time
//! kept; node 3 runs again the delay after it froze, whether or not every logout has
//! been answered by then; from then on, for 8 s, every logged-out session is read back
//! in a loop. A read that starts after its session's logout was acknowledged and finds
//! the session live counts. Once the cluster has settled, each is read once more.
//! With `--write`, each of those requests also writes to the session it finds (`/set`),
//! as a thief's request with a copied cookie would: the question is then whether a
//! write in the window brings an ended session back for good.
//!
//! Short delays are the hard case: node 3 returns before the app's client has dropped it
//! from its view, still claiming the partitions it mastered, with the copies it had
//! when it froze (before the logouts).
//!
//! A measurement, not a test: it prints what it sees and exits 0.

use std::time::Duration;

use session_aerospike::AerospikeStore;
use session_core::SessionConfig;
use session_tests::aerospike::ends::{logged_in, split_round, PER_SIDE};
use session_tests::aerospike::RealCluster;
use session_tests::http_suite::get;
use session_tests::{Axum, Framework};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let write = args.next_if(|a| a == "--write").is_some();
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let mut delays: Vec<f64> = args.filter_map(|a| a.parse().ok()).collect();
    if delays.is_empty() {
        delays = vec![1.8, 2.2, 2.6, 3.0, 4.0];
    }
    let Some(cluster) = RealCluster::start(3).await else {
        eprintln!("split: needs AEROSPIKE_SERVER_DIR (a real server's start.sh)");
        std::process::exit(2);
    };
    let store = AerospikeStore::connect(&cluster.hosts)
        .await
        .expect("connect to the cluster");
    let app = Axum::serve(store, SessionConfig::default()).await;
    // The user index, built at its first use, exists before any split.
    let warm = logged_in(&app, "warm").await;
    assert_eq!(get(&app, "/sessions", Some(&warm)).await.status, 200);
    println!(
        "split: 3 nodes at {}, {PER_SIDE} sessions on node 3 and {PER_SIDE} elsewhere per run",
        cluster.hosts
    );
    for delay in delays {
        for run_no in 1..=runs {
            let round = format!("d{delay}r{run_no}");
            let seen = split_round(
                &app,
                &cluster,
                Duration::from_secs_f64(delay),
                &round,
                write,
            )
            .await;
            println!(
                "node 3 back after {delay:.1} s, run {run_no}: {} of {} logouts acknowledged \
                 ({} before it returned); {} of {} later reads saw a logged-out session \
                 live{}; after settling, {} live again",
                seen.acked,
                2 * PER_SIDE,
                seen.acked_before,
                seen.live_reads,
                seen.reads,
                seen.last_live.map_or(String::new(), |at| format!(
                    ", the last {at:.2} s after it returned"
                )),
                seen.back
            );
        }
    }
}
