//! HTTP pieces shared by the order and inventory services: JSON errors and serving with
//! graceful shutdown.

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::event::EventError;
use crate::store::inventory::InventoryError;
use crate::store::orders::OrderStoreError;

/// An HTTP error answered as `{"error": message}` with its status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status code.
    pub status: StatusCode,
    /// What went wrong, for the caller.
    pub message: String,
}

impl ApiError {
    /// 400: the request is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 503: a server behind this service is unavailable; try again later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// Any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// How a store's failure is answered: the caller's fault (400), or the store unavailable
/// for now (503, logged). The one mapping both HTTP services use.
impl From<OrderStoreError> for ApiError {
    fn from(error: OrderStoreError) -> Self {
        match error {
            OrderStoreError::Rejected { .. } => {
                tracing::warn!(%error, "the order store refused the request");
                ApiError::bad_request(error.to_string())
            }
            OrderStoreError::UnreadableSaga { .. } => {
                tracing::error!(%error, "an order in the store cannot be read");
                ApiError::unavailable(error.to_string())
            }
            OrderStoreError::Unreachable { .. }
            | OrderStoreError::NoTable { .. }
            | OrderStoreError::Request { .. } => {
                tracing::warn!(%error, "order store unavailable");
                ApiError::unavailable(error.to_string())
            }
        }
    }
}

impl From<InventoryError> for ApiError {
    fn from(error: InventoryError) -> Self {
        tracing::warn!(%error, "inventory query failed");
        ApiError::unavailable(format!("inventory database unavailable: {error}"))
    }
}

/// An event the request would make is invalid: the request is wrong.
impl From<EventError> for ApiError {
    fn from(error: EventError) -> Self {
        ApiError::bad_request(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// JSON 404 for unknown paths.
pub async fn no_such_route() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Serves `router` on `listener` until `shutdown`, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Binds `address`, with a message that says what to do if the port is taken.
pub async fn bind(address: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|error| {
        anyhow::anyhow!(
            "cannot listen on {address}: {error}. Is another service already using the port? \
             Stop it or pass --listen with another address"
        )
    })
}
