//! The order store (the order service's own database): DynamoDB, as in the course, or SQL
//! (SQLite) for `edm lab`'s embedded mode. Both keep the course's item shape —
//! `transaction_id`, `user_id`, `name`, `addr`, `tel`, `email`, `status`, `updated`, and a
//! `reason` on cancelled orders — and the same rules:
//!
//! - status only moves forward (ORDER_CREATED → ORDER_COMPLETE | ORDER_CANCEL), never twice;
//! - a new order is written together with its ORDER_CREATED event (`pending_event`, a
//!   transactional outbox) that is cleared once the broker has the event;
//! - an orchestrated order carries its saga (`saga_state`, the current step's commands as
//!   its outbox, its history), moved by conditional writes (`dynamo_saga`, `sql_saga`).

mod dynamo;
mod dynamo_contract;
mod dynamo_item;
mod dynamo_saga;
mod dynamo_table;
mod sql;
mod sql_saga;

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{OrderStoreArgs, START_HINT};
use crate::event::{SagaEvent, Status};
use crate::orchestration::saga::{Move, Saga};

pub use dynamo::DynamoOrders;
pub use sql::SqlOrders;

/// A saga found stalled: readable, or the error that says why not.
pub type Stalled = Result<Saga, OrderStoreError>;

/// Which kind of order store failed (each error names it: a SQLite URL is not DynamoDB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// DynamoDB (LocalStack, moto, dynalite or AWS).
    DynamoDb,
    /// A SQLite file.
    Sqlite,
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreKind::DynamoDb => "DynamoDB",
            StoreKind::Sqlite => "SQLite",
        })
    }
}

impl StoreKind {
    /// What to do when the store does not answer.
    fn start_hint(self) -> String {
        match self {
            StoreKind::DynamoDb => format!(
                "Is it running? Start it with `{START_HINT}`, or keep the orders in a SQLite \
                 file instead: --dynamodb-endpoint sqlite://$HOME/edm-orders.db"
            ),
            StoreKind::Sqlite => {
                "Check that the file's directory exists and is writable".to_string()
            }
        }
    }
}

/// Errors of the order store, naming the store, with the endpoint and a hint where that
/// helps.
#[derive(Debug, thiserror::Error)]
pub enum OrderStoreError {
    /// The endpoint did not answer.
    #[error("cannot reach {store} at {endpoint}: {detail}. {}", store.start_hint())]
    Unreachable {
        /// DynamoDB or SQLite.
        store: StoreKind,
        /// The endpoint (or `aws`).
        endpoint: String,
        /// What the SDK or driver said.
        detail: String,
    },
    /// The table does not exist.
    #[error("{store} table `{table}` does not exist at {endpoint}; run `edm setup` first")]
    NoTable {
        /// DynamoDB or SQLite.
        store: StoreKind,
        table: String,
        /// The endpoint (or `aws`).
        endpoint: String,
    },
    /// A request failed for a reason that may pass (throttling, a server error, a busy
    /// file): retry.
    #[error("{store} request failed: {detail}")]
    Request {
        /// DynamoDB or SQLite.
        store: StoreKind,
        /// What went wrong.
        detail: String,
    },
    /// The store refused the request itself (DynamoDB's 4xx such as
    /// `ValidationException`, SQLite's constraint or type errors): the same request will
    /// always fail, so it is not retried.
    #[error("{store} refused the request: {detail}")]
    Rejected {
        /// DynamoDB or SQLite.
        store: StoreKind,
        /// Why.
        detail: String,
    },
    /// An order carries a saga that cannot be read (a field missing or malformed, written
    /// by hand or by another program): it is not taken for "no saga", which would lose it.
    #[error("the saga stored with order {transaction_id} cannot be read: {detail}")]
    UnreadableSaga {
        /// Its order.
        transaction_id: String,
        /// What is wrong with it.
        detail: String,
    },
}

impl OrderStoreError {
    /// Whether the same request will fail the same way every time (so it is
    /// dead-lettered rather than retried).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            OrderStoreError::Rejected { .. } | OrderStoreError::UnreadableSaga { .. }
        )
    }
}

