//! The HTTP conformance suite: every adapter with every store, over a real socket with a
//! real client. Instantiate with [`http_suite!`](macro@crate::http_suite).

use std::time::Duration as StdDuration;

use cookie::{Cookie, SameSite};
use serde_json::{json, Value};
use session_core::{Expiry, Id, Key, SessionConfig, SessionStore, TouchPolicy};
use time::{Duration, OffsetDateTime};

use crate::probe::{Fault, Op, Probe, SECRET};
use crate::server::{Framework, TestServer};
use crate::store_suite::Caps;

/// One response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Every `Set-Cookie` value, in order.
    pub set_cookies: Vec<String>,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    /// The one `Set-Cookie`, parsed.
    pub fn cookie(&self) -> Cookie<'static> {
        assert_eq!(
            self.set_cookies.len(),
            1,
            "exactly one Set-Cookie: {:?}",
            self.set_cookies
        );
        Cookie::parse(self.set_cookies[0].clone()).expect("a valid Set-Cookie")
    }

    /// `name=value` of the one `Set-Cookie`, to send back.
    pub fn cookie_pair(&self) -> String {
        let c = self.cookie();
        format!("{}={}", c.name(), c.value())
    }
}

/// A `Set-Cookie`'s attributes that a browser acts on, as one line (the value left out).
pub fn cookie_attributes(c: &Cookie<'_>) -> String {
    format!(
        "name={} http_only={:?} secure={:?} same_site={:?} path={:?} domain={:?} max_age={:?}",
        c.name(),
        c.http_only(),
        c.secure(),
        c.same_site(),
        c.path(),
        c.domain(),
        c.max_age().map(|d| d.whole_seconds()),
    )
}

/// GET `path` with an optional `Cookie` header.
pub async fn get(server: &TestServer, path: &str, cookie: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    get_with(server, path, &headers).await
}

/// GET `path` with these request headers.
pub async fn get_with(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Reply {
    let client = reqwest::Client::builder()
        .timeout(StdDuration::from_secs(30))
        .build()
        .unwrap();
    let mut req = client.get(server.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let set_cookies = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = resp.text().await.unwrap();
    Reply {
        status,
        set_cookies,
        headers,
        body,
    }
}

fn id_of(pair: &str) -> Id {
    let value = pair.split_once('=').expect("name=value").1;
    value.parse().expect("a plain cookie value is an id")
}

fn config() -> SessionConfig {
    SessionConfig::default()
}

fn near(a: OffsetDateTime, b: OffsetDateTime, slack: i64) -> bool {
    (a - b).abs() <= Duration::seconds(slack)
}

/// 1. No cookie, a handler that only reads: no `Set-Cookie`, no store call.
pub async fn read_without_cookie<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), config()).await;
    let r = get(&server, "/get/a", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), Value::Null);
    assert!(r.set_cookies.is_empty(), "{:?}", r.set_cookies);
    assert_eq!(probe.calls(Op::Load), 0);
    assert_eq!(probe.writes(), 0);
}

/// 2. A first write sets a cookie with the secure defaults and stores the data.
pub async fn first_write<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), config()).await;
    let r = get(&server, "/set/a/1", None).await;
    assert_eq!(r.status, 200);
    let c = r.cookie();
    assert_eq!(c.name(), "id");
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.secure(), Some(true));
    assert_eq!(c.same_site(), Some(SameSite::Lax));
    assert_eq!(c.path(), Some("/"));
    assert_eq!(c.domain(), None);
    assert_eq!(c.max_age(), None, "a browser-session cookie by default");
    let id: Id = c.value().parse().expect("the value is an id");
    let record = probe.record(&id).await.expect("stored");
    assert_eq!(record.data["a"], json!(1));
    assert_eq!(probe.calls(Op::Create), 1);
    assert_eq!(probe.writes(), 1);
}

/// 3. The cookie brings the value back; nothing changed, nothing is written or sent.
pub async fn second_request_reads<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), config()).await;
    let pair = get(&server, "/set/a/1", None).await.cookie_pair();
    let r = get(&server, "/get/a", Some(&pair)).await;
    assert_eq!(r.json(), json!(1));
    assert!(r.set_cookies.is_empty(), "{:?}", r.set_cookies);
    assert_eq!(probe.writes(), 1, "only the create");
    assert_eq!(probe.calls(Op::Load), 1);
}

