//! The `NowStore` capability: stores served without futures end requests as their futures do.

use super::*;

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

/// A store of its own that serves the engine only through its `NowStore`: its futures
/// fail, so a request that reached them would end in an error.
#[derive(Debug, Default)]
struct NowOnly(MemoryStore);

impl SessionStore for NowOnly {
    async fn load(&self, _: &Id) -> Result<Option<Record>, StoreError> {
        Err(StoreError::Unsupported("load through a future"))
    }
    async fn create(&self, _: &Record, _: Ttl) -> Result<Created, StoreError> {
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
        id: &Id,
        write: store::Write<'_>,
        now: OffsetDateTime,
    ) -> Result<Created, StoreError> {
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
