//! [`SessionConfigBuilder`]: every setting with its default, and the one check of the
//! whole combination.

use std::fmt;
use std::sync::Arc;

use ::cookie::{Key, SameSite};
use time::Duration;

use super::config::{bind_to_name, IdSource, Keys, Protection, SessionConfig, TouchPolicy};
use super::error::ConfigError;
use super::write;
use crate::expiry::{Expiry, Ttl};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Signed,
    Private,
}

/// Builder for [`SessionConfig`]. Every setter states its default; [`build`] checks the
/// whole combination once.
///
/// [`build`]: SessionConfigBuilder::build
#[derive(Clone)]
pub struct SessionConfigBuilder {
    name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    partitioned: bool,
    expiry: Expiry,
    id_header: Option<String>,
    key: Option<(Mode, Key)>,
    old_keys: Vec<Key>,
    touch: TouchPolicy,
    save_on_server_error: bool,
    default_ttl: Duration,
    max_ttl: Duration,
    limits: Limits,
}

/// How large one session may grow: what [`Session::insert`](crate::Session::insert)
/// refuses with [`Error::Limit`](crate::Error::Limit). The defaults are far beyond
/// what an ordinary app keeps in a session; they bound what a buggy or hostile request
/// can make every later request of that session load and save.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most values a session holds. Default: 10 000.
    pub max_keys: usize,
    /// The most bytes a session's keys and values take as JSON text. Default: 4 MiB.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_keys: 10_000,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

