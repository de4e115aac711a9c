//! Orders in DynamoDB: table `order`, hash key `transaction_id`, range key
//! `user_id`, attributes `name`, `addr`, `tel`, `email`, `status`, `updated` — the item
//! shape of the course's order service. A cancelled order also gets a `reason`.
//!
//! Status changes are conditional writes, so an order only moves forward
//! (ORDER_CREATED → ORDER_COMPLETE | ORDER_CANCEL) and never twice.
//!
//! Transactional outbox: a new order is written together with its ORDER_CREATED event in
//! the attribute `pending_event`, which is removed once the broker has the event. An order
//! service that stops between the two finds the event there and sends it later.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::dynamo_item::{OUTBOX, OUTBOX_INDEX, OUTBOX_PENDING, PENDING_EVENT};
use super::{
    OrderStoreError, StoreKind, Transition, dynamo_item, parse_outbox, updated_before, updated_now,
};
use crate::config::OrderStoreArgs;
use crate::event::{SagaEvent, Status};

/// Orders in DynamoDB: a client, the table name and the limit on requests in flight.
#[derive(Debug, Clone)]
pub struct DynamoOrders {
    pub(super) client: Client,
    pub(super) table: String,
    endpoint: String,
    connections: Arc<Semaphore>,
    limit: usize,
    /// Whether the table has the outbox index (see [`Self::has_outbox_index`]).
    pub(super) outbox_index: Arc<tokio::sync::OnceCell<bool>>,
}

