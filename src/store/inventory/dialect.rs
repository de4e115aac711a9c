//! The few statements in which MySQL and SQLite differ, and the schema files of each.

use super::{InventoryError, redact};

/// The schema applied by `edm setup` (also loaded by MySQL in the compose stack).
pub const SCHEMA_SQL: &str = include_str!("../../../sql/01_schema.sql");
/// The course's five seed items.
pub const SEED_SQL: &str = include_str!("../../../sql/02_seed.sql");
/// The same schema for SQLite.
pub const SQLITE_SCHEMA_SQL: &str = include_str!("../../../sql/sqlite/01_schema.sql");
/// The same seed items for SQLite.
pub const SQLITE_SEED_SQL: &str = include_str!("../../../sql/sqlite/02_seed.sql");

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

    pub(super) fn schema(self) -> [&'static str; 2] {
        match self {
            Dialect::MySql => [SCHEMA_SQL, SEED_SQL],
            Dialect::Sqlite => [SQLITE_SCHEMA_SQL, SQLITE_SEED_SQL],
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
