//! The demo's page and actions, framework-neutral: both apps call these with their
//! `Session` (which derefs to [`session_core::Session`]).

use std::fmt::Write as _;

use html_escape::encode_text;
use serde::Deserialize;
use session_core::{Expiry, Session};
use time::Duration;

/// How long "remember me" keeps an idle session.
pub const REMEMBER: Duration = Duration::days(30);

/// A form with one text field, for the cart and the login.
#[derive(Debug, Deserialize)]
pub struct Field {
    /// The field's value.
    pub value: String,
}

/// Counts this page view.
pub fn visit(session: &Session) {
    session
        .update_or("visits", 0u64, |n| *n += 1)
        .expect("visits is a number");
}

/// Adds `item` to the cart (blank items are ignored).
pub fn add_to_cart(session: &Session, item: &str) {
    let item = item.trim();
    if item.is_empty() {
        return;
    }
    let item = item.chars().take(40).collect::<String>();
    session
        .update_or("cart", Vec::<String>::new(), |cart| cart.push(item.clone()))
        .expect("the cart is a list");
}

/// Logs in as `name`: a new session id, the data kept.
pub fn login(session: &Session, name: &str) {
    let name: String = name.trim().chars().take(40).collect();
    if name.is_empty() {
        return;
    }
    session.insert("user", name).expect("a string serializes");
    session.cycle_id();
}

/// Logs out: the session is deleted and its cookie removed.
pub fn logout(session: &Session) {
    session.flush();
}

/// "Remember me": the session now lasts [`REMEMBER`] of inactivity instead of the
/// browser session.
pub fn remember(session: &Session) {
    session.set_expiry(Some(Expiry::OnInactivity(REMEMBER)));
}

