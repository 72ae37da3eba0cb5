//! [`SessionLayer`]: configuration, validated once, shared by every route.

use std::fmt;
use std::sync::{Arc, OnceLock};

use session_core::{
    ConfigError, Expiry, Key, SameSite, SessionConfig, SessionConfigBuilder, SessionEngine,
    SessionStore, TouchPolicy,
};
use tower_layer::Layer;

use crate::service::SessionService;

/// The tower layer that gives every request a lazily loaded session.
///
/// ```
/// use axum::{routing::get, Router};
/// use session_axum::{MemoryStore, Session, SessionLayer};
///
/// async fn handler(session: Session) -> String {
///     let n: u64 = session.get("n").unwrap().unwrap_or(0) + 1;
///     session.insert("n", n).unwrap();
///     n.to_string()
/// }
///
/// let app: Router = Router::new()
///     .route("/", get(handler))
///     .layer(SessionLayer::new(MemoryStore::default()).with_name("sid"));
/// ```
///
/// The `with_*` setters use tower-sessions' names. The configuration is validated once,
/// when the layer is first applied (`Router::layer` does that immediately): an invalid
/// one panics there with a sentence saying what to change, at start-up rather than on a
/// request. Call [`validate`](Self::validate) to get the error as a `Result` instead.
pub struct SessionLayer<S> {
    store: Arc<S>,
    config: SessionConfigBuilder,
    engine: Arc<OnceLock<SessionEngine>>,
}

impl<S> Clone for SessionLayer<S> {
    fn clone(&self) -> Self {
        SessionLayer {
            store: self.store.clone(),
            config: self.config.clone(),
            engine: self.engine.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for SessionLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish()
    }
}

impl<S: SessionStore> SessionLayer<S> {
    /// A layer over `store` with the secure defaults of [`SessionConfig`].
    pub fn new(store: S) -> Self {
        SessionLayer {
            store: Arc::new(store),
            config: SessionConfig::builder(),
            engine: Arc::new(OnceLock::new()),
        }
    }

    fn with(mut self, f: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder) -> Self {
        self.config = f(self.config);
        self.engine = Arc::new(OnceLock::new());
        self
    }

    /// Replaces the whole configuration. Default: [`SessionConfig::default`].
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionConfig, SessionLayer};
    /// let config = SessionConfig::builder().name("sid").build().unwrap();
    /// let layer = SessionLayer::new(MemoryStore::default()).with_config(config);
    /// ```
    pub fn with_config(self, config: SessionConfig) -> Self {
        self.with(|_| SessionConfigBuilder::from(&config))
    }

    /// The cookie name. Default: `id`.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_name("sid");
    /// ```
    pub fn with_name(self, name: impl Into<String>) -> Self {
        self.with(|c| c.name(name))
    }

    /// Whether the cookie is `Secure`. Default: `true`.
    ///
    /// # Warning
    ///
    /// Turn it off only for plain-HTTP development: the id then crosses the network in
    /// clear text.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_secure(false);
    /// ```
    pub fn with_secure(self, secure: bool) -> Self {
        self.with(|c| c.secure(secure))
    }

    /// Whether the cookie is `HttpOnly`. Default: `true`.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_http_only(true);
    /// ```
    pub fn with_http_only(self, http_only: bool) -> Self {
        self.with(|c| c.http_only(http_only))
    }

    /// The cookie's `SameSite`. Default: `Lax`.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SameSite, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_same_site(SameSite::Strict);
    /// ```
    pub fn with_same_site(self, same_site: SameSite) -> Self {
        self.with(|c| c.same_site(same_site))
    }

    /// The cookie `Path`. Default: `/`.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_path("/app");
    /// ```
    pub fn with_path(self, path: impl Into<String>) -> Self {
        self.with(|c| c.path(path))
    }

    /// The cookie `Domain`. Default: none (host-only).
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_domain("example.com");
    /// ```
    pub fn with_domain(self, domain: impl Into<String>) -> Self {
        self.with(|c| c.domain(domain))
    }

    /// Whether the cookie is `Partitioned` (CHIPS). Default: `false`.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_partitioned(true);
    /// ```
    pub fn with_partitioned(self, partitioned: bool) -> Self {
        self.with(|c| c.partitioned(partitioned))
    }

