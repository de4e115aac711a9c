//! The inventory service (the course's Node service, read-only, on :8090):
//! `GET /v1/inventory` and `GET /v1/inventory_history`, from a connection pool.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::InventoryStoreArgs;
use crate::http::{self, ApiError};
use crate::store::inventory::{HistoryRow, InventoryStore, Item};

/// The routes, over `store`.
pub fn router(store: InventoryStore) -> Router {
    Router::new()
        .route("/v1/inventory", get(list_inventory))
        .route("/v1/inventory_history", get(list_history))
        .fallback(http::no_such_route)
        .with_state(store)
}

async fn list_inventory(State(store): State<InventoryStore>) -> Result<Json<Vec<Item>>, ApiError> {
    Ok(Json(store.items().await?))
}

async fn list_history(
    State(store): State<InventoryStore>,
) -> Result<Json<Vec<HistoryRow>>, ApiError> {
    Ok(Json(store.history().await?))
}

/// Runs the inventory service on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    mysql: &InventoryStoreArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve(listener, InventoryStore::connect(mysql).await?, shutdown).await
}

/// Runs the inventory service on `listener` over an open `store` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    store: InventoryStore,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    info!(
        "inventory service listening on http://{} (GET /v1/inventory, GET /v1/inventory_history)",
        listener.local_addr()?
    );
    http::serve(listener, router(store), shutdown).await?;
    Ok(())
}
