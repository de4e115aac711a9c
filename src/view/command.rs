//! `edm ui`: the web view of a running stack — the course's topics on Apache Kafka or
//! `edm broker`, both saga styles at once (a saga's style is told by its topics).

use std::net::SocketAddr;

use clap::Args;

use super::{Source, View};
use crate::config::{InventoryStoreArgs, KafkaArgs, OrderStoreArgs};
use crate::kafka::Kafka;
use crate::shutdown;
use crate::store::inventory::InventoryStore;
use crate::store::orders::OrderStore;

/// `edm ui` flags: the services' Kafka and order store flags, and where the view listens.
#[derive(Args, Debug, Clone)]
pub struct UiArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Where the orders are (their status, and the orchestrator's state changes).
    #[command(flatten)]
    pub dynamo: OrderStoreArgs,
    /// Where the stock is (the Stock tab).
    #[command(flatten)]
    pub mysql: InventoryStoreArgs,
    /// Where the web view listens.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:8888")]
    pub listen: SocketAddr,
}

/// Serves the view of the sagas on `args.kafka`'s topics until Ctrl-C.
pub async fn command(args: UiArgs) -> anyhow::Result<()> {
    let kafka = Kafka::connect(&args.kafka).await?;
    let listener = super::bind(args.listen).await?;
    // Both stores at once (one that is not there takes up to 5 s to say so), before the
    // address is given: the page it names answers at once. A store that cannot be
    // opened is said here and on the page; the topics are still shown.
    let (orders, stock) = tokio::join!(
        OrderStore::connect(&args.dynamo),
        InventoryStore::connect(&args.mysql)
    );
    let orders = orders
        .inspect_err(|error| {
            tracing::warn!(%error, "the order store cannot be opened: the diagrams show the topics only")
        })
        .ok();
    let stock = stock
        .inspect_err(|error| {
            tracing::warn!(%error, "the inventory cannot be opened: the view shows no Stock tab")
        })
        .ok();
    println!(
        "web view of the sagas on Kafka {}: http://{}/ (Ctrl-C ends it)",
        kafka.servers(),
        listener.local_addr()?
    );
    let sources = [Source {
        name: "stack",
        kafka,
        orders,
        stock,
    }];
    View::serve(&sources, None, listener, shutdown::on_signal()).await
}
