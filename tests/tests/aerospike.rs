//! What only the Aerospike store does: the record layout seen by a plain client, TTLs,
//! namespaces that forbid them, and each fault the test server can inject.

use std::time::{Duration as StdDuration, Instant};

use aerospike::{Bins, Client, ClientPolicy, Key, Value, WritePolicy};
use serde_json::json;
use session_aerospike::{AerospikeStore, Error};
use session_core::{
    Changes, Expiry, Id, Record, SessionConfig, SessionStore, StoreError, Ttl, Update,
};
use session_tests::aerospike::{AerospikeTestServer, Served};
use session_tests::http_suite::get;
use session_tests::{Axum, Framework};
use time::{Duration, OffsetDateTime};

fn record(data: serde_json::Value, secs: i64) -> Record {
    Record {
        id: Id::random(),
        data: serde_json::from_value(data).unwrap(),
        expiry: None,
        expires_at: OffsetDateTime::now_utc() + Duration::seconds(secs),
    }
}

fn ttl(secs: u32) -> Ttl {
    Ttl::from_secs(secs).unwrap()
}

async fn plain_client(hosts: &str) -> Client {
    Client::new(&ClientPolicy::default(), &hosts.to_owned())
        .await
        .unwrap()
}

fn key(id: &Id) -> Key {
    Key::new("test", "sessions", Value::from(id.encode().as_str())).unwrap()
}

