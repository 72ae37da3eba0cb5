//! Bad input gets a clear outcome: unknown, malformed or planted ids, store errors, undecodable records, refused values and limits, and output that never shows an id.

use super::*;

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

    // Every id taken: the engine tries eight, each a create of its own, then gives up.
    h.store.heal();
    h.store.fail(Op::Create, Fault::Collision);
    let lazy = h.start(None);
    lazy.load().await.unwrap().insert("a", 1).unwrap();
    h.store.calls();
    let f = lazy.finish(200).await;
    assert!(matches!(f.error(), Some(StoreError::IdCollision(8))));
    assert!(f.header().is_none());
    assert_eq!(h.store.calls(), vec![Call::Create; 8]);
}

#[tokio::test]
async fn a_taken_id_is_replaced_by_the_engine_not_the_store() {
    let h = default_harness();
    // A new session whose first two ids are taken: stored under the third.
    h.store.take_next_ids(2);
    let lazy = h.start(None);
    lazy.load().await.unwrap().insert("a", 1).unwrap();
    let f = lazy.finish(200).await;
    assert!(f.error().is_none());
    assert_eq!(h.store.calls(), vec![Call::Create; 3]);
    let cookie = cookie_pair(f.header().unwrap());
    let s = h.start(Some(&cookie)).load().await.unwrap();
    assert_eq!(s.get::<i32>("a").unwrap(), Some(1));

    // A cycle whose first new id is taken moves the session under the second.
    h.store.take_next_ids(1);
    let lazy = h.start(Some(&cookie));
    lazy.load().await.unwrap().cycle_id();
    h.store.calls();
    let f = lazy.finish(200).await;
    assert!(f.error().is_none());
    assert_eq!(
        h.store.calls(),
        vec![Call::Create, Call::Create, Call::Delete]
    );
    let moved = cookie_pair(f.header().unwrap());
    assert_ne!(moved, cookie);
    let s = h.start(Some(&moved)).load().await.unwrap();
    assert_eq!(s.get::<i32>("a").unwrap(), Some(1));
    assert!(h.start(Some(&cookie)).load().await.unwrap().is_empty());
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
