//! The Aerospike server's own CPU time per session operation, by the shape of the
//! command the store sends: what the record's bins and the save's filter cost the
//! database, apart from the app (BENCHMARKS.md, Aerospike).
//!
//! `cargo run --release -p session-tests --bin dbcost -- [OPS] [BATCH] [ROUNDS] [SHAPES]`
//! (defaults 200000, 25, 7 and all; needs `AEROSPIKE_SERVER_DIR`) starts one real node,
//! pins it to CPU 0 and itself to CPU 1, and for each round and shape sends `OPS`
//! operations in batch commands of `BATCH` rows from four tasks, as the store's pipeline
//! sends them under load. The node's CPU time (user and system, from `/proc`, less what
//! it spends idle) divided by the operations is the figure; each shape's median over the
//! rounds is printed last. The shapes (`SHAPES` picks some, comma-separated):
//!
//! - `read`: a session's load, every bin.
//! - `save`: a save as `AerospikeStore` writes it: update-only, the session's TTL, the
//!   live filter (`expires` after now, or a format 1 record's seconds), a map put of the
//!   changed key, the `expiry` bin (nil), `expires`, `v` and `seen`.
//! - `save-no-stamps`: the same without `expiry`, `v` and `seen`: what the bins cost.
//! - `save-simple-filter`: `save` with the filter `expires` after now alone.
//! - `save-no-filter`: `save` without a filter: what the filter costs.
//! - `save-whole-map`: `save` writing the whole `data` map as a plain bin where the
//!   store puts the changed keys into the stored map: what the map operation costs.
//! - `save-no-data`: `save` without `data`.
//! - `save-bare`: the whole map and `expires`, no filter: a save without the
//!   guarantees the other bins and the filter give.
//! - `touch`: a touch as the store sends it (the live filter, `expires`, `v`, `seen`).
//! - `create`: a create-only write of a new session's bins.
//!
//! A measurement, not a test: it prints what it sees and exits 0.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use aerospike::expressions::{and, eq, from_packed_bytes, gt, int_bin, int_val, or, Expression};
use aerospike::operations::{self, maps, MapPolicy, Operation};
use aerospike::{
    BatchOperation, BatchPolicy, BatchReadPolicy, BatchWritePolicy, Bin, Bins, Client,
    ClientPolicy, Expiration, Key, RecordExistsAction, ResultCode, Value,
};
use base64::Engine as _;
use futures_util::future::join_all;
use session_tests::aerospike::RealCluster;

/// Sessions each shape works on (a create writes new ones instead).
const RECORDS: usize = 4_000;
/// Tasks sending batches at once.
const TASKS: usize = 4;
const SHAPES: [&str; 10] = [
    "read",
    "save",
    "save-no-stamps",
    "save-simple-filter",
    "save-no-filter",
    "save-whole-map",
    "save-no-data",
    "save-bare",
    "touch",
    "create",
];

/// A process's CPU time so far, user and system, in clock ticks.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the node's stat");
    let (_, rest) = stat.rsplit_once(") ").expect("stat's command name");
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after the command name.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn ticks_per_sec() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn pin(pid: &str, cpu: &str) {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpu, pid])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset could be run");
    assert!(status.success(), "taskset -c {cpu} {pid}");
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// An expression packed once, sent as bytes: as the store sends its live filter.
fn packed(e: Expression) -> Expression {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(e.base64().expect("the expression packs"))
        .expect("base64");
    from_packed_bytes(bytes)
}

/// The store's live filter at `at`, and the simple one.
fn filters(at: i64) -> (Expression, Expression) {
    let expires = || int_bin("expires".to_owned());
    let live = or(vec![
        gt(expires(), int_val(at)),
        and(vec![
            eq(int_bin("v".to_owned()), int_val(1)),
            gt(expires(), int_val(at.div_euclid(1_000_000_000))),
        ]),
    ]);
    (packed(live), packed(gt(expires(), int_val(at))))
}

