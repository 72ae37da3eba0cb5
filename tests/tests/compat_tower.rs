//! `session_axum::compat` against tower-sessions 0.15 itself: the same app source,
//! compiled once with `use tower_sessions::...` and once with
//! `use session_axum::compat::...`, runs the same scripted requests over a real socket;
//! statuses, bodies, and what the browser's cookie jar holds after each response must
//! match. What differs on purpose is tested on its own, below.

use std::collections::BTreeMap;

use cookie::Cookie;
use session_tests::axum_app::serve_router;
use session_tests::http_suite::{cookie_attributes as attrs, get, Reply};
use session_tests::TestServer;

/// The app, written once against tower-sessions' API: `$($ts)+` is the crate path,
/// `$Memory` its memory store.
macro_rules! app {
    ($m:ident, $Memory:path, $($ts:tt)+) => {
        mod $m {
            use axum::extract::Path;
            use axum::http::StatusCode;
            use axum::routing::get;
            use axum::Router;
            use $($ts)+::cookie::time::Duration;
            use $($ts)+::cookie::{Key, SameSite};
            use $($ts)+::session::Error;
            use $($ts)+::{Expiry, Session, SessionManagerLayer, SessionStore};

            type Reply = Result<String, (StatusCode, String)>;

            fn fail(e: Error) -> (StatusCode, String) {
                let kind = match e {
                    Error::SerdeJson(_) => "serde",
                    Error::Store(_) => "store",
                };
                (StatusCode::INTERNAL_SERVER_ERROR, kind.to_owned())
            }

            async fn count(s: Session) -> Reply {
                let n: usize = s.get("n").await.map_err(fail)?.unwrap_or(0);
                s.insert("n", n + 1).await.map_err(fail)?;
                Ok(n.to_string())
            }

            async fn peek(s: Session) -> Reply {
                let v = s.get_value("n").await.map_err(fail)?;
                Ok(format!("{v:?} modified={}", s.is_modified()))
            }

            async fn empty(s: Session) -> String {
                s.is_empty().await.to_string()
            }

            async fn has_id(s: Session) -> String {
                s.id().is_some().to_string()
            }

            async fn modified(s: Session) -> Reply {
                let before = s.is_modified();
                s.insert("x", 1).await.map_err(fail)?;
                Ok(format!("{before} {}", s.is_modified()))
            }

            async fn insert_value(s: Session, Path(v): Path<i64>) -> Reply {
                let old = s.insert_value("k", v.into()).await.map_err(fail)?;
                Ok(format!("{old:?}"))
            }

            async fn wrong_type(s: Session) -> Reply {
                let v: Option<String> = s.get("n").await.map_err(fail)?;
                Ok(format!("{v:?}"))
            }

            async fn remove(s: Session) -> Reply {
                let v: Option<usize> = s.remove("n").await.map_err(fail)?;
                Ok(format!("{v:?}"))
            }

            async fn remove_value(s: Session) -> Reply {
                Ok(format!("{:?}", s.remove_value("k").await.map_err(fail)?))
            }

            async fn clear(s: Session) -> &'static str {
                s.clear().await;
                "cleared"
            }

            async fn cycle(s: Session) -> Reply {
                s.cycle_id().await.map_err(fail)?;
                Ok("cycled".into())
            }

            async fn flush(s: Session) -> Reply {
                s.flush().await.map_err(fail)?;
                Ok("flushed".into())
            }

            async fn save(s: Session) -> Reply {
                s.save().await.map_err(fail)?;
                Ok("saved".into())
            }

            async fn load(s: Session) -> Reply {
                s.load().await.map_err(fail)?;
                Ok("loaded".into())
            }

            async fn expiry(s: Session) -> String {
                match s.expiry() {
                    None => "none".into(),
                    Some(Expiry::OnSessionEnd) => "session end".into(),
                    Some(Expiry::OnInactivity(d)) => format!("inactivity {}", d.whole_seconds()),
                    Some(Expiry::AtDateTime(_)) => "at".into(),
                }
            }

            async fn set_expiry(s: Session, Path(secs): Path<i64>) -> &'static str {
                s.set_expiry(Some(Expiry::OnInactivity(Duration::seconds(secs))));
                "set"
            }

            async fn browser_session(s: Session) -> &'static str {
                s.set_expiry(None);
                "set"
            }

            /// The remaining age in tens of seconds, so a second ticking over between the
            /// two servers does not matter.
            async fn age(s: Session) -> String {
                ((s.expiry_age().whole_seconds() + 5) / 10).to_string()
            }

            /// The routes behind `layer`.
            pub(crate) fn routes() -> Router {
                Router::new()
                    .route("/count", get(count))
                    .route("/peek", get(peek))
                    .route("/empty", get(empty))
                    .route("/has_id", get(has_id))
                    .route("/modified", get(modified))
                    .route("/insert_value/{v}", get(insert_value))
                    .route("/wrong_type", get(wrong_type))
                    .route("/remove", get(remove))
                    .route("/remove_value", get(remove_value))
                    .route("/clear", get(clear))
                    .route("/cycle", get(cycle))
                    .route("/flush", get(flush))
                    .route("/save", get(save))
                    .route("/load", get(load))
                    .route("/expiry", get(expiry))
                    .route("/set_expiry/{secs}", get(set_expiry))
                    .route("/browser_session", get(browser_session))
                    .route("/age", get(age))
            }

            /// The defaults.
            pub(crate) fn plain() -> Router {
                routes().layer(SessionManagerLayer::new(<$Memory>::default()))
            }

            /// Every cookie setting changed.
            pub(crate) fn custom() -> Router {
                let layer = SessionManagerLayer::new(<$Memory>::default())
                    .with_name("sid")
                    .with_same_site(SameSite::Lax)
                    .with_http_only(false)
                    .with_secure(false)
                    .with_path("/")
                    .with_domain("127.0.0.1")
                    .with_expiry(Expiry::OnInactivity(Duration::seconds(600)));
                routes().layer(layer)
            }

            /// Signed or private cookies.
            pub(crate) fn keyed(private: bool) -> Router {
                let store = <$Memory>::default();
                let key = Key::from(&[7u8; 64]);
                if private {
                    routes().layer(SessionManagerLayer::new(store).with_private(key))
                } else {
                    routes().layer(SessionManagerLayer::new(store).with_signed(key))
                }
            }

            /// Over any tower-sessions store; `keyed`: `Some(true)` private cookies,
            /// `Some(false)` signed ones.
            pub(crate) fn over<S: SessionStore + Clone>(store: S, keyed: Option<bool>) -> Router {
                let layer = SessionManagerLayer::new(store);
                let key = Key::from(&[9u8; 64]);
                match keyed {
                    None => routes().layer(layer),
                    Some(true) => routes().layer(layer.with_private(key)),
                    Some(false) => routes().layer(layer.with_signed(key)),
                }
            }

            /// The session extracted without the layer.
            pub(crate) fn without_layer() -> Router {
                routes()
            }
        }
    };
}

