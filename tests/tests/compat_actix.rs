//! `session_actix::compat` against actix-session 0.11 itself: the same app source,
//! compiled once with `use actix_session::...` and once with
//! `use session_actix::compat::...`, runs the same scripted requests over a real socket.
//! actix-session runs on its `CookieSessionStore` (no server needed), compat on this
//! crate's `MemoryStore` and on its own `CookieSessionStore`; what a client sees must
//! match: statuses, bodies, whether it holds a session cookie, and the cookie's
//! attributes. What differs on purpose is tested on its own, below.

use cookie::Cookie;
use session_tests::actix_app::serve_actix;
use session_tests::http_suite::{cookie_attributes as attrs, get, Reply};
use session_tests::TestServer;

/// The app, written once against actix-session's API.
macro_rules! app {
    ($m:ident, $Store:ty, $($as:tt)+) => {
        mod $m {
            use actix_web::cookie::time::Duration;
            use actix_web::cookie::{Key, SameSite};
            use actix_web::{guard, web, HttpResponse};
            use $($as)+::config::{CookieContentSecurity, PersistentSession, TtlExtensionPolicy};
            use $($as)+::{Session, SessionExt, SessionMiddleware, SessionStatus};

            async fn count(session: Session) -> actix_web::Result<String> {
                if let Some(count) = session.get::<i32>("counter")? {
                    session.insert("counter", count + 1)?;
                } else {
                    session.insert("counter", 1)?;
                }
                Ok(session.get::<i32>("counter")?.unwrap().to_string())
            }

            async fn update_or(session: Session) -> actix_web::Result<String> {
                session.update_or("n", 1, |n: i32| n + 1)?;
                Ok(format!("{:?}", session.get::<i32>("n")?))
            }

            async fn update(session: Session) -> actix_web::Result<String> {
                session.update("m", |m: i32| m * 10)?;
                let before = session.get::<i32>("m")?;
                session.insert(String::from("m"), before.unwrap_or(1))?;
                session.update("m", |m: i32| m * 10)?;
                Ok(format!("{before:?} {:?}", session.get::<i32>("m")?))
            }

            async fn entries(session: Session) -> String {
                let entries = session.entries();
                let mut pairs: Vec<String> =
                    entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
                pairs.sort();
                pairs.join(";")
            }

            async fn status(session: Session) -> actix_web::Result<String> {
                let before = session.status();
                session.insert("x", "changed")?;
                Ok(format!("{before:?} {:?}", session.status()))
            }

            async fn text(session: Session) -> actix_web::Result<&'static str> {
                session.insert("s", "some text")?;
                Ok("ok")
            }

            async fn wrong_type(session: Session) -> actix_web::Result<String> {
                Ok(format!("{:?}", session.get::<i32>("s")?))
            }

            async fn contains(session: Session) -> String {
                format!("{} {}", session.contains_key("counter"), session.contains_key("nope"))
            }

            async fn remove(session: Session) -> String {
                format!("{:?}", session.remove("n"))
            }

            async fn remove_as(session: Session) -> String {
                let number = session.remove_as::<i32>("counter");
                let not_a_number = session.remove_as::<i32>("s");
                let absent = session.remove_as::<i32>("absent");
                format!("{number:?} {not_a_number:?} {absent:?}")
            }

            async fn clear(session: Session) -> String {
                session.clear();
                format!("{:?}", session.status())
            }

            async fn renew(session: Session) -> String {
                session.renew();
                let _ = session.insert("after_renew", true);
                format!("{:?}", session.status())
            }

            async fn purge(session: Session) -> String {
                session.purge();
                let _ = session.insert("after", 1);
                let _ = session.update_or("after", 1, |n: i32| n + 1);
                format!(
                    "{:?} {:?} {}",
                    session.status(),
                    session.remove("after"),
                    session.contains_key("after")
                )
            }

            async fn purged(session: Session) -> String {
                (session.status() == SessionStatus::Purged).to_string()
            }

            async fn from_request(req: actix_web::HttpRequest) -> actix_web::Result<String> {
                Ok(format!("{:?}", req.get_session().get::<i32>("counter")?))
            }

            async fn members() -> &'static str {
                "members only"
            }

            fn routes(cfg: &mut web::ServiceConfig) {
                cfg.route("/count", web::get().to(count))
                    .route("/update_or", web::get().to(update_or))
                    .route("/update", web::get().to(update))
                    .route("/entries", web::get().to(entries))
                    .route("/status", web::get().to(status))
                    .route("/text", web::get().to(text))
                    .route("/wrong_type", web::get().to(wrong_type))
                    .route("/contains", web::get().to(contains))
                    .route("/remove", web::get().to(remove))
                    .route("/remove_as", web::get().to(remove_as))
                    .route("/clear", web::get().to(clear))
                    .route("/renew", web::get().to(renew))
                    .route("/purge", web::get().to(purge))
                    .route("/purged", web::get().to(purged))
                    .route("/request", web::get().to(from_request))
                    .service(
                        web::resource("/members")
                            .guard(guard::fn_guard(|ctx| {
                                ctx.get_session().contains_key("counter")
                            }))
                            .to(members),
                    )
                    .default_service(web::to(|| async { HttpResponse::NotFound().body("none") }));
            }

            /// The defaults: `SessionMiddleware::new(store, key)`.
            pub(crate) fn plain(
                store: impl Fn() -> $Store + Clone + Send + 'static,
            ) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
                move |cfg: &mut web::ServiceConfig| {
                    let key = Key::from(&[3u8; 64]);
                    cfg.service(
                        web::scope("")
                            .wrap(SessionMiddleware::new(store(), key))
                            .configure(routes),
                    );
                }
            }

            /// Every builder setting changed.
            pub(crate) fn custom(
                store: impl Fn() -> $Store + Clone + Send + 'static,
            ) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
                move |cfg: &mut web::ServiceConfig| {
                    let key = Key::from(&[4u8; 64]);
                    let middleware = SessionMiddleware::builder(store(), key)
                        .cookie_name("sid".to_owned())
                        .cookie_secure(false)
                        .cookie_http_only(false)
                        .cookie_same_site(SameSite::Strict)
                        .cookie_path("/".to_owned())
                        .cookie_domain(Some("127.0.0.1".to_owned()))
                        .cookie_content_security(CookieContentSecurity::Signed)
                        .session_lifecycle(
                            PersistentSession::default()
                                .session_ttl(Duration::hours(2))
                                .session_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
                        )
                        .build();
                    cfg.service(web::scope("").wrap(middleware).configure(routes));
                }
            }

        }
    };
}

