//! What a request costs and writes: nothing until a handler asks, one read, one write of the changed keys.

use super::*;

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
