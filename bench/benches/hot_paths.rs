//! Criterion microbenchmarks of the per-request hot paths, without HTTP:
//!
//! * `lookup/*`: finding and verifying the id in a realistic `Cookie` header (plain,
//!   signed, private), through [`SessionEngine::start`], as an adapter calls it;
//! * `id/*`: generating and encoding an id;
//! * `set_cookie/*`: the `Set-Cookie` value for an id;
//! * `memory_store/*`: `load`, `save` and `create` with 1 000 000 sessions stored;
//! * `engine/*`: one request's whole session work on a `MemoryStore` (start, load, read
//!   or change, finish), the part of the HTTP figures that is ours;
//! * `aerospike_codec/*`: session data to and from Aerospike map values.
//!
//! `cargo bench -p session-bench --bench hot_paths [-- FILTER]`

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};
use session_core::{
    Changes, Finished, Id, Key, MemoryStore, Record, Session, SessionConfig, SessionEngine,
    SessionStore, Ttl,
};
use time::{Duration, OffsetDateTime};

const SESSIONS: usize = 1_000_000;

/// Runs a future that completes without waiting (everything here is in memory), so the
/// figures hold no executor overhead. Panics if it would wait.
fn ready<F: std::future::Future>(fut: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(fut).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("an in-memory future waited"),
    }
}

