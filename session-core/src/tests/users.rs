//! User bindings through the session handle.

use super::*;

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