app!(
    theirs,
    actix_session::storage::CookieSessionStore,
    actix_session
);
app!(ours, session_actix::MemoryStore, session_actix::compat);
app!(
    ours_cookie,
    session_actix::compat::storage::CookieSessionStore,
    session_actix::compat
);
app!(
    ours_redis,
    session_actix::compat::storage::RedisSessionStore,
    session_actix::compat
);

fn theirs_store() -> actix_session::storage::CookieSessionStore {
    actix_session::storage::CookieSessionStore::default()
}

/// A browser's view of one site's session cookie.
#[derive(Default)]
struct Jar {
    cookie: Option<(String, String)>,
}

impl Jar {
    /// Applies the response; says whether the client now holds a session cookie and,
    /// when one was first handed out, its attributes.
    fn apply(&mut self, reply: &Reply) -> String {
        let mut note = String::new();
        for raw in &reply.set_cookies {
            let c = Cookie::parse(raw.clone()).expect("a valid Set-Cookie");
            let removal = c.max_age().is_some_and(|d| d.is_zero()) || c.value().is_empty();
            if removal {
                self.cookie = None;
            } else {
                if self.cookie.is_none() {
                    note = format!(" new {}", attrs(&c));
                }
                self.cookie = Some((c.name().to_owned(), c.value().to_owned()));
            }
        }
        format!("cookie={}{note}", self.cookie.is_some())
    }