app!(
    theirs,
    tower_sessions_memory_store::MemoryStore,
    tower_sessions
);
app!(
    ours,
    session_axum::compat::MemoryStore,
    session_axum::compat
);

/// A browser's cookie jar for one site, and what each response did to it.
#[derive(Default)]
struct Jar {
    cookies: BTreeMap<String, (String, Option<i64>)>,
}

impl Jar {
    fn header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, (v, _))| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Applies the response's `Set-Cookie`s; says what changed as the browser sees it:
    /// `kept`, `new <attributes>` (a new value), `max-age N` (same value, new lifetime),
    /// or `removed`.
    fn apply(&mut self, reply: &Reply) -> String {
        let mut seen = Vec::new();
        for raw in &reply.set_cookies {
            let c = Cookie::parse(raw.clone()).expect("a valid Set-Cookie");
            let max_age = c.max_age().map(|d| d.whole_seconds());
            let name = c.name().to_owned();
            if max_age == Some(0) || c.value().is_empty() {
                self.cookies.remove(&name);
                seen.push(format!("removed {name}"));
                continue;
            }
            let old = self
                .cookies
                .insert(name.clone(), (c.value().to_owned(), max_age));
            seen.push(match old {
                Some((v, _)) if v != c.value() || old.is_none() => format!("new {}", attrs(&c)),
                Some((_, a)) if a == max_age => "kept".to_owned(),
                Some(_) => format!("max-age {max_age:?}"),
                None => format!("new {}", attrs(&c)),
            });
        }
        if seen.is_empty() {
            "kept".to_owned()
        } else {
            seen.join(", ")
        }
    }
}

