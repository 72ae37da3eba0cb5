//! Life-cycle decisions, driven through the engine with a store that records its calls and
//! fails on demand.

use std::sync::{Arc, Mutex};

use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::*;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Load,
    Create,
    Save { keys: Vec<String>, cleared: bool },
    Touch,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Load,
    Create,
    Save,
    Touch,
    Delete,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Unavailable,
    Backend,
    Collision,
    Decode,
}

impl Fault {
    fn error(self) -> StoreError {
        match self {
            Fault::Unavailable => StoreError::Unavailable("connection refused".into()),
            Fault::Backend => StoreError::Backend("disk on fire".into()),
            Fault::Collision => StoreError::IdCollision(CREATE_ATTEMPTS),
            Fault::Decode => StoreError::Decode("garbage".into()),
        }
    }
}

/// A `MemoryStore` that records each call and can be told to fail one kind of call.
#[derive(Clone, Debug, Default)]
struct Recorder {
    inner: MemoryStore,
    calls: Arc<Mutex<Vec<Call>>>,
    faults: Arc<Mutex<Vec<(Op, Fault)>>>,
}

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
    fn fail(&self, op: Op, fault: Fault) {
        self.faults.lock().unwrap().push((op, fault));
    }
    fn heal(&self) {
        self.faults.lock().unwrap().clear();
    }
    fn check(&self, op: Op, call: Call) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push(call);
        let faults = self.faults.lock().unwrap();
        match faults.iter().find(|(o, _)| *o == op) {
            Some((_, f)) => Err(f.error()),
            None => Ok(()),
        }
    }
}

impl SessionStore for Recorder {
    async fn load(&self, id: &Id) -> Result<Option<Record>, StoreError> {
        self.check(Op::Load, Call::Load)?;
        self.inner.load(id).await
    }
    async fn create(&self, record: &mut Record, ttl: Ttl) -> Result<(), StoreError> {
        self.check(Op::Create, Call::Create)?;
        self.inner.create(record, ttl).await
    }
    async fn save(
        &self,
        record: &Record,
        changes: &Changes,
        ttl: Ttl,
    ) -> Result<Update, StoreError> {
        let mut keys: Vec<String> = changes
            .ops(&record.data)
            .map(|c| match c {
                Change::Set(k, _) | Change::Remove(k) => k.to_owned(),
            })
            .collect();
        keys.sort();
        self.check(
            Op::Save,
            Call::Save {
                keys,
                cleared: changes.cleared(),
            },
        )?;
        self.inner.save(record, changes, ttl).await
    }
    async fn touch(&self, id: &Id, at: OffsetDateTime, ttl: Ttl) -> Result<Update, StoreError> {
        self.check(Op::Touch, Call::Touch)?;
        self.inner.touch(id, at, ttl).await
    }
    async fn delete(&self, id: &Id) -> Result<(), StoreError> {
        self.check(Op::Delete, Call::Delete)?;
        self.inner.delete(id).await
    }
    /// Recorded as the create and the delete it stands for; a delete fault only fails
    /// the old record's removal, which a cycle logs and survives.
    async fn cycle(&self, old: &Id, record: &mut Record, ttl: Ttl) -> Result<Update, StoreError> {
        self.check(Op::Create, Call::Create)?;
        let update = self.inner.cycle(old, record, ttl).await?;
        if update == Update::Applied {
            let _ = self.check(Op::Delete, Call::Delete);
        }
        Ok(update)
    }
}

struct Harness {
    store: Recorder,
    engine: SessionEngine,
}

fn harness(config: SessionConfig) -> Harness {
    let store = Recorder::default();
    let engine = SessionEngine::new(store.clone(), config);
    Harness { store, engine }
}

fn default_harness() -> Harness {
    harness(SessionConfig::default())
}

/// The `name=value` part of a `Set-Cookie` value, to send back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

fn max_age(set_cookie: &str) -> Option<i64> {
    ::cookie::Cookie::parse(set_cookie.to_owned())
        .unwrap()
        .max_age()
        .map(|d| d.whole_seconds())
}

impl Harness {
    fn start(&self, cookie: Option<&str>) -> LazySession {
        self.engine.start(cookie.map(str::as_bytes))
    }

    /// A request that stores `key = value` in a new session; returns the cookie pair.
    async fn new_session(&self, key: &str, value: serde_json::Value) -> String {
        let lazy = self.start(None);
        lazy.load().await.unwrap().insert_value(key, value).unwrap();
        let f = lazy.finish(200).await;
        assert!(f.error().is_none());
        self.store.calls();
        cookie_pair(f.header().unwrap())
    }
}

#[tokio::test]
async fn a_session_no_handler_asks_for_costs_nothing() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    let f = lazy.finish(200).await;
    assert!(f.header().is_none());
    assert!(f.error().is_none());
    assert_eq!(h.store.calls(), vec![]);
}

#[tokio::test]
async fn a_read_without_a_cookie_costs_no_store_call() {
    let h = default_harness();
    let lazy = h.start(None);
    let s = lazy.load().await.unwrap();
    assert_eq!(s.get::<u32>("x").unwrap(), None);
    assert!(lazy.finish(200).await.header().is_none());
    assert_eq!(h.store.calls(), vec![]);
}

#[tokio::test]
async fn an_empty_new_session_is_never_stored() {
    let h = default_harness();
    let lazy = h.start(None);
    let s = lazy.load().await.unwrap();
    s.insert("a", 1).unwrap();
    s.remove_value("a");
    assert!(lazy.finish(200).await.header().is_none());
    assert_eq!(h.store.calls(), vec![]);
    assert!(h.store.inner.is_empty());
}

#[tokio::test]
async fn the_store_is_read_once_however_many_extractors_ask() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    for _ in 0..3 {
        assert_eq!(lazy.load().await.unwrap().get::<i32>("a").unwrap(), Some(1));
    }
    assert_eq!(h.store.calls(), vec![Call::Load]);
}

#[tokio::test]
async fn a_first_write_creates_and_a_read_changes_nothing() {
    let h = harness(
        SessionConfig::builder()
            .touch_policy(TouchPolicy::OnStateChanges)
            .build()
            .unwrap(),
    );
    let lazy = h.start(None);
    lazy.load().await.unwrap().insert("user", "ada").unwrap();
    let f = lazy.finish(200).await;
    assert_eq!(h.store.calls(), vec![Call::Create]);
    let set = f.header().unwrap();
    let pair = cookie_pair(set);
    let id: Id = pair.strip_prefix("id=").unwrap().parse().unwrap();
    assert_eq!(lazy.loaded().unwrap().id(), Some(id));

    let lazy = h.start(Some(&pair));
    let s = lazy.load().await.unwrap();
    assert_eq!(s.id(), Some(id));
    assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    assert_eq!(s.status(), Status::Unchanged);
    assert!(lazy.finish(200).await.header().is_none());
    assert_eq!(h.store.calls(), vec![Call::Load]);
}

#[tokio::test]
async fn only_changed_keys_are_saved() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    s.insert("a", 1).unwrap(); // equal: not a change
    assert_eq!(s.status(), Status::Unchanged);
    s.insert("b", 2).unwrap();
    s.remove_value("missing"); // absent: not a change
    assert_eq!(s.status(), Status::Changed);
    let f = lazy.finish(200).await;
    // The client holds this browser-session cookie (no Max-Age): it is not sent again.
    assert!(f.header().is_none());
    assert_eq!(
        h.store.calls(),
        vec![
            Call::Load,
            Call::Save {
                keys: vec!["b".into()],
                cleared: false
            }
        ]
    );
}

