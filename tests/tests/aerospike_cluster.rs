//! What the Aerospike store promises across a real cluster's faults (Community Edition,
//! AP mode, replication factor 2, the store's defaults).
//!
//! Ended sessions stay ended: through a split (a node frozen past the heartbeat timeout,
//! evicted, then running again) and through a restart of every node from its storage.
//!
//! A delete in Aerospike CE leaves nothing behind: the copy a returning node kept, or the
//! version a restarted node re-reads from its file, came back as a live session. The store
//! ends a session by writing an ended record instead, which wins over any older copy.
//!
//! Sessions of four kinds end in each test (a logout, the old id of a login's cycle, "log
//! out other devices", "log out everywhere"), and a fifth kind is never ended: those must
//! read back live at the end, so a cluster that lost everything cannot pass for one that
//! kept the ends.
//!
//! And a write the store reported failed never lands later over a newer acknowledged
//! write of the same session.
//!
//! Each test owns its cluster (see `session_tests::aerospike::RealCluster`);
//! without a real server they say so and do nothing (`REQUIRE_AEROSPIKE=1` makes that a
//! failure).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use session_aerospike::AerospikeStore;
use session_core::{Changes, Id, Record, SessionConfig, SessionStore, StoreError, Ttl, Update};
use session_tests::aerospike::ends::{logged_in, partition_of, split_round, whoami, PER_SIDE};
use session_tests::aerospike::RealCluster;
use session_tests::http_suite::get;
use session_tests::{Actix, Axum, Framework, TestServer};

/// Users of each kind.
const PER_KIND: usize = 60;

/// The cookies of a run: those that were ended, and those that must still be live, with
/// the user each must read back.
#[derive(Default)]
struct Cookies {
    ended: Vec<String>,
    live: Vec<(String, String)>,
}

async fn app<F: Framework>(cluster: &RealCluster) -> TestServer {
    let store = AerospikeStore::connect(&cluster.hosts)
        .await
        .expect("connect to the test's cluster");
    F::serve(store, SessionConfig::default()).await
}

/// Sessions of every kind, logged in: returns what each kind needs to end them.
struct Started {
    logout: Vec<String>,
    cycle: Vec<(String, String)>,
    others: Vec<(String, String, String)>,
    everywhere: Vec<(String, String)>,
    control: Vec<(String, String)>,
}

async fn start_sessions(app: &TestServer) -> Started {
    let mut s = Started {
        logout: Vec::new(),
        cycle: Vec::new(),
        others: Vec::new(),
        everywhere: Vec::new(),
        control: Vec::new(),
    };
    for i in 0..PER_KIND {
        s.logout.push(logged_in(app, &format!("lo{i}")).await);
        let user = format!("cy{i}");
        s.cycle.push((logged_in(app, &user).await, user));
        let user = format!("eo{i}");
        let (a, b) = (logged_in(app, &user).await, logged_in(app, &user).await);
        s.others.push((a, b, user));
        let user = format!("ea{i}");
        s.everywhere
            .push((logged_in(app, &user).await, logged_in(app, &user).await));
        let user = format!("ct{i}");
        s.control.push((logged_in(app, &user).await, user));
    }
    s
}

/// Ends the sessions of every kind, all at once (so that a node can return right after
/// the ends, before the app's client has dropped it), each answered 200 and read back
/// ended.
async fn end_sessions(app: &TestServer, started: Started) -> Cookies {
    let logouts = join_all(started.logout.into_iter().map(|cookie| async move {
        let r = get(app, "/flush", Some(&cookie)).await;
        assert_eq!(r.status, 200, "logout: {}", r.body);
        cookie
    }));
    // Logging in again cycles the id: the old one ends, the new one lives.
    let cycles = join_all(started.cycle.into_iter().map(|(old, user)| async move {
        let r = get(app, &format!("/bind/{user}/y"), Some(&old)).await;
        assert_eq!(r.status, 200, "cycle: {}", r.body);
        (old, (r.cookie_pair(), user))
    }));
    let others = join_all(started.others.into_iter().map(|(a, b, user)| async move {
        let r = get(app, "/end-others", Some(&a)).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "1"),
            "end others: {}",
            r.body
        );
        (b, (a, user))
    }));
    let everywhere = join_all(started.everywhere.into_iter().map(|(a, b)| async move {
        let r = get(app, "/end-all", Some(&a)).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "2"),
            "end all: {}",
            r.body
        );
        [a, b]
    }));
    let (logouts, cycles, others, everywhere) = tokio::join!(logouts, cycles, others, everywhere);
    let mut c = Cookies::default();
    c.ended.extend(logouts);
    for (ended, live) in cycles.into_iter().chain(others) {
        c.ended.push(ended);
        c.live.push(live);
    }
    c.ended.extend(everywhere.into_iter().flatten());
    c.live.extend(started.control);
    for cookie in &c.ended {
        assert_eq!(whoami(app, cookie).await, json!(null), "read back ended");
    }
    c
}