/// 4. Expiry: `Max-Age` and the store's TTL are the same number, and slide together.
pub async fn expiry_and_ttl<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let inactivity = config().to_builder_with(|b| {
        b.expiry(Expiry::OnInactivity(Duration::seconds(600)))
            .touch_policy(TouchPolicy::OnEveryRequest)
    });
    let server = F::serve(probe.clone(), inactivity).await;
    let r = get(&server, "/set/a/1", None).await;
    let c = r.cookie();
    assert_eq!(c.max_age(), Some(Duration::seconds(600)));
    // Expires beside it, for clients that ignore Max-Age: the same instant.
    let expires = c.expires_datetime().expect("an Expires attribute");
    let id: Id = c.value().parse().unwrap();
    let first = probe.record(&id).await.unwrap().expires_at;
    assert!(near(expires, first, 2), "Expires {expires} vs {first}");
    assert!(near(
        first,
        OffsetDateTime::now_utc() + Duration::seconds(600),
        2
    ));

    tokio::time::sleep(StdDuration::from_millis(1_100)).await;
    let r = get(&server, "/get/a", Some(&r.cookie_pair())).await;
    assert_eq!(r.json(), json!(1));
    assert_eq!(
        r.cookie().max_age(),
        Some(Duration::seconds(600)),
        "the cookie slides"
    );
    let second = probe.record(&id).await.unwrap().expires_at;
    assert!(
        second - first >= Duration::seconds(1),
        "the record slides: {first} -> {second}"
    );
    assert_eq!(probe.calls(Op::Touch), 1);
    assert_eq!(probe.calls(Op::Save), 0, "a touch rewrites no data");
    drop(server);

    // AtDateTime: the seconds left, on both sides.
    let end = OffsetDateTime::now_utc() + Duration::seconds(1_000);
    let server = F::serve(
        probe.clone(),
        config().to_builder_with(|b| b.expiry(Expiry::AtDateTime(end))),
    )
    .await;
    let r = get(&server, "/set/a/1", None).await;
    let age = r.cookie().max_age().unwrap().whole_seconds();
    assert!((998..=1_000).contains(&age), "Max-Age {age}");
    let id: Id = r.cookie().value().parse().unwrap();
    assert!(near(probe.record(&id).await.unwrap().expires_at, end, 2));
    drop(server);

    // OnSessionEnd: no Max-Age, the default store TTL (24 h).
    let server = F::serve(probe.clone(), config()).await;
    let r = get(&server, "/set/a/1", None).await;
    assert_eq!(r.cookie().max_age(), None);
    assert_eq!(r.cookie().expires(), None, "a browser-session cookie");
    let id: Id = r.cookie().value().parse().unwrap();
    let day = OffsetDateTime::now_utc() + Duration::hours(24);
    assert!(near(probe.record(&id).await.unwrap().expires_at, day, 2));

    // A handler's own expiry ("remember me") is kept with the session.
    let r = get(&server, "/remember/2592000", Some(&r.cookie_pair())).await;
    assert_eq!(r.cookie().max_age(), Some(Duration::days(30)));
    let month = OffsetDateTime::now_utc() + Duration::days(30);
    assert!(near(probe.record(&id).await.unwrap().expires_at, month, 2));
}

/// 5. Unknown, malformed and hostile ids are a fresh session: never an error, never the
///    client's id, no store write unless the handler writes.
pub async fn bad_ids_are_fresh_sessions<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), config()).await;
    let unknown = Id::random().encode().as_str().to_owned();
    let cases = vec![
        format!("id={unknown}"),
        "id=".to_string(),
        format!("id={}", &unknown[..21]),
        format!("id={unknown}A"),
        "id=!!!!!!!!!!!!!!!!!!!!!!".to_string(),
        format!("id={}", "A".repeat(4 * 1024)),
        format!("id={}", "A".repeat(64 * 1024)),
        format!("id=bogus; id={unknown}; id=x"),
        format!("{unknown}; lonely; other=1"),
    ];
    for cookie in &cases {
        let r = get(&server, "/all", Some(cookie)).await;
        assert_eq!(r.status, 200, "{:.60}", cookie);
        assert_eq!(r.json(), json!({}));
        assert!(r.set_cookies.is_empty());
    }
    assert_eq!(probe.writes(), 0);
    for cookie in &cases {
        let r = get(&server, "/set/k/1", Some(cookie)).await;
        assert_eq!(r.status, 200);
        let issued = r.cookie().value().to_owned();
        assert_ne!(issued, unknown, "the client's id was adopted");
        assert!(!cookie.contains(&format!("id={issued}")));
    }
    assert_eq!(probe.calls(Op::Create), cases.len());
}

