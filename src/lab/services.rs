//! The five services as tasks of one process over shared stores: how `edm lab` runs the
//! exercise, and how the tests start it (one piece of code for both). A consumer or the
//! orchestrator can be stopped, crashed and started again on its own (the failure
//! drills).

use std::sync::{Arc, Mutex, MutexGuard};
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

/// How to start a service (again): its future, given the token that stops it.
type Starter =
    Arc<dyn Fn(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// One service: its task, and how to stop and start it again.
struct Running {
    name: &'static str,
    /// Stops this service alone (a child of the services' shutdown).
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// `None` for the HTTP services (their listeners are theirs for good).
    starter: Option<Starter>,
    /// Stopped on purpose (a drill): not a failure.
    paused: bool,
}

/// The running services.
pub struct Services {
    /// `http://127.0.0.1:PORT` of the order service.
    pub order_url: String,
    /// `http://127.0.0.1:PORT` of the inventory service.
    pub inventory_url: String,
    shutdown: CancellationToken,
    running: Mutex<Vec<Running>>,
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
        let services = Services {
            order_url,
            inventory_url,
            shutdown: CancellationToken::new(),
            running: Mutex::new(Vec::new()),
        };

        let (k, o) = (kafka.clone(), orders.clone());
        let options = selection.order_options;
        services.add_once("order-service", move |s| {
            async move { order_service::serve(order_listener, &k, o, options, s).await }.boxed()
        });
        let st = stock.clone();
        services.add_once("inventory-service", move |s| {
            async move { inventory_service::serve(inventory_listener, st, s).await }.boxed()
        });
        if selection.inventory_consumer {
            let (k, st) = (kafka.clone(), stock.clone());
            services.add("inventory-consumer", move |s| {
                let (k, st) = (k.clone(), st.clone());
                async move { inventory_consumer::consume(&k, st, s).await }.boxed()
            });
        }
        if let Some(gateway) = selection.payment {
            let k = kafka.clone();
            services.add("payment-consumer", move |s| {
                let (k, gateway) = (k.clone(), gateway.clone());
                async move { payment_consumer::consume(&k, gateway, s).await }.boxed()
            });
        }
        if let Some(step_timeout) = selection.orchestrator {
            let (k, o, seen) = (kafka.clone(), orders.clone(), observer.clone());
            services.add("orchestrator", move |s| {
                let (k, o, seen) = (k.clone(), o.clone(), seen.clone());
                async move { orchestrator::orchestrate(&k, o, step_timeout, seen, s).await }.boxed()
            });
        }
        if selection.order_consumer {
            let (k, o) = (kafka.clone(), orders.clone());
            services.add("order-consumer", move |s| {
                let (k, o, seen) = (k.clone(), o.clone(), observer.clone());
                async move { order_consumer::consume(&k, o, seen, s).await }.boxed()
            });
        }
        Ok(services)
    }

    fn running(&self) -> MutexGuard<'_, Vec<Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a service that can be started again.
    fn add(
        &self,
        name: &'static str,
        start: impl Fn(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>>
        + Send
        + Sync
        + 'static,
    ) {
        let starter: Starter = Arc::new(start);
        let stop = self.shutdown.child_token();
        let task = spawn(name, starter(stop.clone()));
        self.running().push(Running {
            name,
            stop,
            task: Some(task),
            starter: Some(starter),
            paused: false,
        });
    }

    /// Starts a service that runs once (it owns its listener).
    fn add_once(
        &self,
        name: &'static str,
        start: impl FnOnce(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>>,
    ) {
        let stop = self.shutdown.child_token();
        let task = spawn(name, start(stop.clone()));
        self.running().push(Running {
            name,
            stop,
            task: Some(task),
            starter: None,
            paused: false,
        });
    }

    /// The name of a service that has stopped already (it failed: they run until told).
    pub fn stopped(&self) -> Option<&'static str> {
        self.running()
            .iter()
            .find(|r| !r.paused && r.task.as_ref().is_some_and(|t| t.is_finished()))
            .map(|r| r.name)
    }

    /// Stops service `name` as Ctrl-C does (`crash`: aborts it instead, as `kill -9`
    /// would: nothing committed, nothing flushed) and waits until it is gone.
    pub async fn halt(&self, name: &str, crash: bool) -> anyhow::Result<()> {
        let task = {
            let mut running = self.running();
            let service = running
                .iter_mut()
                .find(|r| r.name == name && r.starter.is_some())
                .ok_or_else(|| anyhow::anyhow!("no {name} to stop in this lab"))?;
            service.paused = true;
            match crash {
                true => {
                    if let Some(task) = &service.task {
                        task.abort();
                    }
                }
                false => service.stop.cancel(),
            }
            service.task.take()
        };
        if let Some(task) = task {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Err(error))) => anyhow::bail!("{name} failed as it stopped: {error:#}"),
                Err(_) => anyhow::bail!("{name} did not stop within 30 s"),
                _ => {}
            }
        }
        Ok(())
    }

    /// Starts service `name` again (after [`Services::halt`]).
    pub fn start_again(&self, name: &str) -> anyhow::Result<()> {
        let mut running = self.running();
        let service = running
            .iter_mut()
            .find(|r| r.name == name && r.paused)
            .ok_or_else(|| anyhow::anyhow!("{name} is not stopped"))?;
        let starter = service
            .starter
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{name} cannot be started again"))?;
        service.stop = self.shutdown.child_token();
        service.task = Some(spawn(service.name, starter(service.stop.clone())));
        service.paused = false;
        Ok(())
    }

    /// Stops every service (Ctrl-C semantics: each finishes or abandons its batch,
    /// commits and flushes); returns what failed, each as `name: error`.
    pub async fn stop(self) -> Vec<String> {
        self.shutdown.cancel();
        let running = std::mem::take(&mut *self.running());
        let mut failures = Vec::new();
        for Running { name, task, .. } in running {
            let Some(task) = task else { continue };
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

/// Spawns a service's future under a span of its name, as when it runs as a process.
fn spawn(
    name: &'static str,
    service: BoxFuture<'static, anyhow::Result<()>>,
) -> JoinHandle<anyhow::Result<()>> {
    // A span's name is fixed where it is written: one per service.
    let span = match name {
        "order-service" => tracing::info_span!("order-service"),
        "inventory-service" => tracing::info_span!("inventory-service"),
        "inventory-consumer" => tracing::info_span!("inventory-consumer"),
        "payment-consumer" => tracing::info_span!("payment-consumer"),
        "orchestrator" => tracing::info_span!("orchestrator"),
        "order-consumer" => tracing::info_span!("order-consumer"),
        _ => tracing::info_span!("service", name),
    };
    tokio::spawn(service.instrument(span))
}
