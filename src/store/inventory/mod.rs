//! The inventory store in MySQL (or, for `edm lab`'s embedded mode, SQLite): stock, its
//! history, and the saga steps already applied. One code path serves both through sqlx's
//! `Any` driver; [`Dialect`] holds the few statements that differ.
//!
//! Every saga step is one MySQL transaction that first claims the step's row in
//! `inventory_saga_step` (primary key `transaction_id, step`), then changes stock and
//! history. A redelivered event finds the row taken and gets the recorded outcome back
//! without touching stock, so each step is applied exactly once.

use std::time::Duration;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};

use crate::config::{MysqlArgs, START_HINT};
use crate::event::reason;

mod dialect;

pub use dialect::Dialect;
use dialect::sql_statements;

const STEP_RESERVE: &str = "RESERVE";
const STEP_RELEASE: &str = "RELEASE";
const OUTCOME_RESERVED: &str = "RESERVED";
const OUTCOME_RELEASED: &str = "RELEASED";
const OUTCOME_NOTHING_RESERVED: &str = "NOTHING_RESERVED";
const OUTCOME_PENDING: &str = "PENDING";

/// Errors of the inventory store, with the address and a hint where that helps.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// MySQL did not answer or refused the login.
    #[error(
        "cannot connect to MySQL at {address}: {detail}. Is it running? Start it with `{START_HINT}`, then run `edm setup`"
    )]
    Unreachable {
        /// host:port/database of the URL (without the password).
        address: String,
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
    pub async fn connect(args: &MysqlArgs) -> Result<Self, InventoryError> {
        let store = Self::connect_unchecked(args).await?;
        store.check_schema().await?;
        Ok(store)
    }

    /// Connects without checking the schema (used by `edm setup`). A SQLite file is
    /// created if missing.
    pub async fn connect_unchecked(args: &MysqlArgs) -> Result<Self, InventoryError> {
        install_default_drivers();
        let dialect = Dialect::of_url(&args.mysql_url)?;
        let address = redact(&args.mysql_url);
        let (url, connections) = match dialect {
            Dialect::MySql => (args.mysql_url.clone(), args.mysql_pool_size.max(1)),
            // One writer at a time is SQLite's model; one connection makes it explicit.
            Dialect::Sqlite if args.mysql_url.contains("mode=") => (args.mysql_url.clone(), 1),
            Dialect::Sqlite => {
                let separator = if args.mysql_url.contains('?') {
                    '&'
                } else {
                    '?'
                };
                (format!("{}{separator}mode=rwc", args.mysql_url), 1)
            }
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await;
        let pool = match pool {
            Ok(pool) => pool,
            Err(sqlx::Error::PoolTimedOut) => {
                // The pool only says it timed out; one direct attempt tells why.
                let detail = match AnyConnection::connect(&url).await {
                    Err(detail) => detail,
                    Ok(_) => sqlx::Error::PoolTimedOut,
                };
                return Err(InventoryError::Unreachable { address, detail });
            }
            Err(detail) => return Err(InventoryError::Unreachable { address, detail }),
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

    /// Creates the tables (if missing) and the seed items (if missing).
    pub async fn apply_schema(&self) -> Result<(), InventoryError> {
        let [schema, seed] = self.dialect.schema();
        for statement in sql_statements(schema).chain(sql_statements(seed)) {
            self.pool.execute(sqlx::raw_sql(statement)).await?;
        }
        Ok(())
    }

    /// Takes `quantity` of `item_id` for saga `transaction_id`, once.
    pub async fn reserve(
        &self,
        transaction_id: &str,
        item_id: i64,
        quantity: i64,
    ) -> Result<Applied<Reservation>, InventoryError> {
        let mut tx = self.pool.begin().await?;
        if !claim_step(&mut tx, transaction_id, STEP_RESERVE, item_id, quantity).await? {
            tx.rollback().await?;
            return self.recorded_reservation(transaction_id).await;
        }
        let row: Option<(i32, i32)> = sqlx::query_as(self.dialect.select_item_for_update())
            .bind(item_id)
            .fetch_optional(&mut *tx)
            .await?;
        let outcome = match row {
            None => Reservation::Rejected {
                reason: reason::UNKNOWN_ITEM,
            },
            Some((_, stock)) if i64::from(stock) < quantity => Reservation::Rejected {
                reason: reason::OUT_OF_STOCK,
            },
            Some((price, _)) => {
                sqlx::query("UPDATE inventory SET quantity = quantity - ? WHERE id = ?")
                    .bind(quantity)
                    .bind(item_id)
                    .execute(&mut *tx)
                    .await?;
                insert_history(&mut tx, transaction_id, item_id, -quantity).await?;
                Reservation::Reserved {
                    total_price: i64::from(price) * quantity,
                }
            }
        };
        let (label, total_price) = match &outcome {
            Reservation::Reserved { total_price } => (OUTCOME_RESERVED, Some(*total_price)),
            Reservation::Rejected { reason } => (*reason, None),
        };
        record_outcome(
            &mut tx,
            transaction_id,
            STEP_RESERVE,
            label,
            quantity,
            total_price,
        )
        .await?;
        tx.commit().await?;
        Ok(Applied {
            outcome,
            duplicate: false,
        })
    }

    /// Gives back whatever saga `transaction_id` still holds, once.
    ///
    /// The amount comes from the history (the net of the saga's rows), not from the event,
    /// so a reservation made by another implementation of the inventory consumer is
    /// compensated too, and a rejected reservation gives nothing back.
    pub async fn release(
        &self,
        transaction_id: &str,
        item_id: i64,
        quantity: i64,
    ) -> Result<Applied<Release>, InventoryError> {
        let mut tx = self.pool.begin().await?;
        if !claim_step(&mut tx, transaction_id, STEP_RELEASE, item_id, quantity).await? {
            tx.rollback().await?;
            let outcome = self.recorded_outcome(transaction_id, STEP_RELEASE).await?;
            let release = match outcome {
                Some((label, _, held)) if label == OUTCOME_RELEASED => {
                    Release::Released { quantity: held }
                }
                _ => Release::NothingReserved,
            };
            return Ok(Applied {
                outcome: release,
                duplicate: true,
            });
        }
        let held: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT inventory_id, CAST(-SUM(quantity) AS SIGNED) FROM inventory_history \
             WHERE transaction_id = ? GROUP BY inventory_id ORDER BY inventory_id",
        )
        .bind(transaction_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut released = 0;
        for (held_item, held_quantity) in held.into_iter().filter(|(_, q)| *q > 0) {
            sqlx::query("UPDATE inventory SET quantity = quantity + ? WHERE id = ?")
                .bind(held_quantity)
                .bind(held_item)
                .execute(&mut *tx)
                .await?;
            insert_history(&mut tx, transaction_id, i64::from(held_item), held_quantity).await?;
            released += held_quantity;
        }
        let outcome = if released > 0 {
            Release::Released { quantity: released }
        } else {
            Release::NothingReserved
        };
        let label = match outcome {
            Release::Released { .. } => OUTCOME_RELEASED,
            Release::NothingReserved => OUTCOME_NOTHING_RESERVED,
        };
        record_outcome(&mut tx, transaction_id, STEP_RELEASE, label, released, None).await?;
        tx.commit().await?;
        Ok(Applied {
            outcome,
            duplicate: false,
        })
    }

    async fn recorded_reservation(
        &self,
        transaction_id: &str,
    ) -> Result<Applied<Reservation>, InventoryError> {
        let recorded = self.recorded_outcome(transaction_id, STEP_RESERVE).await?;
        let outcome = match recorded {
            Some((label, Some(total_price), _)) if label == OUTCOME_RESERVED => {
                Reservation::Reserved { total_price }
            }
            Some((label, _, _)) if label == reason::OUT_OF_STOCK => Reservation::Rejected {
                reason: reason::OUT_OF_STOCK,
            },
            _ => Reservation::Rejected {
                reason: reason::UNKNOWN_ITEM,
            },
        };
        Ok(Applied {
            outcome,
            duplicate: true,
        })
    }

    async fn recorded_outcome(
        &self,
        transaction_id: &str,
        step: &str,
    ) -> Result<Option<(String, Option<i64>, i64)>, InventoryError> {
        let row: Option<(String, Option<i64>, i32)> = sqlx::query_as(
            "SELECT outcome, total_price, quantity FROM inventory_saga_step \
             WHERE transaction_id = ? AND step = ?",
        )
        .bind(transaction_id)
        .bind(step)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(label, price, quantity)| (label, price, i64::from(quantity))))
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

/// Claims a step's row; false if the step was already applied (or is being applied by a
/// concurrent transaction that has since committed).
async fn claim_step(
    tx: &mut Transaction<'_, Any>,
    transaction_id: &str,
    step: &str,
    item_id: i64,
    quantity: i64,
) -> Result<bool, InventoryError> {
    let inserted = sqlx::query(
        "INSERT INTO inventory_saga_step (transaction_id, step, inventory_id, quantity, outcome) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(transaction_id)
    .bind(step)
    .bind(item_id)
    .bind(quantity)
    .bind(OUTCOME_PENDING)
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// Records what a claimed step did: its outcome, the units it moved and the price.
async fn record_outcome(
    tx: &mut Transaction<'_, Any>,
    transaction_id: &str,
    step: &str,
    outcome: &str,
    quantity: i64,
    total_price: Option<i64>,
) -> Result<(), InventoryError> {
    sqlx::query(
        "UPDATE inventory_saga_step SET outcome = ?, quantity = ?, total_price = ? \
         WHERE transaction_id = ? AND step = ?",
    )
    .bind(outcome)
    .bind(quantity)
    .bind(total_price)
    .bind(transaction_id)
    .bind(step)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_history(
    tx: &mut Transaction<'_, Any>,
    transaction_id: &str,
    item_id: i64,
    quantity: i64,
) -> Result<(), InventoryError> {
    sqlx::query(
        "INSERT INTO inventory_history (transaction_id, inventory_id, quantity) VALUES (?, ?, ?)",
    )
    .bind(transaction_id)
    .bind(item_id)
    .bind(quantity)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((_, rest)) => rest.to_string(),
        None => url.trim_start_matches("mysql://").to_string(),
    }
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
    }
}
