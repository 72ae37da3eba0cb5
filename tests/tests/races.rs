//! Concurrent requests on one session, on every adapter and store: nothing acknowledged is
//! lost, and nothing logged out or cycled away comes back.

use serde_json::{json, Value};
use session_core::{Id, SessionConfig, SessionStore};
use session_tests::gate;
use session_tests::http_suite::get;
use session_tests::{Caps, Framework, Probe};

const TRIALS: usize = 1_000;

/// Two concurrent requests writing different keys, `TRIALS` times: never both 2xx with
/// one key missing (for stores that save changes only; whole-record stores promise the
/// last writer's state).
pub async fn concurrent_different_keys<F: Framework, S: SessionStore + Clone>(
    store: S,
    caps: Caps,
) {
    let server = std::sync::Arc::new(F::serve(store, SessionConfig::default()).await);
    let mut lost = 0;
    for trial in 0..TRIALS {
        let pair = get(&server, "/set/start/0", None).await.cookie_pair();
        let (path_a, path_b) = (format!("/set/a/{trial}"), format!("/set/b/{trial}"));
        let (a, b) = tokio::join!(
            get(&server, &path_a, Some(&pair)),
            get(&server, &path_b, Some(&pair)),
        );
        assert_eq!((a.status, b.status), (200, 200), "trial {trial}");
        let all = get(&server, "/all", Some(&pair)).await.json();
        let (has_a, has_b) = (all.get("a").is_some(), all.get("b").is_some());
        if caps.delta_saves {
            assert!(
                has_a && has_b,
                "{}: trial {trial} lost a write: {all}",
                F::NAME
            );
        } else {
            assert!(
                has_a || has_b,
                "{}: trial {trial} kept neither write: {all}",
                F::NAME
            );
            lost += usize::from(!(has_a && has_b));
        }
        assert_eq!(all["start"], json!(0));
    }
    if !caps.delta_saves {
        eprintln!(
            "{}: whole-record store, last writer won in {lost}/{TRIALS} trials",
            F::NAME
        );
    }
}

/// A gate's name of its own: tests of every adapter and store run at once.
fn unique_gate(what: &str) -> String {
    format!("race-{what}-{}", Id::random())
}

/// Runs `request` once a handler holds its loaded session at `gate`, then lets that
/// handler go on: the request lands while the other is in flight, every time.
async fn behind<T>(gate: &str, request: impl std::future::Future<Output = T>) -> T {
    gate::reached(gate).await;
    let answer = request.await;
    gate::open(gate);
    answer
}

/// A read held in flight while a write lands: the write survives (reads never write
/// back).
pub async fn slow_read_racing_a_write<F: Framework, S: SessionStore + Clone>(store: S) {
    let server = F::serve(store, SessionConfig::default()).await;
    let pair = get(&server, "/set/a/1", None).await.cookie_pair();
    let gate = unique_gate("read");
    let held = format!("/gatedget/{gate}/a");
    let (read, write) = tokio::join!(
        get(&server, &held, Some(&pair)),
        behind(&gate, get(&server, "/set/b/2", Some(&pair)))
    );
    assert_eq!((read.status, write.status), (200, 200));
    assert_eq!(read.json(), json!(1));
    assert!(read.set_cookies.is_empty(), "a read wrote");
    assert_eq!(
        get(&server, "/all", Some(&pair)).await.json(),
        json!({"a": 1, "b": 2})
    );
}

/// A logout while a request holding the session is in flight (held at a gate): the
/// late write does not bring the session back.
pub async fn logout_racing_an_inflight_write<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), SessionConfig::default()).await;
    let pair = get(&server, "/set/user/\"ada\"", None).await.cookie_pair();
    let id: Id = pair[3..].parse().unwrap();
    let gate = unique_gate("write");
    let held = format!("/gatedset/{gate}/cart/1");
    let (late, logout) = tokio::join!(
        get(&server, &held, Some(&pair)),
        behind(&gate, get(&server, "/flush", Some(&pair)))
    );
    assert_eq!(logout.cookie().max_age(), Some(time::Duration::ZERO));
    assert_eq!(late.status, 200);
    assert_eq!(
        late.cookie().max_age(),
        Some(time::Duration::ZERO),
        "the client forgets it too"
    );
    assert!(
        probe.record(&id).await.is_none(),
        "the logged-out session came back"
    );
    assert_eq!(get(&server, "/all", Some(&pair)).await.json(), json!({}));
}

