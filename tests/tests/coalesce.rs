//! Coalescing in `AerospikeStore`: operations that arrive while a command is in flight
//! travel together in one batch command, each with its own policy and outcome. The
//! store conformance suite runs with every operation inside a batch (`Batched`), on the
//! real server when `AEROSPIKE_HOSTS` is set, else on the protocol test server; and
//! both servers are shown to have received batch commands.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use session_aerospike::AerospikeStore;
use session_core::{Id, SessionStore, Ttl};
use session_tests::aerospike::{real_hosts, AerospikeTestServer, Batched, Served};
use session_tests::{store_suite, store_suite::record};

store_suite!(batched, Batched::start(), session_tests::aerospike::caps());

/// One info command to the first of `hosts`, answered as `name=value;...`.
fn info(hosts: &str, command: &str) -> String {
    let host = hosts.split(',').next().expect("a host");
    let mut conn = TcpStream::connect(host).expect("reach the server");
    let body = format!("{command}\n");
    let header = (2u64 << 56) | (1u64 << 48) | body.len() as u64;
    conn.write_all(&header.to_be_bytes()).unwrap();
    conn.write_all(body.as_bytes()).unwrap();
    let mut header = [0u8; 8];
    conn.read_exact(&mut header).unwrap();
    let len = u64::from_be_bytes(header) & 0xffff_ffff_ffff;
    let mut answer = vec![0u8; usize::try_from(len).unwrap()];
    conn.read_exact(&mut answer).unwrap();
    String::from_utf8(answer).unwrap()
}

/// A counter from the server's `statistics`.
fn statistic(hosts: &str, name: &str) -> u64 {
    let all = info(hosts, "statistics");
    all.trim()
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the server's statistics"))
}

/// A store with one command in flight on a fresh protocol test server, for the faults
/// only that server can produce, whatever `AEROSPIKE_HOSTS` says.
async fn on_the_test_server() -> (AerospikeTestServer, AerospikeStore) {
    let server = AerospikeTestServer::start().await;
    let store = AerospikeStore::builder()
        .max_in_flight(1)
        .connect(&server.hosts())
        .await
        .expect("connect to the test server");
    (server, store)
}

/// Three operations that meet a busy store leave as one command, and the misses among
/// them are confirmed alone: exact counts on the test server; on the real server its
/// own count of batch commands rises (other tests of this file batch too, and only add
/// to it).
#[tokio::test]
async fn operations_that_meet_leave_as_one_batch_command() {
    let store = Batched::start().await;
    let r = record(json!({"n": 1}), 600);
    store
        .0
        .store
        .create(&r, Ttl::from_secs(600).unwrap())
        .await
        .unwrap();
    let before = match (&store.0.server, real_hosts()) {
        (Some(server), _) => server.lock().await.data_commands() as u64,
        (None, Some(hosts)) => statistic(&hosts, "batch_index_initiate"),
        (None, None) => unreachable!("a store runs on one server or the other"),
    };
    let loaded = store.load(&r.id).await.unwrap().expect("the record loads");
    assert_eq!(loaded.data, r.data);
    assert!(store.load(&Id::random()).await.unwrap().is_none());
    match (&store.0.server, real_hosts()) {
        (Some(server), _) => {
            let sent = server.lock().await.data_commands() as u64 - before;
            // Each batch of three, then each of its misses confirmed alone: 1 + 2, 1 + 3.
            assert_eq!(sent, 7, "two batches, then five misses confirmed alone");
        }
        (None, Some(hosts)) => {
            let batches = statistic(&hosts, "batch_index_initiate") - before;
            assert!(
                batches >= 2,
                "the server saw {batches} batch commands, not 2"
            );
        }
        (None, None) => unreachable!(),
    }
}

