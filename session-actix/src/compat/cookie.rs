//! [`CookieSessionStore`]: the whole state in the cookie, encrypted (or signed) with the
//! middleware's key, with no store at all.
//!
//! The cookie carries `{"v":1,"exp":UNIX_SECONDS,"data":{KEY: JSON_TEXT}}`. `exp` bounds
//! a cookie's life on the server's side too: a browser-session cookie's state lives
//! `state_ttl` after its last write (a day by default), a persistent one `session_ttl`,
//! so a copied cookie cannot be replayed for ever. A state that would not fit in a
//! cookie is refused when the value is inserted, not when the response is written.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, COOKIE, SET_COOKIE};
use actix_web::HttpMessage;
use cookie::{Cookie, CookieJar};
use serde::{Deserialize, Serialize};
use session_core::{Key, SameSite};
use time::{Duration, OffsetDateTime};

use super::SessionStatus;
use crate::middleware::LocalBoxFuture;

/// actix-session's `CookieSessionStore`: the whole session state lives in the cookie,
/// encrypted with the middleware's key (or signed, with
/// [`CookieContentSecurity::Signed`](super::config::CookieContentSecurity::Signed)).
/// Nothing is kept on the server, so nothing can be revoked there either: a logout
/// removes the cookie, but a copy taken before stays valid until its `exp`.
///
/// Switching over keeps users' sessions: with the same key, the private cookies
/// actix-session's `CookieSessionStore` wrote are read (and take this store's form at
/// their next write).
///
/// A request may carry several cookies of the name (one planted by a sibling domain,
/// say): they are tried in order, at most eight, and the first that verifies and has not
/// expired is the session.
///
/// Browsers keep at most 4096 bytes per cookie: an insert that would take the state
/// past that fails with a clear error (and a logged warning) instead of a cookie the
/// browser would drop. The state is JSON, encrypted, then base64: about 3,000 bytes of
/// values fit.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct CookieSessionStore;

/// The most a browser keeps of one cookie's name and value.
const COOKIE_LIMIT: usize = 4096;

/// The most cookies of the session's name tried per request, in order.
const MAX_CANDIDATES: usize = 8;

/// The settings of the cookie-state middleware.
pub(super) struct CookieConfig {
    pub(super) name: String,
    pub(super) secure: bool,
    pub(super) http_only: bool,
    pub(super) same_site: SameSite,
    pub(super) path: String,
    pub(super) domain: Option<String>,
    /// Encrypts (private) or signs (bound to the name).
    pub(super) protect: Protect,
    /// `Some(ttl)`: a persistent cookie with this `Max-Age`; `None`: a browser-session
    /// cookie.
    pub(super) max_age: Option<Duration>,
    /// How long a state lives after its last write.
    pub(super) state_ttl: Duration,
    /// Whether every request extends an unchanged state.
    pub(super) extend_every_request: bool,
}

impl fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieConfig")
            .field("name", &self.name)
            .field("max_age", &self.max_age)
            .field("state_ttl", &self.state_ttl)
            .finish_non_exhaustive()
    }
}

/// The key and how it protects the cookie.
pub(super) enum Protect {
    Private(Key),
    Signed(Key),
}

/// The cookie's content before protection.
#[derive(Serialize, Deserialize)]
struct Payload {
    v: u8,
    exp: i64,
    data: HashMap<String, String>,
}

/// What a verified cookie holds.
enum Content {
    /// This store's payload.
    Ours(Payload),
    /// actix-session's `CookieSessionStore` state, a bare map: read, so that an app
    /// switching over keeps its users' sessions (it has no `exp`: it lives as long as
    /// under actix-session, until its next write gives it one).
    ActixSession(HashMap<String, String>),
}

/// `text` with its `%XX` escapes decoded, if it has any and they are valid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// One request's state, shared by its [`Session`](super::Session) handles.
#[derive(Debug)]
pub(super) struct CookieState {
    pub(super) data: HashMap<String, String>,
    pub(super) status: SessionStatus,
    /// The most bytes the JSON of `data` may take; `None` outside a request.
    pub(super) limit: Option<usize>,
}

