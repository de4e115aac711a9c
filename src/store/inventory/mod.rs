//! The inventory store in MySQL (or, for `edm lab`'s embedded mode, SQLite): stock, its
//! history, and the saga steps already applied. One code path serves both through sqlx's
//! `Any` driver; [`Dialect`] holds the few statements that differ.
//!
//! Every saga step claims its row in `inventory_saga_step` (primary key `transaction_id,
//! step`) in the same transaction that changes stock and history (see [`StockStep`]); a
//! batch of steps shares one transaction.

use std::time::Duration;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyConnection, AnyPool, Connection};

use crate::config::InventoryStoreArgs;

mod dialect;
pub mod login;
mod steps;

pub use dialect::Dialect;
pub use steps::{StepOutcome, StockStep};

/// Errors of the inventory store, with the address and a hint where that helps.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// MySQL did not answer, or refused the login (the message says which, and what to do).
    #[error("{}", login::explain(address, user, detail))]
    Unreachable {
        /// host:port/database of the URL (without the password).
        address: String,
        /// The user of the URL.
        user: String,
        /// What the driver said.
        detail: sqlx::Error,
    },
    /// The tables are missing.
    #[error("the inventory tables are missing in MySQL at {address}; run `edm setup` first")]
    NoSchema {
        /// host:port/database of the URL.
        address: String,
    },
    /// The URL cannot be used.
    #[error("invalid MySQL URL: {0}")]
    BadUrl(String),
    /// A query failed.
    #[error("MySQL query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// The schema's migrations could not be applied (e.g. an applied one was edited).
    #[error("cannot apply the schema's migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A bug: the store broke one of its own rules.
    #[error("inventory store error: {0}")]
    Internal(&'static str),
}

/// MySQL's (and MariaDB's) error numbers for data that does not fit the table: the same
/// statement fails the same way every time. `ER_BAD_NULL_ERROR` 1048,
/// `ER_WARN_DATA_OUT_OF_RANGE` 1264, `ER_TRUNCATED_WRONG_VALUE` 1292, `ER_DIVISION_BY_ZERO`
/// 1365, `ER_TRUNCATED_WRONG_VALUE_FOR_FIELD` 1366 (e.g. a 4-byte character in a utf8mb3
/// column), `ER_DATA_TOO_LONG` 1406, `ER_DATA_OUT_OF_RANGE` 1690, `ER_CHECK_CONSTRAINT_VIOLATED`
/// 3819 (MySQL) and `ER_CONSTRAINT_FAILED` 4025 (MariaDB).
const MYSQL_DATA_ERRORS: [u16; 9] = [1048, 1264, 1292, 1365, 1366, 1406, 1690, 3819, 4025];

impl InventoryError {
    /// Whether the statement failed because of the event's data, not the server's state:
    /// retrying will never help, so the event goes to the dead-letter topic.
    pub fn is_permanent(&self) -> bool {
        let InventoryError::Query(sqlx::Error::Database(error)) = self else {
            return false;
        };
        matches!(
            error.kind(),
            sqlx::error::ErrorKind::NotNullViolation | sqlx::error::ErrorKind::CheckViolation
        ) || error
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|e| MYSQL_DATA_ERRORS.contains(&e.number()))
    }
}

/// One item of the inventory (`GET /v1/inventory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Item {
    /// Item id.
    pub id: i32,
    /// Item name.
    pub name: String,
    /// Unit price.
    pub price: i32,
    /// Units in stock.
    pub quantity: i32,
}

/// One stock change (`GET /v1/inventory_history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HistoryRow {
    /// Row id.
    pub id: i32,
    /// The saga that changed the stock.
    pub transaction_id: String,
    /// The item.
    pub inventory_id: i32,
    /// −units taken, +units given back.
    pub quantity: i32,
}

/// What a reservation (ORDER_CREATED) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Stock taken; the payment is `total_price`.
    Reserved {
        /// Price × quantity.
        total_price: i64,
    },
    /// Nothing taken, for `reason` (`OUT_OF_STOCK`, `UNKNOWN_ITEM`).
    Rejected {
        /// Why.
        reason: &'static str,
    },
}

/// What a release (ORDER_CANCEL) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// Stock given back to `item`.
    Released {
        /// Units given back.
        quantity: i64,
    },
    /// The saga held no stock (rejected or never reserved): nothing to give back.
    NothingReserved,
}

/// The outcome of a step, and whether it had already been applied before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied<T> {
    /// What the step did (or did the first time).
    pub outcome: T,
    /// True when the step had already been applied: this call changed nothing.
    pub duplicate: bool,
}

/// The inventory store: a connection pool.
#[derive(Debug, Clone)]
pub struct InventoryStore {
    pool: AnyPool,
    dialect: Dialect,
    address: String,
}

impl InventoryStore {
    /// Connects to MySQL and checks that the schema is there.
    pub async fn connect(args: &InventoryStoreArgs) -> Result<Self, InventoryError> {
        let store = Self::connect_unchecked(args).await?;
        store.check_schema().await?;
        Ok(store)
    }