#[tokio::test]
async fn update_counts_as_a_change_only_when_the_value_changes() {
    let h = default_harness();
    let cookie = h.new_session("n", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    assert!(s.update("n", |_: &mut u32| {}).unwrap());
    assert_eq!(s.status(), Status::Unchanged);
    assert!(s.update("n", |n: &mut u32| *n += 1).unwrap());
    assert_eq!(s.status(), Status::Changed);
    assert!(!s.update("absent", |n: &mut u32| *n += 1).unwrap());
    s.update_or("m", 10u32, |n| *n += 1).unwrap();
    assert_eq!(s.get::<u32>("m").unwrap(), Some(11));
    assert_eq!(s.get::<u32>("n").unwrap(), Some(2));
    // A closure that uses the session itself does not deadlock.
    s.update_or("len", 0usize, |n| *n = s.len()).unwrap();
    assert_eq!(s.get::<usize>("len").unwrap(), Some(2));
    let _ = lazy.finish(200).await;
    assert_eq!(
        h.store.calls(),
        vec![
            Call::Load,
            Call::Save {
                keys: vec!["len".into(), "m".into(), "n".into()],
                cleared: false
            }
        ]
    );
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_an_error_not_a_panic() {
    let h = default_harness();
    let s = h.start(None).load().await.unwrap();
    s.insert("n", "text").unwrap();
    let err = s.get::<u32>("n").unwrap_err();
    assert!(err.to_string().contains("\"n\""), "{err}");
    assert!(s.update("n", |n: &mut u32| *n += 1).is_err());
    assert_eq!(s.get::<String>("n").unwrap().as_deref(), Some("text"));
}

#[tokio::test]
async fn cycle_id_creates_the_new_record_before_deleting_the_old() {
    let h = default_harness();
    let cookie = h.new_session("cart", json!(["apple"])).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    let old = s.id().unwrap();
    s.insert("user", "ada").unwrap();
    s.cycle_id();
    assert_eq!(s.status(), Status::Renewed);
    let f = lazy.finish(200).await;
    assert_eq!(
        h.store.calls(),
        vec![Call::Load, Call::Create, Call::Delete]
    );
    let pair = cookie_pair(f.header().unwrap());
    assert_ne!(pair, cookie);

    assert!(
        h.store.inner.load(&old).await.unwrap().is_none(),
        "the old id no longer loads"
    );
    let s = h.start(Some(&pair)).load().await.unwrap();
    assert_eq!(
        s.get::<Vec<String>>("cart").unwrap(),
        Some(vec!["apple".into()])
    );
    assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
}

#[tokio::test]
async fn a_failed_cycle_leaves_the_old_session_as_it_was() {
    let h = default_harness();
    let cookie = h.new_session("cart", json!(1)).await;
    h.store.fail(Op::Create, Fault::Unavailable);
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    s.insert("user", "ada").unwrap();
    s.cycle_id();
    let f = lazy.finish(200).await;
    assert!(f.error().unwrap().is_unavailable());
    assert!(
        f.header().is_none(),
        "no new cookie for a session that was not created"
    );
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Create]);
    h.store.heal();
    let s = h.start(Some(&cookie)).load().await.unwrap();
    assert_eq!(s.get::<i32>("cart").unwrap(), Some(1));
    assert!(
        !s.contains_key("user"),
        "the old id did not gain the new privileges"
    );
}

#[tokio::test]
async fn a_cycle_whose_old_delete_fails_still_moves_to_the_new_id() {
    let h = default_harness();
    let cookie = h.new_session("cart", json!(1)).await;
    h.store.fail(Op::Delete, Fault::Backend);
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().cycle_id();
    let f = lazy.finish(200).await;
    assert!(f.error().is_none());
    let pair = cookie_pair(f.header().unwrap());
    assert_ne!(pair, cookie);
}

#[tokio::test]
async fn a_server_error_saves_nothing_by_default() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    s.insert("a", 2).unwrap();
    s.insert("b", 3).unwrap();
    let f = lazy.finish(500).await;
    assert!(f.header().is_none());
    assert_eq!(h.store.calls(), vec![Call::Load]);
    let s = h.start(Some(&cookie)).load().await.unwrap();
    assert_eq!(
        s.get::<i32>("a").unwrap(),
        Some(1),
        "the existing session is intact"
    );

    let h = harness(
        SessionConfig::builder()
            .save_on_server_error(true)
            .build()
            .unwrap(),
    );
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().insert("a", 2).unwrap();
    let _ = lazy.finish(503).await;
    assert_eq!(
        h.store.calls(),
        vec![
            Call::Load,
            Call::Save {
                keys: vec!["a".into()],
                cleared: false
            }
        ]
    );
}

#[tokio::test]
async fn deletions_reach_the_store_even_on_a_server_error() {
    let h = default_harness();
    // A logout, then the handler fails: the session is deleted all the same.
    let cookie = h.new_session("user", json!("ada")).await;
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().flush();
    let f = lazy.finish(500).await;
    assert_eq!(max_age(f.header().unwrap()), Some(0));
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Delete]);
    assert!(h.start(Some(&cookie)).load().await.unwrap().is_empty());
    // A logout through the handle, without a load.
    let cookie = h.new_session("user", json!("ada")).await;
    let lazy = h.start(Some(&cookie));
    lazy.flush();
    let f = lazy.finish(502).await;
    assert_eq!(max_age(f.header().unwrap()), Some(0));
    assert_eq!(h.store.calls(), vec![Call::Delete]);
    // A login that fails: the old id is deleted, nothing new is written.
    let cookie = h.new_session("user", json!("ada")).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    s.insert("role", "admin").unwrap();
    s.cycle_id();
    let f = lazy.finish(500).await;
    assert_eq!(max_age(f.header().unwrap()), Some(0));
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Delete]);
    assert!(h.start(Some(&cookie)).load().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_abandoned_request_still_deletes_what_it_logged_out() {
    let h = default_harness();
    let cookie = h.new_session("user", json!("ada")).await;
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().flush();
    let pending = lazy.abandoned().expect("a logout to deliver");
    drop(lazy);
    pending.await;
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Delete]);
    assert!(h.start(Some(&cookie)).load().await.unwrap().is_empty());

    // Nothing to deliver: a read, a write (data changes keep the usual rule), or a
    // request that finished.
    let cookie = h.new_session("user", json!("ada")).await;
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().insert("cart", 1).unwrap();
    assert!(lazy.abandoned().is_none());
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().flush();
    let _ = lazy.finish(200).await;
    assert!(lazy.abandoned().is_none(), "finish already delivered it");
}

#[tokio::test]
async fn flush_deletes_and_removes_the_cookie() {
    let h = default_harness();
    let cookie = h.new_session("user", json!("ada")).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    s.flush();
    assert!(s.is_empty());
    assert_eq!(s.status(), Status::Purged);
    let f = lazy.finish(200).await;
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Delete]);
    let removal = f.header().unwrap();
    assert_eq!(max_age(removal), Some(0));
    assert!(removal.starts_with("id=;"), "{removal}");

    // Replaying the old cookie gives a fresh, empty session.
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    assert!(s.is_empty());
    assert_eq!(s.id(), None);
}

#[tokio::test]
async fn values_set_after_flush_start_a_new_session() {
    let h = default_harness();
    let cookie = h.new_session("user", json!("ada")).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    s.flush();
    s.insert("flash", "bye").unwrap();
    let f = lazy.finish(200).await;
    assert_eq!(
        h.store.calls(),
        vec![Call::Load, Call::Delete, Call::Create]
    );
    let pair = cookie_pair(f.header().unwrap());
    assert_ne!(pair, cookie);
    let s = h.start(Some(&pair)).load().await.unwrap();
    assert_eq!(s.keys(), vec!["flash".to_string()]);
}

#[tokio::test]
async fn a_logout_whose_delete_fails_is_an_error_that_still_removes_the_cookie() {
    let h = default_harness();
    let cookie = h.new_session("user", json!("ada")).await;
    h.store.fail(Op::Delete, Fault::Unavailable);
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().flush();
    let f = lazy.finish(200).await;
    assert!(f.error().unwrap().is_unavailable());
    assert_eq!(max_age(f.header().unwrap()), Some(0));
    // A retried logout succeeds once the store is back.
    h.store.heal();
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().flush();
    let f = lazy.finish(200).await;
    assert!(f.error().is_none());
    assert!(h.store.inner.is_empty());
}

#[tokio::test]
async fn removing_the_last_value_deletes_the_record_and_the_cookie() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    assert_eq!(s.remove::<i32>("a").unwrap(), Some(1));
    let f = lazy.finish(200).await;
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Delete]);
    assert_eq!(max_age(f.header().unwrap()), Some(0));
    assert!(h.store.inner.is_empty());

    // clear() too.
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().clear();
    let f = lazy.finish(200).await;
    assert_eq!(max_age(f.header().unwrap()), Some(0));
    assert!(h.store.inner.is_empty());
}

#[tokio::test]
async fn clear_then_insert_saves_a_cleared_change_set() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    s.clear();
    s.insert("b", 2).unwrap();
    let _ = lazy.finish(200).await;
    assert_eq!(
        h.store.calls(),
        vec![
            Call::Load,
            Call::Save {
                keys: vec!["b".into()],
                cleared: true
            }
        ]
    );
    let s = h.start(Some(&cookie)).load().await.unwrap();
    assert_eq!(s.keys(), vec!["b".to_string()]);
}