    fn header(&self) -> Option<String> {
        self.cookie.as_ref().map(|(n, v)| format!("{n}={v}"))
    }
}

/// `path -> status body | jar` per step; a 5xx body is left out (actix-session puts
/// the error's text there, compat an opaque one).
async fn run(server: &TestServer, script: &[&str]) -> Vec<String> {
    let mut jar = Jar::default();
    let mut lines = Vec::new();
    for path in script {
        let reply = get(server, path, jar.header().as_deref()).await;
        let body = if reply.status >= 500 {
            "<error>"
        } else {
            reply.body.as_str()
        };
        let line = format!("{path} -> {} {body} | {}", reply.status, jar.apply(&reply));
        lines.push(line);
    }
    lines
}

async fn compare<A, B>(theirs: A, ours: B, script: &[&str]) -> Vec<String>
where
    A: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
    B: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
{
    let a = run(&serve_actix(theirs).await, script).await;
    let b = run(&serve_actix(ours).await, script).await;
    assert_eq!(a, b, "actix-session (left) and compat (right) differ");
    b
}

const SCRIPT: &[&str] = &[
    "/members",
    "/status",
    "/count",
    "/count",
    "/members",
    "/request",
    "/contains",
    "/entries",
    "/update_or",
    "/update",
    "/text",
    "/wrong_type",
    "/entries",
    "/remove",
    "/remove",
    "/remove_as",
    "/entries",
    "/count",
    "/renew",
    "/count",
    "/purge",
    "/purged",
    "/count",
    "/count",
];

#[tokio::test]
async fn defaults_and_every_method_match_actix_session() {
    let store = session_actix::MemoryStore::default();
    let lines = compare(
        theirs::plain(theirs_store),
        ours::plain(move || store.clone()),
        SCRIPT,
    )
    .await;
    // actix-session's defaults: cookie `id`, HttpOnly, Secure, SameSite=Lax, Path=/, a
    // browser-session cookie.
    assert_eq!(
        lines[1],
        "/status -> 200 Unchanged Changed | cookie=true new name=id http_only=Some(true) \
         secure=Some(true) same_site=Some(Lax) path=Some(\"/\") domain=None max_age=None"
    );
    assert_eq!(lines[8], "/update_or -> 200 Some(1) | cookie=true");
    assert_eq!(lines[11], "/wrong_type -> 500 <error> | cookie=true");
    assert_eq!(lines[20], "/purge -> 200 Purged None false | cookie=false");
}

/// The same with the state in the cookie, on both sides.
#[tokio::test]
async fn cookie_session_store_matches_actix_session() {
    let lines = compare(
        theirs::plain(theirs_store),
        ours_cookie::plain(ours_cookie_store),
        SCRIPT,
    )
    .await;
    assert_eq!(lines[20], "/purge -> 200 Purged None false | cookie=false");
    compare(
        theirs::custom(theirs_store),
        ours_cookie::custom(ours_cookie_store),
        &["/count", "/count", "/entries", "/purge", "/count"],
    )
    .await;
}

fn ours_cookie_store() -> session_actix::compat::storage::CookieSessionStore {
    session_actix::compat::storage::CookieSessionStore::default()
}

/// The same on a real Redis server through compat's `RedisSessionStore` (the README's
/// test command starts one; CI requires it). actix-session runs on its cookie store:
/// what the client sees does not depend on where the state is kept.
#[tokio::test]
async fn redis_session_store_matches_actix_session() {
    let Some(url) = session_tests::redis::redis_url() else {
        return;
    };
    let store = session_actix::compat::storage::RedisSessionStore::new(url)
        .await
        .expect("reach the Redis server at REDIS_URL");
    let same_store = store.clone();
    compare(
        theirs::plain(theirs_store),
        ours_redis::plain(move || same_store.clone()),
        SCRIPT,
    )
    .await;
    compare(
        theirs::custom(theirs_store),
        ours_redis::custom(move || store.clone()),
        &["/count", "/count", "/entries", "/purge", "/count"],
    )
    .await;
}

