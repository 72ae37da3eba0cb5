//! Sessions loaded as a packed body: values parsed as needed, never lost.

use super::*;

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
            .map(|r| r.data.into_iter().map(|(k, _)| k).collect())
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