#[tokio::test]
async fn a_deleted_session_is_not_brought_back_by_a_late_save_or_touch() {
    for touch in [false, true] {
        let config = SessionConfig::builder()
            .touch_policy(TouchPolicy::OnEveryRequest)
            .build()
            .unwrap();
        let h = harness(config);
        let cookie = h.new_session("user", json!("ada")).await;
        // A slow request loads the session...
        let slow = h.start(Some(&cookie));
        let s = slow.load().await.unwrap();
        // ...while a logout completes.
        let logout = h.start(Some(&cookie));
        logout.load().await.unwrap().flush();
        let _ = logout.finish(200).await;
        assert!(h.store.inner.is_empty());
        if !touch {
            s.insert("cart", "apple").unwrap();
        }
        let f = slow.finish(200).await;
        assert!(f.error().is_none());
        assert_eq!(
            max_age(f.header().unwrap()),
            Some(0),
            "the client forgets it too"
        );
        assert!(
            h.store.inner.is_empty(),
            "touch={touch}: the session came back"
        );
    }
}

#[tokio::test]
async fn an_unknown_or_malformed_id_is_a_fresh_session_never_adopted() {
    let h = default_harness();
    let unknown = format!("id={}", Id::random().encode().as_str());
    for cookie in [unknown.as_str(), "id=", "id=short", "id=%%%%", "id"] {
        let lazy = h.start(Some(cookie));
        let s = lazy.load().await.unwrap();
        assert!(s.is_empty());
        assert_eq!(s.id(), None);
        s.insert("k", 1).unwrap();
        let f = lazy.finish(200).await;
        let pair = cookie_pair(f.header().unwrap());
        assert_ne!(pair, cookie, "the client's id was adopted");
    }
}

#[tokio::test]
async fn load_errors_surface_and_can_be_retried() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    h.store.fail(Op::Load, Fault::Unavailable);
    let lazy = h.start(Some(&cookie));
    assert!(lazy.load().await.unwrap_err().is_unavailable());
    assert!(!lazy.is_loaded());
    h.store.heal();
    assert_eq!(lazy.load().await.unwrap().get::<i32>("a").unwrap(), Some(1));
    // A session that never loaded writes nothing at the end.
    let lazy = h.start(Some(&cookie));
    h.store.fail(Op::Load, Fault::Backend);
    assert!(!lazy.load().await.unwrap_err().is_unavailable());
    assert!(lazy.finish(200).await.header().is_none());
}

#[tokio::test]
async fn an_undecodable_record_is_a_fresh_session() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    h.store.fail(Op::Load, Fault::Decode);
    let s = h.start(Some(&cookie)).load().await.unwrap();
    assert!(s.is_empty());
    assert_eq!(s.id(), None);
}

#[tokio::test]
async fn save_and_create_errors_are_reported_with_their_kind() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    h.store.fail(Op::Save, Fault::Backend);
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().insert("a", 2).unwrap();
    let f = lazy.finish(200).await;
    assert_eq!(
        f.error().unwrap().status(),
        http::StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(f.header().is_none());

    h.store.fail(Op::Create, Fault::Collision);
    let lazy = h.start(None);
    lazy.load().await.unwrap().insert("a", 1).unwrap();
    let f = lazy.finish(200).await;
    assert!(matches!(f.error(), Some(StoreError::IdCollision(n)) if *n == CREATE_ATTEMPTS));
    assert!(f.header().is_none());
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::seconds(secs)
}

#[tokio::test]
async fn throttled_touch_waits_for_its_share_of_the_window() {
    let config = SessionConfig::builder()
        .expiry(Expiry::OnInactivity(Duration::seconds(1000)))
        .touch_policy(TouchPolicy::Throttled { percent: 10 })
        .build()
        .unwrap();
    let h = harness(config);
    let lazy = h.start(None);
    lazy.load_at(at(0)).await.unwrap().insert("a", 1).unwrap();
    let f = lazy.finish_at(200, at(0)).await;
    assert_eq!(max_age(f.header().unwrap()), Some(1000));
    let cookie = cookie_pair(f.header().unwrap());
    h.store.calls();

    // 50 s into a 1000 s window: 5 %, no touch.
    let lazy = h.start(Some(&cookie));
    lazy.load_at(at(50)).await.unwrap();
    assert!(lazy.finish_at(200, at(50)).await.header().is_none());
    assert_eq!(h.store.calls(), vec![Call::Load]);

    // 150 s in: 15 %, touch, and the cookie's Max-Age is refreshed with it.
    let lazy = h.start(Some(&cookie));
    lazy.load_at(at(150)).await.unwrap();
    let f = lazy.finish_at(200, at(150)).await;
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Touch]);
    assert_eq!(max_age(f.header().unwrap()), Some(1000));
    let rec = h
        .store
        .inner
        .load(&cookie[3..].parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let expected = at(1150);
    assert!((rec.expires_at - expected).abs() < Duration::seconds(2));
}

#[tokio::test]
async fn a_save_sends_the_cookie_again_only_when_it_carries_max_age() {
    let config = SessionConfig::builder()
        .expiry(Expiry::OnInactivity(Duration::seconds(1000)))
        .build()
        .unwrap();
    let h = harness(config);
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().insert("a", 2).unwrap();
    let f = lazy.finish(200).await;
    // Max-Age counts from now: the browser must hear it again.
    assert_eq!(max_age(f.header().unwrap()), Some(1000));
    assert_eq!(cookie_pair(f.header().unwrap()), cookie);
}

#[tokio::test]
async fn every_request_and_state_change_policies() {
    let e = Expiry::OnInactivity(Duration::minutes(30));
    let every = SessionConfig::builder()
        .expiry(e)
        .touch_policy(TouchPolicy::OnEveryRequest);
    let h = harness(every.build().unwrap());
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap();
    let f = lazy.finish(200).await;
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Touch]);
    assert_eq!(max_age(f.header().unwrap()), Some(1800));

    let never = SessionConfig::builder()
        .expiry(e)
        .touch_policy(TouchPolicy::OnStateChanges);
    let h = harness(never.build().unwrap());
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    lazy.load_at(at(1000)).await.unwrap();
    assert!(lazy.finish_at(200, at(1000)).await.header().is_none());
    assert_eq!(h.store.calls(), vec![Call::Load]);
}

#[tokio::test]
async fn a_fixed_end_is_never_touched() {
    let end = OffsetDateTime::now_utc() + Duration::hours(1);
    let config = SessionConfig::builder()
        .expiry(Expiry::AtDateTime(end))
        .touch_policy(TouchPolicy::OnEveryRequest)
        .build()
        .unwrap();
    let h = harness(config);
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    lazy.load_at(at(600)).await.unwrap();
    assert!(lazy.finish_at(200, at(600)).await.header().is_none());
    assert_eq!(h.store.calls(), vec![Call::Load]);
}

#[tokio::test]
async fn a_browser_session_touch_refreshes_the_store_but_sends_no_cookie() {
    let config = SessionConfig::builder()
        .touch_policy(TouchPolicy::OnEveryRequest)
        .build()
        .unwrap();
    let h = harness(config);
    let lazy = h.start(None);
    lazy.load().await.unwrap().insert("a", 1).unwrap();
    let f = lazy.finish(200).await;
    assert_eq!(
        max_age(f.header().unwrap()),
        None,
        "a browser-session cookie"
    );
    let cookie = cookie_pair(f.header().unwrap());
    h.store.calls();
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap();
    assert!(lazy.finish(200).await.header().is_none());
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Touch]);
}

#[tokio::test]
async fn set_expiry_is_stored_with_the_session() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    assert_eq!(s.expiry(), Expiry::OnSessionEnd);
    let month = Expiry::OnInactivity(Duration::days(30));
    s.set_expiry(Some(month));
    assert_eq!(s.status(), Status::Changed);
    let f = lazy.finish(200).await;
    assert_eq!(max_age(f.header().unwrap()), Some(30 * 86_400));
    assert_eq!(
        h.store.calls(),
        vec![
            Call::Load,
            Call::Save {
                keys: vec![],
                cleared: false
            }
        ]
    );
    // The next request sees the session's own expiry, not the configured one.
    let s = h.start(Some(&cookie)).load().await.unwrap();
    assert_eq!(s.expiry(), month);
    let days = (s.expiry_date() - OffsetDateTime::now_utc()).whole_days();
    assert!((29..=30).contains(&days));
}

