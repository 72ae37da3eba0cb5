//! Latency (p50/p99) and throughput of `AerospikeStore` load, save and touch.
//!
//! `cargo bench -p session-tests --bench aerospike_store` runs against `AEROSPIKE_HOSTS`
//! when set, else against the protocol test server in `tests/` (then the figures measure
//! the client and that server, not a real cluster: useful only as a baseline for the
//! client-side cost). Optional: `BENCH_OPS` (default 20000), `BENCH_TASKS` (default 32),
//! `AEROSPIKE_MAX_IN_FLIGHT` (the store's default if unset; 0 never coalesces).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use session_aerospike::AerospikeStore;
use session_core::{Changes, Id, Record, SessionStore, Ttl};
use session_tests::aerospike::{real_hosts, AerospikeTestServer};
use time::OffsetDateTime;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run<F, Fut>(name: &str, ops: usize, tasks: usize, ids: Arc<Vec<Id>>, op: F)
where
    F: Fn(Id) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (op, ids) = (op.clone(), ids.clone());
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(ops / tasks + 1);
            for i in (t..ops).step_by(tasks) {
                let id = ids[i % ids.len()];
                let s = Instant::now();
                op(id).await;
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(ops);
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    println!(
        "{name:<6} {:>9.0} ops/s   p50 {:>8.1} µs   p99 {:>8.1} µs",
        all.len() as f64 / wall.as_secs_f64(),
        pct(&all, 0.50).as_secs_f64() * 1e6,
        pct(&all, 0.99).as_secs_f64() * 1e6,
    );
}

#[tokio::main]
async fn main() {
    let ops = env("BENCH_OPS", 20_000);
    let tasks = env("BENCH_TASKS", 32);
    let (hosts, _server) = match real_hosts() {
        Some(h) => (h, None),
        None => {
            let s = AerospikeTestServer::start().await;
            (s.hosts(), Some(s))
        }
    };
    let builder = match std::env::var("AEROSPIKE_MAX_IN_FLIGHT")
        .ok()
        .map(|v| v.parse())
    {
        None => AerospikeStore::builder(),
        Some(Ok(0)) => AerospikeStore::builder().without_coalescing(),
        Some(Ok(n)) => AerospikeStore::builder().max_in_flight(n),
        Some(Err(e)) => panic!("AEROSPIKE_MAX_IN_FLIGHT: {e}"),
    };
    let store = builder.connect(&hosts).await.expect("connect");
    let ttl = Ttl::from_secs(3600).unwrap();
    let mut ids = Vec::new();
    for i in 0..1_000 {
        let r = Record {
            id: Id::random(),
            data: [
                ("user".to_string(), json!(format!("user{i}"))),
                ("cart".to_string(), json!([1, 2, 3])),
            ]
            .into_iter()
            .collect(),
            expiry: None,
            expires_at: OffsetDateTime::now_utc() + time::Duration::HOUR,
        };
        store.create(&r, ttl).await.unwrap();
        ids.push(r.id);
    }
    let ids = Arc::new(ids);
    println!("AerospikeStore at {hosts}: {ops} ops per kind, {tasks} concurrent tasks");
    let s = store.clone();
    run("load", ops, tasks, ids.clone(), move |id| {
        let s = s.clone();
        async move {
            s.load(&id).await.unwrap().unwrap();
        }
    })
    .await;
    let s = store.clone();
    run("save", ops, tasks, ids.clone(), move |id| {
        let s = s.clone();
        async move {
            let r = Record {
                id,
                data: [("visits".to_string(), json!(1))].into_iter().collect(),
                expiry: None,
                expires_at: OffsetDateTime::now_utc() + time::Duration::HOUR,
            };
            s.save(&r, &Changes::new(false, ["visits"]), ttl)
                .await
                .unwrap();
        }
    })
    .await;
    let s = store.clone();
    run("touch", ops, tasks, ids, move |id| {
        let s = s.clone();
        async move {
            let at = OffsetDateTime::now_utc() + time::Duration::HOUR;
            s.touch(&id, at, ttl).await.unwrap();
        }
    })
    .await;
}
