//! Store faults seen from HTTP: the real client against the test server's injected faults,
//! behind both adapters.

use std::time::{Duration, Instant};

use aerospike::{Bin, Client, ClientPolicy, Key, Value, WritePolicy};
use serde_json::json;
use session_aerospike::AerospikeStore;
use session_core::{Id, SessionConfig, SessionStore};
use session_tests::aerospike::{assert_store_down, AerospikeTestServer};
use session_tests::http_suite::get;
use session_tests::Framework;

async fn setup(
    builder: session_aerospike::AerospikeStoreBuilder,
) -> (AerospikeTestServer, AerospikeStore) {
    let server = AerospikeTestServer::start().await;
    let store = builder.connect(&server.hosts()).await.unwrap();
    (server, store)
}

fn quick() -> session_aerospike::AerospikeStoreBuilder {
    AerospikeStore::builder()
        .timeout(Duration::from_millis(50))
        .max_retries(0)
}

/// The store goes down while serving: 503 where the session is needed, 200 elsewhere,
/// and everything back once it returns.
async fn down_while_serving<F: Framework>() {
    let (mut server, store) = setup(quick()).await;
    let app = F::serve(store, SessionConfig::default()).await;
    let pair = get(&app, "/set/a/1", None).await.cookie_pair();
    server.stop();
    assert_store_down(&app, &pair).await;
    server.restart().await;
    let mut back = None;
    for _ in 0..100 {
        let r = get(&app, "/get/a", Some(&pair)).await;
        if r.status == 200 {
            back = Some(r.json());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        back,
        Some(json!(1)),
        "{}: the session is back with the store",
        F::NAME
    );
    // The retried logout succeeds.
    assert_eq!(get(&app, "/logout", Some(&pair)).await.status, 200);
    assert_eq!(get(&app, "/get/a", Some(&pair)).await.json(), json!(null));
}

/// A 50 ms budget against 500 ms of delay: the request ends near the budget.
async fn slow_store_is_a_fast_503<F: Framework>() {
    let (server, store) = setup(quick()).await;
    let app = F::serve(store, SessionConfig::default()).await;
    let pair = get(&app, "/set/a/1", None).await.cookie_pair();
    server.faults().delay = Duration::from_millis(500);
    let started = Instant::now();
    let r = get(&app, "/get/a", Some(&pair)).await;
    let took = started.elapsed();
    assert_eq!(r.status, 503);
    assert!(
        took < Duration::from_millis(400),
        "{}: took {took:?}",
        F::NAME
    );
}

/// The connection drops during the save: a 5xx, and the record is the old state.
async fn dies_during_save<F: Framework>() {
    let (server, store) = setup(quick()).await;
    let app = F::serve(store.clone(), SessionConfig::default()).await;
    let pair = get(&app, "/set/a/1", None).await.cookie_pair();
    let id: Id = pair[3..].parse().unwrap();
    // The load goes through; the save's connection is dropped.
    let r = {
        let app = &app;
        let pair = pair.clone();
        let req = tokio::spawn({
            let url = app.url("/slowset/a/2");
            async move {
                reqwest::Client::new()
                    .get(url)
                    .header("cookie", pair)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.faults().drop_requests = 1;
        req.await.unwrap()
    };
    assert!(r >= 500, "{}: a failed save answered {r}", F::NAME);
    let rec = store.load(&id).await.unwrap().unwrap();
    assert_eq!(rec.data["a"], json!(1), "the old state, not a mix");
}

/// Garbage written under a session's key by a plain client: a fresh session, not a 500.
async fn garbage_record_is_a_fresh_session<F: Framework>() {
    let (server, store) = setup(AerospikeStore::builder()).await;
    let app = F::serve(store, SessionConfig::default()).await;
    let id = Id::random();
    let client = Client::new(&ClientPolicy::default(), &server.hosts())
        .await
        .unwrap();
    let key = Key::new("test", "sessions", Value::from(id.encode().as_str())).unwrap();
    let bins = [
        Bin::new("data", Value::from(42)),
        Bin::new("v", Value::from("x")),
    ];
    client
        .put(&WritePolicy::default(), &key, &bins)
        .await
        .unwrap();
    let cookie = format!("id={}", id.encode().as_str());
    let r = get(&app, "/all", Some(&cookie)).await;
    assert_eq!((r.status, r.json()), (200, json!({})));
    let r = get(&app, "/set/k/1", Some(&cookie)).await;
    assert_eq!(r.status, 200);
    assert_ne!(
        r.cookie().value(),
        id.encode().as_str(),
        "never the garbage id"
    );
}

/// Every id taken: bounded retries, an error, and the existing session untouched.
async fn every_id_taken<F: Framework>() {
    let (server, store) = setup(AerospikeStore::builder()).await;
    let app = F::serve(store.clone(), SessionConfig::default()).await;
    let pair = get(&app, "/set/a/1", None).await.cookie_pair();
    let id: Id = pair[3..].parse().unwrap();
    let before = server.data_commands();
    server.faults().ids_taken = true;
    let r = get(&app, "/set/b/1", None).await;
    assert_eq!(r.status, 500);
    assert!(r.set_cookies.is_empty());
    let tries = server.data_commands() - before;
    assert_eq!(
        tries, 8,
        "bounded retries: the engine's eight ids, one create each"
    );
    let login = get(&app, "/login/ada", Some(&pair)).await;
    assert_eq!(login.status, 500, "a cycle that cannot create fails");
    server.faults().ids_taken = false;
    let rec = store.load(&id).await.unwrap().unwrap();
    assert_eq!(rec.data.len(), 1, "the existing session is untouched");
    assert_eq!(rec.data["a"], json!(1));
}

/// A cycle whose delete of the old record was carried out but its answer lost (the
/// node died mid-reply) still moves the session: the client's retry finds the old
/// record gone, and that must not read as a logout that came first. The cluster soak
/// caught a session lost this way during a node's shutdown; the test server loses
/// exactly that answer.
#[tokio::test]
async fn a_cycle_whose_delete_answer_is_lost_still_moves_the_session() {
    let (server, store) = setup(
        AerospikeStore::builder()
            .max_retries(2)
            .retry_spacing(Duration::from_millis(5)),
    )
    .await;
    let ttl = session_core::Ttl::from_secs(600).unwrap();
    let old = session_tests::store_suite::record(json!({"user": "ada"}), 600);
    store.create(&old, ttl).await.unwrap();
    let moved = session_core::Record {
        id: Id::random(),
        ..old.clone()
    };
    // The cycle's create goes through; its delete is carried out and its answer lost.
    server.faults().lose_answer_of = Some(1);
    let cycled = store.cycle(&old.id, &moved, ttl).await.unwrap();
    assert_eq!(cycled, session_core::Cycle::Moved, "the delete was its own");
    assert_eq!(server.faults().lose_answer_of, None, "the answer was lost");
    assert!(store.load(&old.id).await.unwrap().is_none());
    let back = store
        .load(&moved.id)
        .await
        .unwrap()
        .expect("the session moved");
    assert_eq!(back.data["user"], json!("ada"));
}

session_tests::per_adapter!(
    down_while_serving,
    slow_store_is_a_fast_503,
    dies_during_save,
    garbage_record_is_a_fresh_session,
    every_id_taken
);
