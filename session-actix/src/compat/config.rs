//! actix-session's `config` module: the builder and the lifecycle settings.

use std::fmt;
use std::marker::PhantomData;

use actix_web::cookie::time::Duration;
use session_core::{ConfigError, Expiry, SameSite, SessionConfig, TouchPolicy};

use super::cookie::{CookieConfig, CookieSessionStore, Protect};
use super::storage::SessionStore;
use super::SessionMiddleware;

/// What kind of cookie the session gets, and how long its state lives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionLifecycle {
    /// A cookie that ends with the browser session (no `Max-Age`).
    BrowserSession(BrowserSession),
    /// A cookie with a `Max-Age`.
    PersistentSession(PersistentSession),
}

impl From<BrowserSession> for SessionLifecycle {
    fn from(b: BrowserSession) -> Self {
        SessionLifecycle::BrowserSession(b)
    }
}

impl From<PersistentSession> for SessionLifecycle {
    fn from(p: PersistentSession) -> Self {
        SessionLifecycle::PersistentSession(p)
    }
}

/// A browser-session cookie; the store keeps the state for `state_ttl` (default a day)
/// after its last refresh, since no one can know when the browser session ends.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    state_ttl: Duration,
    policy: TtlExtensionPolicy,
}

impl Default for BrowserSession {
    fn default() -> Self {
        BrowserSession {
            state_ttl: Duration::days(1),
            policy: TtlExtensionPolicy::OnStateChanges,
        }
    }
}

