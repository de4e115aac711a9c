//! Orchestrated sagas in SQL, kept on their order's row (columns `saga_*`, from migration
//! `sql/orders/02_orchestrated_sagas.sql`): the same record and the same conditional moves
//! as on DynamoDB.

use sqlx::Row;

use super::dynamo_saga::{commands_json, parse_commands};
use super::sql::SqlOrders;
use super::{OrderStoreError, updated_at, updated_now};
use crate::event::{SagaEvent, Status};
use crate::orchestration::saga::{Move, Saga, SagaState};

const SAGA_COLUMNS: &str = "transaction_id, user_id, saga_state, saga_commands, saga_timeouts, \
                            reason, updated, saga_history";

/// The saga of a row selected with [`SAGA_COLUMNS`]; an unreadable one is logged and
/// skipped.
fn saga_of(row: &sqlx::any::AnyRow) -> Option<Saga> {
    let text = |column: &str| row.try_get::<Option<String>, _>(column).ok().flatten();
    let state = SagaState::parse(&text("saga_state")?)?;
    let commands = parse_commands(text("saga_commands"))?;
    let timeouts: i64 = row.try_get("saga_timeouts").unwrap_or_default();
    Some(Saga {
        transaction_id: text("transaction_id")?,
        user_id: text("user_id")?,
        state,
        commands,
        timeouts: u32::try_from(timeouts).unwrap_or_default(),
        reason: text("reason"),
        updated: text("updated")?,
        history: text("saga_history")
            .and_then(|raw| serde_json::from_str(&raw).ok())
            .unwrap_or_default(),
    })
}

impl SqlOrders {
    /// Stores a new order with status ORDER_CREATED and its saga at `start`.
    pub async fn create_saga(
        &self,
        event: &SagaEvent,
        start: &Move,
    ) -> Result<(), OrderStoreError> {
        self.insert(event, None, Some(start)).await
    }

    /// The saga `transaction_id`, or `None` if no order of it has a saga.
    pub async fn saga(&self, transaction_id: &str) -> Result<Option<Saga>, OrderStoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SAGA_COLUMNS} FROM orders WHERE transaction_id = ? AND saga_state IS NOT NULL"
        )))
        .bind(transaction_id)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.failed(e))?;
        Ok(rows.iter().find_map(saga_of))
    }

    /// Moves `saga` by `step` if nothing moved it since it was read; false if something did.
    pub async fn advance(&self, saga: &Saga, step: &Move) -> Result<bool, OrderStoreError> {
        let now = updated_now();
        let commands = match step.to.final_status() {
            Some(_) => None,
            None => Some(commands_json(&step.commands)),
        };
        let moved = sqlx::query(
            "UPDATE orders SET saga_state = ?, saga_commands = ?, saga_timeouts = ?, \
             reason = COALESCE(?, reason), status = COALESCE(?, status), updated = ?, \
             saga_history = json_insert(COALESCE(saga_history, '[]'), '$[#]', ?) \
             WHERE transaction_id = ? AND user_id = ? AND saga_state = ? AND updated = ?",
        )
        .bind(step.to.as_str())
        .bind(commands)
        .bind(i64::from(step.timeouts))
        .bind(step.reason.as_deref())
        .bind(step.to.final_status().map(Status::as_str))
        .bind(&now)
        .bind(step.history_entry(&now))
        .bind(&saga.transaction_id)
        .bind(&saga.user_id)
        .bind(saga.state.as_str())
        .bind(&saga.updated)
        .execute(self.pool())
        .await
        .map_err(|e| self.failed(e))?;
        Ok(moved.rows_affected() == 1)
    }

    /// Sagas in flight that last moved more than `age` ago.
    pub async fn stalled_sagas(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Saga>, OrderStoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SAGA_COLUMNS} FROM orders WHERE saga_commands IS NOT NULL AND updated < ?"
        )))
        .bind(updated_at(before))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.failed(e))?;
        Ok(rows.iter().filter_map(saga_of).collect())
    }
}