    /// The expiry of new sessions. Default: [`Expiry::OnSessionEnd`].
    ///
    /// ```
    /// # use session_axum::{Expiry, MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default())
    ///     .with_expiry(Expiry::OnInactivity(time::Duration::minutes(30)));
    /// ```
    pub fn with_expiry(self, expiry: Expiry) -> Self {
        self.with(|c| c.expiry(expiry))
    }

    /// Sign the id with `key`. Default: plain id.
    ///
    /// ```
    /// # use session_axum::{Key, MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_signed(Key::generate());
    /// ```
    pub fn with_signed(self, key: Key) -> Self {
        self.with(|c| c.signed(key))
    }

    /// Encrypt the id with `key`. Default: plain id.
    ///
    /// ```
    /// # use session_axum::{Key, MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_private(Key::generate());
    /// ```
    pub fn with_private(self, key: Key) -> Self {
        self.with(|c| c.private(key))
    }

    /// Keys that were current before: still accepted, and re-issued with the current key.
    /// Default: none.
    ///
    /// ```
    /// # use session_axum::{Key, MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default())
    ///     .with_signed(Key::generate())
    ///     .with_old_keys([Key::generate()]);
    /// ```
    pub fn with_old_keys(self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.with(|c| c.old_keys(keys))
    }

    /// Carry the id in this header (e.g. `x-session-id`) instead of a cookie. Default: a
    /// cookie.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_id_header("x-session-id");
    /// ```
    pub fn with_id_header(self, name: impl Into<String>) -> Self {
        self.with(|c| c.id_header(name))
    }

    /// When unchanged sessions get their expiry refreshed. Default:
    /// `Throttled { percent: 10 }`.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionLayer, TouchPolicy};
    /// let layer = SessionLayer::new(MemoryStore::default())
    ///     .with_touch_policy(TouchPolicy::OnEveryRequest);
    /// ```
    pub fn with_touch_policy(self, policy: TouchPolicy) -> Self {
        self.with(|c| c.touch_policy(policy))
    }

    /// tower-sessions' `with_always_save`: `true` is [`TouchPolicy::OnEveryRequest`],
    /// `false` is [`TouchPolicy::OnStateChanges`]. Default: neither, the throttled policy.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default()).with_always_save(true);
    /// ```
    pub fn with_always_save(self, always: bool) -> Self {
        let policy = if always {
            TouchPolicy::OnEveryRequest
        } else {
            TouchPolicy::OnStateChanges
        };
        self.with_touch_policy(policy)
    }

    /// Checks the configuration now.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] that would otherwise panic when the layer is applied.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SameSite, SessionLayer};
    /// let bad = SessionLayer::new(MemoryStore::default())
    ///     .with_same_site(SameSite::None)
    ///     .with_secure(false);
    /// assert!(bad.validate().is_err());
    /// ```
    pub fn validate(self) -> Result<Self, ConfigError> {
        let config = self.config.clone().build()?;
        let engine = SessionEngine::for_adapter(self.store.clone(), config, "axum");
        let _ = self.engine.set(engine);
        Ok(self)
    }

    /// The engine this layer applies, built now if it was not yet; clones of the layer
    /// share it. Keep a clone to read [`SessionEngine::metrics`] (bad-id counts) from an
    /// admin route.
    ///
    /// ```
    /// # use session_axum::{MemoryStore, SessionLayer};
    /// let layer = SessionLayer::new(MemoryStore::default());
    /// let engine = layer.engine().clone();
    /// assert_eq!(engine.metrics().rejected_ids, 0);
    /// ```
    ///
    /// # Panics
    ///
    /// On an invalid configuration, like applying the layer; see
    /// [`validate`](Self::validate).
    pub fn engine(&self) -> &SessionEngine {
        self.engine
            .get_or_init(|| match self.config.clone().build() {
                Ok(config) => SessionEngine::for_adapter(self.store.clone(), config, "axum"),
                Err(e) => panic!("invalid session configuration for `SessionLayer`: {e}"),
            })
    }
}

impl<S: SessionStore, Inner> Layer<Inner> for SessionLayer<S> {
    type Service = SessionService<Inner>;

    fn layer(&self, inner: Inner) -> Self::Service {
        SessionService::new(inner, self.engine().clone())
    }
}
