//! Expiry and touch: when a session is extended, when its cookie is sent again, and keys rotated out.

use super::*;

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
