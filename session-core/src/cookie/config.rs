//! [`SessionConfig`]: the cookie, the id source, protection, expiry and touch policy.
//! Built and validated by [`SessionConfigBuilder`](super::SessionConfigBuilder).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

pub use ::cookie::{Key, SameSite};

use super::builder::{Limits, SessionConfigBuilder};
use super::write;
use crate::expiry::{Expiry, Ttl};
use crate::id::Id;

/// Where the session id travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdSource {
    /// A cookie (the default), named by [`SessionConfigBuilder::name`].
    Cookie,
    /// A request header carrying the id, answered by a response header of the same name
    /// whenever the id is issued, changed or removed (an empty value means "forget the
    /// session"). For APIs whose clients keep no cookies, e.g. `x-session-id`.
    Header(http::HeaderName),
}

/// When a session whose data did not change gets its expiry refreshed (a store `touch`
/// plus a new cookie `Max-Age`), on requests that loaded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchPolicy {
    /// Only when the session's data or expiry changed.
    OnStateChanges,
    /// On every request that loads the session: the exact sliding window, one store write
    /// per request.
    OnEveryRequest,
    /// When at least `percent` % of the session's idle window (its `OnInactivity`
    /// duration, or the default store TTL for `OnSessionEnd`) has passed since the last
    /// refresh. A session may end up to that share of its window early; in exchange an
    /// active user costs one store write per that share of the window instead of one per
    /// request.
    Throttled {
        /// Share of the idle window, 1 to 100.
        percent: u8,
    },
}

impl Default for TouchPolicy {
    /// `Throttled { percent: 10 }`.
    fn default() -> Self {
        TouchPolicy::Throttled { percent: 10 }
    }
}

#[derive(Clone, Default)]
pub(crate) enum Protection {
    #[default]
    Plain,
    Signed(Arc<Keys>),
    Private(Arc<Keys>),
}

pub(crate) struct Keys {
    pub(crate) current: Key,
    pub(crate) old: Vec<Key>,
    /// What signs and verifies, in signed mode: `current` then `old`, each bound to the
    /// cookie name ([`bind_to_name`]). Empty in private mode.
    pub(crate) signing: Vec<Key>,
}

/// `key` bound to the cookie `name`, for signing: the key signed cookies of that name are
/// signed with, for adapters that sign cookies of their own the way the engine does.
///
/// The cookie crate signs a cookie's value only, so a value signed under one cookie name
/// would verify under any other name sharing the key (private cookies bind the name
/// already, as associated data). HKDF-Extract with the name as salt, then the cookie
/// crate's own expansion into a key.
pub fn bind_to_name(key: &Key, name: &str) -> Key {
    let (prk, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(name.as_bytes()), key.master());
    Key::derive_from(&prk)
}

impl fmt::Debug for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mode, keys) = match self {
            Protection::Plain => return f.write_str("Plain"),
            Protection::Signed(k) => ("Signed", k),
            Protection::Private(k) => ("Private", k),
        };
        f.debug_struct(mode)
            .field("key", &"REDACTED")
            .field("old_keys", &format_args!("{} REDACTED", keys.old.len()))
            .finish()
    }
}

/// How sessions are identified, protected and expired. Built with
/// [`SessionConfig::builder`], validated once by [`SessionConfigBuilder::build`].
///
/// ```
/// use session_core::{Expiry, SessionConfig};
/// use time::Duration;
///
/// let config = SessionConfig::builder()
///     .name("sid")
///     .expiry(Expiry::OnInactivity(Duration::hours(1)))
///     .build()
///     .expect("a valid configuration");
/// assert_eq!(config.name(), "sid");
/// ```
///
/// # Which cookie is ours
///
/// The id is read from the `Cookie` request header(s) (or the configured id header, never
/// from the URL). Pairs of other names are ignored, and so are keyless pairs (`foo` with no
/// `=`) and pairs that do not parse. When several cookies carry our name (a browser sends
/// all that match the request: one set for `Path=/` and one for a sub-path, or one set by a
/// parent domain), they are tried in the order the browser sends them, which RFC 6265 makes
/// most-specific path first. Every one that verifies and parses as an [`Id`](crate::Id) is
/// a candidate, up to three, and the engine takes the first that names a live session: a
/// cookie planted by a sibling subdomain (a well-formed unknown id) or a few junk cookies
/// cannot hide the user's own. In signed and private modes a cookie that fails verification
/// is no candidate and costs no store read. At most eight cookies are tried and values
/// longer than 256 bytes are skipped unread, so a hostile header costs bounded work.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) partitioned: bool,
    pub(crate) expiry: Expiry,
    pub(crate) id_source: IdSource,
    pub(crate) protection: Protection,
    pub(crate) touch: TouchPolicy,
    pub(crate) save_on_server_error: bool,
    pub(crate) default_ttl: Ttl,
    pub(crate) max_ttl: Ttl,
    pub(crate) limits: Limits,
    /// `; HttpOnly; SameSite=Lax; ...`: rendered once, see `cookie_attributes`.
    pub(crate) cookie_attrs: String,
}

