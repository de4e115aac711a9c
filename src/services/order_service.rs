//! The order service (the course's Flask service, on :8080).
//!
//! `POST /v1/order` stores the order in DynamoDB as ORDER_CREATED, with its ORDER_CREATED
//! event in the order's outbox, then sends the event to `inventory`: 200 once the broker
//! has it; 202 (`"event": "PENDING"`) when the broker did not acknowledge it in time — the
//! order is placed all the same and the outbox relay sends the event once Kafka answers;
//! 503 only when nothing was stored (DynamoDB unavailable). `GET /v1/order` returns the
//! stored order. Errors are JSON: 400 for a bad body or query, 404 for an unknown order,
//! 413 for an oversized body.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use super::outbox_relay;
use crate::config::{KafkaArgs, OrderStoreArgs};
use crate::event::{ItemRequest, OrderDetails, SagaEvent, Status, validate_user_id};
use crate::http::{self, ApiError};
use crate::kafka::{EventProducer, Kafka, KafkaFailure, Record, Topics};
use crate::orchestration::SagaStyle;
use crate::orchestration::saga;
use crate::store::orders::OrderStore;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// The `event` field of a 202 answer: the order is stored, its event is in the outbox.
pub const PENDING: &str = "PENDING";

/// Top-level event fields that only the services set; a request cannot.
const RESERVED_FIELDS: [&str; 4] = ["transaction_id", "status", "payment", "reason"];