impl BrowserSession {
    /// How long the store keeps the state after its last refresh (default a day).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// When the state's life is extended (default: when it changes).
    pub fn state_ttl_extension_policy(mut self, policy: TtlExtensionPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// A cookie with a `Max-Age` of `session_ttl` (default a day), which is also the
/// store's TTL.
#[derive(Debug, Clone)]
pub struct PersistentSession {
    session_ttl: Duration,
    policy: TtlExtensionPolicy,
}

impl Default for PersistentSession {
    fn default() -> Self {
        PersistentSession {
            session_ttl: Duration::days(1),
            policy: TtlExtensionPolicy::OnStateChanges,
        }
    }
}

impl PersistentSession {
    /// The cookie's `Max-Age` and the store's TTL (default a day).
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// When the session's life is extended (default: when it changes).
    pub fn session_ttl_extension_policy(mut self, policy: TtlExtensionPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// When a session's life is extended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TtlExtensionPolicy {
    /// On every request that carries the session. An unchanged session is extended
    /// without rewriting its data.
    OnEveryRequest,
    /// When its values change or it is renewed.
    OnStateChanges,
}

impl From<TtlExtensionPolicy> for TouchPolicy {
    fn from(p: TtlExtensionPolicy) -> Self {
        match p {
            TtlExtensionPolicy::OnEveryRequest => TouchPolicy::OnEveryRequest,
            TtlExtensionPolicy::OnStateChanges => TouchPolicy::OnStateChanges,
        }
    }
}

/// How the cookie's content is protected with the middleware's key.
#[derive(Debug, Clone, Copy, Default)]
pub enum CookieContentSecurity {
    /// Encrypted (AES-256-GCM): neither readable nor forgeable (the default).
    #[default]
    Private,
    /// Signed (HMAC-SHA256, bound to the cookie name): readable, not forgeable.
    Signed,
}

/// actix-session's builder for [`SessionMiddleware`].
pub struct SessionMiddlewareBuilder<Store> {
    store: Store,
    key: session_core::Key,
    name: String,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    path: String,
    domain: Option<String>,
    security: CookieContentSecurity,
    lifecycle: SessionLifecycle,
    marker: PhantomData<fn() -> Store>,
}

impl<Store: fmt::Debug> fmt::Debug for SessionMiddlewareBuilder<Store> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddlewareBuilder")
            .field("store", &self.store)
            .field("key", &"REDACTED")
            .field("name", &self.name)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("security", &self.security)
            .field("lifecycle", &self.lifecycle)
            .finish()
    }
}

/// actix-web's `SameSite` (cookie 0.16) as the engine's (cookie 0.18).
fn same_site(s: actix_web::cookie::SameSite) -> SameSite {
    match s {
        actix_web::cookie::SameSite::Strict => SameSite::Strict,
        actix_web::cookie::SameSite::Lax => SameSite::Lax,
        actix_web::cookie::SameSite::None => SameSite::None,
    }
}

impl<Store: SessionStore> SessionMiddlewareBuilder<Store> {
    pub(super) fn new(store: Store, key: actix_web::cookie::Key) -> Self {
        SessionMiddlewareBuilder {
            store,
            // Both cookie crates derive their signing and encryption keys from the same
            // 64-byte master key.
            key: session_core::Key::from(key.master()),
            name: "id".to_owned(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            path: "/".to_owned(),
            domain: None,
            security: CookieContentSecurity::Private,
            lifecycle: BrowserSession::default().into(),
            marker: PhantomData,
        }
    }

    /// The cookie's name (default `id`).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The cookie's `Secure` (default on).
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The kind of cookie and the state's lifetime (default: [`BrowserSession`]).
    pub fn session_lifecycle<S: Into<SessionLifecycle>>(mut self, lifecycle: S) -> Self {
        self.lifecycle = lifecycle.into();
        self
    }

    /// The cookie's `SameSite` (default `Lax`), as actix-web's type.
    pub fn cookie_same_site(mut self, same_site: actix_web::cookie::SameSite) -> Self {
        self.same_site = self::same_site(same_site);
        self
    }

    /// The cookie's `Path` (default `/`).
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The cookie's `Domain` (default none).
    pub fn cookie_domain(mut self, domain: Option<String>) -> Self {
        self.domain = domain;
        self
    }

    /// Encrypt (default) or sign the cookie's content with the key.
    pub fn cookie_content_security(mut self, security: CookieContentSecurity) -> Self {
        self.security = security;
        self
    }

    /// The cookie's `HttpOnly` (default on).
    pub fn cookie_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The middleware, ready for `.wrap(...)`.
    ///
    /// # Panics
    ///
    /// On an invalid configuration (for example `SameSite=None` without `Secure`), with
    /// a message naming the setting: at start-up, never on a request.
    pub fn build(self) -> SessionMiddleware<Store> {
        match self.try_build() {
            Ok(middleware) => middleware,
            Err(e) => panic!("invalid session configuration for `SessionMiddleware`: {e}"),
        }
    }

    /// The middleware, or what is wrong with the configuration.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose message says what to change.
    pub fn try_build(self) -> Result<SessionMiddleware<Store>, ConfigError> {
        Store::build_middleware(self)
    }

    /// The engine's configuration for these settings, validated.
    fn engine_config(&self) -> Result<SessionConfig, ConfigError> {
        let mut config = SessionConfig::builder()
            .name(self.name.clone())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site)
            .path(self.path.clone());
        if let Some(domain) = &self.domain {
            config = config.domain(domain.clone());
        }
        config = match self.security {
            CookieContentSecurity::Private => config.private(self.key.clone()),
            CookieContentSecurity::Signed => config.signed(self.key.clone()),
        };
        config = match &self.lifecycle {
            SessionLifecycle::BrowserSession(b) => config
                .expiry(Expiry::OnSessionEnd)
                .default_ttl(b.state_ttl)
                .touch_policy(b.policy.clone().into()),
            SessionLifecycle::PersistentSession(p) => config
                .expiry(Expiry::OnInactivity(p.session_ttl))
                .touch_policy(p.policy.clone().into()),
        };
        config.build()
    }
}

impl<Store: session_core::SessionStore> SessionMiddlewareBuilder<Store> {
    /// The engine's middleware over the store, loading before routing as actix-session.
    pub(super) fn build_engine(self) -> Result<SessionMiddleware<Store>, ConfigError> {
        let config = self.engine_config()?;
        let inner = crate::SessionMiddleware::builder(self.store)
            .config(config)
            .load_before_routing(true)
            .try_build()?;
        Ok(SessionMiddleware::engine(inner))
    }
}

impl SessionMiddlewareBuilder<CookieSessionStore> {
    /// The cookie-state middleware; the settings are validated as the engine's are.
    pub(super) fn build_cookie(self) -> Result<SessionMiddleware<CookieSessionStore>, ConfigError> {
        self.engine_config()?;
        let (max_age, state_ttl, policy) = match self.lifecycle {
            SessionLifecycle::BrowserSession(b) => (None, b.state_ttl, b.policy),
            SessionLifecycle::PersistentSession(p) => {
                (Some(p.session_ttl), p.session_ttl, p.policy)
            }
        };
        let protect = match self.security {
            CookieContentSecurity::Private => Protect::Private(self.key),
            CookieContentSecurity::Signed => {
                Protect::Signed(session_core::bind_to_name(&self.key, &self.name))
            }
        };
        Ok(SessionMiddleware::cookie(CookieConfig {
            name: self.name,
            secure: self.secure,
            http_only: self.http_only,
            same_site: self.same_site,
            path: self.path,
            domain: self.domain,
            protect,
            max_age,
            state_ttl,
            extend_every_request: matches!(policy, TtlExtensionPolicy::OnEveryRequest),
        }))
    }
}