#[tokio::test]
async fn builder_settings_match_actix_session() {
    let store = session_actix::MemoryStore::default();
    let lines = compare(
        theirs::custom(theirs_store),
        ours::custom(move || store.clone()),
        &["/count", "/count", "/entries", "/purge", "/count"],
    )
    .await;
    assert_eq!(
        lines[0],
        "/count -> 200 1 | cookie=true new name=sid http_only=None secure=None \
         same_site=Some(Strict) path=Some(\"/\") domain=Some(\"127.0.0.1\") max_age=Some(7200)"
    );
}

/// Switching a running app: the sessions actix-session's `CookieSessionStore` put in
/// private cookies are read by compat's with the same key, and continue.
#[tokio::test]
async fn cookie_sessions_carry_over_from_actix_session() {
    let before = serve_actix(theirs::plain(theirs_store)).await;
    let r = get(&before, "/count", None).await;
    let first = r.cookie_pair();
    let r = get(&before, "/count", Some(&first)).await;
    assert_eq!(r.body, "2");
    let pair = r.cookie_pair();
    assert!(pair.contains('%'), "actix-web percent-encodes it: {pair}");
    drop(before);
    let after = serve_actix(ours_cookie::plain(ours_cookie_store)).await;
    let r = get(&after, "/count", Some(&pair)).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "3"),
        "the old cookie's state"
    );
    let pair = r.cookie_pair();
    assert_eq!(get(&after, "/count", Some(&pair)).await.body, "4");
}

/// What differs on purpose: clearing a session ends it (the cookie goes); actix-session
/// keeps an empty session under the same cookie.
#[tokio::test]
async fn clearing_a_session_ends_it() {
    let store = session_actix::MemoryStore::default();
    let server = serve_actix(ours::plain(move || store.clone())).await;
    let lines = run(&server, &["/count", "/clear", "/count"]).await;
    assert_eq!(
        &lines[1..],
        ["/clear -> 200 Changed | cookie=false", "/count -> 200 1 | cookie=true new name=id http_only=Some(true) secure=Some(true) same_site=Some(Lax) path=Some(\"/\") domain=None max_age=None"]
    );
}

/// What differs on purpose: `update` and `update_or` on a key that holds a value are
/// saved, as actix-session documents. actix-session 0.11 changes the value for the
/// request but does not mark the session changed, so unless something else changed
/// in the same request the update is lost (the first script below shows it).
#[tokio::test]
async fn updates_are_saved() {
    let script = ["/update_or", "/update_or", "/entries"];
    let lost = run(&serve_actix(theirs::plain(theirs_store)).await, &script).await;
    assert_eq!(
        lost[2], "/entries -> 200 n=1 | cookie=true",
        "actix-session's own behaviour"
    );

    let store = session_actix::MemoryStore::default();
    let server = serve_actix(ours::plain(move || store.clone())).await;
    let lines = run(&server, &script).await;
    assert_eq!(lines[1], "/update_or -> 200 Some(2) | cookie=true");
    assert_eq!(lines[2], "/entries -> 200 n=2 | cookie=true");
}

/// What differs on purpose: an accessor's error answers an opaque 500.
#[tokio::test]
async fn accessor_errors_answer_an_opaque_500() {
    let store = session_actix::MemoryStore::default();
    let server = serve_actix(ours::plain(move || store.clone())).await;
    let pair = get(&server, "/text", None).await.cookie_pair();
    let r = get(&server, "/wrong_type", Some(&pair)).await;
    assert_eq!((r.status, r.body.as_str()), (500, "Internal Server Error"));
}

/// `Session::default()` works outside a request, for unit tests of handler code.
#[test]
fn a_default_session_keeps_values_in_memory() {
    let session = session_actix::compat::Session::default();
    session.insert("a", 1).unwrap();
    session.update_or("a", 0, |n: i32| n + 41).unwrap();
    assert_eq!(session.get::<i32>("a").unwrap(), Some(42));
    assert_eq!(session.entries().get("a").map(String::as_str), Some("42"));
    assert_eq!(
        session.status(),
        session_actix::compat::SessionStatus::Changed
    );
    session.purge();
    session.insert("b", 1).unwrap();
    assert!(!session.contains_key("b"), "ignored after purge");
}

