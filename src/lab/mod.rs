//! `edm lab`: the whole course exercise in one process — topics, the five services as
//! tasks, a successful order and a declined one, their timelines, the final rows and the
//! invariant checks; or, with `--orders N`, a load run that is the project's end-to-end
//! benchmark.
//!
//! Every run gets names of its own (topic prefix, consumer groups, MySQL database,
//! DynamoDB table), so it never disturbs a course stack running on the same servers.

mod args;
mod command;
mod compare;
mod demo;
pub mod drills;
mod embedded;
pub mod invariants;
pub mod load;
pub mod services;
mod stores;

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::KafkaArgs;
use crate::kafka::{AssignmentNotifier, Kafka};
use crate::orchestration::SagaStyle;
use crate::services::order_consumer::Finished;
use crate::services::payment_consumer::Gateway;
use crate::services::{
    inventory_commands, inventory_consumer, orchestrator, order_consumer, payment_commands,
    payment_consumer,
};
use crate::store::inventory::InventoryStore;
use crate::store::orders::OrderStore;
use crate::tools::order_client::OrderClient;

pub use args::{LabArgs, LabSagas};
pub use command::command;
pub use demo::run_demo;
pub use services::{Selection, Services};

pub(crate) use crate::kafka::now_ms;

/// The customer whose payments the lab's gateway declines.
pub(crate) const DECLINED_USER: &str = "bob";

/// How long a consumer's first fetch round may take: librdkafka's default
/// `fetch.wait.max.ms`.
const FIRST_FETCH_ROUND: Duration = Duration::from_millis(500);

/// What a lab run uses, in words (the report's first lines, so a student sees whether it
/// ran on embedded stores or on the course's servers).
#[derive(Debug, Clone)]
pub struct Servers {
    pub kafka: String,
    pub stock: String,
    pub orders: String,
}

/// A running lab: its names, stores and the five services as tasks.
pub struct Lab {
    /// Short id in every name of this run.
    pub id: String,
    /// Kafka of this run (with its topic prefix).
    pub kafka: Kafka,
    /// Shared with the services: the invariant checks read what they wrote.
    pub stock: InventoryStore,
    /// Shared with the services (on SQLite one pool for the file: the services share
    /// its connections rather than each opening its own).
    pub orders: OrderStore,
    /// Client of the in-process order service.
    pub client: OrderClient,
    /// Base URL of the in-process order service.
    pub order_url: String,
    /// Base URL of the in-process inventory service.
    pub inventory_url: String,
    /// The stock when the lab started (what the invariant checks count from).
    pub initial_stock: HashMap<i32, i32>,
    /// Sagas that reached their final status, as the order consumer records them.
    pub finished: mpsc::UnboundedReceiver<Finished>,
    /// What this run uses, in words.
    pub servers: Servers,
    database: Option<String>,
    dir: std::path::PathBuf,
    broker: Option<embedded::EmbeddedBroker>,
    keep: bool,
    services: Services,
}

impl Lab {
    /// Creates this run's topics, database and table, and starts the services, the order
    /// service starting its sagas in `style`.
    pub async fn start(args: &LabArgs, gateway: Gateway, style: SagaStyle) -> anyhow::Result<Lab> {
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let dir = embedded::data_dir(&id);
        let stores = stores::plan(args, &id, &dir)?;
        if stores.uses_dir {
            std::fs::create_dir_all(&dir)?;
        }
        let (broker, kafka_args) = start_kafka(args, &id).await?;
        let servers = Servers {
            kafka: match &broker {
                Some(b) => format!(
                    "embedded Kafka-protocol broker (edm's own, in memory) at {}",
                    b.address
                ),
                None => format!("Kafka {}", kafka_args.bootstrap_servers),
            },
            stock: stores.stock_label.clone(),
            orders: stores.orders_label.clone(),
        };

        let (assigned, assignments) = mpsc::unbounded_channel();
        let kafka = Kafka::connect(&kafka_args)
            .await?
            .reporting_assignments_to(AssignmentNotifier(assigned))
            .with_dynamic_members();
        crate::setup::run(&stores.inventory, &stores.orders).await?;
        let groups = prepare_topics(&kafka, args.partitions).await?;
        let stock = InventoryStore::connect(&stores.inventory).await?;
        let orders = OrderStore::connect(&stores.orders).await?;
        let initial_stock = stock
            .items()
            .await?
            .into_iter()
            .map(|item| (item.id, item.quantity))
            .collect();

        let (observer, finished) = mpsc::unbounded_channel();
        let services = Services::start(
            &kafka,
            &stock,
            &orders,
            Selection {
                orchestrator: Some(args.step_timeout),
                ..Selection::all(gateway).with_saga(style)
            },
            Some(observer),
        )
        .await?;
        // Orders placed before the consumers have joined their groups would wait for the
        // join (seconds): wait for every group first, so timelines show the saga.
        if let Err(error) = wait_until_joined(&services, &groups, assignments).await {
            services.stop().await;
            return Err(error);
        }
        // With several partitions, a consumer's first fetch may go out before all of its
        // partitions are ready to fetch; an event on one left out waits for that fetch to
        // end (librdkafka's fetch.wait.max.ms, 500 ms). Seen in `edm lab --partitions 8`:
        // a first saga with a 400–500 ms hop, one run in three.
        if args.partitions > 1 {
            tokio::time::sleep(FIRST_FETCH_ROUND).await;
        }

        Ok(Lab {
            id,
            client: OrderClient::new(&services.order_url),
            order_url: services.order_url.clone(),
            inventory_url: services.inventory_url.clone(),
            kafka,
            stock,
            orders,
            initial_stock,
            finished,
            servers,
            database: stores.mysql_database,
            dir,
            broker,
            keep: args.keep,
            services,
        })
    }

