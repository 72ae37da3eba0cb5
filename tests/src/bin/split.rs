//! What reads see when a frozen node returns after the cluster evicted it: the split
//! that Aerospike's AP mode does not resolve for the client (README, Failover).
//!
//! `cargo run -p session-tests --bin split -- [FREEZE_SECS] [RUNS]` (defaults 2.2 and 3;
//! needs `AEROSPIKE_SERVER_DIR`) starts a real 3-node cluster (replication factor 2,
//! heartbeat 150 ms × 10) and, in each run: writes 300 records, freezes node 3 with
//! SIGSTOP, rewrites every record with the soak's failover policy while it is frozen,
//! lets it run again, then reads every acknowledged record back every 250 ms for 5 s
//! with the store's read policy (`ReadModeAp::All`). Each line gives the time since the
//! node returned, how many acknowledged writes read back old or missing, and the
//! client's view of each node (`p` the peers it last reported, `f` its failed refreshes).
//! Meanwhile it rewrites 300 other records, written once before the freeze, one every
//! 5 ms from the moment the node returns; 10 s after the reads end it reads those back
//! and counts the acknowledged ones that are old or missing: writes the split lost.
//!
//! A measurement, not a test: it prints what it sees and exits 0.

use std::time::{Duration, Instant};

use aerospike::{
    as_bin, Bins, Client, ClientPolicy, Key, ReadModeAp, ReadPolicy, Value, WritePolicy,
};
use futures_util::future::join_all;
use session_tests::aerospike::{failover, RealCluster};

const RECORDS: i64 = 300;

/// The client's view: each node's port, the peers it last reported, its failed refreshes.
fn view(client: &Client) -> String {
    let nodes: Vec<String> = client
        .nodes()
        .iter()
        .map(|n| {
            let port = n.address().rsplit(':').next().unwrap_or("?");
            format!("{port}:p{}:f{}", n.peers_count(), n.failures())
        })
        .collect();
    nodes.join(" ")
}

/// What one run saw.
struct Seen {
    /// The most acknowledged rewrites read back old or missing at one time.
    worst: usize,
    /// When the last of them was, in seconds after node 3 returned.
    last: Option<f64>,
    /// Writes made after node 3 returned: acknowledged, and of those, lost once the
    /// cluster had settled.
    late_acked: usize,
    late_lost: usize,
}

/// Writes `v = 2` to every record of `key` after node 3 returns, one every 5 ms (so
/// through the stale window), and says which were acknowledged.
async fn late_writes(client: &Client, write: &WritePolicy, key: impl Fn(i64) -> Key) -> Vec<bool> {
    let mut acked = Vec::with_capacity(RECORDS as usize);
    for i in 0..RECORDS {
        acked.push(client.put(write, &key(i), &[as_bin!("v", 2)]).await.is_ok());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    acked
}

/// How many of the records whose write of `v = 2` was acknowledged (`acked`, by
/// index) read back old or missing.
async fn not_current(
    client: &Client,
    read: &ReadPolicy,
    key: impl Fn(i64) -> Key,
    acked: &[bool],
) -> usize {
    let mut stale = 0;
    for (i, _) in acked.iter().enumerate().filter(|(_, a)| **a) {
        let record = client.get(read, &key(i as i64), Bins::All).await;
        if !record.is_ok_and(|r| r.bins.get("v") == Some(&Value::from(2))) {
            stale += 1;
        }
    }
    stale
}

async fn run(cluster: &RealCluster, freeze: Duration, round: usize) -> Seen {
    let client = Client::new(&ClientPolicy::default(), &cluster.hosts)
        .await
        .expect("connect to the cluster");
    let mut read = ReadPolicy::default();
    read.base_policy.read_mode_ap = ReadModeAp::All;
    let mut write = WritePolicy::default();
    failover::apply(&mut read.base_policy);
    failover::apply(&mut write.base_policy);
    let set = format!("split{round}");
    let key = |i: i64| Key::new("test", set.as_str(), Value::from(i)).expect("a key");
    // Records written once before the freeze and again only after node 3 returns.
    let late_set = format!("late{round}");
    let late_key = |i: i64| Key::new("test", late_set.as_str(), Value::from(i)).expect("a key");
    for i in 0..RECORDS {
        for key in [key(i), late_key(i)] {
            client
                .put(&write, &key, &[as_bin!("v", 1)])
                .await
                .expect("the first write");
        }
    }
    cluster.pause(3);
    let frozen = Instant::now();
    let writes = join_all((0..RECORDS).map(|i| {
        let (client, write, key) = (&client, &write, key(i));
        async move { client.put(write, &key, &[as_bin!("v", 2)]).await.is_ok() }
    }));
    let resume = async {
        tokio::time::sleep(freeze).await;
        println!("  before it returns: {}", view(&client));
        cluster.resume(3);
    };
    let (acked, ()) = tokio::join!(writes, resume);
    let returned = frozen + freeze;
    println!(
        "  {} of {RECORDS} rewrites acknowledged, the last {:.2} s after node 3 returned",
        acked.iter().filter(|a| **a).count(),
        returned.elapsed().as_secs_f64()
    );
    let reads = async {
        let (mut worst, mut last) = (0, None);
        while returned.elapsed() < Duration::from_secs(5) {
            let at = returned.elapsed().as_secs_f64();
            let stale = not_current(&client, &read, &key, &acked).await;
            println!(
                "  {at:5.2} s: {stale:3} read old or missing  {}",
                view(&client)
            );
            if stale > 0 {
                worst = worst.max(stale);
                last = Some(at);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (worst, last)
    };
    let (late, (worst, last)) = tokio::join!(late_writes(&client, &write, late_key), reads);
    // Long enough for node 3 to rejoin and the partitions to settle.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let late_lost = not_current(&client, &read, &late_key, &late).await;
    let late_acked = late.iter().filter(|a| **a).count();
    println!(
        "  after settling: {late_lost} of the {late_acked} writes acknowledged after node 3 \
         returned read back old or missing"
    );
    let _ = client.close().await;
    Seen {
        worst,
        last,
        late_acked,
        late_lost,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let freeze: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2.2);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let Some(cluster) = RealCluster::start(3).await else {
        eprintln!("split: needs AEROSPIKE_SERVER_DIR (a real server's start.sh)");
        std::process::exit(2);
    };
    println!(
        "split: 3 nodes at {}, node 3 frozen for {freeze} s",
        cluster.hosts
    );
    let mut summary = Vec::new();
    for round in 1..=runs {
        println!("run {round}");
        summary.push(run(&cluster, Duration::from_secs_f64(freeze), round).await);
    }
    for (round, seen) in summary.iter().enumerate() {
        let reads = match seen.last {
            Some(at) => format!(
                "up to {} of {RECORDS} acknowledged writes read old or missing, the last \
                 {at:.2} s after node 3 returned",
                seen.worst
            ),
            None => "every read current".to_owned(),
        };
        println!(
            "run {}: {reads}; of {} writes acknowledged after it returned, {} lost",
            round + 1,
            seen.late_acked,
            seen.late_lost
        );
    }
}