fn configs() -> [(&'static str, SessionConfig); 3] {
    let key = Key::from(&[7u8; 64]);
    let build = |b: session_core::SessionConfigBuilder| b.build().expect("a valid config");
    [
        ("plain", build(SessionConfig::builder())),
        (
            "signed",
            build(SessionConfig::builder().signed(key.clone())),
        ),
        ("private", build(SessionConfig::builder().private(key))),
    ]
}

/// A browser-like `Cookie` header with our id among other cookies.
fn cookie_header(config: &SessionConfig, id: &Id) -> String {
    let set_cookie = config.issue(id, None);
    let pair = set_cookie.split(';').next().expect("name=value first");
    format!("_ga=GA1.1.1234567890.1700000000; theme=dark; {pair}; lang=en-GB")
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    for (name, config) in configs() {
        let header = cookie_header(&config, &Id::random());
        let engine = SessionEngine::new(MemoryStore::default(), config);
        group.bench_function(name, |b| {
            b.iter(|| engine.start([black_box(header.as_bytes())]))
        });
    }
    let engine = SessionEngine::new(MemoryStore::default(), SessionConfig::default());
    let header = "_ga=GA1.1.1234567890.1700000000; theme=dark; lang=en-GB";
    group.bench_function("absent", |b| {
        b.iter(|| engine.start([black_box(header.as_bytes())]))
    });
    group.finish();
}

fn id(c: &mut Criterion) {
    let mut group = c.benchmark_group("id");
    group.bench_function("random", |b| b.iter(Id::random));
    let id = Id::random();
    group.bench_function("encode", |b| b.iter(|| black_box(&id).encode()));
    let text = id.encode();
    group.bench_function("parse", |b| {
        b.iter(|| black_box(text.as_str()).parse::<Id>())
    });
    group.finish();
}

fn set_cookie(c: &mut Criterion) {
    let mut group = c.benchmark_group("set_cookie");
    let id = Id::random();
    for (name, config) in configs() {
        group.bench_function(name, |b| b.iter(|| config.issue(black_box(&id), None)));
    }
    let config = SessionConfig::default();
    let day = Ttl::from_secs(86_400);
    group.bench_function("plain_max_age", |b| {
        b.iter(|| config.issue(black_box(&id), day))
    });
    group.finish();
}

fn record(id: Id, n: u64) -> Record {
    Record {
        id,
        data: [("n".to_owned(), json!(n))].into_iter().collect(),
        expiry: None,
        expires_at: OffsetDateTime::now_utc() + Duration::days(1),
    }
}

/// A store holding `SESSIONS` one-value sessions, and their ids.
fn filled_store() -> (MemoryStore, Vec<Id>) {
    let store = MemoryStore::default();
    let ttl = Ttl::from_secs(86_400).expect("a valid ttl");
    let ids = ready(async {
        let mut ids = Vec::with_capacity(SESSIONS);
        for n in 0..SESSIONS as u64 {
            let r = record(Id::random(), n);
            store.create(&r, ttl).await.expect("memory never fails");
            ids.push(r.id);
        }
        ids
    });
    (store, ids)
}

fn memory_store(c: &mut Criterion) {
    let (store, ids) = filled_store();
    let ttl = Ttl::from_secs(86_400).expect("a valid ttl");
    let mut group = c.benchmark_group("memory_store");
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 7919) % SESSIONS;
        ids[i]
    };
    group.bench_function("load", |b| {
        b.iter(|| ready(store.load(&next())).expect("memory never fails"))
    });
    let changes = Changes::new(false, ["n"]);
    group.bench_function("save", |b| {
        b.iter_batched(
            || record(next(), 42),
            |r| ready(store.save(&r, &changes, ttl)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("create", |b| {
        b.iter_batched(
            || record(Id::random(), 1),
            |r| ready(store.create(&r, ttl)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// What a handler does with the loaded session.
type Work = fn(&Session);

/// One request's session work, as an adapter does it: start with the cookie (if any);
/// when the handler uses the session, load it and run `work`; finish.
fn request(engine: &SessionEngine, cookie: Option<&str>, work: Option<Work>) -> Finished {
    ready(async {
        let lazy = engine.start(cookie.map(str::as_bytes));
        if let Some(work) = work {
            work(&lazy.load().await.expect("memory never fails"));
        }
        lazy.finish(200).await
    })
}

/// `GET /`: read the counter, add 1, write it back.
fn count(session: &Session) {
    let n = session.get::<u64>("n").expect("a number").unwrap_or(0);
    session.insert("n", n + 1).expect("a number");
}

/// `GET /read`.
fn read(session: &Session) {
    black_box(session.get::<u64>("n").expect("a number"));
}

fn engine(c: &mut Criterion) {
    let engine = SessionEngine::new(
        MemoryStore::default(),
        SessionConfig::builder()
            .secure(false)
            .build()
            .expect("a valid config"),
    );
    let cookies: Vec<String> = (0..1024)
        .map(|_| {
            let created = request(&engine, None, Some(count));
            let set = created.header().expect("created");
            set.split(';').next().expect("name=value").to_owned()
        })
        .collect();
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 1) % cookies.len();
        cookies[i].clone()
    };
    let mut group = c.benchmark_group("engine");
    let with_cookie: [(&str, Option<Work>); 3] = [
        ("counter", Some(count)),
        ("read", Some(read)),
        ("plain", None),
    ];
    for (name, work) in with_cookie {
        group.bench_function(name, |b| {
            b.iter_batched(
                &mut next,
                |cookie| request(&engine, Some(&cookie), work),
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("new", |b| b.iter(|| request(&engine, None, Some(count))));
    group.finish();
}

/// One request that changes every key of a session of `n` keys (load, `n` inserts,
/// save), per key: flat from 10 to 100 000 keys when every step is linear.
fn many_keys(c: &mut Criterion) {
    let engine = SessionEngine::new(
        MemoryStore::default(),
        SessionConfig::builder()
            .secure(false)
            .max_keys(1_000_000)
            .max_bytes(1 << 30)
            .build()
            .expect("a valid config"),
    );
    let mut group = c.benchmark_group("many_keys");
    group.sample_size(10);
    for n in [10u64, 100, 1_000, 10_000, 100_000] {
        let fill = |session: &Session, round: u64| {
            for i in 0..n {
                session
                    .insert(&format!("k{i}"), i + round)
                    .expect("under the limits");
            }
        };
        let cookie = ready(async {
            let lazy = engine.start(None);
            fill(&lazy.load().await.expect("memory"), 0);
            let set = lazy.finish(200).await;
            let set = set.header().expect("created");
            set.split(';').next().expect("name=value").to_owned()
        });
        let mut round = 0;
        group.throughput(criterion::Throughput::Elements(n));
        group.bench_function(format!("change_all_{n}"), |b| {
            b.iter(|| {
                round += 1;
                ready(async {
                    let lazy = engine.start(Some(cookie.as_bytes()));
                    fill(&lazy.load().await.expect("memory"), round);
                    let done = lazy.finish(200).await;
                    assert!(done.error().is_none());
                })
            })
        });
    }
    group.finish();
}

fn aerospike_codec(c: &mut Criterion) {
    let data: HashMap<String, Value> = HashMap::from([
        ("user_id".to_owned(), json!(4_200_042)),
        ("name".to_owned(), json!("Ada Lovelace")),
        ("roles".to_owned(), json!(["admin", "editor"])),
        (
            "cart".to_owned(),
            json!({"items": [1, 2, 3], "total": 12.5}),
        ),
    ]);
    let mut group = c.benchmark_group("aerospike_codec");
    group.bench_function("encode", |b| {
        b.iter(|| session_aerospike::codec::map_to_aerospike(black_box(&data).iter()).unwrap())
    });
    let encoded = session_aerospike::codec::map_to_aerospike(data.iter()).unwrap();
    group.bench_function("decode", |b| {
        b.iter(|| session_aerospike::codec::map_to_json(black_box(&encoded).iter()))
    });
    group.finish();
}

criterion_group!(
    benches,
    lookup,
    id,
    set_cookie,
    engine,
    aerospike_codec,
    memory_store,
    many_keys
);
criterion_main!(benches);
