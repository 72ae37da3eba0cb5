//! The session metrics (feature `metrics`), read back from a recorder: exact counts for a
//! scripted sequence of requests, on both adapters, with `MemoryStore` (served through
//! its `NowStore`, without futures) and the Aerospike store (the real server when
//! `AEROSPIKE_HOSTS` is set, else the protocol test server; the output says which).
//!
//! A binary of its own: the recorder is global to the process.

use std::collections::BTreeMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use session_core::{SessionConfig, SessionStore, TouchPolicy};
use session_tests::aerospike::Served;
use session_tests::http_suite::get;
use session_tests::{Actix, Axum, Fault, Framework, Op, Probe};

/// Every series of the sessions' metrics whose `adapter` and `store` labels match, by
/// name and remaining labels: counters' values, histograms' sample counts.
fn series(snapshotter: &Snapshotter, adapter: &str, store: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let labels: BTreeMap<&str, &str> = key.labels().map(|l| (l.key(), l.value())).collect();
        if labels.get("adapter") != Some(&adapter) || labels.get("store") != Some(&store) {
            continue;
        }
        let rest: Vec<String> = labels
            .iter()
            .filter(|(k, _)| !matches!(**k, "adapter" | "store"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let name = format!("{}{{{}}}", key.name(), rest.join(","));
        let n = match (kind, value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => n,
            (MetricKind::Histogram, DebugValue::Histogram(samples)) => samples.len() as u64,
            _ => continue,
        };
        out.insert(name, n);
    }
    out
}

fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The script: each line is one request, with what it should count.
async fn script<F: Framework, S: SessionStore + Clone>(
    snapshotter: &Snapshotter,
    store: S,
    probe: Option<&Probe<S>>,
) where
    Probe<S>: SessionStore,
{
    let label = store.label();
    let config = SessionConfig::builder()
        .secure(false)
        .touch_policy(TouchPolicy::OnEveryRequest)
        .build()
        .unwrap();
    let server = match probe {
        Some(p) => F::serve(p.clone(), config).await,
        None => F::serve(store, config).await,
    };
    get(&server, "/plain", None).await; // unused
    get(&server, "/get/a", None).await; // new, nothing stored
    let first = get(&server, "/set/a/1", None).await.cookie_pair(); // new: create
    get(&server, "/get/a", Some(&first)).await; // loaded: load, touch
    get(&server, "/set/a/2", Some(&first)).await; // loaded: load, save
    let login = get(&server, "/login/ada", Some(&first)).await.cookie_pair(); // loaded: load, cycle
    let faulted = probe.is_some();
    if let Some(p) = probe {
        p.fail(Op::Load, Fault::Unavailable);
        let r = get(&server, "/get/a", Some(&login)).await; // error: load unavailable
        assert_eq!(r.status, 503);
        p.heal();
    }
    get(&server, "/flush", Some(&login)).await; // loaded: load, delete
    get(&server, "/get/a", Some(&login)).await; // unknown_id: load not found
    get(&server, "/get/a", Some("id=not-an-id")).await; // rejected_id
    drop(server);

    let mut want = expect(&[
        ("session_requests_total{outcome=unused}", 1),
        ("session_requests_total{outcome=new}", 2),
        ("session_requests_total{outcome=loaded}", 4),
        ("session_requests_total{outcome=unknown_id}", 1),
        ("session_requests_total{outcome=rejected_id}", 1),
        ("session_store_operations_total{op=load,outcome=found}", 4),
        (
            "session_store_operations_total{op=load,outcome=not_found}",
            1,
        ),
        ("session_store_operations_total{op=create,outcome=ok}", 1),
        ("session_store_operations_total{op=touch,outcome=ok}", 1),
        ("session_store_operations_total{op=save,outcome=ok}", 1),
        ("session_store_operations_total{op=cycle,outcome=ok}", 1),
        ("session_store_operations_total{op=delete,outcome=ok}", 1),
        ("session_store_duration_seconds{op=load}", 5),
        ("session_store_duration_seconds{op=create}", 1),
        ("session_store_duration_seconds{op=touch}", 1),
        ("session_store_duration_seconds{op=save}", 1),
        ("session_store_duration_seconds{op=cycle}", 1),
        ("session_store_duration_seconds{op=delete}", 1),
    ]);
    if faulted {
        want.insert("session_requests_total{outcome=error}".into(), 1);
        want.insert(
            "session_store_operations_total{op=load,outcome=unavailable}".into(),
            1,
        );
        want.insert("session_store_duration_seconds{op=load}".into(), 6);
    }
    // The server's last request may still be dropping its state: wait for the count.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = series(snapshotter, F::NAME, label);
        if got == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} + {label}:\n got {got:#?}\nwant {want:#?}",
            F::NAME
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_counts_for_a_scripted_sequence() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this binary");

    // MemoryStore, which the engine calls directly.
    let memory = session_core::MemoryStore::default();
    script::<Axum, _>(&snapshotter, memory.clone(), None).await;
    script::<Actix, _>(&snapshotter, memory, None).await;
    assert!(series(&snapshotter, "axum", "memory")
        .contains_key("session_requests_total{outcome=loaded}"));

    // The Aerospike store, through the boxed path, with a failing load.
    for framework in ["axum", "actix-web"] {
        let served = Served::default_store().await;
        let probe = Probe::new(served.clone());
        match framework {
            "axum" => script::<Axum, _>(&snapshotter, served, Some(&probe)).await,
            _ => script::<Actix, _>(&snapshotter, served, Some(&probe)).await,
        }
    }
}
