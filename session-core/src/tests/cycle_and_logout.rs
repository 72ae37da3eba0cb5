//! New ids and logouts: the order of their store calls, their failures, server errors and abandoned requests, and why nothing deleted comes back.

use super::*;

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
