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
<p>Session id: {id}. Ends {expiry}.</p>
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
