//! The five services as tasks of one process over shared stores: how `edm lab` runs the
//! exercise, and how the tests start it (one piece of code for both).

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::kafka::Kafka;
use crate::orchestration::SagaStyle;
use crate::services::order_consumer::FinishedSender;
use crate::services::order_service::OrderServiceOptions;
use crate::services::payment_consumer::Gateway;
use crate::services::{
    inventory_consumer, inventory_service, orchestrator, order_consumer, order_service,
    payment_consumer,
};
use crate::store::inventory::InventoryStore;
use crate::store::orders::OrderStore;

/// Which services run: the two HTTP services always do; each consumer may be left out (a
/// test that injects events by hand, or plays a consumer itself).
#[derive(Debug, Clone)]
pub struct Selection {
    /// The payment consumer's gateway (`None`: no payment consumer).
    pub payment: Option<Gateway>,
    /// Whether the inventory consumer runs.
    pub inventory_consumer: bool,
    /// Whether the order consumer runs.
    pub order_consumer: bool,
    /// The orchestrator's step timeout (`None`: no orchestrator).
    pub orchestrator: Option<Duration>,
    /// The order service's timeouts and SAGA style.
    pub order_options: OrderServiceOptions,
}

impl Selection {
    /// All five services, the payment consumer with `gateway`.
    pub fn all(gateway: Gateway) -> Self {
        Self {
            payment: Some(gateway),
            inventory_consumer: true,
            order_consumer: true,
            orchestrator: Some(orchestrator::DEFAULT_STEP_TIMEOUT),
            order_options: OrderServiceOptions::default(),
        }
    }

    /// The same, with new orders started in `style`.
    pub fn with_saga(mut self, style: SagaStyle) -> Self {
        self.order_options.saga = style;
        self
    }

    /// Only the two HTTP services.
    pub fn http_only() -> Self {
        Self {
            payment: None,
            inventory_consumer: false,
            order_consumer: false,
            orchestrator: None,
            order_options: OrderServiceOptions::default(),
        }
    }
}

/// A service task, by name.
type Task = (&'static str, JoinHandle<anyhow::Result<()>>);

/// The running services.
pub struct Services {
    /// `http://127.0.0.1:PORT` of the order service.
    pub order_url: String,
    /// `http://127.0.0.1:PORT` of the inventory service.
    pub inventory_url: String,
    shutdown: CancellationToken,
    tasks: Vec<Task>,
}

impl Services {
    /// Starts `selection` on `kafka` over the shared stores (on SQLite one pool per file,
    /// shared by every service that uses it); the order consumer and the orchestrator tell
    /// `observer` of every saga they end.
    pub async fn start(
        kafka: &Kafka,
        stock: &InventoryStore,
        orders: &OrderStore,
        selection: Selection,
        observer: Option<FinishedSender>,
    ) -> std::io::Result<Services> {
        let order_listener = TcpListener::bind("127.0.0.1:0").await?;
        let inventory_listener = TcpListener::bind("127.0.0.1:0").await?;
        let order_url = format!("http://{}", order_listener.local_addr()?);
        let inventory_url = format!("http://{}", inventory_listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let mut tasks: Vec<Task> = Vec::new();
        // Each service logs under a span of its name, as when it runs as a process.
        let mut spawn = |name: &'static str, span: tracing::Span, task: BoxFuture<'static, _>| {
            tasks.push((name, tokio::spawn(task.instrument(span))));
        };

        let (k, o, s) = (kafka.clone(), orders.clone(), shutdown.clone());
        let options = selection.order_options;
        spawn(
            "order-service",
            tracing::info_span!("order-service"),
            async move { order_service::serve(order_listener, &k, o, options, s).await }.boxed(),
        );
        let (st, s) = (stock.clone(), shutdown.clone());
        spawn(
            "inventory-service",
            tracing::info_span!("inventory-service"),
            async move { inventory_service::serve(inventory_listener, st, s).await }.boxed(),
        );
        if selection.inventory_consumer {
            let (k, st, s) = (kafka.clone(), stock.clone(), shutdown.clone());
            spawn(
                "inventory-consumer",
                tracing::info_span!("inventory-consumer"),
                async move { inventory_consumer::consume(&k, st, s).await }.boxed(),
            );
        }
        if let Some(gateway) = selection.payment {
            let (k, s) = (kafka.clone(), shutdown.clone());
            spawn(
                "payment-consumer",
                tracing::info_span!("payment-consumer"),
                async move { payment_consumer::consume(&k, gateway, s).await }.boxed(),
            );
        }
        if let Some(step_timeout) = selection.orchestrator {
            let (k, o, s, seen) = (
                kafka.clone(),
                orders.clone(),
                shutdown.clone(),
                observer.clone(),
            );
            spawn(
                "orchestrator",
                tracing::info_span!("orchestrator"),
                async move { orchestrator::orchestrate(&k, o, step_timeout, seen, s).await }
                    .boxed(),
            );
        }
        if selection.order_consumer {
            let (k, o, s) = (kafka.clone(), orders.clone(), shutdown.clone());
            spawn(
                "order-consumer",
                tracing::info_span!("order-consumer"),
                async move { order_consumer::consume(&k, o, observer, s).await }.boxed(),
            );
        }
        Ok(Services {
            order_url,
            inventory_url,
            shutdown,
            tasks,
        })
    }

    /// The name of a service that has stopped already (it failed: they run until told).
    pub fn stopped(&self) -> Option<&'static str> {
        self.tasks
            .iter()
            .find(|(_, task)| task.is_finished())
            .map(|(name, _)| *name)
    }

    /// Stops every service (Ctrl-C semantics: each finishes or abandons its batch,
    /// commits and flushes); returns what failed, each as `name: error`.
    pub async fn stop(self) -> Vec<String> {
        self.shutdown.cancel();
        let mut failures = Vec::new();
        for (name, task) in self.tasks {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => failures.push(format!("{name}: {error:#}")),
                Ok(Err(join)) => failures.push(format!("{name}: {join}")),
                Err(_) => failures.push(format!("{name}: did not stop within 30 s")),
            }
        }
        failures
    }
}