/// A misconfiguration is refused at start-up, naming the setting; `try_build` returns it.
#[test]
fn misconfigurations_are_refused_at_build() {
    use actix_web::cookie::{Key, SameSite};
    use session_actix::compat::SessionMiddleware;
    let builder = || {
        SessionMiddleware::builder(session_actix::MemoryStore::default(), Key::generate())
            .cookie_same_site(SameSite::None)
            .cookie_secure(false)
    };
    let err = builder().try_build().unwrap_err();
    assert!(err.to_string().contains("`secure`"), "{err}");
    let panic = std::panic::catch_unwind(|| builder().build()).expect_err("build panics");
    let message = panic.downcast_ref::<String>().expect("a message");
    assert!(
        message.contains("`SameSite=None` cookies must be `Secure`"),
        "{message}"
    );
}

/// `CookieSessionStore`'s own promises: a state that would not fit is refused when the
/// value is inserted; a cookie that is tampered with, or whose state expired, is a fresh
/// session; a 5xx saves nothing.
mod cookie_store {
    use actix_web::cookie::Key;
    use actix_web::{web, HttpResponse};
    use session_actix::compat::config::{CookieContentSecurity, PersistentSession};
    use session_actix::compat::storage::CookieSessionStore;
    use session_actix::compat::{Session, SessionMiddleware};
    use session_tests::actix_app::serve_actix;
    use session_tests::http_suite::get;
    use session_tests::TestServer;

    const KEY: [u8; 64] = [5; 64];

    async fn big(session: Session, n: web::Path<usize>) -> HttpResponse {
        match session.insert("big", "x".repeat(*n)) {
            Ok(()) => HttpResponse::Ok().body("ok"),
            Err(e) => HttpResponse::PayloadTooLarge().body(e.to_string()),
        }
    }

    async fn count(session: Session) -> actix_web::Result<String> {
        session.update_or("n", 1, |n: u32| n + 1)?;
        Ok(session.get::<u32>("n")?.unwrap_or_default().to_string())
    }

    async fn fail(session: Session) -> HttpResponse {
        let _ = session.insert("n", 1000);
        HttpResponse::InternalServerError().finish()
    }

    async fn serve(security: CookieContentSecurity, persistent: bool) -> TestServer {
        serve_actix(move |cfg: &mut web::ServiceConfig| {
            let mut builder =
                SessionMiddleware::builder(CookieSessionStore::default(), Key::from(&KEY))
                    .cookie_content_security(security)
                    .cookie_secure(false);
            if persistent {
                builder = builder.session_lifecycle(
                    PersistentSession::default().session_ttl(time::Duration::minutes(30)),
                );
            }
            cfg.service(
                web::scope("")
                    .wrap(builder.build())
                    .route("/big/{n}", web::get().to(big))
                    .route("/count", web::get().to(count))
                    .route("/fail", web::get().to(fail)),
            );
        })
        .await
    }

    /// The largest value the cookie takes, found by bisection over real requests.
    async fn largest_fit(server: &TestServer) -> usize {
        let (mut fits, mut refused) = (0, 8192);
        while refused - fits > 1 {
            let mid = (fits + refused) / 2;
            let r = get(server, &format!("/big/{mid}"), None).await;
            if r.status == 200 {
                fits = mid;
            } else {
                refused = mid;
            }
        }
        fits
    }

