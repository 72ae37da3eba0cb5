//! tower-sessions stores behind the engine.
#![cfg(feature = "tower-sessions")]

use super::*;

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
