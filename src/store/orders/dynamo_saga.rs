//! Orchestrated sagas in DynamoDB, kept on their order's item (Eventuate Tram keeps a saga
//! instance table; here the order is the saga's only record, so one conditional write
//! moves both): `saga_state`, `saga_commands` (the outbox: the current step's commands as
//! JSON), `saga_timeouts`, `saga_history` (a list of state changes) and `outbox = "saga"`
//! while the saga is in flight, which puts it in the sparse index the orchestrator reads
//! for steps that timed out.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamo::DynamoOrders;
use super::dynamo_item::{OUTBOX, OUTBOX_SAGA, PENDING_EVENT};
use super::{OrderStoreError, dynamo_item, updated_at, updated_now};
use crate::event::SagaEvent;
use crate::orchestration::messages::Command;
use crate::orchestration::saga::{Move, Saga, SagaState};

fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// The commands as stored: a JSON array.
pub(super) fn commands_json(commands: &[Command]) -> String {
    serde_json::to_string(commands).unwrap_or_else(|_| "[]".into())
}

/// The stored commands (none once the saga is final); `None`, logged, if unreadable.
pub(super) fn parse_commands(raw: Option<String>) -> Option<Vec<Command>> {
    let Some(raw) = raw else {
        return Some(Vec::new());
    };
    match serde_json::from_str(&raw) {
        Ok(commands) => Some(commands),
        Err(error) => {
            tracing::error!(%error, raw, "unreadable saga commands skipped");
            None
        }
    }
}

/// The saga stored on `item`, if it has one; an unreadable one is logged and skipped.
fn saga_of(item: &HashMap<String, AttributeValue>) -> Option<Saga> {
    let string = |name: &str| match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    };
    let state = SagaState::parse(&string("saga_state")?)?;
    let commands = parse_commands(string("saga_commands"))?;
    let timeouts = match item.get("saga_timeouts") {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or_default(),
        _ => 0,
    };
    let history = match item.get("saga_history") {
        Some(AttributeValue::L(entries)) => entries
            .iter()
            .filter_map(|entry| entry.as_s().ok().cloned())
            .collect(),
        _ => Vec::new(),
    };
    Some(Saga {
        transaction_id: string("transaction_id")?,
        user_id: string("user_id")?,
        state,
        commands,
        timeouts,
        reason: string("reason"),
        updated: string("updated")?,
        history,
    })
}

impl DynamoOrders {
    /// Stores a new order with status ORDER_CREATED and its saga at `start`, whose commands
    /// are the outbox (fails if the id is taken).
    pub async fn create_saga(
        &self,
        event: &SagaEvent,
        start: &Move,
    ) -> Result<(), OrderStoreError> {
        let mut item = dynamo_item::new_order(event)?;
        item.remove(PENDING_EVENT);
        let updated = match item.get("updated") {
            Some(AttributeValue::S(updated)) => updated.clone(),
            _ => updated_now(),
        };
        item.insert(OUTBOX.into(), text(OUTBOX_SAGA));
        item.insert("saga_state".into(), text(start.to.as_str()));
        item.insert("saga_commands".into(), text(commands_json(&start.commands)));
        item.insert("saga_timeouts".into(), AttributeValue::N("0".into()));
        item.insert(
            "saga_history".into(),
            AttributeValue::L(vec![text(start.history_entry(&updated))]),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(transaction_id)")
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        Ok(())
    }

    /// The saga `transaction_id` (its order is found by the hash key alone: a reply does
    /// not carry the user id), or `None` if no order of it has a saga.
    pub async fn saga(&self, transaction_id: &str) -> Result<Option<Saga>, OrderStoreError> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("transaction_id = :tx")
            .expression_attribute_values(":tx", text(transaction_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        Ok(answer.items().iter().find_map(saga_of))
    }

    /// Moves `saga` by `step` if nothing moved it since it was read (same state, same
    /// `updated`); false if something did. A final move sets the order's status too and
    /// takes the saga out of the index of sagas in flight.
    pub async fn advance(&self, saga: &Saga, step: &Move) -> Result<bool, OrderStoreError> {
        let now = updated_now();
        let mut set = vec![
            "saga_state = :to",
            "saga_timeouts = :timeouts",
            "updated = :now",
            "saga_history = list_append(if_not_exists(saga_history, :empty), :entry)",
        ];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("transaction_id", text(&saga.transaction_id))
            .key("user_id", text(&saga.user_id))
            .condition_expression("saga_state = :from AND updated = :version")
            .expression_attribute_values(":from", text(saga.state.as_str()))
            .expression_attribute_values(":version", text(&saga.updated))
            .expression_attribute_values(":to", text(step.to.as_str()))
            .expression_attribute_values(":timeouts", AttributeValue::N(step.timeouts.to_string()))
            .expression_attribute_values(":now", text(&now))
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(
                ":entry",
                AttributeValue::L(vec![text(step.history_entry(&now))]),
            );
        if let Some(reason) = &step.reason {
            set.push("reason = :reason");
            update = update.expression_attribute_values(":reason", text(reason));
        }
        let remove = match step.to.final_status() {
            Some(status) => {
                set.push("#s = :status");
                update = update
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":status", text(status.as_str()));
                " REMOVE saga_commands, outbox"
            }
            None => {
                set.push("saga_commands = :commands");
                update = update
                    .expression_attribute_values(":commands", text(commands_json(&step.commands)));
                ""
            }
        };
        let expression = format!("SET {}{remove}", set.join(", "));
        match update.update_expression(expression).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(self.failure(e)),
        }
    }

    /// Sagas in flight that last moved more than `age` ago: from the sparse index, or by
    /// scanning a table created without it.
    pub async fn stalled_sagas(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Saga>, OrderStoreError> {
        let cutoff = updated_at(before);
        let items = match self.has_outbox_index().await? {
            true => self.query_outbox(OUTBOX_SAGA, &cutoff).await?,
            false => {
                let filter = "attribute_exists(saga_commands) AND updated < :cutoff";
                self.scan(Some((filter, &cutoff))).await?
            }
        };
        Ok(items.iter().filter_map(saga_of).collect())
    }
}
