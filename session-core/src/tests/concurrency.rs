//! Concurrent requests of one session, and many tasks on one store.

use super::*;

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
                let r = Record {
                    id: Id::random(),
                    data: [("v".to_string(), json!([t, i]))].into_iter().collect(),
                    expiry: None,
                    expires_at: OffsetDateTime::now_utc() + Duration::HOUR,
                };
                store.create(&r, ttl).await.unwrap();
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
