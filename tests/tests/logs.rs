//! Session ids never appear whole in logs: every `tracing` event is captured at DEBUG
//! across creates, id cycles, logouts and store failures, on both adapters.

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