/// Runs `script` on `server` with one jar: `path -> status body | jar change` per step.
async fn run(server: &TestServer, script: &[&str]) -> Vec<String> {
    let mut jar = Jar::default();
    let mut lines = Vec::new();
    for path in script {
        let reply = get(server, path, jar.header().as_deref()).await;
        let change = jar.apply(&reply);
        lines.push(format!(
            "{path} -> {} {} | {change}",
            reply.status, reply.body
        ));
    }
    lines
}

async fn same(theirs: axum::Router, ours: axum::Router, script: &[&str]) -> Vec<String> {
    let a = run(&serve_router(theirs).await, script).await;
    let b = run(&serve_router(ours).await, script).await;
    assert_eq!(a, b, "tower-sessions (left) and compat (right) differ");
    b
}

/// Every accessor, with the defaults, on a session's whole life.
#[tokio::test]
async fn accessors_and_defaults_match_tower_sessions() {
    let script = [
        "/peek",
        "/empty",
        "/has_id",
        "/save",
        "/load",
        "/count",
        "/count",
        "/peek",
        "/has_id",
        "/empty",
        "/modified",
        "/expiry",
        "/insert_value/5",
        "/insert_value/6",
        "/wrong_type",
        "/remove_value",
        "/remove",
        "/peek",
        "/count",
        "/cycle",
        "/peek",
        "/count",
        "/flush",
        "/peek",
        "/count",
    ];
    let lines = same(theirs::plain(), ours::plain(), &script).await;
    // The defaults, as tower-sessions documents them: cookie `id`, HttpOnly, Secure,
    // SameSite=Strict, Path=/, no Max-Age (a browser-session cookie).
    assert_eq!(
        lines[5],
        "/count -> 200 0 | new name=id http_only=Some(true) secure=Some(true) \
         same_site=Some(Strict) path=Some(\"/\") domain=None max_age=None"
    );
    assert!(lines[22].ends_with("| removed id"), "{}", lines[22]);
}

/// Every cookie setting, and expiries set by the layer and by handlers.
#[tokio::test]
async fn settings_and_expiry_match_tower_sessions() {
    let script = [
        "/count",
        "/expiry",
        "/age",
        "/peek",
        "/set_expiry/120",
        "/flush",
    ];
    let lines = same(theirs::custom(), ours::custom(), &script).await;
    assert_eq!(
        lines[0],
        "/count -> 200 0 | new name=sid http_only=None secure=None \
         same_site=Some(Lax) path=Some(\"/\") domain=Some(\"127.0.0.1\") max_age=Some(600)"
    );
    assert_eq!(lines[4], "/set_expiry/120 -> 200 set | max-age Some(120)");
}

