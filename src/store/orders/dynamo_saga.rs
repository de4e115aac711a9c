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
use super::{OrderStoreError, Stalled, dynamo_item, updated_at, updated_now};
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

/// The stored commands (none once the saga is final).
pub(super) fn parse_commands(raw: Option<String>) -> Result<Vec<Command>, String> {
    match raw {
        None => Ok(Vec::new()),
        Some(raw) => serde_json::from_str(&raw)
            .map_err(|error| format!("saga_commands is not a list of commands ({error}): {raw}")),
    }
}

/// The saga stored on `item` (one that has a `saga_state`), every field checked.
fn saga_of(item: &HashMap<String, AttributeValue>) -> Result<Saga, OrderStoreError> {
    let transaction_id = match item.get("transaction_id") {
        Some(AttributeValue::S(tx)) => tx.clone(),
        _ => String::from("(no transaction_id)"),
    };
    let unreadable = |detail: String| OrderStoreError::UnreadableSaga {
        transaction_id: transaction_id.clone(),
        detail,
    };
    let string = |name: &str| match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        other => Err(unreadable(format!("{name} is {other:?}, not a string"))),
    };
    let state = string("saga_state")?;
    let state =
        SagaState::parse(&state).ok_or_else(|| unreadable(format!("no saga state {state}")))?;
    let commands = match item.get("saga_commands") {
        None => Ok(Vec::new()),
        Some(_) => parse_commands(Some(string("saga_commands")?)),
    }
    .map_err(unreadable)?;
    let timeouts = match item.get("saga_timeouts") {
        None => 0,
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| unreadable(format!("saga_timeouts is {n}, not a count")))?,
        Some(other) => return Err(unreadable(format!("saga_timeouts is {other:?}"))),
    };
    let history = match item.get("saga_history") {
        None => Vec::new(),
        Some(AttributeValue::L(entries)) => entries
            .iter()
            .map(|entry| entry.as_s().cloned())
            .collect::<Result<Vec<String>, _>>()
            .map_err(|entry| unreadable(format!("a saga_history entry is {entry:?}")))?,
        Some(other) => return Err(unreadable(format!("saga_history is {other:?}"))),
    };
    Ok(Saga {
        user_id: string("user_id")?,
        state,
        commands,
        timeouts,
        reason: string("reason").ok(),
        updated: string("updated")?,
        history,
        transaction_id,
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
        answer
            .items()
            .iter()
            .find(|item| item.contains_key("saga_state"))
            .map(saga_of)
            .transpose()
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
    ) -> Result<Vec<Stalled>, OrderStoreError> {
        let cutoff = updated_at(before);
        let items = match self.has_outbox_index().await? {
            true => self.query_outbox(OUTBOX_SAGA, &cutoff).await?,
            false => {
                let filter = "attribute_exists(saga_commands) AND updated < :cutoff";
                self.scan(Some((filter, &cutoff))).await?
            }
        };
        Ok(items.iter().map(saga_of).collect())
    }
}
