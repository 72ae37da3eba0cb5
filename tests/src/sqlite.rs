//! tower-sessions-sqlx-store 0.15 on SQLite (built on tower-sessions-core 0.14), behind
//! our engine through [`TowerStore014`]: a real database file with a pool of
//! connections, as an application would run it. SQLite is compiled in, so this store
//! runs everywhere, CI included.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, SystemTime};

use session_core::TowerStore014;
use tower_sessions_sqlx_store::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tower_sessions_sqlx_store::SqliteStore;

const PREFIX: &str = "session-tests-sqlite-";

static CLEANED: Once = Once::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Removes the databases earlier runs left behind (older than an hour).
fn clean_old_files() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for entry in dir.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < hour_ago);
        if old && entry.file_name().to_string_lossy().starts_with(PREFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A fresh database file for one test.
fn fresh_path() -> PathBuf {
    CLEANED.call_once(clean_old_files);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("{PREFIX}{}-{n}.db", std::process::id()))
}

/// tower-sessions-sqlx-store's `SqliteStore` on a new database file, migrated.
pub async fn store() -> TowerStore014<SqliteStore> {
    let options = SqliteConnectOptions::new()
        .filename(fresh_path())
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("open a SQLite database in the temp directory");
    let store = SqliteStore::new(pool);
    store.migrate().await.expect("create the sessions table");
    TowerStore014::new(store)
}
