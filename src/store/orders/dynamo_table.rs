//! The order table itself: whether it is there, creating it (with the sparse index of
//! unsent orders the outbox relay reads), deleting it.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

use super::dynamo::DynamoOrders;
use super::dynamo_item::{OUTBOX, OUTBOX_INDEX};
use super::{OrderStoreError, StoreKind};

impl DynamoOrders {
    /// Fails with a helpful message if the endpoint or the table is missing.
    pub async fn check_table(&self) -> Result<(), OrderStoreError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        Ok(())
    }

    /// Creates the table if it is missing; true if it was created.
    pub async fn ensure_table(&self) -> Result<bool, OrderStoreError> {
        match self.check_table().await {
            Ok(()) => return Ok(false),
            Err(OrderStoreError::NoTable { .. }) => {}
            Err(other) => return Err(other),
        }
        let key = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
        };
        let string_attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| OrderStoreError::Request {
            store: StoreKind::DynamoDb,
            detail: e.to_string(),
        };
        let outbox_index = GlobalSecondaryIndex::builder()
            .index_name(OUTBOX_INDEX)
            .key_schema(key(OUTBOX, KeyType::Hash).map_err(invalid)?)
            .key_schema(key("updated", KeyType::Range).map_err(invalid)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(invalid)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .key_schema(key("transaction_id", KeyType::Hash).map_err(invalid)?)
            .key_schema(key("user_id", KeyType::Range).map_err(invalid)?)
            .attribute_definitions(string_attribute("transaction_id").map_err(invalid)?)
            .attribute_definitions(string_attribute("user_id").map_err(invalid)?)
            .attribute_definitions(string_attribute(OUTBOX).map_err(invalid)?)
            .attribute_definitions(string_attribute("updated").map_err(invalid)?)
            .global_secondary_indexes(outbox_index)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ResourceInUseException") => Ok(false),
            Err(e) => Err(self.failure(e)),
        }
    }

    /// Deletes the table (the lab's own table, after a run).
    pub async fn delete_table(&self) -> Result<(), OrderStoreError> {
        self.client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        Ok(())
    }

    /// Whether the table has the sparse index of unsent orders (a table created by an
    /// older `edm setup` has not: the outbox relay then scans it). Asked once.
    pub async fn has_outbox_index(&self) -> Result<bool, OrderStoreError> {
        let known = self
            .outbox_index
            .get_or_try_init(|| async {
                let table = self
                    .client
                    .describe_table()
                    .table_name(&self.table)
                    .send()
                    .await
                    .map_err(|e| self.failure(e))?;
                let indexed = table.table().is_some_and(|t| {
                    t.global_secondary_indexes()
                        .iter()
                        .any(|i| i.index_name() == Some(OUTBOX_INDEX))
                });
                if !indexed {
                    tracing::info!(table = %self.table, "the order table has no index `{OUTBOX_INDEX}` (created by an older edm): the outbox relay scans it; a table created by `edm setup` now has it");
                }
                Ok::<bool, OrderStoreError>(indexed)
            })
            .await?;
        Ok(*known)
    }
}
