//! Orders in SQL (SQLite for `edm lab`'s embedded mode): table `orders` with the DynamoDB
//! item's attributes as columns, the same forward-only status and the same outbox.

use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::{AnyPool, Row};

use super::dynamo_saga::commands_json;
use super::{
    OrderStoreError, Orders, Stalled, StoreKind, Transition, parse_outbox, updated_before,
    updated_now,
};
use crate::event::{SagaEvent, Status};
use crate::orchestration::saga::{Move, Saga};

/// The table's schema as versioned migrations (`sql/orders/NN_name.sql`), embedded.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./sql/orders");

/// The columns an order shows (as the DynamoDB item's attributes).
const COLUMNS: &str = "transaction_id, user_id, name, addr, tel, email, status, updated, reason, saga_state, saga_history";

/// Orders in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlOrders {
    pool: AnyPool,
    url: String,
}

impl SqlOrders {
    /// Connects to `url` (e.g. `sqlite:///tmp/lab/orders.db`; the file is created).
    pub async fn connect(url: &str) -> Result<Self, OrderStoreError> {
        let pool =
            crate::store::sqlite_pool(url)
                .await
                .map_err(|e| OrderStoreError::Unreachable {
                    store: StoreKind::Sqlite,
                    endpoint: url.to_string(),
                    detail: e.to_string(),
                })?;
        Ok(Self {
            pool,
            url: url.to_string(),
        })
    }

    /// The table name.
    pub fn table(&self) -> &str {
        "orders"
    }

