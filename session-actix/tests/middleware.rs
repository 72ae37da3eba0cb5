//! The middleware through `actix_web::test`, without a socket.

use actix_web::dev::{Service, ServiceRequest};
use actix_web::http::{header, StatusCode};
use actix_web::{guard, test, web, App, HttpResponse};
use session_actix::session_core::{Changes, Created, Record, Ttl, Update};
use session_actix::{
    CookieContentSecurity, Id, Key, MemoryStore, SameSite, Session, SessionExt, SessionMiddleware,
    SessionStore, StoreError,
};
use time::OffsetDateTime;

async fn write(session: Session) -> &'static str {
    session.insert("k", 1).unwrap();
    "written"
}

async fn plain() -> &'static str {
    "plain"
}

fn set_cookie<B>(res: &actix_web::dev::ServiceResponse<B>) -> Option<String> {
    res.headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[actix_web::test]
async fn a_write_sets_the_cookie_and_a_plain_route_does_not() {
    let store = MemoryStore::default();
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(store.clone()))
            .route("/write", web::get().to(write))
            .route("/plain", web::get().to(plain)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/write").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let set = set_cookie(&res).unwrap();
    assert!(
        set.starts_with("id=") && set.contains("HttpOnly") && set.contains("Secure"),
        "{set}"
    );
    assert_eq!(store.len(), 1);
    let res = test::call_service(&app, test::TestRequest::get().uri("/plain").to_request()).await;
    assert!(set_cookie(&res).is_none());
}

#[actix_web::test]
async fn handler_cookies_are_kept_beside_the_session_cookie() {
    async fn both(session: Session) -> HttpResponse {
        session.insert("k", 1).unwrap();
        HttpResponse::Ok()
            .insert_header((header::SET_COOKIE, "theme=dark"))
            .finish()
    }
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(MemoryStore::default()))
            .route("/", web::get().to(both)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    let cookies: Vec<_> = res.headers().get_all(header::SET_COOKIE).collect();
    assert_eq!(cookies.len(), 2);
    assert_eq!(cookies[0], "theme=dark");
}

#[actix_web::test]
async fn without_the_middleware_the_extractor_is_a_500_that_says_why() {
    let app = test::init_service(App::new().route("/write", web::get().to(write))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/write").to_request()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = test::read_body(res).await;
    assert!(std::str::from_utf8(&body)
        .unwrap()
        .contains("is `SessionMiddleware` wrapped around the app?"));
}

#[derive(Debug, Clone, Copy)]
struct Down(bool);

impl Down {
    fn err(self) -> StoreError {
        let msg = "connect 10.1.2.3:3000: password=hunter2";
        if self.0 {
            StoreError::Unavailable(msg.into())
        } else {
            StoreError::Backend(msg.into())
        }
    }
}

impl SessionStore for Down {
    async fn load(&self, _: &Id) -> Result<Option<Record>, StoreError> {
        Err(self.err())
    }
    async fn create(&self, _: &Record, _: Ttl) -> Result<Created, StoreError> {
        Err(self.err())
    }
    async fn save(&self, _: &Record, _: &Changes, _: Ttl) -> Result<Update, StoreError> {
        Err(self.err())
    }
    async fn touch(&self, _: &Id, _: OffsetDateTime, _: Ttl) -> Result<Update, StoreError> {
        Err(self.err())
    }
    async fn delete(&self, _: &Id) -> Result<(), StoreError> {
        Err(self.err())
    }
}

#[actix_web::test]
async fn store_failures_are_opaque_503s_and_500s() {
    for (unavailable, status) in [
        (true, StatusCode::SERVICE_UNAVAILABLE),
        (false, StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let app = test::init_service(
            App::new()
                .wrap(SessionMiddleware::new(Down(unavailable)))
                .route("/write", web::get().to(write))
                .route("/plain", web::get().to(plain)),
        )
        .await;
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/write").to_request()).await;
        assert_eq!(res.status(), status);
        let body = test::read_body(res).await;
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("written"),
            "{text}"
        );

        let cookie = format!("id={}", Id::random().encode().as_str());
        let req = test::TestRequest::get()
            .uri("/write")
            .insert_header((header::COOKIE, cookie))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), status);
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/plain").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
}

#[actix_web::test]
async fn invalid_settings_fail_at_build() {
    let err = SessionMiddleware::builder(MemoryStore::default())
        .cookie_same_site(SameSite::None)
        .cookie_secure(false)
        .try_build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`SameSite=None` cookies must be `Secure`"),
        "{err}"
    );
    let err = SessionMiddleware::builder(MemoryStore::default())
        .cookie_name("__Host-id")
        .cookie_path("/app")
        .try_build()
        .unwrap_err();
    assert!(err.to_string().contains("must have `Path=/`"), "{err}");
}

