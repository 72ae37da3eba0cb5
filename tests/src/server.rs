//! [`Framework`]: how the suite starts the same app on each adapter; [`TestServer`].

use std::future::Future;

use session_core::{SessionConfig, SessionStore};

/// A server on `127.0.0.1:<free port>`, stopped when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    stop: Option<Box<dyn FnOnce() + Send + Sync>>,
    engine: Option<session_core::SessionEngine>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("base", &self.base)
            .finish()
    }
}

impl TestServer {
    /// A server at `addr`, stopped by `stop`.
    pub fn new(addr: std::net::SocketAddr, stop: impl FnOnce() + Send + Sync + 'static) -> Self {
        TestServer {
            base: format!("http://{addr}"),
            stop: Some(Box::new(stop)),
            engine: None,
        }
    }

    /// The same server, exposing the session engine it runs.
    pub fn with_engine(mut self, engine: session_core::SessionEngine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// The bad-id counts of the server's session engine.
    ///
    /// # Panics
    ///
    /// If the server was not given its engine.
    pub fn metrics(&self) -> session_core::Metrics {
        self.engine
            .as_ref()
            .expect("a server with its engine")
            .metrics()
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// An adapter under test. Each implementation serves the same routes, with the session
/// layer/middleware configured by `config` in front of all but `/nolayer`:
///
/// | route | does |
/// |---|---|
/// | `/plain` | answers `plain` without touching the session |
/// | `/get/{key}` | the JSON value of `key`, or `null` |
/// | `/all` | every value as a JSON object |
/// | `/set/{key}/{value}` | sets `key` to `value` parsed as JSON (else as a string); 413 with the error when refused |
/// | `/fill/{n}` | sets `f0` .. `f{n-1}` to their numbers; 413 with the error when refused |
/// | `/remove/{key}` | removes `key` |
/// | `/login/{user}` | sets `user`, then `cycle_id` |
/// | `/flush` | `flush` (logout) on the loaded session |
/// | `/failflush` | `flush`, then answers 500 |
/// | `/logout` | `flush` through the session handle, without loading |
/// | `/fail/{key}/{value}` | sets `key`, then answers 500 |
/// | `/remember/{secs}` | `set_expiry(OnInactivity(secs))` |
/// | `/gatedget/{gate}/{key}` | like `/get`, holding the loaded session at the gate `gate` |
/// | `/gatedlogin/{gate}/{user}` | like `/login`, holding the loaded session at the gate `gate` |
/// | `/slowset/{key}/{value}` | like `/set`, holding the loaded session 100 ms first |
/// | `/nolayer` | extracts the session with no layer in front: a 500 |
pub trait Framework: Send + Sync + 'static {
    /// A name for messages.
    const NAME: &'static str;
    /// What the adapter logs when the session is extracted without its layer.
    const MISSING_LAYER_HINT: &'static str;

    /// Starts the app over `store` with `config`.
    fn serve<S: SessionStore + Clone>(
        store: S,
        config: SessionConfig,
    ) -> impl Future<Output = TestServer> + Send;
}

/// `value` parsed as JSON, or as a JSON string when it is not JSON.
pub fn parse_value(value: &str) -> serde_json::Value {
    serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()))
}

/// How the suite's apps answer a failed user-session call: 501 with "unsupported" for a
/// store that cannot, else the error's own status with a generic body (the cause is the
/// application's to log).
pub fn user_error(e: &session_core::StoreError) -> (u16, String) {
    match e {
        session_core::StoreError::Unsupported(_) => (501, "unsupported".to_owned()),
        other => (other.status().as_u16(), "store error".to_owned()),
    }
}

/// A user's sessions as the suite's apps answer them: times in Unix seconds.
pub fn sessions_json(list: &[session_core::SessionInfo]) -> serde_json::Value {
    list.iter()
        .map(|i| {
            serde_json::json!({
                "short_id": i.short_id,
                "user": i.user,
                "label": i.label,
                "current": i.current,
                "since": i.since.unix_timestamp(),
                "last_seen": i.last_seen.unix_timestamp(),
                "expires_at": i.expires_at.unix_timestamp(),
            })
        })
        .collect()
}
