//! Session ids never appear whole in logs: every `tracing` event and span is captured at
//! DEBUG across creates, id cycles, logouts and store failures, on both adapters. Every
//! store operation has its span, with its outcome.

use session_core::{MemoryStore, SessionConfig};
use session_tests::http_suite::get;
use session_tests::{logs, Actix, Axum, Fault, Framework, Op, Probe};

async fn exercise<F: Framework>(ids: &mut Vec<String>) {
    let probe = Probe::new(MemoryStore::default());
    let server = F::serve(probe.clone(), SessionConfig::default()).await;
    let mut pair = get(&server, "/set/a/1", None).await.cookie_pair();
    ids.push(pair[3..].to_owned());
    for round in 0..3 {
        let r = get(&server, &format!("/login/user{round}"), Some(&pair)).await;
        ids.push(r.cookie().value().to_owned());
        pair = r.cookie_pair();
    }
    // Unknown and failing paths, with the id in play.
    let unknown = session_core::Id::random().encode().as_str().to_owned();
    ids.push(unknown.clone());
    assert_eq!(
        get(&server, "/get/a", Some(&format!("id={unknown}")))
            .await
            .status,
        200
    );
    for op in [Op::Load, Op::Save, Op::Delete, Op::Create] {
        probe.heal();
        probe.fail(op, Fault::Backend);
        let path = match op {
            Op::Save => "/set/a/2",
            Op::Delete => "/flush",
            Op::Create => "/login/mallory",
            _ => "/get/a",
        };
        assert_eq!(get(&server, path, Some(&pair)).await.status, 500, "{op:?}");
    }
    probe.heal();
    let r = get(&server, "/flush", Some(&pair)).await;
    assert_eq!(r.cookie().value(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_full_session_id_is_ever_logged() {
    logs::capture();
    let mut ids = Vec::new();
    exercise::<Axum>(&mut ids).await;
    exercise::<Actix>(&mut ids).await;
    let text = logs::text();
    assert!(ids.len() >= 10);
    for id in &ids {
        assert_eq!(id.len(), 22);
        assert!(!text.contains(id.as_str()), "a full id was logged: {id}");
    }
    // The logs do identify sessions, by a short prefix.
    assert!(
        ids.iter()
            .any(|id| text.contains(&format!("{}…", &id[..6]))),
        "no short id in the logs at all"
    );
    assert!(
        text.contains("session id cycled"),
        "the cycle path was exercised"
    );
    assert!(
        text.contains("session store failed"),
        "the error paths were exercised"
    );
}

/// Every store operation is in a `session_store` span naming the operation, the short id
/// and the outcome, on the engine's direct `MemoryStore` path and through a store of any
/// other kind (here the probe), on both adapters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_operation_has_a_span() {
    logs::capture();
    /// The spans the script must leave: operation, outcome, full id (shown short).
    async fn script<F: Framework, S: session_core::SessionStore + Clone>(
        store: S,
    ) -> Vec<(&'static str, &'static str, String)> {
        let server = F::serve(store, SessionConfig::default()).await;
        let first = get(&server, "/set/a/1", None)
            .await
            .cookie()
            .value()
            .to_owned();
        let pair = format!("id={first}");
        get(&server, "/set/a/2", Some(&pair)).await;
        let cycled = get(&server, "/login/ada", Some(&pair))
            .await
            .cookie()
            .value()
            .to_owned();
        get(&server, "/flush", Some(&format!("id={cycled}"))).await;
        let unknown = session_core::Id::random().encode().as_str().to_owned();
        get(&server, "/get/a", Some(&format!("id={unknown}"))).await;
        vec![
            // Spanned under the id asked for, which is the id given unless it was taken.
            ("create", "ok", first.clone()),
            ("load", "found", first.clone()),
            ("save", "ok", first.clone()),
            ("cycle", "ok", first),
            ("delete", "ok", cycled),
            ("load", "not_found", unknown),
        ]
    }
    let mut expected = Vec::new();
    expected.extend(script::<Axum, _>(MemoryStore::default()).await);
    expected.extend(script::<Actix, _>(MemoryStore::default()).await);
    expected.extend(script::<Axum, _>(Probe::new(MemoryStore::default())).await);
    expected.extend(script::<Actix, _>(Probe::new(MemoryStore::default())).await);
    let text = logs::text();
    let closes: Vec<&str> = text.lines().filter(|l| l.contains(": close ")).collect();
    for (op, outcome, id) in &expected {
        let found = closes.iter().any(|l| {
            l.contains(&format!("session_store{{op=\"{op}\" id={}…", &id[..6]))
                && l.contains(&format!("outcome=\"{outcome}\""))
                && l.contains("micros=")
        });
        assert!(found, "no closed span for {op} {outcome} on {}…", &id[..6]);
    }
}