impl Default for SessionConfig {
    /// The secure defaults listed on [`SessionConfigBuilder`].
    fn default() -> Self {
        SessionConfigBuilder::default()
            .build()
            .expect("the defaults are valid")
    }
}

impl SessionConfig {
    /// A builder with the defaults listed on [`SessionConfigBuilder`].
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder::default()
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The cookie `Path`.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The cookie `Domain`, if any.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }
    /// Whether the cookie is `Secure`.
    pub fn secure(&self) -> bool {
        self.secure
    }
    /// Whether the cookie is `HttpOnly`.
    pub fn http_only(&self) -> bool {
        self.http_only
    }
    /// The cookie's `SameSite`.
    pub fn same_site(&self) -> SameSite {
        self.same_site
    }
    /// Whether the cookie is `Partitioned` (CHIPS).
    pub fn partitioned(&self) -> bool {
        self.partitioned
    }
    /// The expiry new sessions get.
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }
    /// Where the id travels.
    pub fn id_source(&self) -> &IdSource {
        &self.id_source
    }
    /// The touch policy.
    pub fn touch_policy(&self) -> TouchPolicy {
        self.touch
    }
    /// Whether changes are saved when the response is a server error (5xx).
    pub fn save_on_server_error(&self) -> bool {
        self.save_on_server_error
    }
    /// The store TTL of browser-session (`OnSessionEnd`) sessions.
    pub fn default_ttl(&self) -> Ttl {
        self.default_ttl
    }
    /// How large one session may grow.
    pub fn limits(&self) -> Limits {
        self.limits
    }
    /// The longest TTL and `Max-Age` ever written.
    pub fn max_ttl(&self) -> Ttl {
        self.max_ttl
    }
    /// The name of the request header the id is read from: `cookie`, or the id header.
    pub fn request_header(&self) -> &str {
        self.request_header_name().as_str()
    }
    /// The name of the response header the id is written to: `set-cookie`, or the id
    /// header.
    pub fn response_header(&self) -> &str {
        self.response_header_name().as_str()
    }
    /// [`request_header`](Self::request_header) as an [`http::HeaderName`].
    pub fn request_header_name(&self) -> &http::HeaderName {
        match &self.id_source {
            IdSource::Cookie => &http::header::COOKIE,
            IdSource::Header(h) => h,
        }
    }
    /// [`response_header`](Self::response_header) as an [`http::HeaderName`]. For cookies
    /// the value is appended beside any `Set-Cookie` the handler wrote; an id header
    /// replaces any value of that name.
    pub fn response_header_name(&self) -> &http::HeaderName {
        match &self.id_source {
            IdSource::Cookie => &http::header::SET_COOKIE,
            IdSource::Header(h) => h,
        }
    }

    /// The response header value that hands `id` to the client, with `max_age` (`None`
    /// for a browser-session cookie): a whole `Set-Cookie` value, or the protected id
    /// alone in header mode. Adapters get it from [`Finished::header`](crate::Finished::header);
    /// this is for tools that issue ids themselves.
    ///
    /// ```
    /// use session_core::{Id, SessionConfig};
    ///
    /// let config = SessionConfig::builder().secure(false).build().unwrap();
    /// let id = Id::random();
    /// let value = config.issue(&id, None);
    /// assert_eq!(value, format!("id={}; HttpOnly; SameSite=Lax; Path=/", id.encode().as_str()));
    /// ```
    pub fn issue(&self, id: &Id, max_age: Option<Ttl>) -> String {
        write::issue_until(self, id, max_age, |age| {
            SystemTime::now().checked_add(std::time::Duration::from_secs(age.as_secs().into()))
        })
    }
}
