//! A flood of requests with no cookie or bogus ids: nothing is written, nothing is kept,
//! and every bad id is counted for the app to see.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use session_core::{Id, MemoryStore, SessionConfig};
use session_tests::{Actix, Axum, Framework, Probe, TestServer};

const REQUESTS: usize = 100_000;
const TASKS: usize = 32;

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn cookie_for(i: usize) -> Option<String> {
    match i % 4 {
        0 => None,
        1 => Some(format!("id=bogus{i}")),
        2 => Some(format!(
            "theme=dark; id={}x",
            &Id::random().encode().as_str()[..21]
        )),
        _ => Some(format!("id={}", Id::random().encode().as_str())),
    }
}

async fn flood(server: Arc<TestServer>, range: std::ops::Range<usize>) {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(range.start));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (client, next, server) = (client.clone(), next.clone(), server.clone());
        let end = range.end;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return;
                }
                let mut req = client.get(server.url("/get/a"));
                if let Some(c) = cookie_for(i) {
                    req = req.header("cookie", c);
                }
                let resp = req.send().await.expect("the server answers");
                assert_eq!(resp.status(), 200);
                assert!(resp.headers().get("set-cookie").is_none());
                assert_eq!(resp.text().await.unwrap(), "null");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn flood_adapter<F: Framework>() {
    let probe = Probe::new(MemoryStore::default());
    let server = Arc::new(F::serve(probe.clone(), SessionConfig::default()).await);
    let warm = REQUESTS / 10;
    flood(server.clone(), 0..warm).await;
    let rss_warm = rss_kib();
    flood(server.clone(), warm..REQUESTS).await;
    let rss_end = rss_kib();

    assert_eq!(
        probe.writes(),
        0,
        "{}: a bogus id caused a store write",
        F::NAME
    );
    assert!(
        probe.inner().is_empty(),
        "{}: the store kept something",
        F::NAME
    );
    let per_kind = REQUESTS / 4;
    let m = server.metrics();
    assert_eq!(
        m.rejected_ids as usize,
        2 * per_kind,
        "{}: malformed ids counted",
        F::NAME
    );
    assert_eq!(
        m.unknown_ids as usize,
        per_kind,
        "{}: unknown ids counted",
        F::NAME
    );
    // 90 000 requests after the warm-up may not grow this process by more than 32 MiB
    // (a leak of even 400 bytes a request would be 34 MiB).
    let grown = rss_end.saturating_sub(rss_warm);
    assert!(
        grown < 32 * 1024,
        "{}: RSS grew {grown} KiB over the flood",
        F::NAME
    );
    eprintln!(
        "{}: {REQUESTS} bogus requests, 0 writes, RSS {rss_warm} -> {rss_end} KiB, {m:?}",
        F::NAME
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bogus_ids_writes_nothing_and_is_counted_on_axum() {
    flood_adapter::<Axum>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bogus_ids_writes_nothing_and_is_counted_on_actix() {
    flood_adapter::<Actix>().await;
}