    pub(super) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A failed statement: refused for good when the data cannot fit (a constraint, a
    /// value too big or of the wrong type: the same statement fails the same way again),
    /// else a failure that may pass (the file busy or locked, a disk error).
    pub(super) fn failed(&self, error: sqlx::Error) -> OrderStoreError {
        let detail = format!("{}: {error}", self.url);
        match refused_for_good(&error) {
            true => OrderStoreError::Rejected {
                store: StoreKind::Sqlite,
                detail,
            },
            false => OrderStoreError::Request {
                store: StoreKind::Sqlite,
                detail,
            },
        }
    }

    /// Fails if the table is missing.
    pub async fn check_table(&self) -> Result<(), OrderStoreError> {
        let found: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'orders'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        match found {
            0 => Err(OrderStoreError::NoTable {
                store: StoreKind::Sqlite,
                table: "orders".into(),
                endpoint: self.url.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Creates the table, or brings its schema up to date; true if it was created.
    pub async fn ensure_table(&self) -> Result<bool, OrderStoreError> {
        let existed = self.check_table().await.is_ok();
        MIGRATIONS
            .run(&self.pool)
            .await
            .map_err(|e| OrderStoreError::Request {
                store: StoreKind::Sqlite,
                detail: format!("{}: {e}", self.url),
            })?;
        Ok(!existed)
    }

    /// Drops the table, and the record of its migrations with it.
    pub async fn delete_table(&self) -> Result<(), OrderStoreError> {
        for statement in [
            "DROP TABLE IF EXISTS orders",
            "DROP TABLE IF EXISTS _sqlx_migrations",
        ] {
            sqlx::query(statement)
                .execute(&self.pool)
                .await
                .map_err(|e| self.failed(e))?;
        }
        Ok(())
    }

    /// Stores a new order with status ORDER_CREATED and its event in the outbox.
    pub async fn create(&self, event: &SagaEvent) -> Result<(), OrderStoreError> {
        self.insert(event, Some(event.to_json()), None).await
    }

    /// Inserts a new ORDER_CREATED order with its choreography outbox (`pending_event`)
    /// or its orchestrated saga at `start` (whose commands are the saga's outbox).
    pub(super) async fn insert(
        &self,
        event: &SagaEvent,
        pending_event: Option<String>,
        start: Option<&Move>,
    ) -> Result<(), OrderStoreError> {
        let order = &event.order;
        let updated = updated_now();
        sqlx::query(
            "INSERT INTO orders (transaction_id, user_id, name, addr, tel, email, status, \
             updated, pending_event, saga_state, saga_commands, saga_history) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&event.transaction_id)
        .bind(&order.user_id)
        .bind(&order.name)
        .bind(&order.addr)
        .bind(&order.tel)
        .bind(&order.email)
        .bind(Status::OrderCreated.as_str())
        .bind(&updated)
        .bind(pending_event)
        .bind(start.map(|start| start.to.as_str()))
        .bind(start.map(|start| commands_json(&start.commands)))
        .bind(start.map(|start| serde_json::json!([start.history_entry(&updated)]).to_string()))
        .execute(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// The stored order's attributes, or `None`.
    pub async fn get(
        &self,
        transaction_id: &str,
        user_id: &str,
    ) -> Result<Option<Map<String, Value>>, OrderStoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM orders WHERE transaction_id = ? AND user_id = ?"
        )))
        .bind(transaction_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        row.map(|row| to_json(&row))
            .transpose()
            .map_err(|e| self.failed(e))
    }

    /// Every order.
    pub async fn all_orders(&self) -> Result<Vec<Map<String, Value>>, OrderStoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM orders")))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        rows.iter()
            .map(to_json)
            .collect::<Result<_, _>>()
            .map_err(|e| self.failed(e))
    }

    /// Empties the order's outbox.
    pub async fn mark_sent(
        &self,
        transaction_id: &str,
        user_id: &str,
    ) -> Result<(), OrderStoreError> {
        sqlx::query(
            "UPDATE orders SET pending_event = NULL WHERE transaction_id = ? AND user_id = ?",
        )
        .bind(transaction_id)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// Outbox events of orders last updated more than `age` ago.
    pub async fn pending_events(&self, age: Duration) -> Result<Vec<SagaEvent>, OrderStoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT pending_event FROM orders WHERE pending_event IS NOT NULL AND updated < ?",
        )
        .bind(updated_before(age))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(parse_outbox(rows.iter().map(|(raw,)| raw.as_str())))
    }

    /// Moves an order from ORDER_CREATED to `status`.
    pub async fn finish(
        &self,
        transaction_id: &str,
        user_id: &str,
        status: Status,
        reason: Option<&str>,
    ) -> Result<Transition, OrderStoreError> {
        let moved = sqlx::query(
            "UPDATE orders SET status = ?, updated = ?, reason = ?, pending_event = NULL \
             WHERE transaction_id = ? AND user_id = ? AND status = ?",
        )
        .bind(status.as_str())
        .bind(updated_now())
        .bind(reason)
        .bind(transaction_id)
        .bind(user_id)
        .bind(Status::OrderCreated.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        if moved.rows_affected() == 1 {
            return Ok(Transition::Moved);
        }
        let current = self.get(transaction_id, user_id).await?;
        Ok(Transition::refused_move(current.as_ref(), status))
    }
}

/// A row as the same JSON object DynamoDB returns (no `reason` unless set; the saga's
/// history as a list).
fn to_json(row: &sqlx::any::AnyRow) -> Result<Map<String, Value>, sqlx::Error> {
    let mut order = Map::new();
    for column in COLUMNS.split(", ") {
        let value: Option<String> = row.try_get(column)?;
        let value = match (column, value) {
            (_, None) => continue,
            ("saga_history", Some(raw)) => serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
            (_, Some(text)) => Value::String(text),
        };
        order.insert(column.to_string(), value);
    }
    Ok(order)
}

/// The contract, on SQLite.
#[async_trait::async_trait]
impl Orders for SqlOrders {
    fn table(&self) -> &str {
        SqlOrders::table(self)
    }

    async fn check_table(&self) -> Result<(), OrderStoreError> {
        SqlOrders::check_table(self).await
    }

    async fn ensure_table(&self) -> Result<bool, OrderStoreError> {
        SqlOrders::ensure_table(self).await
    }

    async fn delete_table(&self) -> Result<(), OrderStoreError> {
        SqlOrders::delete_table(self).await
    }

    async fn create(&self, event: &SagaEvent) -> Result<(), OrderStoreError> {
        SqlOrders::create(self, event).await
    }

    async fn create_saga(&self, event: &SagaEvent, start: &Move) -> Result<(), OrderStoreError> {
        SqlOrders::create_saga(self, event, start).await
    }

    async fn saga(&self, transaction_id: &str) -> Result<Option<Saga>, OrderStoreError> {
        SqlOrders::saga(self, transaction_id).await
    }

    async fn advance(&self, saga: &Saga, step: &Move) -> Result<bool, OrderStoreError> {
        SqlOrders::advance(self, saga, step).await
    }

    async fn stalled_sagas(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Stalled>, OrderStoreError> {
        SqlOrders::stalled_sagas(self, before).await
    }

    async fn get(
        &self,
        transaction_id: &str,
        user_id: &str,
    ) -> Result<Option<Map<String, Value>>, OrderStoreError> {
        SqlOrders::get(self, transaction_id, user_id).await
    }

    async fn all_orders(&self) -> Result<Vec<Map<String, Value>>, OrderStoreError> {
        SqlOrders::all_orders(self).await
    }

    async fn mark_sent(&self, transaction_id: &str, user_id: &str) -> Result<(), OrderStoreError> {
        SqlOrders::mark_sent(self, transaction_id, user_id).await
    }

    async fn pending_events(&self, age: Duration) -> Result<Vec<SagaEvent>, OrderStoreError> {
        SqlOrders::pending_events(self, age).await
    }

    async fn finish(
        &self,
        transaction_id: &str,
        user_id: &str,
        status: Status,
        reason: Option<&str>,
    ) -> Result<Transition, OrderStoreError> {
        SqlOrders::finish(self, transaction_id, user_id, status, reason).await
    }
}

/// SQLite's answers that the data cannot be stored, whatever the moment: a constraint
/// (NOT NULL, CHECK, UNIQUE, FOREIGN KEY), SQLITE_TOOBIG (18), SQLITE_MISMATCH (20). Busy,
/// locked or I/O errors pass, and are retried.
fn refused_for_good(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(error) = error else {
        return false;
    };
    use sqlx::error::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation
            | ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
    ) || matches!(error.code().as_deref(), Some("18" | "20"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusal_of_the_data_is_told_from_a_failure_that_passes() {
        let dir = std::env::temp_dir().join(format!("edm-sql-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let orders = SqlOrders::connect(&url).await.expect("SQLite");
        sqlx::query("CREATE TABLE t (id TEXT NOT NULL CHECK (length(id) < 4))")
            .execute(orders.pool())
            .await
            .expect("table");
        let refused = sqlx::query("INSERT INTO t VALUES (NULL)")
            .execute(orders.pool())
            .await
            .expect_err("NOT NULL");
        assert!(matches!(
            orders.failed(refused),
            OrderStoreError::Rejected { .. }
        ));
        let refused = sqlx::query("INSERT INTO t VALUES ('toolong')")
            .execute(orders.pool())
            .await
            .expect_err("CHECK");
        assert!(matches!(
            orders.failed(refused),
            OrderStoreError::Rejected { .. }
        ));
        // A failure of the moment (here: a closed pool) is retried.
        orders.pool().close().await;
        let passing = sqlx::query("SELECT 1")
            .execute(orders.pool())
            .await
            .expect_err("closed");
        assert!(matches!(
            orders.failed(passing),
            OrderStoreError::Request { .. }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
