//! DynamoDB as an [`Orders`] store: each call holds one of the `--dynamodb-connections`
//! slots for its whole time (retries included), so that a burst of sagas cannot open more
//! connections than the limit.

use std::time::Duration;

use serde_json::{Map, Value};

use super::dynamo::DynamoOrders;
use super::{OrderStoreError, Orders, Stalled, Transition};
use crate::event::{SagaEvent, Status};
use crate::orchestration::saga::{Move, Saga};

#[async_trait::async_trait]
impl Orders for DynamoOrders {
    fn table(&self) -> &str {
        &self.table
    }

    fn requests_in_flight(&self) -> usize {
        DynamoOrders::requests_in_flight(self)
    }

    async fn check_table(&self) -> Result<(), OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::check_table(self).await
    }

    async fn ensure_table(&self) -> Result<bool, OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::ensure_table(self).await
    }

    async fn delete_table(&self) -> Result<(), OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::delete_table(self).await
    }

    async fn outbox_indexed(&self) -> Result<bool, OrderStoreError> {
        let _connection = self.connection().await;
        self.has_outbox_index().await
    }

    async fn create(&self, event: &SagaEvent) -> Result<(), OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::create(self, event).await
    }

    async fn create_saga(&self, event: &SagaEvent, start: &Move) -> Result<(), OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::create_saga(self, event, start).await
    }

    async fn saga(&self, transaction_id: &str) -> Result<Option<Saga>, OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::saga(self, transaction_id).await
    }

    async fn advance(&self, saga: &Saga, step: &Move) -> Result<bool, OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::advance(self, saga, step).await
    }

    async fn stalled_sagas(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Stalled>, OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::stalled_sagas(self, before).await
    }

    async fn get(
        &self,
        transaction_id: &str,
        user_id: &str,
    ) -> Result<Option<Map<String, Value>>, OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::get(self, transaction_id, user_id).await
    }

    async fn all_orders(&self) -> Result<Vec<Map<String, Value>>, OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::all_orders(self).await
    }

    async fn mark_sent(&self, transaction_id: &str, user_id: &str) -> Result<(), OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::mark_sent(self, transaction_id, user_id).await
    }

    async fn pending_events(&self, age: Duration) -> Result<Vec<SagaEvent>, OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::pending_events(self, age).await
    }

    async fn finish(
        &self,
        transaction_id: &str,
        user_id: &str,
        status: Status,
        reason: Option<&str>,
    ) -> Result<Transition, OrderStoreError> {
        let _connection = self.connection().await;
        DynamoOrders::finish(self, transaction_id, user_id, status, reason).await
    }
}