    #[tokio::test]
    async fn a_state_that_would_not_fit_is_refused_at_insert() {
        session_tests::logs::capture();
        for security in [
            CookieContentSecurity::Private,
            CookieContentSecurity::Signed,
        ] {
            let server = serve(security, true).await;
            let fits = largest_fit(&server).await;
            assert!(fits > 2500, "{security:?}: {fits} bytes fit");

            let r = get(&server, &format!("/big/{fits}"), None).await;
            let set = &r.set_cookies[0];
            let pair = set.split(';').next().unwrap();
            assert!(pair.len() <= 4096, "{security:?}: {} bytes", pair.len());
            assert!(
                pair.len() > 4000,
                "{security:?}: the limit is used: {}",
                pair.len()
            );

            let r = get(&server, &format!("/big/{}", fits + 1), None).await;
            assert_eq!(r.status, 413);
            assert!(
                r.body.contains("past its limit") && r.body.contains("bytes"),
                "{}",
                r.body
            );
            assert!(
                r.set_cookies.is_empty(),
                "nothing written: {:?}",
                r.set_cookies
            );
        }
        assert!(
            session_tests::logs::text().contains("the state would not fit in the cookie"),
            "the refusal is logged"
        );
    }

    #[tokio::test]
    async fn tampered_or_foreign_cookies_are_fresh_sessions() {
        for security in [
            CookieContentSecurity::Private,
            CookieContentSecurity::Signed,
        ] {
            let server = serve(security, false).await;
            let pair = get(&server, "/count", None).await.cookie_pair();
            assert_eq!(get(&server, "/count", Some(&pair)).await.body, "2");
            let (name, value) = pair.split_once('=').unwrap();
            let mut bytes = value.as_bytes().to_vec();
            let mid = bytes.len() / 2;
            bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
            let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
            for cookie in [tampered.as_str(), "id=", "id=%%%", "id=eyJ2IjoxfQ"] {
                let r = get(&server, "/count", Some(cookie)).await;
                assert_eq!(
                    (r.status, r.body.as_str()),
                    (200, "1"),
                    "{security:?} {cookie}"
                );
            }
        }
    }

    /// Several cookies of the name (one planted by a sibling domain, say): tried in
    /// order, at most eight, so the user's own is found behind a few, and a request
    /// stuffed with them costs a bounded number of decryptions.
    #[tokio::test]
    async fn cookies_of_the_name_are_tried_in_order_up_to_eight() {
        let server = serve(CookieContentSecurity::Private, false).await;
        let pair = get(&server, "/count", None).await.cookie_pair();
        let behind = |junk: usize| {
            let mut cookies: Vec<String> = (0..junk).map(|i| format!("id=junk{i}")).collect();
            cookies.push(pair.clone());
            cookies.join("; ")
        };
        assert_eq!(get(&server, "/count", Some(&behind(7))).await.body, "2");
        assert_eq!(get(&server, "/count", Some(&behind(8))).await.body, "1");
    }

    /// A cookie the browser should have dropped (or a copy kept by someone else) stops
    /// working when its state's `exp` passes.
    #[tokio::test]
    async fn an_expired_state_is_a_fresh_session() {
        let server = serve(CookieContentSecurity::Private, false).await;
        let key = cookie::Key::from(&KEY);
        let seal = |exp: i64| {
            let text = format!(r#"{{"v":1,"exp":{exp},"data":{{"n":"41"}}}}"#);
            let mut jar = cookie::CookieJar::new();
            jar.private_mut(&key).add(cookie::Cookie::new("id", text));
            format!("id={}", jar.get("id").unwrap().value())
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert_eq!(
            get(&server, "/count", Some(&seal(now + 60))).await.body,
            "42"
        );
        assert_eq!(get(&server, "/count", Some(&seal(now - 1))).await.body, "1");
    }

    #[tokio::test]
    async fn persistent_cookies_and_server_errors() {
        let server = serve(CookieContentSecurity::Private, true).await;
        let r = get(&server, "/count", None).await;
        assert_eq!(r.cookie().max_age(), Some(time::Duration::minutes(30)));
        let pair = r.cookie_pair();
        let r = get(&server, "/fail", Some(&pair)).await;
        assert_eq!(r.status, 500);
        assert!(r.set_cookies.is_empty(), "a 5xx saves nothing");
        assert_eq!(get(&server, "/count", Some(&pair)).await.body, "2");
    }
}
