//! How to find a user's sessions in Aerospike (issue 15): the secondary index on the
//! binding inside the `data` map, which `AerospikeStore` uses, against a per-user record
//! (the user's session digests in a map bin of a record keyed by the user), built here
//! with the plain client for the comparison only.
//!
//! `AEROSPIKE_HOSTS=... cargo bench -p session-tests --bench user_index` (a real server
//! only: the protocol test server has no secondary indexes). It fills a set of its own
//! (`bench_users`, emptied first) with `BENCH_USERS` users (default 2000) of 5 sessions
//! each and 20000 anonymous sessions, then measures, one operation at a time and with 32
//! tasks: a login (binding a session), listing a user's sessions, logging out the other
//! devices, and saves of bound sessions with the index and without it (the hot path).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aerospike::operations::maps;
use aerospike::{
    AdminPolicy, BatchOperation, BatchPolicy, BatchReadPolicy, Bins, Key, MapPolicy, ReadPolicy,
    Value, WritePolicy,
};
use futures_util::future::join_all;
use serde_json::json;
use session_aerospike::AerospikeStore;
use session_core::user::Binding;
use session_core::{Changes, Id, Record, SessionStore, Ttl, USER_KEY};
use session_tests::aerospike::real_hosts;
use time::OffsetDateTime;

const NS: &str = "test";
const SET: &str = "bench_users";
/// The per-user records of the comparison.
const USER_SET: &str = "bench_users_idx";
const PER_USER: usize = 5;
const ANON: usize = 20_000;
const TASKS: usize = 32;

fn ttl() -> Ttl {
    Ttl::from_secs(3600).unwrap()
}

fn user(u: usize) -> String {
    format!("user-{u:06}")
}