/// A request on the old id while `cycle_id` moves the session: the old id stays dead and
/// the new one keeps the login.
pub async fn cycle_racing_the_old_id<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), SessionConfig::default()).await;
    let old = get(&server, "/set/cart/1", None).await.cookie_pair();
    let old_id: Id = old[3..].parse().unwrap();
    let gate = unique_gate("old-id");
    let held = format!("/gatedset/{gate}/x/1");
    let (late, login) = tokio::join!(
        get(&server, &held, Some(&old)),
        behind(&gate, get(&server, "/login/ada", Some(&old)))
    );
    let new = login.cookie_pair();
    assert_ne!(new, old);
    assert_eq!(late.status, 200);
    assert!(
        probe.record(&old_id).await.is_none(),
        "the old id came back"
    );
    let all = get(&server, "/all", Some(&new)).await.json();
    assert_eq!(all["user"], Value::from("ada"));
    assert_eq!(all["cart"], json!(1));
    assert_eq!(get(&server, "/all", Some(&old)).await.json(), json!({}));
}

/// A logout while a login (`cycle_id`) of the same session is in flight: the login does
/// not bring the logged-out session back under a new id.
pub async fn logout_racing_an_inflight_login<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), SessionConfig::default()).await;
    let pair = get(&server, "/set/cart/1", None).await.cookie_pair();
    let id: Id = pair[3..].parse().unwrap();
    let gate = unique_gate("login");
    let held = format!("/gatedlogin/{gate}/mallory");
    let (login, logout) = tokio::join!(
        get(&server, &held, Some(&pair)),
        behind(&gate, get(&server, "/flush", Some(&pair)))
    );
    assert_eq!(logout.cookie().max_age(), Some(time::Duration::ZERO));
    assert_eq!(login.status, 200);
    assert_eq!(
        login.cookie().max_age(),
        Some(time::Duration::ZERO),
        "{}: the late login hands out no session, and the client forgets the old one",
        F::NAME
    );
    assert!(probe.record(&id).await.is_none(), "the old id came back");
    assert_eq!(get(&server, "/all", Some(&pair)).await.json(), json!({}));
}

