//! The store-level conformance suite: what every [`SessionStore`] promises, checked the
//! same way for each backend.
//!
//! Instantiate it with a store factory and the store's capabilities:
//!
//! ```text
//! session_tests::store_suite!(memory, async { session_core::MemoryStore::default() }, Caps::NATIVE);
//! ```

use serde_json::{json, Value};
use session_core::{Changes, Id, Record, SessionStore, Ttl, Update};
use time::{Duration, OffsetDateTime};

/// What a store can promise beyond the trait's contract.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// `save` writes only the changed keys, so concurrent saves of different keys of one
    /// session all survive. Without it the promise is last-writer-wins.
    pub delta_saves: bool,
    /// `create` with a taken id picks another. Without it the store may refuse such a
    /// create with an error instead; it still never overwrites.
    pub new_id_when_taken: bool,
}

impl Caps {
    /// A store that writes only the change.
    pub const NATIVE: Caps = Caps {
        delta_saves: true,
        new_id_when_taken: true,
    };
    /// A store that rewrites whole records.
    pub const WHOLE_RECORD: Caps = Caps {
        delta_saves: false,
        new_id_when_taken: true,
    };
    /// tower-sessions-redis-store 0.16 on fred 10: whole records, and a create under a
    /// taken id fails ("Could not convert to bool": it reads the nil reply of Redis's
    /// `SET NX` as a bool) instead of picking another id. It does not overwrite.
    pub const TOWER_REDIS: Caps = Caps {
        delta_saves: false,
        new_id_when_taken: false,
    };
}

fn ttl(secs: u32) -> Ttl {
    Ttl::from_secs(secs).expect("a valid TTL")
}

/// A record with `data`, living `secs` seconds from now.
pub fn record(data: Value, secs: u32) -> Record {
    let data: session_core::Data = serde_json::from_value(data).expect("an object");
    Record {
        id: Id::random(),
        data,
        expiry: None,
        expires_at: OffsetDateTime::now_utc() + Duration::seconds(i64::from(secs)),
    }
}

/// The change set from `before` to `after`, as the engine would hand it to `save`.
pub fn changes(before: &Record, after: &Record) -> Changes {
    Changes::between(&before.data, &after.data)
}

fn close(a: OffsetDateTime, b: OffsetDateTime) -> bool {
    (a - b).abs() <= Duration::seconds(1)
}

/// `create` then `load` returns what was stored.
pub async fn create_then_load<S: SessionStore>(store: S) {
    let mut r = record(
        json!({"user": "ada", "n": 1, "list": [1, "two", null], "map": {"a": true}, "f": 1.5}),
        600,
    );
    r.expiry = Some(session_core::Expiry::OnInactivity(Duration::minutes(10)));
    let asked = r.id;
    store.create(&mut r, ttl(600)).await.unwrap();
    assert_eq!(r.id, asked, "a free id is kept");
    let back = store.load(&r.id).await.unwrap().expect("the record loads");
    assert_eq!(back.id, r.id);
    assert_eq!(back.data, r.data);
    assert_eq!(back.expiry, r.expiry);
    assert!(
        close(back.expires_at, r.expires_at),
        "{} vs {}",
        back.expires_at,
        r.expires_at
    );
    assert!(
        store.load(&Id::random()).await.unwrap().is_none(),
        "unknown ids load nothing"
    );
}

/// `create` with a taken id picks another (or, without [`Caps::new_id_when_taken`], may
/// fail) and leaves the existing record alone.
pub async fn create_never_overwrites<S: SessionStore>(store: S, caps: Caps) {
    let mut first = record(json!({"owner": "first"}), 600);
    store.create(&mut first, ttl(600)).await.unwrap();
    let mut second = record(json!({"owner": "second"}), 600);
    second.id = first.id;
    match store.create(&mut second, ttl(600)).await {
        Ok(()) => {
            assert_ne!(second.id, first.id);
            let b = store.load(&second.id).await.unwrap().unwrap();
            assert_eq!(b.data["owner"], json!("second"));
        }
        Err(e) => assert!(
            !caps.new_id_when_taken,
            "create under a taken id failed: {e:?}"
        ),
    }
    let a = store.load(&first.id).await.unwrap().unwrap();
    assert_eq!(a.data["owner"], json!("first"), "never overwritten");
}

