//! Memory of the in-process stores.
//!
//! 1. Bytes per session: the growth of this process's resident memory while 1 000 000
//!    sessions holding one small value are created, in our `MemoryStore` and in
//!    tower-sessions' `MemoryStore`, each in a fresh child process so neither inherits the
//!    other's heap.
//! 2. Churn: sessions with a 1 s TTL created at a steady rate for a while; resident memory
//!    and the number of records held are printed every second, and must stay flat.
//!
//! `cargo run --release -p session-bench --bin memory [-- --sessions N --churn-secs S]`

use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant};

use clap::Parser;
use serde_json::json;
use session_core::{Id, MemoryStore, Record, SessionStore, Ttl};
use time::{Duration, OffsetDateTime};

#[derive(Parser, Debug)]
struct Args {
    /// Sessions created for the bytes-per-session figure.
    #[arg(long, default_value_t = 1_000_000)]
    sessions: usize,
    /// How long the churn runs, in seconds (0 skips it).
    #[arg(long, default_value_t = 20)]
    churn_secs: u64,
    /// Sessions created per second during the churn.
    #[arg(long, default_value_t = 50_000)]
    churn_rate: u64,
    /// Internal: measure one store in this process and print its figure.
    #[arg(long, hide = true)]
    child: Option<String>,
}

/// Resident memory of this process, in bytes, from /proc.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a VmRSS line");
    kb * 1024
}

fn record(n: usize, ttl: Duration) -> Record {
    Record {
        id: Id::random(),
        data: [("n".to_owned(), json!(n))].into_iter().collect(),
        expiry: None,
        expires_at: OffsetDateTime::now_utc() + ttl,
    }
}

async fn fill_ours(sessions: usize) -> (u64, usize) {
    let store = MemoryStore::default();
    let ttl = Ttl::from_secs(86_400).expect("a valid ttl");
    let before = rss();
    for n in 0..sessions {
        let r = record(n, Duration::days(1));
        store.create(&r, ttl).await.expect("memory never fails");
    }
    let grown = rss() - before;
    (grown, store.len())
}

async fn fill_tower(sessions: usize) -> (u64, usize) {
    use tower_sessions::session_store::SessionStore as _;
    let store = tower_sessions_memory_store::MemoryStore::default();
    let before = rss();
    for n in 0..sessions {
        let mut r = tower_sessions::session::Record {
            id: tower_sessions::session::Id::default(),
            data: HashMap::from([("n".to_owned(), json!(n))]),
            expiry_date: OffsetDateTime::now_utc() + Duration::days(1),
        };
        store.create(&mut r).await.expect("memory never fails");
    }
    let grown = rss() - before;
    (grown, sessions)
}

async fn churn(secs: u64, rate: u64) {
    let store = MemoryStore::default();
    let ttl = Ttl::from_secs(1).expect("a valid ttl");
    let start = Instant::now();
    let mut created = 0u64;
    println!("\nchurn: {rate} sessions/s living 1 s, for {secs} s (our MemoryStore)");
    println!(
        "{:>4}  {:>10}  {:>10}  {:>9}",
        "s", "created", "held", "RSS MiB"
    );
    for second in 1..=secs {
        let until = start + StdDuration::from_secs(second);
        let target = rate * second;
        while created < target {
            let r = record(created as usize, Duration::SECOND);
            store.create(&r, ttl).await.expect("memory never fails");
            created += 1;
        }
        if let Some(wait) = until.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        println!(
            "{second:>4}  {created:>10}  {:>10}  {:>9.1}",
            store.len(),
            rss() as f64 / (1024.0 * 1024.0)
        );
    }
}

fn run_child(which: &str, sessions: usize) -> (u64, usize) {
    let out = std::process::Command::new(std::env::current_exe().expect("this program"))
        .args(["--child", which, "--sessions", &sessions.to_string()])
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "{which}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut parts = text
        .split_whitespace()
        .map(|v| v.parse::<u64>().expect("a number"));
    let bytes = parts.next().expect("bytes");
    let held = parts.next().expect("held") as usize;
    (bytes, held)
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if let Some(which) = args.child.as_deref() {
        let (bytes, held) = match which {
            "ours" => rt.block_on(fill_ours(args.sessions)),
            "tower-sessions" => rt.block_on(fill_tower(args.sessions)),
            other => panic!("unknown store {other}"),
        };
        println!("{bytes} {held}");
        return;
    }
    println!(
        "resident memory per session, {} sessions holding {{\"n\": <number>}}",
        args.sessions
    );
    println!(
        "{:<32}  {:>12}  {:>10}",
        "store", "RSS growth", "per session"
    );
    let mut figures = Vec::new();
    for (which, label) in [
        ("ours", "session-core MemoryStore"),
        ("tower-sessions", "tower-sessions MemoryStore 0.15"),
    ] {
        let (bytes, held) = run_child(which, args.sessions);
        assert_eq!(held, args.sessions, "{label} holds every session");
        let per = bytes as f64 / args.sessions as f64;
        figures.push(per);
        println!(
            "{label:<32}  {:>9.1} MiB  {per:>8.0} B",
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    println!(
        "ratio ours / tower-sessions: {:.2}",
        figures[0] / figures[1]
    );
    if args.churn_secs > 0 {
        rt.block_on(churn(args.churn_secs, args.churn_rate));
    }
}