/// 6. `cycle_id` at login: a new id, the data kept, the old id no longer loads.
pub async fn cycle_id_at_login<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), config()).await;
    let before = get(&server, "/set/cart/[\"apple\"]", None)
        .await
        .cookie_pair();
    let r = get(&server, "/login/ada", Some(&before)).await;
    let after = r.cookie_pair();
    assert_ne!(after, before);
    let all = get(&server, "/all", Some(&after)).await.json();
    assert_eq!(all, json!({"cart": ["apple"], "user": "ada"}));
    assert_eq!(get(&server, "/all", Some(&before)).await.json(), json!({}));
    assert!(probe.record(&id_of(&before)).await.is_none());
}

/// 7. `flush` (logout): the record is gone, the removal cookie matches the one that set
///    it, and replaying the old cookie gives a fresh, empty session.
pub async fn flush_logs_out<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let cfg =
        config().to_builder_with(|b| b.domain("example.test").same_site(cookie::SameSite::Strict));
    let server = F::serve(probe.clone(), cfg).await;
    let r = get(&server, "/set/user/\"ada\"", None).await;
    let set = r.cookie();
    let pair = r.cookie_pair();
    let r = get(&server, "/flush", Some(&pair)).await;
    let gone = r.cookie();
    assert_eq!(gone.name(), "id");
    assert_eq!(gone.value(), "");
    assert_eq!(gone.max_age(), Some(Duration::ZERO));
    assert_eq!(
        gone.expires_datetime(),
        Some(OffsetDateTime::UNIX_EPOCH),
        "Expires in the past too"
    );
    assert_eq!(gone.path(), set.path());
    assert_eq!(gone.domain(), Some("example.test"));
    assert_eq!(gone.domain(), set.domain());
    assert_eq!(gone.secure(), set.secure());
    assert_eq!(gone.http_only(), set.http_only());
    assert_eq!(gone.same_site(), set.same_site());
    assert!(probe.record(&id_of(&pair)).await.is_none());
    let r = get(&server, "/all", Some(&pair)).await;
    assert_eq!(r.json(), json!({}));
    assert!(r.set_cookies.is_empty());

    // Logout through the handle reads nothing and does the same.
    let pair = get(&server, "/set/user/\"bob\"", None).await.cookie_pair();
    let loads = probe.calls(Op::Load);
    let r = get(&server, "/logout", Some(&pair)).await;
    assert_eq!(r.status, 200);
    let gone = r.cookie();
    assert_eq!((gone.value(), gone.max_age()), ("", Some(Duration::ZERO)));
    assert_eq!(gone.domain(), Some("example.test"));
    assert_eq!(probe.calls(Op::Load), loads, "a logout needs no read");
    assert!(probe.record(&id_of(&pair)).await.is_none());
}

/// 8. Removing the last value removes the cookie and the record.
pub async fn removing_the_last_value<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), config()).await;
    let pair = get(&server, "/set/a/1", None).await.cookie_pair();
    let r = get(&server, "/remove/a", Some(&pair)).await;
    assert_eq!(r.cookie().max_age(), Some(Duration::ZERO));
    assert!(probe.record(&id_of(&pair)).await.is_none());
}

/// 9. Signed and private cookies: tampering is a fresh session; an old key's cookie is
///    accepted and re-issued with the current key.
pub async fn signed_and_private<F: Framework, S: SessionStore + Clone>(store: S) {
    for signed in [true, false] {
        let probe = Probe::new(store.clone());
        let protect = |key: Key, old: Vec<Key>| {
            config().to_builder_with(move |b| {
                let b = if signed {
                    b.signed(key)
                } else {
                    b.private(key)
                };
                b.old_keys(old)
            })
        };
        let (old, new) = (Key::generate(), Key::generate());
        let server = F::serve(probe.clone(), protect(old.clone(), vec![])).await;
        let pair = get(&server, "/set/a/1", None).await.cookie_pair();
        assert_eq!(get(&server, "/get/a", Some(&pair)).await.json(), json!(1));

        // Tampered: every position of the value, one character changed.
        let (name, value) = pair.split_once('=').unwrap();
        for i in (0..value.len()).step_by(7) {
            let mut bytes = value.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
            let r = get(&server, "/get/a", Some(&tampered)).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.json(), Value::Null, "signed={signed} tampered at {i}");
            assert!(r.set_cookies.is_empty());
        }
        drop(server);

        // Rotation: the old key's cookie still works and is re-issued under the new key.
        let rotated = F::serve(probe.clone(), protect(new.clone(), vec![old.clone()])).await;
        let r = get(&rotated, "/get/a", Some(&pair)).await;
        assert_eq!(r.json(), json!(1));
        let reissued = r.cookie_pair();
        assert_ne!(reissued, pair);
        drop(rotated);
        let new_only = F::serve(probe.clone(), protect(new.clone(), vec![])).await;
        assert_eq!(
            get(&new_only, "/get/a", Some(&reissued)).await.json(),
            json!(1)
        );
        assert_eq!(
            get(&new_only, "/get/a", Some(&pair)).await.json(),
            Value::Null
        );
    }
}

