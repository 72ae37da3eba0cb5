//! The demo's page and actions, framework-neutral: both apps call these with their
//! `Session` (which derefs to [`session_core::Session`]).

use std::fmt::Write as _;

use html_escape::encode_text;
use serde::Deserialize;
use session_core::{Expiry, Session, SessionInfo};
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

/// Logs in as `name`: a new session id, the data kept, and the session bound to the
/// user (labelled with the browser and system its `User-Agent` names), so it shows in
/// the user's list of sessions.
pub fn login(session: &Session, name: &str, user_agent: &str) {
    let name: String = name.trim().chars().take(40).collect();
    if name.is_empty() {
        return;
    }
    session.cycle_id();
    session
        .set_user(name)
        .expect("a name of 1 to 40 characters");
    session
        .set_label(device_label(user_agent))
        .expect("a short label");
}

/// "Firefox on Linux", from a `User-Agent`: the first browser and system it names.
pub fn device_label(user_agent: &str) -> String {
    let browsers = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ];
    let systems = [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let pick = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| user_agent.contains(needle))
            .map(|(_, name)| *name)
    };
    match (pick(&browsers), pick(&systems)) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("a browser on {s}"),
        (None, None) => "an unknown device".to_owned(),
    }
}

/// The logged-in user's sessions for the page; `None` when nobody is logged in, or when
/// the store cannot list them (the page then shows no panel).
pub async fn sessions(session: &Session) -> Option<Vec<SessionInfo>> {
    session.user()?;
    match session.user_sessions().await {
        Ok(list) => Some(list),
        Err(e) => {
            tracing::warn!(error = %e.report(), "could not list the user's sessions");
            None
        }
    }
}

/// "Log out other devices": every other session of this user ends now.
pub async fn logout_others(session: &Session) {
    if let Err(e) = session.end_other_sessions().await {
        tracing::warn!(error = %e.report(), "could not end the user's other sessions");
    }
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

/// The "Your sessions" panel: one row per session of the user, and the button that
/// logs out the others.
fn sessions_panel(list: &[SessionInfo]) -> String {
    let when = |t: time::OffsetDateTime| {
        let ago = time::OffsetDateTime::now_utc() - t;
        if ago < Duration::minutes(1) {
            "just now".to_owned()
        } else if ago < Duration::hours(1) {
            format!("{} min ago", ago.whole_minutes())
        } else {
            format!("{} h ago", ago.whole_hours())
        }
    };
    let mut rows = String::new();
    for s in list {
        let label = s.label.as_deref().unwrap_or("an unknown device");
        let this = if s.current {
            " <strong>(this one)</strong>"
        } else {
            ""
        };
        let _ = write!(
            rows,
            "<tr class=\"session\"><td>{label}{this}</td><td><code>{id}</code></td>\
             <td>{since}</td><td>{seen}</td></tr>",
            label = encode_text(label),
            id = encode_text(&s.short_id),
            since = when(s.since),
            seen = when(s.last_seen),
        );
    }
    let others = list.iter().filter(|s| !s.current).count();
    let button = if others > 0 {
        format!(
            "<form method=\"post\" action=\"/logout-others\"><button id=\"logout-others\">\
             Log out {others} other device{s}</button></form>",
            s = if others == 1 { "" } else { "s" }
        )
    } else {
        "<p><small>No other device is logged in.</small></p>".to_owned()
    };
    format!(
        "<div class=\"card\" id=\"sessions\"><h2>Your sessions</h2>\
         <table><tr><th>device</th><th>id</th><th>signed in</th><th>last seen</th></tr>{rows}</table>\
         {button}</div>"
    )
}

/// The page, rendered on the server; `sessions` is the logged-in user's list.
pub fn page(
    framework: &str,
    other: (&str, &str),
    secure: bool,
    session: &Session,
    sessions: Option<&[SessionInfo]>,
) -> String {
    let visits: u64 = session.get("visits").ok().flatten().unwrap_or(0);
    let cart: Vec<String> = session.get("cart").ok().flatten().unwrap_or_default();
    let user: Option<String> = session.user();
    let panel = sessions.map(sessions_panel).unwrap_or_default();
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
td, th {{ padding: 0.2rem 0.6rem 0.2rem 0; text-align: left; }}
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
{panel}
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
            let list = sessions(&session).await;
            let other = ("actix-web", other.as_str());
            Html(page("axum", other, secure, &session, list.as_deref()))
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
            post(
                |s: Session, headers: axum::http::HeaderMap, Form(f): Form<Field>| async move {
                    let agent = headers.get(axum::http::header::USER_AGENT);
                    let agent = agent.and_then(|v| v.to_str().ok()).unwrap_or_default();
                    login(&s, &f.value, agent);
                    Redirect::to("/")
                },
            ),
        )
        .route(
            "/logout-others",
            post(|s: Session| async move {
                logout_others(&s).await;
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
        let list = super::sessions(&session).await;
        let other = ("axum", info.other.as_str());
        let page = super::page("actix-web", other, info.secure, &session, list.as_deref());
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(page)
    }

    pub(super) async fn cart(session: Session, f: web::Form<Field>) -> HttpResponse {
        super::add_to_cart(&session, &f.value);
        back()
    }

    pub(super) async fn login(
        session: Session,
        req: actix_web::HttpRequest,
        f: web::Form<Field>,
    ) -> HttpResponse {
        let agent = req.headers().get(header::USER_AGENT);
        let agent = agent.and_then(|v| v.to_str().ok()).unwrap_or_default();
        super::login(&session, &f.value, agent);
        back()
    }

    pub(super) async fn logout_others(session: Session) -> HttpResponse {
        super::logout_others(&session).await;
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
        .route(
            "/logout-others",
            web::post().to(actix_handlers::logout_others),
        )
        .route("/logout", web::post().to(actix_handlers::logout))
        .route("/remember", web::post().to(actix_handlers::remember));
}