    /// Connects without checking the schema (used by `edm setup`). A SQLite file is
    /// created if missing.
    pub async fn connect_unchecked(args: &InventoryStoreArgs) -> Result<Self, InventoryError> {
        install_default_drivers();
        let dialect = Dialect::of_url(&args.inventory_store)?;
        let address = redact(&args.inventory_store);
        let user = login::user_of(&args.inventory_store);
        let url = args.inventory_store.clone();
        let pool = match dialect {
            Dialect::MySql => {
                AnyPoolOptions::new()
                    .max_connections(args.mysql_pool_size.max(1))
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&url)
                    .await
            }
            Dialect::Sqlite => crate::store::sqlite_pool(&url).await,
        };
        let pool = match pool {
            Ok(pool) => pool,
            Err(sqlx::Error::PoolTimedOut) => {
                // The pool only says it timed out; one direct attempt tells why.
                let detail = match AnyConnection::connect(&url).await {
                    Err(detail) => detail,
                    Ok(_) => sqlx::Error::PoolTimedOut,
                };
                return Err(InventoryError::Unreachable {
                    address,
                    user,
                    detail,
                });
            }
            Err(detail) => {
                return Err(InventoryError::Unreachable {
                    address,
                    user,
                    detail,
                });
            }
        };
        Ok(Self {
            pool,
            dialect,
            address,
        })
    }

    /// The connection pool (for tests and tools that read the tables).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Fails with a helpful message if `edm setup` has not been run.
    pub async fn check_schema(&self) -> Result<(), InventoryError> {
        let tables: i64 = sqlx::query_scalar(self.dialect.count_tables())
            .fetch_one(&self.pool)
            .await?;
        if tables < 3 {
            return Err(InventoryError::NoSchema {
                address: self.address.clone(),
            });
        }
        Ok(())
    }

    /// Brings the schema up to date: applies the migrations this database has not had yet
    /// (tables and seed items; a database made before migrations existed gets them
    /// recorded, its tables and rows untouched).
    pub async fn apply_schema(&self) -> Result<(), InventoryError> {
        self.dialect.migrations().run(&self.pool).await?;
        Ok(())
    }

    /// Every item, by id.
    pub async fn items(&self) -> Result<Vec<Item>, InventoryError> {
        Ok(
            sqlx::query_as("SELECT id, name, price, quantity FROM inventory ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// One item, if it exists.
    pub async fn item(&self, item_id: i64) -> Result<Option<Item>, InventoryError> {
        Ok(
            sqlx::query_as("SELECT id, name, price, quantity FROM inventory WHERE id = ?")
                .bind(item_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every history row, oldest first.
    pub async fn history(&self) -> Result<Vec<HistoryRow>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT id, transaction_id, inventory_id, quantity FROM inventory_history ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The newest `limit` history rows, newest first (the web view's Stock tab: a real
    /// stack's history grows without end).
    pub async fn newest_history(&self, limit: u32) -> Result<Vec<HistoryRow>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT id, transaction_id, inventory_id, quantity FROM inventory_history \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sets the stock of every item to `quantity` (the lab's load mode, on its own database).
    pub async fn set_all_stock(&self, quantity: i64) -> Result<(), InventoryError> {
        sqlx::query("UPDATE inventory SET quantity = ?")
            .bind(quantity)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Per saga: number of history rows and their sum.
    pub async fn history_by_transaction(&self) -> Result<Vec<(String, i64, i64)>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT transaction_id, COUNT(*), CAST(SUM(quantity) AS SIGNED) \
             FROM inventory_history GROUP BY transaction_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Per item: the sum of its history rows.
    pub async fn history_by_item(&self) -> Result<Vec<(i32, i64)>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT inventory_id, CAST(SUM(quantity) AS SIGNED) FROM inventory_history \
             GROUP BY inventory_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The history rows of one saga, oldest first.
    pub async fn history_of(
        &self,
        transaction_id: &str,
    ) -> Result<Vec<HistoryRow>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT id, transaction_id, inventory_id, quantity FROM inventory_history \
             WHERE transaction_id = ? ORDER BY id",
        )
        .bind(transaction_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}{}", parsed.path()),
            (Some(host), None) => format!("{host}{}", parsed.path()),
            // No host and no user (`sqlite:///path`): nothing secret in it.
            (None, _) if !url.contains('@') => url.to_string(),
            (None, _) => after_last_at(url),
        },
        Err(_) => after_last_at(url),
    }
}

/// Whatever follows the last `@` of something that is no URL: never what precedes it.
fn after_last_at(text: &str) -> String {
    text.rsplit('@').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password() {
        assert_eq!(
            redact("mysql://root:inventorypw@127.0.0.1:3306/inventory"),
            "127.0.0.1:3306/inventory"
        );
        // An `@` in the password (percent-encoded, as URLs require) does not leak it.
        assert_eq!(
            redact("mysql://root:p%40ss@db.example:3306/inventory?ssl-mode=required"),
            "db.example:3306/inventory"
        );
        assert_eq!(
            redact("mysql://root:pw@localhost/inventory"),
            "localhost/inventory"
        );
        assert_eq!(
            redact("sqlite:///tmp/lab/inventory.db"),
            "sqlite:///tmp/lab/inventory.db"
        );
        assert!(!redact("root:secret@nonsense").contains("secret"));
    }
}
