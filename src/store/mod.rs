//! The services' own stores (polyglot persistence): stock in MySQL, orders in DynamoDB.

pub mod inventory;
pub mod orders;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

/// Connections of a SQLite pool. SQLite has one writer at a time, but in WAL mode readers
/// go on beside it, and every statement hops to its connection's own thread (sqlx): with
/// one connection, the lab's order store — order service, orchestrator and order consumer
/// — queued every statement behind one thread. `edm lab --orders 20000 --concurrency 64`
/// (release build, 2 cores, 2026-11-30): 1,101 sagas/s with one connection, 1,375–1,544
/// with two, 1,549–1,810 with four, 1,691–1,720 with eight. A writer that finds the file
/// locked waits (sqlx's busy timeout, 5 s), then fails as an outage: retried, never lost.
const SQLITE_CONNECTIONS: u32 = 4;

/// Opens a pool on a SQLite file (created if missing), in WAL mode with
/// `synchronous = NORMAL`: a commit survives the process being killed, and costs no fsync
/// (only a power cut may lose the last commits — fine for `edm lab`'s embedded stores).
pub(crate) async fn sqlite_pool(url: &str) -> Result<AnyPool, sqlx::Error> {
    install_default_drivers();
    let url = match url.contains("mode=") {
        true => url.to_string(),
        false => format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' }),
    };
    AnyPoolOptions::new()
        .max_connections(SQLITE_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                    .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
}
