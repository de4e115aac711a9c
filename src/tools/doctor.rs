//! `edm doctor`: which servers and services of the lab answer, and how to start the rest.

use std::time::Duration;

use crate::config::{InventoryStoreArgs, KafkaArgs, OrderStoreArgs, START_HINT};
use crate::kafka::Kafka;
use crate::store::inventory::InventoryStore;
use crate::store::orders::OrderStore;

pub mod groups;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, with its address.
    pub name: String,
    /// Whether it is usable.
    pub ok: bool,
    /// What was found, or what to do.
    pub detail: String,
}

impl Check {
    fn new(name: String, result: Result<String, String>) -> Self {
        match result {
            Ok(detail) => Self {
                name,
                ok: true,
                detail,
            },
            Err(detail) => Self {
                name,
                ok: false,
                detail,
            },
        }
    }
}

/// What `doctor` looks at (`edm doctor`'s flags): the three servers, the two HTTP
/// services, at the same addresses the services use, and the saga steps' consumer groups
/// (a stopped consumer answers no probe; its group shows it).
#[derive(Debug, Clone, clap::Args)]
pub struct Targets {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub mysql: InventoryStoreArgs,
    #[command(flatten)]
    pub dynamo: OrderStoreArgs,
    /// Base URL of the order service.
    #[arg(
        long,
        env = "EDM_ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub order_url: String,
    /// Base URL of the inventory service.
    #[arg(
        long,
        env = "EDM_INVENTORY_SERVICE_URL",
        default_value = "http://127.0.0.1:8090"
    )]
    pub inventory_url: String,
}

/// `edm doctor`: prints every check; fails if any did.
pub async fn command(targets: Targets) -> anyhow::Result<()> {
    let checks = run(&targets).await;
    print!("{}", render(&checks));
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} checks failed", checks.len());
    }
    Ok(())
}

/// Runs every check (concurrently).
pub async fn run(targets: &Targets) -> Vec<Check> {
    let (kafka, mysql, dynamo, order, inventory) = tokio::join!(
        check_kafka(&targets.kafka),
        check_mysql(&targets.mysql),
        check_dynamo(&targets.dynamo),
        check_http(
            "order service",
            format!(
                "{}/v1/order?transaction_id=edm-doctor&user_id=edm-doctor",
                targets.order_url
            ),
            404,
            "edm order-service",
        ),
        check_http(
            "inventory service",
            format!("{}/v1/inventory", targets.inventory_url),
            200,
            "edm inventory-service",
        ),
    );
    let mut checks = vec![kafka, mysql, dynamo, order, inventory];
    if checks[0].ok {
        checks.extend(groups::check(&Kafka::new(&targets.kafka)).await);
    }
    checks
}

async fn check_kafka(args: &KafkaArgs) -> Check {
    let kafka = Kafka::new(args);
    let name = format!("Kafka {}", kafka.servers());
    let result = match kafka.check_reachable().await {
        Err(error) => Err(error.to_string()),
        Ok(topics) => {
            let missing: Vec<&str> = kafka
                .topics
                .all()
                .into_iter()
                .filter(|wanted| !topics.iter().any(|t| t.name == *wanted))
                .collect();
            let decisions = kafka.topics.payment_decisions.clone();
            let differing = match topics.iter().any(|t| t.name == decisions) {
                true => kafka.configs_differing(&[&decisions]).await,
                false => Ok(Vec::new()),
            };
            if let Some((topic, was)) = differing.iter().flatten().next() {
                Err(format!(
                    "topic {topic} has {} where edm needs cleanup.policy=compact: the broker \
                     deletes payment decisions after its retention (7 days by default), and a \
                     payment consumer started later decides again. Run `edm create-topics` to \
                     alter it",
                    was.join(", ")
                ))
            } else if let Err(error) = differing {
                Err(format!(
                    "reachable, but its topic configs cannot be read: {error}"
                ))
            } else if missing.is_empty() {
                let found: Vec<String> = kafka
                    .topics
                    .all()
                    .iter()
                    .filter_map(|wanted| topics.iter().find(|t| t.name == *wanted))
                    .map(|t| format!("{} ({} partitions)", t.name, t.partitions))
                    .collect();
                Ok(format!("topics {}", found.join(", ")))
            } else {
                Err(format!(
                    "reachable, but topics {} are missing: run `edm create-topics`",
                    missing.join(", ")
                ))
            }
        }
    };
    Check::new(name, result)
}

async fn check_mysql(args: &InventoryStoreArgs) -> Check {
    // Named by what the URL is: the walkthrough without Docker keeps stock in SQLite.
    let kind = match args.inventory_store.starts_with("sqlite:") {
        true => "stock in SQLite",
        false => "MySQL",
    };
    let name = format!(
        "{kind} {}",
        crate::store::inventory::redact(&args.inventory_store)
    );
    let result = match InventoryStore::connect(args).await {
        Err(error) => Err(error.to_string()),
        Ok(store) => match store.items().await {
            Ok(items) => Ok(format!("{} items in `inventory`", items.len())),
            Err(error) => Err(error.to_string()),
        },
    };
    Check::new(name, result)
}

async fn check_dynamo(args: &OrderStoreArgs) -> Check {
    let name = match args.order_store.starts_with("sqlite:") {
        true => format!("orders in SQLite {}", args.order_store),
        false => format!("DynamoDB {}", args.endpoint_override().unwrap_or("aws")),
    };
    let result = match OrderStore::connect(args).await {
        Ok(store) => store
            .check_table()
            .await
            .map(|()| format!("table `{}`", store.table()))
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    Check::new(name, result)
}

async fn check_http(what: &str, url: String, expected: u16, command: &str) -> Check {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap_or_default();
    let base: String = url.split("/v1/").next().unwrap_or(&url).to_string();
    let result = match client.get(&url).send().await {
        Ok(response) if response.status().as_u16() == expected => Ok("answers".to_string()),
        Ok(response) => Err(format!(
            "answers {} instead of {expected}: is it really `{command}`?",
            response.status()
        )),
        Err(_) => Err(format!("not running: start it with `{command}`")),
    };
    Check::new(format!("{what} {base}"), result)
}

/// The checks as `✓ name — detail` lines, with a closing hint if any failed.
pub fn render(checks: &[Check]) -> String {
    let mut out: String = checks
        .iter()
        .map(|c| {
            format!(
                "{} {:<45} {}\n",
                if c.ok { "✓" } else { "✗" },
                c.name,
                c.detail
            )
        })
        .collect();
    if checks.iter().any(|c| !c.ok) {
        out.push_str(&format!(
            "\nServers come from the compose stack: `{START_HINT}`; or, without Docker, `edm broker` \
             for Kafka and SQLite files for the stores (--mysql-url and --dynamodb-endpoint \
             sqlite://FILE, README \"Without Docker\"). Then `edm setup` and `edm create-topics`.\n"
        ));
    }
    out
}
