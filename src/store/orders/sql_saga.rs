//! Orchestrated sagas in SQL, kept on their order's row (columns `saga_*`, from migration
//! `sql/orders/02_orchestrated_sagas.sql`): the same record and the same conditional moves
//! as on DynamoDB.

use sqlx::Row;

use super::dynamo_saga::{commands_json, parse_commands};
use super::sql::SqlOrders;
use super::{OrderStoreError, Stalled, updated_at, updated_now};
use crate::event::{SagaEvent, Status};
use crate::orchestration::saga::{Move, Saga, SagaState};

const SAGA_COLUMNS: &str = "transaction_id, user_id, saga_state, saga_commands, saga_timeouts, \
                            reason, updated, saga_history";

/// The saga of a row selected with [`SAGA_COLUMNS`], every field checked.
fn saga_of(row: &sqlx::any::AnyRow) -> Result<Saga, OrderStoreError> {
    let text = |column: &str| row.try_get::<Option<String>, _>(column).ok().flatten();
    let transaction_id = text("transaction_id").unwrap_or_else(|| "(no transaction_id)".into());
    let unreadable = |detail: String| OrderStoreError::UnreadableSaga {
        transaction_id: transaction_id.clone(),
        detail,
    };
    let required =
        |column: &str| text(column).ok_or_else(|| unreadable(format!("{column} is missing")));
    let state = required("saga_state")?;
    let state =
        SagaState::parse(&state).ok_or_else(|| unreadable(format!("no saga state {state}")))?;
    let commands = parse_commands(text("saga_commands")).map_err(unreadable)?;
    let timeouts: i64 = row
        .try_get::<Option<i64>, _>("saga_timeouts")
        .map_err(|e| unreadable(format!("saga_timeouts: {e}")))?
        .unwrap_or_default();
    let history = match text("saga_history") {
        None => Vec::new(),
        Some(raw) => serde_json::from_str(&raw)
            .map_err(|e| unreadable(format!("saga_history is not a list ({e}): {raw}")))?,
    };
    Ok(Saga {
        user_id: required("user_id")?,
        state,
        commands,
        timeouts: u32::try_from(timeouts)
            .map_err(|_| unreadable(format!("saga_timeouts is {timeouts}")))?,
        reason: text("reason"),
        updated: required("updated")?,
        history,
        transaction_id,
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
        rows.first().map(saga_of).transpose()
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
    ) -> Result<Vec<Stalled>, OrderStoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SAGA_COLUMNS} FROM orders WHERE saga_commands IS NOT NULL AND updated < ?"
        )))
        .bind(updated_at(before))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.failed(e))?;
        Ok(rows.iter().map(saga_of).collect())
    }
}