impl DynamoOrders {
    /// Builds a client: with an endpoint override (LocalStack, moto, dynalite) credentials
    /// come from the environment or are dummies; without one, the normal AWS chain is used.
    pub async fn connect(args: &OrderStoreArgs) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(12))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(args.dynamodb_region.clone()))
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            // Stalled-stream protection watches the throughput of request and response
            // bodies; DynamoDB's are a few hundred bytes, and a stalled call already ends
            // at the 5 s attempt timeout. Measured against dynalite: its upload check was
            // 9 % of the order consumer's CPU.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
        let endpoint = match args.endpoint_override() {
            Some(url) => {
                loader = loader.endpoint_url(url);
                if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                    loader = loader.credentials_provider(Credentials::new(
                        "test",
                        "test",
                        None,
                        None,
                        "edm-local",
                    ));
                }
                url.to_string()
            }
            None => "aws".to_string(),
        };
        let client = Client::new(&loader.load().await);
        let limit = args.dynamodb_connections.max(1) as usize;
        Self {
            client,
            table: args.orders_table.clone(),
            endpoint,
            connections: Arc::new(Semaphore::new(limit)),
            limit,
            outbox_index: Arc::default(),
        }
    }

    /// Store calls in flight now (each holds one of the `--dynamodb-connections` slots).
    pub fn requests_in_flight(&self) -> usize {
        self.limit - self.connections.available_permits()
    }

    /// Waits for one of the `--dynamodb-connections` slots; held for one store call.
    pub(super) async fn connection(&self) -> Option<SemaphorePermit<'_>> {
        // The semaphore is never closed: `None` cannot happen, and would only lift the limit.
        self.connections.acquire().await.ok()
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub(super) fn failure<E>(&self, error: SdkError<E, HttpResponse>) -> OrderStoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match &error {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                OrderStoreError::Unreachable {
                    store: StoreKind::DynamoDb,
                    endpoint: self.endpoint.clone(),
                    detail: innermost_cause(&error),
                }
            }
            _ if error.code() == Some("ResourceNotFoundException") => OrderStoreError::NoTable {
                store: StoreKind::DynamoDb,
                table: self.table.clone(),
                endpoint: self.endpoint.clone(),
            },
            SdkError::ServiceError(service) => {
                let code = service.err().code();
                let detail = format!(
                    "{}: {}",
                    code.unwrap_or("error"),
                    service.err().message().unwrap_or("no message")
                );
                match super::refuses_for_good(code, service.raw().status().as_u16()) {
                    true => OrderStoreError::Rejected {
                        store: StoreKind::DynamoDb,
                        detail,
                    },
                    false => OrderStoreError::Request {
                        store: StoreKind::DynamoDb,
                        detail,
                    },
                }
            }
            _ => OrderStoreError::Request {
                store: StoreKind::DynamoDb,
                detail: DisplayErrorContext(&error).to_string(),
            },
        }
    }

    /// Stores a new order with status ORDER_CREATED (fails if the id is taken).
    pub async fn create(&self, event: &SagaEvent) -> Result<(), OrderStoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(dynamo_item::new_order(event)?))
            .condition_expression("attribute_not_exists(transaction_id)")
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        Ok(())
    }

    /// The stored order's attributes, or `None` if there is no such order.
    pub async fn get(
        &self,
        transaction_id: &str,
        user_id: &str,
    ) -> Result<Option<Map<String, Value>>, OrderStoreError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                "transaction_id",
                AttributeValue::S(transaction_id.to_string()),
            )
            .key("user_id", AttributeValue::S(user_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        answer.item.map(dynamo_item::shown).transpose()
    }

    /// Every item of the table that matches `filter` (with `:cutoff` bound to `cutoff`,
    /// if given), all pages of the scan.
    pub(super) async fn scan(
        &self,
        filter: Option<(&str, &str)>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, OrderStoreError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start_key);
            if let Some((expression, cutoff)) = filter {
                scan = scan
                    .filter_expression(expression)
                    .expression_attribute_values(":cutoff", AttributeValue::S(cutoff.to_string()));
            }
            let page = scan.send().await.map_err(|e| self.failure(e))?;
            items.extend(page.items().iter().cloned());
            start_key = page.last_evaluated_key;
            if start_key.is_none() {
                return Ok(items);
            }
        }
    }

    /// Every order in the table (a full scan: for tools and checks, not for hot paths).
    pub async fn all_orders(&self) -> Result<Vec<Map<String, Value>>, OrderStoreError> {
        self.scan(None)
            .await?
            .into_iter()
            .map(dynamo_item::shown)
            .collect()
    }

    /// Marks the order's ORDER_CREATED event as sent (empties its outbox).
    pub async fn mark_sent(
        &self,
        transaction_id: &str,
        user_id: &str,
    ) -> Result<(), OrderStoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(
                "transaction_id",
                AttributeValue::S(transaction_id.to_string()),
            )
            .key("user_id", AttributeValue::S(user_id.to_string()))
            .update_expression("REMOVE pending_event, outbox")
            .condition_expression("attribute_exists(transaction_id)")
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        Ok(())
    }

    /// ORDER_CREATED events still in the outbox of orders last updated more than `age` ago:
    /// from the sparse index of unsent orders, or — for a table created without it — by
    /// scanning the table. Unreadable outbox entries are logged and skipped.
    pub async fn pending_events(&self, age: Duration) -> Result<Vec<SagaEvent>, OrderStoreError> {
        let cutoff = updated_before(age);
        let items = match self.has_outbox_index().await? {
            true => self.query_outbox(OUTBOX_PENDING, &cutoff).await?,
            false => {
                let filter = "attribute_exists(pending_event) AND updated < :cutoff";
                self.scan(Some((filter, &cutoff))).await?
            }
        };
        Ok(parse_outbox(items.iter().filter_map(
            |item| match item.get(PENDING_EVENT) {
                Some(AttributeValue::S(raw)) => Some(raw.as_str()),
                _ => None,
            },
        )))
    }

    /// The orders whose `outbox` is `kind` (unsent events, or sagas in flight), last
    /// updated before `cutoff`, from the sparse index.
    pub(super) async fn query_outbox(
        &self,
        kind: &str,
        cutoff: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, OrderStoreError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(OUTBOX_INDEX)
                .key_condition_expression("#o = :pending AND updated < :cutoff")
                .expression_attribute_names("#o", OUTBOX)
                .expression_attribute_values(":pending", AttributeValue::S(kind.into()))
                .expression_attribute_values(":cutoff", AttributeValue::S(cutoff.to_string()))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| self.failure(e))?;
            items.extend(page.items().iter().cloned());
            start_key = page.last_evaluated_key;
            if start_key.is_none() {
                return Ok(items);
            }
        }
    }

    /// Moves an order from ORDER_CREATED to `status` (ORDER_COMPLETE or ORDER_CANCEL).
    pub async fn finish(
        &self,
        transaction_id: &str,
        user_id: &str,
        status: Status,
        reason: Option<&str>,
    ) -> Result<Transition, OrderStoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(
                "transaction_id",
                AttributeValue::S(transaction_id.to_string()),
            )
            .key("user_id", AttributeValue::S(user_id.to_string()))
            .condition_expression("attribute_exists(transaction_id) AND #s = :created")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(
                ":created",
                AttributeValue::S(Status::OrderCreated.to_string()),
            )
            .expression_attribute_values(":next", AttributeValue::S(status.to_string()))
            .expression_attribute_values(":updated", AttributeValue::S(updated_now()));
        update = match reason {
            Some(reason) => update
                .update_expression(
                    "SET #s = :next, updated = :updated, reason = :reason REMOVE pending_event, outbox",
                )
                .expression_attribute_values(":reason", AttributeValue::S(reason.to_string())),
            None => {
                update.update_expression(
                    "SET #s = :next, updated = :updated REMOVE pending_event, outbox",
                )
            }
        };
        match update.send().await {
            Ok(_) => Ok(Transition::Moved),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                let current = self.get(transaction_id, user_id).await?;
                Ok(Transition::refused_move(current.as_ref(), status))
            }
            Err(e) => Err(self.failure(e)),
        }
    }
}

/// The last error in `error`'s source chain (e.g. "Connection refused"), which says more
/// to a person than the SDK's layers above it.
fn innermost_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    match cause.to_string() {
        text if text.is_empty() => error.to_string(),
        text => text,
    }
}