/// `save` applies the change, including a clear, and the new expiry.
pub async fn save_applies_changes<S: SessionStore>(store: S) {
    let mut r = record(json!({"a": 1, "b": 2}), 600);
    store.create(&mut r, ttl(600)).await.unwrap();
    let mut after = r.clone();
    after.data.insert("a".into(), json!(10));
    after.data.remove("b");
    after.data.insert("c".into(), json!({"deep": [1, 2]}));
    after.expires_at = OffsetDateTime::now_utc() + Duration::seconds(900);
    let c = changes(&r, &after);
    assert_eq!(
        store.save(&after, &c, ttl(900)).await.unwrap(),
        Update::Applied
    );
    let back = store.load(&r.id).await.unwrap().unwrap();
    assert_eq!(back.data, after.data);
    assert!(close(back.expires_at, after.expires_at));

    let mut cleared = after.clone();
    cleared.data = [("only".to_string(), json!(1))].into_iter().collect();
    let c = Changes::new(true, ["only"]);
    assert_eq!(
        store.save(&cleared, &c, ttl(900)).await.unwrap(),
        Update::Applied
    );
    assert_eq!(store.load(&r.id).await.unwrap().unwrap().data, cleared.data);
}

/// `save` and `touch` of a missing record report it and write nothing.
pub async fn no_resurrection<S: SessionStore>(store: S) {
    let mut r = record(json!({"user": "ada"}), 600);
    store.create(&mut r, ttl(600)).await.unwrap();
    store.delete(&r.id).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none());
    let mut after = r.clone();
    after.data.insert("cart".into(), json!(1));
    let c = changes(&r, &after);
    assert_eq!(
        store.save(&after, &c, ttl(600)).await.unwrap(),
        Update::Missing
    );
    assert!(store.load(&r.id).await.unwrap().is_none());
    let later = OffsetDateTime::now_utc() + Duration::seconds(600);
    assert_eq!(
        store.touch(&r.id, later, ttl(600)).await.unwrap(),
        Update::Missing
    );
    assert!(store.load(&r.id).await.unwrap().is_none());
    // Deleting a missing record succeeds.
    store.delete(&r.id).await.unwrap();
}

/// `touch` extends the life without changing the data.
pub async fn touch_extends<S: SessionStore>(store: S) {
    let mut r = record(json!({"a": 1}), 5);
    store.create(&mut r, ttl(5)).await.unwrap();
    let later = OffsetDateTime::now_utc() + Duration::seconds(3600);
    assert_eq!(
        store.touch(&r.id, later, ttl(3600)).await.unwrap(),
        Update::Applied
    );
    let back = store.load(&r.id).await.unwrap().unwrap();
    assert_eq!(back.data, r.data);
    assert!(close(back.expires_at, later));
}

/// A record past its expiry does not load.
pub async fn expired_records_do_not_load<S: SessionStore>(store: S) {
    let mut r = record(json!({"a": 1}), 1);
    store.create(&mut r, ttl(1)).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert!(store.load(&r.id).await.unwrap().is_none());
    let later = OffsetDateTime::now_utc() + Duration::seconds(60);
    assert_eq!(
        store.touch(&r.id, later, ttl(60)).await.unwrap(),
        Update::Missing
    );
}