    /// The running services (the drills stop and start them).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Stock by item id.
    pub async fn stock_by_item(&self) -> anyhow::Result<HashMap<i32, i32>> {
        Ok(self
            .stock
            .items()
            .await?
            .into_iter()
            .map(|item| (item.id, item.quantity))
            .collect())
    }

    /// Waits (up to 60 s) until every saga of `transactions` is reported final; returns
    /// each first report with when it came (ms since the epoch).
    pub async fn wait_final(
        &mut self,
        transactions: &[String],
    ) -> anyhow::Result<HashMap<String, (Finished, i64)>> {
        let mut finished: HashMap<String, (Finished, i64)> = HashMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while transactions.iter().any(|tx| !finished.contains_key(tx)) {
            self.check_services()?;
            match tokio::time::timeout_at(deadline, self.finished.recv()).await {
                Ok(Some(done)) => {
                    let at = now_ms();
                    finished
                        .entry(done.transaction_id.clone())
                        .or_insert((done, at));
                }
                Ok(None) => anyhow::bail!("the order consumer stopped"),
                Err(_) => anyhow::bail!(
                    "the sagas {} did not finish within 60 s",
                    transactions.join(", ")
                ),
            }
        }
        Ok(finished)
    }

    /// Fails if a service task has already stopped (it would never finish the sagas).
    pub fn check_services(&self) -> anyhow::Result<()> {
        match self.services.stopped() {
            Some(name) => anyhow::bail!("{name} stopped; see its error above"),
            None => Ok(()),
        }
    }

    /// Stops the services (Ctrl-C semantics), then drops this run's database and table
    /// unless `--keep`.
    pub async fn stop(self) -> anyhow::Result<()> {
        let failures = self.services.stop().await;
        drop(self.broker);
        if !self.keep {
            if let Some(database) = &self.database {
                let drop = format!("DROP DATABASE IF EXISTS `{database}`");
                sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                    .execute(self.stock.pool())
                    .await?;
            }
            self.orders.delete_table().await?;
            if self.dir.exists() {
                std::fs::remove_dir_all(&self.dir)?;
            }
        }
        if !failures.is_empty() {
            anyhow::bail!("services failed: {}", failures.join("; "));
        }
        Ok(())
    }
}

/// The run's Kafka: the servers given, or edm's broker embedded in this process; with the
/// run's topic prefix.
async fn start_kafka(
    args: &LabArgs,
    id: &str,
) -> anyhow::Result<(Option<embedded::EmbeddedBroker>, KafkaArgs)> {
    let (broker, bootstrap) = match &args.bootstrap_servers {
        Some(servers) => (None, servers.clone()),
        None => {
            let broker = embedded::EmbeddedBroker::start().await?;
            let address = broker.address.clone();
            (Some(broker), address)
        }
    };
    let mut kafka_args = KafkaArgs::new(bootstrap);
    kafka_args.topic_prefix = format!("lab-{id}-");
    kafka_args.properties = args.properties.clone();
    Ok((broker, kafka_args))
}

/// Creates the run's topics, and sets each of its fresh groups at the start of its topic;
/// returns the groups (already prefixed).
async fn prepare_topics(kafka: &Kafka, partitions: i32) -> anyhow::Result<Vec<String>> {
    let topics = kafka.topics.every_topic();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    kafka.ensure_topics(&topics, Some(partitions), 1).await?;
    let topics = &kafka.topics;
    let groups = [
        (inventory_consumer::GROUP, &topics.inventory),
        (payment_consumer::GROUP, &topics.payment),
        (order_consumer::GROUP, &topics.order),
        (
            inventory_commands::COMMAND_GROUP,
            &topics.inventory_commands,
        ),
        (payment_commands::COMMAND_GROUP, &topics.payment_commands),
        (orchestrator::GROUP, &topics.saga_replies),
    ];
    let mut prefixed = Vec::new();
    for (group, topic) in groups {
        let group = kafka.group(group);
        kafka.commit_start(&group, topic, partitions).await?;
        prefixed.push(group);
    }
    Ok(prefixed)
}

/// Waits (up to 60 s) until every group has its partitions; fails if a service stops
/// meanwhile.
async fn wait_until_joined(
    services: &Services,
    groups: &[String],
    mut assignments: mpsc::UnboundedReceiver<String>,
) -> anyhow::Result<()> {
    let mut ready = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !groups.iter().all(|g| ready.contains(g)) {
        if let Ok(Some(group)) =
            tokio::time::timeout(Duration::from_millis(200), assignments.recv()).await
        {
            ready.insert(group);
        }
        if let Some(name) = services.stopped() {
            anyhow::bail!("{name} stopped at start; see its error above");
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the lab's consumers did not join their groups within 60 s");
        }
    }
    Ok(())
}