/// 10. Header mode: the id travels in `x-session-id` both ways, no cookie.
pub async fn header_mode<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(
        probe.clone(),
        config().to_builder_with(|b| b.id_header("x-session-id")),
    )
    .await;
    let r = get(&server, "/set/a/1", None).await;
    assert!(r.set_cookies.is_empty());
    let id = r.headers["x-session-id"].to_str().unwrap().to_owned();
    let parsed: Id = id.parse().expect("the header carries the id");
    assert!(probe.record(&parsed).await.is_some());
    let r = get_with(&server, "/get/a", &[("x-session-id", &id)]).await;
    assert_eq!(r.json(), json!(1));
    assert!(
        r.headers.get("x-session-id").is_none(),
        "nothing changed, nothing sent"
    );
    let r = get(&server, "/get/a", Some(&format!("id={id}"))).await;
    assert_eq!(r.json(), Value::Null, "a cookie is not read in header mode");
    let r = get_with(&server, "/flush", &[("x-session-id", &id)]).await;
    assert_eq!(r.headers["x-session-id"], "");
    assert!(probe.record(&parsed).await.is_none());
}

/// 11. A handler's 5xx after a change: nothing saved, the session intact.
pub async fn server_error_saves_nothing<F: Framework, S: SessionStore + Clone>(store: S) {
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), config()).await;
    let pair = get(&server, "/set/a/1", None).await.cookie_pair();
    let r = get(&server, "/fail/a/2", Some(&pair)).await;
    assert_eq!(r.status, 500);
    assert!(r.set_cookies.is_empty());
    assert_eq!(probe.calls(Op::Save), 0);
    assert_eq!(get(&server, "/get/a", Some(&pair)).await.json(), json!(1));
    // And a brand-new session is not created by a failing handler either.
    let r = get(&server, "/fail/b/1", None).await;
    assert_eq!(r.status, 500);
    assert!(r.set_cookies.is_empty());
    assert_eq!(probe.calls(Op::Create), 1);
}

/// A logout, then the handler fails: the session is deleted and the cookie removed all
/// the same (deletions are not changes a failed request may take back).
pub async fn server_error_still_logs_out<F: Framework, S: SessionStore + Clone>(store: S) {
    let server = F::serve(store, config()).await;
    let pair = get(&server, "/set/a/1", None).await.cookie_pair();
    let r = get(&server, "/failflush", Some(&pair)).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.cookie().max_age(),
        Some(time::Duration::ZERO),
        "{}: the cookie is removed",
        F::NAME
    );
    assert_eq!(get(&server, "/all", Some(&pair)).await.json(), json!({}));
}

/// 12. A failing store: 503 when unavailable, 500 otherwise, bodies free of its text;
///     routes that do not use the session keep answering.
pub async fn store_failures<F: Framework, S: SessionStore + Clone>(store: S) {
    crate::logs::capture();
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), config()).await;
    let pair = get(&server, "/set/a/1", None).await.cookie_pair();
    for (fault, status) in [(Fault::Unavailable, 503), (Fault::Backend, 500)] {
        for (op, path, cookie) in [
            (Op::Load, "/get/a", Some(pair.as_str())),
            (Op::Save, "/set/a/2", Some(pair.as_str())),
            (Op::Create, "/set/b/1", None),
            (Op::Delete, "/flush", Some(pair.as_str())),
        ] {
            probe.heal();
            probe.fail(op, fault);
            let r = get(&server, path, cookie).await;
            assert_eq!(r.status, status, "{op:?} {fault:?}");
            assert!(
                !r.body.contains("hunter2") && !r.body.contains("10.9.8.7"),
                "{}",
                r.body
            );
            assert_ne!(r.body, "ok", "the handler's body must not claim success");
            if op == Op::Delete {
                let gone = r.cookie();
                assert_eq!(
                    gone.max_age(),
                    Some(Duration::ZERO),
                    "a failed logout still removes the cookie"
                );
            } else {
                assert!(r.set_cookies.is_empty(), "{op:?}: {:?}", r.set_cookies);
            }
            let r = get(&server, "/plain", cookie).await;
            assert_eq!((r.status, r.body.as_str()), (200, "plain"));
        }
    }
    probe.heal();
    assert_eq!(
        get(&server, "/get/a", Some(&pair)).await.json(),
        json!(1),
        "nothing was lost"
    );
    assert!(crate::logs::text().contains(SECRET), "the cause is logged");
}