/// DynamoDB's error codes that are the server's state, not the request's fault: they pass,
/// so a request that got one is retried. Every other 4xx code is the request's fault.
const PASSING_ERRORS: [&str; 7] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TransactionConflictException",
    "TransactionInProgressException",
    "ResourceInUseException",
];

/// Whether DynamoDB's answer `code` with HTTP `status` refuses the request for good.
fn refuses_for_good(code: Option<&str>, status: u16) -> bool {
    let credentials = matches!(
        code,
        Some("UnrecognizedClientException" | "AccessDeniedException" | "ExpiredTokenException")
    );
    (400..500).contains(&status)
        && !credentials
        && !code.is_some_and(|code| PASSING_ERRORS.contains(&code))
}

/// How a status change went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The order moved from ORDER_CREATED to the new status.
    Moved,
    /// The order already had that status: a redelivered event, nothing changed.
    AlreadyThere,
    /// The order is in another final status; it stays there.
    Refused {
        /// Its current status.
        current: String,
    },
    /// No such order in the table.
    Missing,
}

/// The `updated` attribute's format, as the course writes it: `2024-01-31T12:34:56.789012+0000`.
pub const UPDATED_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f%z";

/// The current time in the `updated` format.
pub fn updated_now() -> String {
    chrono::Utc::now().format(UPDATED_FORMAT).to_string()
}

/// What an order store does, DynamoDB ([`DynamoOrders`]) or SQL ([`SqlOrders`]): the
/// contract the services rely on, whichever store holds the orders.
#[async_trait::async_trait]
pub trait Orders: std::fmt::Debug + Send + Sync {
    /// The table name.
    fn table(&self) -> &str;

    /// Store calls in flight now (on DynamoDB at most `--dynamodb-connections`).
    fn requests_in_flight(&self) -> usize {
        0
    }

    /// Fails with a helpful message if the store or the table is missing.
    async fn check_table(&self) -> Result<(), OrderStoreError>;

    /// Creates the table if it is missing (or brings it up to date); true if it was
    /// created.
    async fn ensure_table(&self) -> Result<bool, OrderStoreError>;

    /// Deletes the table (the lab's own table, after a run).
    async fn delete_table(&self) -> Result<(), OrderStoreError>;

    /// Whether the outbox relay finds unsent orders through an index (a table created by
    /// an older `edm setup` has none: the relay then scans it).
    async fn outbox_indexed(&self) -> Result<bool, OrderStoreError> {
        Ok(true)
    }

    /// Stores a new order with status ORDER_CREATED and its event in the outbox.
    async fn create(&self, event: &SagaEvent) -> Result<(), OrderStoreError>;

    /// Stores a new order with status ORDER_CREATED and its orchestrated saga at `start`,
    /// whose commands are the saga's outbox.
    async fn create_saga(&self, event: &SagaEvent, start: &Move) -> Result<(), OrderStoreError>;

    /// The orchestrated saga `transaction_id`, or `None` if there is none.
    async fn saga(&self, transaction_id: &str) -> Result<Option<Saga>, OrderStoreError>;

    /// Moves `saga` by `step` — state, outbox, history and, when final, the order's
    /// status, in one conditional write — unless something moved it since it was read
    /// (false: read it again).
    async fn advance(&self, saga: &Saga, step: &Move) -> Result<bool, OrderStoreError>;