/// How many of the ended cookies read back live, and whether every live one reads its
/// own user.
async fn tally(app: &TestServer, cookies: &Cookies) -> usize {
    for (cookie, user) in &cookies.live {
        assert_eq!(
            whoami(app, cookie).await,
            json!(user),
            "a session that was never ended must still be live"
        );
    }
    let mut back = 0;
    for cookie in &cookies.ended {
        if whoami(app, cookie).await != json!(null) {
            back += 1;
        }
    }
    back
}

/// Node 3 frozen until the other two have evicted it; every kind of end while it is
/// away; then it runs again, rejoins, and the partitions migrate back.
async fn ended_sessions_stay_ended_through_a_split<F: Framework>() {
    let Some(cluster) = RealCluster::start(3).await else {
        return;
    };
    let app = app::<F>(&cluster).await;
    let started = start_sessions(&app).await;
    // The user index is built at its first use: before the split, as in any app that
    // has been running.
    assert_eq!(
        get(&app, "/sessions", Some(&started.control[0].0))
            .await
            .status,
        200
    );

    cluster.pause(3);
    let frozen = Instant::now();
    cluster.wait_for_nodes(&[1, 2]).await;
    let cookies = end_sessions(&app, started).await;
    cluster.resume(3);
    println!(
        "{}: {} sessions ended while node 3 was away, back {:.1} s after it froze",
        F::NAME,
        cookies.ended.len(),
        frozen.elapsed().as_secs_f64()
    );
    let returned = Instant::now();

    // The window: reads of a tenth of the ended sessions, in a loop, while node 3
    // rejoins and its partitions migrate.
    let sample: Vec<&String> = cookies.ended.iter().step_by(10).collect();
    let (mut reads, mut live_reads, mut last_live) = (0, 0, None);
    while returned.elapsed() < Duration::from_secs(8) {
        for cookie in &sample {
            reads += 1;
            if whoami(&app, cookie).await != json!(null) {
                live_reads += 1;
                last_live = Some(returned.elapsed());
            }
        }
    }
    println!(
        "{}: in the 8 s after node 3 returned, {live_reads} of {reads} reads saw an ended \
         session live{}",
        F::NAME,
        last_live.map_or(String::new(), |at| format!(
            ", the last {:.2} s after",
            at.as_secs_f64()
        ))
    );
    cluster.wait_migrations().await;
    let back = tally(&app, &cookies).await;
    println!(
        "{}: after settling, {back} of {} ended sessions live again",
        F::NAME,
        cookies.ended.len()
    );
    assert_eq!(back, 0, "ended sessions came back after the split");
    assert_eq!(
        live_reads, 0,
        "reads saw ended sessions live after node 3 returned"
    );
}

/// The hard case of a split: node 3 returns within about a second of its eviction,
/// before the app's client has dropped it, still serving its copies from before the
/// logouts until it rejoins. Requests with the logged-out cookies, each writing to the
/// session it finds (as a thief's would), from the return on: none may find a session
/// live, and none may be live once the cluster has settled. Without the store's split
/// watch, such rounds found sessions live and brought up to 40 of 80 back for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_nodes_return_neither_shows_nor_revives_ended_sessions() {
    let Some(cluster) = RealCluster::start(3).await else {
        return;
    };
    let app = app::<Axum>(&cluster).await;
    let warm = logged_in(&app, "warm").await;
    assert_eq!(get(&app, "/sessions", Some(&warm)).await.status, 200);
    for (i, delay) in [2.2, 2.6, 3.0].into_iter().enumerate() {
        let round = format!("r{i}");
        let seen = split_round(&app, &cluster, Duration::from_secs_f64(delay), &round, true).await;
        println!("node 3 back after {delay} s: {seen:?}");
        assert_eq!(seen.acked, 2 * PER_SIDE, "every logout answered");
        assert_eq!(seen.live_reads, 0, "an ended session was found live");
        assert_eq!(seen.back, 0, "an ended session came back");
    }
}

