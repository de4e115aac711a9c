//! The services' own stores (polyglot persistence): stock in MySQL, orders in DynamoDB.

pub mod inventory;
pub mod orders;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

/// Opens a one-connection pool on a SQLite file (created if missing), in WAL mode with
/// `synchronous = NORMAL`: a commit survives the process being killed, and costs no fsync
/// (only a power cut may lose the last commits — fine for `edm lab`'s embedded stores).
/// One connection, because SQLite has one writer at a time anyway.
pub(crate) async fn sqlite_pool(url: &str) -> Result<AnyPool, sqlx::Error> {
    install_default_drivers();
    let url = match url.contains("mode=") {
        true => url.to_string(),
        false => format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' }),
    };
    AnyPoolOptions::new()
        .max_connections(1)
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