impl CookieState {
    pub(super) fn detached() -> Self {
        CookieState {
            data: HashMap::new(),
            status: SessionStatus::Unchanged,
            limit: None,
        }
    }

    /// Whether the state with `key` set to `json` still fits in the cookie.
    fn fits(&self, key: &str, json: &str) -> bool {
        let Some(limit) = self.limit else {
            return true;
        };
        let mut data = self.data.clone();
        data.insert(key.to_owned(), json.to_owned());
        data_len(&data) <= limit
    }

    /// Marks a change, unless the session was renewed (which saves it anyway).
    pub(super) fn changed(&mut self) {
        if self.status != SessionStatus::Renewed {
            self.status = SessionStatus::Changed;
        }
    }

    /// Sets `key` to `json`, unless the state would no longer fit in the cookie.
    pub(super) fn set(&mut self, key: String, json: String) -> Result<(), session_core::Error> {
        if !self.fits(&key, &json) {
            let limit = self.limit.unwrap_or_default();
            tracing::warn!(
                limit,
                "a session value was refused: the state would not fit in the cookie"
            );
            return Err(session_core::Error::Limit {
                key,
                what: "bytes",
                limit,
            });
        }
        self.changed();
        self.data.insert(key, json);
        Ok(())
    }
}

/// The JSON length of `data` inside the payload.
fn data_len(data: &HashMap<String, String>) -> usize {
    serde_json::to_string(data).map_or(usize::MAX, |s| s.len())
}

impl CookieConfig {
    /// The most bytes `data`'s JSON may take for the cookie to fit in [`COOKIE_LIMIT`].
    pub(super) fn data_limit(&self) -> usize {
        // `name=value`; the payload adds `{"v":1,"exp":<up to 20 digits>,"data":}`.
        let envelope = r#"{"v":1,"exp":,"data":}"#.len() + 20;
        let room = COOKIE_LIMIT.saturating_sub(self.name.len() + 1);
        let plain = match self.protect {
            // base64 (with padding) of a 12-byte nonce, the text and a 16-byte tag.
            Protect::Private(_) => (room / 4 * 3).saturating_sub(12 + 16),
            // 44 characters of signature, then the text in base64url without padding.
            Protect::Signed(_) => (room.saturating_sub(44)) / 4 * 3,
        };
        plain.saturating_sub(envelope)
    }