/// "Remember me" switched off: the persistent cookie the browser holds must be replaced
/// by a browser-session one, so the cookie is sent although it has no `Max-Age`.
#[tokio::test]
async fn switching_back_to_a_browser_session_sends_the_cookie() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    s.set_expiry(Some(Expiry::OnInactivity(Duration::days(30))));
    assert_eq!(
        max_age(lazy.finish(200).await.header().unwrap()),
        Some(30 * 86_400)
    );

    let lazy = h.start(Some(&cookie));
    lazy.load()
        .await
        .unwrap()
        .set_expiry(Some(Expiry::OnSessionEnd));
    let f = lazy.finish(200).await;
    let header = f.header().expect("the cookie is replaced");
    assert_eq!(cookie_pair(header), cookie, "same id");
    assert_eq!(max_age(header), None, "a browser-session cookie");

    // Nothing changed after that: nothing to send.
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().insert("b", 2).unwrap();
    assert!(lazy.finish(200).await.header().is_none());
}

#[tokio::test]
async fn an_expiry_already_over_ends_the_session() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&cookie));
    let s = lazy.load().await.unwrap();
    s.set_expiry(Some(Expiry::AtDateTime(
        OffsetDateTime::now_utc() - Duration::SECOND,
    )));
    let f = lazy.finish(200).await;
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Delete]);
    assert_eq!(max_age(f.header().unwrap()), Some(0));
}

#[tokio::test]
async fn a_cookie_under_a_rotated_out_key_is_reissued_with_the_current_key() {
    let (old, new) = (Key::generate(), Key::generate());
    let before = harness(
        SessionConfig::builder()
            .signed(old.clone())
            .build()
            .unwrap(),
    );
    let cookie = before.new_session("a", json!(1)).await;

    let config = SessionConfig::builder()
        .signed(new)
        .old_keys([old])
        .build()
        .unwrap();
    let after = SessionEngine::new(before.store.clone(), config);
    let lazy = after.start([cookie.as_bytes()]);
    assert_eq!(lazy.load().await.unwrap().get::<i32>("a").unwrap(), Some(1));
    let f = lazy.finish(200).await;
    let reissued = cookie_pair(f.header().expect("re-issued"));
    assert_ne!(reissued, cookie);
    assert_eq!(
        before.store.calls(),
        vec![Call::Load],
        "no store write to re-issue"
    );
    // The re-issued cookie verifies with the current key alone.
    let current_only = SessionEngine::new(
        before.store.clone(),
        SessionConfigBuilder::from(after.config())
            .old_keys([])
            .build()
            .unwrap(),
    );
    let s = current_only
        .start([reissued.as_bytes()])
        .load()
        .await
        .unwrap();
    assert_eq!(s.get::<i32>("a").unwrap(), Some(1));
    // A request that changes the session under the old key is re-issued as well.
    let lazy = after.start([cookie.as_bytes()]);
    lazy.load().await.unwrap().insert("a", 2).unwrap();
    let f = lazy.finish(200).await;
    assert_eq!(cookie_pair(f.header().expect("re-issued")), reissued);
    // ...and a cookie under the current key is not re-issued again.
    let lazy = after.start([reissued.as_bytes()]);
    lazy.load().await.unwrap();
    assert!(lazy.finish(200).await.header().is_none());
}

#[tokio::test]
async fn header_mode_issues_and_forgets_through_the_header() {
    let h = harness(
        SessionConfig::builder()
            .id_header("x-session-id")
            .build()
            .unwrap(),
    );
    let lazy = h.start(None);
    lazy.load().await.unwrap().insert("a", 1).unwrap();
    let f = lazy.finish(200).await;
    let value = f.header().unwrap().to_owned();
    let id: Id = value.parse().expect("the bare id, no cookie attributes");
    let lazy = h.start(Some(&value));
    let s = lazy.load().await.unwrap();
    assert_eq!(s.id(), Some(id));
    s.flush();
    assert_eq!(lazy.finish(200).await.header(), Some(""));
}

