//! Deferred identification, logouts without a read, and `try_finish`.

use super::*;

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