/// Operations whose futures are dropped (their clients went away) while they wait or
/// while their command is in flight give their places back: afterwards the store still
/// answers at once. Commands are slowed on the test server, so cancellations land
/// mid-flight; on the real server they land wherever the timing puts them.
#[tokio::test]
async fn cancelled_operations_never_stall_the_store() {
    let store = Batched::start().await;
    if let Some(server) = &store.0.server {
        server.lock().await.faults().delay = Duration::from_millis(20);
    }
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let s = store.0.store.clone();
            tokio::spawn(async move {
                let wait = Duration::from_micros(i * 500);
                let _ = tokio::time::timeout(wait, s.load(&Id::random())).await;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    if let Some(server) = &store.0.server {
        server.lock().await.faults().delay = Duration::ZERO;
    }
    let r = record(json!({"n": 2}), 600);
    let s = &store.0.store;
    tokio::time::timeout(Duration::from_secs(5), async {
        s.create(&r, Ttl::from_secs(600).unwrap()).await.unwrap();
        assert!(s.load(&r.id).await.unwrap().is_some());
    })
    .await
    .expect("the store answers after cancellations");
}

/// Creates a record, then loads an unknown id with the server's `hold` fault set (the
/// held command), waits for `wait` (built just before that load is sent), and loads
/// the record: whether that load finished before the held one.
async fn overtakes_a_held_command<W: std::future::Future<Output = ()>>(
    s: &AerospikeStore,
    hold: impl FnOnce(),
    wait: impl FnOnce() -> W,
) -> bool {
    let r = record(json!({"n": 3}), 600);
    s.create(&r, Ttl::from_secs(600).unwrap()).await.unwrap();
    hold();
    let wait = wait();
    let slow = tokio::spawn({
        let s = s.clone();
        async move {
            s.load(&Id::random()).await.unwrap();
            std::time::Instant::now()
        }
    });
    wait.await;
    let loaded = s.load(&r.id).await.unwrap();
    let fast_done = std::time::Instant::now();
    assert!(loaded.is_some());
    fast_done < slow.await.unwrap()
}

/// A command that hangs stops holding its place: an operation sent after it finishes
/// first instead of waiting out the hung one's timeout. A real server cannot be made to
/// hang one command alone (the node-level faults are in `aerospike_real_faults.rs`), so
/// this test always runs on the protocol test server, which holds one command 600 ms.
#[tokio::test]
async fn a_hung_command_does_not_hold_up_the_next() {
    let (server, s) = on_the_test_server().await;
    let overtook = overtakes_a_held_command(
        &s,
        || server.faults().delay = Duration::from_millis(600),
        || async {
            // Let the slow command reach the server, and pass the store's patience (5 ms).
            tokio::time::sleep(Duration::from_millis(100)).await;
            server.faults().delay = Duration::ZERO;
        },
    )
    .await;
    assert!(overtook, "the second operation waited for the hung one");
}

/// An operation that arrives while a command is still prompt (within the store's 5 ms
/// patience) waits for it; when that command then hangs, the operation is sent anyway
/// once the patience is over, with no later traffic to prompt it, instead of waiting out
/// the hung one's timeout. Test server only, like the test above.
#[tokio::test]
async fn an_operation_queued_behind_a_command_that_then_hangs_goes_out() {
    let (server, s) = on_the_test_server().await;
    let overtook = overtakes_a_held_command(
        &s,
        || server.faults().hold_next = Some(Duration::from_millis(600)),
        || {
            let (server, before) = (&server, server.data_commands());
            async move {
                // The slow command has reached the server, well within the patience:
                // the next operation queues behind it.
                while server.data_commands() == before {
                    tokio::task::yield_now().await;
                }
            }
        },
    )
    .await;
    assert!(overtook, "the queued operation waited for the hung one");
}

/// A batch whose connection breaks (as when its node dies mid-command) does not fail
/// the operations in it: each goes again alone, with the store's retry policy, as it
/// would have had it not met others. The test server cuts the connection of the next
/// data commands, which a real server cannot be made to do on demand; the real-server
/// side of it is the cluster soak, which kills a node under load.
#[tokio::test]
async fn operations_of_a_broken_batch_are_sent_again_alone() {
    let (server, store) = on_the_test_server().await;
    let batched = Batched(Served {
        store: store.clone(),
        server: None,
    });
    let r = record(json!({"n": 1}), 600);
    store
        .create(&r, Ttl::from_secs(600).unwrap())
        .await
        .unwrap();
    let before = server.data_commands();
    server.faults().drop_requests = 3;
    let mut after = r.clone();
    after.data.insert("n".into(), json!(2));
    let changes = session_tests::store_suite::changes(&r, &after);
    let saved = batched
        .save(&after, &changes, Ttl::from_secs(600).unwrap())
        .await
        .expect("the save survives its batch's broken connection");
    assert_eq!(saved, session_core::Update::Applied);
    let back = store.load(&r.id).await.unwrap().expect("the record loads");
    assert_eq!(back.data["n"], json!(2));
    assert!(
        server.data_commands() - before >= 4,
        "the dropped batch, then each of its three operations alone: {}",
        server.data_commands() - before
    );
}

/// Rows a batch hands back with no answer at all (the client routes a batch's keys
/// once, up front, and when it can route none of them, as while a node leaves the
/// cluster, it fails the call and returns empty rows) go again alone, built anew: the
/// cluster soak once answered a 500 for each operation of such a batch. The test server
/// answers the next batch with its end marker only.
#[tokio::test]
async fn operations_of_an_unanswered_batch_are_sent_again_alone() {
    let (server, store) = on_the_test_server().await;
    let batched = Batched(Served {
        store: store.clone(),
        server: None,
    });
    let ttl = Ttl::from_secs(600).unwrap();
    let r = record(json!({"n": 1, "gone": true}), 600);
    store.create(&r, ttl).await.unwrap();
    let mut after = r.clone();
    after.data.insert("n".into(), json!(2));
    after.data.remove("gone");
    let changes = session_tests::store_suite::changes(&r, &after);

    let before = server.data_commands();
    server.faults().unanswered_batches = 1;
    let saved = batched
        .save(&after, &changes, ttl)
        .await
        .expect("the save survives a batch that answered none of its rows");
    assert_eq!(saved, session_core::Update::Applied);
    assert_eq!(
        server.data_commands() - before,
        4,
        "the unanswered batch, then each of its three operations alone"
    );
    let back = store.load(&r.id).await.unwrap().expect("the record loads");
    assert_eq!(back.data, after.data);

    for (what, fresh) in [("create", true), ("load", false)] {
        server.faults().unanswered_batches = 1;
        if fresh {
            let new = record(json!({"m": 1}), 600);
            batched.create(&new, ttl).await.expect(what);
            assert!(store.load(&new.id).await.unwrap().is_some(), "{what}");
        } else {
            let loaded = batched.load(&r.id).await.expect(what);
            assert_eq!(loaded.expect("the record loads").data, after.data);
        }
    }
    server.faults().unanswered_batches = 1;
    let touched = batched
        .touch(&r.id, r.expires_at, ttl)
        .await
        .expect("touch");
    assert_eq!(touched, session_core::Update::Applied);
    server.faults().unanswered_batches = 1;
    batched.delete(&r.id).await.expect("delete");
    assert!(store.load(&r.id).await.unwrap().is_none(), "deleted");
}