#[tokio::test]
async fn concurrent_requests_changing_different_keys_all_survive() {
    let h = default_harness();
    let cookie = h.new_session("start", json!(0)).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let engine = h.engine.clone();
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(async move {
            let lazy = engine.start([cookie.as_bytes()]);
            lazy.load()
                .await
                .unwrap()
                .insert(&format!("k{i}"), i)
                .unwrap();
            tokio::task::yield_now().await;
            assert!(lazy.finish(200).await.error().is_none());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = h.start(Some(&cookie)).load().await.unwrap();
    assert_eq!(s.len(), 51);
    for i in 0..50 {
        assert_eq!(s.get::<i32>(&format!("k{i}")).unwrap(), Some(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_under_many_concurrent_tasks_loses_nothing() {
    let store = MemoryStore::default();
    let ttl = Ttl::from_secs(3600).unwrap();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..1_000 {
                let mut r = Record {
                    id: Id::random(),
                    data: [("v".to_string(), json!([t, i]))].into_iter().collect(),
                    expiry: None,
                    expires_at: OffsetDateTime::now_utc() + Duration::HOUR,
                };
                store.create(&mut r, ttl).await.unwrap();
                ids.push((r.id, json!([t, i])));
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(store.len(), 32_000);
    for (id, v) in all {
        let r = store.load(&id).await.unwrap().expect("no lost record");
        assert_eq!(r.data["v"], v, "no overwrite");
    }
}

#[tokio::test]
async fn tower_sessions_stores_serve_behind_the_engine() {
    let tower = tower_sessions_memory_store::MemoryStore::default();
    let engine = SessionEngine::new(TowerStore::new(tower.clone()), SessionConfig::default());
    let lazy = engine.start(std::iter::empty());
    let s = lazy.load().await.unwrap();
    s.insert("user", "ada").unwrap();
    s.set_expiry(Some(Expiry::OnInactivity(Duration::days(30))));
    let f = lazy.finish(200).await;
    assert_eq!(max_age(f.header().unwrap()), Some(30 * 86_400));
    let pair = cookie_pair(f.header().unwrap());

    // The tower store holds a plain tower-sessions record under the same id.
    let id: Id = pair[3..].parse().unwrap();
    let raw = tower_sessions_core::SessionStore::load(&tower, &id.into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.data["user"], json!("ada"));
    assert!(raw.data.contains_key(EXPIRY_KEY));

    let lazy = engine.start([pair.as_bytes()]);
    let s = lazy.load().await.unwrap();
    assert_eq!(
        s.keys(),
        vec!["user".to_string()],
        "the expiry key is not user data"
    );
    assert_eq!(s.expiry(), Expiry::OnInactivity(Duration::days(30)));
    s.insert("cart", 3).unwrap();
    let _ = lazy.finish(200).await;

    let lazy = engine.start([pair.as_bytes()]);
    lazy.load().await.unwrap().flush();
    let f = lazy.finish(200).await;
    assert_eq!(max_age(f.header().unwrap()), Some(0));
    assert!(tower_sessions_core::SessionStore::load(&tower, &id.into())
        .await
        .unwrap()
        .is_none());

    // A save after the record vanished does not bring it back.
    let lazy = engine.start(std::iter::empty());
    lazy.load().await.unwrap().insert("a", 1).unwrap();
    let pair = cookie_pair(lazy.finish(200).await.header().unwrap());
    let slow = engine.start([pair.as_bytes()]);
    slow.load().await.unwrap().insert("b", 2).unwrap();
    let id: Id = pair[3..].parse().unwrap();
    tower_sessions_core::SessionStore::delete(&tower, &id.into())
        .await
        .unwrap();
    let _ = slow.finish(200).await;
    assert!(tower_sessions_core::SessionStore::load(&tower, &id.into())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn bad_ids_are_counted_as_a_brute_force_signal() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;
    let unknown = format!("id={}", Id::random().encode().as_str());
    for c in ["id=forged", "id=", "id=x; id=y"] {
        h.start(Some(c));
    }
    h.start(Some("theme=dark")); // no id at all: not counted
    for _ in 0..2 {
        h.start(Some(&unknown)).load().await.unwrap();
    }
    h.start(Some(&unknown)); // never loaded: not known to be unknown
    h.start(Some(&cookie)).load().await.unwrap(); // a good id
    let m = h.engine.metrics();
    assert_eq!(m.rejected_ids, 3);
    assert_eq!(m.unknown_ids, 2);
}

#[tokio::test]
async fn a_logout_needs_no_store_read() {
    let h = default_harness();
    let cookie = h.new_session("user", json!("ada")).await;
    let lazy = h.start(Some(&cookie));
    assert!(lazy.is_untouched());
    lazy.flush();
    assert!(!lazy.is_untouched());
    let f = lazy.finish(200).await;
    assert_eq!(h.store.calls(), vec![Call::Delete], "no load, one delete");
    assert_eq!(max_age(f.header().unwrap()), Some(0));
    assert!(h.store.inner.is_empty());

    // With the store down the failure is reported and the cookie still removed.
    let cookie = h.new_session("user", json!("ada")).await;
    h.store.fail(Op::Load, Fault::Unavailable);
    h.store.fail(Op::Delete, Fault::Unavailable);
    let lazy = h.start(Some(&cookie));
    lazy.flush();
    let f = lazy.finish(200).await;
    assert!(f.error().unwrap().is_unavailable());
    assert_eq!(max_age(f.header().unwrap()), Some(0));
    assert_eq!(h.store.calls(), vec![Call::Delete], "still no load");
    h.store.heal();

    // Without a cookie there is nothing to do; a load after the flush reads nothing.
    let lazy = h.start(None);
    lazy.flush();
    assert!(lazy.finish(200).await.header().is_none());
    let lazy = h.start(Some(&cookie));
    lazy.flush();
    let s = lazy.load().await.unwrap();
    assert!(s.is_empty());
    assert_eq!(s.status(), Status::Purged);
    let _ = lazy.finish(200).await;
    assert_eq!(h.store.calls(), vec![Call::Delete]);
    assert!(h.store.inner.is_empty());
}

#[tokio::test]
async fn limits_refuse_inserts_and_leave_the_session_as_it_was() {
    let h = harness(
        SessionConfig::builder()
            .max_keys(3)
            .max_bytes(40)
            .build()
            .unwrap(),
    );
    let pair = h.new_session("a", json!(1)).await;
    let lazy = h.start(Some(&pair));
    let s = lazy.load().await.unwrap();
    s.insert("b", 2).unwrap();
    s.insert("c", 3).unwrap();
    let err = s.insert("d", 4).unwrap_err();
    assert!(
        matches!(err, Error::Limit { ref key, what: "keys", limit: 3 } if key == "d"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "session value for key \"d\" would take the session past its limit of 3 keys"
    );
    // Replacing a value is not a new key; its bytes count instead of the old ones.
    s.insert("c", "x".repeat(20)).unwrap();
    let err = s.insert("c", "x".repeat(40)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                what: "bytes",
                limit: 40,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        s.get::<String>("c").unwrap(),
        Some("x".repeat(20)),
        "unchanged"
    );
    let err = s
        .update("c", |v: &mut String| v.push_str(&"y".repeat(30)))
        .unwrap_err();
    assert!(matches!(err, Error::Limit { what: "bytes", .. }), "{err:?}");
    // Removing frees room; clearing frees it all.
    s.remove_value("c");
    s.insert("d", 4).unwrap();
    s.clear();
    for k in ["p", "q", "r"] {
        s.insert(k, 0).unwrap();
    }
    assert_eq!(s.len(), 3);
    let f = lazy.finish(200).await;
    assert!(f.error().is_none());
}

#[test]
fn zero_limits_are_configuration_errors() {
    let keys = SessionConfig::builder().max_keys(0).build().unwrap_err();
    assert!(matches!(keys, ConfigError::ZeroLimit("key")), "{keys:?}");
    let bytes = SessionConfig::builder().max_bytes(0).build().unwrap_err();
    assert!(matches!(bytes, ConfigError::ZeroLimit("byte")), "{bytes:?}");
    assert_eq!(SessionConfig::default().limits(), Limits::default());
    assert_eq!(Limits::default().max_keys, 10_000);
}

#[tokio::test]
async fn debug_output_never_shows_a_full_id_or_a_value() {
    let h = default_harness();
    let lazy = h.start(None);
    let s = lazy.load().await.unwrap();
    s.insert("secret", "hunter2").unwrap();
    let f = lazy.finish(200).await;
    let pair = cookie_pair(f.header().unwrap());
    let full_id = pair.split_once('=').unwrap().1.to_owned();
    let id: Id = full_id.parse().unwrap();
    let record = h.store.inner.load(&id).await.unwrap().unwrap();
    let change = Changes::new(false, ["secret"]);
    let ops: Vec<Change<'_>> = change.ops(&record.data).collect();
    let lazy = h.start(Some(&pair));
    let loaded = lazy.load().await.unwrap();
    for text in [
        format!("{f:?}"),
        format!("{record:?}"),
        format!("{ops:?}"),
        format!("{lazy:?}"),
        format!("{loaded:?}"),
    ] {
        assert!(!text.contains(&full_id), "a full id in {text}");
        assert!(!text.contains("hunter2"), "a value in {text}");
    }
    assert!(format!("{record:?}").contains("secret"), "keys are shown");
}

#[tokio::test]
async fn reserved_keys_and_values_too_deep_are_refused() {
    let h = default_harness();
    let lazy = h.start(None);
    let s = lazy.load().await.unwrap();
    let err = s.insert(EXPIRY_KEY, 1).unwrap_err();
    assert!(matches!(err, Error::ReservedKey { .. }), "{err:?}");
    let deep: serde_json::Value =
        serde_json::from_str(&("[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1))).unwrap();
    let err = s.insert_value("deep", deep).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooDeep {
                limit: MAX_DEPTH,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(s.is_empty(), "nothing was stored");
    let ok: serde_json::Value =
        serde_json::from_str(&("[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH))).unwrap();
    s.insert_value("deep", ok.clone()).unwrap();
    let f = lazy.finish(200).await;
    let pair = cookie_pair(f.header().unwrap());
    let back = h.start(Some(&pair)).load().await.unwrap();
    assert_eq!(
        back.get_value("deep"),
        Some(ok),
        "the deepest accepted value reads back"
    );
}

#[tokio::test]
async fn a_planted_cookie_does_not_hide_the_users_session() {
    let h = default_harness();
    let real = h.new_session("user", json!("ada")).await;
    let planted = format!("id={}", Id::random().encode().as_str());
    // The planted, unknown id comes first: it costs a read, then the real one loads.
    let header = format!("{planted}; {real}");
    let s = h.start(Some(&header)).load().await.unwrap();
    assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    assert_eq!(h.store.calls(), vec![Call::Load, Call::Load]);
    assert_eq!(h.engine.metrics().unknown_ids, 0, "one id was live");

    // A logout without a read deletes every presented id, the real one included.
    let lazy = h.start(Some(&header));
    lazy.flush();
    let f = lazy.finish(200).await;
    assert_eq!(max_age(f.header().unwrap()), Some(0));
    assert_eq!(h.store.calls(), vec![Call::Delete, Call::Delete]);
    assert!(h.start(Some(&real)).load().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_deferred_start_reads_ids_only_when_identified_and_only_once() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;

    // Never identified (the session unused): nothing read, nothing counted, nothing sent.
    let lazy = h.engine.start_deferred();
    assert!(lazy.finish(200).await.header().is_none());
    let lazy = h.engine.start_deferred();
    drop(lazy);
    assert_eq!(h.engine.metrics(), Metrics::default());

    // Identified by the first extractor; a second `identify` changes nothing.
    let lazy = h.engine.start_deferred();
    lazy.identify([cookie.as_bytes()]);
    lazy.identify(["id=forged".as_bytes()]);
    assert_eq!(lazy.load().await.unwrap().get::<i32>("a").unwrap(), Some(1));
    assert_eq!(h.engine.metrics(), Metrics::default());

    // A rejected id counts once, when identified.
    let lazy = h.engine.start_deferred();
    lazy.identify(["id=forged".as_bytes()]);
    lazy.identify([cookie.as_bytes()]);
    assert!(lazy.load().await.unwrap().is_empty());
    assert_eq!(h.engine.metrics().rejected_ids, 1);

    // A logout without a read deletes the identified session.
    let lazy = h.engine.start_deferred();
    lazy.identify([cookie.as_bytes()]);
    lazy.flush();
    assert_eq!(max_age(lazy.finish(200).await.header().unwrap()), Some(0));
    let lazy = h.start(Some(&cookie));
    assert!(lazy.load().await.unwrap().is_empty());
}

fn ready(f: Finish) -> Finished {
    match f {
        Finish::Ready(done) => done,
        Finish::Store(call) => panic!("a store call is due: {call:?}"),
    }
}

fn store(f: Finish) -> StoreCall {
    match f {
        Finish::Store(call) => call,
        Finish::Ready(done) => panic!("no store call is due: {done:?}"),
    }
}

#[tokio::test]
async fn try_finish_ends_at_once_without_a_store_call_and_hands_back_the_rest() {
    let h = default_harness();
    let cookie = h.new_session("a", json!(1)).await;

    // Read only: over at once, nothing to send, and no store call but the load.
    let lazy = h.start(Some(&cookie));
    assert_eq!(lazy.load().await.unwrap().get::<i32>("a").unwrap(), Some(1));
    let done = ready(lazy.try_finish(200));
    assert!(done.header().is_none() && done.error().is_none());
    assert_eq!(h.store.calls(), vec![Call::Load]);
    assert!(lazy.abandoned().is_none(), "finished");

    // A write: decided by try_finish, carried out once by finish.
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().insert("a", 2).unwrap();
    let call = store(lazy.try_finish(200));
    assert_eq!(h.store.calls(), vec![Call::Load], "nothing written yet");
    let done = call.run().await;
    assert!(done.error().is_none());
    assert_eq!(
        h.store.calls(),
        vec![Call::Save {
            keys: vec!["a".into()],
            cleared: false
        }]
    );
    let lazy = h.start(Some(&cookie));
    assert_eq!(lazy.load().await.unwrap().get::<i32>("a").unwrap(), Some(2));
    let _ = ready(lazy.try_finish(200));

    // A logout without a read needs the store: deferred, then done.
    let lazy = h.start(Some(&cookie));
    lazy.flush();
    let call = store(lazy.try_finish(200));
    assert!(
        lazy.abandoned().is_some(),
        "not finished until the call ran"
    );
    assert_eq!(max_age(call.run().await.header().unwrap()), Some(0));
    assert!(lazy.abandoned().is_none());
    assert!(h.start(Some(&cookie)).load().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_store_call_future_fits_the_allocators_fast_size_classes() {
    // Adapters box it (axum); glibc serves allocations up to 1 032 bytes from its
    // per-thread cache, and larger ones through a path that costs about 300
    // instructions more per request (measured with bench/count.py).
    let h = default_harness();
    for flush in [false, true] {
        let lazy = h.start(None);
        let session = lazy.load().await.unwrap();
        session.insert("a", 1).unwrap();
        if flush {
            session.flush();
        }
        let run = store(lazy.try_finish(200)).run();
        assert!(
            std::mem::size_of_val(&run) <= 1000,
            "{} bytes",
            std::mem::size_of_val(&run)
        );
        assert!(run.await.error().is_none());
    }
}

/// One script of requests, as a transcript of what each request ended with: the engine
/// calls a `MemoryStore` through its `NowStore` (no boxed future, no copy of the
/// values), and the transcript must match that of the same store behind its futures.
async fn memory_script(engine: &SessionEngine, store: &MemoryStore) -> Vec<String> {
    let mut out = Vec::new();
    let seen = |f: &Finished| match (f.header(), f.error()) {
        (_, Some(e)) => format!("error unavailable={}", e.is_unavailable()),
        (None, None) => "nothing".to_owned(),
        (Some(h), None) => match max_age(h) {
            Some(0) => "removal".to_owned(),
            age => format!("cookie max-age={age:?}"),
        },
    };
    // A new session.
    let lazy = engine.start(std::iter::empty());
    let s = lazy.load().await.unwrap();
    s.insert("n", 1).unwrap();
    s.insert("gone", true).unwrap();
    let f = lazy.finish(200).await;
    out.push(seen(&f));
    let pair = cookie_pair(f.header().unwrap());
    let id: Id = pair.strip_prefix("id=").unwrap().parse().unwrap();
    out.push(format!(
        "created, live: {}",
        store.load_at(&id, now()).is_some()
    ));

    // A change and a removal: saved, other keys kept, nothing to send again.
    let lazy = engine.start([pair.as_bytes()]);
    let s = lazy.load().await.unwrap();
    s.insert("n", 2).unwrap();
    s.remove_value("gone");
    out.push(seen(&lazy.finish(200).await));
    let stored = store.load_at(&id, now()).unwrap();
    out.push(format!("saved: {:?}", stored.data.get("n")));
    out.push(format!("removed: {}", !stored.data.contains_key("gone")));

    // Read only: touched (every request, in this configuration), nothing else written.
    let before = stored.expires_at;
    let lazy = engine.start([pair.as_bytes()]);
    assert_eq!(lazy.load().await.unwrap().get::<i32>("n").unwrap(), Some(2));
    out.push(seen(&lazy.finish(200).await));
    let touched = store.load_at(&id, now()).unwrap();
    out.push(format!("touched: {}", touched.expires_at > before));

    // Logged out elsewhere while this request ran: its change brings nothing back.
    let lazy = engine.start([pair.as_bytes()]);
    let s = lazy.load().await.unwrap();
    SessionStore::delete(store, &id).await.unwrap();
    s.insert("n", 3).unwrap();
    out.push(seen(&lazy.finish(200).await));
    out.push(format!(
        "resurrected: {}",
        store.load_at(&id, now()).is_some()
    ));

    // A full store refuses a new session, as unavailable.
    let lazy = engine.start(std::iter::empty());
    lazy.load().await.unwrap().insert("n", 1).unwrap();
    let first = seen(&lazy.finish(200).await);
    let lazy = engine.start(std::iter::empty());
    lazy.load().await.unwrap().insert("n", 1).unwrap();
    out.push(format!("{first}; then {}", seen(&lazy.finish(200).await)));
    out
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[tokio::test]
async fn a_now_store_ends_requests_as_its_futures_do() {
    let config = || {
        SessionConfig::builder()
            .touch_policy(TouchPolicy::OnEveryRequest)
            .expiry(Expiry::OnInactivity(Duration::hours(1)))
            .build()
            .unwrap()
    };
    // Room for one session at a time: the script's first is deleted before the last two.
    let direct = MemoryStore::with_max_sessions(1);
    let engine = SessionEngine::new(direct.clone(), config());
    let called = memory_script(&engine, &direct).await;

    let inner = MemoryStore::with_max_sessions(1);
    let recorder = Recorder {
        inner: inner.clone(),
        ..Recorder::default()
    };
    let engine = SessionEngine::new(recorder.clone(), config());
    let through_calls = memory_script(&engine, &inner).await;
    assert!(
        recorder.calls().contains(&Call::Touch),
        "the second engine went through store calls"
    );
    let shared = Arc::new(MemoryStore::with_max_sessions(1));
    let engine = SessionEngine::new(shared.clone(), config());
    assert_eq!(
        memory_script(&engine, &shared).await,
        called,
        "through an Arc"
    );

    assert_eq!(called, through_calls);
    assert_eq!(
        called,
        [
            "cookie max-age=Some(3600)",
            "created, live: true",
            "cookie max-age=Some(3600)",
            "saved: Some(Number(2))",
            "removed: true",
            "cookie max-age=Some(3600)",
            "touched: true",
            "removal",
            "resurrected: false",
            "cookie max-age=Some(3600); then error unavailable=true",
        ]
    );
}

fn memory_harness() -> (MemoryStore, SessionEngine) {
    let store = MemoryStore::default();
    let engine = SessionEngine::new(store.clone(), SessionConfig::default());
    (store, engine)
}

/// One request on `engine` with `cookie`, running `f` on its session; returns the
/// `Set-Cookie` pair, if any.
async fn request(
    engine: &SessionEngine,
    cookie: Option<&str>,
    f: impl FnOnce(&Session),
) -> Option<String> {
    let lazy = engine.start(cookie.map(str::as_bytes));
    f(&lazy.load().await.unwrap());
    let done = lazy.finish(200).await;
    assert!(done.error().is_none());
    done.header().map(cookie_pair)
}

#[tokio::test]
async fn the_user_binding_stays_out_of_the_values() {
    let (_, engine) = memory_harness();
    let pair = request(&engine, None, |s| {
        s.insert("cart", 1).unwrap();
        s.set_user("42").unwrap();
        s.set_label("Firefox").unwrap();
    })
    .await
    .unwrap();
    let lazy = engine.start(Some(pair.as_bytes()));
    let s = lazy.load().await.unwrap();
    assert_eq!(s.user().as_deref(), Some("42"), "kept with the record");
    assert_eq!(s.keys(), vec!["cart".to_string()]);
    assert_eq!((s.len(), s.is_empty()), (1, false));
    assert!(!s.contains_key(USER_KEY));
    assert_eq!(s.get_value(USER_KEY), None);
    assert_eq!(s.get::<serde_json::Value>(USER_KEY).unwrap(), None);
    assert_eq!(s.remove_value(USER_KEY), None, "not removable as a value");
    let err = s.insert(USER_KEY, "mallory").unwrap_err();
    assert!(matches!(err, Error::ReservedKey { .. }), "{err:?}");
    assert!(!format!("{s:?}").contains(USER_KEY), "{s:?}");
    // Binding to the same user again changes nothing.
    s.set_user("42").unwrap();
    s.set_label("Firefox").unwrap();
    assert_eq!(s.status(), Status::Unchanged);
    assert_eq!(s.user().as_deref(), Some("42"));
    // Refused bindings leave the session as it was.
    for bad in [String::new(), "x".repeat(user::MAX_USER_LEN + 1)] {
        assert!(matches!(s.set_user(bad), Err(Error::User(_))));
    }
    assert!(matches!(s.set_label(""), Err(Error::User(_))));
    assert!(matches!(
        s.set_label("l".repeat(user::MAX_LABEL_LEN + 1)),
        Err(Error::User(_))
    ));
    assert_eq!(s.status(), Status::Unchanged);
    // A session bound only to its user is not empty to the engine: it is kept.
    s.remove_value("cart");
    assert!(s.is_empty());
    drop(s);
    let done = lazy.finish(200).await;
    assert!(
        done.header().is_none(),
        "the session stays: {:?}",
        done.header()
    );
    let again = engine.start(Some(pair.as_bytes())).load().await.unwrap();
    assert_eq!(again.user().as_deref(), Some("42"));
}

#[tokio::test]
async fn a_label_needs_a_user() {
    let (_, engine) = memory_harness();
    let s = engine.start(None).load().await.unwrap();
    assert!(matches!(s.set_label("Phone"), Err(Error::User(_))));
    assert!(s.is_empty() && s.user().is_none());
}

#[tokio::test]
async fn the_binding_survives_cycle_id_and_ends_with_clear_and_flush() {
    let (store, engine) = memory_harness();
    let pair = request(&engine, None, |s| s.insert("cart", 1).unwrap())
        .await
        .unwrap();
    let login = request(&engine, Some(&pair), |s| {
        s.cycle_id();
        s.set_user("ada").unwrap();
    })
    .await
    .unwrap();
    assert_ne!(login, pair);
    let id = |pair: &str| pair.split_once('=').unwrap().1.parse::<Id>().unwrap();
    let listed = store.user_sessions("ada", None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].short_id, id(&login).encode().as_str()[..6]);
    // Another login on the bound session moves the listing with it.
    let moved = request(&engine, Some(&login), |s| s.cycle_id())
        .await
        .unwrap();
    let listed = store.user_sessions("ada", Some(&id(&moved))).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].current);
    assert_eq!(listed[0].short_id, id(&moved).encode().as_str()[..6]);
    // clear removes the binding with the values.
    request(&engine, Some(&moved), |s| {
        s.clear();
        s.insert("theme", "dark").unwrap();
    })
    .await;
    assert!(store.user_sessions("ada", None).await.unwrap().is_empty());
    let s = engine.start(Some(moved.as_bytes())).load().await.unwrap();
    assert_eq!((s.user(), s.keys()), (None, vec!["theme".to_string()]));
    // flush removes the session and with it the listing.
    let bound = request(&engine, None, |s| s.set_user("bob").unwrap())
        .await
        .unwrap();
    assert_eq!(store.user_sessions("bob", None).await.unwrap().len(), 1);
    request(&engine, Some(&bound), |s| s.flush()).await;
    assert!(store.user_sessions("bob", None).await.unwrap().is_empty());
}

#[tokio::test]
async fn user_sessions_through_the_handle() {
    let (store, engine) = memory_harness();
    let bind = |label: &'static str| {
        move |s: &Session| {
            s.set_user("ada").unwrap();
            s.set_label(label).unwrap();
        }
    };
    let a = request(&engine, None, bind("a")).await.unwrap();
    let b = request(&engine, None, bind("b")).await.unwrap();
    let c = request(&engine, None, bind("c")).await.unwrap();
    let lazy = engine.start(Some(a.as_bytes()));
    let s = lazy.load().await.unwrap();
    let list = s.user_sessions().await.unwrap();
    let labels: Vec<_> = list.iter().map(|i| i.label.clone().unwrap()).collect();
    assert_eq!(labels[0], "a", "the current one first: {labels:?}");
    assert!(list[0].current && !list[1].current && !list[2].current);
    assert_eq!(s.end_other_sessions().await.unwrap(), 2);
    assert_eq!(s.user_sessions().await.unwrap().len(), 1);
    assert_eq!(
        s.status(),
        Status::Unchanged,
        "this session is left as it is"
    );
    drop(s);
    assert!(lazy.finish(200).await.header().is_none());
    for gone in [&b, &c] {
        let s = engine.start(Some(gone.as_bytes())).load().await.unwrap();
        assert_eq!(s.user(), None, "ended");
    }
    let lazy = engine.start(Some(a.as_bytes()));
    let s = lazy.load().await.unwrap();
    assert_eq!(s.end_all_sessions().await.unwrap(), 1);
    assert_eq!(s.status(), Status::Purged);
    drop(s);
    let done = lazy.finish(200).await;
    assert_eq!(
        max_age(done.header().unwrap()),
        Some(0),
        "the cookie is removed"
    );
    assert_eq!(store.len(), 0);
    // No user: nothing to list or end, and no store call.
    let s = engine.start(None).load().await.unwrap();
    assert!(s.user_sessions().await.unwrap().is_empty());
    assert_eq!(s.end_other_sessions().await.unwrap(), 0);
}

#[tokio::test]
async fn a_store_without_an_index_says_so() {
    let h = default_harness(); // a store that keeps the default methods
    let pair = h.new_session("n", json!(1)).await;
    let lazy = h.start(Some(&pair));
    let s = lazy.load().await.unwrap();
    s.set_user("ada").unwrap();
    drop(s);
    assert!(lazy.finish(200).await.error().is_none());
    let s = h.start(Some(&pair)).load().await.unwrap();
    assert_eq!(
        s.user().as_deref(),
        Some("ada"),
        "the binding is kept all the same"
    );
    let err = s.user_sessions().await.unwrap_err();
    assert!(matches!(err, StoreError::Unsupported(_)), "{err:?}");
    let err = s.end_all_sessions().await.unwrap_err();
    assert!(matches!(err, StoreError::Unsupported(_)), "{err:?}");
    assert_eq!(
        s.status(),
        Status::Unchanged,
        "not flushed when the store failed"
    );
}

/// A session loaded from `MemoryStore` keeps its record's body and parses values only as
/// a request needs them: every accessor sees the stored values all the same, and a
/// request that writes without touching them (a new expiry, a new id, a label) keeps
/// them.
#[tokio::test]
async fn values_loaded_from_memory_are_parsed_as_needed_and_never_lost() {
    let (store, engine) = memory_harness();
    let pair = request(&engine, None, |s| {
        s.insert("n", 7).unwrap();
        s.insert("name", "ada").unwrap();
        s.set_user("u1").unwrap();
    })
    .await
    .unwrap();
    let stored = |pair: &str| {
        let id: Id = pair.split_once('=').unwrap().1.parse().unwrap();
        let mut keys: Vec<String> = store
            .load_at(&id, now())
            .map(|r| r.data.into_keys().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    let all = ["__session_user", "n", "name"].map(String::from).to_vec();

    // Reads of single keys, on the unparsed body.
    request(&engine, Some(&pair), |s| {
        assert_eq!(s.get::<u64>("n").unwrap(), Some(7));
        assert_eq!(s.get_value("name"), Some(json!("ada")));
        assert!(s.contains_key("name"));
        assert!(!s.contains_key("missing"));
        assert_eq!(s.get::<u64>("missing").unwrap(), None);
        assert!(s.get::<u64>("name").is_err(), "a string is not a number");
        assert_eq!(s.get_value(USER_KEY), None, "the binding stays hidden");
    })
    .await;
    // Every other reader parses the values first.
    request(&engine, Some(&pair), |s| {
        assert_eq!(s.len(), 2);
        let mut keys = s.keys();
        keys.sort();
        assert_eq!(keys, ["n", "name"]);
        assert_eq!(s.user().as_deref(), Some("u1"));
        assert!(format!("{s:?}").contains("\"name\""));
    })
    .await;
    // A new expiry alone: the values are written back, not taken for an emptied session.
    let after = request(&engine, Some(&pair), |s| {
        s.set_expiry(Some(Expiry::OnInactivity(Duration::minutes(5))));
    })
    .await;
    assert!(
        after.as_deref().is_none_or(|p| !p.ends_with('=')),
        "the cookie is not removed: {after:?}"
    );
    let pair = after.unwrap_or(pair);
    assert_eq!(stored(&pair), all);
    // A new id alone: the values move with it.
    let cycled = request(&engine, Some(&pair), |s| s.cycle_id())
        .await
        .unwrap();
    assert_ne!(cycled, pair);
    assert_eq!(stored(&cycled), all);
    // A label, then an update and a removal: the other values stay.
    request(&engine, Some(&cycled), |s| s.set_label("phone").unwrap()).await;
    request(&engine, Some(&cycled), |s| {
        assert!(s.update::<u64, _>("n", |n| *n += 1).unwrap());
        assert_eq!(s.remove::<String>("name").unwrap().as_deref(), Some("ada"));
    })
    .await;
    request(&engine, Some(&cycled), |s| {
        assert_eq!(s.get::<u64>("n").unwrap(), Some(8));
        assert_eq!(s.get::<String>("name").unwrap(), None);
        assert_eq!(s.user().as_deref(), Some("u1"));
    })
    .await;
    // Cleared without a read: nothing is left.
    let gone = request(&engine, Some(&cycled), Session::clear).await;
    assert!(gone.is_some(), "the cookie is removed");
    assert!(stored(&cycled).is_empty());
}

/// Writes to a session loaded from `MemoryStore` go over its unparsed body: a request
/// sees its own writes, the loaded keys it did not touch, and not the keys it removed;
/// the limits count the loaded values; and what is stored is the merge.
#[tokio::test]
async fn writes_over_an_unparsed_session_see_and_keep_everything() {
    let store = MemoryStore::default();
    let config = SessionConfig::builder()
        .max_keys(3)
        .max_bytes(64)
        .build()
        .unwrap();
    let engine = SessionEngine::new(store.clone(), config);
    let pair = request(&engine, None, |s| {
        s.insert("a", 1).unwrap();
        s.insert("b", "bee").unwrap();
    })
    .await
    .unwrap();
    request(&engine, Some(&pair), |s| {
        // An equal value changes nothing; a new one returns the loaded one.
        s.insert("a", 1).unwrap();
        assert_eq!(s.status(), Status::Unchanged);
        assert_eq!(s.insert_value("a", json!(2)).unwrap(), Some(json!(1)));
        assert_eq!(s.get::<u64>("a").unwrap(), Some(2), "its own write");
        assert_eq!(s.get::<String>("b").unwrap().as_deref(), Some("bee"));
        // The third key fits, a fourth does not: the loaded ones count.
        s.insert("c", true).unwrap();
        let four = s.insert("d", 0);
        assert!(
            matches!(four, Err(Error::Limit { what: "keys", .. })),
            "{four:?}"
        );
        // A removed loaded key is gone for the rest of the request.
        assert_eq!(s.remove_value("b"), Some(json!("bee")));
        assert_eq!(s.get_value("b"), None);
        assert!(!s.contains_key("b"));
        assert_eq!(s.remove_value("b"), None, "already gone");
        // Bytes: a, c and the new key count together ("a" 1+1, "c" 1+4, "d" 1+2+n).
        let big = "x".repeat(64 - (2 + 5 + 1 + 2) + 1);
        let over = s.insert("d", &big);
        assert!(
            matches!(over, Err(Error::Limit { what: "bytes", .. })),
            "{over:?}"
        );
        s.insert("d", &big[1..]).unwrap();
        assert!(s.update::<u64, _>("a", |n| *n += 1).unwrap());
        let mut keys = s.keys();
        keys.sort();
        assert_eq!(keys, ["a", "c", "d"]);
    })
    .await;
    let id: Id = pair.split_once('=').unwrap().1.parse().unwrap();
    let data = store.load_at(&id, now()).unwrap().data;
    let mut stored: Vec<_> = data.iter().collect();
    stored.sort_by(|x, y| x.0.cmp(y.0));
    let big = "x".repeat(64 - (2 + 5 + 1 + 2));
    assert_eq!(
        stored,
        [
            (&"a".to_owned(), &json!(3)),
            (&"c".to_owned(), &json!(true)),
            (&"d".to_owned(), &json!(big)),
        ]
    );
}

/// After a save, a session handle still held (a task the handler spawned) reads the
/// values as they were stored, not the body it loaded.
#[tokio::test]
async fn a_session_read_after_its_save_sees_what_was_stored() {
    let (_, engine) = memory_harness();
    let pair = request(&engine, None, |s| {
        s.insert("a", 1).unwrap();
        s.insert("b", 2).unwrap();
    })
    .await
    .unwrap();
    let lazy = engine.start(Some(pair.as_bytes()));
    let session = lazy.load().await.unwrap();
    session.insert("a", 10).unwrap();
    session.remove_value("b");
    let done = lazy.finish(200).await;
    assert!(done.error().is_none());
    assert_eq!(session.get::<u64>("a").unwrap(), Some(10));
    assert_eq!(
        session.get_value("b"),
        None,
        "removed, not read from the old body"
    );
    assert_eq!(session.len(), 1);
}

/// A store of its own that serves the engine only through its `NowStore`: its futures
/// fail, so a request that reached them would end in an error.
#[derive(Debug, Default)]
struct NowOnly(MemoryStore);

impl SessionStore for NowOnly {
    async fn load(&self, _: &Id) -> Result<Option<Record>, StoreError> {
        Err(StoreError::Unsupported("load through a future"))
    }
    async fn create(&self, _: &mut Record, _: Ttl) -> Result<(), StoreError> {
        Err(StoreError::Unsupported("create through a future"))
    }
    async fn save(&self, _: &Record, _: &Changes, _: Ttl) -> Result<Update, StoreError> {
        Err(StoreError::Unsupported("save through a future"))
    }
    async fn touch(&self, _: &Id, _: OffsetDateTime, _: Ttl) -> Result<Update, StoreError> {
        Err(StoreError::Unsupported("touch through a future"))
    }
    async fn delete(&self, id: &Id) -> Result<(), StoreError> {
        self.0.delete(id).await
    }
    fn now(&self) -> Option<&dyn store::NowStore> {
        Some(self)
    }
}

impl store::NowStore for NowOnly {
    fn load_now(&self, id: &Id, now: OffsetDateTime) -> Result<Option<store::Loaded>, StoreError> {
        self.0.load_now(id, now)
    }
    fn create_now(
        &self,
        id: &mut Id,
        write: store::Write<'_>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.0.create_now(id, write, now)
    }
    fn save_now(
        &self,
        id: &Id,
        write: store::Write<'_>,
        changes: &Changes,
        now: OffsetDateTime,
    ) -> Result<Option<store::Packed>, StoreError> {
        self.0.save_now(id, write, changes, now)
    }
    fn touch_now(
        &self,
        id: &Id,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Update, StoreError> {
        self.0.touch_now(id, expires_at, now)
    }
}

#[tokio::test]
async fn any_store_with_a_now_store_is_served_without_futures() {
    let config = SessionConfig::builder()
        .touch_policy(TouchPolicy::OnEveryRequest)
        .build()
        .unwrap();
    for shared in [false, true] {
        let engine = if shared {
            SessionEngine::new(Arc::new(NowOnly::default()), config.clone())
        } else {
            SessionEngine::new(NowOnly::default(), config.clone())
        };
        // Created, read, changed and touched, each ending at once.
        let lazy = engine.start(std::iter::empty());
        lazy.load().await.unwrap().insert("n", 1).unwrap();
        let header = ready(lazy.try_finish(200)).header().unwrap().to_owned();
        let pair = cookie_pair(&header);
        let lazy = engine.start([pair.as_bytes()]);
        let session = lazy.load().await.unwrap();
        assert_eq!(session.get::<i32>("n").unwrap(), Some(1));
        session.insert("m", 2).unwrap();
        assert!(ready(lazy.try_finish(200)).error().is_none());
        let lazy = engine.start([pair.as_bytes()]);
        let session = lazy.load().await.unwrap();
        assert_eq!(
            session.get::<i32>("m").unwrap(),
            Some(2),
            "shared: {shared}"
        );
        assert!(ready(lazy.try_finish(200)).error().is_none(), "touched");
        // A logout has no form without waiting: its delete is a future.
        let lazy = engine.start([pair.as_bytes()]);
        lazy.load().await.unwrap().flush();
        let done = store(lazy.try_finish(200)).run().await;
        assert!(done.error().is_none());
        let lazy = engine.start([pair.as_bytes()]);
        assert!(lazy.load().await.unwrap().is_empty(), "logged out");
    }
}