impl fmt::Debug for SessionConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfigBuilder")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("partitioned", &self.partitioned)
            .field("expiry", &self.expiry)
            .field("id_header", &self.id_header)
            .field("key", &self.key.as_ref().map(|(m, _)| (m, "REDACTED")))
            .field(
                "old_keys",
                &format_args!("{} REDACTED", self.old_keys.len()),
            )
            .field("touch", &self.touch)
            .field("save_on_server_error", &self.save_on_server_error)
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for SessionConfigBuilder {
    fn default() -> Self {
        SessionConfigBuilder {
            name: "id".into(),
            path: "/".into(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            partitioned: false,
            expiry: Expiry::OnSessionEnd,
            id_header: None,
            key: None,
            old_keys: Vec::new(),
            touch: TouchPolicy::default(),
            save_on_server_error: false,
            default_ttl: Duration::hours(24),
            max_ttl: Duration::days(400),
            limits: Limits::default(),
        }
    }
}

impl From<&SessionConfig> for SessionConfigBuilder {
    /// A builder holding this configuration, to change a few settings.
    fn from(c: &SessionConfig) -> Self {
        let (key, old_keys) = match &c.protection {
            Protection::Plain => (None, Vec::new()),
            Protection::Signed(k) => (Some((Mode::Signed, k.current.clone())), k.old.clone()),
            Protection::Private(k) => (Some((Mode::Private, k.current.clone())), k.old.clone()),
        };
        SessionConfigBuilder {
            name: c.name.clone(),
            path: c.path.clone(),
            domain: c.domain.clone(),
            secure: c.secure,
            http_only: c.http_only,
            same_site: c.same_site,
            partitioned: c.partitioned,
            expiry: c.expiry,
            id_header: match &c.id_source {
                IdSource::Cookie => None,
                IdSource::Header(h) => Some(h.as_str().to_owned()),
            },
            key,
            old_keys,
            touch: c.touch,
            save_on_server_error: c.save_on_server_error,
            default_ttl: c.default_ttl.as_duration(),
            max_ttl: c.max_ttl.as_duration(),
            limits: c.limits,
        }
    }
}

impl SessionConfigBuilder {
    /// The cookie name. Default: `id` (tower-sessions' default).
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder().name("__Host-sid").build().unwrap();
    /// assert_eq!(config.name(), "__Host-sid");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The cookie `Path`. Default: `/`.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder().path("/app").build().unwrap();
    /// assert_eq!(config.path(), "/app");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The cookie `Domain`. Default: none, so the cookie goes back only to the host that
    /// set it, the safest choice. A single-label domain (`com`) and a domain on the
    /// public suffix list (`co.uk`, `github.io`; the list as compiled into the `psl`
    /// crate) are refused.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder().domain("example.com").build().unwrap();
    /// assert_eq!(config.domain(), Some("example.com"));
    /// ```
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Whether the cookie is `Secure` (sent over HTTPS only). Default: `true`.
    ///
    /// # Warning
    ///
    /// Turn it off only for plain-HTTP development on `localhost`: without it the session
    /// id crosses the network in clear text.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder().secure(false).build().unwrap();
    /// assert!(!config.secure());
    /// ```
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Whether the cookie is `HttpOnly` (hidden from page scripts). Default: `true`.
    ///
    /// # Warning
    ///
    /// Without it, any script injected into a page can read and send away the session id.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder().http_only(true).build().unwrap();
    /// assert!(config.http_only());
    /// ```
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The cookie's `SameSite`. Default: `Lax`.
    ///
    /// ```
    /// use session_core::{SameSite, SessionConfig};
    /// let config = SessionConfig::builder().same_site(SameSite::Strict).build().unwrap();
    /// assert_eq!(config.same_site(), SameSite::Strict);
    /// ```
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Whether the cookie is `Partitioned` (CHIPS, for third-party embeds). Default:
    /// `false`. Requires `Secure`.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder().partitioned(true).build().unwrap();
    /// assert!(config.partitioned());
    /// ```
    pub fn partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = partitioned;
        self
    }

    /// The expiry of new sessions. Default: [`Expiry::OnSessionEnd`]. A handler can change
    /// one session's expiry with [`Session::set_expiry`](crate::Session::set_expiry).
    ///
    /// ```
    /// use session_core::{Expiry, SessionConfig};
    /// let e = Expiry::OnInactivity(time::Duration::minutes(30));
    /// let config = SessionConfig::builder().expiry(e).build().unwrap();
    /// assert_eq!(config.expiry(), e);
    /// ```
    pub fn expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }

    /// Carry the id in this request/response header instead of a cookie. Default: a
    /// cookie. The id is never read from the URL.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder().id_header("x-session-id").build().unwrap();
    /// assert_eq!(config.request_header(), "x-session-id");
    /// ```
    pub fn id_header(mut self, name: impl Into<String>) -> Self {
        self.id_header = Some(name.into());
        self
    }

    /// Carry the id in a cookie (the default); undoes [`id_header`](Self::id_header).
    ///
    /// ```
    /// use session_core::{IdSource, SessionConfig};
    /// let config = SessionConfig::builder().id_header("x-id").id_cookie().build().unwrap();
    /// assert_eq!(config.id_source(), &IdSource::Cookie);
    /// ```
    pub fn id_cookie(mut self) -> Self {
        self.id_header = None;
        self
    }

    /// Sign the id with `key` (HMAC-SHA256 through the `cookie` crate), so a client cannot
    /// make up an id this server will look up. The signature is bound to the cookie
    /// name: an id signed for another name under the same key does not verify. Default:
    /// plain id. Replaces [`private`](Self::private).
    ///
    /// ```
    /// use session_core::{Key, SessionConfig};
    /// let config = SessionConfig::builder().signed(Key::generate()).build().unwrap();
    /// # let _ = config;
    /// ```
    pub fn signed(mut self, key: Key) -> Self {
        self.key = Some((Mode::Signed, key));
        self
    }

    /// Encrypt the id with `key` (AES-256-GCM through the `cookie` crate). Default: plain
    /// id. Replaces [`signed`](Self::signed).
    ///
    /// ```
    /// use session_core::{Key, SessionConfig};
    /// let config = SessionConfig::builder().private(Key::generate()).build().unwrap();
    /// # let _ = config;
    /// ```
    pub fn private(mut self, key: Key) -> Self {
        self.key = Some((Mode::Private, key));
        self
    }

    /// Keys that were current before, newest first: ids protected with one of them are
    /// still accepted and re-issued with the current key, so keys can rotate without
    /// logging anyone out. Default: none. Requires [`signed`](Self::signed) or
    /// [`private`](Self::private).
    ///
    /// ```
    /// use session_core::{Key, SessionConfig};
    /// let (old, new) = (Key::generate(), Key::generate());
    /// let config = SessionConfig::builder().signed(new).old_keys([old]).build().unwrap();
    /// # let _ = config;
    /// ```
    pub fn old_keys(mut self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.old_keys = keys.into_iter().collect();
        self
    }

    /// The touch policy. Default: `Throttled { percent: 10 }`.
    ///
    /// ```
    /// use session_core::{SessionConfig, TouchPolicy};
    /// let config = SessionConfig::builder()
    ///     .touch_policy(TouchPolicy::OnEveryRequest)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.touch_policy(), TouchPolicy::OnEveryRequest);
    /// ```
    pub fn touch_policy(mut self, policy: TouchPolicy) -> Self {
        self.touch = policy;
        self
    }

    /// Whether a handler's session changes are saved when its response is a server error
    /// (5xx). Default: `false`, so a request that failed halfway leaves the session as it
    /// was.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder().save_on_server_error(true).build().unwrap();
    /// assert!(config.save_on_server_error());
    /// ```
    pub fn save_on_server_error(mut self, save: bool) -> Self {
        self.save_on_server_error = save;
        self
    }

    /// How long the store keeps a browser-session (`OnSessionEnd`) record after its last
    /// refresh. Default: 24 hours. Whole seconds, at least one.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder()
    ///     .default_ttl(time::Duration::hours(8))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.default_ttl().as_secs(), 8 * 3600);
    /// ```
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The longest TTL and `Max-Age` ever written: longer expiries are clamped to it.
    /// Default: 400 days, the longest `Max-Age` browsers honour.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder()
    ///     .max_ttl(time::Duration::days(30))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.max_ttl().as_secs(), 30 * 86_400);
    /// ```
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// The most values one session may hold; an insert past it is
    /// [`Error::Limit`](crate::Error::Limit). Default: 10 000.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder().max_keys(100).build().unwrap();
    /// assert_eq!(config.limits().max_keys, 100);
    /// ```
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.limits.max_keys = keys;
        self
    }

    /// The most bytes one session's keys and values may take as JSON text; an insert
    /// past it is [`Error::Limit`](crate::Error::Limit). Default: 4 MiB.
    ///
    /// ```
    /// let config = session_core::SessionConfig::builder().max_bytes(64 * 1024).build().unwrap();
    /// assert_eq!(config.limits().max_bytes, 64 * 1024);
    /// ```
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_bytes = bytes;
        self
    }

    /// Checks the combination and returns the configuration.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose message says what to change, for: `SameSite=None` or
    /// `Partitioned` without `Secure`; a `__Host-` name with a `Domain`, a `Path` other
    /// than `/`, or without `Secure`; a `__Secure-` name without `Secure`; a `__Http-` or
    /// `__Host-Http-` name without `HttpOnly`; a `max_ttl` over 400 days; a cookie name,
    /// header name, path or domain with characters it cannot carry; old keys without
    /// signing or encryption; TTLs out of range; a throttle percentage out of range.
    pub fn build(self) -> Result<SessionConfig, ConfigError> {
        let b = self;
        if !is_token(&b.name) {
            return Err(ConfigError::InvalidCookieName(b.name));
        }
        let id_source = match &b.id_header {
            None => IdSource::Cookie,
            Some(name) => match http::HeaderName::from_bytes(name.as_bytes()) {
                Ok(h) if h != http::header::COOKIE && h != http::header::SET_COOKIE => {
                    IdSource::Header(h)
                }
                _ => return Err(ConfigError::InvalidHeaderName(name.clone())),
            },
        };
        if !b.path.starts_with('/') || !is_attr_value(&b.path) {
            return Err(ConfigError::InvalidPath(b.path));
        }
        if let Some(d) = &b.domain {
            if d.is_empty() || !is_attr_value(d) || d.contains(' ') {
                return Err(ConfigError::InvalidDomain(d.clone()));
            }
            let host = d.trim_matches('.').to_ascii_lowercase();
            if !host.contains('.') {
                return Err(ConfigError::SingleLabelDomain(d.clone()));
            }
            if is_public_suffix(&host) {
                return Err(ConfigError::PublicSuffixDomain(d.clone()));
            }
        }
        if b.same_site == SameSite::None && !b.secure {
            return Err(ConfigError::SameSiteNoneWithoutSecure);
        }
        if b.partitioned && !b.secure {
            return Err(ConfigError::PartitionedWithoutSecure);
        }
        let lower = b.name.to_ascii_lowercase();
        if lower.starts_with("__host-") {
            if b.domain.is_some() {
                return Err(ConfigError::HostPrefixWithDomain);
            }
            if b.path != "/" {
                return Err(ConfigError::HostPrefixWithPath);
            }
            if !b.secure {
                return Err(ConfigError::PrefixWithoutSecure("__Host-"));
            }
        }
        if lower.starts_with("__secure-") && !b.secure {
            return Err(ConfigError::PrefixWithoutSecure("__Secure-"));
        }
        for prefix in ["__Http-", "__Host-Http-"] {
            if lower.starts_with(&prefix.to_ascii_lowercase()) && !b.http_only {
                return Err(ConfigError::PrefixWithoutHttpOnly(prefix));
            }
        }
        let default_ttl =
            ttl_of(b.default_ttl).ok_or(ConfigError::InvalidTtl("default store TTL"))?;
        let max_ttl = ttl_of(b.max_ttl).ok_or(ConfigError::InvalidTtl("maximum TTL"))?;
        if b.max_ttl > Duration::days(400) {
            return Err(ConfigError::MaxTtlOver400Days);
        }
        if default_ttl > max_ttl {
            return Err(ConfigError::DefaultTtlAboveMax);
        }
        if b.limits.max_keys == 0 {
            return Err(ConfigError::ZeroLimit("key"));
        }
        if b.limits.max_bytes == 0 {
            return Err(ConfigError::ZeroLimit("byte"));
        }
        if let Expiry::OnInactivity(d) = b.expiry {
            if d < Duration::SECOND {
                return Err(ConfigError::InactivityTooShort);
            }
        }
        if let TouchPolicy::Throttled { percent } = b.touch {
            if !(1..=100).contains(&percent) {
                return Err(ConfigError::InvalidTouchPercent);
            }
        }
        let protection = match b.key {
            None if !b.old_keys.is_empty() => return Err(ConfigError::OldKeysWithoutProtection),
            None => Protection::Plain,
            Some((mode, current)) => {
                let signing = match mode {
                    Mode::Signed => std::iter::once(&current)
                        .chain(&b.old_keys)
                        .map(|k| bind_to_name(k, &b.name))
                        .collect(),
                    Mode::Private => Vec::new(),
                };
                let keys = Arc::new(Keys {
                    current,
                    old: b.old_keys,
                    signing,
                });
                match mode {
                    Mode::Signed => Protection::Signed(keys),
                    Mode::Private => Protection::Private(keys),
                }
            }
        };
        let mut config = SessionConfig {
            name: b.name,
            path: b.path,
            domain: b.domain,
            secure: b.secure,
            http_only: b.http_only,
            same_site: b.same_site,
            partitioned: b.partitioned,
            expiry: b.expiry,
            id_source,
            protection,
            touch: b.touch,
            save_on_server_error: b.save_on_server_error,
            default_ttl,
            max_ttl,
            limits: b.limits,
            cookie_attrs: String::new(),
        };
        config.cookie_attrs = write::attributes(&config);
        Ok(config)
    }
}