/// The body of `POST /v1/order`.
#[derive(Debug, Deserialize)]
pub struct OrderRequest {
    /// Who orders.
    pub order: OrderDetails,
    /// What is ordered.
    pub inventory: ItemRequest,
    /// Other fields, passed on in the event.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The query of `GET /v1/order`.
#[derive(Debug, Deserialize)]
pub struct OrderKey {
    /// The saga id returned by `POST /v1/order`.
    pub transaction_id: String,
    /// The customer's id.
    pub user_id: String,
}

/// What the handlers share.
pub struct OrderService {
    store: OrderStore,
    producer: EventProducer,
    topics: Topics,
    saga: SagaStyle,
    /// Cancelled when the producer has failed fatally: the service stops (non-zero exit).
    stop: CancellationToken,
}

impl OrderService {
    /// A service over `store` that starts `saga`s, sends with `producer` to `topics`, and
    /// cancels `stop` if the producer fails for good.
    pub fn new(
        store: OrderStore,
        producer: EventProducer,
        topics: Topics,
        saga: SagaStyle,
        stop: CancellationToken,
    ) -> Self {
        Self {
            store,
            producer,
            topics,
            saga,
            stop,
        }
    }
}

/// The routes.
pub fn router(service: Arc<OrderService>) -> Router {
    Router::new()
        .route("/v1/order", post(place_order).get(get_order))
        .fallback(http::no_such_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

#[tracing::instrument(name = "order-service", skip_all)]
async fn place_order(
    State(service): State<Arc<OrderService>>,
    body: Result<Json<OrderRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(request) = body.map_err(|rejection| {
        // A body of the wrong shape is a bad request like any other (axum says 422).
        let status = match rejection.status() {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            other => other,
        };
        ApiError::new(status, format!("invalid order: {}", rejection.body_text()))
    })?;
    request.inventory.validate()?;
    validate_user_id(&request.order.user_id)?;
    let mut extra = request.extra;
    for field in RESERVED_FIELDS {
        extra.remove(field);
    }
    let event = SagaEvent {
        order: request.order,
        inventory: request.inventory,
        transaction_id: uuid::Uuid::new_v4().to_string(),
        status: Status::OrderCreated,
        payment: None,
        reason: None,
        extra,
    };
    let (outcome, answer) = match service.saga {
        SagaStyle::Choreography => choreographed(&service, &event).await?,
        SagaStyle::Orchestration => orchestrated(&service, &event).await?,
    };
    let tx = &event.transaction_id;
    match outcome {
        Ok(sent) => {
            info!(%tx, user = event.order.user_id, item = event.inventory.id, quantity = event.inventory.quantity,
                  "POST /v1/order → order stored (ORDER_CREATED) → {sent}");
            Ok((StatusCode::OK, Json(answer)))
        }
        Err(failure) => {
            // The order is stored with its first message in an outbox, and the broker may
            // even have it already (a late acknowledgement): the order goes on either way,
            // so the answer says so (202) instead of "not placed".
            warn!(%tx, %failure, "order stored, its first message not acknowledged yet: it is sent from the outbox once Kafka answers");
            service.producer.stop_if_fatal(&service.stop);
            let mut answer = answer;
            answer["event"] = json!(PENDING);
            answer["detail"] = json!(format!(
                "the order is stored, but {failure}; its first message is sent from the outbox once Kafka answers"
            ));
            Ok((StatusCode::ACCEPTED, Json(answer)))
        }
    }
}

/// What a POST answers once the order is stored, and whether its first message was sent
/// (what was sent, in words) or not yet.
type Placed = (Result<String, KafkaFailure>, Value);

fn stored_answer(event: &SagaEvent) -> Value {
    json!({
        "status": Status::OrderCreated.as_str(),
        "user_id": event.order.user_id,
        "transaction_id": event.transaction_id,
    })
}

/// Choreography: the order with ORDER_CREATED in its outbox; the event to `inventory`.
async fn choreographed(service: &OrderService, event: &SagaEvent) -> Result<Placed, ApiError> {
    service.store.create(event).await?;
    let topic = &service.topics.inventory;
    if let Err(failure) = service.producer.send(topic, event).await {
        return Ok((Err(failure), stored_answer(event)));
    }
    let tx = &event.transaction_id;
    if let Err(error) = service.store.mark_sent(tx, &event.order.user_id).await {
        // The event is out; the outbox copy will be sent once more later (harmless: every
        // step is idempotent).
        warn!(%tx, %error, "ORDER_CREATED sent but its outbox copy could not be cleared");
    }
    Ok((
        Ok(format!("ORDER_CREATED to `{topic}`")),
        stored_answer(event),
    ))
}

/// Orchestration: the order and its saga (RESERVE_STOCK in the saga's outbox) in one
/// write; the command to `inventory.commands`. An unsent command is sent again by the
/// orchestrator when the step times out.
async fn orchestrated(service: &OrderService, event: &SagaEvent) -> Result<Placed, ApiError> {
    let start = saga::start(event);
    service.store.create_saga(event, &start).await?;
    let records: Vec<Record> = start
        .commands
        .iter()
        .map(|c| c.record(&service.topics))
        .collect();
    let sent = service.producer.send_all(&records).await;
    let mut answer = stored_answer(event);
    answer["saga"] = json!(SagaStyle::Orchestration.as_str());
    if let Some(failure) = sent.into_iter().find_map(Result::err) {
        return Ok((Err(failure), answer));
    }
    Ok((
        Ok(format!(
            "saga {} → RESERVE_STOCK to `{}`",
            start.to.as_str(),
            service.topics.inventory_commands
        )),
        answer,
    ))
}

#[tracing::instrument(name = "order-service", skip_all)]
async fn get_order(
    State(service): State<Arc<OrderService>>,
    query: Result<Query<OrderKey>, QueryRejection>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let Query(key) = query.map_err(|rejection| {
        ApiError::bad_request(format!(
            "expected ?transaction_id=…&user_id=…: {}",
            rejection.body_text()
        ))
    })?;
    // A key the table cannot hold names no order: say so instead of asking the store.
    validate_user_id(&key.user_id)?;
    match service.store.get(&key.transaction_id, &key.user_id).await? {
        Some(order) => Ok(Json(order)),
        None => Err(ApiError::not_found(format!(
            "no order with transaction_id {} and user_id {}",
            key.transaction_id, key.user_id
        ))),
    }
}

/// Settings of the order service beyond the servers'.
#[derive(Debug, Clone, Copy)]
pub struct OrderServiceOptions {
    /// How long a POST waits for the broker's acknowledgement before answering 202
    /// (stored, event pending in the outbox).
    pub delivery_timeout: Duration,
    /// Age after which an order's unsent ORDER_CREATED is sent by the outbox relay.
    pub resend_after: Duration,
    /// Which SAGA style a new order starts.
    pub saga: SagaStyle,
}

impl Default for OrderServiceOptions {
    fn default() -> Self {
        Self {
            delivery_timeout: Duration::from_secs(5),
            resend_after: Duration::from_secs(30),
            saga: SagaStyle::Choreography,
        }
    }
}

/// Runs the order service on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    kafka: &KafkaArgs,
    dynamo: &OrderStoreArgs,
    options: OrderServiceOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = OrderStore::connect(dynamo).await?;
    if store.ensure_table().await? {
        info!(table = store.table(), "created the DynamoDB table");
    }
    let kafka = Kafka::connect(kafka).await?;
    serve(listener, &kafka, store, options, shutdown).await
}

/// Runs the order service on `listener` with an open `store` until `shutdown` (how
/// `edm lab` shares one store between the order service and the order consumer).
pub async fn serve(
    listener: TcpListener,
    kafka: &Kafka,
    store: OrderStore,
    options: OrderServiceOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let producer = kafka.producer_with_delivery_timeout(options.delivery_timeout)?;
    tokio::select! {
        _ = producer.wait_for_id() => {}
        _ = shutdown.cancelled() => return Ok(()),
    }
    // Stops on `shutdown`, or early when the producer has failed for good.
    let stop = shutdown.child_token();
    let relay = tokio::spawn(
        outbox_relay::run(
            store.clone(),
            producer.clone(),
            kafka.topics.clone(),
            options.resend_after,
            stop.clone(),
        )
        .in_current_span(),
    );
    let service = Arc::new(OrderService::new(
        store,
        producer.clone(),
        kafka.topics.clone(),
        options.saga,
        stop.clone(),
    ));
    // The first line says which saga the orders start: both styles look alike otherwise.
    let starts = match options.saga {
        SagaStyle::Choreography => format!(
            "choreography: each order sends ORDER_CREATED to `{}`",
            kafka.topics.inventory
        ),
        SagaStyle::Orchestration => format!(
            "orchestration: each order sends RESERVE_STOCK to `{}`, and `edm orchestrator` \
             drives the saga from there",
            kafka.topics.inventory_commands
        ),
    };
    info!(
        "order service listening on http://{} (POST /v1/order, GET /v1/order), {starts}",
        listener.local_addr()?
    );
    // A replaced cluster ends the service (see `ClusterHealth`).
    let replaced = {
        let (health, stop) = (kafka.health().clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                how = health.replaced() => {
                    stop.cancel();
                    Some(how)
                }
                _ = stop.cancelled() => None,
            }
        })
    };
    http::serve(listener, router(service), stop.clone()).await?;
    stop.cancel();
    relay
        .await
        .map_err(|error| anyhow::anyhow!("the outbox relay task failed: {error}"))?;
    if let Ok(Some(how)) = replaced.await {
        return Err(KafkaFailure::ClusterReplaced(how).into());
    }
    if let Some(fatal) = producer.fatal_error() {
        return Err(fatal.into());
    }
    producer.flush(Duration::from_secs(5)).await;
    Ok(())
}