fn bound(user: &str) -> Record {
    let binding = Binding {
        user: user.to_owned(),
        since: OffsetDateTime::now_utc().unix_timestamp(),
        label: Some("bench".into()),
    };
    let data = [
        (USER_KEY.to_owned(), binding.to_value()),
        ("cart".to_owned(), json!([1, 2, 3])),
    ];
    Record {
        id: Id::random(),
        data: data.into_iter().collect(),
        expiry: None,
        expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `op(i)` for `i` in `0..n` on `tasks` tasks; prints ops/s, p50 and p99.
async fn measure<F, Fut>(name: &str, n: usize, tasks: usize, op: F)
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for i in (t..n).step_by(tasks) {
                    let s = Instant::now();
                    op(i).await;
                    lat.push(s.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = Vec::with_capacity(n);
    for h in join_all(handles).await {
        all.extend(h.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    println!(
        "{name:<44} {tasks:>2} tasks {:>8.0} ops/s   p50 {:>7.0} µs   p99 {:>7.0} µs",
        all.len() as f64 / wall.as_secs_f64(),
        pct(&all, 0.50).as_secs_f64() * 1e6,
        pct(&all, 0.99).as_secs_f64() * 1e6,
    );
}

/// The per-user record design: the user's sessions as `digest → short id` in bin `s`.
struct PerUser {
    store: AerospikeStore,
}

impl PerUser {
    fn user_key(user: &str) -> Key {
        Key::new(NS, USER_SET, Value::String(user.to_owned())).unwrap()
    }

    fn session_key(id: &Id) -> Key {
        Key::new(NS, SET, Value::String(id.encode().as_str().to_owned())).unwrap()
    }

    /// A login: the session's save (as with the index), then the user's record.
    async fn login(&self, record: &Record, changes: &Changes) {
        self.store.save(record, changes, ttl()).await.unwrap();
        let user = Binding::of(&record.data).unwrap().user;
        let digest = Value::Blob(Self::session_key(&record.id).digest().to_vec());
        let short = Value::String(record.id.encode().as_str()[..6].to_owned());
        let op = maps::put(&MapPolicy::default(), "s", digest, short);
        let client = self.store.client();
        client
            .operate(&WritePolicy::default(), &Self::user_key(&user), &[op])
            .await
            .unwrap();
    }

    /// The digests the user's record lists.
    async fn digests(&self, user: &str) -> Vec<[u8; 20]> {
        let client = self.store.client();
        let rec = client
            .get(&ReadPolicy::default(), &Self::user_key(user), Bins::All)
            .await;
        let rec = rec.expect("the user's record");
        let digest = |k: &Value| match k {
            Value::Blob(b) => b.as_slice().try_into().ok(),
            _ => None,
        };
        match rec.bins.get("s") {
            Some(Value::HashMap(m)) => m.keys().filter_map(digest).collect(),
            Some(Value::OrderedMap(m)) => m.iter().filter_map(|(k, _)| digest(k)).collect(),
            other => panic!("the user's record holds {other:?}"),
        }
    }

    /// Listing: the user's record, then a batch read of its sessions.
    async fn list(&self, user: &str) -> usize {
        let digests = self.digests(user).await;
        let policy = BatchReadPolicy::default();
        let bins = Bins::Some(
            ["data", "expires", "v", "seen", "sid"]
                .map(String::from)
                .to_vec(),
        );
        let mut ops: Vec<_> = digests
            .iter()
            .map(|d| {
                BatchOperation::read(&policy, Key::with_digest(NS, SET, None, *d), bins.clone())
            })
            .collect();
        let client = self.store.client();
        client
            .batch(&BatchPolicy::default(), &mut ops)
            .await
            .unwrap();
        ops.iter().filter(|o| o.record().is_some()).count()
    }

    /// Log out other devices: the user's record, a batch delete, the map trimmed.
    async fn end_others(&self, user: &str, keep: &Id) -> usize {
        let keep = Self::session_key(keep).digest();
        let others: Vec<_> = self
            .digests(user)
            .await
            .into_iter()
            .filter(|d| *d != keep)
            .collect();
        let policy = aerospike::BatchDeletePolicy::default();
        let mut ops: Vec<_> = others
            .iter()
            .map(|d| BatchOperation::delete(&policy, Key::with_digest(NS, SET, None, *d)))
            .collect();
        let client = self.store.client();
        client
            .batch(&BatchPolicy::default(), &mut ops)
            .await
            .unwrap();
        let gone: Vec<Value> = others.iter().map(|d| Value::Blob(d.to_vec())).collect();
        let op = maps::remove_by_key_list("s", gone, aerospike::MapReturnType::NONE);
        client
            .operate(&WritePolicy::default(), &Self::user_key(user), &[op])
            .await
            .unwrap();
        others.len()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(hosts) = real_hosts() else {
        eprintln!("user_index: needs a real server in AEROSPIKE_HOSTS (the test server has no secondary indexes); nothing measured");
        return;
    };
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let store = AerospikeStore::builder()
        .set(SET)
        .connect(&hosts)
        .await
        .unwrap();
    store.clear().await.unwrap();
    let nodes = store.client().nodes().len();
    println!("user_index: {nodes} node(s) at {hosts}; {users} users x {PER_USER} sessions, {ANON} anonymous");
    let client = store.client().clone();
    let _ = client
        .truncate(&AdminPolicy::default(), NS, USER_SET, 0)
        .await;

    // The population: every user's sessions, bound with the index's design (the same
    // records serve both: the per-user records are filled beside them).
    let per_user = Arc::new(PerUser {
        store: store.clone(),
    });
    let sessions: Arc<Vec<Vec<Id>>> = Arc::new(
        join_all((0..users).map(|u| {
            let p = per_user.clone();
            async move {
                let mut ids = Vec::new();
                for _ in 0..PER_USER {
                    let r = bound(&user(u));
                    p.store.create(&r, ttl()).await.unwrap();
                    let c = Changes::new(false, [USER_KEY]);
                    p.login(&r, &c).await;
                    ids.push(r.id);
                }
                ids
            }
        }))
        .await,
    );
    join_all((0..ANON).map(|_| {
        let store = store.clone();
        async move {
            let mut r = bound("x");
            r.data.remove(USER_KEY);
            store.create(&r, ttl()).await.unwrap();
        }
    }))
    .await;
    // The first call builds the index; time it apart.
    let s = Instant::now();
    store.user_sessions(&user(0), None).await.unwrap();
    println!(
        "index created and built over the population in {:?}",
        s.elapsed()
    );

    for tasks in [1, TASKS] {
        let n = if tasks == 1 { 1_000 } else { 10_000 };
        let st = store.clone();
        measure("list: secondary index (query)", n, tasks, move |i| {
            let st = st.clone();
            async move {
                let list = st.user_sessions(&user(i % users), None).await.unwrap();
                assert_eq!(list.len(), PER_USER);
            }
        })
        .await;
        let p = per_user.clone();
        measure(
            "list: per-user record (get + batch read)",
            n,
            tasks,
            move |i| {
                let p = p.clone();
                async move { assert_eq!(p.list(&user(i % users)).await, PER_USER) }
            },
        )
        .await;
        // A login on an anonymous session: the save that adds the binding.
        let st = store.clone();
        measure("login: secondary index (the save)", n, tasks, move |_| {
            let st = st.clone();
            async move {
                let mut r = bound("login-si");
                let anon = {
                    let mut a = r.clone();
                    a.data.remove(USER_KEY);
                    a
                };
                let created = anon.clone();
                st.create(&created, ttl()).await.unwrap();
                r.id = created.id;
                let c = Changes::new(false, [USER_KEY]);
                st.save(&r, &c, ttl()).await.unwrap();
            }
        })
        .await;
        let p = per_user.clone();
        measure(
            "login: per-user record (save + user record)",
            n,
            tasks,
            move |i| {
                let p = p.clone();
                async move {
                    let mut r = bound(&format!("login-pu-{}", i % 50));
                    let mut created = r.clone();
                    created.data.remove(USER_KEY);
                    p.store.create(&created, ttl()).await.unwrap();
                    r.id = created.id;
                    p.login(&r, &Changes::new(false, [USER_KEY])).await;
                }
            },
        )
        .await;
    }

    // Log out other devices: each user once per design, on fresh sessions.
    let half = users / 2;
    let st = store.clone();
    let ss = sessions.clone();
    measure(
        "end others: secondary index (query + deletes)",
        half,
        1,
        move |u| {
            let (st, ss) = (st.clone(), ss.clone());
            async move {
                let ended = session_core::store::end_user_sessions(&st, &user(u), Some(&ss[u][0]))
                    .await
                    .unwrap();
                assert_eq!(ended, PER_USER - 1);
            }
        },
    )
    .await;
    let p = per_user.clone();
    let ss = sessions.clone();
    measure(
        "end others: per-user record (get + batch delete)",
        users - half,
        1,
        move |i| {
            let (p, ss) = (p.clone(), ss.clone());
            let u = half + i;
            async move { assert_eq!(p.end_others(&user(u), &ss[u][0]).await, PER_USER - 1) }
        },
    )
    .await;

    // The hot path: saves of bound sessions (a value changed), with the index and
    // without it. Neither design adds a round trip; this is the server's index upkeep.
    let kept: Arc<Vec<Id>> = Arc::new(sessions.iter().map(|ids| ids[0]).collect());
    let save = |label: &'static str| {
        let (st, kept) = (store.clone(), kept.clone());
        measure(label, 20_000, TASKS, move |i| {
            let (st, kept) = (st.clone(), kept.clone());
            async move {
                let mut r = bound(&user(i % kept.len()));
                r.id = kept[i % kept.len()];
                r.data.insert("cart".into(), json!(i));
                st.save(&r, &Changes::new(false, ["cart"]), ttl())
                    .await
                    .unwrap();
            }
        })
    };
    save("save of a bound session, index present").await;
    client
        .drop_index(
            &AdminPolicy::default(),
            NS,
            SET,
            &format!("{SET}_data_user"),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    save("save of a bound session, no index").await;
    store.clear().await.unwrap();
    let _ = client
        .truncate(&AdminPolicy::default(), NS, USER_SET, 0)
        .await;
}
