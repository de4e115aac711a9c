//! The few statements in which MySQL and SQLite differ, and the schema migrations of each.

use sqlx::migrate::Migrator;

use super::{InventoryError, redact};

/// MySQL's schema as versioned migrations: `sql/NN_name.sql`, embedded in the binary. The
/// compose stack's MySQL also runs them at its first start (its init directory is `sql/`);
/// they are idempotent, so `edm setup` then only records them in `_sqlx_migrations`. A
/// schema change is a new file, never an edit of an applied one (sqlx refuses a changed
/// checksum).
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./sql");
/// The same schema for the lab's SQLite (`sql/sqlite/`).
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./sql/sqlite");

/// Which SQL database holds the stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL or MariaDB (the course's store).
    MySql,
    /// SQLite (the embedded store of `edm lab`).
    Sqlite,
}

impl Dialect {
    /// The dialect of a sqlx URL.
    pub fn of_url(url: &str) -> Result<Dialect, InventoryError> {
        match url.split_once(':').map(|(scheme, _)| scheme) {
            Some("mysql" | "mariadb") => Ok(Dialect::MySql),
            Some("sqlite") => Ok(Dialect::Sqlite),
            _ => Err(InventoryError::BadUrl(format!(
                "{} is neither mysql://… nor sqlite:…",
                redact(url)
            ))),
        }
    }

    pub(super) fn migrations(self) -> &'static Migrator {
        match self {
            Dialect::MySql => &MYSQL_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        }
    }

    /// Reads an item's price and stock, locking the row until the transaction ends
    /// (SQLite needs no lock: the embedded store has a single writer connection).
    pub(super) fn select_item_for_update(self) -> &'static str {
        match self {
            Dialect::MySql => "SELECT price, quantity FROM inventory WHERE id = ? FOR UPDATE",
            Dialect::Sqlite => "SELECT price, quantity FROM inventory WHERE id = ?",
        }
    }

    /// Reads a step's recorded outcome; on MySQL a locking read, which sees the latest
    /// committed row even in a transaction that began before it was written.
    pub(super) fn select_recorded_step(self) -> &'static str {
        match self {
            Dialect::MySql => {
                "SELECT outcome, total_price, quantity FROM inventory_saga_step \
                 WHERE transaction_id = ? AND step = ? LOCK IN SHARE MODE"
            }
            Dialect::Sqlite => {
                "SELECT outcome, total_price, quantity FROM inventory_saga_step \
                 WHERE transaction_id = ? AND step = ?"
            }
        }
    }

    pub(super) fn count_tables(self) -> &'static str {
        match self {
            Dialect::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() \
                 AND table_name IN ('inventory', 'inventory_history', 'inventory_saga_step')"
            }
            Dialect::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
                 AND name IN ('inventory', 'inventory_history', 'inventory_saga_step')"
            }
        }
    }
}
