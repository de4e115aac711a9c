//! `edm order`: the walkthrough's curl steps as a command — place an order, show it,
//! optionally wait until its saga has finished.

use std::time::Duration;

use clap::Subcommand;
use serde_json::json;

use super::order_client::{ClientError, NewOrder, OrderClient, render_order};
use crate::config::KafkaArgs;
use crate::kafka::Kafka;

/// `edm order …`: the walkthrough's curl steps.
#[derive(Subcommand, Debug, Clone)]
pub enum OrderCommand {
    /// Place an order (POST /v1/order) and print its transaction id.
    Place {
        /// Customer id.
        #[arg(long, default_value = "user")]
        user: String,
        /// Item id (1 cloth, 2 cap, 3 sunglasses, 4 necklace, 5 earring).
        #[arg(long, default_value_t = 2)]
        item: i64,
        /// Units.
        #[arg(long, default_value_t = 5)]
        quantity: i64,
        /// Customer name.
        #[arg(long, default_value = "Hong Gil Dong")]
        name: String,
        /// Delivery address.
        #[arg(long, default_value = "29, Hansil-ro, Jung-gu, Seoul")]
        addr: String,
        /// Phone number.
        #[arg(long, default_value = "01012341234")]
        tel: String,
        /// E-mail address.
        #[arg(long, default_value = "hong@gil.com")]
        email: String,
        /// Wait until the saga has finished and print the order.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        output: OrderOutput,
    },
    /// Show an order (GET /v1/order).
    Get {
        /// The transaction id printed by `edm order place`.
        transaction_id: String,
        /// Customer id.
        #[arg(long, default_value = "user")]
        user: String,
        /// Wait until the saga has finished.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        output: OrderOutput,
    },
}

/// Where the order service is and how to print.
#[derive(clap::Args, Debug, Clone)]
pub struct OrderOutput {
    /// Base URL of the order service.
    #[arg(
        long,
        env = "EDM_ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// How long `--wait` waits for the saga to end.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
    /// Where the saga's topics are: when a saga does not end, `--wait` says which step
    /// it waits on.
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Waits for the order's saga to end; when it does not, says which steps wait for a
/// service that is not running (the consumer groups, as `edm doctor` reads them).
async fn wait_final(
    client: &OrderClient,
    tx: &str,
    user: &str,
    output: &OrderOutput,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let timeout = Duration::from_secs(output.timeout);
    match client.wait_final(tx, user, timeout).await {
        Err(error @ ClientError::NotFinal(..)) => {
            let waiting: Vec<String> = super::doctor::groups::check(&Kafka::new(&output.kafka))
                .await
                .into_iter()
                .filter(|check| !check.ok)
                .map(|check| format!("\n  {}: {}", check.name, check.detail))
                .collect();
            match waiting.is_empty() {
                true => anyhow::bail!(
                    "{error}; every saga step has a running service: see `edm trace {tx}`"
                ),
                false => anyhow::bail!("{error}; it waits on:{}", waiting.concat()),
            }
        }
        other => Ok(other?),
    }
}

/// `edm order place|get`.
pub async fn command(command: OrderCommand) -> anyhow::Result<()> {
    match command {
        OrderCommand::Place {
            user,
            item,
            quantity,
            name,
            addr,
            tel,
            email,
            wait,
            output,
        } => {
            let client = OrderClient::new(&output.url);
            let new = NewOrder {
                user_id: user.clone(),
                name,
                addr,
                tel,
                email,
                item,
                quantity,
            };
            let placed = client.place(&new).await?;
            let tx = placed.transaction_id;
            if let Some(pending) = &placed.pending {
                eprintln!("note: {pending}");
            }
            if wait {
                eprintln!("ORDER_CREATED  transaction_id={tx}: waiting for its saga to end");
                let order = wait_final(&client, &tx, &user, &output).await?;
                print_order(&order, output.json);
            } else if output.json {
                println!(
                    "{}",
                    json!({"status": "ORDER_CREATED", "transaction_id": tx, "user_id": user})
                );
            } else {
                println!("ORDER_CREATED  transaction_id={tx}  user_id={user}");
                println!(
                    "follow it with: edm order get {tx} --user {user} --wait   (or: edm trace {tx})"
                );
            }
        }
        OrderCommand::Get {
            transaction_id,
            user,
            wait,
            output,
        } => {
            let client = OrderClient::new(&output.url);
            let order = if wait {
                wait_final(&client, &transaction_id, &user, &output).await?
            } else {
                client.get(&transaction_id, &user).await?
            };
            print_order(&order, output.json);
        }
    }
    Ok(())
}

fn print_order(order: &serde_json::Map<String, serde_json::Value>, json: bool) {
    if json {
        println!("{}", serde_json::Value::Object(order.clone()));
    } else {
        print!("{}", render_order(order));
    }
}