    /// The request's cookies of the session's name, in order.
    fn named<'r>(&'r self, req: &'r ServiceRequest) -> impl Iterator<Item = Cookie<'r>> + 'r {
        req.headers()
            .get_all(COOKIE)
            .filter_map(|h| h.to_str().ok())
            .flat_map(Cookie::split_parse)
            .flatten()
            .filter(move |c| c.name() == self.name)
    }

    /// The state in `named` (the request's cookies of the name): the first that
    /// verifies, decodes and has not expired.
    fn read<'r>(
        &self,
        named: impl Iterator<Item = Cookie<'r>>,
        now: OffsetDateTime,
    ) -> Option<HashMap<String, String>> {
        // Each costs a decryption or a MAC: a request stuffed with cookies of the name
        // cannot make it do more than this many.
        for cookie in named.take(MAX_CANDIDATES) {
            // actix-web percent-encodes the cookies it sets: an actix-session cookie
            // comes back that way.
            let decoded = percent_decode(cookie.value());
            for value in std::iter::once(cookie.value()).chain(decoded.as_deref()) {
                match self.open(Cookie::new(self.name.clone(), value.to_owned())) {
                    Some(Content::Ours(payload))
                        if payload.v == 1 && payload.exp > now.unix_timestamp() =>
                    {
                        return Some(payload.data);
                    }
                    Some(Content::ActixSession(data)) => return Some(data),
                    Some(Content::Ours(_)) | None => {}
                }
            }
        }
        None
    }

    fn open(&self, cookie: Cookie<'static>) -> Option<Content> {
        let mut jar = CookieJar::new();
        jar.add_original(cookie);
        let text = match &self.protect {
            Protect::Private(key) => jar.private(key).get(&self.name)?.value().to_owned(),
            Protect::Signed(key) => {
                let signed = jar.signed(key).get(&self.name)?;
                let bytes = base64_decode(signed.value())?;
                String::from_utf8(bytes).ok()?
            }
        };
        if let Ok(payload) = serde_json::from_str(&text) {
            return Some(Content::Ours(payload));
        }
        serde_json::from_str(&text).ok().map(Content::ActixSession)
    }

    /// The `Set-Cookie` carrying `data`, written at `now`.
    fn seal(&self, data: HashMap<String, String>, now: OffsetDateTime) -> Option<String> {
        let payload = Payload {
            v: 1,
            exp: (now + self.max_age.unwrap_or(self.state_ttl)).unix_timestamp(),
            data,
        };
        let text = serde_json::to_string(&payload).ok()?;
        let mut jar = CookieJar::new();
        match &self.protect {
            Protect::Private(key) => jar
                .private_mut(key)
                .add(Cookie::new(self.name.clone(), text)),
            Protect::Signed(key) => jar.signed_mut(key).add(Cookie::new(
                self.name.clone(),
                base64_encode(text.as_bytes()),
            )),
        }
        let value = jar.get(&self.name)?.value().to_owned();
        if self.name.len() + 1 + value.len() > COOKIE_LIMIT {
            // `fits` keeps inserts under the limit; a state read from an older, roomier
            // configuration could still be over it.
            tracing::warn!(
                bytes = value.len(),
                "the session state does not fit in a cookie; it was not saved"
            );
            return None;
        }
        let mut cookie = self.attributes(Cookie::new(self.name.clone(), value));
        if let Some(max_age) = self.max_age {
            cookie.set_max_age(max_age);
            cookie.set_expires(now + max_age);
        }
        Some(cookie.to_string())
    }

    /// The `Set-Cookie` that removes the cookie.
    fn removal(&self) -> String {
        let mut cookie = self.attributes(Cookie::new(self.name.clone(), ""));
        cookie.make_removal();
        cookie.to_string()
    }

    fn attributes(&self, mut cookie: Cookie<'static>) -> Cookie<'static> {
        cookie.set_secure(self.secure);
        cookie.set_http_only(self.http_only);
        cookie.set_same_site(self.same_site);
        cookie.set_path(self.path.clone());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// The service of the cookie-state middleware.
pub(super) struct CookieService<Svc> {
    pub(super) service: Rc<Svc>,
    pub(super) config: std::sync::Arc<CookieConfig>,
}

impl<Svc, B> CookieService<Svc>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    pub(super) fn call(
        &self,
        req: ServiceRequest,
    ) -> LocalBoxFuture<Result<ServiceResponse<EitherBody<B>>, actix_web::Error>> {
        let config = self.config.clone();
        let service = self.service.clone();
        Box::pin(async move {
            let now = OffsetDateTime::now_utc();
            let mut named = config.named(&req).peekable();
            let presented = named.peek().is_some();
            let stored = config.read(named, now);
            let loaded = stored.is_some();
            let state = Rc::new(RefCell::new(CookieState {
                data: stored.unwrap_or_default(),
                status: SessionStatus::Unchanged,
                limit: Some(config.data_limit()),
            }));
            req.extensions_mut().insert(state.clone());
            let mut res = service.call(req).await?;
            let (status, data) = {
                let mut s = state.borrow_mut();
                (s.status.clone(), std::mem::take(&mut s.data))
            };
            let server_error = res.status().is_server_error();
            let header = match status {
                SessionStatus::Purged => presented.then(|| config.removal()),
                // A 5xx saves nothing, as with every store.
                _ if server_error => None,
                SessionStatus::Changed | SessionStatus::Renewed if data.is_empty() => {
                    presented.then(|| config.removal())
                }
                SessionStatus::Changed | SessionStatus::Renewed => config.seal(data, now),
                SessionStatus::Unchanged if loaded && config.extend_every_request => {
                    config.seal(data, now)
                }
                // An unknown, tampered or expired cookie was a fresh session; it is left
                // alone, as actix-session does.
                SessionStatus::Unchanged => None,
            };
            if let Some(value) = header.and_then(|h| HeaderValue::try_from(h).ok()) {
                res.headers_mut().append(SET_COOKIE, value);
            }
            Ok(res.map_into_left_body())
        })
    }
}