/// The cluster the HTTP-level check runs on: AEROSPIKE_HOSTS, else a test server.
async fn hosts() -> (String, Option<AerospikeTestServer>) {
    match session_tests::aerospike::real_hosts() {
        Some(h) => (h, None),
        None => {
            let s = AerospikeTestServer::start().await;
            (s.hosts(), Some(s))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_sees_a_native_map_and_the_cookies_max_age_as_ttl() {
    let (hosts, _server) = hosts().await;
    let store = AerospikeStore::connect(&hosts).await.unwrap();
    let config = SessionConfig::builder()
        .expiry(Expiry::OnInactivity(Duration::seconds(600)))
        .build()
        .unwrap();
    let app = Axum::serve(store, config).await;
    let r = get(
        &app,
        "/set/cart/[\"apple\",2,1.5,true,null,{\"k\":\"v\"}]",
        None,
    )
    .await;
    let cookie = r.cookie();
    assert_eq!(cookie.max_age(), Some(Duration::seconds(600)));
    let id: Id = cookie.value().parse().unwrap();

    let client = plain_client(&hosts).await;
    let rec = client
        .get(&Default::default(), &key(&id), Bins::All)
        .await
        .unwrap();
    let ttl = rec.time_to_live().expect("the record has a TTL").as_secs();
    assert!((599..=600).contains(&ttl), "TTL {ttl} vs Max-Age 600");
    let data = match rec.bins.get("data") {
        Some(Value::HashMap(m)) => m.clone(),
        Some(Value::OrderedMap(m)) => m.clone().into_iter().collect(),
        other => panic!("data is not a native map: {other:?}"),
    };
    let cart = &data[&Value::from("cart")];
    assert_eq!(
        cart,
        &Value::List(vec![
            Value::from("apple"),
            Value::from(2),
            Value::from(1.5),
            Value::from(true),
            Value::Nil,
            Value::HashMap([(Value::from("k"), Value::from("v"))].into()),
        ])
    );
    assert_eq!(
        rec.bins.get("v"),
        Some(&Value::from(session_aerospike::FORMAT_VERSION))
    );
    assert!(matches!(rec.bins.get("expires"), Some(Value::Int(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_that_forbids_ttls_is_named_at_start_up() {
    let (hosts, _server) = hosts().await;
    let err = AerospikeStore::builder()
        .namespace("nottl")
        .connect(&hosts)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TtlForbidden { ref namespace } if namespace == "nottl"));
    let msg = err.to_string();
    assert!(
        msg.contains("nsup-period") && msg.contains("allow-ttl-without-nsup"),
        "{msg}"
    );

    // Opting in writes without a TTL and still enforces the expiry on load.
    let store = AerospikeStore::builder()
        .namespace("nottl")
        .set("nottl_opt_in")
        .without_server_ttl()
        .connect(&hosts)
        .await
        .unwrap();
    let r = record(json!({"a": 1}), 1);
    store.create(&r, ttl(1)).await.unwrap();
    let client = plain_client(&hosts).await;
    let stored = client
        .get(
            &Default::default(),
            &Key::new("nottl", "nottl_opt_in", Value::from(r.id.encode().as_str())).unwrap(),
            Bins::None,
        )
        .await
        .unwrap();
    assert_eq!(stored.time_to_live(), None, "no server TTL");
    assert!(store.load(&r.id).await.unwrap().is_some());
    let later = OffsetDateTime::now_utc() + Duration::seconds(600);
    assert_eq!(
        store.touch(&r.id, later, ttl(600)).await.unwrap(),
        Update::Applied
    );
    assert!(store.load(&r.id).await.unwrap().is_some());
    let short = record(json!({"a": 1}), 1);
    store.create(&short, ttl(1)).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(1_100)).await;
    assert!(
        store.load(&short.id).await.unwrap().is_none(),
        "expired by its expires bin"
    );
    // A late write cannot bring it back: the server filters it out by `expires`.
    let later = OffsetDateTime::now_utc() + Duration::seconds(600);
    assert_eq!(
        store.touch(&short.id, later, ttl(600)).await.unwrap(),
        Update::Missing
    );
    let mut changed = short.clone();
    changed.data.insert("b".into(), json!(2));
    changed.expires_at = later;
    let c = Changes::new(false, ["b"]);
    assert_eq!(
        store.save(&changed, &c, ttl(600)).await.unwrap(),
        Update::Missing
    );
    assert!(
        store.load(&short.id).await.unwrap().is_none(),
        "not revived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_expire_on_the_server_by_their_ttl() {
    let server = AerospikeTestServer::start().await;
    let store = AerospikeStore::connect(&server.hosts()).await.unwrap();
    let r = record(json!({"a": 1}), 3600);
    store.create(&r, ttl(3600)).await.unwrap();
    server.advance(StdDuration::from_secs(3599));
    assert_eq!(server.records("test", "sessions").len(), 1);
    server.advance(StdDuration::from_secs(2));
    assert!(server.records("test", "sessions").is_empty());
    let later = OffsetDateTime::now_utc() + Duration::seconds(60);
    assert_eq!(
        store.touch(&r.id, later, ttl(60)).await.unwrap(),
        Update::Missing
    );
    let c = Changes::new(false, ["a"]);
    assert_eq!(store.save(&r, &c, ttl(60)).await.unwrap(), Update::Missing);
    assert!(
        server.records("test", "sessions").is_empty(),
        "not brought back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_too_big_is_a_clear_error_and_the_old_record_stays() {
    let server = AerospikeTestServer::start().await;
    let store = AerospikeStore::connect(&server.hosts()).await.unwrap();
    let r = record(json!({"a": "small"}), 600);
    store.create(&r, ttl(600)).await.unwrap();
    server.faults().max_record_size = Some(1024);
    let mut big = r.clone();
    big.data.insert("blob".into(), json!("x".repeat(4096)));
    let err = store
        .save(&big, &Changes::new(false, ["blob"]), ttl(600))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge(_)), "{err:?}");
    assert!(err
        .to_string()
        .contains("larger than the session store accepts"));
    assert_eq!(store.load(&r.id).await.unwrap().unwrap().data, r.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_busy_is_unavailable_and_transient() {
    let server = AerospikeTestServer::start().await;
    let store = AerospikeStore::builder()
        .max_retries(0)
        .connect(&server.hosts())
        .await
        .unwrap();
    let r = record(json!({"a": 1}), 600);
    store.create(&r, ttl(600)).await.unwrap();
    server.faults().key_busy = usize::MAX;
    let c = Changes::new(false, ["a"]);
    let err = store.save(&r, &c, ttl(600)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    server.faults().key_busy = 0;
    assert_eq!(store.save(&r, &c, ttl(600)).await.unwrap(), Update::Applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_ends_the_call_near_its_budget() {
    let server = AerospikeTestServer::start().await;
    let store = AerospikeStore::builder()
        .timeout(StdDuration::from_millis(50))
        .max_retries(0)
        .connect(&server.hosts())
        .await
        .unwrap();
    server.faults().delay = StdDuration::from_millis(500);
    let started = Instant::now();
    let err = store.load(&Id::random()).await.unwrap_err();
    let took = started.elapsed();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(
        took < StdDuration::from_millis(400),
        "took {took:?}, the budget is 50 ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_unavailable_and_a_restart_recovers() {
    let mut server = AerospikeTestServer::start().await;
    let store = AerospikeStore::builder()
        .max_retries(0)
        .timeout(StdDuration::from_millis(500))
        .connect(&server.hosts())
        .await
        .unwrap();
    let r = record(json!({"a": 1}), 600);
    store.create(&r, ttl(600)).await.unwrap();

    server.faults().drop_requests = 1;
    let err = store.load(&r.id).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");

    server.stop();
    let err = store.load(&r.id).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");

    server.restart().await;
    let mut loaded = None;
    for _ in 0..100 {
        if let Ok(Some(rec)) = store.load(&r.id).await {
            loaded = Some(rec);
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(
        loaded.expect("the store recovers after a restart").data,
        r.data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_is_a_typed_error() {
    let server = AerospikeTestServer::start().await;
    let hosts = server.hosts();
    drop(server);
    let policy = ClientPolicy {
        timeout: 500,
        ..Default::default()
    };
    let err = AerospikeStore::builder()
        .client_policy(policy)
        .connect(&hosts)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&hosts));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_is_a_decode_error() {
    let server = AerospikeTestServer::start().await;
    let store = AerospikeStore::connect(&server.hosts()).await.unwrap();
    let client = plain_client(&server.hosts()).await;
    let id = Id::random();
    let bins = [
        aerospike::Bin::new("data", Value::from("not a map")),
        aerospike::Bin::new("v", Value::from(99)),
    ];
    client
        .put(&WritePolicy::default(), &key(&id), &bins)
        .await
        .unwrap();
    let err = store.load(&id).await.unwrap_err();
    assert!(matches!(err, StoreError::Decode(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_and_clear_are_admin_operations() {
    let server = AerospikeTestServer::start().await;
    let store = AerospikeStore::connect(&server.hosts()).await.unwrap();
    for _ in 0..3 {
        let r = record(json!({"a": 1}), 600);
        store.create(&r, ttl(600)).await.unwrap();
    }
    assert_eq!(store.count().await.unwrap(), 3);
    store.clear().await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_factory_runs_against_the_test_server_or_a_real_one() {
    let served = Served::default_store().await;
    assert_eq!(
        served.server.is_some(),
        session_tests::aerospike::real_hosts().is_none()
    );
}

/// How many records a set holds, by a scan with a plain client.
async fn scan_count(client: &Client, namespace: &str, set: &str) -> usize {
    use futures_util::StreamExt as _;
    let statement = aerospike::Statement::new(namespace, set, Bins::None);
    let records = client
        .query(
            &Default::default(),
            aerospike::PartitionFilter::default(),
            statement,
        )
        .await
        .unwrap();
    let mut stream = records.into_stream();
    let mut n = 0;
    while let Some(r) = stream.next().await {
        r.unwrap();
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_sweeps_only_what_is_due() {
    let (hosts, _server) = hosts().await;
    let store = AerospikeStore::builder()
        .namespace("nottl")
        .set("sweep")
        .without_server_ttl()
        .connect(&hosts)
        .await
        .unwrap();
    // A real namespace without TTLs keeps what earlier runs left.
    store.clear().await.unwrap();
    let client = plain_client(&hosts).await;
    for _ in 0..3 {
        let r = record(json!({"a": 1}), 1);
        store.create(&r, ttl(1)).await.unwrap();
    }
    let alive = record(json!({"keep": true}), 600);
    store.create(&alive, ttl(600)).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(1_100)).await;
    assert_eq!(
        scan_count(&client, "nottl", "sweep").await,
        4,
        "the database keeps them"
    );
    assert_eq!(store.delete_expired().await.unwrap(), 3);
    assert_eq!(scan_count(&client, "nottl", "sweep").await, 1);
    assert_eq!(
        store.load(&alive.id).await.unwrap().unwrap().data,
        alive.data
    );
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    // Through tower-sessions' trait too.
    tower_sessions::ExpiredDeletion::delete_expired(&store)
        .await
        .unwrap();
}

/// `clear` removes every session written before it was called, on every node, when it
/// returns: 100 rounds of writes immediately followed by a clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_removes_every_session_written_before_it() {
    let (hosts, _server) = hosts().await;
    // A set of its own: clearing `sessions` would log out the other tests' sessions.
    let store = AerospikeStore::builder()
        .set("cleared")
        .connect(&hosts)
        .await
        .unwrap();
    for round in 0..100 {
        let mut ids = Vec::new();
        for _ in 0..5 {
            let r = record(json!({"round": round}), 600);
            store.create(&r, ttl(600)).await.unwrap();
            ids.push(r.id);
        }
        store.clear().await.unwrap();
        for id in &ids {
            assert!(
                store.load(id).await.unwrap().is_none(),
                "round {round}: a session written before clear() still loads"
            );
        }
    }
    // The set is usable afterwards.
    let r = record(json!({"after": true}), 600);
    store.create(&r, ttl(600)).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tower_sessions_app_keeps_its_sessions_here() {
    use axum::routing::get;
    use tower_sessions::{Session, SessionManagerLayer};

    let (hosts, _server) = hosts().await;
    let store = AerospikeStore::connect(&hosts).await.unwrap();
    async fn count(session: Session) -> String {
        let n: u64 = session.get("n").await.unwrap().unwrap_or(0) + 1;
        session.insert("n", n).await.unwrap();
        n.to_string()
    }
    let app = axum::Router::new()
        .route("/", get(count))
        .layer(SessionManagerLayer::new(store.clone()).with_secure(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let url = format!("http://{addr}/");
    for expected in ["1", "2", "3"] {
        let body = client.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, expected);
    }
    // The record is this crate's format: our own store reads it.
    let jar_cookie = client.get(&url).send().await.unwrap();
    let set = jar_cookie
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let id: Id = set
        .expect("tower-sessions re-sends its cookie on a change")
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("id=")
        .parse()
        .unwrap();
    let ours = store.load(&id).await.unwrap().expect("stored in Aerospike");
    assert_eq!(ours.data["n"], json!(4));
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applications_client_can_be_shared() {
    let server = AerospikeTestServer::start().await;
    let client = std::sync::Arc::new(plain_client(&server.hosts()).await);
    let store = AerospikeStore::from_client(client.clone()).await.unwrap();
    let r = record(json!({"a": 1}), 600);
    store.create(&r, ttl(600)).await.unwrap();
    drop(store);
    // The store never closed the application's client.
    assert!(client.is_connected());
    let rec = client
        .get(&Default::default(), &key(&r.id), Bins::All)
        .await
        .unwrap();
    assert!(rec.bins.contains_key("data"));
}

/// Issue 18, item 5, through both adapters: with `without_server_ttl()` nothing on the
/// server ends a record, so a save that arrives after the session expired (its request
/// loaded it while live, then took too long) must not extend it. The store's filter
/// refuses the write, the response removes the cookie, and the session stays ended.
async fn a_late_write_does_not_revive_an_expired_session<F: Framework>() {
    let (hosts, _server) = hosts().await;
    let store = AerospikeStore::builder()
        .namespace("nottl")
        .set("late_writes")
        .without_server_ttl()
        .connect(&hosts)
        .await
        .unwrap();
    let config = SessionConfig::builder()
        .secure(false)
        .expiry(Expiry::OnInactivity(Duration::seconds(1)))
        .build()
        .unwrap();
    let server = std::sync::Arc::new(F::serve(store.clone(), config).await);
    let pair = get(&server, "/set/a/1", None).await.cookie_pair();
    let id: Id = pair.strip_prefix("id=").unwrap().parse().unwrap();

    let gate = format!("late-write-{}-{}", F::NAME, id.short());
    let late = {
        let (server, pair) = (server.clone(), pair.clone());
        let path = format!("/gatedset/{gate}/b/2");
        tokio::spawn(async move { get(&server, &path, Some(&pair)).await })
    };
    // The handler has loaded the live session; let it expire, then let the handler write.
    session_tests::gate::reached(&gate).await;
    tokio::time::sleep(StdDuration::from_millis(1_300)).await;
    session_tests::gate::open(&gate);
    let r = late.await.unwrap();
    assert_eq!(r.status, 200, "{}: {}", F::NAME, r.body);
    assert_eq!(
        r.cookie().max_age(),
        Some(Duration::ZERO),
        "{}: the cookie is removed",
        F::NAME
    );

    // Still ended: not loadable, and its `expires` not moved (the record has no TTL).
    assert!(store.load(&id).await.unwrap().is_none(), "{}", F::NAME);
    let client = plain_client(&hosts).await;
    let stored = client
        .get(
            &Default::default(),
            &Key::new("nottl", "late_writes", Value::from(id.encode().as_str())).unwrap(),
            Bins::All,
        )
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    match stored.bins.get("expires") {
        Some(Value::Int(expires)) => assert!(*expires < now, "{}: extended", F::NAME),
        other => panic!("expires bin {other:?}"),
    }
    assert!(
        !stored.bins.contains_key("data") || {
            // The late value never landed.
            !matches!(&stored.bins["data"], Value::HashMap(m) if m.contains_key(&Value::from("b")))
        }
    );
    assert_eq!(get(&server, "/all", Some(&pair)).await.json(), json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_write_does_not_revive_an_expired_session_on_axum() {
    a_late_write_does_not_revive_an_expired_session::<Axum>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_write_does_not_revive_an_expired_session_on_actix() {
    a_late_write_does_not_revive_an_expired_session::<session_tests::Actix>().await;
}

/// The engine boxes each store operation's future, which copies it whole: once the
/// future held the client's command inline, 7.5 KB for a load and 8.6 KB for a save,
/// copied on every operation. The store now queues the operation when called and boxes
/// a command sent alone, so what the engine boxes stays small: small enough, with the
/// engine's wrapper (72 bytes), for glibc's per-thread cache, which serves allocations
/// up to 1,032 bytes. Above that, every box took malloc's locked arena path: `perf` put
/// 1.9 % of an axum + Aerospike server's samples in the allocator under the save's
/// 1,344-byte box alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operations_future_is_small_enough_to_box_cheaply() {
    let server = AerospikeTestServer::start().await;
    let store = AerospikeStore::connect(&server.hosts()).await.unwrap();
    let r = record(json!({"a": 1}), 600);
    let fresh = r.clone();
    let changes = Changes::new(false, ["a"]);
    let sizes = [
        ("load", std::mem::size_of_val(&store.load(&r.id))),
        (
            "save",
            std::mem::size_of_val(&store.save(&r, &changes, ttl(600))),
        ),
        (
            "touch",
            std::mem::size_of_val(&store.touch(&r.id, r.expires_at, ttl(600))),
        ),
        ("delete", std::mem::size_of_val(&store.delete(&r.id))),
        (
            "create",
            std::mem::size_of_val(&store.create(&fresh, ttl(600))),
        ),
    ];
    eprintln!("{sizes:?}");
    for (op, size) in sizes {
        assert!(size <= 960, "{op}'s future is {size} bytes");
    }
}