/// Whole seconds of `d` as a TTL, if it is a whole, valid number of seconds.
fn ttl_of(d: Duration) -> Option<Ttl> {
    if d.subsec_nanoseconds() != 0 {
        return None;
    }
    u32::try_from(d.whole_seconds())
        .ok()
        .and_then(Ttl::from_secs)
}

/// RFC 6265 `token`: visible ASCII except separators.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// A cookie attribute value: no control characters and no `;`.
/// Whether `host` (lower case, no leading or trailing dot) is itself a suffix on the
/// public suffix list, private section included, as browsers judge a `Domain`.
fn is_public_suffix(host: &str) -> bool {
    psl::suffix(host.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == host.as_bytes())
}

fn is_attr_value(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: SessionConfigBuilder) -> ConfigError {
        b.build().expect_err("configuration should be rejected")
    }

    #[test]
    fn defaults_are_secure() {
        let c = SessionConfig::default();
        assert_eq!(c.name(), "id");
        assert_eq!(c.path(), "/");
        assert_eq!(c.domain(), None);
        assert!(c.secure());
        assert!(c.http_only());
        assert_eq!(c.same_site(), SameSite::Lax);
        assert!(!c.partitioned());
        assert_eq!(c.expiry(), Expiry::OnSessionEnd);
        assert_eq!(c.id_source(), &IdSource::Cookie);
        assert_eq!(c.touch_policy(), TouchPolicy::Throttled { percent: 10 });
        assert!(!c.save_on_server_error());
        assert_eq!(c.default_ttl().as_secs(), 86_400);
        assert_eq!(c.max_ttl().as_secs(), 400 * 86_400);
        assert!(matches!(c.protection, Protection::Plain));
    }

    #[test]
    fn each_invalid_combination_is_rejected_with_its_reason() {
        let b = SessionConfig::builder;
        assert_eq!(
            err(b().same_site(SameSite::None).secure(false)),
            ConfigError::SameSiteNoneWithoutSecure
        );
        assert_eq!(
            err(b().partitioned(true).secure(false)),
            ConfigError::PartitionedWithoutSecure
        );
        assert_eq!(
            err(b().name("__Host-id").domain("example.com")),
            ConfigError::HostPrefixWithDomain
        );
        assert_eq!(
            err(b().name("__Host-id").path("/app")),
            ConfigError::HostPrefixWithPath
        );
        assert_eq!(
            err(b().name("__host-id").secure(false)),
            ConfigError::PrefixWithoutSecure("__Host-")
        );
        assert_eq!(
            err(b().name("__Secure-id").secure(false)),
            ConfigError::PrefixWithoutSecure("__Secure-")
        );
        assert_eq!(
            err(b().name("__Http-id").http_only(false)),
            ConfigError::PrefixWithoutHttpOnly("__Http-")
        );
        assert_eq!(
            err(b().name("__Host-Http-id").http_only(false)),
            ConfigError::PrefixWithoutHttpOnly("__Host-Http-")
        );
        assert!(b().name("__Host-Http-id").build().is_ok());
        assert_eq!(
            err(b().max_ttl(Duration::days(401))),
            ConfigError::MaxTtlOver400Days
        );
        assert!(b().max_ttl(Duration::days(400)).build().is_ok());
        for bad in ["", "a b", "a;b", "a=b", "a\"b", "é", "a\u{7f}", "a,b"] {
            assert_eq!(
                err(b().name(bad)),
                ConfigError::InvalidCookieName(bad.into())
            );
        }
        for bad in ["", "x session", "x:id", "cookie", "Set-Cookie", "x\nid"] {
            assert_eq!(
                err(b().id_header(bad)),
                ConfigError::InvalidHeaderName(bad.into())
            );
        }
        for bad in ["", "app", "/a;b", "/a\nb"] {
            assert_eq!(err(b().path(bad)), ConfigError::InvalidPath(bad.into()));
        }
        for bad in ["", "a b.com", "a;b.com"] {
            assert_eq!(err(b().domain(bad)), ConfigError::InvalidDomain(bad.into()));
        }
        for bad in ["com", ".com", "localhost", "com."] {
            assert_eq!(
                err(b().domain(bad)),
                ConfigError::SingleLabelDomain(bad.into())
            );
        }
        for bad in [
            "co.uk",
            ".CO.UK",
            "github.io",
            "s3.amazonaws.com",
            "blogspot.com.",
        ] {
            assert_eq!(
                err(b().domain(bad)),
                ConfigError::PublicSuffixDomain(bad.into())
            );
        }
        for good in [
            "example.com",
            ".example.co.uk",
            "me.github.io",
            "app.internal",
        ] {
            assert!(b().domain(good).build().is_ok(), "{good}");
        }
        assert_eq!(
            err(b().old_keys([Key::generate()])),
            ConfigError::OldKeysWithoutProtection
        );
        assert_eq!(
            err(b().default_ttl(Duration::ZERO)),
            ConfigError::InvalidTtl("default store TTL")
        );
        assert_eq!(
            err(b().max_ttl(Duration::milliseconds(1500))),
            ConfigError::InvalidTtl("maximum TTL")
        );
        assert_eq!(
            err(b().max_ttl(Duration::days(365 * 200))),
            ConfigError::InvalidTtl("maximum TTL")
        );
        assert_eq!(
            err(b()
                .default_ttl(Duration::days(2))
                .max_ttl(Duration::days(1))),
            ConfigError::DefaultTtlAboveMax
        );
        assert_eq!(
            err(b().expiry(Expiry::OnInactivity(Duration::ZERO))),
            ConfigError::InactivityTooShort
        );
        for percent in [0, 101] {
            assert_eq!(
                err(b().touch_policy(TouchPolicy::Throttled { percent })),
                ConfigError::InvalidTouchPercent
            );
        }
    }

    #[test]
    fn error_messages_say_what_to_change() {
        let msg = ConfigError::SameSiteNoneWithoutSecure.to_string();
        assert!(msg.contains("Turn `secure` on"), "{msg}");
        let msg = ConfigError::HostPrefixWithDomain.to_string();
        assert!(msg.contains("remove the domain"), "{msg}");
    }

    #[test]
    fn valid_prefixed_and_header_configs_build() {
        let c = SessionConfig::builder().name("__Host-sid").build().unwrap();
        assert_eq!(c.name(), "__Host-sid");
        let c = SessionConfig::builder()
            .id_header("X-Session-Id")
            .build()
            .unwrap();
        assert_eq!(c.request_header(), "x-session-id");
        assert_eq!(c.response_header(), "x-session-id");
        let c = SessionConfig::builder()
            .same_site(SameSite::None)
            .partitioned(true)
            .build()
            .unwrap();
        assert!(c.partitioned());
    }

    #[test]
    fn keys_never_show_in_debug() {
        let key = Key::generate();
        let b = SessionConfig::builder()
            .private(key.clone())
            .old_keys([Key::generate()]);
        let c = b.clone().build().unwrap();
        for shown in [format!("{b:?}"), format!("{c:?}")] {
            assert!(shown.contains("REDACTED"), "{shown}");
            let needle = format!("{:?}", &key.master()[..8]);
            assert!(!shown.contains(&needle[1..needle.len() - 1]), "{shown}");
        }
    }

    #[test]
    fn a_config_turns_back_into_an_equal_builder() {
        let c = SessionConfig::builder()
            .name("sid")
            .signed(Key::generate())
            .old_keys([Key::generate()])
            .id_header("x-sid")
            .build()
            .unwrap();
        let again = SessionConfigBuilder::from(&c).build().unwrap();
        assert_eq!(format!("{c:?}"), format!("{again:?}"));
    }
}