/// The page, rendered on the server.
pub fn page(framework: &str, other: (&str, &str), secure: bool, session: &Session) -> String {
    let visits: u64 = session.get("visits").ok().flatten().unwrap_or(0);
    let cart: Vec<String> = session.get("cart").ok().flatten().unwrap_or_default();
    let user: Option<String> = session.get("user").ok().flatten();
    let id = match session.id() {
        Some(id) => format!("<code id=\"sid\">{}</code>", id.short()),
        None => "<code id=\"sid\">new</code> (stored when this response is sent)".to_string(),
    };
    let expiry = match session.expiry() {
        Expiry::OnSessionEnd => "when the browser closes (browser-session cookie)".to_string(),
        Expiry::OnInactivity(d) => format!("after {} days without a visit", d.whole_days()),
        Expiry::AtDateTime(t) => format!("at {t}"),
    };
    let mut items = String::new();
    for item in &cart {
        let _ = write!(items, "<li>{}</li>", encode_text(item));
    }
    if cart.is_empty() {
        items.push_str("<li><em>empty</em></li>");
    }
    let account = match &user {
        Some(u) => format!(
            "<p>Logged in as <strong id=\"user\">{}</strong>.</p>\
             <form method=\"post\" action=\"/logout\"><button id=\"logout\">Log out</button></form>",
            encode_text(u)
        ),
        None => "<form method=\"post\" action=\"/login\">\
                 <input name=\"value\" id=\"name\" placeholder=\"your name\">\
                 <button id=\"login\">Log in</button></form>"
            .to_string(),
    };
    let cookie_note = if secure {
        "The cookie is <code>Secure</code>, <code>HttpOnly</code>, <code>SameSite=Lax</code>."
    } else {
        "This demo serves plain http on 127.0.0.1, so it turns the cookie's <code>Secure</code> \
         flag off (the library's default is on). The cookie is <code>HttpOnly</code> and \
         <code>SameSite=Lax</code>."
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>session demo: {framework}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; line-height: 1.5; }}
.card {{ border: 1px solid #ccc; border-radius: 8px; padding: 1rem 1.25rem; margin: 1rem 0; }}
.fw {{ background: #eef; padding: 0.1rem 0.5rem; border-radius: 4px; }}
</style></head>
<body>
<h1>Served by <span class="fw" id="framework">{framework}</span></h1>
<p>Both apps share one session store: <a id="switch" href="{other_url}">continue on {other_name}</a>
and your session comes along.</p>
<div class="card"><p>Visits in this session: <strong id="visits">{visits}</strong></p>
<p>Session id: {id}<br>Ends {expiry}.</p>
<form method="post" action="/remember"><button id="remember">Remember me for 30 days</button></form></div>
<div class="card"><h2>Cart</h2><ul id="cart">{items}</ul>
<form method="post" action="/cart"><input name="value" id="item" placeholder="an item">
<button id="add">Add to cart</button></form></div>
<div class="card"><h2>Account</h2>{account}
<p><small>Logging in gives the session a new id and keeps the cart; logging out deletes it.</small></p></div>
<p><small>{cookie_note}</small></p>
</body></html>"#,
        other_name = other.0,
        other_url = other.1,
    )
}

/// The demo's session configuration: signed with `key`, and `Secure` off because the demo
/// serves plain http on 127.0.0.1 (the page says so; the library default stays on).
pub fn config(key: session_core::Key) -> session_core::SessionConfig {
    session_core::SessionConfig::builder()
        .secure(false)
        .signed(key)
        .build()
        .expect("the demo configuration is valid")
}

/// The demo on axum; `other` is the actix-web app's URL, for the switch link.
pub fn axum_app<S: session_core::SessionStore>(
    store: S,
    config: session_core::SessionConfig,
    other: String,
) -> axum::Router {
    use axum::extract::Form;
    use axum::response::{Html, Redirect};
    use axum::routing::{get, post};
    use session_axum::{Session, SessionLayer};

    let secure = config.secure();
    let index = move |session: Session| {
        let other = other.clone();
        async move {
            visit(&session);
            Html(page("axum", ("actix-web", &other), secure, &session))
        }
    };
    axum::Router::new()
        .route("/", get(index))
        .route(
            "/cart",
            post(|s: Session, Form(f): Form<Field>| async move {
                add_to_cart(&s, &f.value);
                Redirect::to("/")
            }),
        )
        .route(
            "/login",
            post(|s: Session, Form(f): Form<Field>| async move {
                login(&s, &f.value);
                Redirect::to("/")
            }),
        )
        .route(
            "/logout",
            post(|s: Session| async move {
                logout(&s);
                Redirect::to("/")
            }),
        )
        .route(
            "/remember",
            post(|s: Session| async move {
                remember(&s);
                Redirect::to("/")
            }),
        )
        .layer(SessionLayer::new(store).with_config(config))
}

/// What the actix-web app needs besides its session: the axum app's URL and whether the
/// cookie is `Secure`. Register it with `App::app_data`.
pub type ActixData = actix_web::web::Data<ActixInfo>;

/// See [`ActixData`].
#[derive(Debug, Clone)]
pub struct ActixInfo {
    other: String,
    secure: bool,
}

impl ActixInfo {
    /// The data for an actix-web app whose sibling axum app is at `other`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(other: String, secure: bool) -> ActixData {
        actix_web::web::Data::new(ActixInfo { other, secure })
    }
}

mod actix_handlers {
    use actix_web::http::header;
    use actix_web::{web, HttpResponse};
    use session_actix::Session;

    use super::{ActixInfo, Field};

    fn back() -> HttpResponse {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/"))
            .finish()
    }

    pub(super) async fn index(session: Session, info: web::Data<ActixInfo>) -> HttpResponse {
        super::visit(&session);
        let page = super::page("actix-web", ("axum", &info.other), info.secure, &session);
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(page)
    }

    pub(super) async fn cart(session: Session, f: web::Form<Field>) -> HttpResponse {
        super::add_to_cart(&session, &f.value);
        back()
    }

    pub(super) async fn login(session: Session, f: web::Form<Field>) -> HttpResponse {
        super::login(&session, &f.value);
        back()
    }

    pub(super) async fn logout(session: Session) -> HttpResponse {
        super::logout(&session);
        back()
    }

    pub(super) async fn remember(session: Session) -> HttpResponse {
        super::remember(&session);
        back()
    }
}

/// The demo's routes on actix-web; wrap the app in a `SessionMiddleware` and give it
/// [`ActixData`].
pub fn actix_routes(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::web;
    cfg.route("/", web::get().to(actix_handlers::index))
        .route("/cart", web::post().to(actix_handlers::cart))
        .route("/login", web::post().to(actix_handlers::login))
        .route("/logout", web::post().to(actix_handlers::logout))
        .route("/remember", web::post().to(actix_handlers::remember));
}