/// "Log out other devices" while requests of those devices are in flight, each held
/// after loading its session: half then write a value, half log in again (`cycle_id`,
/// moving the session to a new id). In one round the end comes first and the held
/// requests go after it; in the other they are let go as the end starts. Either way,
/// once all is done the user has exactly the one session that asked, every ended cookie
/// is a fresh session, and no response hands out a session of the user.
pub async fn ending_a_users_sessions_races_inflight_requests<F, S>(store: S, caps: Caps)
where
    F: Framework,
    S: SessionStore + Clone,
{
    use session_tests::store_suite::{fresh_user, UserSessions};
    if caps.user_sessions != UserSessions::Supported {
        if caps.user_sessions == UserSessions::NotShownHere {
            let line = "races: ending_a_users_sessions_races_inflight_requests was NOT run: \
                        the protocol test server has no secondary indexes\n";
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        }
        return;
    }
    const DEVICES: usize = 8;
    let probe = Probe::new(store);
    let server = std::sync::Arc::new(F::serve(probe.clone(), SessionConfig::default()).await);
    for round in ["end first", "together"] {
        let user = fresh_user();
        let keeper = get(&server, &format!("/bind/{user}/keeper"), None)
            .await
            .cookie_pair();
        let mut devices = Vec::new();
        for d in 0..DEVICES {
            let pair = get(&server, &format!("/bind/{user}/d{d}"), None)
                .await
                .cookie_pair();
            devices.push(pair);
        }
        let gate = |d: usize| format!("{}-{round}-{d}", user);
        let mut held = Vec::new();
        for (d, pair) in devices.iter().enumerate() {
            let path = if d % 2 == 0 {
                format!("/gatedset/{}/late/{d}", gate(d))
            } else {
                format!("/gatedbind/{}/{user}/again{d}", gate(d))
            };
            let (server, pair) = (server.clone(), pair.clone());
            held.push(tokio::spawn(async move {
                get(&server, &path, Some(&pair)).await
            }));
        }
        for d in 0..DEVICES {
            session_tests::gate::reached(&gate(d)).await;
        }
        let ended = if round == "end first" {
            let r = get(&server, "/end-others", Some(&keeper)).await;
            (0..DEVICES).for_each(|d| session_tests::gate::open(&gate(d)));
            r
        } else {
            (0..DEVICES).for_each(|d| session_tests::gate::open(&gate(d)));
            get(&server, "/end-others", Some(&keeper)).await
        };
        assert_eq!(ended.status, 200, "{round}: {}", ended.body);
        for h in held {
            let r = h.await.unwrap();
            assert_eq!(r.status, 200, "{round}: {}", r.body);
            for c in &r.set_cookies {
                let c = cookie::Cookie::parse(c.clone()).unwrap();
                if c.value().is_empty() {
                    continue;
                }
                let pair = format!("{}={}", c.name(), c.value());
                let who = get(&server, "/whoami", Some(&pair)).await.json();
                assert_eq!(
                    who,
                    Value::Null,
                    "{}, {round}: an ended session came back",
                    F::NAME
                );
            }
        }
        let list = get(&server, "/sessions", Some(&keeper)).await.json();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 1, "{}, {round}: {list:?}", F::NAME);
        assert_eq!(list[0]["current"], json!(true));
        for pair in &devices {
            let id: Id = pair[3..].parse().unwrap();
            assert!(probe.record(&id).await.is_none(), "{round}");
            assert_eq!(
                get(&server, "/whoami", Some(pair)).await.json(),
                Value::Null
            );
        }
        // What "together" ended depends on the interleaving; "end first" ended all.
        if round == "end first" {
            assert_eq!(ended.body, DEVICES.to_string());
        }
    }
}

macro_rules! races {
    ($name:ident, $framework:ty, $factory:expr, $caps:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_different_keys() {
                super::concurrent_different_keys::<$framework, _>(($factory).await, $caps).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn slow_read_racing_a_write() {
                super::slow_read_racing_a_write::<$framework, _>(($factory).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn logout_racing_an_inflight_write() {
                super::logout_racing_an_inflight_write::<$framework, _>(($factory).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn logout_racing_an_inflight_login() {
                super::logout_racing_an_inflight_login::<$framework, _>(($factory).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ending_a_users_sessions_races_inflight_requests() {
                super::ending_a_users_sessions_races_inflight_requests::<$framework, _>(
                    ($factory).await,
                    $caps,
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cycle_racing_the_old_id() {
                super::cycle_racing_the_old_id::<$framework, _>(($factory).await).await;
            }
        }
    };
}

use session_core::{MemoryStore, TowerStore};
use session_tests::aerospike::Served;
use session_tests::{Actix, Axum};

races!(
    axum_memory,
    Axum,
    async { MemoryStore::default() },
    Caps::NATIVE
);
races!(
    actix_memory,
    Actix,
    async { MemoryStore::default() },
    Caps::NATIVE
);
races!(
    axum_aerospike,
    Axum,
    Served::default_store(),
    session_tests::aerospike::caps()
);
races!(
    actix_aerospike,
    Actix,
    Served::default_store(),
    session_tests::aerospike::caps()
);
races!(
    axum_tower,
    Axum,
    async { TowerStore::new(tower_sessions_memory_store::MemoryStore::default()) },
    Caps::WHOLE_RECORD
);
races!(
    actix_tower,
    Actix,
    async { TowerStore::new(tower_sessions_memory_store::MemoryStore::default()) },
    Caps::WHOLE_RECORD
);