/// `cycle` moves a live session to a new id, and brings nothing back when the old
/// record was deleted or expired meanwhile.
pub async fn cycle_needs_the_old_record_live<S: SessionStore>(store: S) {
    let mut r = record(json!({"user": "ada"}), 600);
    store.create(&mut r, ttl(600)).await.unwrap();
    let mut moved = record(json!({"user": "ada", "role": "admin"}), 600);
    assert_eq!(
        store.cycle(&r.id, &mut moved, ttl(600)).await.unwrap(),
        Update::Applied
    );
    assert!(
        store.load(&r.id).await.unwrap().is_none(),
        "the old id is gone"
    );
    let back = store
        .load(&moved.id)
        .await
        .unwrap()
        .expect("the new id loads");
    assert_eq!(back.data, moved.data);

    // Logged out while the request was in flight.
    let mut gone = record(json!({"user": "eve"}), 600);
    store.create(&mut gone, ttl(600)).await.unwrap();
    store.delete(&gone.id).await.unwrap();
    let mut revived = record(json!({"user": "eve", "role": "admin"}), 600);
    assert_eq!(
        store.cycle(&gone.id, &mut revived, ttl(600)).await.unwrap(),
        Update::Missing
    );
    assert!(
        store.load(&revived.id).await.unwrap().is_none(),
        "nothing created"
    );
    assert!(store.load(&gone.id).await.unwrap().is_none());

    // Expired while the request was in flight.
    let mut short = record(json!({"user": "bob"}), 1);
    store.create(&mut short, ttl(1)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let mut late = record(json!({"user": "bob", "role": "admin"}), 600);
    assert_eq!(
        store.cycle(&short.id, &mut late, ttl(600)).await.unwrap(),
        Update::Missing
    );
    assert!(
        store.load(&late.id).await.unwrap().is_none(),
        "nothing created"
    );
}

/// Concurrent saves of different keys of one session: all survive when the store writes
/// changes only; otherwise the result is exactly one writer's state (last writer wins),
/// never a mix that lost the original data.
pub async fn concurrent_different_keys<S: SessionStore + Clone>(store: S, caps: Caps) {
    let mut base = record(json!({"start": 0}), 600);
    store.create(&mut base, ttl(600)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut after = base.clone();
            after.data.insert(format!("k{i}"), json!(i));
            let c = changes(&base, &after);
            store.save(&after, &c, ttl(600)).await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Update::Applied);
    }
    let back = store.load(&base.id).await.unwrap().unwrap();
    assert_eq!(back.data["start"], json!(0));
    if caps.delta_saves {
        for i in 0..20 {
            assert_eq!(
                back.data.get(&format!("k{i}")),
                Some(&json!(i)),
                "k{i} was lost"
            );
        }
    } else {
        let written: Vec<_> = (0..20)
            .filter(|i| back.data.contains_key(&format!("k{i}")))
            .collect();
        assert_eq!(
            written.len(),
            1,
            "last writer wins: exactly one writer's state"
        );
    }
}

/// Instantiates the store suite as `#[tokio::test]`s in a module named `$name`;
/// `$factory` is a future of a fresh store (`async { MemoryStore::default() }`).
#[macro_export]
macro_rules! store_suite {
    ($name:ident, $factory:expr, $caps:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::store_suite as suite;

            #[tokio::test]
            async fn create_then_load() {
                suite::create_then_load(($factory).await).await;
            }
            #[tokio::test]
            async fn create_never_overwrites() {
                suite::create_never_overwrites(($factory).await, $caps).await;
            }
            #[tokio::test]
            async fn save_applies_changes() {
                suite::save_applies_changes(($factory).await).await;
            }
            #[tokio::test]
            async fn no_resurrection() {
                suite::no_resurrection(($factory).await).await;
            }
            #[tokio::test]
            async fn touch_extends() {
                suite::touch_extends(($factory).await).await;
            }
            #[tokio::test]
            async fn cycle_needs_the_old_record_live() {
                suite::cycle_needs_the_old_record_live(($factory).await).await;
            }
            #[tokio::test]
            async fn expired_records_do_not_load() {
                suite::expired_records_do_not_load(($factory).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_different_keys() {
                suite::concurrent_different_keys(($factory).await, $caps).await;
            }
        }
    };
}
