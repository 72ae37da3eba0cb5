//! A capped `MemoryStore` under a flood of new sessions, on both adapters. Its own test
//! binary: the flood test beside it measures this process's memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use session_core::{MemoryStore, SessionConfig};
use session_tests::{Actix, Axum, Framework};

/// A flood of new sessions against a capped `MemoryStore`: once it is full, newcomers get
/// an opaque 503 (the cause logged), while the sessions it holds keep reading, writing and
/// logging in; a logout frees a place.
async fn capped_store_under_a_flood_of_new_sessions<F: Framework>() {
    const CAP: usize = 50;
    session_tests::logs::capture();
    let store = MemoryStore::with_max_sessions(CAP);
    let server = Arc::new(F::serve(store.clone(), SessionConfig::default()).await);
    let user = session_tests::http_suite::get(&server, "/set/cart/1", None)
        .await
        .cookie_pair();

    let refused = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (server, refused) = (server.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                let r = session_tests::http_suite::get(&server, "/set/a/1", None).await;
                match r.status {
                    200 => assert_eq!(r.set_cookies.len(), 1),
                    503 => {
                        assert!(r.set_cookies.is_empty(), "{:?}", r.set_cookies);
                        assert!(!r.body.contains("maximum"), "opaque: {}", r.body);
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("{}: status {other}: {}", F::NAME, r.body),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.len(), CAP, "{}", F::NAME);
    assert_eq!(
        refused.load(Ordering::Relaxed),
        200 - (CAP - 1),
        "{}",
        F::NAME
    );
    assert!(session_tests::logs::text().contains("holds its maximum of 50 live sessions"));

    // The user's session still works at the cap: read, write, log in (a new id).
    let r = session_tests::http_suite::get(&server, "/set/cart/2", Some(&user)).await;
    assert_eq!(r.status, 200, "{}: {}", F::NAME, r.body);
    let r = session_tests::http_suite::get(&server, "/login/ada", Some(&user)).await;
    assert_eq!(r.status, 200, "{}: {}", F::NAME, r.body);
    let user = r.cookie_pair();
    let all = session_tests::http_suite::get(&server, "/all", Some(&user))
        .await
        .json();
    assert_eq!(all, serde_json::json!({"cart": 2, "user": "ada"}));
    assert_eq!(store.len(), CAP);

    // A logout frees a place for one newcomer.
    assert_eq!(
        session_tests::http_suite::get(&server, "/flush", Some(&user))
            .await
            .status,
        200
    );
    assert_eq!(
        session_tests::http_suite::get(&server, "/set/a/1", None)
            .await
            .status,
        200
    );
    assert_eq!(
        session_tests::http_suite::get(&server, "/set/a/1", None)
            .await
            .status,
        503
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_memory_store_refuses_newcomers_and_serves_its_sessions_on_axum() {
    capped_store_under_a_flood_of_new_sessions::<Axum>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_memory_store_refuses_newcomers_and_serves_its_sessions_on_actix() {
    capped_store_under_a_flood_of_new_sessions::<Actix>().await;
}
