//! The HTTP conformance suite on actix-web, with every store available here.

use session_core::{MemoryStore, TowerStore};
use session_tests::{http_suite, Actix, Caps};

http_suite!(
    memory,
    Actix,
    async { MemoryStore::default() },
    Caps::NATIVE
);

// tower-sessions' trait writes whole records: last writer wins.
http_suite!(
    tower_memory,
    Actix,
    async { TowerStore::new(tower_sessions_memory_store::MemoryStore::default()) },
    Caps::WHOLE_RECORD
);

// tower-sessions-core 0.14 stores: tower-sessions-redis-store on a real Redis server when
// REDIS_URL is set (the README's test command starts one), else tower-sessions' 0.14
// memory store. Whole records, like any tower-sessions store.
http_suite!(
    tower_014,
    Actix,
    session_tests::redis::store(),
    Caps::TOWER_REDIS
);

// tower-sessions-sqlx-store (tower-sessions-core 0.14) on a SQLite file.
http_suite!(
    tower_014_sqlite,
    Actix,
    session_tests::sqlite::store(),
    Caps::WHOLE_RECORD
);

// Aerospike through the real client (AEROSPIKE_HOSTS, else the protocol test server).
http_suite!(
    aerospike,
    Actix,
    session_tests::aerospike::Served::default_store(),
    session_tests::aerospike::caps()
);

/// `load_before_routing`: the session is loaded before the app routes the request, so
/// guards can read it; a store that fails that load answers the request itself, opaque,
/// and the handler never runs.
mod load_before_routing {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use actix_web::{guard, web, HttpResponse};
    use session_actix::{Session, SessionExt, SessionMiddleware};
    use session_core::MemoryStore;
    use session_tests::actix_app::serve_actix;
    use session_tests::http_suite::get;
    use session_tests::probe::{Fault, Op, Probe, SECRET};

    #[tokio::test]
    async fn guards_read_the_session_and_a_failed_load_answers_before_the_handler() {
        session_tests::logs::capture();
        let store = Probe::new(MemoryStore::default());
        let handled = Arc::new(AtomicUsize::new(0));
        let server = {
            let (store, handled) = (store.clone(), Arc::clone(&handled));
            serve_actix(move |cfg: &mut web::ServiceConfig| {
                let count = |session: Session| async move {
                    session.update_or("n", 0u64, |n| *n += 1).unwrap();
                    session.get::<u64>("n").unwrap().unwrap_or(0).to_string()
                };
                // A handler that takes no session: only the middleware can stop it.
                let handled = Arc::clone(&handled);
                let plain = move || {
                    handled.fetch_add(1, Ordering::SeqCst);
                    async { "plain" }
                };
                // Only a request whose session already counts reaches this route.
                let counted = guard::fn_guard(|ctx| {
                    let session = ctx.get_session().loaded();
                    session.is_some_and(|s| s.contains_key("n"))
                });
                cfg.service(
                    web::scope("")
                        .wrap(
                            SessionMiddleware::builder(store.clone())
                                .cookie_secure(false)
                                .load_before_routing(true)
                                .build(),
                        )
                        .service(
                            web::resource("/known")
                                .guard(counted)
                                .to(|| async { "known" }),
                        )
                        .route(
                            "/known",
                            web::get().to(|| async { HttpResponse::NotFound().finish() }),
                        )
                        .route("/count", web::get().to(count))
                        .route("/plain", web::get().to(plain)),
                );
            })
            .await
        };

        assert_eq!(get(&server, "/known", None).await.status, 404);
        let first = get(&server, "/count", None).await;
        assert_eq!(first.body, "1");
        let pair = first.cookie_pair();
        let known = get(&server, "/known", Some(&pair)).await;
        assert_eq!((known.status, known.body.as_str()), (200, "known"));
        assert_eq!(get(&server, "/count", Some(&pair)).await.body, "2");
        assert_eq!(get(&server, "/plain", Some(&pair)).await.body, "plain");
        assert_eq!(handled.load(Ordering::SeqCst), 1);

        for (fault, status) in [(Fault::Unavailable, 503), (Fault::Backend, 500)] {
            store.fail(Op::Load, fault);
            for path in ["/count", "/plain"] {
                let r = get(&server, path, Some(&pair)).await;
                assert_eq!(r.status, status, "{fault:?} {path}");
                assert!(
                    !r.body.contains(SECRET),
                    "{fault:?}: the cause stays in the log"
                );
                assert!(r.set_cookies.is_empty(), "{fault:?}: the cookie is kept");
            }
            assert_eq!(
                handled.load(Ordering::SeqCst),
                1,
                "{fault:?}: no handler ran"
            );
            store.heal();
        }
        assert_eq!(get(&server, "/count", Some(&pair)).await.body, "3");
    }
}