/// What differs on purpose: a handler's `set_expiry` is kept with the session, so it
/// holds on the session's later requests ("remember me" is one call). tower-sessions
/// applies it to the one response, and the next change puts the layer's back.
#[tokio::test]
async fn set_expiry_holds_on_later_requests() {
    let script = [
        "/count",
        "/set_expiry/120",
        "/expiry",
        "/age",
        "/count",
        "/browser_session",
        "/expiry",
        "/count",
    ];
    let lines = run(&serve_router(ours::custom()).await, &script).await;
    assert_eq!(
        &lines[1..],
        [
            "/set_expiry/120 -> 200 set | max-age Some(120)",
            "/expiry -> 200 inactivity 120 | kept",
            "/age -> 200 12 | kept",
            "/count -> 200 1 | kept",
            "/browser_session -> 200 set | max-age None",
            "/expiry -> 200 none | kept",
            "/count -> 200 2 | kept",
        ]
    );
}

/// What differs on purpose: removing a session's last value ends it (its record is
/// deleted and its cookie removed), where tower-sessions keeps an empty record under
/// the same id until it expires.
#[tokio::test]
async fn clearing_a_session_ends_it() {
    let script = ["/count", "/clear", "/empty", "/peek", "/count"];
    let lines = run(&serve_router(ours::plain()).await, &script).await;
    assert_eq!(lines[1], "/clear -> 200 cleared | removed id");
    assert_eq!(lines[2], "/empty -> 200 true | kept");
    assert!(
        lines[4].starts_with("/count -> 200 0 | new"),
        "{}",
        lines[4]
    );
}

/// Signed and private cookies: the same answers. (tower-sessions sends the cookie again
/// on every change, and a private cookie's value differs each time it is encrypted;
/// this crate sends a browser-session cookie once, so only statuses and bodies are
/// compared.)
#[tokio::test]
async fn signed_and_private_cookies_match_tower_sessions() {
    let script = ["/count", "/count", "/count", "/flush", "/peek", "/count"];
    for private in [false, true] {
        let answers = |lines: Vec<String>| -> Vec<String> {
            lines
                .into_iter()
                .map(|l| l.split(" | ").next().unwrap().to_owned())
                .collect()
        };
        let a = answers(run(&serve_router(theirs::keyed(private)).await, &script).await);
        let b = answers(run(&serve_router(ours::keyed(private)).await, &script).await);
        assert_eq!(a, b, "private={private}");
        assert_eq!(b[2], "/count -> 200 2");
        assert_eq!(b[4], "/peek -> 200 None modified=false");
    }
}

/// A cookie with a malformed, forged or unknown id is a fresh session on both.
#[tokio::test]
async fn bad_ids_match_tower_sessions() {
    for cookie in [
        "id=not-an-id",
        "id=AAAAAAAAAAAAAAAAAAAAAA",
        "id=",
        "id=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let mut replies = Vec::new();
        for app in [theirs::plain(), ours::plain()] {
            let server = serve_router(app).await;
            let r = get(&server, "/count", Some(cookie)).await;
            let fresh = r.set_cookies.iter().any(|c| {
                let c = Cookie::parse(c.clone()).unwrap();
                !c.value().is_empty() && !cookie.ends_with(c.value())
            });
            replies.push((r.status, r.body, fresh));
        }
        assert_eq!(replies[0], replies[1], "cookie {cookie:?}");
        assert_eq!(replies[1], (200, "0".to_owned(), true), "cookie {cookie:?}");
    }
}

/// The rejection without the layer has tower-sessions' shape: a 500 with a text body.
#[tokio::test]
async fn missing_layer_is_a_500_on_both() {
    for app in [theirs::without_layer(), ours::without_layer()] {
        let r = get(&serve_router(app).await, "/peek", None).await;
        assert_eq!(r.status, 500);
        assert!(r.body.contains("SessionManagerLayer"), "{}", r.body);
    }
}

