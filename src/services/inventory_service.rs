//! The inventory service (the course's Node service, read-only, on :8090):
//! `GET /v1/inventory` and `GET /v1/inventory_history`, from a connection pool.

use std::net::SocketAddr;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::MysqlArgs;
use crate::http::{self, ApiError};
use crate::store::inventory::{HistoryRow, InventoryError, InventoryStore, Item};

/// The routes, over `store`.
pub fn router(store: InventoryStore) -> Router {
    Router::new()
        .route("/v1/inventory", get(list_inventory))
        .route("/v1/inventory_history", get(list_history))
        .fallback(http::no_such_route)
        .with_state(store)
}

fn unavailable(error: InventoryError) -> ApiError {
    warn!(%error, "inventory query failed");
    ApiError::unavailable(format!("inventory database unavailable: {error}"))
}

async fn list_inventory(State(store): State<InventoryStore>) -> Result<Json<Vec<Item>>, ApiError> {
    store.items().await.map(Json).map_err(unavailable)
}

async fn list_history(
    State(store): State<InventoryStore>,
) -> Result<Json<Vec<HistoryRow>>, ApiError> {
    store.history().await.map(Json).map_err(unavailable)
}

/// Runs the inventory service on `listen` until `shutdown`.
pub async fn run(
    listen: SocketAddr,
    mysql: &MysqlArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = InventoryStore::connect(mysql).await?;
    let listener = http::bind(listen).await?;
    info!(
        "inventory service listening on http://{listen} (GET /v1/inventory, GET /v1/inventory_history)"
    );
    http::serve(listener, router(store), shutdown).await?;
    Ok(())
}