/// `build()` goes straight into `.wrap(...)`; a misconfiguration stops the app at
/// start-up with a message that names the setting.
#[actix_web::test]
async fn build_panics_at_start_up_naming_the_setting() {
    let panic = std::panic::catch_unwind(|| {
        SessionMiddleware::builder(MemoryStore::default())
            .cookie_same_site(SameSite::None)
            .cookie_secure(false)
            .build()
    })
    .expect_err("an invalid configuration panics");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.starts_with("invalid session configuration for `SessionMiddleware`:")
            && message.contains("`secure`"),
        "{message}"
    );
}

#[actix_web::test]
async fn scope_wrap_and_builder_settings() {
    let mw = SessionMiddleware::builder(MemoryStore::default())
        .cookie_name("sid")
        .cookie_path("/api")
        .cookie_content_security(CookieContentSecurity::Private(Key::generate()))
        .build();
    let app = test::init_service(
        App::new()
            .service(
                web::scope("/api")
                    .wrap(mw)
                    .route("/write", web::get().to(write)),
            )
            .route("/write", web::get().to(write)),
    )
    .await;
    let res = test::call_service(
        &app,
        test::TestRequest::get().uri("/api/write").to_request(),
    )
    .await;
    let set = set_cookie(&res).unwrap();
    assert!(
        set.starts_with("sid=") && set.contains("Path=/api"),
        "{set}"
    );
    let value = set.split(';').next().unwrap().strip_prefix("sid=").unwrap();
    assert!(value.parse::<Id>().is_err(), "the id is encrypted");
    // Outside the scope there is no middleware.
    let res = test::call_service(&app, test::TestRequest::get().uri("/write").to_request()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[actix_web::test]
async fn guards_and_other_middleware_reach_the_session() {
    async fn login(session: Session) -> &'static str {
        session.insert("user", "ada").unwrap();
        session.cycle_id();
        "in"
    }
    let app = test::init_service(
        App::new()
            .service(
                web::resource("/admin")
                    .guard(guard::fn_guard(|ctx| {
                        ctx.get_session()
                            .loaded()
                            .is_some_and(|s| s.contains_key("user"))
                    }))
                    .to(|| async { "welcome" }),
            )
            .route("/login", web::get().to(login))
            // Reads the session back from the response, as other middleware would.
            .wrap_fn(|req: ServiceRequest, srv| {
                let call = srv.call(req);
                async move {
                    let mut res = call.await?;
                    let n = res.get_session().loaded().map_or(0, |s| s.len());
                    res.headers_mut()
                        .insert(header::HeaderName::from_static("x-keys"), n.into());
                    Ok(res)
                }
            })
            .wrap(
                SessionMiddleware::builder(MemoryStore::default())
                    .load_before_routing(true)
                    .build(),
            ),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/admin").to_request()).await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "the guard refuses an anonymous session"
    );
    let res = test::call_service(&app, test::TestRequest::get().uri("/login").to_request()).await;
    assert_eq!(res.headers().get("x-keys").unwrap(), "1");
    let pair = set_cookie(&res)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let req = test::TestRequest::get()
        .uri("/admin")
        .insert_header((header::COOKIE, pair))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(test::read_body(res).await, "welcome");
}