fn row(shape: &str, key: Key, n: i64, (live, simple): &(Expression, Expression)) -> BatchOperation {
    let t = now();
    let expires = t + 86_400 * 1_000_000_000;
    let put = |name: &str, v: Value| operations::put(&Bin::new(name.to_owned(), v));
    let stamps = || {
        vec![
            put("expires", Value::from(expires)),
            put("v", Value::from(2)),
            put("seen", Value::from(t)),
        ]
    };
    let write = |exists, filter: Option<&Expression>, ops: Vec<Operation>| {
        let policy = BatchWritePolicy {
            record_exists_action: exists,
            expiration: Expiration::Seconds(86_400),
            filter_expression: filter.cloned(),
            ..BatchWritePolicy::default()
        };
        BatchOperation::write(&policy, key.clone(), ops)
    };
    // The session's one value.
    let item = || HashMap::from([(Value::from("counter"), Value::from(n))]);
    let whole_map = || Value::HashMap(item());
    let data_put = || maps::put_items(&MapPolicy::default(), "data".to_owned(), item());
    // A save's operations around its `data` operation, if any, under `filter`.
    let save = |data: Option<Operation>, filter| {
        let mut ops: Vec<Operation> = data.into_iter().collect();
        ops.push(put("expiry", Value::Nil));
        ops.extend(stamps());
        write(RecordExistsAction::UpdateOnly, filter, ops)
    };
    match shape {
        "read" => BatchOperation::read(&BatchReadPolicy::default(), key, Bins::All),
        "save" => save(Some(data_put()), Some(live)),
        "save-simple-filter" => save(Some(data_put()), Some(simple)),
        "save-no-filter" => save(Some(data_put()), None),
        "save-whole-map" => save(Some(put("data", whole_map())), Some(live)),
        "save-no-data" => save(None, Some(live)),
        "save-bare" => {
            let ops = vec![
                put("data", whole_map()),
                put("expires", Value::from(expires)),
            ];
            write(RecordExistsAction::UpdateOnly, None, ops)
        }
        "save-no-stamps" => write(
            RecordExistsAction::UpdateOnly,
            Some(live),
            vec![data_put(), put("expires", Value::from(expires))],
        ),
        "touch" => {
            let mut ops = vec![operations::touch()];
            ops.extend(stamps());
            write(RecordExistsAction::UpdateOnly, Some(live), ops)
        }
        "create" => {
            let mut ops = vec![put("data", whole_map())];
            ops.extend(stamps());
            ops.push(put("sid", Value::from("AbCdEf")));
            write(RecordExistsAction::CreateOnly, None, ops)
        }
        other => panic!("no shape {other}; the shapes are {SHAPES:?}"),
    }
}

/// Sends `ops` operations of `shape` on `set` in batches of `batch` from [`TASKS`] tasks;
/// returns how many went and how many did not answer OK.
async fn send(client: &Client, shape: &str, set: &str, ops: usize, batch: usize) -> (usize, usize) {
    let policy = BatchPolicy::default();
    let per_task = ops / TASKS / batch * batch;
    let creating = shape == "create";
    let failed = join_all((0..TASKS).map(|task| {
        let policy = &policy;
        async move {
            let mut failed = 0;
            for start in (0..per_task).step_by(batch) {
                let filters = filters(now());
                let mut rows: Vec<_> = (start..start + batch)
                    .map(|i| {
                        let i = task * per_task + i;
                        let k = if creating { i } else { i % RECORDS };
                        let key = Key::new("test", set, Value::from(k as i64)).expect("a key");
                        row(shape, key, i as i64, &filters)
                    })
                    .collect();
                client.batch(policy, &mut rows).await.expect("a batch");
                failed += rows
                    .iter()
                    .filter(|r| r.result_code() != Some(ResultCode::Ok))
                    .count();
            }
            failed
        }
    }))
    .await;
    (per_task * TASKS, failed.iter().sum())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let ops: usize = args.next().map_or(200_000, |a| a.parse().expect("OPS"));
    let batch: usize = args.next().map_or(25, |a| a.parse().expect("BATCH"));
    let rounds: usize = args.next().map_or(7, |a| a.parse().expect("ROUNDS"));
    let shapes: Vec<String> = match args.next() {
        Some(list) => list.split(',').map(str::to_owned).collect(),
        None => SHAPES.map(str::to_owned).to_vec(),
    };
    let Some(node) = RealCluster::start(1).await else {
        eprintln!("dbcost needs a real Aerospike server: set AEROSPIKE_SERVER_DIR");
        std::process::exit(2);
    };
    let pid = node.pid(1);
    pin(&pid, "0");
    pin(&std::process::id().to_string(), "1");
    let client = Client::new(&ClientPolicy::default(), &node.hosts)
        .await
        .expect("connect to the node");
    let tick_us = 1e6 / ticks_per_sec();

    let before = cpu_ticks(&pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_per_sec = (cpu_ticks(&pid) - before) as f64 / 3.0;
    println!(
        "node {pid} on CPU 0, idle {:.0} µs of CPU per second; {ops} operations per shape, \
         batches of {batch}, {TASKS} tasks",
        idle_per_sec * tick_us
    );

    let mut figures: HashMap<&str, Vec<f64>> = HashMap::new();
    for round in 0..rounds {
        for shape in &shapes {
            let set = format!("cost{round}{shape}").replace('-', "");
            if shape != "create" {
                send(&client, "create", &set, RECORDS, batch).await;
            }
            let (started, before) = (Instant::now(), cpu_ticks(&pid));
            let (sent, failed) = send(&client, shape, &set, ops, batch).await;
            let secs = started.elapsed().as_secs_f64();
            let busy = (cpu_ticks(&pid) - before) as f64 - idle_per_sec * secs;
            let per_op = busy * tick_us / sent as f64;
            println!(
                "round {round} {shape}: {per_op:.2} µs per operation, {:.0} operations/s, \
                 {failed} not OK",
                sent as f64 / secs
            );
            figures.entry(shape.as_str()).or_default().push(per_op);
            client
                .truncate(&aerospike::AdminPolicy::default(), "test", &set, 0)
                .await
                .expect("truncate the set");
        }
    }
    println!("median µs of the node's CPU per operation:");
    for shape in &shapes {
        let mut all = figures.remove(shape.as_str()).unwrap_or_default();
        all.sort_by(f64::total_cmp);
        if let Some(median) = all.get(all.len() / 2) {
            println!("  {shape:<20} {median:.2}   (all: {all:.2?})");
        }
    }
}