/// 13. 50 concurrent requests of one session, each writing its own key.
pub async fn concurrent_writes<F: Framework, S: SessionStore + Clone>(store: S, caps: Caps) {
    let probe = Probe::new(store);
    let server = std::sync::Arc::new(F::serve(probe.clone(), config()).await);
    let pair = get(&server, "/set/start/0", None).await.cookie_pair();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (server, pair) = (server.clone(), pair.clone());
        tasks.push(tokio::spawn(async move {
            get(&server, &format!("/set/k{i}/{i}"), Some(&pair))
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let all = get(&server, "/all", Some(&pair)).await.json();
    let all = all.as_object().unwrap();
    assert_eq!(all["start"], json!(0));
    let written: Vec<usize> = (0..50)
        .filter(|i| all.contains_key(&format!("k{i}")))
        .collect();
    if caps.delta_saves {
        assert_eq!(written.len(), 50, "lost keys: only {written:?} survived");
    } else {
        // Whole-record stores promise last-writer-wins: some writer's state, complete.
        assert!(!written.is_empty(), "no writer's state survived");
        for i in &written {
            assert_eq!(all[&format!("k{i}")], json!(i));
        }
    }
}

/// 14. The extractor without its layer: a 500 and a log line that says why.
pub async fn extractor_without_layer<F: Framework, S: SessionStore + Clone>(store: S) {
    crate::logs::capture();
    let server = F::serve(Probe::new(store), config()).await;
    let r = get(&server, "/nolayer", None).await;
    assert_eq!(r.status, 500);
    let logs = crate::logs::text();
    assert!(
        logs.lines()
            .any(|l| l.contains(F::MISSING_LAYER_HINT) && l.contains("/nolayer")),
        "{} did not log {:?}",
        F::NAME,
        F::MISSING_LAYER_HINT
    );
}

/// A browser-like flow with a real cookie jar (plain http, so `Secure` off).
pub async fn cookie_jar_flow<F: Framework, S: SessionStore + Clone>(store: S) {
    let server = F::serve(
        Probe::new(store),
        config().to_builder_with(|b| b.secure(false)),
    )
    .await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let text = |path: &'static str| {
        let (client, url) = (client.clone(), server.url(path));
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(text("/set/cart/3").await, "ok");
    assert_eq!(text("/get/cart").await, "3");
    assert_eq!(text("/login/ada").await, "ok");
    assert_eq!(text("/all").await, r#"{"cart":3,"user":"ada"}"#);
    assert_eq!(text("/flush").await, "ok");
    assert_eq!(text("/all").await, "{}");
}

/// A session's limits: inserts past them answer the handler's 413 with a clear message,
/// and what was stored before stays.
pub async fn limits_are_enforced<F: Framework, S: SessionStore + Clone>(store: S) {
    let server = F::serve(
        store,
        config().to_builder_with(|b| b.max_keys(50).max_bytes(2_000)),
    )
    .await;
    let r = get(&server, "/fill/50", None).await;
    assert_eq!(r.status, 200, "{}: 50 keys fit", F::NAME);
    let pair = r.cookie_pair();
    let r = get(&server, "/set/one_more/1", Some(&pair)).await;
    assert_eq!(r.status, 413);
    assert!(
        r.body.contains("limit of 50 keys") && r.body.contains("one_more"),
        "{}: {}",
        F::NAME,
        r.body
    );
    // Replacing a value is not a new key.
    assert_eq!(get(&server, "/set/f0/7", Some(&pair)).await.status, 200);
    let all = get(&server, "/all", Some(&pair)).await.json();
    assert_eq!(all.as_object().map(|m| m.len()), Some(50));
    assert_eq!(all["f0"], serde_json::json!(7));

    let big = "x".repeat(1_500);
    let r = get(&server, &format!("/set/big/\"{big}\""), None).await;
    assert_eq!(r.status, 200, "{}: 1 500 bytes fit", F::NAME);
    let pair = r.cookie_pair();
    let r = get(&server, &format!("/set/bigger/\"{big}\""), Some(&pair)).await;
    assert_eq!(r.status, 413);
    assert!(r.body.contains("limit of 2000 bytes"), "{}", r.body);
    // Removing a value frees its bytes.
    assert_eq!(get(&server, "/remove/big", Some(&pair)).await.status, 200);
    let r = get(&server, &format!("/set/bigger/\"{big}\""), Some(&pair)).await;
    assert_eq!(r.status, 200, "{}: {}", F::NAME, r.body);
}

/// `?` on a session accessor's error in a handler compiles on both frameworks and
/// answers an opaque 500: the body names neither the key nor the cause, which is logged;
/// the session keeps what it had.
pub async fn question_mark_in_handlers<F: Framework, S: SessionStore + Clone>(store: S) {
    crate::logs::capture();
    let server = F::serve(store, config()).await;
    let pair = get(&server, "/set/a/1", None).await.cookie_pair();
    let r = get(&server, "/try/__session_core/1", Some(&pair)).await;
    assert_eq!(r.status, 500, "{}", F::NAME);
    assert_eq!(r.body, "Internal Server Error", "{}: opaque", F::NAME);
    let logs = crate::logs::text();
    assert!(
        logs.contains("a session accessor failed in a handler") && logs.contains("__session_core"),
        "{}: the cause is logged",
        F::NAME
    );
    assert_eq!(get(&server, "/try/b/2", Some(&pair)).await.status, 200);
    assert_eq!(get(&server, "/get/b", Some(&pair)).await.body, "2");
    assert_eq!(get(&server, "/get/a", Some(&pair)).await.body, "1");
}

/// Values no store could hold are refused when inserted, with a clear message: the
/// engine's reserved key, and values nested deeper than [`session_core::MAX_DEPTH`].
pub async fn refused_values<F: Framework, S: SessionStore + Clone>(store: S) {
    let server = F::serve(store, config()).await;
    let pair = get(&server, "/set/a/1", None).await.cookie_pair();
    let r = get(&server, "/set/__session_core/1", Some(&pair)).await;
    assert_eq!(r.status, 413);
    assert!(r.body.contains("reserved"), "{}: {}", F::NAME, r.body);
    let depth = session_core::MAX_DEPTH;
    let deep = format!("{}{}", "[".repeat(depth + 1), "]".repeat(depth + 1));
    let r = get(&server, &format!("/set/deep/{deep}"), Some(&pair)).await;
    assert_eq!(r.status, 413);
    assert!(
        r.body.contains("nests more than"),
        "{}: {}",
        F::NAME,
        r.body
    );
    // The deepest accepted value is stored and reads back on every store.
    let ok = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(
        get(&server, &format!("/set/deep/{ok}"), Some(&pair))
            .await
            .status,
        200
    );
    let back = get(&server, "/get/deep", Some(&pair)).await;
    assert_eq!(back.status, 200);
    assert_eq!(back.body, ok, "{}", F::NAME);
    assert_eq!(
        get(&server, "/get/a", Some(&pair)).await.json(),
        serde_json::json!(1)
    );
}

/// Two apps sharing a signing key and a store, with different cookie names: an id
/// signed for one name is not accepted under the other (a cookie planted by a sibling
/// app cannot log in as its session).
pub async fn signed_ids_are_bound_to_the_cookie_name<F: Framework, S: SessionStore + Clone>(
    store: S,
) {
    let key = session_core::Key::from(&[9u8; 64]);
    let signed = |name: &str| config().to_builder_with(|b| b.name(name).signed(key.clone()));
    let first = F::serve(store.clone(), signed("sid")).await;
    let second = F::serve(store, signed("admin_sid")).await;
    let r = get(&first, "/set/user/\"ada\"", None).await;
    let value = r.cookie().value().to_owned();
    assert_eq!(
        get(&first, "/get/user", Some(&format!("sid={value}")))
            .await
            .json(),
        json!("ada")
    );
    let r = get(&second, "/get/user", Some(&format!("admin_sid={value}"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!(null),
        "{}: accepted under another name",
        F::NAME
    );
}

/// Cookies of the session's name planted beside the user's (a well-formed unknown id, as
/// a sibling subdomain could set, and junk) do not hide the user's session.
pub async fn planted_cookies_do_not_shadow_the_session<F: Framework, S: SessionStore + Clone>(
    store: S,
) {
    let server = F::serve(store, config()).await;
    let real = get(&server, "/set/user/\"ada\"", None).await.cookie_pair();
    let planted = format!("id={}", session_core::Id::random().encode().as_str());
    let header = format!("id=junk; {planted}; id=more-junk; {real}");
    let r = get(&server, "/get/user", Some(&header)).await;
    assert_eq!(
        r.json(),
        json!("ada"),
        "{}: the real session was hidden",
        F::NAME
    );
    assert!(r.set_cookies.is_empty(), "{}: nothing to re-send", F::NAME);
}

/// A session of 5 000 keys is written, read and changed by key like a small one.
pub async fn large_sessions<F: Framework, S: SessionStore + Clone>(store: S) {
    let server = F::serve(store, config()).await;
    let r = get(&server, "/fill/5000", None).await;
    assert_eq!(r.status, 200, "{}: {}", F::NAME, r.body);
    let pair = r.cookie_pair();
    assert_eq!(get(&server, "/set/f4999/-1", Some(&pair)).await.status, 200);
    let all = get(&server, "/all", Some(&pair)).await.json();
    let all = all.as_object().expect("an object");
    assert_eq!(all.len(), 5_000);
    assert_eq!(all["f0"], serde_json::json!(0));
    assert_eq!(all["f4999"], serde_json::json!(-1));
}

/// Small extension so scenarios can tweak the default configuration in one line.
pub trait ConfigExt {
    /// Rebuilds this configuration with `f` applied to its builder.
    fn to_builder_with(
        &self,
        f: impl FnOnce(session_core::SessionConfigBuilder) -> session_core::SessionConfigBuilder,
    ) -> SessionConfig;
}

impl ConfigExt for SessionConfig {
    fn to_builder_with(
        &self,
        f: impl FnOnce(session_core::SessionConfigBuilder) -> session_core::SessionConfigBuilder,
    ) -> SessionConfig {
        f(session_core::SessionConfigBuilder::from(self))
            .build()
            .expect("a valid test configuration")
    }
}

/// A user's sessions through the extractor: login binds the session (and the binding
/// survives `cycle_id`, and stays out of the values); the user lists their own
/// sessions, the current one marked; "log out other devices" ends the others at once
/// (their cookies are fresh sessions after), "log out everywhere" ends the rest and
/// removes this cookie. Another user's sessions are untouched. A store that cannot
/// answers 501 in the app (`StoreError::Unsupported`).
pub async fn user_sessions_over_http<F: Framework, S: SessionStore + Clone>(store: S, caps: Caps) {
    use crate::store_suite::{fresh_user, UserSessions};
    let probe = Probe::new(store);
    let server = F::serve(probe.clone(), config()).await;
    let (ada, bob) = (fresh_user(), fresh_user());
    let login = |user: &str, label: &str| format!("/bind/{user}/{label}");
    // An anonymous visit first, then a login on it: the id changes, the cart stays.
    let before = get(&server, "/set/cart/1", None).await.cookie_pair();
    let phone = get(&server, &login(&ada, "Phone"), Some(&before))
        .await
        .cookie_pair();
    assert_ne!(phone, before, "cycle_id at login");
    let laptop = get(&server, &login(&ada, "Laptop"), None)
        .await
        .cookie_pair();
    let tablet = get(&server, &login(&ada, "Tablet"), None)
        .await
        .cookie_pair();
    let other = get(&server, &login(&bob, "Bob's"), None)
        .await
        .cookie_pair();
    assert_eq!(
        get(&server, "/whoami", Some(&phone)).await.json(),
        json!(ada)
    );
    assert_eq!(
        get(&server, "/all", Some(&phone)).await.json(),
        json!({"cart": 1}),
        "the binding is not among the values"
    );
    assert_eq!(
        get(&server, "/whoami", Some(&before)).await.json(),
        json!(null)
    );

    let r = get(&server, "/sessions", Some(&phone)).await;
    match caps.user_sessions {
        UserSessions::Supported => {}
        UserSessions::Unsupported => {
            assert_eq!((r.status, r.body.as_str()), (501, "unsupported"));
            let r = get(&server, "/end-others", Some(&phone)).await;
            assert_eq!(r.status, 501);
            assert!(
                probe.record(&id_of(&laptop)).await.is_some(),
                "nothing ended"
            );
            return;
        }
        UserSessions::NotShownHere => {
            let line = "http suite: user_sessions_over_http was NOT run: the protocol test \
                        server has no secondary indexes; set AEROSPIKE_HOSTS to run it\n";
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            return;
        }
    }
    assert_eq!(r.status, 200, "{}", r.body);
    let list = r.json();
    let list = list.as_array().unwrap();
    let short = |pair: &str| id_of(pair).encode().as_str()[..6].to_owned();
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(
        list[0]["short_id"],
        json!(short(&phone)),
        "the current one first"
    );
    assert_eq!(list[0]["current"], json!(true));
    assert_eq!(list[0]["label"], json!("Phone"));
    let mut others: Vec<(String, String)> = list[1..]
        .iter()
        .map(|i| {
            assert_eq!(i["current"], json!(false));
            assert_eq!(i["user"], json!(ada));
            (
                i["short_id"].as_str().unwrap().to_owned(),
                i["label"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    others.sort();
    let mut want = vec![
        (short(&laptop), "Laptop".to_owned()),
        (short(&tablet), "Tablet".to_owned()),
    ];
    want.sort();
    assert_eq!(others, want);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    for i in list {
        assert!((now - i["last_seen"].as_i64().unwrap()).abs() < 30, "{i}");
        assert!(i["expires_at"].as_i64().unwrap() > now, "{i}");
    }
    let none = get(&server, "/sessions", Some(&before)).await;
    assert_eq!(none.json(), json!([]), "an old anonymous id is no one");

    // Log out other devices: the laptop and the tablet end now.
    let r = get(&server, "/end-others", Some(&phone)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "2"));
    assert!(r.set_cookies.is_empty(), "this session stays as it is");
    for gone in [&laptop, &tablet] {
        assert!(probe.record(&id_of(gone)).await.is_none());
        assert_eq!(
            get(&server, "/whoami", Some(gone)).await.json(),
            json!(null)
        );
        assert_eq!(get(&server, "/all", Some(gone)).await.json(), json!({}));
    }
    // A late write of an ended session brings nothing back.
    let r = get(&server, "/set/late/1", Some(&laptop)).await;
    assert_ne!(
        r.cookie_pair(),
        laptop,
        "a fresh session, never the ended id"
    );
    assert!(probe.record(&id_of(&laptop)).await.is_none());
    let list = get(&server, "/sessions", Some(&phone)).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        get(&server, "/whoami", Some(&other)).await.json(),
        json!(bob)
    );

    // Log out everywhere: this session too, its cookie removed.
    let second = get(&server, &login(&ada, "Second"), None)
        .await
        .cookie_pair();
    let r = get(&server, "/end-all", Some(&phone)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "2"));
    let removal = r.cookie();
    assert_eq!(
        (removal.value(), removal.max_age()),
        ("", Some(Duration::ZERO))
    );
    for gone in [&phone, &second] {
        assert!(probe.record(&id_of(gone)).await.is_none());
        assert_eq!(
            get(&server, "/whoami", Some(gone)).await.json(),
            json!(null)
        );
    }
    let r = get(&server, "/sessions", Some(&other)).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "bob's session lives");
}

/// Instantiates every HTTP scenario as a `#[tokio::test]` in a module named `$name`, for
/// framework `$framework`, a fresh store per test from the future `$factory`, and `$caps`.
#[macro_export]
macro_rules! http_suite {
    ($name:ident, $framework:ty, $factory:expr, $caps:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::http_suite as suite;

            $crate::http_suite!(@tests $framework, $factory,
                read_without_cookie, first_write, second_request_reads, expiry_and_ttl,
                bad_ids_are_fresh_sessions, cycle_id_at_login, flush_logs_out,
                removing_the_last_value, signed_and_private, header_mode,
                server_error_saves_nothing, store_failures, extractor_without_layer,
                cookie_jar_flow, limits_are_enforced, large_sessions, refused_values,
                question_mark_in_handlers,
                server_error_still_logs_out, signed_ids_are_bound_to_the_cookie_name,
                planted_cookies_do_not_shadow_the_session);

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_writes() {
                suite::concurrent_writes::<$framework, _>(($factory).await, $caps).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn user_sessions_over_http() {
                suite::user_sessions_over_http::<$framework, _>(($factory).await, $caps).await;
            }
        }
    };
    (@tests $framework:ty, $factory:expr, $($test:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                suite::$test::<$framework, _>(($factory).await).await;
            }
        )*
    };
}