/// Switching a running app: sessions that tower-sessions wrote into a store are read by
/// the compat layer over the same store, with plain and private cookies. Signed ones do
/// not carry over: this crate binds a signature to the cookie's name (a cookie signed
/// for another name under the same key must not verify), so they are fresh sessions.
#[tokio::test]
async fn live_sessions_carry_over_from_tower_sessions() {
    for (keyed, carries) in [(None, true), (Some(true), true), (Some(false), false)] {
        let store = tower_sessions_memory_store::MemoryStore::default();
        let before = serve_router(theirs::over(store.clone(), keyed)).await;
        let r = get(&before, "/count", None).await;
        let pair = r.cookie_pair();
        let r = get(&before, "/count", Some(&pair)).await;
        assert_eq!(r.body, "1");
        drop(before);

        let after = serve_router(ours::over(store.clone(), keyed)).await;
        let r = get(&after, "/count", Some(&pair)).await;
        let expected = if carries { "2" } else { "0" };
        assert_eq!((r.status, r.body.as_str()), (200, expected), "{keyed:?}");
        if carries {
            let r = get(&after, "/peek", Some(&pair)).await;
            assert_eq!(r.body, "Some(Number(3)) modified=false");
        } else {
            assert_ne!(r.cookie_pair(), pair, "a fresh session, under a new id");
        }
    }
}

/// A failing tower-sessions store: the accessor's error is `Store` on both.
#[tokio::test]
async fn a_failing_store_is_a_store_error_on_both() {
    let (store, pair) = failing::store();
    for app in [theirs::over(store.clone(), None), ours::over(store, None)] {
        let server = serve_router(app).await;
        let r = get(&server, "/count", Some(&pair)).await;
        assert_eq!((r.status, r.body.as_str()), (500, "store"));
    }
}

/// What differs on purpose: compat answers a store failure with a body that says
/// nothing of the cause.
#[tokio::test]
async fn store_errors_do_not_carry_the_cause() {
    let (store, pair) = failing::store();
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|s: session_axum::compat::Session| async move {
                match s.get::<u64>("n").await {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => e.to_string(),
                }
            }),
        )
        .layer(session_axum::compat::SessionManagerLayer::new(store));
    let r = get(&serve_router(app).await, "/", Some(&pair)).await;
    assert!(!r.body.contains(failing::SECRET), "{}", r.body);
    assert!(r.body.contains("store failed"), "{}", r.body);
}

/// What differs on purpose: `delete` also ends the session for this response (the
/// cookie goes), where tower-sessions deletes the record and leaves the cookie.
#[tokio::test]
async fn delete_ends_the_session() {
    let app = axum::Router::new()
        .route(
            "/delete",
            axum::routing::get(|s: session_axum::compat::Session| async move {
                s.delete().await.unwrap();
                "deleted"
            }),
        )
        .merge(ours::routes())
        .layer(session_axum::compat::SessionManagerLayer::new(
            session_axum::compat::MemoryStore::default(),
        ));
    let server = serve_router(app).await;
    let pair = get(&server, "/count", None).await.cookie_pair();
    let r = get(&server, "/delete", Some(&pair)).await;
    let c = r.cookie();
    assert_eq!(c.max_age(), Some(time::Duration::ZERO));
    assert_eq!(
        get(&server, "/peek", Some(&pair)).await.body,
        "None modified=false"
    );
}

mod failing {
    use tower_sessions::session::{Id, Record};
    use tower_sessions::session_store::{Error, Result, SessionStore};

    pub(crate) const SECRET: &str = "db password rejected for user admin";

    /// A tower-sessions store whose every call fails.
    #[derive(Clone, Debug)]
    pub(crate) struct Failing;

    #[async_trait::async_trait]
    impl SessionStore for Failing {
        async fn create(&self, _: &mut Record) -> Result<()> {
            Err(Error::Backend(SECRET.into()))
        }
        async fn save(&self, _: &Record) -> Result<()> {
            Err(Error::Backend(SECRET.into()))
        }
        async fn load(&self, _: &Id) -> Result<Option<Record>> {
            Err(Error::Backend(SECRET.into()))
        }
        async fn delete(&self, _: &Id) -> Result<()> {
            Err(Error::Backend(SECRET.into()))
        }
    }

    /// The store, and a cookie with a well-formed id so that the session is loaded.
    pub(crate) fn store() -> (Failing, String) {
        (Failing, format!("id={}", Id(42)))
    }
}
