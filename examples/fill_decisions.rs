//! Fills the payment decisions' topic with N decisions (one per transaction, as the
//! payment consumer writes them), to measure what a payment consumer's start costs with a
//! long history: `scripts/bench-decisions.sh` runs it.
//!
//! Usage: cargo run --release --example fill_decisions -- N
//! (with EDM_BOOTSTRAP_SERVERS and EDM_TOPIC_PREFIX as for the services).

use std::time::Instant;

use clap::Parser;
use edm::config::KafkaArgs;
use edm::kafka::{Kafka, Record};

#[derive(Parser)]
struct Args {
    /// How many decisions.
    count: usize,
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let kafka = Kafka::connect(&args.kafka).await?;
    let topic = kafka.topics.payment_decisions.clone();
    kafka.ensure_topics(&[topic.as_str()], None, 1).await?;
    let producer = kafka.producer()?;
    let started = Instant::now();
    let mut sent = 0;
    while sent < args.count {
        let batch: Vec<Record> = (sent..(sent + 10_000).min(args.count))
            .map(|n| {
                let tx = uuid::Uuid::new_v4().to_string();
                let decision = serde_json::json!({
                    "transaction_id": tx,
                    "accepted": n % 5 != 0,
                    "decided_at": "2026-12-06T00:00:00.000000+0000",
                });
                Record {
                    topic: topic.clone(),
                    key: Some(tx),
                    payload: decision.to_string().into_bytes(),
                    headers: Vec::new(),
                }
            })
            .collect();
        for result in producer.send_all(&batch).await {
            result?;
        }
        sent += batch.len();
    }
    eprintln!("{sent} decisions in {:?}", started.elapsed());
    Ok(())
}