    /// Orchestrated sagas in flight whose current step began before `before` (each, or
    /// why it cannot be read).
    async fn stalled_sagas(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Stalled>, OrderStoreError>;

    /// The stored order's attributes, or `None` if there is no such order.
    async fn get(
        &self,
        transaction_id: &str,
        user_id: &str,
    ) -> Result<Option<Map<String, Value>>, OrderStoreError>;

    /// Every order (a full scan: for tools and checks, not for hot paths).
    async fn all_orders(&self) -> Result<Vec<Map<String, Value>>, OrderStoreError>;

    /// Marks the order's ORDER_CREATED event as sent (empties its outbox).
    async fn mark_sent(&self, transaction_id: &str, user_id: &str) -> Result<(), OrderStoreError>;

    /// ORDER_CREATED events still in the outbox of orders last updated more than `age` ago.
    async fn pending_events(&self, age: Duration) -> Result<Vec<SagaEvent>, OrderStoreError>;

    /// Moves an order from ORDER_CREATED to `status` (ORDER_COMPLETE or ORDER_CANCEL).
    async fn finish(
        &self,
        transaction_id: &str,
        user_id: &str,
        status: Status,
        reason: Option<&str>,
    ) -> Result<Transition, OrderStoreError>;
}

/// The order store a service was given: DynamoDB, or SQL when the endpoint is a
/// `sqlite:` URL. Cheap to clone; every [`Orders`] call goes through it.
#[derive(Debug, Clone)]
pub struct OrderStore(std::sync::Arc<dyn Orders>);

impl OrderStore {
    /// Connects to the store `args` names: a `sqlite:` endpoint means SQL, anything else
    /// DynamoDB (see [`DynamoOrders::connect`]).
    pub async fn connect(args: &OrderStoreArgs) -> Result<Self, OrderStoreError> {
        let store: std::sync::Arc<dyn Orders> = match args.order_store.starts_with("sqlite:") {
            true => std::sync::Arc::new(SqlOrders::connect(&args.order_store).await?),
            false => std::sync::Arc::new(DynamoOrders::connect(args).await),
        };
        Ok(OrderStore(store))
    }
}

impl std::ops::Deref for OrderStore {
    type Target = dyn Orders;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl Transition {
    /// Why a conditional move to `status` changed nothing, from the order as it is now.
    fn refused_move(current: Option<&Map<String, Value>>, status: Status) -> Transition {
        match current
            .and_then(|order| order.get("status"))
            .and_then(Value::as_str)
        {
            None => Transition::Missing,
            Some(current) if current == status.as_str() => Transition::AlreadyThere,
            Some(current) => Transition::Refused {
                current: current.to_string(),
            },
        }
    }
}

/// Outbox entries as events; unreadable ones are logged and skipped.
fn parse_outbox<'a>(raw: impl Iterator<Item = &'a str>) -> Vec<SagaEvent> {
    raw.filter_map(|raw| match SagaEvent::from_payload(Some(raw.as_bytes())) {
        Ok(event) => Some(event),
        Err(error) => {
            tracing::error!(%error, entry = raw, "unreadable outbox entry skipped");
            None
        }
    })
    .collect()
}

/// The `updated` value of an order last changed `age` ago.
fn updated_before(age: Duration) -> String {
    updated_at(chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or_default())
}

/// `time` in the `updated` format (which sorts as the time does).
fn updated_at(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format(UPDATED_FORMAT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updated_has_the_course_format() {
        let updated = updated_now();
        // e.g. 2024-01-31T12:34:56.789012+0000
        assert_eq!(
            updated.len(),
            "2024-01-31T12:34:56.789012+0000".len(),
            "{updated}"
        );
        assert!(updated.ends_with("+0000"), "{updated}");
        assert!(chrono::DateTime::parse_from_str(&updated, "%Y-%m-%dT%H:%M:%S%.6f%z").is_ok());
    }

    #[test]
    fn only_the_requests_own_faults_are_refused_for_good() {
        assert!(refuses_for_good(Some("ValidationException"), 400));
        assert!(refuses_for_good(Some("SerializationException"), 400));
        // The server's state: it passes.
        assert!(!refuses_for_good(
            Some("ProvisionedThroughputExceededException"),
            400
        ));
        assert!(!refuses_for_good(Some("ThrottlingException"), 400));
        assert!(!refuses_for_good(Some("InternalServerError"), 500));
        assert!(!refuses_for_good(None, 503));
        // Credentials can be fixed while the service runs: keep retrying, loudly.
        assert!(!refuses_for_good(Some("UnrecognizedClientException"), 400));
    }
}