/// Every node stopped and started again from its file (a cold start re-reads it): a
/// fresh app, with a store of its own, finds every ended session still ended.
async fn ended_sessions_stay_ended_through_a_restart_from_storage<F: Framework>() {
    let Some(cluster) = RealCluster::start_persistent(3).await else {
        return;
    };
    let cookies = {
        let app = app::<F>(&cluster).await;
        let started = start_sessions(&app).await;
        end_sessions(&app, started).await
    };
    for node in 1..=3 {
        cluster.stop_node(node).await;
    }
    cluster.restart_stopped().await;
    cluster.wait_migrations().await;
    let app = app::<F>(&cluster).await;
    let back = tally(&app, &cookies).await;
    println!(
        "{}: after every node restarted from its file, {back} of {} ended sessions live again",
        F::NAME,
        cookies.ended.len()
    );
    assert_eq!(back, 0, "ended sessions came back after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_ended_sessions_stay_ended_through_a_split() {
    ended_sessions_stay_ended_through_a_split::<Axum>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_ended_sessions_stay_ended_through_a_restart_from_storage() {
    ended_sessions_stay_ended_through_a_restart_from_storage::<Actix>().await;
}

/// Ids whose records node `node` masters (store defaults: namespace `test`, set
/// `sessions`).
async fn ids_mastered_by(cluster: &RealCluster, node: usize, n: usize) -> Vec<Id> {
    let masters = cluster.masters(node, "test").await;
    std::iter::repeat_with(Id::random)
        .filter(|id| masters[partition_of(id)])
        .take(n)
        .collect()
}

fn record(id: Id, v: i64) -> Record {
    Record {
        id,
        data: [("v".to_owned(), json!(v))].into_iter().collect(),
        expiry: None,
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::minutes(10),
    }
}

/// The node holding some sessions hangs for less than the heartbeat timeout (the
/// cluster keeps it) while a store with a short budget writes them: each write is
/// reported failed, and stays queued on the frozen node. Then the app writes them again,
/// with its defaults: those wait, and are acknowledged once the node runs again. The node
/// takes up both kinds of queued writes in no particular order, so without a guard a
/// write reported failed would land after the acknowledged one about half the time:
/// every session must hold the acknowledged value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_reported_failed_never_lands_over_a_newer_one() {
    let Some(cluster) = RealCluster::start(3).await else {
        return;
    };
    let store = AerospikeStore::connect(&cluster.hosts)
        .await
        .expect("connect");
    // Its retries go to the replica, which forwards a write to its master (a proxy):
    // the replica's own connection to the frozen node stays open when the store gives up.
    let hasty = AerospikeStore::builder()
        .timeout(Duration::from_millis(400))
        .attempt_timeout(Duration::from_millis(100))
        .max_retries(3)
        .retry_spacing(Duration::ZERO)
        .connect(&cluster.hosts)
        .await
        .expect("connect");
    let ttl = Ttl::from_secs(600).expect("a TTL");
    let changed = Changes::new(false, ["v"]);
    let ids = ids_mastered_by(&cluster, 3, 40).await;
    for id in &ids {
        let r = record(*id, 1);
        store.create(&r, ttl).await.expect("create");
        assert_eq!(r.id, *id);
    }

    cluster.pause(3);
    let frozen = Instant::now();
    let failed = join_all(ids.iter().map(|id| {
        let (hasty, changed) = (&hasty, &changed);
        async move { hasty.save(&record(*id, 2), changed, ttl).await }
    }))
    .await;
    for outcome in &failed {
        assert!(
            matches!(outcome, Err(StoreError::Unavailable(_))),
            "a write to a frozen node is reported failed: {outcome:?}"
        );
    }
    let newer = join_all(ids.iter().map(|id| {
        let (store, changed) = (&store, &changed);
        async move { store.save(&record(*id, 3), changed, ttl).await }
    }));
    let resume = async {
        // Below the heartbeat timeout (1.5 s): the node is never evicted.
        tokio::time::sleep_until((frozen + Duration::from_millis(1_000)).into()).await;
        cluster.resume(3);
    };
    let (newer, ()) = tokio::join!(newer, resume);
    for saved in newer {
        assert_eq!(saved.expect("the newer write"), Update::Applied);
    }
    cluster.wait_migrations().await;
    let mut overwritten = 0;
    for id in &ids {
        let loaded = store.load(id).await.expect("load").expect("live");
        if loaded.data["v"] != json!(3) {
            overwritten += 1;
        }
    }
    println!(
        "{overwritten} of {} acknowledged writes overwritten by one reported failed",
        ids.len()
    );
    assert_eq!(overwritten, 0);
}
